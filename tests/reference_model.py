"""A deliberately naive reference matching engine, for differential testing of :mod:`engine.engine`.

Written from the venue's rules (docs/rules-of-engagement.md, sections 3 and 5) rather than from the fast engine, and
sharing nothing with it but the command and event types and the enumerations: its own order record
(:class:`ModelOrder`), its own instrument limits (:class:`Listing`), and one plain list of resting orders that is
filtered and sorted by (price, time) whenever the book is read. There are no levels, links or sorted maps to get
wrong. It is slow on purpose.

It takes the same commands and produces the same events, field for field, including ExecIDs (``seq``), order ids,
trade ids and RptSeq. The ``order`` of an :class:`Execution` or :class:`CancelReject` is a :class:`ModelOrder`
here, so the tests compare what a client sees of each event (``tests.engine_helpers.client_view``), not objects.

Where the event order is a design choice, the model follows the engine:

* a new order is acknowledged (``NEW``) before anything else happens to it;
* each trade reports the taker's fill, then the maker's, then the trade print, then the statistics it changes
  (open, high, low, volume);
* one :class:`BookUpdate` per price level the aggressor touched, after that level is done;
* a cancel reports the order first, then its level; a re-priced replace reports the old level, then
  ``REPLACED``, then whatever matching and resting follow; a priority-keeping replace reports ``REPLACED``,
  then the level;
* a mass cancel reports each order and its level, then the :class:`MassCancelReport`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from engine.commands import (
    CancelOrder,
    Command,
    ExpireDayOrders,
    MassCancel,
    NewOrder,
    QueryOrder,
    ReplaceOrder,
)
from engine.events import (
    BookUpdate,
    CancelReject,
    Event,
    Execution,
    MassCancelReport,
    Stat,
    StatUpdate,
    TradePrint,
)
from engine.types import (
    ExecType,
    OrdStatus,
    OrdType,
    Reason,
    SelfTradePrevention,
    Side,
    TimeInForce,
)

BUY, SELL = Side.BUY, Side.SELL
CANCELED, EXPIRED, REJECTED = ExecType.CANCELED, ExecType.EXPIRED, ExecType.REJECTED
END_STATUS = {CANCELED: OrdStatus.CANCELED, EXPIRED: OrdStatus.EXPIRED, REJECTED: OrdStatus.REJECTED}
RESTING_TIFS = (TimeInForce.DAY, TimeInForce.GTC)


@dataclass(frozen=True)
class Listing:
    """An instrument's limits, in integer lots and ticks (inclusive)."""

    symbol: str
    min_lots: int
    max_lots: int
    min_ticks: int
    max_ticks: int


@dataclass(eq=False, slots=True)  # orders are compared by identity: two can look alike
class ModelOrder:
    """One order as the model keeps it. ``time`` is when it last joined the book: the time in price-time."""

    order_id: int
    owner: str
    clordid: str
    account: str
    symbol: str
    side: Side
    ord_type: OrdType
    tif: TimeInForce
    price: int | None
    qty: int
    post_only: bool
    leaves: int
    cum: int = 0
    notional: int = 0
    status: OrdStatus = OrdStatus.NEW
    time: int = 0

    @property
    def is_open(self) -> bool:
        return self.status in (OrdStatus.NEW, OrdStatus.PARTIALLY_FILLED)

    @property
    def limit(self) -> int:
        """The price of a resting order (only limit orders rest)."""
        assert self.price is not None
        return self.price


def crosses(side: Side, limit: int | None, price: int) -> bool:
    """Whether an order on ``side`` with ``limit`` (None: a market order) may trade at a resting ``price``."""
    return limit is None or (price <= limit if side is BUY else price >= limit)


class ReferenceEngine:
    """Same interface as :class:`engine.MatchingEngine`: ``process(command) -> list[Event]``."""

    def __init__(
        self,
        listings: Iterable[Listing],
        self_trade_prevention: SelfTradePrevention = SelfTradePrevention.CANCEL_RESTING,
    ) -> None:
        self.listings = {listing.symbol: listing for listing in listings}
        self.stp = self_trade_prevention
        self.resting: list[ModelOrder] = []  # the book: every resting order of every symbol, in no order
        self.orders: dict[int, ModelOrder] = {}  # every accepted order, by id
        self.names: dict[tuple[str, str], ModelOrder] = {}  # (owner, ClOrdID) -> order, every ClOrdID it had
        self.rpt_seq = dict.fromkeys(self.listings, 0)
        self.stats: dict[str, dict[Stat, int]] = {symbol: {} for symbol in self.listings}
        self.last_seq = 0
        self.last_order_id = 0
        self.last_trade_id = 0
        self.clock = 0  # counts arrivals in the book

    # ------------------------------------------------------------------ reading the book

    def queue(self, symbol: str, side: Side) -> list[ModelOrder]:
        """Resting orders on one side in priority order: best price first, then earliest first."""
        orders = [o for o in self.resting if o.symbol == symbol and o.side is side]
        better = -1 if side is BUY else 1  # bids: highest first; offers: lowest first
        return sorted(orders, key=lambda o: (better * o.limit, o.time))

    def depth(self, symbol: str, side: Side) -> list[tuple[int, int, int]]:
        """Aggregated levels ``(price, qty, count)``, best first."""
        prices = list(dict.fromkeys(o.limit for o in self.queue(symbol, side)))
        return [(price, *self.level(symbol, side, price)) for price in prices]

    def level(self, symbol: str, side: Side, price: int) -> tuple[int, int]:
        """Total quantity and number of orders resting at one price."""
        at = [o for o in self.resting if o.symbol == symbol and o.side is side and o.price == price]
        return sum(o.leaves for o in at), len(at)

    def book_order(self, symbol: str) -> list[ModelOrder]:
        """Every resting order of ``symbol``: bids best first, then offers best first."""
        return self.queue(symbol, BUY) + self.queue(symbol, SELL)

    # ------------------------------------------------------------------ events

    def next_seq(self) -> int:
        self.last_seq += 1
        return self.last_seq

    def report(
        self, exec_type: ExecType, order: ModelOrder, ts: int, orig: str | None = None, reason: Reason | None = None
    ) -> Execution:
        """An execution report of the order's state now."""
        holder: Any = order  # the event's ``order`` slot holds the model's own record; see the module docstring
        return Execution(
            seq=self.next_seq(), exec_type=exec_type, order=holder, clordid=order.clordid, orig_clordid=orig,
            status=order.status, price=order.price, qty=order.qty, leaves=order.leaves, cum=order.cum,
            notional=order.notional, ts=ts, reason=reason,
        )  # fmt: skip

    def cancel_reject(
        self, cmd: CancelOrder | ReplaceOrder, order: ModelOrder | None, reason: Reason, out: list[Event]
    ) -> None:
        """Refuse a cancel or a replace; ``order`` is None when the request names no order of the owner."""
        holder: Any = order
        is_replace = isinstance(cmd, ReplaceOrder)
        out.append(
            CancelReject(self.next_seq(), cmd.owner, cmd.clordid, cmd.orig_clordid, holder, is_replace, reason, cmd.ts)
        )

    def publish_level(self, symbol: str, side: Side, price: int, out: list[Event]) -> None:
        qty, count = self.level(symbol, side, price)
        self.rpt_seq[symbol] += 1
        out.append(BookUpdate(symbol, side, price, qty, count, self.rpt_seq[symbol]))

    def publish_stat(self, symbol: str, stat: Stat, value: int, out: list[Event]) -> None:
        self.stats[symbol][stat] = value
        self.rpt_seq[symbol] += 1
        out.append(StatUpdate(symbol, stat, value, self.rpt_seq[symbol]))

    # ------------------------------------------------------------------ order life

    def rest(self, order: ModelOrder, out: list[Event]) -> None:
        """Put ``order`` at the back of the queue at its price."""
        self.clock += 1
        order.time = self.clock
        self.resting.append(order)
        self.publish_level(order.symbol, order.side, order.limit, out)

    def end(self, order: ModelOrder, exec_type: ExecType, reason: Reason, ts: int, out: list[Event]) -> None:
        """Close ``order`` (nothing left to trade) and report it: cancelled, expired or rejected."""
        order.leaves = 0
        order.status = END_STATUS[exec_type]
        out.append(self.report(exec_type, order, ts, None, reason))

    def take_out(self, order: ModelOrder, exec_type: ExecType, reason: Reason, ts: int, out: list[Event]) -> None:
        """End a resting order (cancel or expire) on the venue's initiative: report it, then its level."""
        self.resting.remove(order)
        self.end(order, exec_type, reason, ts, out)
        self.publish_level(order.symbol, order.side, order.limit, out)

    # ------------------------------------------------------------------ matching

    def fok_fillable(self, order: ModelOrder) -> bool:
        """Whether matching would fill ``order`` completely, given self-trade prevention."""
        need = order.leaves
        for maker in self.queue(order.symbol, order.side.opposite):
            if not crosses(order.side, order.price, maker.limit):
                return False
            if maker.account == order.account:
                if self.stp is SelfTradePrevention.CANCEL_RESTING:
                    continue  # would be cancelled, not traded with
                return False  # matching would stop here
            need -= maker.leaves
            if need <= 0:
                return True
        return False

    def trade(self, taker: ModelOrder, maker: ModelOrder, ts: int, out: list[Event]) -> None:
        """One fill at the maker's price: both reports, the print, then the statistics it changes."""
        price, qty = maker.limit, min(taker.leaves, maker.leaves)
        self.last_trade_id += 1
        for order, aggressor in ((taker, True), (maker, False)):
            order.leaves -= qty
            order.cum += qty
            order.notional += qty * price
            order.status = OrdStatus.PARTIALLY_FILLED if order.leaves else OrdStatus.FILLED
            ex = self.report(ExecType.TRADE, order, ts)
            ex.last_qty, ex.last_px, ex.trade_id, ex.aggressor = qty, price, self.last_trade_id, aggressor
            out.append(ex)
        if not maker.leaves:
            self.resting.remove(maker)
        symbol = taker.symbol
        self.rpt_seq[symbol] += 1
        out.append(TradePrint(symbol, self.last_trade_id, price, qty, taker.side, self.rpt_seq[symbol], ts))
        stats = self.stats[symbol]
        if Stat.OPEN not in stats:
            self.publish_stat(symbol, Stat.OPEN, price, out)
        if Stat.HIGH not in stats or price > stats[Stat.HIGH]:
            self.publish_stat(symbol, Stat.HIGH, price, out)
        if Stat.LOW not in stats or price < stats[Stat.LOW]:
            self.publish_stat(symbol, Stat.LOW, price, out)
        self.publish_stat(symbol, Stat.VOLUME, stats.get(Stat.VOLUME, 0) + qty, out)

    def match(self, taker: ModelOrder, ts: int, out: list[Event]) -> bool:
        """Trade ``taker`` level by level at resting prices; False if self-trade prevention cancelled it."""
        while taker.leaves:
            queue = self.queue(taker.symbol, taker.side.opposite)
            if not queue or not crosses(taker.side, taker.price, queue[0].limit):
                return True
            price = queue[0].limit
            touched = stopped = False
            for maker in [o for o in queue if o.price == price]:
                if not taker.leaves:
                    break
                if maker.account != taker.account:
                    self.trade(taker, maker, ts, out)
                    touched = True
                    continue
                if self.stp is not SelfTradePrevention.CANCEL_INCOMING:
                    self.resting.remove(maker)
                    self.end(maker, CANCELED, Reason.SELF_TRADE, ts, out)
                    touched = True
                if self.stp is not SelfTradePrevention.CANCEL_RESTING:
                    stopped = True
                    break
            if touched:
                self.publish_level(taker.symbol, taker.side.opposite, price, out)
            if stopped:
                self.end(taker, CANCELED, Reason.SELF_TRADE, ts, out)
                return False
        return True

    def match_then_rest(self, order: ModelOrder, ts: int, out: list[Event]) -> None:
        """Trade what can trade; then the rest rests (DAY, GTC limit) or expires (market, IOC, FOK)."""
        if not self.match(order, ts, out) or not order.leaves:
            return
        if order.ord_type is OrdType.MARKET:
            self.end(order, EXPIRED, Reason.MARKET_REMAINDER, ts, out)
        elif order.tif in RESTING_TIFS:
            self.rest(order, out)
        else:
            self.end(order, EXPIRED, Reason.IOC_REMAINDER, ts, out)

    def would_take(self, symbol: str, side: Side, price: int | None) -> bool:
        """Whether an order at ``price`` (None: market) would trade with the best opposite order."""
        queue = self.queue(symbol, side.opposite)
        return bool(queue) and crosses(side, price, queue[0].limit)

    # ------------------------------------------------------------------ commands

    def process(self, command: Command) -> list[Event]:
        """Apply one command and return its events."""
        out: list[Event] = []
        if isinstance(command, NewOrder):
            self.new_order(command, out)
        elif isinstance(command, CancelOrder):
            self.cancel(command, out)
        elif isinstance(command, ReplaceOrder):
            self.replace(command, out)
        elif isinstance(command, MassCancel):
            self.mass_cancel(command, out)
        elif isinstance(command, QueryOrder):
            self.query(command, out)
        else:
            self.expire_day(command, out)
        return out

    @staticmethod
    def check_price_qty(listing: Listing, ord_type: OrdType, price: int | None, qty: int) -> Reason | None:
        if qty <= 0:
            return Reason.INVALID_QUANTITY
        if qty < listing.min_lots:
            return Reason.QUANTITY_BELOW_MIN
        if qty > listing.max_lots:
            return Reason.QUANTITY_ABOVE_MAX
        if ord_type is OrdType.MARKET:
            return None if price is None else Reason.PRICE_ON_MARKET
        if price is None:
            return Reason.MISSING_PRICE
        if price <= 0:
            return Reason.INVALID_PRICE
        if not listing.min_ticks <= price <= listing.max_ticks:
            return Reason.PRICE_OUTSIDE_BAND
        return None

    def new_order(self, cmd: NewOrder, out: list[Event]) -> None:
        listing = self.listings.get(cmd.symbol)
        reason: Reason | None
        if cmd.edge_reject is not None:
            reason = cmd.edge_reject  # the FIX edge already found it invalid
        elif listing is None:
            reason = Reason.UNKNOWN_SYMBOL
        else:
            reason = self.check_price_qty(listing, cmd.ord_type, cmd.price, cmd.qty)
        if reason is None:
            if (cmd.owner, cmd.clordid) in self.names:
                reason = Reason.DUPLICATE_CLORDID
            elif cmd.post_only and (cmd.ord_type is not OrdType.LIMIT or cmd.tif not in RESTING_TIFS):
                reason = Reason.POST_ONLY_NOT_LIMIT
            elif cmd.post_only and self.would_take(cmd.symbol, cmd.side, cmd.price):
                reason = Reason.POST_ONLY_WOULD_TAKE
        order = ModelOrder(
            0, cmd.owner, cmd.clordid, cmd.account, cmd.symbol, cmd.side, cmd.ord_type, cmd.tif, cmd.price, cmd.qty,
            cmd.post_only, leaves=cmd.qty,
        )  # fmt: skip
        if reason is not None:
            self.end(order, REJECTED, reason, cmd.ts, out)  # never existed: no order id
            return
        self.last_order_id += 1
        order.order_id = self.last_order_id
        self.orders[order.order_id] = order
        self.names[cmd.owner, cmd.clordid] = order
        out.append(self.report(ExecType.NEW, order, cmd.ts))
        if cmd.tif is TimeInForce.FOK and not self.fok_fillable(order):
            self.end(order, EXPIRED, Reason.FOK_NOT_FILLED, cmd.ts, out)
            return
        self.match_then_rest(order, cmd.ts, out)

    def find(self, owner: str, clordid: str | None, order_id: int | None) -> tuple[ModelOrder | None, Reason]:
        """The order a cancel, replace or query names, or why there is none for this owner."""
        if order_id is not None:
            order = self.orders.get(order_id)
            if order is not None and order.owner != owner:
                return None, Reason.NOT_OWNER
            return order, Reason.UNKNOWN_ORDER
        if clordid is None:
            return None, Reason.UNKNOWN_ORDER
        return self.names.get((owner, clordid)), Reason.UNKNOWN_ORDER

    def rename(self, order: ModelOrder, owner: str, clordid: str) -> str:
        """Give ``order`` its new ClOrdID (the old ones still name it); returns the previous one."""
        previous = order.clordid
        self.names[owner, clordid] = order
        order.clordid = clordid
        return previous

    def cancel(self, cmd: CancelOrder, out: list[Event]) -> None:
        order, reason = self.find(cmd.owner, cmd.orig_clordid, cmd.order_id)
        if order is not None:
            if not order.is_open:
                reason = Reason.ORDER_DONE
            elif (cmd.owner, cmd.clordid) in self.names:
                reason = Reason.DUPLICATE_CLORDID_CXL
            else:
                orig = self.rename(order, cmd.owner, cmd.clordid)
                self.resting.remove(order)
                order.leaves = 0
                order.status = OrdStatus.CANCELED
                out.append(self.report(CANCELED, order, cmd.ts, orig, Reason.CLIENT_REQUEST))
                self.publish_level(order.symbol, order.side, order.limit, out)
                return
        self.cancel_reject(cmd, order, reason, out)

    def replace(self, cmd: ReplaceOrder, out: list[Event]) -> None:
        order, reason = self.find(cmd.owner, cmd.orig_clordid, cmd.order_id)
        if order is None:
            self.cancel_reject(cmd, None, reason, out)
            return
        refusal: Reason | None
        if not order.is_open:
            refusal = Reason.ORDER_DONE
        elif (cmd.owner, cmd.clordid) in self.names:
            refusal = Reason.DUPLICATE_CLORDID_CXL
        elif cmd.symbol != order.symbol or cmd.side is not order.side:
            refusal = Reason.REPLACE_CHANGES_IDENTITY
        elif cmd.qty <= order.cum:
            refusal = Reason.REPLACE_BELOW_FILLED
        else:
            refusal = self.check_price_qty(self.listings[order.symbol], order.ord_type, cmd.price, cmd.qty)
            moves = cmd.price != order.price  # only a price move can make a post-only order take
            if refusal is None and order.post_only and moves and self.would_take(order.symbol, order.side, cmd.price):
                refusal = Reason.POST_ONLY_WOULD_TAKE
        if refusal is not None:
            self.cancel_reject(cmd, order, refusal, out)
            return
        orig = self.rename(order, cmd.owner, cmd.clordid)
        if cmd.price == order.price and cmd.qty <= order.qty:
            # Same price, no more quantity: the order keeps its place in the queue.
            order.qty, order.leaves = cmd.qty, cmd.qty - order.cum
            out.append(self.report(ExecType.REPLACED, order, cmd.ts, orig))
            self.publish_level(order.symbol, order.side, order.limit, out)
            return
        # Otherwise it leaves the book and comes back as a new arrival, trading first if it now crosses.
        self.resting.remove(order)
        self.publish_level(order.symbol, order.side, order.limit, out)
        order.price, order.qty, order.leaves = cmd.price, cmd.qty, cmd.qty - order.cum
        out.append(self.report(ExecType.REPLACED, order, cmd.ts, orig))
        self.match_then_rest(order, cmd.ts, out)

    def mass_cancel(self, cmd: MassCancel, out: list[Event]) -> None:
        if cmd.symbol in self.listings:
            symbols = [cmd.symbol]
        elif cmd.symbol:
            symbols = []  # not listed: nothing to cancel
        else:
            symbols = list(self.listings)
        cancelled = 0
        for symbol in symbols:
            for order in self.book_order(symbol):
                if order.owner != cmd.owner or (cmd.side is not None and order.side is not cmd.side):
                    continue
                if cmd.day_only and order.tif is not TimeInForce.DAY:
                    continue
                self.take_out(order, CANCELED, cmd.reason, cmd.ts, out)
                cancelled += 1
        seq = self.next_seq()
        out.append(MassCancelReport(seq, cmd.owner, cmd.clordid, cmd.symbol, cmd.side, cancelled, cmd.reason, cmd.ts))

    def query(self, cmd: QueryOrder, out: list[Event]) -> None:
        order, reason = self.find(cmd.owner, cmd.clordid, cmd.order_id)
        if order is None:
            unknown = ModelOrder(
                0, cmd.owner, cmd.clordid or "", "", "", BUY, OrdType.LIMIT, TimeInForce.DAY, None, 0, False, leaves=0,
                status=OrdStatus.REJECTED,
            )  # fmt: skip
            out.append(self.report(ExecType.ORDER_STATUS, unknown, cmd.ts, None, reason))
            return
        status = self.report(ExecType.ORDER_STATUS, order, cmd.ts)
        if cmd.clordid is not None:
            status.clordid = cmd.clordid  # answered in the terms of the question
        out.append(status)

    def expire_day(self, cmd: ExpireDayOrders, out: list[Event]) -> None:
        for symbol in self.listings:
            for order in self.book_order(symbol):
                if order.tif is TimeInForce.DAY:
                    self.take_out(order, EXPIRED, Reason.END_OF_DAY, cmd.ts, out)
