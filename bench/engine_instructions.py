"""CPU instructions per engine command, counted by valgrind (callgrind): a figure the machine's noise cannot move.

    python -m bench.engine_instructions [--commands 30000] [--seed 7] [--ledgers none,no-funds-checks,funds-checks]

For each ledger mode the standard mix of ``bench.engine_bench`` is generated twice under callgrind: once only
generated, once generated and replayed through a fresh engine. The difference of the two instruction counts,
divided by the number of commands, is the engine's cost per command (generation cancels out). Wall-clock
throughput on a shared 2-core machine drifts by ±15% between runs; this count repeats to a fraction of a percent,
so small ratios (the ledger's, the funds checks') are read here and confirmed by ``engine_bench --ledger compare``.
Needs ``valgrind`` (Debian package ``valgrind``); each mode takes about a minute at 30,000 commands.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.engine_bench import FREEZE_EVERY, LEDGERS, make_engine, standard_mix


def child(mode: str, commands: int, seed: int, replay: bool) -> None:
    """What runs under valgrind: generate the mix and, if ``replay``, process it the way the benchmark does."""
    mix = standard_mix(commands, seed)
    if replay:
        process = make_engine(mode).process
        for i, command in enumerate(mix):
            process(command)
            if not i % FREEZE_EVERY:
                gc.freeze()


def instructions(mode: str, commands: int, seed: int, replay: bool, tmp: Path) -> int:
    out = tmp / f"callgrind.{mode}.{int(replay)}"
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-m", __spec__.name]
    cmd += ["--child", mode, "--commands", str(commands), "--seed", str(seed)] + (["--replay"] if replay else [])
    env = {**os.environ, "PYTHONHASHSEED": "0"}  # the same string hashes (and dict layouts) in both runs
    log = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stderr
    found = re.search(r"Collected : (\d+)", log)
    if not found:
        raise RuntimeError(f"no instruction count in callgrind's output:\n{log[-2000:]}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=30_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--ledgers", default=",".join(LEDGERS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--replay", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.commands, args.seed, args.replay)
        return 0
    per_command: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="engine-instr-") as tmp:
        for mode in args.ledgers.split(","):
            generated = instructions(mode, args.commands, args.seed, False, Path(tmp))
            replayed = instructions(mode, args.commands, args.seed, True, Path(tmp))
            per_command[mode] = (replayed - generated) / args.commands
            print(f"{mode}: {per_command[mode]:,.0f} instructions per command", file=sys.stderr, flush=True)
    first = next(iter(per_command.values()))
    print(f"Machine: {platform.machine()}, Python {platform.python_version()}, valgrind callgrind")
    print(f"Command: python -m bench.engine_instructions --commands {args.commands} --seed {args.seed}")
    print()
    print(f"| engine | instructions per command | vs {next(iter(per_command))} | throughput ratio (inverse) |")
    print("|---|---|---|---|")
    for mode, count in per_command.items():
        print(f"| {mode} | {count:,.0f} | {count / first:.3f} | {first / count:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
