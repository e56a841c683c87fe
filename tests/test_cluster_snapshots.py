"""Engine snapshots and command-stream retention in the multi-process venue, with real nats-server and engine
processes: the active engine writes a snapshot every few hundred commands and trims the command stream behind it; an
engine started later loads the latest snapshot and follows the stream after it (it cannot read from the start: the
start is gone), takes over, and the state it then snapshots is exactly a single-process replay's."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine import Command, MatchingEngine
from engine.codec import decode, encode
from engine.snapshot import dump_state
from roles.config import ClusterConfig, load
from roles.engine import startup_commands
from roles.snapshots import load_latest, stored
from seqlog.jetstream import JetStreamWriter, connect, last_sequence
from tests.cluster_process import RoleProcess, cluster_config
from tests.nats_cluster import NatsCluster
from tests.store_support import random_flow
from tests.test_cluster_engine import read_stream

pytestmark = pytest.mark.timeout(180)

EVERY = 400  # commands between two snapshots
META = ("stream_seq", "clock_seq", "previous")


def events(process: RoleProcess, name: str) -> list[dict[str, Any]]:
    """The structured log lines ``name`` of the process's current run."""
    out = []
    for line in process.log_text()[process._mark :].splitlines():
        if f'"{name}"' in line and line.startswith("{"):
            out.append(json.loads(line))
    return out


def wait_for_events(process: RoleProcess, name: str, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while len(found := events(process, name)) < count:
        assert time.monotonic() < deadline, f"{process.name}: {len(found)} of {count} {name} within {timeout}s"
        assert process.alive(), process.tail()
        time.sleep(0.05)
    return found


def publish(urls: list[str], cluster: ClusterConfig, flow: list[Command], into: dict[int, list[Command]]) -> None:
    """Publish ``flow`` in messages of 5 commands; ``into`` gets each message's commands by stream sequence."""

    async def run() -> None:
        nc = await connect(urls, "test-writer")
        batches: dict[int, list[Command]] = {}
        writer = JetStreamWriter(nc.jetstream(), cluster.commands, "test",
                                 on_stored=lambda number, seq: into.__setitem__(seq, batches.pop(number)))  # fmt: skip
        for i in range(0, len(flow), 5):
            for cmd in flow[i : i + 5]:
                writer.append(encode(cmd))
            batches[writer.commit()] = flow[i : i + 5]
            await asyncio.sleep(0.001)
        await writer.flush(timeout=30)
        await nc.close()

    asyncio.run(run())


def stream_state(urls: list[str], cluster: ClusterConfig) -> tuple[int, int, dict[str, Any] | None, list[int]]:
    """(first command sequence kept, last result sequence, the latest snapshot, the snapshots kept)."""

    async def ask() -> tuple[int, int, dict[str, Any] | None, list[int]]:
        nc = await connect(urls, "test-probe")
        try:
            js = nc.jetstream()
            first = (await js.stream_info(cluster.commands.name)).state.first_seq
            last = await last_sequence(js, cluster.results.name)
            store = await js.object_store(cluster.snapshot_bucket)
            snapshot, kept = await load_latest(store), await stored(store)
        finally:
            await nc.close()
        return int(first), last, snapshot, kept

    return asyncio.run(ask())


def test_an_engine_started_late_catches_up_from_the_snapshot_and_equals_a_replay(tmp_path: Path) -> None:
    nats = NatsCluster(tmp_path / "nats", 1).start()
    e1 = e2 = None
    try:
        config, _ = cluster_config(tmp_path, nats.urls, {}, {})
        config.write_text(config.read_text().replace("[cluster]\n", f"[cluster]\nsnapshot_every = {EVERY}\n", 1))
        cfg, cluster = load(config)
        assert cluster.snapshot_every == EVERY
        e1 = RoleProcess(config, "engine", "e1", tmp_path).start()
        e1.wait_for("startup_commands_published")
        startup = len(startup_commands(cfg, MatchingEngine(cfg.instruments)))
        messages: dict[int, list[Command]] = {}
        for seq, payload in read_stream(nats.urls, cluster.commands, startup):  # before anything is trimmed
            messages.setdefault(seq, []).append(decode(payload))
        publish(nats.urls, cluster, random_flow(seed=5, n=2000), messages)
        wait_for_events(e1, "snapshot_stored", 3)  # 2000 commands: a snapshot every 400 (or a little later)
        deadline = time.monotonic() + 30
        while True:  # quiet: every result published, the last snapshot stored and the stream trimmed behind it
            first, results, snapshot, kept = stream_state(nats.urls, cluster)
            done = events(e1, "snapshot_stored")
            if results == max(messages) and first == done[-1]["purged_below"] == done[-2]["seq"] + 1 and len(kept) == 2:
                break
            assert time.monotonic() < deadline, (first, results, done[-2:], kept)
            time.sleep(0.1)
        assert first > 1  # the commands up to the previous snapshot are gone

        e2 = RoleProcess(config, "engine", "e2", tmp_path).start()
        (loaded,) = events(e2, "snapshot_loaded")
        (started,) = events(e2, "engine_started")
        assert started["after"] == loaded["seq"] >= first  # it followed the stream after the snapshot, not from 1
        e1.kill()
        e2.wait_for("engine_active", 20)
        publish(nats.urls, cluster, random_flow(seed=6, n=1000, start_ns=1_800_003_000 * 10**9), messages)
        last = max(messages)
        deadline = time.monotonic() + 30
        while True:  # e2's own snapshot of the state after the new commands, and every result published
            _, results, snapshot, _ = stream_state(nats.urls, cluster)
            assert snapshot is not None
            if results == last and int(snapshot["stream_seq"]) > int(loaded["seq"]):
                break
            assert time.monotonic() < deadline, f"results {results} of {last}; snapshot at {snapshot['stream_seq']}"
            time.sleep(0.2)
        replica = MatchingEngine(cfg.instruments, cfg.self_trade_prevention)
        for seq in sorted(messages):
            if seq > int(snapshot["stream_seq"]):
                break
            for cmd in messages[seq]:
                replica.process(cmd)
        state = {k: v for k, v in snapshot.items() if k not in META}
        assert state == orjson.loads(orjson.dumps(dump_state(replica)))
        assert replica.commands_processed > 2000
    finally:
        for p in (e1, e2):
            if p is not None and p.alive():
                p.stop()
        nats.stop()
