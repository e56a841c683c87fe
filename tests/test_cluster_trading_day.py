"""The trading day in the multi-process venue, on a three-server JetStream cluster (replicas 3): two engines, an
order-entry gateway and a market-data publisher as real processes, a compressed schedule (pre-open -> opening
auction -> continuous -> circuit-breaker halt -> reopening auction -> close -> end of day) and price protection.

The active engine is the venue's clock. It is killed with SIGKILL just before the open, so the standby that takes
over must open the market (once); later that engine is frozen (SIGSTOP) across the close, so the restarted first
engine takes over and closes the market while the frozen one still believes it is active, and wakes up (SIGCONT)
with a stale view. Subscribers and order-entry clients must see every status once and in order, the auction and the
DAY expiry must happen once, and the result stream must equal a single-process replay of the command stream.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from decimal import Decimal as D
from pathlib import Path

import pytest
import simplefix

from engine import EndOfDay, MatchingEngine, PhaseCause, SetPhase, Tick
from engine.codec import decode
from engine.eventcodec import decode_events, to_list
from feeds.client import MarketDataClient
from fixclient import FixSession, field
from roles.config import load
from seqlog.jetstream import JetStreamLogReader, StreamSpec
from tests.cluster_process import RoleProcess, cluster_config
from tests.conftest import PASSWORDS
from tests.fixtools import new_order
from tests.nats_cluster import NatsCluster
from tests.test_cluster_engine import read_stream
from tests.test_trading_day_e2e import AUCTION, CLOSED, CONTINUOUS, HALT, PRE_OPEN, Recorder, at, midday_zone

pytestmark = pytest.mark.timeout(300)

# Seconds after the processes start: long enough for five processes to start on a loaded machine.
PRE_OPEN_AT, OPEN_AT, CLOSE_AT, END_AT = 25, 34, 52, 57
HALT_SECONDS = 3


class Inbox:
    """Every message a FIX client received, kept: waits look at what came before too."""

    def __init__(self, session: FixSession) -> None:
        self.session = session
        self.messages: list[simplefix.FixMessage] = []

    def wait(
        self, predicate: Callable[[simplefix.FixMessage], bool], timeout: float, what: str
    ) -> simplefix.FixMessage:
        deadline = time.monotonic() + timeout
        while True:
            for m in self.messages:
                if predicate(m):
                    return m
            left = deadline - time.monotonic()
            assert left > 0, f"{self.session.sender}: no {what} within {timeout}s"
            msg = self.session.receive(min(left, 0.2))
            if msg is not None:
                self.messages.append(msg)

    def er(self, clordid: str, exec_type: str, timeout: float = 20.0) -> simplefix.FixMessage:
        return self.wait(lambda m: field(m, 35) == "8" and field(m, 11) == clordid and field(m, 150) == exec_type,
                         timeout, f"report {exec_type} of {clordid}")  # fmt: skip

    def fills(self, clordid: str) -> list[str | None]:
        """LastQty of each fill of ``clordid``."""
        return [field(m, 32) for m in self.messages if field(m, 11) == clordid and field(m, 150) == "F"]

    def count(self, clordid: str, exec_type: str) -> int:
        return sum(1 for m in self.messages if field(m, 11) == clordid and field(m, 150) == exec_type)


def sleep_until(start: float, seconds: float, clients: list[MarketDataClient]) -> None:
    """Until ``seconds`` after ``start`` (monotonic), keeping the market-data clients read."""
    while (left := start + seconds - time.monotonic()) > 0:
        for c in clients:
            c.pump(min(left, 0.1))


def test_a_trading_day_survives_a_killed_and_a_frozen_engine(tmp_path: Path, nats3: NatsCluster) -> None:
    zone, local = midday_zone()
    start = time.monotonic()
    config, ports = cluster_config(
        tmp_path, nats3.urls, {"gw1": ["CLIENT1", "CLIENT2"]}, {"md1": ["MD1", "MD2"]}, replicas=3,
        overrides={
            "venue.timezone": zone,
            "schedule.end_of_day": at(local, END_AT),
            "schedule.pre_open": at(local, PRE_OPEN_AT),
            "schedule.open": at(local, OPEN_AT),
            "schedule.close": at(local, CLOSE_AT),
            "schedule.instruments": {"MSFT": {"continuous": True}, "BTC-USD": {"continuous": True}},
            "protection.AAPL": {"breaker_pct": "5", "breaker_window": 60, "breaker_halt": HALT_SECONDS},
        },
    )  # fmt: skip
    e1 = RoleProcess(config, "engine", "e1", tmp_path).start()
    e1.wait_for("engine_active")
    e2 = RoleProcess(config, "engine", "e2", tmp_path).start()
    gw = RoleProcess(config, "gateway", "gw1", tmp_path).start()
    md = RoleProcess(config, "md", "md1", tmp_path).start()
    processes = [e1, e2, gw, md]
    opened: list[FixSession] = []
    try:
        seen = Recorder()
        sub = MarketDataClient("127.0.0.1", ports["md1"], "MD1", PASSWORDS["MD1"], on_message=seen)
        sub.logon()
        opened.append(sub.session)
        sub.subscribe("AAPL")
        sessions = []
        for comp_id in ("CLIENT1", "CLIENT2"):
            s = FixSession("127.0.0.1", ports["gw1"], comp_id, PASSWORDS[comp_id], heartbeat=30)
            s.logon()
            opened.append(s)
            sessions.append(Inbox(s))
        c1, c2 = sessions
        assert time.monotonic() - start < PRE_OPEN_AT - 1, "the venue started too slowly for the schedule"
        assert sub.book("AAPL").phase == "closed"  # the first clock message closed it before its pre-open

        # Pre-open: orders rest, crossing; the order-entry gateway tells its sessions the phase too.
        sub.wait_until(lambda: sub.book("AAPL").phase == "pre_open", PRE_OPEN_AT + 10, "pre-open")
        c1.wait(lambda m: field(m, 35) == "f" and field(m, 326) == PRE_OPEN, 10, "SecurityStatus pre-open")
        for inbox, clordid, side, qty, price, tif in (
            (c1, "b1", "1", "10", "101.00", "0"),
            (c2, "s1", "2", "8", "100.00", "0"),
            (c2, "s2", "2", "6", "102.00", "1"),
        ):
            new_order(inbox.session, clordid, side, qty, price, tif=tif)
            inbox.er(clordid, "0")

        # SIGKILL of the active engine just before the open: the standby takes over after the boundary and opens.
        sleep_until(start, OPEN_AT - 1.0, [sub])
        e1.kill()
        e2.wait_for("engine_active", 20)
        auction_fill = c1.er("b1", "F")
        assert field(auction_fill, 32) == "8" and field(c2.er("s1", "F"), 31) == field(auction_fill, 31)
        sub.wait_until(lambda: sub.book("AAPL").phase == "continuous", 10, "continuous trading")
        c1.wait(lambda m: field(m, 35) == "f" and field(m, 326) == CONTINUOUS, 10, "SecurityStatus continuous")
        e1.start()  # back, as a standby: it replays the streams

        # A move beyond the breaker's 5%: the instrument halts and the active engine's Tick reopens it.
        new_order(c2.session, "s3", "2", "2", "101.00")
        c2.er("s3", "F")
        new_order(c2.session, "s4", "2", "5", "108.00", tif="1")
        c2.er("s4", "0")
        new_order(c1.session, "b2", "1", "10", "110.00")
        sub.wait_until(lambda: sub.book("AAPL").phase == "halted", 10, "the breaker's halt")
        done = c1.wait(lambda m: field(m, 11) == "b2" and field(m, 39) == "2", HALT_SECONDS + 10, "b2 filled")
        assert field(done, 31) == "108.00"  # the reopening auction's price
        sub.wait_until(lambda: sub.book("AAPL").phase == "continuous", 10, "continuous after the halt")

        # The close, with the active engine frozen: the standby closes the market while the frozen one still
        # believes it is active; it wakes with a view that lacks the close.
        new_order(c1.session, "day", "1", "1", "100.00")
        c1.er("day", "0")
        new_order(c1.session, "gtc", "1", "1", "99.00", tif="1")
        c1.er("gtc", "0")
        sleep_until(start, CLOSE_AT - 1.0, [sub])
        assert e2.proc is not None
        os.kill(e2.proc.pid, signal.SIGSTOP)
        try:
            expired = c1.er("day", "C", 20)
            assert field(expired, 58) == "day order expired at end of trading day"
            sub.wait_until(lambda: sub.book("AAPL").phase == "closed", 10, "closed")
        finally:
            os.kill(e2.proc.pid, signal.SIGCONT)
        e2.wait_for("engine_standby", 20)  # it learns that it lost the lease

        # The end of the day: a new trading date, told to both kinds of session.
        first_date = field(seen.of("f")[0], 336)
        sub.wait_until(lambda: any(field(m, 336) != first_date for m in seen.of("h")), 20, "the new trading date")
        c1.wait(lambda m: field(m, 35) == "h" and field(m, 336) not in (None, first_date), 10, "h of the new day")
        sleep_until(time.monotonic(), 1.0, [sub])  # anything doubled would come now
        assert seen.statuses() == [PRE_OPEN, AUCTION, CONTINUOUS, HALT, AUCTION, CONTINUOUS, CLOSED]
        assert sub.gaps == 0
        book = sub.book("AAPL")
        assert [lv.price for lv in book.bids] == [D("99.00")] and [lv.price for lv in book.asks] == [D("108.00")]
        assert book.volume == D(0)  # the statistics reset at the close; GTC orders stay
        assert c1.fills("b1") == ["8", "2"] and c1.count("day", "C") == 1  # one auction, then s3; one expiry
        e1.wait_for("clock_published", 1)  # the restarted engine closed the market

        # The command stream holds each boundary once, and the result stream equals a single-process replay.
        cfg, cluster = load(config)
        n = records_in(nats3.urls, cluster.commands)
        commands = read_stream(nats3.urls, cluster.commands, n)
        results = read_stream(nats3.urls, cluster.results, n)
        day = [decode(p) for _, p in commands]
        aapl = [c.phase.value for c in day if isinstance(c, SetPhase) and c.symbol == "AAPL"
                and c.cause is PhaseCause.SCHEDULE]  # fmt: skip
        assert aapl == ["closed", "pre_open", "continuous", "closed"]
        dates = [c.trading_date for c in day if isinstance(c, EndOfDay)]
        assert len(dates) == 2 and dates[0] < dates[1]
        assert sum(isinstance(c, Tick) for c in day) == 1
        replica = MatchingEngine(cfg.instruments, cfg.self_trade_prevention)
        for (cmd_seq, payload), (res_seq, result) in zip(commands, results, strict=True):
            assert cmd_seq == res_seq
            assert [to_list(e) for e in decode_events(result)] == [to_list(e) for e in replica.process(decode(payload))]
    finally:
        for s in opened:
            s.close()
        for p in processes:
            if p.alive():
                if p.proc is not None:
                    os.kill(p.proc.pid, signal.SIGCONT)
                p.stop()


def records_in(urls: list[str], spec: StreamSpec) -> int:
    """How many records ``spec``'s stream holds now (it is quiet: no wait finds more)."""
    reader = JetStreamLogReader(urls, spec)
    count, pos = 0, 0
    try:
        while True:
            records = reader.read(pos, 10_000)
            if not records:
                if not reader.wait(pos, 1.0):
                    return count
                continue
            count += len(records)
            pos = records[-1][1]
    finally:
        reader.close()
