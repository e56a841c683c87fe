"""Market-data views: what one kind of subscription to one instrument sees, and its own gap-free RptSeq.

A view is keyed by (symbol, depth, entry types); a view with no entry types follows only the instrument's phase (a
SecurityStatusRequest subscription). Every subscriber with the same key shares the view, so each
incremental message is built once and sent to all of them. The full-depth, all-entry-types view of an instrument
starts its RptSeq at the engine's and advances exactly as the engine's does; a narrower view (top N levels, or only
some entry types) advances by one per entry *it* publishes, so its subscribers can prove they missed nothing too.

Depth-limited views compare the top N levels before and after each engine command and publish the difference:
a level that enters the top N is ``new``, one that leaves it (deleted, or pushed below N) is ``delete``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sortedcontainers import SortedDict

from engine import BookUpdate, Imbalance, Indicative, Phase, PhaseChange, Side, StatUpdate, TradePrint
from engine.book import LevelView
from engine.events import MarketDataEvent
from gateway.fixcodes import OpenCloseSettlFlag, TradeCondition

BID, OFFER, TRADE = "0", "1", "2"
OPEN, HIGH, LOW, IMBALANCE, VOLUME = "4", "7", "8", "A", "B"
ALL_ENTRY_TYPES = frozenset({BID, OFFER, TRADE, OPEN, HIGH, LOW, IMBALANCE, VOLUME})
NEW, CHANGE, DELETE = "0", "1", "2"
_SIDE_TYPE = {Side.BUY: BID, Side.SELL: OFFER}
INDICATIVE = OpenCloseSettlFlag.THEORETICAL_PRICE_VALUE.value  # 286 on the indicative auction price (269=4)
MORE_BUYERS = TradeCondition.IMBALANCE_MORE_BUYERS.value  # 277 on the imbalance (269=A)
MORE_SELLERS = TradeCondition.IMBALANCE_MORE_SELLERS.value
_AUCTION_PHASES = (Phase.PRE_OPEN, Phase.HALTED)


class BookState(Protocol):
    """What a view reads of a book: the engine's :class:`~engine.book.OrderBook` in the one-process venue, a
    :class:`~feeds.levelbook.LevelBook` kept from the result stream in a market-data publisher of its own."""

    symbol: str
    rpt_seq: int
    last_px: int | None
    open: int | None
    high: int | None
    low: int | None
    volume: int
    phase: Phase
    halt_until: int | None  # ns: when a circuit-breaker halt ends
    indicative: tuple[int, int, int] | None  # the last published indicative (price, volume, imbalance)

    def depth(self, side: Side, levels: int = 0) -> list[LevelView]: ...


@dataclass(slots=True)
class Entry:
    """One MD entry (a level, a trade or a statistic), in ticks and lots; ``rpt_seq`` is set on publication."""

    action: str
    entry_type: str
    price: int | None = None
    size: int | None = None
    count: int | None = None
    position: int | None = None
    trade_id: int | None = None
    aggressor: Side | None = None
    rpt_seq: int = 0
    flag: str | None = None  # OpenCloseSettlFlag (286): the indicative auction price
    condition: str | None = None  # TradeCondition (277): the imbalance's side


@dataclass(slots=True)
class Status:
    """A phase change in a view's sequence: published as a SecurityStatus (f) carrying the view's RptSeq."""

    event: PhaseChange
    rpt_seq: int = 0


class BookView:
    """One (symbol, depth, entry types) view; ``depth`` 0 is the full book."""

    def __init__(self, book: BookState, depth: int, entry_types: frozenset[str]) -> None:
        self.book = book
        self.symbol = book.symbol
        self.depth = depth
        self.entry_types = entry_types
        self.rpt_seq = book.rpt_seq
        self._tops: dict[Side, list[LevelView]] = {s: book.depth(s, depth) for s in Side} if depth else {}
        # Depth-limited: this view's own copy of the aggregated book, kept from the events it is given (not read
        # from the engine, which may already be ahead when replies are held for a group commit).
        self._levels: dict[Side, SortedDict] = (
            {s: SortedDict({self._key(s, lv.price): lv for lv in book.depth(s)}) for s in Side} if depth else {}
        )
        # Full depth: prices present per side, to tell a NEW level from a CHANGE.
        self._prices: dict[Side, set[int]] = {s: {lv.price for lv in book.depth(s)} for s in Side} if not depth else {}

    @staticmethod
    def _key(side: Side, price: int) -> int:
        return -price if side is Side.BUY else price

    @property
    def key(self) -> tuple[str, int, frozenset[str]]:
        return self.symbol, self.depth, self.entry_types

    def updates(self, events: list[MarketDataEvent]) -> list[Entry | Status]:
        """The entries this view publishes for one engine command's market-data events (of this symbol), and its
        phase changes (every view publishes those, in the order they came)."""
        wanted = self.entry_types
        out: list[Entry | Status] = []
        sides_touched: set[Side] = set()
        for ev in events:
            if isinstance(ev, BookUpdate):
                if self.depth:
                    sides_touched.add(ev.side)
                    levels = self._levels[ev.side]
                    key = self._key(ev.side, ev.price)
                    if ev.qty:
                        levels[key] = LevelView(ev.price, ev.qty, ev.count)
                    else:
                        levels.pop(key, None)
                    continue
                et = _SIDE_TYPE[ev.side]
                if et in wanted:
                    out.append(self._level_entry(ev, et))
            elif isinstance(ev, TradePrint):
                if TRADE in wanted:
                    out.append(Entry(NEW, TRADE, ev.price, ev.qty, None, None, ev.trade_id, ev.aggressor))
            elif isinstance(ev, StatUpdate):
                et = ev.stat.value
                if et in wanted:
                    if et == VOLUME:
                        out.append(Entry(CHANGE, et, None, ev.value))
                    elif ev.value is None:  # reset at the end of the day: no value until the next trade
                        out.append(Entry(DELETE, et))
                    else:
                        out.append(Entry(CHANGE, et, ev.value))
            elif isinstance(ev, PhaseChange):
                self._flush_tops(sides_touched, out)  # the book as it was before the change, then the change
                out.append(Status(ev))
            elif isinstance(ev, Indicative) and OPEN in wanted:
                if ev.price is None:
                    out.append(Entry(DELETE, OPEN, flag=INDICATIVE))
                else:
                    out.append(Entry(CHANGE, OPEN, ev.price, ev.qty, flag=INDICATIVE))
            elif isinstance(ev, Imbalance) and IMBALANCE in wanted:
                out.append(_imbalance_entry(ev.qty, CHANGE))
        self._flush_tops(sides_touched, out)
        for entry in out:
            self.rpt_seq += 1
            entry.rpt_seq = self.rpt_seq
        return out

    def _flush_tops(self, sides_touched: set[Side], out: list[Entry | Status]) -> None:
        for side in (Side.BUY, Side.SELL):
            if side in sides_touched and _SIDE_TYPE[side] in self.entry_types:
                out.extend(self._top_diff(side))
        sides_touched.clear()

    def _level_entry(self, ev: BookUpdate, et: str) -> Entry:
        prices = self._prices[ev.side]
        if ev.qty == 0:
            prices.discard(ev.price)
            return Entry(DELETE, et, ev.price)
        if ev.price in prices:
            return Entry(CHANGE, et, ev.price, ev.qty, ev.count)
        prices.add(ev.price)
        return Entry(NEW, et, ev.price, ev.qty, ev.count)

    def _top_diff(self, side: Side) -> list[Entry]:
        et = _SIDE_TYPE[side]
        before = {lv.price: lv for lv in self._tops[side]}
        after_list = list(self._levels[side].values()[: self.depth])
        self._tops[side] = after_list
        after = {lv.price: lv for lv in after_list}
        out = [Entry(DELETE, et, price) for price in before if price not in after]
        for position, lv in enumerate(after_list, start=1):
            old = before.get(lv.price)
            if old is None:
                out.append(Entry(NEW, et, lv.price, lv.qty, lv.count, position))
            elif old != lv:
                out.append(Entry(CHANGE, et, lv.price, lv.qty, lv.count, position))
        return out

    def snapshot(self) -> list[Entry]:
        """The view's current state as W entries (levels best first, then last trade and statistics)."""
        book, wanted = self.book, self.entry_types
        out: list[Entry] = []
        for side in (Side.BUY, Side.SELL):
            et = _SIDE_TYPE[side]
            if et in wanted:
                levels = book.depth(side, self.depth)
                out.extend(Entry(NEW, et, lv.price, lv.qty, lv.count, i) for i, lv in enumerate(levels, start=1))
        if TRADE in wanted and book.last_px is not None:
            out.append(Entry(NEW, TRADE, book.last_px))
        stats = ((OPEN, book.open), (HIGH, book.high), (LOW, book.low))
        out.extend(Entry(NEW, et, px) for et, px in stats if et in wanted and px is not None)
        if VOLUME in wanted:
            out.append(Entry(NEW, VOLUME, None, book.volume))
        if book.indicative is not None and book.phase in _AUCTION_PHASES:
            price, volume, imbalance = book.indicative
            if OPEN in wanted:
                out.append(Entry(NEW, OPEN, price, volume, flag=INDICATIVE))
            if IMBALANCE in wanted and imbalance:
                out.append(_imbalance_entry(imbalance, NEW))
        for entry in out:
            entry.rpt_seq = self.rpt_seq
        return out


def _imbalance_entry(qty: int, action: str) -> Entry:
    """The imbalance as an MD entry: its size and the side with more (none: Delete)."""
    if not qty:
        return Entry(DELETE, IMBALANCE)
    return Entry(action, IMBALANCE, None, abs(qty), condition=MORE_BUYERS if qty > 0 else MORE_SELLERS)
