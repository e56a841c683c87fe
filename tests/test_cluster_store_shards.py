"""The post-trade store of a venue with several shards (README "Scale-out"), on a three-server JetStream cluster with
real engine, gateway and store processes: shard ``eq`` (AAPL, MSFT) and shard ``crypto`` (BTC-USD), snapshots every
200 commands. One store process follows both command streams into one SQLite database. FIX clients trade on both
shards, then order flow is published into both streams while the store is killed with SIGKILL twice; while it is
down the engines snapshot and trim, each holding back only what the store's registration for its own shard needs.
Afterwards the database holds exactly the rows of a replay of each shard (no row missing, none twice), the trades the
clients saw, one position per shard, and balances summed over the shards' ledgers."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine import (
    Command,
    Execution,
    MatchingEngine,
)
from engine.codec import decode, encode
from fixclient import FixSession
from roles.config import ClusterConfig, ShardSpec, load
from roles.snapshots import stored
from roles.storehold import base_snapshot
from seqlog.jetstream import JetStreamWriter, StreamSpec, connect, position
from store.db import open_backend
from tests.cluster_process import RoleProcess, cluster_config
from tests.fixtools import f, new_order, wait_er
from tests.nats_cluster import NatsCluster
from tests.store_support import assert_shards_hold, money_flow, random_flow, split_by_shard, table
from tests.test_cluster_engine import read_stream
from tests.test_cluster_gateway import commands_in_stream
from tests.test_cluster_shards import SHARDS
from tests.test_cluster_snapshots import events
from tests.test_cluster_store import wait_until
from tests.test_cluster_store_retention import registered

pytestmark = pytest.mark.timeout(300)

EVERY = 200  # commands between two snapshots


async def publish(urls: list[str], specs: dict[str, StreamSpec], flows: dict[str, list[Command]],
                  into: dict[str, dict[int, list[Command]]], pause: float = 0.0) -> None:  # fmt: skip
    """Publish each shard's flow in messages of 5 commands, the shards interleaved; ``into[shard]`` gets each
    message's commands by stream sequence; ``pause`` seconds after each round (a steady flow, not a burst)."""
    nc = await connect(urls, "test-writer")
    writers, batches = {}, {}
    for shard, spec in specs.items():
        batches[shard] = pending = {}
        writers[shard] = JetStreamWriter(
            nc.jetstream(),
            spec,
            f"test-{shard}",
            on_stored=lambda n, seq, s=shard, p=pending: into[s].__setitem__(seq, p.pop(n)),
        )
    longest = max(map(len, flows.values()))
    for i in range(0, longest, 5):
        for shard, flow in flows.items():
            if flow[i : i + 5]:
                for cmd in flow[i : i + 5]:
                    writers[shard].append(encode(cmd))
                batches[shard][writers[shard].commit()] = flow[i : i + 5]
        await asyncio.sleep(pause)
    for writer in writers.values():
        await writer.flush(timeout=60)
    await nc.close()


def store_positions(cfg: Any) -> dict[int, tuple[int, int]]:
    """The store's committed (position, records) per shard ({} before its database exists)."""
    try:
        db = open_backend(cfg)
    except Exception:
        return {}
    try:
        return {
            int(r[0]): (int(r[1]), int(r[2])) for r in db.fetch("SELECT shard, position, records FROM store_position")
        }
    except Exception:  # not migrated yet
        return {}
    finally:
        db.close()


def first_kept(urls: list[str], cluster: ClusterConfig, shard: str) -> tuple[int, list[int]]:
    """(the first command message shard's stream still holds, the snapshots kept of it)."""

    async def ask() -> tuple[int, list[int]]:
        nc = await connect(urls, "test-probe")
        try:
            js = nc.jetstream()
            info = await js.stream_info(cluster.command_stream(shard).name)
            return info.state.first_seq, await stored(await js.object_store(cluster.snapshot_bucket), shard)
        finally:
            await nc.close()

    return asyncio.run(ask())


def replay(cfg: Any, shard: ShardSpec, messages: dict[int, list[Command]]) -> tuple[MatchingEngine, list[Execution]]:
    """A single-process replay of one shard's commands, built as its engines are."""
    instruments = [i for i in cfg.instruments if i.symbol in shard.symbols]
    engine = MatchingEngine(instruments, cfg.self_trade_prevention, id_base=shard.id_base)
    executions: list[Execution] = []
    for seq in sorted(messages):
        for cmd in messages[seq]:
            executions += [e for e in engine.process(cmd) if type(e) is Execution]
    return engine, executions


def test_one_store_follows_every_shard_exactly_once_and_holds_each_shards_trim(
    tmp_path: Path, nats3: NatsCluster
) -> None:
    config, ports = cluster_config(tmp_path, nats3.urls, {"gw1": ["CLIENT1", "CLIENT2"]}, {}, replicas=3,
                                   shards=SHARDS)  # fmt: skip
    config.write_text(config.read_text().replace("[cluster]\n", f"[cluster]\nsnapshot_every = {EVERY}\n", 1))
    cfg, cluster = load(config)
    specs = {s.name: cluster.command_stream(s.name) for s in cluster.shards}
    engines = {s: RoleProcess(config, "engine", f"{s}1", tmp_path, s).start() for s in SHARDS}
    for engine in engines.values():
        engine.wait_for("startup_commands_published")
    store = RoleProcess(config, "store", "s1", tmp_path).start(ready="store_started")
    gateway = RoleProcess(config, "gateway", "gw1", tmp_path).start()

    # FIX clients trade on both shards through one gateway
    seen: list[tuple[str, str, str, str]] = []  # (ExecID, ClOrdID, LastQty, LastPx) of every fill a client got
    c1 = FixSession("127.0.0.1", ports["gw1"], "CLIENT1", "pass1", heartbeat=30)
    c2 = FixSession("127.0.0.1", ports["gw1"], "CLIENT2", "pass2", heartbeat=30)
    for s in (c1, c2):
        s.logon()
    for symbol, qty, price in (("AAPL", "10", "100.00"), ("BTC-USD", "0.0100", "50000.00")):
        new_order(c1, f"b-{symbol}", side="1", qty=qty, price=price, symbol=symbol)
        wait_er(c1, f"b-{symbol}", "0")
        new_order(c2, f"s-{symbol}", side="2", qty=qty, price=price, symbol=symbol)
        for s, cl in ((c1, f"b-{symbol}"), (c2, f"s-{symbol}")):
            er = wait_er(s, cl, "F")
            seen.append((f(er, 17) or "", cl, f(er, 32) or "", f(er, 31) or ""))
    c1.close()
    c2.close()
    gateway.stop()
    # What the streams hold so far (nothing is trimmed yet: far fewer than EVERY commands)
    messages: dict[str, dict[int, list[Command]]] = {s: {} for s in SHARDS}
    for shard, spec in specs.items():
        for seq, payload in read_stream(nats3.urls, spec, commands_in_stream(nats3.urls, spec)):
            messages[shard].setdefault(seq, []).append(decode(payload))

    def total() -> int:
        return sum(len(m) for per in messages.values() for m in per.values())

    def records() -> int:
        return sum(r for _, r in store_positions(cfg).values())

    wait_until(lambda: records() == total(), 60, "the store to write the clients' trades")
    # Order flow into both streams while the store is killed twice as it writes
    flows = split_by_shard(cluster, money_flow(cfg, seed=31, n=3000))
    main = {s: flow[: len(flow) * 2 // 3] for s, flow in flows.items()}
    extra = {s: flow[len(flow) * 2 // 3 :] for s, flow in flows.items()}
    done, errors = threading.Event(), []

    def run() -> None:
        try:
            asyncio.run(publish(nats3.urls, specs, main, messages, pause=0.02))
        except BaseException as exc:  # reported by the test's thread
            errors.append(exc)
        finally:
            done.set()

    def past_a_snapshot(shard: str) -> bool:
        """The store's registered position is past a snapshot still kept (an older one may have been pruned while
        the store was before it: then nothing would hold the trim at a snapshot)."""
        held = registered(nats3.urls, cluster).get(f"store-s1.{shard}", {}).get("seq", 0)
        return base_snapshot(first_kept(nats3.urls, cluster, shard)[1], int(held)) > 0  # type: ignore[call-overload]

    publisher = threading.Thread(target=run, name="publisher")
    publisher.start()
    try:
        for kill in range(2):
            before = records()
            wait_until(lambda before=before: records() > before + 50, 60, "the store to write rows")
            if kill:  # its registered positions are past a snapshot of each shard: the trim has something to keep
                wait_until(lambda: all(past_a_snapshot(s) for s in SHARDS), 30, "the store to pass a snapshot")
            assert not done.is_set(), f"the flow ended before the kill {errors}"
            store.kill()  # SIGKILL: it stays registered, once per shard
            if not kill:
                store.start(ready="store_started")
        publisher.join(120)
        assert not errors, errors
    finally:
        publisher.join(5)

    # While the store is down each shard's engine stores two more snapshots and trims, but only down to the base
    # snapshot of the store's registered position in that shard
    held = {s: int(registered(nats3.urls, cluster)[f"store-s1.{s}"]["seq"]) for s in SHARDS}  # type: ignore[call-overload]
    assert {s: registered(nats3.urls, cluster)[f"store-s1.{s}"]["shard"] for s in SHARDS} == {s: s for s in SHARDS}
    counts = {s: len(events(e, "snapshot_stored")) for s, e in engines.items()}
    assert all(counts.values()), counts  # the flow made snapshots on each shard
    asyncio.run(publish(nats3.urls, specs, extra, messages))
    deadline = time.monotonic() + 90
    for seed in itertools.count(100):  # (an engine starts a snapshot only once the last one is stored)
        if all(len(events(e, "snapshot_stored")) >= counts[s] + 2 for s, e in engines.items()):
            break
        assert time.monotonic() < deadline, {s: e.tail() for s, e in engines.items()}
        more = split_by_shard(cluster, random_flow(seed, EVERY, start_ns=(1_800_100_000 + seed * 10_000) * 10**9))
        asyncio.run(publish(nats3.urls, specs, more, messages))
    for shard, engine in engines.items():
        first, kept = first_kept(nats3.urls, cluster, shard)
        base = base_snapshot(kept, held[shard])
        last = events(engine, "snapshot_stored")[-1]
        assert 1 < first == base == last["purged_below"], (shard, first, base, last)  # trimmed, to the store's base
        assert last["held_by"] == {"s1": held[shard]}
        assert first <= events(engine, "snapshot_stored")[-2]["seq"]  # the engine alone would have trimmed more

    # A new store (its own, empty database) after the trim: refused with one line, registered for no shard
    config2 = tmp_path / "venue2.toml"
    config2.write_text(config.read_text().replace(str(tmp_path / "data"), str(tmp_path / "data2")))
    newcomer = RoleProcess(config2, "store", "s2", tmp_path).start(ready="store_failed")
    assert newcomer.proc is not None and newcomer.proc.wait(30) == 2
    [failed] = [line for line in newcomer.log_text().splitlines() if "store_failed" in line]
    assert "the command stream FIXGW_CMD_" in failed and "no longer holds message 1, which store s2 needs" in failed
    assert not [k for k in registered(nats3.urls, cluster) if k.startswith("store-s2")]

    # Restarted, it rebuilds each shard's engine from what was kept and catches up: every row exactly once
    store.start(ready="store_started")
    wait_until(lambda: records() == total(), 90, "the restarted store to catch up")
    assert store.log_text().count("store_started") == 3 * len(SHARDS)
    replays = {s.name: replay(cfg, s, messages[s.name]) for s in cluster.shards}
    executions = [e for _, execs in replays.values() for e in execs]
    assert store_positions(cfg) == {
        s.index: (position(max(messages[s.name]) + 1), replays[s.name][0].commands_processed) for s in cluster.shards
    }
    assert_shards_hold(cfg, cluster, [engine for engine, _ in replays.values()], executions, min_trades=200)
    db = open_backend(cfg)
    try:  # every fill the clients were sent is a trade row with its ExecID, ClOrdID, quantity and price
        fills = {}
        for r in table(db, "SELECT buy_exec_id, buy_clordid, qty, price, sell_exec_id, sell_clordid FROM trades"):
            fills[str(r[0])] = (r[1], Decimal(r[2]), Decimal(r[3]))
            fills[str(r[4])] = (r[5], Decimal(r[2]), Decimal(r[3]))
        assert len(seen) == 4 and all(fills[e] == (cl, Decimal(q), Decimal(p)) for e, cl, q, p in seen), seen
    finally:
        db.close()
    wait_until(lambda: {k: v["seq"] for k, v in registered(nats3.urls, cluster).items()}
               == {f"store-s1.{s}": max(messages[s]) for s in SHARDS}, 10, "the store's new positions")  # fmt: skip
    store.stop()
    for engine in engines.values():
        engine.stop()
