"""Order flow beside a storm of wrong logons: order -> ExecutionReport latency with and without the storm.

    python -m bench.logon_storm_bench [--reps 3] [--seconds 10] [--rate 1000] [--storm-rate 100] [--tls off,on]

For each rep and each transport (plain, TLS), one gateway (the demo configuration, group commit, any source address
allowed) is started; ``bench/loadgen.py`` offers ``--rate`` orders/s over 2 sessions from 127.0.0.1 twice, once
alone and once while ``bench/logon_storm.py`` sends ``--storm-rate`` wrong Logons a second from 127.0.0.2 (new
connection each, TLS handshake included under TLS, CompIDs CLIENT5..9 and an unknown one in turn); the order of the
two alternates between reps. Reported: medians of order -> first ExecutionReport p50/p99/p99.9, the gateway's CPU,
the storm's achieved rate, and how the venue answered it (refusals by reason from its metrics, key derivations).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import run_floor_vs as rfv
from bench.gateway_bench import GATEWAY_CMD, gateway_config

REPO = rfv.REPO


def metrics_text(port: int) -> str:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return str(r.read().decode())


def samples(text: str, name: str) -> dict[str, float]:
    """label text -> value of every sample of ``name``."""
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            head, _, value = line.rpartition(" ")
            out[head[len(name) :]] = float(value)
    return out


def bench_config(tmp: Path, tls: bool, pki: Any) -> Path:
    path = gateway_config(tmp, "group")
    text = path.read_text().replace('allowed_remote_addresses = ["127.0.0.1"]', "allowed_remote_addresses = []")
    if tls:
        text += f'\n[tls]\nenabled = true\ncertificate = "{pki.server_cert}"\nprivate_key = "{pki.server_key}"\n'
    path = tmp / f"storm-{'tls' if tls else 'plain'}.toml"
    path.write_text(text)
    return path


def run_once(ns: argparse.Namespace, tmp: Path, tls: bool, pki: Any, order: list[bool]) -> list[dict[str, Any]]:
    port = rfv.free_port()
    workdir = Path(tempfile.mkdtemp(prefix="storm-", dir=tmp))
    config = bench_config(tmp, tls, pki)
    target = rfv.command_target("gateway", GATEWAY_CMD, port, [], config, workdir)
    text = (workdir / config.name).read_text()
    section = text[text.index("[metrics]") :]
    metrics_port = int(section.split("port = ", 1)[1].split()[0])
    log = (workdir / "gateway.log").open("wb")
    proc = subprocess.Popen(target.argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    args = rfv.parse_args([])
    args.sessions, args.seconds, args.warmup, args.password_file = 2, ns.seconds, 1.0, ns.passwords
    if tls:
        args.loadgen_extra = ["--tls-ca", str(pki.ca)]
    runs = []
    try:
        rfv.wait_for_port(port, proc, 30)
        rfv.wait_for_port(metrics_port, proc, 30)  # it may open a moment after the order-entry port
        for storm in order:
            before = metrics_text(metrics_port)
            storm_proc = None
            if storm:
                cmd = [sys.executable, "-m", "bench.logon_storm", "--port", str(port), "--rate", str(ns.storm_rate),
                       "--seconds", str(ns.seconds + 3)]  # fmt: skip
                if tls:
                    cmd += ["--tls-ca", str(pki.ca)]
                storm_proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)
                time.sleep(1.0)  # the storm is under way before the load generator logs on
            cpu0, t0 = rfv.cpu_seconds(proc.pid), time.monotonic()
            result = rfv.run_loadgen(args, port, str(ns.rate))
            cpu, wall = rfv.cpu_seconds(proc.pid) - cpu0, time.monotonic() - t0
            storm_out: dict[str, Any] = {}
            if storm_proc is not None:
                out, _ = storm_proc.communicate(timeout=ns.seconds + 30)
                storm_out = json.loads(out.strip().splitlines()[-1])
            after = metrics_text(metrics_port)
            refusals = samples(after, "fixgw_fix_logon_failures_total")
            refusals = {
                k: v - samples(before, "fixgw_fix_logon_failures_total").get(k, 0.0) for k, v in refusals.items()
            }
            hashes = sum(samples(after, "fixgw_logon_verifications_total").values()) - sum(
                samples(before, "fixgw_logon_verifications_total").values()
            )
            runs.append({
                "tls": tls, "storm": storm, "latency_us": result["latency_us"], "orders_per_s": result["orders_per_s"],
                "gateway_cpu_pct": round(100 * cpu / wall, 1), "storm_out": storm_out,
                "refusals": {k: v for k, v in refusals.items() if v}, "key_derivations": hashes,
            })  # fmt: skip
            lat = result["latency_us"]
            print(f"  {'TLS' if tls else 'plain'} {'storm' if storm else 'quiet'}: p50 {lat['p50']} p99 {lat['p99']} "
                  f"p99.9 {lat['p99.9']} µs, gateway CPU {100 * cpu / wall:.0f}%, storm {storm_out.get('per_s')}/s",
                  file=sys.stderr, flush=True)  # fmt: skip
    finally:
        rfv.stop_target(proc, 20)
        log.close()
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=1000, help="orders/s offered by the load generator")
    parser.add_argument("--storm-rate", type=float, default=100.0, help="wrong Logons per second")
    parser.add_argument("--tls", default="off,on", help="transports to measure: off, on or both")
    parser.add_argument("--json-out", type=Path)
    ns = parser.parse_args(argv)
    from tests.tls_certs import make_pki

    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="storm-bench-") as tmp_name:
        tmp = Path(tmp_name)
        pki = make_pki(tmp / "pki")
        ns.passwords = tmp / "passwords.txt"
        ns.passwords.write_text("".join(f"CLIENT{n}=pass{n}\n" for n in range(1, 10)))
        for rep in range(ns.reps):
            order = [False, True] if rep % 2 == 0 else [True, False]
            for tls in (t == "on" for t in ns.tls.split(",")):
                print(f"rep {rep + 1}/{ns.reps}: {'TLS' if tls else 'plain'}", file=sys.stderr, flush=True)
                for run in run_once(ns, tmp, tls, pki, order):
                    run["rep"] = rep + 1
                    runs.append(run)
    if ns.json_out:
        ns.json_out.write_text("\n".join(json.dumps(r) for r in runs) + "\n")
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"Command: python -m bench.logon_storm_bench {' '.join(argv if argv is not None else sys.argv[1:])}")
    print()
    print(f"Medians of {ns.reps} runs; {ns.rate} orders/s offered over 2 sessions; latency order -> first ER (µs).")
    print()
    print("| transport | storm | p50 | p99 | p99.9 | gateway CPU % | storm logons/s | key derivations | refusals |")
    print("|---|---|---|---|---|---|---|---|---|")
    for tls in (t == "on" for t in ns.tls.split(",")):
        for storm in (False, True):
            mine = [r for r in runs if r["tls"] == tls and r["storm"] == storm]
            reasons: dict[str, list[float]] = {}
            for r in mine:
                for k, v in r["refusals"].items():
                    reasons.setdefault(k.strip("{}").removeprefix('reason="').rstrip('"'), []).append(v)
            refused = ", ".join(f"{k} {_med(v):.0f}" for k, v in sorted(reasons.items())) or "-"
            print(
                f"| {'TLS' if tls else 'plain'} | {'yes' if storm else 'no'} "
                f"| {_fmt(_med([r['latency_us']['p50'] for r in mine]))} "
                f"| {_fmt(_med([r['latency_us']['p99'] for r in mine]))} "
                f"| {_fmt(_med([r['latency_us']['p99.9'] for r in mine]))} "
                f"| {_fmt(_med([r['gateway_cpu_pct'] for r in mine]))} "
                f"| {_fmt(_med([r['storm_out'].get('per_s') for r in mine if storm]), 0)} "
                f"| {_fmt(_med([r['key_derivations'] for r in mine]), 0)} | {refused} |"
            )
    return 0


def _med(values: list[Any]) -> float | None:
    values = sorted(v for v in values if v is not None)
    return values[len(values) // 2] if values else None


def _fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


if __name__ == "__main__":
    raise SystemExit(main())
