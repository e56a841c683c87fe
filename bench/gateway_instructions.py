"""CPU instructions the gateway process executes per order, counted by valgrind (cachegrind), per configuration.

    python -m bench.gateway_instructions [--variants group,group-nofunds,group-noledger] [--rate 100]
                                         [--seconds 4,14] [--cross-fraction 0.1]

On a shared 2-core machine a wall-clock comparison of two gateway configurations is only as good as the quietest
minute; an instruction count is not moved by the neighbours. Each variant (a ``bench.gateway_bench`` target
without its ``gw-`` prefix) is started under cachegrind twice and offered ``--rate`` orders/s by the usual load
generator for a short and a long time: (instructions(long) - instructions(short)) / (orders(long) -
orders(short)) is the cost of one order, with start-up, warm-up, idle polling at that rate and shutdown cancelled
out. ``--cross-fraction`` of the orders trade (fills, settlement and fees included). Under valgrind the gateway
runs ~50 times slower, so the rate stays low; the figure is per order, not a throughput.
"""

from __future__ import annotations

import argparse
import platform
import re
import tempfile
from pathlib import Path

from bench import run_floor_vs as rfv
from bench.gateway_bench import GATEWAY_CMD, gateway_config


def instructions_and_orders(variant: str, seconds: float, ns: argparse.Namespace, tmp: Path) -> tuple[int, int]:
    out = tmp / f"cachegrind.{variant}.{seconds}"
    args = rfv.parse_args([])
    args.rates, args.reps, args.seconds, args.warmup = [str(ns.rate)], 1, seconds, 1.0
    args.sessions, args.cross_fraction, args.password_file = 4, ns.cross_fraction, tmp / "passwords.txt"
    args.target_cmd = f"valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file={out} {GATEWAY_CMD}"
    args.target_name, args.target_config = f"gw-{variant}", gateway_config(tmp, variant)
    args.start_timeout = args.stop_timeout = 300.0
    _, runs, _ = rfv.measure(args)
    summary = re.search(r"^summary: (\d+)", out.read_text(), re.MULTILINE)
    if not summary:
        raise RuntimeError(f"no summary line in {out}")
    orders = runs[0]["orders_sent"]
    assert isinstance(orders, int)
    return int(summary.group(1)), orders


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="group,group-nofunds,group-noledger")
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--seconds", default="4,14", help="the short and the long run")
    parser.add_argument("--cross-fraction", type=float, default=0.1)
    ns = parser.parse_args(argv)
    short, long = (float(s) for s in ns.seconds.split(","))
    per_order: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="gw-instr-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "passwords.txt").write_text("".join(f"CLIENT{n}=pass{n}\n" for n in range(1, 5)))
        for variant in ns.variants.split(","):
            ir_short, orders_short = instructions_and_orders(variant, short, ns, tmp)
            ir_long, orders_long = instructions_and_orders(variant, long, ns, tmp)
            per_order[variant] = (ir_long - ir_short) / (orders_long - orders_short)
            print(f"{variant}: {per_order[variant]:,.0f} instructions per order ({orders_long - orders_short} orders)")
    first = next(iter(per_order))
    print()
    print(f"Machine: {platform.machine()}, Python {platform.python_version()}, valgrind cachegrind")
    print(f"Command: python -m bench.gateway_instructions --variants {ns.variants} --rate {ns.rate} "
          f"--seconds {ns.seconds} --cross-fraction {ns.cross_fraction}")  # fmt: skip
    print()
    print(f"| gateway | instructions per order | vs {first} |")
    print("|---|---|---|")
    for variant, count in per_order.items():
        print(f"| gw-{variant} | {count:,.0f} | {count / per_order[first]:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
