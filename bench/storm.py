"""Reconnect storm: many order-entry and market-data sessions connect at once, trade and subscribe, drop their
connections abruptly and come back, round after round. Reports logon times; checks that nothing is lost.

    python -m bench.storm                                  # 100 + 100 sessions, 10 rounds
    python -m bench.storm --oe 20 --md 20 --rounds 3 --iterations 1000
    fixgw bench storm -- --rounds 5

One run (the venue in its own process, every client session in this one, :mod:`bench.fixwire`):

* the config (:func:`write_config`): ``--oe`` order-entry sessions STORM1.. (cancel-on-disconnect on), ``--md``
  market-data sessions STORMMD1.. each subscribed to one of the demo symbols, a CANARY order-entry session that
  stays logged on all along, password hashes of ``--iterations`` PBKDF2 rounds (the demo config's 20,000 by
  default: the first logon of each session pays for one derivation, later ones hit the venue's cache);
* every round: all sessions connect and log on at once (the first round with ResetSeqNumFlag, later ones continuing
  their sequence numbers), beside ``--silent`` connections that never send a byte; each session recovers what it
  missed by resend (order entry: the cancel-on-disconnect reports of the previous round; market data: the
  incrementals); each order-entry session rests ``--orders`` Day orders (and, in the first round, one GTC order);
  every subscriber's book is compared with the venue's; then every session's connection is closed without a
  Logout, all at once;
* all the while the canary enters and cancels an order every 20 ms: its latency shows whether anybody was blocked;
* after the last round the sessions log on once more, recover, and log out; the venue stops.

Checks (each a count that must be zero, see :func:`check`): the session-level checks of :mod:`bench.fixwire`;
every order-entry session received exactly ``--orders`` cancel-on-disconnect reports per disconnect (its Day orders,
never its GTC order) and has only its GTC order left; the venue's audit trail has exactly one
``cancel_on_disconnect`` cancel per order and disconnect, its operational log one ``cancel_on_disconnect`` line
per session and disconnect, and its ExecutionReport metric (ExecType canceled) exactly the cancellations the
clients received; every book equal to the venue's after every round; every canary order answered.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sys
import tempfile
import time
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.fixwire import UP, LatencyHistogram, Loop, MdClient, OeClient, sum_counts
from bench.soak import exported_names, parse_metrics
from feeds.client import MarketDataClient
from gateway.auth import hash_password
from tests.gateway_process import GatewayProcess, dump_toml, make_config, metric_value
from tools.bench import bench_venue

PASSWORD = "stormpass"
LOGGED_ON = exported_names()["sessions_logged_on"]
EXECUTIONS = exported_names()["executions"]  # by exec_type: "canceled" counts every cancellation
SYMBOLS = ("AAPL", "MSFT", "BTC-USD")


def write_config(directory: Path, ns: argparse.Namespace) -> tuple[Path, dict[str, int]]:
    pw_hash = hash_password(PASSWORD, iterations=ns.iterations)
    tables: dict[str, dict[str, Any]] = {}
    for n in range(1, ns.oe + 1):
        tables[f"STORM{n}"] = {"role": "order_entry", "accounts": [f"STORMACC{n}"], "password_hash": pw_hash,
                               "cancel_on_disconnect": True}  # fmt: skip
    for n in range(1, ns.md + 1):
        tables[f"STORMMD{n}"] = {"role": "market_data", "password_hash": pw_hash}
    tables["CANARY"] = {"role": "order_entry", "accounts": ["CANARYACC"], "password_hash": pw_hash,
                        "cancel_on_disconnect": False}  # fmt: skip
    tables["STORMTRUTH"] = {"role": "market_data", "password_hash": pw_hash}
    overrides = {"venue.log_level": "info", "market_data.snapshot_interval": 0.0, "journal.snapshot_every": 0,
                 "fix.logon_timeout": ns.logon_timeout}  # fmt: skip
    path, ports = make_config(directory, overrides, tables)
    path.write_text(dump_toml(bench_venue(tomllib.loads(path.read_text()))))  # funded, no limits, no drop copy
    return path, ports


@dataclass(eq=False)
class StormClient(OeClient):
    """An order-entry session that counts the cancel-on-disconnect reports of each round."""

    cod_this_round: int = 0
    cod_per_round: list[int] = field(default_factory=list)

    def on_cod_cancel(self, order_id: bytes) -> None:
        self.cod_this_round += 1


@dataclass
class Canary:
    """A session that stays logged on and enters and cancels an order every ``period`` seconds."""

    client: OeClient
    period: float = 0.02
    next_at: float = 0.0
    sent: int = 0
    paused: bool = False

    def tick(self, now: float) -> None:
        c = self.client
        if now < self.next_at or c.state != UP or self.paused:
            return
        self.next_at = now + self.period
        order = c.orders.choose_idle(c.rng)
        if order is not None:
            c.cancel(order)
        else:
            c.new_order("AAPL", b"1", "50.00", 1)
        self.sent += 1


PERCENTILES = (("p50", 50), ("p99", 99), ("max", 100))


def ms(us: float | None) -> float | None:
    return round(us / 1000, 2) if us is not None else None


def percentiles_ms(values: list[int]) -> dict[str, float | None]:
    h = LatencyHistogram()
    for v in values:
        h.add_ns(v)
    return {name: ms(h.percentile(pct)) for name, pct in PERCENTILES}


def truth_books(port: int) -> dict[bytes, tuple[int, dict[bytes, bytes], dict[bytes, bytes]]]:
    """The venue's books as (RptSeq, bids, offers) with prices and sizes as the feed prints them."""
    out = {}
    client = MarketDataClient("127.0.0.1", port, "STORMTRUTH", PASSWORD)
    client.logon()
    try:
        for symbol in SYMBOLS:
            snap = client.fetch_snapshot(symbol, 0, ("0", "1", "2"), timeout=30)
            out[symbol.encode()] = (
                snap.rpt_seq,
                {str(lv.price).encode(): str(lv.size).encode() for lv in snap.bids},
                {str(lv.price).encode(): str(lv.size).encode() for lv in snap.asks},
            )
    finally:
        client.close(unsubscribe=False)
    return out


@dataclass
class Storm:
    ns: argparse.Namespace
    gw: GatewayProcess
    loop: Loop = field(default_factory=Loop)
    oe: list[StormClient] = field(default_factory=list)
    md: list[MdClient] = field(default_factory=list)
    canary: Canary | None = None
    errors: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    logon_ms: list[dict[str, Any]] = field(default_factory=list)
    recover_ms: list[dict[str, Any]] = field(default_factory=list)
    canary_latency: LatencyHistogram = field(default_factory=LatencyHistogram)

    def __post_init__(self) -> None:
        port_oe, port_md = self.gw.oe_port, self.gw.md_port
        for n in range(1, self.ns.oe + 1):
            self.oe.append(StormClient(loop=self.loop, comp_id=f"STORM{n}", password=PASSWORD, port=port_oe,
                                       account=f"STORMACC{n}", symbols=SYMBOLS, seed=n))  # fmt: skip
        for n in range(1, self.ns.md + 1):
            self.md.append(MdClient(loop=self.loop, comp_id=f"STORMMD{n}", password=PASSWORD, port=port_md,
                                    symbols=(SYMBOLS[n % len(SYMBOLS)],)))  # fmt: skip
        canary = OeClient(loop=self.loop, comp_id="CANARY", password=PASSWORD, port=port_oe, account="CANARYACC")
        self.canary = Canary(canary)

    @property
    def sessions(self) -> list[Any]:
        return [*self.oe, *self.md]

    def error(self, name: str, text: str, count: int = 1) -> None:
        self.errors[name] += count
        if len(self.samples) < 20:
            self.samples.append(text)

    def pause(self, seconds: float) -> None:
        assert self.canary is not None
        canary = self.canary
        self.loop.run_until(lambda: False, seconds, lambda: canary.tick(time.monotonic()))

    def run_loop(self, done: Any, timeout: float, what: str) -> None:
        assert self.canary is not None
        canary = self.canary
        if not self.loop.run_until(done, timeout, lambda: canary.tick(time.monotonic())):
            self.error("timeouts", f"{what}: not done within {timeout}s")

    # ---- phases
    def connect_all(self, reset: bool, round_no: int) -> None:
        """Every session connects and logs on at once, beside connections that never send anything."""
        silent = [socket.create_connection(("127.0.0.1", self.gw.oe_port)) for _ in range(self.ns.silent)]
        for s in self.sessions:
            s.logon_ns.clear()
            s.logon(reset)
        t0 = time.perf_counter_ns()
        recovered: dict[int, int] = {}

        def settled() -> bool:
            for s in self.sessions:
                if id(s) not in recovered and s.synced and (not isinstance(s, MdClient) or s.has_books):
                    recovered[id(s)] = time.perf_counter_ns() - t0
            return len(recovered) == len(self.sessions)

        self.run_loop(settled, 120, f"round {round_no}: logon and recovery")
        self.logon_ms.append({"round": round_no, **percentiles_ms([n for s in self.sessions for n in s.logon_ns])})
        self.recover_ms.append({"round": round_no, **percentiles_ms(list(recovered.values()))})
        for sock in silent:
            sock.close()

    def check_cod(self, round_no: int) -> None:
        """The previous round's Day orders were cancelled on disconnect, each exactly once: wait for the reports,
        then count them."""
        want = self.ns.orders
        self.run_loop(lambda: all(c.cod_this_round >= want for c in self.oe), 30, f"round {round_no}: COD reports")
        self.pause(0.2)  # a duplicate would arrive right behind
        for c in self.oe:
            c.cod_per_round.append(c.cod_this_round)
            if c.cod_this_round != want:
                self.error("cod_count", f"{c.comp_id}: {c.cod_this_round} cancel-on-disconnect reports, not {want}")
            c.cod_this_round = 0
            if len(c.orders) != 1:
                self.error("orders_left", f"{c.comp_id}: {len(c.orders)} open orders, only its GTC order expected")

    def place_orders(self, round_no: int) -> None:
        """Each order-entry session rests its Day orders (and a GTC order in the first round), never crossing."""
        for n, c in enumerate(self.oe):
            if round_no == 0:
                c.new_order(SYMBOLS[n % 3], b"1", f"{10 + n % 50}.{n % 100:02d}", 1 + n % 5, b"1")
            for k in range(self.ns.orders):
                buy = k % 2 == 0
                price = f"{80 + k}.{n % 100:02d}" if buy else f"{120 + k}.{n % 100:02d}"
                c.new_order(SYMBOLS[(n + k) % 3], b"1" if buy else b"2", price, 1 + (n + k) % 7)
        self.run_loop(lambda: all(not c.pending for c in self.oe), 60, f"round {round_no}: orders acknowledged")

    def check_books(self, round_no: int) -> None:
        """Every subscriber's book equals the venue's (the canary holds still meanwhile)."""
        assert self.canary is not None
        canary = self.canary
        canary.paused = True
        self.run_loop(lambda: not canary.client.pending, 30, f"round {round_no}: canary answered")
        truth = truth_books(self.gw.md_port)

        def caught_up() -> bool:
            return all(b.rpt >= truth[sym][0] for c in self.md for sym, b in c.books.items())

        self.run_loop(caught_up, 60, f"round {round_no}: subscribers caught up")
        for c in self.md:
            for sym, book in c.books.items():
                rpt, bids, asks = truth[sym]
                if (book.rpt, book.bids, book.asks) != (rpt, bids, asks):
                    self.error("books_inexact", f"round {round_no} {c.comp_id} {sym.decode()}: RptSeq {book.rpt} "
                               f"(venue {rpt}), {len(book.bids)}/{len(bids)} bids, {len(book.asks)}/{len(asks)} "
                               "offers")  # fmt: skip
        canary.paused = False

    def drop_all(self, round_no: int) -> None:
        for s in self.sessions:
            s.drop()
        want = 1.0  # the canary

        def venue_saw_it() -> bool:
            return logged_on(self.gw) == want

        self.run_loop(venue_saw_it, 30, f"round {round_no}: the venue sees the disconnects")

    def run(self) -> None:
        assert self.canary is not None
        self.canary.client.logon(True)
        self.run_loop(lambda: self.canary is not None and self.canary.client.synced, 30, "canary logon")
        for r in range(self.ns.rounds):
            self.connect_all(r == 0, r)
            if r:
                self.check_cod(r)
            self.place_orders(r)
            self.check_books(r)
            self.drop_all(r)
            print(f"storm round {r + 1}/{self.ns.rounds}: logon {self.logon_ms[-1]} recovery {self.recover_ms[-1]}",
                  file=sys.stderr, flush=True)  # fmt: skip
        self.connect_all(False, self.ns.rounds)
        self.check_cod(self.ns.rounds)
        self.check_books(self.ns.rounds)
        canary = self.canary.client
        self.run_loop(lambda: not canary.pending, 30, "canary answered")
        for s in [*self.sessions, canary]:
            s.logout()
        self.run_loop(lambda: all(s.sock is None for s in [*self.sessions, canary]), 30, "logouts")


def logged_on(gw: GatewayProcess) -> float:
    """The venue's count of logged-on sessions (both roles)."""
    return parse_metrics(gw.metrics()).get(LOGGED_ON, -1.0)


def audit_cod(data_dir: Path) -> Counter[str]:
    """Cancel-on-disconnect cancellations in the audit trail, by session."""
    out: Counter[str] = Counter()
    with (data_dir / "audit.jsonl").open() as f:
        for line in f:
            if '"cancel_on_disconnect"' in line:
                event = json.loads(line)
                if event.get("event") == "order_canceled" and event.get("reason") == "cancel_on_disconnect":
                    out[event["session"]] += 1
    return out


def log_cod(log_text: str) -> Counter[str]:
    """``cancel_on_disconnect`` lines of the operational log, by session."""
    out: Counter[str] = Counter()
    for line in log_text.splitlines():
        if '"event": "cancel_on_disconnect"' in line:
            out[json.loads(line)["session"]] += 1
    return out


def check(storm: Storm, data_dir: Path, log_text: str, cancels_metric: float) -> None:
    """The venue-side checks, after it has stopped (its audit trail is complete then)."""
    ns = storm.ns
    audit, logged = audit_cod(data_dir), log_cod(log_text)
    for c in storm.oe:
        if audit[c.comp_id] != ns.rounds * ns.orders:
            storm.error("audit_cod", f"{c.comp_id}: {audit[c.comp_id]} cancel_on_disconnect cancels in the audit "
                        f"trail, not {ns.rounds * ns.orders}")  # fmt: skip
        if logged[c.comp_id] != ns.rounds:
            storm.error("log_cod", f"{c.comp_id}: {logged[c.comp_id]} cancel_on_disconnect log lines, not {ns.rounds}")
    if audit["CANARY"] or logged["CANARY"]:
        storm.error("audit_cod", "the canary (cancel-on-disconnect off) had orders cancelled on disconnect")
    assert storm.canary is not None
    reported = sum(c.counts["cancels"] for c in [*storm.oe, storm.canary.client])
    if cancels_metric != reported:
        storm.error("metrics_cancels", f"the venue counts {cancels_metric:.0f} cancellations, the clients {reported}")


def run(ns: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="storm-", dir=ns.workdir))
    config, ports = write_config(work, ns)
    gw = GatewayProcess(config, ports, work / "gateway.log")
    started = time.time()
    gw.start()
    try:
        storm = Storm(ns, gw)
        t0 = time.monotonic()
        storm.run()
        elapsed = time.monotonic() - t0
        assert storm.canary is not None
        canary = storm.canary.client
        cancels_metric = metric_value(gw.metrics(), EXECUTIONS, exec_type="canceled")
        exit_code = gw.stop()
    finally:
        if gw.proc is not None and gw.proc.poll() is None:
            gw.kill()
    check(storm, work / "data", gw.log_text(), cancels_metric)
    counts = sum_counts(storm.sessions)
    errors: dict[str, int] = {k: v for k, v in storm.errors.items() if v}
    for s in [*storm.sessions, canary]:
        for k, v in s.errors().items():
            if v:
                errors[k] = errors.get(k, 0) + v
                storm.samples.extend(s.samples[:2])
    first = [r for r in storm.logon_ms if r["round"] == 0]
    later = [n for s in storm.sessions for n in s.logon_ns]  # the final round's
    report = {
        "command": ns.command,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "settings": {k: v for k, v in vars(ns).items() if k not in ("workdir", "command", "json_out")},
        "ok": not errors and exit_code == 0,
        "errors": errors,
        "error_samples": storm.samples[:20],
        "gateway_exit_code": exit_code,
        "seconds": round(elapsed, 1),
        "logon_ms_by_round": storm.logon_ms,
        "recovery_ms_by_round": storm.recover_ms,
        "logon_ms_first_round": first[0] if first else None,
        "logon_ms_last_round": percentiles_ms(later),
        "logon_ms_later_rounds_p99_max": max((r["p99"] or 0) for r in storm.logon_ms[1:]) if ns.rounds else None,
        "canary": {
            "requests": canary.counts["requests"],
            "latency_ms": {name: ms(canary.latency.percentile(pct)) for name, pct in PERCENTILES},
        },
        "totals": {
            "logons": counts.get("logons", 0),
            "drops": counts.get("drops", 0),
            "cancel_on_disconnect_reports": counts.get("cod_cancels", 0),
            "gaps_recovered": counts.get("gaps", 0),
            "md_incrementals": counts.get("X", 0),
            "possdup_ignored": counts.get("possdup_ignored", 0),
        },
        "load1_end": float(Path("/proc/loadavg").read_text().split()[0]),
    }
    if not ns.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--oe", type=int, default=100, help="order-entry sessions")
    p.add_argument("--md", type=int, default=100, help="market-data sessions")
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--orders", type=int, default=3, help="Day orders each order-entry session rests per round")
    p.add_argument("--silent", type=int, default=10, help="connections per round that never send anything")
    p.add_argument("--iterations", type=int, default=20_000, help="PBKDF2 iterations of the password hashes")
    p.add_argument("--logon-timeout", type=int, default=10)
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--keep", action="store_true")
    p.add_argument("--json-out", type=Path)
    ns = p.parse_args(argv)
    ns.command = "python -m bench.storm " + " ".join(argv if argv is not None else sys.argv[1:])
    return ns


def main(argv: list[str] | None = None) -> int:
    ns = parse_args(argv)
    report = run(ns)
    text = json.dumps(report, indent=2)
    if ns.json_out:
        ns.json_out.write_text(text + "\n")
    print(text)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
