"""``fixgw bench``: run the benchmark scripts of ``bench/`` with this interpreter, passing extra arguments through.

    fixgw bench engine [ARGS...]    python -m bench.engine_bench ARGS   (the matching engine alone)
    fixgw bench gateway [ARGS...]   python -m bench.run_floor_vs ARGS, aimed at the real gateway
    fixgw bench floor [ARGS...]     python -m bench.run_floor_vs ARGS   (the bare QuickFIX acceptor)
    fixgw bench order-entry [ARGS...]  python -m bench.gateway_bench ARGS (floors and gateway per durability)
    fixgw bench recovery [ARGS...]  python -m bench.recovery_bench ARGS (journal and snapshot recovery time)
    fixgw bench md [ARGS...]        python -m bench.md_bench ARGS      (market-data fan-out)
    fixgw bench soak [ARGS...]      python -m bench.soak ARGS          (hours of mixed load: RSS, latency, losses)
    fixgw bench storm [ARGS...]     python -m bench.storm ARGS         (many sessions reconnecting at once)
    fixgw bench auction [ARGS...]   python -m bench.auction_bench ARGS (pre-open entry and the opening auction)
    fixgw bench cluster [ARGS...]   python -m bench.cluster_bench ARGS (the multi-process venue against one process)

For ``gateway``, unless ARGS already name a ``--target-cmd``, the driver is given a gateway target: the shipped demo
config turned into a template (its own data directory and free ports, filled in by the driver), the demo
passwords, and ``{python} -m gateway serve --config {config}``.
"""

from __future__ import annotations

import argparse
import importlib.util
import shlex
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from tools.support import CLIError

MODULES = {
    "engine": "bench.engine_bench",
    "gateway": "bench.run_floor_vs",
    "floor": "bench.run_floor_vs",
    "order-entry": "bench.gateway_bench",  # floor, floor-same and the gateway under each durability, in one run
    "recovery": "bench.recovery_bench",
    "md": "bench.md_bench",
    "soak": "bench.soak",
    "storm": "bench.storm",
    "auction": "bench.auction_bench",
    "cluster": "bench.cluster_bench",
}
_PORTS = {
    "order_entry": "@PORT@", "market_data": "@FREE_PORT_1@", "metrics": "@FREE_PORT_2@", "drop_copy": "@FREE_PORT_3@",
}  # fmt: skip


# Every account funded far beyond what a benchmark's load spends: no order is refused for funds. The sum over all
# accounts must stay below 2**63 units of each asset (the snapshot's JSON integers): 1e9 USD is 1e15 micro-dollars,
# so thousands of accounts fit (1e12 USD each overflowed the ledger's net_funding with 10 accounts).
BENCH_FUNDS = '{ USD = "1000000000", BTC = "10000000", AAPL = "1000000000", MSFT = "1000000000" }'


def gateway_template(venue_toml: str) -> str:
    """The demo config with the tokens ``bench/run_floor_vs.py`` fills in: data under the scratch directory, the
    order-entry port it drives, free ports for market data and metrics, the dictionary from the repository."""
    out, section = [], ""
    for line in venue_toml.splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            section = stripped[1 : stripped.index("]")]  # a header may carry a comment after it
        key = stripped.split("=", 1)[0].strip() if "=" in stripped else ""
        if section == "venue" and key == "data_dir":
            line = 'data_dir = "@WORKDIR@/data"'
        elif section == "venue" and key == "log_format":
            line = 'log_format = "json"'
        elif section == "fix" and key == "dictionary":
            line = 'dictionary = "@REPO@/fix_specs/FIX44-venue.xml"'
        elif key == "port" and section in _PORTS:
            line = f"port = {_PORTS[section]}"
        elif section == "store" and key == "enabled":
            line = "enabled = false  # the gateway alone (bench/store_bench.py measures it with the store)"
        elif section == "operator" and key == "port":
            line = "port = 0  # no operator channel in a benchmark"
        elif section == "risk" and key == "max_messages_per_second":
            line = "max_messages_per_second = 0  # the load generator sends as fast as the gateway goes"
        elif section.startswith("sessions.DROP"):  # a drop copy stores a copy of every report: not in a benchmark
            line = f"# {line}" if stripped else line
        elif section.startswith("risk.limits") and key:
            line = f"# {line}  (no pre-trade limits in a benchmark: every order is measured, none refused)"
        elif section == "accounts" and key == "opening_balance":
            line = f"opening_balance = {BENCH_FUNDS}"

        out.append(line)
    text = "\n".join(out) + "\n"
    missing = [token for token in ("@WORKDIR@", "@REPO@", *_PORTS.values()) if token not in text]
    if missing:
        raise CLIError(f"cannot make a gateway config template from the demo config (no {', '.join(missing)})")
    return text


def bench_venue(data: dict[str, Any]) -> dict[str, Any]:
    """A parsed venue config given the benchmark settings of :func:`gateway_template`: every account funded with
    :data:`BENCH_FUNDS`, no pre-trade limits, no message-rate limit, no drop-copy session, no operator channel."""
    data.setdefault("accounts", {})["opening_balance"] = tomllib.loads(f"funds = {BENCH_FUNDS}")["funds"]
    data.setdefault("risk", {}).pop("limits", None)
    data["risk"]["max_messages_per_second"] = 0
    data.setdefault("operator", {})["port"] = 0
    sessions = data.get("sessions", {})
    for name in [n for n, s in sessions.items() if s.get("role") == "drop_copy"]:
        del sessions[name]
    return data


def main(args: argparse.Namespace) -> int:
    module = MODULES[args.which]
    if importlib.util.find_spec(module) is None:
        raise CLIError(f"{module} is not installed (run from a checkout with bench/)")
    extra = list(args.args)
    if extra[:1] == ["--"]:
        extra = extra[1:]
    with tempfile.TemporaryDirectory(prefix="fixgw-bench-") as tmp:
        if args.which == "gateway" and not any(a == "--target-cmd" or a.startswith("--target-cmd=") for a in extra):
            from gateway.config import DEFAULT_CONFIG

            template = Path(tmp) / "gateway.toml"
            template.write_text(gateway_template(DEFAULT_CONFIG.read_text()))
            passwords = Path(tmp) / "passwords.txt"
            passwords.write_text("".join(f"CLIENT{n}=pass{n}\n" for n in range(1, 10)))
            extra = [
                "--target-name", "gateway", "--target-config", str(template), "--password-file", str(passwords),
                "--target-cmd", "{python} -m gateway serve --config {config}", *extra,
            ]  # fmt: skip
        argv = [sys.executable, "-m", module, *extra]
        print(f"fixgw bench: python {shlex.join(argv[1:])}", file=sys.stderr, flush=True)
        return subprocess.run(argv, check=False).returncode
