"""A book of price levels kept from market-data events alone: what a market-data publisher that runs apart from the
engine reads for snapshots (the multi-process venue, :mod:`roles.marketdata`).

It holds what :class:`~feeds.views.BookView` reads of an engine's :class:`~engine.book.OrderBook` (aggregated levels,
last price, session statistics, trading phase, indicative auction price and imbalance, RptSeq) and nothing about
orders. Each :class:`~engine.events.BookUpdate` carries a level's new total, each :class:`~engine.events.StatUpdate`
a statistic's new value, each :class:`~engine.events.PhaseChange`, :class:`~engine.events.Indicative` and
:class:`~engine.events.Imbalance` the new phase or auction figures, and every event its RptSeq, so applying an
engine's events in order gives exactly the engine's levels, statistics, phase and RptSeq.
"""

from __future__ import annotations

from sortedcontainers import SortedDict

from engine import BookUpdate, Imbalance, Indicative, Phase, PhaseChange, Side, Stat, StatUpdate, TradePrint
from engine.book import LevelView
from engine.events import MarketDataEvent

_BUY = Side.BUY


class LevelBook:
    """One instrument's aggregated book, statistics and RptSeq, from its market-data events."""

    __slots__ = (
        "asks", "bids", "halt_until", "high", "indicative", "last_px", "low", "open", "phase", "rpt_seq", "symbol",
        "volume",
    )  # fmt: skip

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
        self.phase = Phase.CONTINUOUS  # as the engine's book starts
        self.halt_until: int | None = None
        self.indicative: tuple[int, int, int] | None = None  # (price, volume, imbalance), as the engine's book

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
                self.volume = ev.value or 0  # (the engine resets the volume to 0, never to None)
        elif type(ev) is PhaseChange:
            self.phase, self.halt_until = ev.phase, ev.halt_until
        elif type(ev) is Indicative:  # an Imbalance follows if the imbalance changed too
            imbalance = self.indicative[2] if self.indicative is not None else 0
            self.indicative = None if ev.price is None else (ev.price, ev.qty, imbalance)
        elif type(ev) is Imbalance and self.indicative is not None:
            self.indicative = (self.indicative[0], self.indicative[1], ev.qty)
        self.rpt_seq = ev.rpt_seq
