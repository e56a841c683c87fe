"""The sequenced log on NATS JetStream: real nats-server processes (one, or a cluster of three) on loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from seqlog import LogReader
from seqlog.jetstream import JetStreamLogReader, JetStreamWriter, StreamSpec, connect, ensure_stream, position
from tests.nats_cluster import NatsCluster


@pytest.fixture
def one_server(tmp_path: Path) -> Iterator[NatsCluster]:
    cluster = NatsCluster(tmp_path / "nats", 1).start()
    yield cluster
    cluster.stop()


@pytest.fixture
def three_servers(tmp_path: Path) -> Iterator[NatsCluster]:
    cluster = NatsCluster(tmp_path / "nats", 3).start()
    yield cluster
    cluster.stop()


def read_all(reader: LogReader, start: int, count: int, timeout: float = 20.0) -> list[tuple[int, int, bytes]]:
    out: list[tuple[int, int, bytes]] = []
    pos = start
    deadline = time.monotonic() + timeout
    while len(out) < count:
        assert time.monotonic() < deadline, f"only {len(out)} of {count} records within {timeout}s"
        records = reader.read(pos, min(100, count - len(out)))
        if not records:
            reader.wait(pos, 0.5)
            continue
        out += records
        pos = records[-1][1]
    return out


def test_batches_read_back_in_order_from_any_position(one_server: NatsCluster) -> None:
    spec = StreamSpec("T_LOG", "t.log", replicas=1)
    stored: list[tuple[int, int]] = []

    async def write() -> None:
        nc = await connect(one_server.urls, "writer")
        js = nc.jetstream()
        await ensure_stream(js, spec)
        writer = JetStreamWriter(js, spec, "w1", on_stored=lambda n, s: stored.append((n, s)))
        for i in range(250):
            writer.append(f"r{i}".encode())
            if i % 7 == 6:  # a batch of 7 records per commit, like 7 commands read in one loop turn
                writer.commit()
        await writer.flush()
        await nc.close()

    asyncio.run(write())
    assert [n for n, _ in stored] == list(range(1, len(stored) + 1))  # every batch stored once, in order
    assert [s for _, s in stored] == list(range(1, len(stored) + 1))
    reader = JetStreamLogReader(one_server.urls, spec)
    try:
        records = read_all(reader, 0, 250)
        assert [p for _, _, p in records] == [f"r{i}".encode() for i in range(250)]
        positions = [pos for pos, _, _ in records]
        assert positions == sorted(positions) and len(set(positions)) == 250
        assert all(nxt == records[i + 1][0] for i, (_, nxt, _) in enumerate(records[:-1]))
        # from the middle of a batch (record 10 is the fourth of the second batch) and from a later message
        assert [p for _, _, p in read_all(reader, records[10][0], 5)] == [f"r{i}".encode() for i in range(10, 15)]
        assert read_all(reader, position(3), 1)[0][2] == b"r14"
        assert reader.read(records[-1][1], 10) == []  # nothing after the end
        assert reader.wait(records[-1][1], 0.2) is False
    finally:
        reader.close()


def stream_leader(cluster: NatsCluster, name: str) -> int:
    async def ask() -> str:
        nc = await connect(cluster.urls, "probe")
        try:
            info = await nc.jetstream().stream_info(name)
            assert info.cluster is not None and info.cluster.leader
            return str(info.cluster.leader)
        finally:
            await nc.close()

    return int(asyncio.run(ask()).lstrip("n"))


def test_replicated_stream_keeps_every_batch_once_when_its_leader_dies(three_servers: NatsCluster) -> None:
    """Three servers, replicas=3: a writer keeps committing while the stream's leader is killed; every record is
    stored exactly once and in order (retries carry the same Nats-Msg-Id), and the stream goes on."""
    spec = StreamSpec("T_R3", "t.r3", replicas=3)
    leader = -1

    async def write() -> JetStreamWriter:
        nonlocal leader
        nc = await connect(three_servers.urls, "writer")
        js = nc.jetstream()
        await ensure_stream(js, spec)
        writer = JetStreamWriter(js, spec, "w1")
        for i in range(3000):
            writer.append(f"r{i}".encode())
            if i % 10 == 9:
                writer.commit()
                await asyncio.sleep(0.001)
            if i == 1000:
                leader = await asyncio.get_running_loop().run_in_executor(None, stream_leader, three_servers, spec.name)
                three_servers.kill(leader)
        await writer.flush(timeout=30)
        await nc.close()
        return writer

    writer = asyncio.run(write())
    assert leader >= 0
    reader = JetStreamLogReader([u for i, u in enumerate(three_servers.urls) if i != leader], spec)
    try:
        records = read_all(reader, 0, 3000, timeout=30)
        assert [p for _, _, p in records] == [f"r{i}".encode() for i in range(3000)]
        assert reader.wait(records[-1][1], 0.3) is False  # no duplicate after the last one
    finally:
        reader.close()
    assert writer.pending == 0
