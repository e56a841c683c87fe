"""The post-trade store of the multi-process venue (``fixgw serve --role store``) on a three-server JetStream
cluster: it follows the command stream into the venue's database while commands flow, is killed with SIGKILL twice
in the middle, and afterwards holds exactly the rows, balances and positions of a single-process replay of the
stream (no row missing, none twice); ``fixgw trades``, ``orders`` and ``stats`` read it with the venue's config."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from engine import Execution, MatchingEngine, NewOrder, OrdType, Side, TimeInForce
from engine.codec import decode, encode
from roles.config import load
from seqlog.jetstream import JetStreamWriter, connect, ensure_stream, position
from store.db import StoreError, open_backend
from tests.cluster_process import RoleProcess, cluster_config
from tests.gateway_process import ROOT
from tests.nats_cluster import NatsCluster
from tests.store_support import assert_money_holds, assert_store_holds, money_flow
from tests.test_cluster_engine import read_stream
from tests.test_cluster_gateway import commands_in_stream

pytestmark = pytest.mark.timeout(240)


def store_records(cfg) -> int:  # type: ignore[no-untyped-def]
    """Commands the store has written rows for (-1 before its database exists)."""
    try:
        db = open_backend(cfg)
    except StoreError:
        return -1
    try:
        return int(db.fetch("SELECT records FROM store_position")[0][0])
    except Exception:  # not migrated yet
        return -1
    finally:
        db.close()


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def fixgw(config: Path, *args: str) -> list[dict[str, object]]:
    out = subprocess.run([sys.executable, "-m", "gateway", *args, "--config", str(config), "--format", "json"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    rows: list[dict[str, object]] = json.loads(out.stdout)
    return rows


def test_store_role_follows_the_command_stream_exactly_once_across_kill_9(tmp_path: Path, nats3: NatsCluster) -> None:
    config, _ = cluster_config(tmp_path, nats3.urls, {}, {}, replicas=3)
    cfg, cluster = load(config)
    engine = RoleProcess(config, "engine", "e1", tmp_path).start()
    engine.wait_for("startup_commands_published")  # the money rules and opening balances
    store = RoleProcess(config, "store", "s1", tmp_path).start(ready="store_started")
    now = time.time_ns()
    # Two trades stamped now (for the 24-hour statistics), then varied flow with operator commands among the orders
    flow = [
        NewOrder("CLIENT1", "now-b", "ACC1", "AAPL", Side.BUY, OrdType.LIMIT, TimeInForce.DAY, 10_000, 3, False, now),
        NewOrder("CLIENT2", "now-s", "ACC2", "AAPL", Side.SELL, OrdType.LIMIT, TimeInForce.DAY, 9_990, 3, False, now),
        *money_flow(cfg, seed=11, n=2400),
    ]
    published = threading.Event()
    errors: list[BaseException] = []

    async def publish() -> None:
        nc = await connect(nats3.urls, "test-writer")
        js = nc.jetstream()
        await ensure_stream(js, cluster.commands)
        writer = JetStreamWriter(js, cluster.commands, "test")
        for i, cmd in enumerate(flow):
            writer.append(encode(cmd))
            if i % 4 == 3:
                writer.commit()
                await asyncio.sleep(0.01)
        await writer.flush(timeout=60)
        await nc.close()

    def run() -> None:
        try:
            asyncio.run(publish())
        except BaseException as exc:  # reported by the test's thread
            errors.append(exc)
        finally:
            published.set()

    publisher = threading.Thread(target=run, name="publisher")
    publisher.start()
    try:
        for _ in range(2):  # twice, each time while rows are being written
            before = max(store_records(cfg), 0)
            wait_until(lambda before=before: store_records(cfg) > before + 50, 60, "the store to write rows")
            assert not published.is_set(), f"the flow ended before the kill {errors}"
            store.kill()  # SIGKILL
            store.start(ready="store_started")
        publisher.join(120)
        assert not errors, errors
        total = commands_in_stream(nats3.urls, cluster.commands)
        wait_until(lambda: store_records(cfg) == total, 60, "the restarted store to catch up")
    finally:
        publisher.join(5)
    # The reference: a single-process replay of the whole command stream
    commands = read_stream(nats3.urls, cluster.commands, total)
    replay = MatchingEngine(cfg.instruments, cfg.self_trade_prevention)
    executions: list[Execution] = []
    for _, payload in commands:
        executions += [e for e in replay.process(decode(payload)) if type(e) is Execution]
    end = position(commands[-1][0] + 1)  # the record after the last message's last one
    assert_store_holds(cfg, replay, executions, end, min_trades=100, statuses=frozenset({"FILLED", "CANCELED"}))
    assert_money_holds(cfg, replay, executions)
    assert store.log_text().count("store_started") == 3
    # The query tools read the cluster's store with the venue's config
    trades = fixgw(config, "trades")
    assert len(trades) == len({e.trade_id for e in executions if e.trade_id})
    assert {
        t["buy_clordid"] for t in fixgw(config, "trades", "--account", "ACC1", "--since", "1h", "--until", "now")
    } == {"now-b"}
    orders = fixgw(config, "orders", "--symbol", "AAPL", "--since", "1h", "--until", "now")
    assert {(o["clordid"], o["status"]) for o in orders} == {("now-b", "FILLED"), ("now-s", "FILLED")}
    [aapl] = fixgw(config, "stats", "--symbol", "AAPL")
    assert (aapl["trades"], aapl["volume"], aapl["last"]) == (1, "3", "100.00")
    store.stop()
    engine.stop()
