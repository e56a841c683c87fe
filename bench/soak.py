"""Soak: the gateway under a steady mixed load for a long time; RSS, descriptors, journal, latency and the venue's own
metrics sampled as it goes; at the end a CSV, a PNG plot and a verdict.

    python -m bench.soak                                   # 60 minutes, 1,000 requests/s, 50 market-data sessions
    python -m bench.soak --minutes 2 --rate 200 --md-sessions 10 --sample 10
    python -m bench.soak --replot bench/results/soak-1h   # soak.png again from soak.csv and soak.json
    fixgw bench soak -- --minutes 10

What runs (all on this machine, each its own process):

* **the gateway**: ``python -m gateway serve`` on a generated venue config (:func:`write_config`): ``--oe-sessions``
  order-entry sessions SOAK1.. (account SOAKACC<n>, cancel-on-disconnect on) and ``--md-sessions`` market-data
  sessions SOAKMD1.. spread over ``--md-ports`` ports, the demo instruments, group commit, an engine snapshot every
  ``--snapshot-every`` commands, market-data snapshots every ``--md-snapshot-interval`` seconds;
* **order entry** (:mod:`bench.soak_clients` ``oe``, ``--oe-procs`` processes): ``--rate`` requests a second (new
  orders, cancels, replaces, 10% crossing IOC orders that trade) with ``--working-set`` open orders held steady by
  the load's cancels; every ``--relogon-every`` seconds a session logs out (cancel-on-disconnect), stays away
  ``--away`` seconds and logs on again, recovering the reports by resend;
* **market data** (``md``, ``--md-procs`` processes): each session subscribed to ``--md-symbols`` symbols in turn,
  logging out and back in the same way (its messages come back by resend).

Every ``--sample`` seconds: the gateway's RSS and open descriptors (/proc), the journal's and the FIX store's size
on disk, the venue's resting orders and other metrics (``/metrics``, names from :data:`GATEWAY_METRICS`), the
order -> first report latency (p50/p99 over the interval, from the clients), request rate, CPU, load average and
the host's CPU steal (:mod:`bench.host_steal`). The latencies are also kept per wall-clock second
(``latency_seconds.csv``, beside each second's steal).

At the end the load stops, every session settles (answers received, gaps recovered, then a TestRequest answered:
everything the venue sent before its Heartbeat has been read, the fills behind an answer too), the venue's books are
read with a snapshot request and compared with every subscriber's book and with the order-entry sessions' own model
of their open orders. The verdict (:func:`verdict`): **functional** (nothing lost or duplicated, books exact, the
venue's resting-order count equal to the clients') and **stability** (RSS growth after ``--warmup-minutes``,
p99 over the last ``--window`` samples against the first ``--window`` after warm-up, judged over the seconds in
which the host took at most ``--steal-limit`` percent of the CPU: on a shared virtual machine the neighbours'
bursts decide a pooled p99; the pooled figure is reported beside it).

``FIXGW_TRACEMALLOC=1`` in the environment (``--tracemalloc``) makes the gateway write tracemalloc snapshots (see
gateway/server.py), to find where memory grows.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib.metadata
import json
import os
import platform
import select
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.fixwire import LatencyHistogram
from bench.host_steal import StealSampler
from bench.soak_clients import view_key
from engine.protection import FINISHED_ORDERS
from feeds.client import MarketDataClient
from gateway.auth import hash_password
from gateway.hotmetrics import HotCounter, HotHistogram
from gateway.memtrace import growth
from gateway.metrics import Metrics
from tests.gateway_process import ROOT, GatewayProcess, dump_toml, free_port, make_config
from tools.bench import bench_venue


def quickfix_patch_level() -> int:
    """N of the installed ``quickfix 1.16.0+fixgw.N``; 0 for a stock build or none."""
    try:
        local = importlib.metadata.version("quickfix").partition("+fixgw.")[2]
    except importlib.metadata.PackageNotFoundError:
        return 0
    return int(local) if local.isdigit() else 0


PASSWORD = "soakpass"
# What the venue keeps per unit of traffic, measured alone by bench/retention.py (BENCHMARKS.md, Soak): the stock
# FileStore's in-memory index, per message sent on any session (none in fixgw.3 and from fixgw.5 on; fixgw.4 was
# built beside it without the change. The version is read from the installed metadata: importing quickfix here
# would reset SIGINT)...
FILESTORE_BYTES_PER_MESSAGE = 0 if quickfix_patch_level() == 3 or quickfix_patch_level() >= 5 else 63
# ... and the engine's order (Order, ClOrdIDs) per accepted order (soak mix), up to its window of finished orders:
# FINISHED_ORDERS per order-entry session (engine.protection), beyond which it forgets them.
ENGINE_BYTES_PER_ORDER = 530
SYMBOLS = ("AAPL", "MSFT", "BTC-USD")
CLK_TCK = os.sysconf("SC_CLK_TCK")

# CSV column -> attribute of gateway.metrics.Metrics. The exported names are read from the metrics themselves, so a
# rename there needs no edit here (histograms give their _count and _sum).
GATEWAY_METRICS = {
    "resting_orders": "resting_orders",
    "orders_accepted": "orders_accepted",
    "executions": "executions",
    "trades": "trades",
    "cancel_rejects": "cancel_rejects",
    "md_messages": "md_messages",
    "md_subscriptions": "md_subscriptions",
    "sessions_logged_on": "sessions_logged_on",
    "logons": "logons",
    "resend_requests_received": "resend_requests_received",
    "messages_replayed": "messages_replayed",
    "session_rejects": "session_rejects",
    "business_rejects": "business_rejects",
    "slow_consumer_events": "slow_consumers",
    "journal_fsyncs": "journal_fsyncs",
    "loop_stalls": "loop_stalls",  # turns of the gateway's loop over 100 ms, cumulative (with host_steal_pct)
    "gateway_order_latency": "order_latency",
    "md_publish": "md_publish_latency",
}
HISTOGRAMS = ("gateway_order_latency", "md_publish")  # reported as the mean over each interval


def exported_names() -> dict[str, str]:
    """CSV column -> the sample name ``/metrics`` shows (histograms: the ``_count``; ``_sum`` is derived)."""
    m = Metrics()
    out = {}
    for column, attr in GATEWAY_METRICS.items():
        metric = getattr(m, attr)
        if isinstance(metric, HotCounter):
            out[column] = metric.name + "_total"
        elif isinstance(metric, HotHistogram):
            out[column] = metric.name + "_count"
        else:
            family = metric.describe()[0]
            out[column] = family.name + "_total" if family.type == "counter" else family.name
    return out


def parse_metrics(text: str) -> dict[str, float]:
    """Every sample of the Prometheus text, summed over labels."""
    sums: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name = head.partition("{")[0]
        with contextlib.suppress(ValueError):
            sums[name] = sums.get(name, 0.0) + float(value)
    return sums


# ---------------------------------------------------------------------- the venue


def write_config(directory: Path, ns: argparse.Namespace) -> tuple[Path, dict[str, int], dict[str, Any]]:
    """The venue config; returns (path, ports, the sessions the clients use)."""
    pw_hash = hash_password(PASSWORD, iterations=1000)  # 100 logons take milliseconds, not seconds
    md_ports = [free_port() for _ in range(ns.md_ports)]
    tables: dict[str, dict[str, Any]] = {}
    oe: list[dict[str, Any]] = []
    md: list[dict[str, Any]] = []
    for n in range(1, ns.oe_sessions + 1):
        tables[f"SOAK{n}"] = {"role": "order_entry", "accounts": [f"SOAKACC{n}"], "password_hash": pw_hash,
                              "cancel_on_disconnect": True}  # fmt: skip
        oe.append({"comp_id": f"SOAK{n}", "password": PASSWORD, "account": f"SOAKACC{n}"})
    for n in range(1, ns.md_sessions + 1):
        port = md_ports[(n - 1) % len(md_ports)]
        tables[f"SOAKMD{n}"] = {"role": "market_data", "port": port, "password_hash": pw_hash}
        symbols = [SYMBOLS[(n - 1 + k) % len(SYMBOLS)] for k in range(ns.md_symbols)]
        depth = ns.md_top_depth if n > ns.md_sessions - ns.md_top_sessions else 0
        md.append({"comp_id": f"SOAKMD{n}", "password": PASSWORD, "port": port, "symbols": symbols, "depth": depth})
    tables["SOAKTRUTH"] = {"role": "market_data", "password_hash": pw_hash}
    overrides = {
        "journal.durability": ns.durability,
        "journal.snapshot_every": ns.snapshot_every,
        "market_data.snapshot_interval": ns.md_snapshot_interval,
        "venue.log_level": "info",
    }
    path, ports = make_config(directory, overrides, tables)
    path.write_text(dump_toml(bench_venue(tomllib.loads(path.read_text()))))  # funded, no limits, no drop copy
    for s in oe:
        s["port"] = ports["order_entry"]
    return path, ports, {"oe": oe, "md": md}


def dir_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += (Path(root) / name).stat().st_size
    return total


def proc_stats(pid: int) -> dict[str, float]:
    """RSS (MB), open descriptors and CPU seconds of a process."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return {
        "rss_mb": rss_kb / 1024,
        "fds": float(len(os.listdir(f"/proc/{pid}/fd"))),
        "cpu_s": (int(fields[11]) + int(fields[12])) / CLK_TCK,
    }


def fix_messages_sent(store: Path) -> int:
    """Messages the venue has sent on every session (each FileStore keeps them all; seqnums: "sender : target")."""
    total = 0
    for path in store.glob("*.seqnums"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int(path.read_text().split(":")[0]) - 1
    return total


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


# ---------------------------------------------------------------------- the client processes


@dataclass
class ClientProcess:
    """A :mod:`bench.soak_clients` child: JSON lines in and out."""

    role: str
    spec: dict[str, Any]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    buf: bytes = b""
    events: list[dict[str, Any]] = field(default_factory=list)

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bench.soak_clients", self.role, json.dumps(self.spec)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, cwd=ROOT,
            )  # fmt: skip

    def send(self, cmd: dict[str, Any]) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        self.proc.stdin.flush()

    def wait(self, event: str, timeout: float) -> dict[str, Any]:
        """The next ``event`` line (others are kept); raises if the child dies or the deadline passes."""
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e.get("event") == event:
                    return self.events.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.role} clients: no {event!r} within {timeout}s ({self.tail()})")
            ready, _, _ = select.select([self.proc.stdout], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 1 << 20)
                if not chunk:
                    raise RuntimeError(f"{self.role} clients exited ({self.tail()})")
                self.buf += chunk
                *lines, self.buf = self.buf.split(b"\n")
                self.events += [json.loads(line) for line in lines if line.strip()]

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-1500:] if self.log.exists() else ""

    def close(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(OSError, ValueError):
            self.send({"cmd": "exit"})
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def split(items: list[Any], parts: int) -> list[list[Any]]:
    parts = max(1, min(parts, len(items)))
    return [items[k::parts] for k in range(parts)]


# ---------------------------------------------------------------------- the run


@dataclass
class Sampler:
    """One CSV row per interval."""

    gw: GatewayProcess
    data_dir: Path
    children: list[ClientProcess]
    names: dict[str, str]
    t0: float = field(default_factory=time.monotonic)
    rows: list[dict[str, Any]] = field(default_factory=list)
    histograms: list[LatencyHistogram] = field(default_factory=list)
    last: dict[str, float] = field(default_factory=dict)
    steal: StealSampler = field(default_factory=StealSampler)
    seconds: dict[int, LatencyHistogram] = field(default_factory=dict)  # wall-clock second -> its latencies
    spans: list[tuple[float, float]] = field(default_factory=list)  # wall-clock interval of each row
    wall0: float = field(default_factory=time.time)

    def take(self) -> dict[str, Any]:
        assert self.gw.proc is not None
        for c in self.children:
            c.send({"cmd": "sample"})
        samples = [c.wait("sample", 60) for c in self.children]
        now = time.monotonic()
        stats = proc_stats(self.gw.proc.pid)
        metrics = parse_metrics(self.gw.metrics())
        hist = LatencyHistogram()
        requests, client_cpu, relogons, lag = 0, 0.0, 0, 0.0
        for c, s in zip(self.children, samples, strict=True):
            lag = max(lag, s["lag_s"])
            hist.merge(s["latency"])
            client_cpu += s["cpu_s"]
            relogons += s["relogons"]
            for second, counts in s["seconds"].items():
                self.seconds.setdefault(int(second), LatencyHistogram()).merge(counts)
            if c.role == "oe":
                requests += s["counts"].get("requests", 0)
        elapsed = now - self.last.get("t", self.t0)
        wall = time.time()
        span = (self.spans[-1][1] if self.spans else self.wall0, wall)
        self.spans.append(span)
        row: dict[str, Any] = {
            "minute": round((now - self.t0) / 60, 2),
            "rss_mb": round(stats["rss_mb"], 1),
            "fds": int(stats["fds"]),
            "journal_mb": round(dir_bytes(self.data_dir / "journal") / 1e6, 1),
            "fix_store_mb": round(dir_bytes(self.data_dir / "store") / 1e6, 1),
            "fix_messages_stored": fix_messages_sent(self.data_dir / "store"),
            "audit_mb": round((self.data_dir / "audit.jsonl").stat().st_size / 1e6, 1),
            "latency_p50_us": hist.percentile(50),
            "latency_p99_us": hist.percentile(99),
            "requests_per_s": round((requests - self.last.get("requests", 0)) / elapsed, 1),
            "gateway_cpu_pct": round(100 * (stats["cpu_s"] - self.last.get("cpu", 0)) / elapsed, 1),
            "clients_cpu_pct": round(100 * (client_cpu - self.last.get("client_cpu", 0)) / elapsed, 1),
            "load1": loadavg(),
            "host_steal_pct": self.steal.mean(*span),
            "relogons": relogons,
            "md_read_lag_ms_max": round(lag * 1000, 1),
        }
        last = self.last
        self.last = {"t": now, "requests": requests, "cpu": stats["cpu_s"], "client_cpu": client_cpu}
        for column, name in self.names.items():
            if column not in HISTOGRAMS:
                row[column] = metrics.get(name, 0.0)
                continue
            count, total = metrics.get(name, 0.0), metrics.get(name.removesuffix("_count") + "_sum", 0.0)
            new = count - last.get(column + "_count", 0.0)
            row[column + "_mean_us"] = round(1e6 * (total - last.get(column + "_sum", 0.0)) / new, 1) if new else None
            self.last[column + "_count"], self.last[column + "_sum"] = count, total
        self.rows.append(row)
        self.histograms.append(hist)
        return row


def truth_books(port: int, depths: set[int]) -> dict[str, Any]:
    """Every view's book as the venue publishes it (a snapshot request on the subscribers' views), by
    ``SYMBOL@DEPTH``; full depth always (the order-entry sessions' orders are compared with it)."""
    out = {}
    client = MarketDataClient("127.0.0.1", port, "SOAKTRUTH", PASSWORD)
    client.logon()
    try:
        for symbol in SYMBOLS:
            for depth in sorted(depths | {0}):
                snap = client.fetch_snapshot(symbol, depth, ("0", "1", "2"), timeout=30)
                out[view_key(symbol, depth)] = {
                    "rpt": snap.rpt_seq,
                    "bids": [[str(lv.price), str(lv.size)] for lv in snap.bids],
                    "asks": [[str(lv.price), str(lv.size)] for lv in snap.asks],
                }
    finally:
        client.close(unsubscribe=False)
    return out


def compare_levels(truth: dict[str, Any], levels: list[list[str]], orders: list[list[str]]) -> list[str]:
    """Differences between the venue's books and the order-entry sessions' open orders, by level, each with the
    clients' orders at that level (session, OrderID, ClOrdID, LeavesQty: to trace them in the venue's stores)."""
    venue: dict[tuple[str, str, Decimal], Decimal] = {}
    for symbol in SYMBOLS:
        book = truth[view_key(symbol, 0)]
        for side, which in (("1", "bids"), ("2", "asks")):
            for price, size in book[which]:
                venue[(symbol, side, Decimal(price))] = Decimal(size)
    clients = {(s, side, Decimal(p)): Decimal(q) for s, side, p, q in levels}
    diffs = []
    for key in sorted(set(venue) | set(clients)):
        if venue.get(key) != clients.get(key):
            side_name = "bid" if key[1] == "1" else "offer"
            behind = [o[4:] + o[3:4] for o in orders if (o[0], o[1], Decimal(o[2])) == key][:5]
            diffs.append(
                f"{key[0]} {side_name} {key[2]}: venue {venue.get(key)}, clients {clients.get(key)} (orders {behind})"
            )
    return diffs


def run(ns: argparse.Namespace) -> dict[str, Any]:
    """One soak; returns the report (also written to ``ns.out``)."""
    ns.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="soak-", dir=ns.workdir))
    gw: GatewayProcess | None = None
    children: list[ClientProcess] = []
    started = time.time()
    try:
        config, ports, sessions = write_config(work, ns)
        traces = ns.out / "tracemalloc"
        env = {"FIXGW_TRACEMALLOC": str(traces), "FIXGW_TRACEMALLOC_EVERY": str(ns.sample)} if ns.tracemalloc else {}
        gw = GatewayProcess(config, ports, work / "gateway.log", env)
        gw.start()
        common = {"heartbeat": 30, "relogon_every": ns.relogon_every, "away": ns.away}
        for k, part in enumerate(split(sessions["md"], ns.md_procs)):
            children.append(ClientProcess("md", {**common, "sessions": part}, work / f"md{k}.log"))
        oe_parts = split(sessions["oe"], ns.oe_procs)
        for k, part in enumerate(oe_parts):
            spec = {**common, "sessions": part, "symbols": SYMBOLS, "rate": ns.rate / len(oe_parts),
                    "working_set": ns.working_set * len(part) // ns.oe_sessions, "seed": k + 1}  # fmt: skip
            children.append(ClientProcess("oe", spec, work / f"oe{k}.log"))
        for c in children:
            c.start()
        for c in children:
            ready = c.wait("ready", 180)
            if not ready["ok"]:
                raise RuntimeError(f"{c.role} sessions not ready: {ready['not_ready']}")
        sampler = Sampler(gw, work / "data", children, exported_names())
        sampler.steal.start()
        for c in children:
            if c.role == "oe":
                c.send({"cmd": "start"})
        end = sampler.t0 + ns.minutes * 60
        csv_path = ns.out / "soak.csv"
        with csv_path.open("w", newline="") as f:
            writer: csv.DictWriter[str] | None = None
            while time.monotonic() < end:
                time.sleep(max(0.0, min(ns.sample, end - time.monotonic())))
                row = sampler.take()
                if writer is None:
                    writer = csv.DictWriter(f, fieldnames=list(row))
                    writer.writeheader()
                writer.writerow(row)
                f.flush()
                progress = (
                    f"soak {row['minute']:7.2f} min  rss {row['rss_mb']} MB  fds {row['fds']}  p50/p99 "
                    f"{row['latency_p50_us']}/{row['latency_p99_us']} us  {row['requests_per_s']} req/s  "
                    f"resting {row['resting_orders']:.0f}  load {row['load1']}"
                )
                print(progress, file=sys.stderr, flush=True)
        sampler.steal.stop()
        write_seconds(ns.out / "latency_seconds.csv", sampler, ns.steal_limit)
        for c in children:
            c.send({"cmd": "stop"})
        stopped = {id(c): c.wait("stopped", 300) for c in children}
        truth = truth_books(ports["market_data"], {int(s.get("depth", 0)) for s in sessions["md"]})
        for c in children:
            c.send({"cmd": "finish", "truth": truth})
        results = [c.wait("result", 120) for c in children]
        oe_stopped = [stopped[id(c)] for c in children if c.role == "oe"]
        levels = [lv for s in oe_stopped for lv in s["levels"]]
        client_orders = [o for s in oe_stopped for o in s["orders"]]
        open_orders = sum(s["open_orders"] for s in oe_stopped)
        resting = wait_resting(gw, open_orders, sampler.names["resting_orders"])
        report = verdict(ns, sampler, results, oe_stopped, [stopped[id(c)] for c in children if c.role == "md"],
                         compare_levels(truth, levels, client_orders), open_orders, resting)  # fmt: skip
        for c in children:
            c.close()
        children = []
        report["gateway_exit_code"] = gw.stop()
        report["functional_ok"] = report["functional_ok"] and report["gateway_exit_code"] == 0
        if not report["functional_ok"]:  # the evidence outlives the scratch directory
            for log in [work / "gateway.log", *work.glob("md*.log"), *work.glob("oe*.log")]:
                shutil.copy(log, ns.out / log.name)
    except BaseException:
        if gw is not None:
            print(gw.log_text()[-3000:], file=sys.stderr)
        raise
    finally:
        for c in children:
            c.close()
        if gw is not None and gw.proc is not None and gw.proc.poll() is None:
            gw.kill()
        if not ns.keep:
            shutil.rmtree(work, ignore_errors=True)
    report.update(command=ns.command, started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
                  machine=f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
                  workdir=str(work) if ns.keep else None)  # fmt: skip
    if ns.tracemalloc:
        snaps = sorted(traces.glob("*.tracemalloc"))
        if len(snaps) >= 2:
            report["tracemalloc_growth"] = growth(snaps[min(len(snaps) - 1, 1)], snaps[-1])
    (ns.out / "soak.json").write_text(json.dumps(report, indent=2) + "\n")
    if ns.plot:
        plot(sampler.rows, ns.out / "soak.png", report)
    return report


def write_seconds(path: Path, sampler: Sampler, limit: float) -> None:
    """One row per wall-clock second of the load: answers, p50/p99, the host's steal and whether the verdict counts
    the second as quiet (:meth:`StealSampler.quiet`)."""
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["utc", "answers", "p50_us", "p99_us", "host_steal_pct", "quiet"])
        for second in sorted(sampler.seconds):
            h = sampler.seconds[second]
            w.writerow([time.strftime("%H:%M:%S", time.gmtime(second)), h.total, h.percentile(50), h.percentile(99),
                        sampler.steal.steal_pct.get(second), int(sampler.steal.quiet(second, limit))])  # fmt: skip


def quiet_window(sampler: Sampler, rows: range, limit: float) -> tuple[LatencyHistogram, int, float | None]:
    """The latencies of the quiet seconds of ``rows`` (sample indices), how many seconds they are, and the host's
    mean steal over the whole window."""
    start, end = sampler.spans[rows.start][0], sampler.spans[rows.stop - 1][1]
    hist, n = LatencyHistogram(), 0
    for second, h in sampler.seconds.items():
        if start <= second < end and sampler.steal.quiet(second, limit):
            hist.merge(h.counts)
            n += 1
    return hist, n, sampler.steal.mean(start, end)


def wait_resting(gw: GatewayProcess, expected: int, name: str, timeout: float = 5.0) -> float:
    """The venue's resting-order gauge, once it equals ``expected`` (it is refreshed every second) or at the
    deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = parse_metrics(gw.metrics()).get(name, -1.0)
        if value == expected or time.monotonic() >= deadline:
            return value
        time.sleep(0.2)


# ---------------------------------------------------------------------- verdict and plot


def verdict(
    ns: argparse.Namespace,
    sampler: Sampler,
    results: list[dict[str, Any]],
    oe_stopped: list[dict[str, Any]],
    md_stopped: list[dict[str, Any]],
    level_diffs: list[str],
    open_orders: int,
    resting: float,
) -> dict[str, Any]:
    rows = sampler.rows
    errors: dict[str, int] = {}
    counts: dict[str, int] = {}
    for r in results:
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
        for k, v in r["counts"].items():
            counts[k] = counts.get(k, 0) + v
    errors["relogons_stuck"] = sum(r["relogons_stuck"] for r in results)
    errors["unanswered_requests"] = sum(s["unanswered"] for s in oe_stopped)
    errors["sessions_not_settled"] = sum(1 for s in [*oe_stopped, *md_stopped] if not s["ok"])
    books_exact = sum(r.get("books_exact", 0) for r in results)
    books_total = sum(r.get("books_total", 0) for r in results)
    functional = {
        "errors": errors,
        "books_exact": books_exact,
        "books_total": books_total,
        "book_mismatch_samples": [s for r in results for s in r.get("book_mismatch_samples", [])][:5],
        "order_model_vs_venue_differences": len(level_diffs),
        "order_model_diff_samples": level_diffs[:5],
        "open_orders_clients": open_orders,
        "resting_orders_venue": resting,
        "samples": [s for r in results for s in r["samples"]][:10],
    }
    functional_ok = (
        not any(errors.values())
        and books_total > 0
        and books_exact == books_total
        and not level_diffs
        and resting == open_orders
    )
    warm = [r for r in rows if r["minute"] >= ns.warmup_minutes] or rows[-1:]
    rss_start, rss_end = warm[0]["rss_mb"], rows[-1]["rss_mb"]
    window = max(1, min(ns.window, len(warm) // 2 or 1))
    first, last = LatencyHistogram(), LatencyHistogram()
    offset = len(rows) - len(warm)
    for h in sampler.histograms[offset : offset + window]:
        first.merge(h.counts)
    for h in sampler.histograms[-window:]:
        last.merge(h.counts)
    p99_start, p99_end = first.percentile(99), last.percentile(99)
    q_first, n_first, steal_first = quiet_window(sampler, range(offset, offset + window), ns.steal_limit)
    q_last, n_last, steal_last = quiet_window(sampler, range(len(rows) - window, len(rows)), ns.steal_limit)
    q_start, q_end = q_first.percentile(99), q_last.percentile(99)
    # Enough quiet seconds to judge: a fifth of each window (a minute of the hour's five)
    judged = min(n_first, n_last) >= max(1, window * ns.sample / 5)
    stability = {
        "warmup_minutes": ns.warmup_minutes,
        "rss_mb_after_warmup": rss_start,
        "rss_mb_end": rss_end,
        "rss_growth_pct": round(100 * (rss_end - rss_start) / rss_start, 2) if rss_start else None,
        "rss_mb_per_hour": slope_per_hour([(r["minute"], r["rss_mb"]) for r in warm]),
        "engine_orders_cap": ns.oe_sessions * FINISHED_ORDERS,
        **retention(warm[0], rows[-1], ns.oe_sessions * FINISHED_ORDERS),
        "answers": sum(h.total for h in sampler.histograms),
        "latency_window_samples": window,
        "p99_us_start": p99_start,
        "p99_us_end": p99_end,
        "p99_drift_pct": round(100 * (p99_end - p99_start) / p99_start, 1) if p99_start and p99_end else None,
        "steal_limit_pct": ns.steal_limit,
        "host_steal_pct_start": steal_first,
        "host_steal_pct_end": steal_last,
        "quiet_seconds_start": n_first,
        "quiet_seconds_end": n_last,
        "quiet_p99_us_start": q_start,
        "quiet_p99_us_end": q_end,
        "quiet_p99_drift_pct": round(100 * (q_end - q_start) / q_start, 1) if judged and q_start and q_end else None,
        "p50_us_start": first.percentile(50),
        "p50_us_end": last.percentile(50),
        "fds_start": warm[0]["fds"],
        "fds_end": rows[-1]["fds"],
        "load1_min": min(r["load1"] for r in rows),
        "load1_max": max(r["load1"] for r in rows),
        "load1_mean": round(sum(r["load1"] for r in rows) / len(rows), 2),
    }
    stability_ok = (
        stability["rss_growth_pct"] is not None
        and stability["rss_growth_pct"] < 5.0
        and stability["quiet_p99_drift_pct"] is not None
        and stability["quiet_p99_drift_pct"] <= 20.0
    )
    total_requests = sum(r["requests_per_s"] for r in rows)
    return {
        "settings": {k: v for k, v in vars(ns).items() if k not in ("out", "workdir", "command")},
        "functional_ok": functional_ok,
        "functional": functional,
        "stability_ok": stability_ok,
        "stability": stability,
        "totals": {
            "requests": counts.get("requests", 0),
            "reports": counts.get("reports", 0),
            "trades_reported": counts.get("trades", 0),
            "cancel_on_disconnect_reports": counts.get("cod_cancels", 0),
            "md_incrementals": counts.get("X", 0),
            "md_snapshots": counts.get("W", 0),
            "snapshot_book_checks": counts.get("snapshot_checks", 0),
            "resend_gaps_recovered": counts.get("gaps", 0),
            "possdup_ignored": counts.get("possdup_ignored", 0),
            "relogons": sum(r["relogons"] for r in results),
            "mean_requests_per_s": round(total_requests / max(len(rows), 1), 1),
            "journal_mb_end": rows[-1]["journal_mb"],
            "fix_store_mb_end": rows[-1]["fix_store_mb"],
            "audit_mb_end": rows[-1]["audit_mb"],
        },
    }


def retention(first: dict[str, Any], last: dict[str, Any], cap: int | None = None) -> dict[str, Any]:
    """How much of the RSS growth between two samples the two known retentions explain (bench/retention.py):
    QuickFIX's FileStore index (every message sent, every session; none with the patched store) and the engine's
    orders, of which it holds at most about ``cap`` (its windows of finished orders; None: no bound)."""
    messages = last["fix_messages_stored"] - first["fix_messages_stored"]
    orders = last["orders_accepted"] - first["orders_accepted"]
    held = [r["orders_accepted"] if cap is None else min(r["orders_accepted"], cap) for r in (first, last)]
    store_mb = messages * FILESTORE_BYTES_PER_MESSAGE / 2**20
    engine_mb = (held[1] - held[0]) * ENGINE_BYTES_PER_ORDER / 2**20
    grown = last["rss_mb"] - first["rss_mb"]
    return {
        "fix_messages_stored_after_warmup": messages,
        "orders_accepted_after_warmup": orders,
        "rss_growth_mb": round(grown, 1),
        "explained_by_fix_store_mb": round(store_mb, 1),
        "explained_by_engine_history_mb": round(engine_mb, 1),
        "rss_growth_unexplained_mb": round(grown - store_mb - engine_mb, 1),
    }


def slope_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (minute, value) points, per hour."""
    if len(points) < 2:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    if not var:
        return None
    return round(60 * sum((x - mx) * (y - my) for x, y in points) / var, 2)


def plot(rows: list[dict[str, Any]], path: Path, report: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [r["minute"] for r in rows]
    warm = [r for r in rows if r["minute"] >= report["stability"]["warmup_minutes"]] or rows[-1:]
    cap = report["stability"].get("engine_orders_cap")  # (reports from before the window: none)
    for r in rows:  # what RSS would be if it grew only by the two known retentions (bench/retention.py)
        r["rss_retention_model_mb"] = (
            warm[0]["rss_mb"] + retention(warm[0], r, cap)["explained_by_fix_store_mb"]
            + retention(warm[0], r, cap)["explained_by_engine_history_mb"]
            if r["minute"] >= warm[0]["minute"] else None
        )  # fmt: skip
    panels = [
        ("gateway RSS (MB)", [("rss_mb", "RSS"), ("rss_retention_model_mb", "after warm-up + FIX store index + "
                                                  "engine order history")]),
        ("open descriptors", [("fds", "gateway")]),
        ("on disk (MB)", [("journal_mb", "journal"), ("fix_store_mb", "FIX store"), ("audit_mb", "audit trail")]),
        ("resting orders", [("resting_orders", "venue")]),
        ("order -> first report (µs, log scale)", [("latency_p50_us", "p50"), ("latency_p99_us", "p99")]),
        ("load", [("requests_per_s", "requests/s"), ("gateway_cpu_pct", "gateway CPU %"),
                  ("clients_cpu_pct", "clients CPU %")]),
        ("machine: load average (1 min), CPU stolen by the host (%)", [("load1", "load1"),
                                                                      ("host_steal_pct", "steal %")]),
        ("market-data messages built (cumulative)", [("md_messages", "W and X")]),
    ]  # fmt: skip
    fig, axes = plt.subplots(4, 2, figsize=(13, 13), sharex=True)
    for ax, (title, series) in zip(axes.flat, panels, strict=True):
        for key, label in series:
            ax.plot(t, [r[key] if r.get(key) is not None else float("nan") for r in rows], label=label)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        if "µs" in title:
            ax.set_yscale("log")  # milliseconds on a quiet machine, seconds when neighbours take the CPU
        if len(series) > 1:
            ax.legend(fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("minutes")
    s = report["stability"]
    fig.suptitle(
        f"fixgw soak: {report['settings']['rate']:g} requests/s, {report['settings']['md_sessions']} market-data "
        f"sessions, {report['settings']['minutes']:g} min — RSS growth after warm-up {s['rss_growth_pct']}%, "
        f"p99 {s['p99_us_start']} -> {s['p99_us_end']} µs (quiet seconds {s.get('quiet_p99_us_start')} -> "
        f"{s.get('quiet_p99_us_end')}), functional {'OK' if report['functional_ok'] else 'FAIL'}",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=80)
    plt.close(fig)


def summary(report: dict[str, Any]) -> str:
    f, s, t = report["functional"], report["stability"], report["totals"]
    errors = ", ".join(f"{k} {v}" for k, v in f["errors"].items() if v) or "none"
    return "\n".join([
        f"Command: {report['command']}",
        f"Machine: {report['machine']}; load average (1 min) {s['load1_min']}-{s['load1_max']}, mean {s['load1_mean']}",
        "",
        "| verdict | figure |",
        "|---|---|",
        f"| functional | {'OK' if report['functional_ok'] else 'FAIL'}: errors {errors}; books exact "
        f"{f['books_exact']}/{f['books_total']}; order model vs venue differences "
        f"{f['order_model_vs_venue_differences']}; open orders clients {f['open_orders_clients']} / venue "
        f"{f['resting_orders_venue']:.0f} |",
        f"| RSS after {s['warmup_minutes']} min warm-up -> end | {s['rss_mb_after_warmup']} -> {s['rss_mb_end']} MB "
        f"({s['rss_growth_pct']}%, slope {s['rss_mb_per_hour']} MB/h) |",
        f"| order -> report p50, first vs last {s['latency_window_samples']} samples | {s['p50_us_start']} -> "
        f"{s['p50_us_end']} µs |",
        f"| order -> report p99, first vs last {s['latency_window_samples']} samples | {s['p99_us_start']} -> "
        f"{s['p99_us_end']} µs ({s['p99_drift_pct']}%; host steal {s['host_steal_pct_start']} -> "
        f"{s['host_steal_pct_end']}%) |",
        f"| the same over the seconds the host took at most {s['steal_limit_pct']}% (and the second before) | "
        f"{s['quiet_p99_us_start']} -> {s['quiet_p99_us_end']} µs ({s['quiet_p99_drift_pct']}%; "
        f"{s['quiet_seconds_start']} and {s['quiet_seconds_end']} seconds) |",
        f"| RSS growth explained by the FIX store's index / the engine's order history / not explained | "
        f"{s['explained_by_fix_store_mb']} / {s['explained_by_engine_history_mb']} / "
        f"{s['rss_growth_unexplained_mb']} MB ({s['fix_messages_stored_after_warmup']:,} FIX messages stored, "
        f"{s['orders_accepted_after_warmup']:,.0f} orders accepted after warm-up) |",
        f"| open descriptors | {s['fds_start']} -> {s['fds_end']} |",
        f"| stability | {'OK' if report['stability_ok'] else 'FAIL'} (targets: RSS < 5%, p99 drift over quiet "
        "seconds <= 20%) |",
        f"| requests, reports, trades | {t['requests']:,}, {t['reports']:,}, {t['trades_reported']:,} "
        f"(mean {t['mean_requests_per_s']} requests/s) |",
        f"| market data received | {t['md_incrementals']:,} X, {t['md_snapshots']:,} W "
        f"({t['snapshot_book_checks']:,} books checked against snapshots) |",
        f"| log-outs/ins, gaps recovered by resend, cancel-on-disconnect reports | {t['relogons']}, "
        f"{t['resend_gaps_recovered']}, {t['cancel_on_disconnect_reports']:,} |",
        f"| on disk at the end: journal, FIX store, audit trail | {t['journal_mb_end']}, {t['fix_store_mb_end']}, "
        f"{t['audit_mb_end']} MB |",
    ])  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--rate", type=float, default=1000.0, help="order-entry requests/s in total")
    p.add_argument("--oe-sessions", type=int, default=8)
    p.add_argument("--md-sessions", type=int, default=50)
    p.add_argument("--md-symbols", type=int, default=1, help="symbols each market-data session subscribes to")
    p.add_argument("--md-top-sessions", type=int, default=0, help="market-data sessions on a depth-limited view")
    p.add_argument("--md-top-depth", type=int, default=1, help="MarketDepth of those sessions (the others: full)")
    p.add_argument("--md-ports", type=int, default=2)
    p.add_argument("--oe-procs", type=int, default=1)
    p.add_argument("--md-procs", type=int, default=1)
    p.add_argument("--working-set", type=int, default=600, help="open orders the load keeps, all sessions")
    p.add_argument("--sample", type=float, default=60.0, help="seconds between samples")
    p.add_argument("--warmup-minutes", type=float, default=5.0)
    p.add_argument("--window", type=int, default=5, help="samples pooled for p99 at the start and the end")
    p.add_argument(
        "--steal-limit",
        type=float,
        default=2.0,
        help="a second counts for the p99 verdict if the host took at most this %% of CPU in it and before",
    )
    p.add_argument("--relogon-every", type=float, default=30.0, help="seconds between log-out/ins (each process)")
    p.add_argument("--away", type=float, default=2.0, help="seconds a session stays logged out")
    p.add_argument("--durability", default="group")
    p.add_argument("--snapshot-every", type=int, default=100_000, help="engine snapshot every N commands")
    p.add_argument("--md-snapshot-interval", type=float, default=5.0)
    p.add_argument("--out", type=Path, default=Path("bench/results/soak"))
    p.add_argument("--workdir", type=Path, default=None, help="where the venue's data goes (default: a temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the venue's data directory")
    p.add_argument("--no-plot", dest="plot", action="store_false")
    p.add_argument("--tracemalloc", action="store_true", help="tracemalloc snapshots of the gateway under --out")
    ns = p.parse_args(argv)
    ns.command = "python -m bench.soak " + " ".join(argv if argv is not None else sys.argv[1:])
    return ns


def replot(directory: Path) -> Path:
    """Draw ``soak.png`` again from a run's ``soak.csv`` and ``soak.json``."""
    report = json.loads((directory / "soak.json").read_text())
    with (directory / "soak.csv").open() as f:
        rows = [{k: float(v) if v not in ("", "None") else None for k, v in row.items()} for row in csv.DictReader(f)]
    plot(rows, directory / "soak.png", report)
    return directory / "soak.png"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--replot"] and len(args) == 2:
        print(replot(Path(args[1])))
        return 0
    ns = parse_args(argv)
    report = run(ns)
    print(summary(report))
    print(f"\nCSV, plot and report: {ns.out}/soak.csv, soak.png, soak.json")
    return 0 if report["functional_ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
