"""Market data end to end: the real gateway, order flow on the order-entry port, feeds.client books on the
market-data port.

The truth a client's book is checked against is built independently of the feed: from the ExecutionReports of the
order-entry sessions (every order's last reported state, aggregated per price level; trades from the aggressor's
fills), taken at a barrier (a TestRequest answered on every order-entry session, so every report sent before it has
been read). A snapshot-only request (263=0) from another market-data session is checked against the same truth.
"""

from __future__ import annotations

import json
import os
import random
import re
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from feeds.client import BookSnapshot, Level, MarketDataClient, MarketDataError, Trade, gap_counter
from fixclient import FixSession, SessionError, field, utc_now
from tests.conftest import PASSWORDS, start_gateway, unique
from tests.fixtools import new_order, wait_msg
from tests.gateway_process import ROOT, GatewayProcess, free_port, metric_value

pytestmark = pytest.mark.timeout(120)

SYMBOL = "AAPL"
TICK = Decimal("0.01")
SETTLE = 10.0  # seconds a client may take to converge on the truth


# ---------------------------------------------------------------------- fixtures


class Venue:
    """A gateway of the test's own (with config overrides) and the clients connected to it, closed at the end."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.gw: GatewayProcess | None = None
        self.md_clients: list[MarketDataClient] = []
        self.sessions: list[FixSession] = []

    def start(self, **overrides: object) -> GatewayProcess:
        self.gw = start_gateway(self.directory / "gw", **overrides)
        return self.gw

    def md(self, comp_id: str, **kwargs: Any) -> MarketDataClient:
        assert self.gw is not None
        client = MarketDataClient("127.0.0.1", self.gw.md_port, comp_id, PASSWORDS[comp_id], **kwargs)
        self.md_clients.append(client)
        client.logon()
        return client

    def raw(self, comp_id: str) -> FixSession:
        assert self.gw is not None
        port = self.gw.md_port if comp_id.startswith("MD") else self.gw.oe_port
        s = FixSession("127.0.0.1", port, comp_id, PASSWORDS[comp_id], reset_seq=True)
        self.sessions.append(s)
        s.logon()
        return s

    def flow(self, comp_ids: tuple[str, ...] = ("CLIENT1", "CLIENT2", "CLIENT3"), seed: int = 7) -> Flow:
        return Flow({cid: self.raw(cid) for cid in comp_ids}, random.Random(seed))

    def close(self) -> None:
        for client in self.md_clients:
            try:
                client.close(timeout=1.0)
            except (OSError, SessionError):
                client.session.close()
        for s in self.sessions:
            if s.sock is not None:
                try:
                    s.logout(timeout=1.0)
                except OSError:
                    s.close()
        if self.gw is not None and self.gw.proc is not None and self.gw.proc.poll() is None:
            assert self.gw.stop() == 0, self.gw.log_text()[-3000:]


@pytest.fixture
def venue(tmp_path: Path) -> Iterator[Venue]:
    v = Venue(tmp_path)
    yield v
    v.close()


# ---------------------------------------------------------------------- independent truth from order entry


@dataclass
class Resting:
    owner: str
    clordid: str
    side: str
    price: Decimal
    leaves: Decimal


class Flow:
    """Random order flow over several order-entry sessions, and the book rebuilt from their ExecutionReports."""

    def __init__(self, sessions: dict[str, FixSession], rng: random.Random, mid: Decimal = Decimal("100.00")) -> None:
        self.sessions = sessions
        self.rng = rng
        self.mid = mid
        self.resting: dict[str, Resting] = {}  # OrderID -> what its last ExecutionReport says
        self.trades: dict[int, tuple[Decimal, Decimal]] = {}  # trade id -> (price, qty), from the aggressor's fills
        self.commands = 0

    # -- reading reports

    def _on(self, owner: str, msg: Any) -> None:
        if field(msg, 35) != "8":
            return
        oid = field(msg, 37)
        if oid is None or oid == "NONE":
            return
        if field(msg, 150) == "F" and field(msg, 851) == "2":
            self.trades[int(field(msg, 527) or 0)] = (Decimal(field(msg, 31) or 0), Decimal(field(msg, 32) or 0))
        leaves, price = Decimal(field(msg, 151) or 0), field(msg, 44)
        if field(msg, 39) in ("0", "1") and leaves > 0 and price is not None:
            self.resting[oid] = Resting(owner, field(msg, 11) or "", field(msg, 54) or "", Decimal(price), leaves)
        else:
            self.resting.pop(oid, None)

    def _await(self, owner: str, clordid: str, timeout: float = 10.0) -> Any:
        """Read ``owner``'s session (applying every report) until the answer to ``clordid`` arrives."""
        s = self.sessions[owner]
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            msg = s.receive(remaining)
            if msg is None:
                break
            self._on(owner, msg)
            if field(msg, 11) == clordid and field(msg, 35) in ("8", "9"):
                return msg
        raise TimeoutError(f"{owner}: no answer to {clordid}")

    def barrier(self, timeout: float = 10.0) -> None:
        """Every report sent so far has been read: a TestRequest answered on every session."""
        for owner, s in self.sessions.items():
            probe = unique("barrier")
            s.send("1", [(112, probe)])
            deadline = time.monotonic() + timeout
            while True:
                remaining = deadline - time.monotonic()
                msg = s.receive(remaining, admin=True) if remaining > 0 else None
                if msg is None:
                    raise TimeoutError(f"{owner}: barrier {probe} not answered")
                self._on(owner, msg)
                if field(msg, 35) == "0" and field(msg, 112) == probe:
                    break

    # -- commands

    def limit(self, owner: str, side: str, price: Decimal, qty: int, symbol: str = SYMBOL) -> Any:
        cl = unique("mdo")
        new_order(self.sessions[owner], cl, side, str(qty), str(price), symbol=symbol)
        self.commands += 1
        return self._await(owner, cl)

    def market(self, owner: str, side: str, qty: int) -> Any:
        cl = unique("mdm")
        new_order(self.sessions[owner], cl, side, str(qty), None, tif="3")
        self.commands += 1
        return self._await(owner, cl)

    def cancel(self, oid: str) -> Any:
        o = self.resting[oid]
        cl = unique("mdc")
        self.sessions[o.owner].send("F", [(11, cl), (41, o.clordid), (55, SYMBOL), (54, o.side), (60, utc_now())])
        self.commands += 1
        return self._await(o.owner, cl)

    def replace(self, oid: str, qty: Decimal, price: Decimal) -> Any:
        o = self.resting[oid]
        cl = unique("mdr")
        self.sessions[o.owner].send(
            "G", [(11, cl), (41, o.clordid), (55, SYMBOL), (54, o.side), (38, qty), (40, "2"), (44, price),
                  (59, "0"), (60, utc_now())],
        )  # fmt: skip
        self.commands += 1
        return self._await(o.owner, cl)

    def random_step(self) -> None:
        """One random command: mostly limit orders a few ticks around the mid (some crossing), cancels, replaces
        (price and size), market orders."""
        rng = self.rng
        owner = rng.choice(list(self.sessions))
        mine = [oid for oid, o in self.resting.items() if o.owner == owner]
        r = rng.random()
        if mine and r < 0.18:
            self.cancel(rng.choice(mine))
        elif mine and r < 0.36:
            oid = rng.choice(mine)
            o = self.resting[oid]
            qty = max(Decimal(1), o.leaves + rng.randint(-5, 10))
            price = o.price + TICK * rng.choice([0, 0, -2, -1, 1, 2])
            self.replace(oid, qty, price)
        elif r < 0.43:
            self.market(owner, rng.choice("12"), rng.randint(1, 40))
        else:
            side = rng.choice("12")
            away = rng.randint(-4, 15)  # ticks on the passive side of the mid; negative ones cross
            price = self.mid - TICK * away if side == "1" else self.mid + TICK * away
            self.limit(owner, side, price, rng.randint(1, 50))

    # -- the truth

    def truth(self) -> BookSnapshot:
        levels: dict[tuple[str, Decimal], list[Decimal]] = {}
        for o in self.resting.values():
            lv = levels.setdefault((o.side, o.price), [Decimal(0), Decimal(0)])
            lv[0] += o.leaves
            lv[1] += 1
        bids = tuple(Level(p, v[0], int(v[1])) for (s, p), v in sorted(levels.items(), key=lambda kv: -kv[0][1])
                     if s == "1")  # fmt: skip
        asks = tuple(Level(p, v[0], int(v[1])) for (s, p), v in sorted(levels.items(), key=lambda kv: kv[0][1])
                     if s == "2")  # fmt: skip
        if not self.trades:
            return BookSnapshot(SYMBOL, 0, 0, bids, asks)
        ids = sorted(self.trades)
        prices = [self.trades[i][0] for i in ids]
        last = self.trades[ids[-1]][0]
        volume = sum((q for _, q in self.trades.values()), Decimal(0))
        return BookSnapshot(SYMBOL, 0, 0, bids, asks, Trade(last), prices[0], max(prices), min(prices), volume)


# ---------------------------------------------------------------------- comparisons


def _view(book: BookSnapshot, depth: int, stats: bool) -> tuple[Any, ...]:
    top = book.top(depth)
    levels = (top.bids, top.asks)
    if not stats:
        return levels
    return (*levels, book.last_trade.price if book.last_trade else None, book.open, book.high, book.low,
            book.volume or Decimal(0))  # fmt: skip


def assert_converges(
    client: MarketDataClient, truth: BookSnapshot, depth: int = 0, stats: bool = True, timeout: float = SETTLE
) -> None:
    """The client's book reaches the truth (levels, and last trade and statistics if ``stats``)."""
    want = _view(truth, depth, stats)
    try:
        client.wait_until(lambda: _view(client.book(SYMBOL), depth, stats) == want, timeout, "converged book")
    except TimeoutError:
        got = _view(client.book(SYMBOL), depth, stats)
        pytest.fail(f"{client.session.sender} book never matched the truth\n got: {got}\nwant: {want}")


def pump_all(*clients: MarketDataClient) -> None:
    for c in clients:
        c.pump(0)


def wait_for(cond: Callable[[], object], timeout: float, what: str, pump: tuple[MarketDataClient, ...] = ()) -> None:
    """Poll ``cond`` (pumping ``pump`` clients meanwhile) until true or the deadline."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout}s")
        if pump:
            for c in pump:
                c.pump(0.02)
        else:
            time.sleep(0.02)


def wait_count(client: MarketDataClient, key: str, n: int, timeout: float) -> None:
    client.wait_until(lambda: client.counts[key] >= n, timeout, f"{key} #{n}")


def log_events(gw: GatewayProcess, event: str, session: str | None = None) -> list[dict[str, Any]]:
    out = []
    for line in gw.log_text().splitlines():
        if not line.startswith("{"):
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("event") == event and (session is None or rec.get("session") == session):
            out.append(rec)
    return out


def cut(client: MarketDataClient) -> None:
    """Drop the connection without a Logout, as a network failure would."""
    assert client.session.sock is not None
    client.session.sock.shutdown(socket.SHUT_RDWR)
    client.session.close()


# ---------------------------------------------------------------------- (a) random flow


@pytest.mark.timeout(180)
def test_random_flow_books_match_truth_full_and_top3(venue: Venue) -> None:
    venue.start()
    full = venue.md("MD1")
    top3 = venue.md("MD2")
    checker = venue.md("MD3")
    full.subscribe(SYMBOL, depth=0)
    top3.subscribe(SYMBOL, depth=3, entry_types="012")
    flow = venue.flow(seed=20240607)
    for checkpoint in range(3):
        for i in range(120):
            flow.random_step()
            if i % 10 == 0:
                pump_all(full, top3)
        flow.barrier()
        truth = flow.truth()
        assert truth.bids and truth.asks and truth.volume, f"flow too thin at checkpoint {checkpoint}"
        assert_converges(full, truth)
        assert_converges(top3, truth, depth=3, stats=False)
        assert truth.last_trade is not None
        top3_trade = top3.book(SYMBOL).last_trade
        assert top3_trade is not None and top3_trade.price == truth.last_trade.price
        assert _view(checker.fetch_snapshot(SYMBOL, 0), 0, True) == _view(truth, 0, True)
        assert _view(checker.fetch_snapshot(SYMBOL, 3, "01"), 3, False) == _view(truth, 3, False)
    assert flow.commands == 360
    assert len(flow.trades) > 20
    assert (full.gaps, top3.gaps) == (0, 0)
    assert full.book(SYMBOL).rpt_seq > top3.book(SYMBOL).rpt_seq > 0
    assert top3.counts["X"] > 0 and full.counts["X"] >= top3.counts["X"]


# ---------------------------------------------------------------------- (b) rejects


def _request(
    req_id: str, req_type: str = "1", depth: int | str = 5, types: str = "01", symbols: tuple[str, ...] = (SYMBOL,),
    update_type: str | None = None,
) -> list[tuple[int, Any]]:  # fmt: skip
    fields: list[tuple[int, Any]] = [(262, req_id), (263, req_type), (264, depth)]
    if update_type is not None:
        fields.append((265, update_type))
    fields += [(267, len(types)), *((269, t) for t in types), (146, len(symbols)), *((55, s) for s in symbols)]
    return fields


@pytest.mark.timeout(60)
def test_request_rejects(venue: Venue) -> None:
    venue.start(**{"market_data.max_depth": 10})
    s = venue.raw("MD4")
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"symbols": ("ZZZZ",)}, "0", "unknown symbol ZZZZ"),
        ({"symbols": (SYMBOL, "NOPE")}, "0", "unknown symbol NOPE"),
        ({"depth": 20}, "5", "unsupported MarketDepth 20"),
        ({"depth": 0}, "5", "unsupported MarketDepth 0"),  # full book is deeper than max_depth
        ({"types": "0C"}, "8", "unsupported MDEntryType C"),
        ({"types": "3"}, "8", "unsupported MDEntryType 3"),
        ({"update_type": "0"}, "6", "only incremental refresh (MDUpdateType=1) is supported"),
    ]
    for kwargs, reason, text in cases:
        req = unique("rej")
        s.send("V", _request(req, **kwargs))
        y = wait_msg(s, "Y", t262=req)
        assert (field(y, 281), field(y, 58)) == (reason, text), kwargs
    # Duplicate MDReqID: the first subscribes (snapshot), the second is refused.
    dup = unique("dup")
    s.send("V", _request(dup))
    assert field(wait_msg(s, "W", t262=dup), 55) == SYMBOL
    s.send("V", _request(dup, symbols=("MSFT",)))
    y = wait_msg(s, "Y", t262=dup)
    assert (field(y, 281), field(y, 58)) == ("1", f"duplicate MDReqID {dup}")
    # Unsubscribe: of the live one works silently, of an unknown one is refused.
    s.send("V", _request(dup, req_type="2"))
    s.send("V", _request(dup, req_type="2"))
    y = wait_msg(s, "Y", t262=dup)
    assert field(y, 281) == "1" and f"unknown MDReqID {dup}" in (field(y, 58) or "")
    ghost = unique("ghost")
    s.send("V", _request(ghost, req_type="2"))
    assert "no active subscription" in (field(wait_msg(s, "Y", t262=ghost), 58) or "")
    # The client library turns a reject into one clear error and keeps no book for it.
    client = venue.md("MD5")
    with pytest.raises(MarketDataError, match="unsupported MarketDepth 20"):
        client.subscribe(SYMBOL, depth=20)
    assert SYMBOL not in client.views
    client.subscribe(SYMBOL, depth=10)
    assert client.synced(SYMBOL)
    with pytest.raises(ValueError, match="one view per symbol"):
        client.subscribe(SYMBOL, depth=5)


# ---------------------------------------------------------------------- (c) reconnect and resend


@pytest.mark.timeout(120)
def test_cut_connection_recovers_by_resend(venue: Venue) -> None:
    gw = venue.start()
    md = venue.md("MD1")
    md.subscribe(SYMBOL)
    flow = venue.flow(seed=11)
    for _ in range(40):
        flow.random_step()
        md.pump(0)
    for _ in range(20):  # the client stops reading: these are in its socket buffer when the line drops
        flow.random_step()
    logouts = len(log_events(gw, "logout", "MD1"))
    cut(md)
    wait_for(lambda: len(log_events(gw, "logout", "MD1")) > logouts, 10, "logout of MD1 at the gateway")
    for _ in range(40):  # stored for MD1 while it is away
        flow.random_step()
    before = md.session.expected_in
    md.reconnect()
    flow.barrier()
    assert_converges(md, flow.truth())
    assert md.gaps == 0, "recovered by snapshot, not by resend"
    assert md.counts["poss_dup"] >= 20  # (live messages sent before the ResendRequest may come twice: ignored)
    assert md.session.expected_in > before
    assert metric_value(gw.metrics(), "fixgw_fix_resend_requests_received_total", role="market_data") >= 1
    # Live again after the replay.
    flow.limit("CLIENT1", "1", Decimal("99.91"), 1)
    flow.barrier()
    assert_converges(md, flow.truth())


# ---------------------------------------------------------------------- (d) lost X messages


@pytest.mark.timeout(120)
def test_dropped_incrementals_detected_and_recovered_by_snapshot(venue: Venue) -> None:
    venue.start()
    rng = random.Random(5)
    seen_gaps: list[tuple[str, int, int]] = []
    metrics_port = free_port()
    count_gap = gap_counter(metrics_port)  # what `fixgw md --metrics-port` serves

    def lossy(msg: Any) -> bool:
        return field(msg, 35) == "X" and rng.random() < 0.2

    def on_gap(symbol: str, expected: int, got: int) -> None:
        seen_gaps.append((symbol, expected, got))
        count_gap(symbol, expected, got)

    md = venue.md("MD2", drop=lossy, on_gap=on_gap)
    top = venue.md("MD3", drop=lossy)
    md.subscribe(SYMBOL)
    top.subscribe(SYMBOL, depth=3, entry_types="01")
    flow = venue.flow(seed=12)
    for _ in range(150):
        flow.random_step()
        pump_all(md, top)
    md.drop = top.drop = None
    flow.barrier()
    best_bid = flow.truth().bids[0].price
    for _ in range(5):  # a loss is noticed at the next entry of the view: join the best bid, seen by both views
        flow.limit("CLIENT2", "1", best_bid, 1)
    flow.barrier()
    truth = flow.truth()
    assert_converges(md, truth)
    assert_converges(top, truth, depth=3, stats=False)
    assert md.counts["dropped"] > 10 and top.counts["dropped"] > 5
    assert md.gaps == len(seen_gaps) > 0 and top.gaps > 0
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
        assert metric_value(response.read().decode(), "fixgw_md_client_rptseq_gaps_total", symbol=SYMBOL) == md.gaps
    assert all(symbol == SYMBOL and got > expected for symbol, expected, got in seen_gaps)
    assert md.views[SYMBOL].snapshots > 1  # recovered by snapshot requests
    assert md.synced(SYMBOL) and top.synced(SYMBOL)


# ---------------------------------------------------------------------- (e) periodic snapshots


@pytest.mark.timeout(60)
def test_periodic_snapshots_on_schedule(venue: Venue) -> None:
    venue.start(**{"market_data.snapshot_interval": 1.0})
    times: list[float] = []

    def on_message(msg: Any) -> None:
        if field(msg, 35) == "W":
            times.append(time.monotonic())

    md = venue.md("MD6", on_message=on_message)
    flow = venue.flow(("CLIENT4",))
    flow.limit("CLIENT4", "1", Decimal("99.00"), 5)
    md.subscribe(SYMBOL, depth=5)
    start = times[0]
    md.wait_until(lambda: len(times) >= 3, 3.5, "two periodic snapshots")
    assert times[2] - start <= 3.0
    assert 0.5 <= times[2] - times[1] <= 1.6
    assert md.views[SYMBOL].snapshots >= 3
    assert md.book(SYMBOL).bids == (Level(Decimal("99.00"), Decimal(5), 1),)
    flow.limit("CLIENT4", "2", Decimal("101.00"), 2)
    flow.barrier()
    assert_converges(md, flow.truth(), depth=5, stats=False)


# ---------------------------------------------------------------------- (f) replay older than the window


@pytest.mark.timeout(60)
def test_replay_beyond_window_is_gap_fill_then_snapshot(venue: Venue) -> None:
    gw = venue.start(**{"market_data.replay_window": 5})
    events: list[tuple[str, str | None]] = []
    md = venue.md("MD7", on_message=lambda m: events.append((field(m, 35) or "", field(m, 43))))
    md.subscribe(SYMBOL)
    flow = venue.flow(seed=13)
    for _ in range(20):  # unread, then lost with the connection
        flow.random_step()
    logouts = len(log_events(gw, "logout", "MD7"))
    cut(md)
    wait_for(lambda: len(log_events(gw, "logout", "MD7")) > logouts, 10, "logout of MD7 at the gateway")
    for _ in range(20):
        flow.random_step()
    events.clear()
    snapshots = md.views[SYMBOL].snapshots
    md.reconnect()
    flow.barrier()
    assert_converges(md, flow.truth())
    md.wait_until(lambda: md.counts["gap_fills"] >= 1, 5, "gap fill")
    kinds = [k for k, _ in events]
    assert "4" in kinds, events
    fresh_w = [i for i, (k, dup) in enumerate(events) if k == "W" and dup != "Y"]
    assert fresh_w, events
    assert md.views[SYMBOL].snapshots > snapshots
    replayed_x = [k for k, dup in events if k == "X" and dup == "Y"]
    assert len(replayed_x) <= 5, "nothing older than replay_window is replayed"


# ---------------------------------------------------------------------- (g) slow consumer


@pytest.mark.timeout(90)
def test_slow_consumer_logged_out_while_others_keep_up(venue: Venue) -> None:
    gw = venue.start(**{"market_data.max_backlog": 30})
    slow = venue.raw("MD8")
    slow.send("V", _request(unique("slow"), depth=0, types="01"))  # and never reads again
    fast = venue.md("MD9")
    fast.subscribe(SYMBOL)
    flow = venue.flow(("CLIENT5",))
    # The fast reader gets each X while the slow one stalls (how fast: bench/md_bench.py --slow, BENCHMARKS.md).
    # Several probe rounds of flow, as fast as one order at a time allows; fewer orders than the demo's
    # max_open_orders (1000) per account, or a fast machine would see the 1001st refused and no X for it.
    end = time.monotonic() + 3.0
    i = 0
    while time.monotonic() < end and i < 900:
        away = TICK * (i % 500)
        side, price = ("1", Decimal("90.00") + away) if i % 2 else ("2", Decimal("110.00") - away)
        flow.limit("CLIENT5", side, price, 1)
        wait_count(fast, "X", fast.counts["X"] + 1, SETTLE)
        i += 1
    wait_for(
        lambda: metric_value(gw.metrics(), "fixgw_md_slow_consumer_events_total", action="logout") >= 1, 10,
        "slow-consumer logout", pump=(fast,),
    )  # fmt: skip
    warnings = log_events(gw, "md_slow_consumer", "MD8")
    assert warnings and warnings[0]["action"] == "logout"
    assert not log_events(gw, "md_slow_consumer", "MD9"), "the reader that keeps up is not cut"
    assert fast.session.logged_on
    # The slow one is told why, behind everything it never read.
    with pytest.raises(SessionError, match=r"slow consumer: \d+ market-data messages behind \(limit 30\)"):
        slow.wait_for(lambda m: False, 10)
    assert venue.raw("MD8").logged_on  # logged out for being slow, not barred: it may log on again
    flow.barrier()
    assert_converges(fast, flow.truth())


@pytest.mark.timeout(60)
def test_slow_consumer_conflated_then_resnapshotted(venue: Venue) -> None:
    gw = venue.start(**{"market_data.max_backlog": 30, "market_data.slow_consumer": "conflate"})
    lagging = venue.md("MD8")
    lagging.subscribe(SYMBOL)
    flow = venue.flow(("CLIENT5",))
    i = 0
    while not metric_value(gw.metrics(), "fixgw_md_slow_consumer_events_total", action="conflate"):
        assert i < 900, "never conflated (within the demo's 1000 open orders per account)"
        flow.limit("CLIENT5", "1", Decimal("80.00") + TICK * (i % 500), 1)  # the client reads nothing meanwhile
        i += 1
    for j in range(50):  # conflated: not sent
        flow.limit("CLIENT5", "2", Decimal("130.00") + TICK * j, 1)
    flow.barrier()
    assert_converges(lagging, flow.truth())  # reading again: the probe is answered, conflation ends
    wait_for(lambda: log_events(gw, "md_conflation_ended", "MD8"), 10, "end of conflation", pump=(lagging,))
    assert lagging.session.logged_on and lagging.views[SYMBOL].snapshots >= 2
    assert lagging.counts["X"] <= i, "the incrementals of the conflated period were not sent"
    flow.limit("CLIENT5", "2", Decimal("120.00"), 1)  # and incrementals flow again
    flow.barrier()
    assert_converges(lagging, flow.truth())


# ---------------------------------------------------------------------- the command


def _cli(gw: GatewayProcess, *args: str) -> list[str]:
    return [sys.executable, "-m", "feeds.client", "--port", str(gw.md_port), *args]


@pytest.mark.timeout(60)
def test_command_once_live_and_errors(venue: Venue) -> None:
    gw = venue.start()
    flow = venue.flow(("CLIENT6", "CLIENT7"))
    flow.limit("CLIENT6", "1", Decimal("99.50"), 7)
    flow.limit("CLIENT6", "2", Decimal("100.25"), 3)
    flow.limit("CLIENT7", "1", Decimal("100.25"), 1)  # a trade
    once = subprocess.run(
        _cli(gw, "--comp-id", "MD1", "--password", "mdpass1", "--symbol", SYMBOL, "--once"),
        capture_output=True, text=True, timeout=30, cwd=ROOT,
    )  # fmt: skip
    assert once.returncode == 0, once.stderr
    lines = once.stdout.splitlines()
    assert lines[0].startswith("AAPL  depth full  RptSeq ")
    assert re.search(r"\b1\s+7\s+99\.50 \| 100\.25\s+2\s+1$", lines[2]), once.stdout
    assert lines[-2] == "last 100.25  open 100.25  high 100.25  low 100.25  volume 1"
    assert lines[-1] == "phase continuous"  # (the W's SecurityTradingStatus; no schedule: always continuous)
    for args, message in [
        (("--password", "mdpass1", "--symbol", "ZZZZ", "--once"), "unknown symbol ZZZZ"),
        (("--password", "wrong", "--symbol", SYMBOL, "--once"), "logon refused: credentials not accepted"),
    ]:
        bad = subprocess.run(_cli(gw, "--comp-id", "MD1", *args), capture_output=True, text=True, timeout=30, cwd=ROOT)
        assert bad.returncode == 1 and bad.stdout == ""
        assert bad.stderr.count("\n") == 1 and bad.stderr.startswith("error: ") and message in bad.stderr
    refused = subprocess.run(
        [sys.executable, "-m", "feeds", "--port", str(free_port()), "--comp-id", "MD1", "--password", "x",
         "--symbol", SYMBOL], capture_output=True, text=True, timeout=30, cwd=ROOT,
    )  # fmt: skip
    assert refused.returncode == 1 and refused.stderr.startswith("error: cannot connect to 127.0.0.1:")
    # Live: prints the book again on every change (no ANSI codes when stdout is not a terminal); Ctrl-C
    # unsubscribes and logs out.
    live = subprocess.Popen(
        _cli(gw, "--comp-id", "MD2", "--password", "mdpass2", "--symbol", SYMBOL, "--depth", "2"),
        stdout=subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    try:
        assert live.stdout is not None
        first = _read_until(live.stdout, "last 100.25")
        assert "99.50" in first and "\x1b[" not in first
        flow.limit("CLIENT6", "1", Decimal("99.75"), 4)
        update = _read_until(live.stdout, "99.75")
        assert update.splitlines()[0].startswith("AAPL  depth 2")
        live.send_signal(signal.SIGINT)
        assert live.wait(10) == 0
    finally:
        if live.poll() is None:
            live.kill()
            live.wait()
    wait_for(lambda: log_events(gw, "md_unsubscribe", "MD2"), 10, "unsubscribe on Ctrl-C")


def _read_until(stream: Any, needle: str, timeout: float = 10.0) -> str:
    """The next book (blank-line separated) printed by a child that contains ``needle``."""
    deadline = time.monotonic() + timeout
    buffer = _pending.pop(stream.fileno(), "")
    while True:
        while "\n\n" in buffer:
            text, buffer = buffer.split("\n\n", 1)
            if needle in text:
                _pending[stream.fileno()] = buffer
                return text
        remaining = deadline - time.monotonic()
        ready, _, _ = select.select([stream], [], [], max(remaining, 0))
        chunk = os.read(stream.fileno(), 65536).decode() if ready else ""
        if not chunk:
            raise TimeoutError(f"no book containing {needle!r} within {timeout}s; got: {buffer[-500:]!r}")
        buffer += chunk


_pending: dict[int, str] = {}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("reset", ["ResetSeqNumFlag", "reset_on_logon"])
def test_reset_logon_ends_the_earlier_connections_subscriptions(tmp_path: Path, reset: str) -> None:
    """A client that logs on with ResetSeqNumFlag=Y, or on a session with reset_on_logon (with MsgSeqNum 1, no
    flag), gets incrementals only for what it subscribed since."""
    flag = reset == "ResetSeqNumFlag"
    gw = start_gateway(tmp_path / "gw", **({} if flag else {"fix.reset_on_logon": True}))
    try:
        old = FixSession("127.0.0.1", gw.md_port, "MD4", PASSWORDS["MD4"], reset_seq=flag)
        old.logon()
        old.send("V", [(262, "old"), (263, "1"), (264, "0"), (267, 2), (269, "0"), (269, "1"), (146, 1), (55, "MSFT")])
        wait_msg(old, "W")
        old.close()  # gone without unsubscribing
        new = FixSession("127.0.0.1", gw.md_port, "MD4", PASSWORDS["MD4"], reset_seq=flag)
        new.logon()
        new.send("V", [(262, "new"), (263, "1"), (264, "1"), (267, 2), (269, "0"), (269, "1"), (146, 1), (55, "MSFT")])
        wait_msg(new, "W")
        trader = FixSession("127.0.0.1", gw.oe_port, "CLIENT1", PASSWORDS["CLIENT1"], reset_seq=True)
        trader.logon()
        new_order(trader, unique(), "1", "5", "10.00", symbol="MSFT")
        new_order(trader, unique(), "1", "5", "11.00", symbol="MSFT")  # the marker: new best bid
        incrementals = []
        while True:
            msg = wait_msg(new, "X")
            incrementals.append(str(msg))
            if "270=11.00" in str(msg):
                break
        assert len(incrementals) == 2, incrementals  # one per order, for the depth-1 view only
        trader.logout()
        new.logout()
    finally:
        gw.stop()
