"""A deliberately naive reference matching engine, for differential testing of :mod:`engine.engine`.

Written from the venue's rules rather than from the fast engine: each instrument's resting orders are one
plain list, re-sorted whenever the book is read, so there are no levels, links or sorted maps to get wrong.
It takes the same commands and produces the same events, field for field, including ExecIDs (``seq``), order
ids, trade ids and RptSeq. It is slow on purpose.

Where the event order is a design choice, the reference follows the engine:

* a new order is acknowledged (``NEW``) before anything else happens to it;
* each trade reports the taker's fill, then the maker's, then the trade print, then the statistics it changes
  (open, high, low, volume);
* one :class:`BookUpdate` per price level the aggressor touched, after that level is done;
* a cancel reports the order first, then its level; a re-priced replace reports the old level, then
  ``REPLACED``, then whatever matching and resting follow; a priority-keeping replace reports ``REPLACED``,
  then the level.
"""

from __future__ import annotations

from collections.abc import Iterable

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
from engine.instruments import Instrument
from engine.order import Order
from engine.types import (
    ExecType,
    OrdStatus,
    OrdType,
    Reason,
    SelfTradePrevention,
    Side,
    TimeInForce,
)

_OPEN_STATES = (OrdStatus.NEW, OrdStatus.PARTIALLY_FILLED)
_RESTING_TIFS = (TimeInForce.DAY, TimeInForce.GTC)
_END_STATUS = {
    ExecType.CANCELED: OrdStatus.CANCELED,
    ExecType.EXPIRED: OrdStatus.EXPIRED,
    ExecType.REJECTED: OrdStatus.REJECTED,
}
_CANCELED, _EXPIRED = ExecType.CANCELED, ExecType.EXPIRED


class ReferenceEngine:
    """Same interface as :class:`engine.MatchingEngine`: ``process(command) -> list[Event]``."""

    def __init__(
        self,
        instruments: Iterable[Instrument],
        self_trade_prevention: SelfTradePrevention = SelfTradePrevention.CANCEL_RESTING,
    ) -> None:
        self.instruments = {i.symbol: i for i in instruments}
        self.stp = self_trade_prevention
        self.resting: dict[str, list[Order]] = {s: [] for s in self.instruments}
        self.arrival: dict[int, int] = {}  # order id -> time-priority stamp, smaller is earlier
        self.clock = 0
        self.orders: dict[int, Order] = {}
        self.names: dict[tuple[str, str], Order] = {}  # (owner, ClOrdID) -> order, every ClOrdID ever used
        self.rpt_seq = {s: 0 for s in self.instruments}
        self.stats: dict[str, dict[Stat, int]] = {s: {} for s in self.instruments}
        self.last_seq = 0
        self.last_order_id = 0
        self.last_trade_id = 0

    # ------------------------------------------------------------------ reading the book

    def queue(self, symbol: str, side: Side) -> list[Order]:
        """Resting orders on one side in priority order: best price first, then earliest first."""
        orders = [o for o in self.resting[symbol] if o.side is side]
        if side is Side.BUY:
            return sorted(orders, key=lambda o: (-(o.price or 0), self.arrival[o.order_id]))
        return sorted(orders, key=lambda o: (o.price or 0, self.arrival[o.order_id]))

    def depth(self, symbol: str, side: Side) -> list[tuple[int, int, int]]:
        """Aggregated levels ``(price, qty, count)``, best first."""
        out: list[tuple[int, int, int]] = []
        for o in self.queue(symbol, side):
            assert o.price is not None
            if out and out[-1][0] == o.price:
                price, qty, count = out[-1]
                out[-1] = (price, qty + o.leaves, count + 1)
            else:
                out.append((o.price, o.leaves, 1))
        return out

    def _level(self, symbol: str, side: Side, price: int) -> tuple[int, int]:
        at = [o for o in self.resting[symbol] if o.side is side and o.price == price]
        return sum(o.leaves for o in at), len(at)

    # ------------------------------------------------------------------ event helpers

    def _next_seq(self) -> int:
        self.last_seq += 1
        return self.last_seq

    def _exec(
        self,
        exec_type: ExecType,
        order: Order,
        ts: int,
        orig: str | None = None,
        reason: Reason | None = None,
    ) -> Execution:
        return Execution(
            seq=self._next_seq(), exec_type=exec_type, order=order, clordid=order.clordid, orig_clordid=orig,
            status=order.status, price=order.price, qty=order.qty, leaves=order.leaves, cum=order.cum,
            notional=order.notional, ts=ts, reason=reason,
        )  # fmt: skip

    def _book_update(self, symbol: str, side: Side, price: int, out: list[Event]) -> None:
        qty, count = self._level(symbol, side, price)
        self.rpt_seq[symbol] += 1
        out.append(BookUpdate(symbol, side, price, qty, count, self.rpt_seq[symbol]))

    def _stat(self, symbol: str, stat: Stat, value: int, out: list[Event]) -> None:
        self.stats[symbol][stat] = value
        self.rpt_seq[symbol] += 1
        out.append(StatUpdate(symbol, stat, value, self.rpt_seq[symbol]))

    def _rest(self, order: Order, out: list[Event]) -> None:
        assert order.price is not None
        self.clock += 1
        self.arrival[order.order_id] = self.clock
        self.resting[order.symbol].append(order)
        self._book_update(order.symbol, order.side, order.price, out)

    def _unrest(self, order: Order) -> None:
        self.resting[order.symbol].remove(order)

    def _end(self, order: Order, exec_type: ExecType, reason: Reason, ts: int) -> Execution:
        """Close ``order`` (nothing left to trade) and report it: cancelled, expired or rejected."""
        order.leaves = 0
        order.status = _END_STATUS[exec_type]
        return self._exec(exec_type, order, ts, None, reason)

    # ------------------------------------------------------------------ matching

    @staticmethod
    def _crosses(order: Order, price: int) -> bool:
        """Whether ``order`` may trade at a resting ``price`` (a market order always may)."""
        if order.price is None:
            return True
        return price <= order.price if order.side is Side.BUY else price >= order.price

    def _fok_fillable(self, order: Order) -> bool:
        """Whether matching would fill ``order`` completely, given self-trade prevention."""
        need = order.leaves
        for maker in self.queue(order.symbol, order.side.opposite):
            assert maker.price is not None
            if not self._crosses(order, maker.price):
                return False
            if maker.account == order.account:
                if self.stp is SelfTradePrevention.CANCEL_RESTING:
                    continue  # would be cancelled, not traded with
                return False  # matching would stop here
            need -= maker.leaves
            if need <= 0:
                return True
        return False

    def _trade(self, taker: Order, maker: Order, ts: int, out: list[Event]) -> None:
        assert maker.price is not None
        price = maker.price
        qty = min(taker.leaves, maker.leaves)
        self.last_trade_id += 1
        trade_id = self.last_trade_id
        for order, aggressor in ((taker, True), (maker, False)):
            order.leaves -= qty
            order.cum += qty
            order.notional += qty * price
            order.status = OrdStatus.PARTIALLY_FILLED if order.leaves else OrdStatus.FILLED
            ex = self._exec(ExecType.TRADE, order, ts)
            ex.last_qty, ex.last_px, ex.trade_id, ex.aggressor = qty, price, trade_id, aggressor
            out.append(ex)
        if not maker.leaves:
            self._unrest(maker)
        symbol = taker.symbol
        self.rpt_seq[symbol] += 1
        out.append(TradePrint(symbol, trade_id, price, qty, taker.side, self.rpt_seq[symbol], ts))
        stats = self.stats[symbol]
        if Stat.OPEN not in stats:
            self._stat(symbol, Stat.OPEN, price, out)
        if Stat.HIGH not in stats or price > stats[Stat.HIGH]:
            self._stat(symbol, Stat.HIGH, price, out)
        if Stat.LOW not in stats or price < stats[Stat.LOW]:
            self._stat(symbol, Stat.LOW, price, out)
        self._stat(symbol, Stat.VOLUME, stats.get(Stat.VOLUME, 0) + qty, out)

    def _match(self, taker: Order, ts: int, out: list[Event]) -> bool:
        """Trade ``taker`` level by level at resting prices; False if self-trade prevention cancelled it."""
        while taker.leaves:
            queue = self.queue(taker.symbol, taker.side.opposite)
            if not queue:
                return True
            price = queue[0].price
            assert price is not None
            if not self._crosses(taker, price):
                return True
            touched = stopped = False
            for maker in [o for o in queue if o.price == price]:
                if not taker.leaves:
                    break
                if maker.account == taker.account:
                    if self.stp is not SelfTradePrevention.CANCEL_INCOMING:
                        self._unrest(maker)
                        out.append(self._end(maker, _CANCELED, Reason.SELF_TRADE, ts))
                        touched = True
                    if self.stp is not SelfTradePrevention.CANCEL_RESTING:
                        stopped = True
                        break
                    continue
                self._trade(taker, maker, ts, out)
                touched = True
            if touched:
                self._book_update(taker.symbol, taker.side.opposite, price, out)
            if stopped:
                out.append(self._end(taker, _CANCELED, Reason.SELF_TRADE, ts))
                return False
        return True

    def _match_then_rest(self, order: Order, ts: int, out: list[Event]) -> None:
        if not self._match(order, ts, out) or not order.leaves:
            return
        if order.ord_type is OrdType.MARKET:
            out.append(self._end(order, _EXPIRED, Reason.MARKET_REMAINDER, ts))
        elif order.tif in _RESTING_TIFS:
            self._rest(order, out)
        else:
            out.append(self._end(order, _EXPIRED, Reason.IOC_REMAINDER, ts))

    # ------------------------------------------------------------------ commands

    def process(self, command: Command) -> list[Event]:
        """Apply one command and return its events."""
        out: list[Event] = []
        if isinstance(command, NewOrder):
            self._new(command, out)
        elif isinstance(command, CancelOrder):
            self._cancel(command, out)
        elif isinstance(command, ReplaceOrder):
            self._replace(command, out)
        elif isinstance(command, MassCancel):
            self._mass_cancel(command, out)
        elif isinstance(command, QueryOrder):
            self._query(command, out)
        else:
            self._expire_day(command, out)
        return out

    def _check_price_qty(self, ins: Instrument, ord_type: OrdType, price: int | None, qty: int) -> Reason | None:
        if qty <= 0:
            return Reason.INVALID_QUANTITY
        if qty < ins.min_lots:
            return Reason.QUANTITY_BELOW_MIN
        if qty > ins.max_lots:
            return Reason.QUANTITY_ABOVE_MAX
        if ord_type is OrdType.MARKET:
            return None if price is None else Reason.PRICE_ON_MARKET
        if price is None:
            return Reason.MISSING_PRICE
        if price <= 0:
            return Reason.INVALID_PRICE
        if price < ins.min_ticks or price > ins.max_ticks:
            return Reason.PRICE_OUTSIDE_BAND
        return None

    def _takes(self, symbol: str, side: Side, price: int) -> bool:
        """Whether a limit order at ``price`` would trade with the best opposite order."""
        queue = self.queue(symbol, side.opposite)
        if not queue:
            return False
        best = queue[0].price
        assert best is not None
        return best <= price if side is Side.BUY else best >= price

    def _new(self, cmd: NewOrder, out: list[Event]) -> None:
        ins = self.instruments.get(cmd.symbol)
        reason: Reason | None
        if cmd.edge_reject is not None:
            reason = cmd.edge_reject  # the FIX edge already found it invalid
        elif ins is None:
            reason = Reason.UNKNOWN_SYMBOL
        else:
            reason = self._check_price_qty(ins, cmd.ord_type, cmd.price, cmd.qty)
        if reason is None:
            if (cmd.owner, cmd.clordid) in self.names:
                reason = Reason.DUPLICATE_CLORDID
            elif cmd.post_only and (cmd.ord_type is not OrdType.LIMIT or cmd.tif not in _RESTING_TIFS):
                reason = Reason.POST_ONLY_NOT_LIMIT
            elif cmd.post_only and cmd.price is not None and self._takes(cmd.symbol, cmd.side, cmd.price):
                reason = Reason.POST_ONLY_WOULD_TAKE
        order_id = 0 if reason is not None else self.last_order_id + 1
        order = Order(
            order_id, cmd.owner, cmd.clordid, cmd.account, cmd.symbol, cmd.side, cmd.ord_type, cmd.tif,
            cmd.price, cmd.qty, cmd.post_only,
        )  # fmt: skip
        if reason is not None:
            out.append(self._end(order, ExecType.REJECTED, reason, cmd.ts))
            return
        self.last_order_id = order_id
        self.orders[order_id] = order
        self.names[cmd.owner, cmd.clordid] = order
        out.append(self._exec(ExecType.NEW, order, cmd.ts))
        if cmd.tif is TimeInForce.FOK and not self._fok_fillable(order):
            out.append(self._end(order, _EXPIRED, Reason.FOK_NOT_FILLED, cmd.ts))
            return
        self._match_then_rest(order, cmd.ts, out)

    def _find(self, owner: str, clordid: str | None, order_id: int | None) -> tuple[Order | None, Reason]:
        """The order a cancel, replace or query names, or why there is none for this owner."""
        if order_id is not None:
            order = self.orders.get(order_id)
            if order is None:
                return None, Reason.UNKNOWN_ORDER
            return (order, Reason.UNKNOWN_ORDER) if order.owner == owner else (None, Reason.NOT_OWNER)
        if clordid is None:
            return None, Reason.UNKNOWN_ORDER
        return self.names.get((owner, clordid)), Reason.UNKNOWN_ORDER

    def _rename(self, order: Order, owner: str, clordid: str) -> str:
        """Give ``order`` its new ClOrdID; returns the previous one."""
        orig = order.clordid
        self.names[owner, clordid] = order
        order.clordid = clordid
        return orig

    def _cancel(self, cmd: CancelOrder, out: list[Event]) -> None:
        order, reason = self._find(cmd.owner, cmd.orig_clordid, cmd.order_id)
        if order is not None:
            if order.status not in _OPEN_STATES:
                reason = Reason.ORDER_DONE
            elif (cmd.owner, cmd.clordid) in self.names:
                reason = Reason.DUPLICATE_CLORDID_CXL
            else:
                orig = self._rename(order, cmd.owner, cmd.clordid)
                self._unrest(order)
                order.leaves = 0
                order.status = OrdStatus.CANCELED
                out.append(self._exec(ExecType.CANCELED, order, cmd.ts, orig, Reason.CLIENT_REQUEST))
                assert order.price is not None
                self._book_update(order.symbol, order.side, order.price, out)
                return
        seq = self._next_seq()
        out.append(CancelReject(seq, cmd.owner, cmd.clordid, cmd.orig_clordid, order, False, reason, cmd.ts))

    def _replace(self, cmd: ReplaceOrder, out: list[Event]) -> None:
        order, reason = self._find(cmd.owner, cmd.orig_clordid, cmd.order_id)
        rejection: Reason | None = reason if order is None else None
        if order is not None:
            ins = self.instruments[order.symbol]
            if order.status not in _OPEN_STATES:
                rejection = Reason.ORDER_DONE
            elif (cmd.owner, cmd.clordid) in self.names:
                rejection = Reason.DUPLICATE_CLORDID_CXL
            elif cmd.symbol != order.symbol or cmd.side is not order.side:
                rejection = Reason.REPLACE_CHANGES_IDENTITY
            elif cmd.qty <= order.cum:
                rejection = Reason.REPLACE_BELOW_FILLED
            else:
                rejection = self._check_price_qty(ins, order.ord_type, cmd.price, cmd.qty)
                if (
                    rejection is None
                    and order.post_only
                    and cmd.price != order.price
                    and cmd.price is not None
                    and self._takes(order.symbol, order.side, cmd.price)
                ):
                    rejection = Reason.POST_ONLY_WOULD_TAKE
        if rejection is not None:
            seq = self._next_seq()
            out.append(CancelReject(seq, cmd.owner, cmd.clordid, cmd.orig_clordid, order, True, rejection, cmd.ts))
            return
        assert order is not None and order.price is not None
        orig = self._rename(order, cmd.owner, cmd.clordid)
        if cmd.price == order.price and cmd.qty <= order.qty:
            # Same price, no more quantity: the order keeps its place in the queue.
            order.qty = cmd.qty
            order.leaves = cmd.qty - order.cum
            out.append(self._exec(ExecType.REPLACED, order, cmd.ts, orig))
            self._book_update(order.symbol, order.side, order.price, out)
            return
        self._unrest(order)
        self._book_update(order.symbol, order.side, order.price, out)
        order.price = cmd.price
        order.qty = cmd.qty
        order.leaves = cmd.qty - order.cum
        out.append(self._exec(ExecType.REPLACED, order, cmd.ts, orig))
        self._match_then_rest(order, cmd.ts, out)

    def _in_book_order(self, symbol: str) -> list[Order]:
        """Every resting order: bids best first, then asks best first."""
        return self.queue(symbol, Side.BUY) + self.queue(symbol, Side.SELL)

    def _mass_cancel(self, cmd: MassCancel, out: list[Event]) -> None:
        if cmd.symbol in self.instruments:
            symbols = [cmd.symbol]
        elif cmd.symbol:
            symbols = []  # not listed: nothing to cancel
        else:
            symbols = list(self.instruments)
        cancelled = 0
        for symbol in symbols:
            for order in self._in_book_order(symbol):
                if order.owner != cmd.owner or (cmd.side is not None and order.side is not cmd.side):
                    continue
                if cmd.day_only and order.tif is not TimeInForce.DAY:
                    continue
                self._unrest(order)
                out.append(self._end(order, _CANCELED, cmd.reason, cmd.ts))
                assert order.price is not None
                self._book_update(symbol, order.side, order.price, out)
                cancelled += 1
        seq = self._next_seq()
        report = MassCancelReport(
            seq, cmd.owner, cmd.clordid, cmd.symbol, cmd.side, cancelled, cmd.reason, cmd.ts
        )  # fmt: skip
        out.append(report)

    def _query(self, cmd: QueryOrder, out: list[Event]) -> None:
        order, reason = self._find(cmd.owner, cmd.clordid, cmd.order_id)
        if order is not None:
            status = self._exec(ExecType.ORDER_STATUS, order, cmd.ts)
            if cmd.clordid is not None:
                status.clordid = cmd.clordid  # answered in the terms of the question
            out.append(status)
            return
        unknown = Order(
            0, cmd.owner, cmd.clordid or "", "", "", Side.BUY, OrdType.LIMIT, TimeInForce.DAY, None, 0, False
        )  # fmt: skip
        unknown.leaves = 0
        unknown.status = OrdStatus.REJECTED
        out.append(self._exec(ExecType.ORDER_STATUS, unknown, cmd.ts, None, reason))

    def _expire_day(self, cmd: ExpireDayOrders, out: list[Event]) -> None:
        for symbol in self.instruments:
            for order in self._in_book_order(symbol):
                if order.tif is TimeInForce.DAY:
                    self._unrest(order)
                    out.append(self._end(order, _EXPIRED, Reason.END_OF_DAY, cmd.ts))
                    assert order.price is not None
                    self._book_update(symbol, order.side, order.price, out)
