"""Recovery time: rebuilding the engine from a journal of N commands, with and without a snapshot.

    python -m bench.recovery_bench [--commands 1000000] [--snapshot-at 0.9] [--runs 3]

The journal holds the engine benchmark's standard mix (bench/engine_bench.py), written with the real
:class:`gateway.journal.Journal`. Two recoveries are timed with :func:`gateway.journal.recover`, the function the
gateway runs before it accepts a logon: from the journal alone, and from a snapshot taken after
``--snapshot-at`` x N commands plus the journal tail. Both must rebuild exactly the engine that wrote the journal.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

from bench.engine_bench import INSTRUMENT, standard_mix
from engine import MatchingEngine, SelfTradePrevention
from engine.snapshot import dump_state
from gateway.journal import Durability, Journal, recover, write_snapshot


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=1_000_000)
    parser.add_argument("--snapshot-at", type=float, default=0.9)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    commands = standard_mix(args.commands, args.seed)
    cut = int(args.commands * args.snapshot_at)
    with tempfile.TemporaryDirectory(prefix="recovery-bench-") as tmp_name:
        tmp = Path(tmp_name)
        journal_path, snaps = tmp / "commands.journal", tmp / "snapshots"
        live = MatchingEngine([INSTRUMENT])
        journal = Journal(journal_path, Durability.GROUP)
        t0 = time.perf_counter()
        snapshot_s = 0.0
        for i, cmd in enumerate(commands):
            journal.append(cmd)
            live.process(cmd)
            if i + 1 == cut:
                journal.commit()
                s0 = time.perf_counter()
                write_snapshot(live, snaps, journal.offset)
                snapshot_s = time.perf_counter() - s0
        journal.close()
        write_s = time.perf_counter() - t0
        expected = dump_state(live)
        resting = sum(lv.count for side in (live.books["BENCH"].bids, live.books["BENCH"].asks) for lv in side.values())
        del commands, live
        gc.collect()
        size_mb = journal_path.stat().st_size / 1e6
        snap_mb = sum(p.stat().st_size for p in snaps.glob("*.json")) / 1e6
        print(json.dumps({"commands": args.commands, "journal_mb": round(size_mb, 1), "snapshot_mb": round(snap_mb, 1),
                          "write_and_apply_s": round(write_s, 2), "snapshot_write_s": round(snapshot_s, 2),
                          "orders_known": len(expected["orders"]), "resting": resting}), flush=True)  # fmt: skip
        timings: dict[str, list[float]] = {"journal only": [], "snapshot + tail": []}
        for _ in range(args.runs):
            for name, directory in (("journal only", tmp / "none"), ("snapshot + tail", snaps)):
                gc.collect()
                t0 = time.perf_counter()
                engine, report = recover(journal_path, directory, (INSTRUMENT,), SelfTradePrevention.CANCEL_RESTING)
                elapsed = time.perf_counter() - t0
                assert report.error is None
                assert dump_state(engine) == expected, f"{name}: recovered state differs"
                timings[name].append(elapsed)
                print(json.dumps({"mode": name, "seconds": round(elapsed, 2), "replayed": report.replayed}), flush=True)
                del engine
    print()
    print(f"Machine: {platform.machine()}, Python {platform.python_version()}")
    print(f"Command: python -m bench.recovery_bench --commands {args.commands} --snapshot-at {args.snapshot_at}")
    print()
    print("| recovery of the journal | seconds, median (min to max) | commands replayed |")
    print("|---|---|---|")
    replayed = {"journal only": args.commands, "snapshot + tail": args.commands - cut}
    for name, values in timings.items():
        spread = f"{min(values):.2f} to {max(values):.2f}"
        print(f"| {name} | {statistics.median(values):.2f} ({spread}) | {replayed[name]:,} |")
    print(
        f"\nJournal {size_mb:.0f} MB; snapshot {snap_mb:.0f} MB after {cut:,} commands; both recoveries rebuilt "
        "exactly the engine that wrote the journal (compared state for state)."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
