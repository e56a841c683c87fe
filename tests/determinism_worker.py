"""One side of the cross-process determinism test (tests/test_determinism.py), run in a process of its own.

    python -m tests.determinism_worker write JOURNAL OUT --seed S --commands N --stp MODE
    python -m tests.determinism_worker replay JOURNAL OUT --stp MODE [--config VENUE_TOML]

``write`` drives a fresh engine the way the gateway does (each command appended to a
:class:`gateway.journal.Journal` before the engine runs it, group commits in between) with a random command stream
over the test instruments; ``replay`` rebuilds an engine from a journal (the test instruments, or a venue config's
instruments and self-trade prevention). Both write into OUT:

* ``state.json``: ``orjson.dumps(dump_state(engine))``; for ``replay`` also ``snapshot.json``, the bytes the
  gateway's own snapshot of the same state would have (``journal_offset`` added);
* ``events.json``: every event of every command, serialised field by field; ``executions.json``: the
  ExecutionReports among them as ``[ExecID, OrderID, ClOrdID, ExecType]`` (what the gateway's audit trail records);
* ``hash.txt``: ``hash()`` of a fixed string, which shows that the process ran with its own hash seed.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path
from typing import Any

import orjson

from engine import Event, Execution, MatchingEngine, SelfTradePrevention
from engine.codec import decode
from engine.snapshot import dump_state
from gateway.config import load_config
from gateway.journal import Durability, Journal, ScanResult, read_records
from tests.engine_helpers import INSTRUMENTS, client_view

COMMIT_EVERY = 7  # commands per group commit, as in a busy loop turn


Recorded = list[Any]


def record(events: list[Event], serialised: Recorded, executions: Recorded) -> None:
    for e in events:
        serialised.append(client_view(e))
        if isinstance(e, Execution):
            executions.append([e.seq, e.order.order_id, e.clordid, e.exec_type.value])


def write(
    journal_path: Path, seed: int, count: int, stp: SelfTradePrevention
) -> tuple[MatchingEngine, Recorded, Recorded]:
    from tests.test_engine_properties import _BYTES, _decode  # the property tests' rich random command streams

    commands = _decode(random.Random(seed).randbytes(count * _BYTES), stp)
    engine = MatchingEngine(INSTRUMENTS, stp)
    journal = Journal(journal_path, Durability.GROUP)
    events: Recorded = []
    executions: Recorded = []
    for i, cmd in enumerate(commands, 1):
        journal.append(cmd)
        record(engine.process(cmd), events, executions)
        if i % COMMIT_EVERY == 0:
            journal.commit()
    journal.close()
    return engine, events, executions


def replay(journal_path: Path, engine: MatchingEngine, out: Path) -> tuple[Recorded, Recorded]:
    scan = ScanResult()
    events: Recorded = []
    executions: Recorded = []
    for _, payload in read_records(journal_path, 0, scan):
        record(engine.process(decode(payload)), events, executions)
    if scan.error is not None:
        raise SystemExit(f"journal damaged: {scan.error}")
    (out / "snapshot.json").write_bytes(orjson.dumps({**dump_state(engine), "journal_offset": scan.good_end}))
    return events, executions


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.determinism_worker")
    p.add_argument("mode", choices=["write", "replay"])
    p.add_argument("journal", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--commands", type=int, default=2000)
    p.add_argument("--stp", default=SelfTradePrevention.CANCEL_RESTING.value)
    p.add_argument("--config", type=Path, help="replay with this venue config's instruments and STP policy")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    stp = SelfTradePrevention(args.stp)
    if args.mode == "write":
        engine, events, executions = write(args.journal, args.seed, args.commands, stp)
    else:
        if args.config is not None:
            cfg = load_config(args.config)
            engine = MatchingEngine(cfg.instruments, cfg.self_trade_prevention)
        else:
            engine = MatchingEngine(INSTRUMENTS, stp)
        events, executions = replay(args.journal, engine, args.out)
    (args.out / "state.json").write_bytes(orjson.dumps(dump_state(engine)))
    (args.out / "events.json").write_bytes(orjson.dumps(events))
    (args.out / "executions.json").write_bytes(orjson.dumps(executions))
    (args.out / "hash.txt").write_text(str(hash("determinism")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
