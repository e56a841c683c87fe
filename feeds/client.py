"""The reference market-data client: a library and a command that shows a live book.

    client = MarketDataClient("127.0.0.1", 9877, "MD1", "mdpass1")
    client.logon()
    client.subscribe(["AAPL"], depth=5)          # waits for the first snapshot
    client.wait_until(lambda: client.book("AAPL").bids, timeout=5)
    print(client.book("AAPL"))

    python -m feeds.client --port 9877 --comp-id MD1 --password mdpass1 --symbol AAPL --depth 5
    python -m feeds.client --port 9877 --comp-id MD1 --password mdpass1 --symbol AAPL --once

How the book is kept (see the venue's rules of engagement):

* A subscription is one *view* per symbol: (symbol, MarketDepth, entry types). Its book starts from the W snapshot
  and follows the X entries of that symbol. RptSeq is per view and rises by exactly one per entry.
* An X entry whose RptSeq is at or below the last one applied is a duplicate (a PossDup replay, or an entry the
  snapshot already reflects) and is ignored. Entries that run ahead are held back until the ones before them arrive.
* While the FIX session itself is missing messages (a ResendRequest is outstanding after a reconnect), held-back
  entries wait for the replay. Otherwise a hole in RptSeq is a gap: it is counted (:attr:`gaps`, ``on_gap``) and the
  view recovers with a snapshot request (263=0, same depth and entry types); the held-back entries newer than the
  snapshot are then applied.
* X messages carry no MDReqID, so a session can follow only one view per symbol: :meth:`subscribe` refuses a second.

Not thread-safe: one owner drives it with :meth:`pump` / :meth:`wait_until`; nothing runs behind its back.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import ssl
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TextIO

from engine.instruments import parse_decimal
from fixclient import FixSession, SessionError, group_entries
from fixclient.tls import add_tls_arguments, context_from_args
from gateway.fixcodes import PHASE_STATUS

if TYPE_CHECKING:
    import prometheus_client

BID, OFFER, TRADE, OPEN, HIGH, LOW, IMBALANCE, VOLUME = "0", "1", "2", "4", "7", "8", "A", "B"
ALL_ENTRY_TYPES: tuple[str, ...] = (BID, OFFER, TRADE, OPEN, HIGH, LOW, IMBALANCE, VOLUME)
INDICATIVE = "5"  # OpenCloseSettlFlag (286) of the indicative auction price (an MDEntryType 4 entry)
MORE_BUYERS = "P"  # TradeCondition (277) of the imbalance (MDEntryType A)
PHASES = {str(int(code)): phase.value for phase, code in PHASE_STATUS.items()}  # SecurityTradingStatus -> phase
STATUS = 35  # the key of a SecurityStatus (f) held in a view's sequence like an entry
NEW, CHANGE, DELETE = "0", "1", "2"
SNAPSHOT, SUBSCRIBE, UNSUBSCRIBE = "0", "1", "2"
RESEND_PATIENCE = 5.0  # seconds to wait for a FIX-level resend before treating held-back entries as a gap

GapCallback = Callable[[str, int, int], None]  # (symbol, expected RptSeq, RptSeq received)


class MarketDataError(RuntimeError):
    """A request the venue rejected (35=Y), or a book that did not arrive in time."""


@dataclass(frozen=True, slots=True)
class Level:
    """One aggregated price level."""

    price: Decimal
    size: Decimal
    count: int | None = None


@dataclass(frozen=True, slots=True)
class Trade:
    """The last trade; a snapshot carries only its price."""

    price: Decimal
    size: Decimal | None = None
    trade_id: str | None = None
    aggressor: str | None = None  # Side (54) of the aggressor: 1 buy, 2 sell


@dataclass(frozen=True, slots=True)
class Reject:
    """A MarketDataRequestReject (Y)."""

    md_req_id: str
    reason: str | None
    text: str | None


@dataclass(frozen=True)
class BookSnapshot:
    """A copy of one symbol's book as the client sees it: levels best first, prices and sizes as Decimal."""

    symbol: str
    depth: int
    rpt_seq: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    last_trade: Trade | None = None
    open: Decimal | None = None
    high: Decimal | None = None
    low: Decimal | None = None
    volume: Decimal | None = None
    phase: str | None = None  # closed, pre_open, auction, continuous, halted (None: not told yet)
    phase_text: str | None = None  # the Text of the last SecurityStatus (why the phase changed)
    indicative: tuple[Decimal, Decimal] | None = None  # auction price, quantity (outside continuous trading)
    imbalance: tuple[Decimal, str] | None = None  # quantity, "buy" or "sell": the side with more

    def top(self, depth: int) -> BookSnapshot:
        """The same book cut to ``depth`` levels per side (0 = all)."""
        if not depth:
            return self
        return dataclasses.replace(self, depth=depth, bids=self.bids[:depth], asks=self.asks[:depth])


@dataclass
class _View:
    """One subscribed (symbol, depth, entry types) view and the book built from it."""

    symbol: str
    depth: int
    entry_types: tuple[str, ...]
    md_req_id: str
    rpt_seq: int | None = None  # last RptSeq applied; None until the first snapshot
    bids: dict[Decimal, Level] = field(default_factory=dict)
    asks: dict[Decimal, Level] = field(default_factory=dict)
    last_trade: Trade | None = None
    stats: dict[str, Decimal | None] = field(default_factory=dict)
    phase: str | None = None
    phase_text: str | None = None
    indicative: tuple[Decimal, Decimal] | None = None
    imbalance: tuple[Decimal, str] | None = None
    pending: dict[int, dict[int, str]] = field(default_factory=dict)  # held-back X entries (and f) by RptSeq
    recovery_ids: set[str] = field(default_factory=set)  # outstanding snapshot requests (263=0)
    snapshots: int = 0

    @property
    def synced(self) -> bool:
        return self.rpt_seq is not None and not self.recovery_ids

    def reset(self, rpt_seq: int) -> None:
        self.rpt_seq = rpt_seq
        self.bids.clear()
        self.asks.clear()
        self.last_trade = None
        self.stats.clear()
        self.indicative = self.imbalance = None

    def apply(self, e: dict[int, str]) -> None:
        """Apply one entry (a W entry is a NEW), or a phase change (a SecurityStatus in the sequence)."""
        action, et = e.get(279, NEW), e.get(269)
        if e.get(STATUS) == "f":
            self.phase, self.phase_text = PHASES.get(e.get(326, ""), e.get(326)), e.get(58)
        elif et == OPEN and e.get(286) == INDICATIVE:
            price, size = parse_decimal(e.get(270)), parse_decimal(e.get(271))
            self.indicative = None if action == DELETE or price is None else (price, size or Decimal(0))
        elif et == IMBALANCE:
            size = parse_decimal(e.get(271))
            more = "buy" if e.get(277) == MORE_BUYERS else "sell"
            self.imbalance = None if action == DELETE or size is None else (size, more)
        elif et in (BID, OFFER):
            side = self.bids if et == BID else self.asks
            price = parse_decimal(e.get(270))
            if price is None:
                return
            if action == DELETE:
                side.pop(price, None)
            else:
                count = e.get(346)
                side[price] = Level(price, parse_decimal(e.get(271)) or Decimal(0), int(count) if count else None)
        elif et == TRADE:
            price = parse_decimal(e.get(270))
            if action != DELETE and price is not None:
                self.last_trade = Trade(price, parse_decimal(e.get(271)), e.get(1003), e.get(20001))
        elif et in (OPEN, HIGH, LOW):
            self.stats[et] = None if action == DELETE else parse_decimal(e.get(270))
        elif et == VOLUME:
            self.stats[et] = None if action == DELETE else parse_decimal(e.get(271))

    def snapshot(self) -> BookSnapshot:
        bids = tuple(self.bids[p] for p in sorted(self.bids, reverse=True))
        asks = tuple(self.asks[p] for p in sorted(self.asks))
        if self.depth:
            bids, asks = bids[: self.depth], asks[: self.depth]
        s = self.stats
        return BookSnapshot(
            self.symbol, self.depth, self.rpt_seq or 0, bids, asks, self.last_trade,
            s.get(OPEN), s.get(HIGH), s.get(LOW), s.get(VOLUME), self.phase, self.phase_text, self.indicative,
            self.imbalance,
        )  # fmt: skip


class _Owed:
    """MsgSeqNum ranges [lo, hi) the venue still owes us: a gap seen, its replay (or gap fill) not yet arrived."""

    def __init__(self) -> None:
        self.ranges: list[tuple[int, int]] = []

    def __bool__(self) -> bool:
        return bool(self.ranges)

    def add(self, lo: int, hi: int) -> None:
        if lo < hi:
            self.ranges.append((lo, hi))

    def remove(self, lo: int, hi: int) -> None:
        out: list[tuple[int, int]] = []
        for a, b in self.ranges:
            if b <= lo or a >= hi:
                out.append((a, b))
                continue
            if a < lo:
                out.append((a, lo))
            if hi < b:
                out.append((hi, b))
        self.ranges = out

    def clear(self) -> None:
        self.ranges.clear()


def _body_field(msg: Any, tag: int, group_tag: int = 268) -> str | None:
    """``tag`` from the message body before the repeating group starts (W has RptSeq in both places)."""
    for raw_tag, value in msg.pairs:
        t = int(raw_tag)
        if t == group_tag:
            return None
        if t == tag:
            return str(value.decode())
    return None


class MarketDataClient:
    """A market-data session to the venue that keeps a book per subscribed symbol.

    ``on_gap(symbol, expected, received)`` is called for every RptSeq gap (callers can bump
    ``fixgw_md_client_rptseq_gaps_total`` there); ``on_message(msg)`` sees every message received; ``drop(msg)``
    returning True discards a message before the books see it (to simulate loss in tests).
    """

    def __init__(
        self,
        host: str,
        port: int,
        comp_id: str,
        password: str | None,
        *,
        target: str = "EXCH",
        heartbeat: int = 30,
        reset_seq: bool = True,
        on_gap: GapCallback | None = None,
        on_message: Callable[[Any], None] | None = None,
        drop: Callable[[Any], bool] | None = None,
        resend_patience: float = RESEND_PATIENCE,
        tls: ssl.SSLContext | None = None,
        server_name: str | None = None,
    ) -> None:
        self.session = FixSession(
            host, port, comp_id, password, target, heartbeat, reset_seq=reset_seq, tls=tls, server_name=server_name
        )
        self.on_gap = on_gap
        self.on_message = on_message
        self.drop = drop
        self.resend_patience = resend_patience
        self.views: dict[str, _View] = {}  # by symbol
        self.subscriptions: dict[str, list[str]] = {}  # MDReqID -> symbols
        self.rejects: dict[str, Reject] = {}
        self.snapshots: dict[str, BookSnapshot] = {}  # answers to one-off snapshot requests, by MDReqID
        self.statuses: dict[str, tuple[str | None, str | None]] = {}  # SecurityStatus answers: (phase, Text) by id
        self.phases: dict[str, tuple[str | None, str | None]] = {}  # the last SecurityStatus of each symbol
        self.session_status: dict[int, str] = {}  # the last TradingSessionStatus (h): {336, 340, 58, ...}
        self.gaps = 0
        self.counts: Counter[str] = Counter()  # messages by type, plus 'dup_entries', 'gap_fills', 'poss_dup'
        self._oneoff: set[str] = set()
        self._missing = _Owed()  # FIX MsgSeqNums the venue still owes us (ResendRequest outstanding)
        self._missing_since = 0.0
        self._ids = itertools.count(1)
        self._prefix = f"{comp_id}-{os.getpid()}-{int(time.time() * 1000) % 100_000_000}-"

    # ------------------------------------------------------------------ session

    def logon(self, timeout: float = 5.0) -> None:
        """Connect and log on (sequence numbers reset if ``reset_seq``)."""
        expected = self.session.expected_in
        reply = self.session.logon(timeout)
        self._note_gap(reply, expected)

    def reconnect(self, timeout: float = 5.0) -> None:
        """Log on again after a lost connection, keeping sequence numbers: missed messages come back as replays
        (ResendRequest), and subscriptions, which the venue keeps, go on."""
        self.session.close()
        self.session.reset_seq = False
        self.logon(timeout)

    def close(self, unsubscribe: bool = True, timeout: float = 2.0) -> None:
        """Unsubscribe everything (best effort) and log out."""
        if self.session.sock is None:
            return
        try:
            if unsubscribe:
                for req_id in list(self.subscriptions):
                    self.unsubscribe(req_id)
        except (OSError, SessionError):
            pass
        self.session.logout(timeout=timeout)

    def __enter__(self) -> MarketDataClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ------------------------------------------------------------------ requests

    def new_req_id(self) -> str:
        return f"{self._prefix}{next(self._ids)}"

    def _send_request(
        self, req_id: str, req_type: str, symbols: Sequence[str], depth: int, entry_types: Iterable[str]
    ) -> None:
        types = list(dict.fromkeys(entry_types))
        fields: list[tuple[int, Any]] = [(262, req_id), (263, req_type), (264, depth)]
        if req_type == SUBSCRIBE:
            fields.append((265, 1))
        fields.append((267, len(types)))
        fields += [(269, t) for t in types]
        fields.append((146, len(symbols)))
        fields += [(55, s) for s in symbols]
        self.session.send("V", fields)

    def subscribe(
        self,
        symbols: str | Sequence[str],
        depth: int = 0,
        entry_types: Iterable[str] = ALL_ENTRY_TYPES,
        md_req_id: str | None = None,
        timeout: float | None = 5.0,
    ) -> str:
        """Subscribe to snapshot + updates; returns the MDReqID. With a ``timeout`` (None = don't wait) waits for
        every symbol's first snapshot and raises :class:`MarketDataError` if the venue rejects the request."""
        symbols = [symbols] if isinstance(symbols, str) else list(dict.fromkeys(symbols))
        taken = [s for s in symbols if s in self.views]
        if taken:
            raise ValueError(f"already subscribed to {', '.join(taken)}: one view per symbol per session")
        req_id = md_req_id or self.new_req_id()
        types = tuple(dict.fromkeys(entry_types))
        self._send_request(req_id, SUBSCRIBE, symbols, depth, types)
        for s in symbols:
            self.views[s] = _View(s, depth, types, req_id)
        self.subscriptions[req_id] = symbols
        if timeout is not None:
            self.wait_until(
                lambda: req_id in self.rejects or all(self.views[s].rpt_seq is not None for s in symbols),
                timeout, f"snapshot of {', '.join(symbols)}",
            )  # fmt: skip
            self._raise_if_rejected(req_id)
        return req_id

    def unsubscribe(self, md_req_id: str) -> None:
        """End a subscription (263=2) and forget its books."""
        symbols = self.subscriptions.pop(md_req_id, None)
        if symbols is None:
            raise KeyError(md_req_id)
        first = self.views[symbols[0]]
        self._send_request(md_req_id, UNSUBSCRIBE, symbols, first.depth, first.entry_types)
        for s in symbols:
            self.views.pop(s, None)

    def request_snapshot(self, symbol: str, depth: int = 0, entry_types: Iterable[str] = ALL_ENTRY_TYPES) -> str:
        """Ask for one snapshot (263=0); the answer lands in :attr:`snapshots` under the returned MDReqID."""
        req_id = self.new_req_id()
        self._oneoff.add(req_id)
        self._send_request(req_id, SNAPSHOT, [symbol], depth, entry_types)
        return req_id

    def fetch_snapshot(
        self, symbol: str, depth: int = 0, entry_types: Iterable[str] = ALL_ENTRY_TYPES, timeout: float = 5.0
    ) -> BookSnapshot:
        """Request one snapshot and wait for it."""
        req_id = self.request_snapshot(symbol, depth, entry_types)
        self.wait_until(lambda: req_id in self.snapshots or req_id in self.rejects, timeout, f"snapshot of {symbol}")
        self._raise_if_rejected(req_id)
        return self.snapshots.pop(req_id)

    def request_security_status(self, symbol: str, subscribe: bool = False) -> str:
        """SecurityStatusRequest (e): the answer lands in :attr:`statuses` under the returned id; with
        ``subscribe``, the symbol's phase changes keep coming (use :meth:`subscribe` to have them in a book)."""
        req_id = self.new_req_id()
        self.session.send("e", [(324, req_id), (55, symbol), (263, SUBSCRIBE if subscribe else SNAPSHOT)])
        return req_id

    def request_session_status(self) -> str:
        """TradingSessionStatusRequest (g): the answer updates :attr:`session_status`."""
        req_id = self.new_req_id()
        self.session.send("g", [(335, req_id), (263, SNAPSHOT)])
        return req_id

    def _raise_if_rejected(self, req_id: str) -> None:
        rej = self.rejects.get(req_id)
        if rej is not None:
            raise MarketDataError(f"request {req_id} rejected (reason {rej.reason}): {rej.text}")

    # ------------------------------------------------------------------ reading

    def book(self, symbol: str) -> BookSnapshot:
        """The current book of a subscribed symbol (a copy)."""
        return self.views[symbol].snapshot()

    def synced(self, symbol: str) -> bool:
        """True if the symbol's book is complete and current as far as the client knows."""
        view = self.views.get(symbol)
        return view is not None and view.synced and not view.pending

    def pump(self, timeout: float = 0.0) -> int:
        """Wait up to ``timeout`` seconds for messages, then process everything already readable; returns how
        many were processed. Raises SessionError if the venue logs us out or the connection drops."""
        deadline = time.monotonic() + timeout
        n = 0
        while True:
            expected, owed = self.session.expected_in, bool(self._missing)
            wait = 0.001 if n else max(deadline - time.monotonic(), 0.001)
            msg = self.session.receive(wait, admin=True)
            if msg is not None:
                n += 1
                self._note_gap(msg, expected)
                self._handle(msg)
            if self._missing and time.monotonic() - self._missing_since > self.resend_patience:
                self._missing.clear()  # a resend that never completes must not stall the books forever
            if owed and not self._missing:
                for view in list(self.views.values()):
                    self._drain(view)
            if msg is None and (n or time.monotonic() >= deadline):
                return n

    def wait_until(self, predicate: Callable[[], object], timeout: float, what: str = "condition") -> None:
        """Pump until ``predicate()`` is true; raises TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{self.session.sender}: no {what} within {timeout:g}s")
            self.pump(min(remaining, 0.1))

    # ------------------------------------------------------------------ handling

    def _note_gap(self, msg: Any, expected: int) -> None:
        """Track MsgSeqNums the venue owes us, so held-back entries wait for a replay rather than a snapshot."""
        msg_type = _field(msg, 35)
        seq = int(_field(msg, 34) or 0)
        if msg_type == "4":
            new_seq = int(_field(msg, 36) or seq)
            gap_fill = _field(msg, 123) == "Y"
            self._missing.remove(seq if gap_fill else 0, new_seq)
            self.counts["gap_fills" if gap_fill else "sequence_resets"] += 1
        elif _field(msg, 43) == "Y":
            self._missing.remove(seq, seq + 1)
            self.counts["poss_dup"] += 1
        elif seq > expected and msg_type != "5":
            if not self._missing:
                self._missing_since = time.monotonic()
            self._missing.add(expected, seq)

    def _handle(self, msg: Any) -> None:
        msg_type = _field(msg, 35) or ""
        self.counts[msg_type] += 1
        if self.on_message is not None:
            self.on_message(msg)
        if msg_type == "5":
            raise SessionError(self.session.logout_text or "logged out by the venue")
        if self.drop is not None and self.drop(msg):
            self.counts["dropped"] += 1
            return
        if msg_type == "X":
            touched: set[str] = set()
            for e in group_entries(msg, 268, 279):
                view = self.views.get(e.get(55, ""))
                rpt = e.get(83)
                if view is None or rpt is None:
                    continue
                seq = int(rpt)
                if view.rpt_seq is not None and seq <= view.rpt_seq:
                    self.counts["dup_entries"] += 1
                    continue
                view.pending[seq] = e
                touched.add(view.symbol)
            for symbol in touched:
                self._drain(self.views[symbol])
        elif msg_type == "W":
            self._on_snapshot(msg)
        elif msg_type == "Y":
            self._on_reject(msg)
        elif msg_type == "f":
            self._on_status(msg)
        elif msg_type == "h":
            self.session_status = {int(t): v.decode() for t, v in msg.pairs}

    def _on_snapshot(self, msg: Any) -> None:
        req_id = _field(msg, 262) or ""
        symbol = _field(msg, 55) or ""
        rpt = int(_body_field(msg, 83) or 0)
        entries = group_entries(msg, 268, 269)
        view = self.views.get(symbol)
        if view is not None and (req_id == view.md_req_id or req_id in view.recovery_ids):
            view.recovery_ids.discard(req_id)
            if view.rpt_seq is not None and rpt < view.rpt_seq:
                return  # older than what we have: a replayed snapshot
            view.reset(rpt)
            view.snapshots += 1
            code = _field(msg, 326)  # (a body field: QuickFIX writes it after the entries, in tag order)
            if code is not None:
                view.phase = PHASES.get(code, code)
            for e in entries:
                view.apply(e)
            self._drain(view)
        elif req_id in self._oneoff:
            self._oneoff.discard(req_id)
            tmp = _View(symbol, 0, (), req_id)
            tmp.reset(rpt)
            code = _field(msg, 326)
            tmp.phase = PHASES.get(code, code) if code is not None else None
            for e in entries:
                tmp.apply(e)
            self.snapshots[req_id] = tmp.snapshot()

    def _on_status(self, msg: Any) -> None:
        """SecurityStatus (f): in a view's sequence when it carries RptSeq (a phase change, or the snapshot of a
        status subscription), else an answer to a request."""
        fields = {int(t): v.decode() for t, v in msg.pairs}
        fields[STATUS] = "f"
        view = self.views.get(fields.get(55, ""))
        rpt = fields.get(83)
        req_id = fields.get(324)
        told = (PHASES.get(fields.get(326, ""), fields.get(326)), fields.get(58))
        self.phases[fields.get(55, "")] = told
        if req_id is not None:
            self.statuses[req_id] = told
        if view is None or rpt is None or req_id is not None:
            return
        seq = int(rpt)
        if view.rpt_seq is not None and seq <= view.rpt_seq:
            self.counts["dup_entries"] += 1
            return
        view.pending[seq] = fields
        self._drain(view)

    def _on_reject(self, msg: Any) -> None:
        req_id = _field(msg, 262) or ""
        self.rejects[req_id] = Reject(req_id, _field(msg, 281), _field(msg, 58))
        for view in self.views.values():
            view.recovery_ids.discard(req_id)
        symbols = self.subscriptions.pop(req_id, None)
        for s in symbols or ():
            if self.views.get(s) is not None and self.views[s].md_req_id == req_id:
                del self.views[s]

    def _drain(self, view: _View) -> None:
        """Apply held-back entries that continue the view; on a hole, wait for a replay or recover."""
        if view.rpt_seq is None:
            return
        pending = view.pending
        for seq in [s for s in pending if s <= view.rpt_seq]:
            del pending[seq]
            self.counts["dup_entries"] += 1
        while (nxt := view.rpt_seq + 1) in pending:
            view.apply(pending.pop(nxt))
            view.rpt_seq = nxt
        if pending and not view.recovery_ids and not self._missing:
            self._gap(view)

    def _gap(self, view: _View) -> None:
        expected = (view.rpt_seq or 0) + 1
        self.gaps += 1
        if self.on_gap is not None:
            self.on_gap(view.symbol, expected, min(view.pending))
        req_id = self.new_req_id()
        view.recovery_ids.add(req_id)
        self._send_request(req_id, SNAPSHOT, [view.symbol], view.depth, view.entry_types)


def _field(msg: Any, tag: int) -> str | None:
    value = msg.get(tag)
    return value.decode() if value is not None else None


# ---------------------------------------------------------------------- the command


def render(book: BookSnapshot, synced: bool = True) -> str:
    """A plain-text picture of a book."""
    rows = max(len(book.bids), len(book.asks))
    lines = [
        f"{book.symbol}  depth {book.depth or 'full'}  RptSeq {book.rpt_seq}{'' if synced else '  (recovering)'}",
        f"{'orders':>7} {'size':>12} {'bid':>12} | {'ask':<12} {'size':<12} {'orders'}",
    ]
    for i in range(rows):
        b = book.bids[i] if i < len(book.bids) else None
        a = book.asks[i] if i < len(book.asks) else None
        left = f"{_n(b.count) if b else '':>7} {_n(b.size) if b else '':>12} {_n(b.price) if b else '':>12}"
        right = f"{_n(a.price) if a else '':<12} {_n(a.size) if a else '':<12} {_n(a.count) if a else '':<7}"
        lines.append(f"{left} | {right}".rstrip())
    if not rows:
        lines.append("(empty book)")
    t = book.last_trade
    stats = [
        f"last {t.price}" + (f" x {t.size}" if t.size is not None else "") if t else "last -",
        *(f"{name} {_n(v)}" for name, v in (("open", book.open), ("high", book.high), ("low", book.low),
                                            ("volume", book.volume)) if v is not None),
    ]  # fmt: skip
    lines.append("  ".join(stats))
    if book.phase is not None:
        status = [f"phase {book.phase}" + (f" ({book.phase_text})" if book.phase_text else "")]
        if book.indicative is not None:
            status.append(f"indicative {_n(book.indicative[0])} x {_n(book.indicative[1])}")
        if book.imbalance is not None:
            status.append(f"imbalance {book.imbalance[1]} {_n(book.imbalance[0])}")
        lines.append("  ".join(status))
    return "\n".join(lines)


def _n(value: object) -> str:
    return "" if value is None else str(value)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m feeds.client", description="Show a live order book from the venue.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9877, help="market-data port (default 9877)")
    p.add_argument("--comp-id", required=True, help="our SenderCompID, e.g. MD1")
    p.add_argument("--password", required=True)
    p.add_argument("--target", default="EXCH", help="the venue's CompID (default EXCH)")
    p.add_argument("--symbol", required=True)
    p.add_argument("--depth", type=int, default=0, help="levels per side (0 = full book)")
    p.add_argument("--types", default="".join(ALL_ENTRY_TYPES), help="MDEntryType letters (default 012478B)")
    p.add_argument("--once", action="store_true", help="print one snapshot and exit")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for logon and the snapshot")
    p.add_argument("--metrics-port", type=int, default=0, help="serve fixgw_md_client_rptseq_gaps_total here (0 = off)")
    add_tls_arguments(p)
    return p.parse_args(argv)


def gap_counter(port: int, symbols: Iterable[str] = ()) -> GapCallback:
    """A ``on_gap`` callback counting ``fixgw_md_client_rptseq_gaps_total{symbol}`` in the client's own /metrics on
    ``port`` (the client is a separate process: the gateway cannot know what a client missed). The counters of
    ``symbols`` are exported from the start, at 0, so that a scrape (and ``increase()``) sees them before any gap."""
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry()
    gaps = rptseq_gaps(registry)
    for symbol in symbols:
        gaps.labels(symbol)
    start_http_server(port, addr="127.0.0.1", registry=registry)
    return lambda symbol, expected, received: gaps.labels(symbol).inc()


def rptseq_gaps(registry: prometheus_client.CollectorRegistry) -> prometheus_client.Counter:
    """The client's one metric, ``fixgw_md_client_rptseq_gaps_total{symbol}``, in ``registry``."""
    from gateway.metrics import counter

    return counter("md_client_rptseq_gaps_total", "RptSeq gaps detected by the reference client", ["symbol"], registry)


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    on_gap = gap_counter(args.metrics_port, [args.symbol]) if getattr(args, "metrics_port", 0) else None
    tls = context_from_args(args) if hasattr(args, "tls") else None
    client = MarketDataClient(
        args.host, args.port, args.comp_id, args.password, target=args.target, on_gap=on_gap, tls=tls,
        server_name=getattr(args, "tls_server_name", None),
    )  # fmt: skip
    try:
        client.logon(args.timeout)
    except OSError as exc:
        raise SessionError(f"cannot connect to {args.host}:{args.port}: {exc.strerror or exc}") from exc
    try:
        if args.once:
            book = client.fetch_snapshot(args.symbol, args.depth, args.types, timeout=args.timeout)
            print(render(book.top(args.depth)), file=out, flush=True)
            return 0
        client.subscribe(args.symbol, args.depth, args.types, timeout=args.timeout)
        tty = out.isatty()
        shown = ""
        while True:
            text = render(client.book(args.symbol), client.synced(args.symbol))
            if text != shown:
                shown = text
                print(("\x1b[H\x1b[2J" if tty else "") + text + ("" if tty else "\n"), file=out, flush=True)
            client.pump(0.2)
    finally:
        client.close()


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parse_args(argv)
        return run(args)
    except KeyboardInterrupt:
        return 0
    except (SessionError, MarketDataError, TimeoutError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
