"""The engine role on a three-server JetStream cluster: an active engine and a standby as real processes; the active
one is killed with SIGKILL in the middle of the flow and the standby takes over. The result stream must then hold
exactly the events a single-process replay of the command stream produces: nothing lost, nothing twice, no ExecID
or OrderID reused."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from engine import MatchingEngine
from engine.codec import decode, encode
from engine.eventcodec import decode_events, to_list
from roles.config import load
from roles.engine import startup_commands
from seqlog.jetstream import JetStreamLogReader, JetStreamWriter, connect, ensure_stream, split
from tests.cluster_process import RoleProcess, cluster_config
from tests.store_support import random_flow


def read_stream(urls: list[str], spec, count: int, timeout: float = 30.0) -> list[tuple[int, bytes]]:
    """(stream sequence, record) of the first ``count`` records."""
    reader = JetStreamLogReader(urls, spec)
    out: list[tuple[int, bytes]] = []
    pos = 0
    deadline = time.monotonic() + timeout
    try:
        while len(out) < count:
            assert time.monotonic() < deadline, f"{spec.name}: {len(out)} of {count} records within {timeout}s"
            records = reader.read(pos, count - len(out))
            if not records:
                reader.wait(pos, 0.5)
                continue
            out += [(split(p)[0], payload) for p, _, payload in records]
            pos = records[-1][1]
    finally:
        reader.close()
    return out


def test_standby_takes_over_from_a_killed_engine_and_the_results_equal_a_replay(tmp_path: Path, nats3) -> None:
    config, _ = cluster_config(tmp_path, nats3.urls, {}, {}, replicas=3)
    cfg, cluster = load(config)
    active = RoleProcess(config, "engine", "e1", tmp_path).start()
    active.wait_for("engine_active")
    standby = RoleProcess(config, "engine", "e2", tmp_path).start()
    flow = random_flow(seed=3, n=3000)

    async def publish() -> None:
        nc = await connect(nats3.urls, "test-writer")
        js = nc.jetstream()
        await ensure_stream(js, cluster.commands)
        writer = JetStreamWriter(js, cluster.commands, "test")
        for i, cmd in enumerate(flow):
            writer.append(encode(cmd))
            if i % 5 == 4:
                writer.commit()
                await asyncio.sleep(0.002)
            if i == 1500:
                active.kill()  # SIGKILL in the middle of the flow
        await writer.flush(timeout=30)
        await nc.close()

    asyncio.run(publish())
    standby.wait_for("engine_active", timeout=20)
    startup = len(startup_commands(cfg, MatchingEngine(cfg.instruments)))  # the money rules and opening balances
    commands = read_stream(nats3.urls, cluster.commands, len(flow) + startup)
    n_messages = commands[-1][0]
    results = read_stream(nats3.urls, cluster.results, len(commands))
    assert results[-1][0] == n_messages  # result message n for every command message n, none missing or extra
    replica = MatchingEngine(cfg.instruments, cfg.self_trade_prevention)
    exec_ids: list[int] = []
    for (cmd_seq, payload), (res_seq, result) in zip(commands, results, strict=True):
        assert cmd_seq == res_seq
        expected = [to_list(e) for e in replica.process(decode(payload))]
        assert [to_list(e) for e in decode_events(result)] == expected
        exec_ids += [e[1] for e in expected if e[0] == "X"]
    assert len(exec_ids) == len(set(exec_ids)) and exec_ids == sorted(exec_ids)
    assert replica.commands_processed == len(flow) + startup
    assert "engine_active" in standby.log_text()
    standby.stop()
