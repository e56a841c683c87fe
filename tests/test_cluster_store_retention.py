"""The post-trade store and the command stream's trimming, on a three-server JetStream cluster with real engine and
store processes: a store killed while the engine keeps taking commands and writing snapshots holds the trim back to
what it needs (its position is registered), restarts from the engine snapshot at or before its position and ends
with exactly a replay's rows; a new store after the trim is refused with one line; an unregistered store no longer
holds anything back."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import nats.js.errors
import pytest

from engine import Command, Execution, MatchingEngine
from engine.codec import decode
from roles.config import ClusterConfig, load
from roles.engine import startup_commands
from roles.storehold import base_snapshot, first_needed, registrations, retention
from seqlog.jetstream import connect, position
from tests.cluster_process import RoleProcess, cluster_config
from tests.gateway_process import ROOT
from tests.nats_cluster import NatsCluster
from tests.store_support import assert_money_holds, assert_store_holds, money_flow, random_flow
from tests.test_cluster_engine import read_stream
from tests.test_cluster_snapshots import events, publish, stream_state, wait_for_events
from tests.test_cluster_store import store_records, wait_until

pytestmark = pytest.mark.timeout(300)

EVERY = 200  # commands between two snapshots


def registered(urls: list[str], cluster: ClusterConfig) -> dict[str, dict[str, object]]:
    """The store bucket's entries by key, read as the engines read them (:func:`roles.storehold.registrations`)."""

    async def ask() -> dict[str, dict[str, object]]:
        nc = await connect(urls, "test-probe")
        try:
            js = nc.jetstream()
            try:
                kv = await js.key_value(cluster.store_bucket)
            except nats.js.errors.BucketNotFoundError:  # no store has registered yet
                return {}
            return await registrations(js, kv, cluster.store_bucket)
        finally:
            await nc.close()

    return asyncio.run(ask())


def more_snapshots(engine: RoleProcess, count: int, publish_flow: Callable[[list[Command]], None]) -> None:
    """Until the engine has stored ``count`` snapshots in all, publish more order flow (how many commands a snapshot
    takes depends on the machine's load: the engine starts one only when the last one is stored)."""
    deadline = time.monotonic() + 90
    for seed in itertools.count(100):
        try:
            wait_for_events(engine, "snapshot_stored", count, timeout=2)
            return
        except AssertionError:
            assert time.monotonic() < deadline, engine.tail()
        publish_flow(random_flow(seed=seed, n=EVERY, start_ns=(1_800_100_000 + seed * 10_000) * 10**9))


def test_retention_keeps_each_stores_base_snapshot_and_the_commands_from_it() -> None:
    snaps = [100, 200, 300, 400]
    assert retention(300, snaps, []) == (301, {300, 400})  # the engine alone: the previous snapshot on
    assert retention(300, snaps, [250]) == (200, {200, 300, 400})  # a store at 250 rebuilds from 200
    assert retention(300, snaps, [200, 350]) == (200, {200, 300, 400})  # at 200: message 200 holds its last record
    assert retention(300, snaps, [50]) == (1, {300, 400})  # before any snapshot: the whole stream
    assert retention(300, snaps, [0]) == (1, {300, 400})  # a new store: likewise
    assert (base_snapshot(snaps, 250), first_needed(200, 250), first_needed(200, 200), first_needed(0, 0)) == (
        200, 201, 200, 1)  # fmt: skip


def test_a_stopped_store_holds_the_trim_back_and_a_new_store_is_refused(tmp_path: Path, nats3: NatsCluster) -> None:
    config, _ = cluster_config(tmp_path, nats3.urls, {}, {}, replicas=3)
    config.write_text(config.read_text().replace("[cluster]\n", f"[cluster]\nsnapshot_every = {EVERY}\n", 1))
    cfg, cluster = load(config)
    engine = RoleProcess(config, "engine", "e1", tmp_path).start()
    engine.wait_for("startup_commands_published")
    messages: dict[int, list[Command]] = {}
    startup = len(startup_commands(cfg, MatchingEngine(cfg.instruments)))
    for seq, payload in read_stream(nats3.urls, cluster.commands, startup):  # before anything is trimmed
        messages.setdefault(seq, []).append(decode(payload))
    store = RoleProcess(config, "store", "s1", tmp_path).start(ready="store_started")
    flow = money_flow(cfg, seed=21, n=2400)

    def commands() -> int:
        return sum(len(m) for m in messages.values())

    publish(nats3.urls, cluster, flow[:600], messages)
    wait_until(lambda: store_records(cfg) == commands(), 60, "the store to catch up")
    held = max(messages)
    wait_until(lambda: registered(nats3.urls, cluster).get("store-s1") == {"shard": "0", "seq": held}, 10,
               "the store to register its position")  # fmt: skip
    store.kill()  # SIGKILL: it stays registered

    snapshots_before = len(events(engine, "snapshot_stored"))
    publish(nats3.urls, cluster, flow[600:], messages)
    more_snapshots(engine, snapshots_before + 2, lambda flow: publish(nats3.urls, cluster, flow, messages))
    wait_until(lambda: stream_state(nats3.urls, cluster)[1] == max(messages), 30, "every result")
    first, _, _, kept = stream_state(nats3.urls, cluster)
    last = events(engine, "snapshot_stored")[-1]
    base = base_snapshot(kept, held)
    assert 0 < base <= held
    assert first == base == last["purged_below"]  # trimmed, but only up to the store's base snapshot
    assert last["held_by"] == {"s1": held}
    assert first < events(engine, "snapshot_stored")[-2]["seq"] + 1  # the engine alone would have trimmed more

    # A new store (its own, empty database) after the trim: refused with one line, exit status 2
    config2 = tmp_path / "venue2.toml"
    config2.write_text(config.read_text().replace(str(tmp_path / "data"), str(tmp_path / "data2")))
    newcomer = RoleProcess(config2, "store", "s2", tmp_path).start(ready="store_failed")
    assert newcomer.proc is not None and newcomer.proc.wait(30) == 2
    [failed] = [line for line in newcomer.log_text().splitlines() if "store_failed" in line]
    assert "no longer holds message 1, which store s2 needs" in failed
    assert f"it holds messages {first}.." in failed
    assert "store-s2" not in registered(nats3.urls, cluster)  # a refused store holds nothing back

    # The stopped store restarts from the kept snapshot and ends with exactly a replay's rows
    store.start(ready="store_started")
    (started,) = events(store, "store_started")
    assert started["snapshot"] == f"snapshot-{position(base + 1)}.json"
    wait_until(lambda: store_records(cfg) == commands(), 60, "the restarted store to catch up")
    replay = MatchingEngine(cfg.instruments, cfg.self_trade_prevention)
    executions: list[Execution] = []
    for seq in sorted(messages):
        for cmd in messages[seq]:
            executions += [e for e in replay.process(cmd) if type(e) is Execution]
    assert_store_holds(cfg, replay, executions, position(max(messages) + 1), min_trades=100,
                       statuses=frozenset({"FILLED", "CANCELED"}))  # fmt: skip
    assert_money_holds(cfg, replay, executions)
    wait_until(lambda: registered(nats3.urls, cluster).get("store-s1") == {"shard": "0", "seq": max(messages)}, 10,
               "the store to register its new position")  # fmt: skip
    store.stop()

    # Unregistered, it holds nothing back: the next trim is the engine's own
    out = subprocess.run([sys.executable, "-m", "roles.storehold", "--config", str(config), "--unregister", "s1"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    assert out.stdout.strip() == "store s1 unregistered"
    assert "store-s1" not in registered(nats3.urls, cluster)
    snapshots_before = len(events(engine, "snapshot_stored"))
    more_snapshots(engine, snapshots_before + 2, lambda flow: publish(nats3.urls, cluster, flow, messages))
    done = events(engine, "snapshot_stored")
    assert done[-1]["held_by"] == {}
    assert done[-1]["purged_below"] == done[-2]["seq"] + 1
    engine.stop()
