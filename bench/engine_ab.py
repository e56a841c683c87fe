"""The engine benchmark's standard mix through the engines of two source trees, interleaved in one session.

    git archive BASE | tar -x -C /tmp/base            # the tree to compare against (any commit)
    python -m bench.engine_ab /tmp/base . [--commands 500000] [--rounds 4] [--ledgers none,funds-checks]
    python -m bench.engine_ab /tmp/base . --instructions [--commands 50000]

Each round runs one subprocess per tree (ABBA order: A B, then B A, so drift of the machine falls on both), each
generating the same seeded mix with its own ``bench.engine_bench`` and timing it through its own engine, once per
ledger mode. Prints each run as a JSON line, then the medians and the ratio B / A per mode: on a shared machine only
ratios measured side by side mean anything. ``--cpu`` times by the children's CPU time (``time.process_time``).

``--instructions`` counts instead of timing, which no other load on the machine disturbs: each child runs under
``valgrind --tool=cachegrind`` (PYTHONHASHSEED=0), once generating the mix only and once generating it and running
it through a fresh engine; the difference of the two instruction counts, divided by the commands, is what the engine
spends per command (the collector runs as in the timed benchmark).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = """
import json, sys, time
if {cpu}:  # time the engine by the process's CPU time: other load on the machine inflates it far less than wall time
    time.perf_counter = time.process_time
from bench.engine_bench import standard_mix, throughput
commands = standard_mix({commands}, 7)
print(json.dumps({{m: throughput(commands, m) for m in {ledgers!r}}}))
"""
COUNTED = """
from bench.engine_bench import standard_mix, throughput
commands = standard_mix({commands}, 7)
if {mode!r}:
    throughput(commands, {mode!r})
"""


def run(tree: Path, commands: int, ledgers: list[str], cpu: bool = False) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree.resolve())}
    code = CHILD.format(commands=commands, ledgers=ledgers, cpu=cpu)
    done = subprocess.run([sys.executable, "-c", code], cwd="/", env=env, capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def instructions(tree: Path, commands: int, mode: str) -> int:
    """Instructions (cachegrind's I refs) of one child: the mix generated, and run through an engine if ``mode``."""
    env = {**os.environ, "PYTHONPATH": str(tree.resolve()), "PYTHONHASHSEED": "0"}
    argv = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null", sys.executable,
            "-c", COUNTED.format(commands=commands, mode=mode)]  # fmt: skip
    done = subprocess.run(argv, cwd="/", env=env, capture_output=True, text=True, check=True)
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    assert found is not None, done.stderr[-2000:]
    return int(found.group(1).replace(",", ""))


def count(args: argparse.Namespace, ledgers: list[str]) -> int:
    print("| ledger | A instructions per command | B instructions per command | B / A |")
    print("|---|---|---|---|")
    base = {name: instructions(tree, args.commands, "") for name, tree in (("A", args.a), ("B", args.b))}
    for m in ledgers:
        per = {name: (instructions(tree, args.commands, m) - base[name]) / args.commands
               for name, tree in (("A", args.a), ("B", args.b))}  # fmt: skip
        print(f"| {m} | {per['A']:,.0f} | {per['B']:,.0f} | {per['B'] / per['A']:.3f} |", flush=True)
    print(f"\nCommand: python -m bench.engine_ab A B --instructions --commands {args.commands}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("a", type=Path, help="source tree A (the base)")
    p.add_argument("b", type=Path, help="source tree B (the change)")
    p.add_argument("--commands", type=int, default=500_000)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--ledgers", default="none,funds-checks")
    p.add_argument("--instructions", action="store_true", help="count instructions under cachegrind, not time")
    p.add_argument("--cpu", action="store_true", help="time by the process's CPU time instead of wall time")
    args = p.parse_args(argv)
    ledgers = args.ledgers.split(",")
    if args.instructions:
        return count(args, ledgers)
    rates: dict[str, dict[str, list[float]]] = {"A": {m: [] for m in ledgers}, "B": {m: [] for m in ledgers}}
    for r in range(args.rounds):
        order = ("A", "B") if r % 2 == 0 else ("B", "A")
        for name in order:
            got = run(args.a if name == "A" else args.b, args.commands, ledgers, args.cpu)
            for m, v in got.items():
                rates[name][m].append(v)
            print(json.dumps({"round": r + 1, "tree": name, **{m: round(v) for m, v in got.items()}}), flush=True)
    print()
    cpu = " --cpu" if args.cpu else ""
    print(f"Command: python -m bench.engine_ab A B --commands {args.commands} --rounds {args.rounds}{cpu}")
    print()
    print("| ledger | A commands/s (median, min to max) | B commands/s | B / A (median of rounds) |")
    print("|---|---|---|---|")
    for m in ledgers:
        a, b = rates["A"][m], rates["B"][m]
        ratio = statistics.median(y / x for x, y in zip(a, b, strict=True))
        print(f"| {m} | {statistics.median(a):,.0f} ({min(a):,.0f} to {max(a):,.0f}) | "
              f"{statistics.median(b):,.0f} ({min(b):,.0f} to {max(b):,.0f}) | {ratio:.3f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
