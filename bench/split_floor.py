"""Does FIX work spread over two processes go faster on this machine? The floor with the gateway's settings.

    python -m bench.split_floor [--reps 3] [--seconds 4]

Each rep measures, in turn, ``bench/floor.py`` with the gateway's session settings (FileStore, the venue
dictionary) as one process with 4 sessions under one load generator, then as two processes with 2 sessions each,
each under its own load generator (``bench/loadgen.py``, max rate, 16 orders in flight per session); the two
generators' throughputs are added. Why: a gateway can only beat the single-process floor by using the second core
for FIX work, and on a 2-core machine the load generators need CPU too.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

from bench import run_floor_vs as rfv

DICTIONARY = rfv.REPO / "fix_specs" / "FIX44-venue.xml"


def start_floor(port: int, sessions: str) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "bench.floor", "--port", str(port), "--sessions", sessions, "--file-store",
            "--dictionary", str(DICTIONARY)]  # fmt: skip
    proc = subprocess.Popen(argv, cwd=rfv.REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rfv.wait_for_port(port, proc, 30)
    return proc


def start_loadgen(port: int, first: int, sessions: int, seconds: float) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "bench.loadgen", "--port", str(port), "--sessions", str(sessions), "--first",
            str(first), "--rate", "max", "--in-flight", "16", "--seconds", str(seconds), "--warmup", "1"]  # fmt: skip
    return subprocess.Popen(argv, cwd=rfv.REPO, stdout=subprocess.PIPE, text=True)


def orders_per_s(proc: subprocess.Popen[str]) -> float:
    out, _ = proc.communicate(timeout=120)
    return float(json.loads([line for line in out.splitlines() if line.startswith("{")][-1])["orders_per_s"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args(argv)
    one: list[float] = []
    two: list[float] = []
    for rep in range(1, args.reps + 1):
        port = rfv.free_port()
        floor = start_floor(port, "CLIENT1,CLIENT2,CLIENT3,CLIENT4")
        try:
            one.append(orders_per_s(start_loadgen(port, 1, 4, args.seconds)))
        finally:
            rfv.stop_target(floor, 10)
        ports = rfv.free_port(), rfv.free_port()
        floors = [start_floor(ports[0], "CLIENT1,CLIENT2"), start_floor(ports[1], "CLIENT3,CLIENT4")]
        try:
            loads = [start_loadgen(ports[0], 1, 2, args.seconds), start_loadgen(ports[1], 3, 2, args.seconds)]
            two.append(sum(orders_per_s(load) for load in loads))
        finally:
            for proc in floors:
                rfv.stop_target(proc, 10)
        print(f"rep {rep}: one process {one[-1]:,.0f} orders/s, two processes {two[-1]:,.0f}", file=sys.stderr)
    a, b = statistics.median(one), statistics.median(two)
    print(f"| layout | orders/s (median of {args.reps}) |\n|---|---|")
    print(f"| one process, 4 sessions | {a:,.0f} |\n| two processes, 2 sessions each | {b:,.0f} |")
    print(f"\nratio two / one: {b / a:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
