"""A trading day end to end: the real gateway on a compressed schedule, real FIX clients, market-data subscribers.

The schedule's times are local to a time zone chosen so that the test runs around midday there, whatever the time
of day (and never across a midnight). Every wait is on a condition with a deadline.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
import simplefix

import seqlog
from feeds.client import BookSnapshot, Level, MarketDataClient
from fixclient import FixSession, field
from gateway.operator import call
from tests.conftest import PASSWORDS, start_gateway_with
from tests.fixtools import cancel, new_order, wait_er, wait_msg
from tests.gateway_process import ROOT, GatewayProcess
from tools.admin import DEMO_TOKEN

pytestmark = pytest.mark.timeout(180)

CLOSED, HALT, CONTINUOUS, PRE_OPEN, AUCTION = "18", "2", "17", "21", "22"


def midday_zone() -> tuple[str, dt.datetime]:
    """An IANA fixed-offset zone where it is now between 10:00 and 14:00, and the time there."""
    now = dt.datetime.now(dt.UTC)
    offset = 12 - now.hour  # -11 .. +12
    name = f"Etc/GMT{'-' if offset >= 0 else '+'}{abs(offset)}"  # (POSIX signs: Etc/GMT-3 is UTC+3)
    return name, now + dt.timedelta(hours=offset)


def at(start: dt.datetime, seconds: float) -> str:
    return (start + dt.timedelta(seconds=seconds)).strftime("%H:%M:%S")


class Recorder:
    """Every message a client received, in order."""

    def __init__(self) -> None:
        self.messages: list[simplefix.FixMessage] = []

    def __call__(self, msg: simplefix.FixMessage) -> None:
        self.messages.append(msg)

    def of(self, msg_type: str) -> list[simplefix.FixMessage]:
        return [m for m in self.messages if field(m, 35) == msg_type]

    def statuses(self, symbol: str = "AAPL") -> list[str]:
        return [field(m, 326) or "" for m in self.of("f") if field(m, 55) == symbol]


def md_client(gw: GatewayProcess, comp_id: str, recorder: Recorder | None = None) -> MarketDataClient:
    client = MarketDataClient("127.0.0.1", gw.md_port, comp_id, PASSWORDS[comp_id], on_message=recorder)
    client.logon()
    return client


def oe(gw: GatewayProcess, comp_id: str) -> FixSession:
    s = FixSession("127.0.0.1", gw.oe_port, comp_id, PASSWORDS[comp_id], reset_seq=True)
    s.logon()
    return s


def wait_book(client: MarketDataClient, check: Callable[[BookSnapshot], bool], timeout: float = 15.0) -> BookSnapshot:
    client.wait_until(lambda: client.synced("AAPL") and check(client.book("AAPL")), timeout, "book state")
    return client.book("AAPL")


def levels(*pairs: tuple[str, str]) -> tuple[Level, ...]:
    return tuple(Level(D(p), D(q), 1) for p, q in pairs)


def admin(gw: GatewayProcess, action: str, **params: Any) -> dict[str, Any]:
    return call(f"http://127.0.0.1:{gw.ports['operator']}", DEMO_TOKEN, action, params)


@pytest.fixture
def clients() -> Iterator[list[Any]]:
    opened: list[Any] = []
    yield opened
    for c in opened:
        with contextlib.suppress(Exception):
            c.close() if isinstance(c, MarketDataClient) else c.logout()


def test_a_whole_trading_day_over_fix(tmp_path: Path, clients: list[Any]) -> None:
    zone, start = midday_zone()
    pre_open, open_, close, eod = 6, 14, 40, 44
    gw = start_gateway_with(tmp_path / "gw", {
        "venue.timezone": zone,
        "schedule.end_of_day": at(start, eod),
        "schedule.pre_open": at(start, pre_open),
        "schedule.open": at(start, open_),
        "schedule.close": at(start, close),
        "schedule.instruments": {"MSFT": {"continuous": True}, "BTC-USD": {"continuous": True}},
        "protection.AAPL": {"band_pct": "20", "breaker_pct": "5", "breaker_window": 60, "breaker_halt": 4},
    })  # fmt: skip
    seen = Recorder()
    md = md_client(gw, "MD1", seen)
    clients.append(md)
    md.subscribe("AAPL")
    assert md.book("AAPL").phase == "closed"  # before its pre-open the day's schedule has closed it
    c1, c2 = oe(gw, "CLIENT1"), oe(gw, "CLIENT2")
    clients += [c1, c2]

    # Pre-open: orders rest, crossing or not; immediate ones are refused; the indicative price shows.
    wait_book(md, lambda b: b.phase == "pre_open")
    refused = new_order(c1, "ioc", "1", "1", "100.00", tif="3")
    er = wait_msg(c1, "8", t11="ioc")
    assert (field(er, 150), field(er, 103)) == ("8", "99") and "pre-open" in (field(er, 58) or ""), refused
    for s, cl, side, qty, price, tif in (
        (c1, "b1", "1", "10", "101.00", "0"),
        (c1, "m1", "1", "5", None, "0"),
        (c2, "s1", "2", "8", "100.00", "0"),
        (c2, "s2", "2", "6", "102.00", "1"),
    ):
        new_order(s, cl, side, qty, price, tif=tif)
        wait_er(s, cl, "0")
    book = wait_book(md, lambda b: len(b.asks) == 2)
    assert book.bids == levels(("101.00", "10")) and book.asks == levels(("100.00", "8"), ("102.00", "6"))
    assert book.indicative == (D("100.00"), D(8)) and book.imbalance == (D(7), "buy")

    # The opening auction: one price, market order first, no LastLiquidityInd, then continuous trading.
    wait_book(md, lambda b: b.phase == "continuous")
    m1 = wait_er(c1, "m1", "F")
    assert (field(m1, 31), field(m1, 32), field(m1, 851), field(m1, 58)) == (
        "100.00",
        "5",
        None,
        "filled in the auction",
    )
    assert field(wait_er(c1, "b1", "F"), 32) == "3"
    book = wait_book(md, lambda b: b.volume == D(8))
    assert (book.bids, book.asks) == (levels(("101.00", "7")), levels(("102.00", "6")))
    assert (book.open, book.last_trade.price, book.indicative, book.imbalance) == (D(100), D(100), None, None)  # type: ignore[union-attr]

    # Continuous trading, then a move beyond the breaker's 5%: the instrument halts, the order's rest waits.
    new_order(c2, "s3", "2", "7", "101.00")
    wait_er(c2, "s3", "F")
    new_order(c2, "s4", "2", "5", "108.00", tif="1")
    wait_er(c2, "s4", "0")
    new_order(c1, "b2", "1", "10", "110.00")
    assert field(wait_er(c1, "b2", "F"), 31) == "102.00"
    book = wait_book(md, lambda b: b.phase == "halted")
    assert "volatility circuit breaker; reopening auction at" in (book.phase_text or "")
    assert (book.bids, book.asks) == (levels(("110.00", "4")), levels(("108.00", "5")))  # crossed while halted
    new_order(c1, "late", "1", "1", "100.00")
    er = wait_msg(c1, "8", t11="late")
    assert (field(er, 150), field(er, 103), field(er, 58)) == ("8", "2", "instrument halted: only cancels are accepted")

    # The reopening auction after the halt: at 108 (closest to the last trade, 102), then continuous again.
    book = wait_book(md, lambda b: b.phase == "continuous" and b.last_trade is not None and b.last_trade.price == 108)
    assert (book.bids, book.asks) == ((), levels(("108.00", "1")))
    assert field(wait_er(c1, "b2", "F"), 39) == "2"

    # The close: DAY orders expire, GTC orders stay, the statistics reset.
    new_order(c1, "day", "1", "1", "100.00")
    new_order(c1, "gtc", "1", "1", "99.00", tif="1")
    wait_er(c1, "gtc", "0")
    expired = wait_er(c1, "day", "C", timeout=40)
    assert field(expired, 58) == "day order expired at end of trading day"
    book = wait_book(md, lambda b: b.phase == "closed")
    assert (book.bids, book.asks) == (levels(("99.00", "1")), levels(("108.00", "1")))
    assert (book.open, book.high, book.low, book.volume) == (None, None, None, D(0))

    # The end of the day: a new trading date for every session, and the journal rolls to a new segment.
    md.wait_until(lambda: any(field(m, 336) != first_date(seen) for m in seen.of("h")), 15, "the new trading date")
    assert seen.statuses() == [PRE_OPEN, AUCTION, CONTINUOUS, HALT, AUCTION, CONTINUOUS, CLOSED]
    assert md.gaps == 0  # every status came in its RptSeq place, nothing was missed
    c1.wait_for(lambda m: field(m, 35) == "h" and field(m, 336) == last_date(seen), 10)
    journal = tmp_path / "gw" / "data" / "journal"
    segments = [p.name for _, p in seqlog.segments(journal / "commands.journal")]
    assert len(segments) == 2 and segments[1].endswith(f"-{last_date(seen)}.journal"), segments
    listed = subprocess.run([sys.executable, "-m", "gateway", "journal", "segments", str(journal)], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    assert listed.stdout.count(".journal") == 2
    printed = subprocess.run([sys.executable, "-m", "gateway", "journal", "print", str(journal / segments[0])],
                             cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    kinds = re.findall(r"^\s*\d+\s+\d+ (\w+)", printed.stdout, re.M)
    assert kinds[-1] == "END_OF_DAY" and kinds.count("TICK") == 1
    assert kinds.count("PHASE") == 4  # closed (at the start), pre-open, open, closed

    # A fresh subscriber and a restart see the same book and phase.
    late = md_client(gw, "MD2")
    clients.append(late)
    late.subscribe("AAPL")
    assert (late.book("AAPL").bids, late.book("AAPL").asks, late.book("AAPL").phase) == (book.bids, book.asks, "closed")
    for c in clients:
        c.close() if isinstance(c, MarketDataClient) else c.logout()
    clients.clear()
    assert gw.stop() == 0
    gw.start()
    again = md_client(gw, "MD3")
    clients.append(again)
    again.subscribe("AAPL")
    assert (again.book("AAPL").bids, again.book("AAPL").asks, again.book("AAPL").phase) == (book.bids, book.asks,
                                                                                          "closed")  # fmt: skip


def first_date(seen: Recorder) -> str | None:
    dates = [field(m, 336) for m in seen.of("f") if field(m, 336)]
    return dates[0] if dates else None


def last_date(seen: Recorder) -> str | None:
    dates = [field(m, 336) for m in seen.of("h")]
    return dates[-1] if dates else None


def test_a_sigkill_in_the_middle_of_a_halt_keeps_the_phase_the_book_and_the_timer(
    tmp_path: Path, clients: list[Any]
) -> None:
    halt = 8
    overrides = {"protection.AAPL": {"breaker_pct": "5", "breaker_window": 60, "breaker_halt": halt}}
    gw = start_gateway_with(tmp_path / "gw", overrides)
    c1, c2 = oe(gw, "CLIENT1"), oe(gw, "CLIENT2")
    clients += [c1, c2]
    new_order(c2, "ref-s", "2", "1", "100.00")
    new_order(c1, "ref-b", "1", "1", "100.00")
    wait_er(c1, "ref-b", "F")
    for cl, price in (("s1", "104.00"), ("s2", "110.00")):
        new_order(c2, cl, "2", "5", price, tif="1")
        wait_er(c2, cl, "0")
    new_order(c1, "big", "1", "8", "112.00", tif="1")
    wait_er(c1, "big", "F")
    halted = c1.wait_for(lambda m: field(m, 35) == "f" and field(m, 326) == HALT, 10)
    halted_at = dt.datetime.strptime(field(halted, 60) or "", "%Y%m%d-%H:%M:%S.%f").replace(tzinfo=dt.UTC)
    gw.kill()  # SIGKILL while halted, the timer running
    clients.clear()

    gw.start()
    seen = Recorder()
    md = md_client(gw, "MD1", seen)
    clients.append(md)
    md.subscribe("AAPL")
    book = md.book("AAPL")
    reopen_at = halted_at + dt.timedelta(seconds=halt)
    if dt.datetime.now(dt.UTC) < reopen_at - dt.timedelta(seconds=0.5):  # restarted within the halt: still halted
        assert book.phase == "halted"
        assert (book.bids, book.asks) == (levels(("112.00", "3")), levels(("110.00", "5")))
        assert book.indicative == (D("110.00"), D(3)) and book.imbalance == (D(2), "sell")
    book = wait_book(md, lambda b: b.phase == "continuous", timeout=halt + 10)
    assert (book.bids, book.asks) == ((), levels(("110.00", "2")))
    assert book.last_trade is not None and book.last_trade.price == D("110.00")
    statuses = [m for m in seen.of("f") if field(m, 326) in (AUCTION, CONTINUOUS)]
    if statuses:  # the reopening came while subscribed: at the halt's end, not before, not much after
        reopened = dt.datetime.strptime(field(statuses[0], 60) or "", "%Y%m%d-%H:%M:%S.%f").replace(tzinfo=dt.UTC)
        assert reopen_at <= reopened < reopen_at + dt.timedelta(seconds=2), (reopen_at, reopened)
    phases = admin(gw, "phases")
    assert {r["symbol"]: r["phase"] for r in phases["instruments"]}["AAPL"] == "continuous"


def test_operator_halts_and_resumes_and_every_session_is_told(tmp_path: Path, clients: list[Any]) -> None:
    gw = start_gateway_with(tmp_path / "gw", {})
    seen = Recorder()
    md = md_client(gw, "MD1", seen)
    clients.append(md)
    md.subscribe("MSFT")
    c1 = oe(gw, "CLIENT1")
    clients.append(c1)
    new_order(c1, "rest", "1", "5", "50.00", symbol="MSFT")
    wait_er(c1, "rest", "0")

    answer = admin(gw, "halt", symbol="MSFT")
    assert answer["ok"] and answer["results"] == [{"symbol": "MSFT", "applied": True, "phase": "halted"}]
    pushed = c1.wait_for(lambda m: field(m, 35) == "f", 10)
    assert (field(pushed, 55), field(pushed, 326), field(pushed, 325), field(pushed, 83)) == ("MSFT", HALT, "Y", None)
    assert field(pushed, 58) == "halted: market operations"
    md.wait_until(lambda: md.book("MSFT").phase == "halted", 10, "halted")
    assert md.book("MSFT").bids == (Level(D("50.00"), D(5), 1),)  # a halt cancels no order
    new_order(c1, "no", "1", "5", "50.00", symbol="MSFT")
    assert field(wait_msg(c1, "8", t11="no"), 103) == "2"
    cancel(c1, "c-rest", "rest", symbol="MSFT")
    wait_er(c1, "c-rest", "4")  # cancels only: a cancel is taken

    refused = admin(gw, "open", symbol="MSFT")  # open is for a closed or pre-open instrument: resume ends a halt
    assert not refused["ok"] and "MSFT is halted" in refused["error"]
    assert admin(gw, "resume", symbol="MSFT")["ok"]
    md.wait_until(lambda: md.book("MSFT").phase == "continuous", 10, "continuous")
    assert [field(m, 326) for m in seen.of("f") if field(m, 55) == "MSFT"] == [HALT, AUCTION, CONTINUOUS]

    # SecurityStatusRequest and TradingSessionStatusRequest, on both kinds of session.
    c1.send("e", [(324, "q1"), (55, "MSFT"), (263, "0")])
    answer_f = c1.wait_for(lambda m: field(m, 35) == "f" and field(m, 324) == "q1", 10)
    assert (field(answer_f, 326), field(answer_f, 325)) == (CONTINUOUS, "N")
    req = md.request_security_status("NOPE")
    md.wait_until(lambda: req in md.statuses, 10, "status answer")
    assert md.statuses[req] == ("20", "unknown symbol NOPE")
    md.request_session_status()
    md.wait_until(lambda: md.session_status.get(335) is not None, 10, "session status")
    assert md.session_status[340] == "2" and md.session_status[325] == "N"  # open: something trades continuously

    everything = admin(gw, "halt", symbol="all")
    assert everything["ok"] and {r["phase"] for r in everything["results"]} == {"halted"}
    venue = c1.wait_for(lambda m: field(m, 35) == "h" and field(m, 340) == "1", 10)  # the venue is halted now
    assert field(venue, 325) == "Y"
    assert admin(gw, "close", symbol="AAPL")["ok"]
    listed = subprocess.run(
        [sys.executable, "-m", "gateway", "admin", "--url", f"http://127.0.0.1:{gw.ports['operator']}", "phases"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert "AAPL: closed" in listed.stdout and "MSFT: halted" in listed.stdout
