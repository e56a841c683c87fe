"""One instrument's order book: two sides of price levels kept sorted by ``sortedcontainers.SortedDict``.

Bids are keyed by negated price and asks by price, so on both sides the best level is the first key: best bid/ask
is ``peekitem(0)``, O(1). Adding a new price level or removing an emptied one is O(log n); everything inside a level
is O(1) (see :class:`~engine.order.Level`).
"""

from __future__ import annotations

from typing import NamedTuple

from sortedcontainers import SortedDict

from engine.instruments import Instrument
from engine.order import Level, Order
from engine.protection import Guard
from engine.types import Phase, Side

_BUY = Side.BUY


def first_key(levels: SortedDict) -> int:
    """The best key of a non-empty side, O(1).

    ``SortedDict.peekitem(0)`` costs ~1 us through three Python calls; the first element of the first sublist of
    sortedcontainers' list-of-lists layout costs ~0.13 us and is read on every aggressive order. The layout is
    sortedcontainers' documented design ("SortedList is a list of sorted sublists"), stable across 2.x (pinned).
    """
    return levels._list._lists[0][0]  # type: ignore[no-any-return]


class LevelView(NamedTuple):
    """An aggregated price level: price in ticks, total quantity in lots, number of orders."""

    price: int
    qty: int
    count: int  # type: ignore[assignment]  # shadows tuple.count on purpose: it is the FIX NumberOfOrders


class BBO(NamedTuple):
    """Best bid and offer; a side with no orders is ``None``."""

    bid: LevelView | None
    ask: LevelView | None


class OrderBook:
    """Resting orders of one instrument, plus the statistics and market-data sequence the venue publishes, and its
    trading phase.

    Outside continuous trading, market orders wait for the auction in ``market_buys`` / ``market_sells`` (time
    priority; they are not price levels and market data does not show them), each with its protection price in
    ``caps`` (order id -> ticks)."""

    __slots__ = (
        "asks", "bids", "caps", "guard", "halt_until", "high", "indicative", "instrument", "last_px", "low",
        "market_buys", "market_sells", "open", "phase", "rpt_seq", "scheduled", "symbol", "volume",
    )  # fmt: skip

    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self.symbol = instrument.symbol
        self.bids: SortedDict = SortedDict()  # -price -> Level
        self.asks: SortedDict = SortedDict()  # price -> Level
        self.rpt_seq = 0  # last market-data update number (RptSeq) for this instrument
        self.last_px: int | None = None
        self.open: int | None = None
        self.high: int | None = None
        self.low: int | None = None
        self.volume = 0
        self.phase = Phase.CONTINUOUS  # a venue without a schedule trades continuously, always
        self.scheduled = Phase.CONTINUOUS  # the phase the trading schedule last set (operators may differ from it)
        self.halt_until: int | None = None  # ns: when a circuit-breaker halt ends (None: no timed halt)
        self.guard: Guard | None = None  # price protection (dynamic band, circuit breaker); None: none configured
        self.market_buys = Level(0)
        self.market_sells = Level(0)
        self.caps: dict[int, int] = {}
        self.indicative: tuple[int, int, int] | None = None  # last published (price, volume, imbalance)

    def side(self, side: Side) -> SortedDict:
        return self.bids if side is _BUY else self.asks

    @staticmethod
    def key(side: Side, price: int) -> int:
        """The sort key of ``price`` on ``side``: best first on both sides."""
        return -price if side is _BUY else price

    def best(self, side: Side) -> Level | None:
        """Best level on ``side``. O(1)."""
        levels = self.bids if side is _BUY else self.asks
        return levels[first_key(levels)] if levels else None

    def bbo(self) -> BBO:
        """Best bid and offer. O(1)."""
        bid, ask = self.best(Side.BUY), self.best(Side.SELL)
        return BBO(
            LevelView(bid.price, bid.qty, bid.count) if bid else None,
            LevelView(ask.price, ask.qty, ask.count) if ask else None,
        )

    def depth(self, side: Side, levels: int = 0) -> list[LevelView]:
        """Aggregated levels on ``side``, best first; ``levels=0`` means the full book. O(levels)."""
        book = self.side(side)
        values = book.values() if levels <= 0 else book.values()[:levels]
        return [LevelView(lv.price, lv.qty, lv.count) for lv in values]

    def orders_at(self, side: Side, price: int) -> list[Order]:
        """Resting orders at ``price`` on ``side``, in time priority. O(orders at the level)."""
        level = self.side(side).get(self.key(side, price))
        return level.orders() if level else []

    def resting_orders(self) -> list[Order]:
        """Every resting order: market buys waiting for an auction, bids best first, then market sells and asks
        best first, each queue in time priority."""
        out = self.market_buys.orders() if self.market_buys.count else []
        out += [o for level in self.bids.values() for o in level.orders()]
        if self.market_sells.count:
            out += self.market_sells.orders()
        out += [o for level in self.asks.values() for o in level.orders()]
        return out
