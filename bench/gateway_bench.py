"""Order entry end to end: the gateway against the QuickFIX floor, and the journal's durability policies, in one run.

    python -m bench.gateway_bench [--reps 3] [--seconds 6] [--rates 1000,5000,max] [--targets ...]

Each target is started in turn, ``bench/loadgen.py`` (its own process, 4 sessions, 16 orders in flight per
session at ``max``) is run against it at each offered rate, and the target is stopped; the whole sequence is
repeated ``--reps`` times so that every target sees the same machine conditions, and medians are reported.

Targets:

* ``floor``        bench/floor.py: a bare acceptor answering each order with a fixed ExecutionReport (MemoryStore,
                   no dictionary): what the binding can do at all;
* ``floor-same``   the same with the gateway's session settings (FileStore, the venue dictionary): the floor the
                   gateway's requirements allow;
* ``gw-off``       the gateway, journal off;
* ``gw-group``     the gateway, group commit (the shipped default);
* ``gw-fsync``     the gateway, fsync per command;
* ``gw-group-nofunds``   group commit with the ledger's funds checks off (``risk.funds_checks = false``: no holds);
* ``gw-group-noledger``  group commit with no ledger at all (no ``[assets]``: matching only, no money);
* ``gw-group-tls``       group commit with TLS on the FIX ports (``[tls]``, throwaway certificates made for the run:
                         an ECDSA P-256 server certificate, TLS 1.3 negotiated); the load generator connects over TLS
                         (the handshakes happen before the measured window).

Every account is funded far beyond what the load spends and no pre-trade limit is set, so that every order is
measured the same way with or without the ledger.

The gateway runs the demo configuration with its own data directory, cancel-on-disconnect off (so the load
generator's logout does not turn into a mass cancel inside the CPU sample) and the default logging.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

from bench import run_floor_vs as rfv

REPO = rfv.REPO
GATEWAY_CMD = "{python} -m gateway serve --config {config}"
FLOOR_SAME_CMD = (
    "{python} -m bench.floor --port {port} --sessions {sessions} --file-store "
    f"--dictionary {REPO / 'fix_specs' / 'FIX44-venue.xml'}"
)
TARGETS = ("floor", "floor-same", "gw-off", "gw-group", "gw-fsync")
LEDGER_VARIANTS = ("nofunds", "noledger")  # target suffixes: gw-group-nofunds, gw-group-noledger
TLS_VARIANT = "tls"  # gw-group-tls


def gateway_config(tmp: Path, variant: str) -> Path:
    """The config of target ``gw-<variant>``: ``<durability>`` or ``<durability>-nofunds|noledger``."""
    from gateway.config import DEFAULT_CONFIG
    from tests.tls_certs import make_pki
    from tools.bench import gateway_template

    durability, _, ledger = variant.partition("-")
    text = gateway_template(DEFAULT_CONFIG.read_text())
    text = text.replace('durability = "group"', f'durability = "{durability}"')
    text = text.replace("cancel_on_disconnect = true", "cancel_on_disconnect = false")
    if ledger == "nofunds":
        text = text.replace("funds_checks = true", "funds_checks = false")
    elif ledger == "noledger":  # without an [assets] table the venue keeps no ledger
        text = text.replace("\n[assets]", "\n[no_assets]")
    elif ledger == TLS_VARIANT:
        pki_dir = tmp / "pki"
        if not (pki_dir / "ca.pem").exists():
            make_pki(pki_dir)  # throwaway certificates, once per run
        text += f'\n[tls]\nenabled = true\ncertificate = "{pki_dir}/server.pem"\nprivate_key = "{pki_dir}/server.key"\n'
    path = tmp / f"gateway-{variant}.toml"
    path.write_text(text)
    return path


def loadgen_args(ns: argparse.Namespace, passwords: Path) -> argparse.Namespace:
    base = rfv.parse_args([])
    base.rates, base.reps, base.seconds, base.warmup = ns.rates, 1, ns.seconds, ns.warmup
    base.sessions, base.in_flight, base.password_file = 4, 16, passwords
    return base


def run_target(name: str, ns: argparse.Namespace, tmp: Path, passwords: Path) -> list[dict[str, object]]:
    args = loadgen_args(ns, passwords)
    if name == "floor":
        args.target_cmd = None
    elif name == "floor-same":
        args.target_cmd, args.target_name = FLOOR_SAME_CMD, name
    else:
        args.target_cmd, args.target_name = GATEWAY_CMD, name
        args.target_config = gateway_config(tmp, name.removeprefix("gw-"))
        if name.endswith("-" + TLS_VARIANT):
            args.loadgen_extra = ["--tls-ca", str(tmp / "pki" / "ca.pem")]
    try:
        _, runs, ending = rfv.measure(args)
    except RuntimeError as exc:  # e.g. still overloaded from the previous rate: record the gap, go on
        print(f"{name}: {str(exc)[:300]}", file=sys.stderr, flush=True)
        return []
    for run in runs:
        run["target"] = name
        run["ending"] = ending
    return runs


median = rfv._median  # median of one figure across runs (None if no run has it)


def fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def summary(runs: list[dict[str, object]], targets: list[str], rates: list[str], reps: int) -> str:
    rows = [
        f"Medians of {reps} runs per cell; latency is order sent -> first ExecutionReport received (µs).",
        "",
        "| target | offered | orders/s | p50 | p99 | p99.9 | target CPU µs/order | other CPU % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for target in targets:
        for rate in rates:
            mine = [r for r in runs if r["target"] == target and r["rate"] == rate]
            rows.append(
                f"| {target} | {rate} | {fmt(median(mine, 'orders_per_s'))} | {fmt(median(mine, 'latency_us', 'p50'))} "
                f"| {fmt(median(mine, 'latency_us', 'p99'))} | {fmt(median(mine, 'latency_us', 'p99.9'))} "
                f"| {fmt(median(mine, 'target_cpu_us_per_order'))} | {fmt(median(mine, 'other_cpu_pct'))} |"
            )
    if "max" in rates:
        best = {
            t: median([r for r in runs if r["target"] == t and r["rate"] == "max"], "orders_per_s") for t in targets
        }
        rows += ["", "| ratio of maximum throughput | value |", "|---|---|"]
        for gw in (t for t in targets if t.startswith("gw-")):
            for floor in (t for t in targets if t.startswith("floor")):
                if best.get(gw) and best.get(floor):
                    rows.append(f"| {gw} / {floor} | {best[gw] / best[floor]:.2f} |")  # type: ignore[operator]
        tls = f"gw-group-{TLS_VARIANT}"
        if best.get(tls) and best.get("gw-group"):
            rows.append(f"| gw-group-tls / gw-group | {best[tls] / best['gw-group']:.2f} |")  # type: ignore[operator]
        if best.get("gw-off") and best.get("gw-group"):
            rows.append(f"| gw-group / gw-off | {best['gw-group'] / best['gw-off']:.2f} |")  # type: ignore[operator]
        for variant in LEDGER_VARIANTS:
            other = f"gw-group-{variant}"
            if best.get(other) and best.get("gw-group"):
                rows.append(f"| gw-group / {other} | {best['gw-group'] / best[other]:.2f} |")  # type: ignore[operator]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rates", default="1000,5000,max")
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--json-out", type=Path)
    ns = parser.parse_args(argv)
    ns.rates = ns.rates.split(",")
    targets = ns.targets.split(",")
    runs: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="gw-bench-") as tmp_name:
        tmp = Path(tmp_name)
        passwords = tmp / "passwords.txt"
        passwords.write_text("".join(f"CLIENT{n}=pass{n}\n" for n in range(1, 10)))
        for rep in range(ns.reps):
            for target in targets:
                print(f"rep {rep + 1}/{ns.reps}: {target}", file=sys.stderr, flush=True)
                for run in run_target(target, ns, tmp, passwords):
                    run["rep"] = rep + 1
                    runs.append(run)
    if ns.json_out:
        ns.json_out.write_text("\n".join(json.dumps(r) for r in runs) + "\n")
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"Command: python -m bench.gateway_bench {' '.join(argv if argv is not None else sys.argv[1:])}")
    print()
    print(summary(runs, targets, ns.rates, ns.reps))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
