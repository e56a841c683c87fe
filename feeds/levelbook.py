"""A book of price levels kept from market-data events alone: what a market-data publisher that runs apart from the
engine reads for snapshots (the multi-process venue, :mod:`roles.marketdata`).

It holds what :class:`~feeds.views.BookView` reads of an engine's :class:`~engine.book.OrderBook` (aggregated levels,
last price, session statistics, RptSeq) and nothing about orders. Each :class:`~engine.events.BookUpdate` carries a
level's new total, each :class:`~engine.events.StatUpdate` a statistic's new value, and every event its RptSeq, so
applying an engine's events in order gives exactly the engine's levels, statistics and RptSeq.
"""

from __future__ import annotations

from sortedcontainers import SortedDict

from engine import BookUpdate, Side, Stat, StatUpdate, TradePrint
from engine.book import LevelView
from engine.events import MarketDataEvent

_BUY = Side.BUY


class LevelBook:
    """One instrument's aggregated book, statistics and RptSeq, from its market-data events."""

    __slots__ = ("asks", "bids", "high", "last_px", "low", "open", "rpt_seq", "symbol", "volume")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.bids: SortedDict = SortedDict()  # -price -> LevelView
        self.asks: SortedDict = SortedDict()  # price -> LevelView
        self.rpt_seq = 0
        self.last_px: int | None = None
        self.open: int | None = None
        self.high: int | None = None
        self.low: int | None = None
        self.volume = 0

    def depth(self, side: Side, levels: int = 0) -> list[LevelView]:
        """Aggregated levels on ``side``, best first; ``levels=0`` means the full book."""
        book = self.bids if side is _BUY else self.asks
        return list(book.values() if levels <= 0 else book.values()[:levels])

    def apply(self, ev: MarketDataEvent) -> None:
        if type(ev) is BookUpdate:
            book, key = (self.bids, -ev.price) if ev.side is _BUY else (self.asks, ev.price)
            if ev.qty:
                book[key] = LevelView(ev.price, ev.qty, ev.count)
            else:
                book.pop(key, None)
        elif type(ev) is TradePrint:
            self.last_px = ev.price
        elif type(ev) is StatUpdate:
            stat = ev.stat
            if stat is Stat.OPEN:
                self.open = ev.value
            elif stat is Stat.HIGH:
                self.high = ev.value
            elif stat is Stat.LOW:
                self.low = ev.value
            else:
                self.volume = ev.value
        self.rpt_seq = ev.rpt_seq
