"""The post-trade store following the gateway at its maximum order rate: rows/s written and the lag, per backend.

    python -m bench.store_bench [--reps 2] [--seconds 8] [--warmup 2] [--targets none,sqlite,postgresql]
                                [--cross-fraction 0.2]

Each target runs in turn, and the sequence is repeated ``--reps`` times (interleaved, so every target sees the same
machine): a fresh gateway (the demo config with its own data directory and free ports, journal ``group``,
cancel-on-disconnect off) started with ``fixgw serve``, which starts the store beside it with the target's backend
(``none``: the store off, the gateway alone), and ``bench/loadgen.py`` at ``--rate max`` (4 sessions, 16 orders in
flight each; ``--cross-fraction`` of the orders cross, so there are trades). PostgreSQL is a server this script starts
(Debian's package, as in the tests) with its durable defaults; the store's session commits with
``synchronous_commit = off`` (see store/postgres.py).

Measured over the loadgen's window (after ``--warmup``):

* gateway orders/s (the loadgen's count) and the CPU of the gateway and of the store process;
* records/s and rows/s the store wrote (its ``/status`` counters at the start and the end of the window);
* the lag of every record committed in the window, from the command's timestamp (taken by the gateway just before it
  journals the command) to the commit of its rows: p50, p99, max (``/status?window=``);
* whether the lag grows: the p99 of each second and the backlog (journal bytes the store has not written yet, in
  records) sampled every second; the backlog at the end of the window; and the catch-up time, from the end of the
  load until the store's position is the end of the journal;
* the store's capacity: once the gateway has stopped, a fresh store (new database) writes the rows of the whole
  journal from the start, alone on the machine: records/s while it does.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
from pathlib import Path
from typing import Any

from bench.run_floor_vs import cpu_seconds, machine_busy_seconds
from tests.gateway_process import ROOT, GatewayProcess, dump_toml, free_port, make_config
from tests.pg_server import PgServer

TARGETS = ("none", "sqlite", "postgresql")


def status(port: int, window: float) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status?window={window}", timeout=5) as r:
        result: dict[str, Any] = json.loads(r.read())
        return result


def journal_size(gw: GatewayProcess) -> int:
    path = gw.config.parent / "data" / "journal" / "commands.journal"
    return path.stat().st_size if path.exists() else 0


def run_once(target: str, ns: argparse.Namespace, tmp: Path, pg: PgServer | None) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix=f"{target}-", dir=tmp))
    http_port = free_port()
    overrides: dict[str, Any] = {
        "order_entry.cancel_on_disconnect": False, "store.enabled": target != "none", "store.http_port": http_port,
        "venue.log_format": "json", "risk.max_messages_per_second": 0,
    }  # fmt: skip
    if target == "postgresql":
        assert pg is not None
        overrides.update({"store.backend": "postgresql", "store.dsn": pg.new_database()})
    config, ports = make_config(directory, overrides)
    gw = GatewayProcess(config, ports, directory / "gateway.log")
    gw.start()
    store_pid = 0
    if target != "none":
        deadline = time.monotonic() + 30
        while not store_pid:
            try:
                store_pid = int(status(http_port, 1)["pid"])
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the store did not come up") from None
                time.sleep(0.1)
    passwords = directory / "passwords.txt"
    passwords.write_text("".join(f"CLIENT{n}=pass{n}\n" for n in range(1, 10)))
    argv = [sys.executable, "-m", "bench.loadgen", "--port", str(gw.oe_port), "--sessions", "4", "--rate", "max",
            "--in-flight", "16", "--seconds", str(ns.seconds), "--warmup", str(ns.warmup),
            "--cross-fraction", str(ns.cross_fraction), "--password-file", str(passwords)]  # fmt: skip
    assert gw.proc is not None
    busy0, _ = machine_busy_seconds()
    gw_cpu0 = cpu_seconds(gw.proc.pid)
    store_cpu0 = cpu_seconds(store_pid) if store_pid else 0.0
    t0 = time.monotonic()
    load = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    series: list[dict[str, Any]] = []
    start: dict[str, Any] | None = None
    end: dict[str, Any] | None = None
    window_lag: dict[str, Any] = {}
    next_sample = ns.warmup + 1.0
    while load.poll() is None:
        time.sleep(0.25)  # a sampling tick: measurements are taken on the clock, nothing waits on it
        elapsed = time.monotonic() - t0
        if not store_pid:
            continue
        if start is None and elapsed >= ns.warmup:
            start = status(http_port, 1) | {"t": elapsed}
        if start is not None and end is None and elapsed >= ns.warmup + ns.seconds:
            end = status(http_port, ns.seconds) | {"t": elapsed}
            window_lag = end["lag"]
        if start is not None and end is None and elapsed >= next_sample:  # once a second inside the window
            next_sample += 1.0
            s = status(http_port, 1)
            size = journal_size(gw)
            record_bytes = size / max(s["records"], 1)
            series.append({"t": round(elapsed, 1), "p99_ms": s["lag"].get("p99_ms"),
                           "backlog_records": round((size - s["position"]) / record_bytes)})  # fmt: skip
    load_end = time.monotonic()
    out, err = load.communicate()
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"loadgen produced no result: {err[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    catch_up = None
    if store_pid:
        deadline = time.monotonic() + 120
        while status(http_port, 1)["position"] != journal_size(gw) and time.monotonic() < deadline:
            time.sleep(0.01)
        catch_up = round(time.monotonic() - load_end, 3)
    wall = time.monotonic() - t0
    gw_cpu = cpu_seconds(gw.proc.pid) - gw_cpu0
    store_cpu = cpu_seconds(store_pid) - store_cpu0 if store_pid else 0.0
    busy1, _ = machine_busy_seconds()
    gw.stop()
    capacity = replay_rate(config, target, pg, directory) if store_pid else None
    row: dict[str, Any] = {
        "target": target,
        "orders_per_s": result["orders_per_s"],
        "order_p99_us": result["latency_us"]["p99"],
        "gateway_cpu_us_per_order": round(gw_cpu * 1e6 / max(result["orders_sent"], 1), 1),
        "store_cpu_pct": round(100 * store_cpu / wall, 1),
        "machine_busy_pct": round(100 * (busy1 - busy0) / wall / (os.cpu_count() or 1), 1),
        "catch_up_s": catch_up,
        "replay_records_per_s": capacity,
        "series": series,
    }
    if start is not None and end is not None:
        span = end["t"] - start["t"]
        row.update(
            records_per_s=round((end["records"] - start["records"]) / span),
            rows_per_s=round((end["rows_written"] - start["rows_written"]) / span),
            records_per_batch=round((end["records"] - start["records"]) / max(end["batches"] - start["batches"], 1)),
            lag_p50_ms=window_lag.get("p50_ms"), lag_p99_ms=window_lag.get("p99_ms"),
            lag_max_ms=window_lag.get("max_ms"),
            backlog_end=series[-1]["backlog_records"] if series else None,
        )  # fmt: skip
    return row


def replay_rate(config: Path, target: str, pg: PgServer | None, directory: Path) -> float:
    """Records/s of a fresh store writing the rows of the whole journal from the start, once the gateway has stopped:
    its capacity, which must stay above the gateway's maximum rate."""
    raw = tomllib.loads(config.read_text())
    port = free_port()
    raw["store"]["http_port"] = port
    if target == "postgresql":
        assert pg is not None
        raw["store"]["dsn"] = pg.new_database()
    else:
        raw["store"]["path"] = str(directory / "replay.sqlite")
    replay_config = directory / "replay.toml"
    replay_config.write_text(dump_toml(raw))
    end = (directory / "data" / "journal" / "commands.journal").stat().st_size
    with (directory / "replay.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "gateway", "store", "--config", str(replay_config)], cwd=ROOT,
                                stdout=log, stderr=log)  # fmt: skip
    try:
        first: tuple[float, int] | None = None
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                s = status(port, 1)
            except OSError:
                time.sleep(0.05)
                continue
            now = time.monotonic()
            if first is None and s["records"]:
                first = (now, s["records"])
            if s["position"] == end:
                assert first is not None
                return round((s["records"] - first[1]) / max(now - first[0], 1e-9))
            time.sleep(0.05)
        raise RuntimeError("the replaying store did not reach the end of the journal")
    finally:
        proc.terminate()
        proc.wait(30)


def fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}" if isinstance(value, int | float) else str(value)


def median(rows: list[dict[str, Any]], key: str) -> Any:
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(values) if values else None


def summary(runs: list[dict[str, Any]], targets: list[str], reps: int) -> str:
    out = [
        f"Medians of {reps} runs per target; lag = command timestamp -> its rows committed (ms).",
        "",
        "| target | gateway orders/s | order p99 µs | gateway CPU µs/order | store records/s | store rows/s "
        "| records per transaction | lag p50 | lag p99 | lag max | backlog at end (records) | catch-up s | store CPU % "
        "| machine busy % | store alone, records/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for t in targets:
        mine = [r for r in runs if r["target"] == t]
        whole = ("orders_per_s", "order_p99_us", "gateway_cpu_us_per_order", "records_per_s", "rows_per_s",
                 "records_per_batch")  # fmt: skip
        cells = [fmt(median(mine, key)) for key in whole]
        cells += [fmt(median(mine, key), 1) for key in ("lag_p50_ms", "lag_p99_ms", "lag_max_ms")]
        cells += [fmt(median(mine, "backlog_end")), fmt(median(mine, "catch_up_s"), 2)]
        cells += [fmt(median(mine, "store_cpu_pct")), fmt(median(mine, "machine_busy_pct"))]
        cells += [fmt(median(mine, "replay_records_per_s"))]
        out.append(f"| {t} | " + " | ".join(cells) + " |")
    out += ["", "Lag p99 (ms) and backlog (records) each second of the window, per run:", ""]
    for r in runs:
        if r["series"]:
            points = " ".join(f"{p['p99_ms']}/{p['backlog_records']}" for p in r["series"])
            out.append(f"* {r['target']} rep {r['rep']}: {points}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--cross-fraction", type=float, default=0.2)
    parser.add_argument("--json-out", type=Path)
    ns = parser.parse_args(argv)
    targets = ns.targets.split(",")
    unknown = set(targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets {sorted(unknown)} (choose from {', '.join(TARGETS)})")
    pg = None
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="store-bench-") as tmp_name:
        try:
            if "postgresql" in targets:
                pg = PgServer()
                pg.start(durable=True)
            for rep in range(1, ns.reps + 1):
                for target in targets:
                    print(f"rep {rep}/{ns.reps}: {target}", file=sys.stderr, flush=True)
                    row = run_once(target, ns, Path(tmp_name), pg)
                    row["rep"] = rep
                    runs.append(row)
                    print(json.dumps({k: v for k, v in row.items() if k != "series"}), file=sys.stderr, flush=True)
        finally:
            if pg is not None:
                pg.stop()
    if ns.json_out:
        ns.json_out.write_text("\n".join(json.dumps(r) for r in runs) + "\n")
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"Command: python -m bench.store_bench {' '.join(argv if argv is not None else sys.argv[1:])}")
    print()
    print(summary(runs, targets, ns.reps))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
