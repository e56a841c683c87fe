"""The multi-process venue on NATS JetStream against the one-process venue, in one run, and each role's CPU per unit.

    python -m bench.cluster_bench [--parts oe,md] [--reps 3] [--seconds 5] [--rates 1000,max]
                                  [--layouts one,r1-gw1,r1-gw2,r3-gw1,r3-gw2] [--md-layouts one,r1-pub2,r1-pub4]
                                  [--md-sessions 1000] [--md-rate 10] [--md-seconds 15] [--json-out FILE]
    python -m bench.cluster_bench --smoke          # every part once, tiny: does it run (tests/test_cluster_bench.py)

Layouts (each started from scratch, measured, stopped; the list is repeated ``--reps`` times, so every layout sees
the same machine conditions and medians are reported):

* ``one``      the one-process venue (``fixgw serve``, journal ``group``, the shipped default) on the same config;
* ``rR-gwG``   ``R`` nats-server processes (one server, or a cluster of three), streams with ``R`` replicas, one
               engine, ``G`` order-entry gateways (the four load sessions split between them);
* ``rR-pubP``  the same with one gateway and ``P`` market-data publishers sharing the market-data sessions.

**Order entry** (``oe``): ``bench/loadgen.py`` in its own process (one per gateway, all started together), 4
sessions in all, 16 orders in flight per session at ``max``, resting limit orders; each rate runs ``--warmup`` +
``--seconds``. Latency is order sent -> first ExecutionReport received; with two gateways each load generator
reports its own percentiles and the table shows the worse of the two. Before the first rate an unmeasured short
run logs every session on (each first Logon is refused while the venue verifies the password) and warms the streams.

**Market data** (``md``): ``bench/md_bench.py``'s machinery: ``--md-sessions`` subscribers in one
``bench/md_clients.py`` process spread over 8 ports (publisher ``j`` of ``P`` serves the ports ``k`` with ``k % P ==
j``), an open-loop order flow of ``--md-rate`` orders/s in which every order changes the book (one X per order per
subscriber), latency order sent -> X read by the subscriber, every book compared with a final snapshot. ``one`` is
``md_bench.run_once`` itself; in a cluster the snapshot is taken once the publisher's book equals the driver's (the
gateway's Heartbeat no longer means the engine has applied every order). Nothing is measured before every venue
process has re-hashed the sessions' weak password hashes (``md_bench.wait_rehashed``: ~40 ms of a core each).

**CPU per unit of work**, from utime+stime in ``/proc/<pid>/stat`` of every process before and after each run
(robust on a shared machine, unlike wall time): gateway µs per order (its CPU / orders sent; with two gateways, both
together: each decodes every result), engine µs per command, nats-server µs per stream message (command and result
messages stored, from the streams' last sequences; all servers together, and per order), publisher µs per X sent,
the one-process venue's µs per order and per X. "other CPU %" is the rest of the machine (other users) during the
run: ``/proc/stat`` busy time minus every process of the run and interrupts, in % of one core. Before the order-entry
rates, ``--idle`` seconds with no load at all measure each process's idle CPU (timers, heartbeats, the servers' own
cluster traffic); "net" figures subtract it, so they are the cost of the work itself. Each role's net CPU per order
at the lowest and the highest rate (which differ in how many orders a stream message carries) gives, per rep, a
cost per message ``a`` and per order ``b``: cost per order = a x messages per order + b (BENCHMARKS.md's capacity
model is built on them).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench import md_bench
from bench.run_floor_vs import REPO, cpu_seconds
from tests.cluster_process import RoleProcess
from tests.gateway_process import GatewayProcess, dump_toml, free_port, make_config
from tests.nats_cluster import NatsCluster
from tools.bench import bench_venue

OE_SESSIONS = 4
MD_PORTS = 8  # market-data ports; a multiple of every publisher count used (1, 2, 4, 8)
PASSWORDS = "".join(f"CLIENT{n}=pass{n}\n" for n in range(1, 10))  # the demo config's


@dataclass(frozen=True)
class Layout:
    name: str
    replicas: int = 0  # 0: the one-process venue; else this many nats-server processes and stream replicas
    gateways: int = 1
    publishers: int = 0

    @staticmethod
    def parse(name: str) -> Layout:
        if name == "one":
            return Layout(name)
        m = re.fullmatch(r"r([13])-(gw|pub)(\d)", name)
        if not m:
            raise ValueError(f"layout {name!r}: one, rR-gwG or rR-pubP (R 1 or 3)")
        count = int(m.group(3))
        if m.group(2) == "gw":
            return Layout(name, int(m.group(1)), gateways=count)
        if MD_PORTS % count:
            raise ValueError(f"layout {name!r}: the publishers must divide {MD_PORTS}")
        return Layout(name, int(m.group(1)), publishers=count)


# ---------------------------------------------------------------------- measuring


def machine() -> tuple[float, float]:
    """(busy, interrupts) CPU seconds of the whole machine so far."""
    return md_bench.machine_busy_seconds(), md_bench.irq_seconds()


def cpu_all(pids: dict[str, int]) -> dict[str, float]:
    return {name: cpu_seconds(pid) for name, pid in pids.items()}


async def _stream_last(urls: list[str], names: list[str]) -> dict[str, int]:
    from seqlog.jetstream import connect, last_sequence

    nc = await connect(urls, "fixgw-cluster-bench")
    try:
        js = nc.jetstream()
        return {name: await last_sequence(js, name) for name in names}
    finally:
        await nc.close()


def stream_messages(urls: list[str]) -> int:
    """Messages stored so far in the shard's command and result streams (their last sequences)."""
    return sum(asyncio.run(_stream_last(urls, ["FIXGW_CMD_0", "FIXGW_RES_0"])).values())


def per_role(cpu: dict[str, float]) -> dict[str, float]:
    """CPU seconds by role: the process names are ``role`` or ``role:name``."""
    out: dict[str, float] = {}
    for name, seconds in cpu.items():
        role = name.split(":", 1)[0]
        out[role] = out.get(role, 0.0) + seconds
    return out


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# ---------------------------------------------------------------------- the venue


def venue_config(
    directory: Path, layout: Layout, urls: list[str], md_sessions: int = 0
) -> tuple[Path, dict[str, int], list[int]]:
    """The benchmark venue (demo config, every account funded, no limits, cancel-on-disconnect off), its
    ``[cluster]`` tables for ``layout``; returns the file, the ports by name and the market-data ports."""
    md_ports: list[int] = []
    if md_sessions:
        path, ports, md_ports = md_bench.write_config(directory, md_sessions, MD_PORTS, "group")
    else:
        path, ports = make_config(directory)
    data = bench_venue(tomllib.loads(path.read_text()))
    if layout.replicas:  # the role processes say they are ready (engine_active ...) at info
        data["venue"]["log_level"] = "info"
    for session in data["sessions"].values():
        if session.get("role") == "order_entry":
            session["cancel_on_disconnect"] = False
    text = dump_toml(data)
    if layout.replicas:
        lines = ["", "[cluster]", "servers = [" + ", ".join(f'"{u}"' for u in urls) + "]",
                 f"replicas = {layout.replicas}", ""]  # fmt: skip
        oe = [f"CLIENT{n}" for n in range(1, OE_SESSIONS + 1)]
        share = -(-len(oe) // layout.gateways)
        for g in range(layout.gateways):
            name = f"gw{g + 1}"
            ports[name] = free_port()
            sessions = oe[g * share : (g + 1) * share]
            lines += [f"[cluster.gateways.{name}]", f"sessions = {json.dumps(sessions)}",
                      f"order_entry_port = {ports[name]}", f"drop_copy_port = {free_port()}", ""]  # fmt: skip
        for p in range(layout.publishers):
            sessions = ["MD0"] if p == 0 else []  # the truth snapshot's session, on the default port
            sessions += [f"MD{i}" for i in range(1, md_sessions + 1) if (i - 1) % MD_PORTS % layout.publishers == p]
            lines += [f"[cluster.publishers.md{p + 1}]", f"sessions = {json.dumps(sessions)}", ""]
        text += "\n".join(lines)
    path.write_text(text)
    return path, ports, md_ports


class Venue:
    """The processes of one layout: started in order, stopped whatever happens; ``pids`` by ``role[:name]``."""

    def __init__(self, directory: Path, layout: Layout, md_sessions: int = 0) -> None:
        self.directory, self.layout = directory, layout
        self.nats: NatsCluster | None = None
        self.roles: list[RoleProcess] = []
        self.one: GatewayProcess | None = None
        self.pids: dict[str, int] = {}
        urls: list[str] = []
        if layout.replicas:
            self.nats = NatsCluster(directory / "nats", layout.replicas)
            urls = self.nats.urls
        self.urls = urls
        self.config, self.ports, self.md_ports = venue_config(directory, layout, urls, md_sessions)

    def start(self) -> Venue:
        layout = self.layout
        if self.nats is None:
            self.one = GatewayProcess(self.config, self.ports, self.directory / "venue.log")
            self.one.start(timeout=120.0)
            assert self.one.proc is not None
            self.pids["venue"] = self.one.proc.pid
            return self
        self.nats.start()
        for i, proc in enumerate(self.nats.procs):
            assert proc is not None
            self.pids[f"nats:n{i}"] = proc.pid
        engine = self._role("engine", "e1")
        engine.wait_for("engine_active")
        engine.wait_for("startup_commands_published")  # the money rules and opening balances
        for g in range(layout.gateways):
            self._role("gateway", f"gw{g + 1}")
        for p in range(layout.publishers):
            self._role("md", f"md{p + 1}")
        return self

    def _role(self, role: str, name: str) -> RoleProcess:
        proc = RoleProcess(self.config, role, name, self.directory)
        self.roles.append(proc)
        proc.start(timeout=120.0)
        assert proc.proc is not None
        self.pids[f"{role}:{name}"] = proc.proc.pid
        return proc

    def gateway_ports(self) -> list[int]:
        if self.nats is None:
            return [self.ports["order_entry"]]
        return [self.ports[f"gw{g + 1}"] for g in range(self.layout.gateways)]

    def stream_messages(self) -> int:
        return stream_messages(self.urls) if self.urls else 0

    def stop(self) -> None:
        for proc in reversed(self.roles):
            if proc.alive():
                with contextlib.suppress(Exception):
                    proc.stop()
        if self.one is not None and self.one.proc is not None:
            with contextlib.suppress(Exception):
                self.one.stop(timeout=60.0)
        if self.nats is not None:
            self.nats.stop()


# ---------------------------------------------------------------------- order entry


def loadgen_argv(port: int, first: int, sessions: int, rate: str, ns: argparse.Namespace, passwords: Path,
                 seconds: float, warmup: float) -> list[str]:  # fmt: skip
    return [
        sys.executable, "-m", "bench.loadgen", "--port", str(port), "--sessions", str(sessions), "--first", str(first),
        "--rate", rate, "--in-flight", "16", "--seconds", str(seconds), "--warmup", str(warmup),
        "--password-file", str(passwords), "--logon-timeout", "60",
    ]  # fmt: skip


def run_loadgens(venue: Venue, rate: str, ns: argparse.Namespace, passwords: Path, seconds: float,
                 warmup: float) -> list[dict[str, Any]]:  # fmt: skip
    """One load generator per gateway, all at once; each gets its share of the sessions and of the rate."""
    ports = venue.gateway_ports()
    share = OE_SESSIONS // len(ports)
    each = rate if rate == "max" else f"{float(rate) / len(ports):g}"
    procs = [
        subprocess.Popen(
            loadgen_argv(port, 1 + i * share, share, each, ns, passwords, seconds, warmup),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, port in enumerate(ports)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=warmup + seconds + 90)
        lines = [line for line in out.splitlines() if line.startswith("{")]
        if not lines:
            raise RuntimeError(f"loadgen produced no result (exit {proc.returncode}): {err[-2000:]}")
        result: dict[str, Any] = json.loads(lines[-1])
        if proc.returncode != 0 or "error" in result:
            raise RuntimeError(f"loadgen failed (exit {proc.returncode}): {lines[-1][:2000]}")
        results.append(result)
    return results


def idle_rates(venue: Venue, seconds: float) -> dict[str, float]:
    """CPU seconds per second each process spends with no load at all (timers, heartbeats, the cluster's own
    traffic): subtracted from a loaded run's CPU to give the cost of the work itself ("net")."""
    if seconds <= 0:
        return {name: 0.0 for name in venue.pids}
    cpu0, t0 = cpu_all(venue.pids), time.monotonic()
    time.sleep(seconds)  # the measurement window itself: nothing is sent
    cpu1, wall = cpu_all(venue.pids), time.monotonic() - t0
    return {name: (cpu1[name] - cpu0[name]) / wall for name in cpu0}


def oe_run(venue: Venue, rate: str, ns: argparse.Namespace, passwords: Path, idle: dict[str, float]) -> dict[str, Any]:
    """One measured load run against a started venue: throughput, latency, CPU per unit of every role."""
    busy0, irq0 = machine()
    cpu0, msgs0, t0 = cpu_all(venue.pids), venue.stream_messages(), time.monotonic()
    gens = run_loadgens(venue, rate, ns, passwords, ns.seconds, ns.warmup)
    wall = time.monotonic() - t0
    msgs = venue.stream_messages() - msgs0
    cpu1 = cpu_all(venue.pids)
    busy1, irq1 = machine()
    cpu = {name: cpu1[name] - cpu0[name] for name in cpu0}
    roles = per_role(cpu)
    sent = sum(int(g["orders_sent"]) for g in gens)
    loadgen_cpu = sum(float(g["loadgen_cpu_s"]) for g in gens)
    irq = irq1 - irq0
    other = busy1 - busy0 - sum(cpu.values()) - loadgen_cpu - irq

    net = per_role({name: max(cpu[name] - idle[name] * wall, 0.0) for name in cpu})

    def us(role: str, per: float, of: dict[str, float] = roles) -> float | None:
        return round(1e6 * of[role] / per, 1) if role in of and per else None

    rejects = sum(sum(int(v) for k, v in g["counts"].items() if k != "er") for g in gens if g.get("counts"))
    return {
        "part": "oe", "layout": venue.layout.name, "rate": rate, "orders_sent": sent,
        "orders_per_s": round(sum(float(g["orders_per_s"]) for g in gens), 1),
        "latency_us": {q: max(float(g["latency_us"][q] or 0) for g in gens) for q in ("p50", "p99", "p99.9")},
        "unanswered": sum(int(g["unanswered"]) for g in gens), "rejects_or_other": rejects,
        "counts": [g.get("counts") for g in gens],
        "stream_messages": msgs, "messages_per_order": round(msgs / sent, 3) if sent else None,
        "cpu_s": {k: round(v, 3) for k, v in cpu.items()},
        "venue_us_per_order": us("venue", sent), "gateway_us_per_order": us("gateway", sent),
        "engine_us_per_command": us("engine", sent), "nats_us_per_message": us("nats", msgs),
        "nats_us_per_order": us("nats", sent),
        "all_roles_us_per_order": round(1e6 * sum(roles.values()) / sent, 1) if sent else None,
        "idle_cpu_pct": {k: round(100 * v, 1) for k, v in idle.items()},
        "net_us_per_order": {role: us(role, sent, net) for role in net},
        "net_nats_us_per_message": us("nats", msgs, net),
        "loadgen_cpu_s": round(loadgen_cpu, 3), "wall_s": round(wall, 2),
        "irq_cpu_pct": round(100 * irq / wall, 1), "other_cpu_pct": round(100 * other / wall, 1),
        "loadavg_after": loadavg(),
    }  # fmt: skip


def oe_layout(layout: Layout, ns: argparse.Namespace, tmp: Path, rep: int) -> list[dict[str, Any]]:
    directory = tmp / f"oe-{layout.name}-{rep}"
    directory.mkdir()
    passwords = directory / "passwords.txt"
    passwords.write_text(PASSWORDS)
    venue = Venue(directory, layout)
    runs: list[dict[str, Any]] = []
    ok = False
    try:
        loadavg_before = loadavg()
        venue.start()
        run_loadgens(venue, "200", ns, passwords, 1.0, 0.5)  # logons (passwords verified), streams warm; not measured
        idle = idle_rates(venue, ns.idle)
        for rate in ns.rates:
            try:
                run = oe_run(venue, rate, ns, passwords, idle)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:  # e.g. still overloaded from the previous rate
                print(f"{layout.name} {rate}: {str(exc)[:300]}", file=sys.stderr, flush=True)
                continue
            run.update(rep=rep, loadavg_before=loadavg_before)
            runs.append(run)
            lat = run["latency_us"]
            print(f"rep {rep} {layout.name} {rate}: {run['orders_per_s']} orders/s p50 {lat['p50']} p99 {lat['p99']} "
                  f"µs; µs/order gw {run['gateway_us_per_order']} engine {run['engine_us_per_command']} nats "
                  f"{run['nats_us_per_order']} venue {run['venue_us_per_order']}; other {run['other_cpu_pct']}%",
                  file=sys.stderr, flush=True)  # fmt: skip
        ok = True
    finally:
        venue.stop()
        if ok and not ns.keep:
            shutil.rmtree(directory, ignore_errors=True)
        else:
            print(f"run directory kept: {directory}", file=sys.stderr)
    return runs


# ---------------------------------------------------------------------- market data


def md_args(ns: argparse.Namespace) -> argparse.Namespace:
    return md_bench.parse_args([
        "--sessions", str(ns.md_sessions), "--rate", f"{ns.md_rate:g}", "--seconds", f"{ns.md_seconds:g}",
        "--md-ports", str(MD_PORTS), "--quiet-wait", f"{ns.quiet_wait:g}", "--durability", "group",
    ])  # fmt: skip


def wait_truth(port: int, driver: md_bench.OrderDriver, timeout: float = 60.0) -> dict[str, Any]:
    """The snapshot of MD0 once the publisher's book equals the driver's own (the engine applied every order)."""
    deadline = time.monotonic() + timeout
    bids, asks = driver.model()
    while True:
        truth = md_bench.truth_snapshot(port)
        if {Decimal(p): Decimal(q) for p, q in truth["bids"]} == bids and {
            Decimal(p): Decimal(q) for p, q in truth["asks"]
        } == asks:
            return truth
        if time.monotonic() > deadline:
            raise TimeoutError(f"the publisher's book never equalled the driver's: {truth}")
        driver.poll(0.2)


def md_cluster_run(layout: Layout, ns: argparse.Namespace, tmp: Path, rep: int) -> dict[str, Any]:
    """``md_bench.run_once`` with the venue split: gateway gw1, engine e1, publishers md1..mdP, nats-server(s)."""
    args = md_args(ns)
    directory = tmp / f"md-{layout.name}-{rep}"
    directory.mkdir()
    venue = Venue(directory, layout, args.sessions)
    driver = md_bench.OrderDriver(venue.ports["gw1"], seed=args.seed + rep)
    clients: md_bench.Clients | None = None
    client_log = (directory / "md_clients.log").open("wb")
    result: dict[str, Any] = {"part": "md", "layout": layout.name, "sessions": args.sessions, "rate": args.rate,
                              "seconds": args.seconds, "rep": rep, "source": md_bench.source_version(),
                              "busy_cores_before": md_bench.wait_quiet(args.quiet_wait),
                              "loadavg_before": loadavg()}  # fmt: skip
    ok = False
    try:
        venue.start()
        driver.logon()
        driver.preload(args.preload)
        clients = md_bench.Clients(
            ["--ports", ",".join(map(str, venue.md_ports)), "--sessions", str(args.sessions), "--password",
             md_bench.MD_PASSWORD, "--symbol", md_bench.SYMBOL, "--max-seconds", str(int(args.seconds + 600))],
            client_log,
        )  # fmt: skip
        ready = clients.wait("ready", 600.0, driver.poll)
        result["subscribe_s"] = ready["setup_s"]
        if ready["failed_count"]:
            raise RuntimeError(f"{ready['failed_count']} sessions did not subscribe, e.g. {ready['failed']}")
        data = directory / "data"
        result["rehash_wait_s"] = md_bench.wait_rehashed([data / f"md{p + 1}" for p in range(layout.publishers)],
                                                         args.sessions, driver.poll)  # fmt: skip
        time.sleep(1.0)  # let the subscription burst (snapshots, first probes) settle, as md_bench does
        pids = {**venue.pids, "clients": clients.proc.pid}
        busy0, irq0 = machine()
        cpu0, msgs0, t0 = cpu_all(pids), venue.stream_messages(), time.monotonic()
        driver.run(args.rate, args.seconds)
        truth = wait_truth(venue.ports["market_data"], driver)
        sendlog_path = directory / "sendlog.json"
        sendlog_path.write_text(json.dumps(driver.sendlog))
        clients.send({"cmd": "finish", "truth": truth, "sendlog": str(sendlog_path), "timeout": 60.0})
        caught = clients.wait("caught_up", 90.0)
        wall = time.monotonic() - t0
        cpu1, msgs = cpu_all(pids), venue.stream_messages() - msgs0
        busy1, irq1 = machine()
        res = clients.wait("result", 120.0)
        cpu = {name: cpu1[name] - cpu0[name] for name in cpu0}
        roles = per_role(cpu)
        delivered = int(res["counts"]["X"])
        orders = driver.counts["sent"]
        irq = irq1 - irq0
        other = busy1 - busy0 - sum(cpu.values()) - irq  # the driver (this process) counts as other: ~1-3%
        span = res["first_send_to_last_recv_s"] or wall
        result.update({
            "orders": orders, "order_rejects": driver.counts["rejects"], "x_delivered": delivered,
            "x_per_s": round(delivered / span, 1), "offered_x_per_s": round(args.sessions * args.rate, 1),
            "latency_ms": res["latency_ms"], "p50_ms_first_session": res["p50_ms_first_session"],
            "p50_ms_last_session": res["p50_ms_last_session"], "x_matched": res["x_matched"],
            "x_mismatched": res["x_mismatched"], "books_exact": res["books_exact"], "books_total": res["books_total"],
            "behind_at_end": caught["behind"], "seq_gaps": res["counts"]["seq_gaps"],
            "rpt_gaps": res["counts"]["rpt_gaps"], "closed_sessions": res["closed_sessions"],
            "stream_messages": msgs, "cpu_s": {k: round(v, 3) for k, v in cpu.items()}, "cpu_window_s": round(wall, 3),
            "publisher_us_per_x": round(1e6 * roles["md"] / delivered, 2) if delivered else None,
            "publisher_cpu_pct": {k: round(100 * v / wall, 1) for k, v in cpu.items() if k.startswith("md:")},
            "gateway_us_per_order": round(1e6 * roles["gateway"] / orders, 1) if orders else None,
            "engine_us_per_command": round(1e6 * roles["engine"] / orders, 1) if orders else None,
            "nats_us_per_message": round(1e6 * roles["nats"] / msgs, 1) if msgs else None,
            "clients_cpu_pct": round(100 * cpu["clients"] / wall, 1),
            "irq_cpu_pct": round(100 * irq / wall, 1), "other_cpu_pct": round(100 * other / wall, 1),
            "loadavg_after": loadavg(),
        })  # fmt: skip
        ok = True
        return result
    finally:
        driver.logout()
        if clients is not None:
            clients.stop()
        client_log.close()
        venue.stop()
        if ok and not ns.keep:
            shutil.rmtree(directory, ignore_errors=True)
        else:
            print(f"run directory kept: {directory}", file=sys.stderr)


def md_layout(layout: Layout, ns: argparse.Namespace, tmp: Path, rep: int) -> dict[str, Any]:
    if layout.replicas:
        run = md_cluster_run(layout, ns, tmp, rep)
    else:
        run = md_bench.run_once(md_args(ns), rep - 1)
        run.update(part="md", layout="one", rep=rep, publisher_us_per_x=run["gateway_cpu_us_per_x"])
    lat = run["latency_ms"]
    print(f"rep {rep} md {layout.name}: {run['x_per_s']} X/s p50 {lat['p50']} p99 {lat['p99']} ms, "
          f"publisher µs/X {run['publisher_us_per_x']}, books {run['books_exact']}/{run['books_total']}, "
          f"other {run['other_cpu_pct']}%", file=sys.stderr, flush=True)  # fmt: skip
    return run


# ---------------------------------------------------------------------- summary


def med(runs: list[dict[str, Any]], *path: str) -> float | None:
    values = []
    for run in runs:
        value: Any = run
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, int | float):
            values.append(float(value))
    return statistics.median(values) if values else None


def rng(runs: list[dict[str, Any]], *path: str, digits: int = 0) -> str:
    """Median (min-max) of one figure."""
    values = [v for r in runs if (v := med([r], *path)) is not None]
    if not values:
        return "-"
    m = statistics.median(values)
    text = f"{m:,.{digits}f}"
    return text + (f" ({min(values):,.{digits}f}-{max(values):,.{digits}f})" if len(values) > 1 else "")


def oe_summary(runs: list[dict[str, Any]], layouts: list[str], rates: list[str]) -> str:
    rows = [
        "| layout | offered | orders/s | p50 µs | p99 µs | gateway µs/order | engine µs/command | nats µs/message "
        "| messages/order | nats µs/order | all processes µs/order | other CPU % |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for layout in layouts:
        for rate in rates:
            mine = [r for r in runs if r["part"] == "oe" and r["layout"] == layout and r["rate"] == rate]
            if not mine:
                continue
            gw = rng(mine, "venue_us_per_order", digits=1) if layout == "one" else rng(mine, "gateway_us_per_order",
                                                                                          digits=1)  # fmt: skip
            rows.append(
                f"| {layout} | {rate} | {rng(mine, 'orders_per_s')} | {rng(mine, 'latency_us', 'p50')} "
                f"| {rng(mine, 'latency_us', 'p99')} | {gw} | {rng(mine, 'engine_us_per_command', digits=1)} "
                f"| {rng(mine, 'nats_us_per_message', digits=1)} | {rng(mine, 'messages_per_order', digits=2)} "
                f"| {rng(mine, 'nats_us_per_order', digits=1)} | {rng(mine, 'all_roles_us_per_order', digits=1)} "
                f"| {rng(mine, 'other_cpu_pct')} |"
            )
    if "max" in rates and "one" in layouts:
        rows += ["", "| maximum throughput, same rep | ratio to `one`, median (each rep) |", "|---|---|"]
        for layout in (name for name in layouts if name != "one"):
            ratios = []
            for rep in sorted({r["rep"] for r in runs}):
                pick = {
                    r["layout"]: r["orders_per_s"] for r in runs
                    if r["part"] == "oe" and r["rep"] == rep and r["rate"] == "max"
                }  # fmt: skip
                if pick.get(layout) and pick.get("one"):
                    ratios.append(pick[layout] / pick["one"])
            if ratios:
                each = " ".join(f"{x:.2f}" for x in ratios)
                rows.append(f"| {layout} / one | {statistics.median(ratios):.2f} ({each}) |")
    return "\n".join(rows)


def oe_net_summary(runs: list[dict[str, Any]], layouts: list[str], rates: list[str]) -> str:
    """CPU per order with each process's idle CPU subtracted, and that idle CPU (% of a core, all processes of the
    role together)."""
    rows = [
        "| layout | offered | messages/order | net µs/order: gateway / engine / nats | net nats µs/message "
        "| idle CPU %: gateway / engine / nats |",
        "|---|---|---|---|---|---|",
    ]
    for layout in layouts:
        for rate in rates:
            mine = [r for r in runs if r["part"] == "oe" and r["layout"] == layout and r["rate"] == rate]
            if not mine or layout == "one":
                continue
            idle = [{"idle": per_role(r["idle_cpu_pct"])} for r in mine]
            rows.append(
                f"| {layout} | {rate} | {rng(mine, 'messages_per_order', digits=2)} "
                f"| {' / '.join(rng(mine, 'net_us_per_order', k, digits=1) for k in ('gateway', 'engine', 'nats'))} "
                f"| {rng(mine, 'net_nats_us_per_message', digits=1)} "
                f"| {' / '.join(rng(idle, 'idle', k, digits=1) for k in ('gateway', 'engine', 'nats'))} |"
            )
    return "\n".join(rows)


def oe_fits(runs: list[dict[str, Any]], layouts: list[str], rates: list[str]) -> str:
    """Per role, net CPU per order = a x messages per order + b, through each rep's lowest and highest rate (two
    points: the batching differs between them); medians over the reps (min-max)."""
    if len(rates) < 2:
        return ""
    low, high = rates[0], rates[-1]
    rows = [
        f"| layout | role | a: µs per stream message | b: µs per order (fit of {low} and {high}) |",
        "|---|---|---|---|",
    ]
    for layout in (name for name in layouts if name != "one"):
        fits: dict[str, list[tuple[float, float]]] = {}
        for rep in sorted({r["rep"] for r in runs}):
            pts = {r["rate"]: r for r in runs if r["part"] == "oe" and r["layout"] == layout and r["rep"] == rep}
            if low not in pts or high not in pts:
                continue
            m1, m2 = pts[low]["messages_per_order"], pts[high]["messages_per_order"]
            if not m1 or not m2 or abs(m1 - m2) < 0.05:
                continue
            for role, c1 in pts[low]["net_us_per_order"].items():
                c2 = pts[high]["net_us_per_order"].get(role)
                if c1 is not None and c2 is not None:
                    a = (c1 - c2) / (m1 - m2)
                    fits.setdefault(role, []).append((a, c1 - a * m1))
        for role, pairs in sorted(fits.items()):
            a_s = [{"v": a} for a, _ in pairs]
            b_s = [{"v": b} for _, b in pairs]
            rows.append(f"| {layout} | {role} | {rng(a_s, 'v')} | {rng(b_s, 'v', digits=1)} |")
    return "\n".join(rows)


def md_summary(runs: list[dict[str, Any]], layouts: list[str]) -> str:
    rows = [
        "| layout | sessions | X delivered/s | p50 ms | p99 ms | p99.9 ms | p50 first / last session ms "
        "| publisher µs CPU/X | engine µs/command | gateway µs/order | books exact | other CPU % |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for layout in layouts:
        mine = [r for r in runs if r["part"] == "md" and r["layout"] == layout]
        if not mine:
            continue
        exact = " ".join(f"{r['books_exact']}/{r['books_total']}" for r in mine)
        rows.append(
            f"| {layout} | {mine[0]['sessions']} | {rng(mine, 'x_per_s')} | {rng(mine, 'latency_ms', 'p50', digits=1)} "
            f"| {rng(mine, 'latency_ms', 'p99', digits=1)} | {rng(mine, 'latency_ms', 'p99.9', digits=1)} "
            f"| {rng(mine, 'p50_ms_first_session', digits=1)} / {rng(mine, 'p50_ms_last_session', digits=1)} "
            f"| {rng(mine, 'publisher_us_per_x', digits=1)} | {rng(mine, 'engine_us_per_command', digits=1)} "
            f"| {rng(mine, 'gateway_us_per_order', digits=1)} | {exact} | {rng(mine, 'other_cpu_pct')} |"
        )
    return "\n".join(rows)


# ---------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--parts", default="oe,md", help="oe (order entry), md (market data) or both")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--seconds", type=float, default=5.0, help="measured window per order-entry rate")
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--rates", default="1000,max", help="order-entry rates: orders/s in all, or max")
    p.add_argument("--idle", type=float, default=3.0, help="seconds of no load measured per layout (0: none)")
    p.add_argument("--layouts", default="one,r1-gw1,r1-gw2,r3-gw1,r3-gw2", help="order-entry layouts")
    p.add_argument("--md-layouts", default="one,r1-pub2,r1-pub4", help="market-data layouts")
    p.add_argument("--md-sessions", type=int, default=1000)
    p.add_argument("--md-rate", type=float, default=10.0, help="orders/s of the market-data flow (1 X each)")
    p.add_argument("--md-seconds", type=float, default=15.0)
    p.add_argument("--quiet-wait", type=float, default=5.0, help="md: wait up to this long for an idle machine")
    p.add_argument("--smoke", action="store_true", help="every part once, tiny (a check that it runs)")
    p.add_argument("--keep", action="store_true", help="keep the run directories (configs, logs)")
    p.add_argument("--json-out", type=Path, help="append every run's JSON line here")
    ns = p.parse_args(argv)
    if ns.smoke:
        ns.reps, ns.seconds, ns.warmup, ns.rates, ns.idle = 1, 1.0, 0.5, "300", 0.5
        ns.layouts, ns.md_layouts = "one,r1-gw2", "r1-pub2"
        ns.md_sessions, ns.md_rate, ns.md_seconds, ns.quiet_wait = 4, 20.0, 1.0, 0.0
    ns.rates = ns.rates.split(",")
    ns.parts = ns.parts.split(",")
    for layouts in (ns.layouts, ns.md_layouts):
        for name in layouts.split(","):
            Layout.parse(name)  # fail before anything starts
    return ns


def main(argv: list[str] | None = None) -> int:
    ns = parse_args(argv)
    oe_layouts, md_layouts = ns.layouts.split(","), ns.md_layouts.split(",")
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="cluster-bench-") as tmp_name:
        tmp = Path(tmp_name)
        for rep in range(1, ns.reps + 1):
            batch: list[dict[str, Any]] = []
            if "oe" in ns.parts:
                for name in oe_layouts:
                    batch += oe_layout(Layout.parse(name), ns, tmp, rep)
            if "md" in ns.parts:
                for name in md_layouts:
                    batch.append(md_layout(Layout.parse(name), ns, tmp, rep))
                    if ns.json_out:  # each market-data run as soon as it ends (they take minutes)
                        with ns.json_out.open("a") as f:
                            f.write(json.dumps(batch[-1]) + "\n")
            if ns.json_out:
                with ns.json_out.open("a") as f:
                    f.writelines(json.dumps(r) + "\n" for r in batch if r["part"] == "oe")
            runs += batch
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average now {loadavg()}")  # fmt: skip
    print(f"Command: python -m bench.cluster_bench {' '.join(argv if argv is not None else sys.argv[1:])}")
    if "oe" in ns.parts:
        print(f"\nOrder entry: medians of {ns.reps} reps (min-max); latency order -> first ExecutionReport")
        print(oe_summary(runs, oe_layouts, ns.rates))
        print("\nThe same runs, each process's idle CPU subtracted (net), and that idle CPU")
        print(oe_net_summary(runs, oe_layouts, ns.rates))
        print("\nCost per message and per order, fitted per rep through the lowest and the highest rate")
        print(oe_fits(runs, oe_layouts, ns.rates))
    if "md" in ns.parts:
        print(f"\nMarket data: {ns.md_sessions} sessions, {ns.md_rate:g} orders/s, medians of {ns.reps} reps")
        print(md_summary(runs, md_layouts))
    bad = [r for r in runs if r["part"] == "md" and (r["books_exact"] != r["books_total"] or r["x_mismatched"])]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
