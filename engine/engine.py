"""The matching engine: commands in, events out, one order book per instrument, price-time priority.

Single-threaded and deterministic: it does no I/O, reads no clock and draws no random numbers; order ids, ExecIDs
(``seq``), trade ids and RptSeq come from its own counters. Replaying the same commands into a new engine yields the
same events, which is what the journal relies on.

Complexity per command (n = price levels on a side): a new order that rests at an existing level, a cancel and a
quantity-down replace are O(1); creating or emptying a level adds O(log n); an aggressive order costs O(1) per order
it trades with plus O(log n) per level it empties. Mass cancel is O(resting orders of the symbols it covers).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from engine.auction import Uncross, uncross
from engine.book import OrderBook, first_key
from engine.commands import (
    CancelOrder,
    Command,
    Configure,
    ConfigureTrading,
    EndOfDay,
    ExpireDayOrders,
    Fund,
    Kill,
    MassCancel,
    NewOrder,
    QueryOrder,
    QueryPositions,
    ReplaceOrder,
    SetLimits,
    SetPhase,
    Tick,
    TransferDone,
    TransferIn,
    TransferOut,
)
from engine.events import (
    Balance,
    BookUpdate,
    CancelReject,
    Event,
    Execution,
    Imbalance,
    Indicative,
    MassCancelReport,
    OperatorResult,
    PhaseChange,
    PositionsReport,
    PositionView,
    Stat,
    StatUpdate,
    TradePrint,
    TradingDayChange,
)
from engine.instruments import Instrument
from engine.ledger import Ledger, LedgerSetup, Limits
from engine.order import Level, Order
from engine.protection import Guard, TradingRules
from engine.types import (
    ExecType,
    HaltPolicy,
    OrdStatus,
    OrdType,
    Phase,
    PhaseCause,
    Reason,
    SelfTradePrevention,
    Side,
    TimeInForce,
)

_BUY = Side.BUY
_LIMIT = OrdType.LIMIT
_MARKET = OrdType.MARKET
_NEW = OrdStatus.NEW
_PARTIAL = OrdStatus.PARTIALLY_FILLED
_FILLED = OrdStatus.FILLED
_RESTING_TIFS = (TimeInForce.DAY, TimeInForce.GTC)
_TRADE = ExecType.TRADE
# Enum members bound to module names: `ExecType.NEW` costs ~0.25 us per access in Python 3.11, a name ~0.02 us.
_EXECTYPE_NEW = ExecType.NEW
_EXECTYPE_ORDER_STATUS = ExecType.ORDER_STATUS
_EXECTYPE_REPLACED = ExecType.REPLACED
_ORDSTATUS_REJECTED = OrdStatus.REJECTED
_R_CLIENT_REQUEST = Reason.CLIENT_REQUEST
_R_DUPLICATE_CLORDID = Reason.DUPLICATE_CLORDID
_R_DUPLICATE_CLORDID_CXL = Reason.DUPLICATE_CLORDID_CXL
_R_END_OF_DAY = Reason.END_OF_DAY
_R_FOK_NOT_FILLED = Reason.FOK_NOT_FILLED
_R_INVALID_PRICE = Reason.INVALID_PRICE
_R_INVALID_QUANTITY = Reason.INVALID_QUANTITY
_R_IOC_REMAINDER = Reason.IOC_REMAINDER
_R_KILL_SWITCH = Reason.KILL_SWITCH
_R_NO_LEDGER = Reason.UNKNOWN_ACCOUNT  # a bare engine keeps no accounts
_R_UNKNOWN_ACCOUNT = Reason.UNKNOWN_ACCOUNT
_R_MARKET_REMAINDER = Reason.MARKET_REMAINDER
_R_MISSING_PRICE = Reason.MISSING_PRICE
_R_NOT_OWNER = Reason.NOT_OWNER
_R_ORDER_DONE = Reason.ORDER_DONE
_R_POST_ONLY_NOT_LIMIT = Reason.POST_ONLY_NOT_LIMIT
_R_POST_ONLY_WOULD_TAKE = Reason.POST_ONLY_WOULD_TAKE
_R_PRICE_ON_MARKET = Reason.PRICE_ON_MARKET
_R_PRICE_OUTSIDE_BAND = Reason.PRICE_OUTSIDE_BAND
_R_QUANTITY_ABOVE_MAX = Reason.QUANTITY_ABOVE_MAX
_R_QUANTITY_BELOW_MIN = Reason.QUANTITY_BELOW_MIN
_R_REPLACE_BELOW_FILLED = Reason.REPLACE_BELOW_FILLED
_R_REPLACE_CHANGES_IDENTITY = Reason.REPLACE_CHANGES_IDENTITY
_R_SELF_TRADE = Reason.SELF_TRADE
_R_UNKNOWN_ORDER = Reason.UNKNOWN_ORDER
_R_UNKNOWN_SYMBOL = Reason.UNKNOWN_SYMBOL
_R_AUCTION_FILL = Reason.AUCTION_FILL
_R_BREAKER_REMAINDER = Reason.BREAKER_REMAINDER
_R_MARKET_BAND_REMAINDER = Reason.MARKET_BAND_REMAINDER
_R_PRICE_OUTSIDE_DYNAMIC_BAND = Reason.PRICE_OUTSIDE_DYNAMIC_BAND
_CLOSED = Phase.CLOSED
_PRE_OPEN = Phase.PRE_OPEN
_AUCTION = Phase.AUCTION
_CONTINUOUS = Phase.CONTINUOUS
_HALTED = Phase.HALTED
_SELFTRADEPREVENTION_CANCEL_INCOMING = SelfTradePrevention.CANCEL_INCOMING
_SELFTRADEPREVENTION_CANCEL_RESTING = SelfTradePrevention.CANCEL_RESTING
_SIDE_SELL = Side.SELL
_TIMEINFORCE_DAY = TimeInForce.DAY
_TIMEINFORCE_FOK = TimeInForce.FOK
_TIMEINFORCE_IOC = TimeInForce.IOC
# How an order ends: (the ExecType of its last report, its final OrdStatus).
_CANCELED = (ExecType.CANCELED, OrdStatus.CANCELED)
_EXPIRED = (ExecType.EXPIRED, OrdStatus.EXPIRED)
_REJECTED = (ExecType.REJECTED, OrdStatus.REJECTED)


class MatchingEngine:
    """All order books of the venue and the order-id, ExecID and trade-id counters.

    >>> from decimal import Decimal as D
    >>> eng = MatchingEngine([Instrument("X", D("0.01"), D(1), D(1), D(1000), D("0.01"), D(1000))])
    >>> events = eng.process(NewOrder("o", "c1", "acct", "X", Side.BUY, OrdType.LIMIT, TimeInForce.DAY, 100, 5))
    >>> [type(e).__name__ for e in events]
    ['Execution', 'BookUpdate']
    """

    def __init__(
        self,
        instruments: Iterable[Instrument],
        self_trade_prevention: SelfTradePrevention = _SELFTRADEPREVENTION_CANCEL_RESTING,
        ledger: Ledger | None = None,
        id_base: int = 0,
    ) -> None:
        self.books: dict[str, OrderBook] = {i.symbol: OrderBook(i) for i in instruments}
        self.stp = self_trade_prevention
        # Balances, holds, fees, positions and pre-trade risk; None: a bare matching engine (no money at all).
        self.ledger = ledger
        # The orders the engine knows: every working order, and each owner's last `rules.finished_orders`
        # finished ones (filled, cancelled, expired) of the trading day, oldest first in `finished[owner]`. An
        # order falls out of the window when a newer one of its owner finishes, and at the end of the trading
        # day: then it is forgotten, here and in `clordids` (memory is bounded by the working set).
        self.orders: dict[int, Order] = {}  # order id -> order
        self.clordids: dict[str, dict[str, Order]] = {}  # owner -> ClOrdID -> order (each ClOrdID of its chain)
        self.finished: dict[str, deque[Order]] = {}  # owner -> its finished orders still known, oldest first
        # OrderIDs, ExecIDs and trade ids count up from id_base + 1: engines of different shards of one venue get
        # disjoint ranges (roles.config.ShardSpec), so every id stays unique venue-wide and names its shard.
        self.next_order_id = id_base + 1
        self.next_seq = id_base + 1
        self.next_trade_id = id_base + 1
        self.commands_processed = 0
        self.rules = TradingRules()  # halted policy, cancel on halt, price protection: ConfigureTrading sets them
        self._window = self.rules.finished_orders  # (read on every finished order)
        self._strict_halt = False  # rules.halted is NO_ENTRY: a halted instrument refuses cancels too
        self.trading_date: str | None = None  # set by EndOfDay (a venue without a schedule has none)
        self._handlers: dict[type, Callable[[Any, list[Event]], None]] = {
            NewOrder: self._new_order,
            CancelOrder: self._cancel,
            ReplaceOrder: self._replace,
            MassCancel: self._mass_cancel,
            QueryOrder: self._query,
            ExpireDayOrders: self._expire_day,
            Configure: self._configure,
            Fund: self._fund,
            SetLimits: self._set_limits,
            Kill: self._kill,
            QueryPositions: self._query_positions,
            ConfigureTrading: self._configure_trading,
            SetPhase: self._set_phase,
            Tick: self._tick,
            EndOfDay: self._end_of_day,
            TransferOut: self._transfer_out,
            TransferIn: self._transfer_in,
            TransferDone: self._transfer_done,
        }

    # ------------------------------------------------------------------ public API

    def process(self, command: Command) -> list[Event]:
        """Apply one command and return the events it caused, in order."""
        events: list[Event] = []
        self._handlers[type(command)](command, events)
        self.commands_processed += 1
        return events

    def book(self, symbol: str) -> OrderBook:
        """The order book of ``symbol`` (KeyError if the venue does not list it)."""
        return self.books[symbol]

    def order(self, order_id: int) -> Order | None:
        """The order with venue id ``order_id``, resting or done, or None."""
        return self.orders.get(order_id)

    def find(self, owner: str, clordid: str) -> Order | None:
        """The order ``owner`` knows by ``clordid`` (any ClOrdID in its cancel/replace chain), or None."""
        return self.clordids.get(owner, {}).get(clordid)

    def next_due(self) -> int | None:
        """When (ns) the engine next has something to do by itself (a circuit-breaker halt ends): the caller sends
        :class:`~engine.commands.Tick` at or after that time. None: nothing is due."""
        due = [b.halt_until for b in self.books.values() if b.halt_until is not None]
        return min(due) if due else None

    # ------------------------------------------------------------------ helpers

    def _seq(self) -> int:
        seq = self.next_seq
        self.next_seq = seq + 1
        return seq

    def _execution(
        self,
        exec_type: ExecType,
        order: Order,
        ts: int,
        orig_clordid: str | None = None,
        reason: Reason | None = None,
        last_qty: int = 0,
        last_px: int = 0,
        trade_id: int = 0,
        aggressor: bool = False,
        fee: int = 0,
    ) -> Execution:
        """The next report on ``order`` (the next ExecID), with a copy of its figures as they are now.

        The one place an :class:`Execution` is built, positionally on purpose: keyword construction of this
        18-field slots dataclass costs 3.4x as much (0.96 against 0.28 us) and made the engine benchmark execute 38%
        more instructions per command. (Keywords for the market-data events cost 14%: they stay positional too.)
        """
        seq = self.next_seq
        self.next_seq = seq + 1
        if not order.leaves and order.order_id and exec_type is not _EXECTYPE_ORDER_STATUS:
            # Its last report (filled, cancelled or expired): into its owner's window of finished orders, the
            # oldest one beyond the window forgotten. Count-based, so that a replay and a snapshot's standby forget
            # the same orders at the same command. (Written out here: a call cost ~1% of the engine benchmark.)
            window = self.finished.get(order.owner)
            if window is None:
                window = self.finished[order.owner] = deque()
            window.append(order)
            if len(window) > self._window:
                self._forget(window.popleft())
        return Execution(
            seq, exec_type, order, order.clordid, orig_clordid, order.status, order.price, order.qty,
            order.leaves, order.cum, order.notional, ts, last_qty, last_px, trade_id, aggressor, reason, fee,
        )  # fmt: skip

    def _forget(self, order: Order) -> None:
        """The engine no longer knows ``order``: neither its id nor any ClOrdID of its chain (which may be used
        again)."""
        del self.orders[order.order_id]
        ids = self.clordids[order.owner]
        if ids.get(order.clordid) is order:
            del ids[order.clordid]
        for clordid in order.aliases:
            if ids.get(clordid) is order:
                del ids[clordid]

    def _forget_finished(self) -> None:
        """End of the trading day: every finished order is forgotten (ClOrdIDs are unique per trading day)."""
        for window in self.finished.values():
            for order in window:
                self._forget(order)
        self.finished.clear()

    def _trim_finished(self) -> None:
        for window in self.finished.values():
            while len(window) > self._window:
                self._forget(window.popleft())

    def _close(
        self,
        order: Order,
        outcome: tuple[ExecType, OrdStatus],
        reason: Reason,
        ts: int,
        events: list[Event],
        orig_clordid: str | None = None,
    ) -> None:
        """End ``order`` (``_CANCELED``, ``_EXPIRED`` or ``_REJECTED``): nothing left to trade, one report; an
        accepted order's hold goes back (a rejected one never took any)."""
        if self.ledger is not None and order.order_id:
            self.ledger.close(order)
        exec_type, order.status = outcome
        order.leaves = 0
        events.append(self._execution(exec_type, order, ts, orig_clordid, reason))

    def _reject_new(self, cmd: NewOrder, reason: Reason, events: list[Event]) -> None:
        order = Order(
            0, cmd.owner, cmd.clordid, cmd.account, cmd.symbol, cmd.side, cmd.ord_type, cmd.tif, cmd.price,
            cmd.qty, cmd.post_only, cmd.parties,
        )  # fmt: skip
        self._close(order, _REJECTED, reason, cmd.ts, events)

    def _level_update(self, book: OrderBook, side: Side, level: Level, events: list[Event]) -> None:
        """Publish a price level's new aggregate (quantity 0: the level is gone)."""
        book.rpt_seq += 1
        events.append(BookUpdate(book.symbol, side, level.price, level.qty, level.count, book.rpt_seq))

    def _unrest(self, book: OrderBook, order: Order) -> Level:
        """Take a resting order off the book, deleting its level if that empties it; returns the level."""
        side, key = (book.bids, -order.price) if order.side is _BUY else (book.asks, order.price)  # type: ignore[operator]
        level: Level = side[key]  # SortedDict is a dict: O(1)
        level.remove(order)
        if not level.count:
            del side[key]
        return level

    def _rest(self, book: OrderBook, order: Order, events: list[Event]) -> None:
        """Put ``order`` at the back of its price level's queue (creating the level if new)."""
        price = order.price
        assert price is not None
        if order.side is _BUY:
            side, key = book.bids, -price
        else:
            side, key = book.asks, price
        level = side.get(key)
        if level is None:
            level = side[key] = Level(price)
        else:
            order.price = level.price  # share the level's int object: one less allocation per resting order
        level.append(order)
        # _level_update written out: most commands rest an order, and the call cost ~1% of the engine benchmark.
        book.rpt_seq += 1
        events.append(BookUpdate(book.symbol, order.side, price, level.qty, level.count, book.rpt_seq))

    def _take_off_book(
        self,
        book: OrderBook,
        order: Order,
        outcome: tuple[ExecType, OrdStatus],
        reason: Reason,
        ts: int,
        events: list[Event],
        orig_clordid: str | None = None,
    ) -> None:
        """End a resting order (see :meth:`_close`): off the book, its report, then its level's update."""
        if order.price is None:  # a market order waiting for an auction: in no price level
            queue = book.market_buys if order.side is _BUY else book.market_sells
            queue.remove(order)
            del book.caps[order.order_id]
            return self._close(order, outcome, reason, ts, events, orig_clordid)
        level = self._unrest(book, order)
        if self.ledger is not None:
            self.ledger.close(order)
        # _close and _level_update written out: this is every cancel's path, and the two calls cost ~1% of the
        # engine benchmark.
        exec_type, order.status = outcome
        order.leaves = 0
        events.append(self._execution(exec_type, order, ts, orig_clordid, reason))
        book.rpt_seq += 1
        events.append(BookUpdate(book.symbol, order.side, level.price, level.qty, level.count, book.rpt_seq))

    def _validate_price_qty(self, book: OrderBook, ord_type: OrdType, price: int | None, qty: int) -> Reason | None:
        ins = book.instrument
        if qty <= 0:
            return _R_INVALID_QUANTITY
        if qty < ins.min_lots:
            return _R_QUANTITY_BELOW_MIN
        if qty > ins.max_lots:
            return _R_QUANTITY_ABOVE_MAX
        if ord_type is _LIMIT:
            if price is None:
                return _R_MISSING_PRICE
            if price <= 0:
                return _R_INVALID_PRICE
            if not ins.min_ticks <= price <= ins.max_ticks:
                return _R_PRICE_OUTSIDE_BAND
            guard = book.guard
            if guard is not None and guard.outside_band(price, book.last_px):
                return _R_PRICE_OUTSIDE_DYNAMIC_BAND
        elif price is not None:
            return _R_PRICE_ON_MARKET
        return None

    @staticmethod
    def _would_take(book: OrderBook, side: Side, price: int) -> bool:
        if side is _BUY:
            return bool(book.asks) and first_key(book.asks) <= price
        return bool(book.bids) and -first_key(book.bids) >= price

    def _fok_fillable(self, book: OrderBook, order: Order, limit: int | None) -> bool:
        """Whether ``order`` can fill completely now at prices up to ``limit``, honouring self-trade prevention.
        Changes nothing."""
        need = order.leaves
        buy = order.side is _BUY
        stop_on_self = self.stp is not _SELFTRADEPREVENTION_CANCEL_RESTING
        for level in (book.asks if buy else book.bids).values():
            if limit is not None and (level.price > limit if buy else level.price < limit):
                return False
            maker = level.head
            while maker is not None:
                if maker.account == order.account:
                    if stop_on_self:
                        return False
                else:
                    need -= maker.leaves
                    if need <= 0:
                        return True
                maker = maker.next
        return False

    def _match(self, book: OrderBook, order: Order, ts: int, events: list[Event], limit: int | None) -> bool:
        """Trade ``order`` against the opposite side, best level first, while prices cross ``limit`` (the order's
        price, or nearer: see :meth:`_execute_guarded`).

        Returns False if self-trade prevention cancelled the incoming order's remainder (already reported).
        """
        buy = order.side is _BUY
        opposite = book.asks if buy else book.bids
        maker_side = _SIDE_SELL if buy else _BUY
        while order.leaves and opposite:
            key = first_key(opposite)
            level: Level = opposite[key]
            if limit is not None and (level.price > limit if buy else level.price < limit):
                break
            before = (level.qty, level.count)
            stopped = self._match_level(book, level, order, ts, events)
            if not level.count:
                del opposite[key]
            if (level.qty, level.count) != before:  # one update per level, however many orders it lost
                self._level_update(book, maker_side, level, events)
            if stopped:
                self._close(order, _CANCELED, _R_SELF_TRADE, ts, events)
                return False
        return True

    def _match_level(self, book: OrderBook, level: Level, order: Order, ts: int, events: list[Event]) -> bool:
        """Trade ``order`` against one level's orders in time priority; True if self-trade prevention stops it.

        An order of the same account is never traded with: the configured prevention cancels the resting one, the
        incoming one, or both. The caller publishes the level's update.
        """
        stp = self.stp
        account = order.account
        maker = level.head
        while maker is not None and order.leaves:
            nxt = maker.next
            if maker.account != account:
                self._trade(book, level, order, maker, ts, events)
            else:
                if stp is not _SELFTRADEPREVENTION_CANCEL_INCOMING:
                    level.remove(maker)
                    self._close(maker, _CANCELED, _R_SELF_TRADE, ts, events)
                if stp is not _SELFTRADEPREVENTION_CANCEL_RESTING:
                    return True
            maker = nxt
        return False

    def _trade(self, book: OrderBook, level: Level, taker: Order, maker: Order, ts: int, events: list[Event]) -> None:
        """One trade at the resting order's price.

        Both orders' figures move on and each gets a report, the taker's first; then the tape and the statistics.
        """
        qty = maker.leaves if maker.leaves < taker.leaves else taker.leaves
        price = level.price
        notional = qty * price
        trade_id = self.next_trade_id
        self.next_trade_id = trade_id + 1
        # Settlement first: the ledger reads both orders' remaining quantity before the fill.
        taker_fee, maker_fee = self.ledger.fill(taker, maker, qty, price) if self.ledger is not None else (0, 0)
        # The two fills are written out: a helper called twice per trade cost ~1% of the engine benchmark.
        taker.leaves -= qty
        taker.cum += qty
        taker.notional += notional
        taker.status = _PARTIAL if taker.leaves else _FILLED
        events.append(self._execution(_TRADE, taker, ts, None, None, qty, price, trade_id, True, taker_fee))
        maker.leaves -= qty
        maker.cum += qty
        maker.notional += notional
        maker.status = _PARTIAL if maker.leaves else _FILLED
        level.qty -= qty
        if not maker.leaves:
            level.remove(maker)
        events.append(self._execution(_TRADE, maker, ts, None, None, qty, price, trade_id, False, maker_fee))
        self._on_trade(book, trade_id, price, qty, taker.side, ts, events)

    def _on_trade(
        self, book: OrderBook, trade_id: int, price: int, qty: int, aggressor: Side, ts: int, events: list[Event]
    ) -> None:
        book.rpt_seq += 1
        events.append(TradePrint(book.symbol, trade_id, price, qty, aggressor, book.rpt_seq, ts))
        self._update_stats(book, price, qty, events)

    def _execute(self, book: OrderBook, order: Order, ts: int, events: list[Event]) -> None:
        """Match an accepted (or re-priced) order, then rest or expire what is left."""
        if book.guard is not None:
            return self._execute_guarded(book, order, ts, events)
        if not self._match(book, order, ts, events, order.price):
            return
        if order.leaves:  # _remainder written out: the unguarded path is the benchmark's
            if order.ord_type is _MARKET:
                self._close(order, _EXPIRED, _R_MARKET_REMAINDER, ts, events)
            elif order.tif is _TIMEINFORCE_IOC or order.tif is _TIMEINFORCE_FOK:
                self._close(order, _EXPIRED, _R_IOC_REMAINDER, ts, events)
            else:
                self._rest(book, order, events)

    def _remainder(self, book: OrderBook, order: Order, ts: int, events: list[Event]) -> None:
        if order.ord_type is _MARKET:
            self._close(order, _EXPIRED, _R_MARKET_REMAINDER, ts, events)
        elif order.tif is _TIMEINFORCE_IOC or order.tif is _TIMEINFORCE_FOK:
            self._close(order, _EXPIRED, _R_IOC_REMAINDER, ts, events)
        else:
            self._rest(book, order, events)

    def _stops(self, book: OrderBook, order: Order, ts: int) -> tuple[int | None, int | None, int | None]:
        """(the price ``order`` may trade up to, the band's stop, the breaker's stop) on a guarded book: a market
        order stops at the dynamic band's edge, every order at the circuit breaker's."""
        guard = book.guard
        assert guard is not None
        buy = order.side is _BUY
        band = guard.band_stop(book.last_px, buy) if order.ord_type is _MARKET else None
        breaker = guard.breaker_stop(ts, buy)
        limit = order.price
        for stop in (band, breaker):
            if stop is not None and (limit is None or (stop < limit if buy else stop > limit)):
                limit = stop
        return limit, band, breaker

    def _execute_guarded(self, book: OrderBook, order: Order, ts: int, events: list[Event]) -> None:
        """:meth:`_execute` on an instrument with price protection. Matching stops at the nearer of the order's own
        limit, the band's edge (market orders) and the circuit breaker's limit. If the next trade would have been
        beyond the breaker's limit, the instrument halts: the rest of a Day or GTC limit order rests (it takes part
        in the reopening auction), any other rest expires. A market order stopped by the band is cancelled."""
        guard = book.guard
        assert guard is not None
        buy = order.side is _BUY
        limit, band, breaker = self._stops(book, order, ts)
        opposite = book.asks if buy else book.bids
        first_px = abs(first_key(opposite)) if opposite else 0
        trades_before = self.next_trade_id
        matched = self._match(book, order, ts, events, limit)
        if self.next_trade_id != trades_before:
            last = book.last_px
            assert last is not None
            guard.record(ts, min(first_px, last), max(first_px, last), last)
        if not matched or not order.leaves:
            return
        own = order.price
        nxt = abs(first_key(opposite)) if opposite else None
        would = nxt is not None and (own is None or (nxt <= own if buy else nxt >= own))
        if would and breaker is not None and (nxt > breaker if buy else nxt < breaker):  # type: ignore[operator]
            if order.ord_type is _LIMIT and order.tif in _RESTING_TIFS:
                self._rest(book, order, events)
            else:
                self._close(order, _EXPIRED, _R_BREAKER_REMAINDER, ts, events)
            return self._halt(book, PhaseCause.CIRCUIT_BREAKER, ts, events, ts + guard.protection.breaker_halt_ns)
        if would and band is not None and (nxt > band if buy else nxt < band):  # type: ignore[operator]
            return self._close(order, _CANCELED, _R_MARKET_BAND_REMAINDER, ts, events)
        self._remainder(book, order, ts, events)

    def _lookup(self, owner: str, clordid: str | None, order_id: int | None) -> tuple[Order | None, Reason]:
        if order_id is not None:
            order = self.orders.get(order_id)
            if order is None:
                return None, _R_UNKNOWN_ORDER
            if order.owner != owner:
                return None, _R_NOT_OWNER
            return order, _R_UNKNOWN_ORDER
        if clordid is None:
            return None, _R_UNKNOWN_ORDER
        ids = self.clordids.get(owner)
        return (ids.get(clordid) if ids is not None else None), _R_UNKNOWN_ORDER

    # ------------------------------------------------------------------ command handlers

    def _new_order(self, cmd: NewOrder, events: list[Event]) -> None:
        if cmd.edge_reject is not None:
            return self._reject_new(cmd, cmd.edge_reject, events)
        book = self.books.get(cmd.symbol)
        if book is None:
            return self._reject_new(cmd, _R_UNKNOWN_SYMBOL, events)
        continuous = book.phase is _CONTINUOUS
        if not continuous:
            reason = self._phase_refuses(book, cmd.tif)
            if reason is not None:
                return self._reject_new(cmd, reason, events)
        owner_ids = self.clordids.get(cmd.owner)
        if owner_ids is None:
            owner_ids = self.clordids[cmd.owner] = {}
        ord_type, price = cmd.ord_type, cmd.price
        reason = self._validate_price_qty(book, ord_type, price, cmd.qty)
        if reason is None:
            if cmd.clordid in owner_ids:
                reason = _R_DUPLICATE_CLORDID
            elif cmd.post_only:
                if ord_type is not _LIMIT or cmd.tif not in _RESTING_TIFS:
                    reason = _R_POST_ONLY_NOT_LIMIT
                elif continuous and self._would_take(book, cmd.side, price):  # type: ignore[arg-type]
                    reason = _R_POST_ONLY_WOULD_TAKE
        if reason is not None:
            return self._reject_new(cmd, reason, events)
        order = Order(
            0, cmd.owner, cmd.clordid, cmd.account, cmd.symbol, cmd.side, ord_type, cmd.tif, price, cmd.qty,
            cmd.post_only, cmd.parties,
        )  # fmt: skip
        # A market order entered outside continuous trading waits for the auction at its protection price.
        cap = None if continuous or ord_type is _LIMIT else self._protection_price(book, cmd.side)
        if self.ledger is not None:  # pre-trade risk, then the hold
            reason = self.ledger.admit(order, book.asks if cmd.side is _BUY else book.bids, cap)
            if reason is not None:
                return self._reject_new(cmd, reason, events)
        order.order_id = order_id = self.next_order_id
        self.next_order_id = order_id + 1
        self.orders[order_id] = order
        owner_ids[cmd.clordid] = order
        ts = cmd.ts
        events.append(self._execution(_EXECTYPE_NEW, order, ts))
        if not continuous:
            return self._wait_for_auction(book, order, cap, events)
        if cmd.tif is _TIMEINFORCE_FOK:
            limit = order.price if book.guard is None else self._stops(book, order, ts)[0]
            if not self._fok_fillable(book, order, limit):
                return self._close(order, _EXPIRED, _R_FOK_NOT_FILLED, ts, events)
        if ord_type is _LIMIT and not self._would_take(book, cmd.side, price):  # type: ignore[arg-type]
            if cmd.tif in _RESTING_TIFS:
                return self._rest(book, order, events)
            return self._close(order, _EXPIRED, _R_IOC_REMAINDER, ts, events)
        self._execute(book, order, ts, events)

    def _cancel(self, cmd: CancelOrder, events: list[Event]) -> None:
        order, reason = self._lookup(cmd.owner, cmd.orig_clordid, cmd.order_id)
        owner_ids = self.clordids.get(cmd.owner)  # not setdefault(owner, {}): that builds a dict on every call
        if owner_ids is None:
            owner_ids = self.clordids[cmd.owner] = {}
        if order is not None and not order.is_open:
            order, reason = None, _R_ORDER_DONE
        elif order is not None and cmd.clordid in owner_ids:
            order, reason = None, _R_DUPLICATE_CLORDID_CXL
        elif self._strict_halt and order is not None and self.books[order.symbol].phase is _HALTED:
            order, reason = None, Reason.HALTED_NO_ENTRY
        if order is None:
            known = self._lookup(cmd.owner, cmd.orig_clordid, cmd.order_id)[0]
            reject = CancelReject(self._seq(), cmd.owner, cmd.clordid, cmd.orig_clordid, known, False, reason, cmd.ts)
            events.append(reject)
            return
        orig = order.clordid
        owner_ids[cmd.clordid] = order
        order.aliases += (orig,)
        order.clordid = cmd.clordid  # a cancelled order takes the cancel request's ClOrdID
        book = self.books[order.symbol]
        self._take_off_book(book, order, _CANCELED, _R_CLIENT_REQUEST, cmd.ts, events, orig)
        if book.phase is not _CONTINUOUS:
            self._indicate(book, events)

    def _replace(self, cmd: ReplaceOrder, events: list[Event]) -> None:
        order, reason = self._lookup(cmd.owner, cmd.orig_clordid, cmd.order_id)
        owner_ids = self.clordids.get(cmd.owner)
        if owner_ids is None:
            owner_ids = self.clordids[cmd.owner] = {}
        found = order
        rejection: Reason | None = None if order is not None else reason
        if order is not None:
            book = self.books[order.symbol]
            if not order.is_open:
                rejection = _R_ORDER_DONE
            elif cmd.clordid in owner_ids:
                rejection = _R_DUPLICATE_CLORDID_CXL
            elif cmd.symbol != order.symbol or cmd.side is not order.side:
                rejection = _R_REPLACE_CHANGES_IDENTITY
            elif cmd.qty <= order.cum:
                rejection = _R_REPLACE_BELOW_FILLED
            elif book.phase is not _CONTINUOUS and (book.phase is not _PRE_OPEN or order.ord_type is _MARKET):
                # closed or halted: no replace; in pre-open a market order waits for the auction as it is
                rejection = self._phase_refuses(book, order.tif) or Reason.REPLACE_MARKET_ORDER
            else:
                rejection = self._validate_price_qty(book, order.ord_type, cmd.price, cmd.qty)
                if rejection is None and order.post_only and cmd.price != order.price and book.phase is _CONTINUOUS:
                    assert cmd.price is not None
                    if self._would_take(book, order.side, cmd.price):
                        rejection = _R_POST_ONLY_WOULD_TAKE
                if rejection is None and self.ledger is not None:  # last: moves the hold if nothing else refuses
                    rejection = self.ledger.rehold(order, cmd.price, cmd.qty - order.cum)  # type: ignore[arg-type]
        if rejection is not None:
            events.append(
                CancelReject(self._seq(), cmd.owner, cmd.clordid, cmd.orig_clordid, found, True, rejection, cmd.ts)
            )
            return
        assert order is not None
        orig = order.clordid
        owner_ids[cmd.clordid] = order
        order.aliases += (orig,)
        order.clordid = cmd.clordid
        keeps_priority = cmd.price == order.price and cmd.qty <= order.qty
        new_leaves = cmd.qty - order.cum
        if keeps_priority:
            level = (book.bids if order.side is _BUY else book.asks)[book.key(order.side, cmd.price)]  # type: ignore[arg-type]
            level.qty -= order.leaves - new_leaves
            order.leaves = new_leaves
            order.qty = cmd.qty
            events.append(self._execution(_EXECTYPE_REPLACED, order, cmd.ts, orig))
            self._level_update(book, order.side, level, events)
            if book.phase is not _CONTINUOUS:
                self._indicate(book, events)
            return
        level = self._unrest(book, order)
        self._level_update(book, order.side, level, events)
        order.price = cmd.price
        order.qty = cmd.qty
        order.leaves = new_leaves
        events.append(self._execution(_EXECTYPE_REPLACED, order, cmd.ts, orig))
        if book.phase is _CONTINUOUS:
            self._execute(book, order, cmd.ts, events)
        else:  # pre-open: nothing matches until the auction
            self._rest(book, order, events)
            self._indicate(book, events)

    def _mass_cancel(self, cmd: MassCancel, events: list[Event]) -> None:
        books = [self.books[cmd.symbol]] if cmd.symbol in self.books else [] if cmd.symbol else self.books.values()
        cancelled = 0
        for book in books:
            if self._strict_halt and book.phase is _HALTED and cmd.reason is Reason.MASS_CANCEL:
                continue  # a client's mass cancel leaves a halted instrument alone; cancel on disconnect does not
            before = cancelled
            for order in book.resting_orders():
                if order.owner != cmd.owner or (cmd.side is not None and order.side is not cmd.side):
                    continue
                if cmd.day_only and order.tif is not _TIMEINFORCE_DAY:
                    continue
                self._take_off_book(book, order, _CANCELED, cmd.reason, cmd.ts, events)
                cancelled += 1
            if cancelled != before and book.phase is not _CONTINUOUS:
                self._indicate(book, events)
        events.append(
            MassCancelReport(self._seq(), cmd.owner, cmd.clordid, cmd.symbol, cmd.side, cancelled, cmd.reason, cmd.ts)
        )

    def _query(self, cmd: QueryOrder, events: list[Event]) -> None:
        if cmd.edge_reject is not None:
            order, reason = None, cmd.edge_reject
        else:
            order, reason = self._lookup(cmd.owner, cmd.clordid, cmd.order_id)
        if order is None:
            unknown = Order(0, cmd.owner, cmd.clordid or "", "", "", _BUY, _LIMIT, _TIMEINFORCE_DAY, None, 0, False)
            unknown.leaves = 0
            unknown.status = _ORDSTATUS_REJECTED
            events.append(self._execution(_EXECTYPE_ORDER_STATUS, unknown, cmd.ts, None, reason))
            return
        status = self._execution(_EXECTYPE_ORDER_STATUS, order, cmd.ts)
        if cmd.clordid is not None:
            status.clordid = cmd.clordid  # answer in the terms of the question (it may name an earlier ClOrdID)
        events.append(status)

    def _expire_day(self, cmd: ExpireDayOrders, events: list[Event]) -> None:
        for book in self.books.values():
            self._expire(book, cmd.ts, events)

    def _expire(self, book: OrderBook, ts: int, events: list[Event]) -> None:
        """End of a trading day in ``book``: every DAY order, and every market order waiting for an auction, expires."""
        for order in book.resting_orders():
            if order.tif is _TIMEINFORCE_DAY or order.price is None:
                self._take_off_book(book, order, _EXPIRED, _R_END_OF_DAY, ts, events)
        if book.phase is not _CONTINUOUS:
            self._indicate(book, events)

    # ------------------------------------------------------------------ operator commands and positions

    def _operator_result(
        self, cmd: Any, action: str, reason: Reason | None, events: list[Event], cancelled: int = 0
    ) -> None:
        events.append(OperatorResult(self._seq(), cmd.request_id, action, reason is None, reason, cmd.ts, cancelled))

    def _configure(self, cmd: Configure, events: list[Event]) -> None:
        setup = LedgerSetup.from_dict(cmd.setup)
        if self.ledger is None:
            self.ledger = Ledger(setup)
        else:
            self.ledger.configure(setup)

    def _fund(self, cmd: Fund, events: list[Event]) -> None:
        reason = self.ledger.fund(cmd.account, cmd.asset, cmd.amount, cmd.funding_id) if self.ledger else _R_NO_LEDGER
        self._operator_result(cmd, "deposit" if cmd.amount > 0 else "withdraw", reason, events)

    def _transfer_out(self, cmd: TransferOut, events: list[Event]) -> None:
        ledger = self.ledger
        reason = (
            ledger.transfer_out(cmd.account, cmd.asset, cmd.amount, cmd.to_shard, cmd.transfer_id)
            if ledger
            else _R_NO_LEDGER
        )
        self._operator_result(cmd, "transfer", reason, events)

    def _transfer_in(self, cmd: TransferIn, events: list[Event]) -> None:
        if self.ledger is not None:  # (without one, before the shard's first Configure, it is not confirmed either)
            self.ledger.transfer_in(cmd.from_shard, cmd.seq, cmd.account, cmd.asset, cmd.amount)

    def _transfer_done(self, cmd: TransferDone, events: list[Event]) -> None:
        if self.ledger is not None:
            self.ledger.transfer_done(cmd.transfer_id)

    def _set_limits(self, cmd: SetLimits, events: list[Event]) -> None:
        limits = Limits.from_list(cmd.limits)
        reason = self.ledger.set_limits(cmd.account, cmd.symbol, limits) if self.ledger else _R_NO_LEDGER
        self._operator_result(cmd, "limits", reason, events)

    def _kill(self, cmd: Kill, events: list[Event]) -> None:
        ledger = self.ledger
        action = "revive" if cmd.revive else "kill"
        if ledger is None:
            return self._operator_result(cmd, action, _R_NO_LEDGER, events)
        if cmd.account is not None:
            account = ledger.accounts.get(cmd.account)
            if account is None:
                return self._operator_result(cmd, action, _R_UNKNOWN_ACCOUNT, events)
            account.killed = not cmd.revive
        elif cmd.owner is not None:
            if cmd.revive:
                ledger.killed_owners.discard(cmd.owner)
            else:
                ledger.killed_owners.add(cmd.owner)
        cancelled = 0
        if not cmd.revive:
            for book in self.books.values():
                before = cancelled
                for order in book.resting_orders():
                    if order.account == cmd.account or order.owner == cmd.owner:
                        self._take_off_book(book, order, _CANCELED, _R_KILL_SWITCH, cmd.ts, events)
                        cancelled += 1
                if cancelled != before and book.phase is not _CONTINUOUS:
                    self._indicate(book, events)
        self._operator_result(cmd, action, None, events, cancelled)

    def _query_positions(self, cmd: QueryPositions, events: list[Event]) -> None:
        ledger = self.ledger
        account = ledger.accounts.get(cmd.account) if ledger is not None else None
        if account is None or cmd.edge_reject is not None:
            reason = cmd.edge_reject or _R_UNKNOWN_ACCOUNT
            events.append(PositionsReport(self._seq(), cmd.owner, cmd.req_id, cmd.account, [], [], reason, cmd.ts))
            return
        assert ledger is not None
        assets = sorted(set(account.available) | set(account.held))
        balances = [Balance(a, account.available.get(a, 0), account.held.get(a, 0)) for a in assets]
        positions = [
            PositionView(symbol, p.net, p.cost, p.realized, p.fees, self.books[symbol].last_px)
            for symbol, p in sorted(account.positions.items())
        ]
        events.append(PositionsReport(self._seq(), cmd.owner, cmd.req_id, cmd.account, balances, positions, None,
                                      cmd.ts))  # fmt: skip

    # ------------------------------------------------------------------ trading phases and auctions

    def _phase_refuses(self, book: OrderBook, tif: TimeInForce) -> Reason | None:
        """Why ``book``'s phase (not continuous) refuses a new order with ``tif``, or None (pre-open takes it)."""
        phase = book.phase
        if phase is _PRE_OPEN:
            return Reason.PRE_OPEN_IMMEDIATE if tif is _TIMEINFORCE_IOC or tif is _TIMEINFORCE_FOK else None
        if phase is _HALTED:
            return Reason.HALTED_NO_ENTRY if self._strict_halt else Reason.HALTED_CANCELS_ONLY
        return Reason.INSTRUMENT_CLOSED

    @staticmethod
    def _protection_price(book: OrderBook, side: Side) -> int:
        """The price a market order waiting for an auction is held and matched at, at most (buy) or at least (sell):
        the dynamic band's edge around the reference price, else the instrument's static price band."""
        buy = side is _BUY
        stop = book.guard.band_stop(book.last_px, buy) if book.guard is not None else None
        if stop is not None:
            return stop
        return book.instrument.max_ticks if buy else book.instrument.min_ticks

    def _wait_for_auction(self, book: OrderBook, order: Order, cap: int | None, events: list[Event]) -> None:
        """An order accepted outside continuous trading: a limit order rests (crossing or not), a market order joins
        its side's queue for the auction."""
        if cap is None:
            self._rest(book, order, events)
        else:
            (book.market_buys if order.side is _BUY else book.market_sells).append(order)
            book.caps[order.order_id] = cap
        self._indicate(book, events)

    def _uncross(self, book: OrderBook) -> Uncross:
        caps = book.caps
        buys = [(caps[o.order_id], o.leaves) for o in book.market_buys.orders()] if book.market_buys.count else []
        sells = [(caps[o.order_id], o.leaves) for o in book.market_sells.orders()] if book.market_sells.count else []
        return uncross(book.bids, book.asks, buys, sells, book.last_px)

    def _indicate(self, book: OrderBook, events: list[Event]) -> None:
        """Publish the indicative auction price, volume and imbalance if they changed (none in continuous trading
        or when closed)."""
        new = None
        if book.phase is _PRE_OPEN or book.phase is _HALTED:
            u = self._uncross(book)
            if u.price is not None:
                new = (u.price, u.volume, u.imbalance)
        old = book.indicative
        if new == old:
            return
        book.indicative = new
        price, volume, imbalance = new if new is not None else (None, 0, 0)
        old_price, old_volume, old_imbalance = old if old is not None else (None, 0, 0)
        if (price, volume) != (old_price, old_volume):
            book.rpt_seq += 1
            events.append(Indicative(book.symbol, price, volume, book.rpt_seq))
        if imbalance != old_imbalance:
            book.rpt_seq += 1
            events.append(Imbalance(book.symbol, imbalance, book.rpt_seq))

    def _enter(
        self, book: OrderBook, phase: Phase, cause: PhaseCause, ts: int, events: list[Event], until: int | None = None
    ) -> None:
        previous = book.phase
        book.phase = phase
        book.halt_until = until
        book.rpt_seq += 1
        events.append(PhaseChange(book.symbol, phase, previous, cause, book.rpt_seq, ts, until))

    def _halt(self, book: OrderBook, cause: PhaseCause, ts: int, events: list[Event], until: int | None = None) -> None:
        """Nothing trades until the halt ends (``until``, ns: a circuit-breaker halt) or an operator resumes; a halt
        cancels the book's orders only if the rules say so."""
        self._enter(book, _HALTED, cause, ts, events, until)
        if self.rules.cancel_on_halt:
            for order in book.resting_orders():
                self._take_off_book(book, order, _CANCELED, Reason.HALT_CANCEL, ts, events)
        self._indicate(book, events)

    def _close_book(self, book: OrderBook, cause: PhaseCause, ts: int, events: list[Event]) -> None:
        """The instrument's trading day ends: DAY orders expire, GTC orders stay, the statistics reset."""
        self._enter(book, _CLOSED, cause, ts, events)
        self._expire(book, ts, events)
        self._reset_stats(book, events)

    def _reset_stats(self, book: OrderBook, events: list[Event]) -> None:
        symbol = book.symbol
        for stat, name in ((Stat.OPEN, "open"), (Stat.HIGH, "high"), (Stat.LOW, "low")):
            if getattr(book, name) is not None:
                setattr(book, name, None)
                book.rpt_seq += 1
                events.append(StatUpdate(symbol, stat, None, book.rpt_seq))
        if book.volume:
            book.volume = 0
            book.rpt_seq += 1
            events.append(StatUpdate(symbol, Stat.VOLUME, 0, book.rpt_seq))

    def _open(self, book: OrderBook, cause: PhaseCause, ts: int, events: list[Event]) -> None:
        """To continuous trading through an auction: the book uncrosses at one price, the market orders left over
        expire, then continuous trading starts."""
        self._enter(book, _AUCTION, cause, ts, events)
        price = self._auction(book, ts, events)
        for order in book.market_buys.orders() + book.market_sells.orders():
            self._take_off_book(book, order, _EXPIRED, Reason.AUCTION_MARKET_REMAINDER, ts, events)
        self._indicate(book, events)  # the auction phase shows none: the indicative entries go
        if book.guard is not None:
            book.guard.restart(price if price is not None else book.last_px)
        self._enter(book, _CONTINUOUS, cause, ts, events)

    def _auction(self, book: OrderBook, ts: int, events: list[Event]) -> int | None:
        """Uncross ``book`` at the auction price (engine.auction): orders fill in price-time priority at that one
        price, a market order as a limit order at its protection price ahead of the limit orders at that price.
        Returns the price, or None if nothing crossed."""
        u = self._uncross(book)
        price = u.price
        if price is None:
            return None
        buys = self._eligible(book, _BUY, price)
        sells = self._eligible(book, _SIDE_SELL, price)
        touched: dict[int, tuple[Side, Level]] = {}
        b, s = next(buys, None), next(sells, None)
        volume = 0
        ledger = self.ledger
        while b is not None and s is not None:
            buy, buy_level = b
            sell, sell_level = s
            if buy.account == sell.account:  # self-trade prevention: the later order of the two is cancelled
                if buy.order_id > sell.order_id:
                    self._take_off_book(book, buy, _CANCELED, _R_SELF_TRADE, ts, events)
                    b = next(buys, None)
                else:
                    self._take_off_book(book, sell, _CANCELED, _R_SELF_TRADE, ts, events)
                    s = next(sells, None)
                continue
            qty = buy.leaves if buy.leaves < sell.leaves else sell.leaves
            trade_id = self.next_trade_id
            self.next_trade_id = trade_id + 1
            buy_fee, sell_fee = ledger.fill_auction(buy, sell, qty, price) if ledger is not None else (0, 0)
            notional = qty * price
            for order, level, fee in ((buy, buy_level, buy_fee), (sell, sell_level, sell_fee)):
                order.leaves -= qty
                order.cum += qty
                order.notional += notional
                order.status = _PARTIAL if order.leaves else _FILLED
                level.qty -= qty
                if not order.leaves:
                    level.remove(order)
                    if order.price is None:
                        del book.caps[order.order_id]
                if order.price is not None:
                    touched[id(level)] = (order.side, level)
                fill = self._execution(_TRADE, order, ts, None, _R_AUCTION_FILL, qty, price, trade_id, False, fee)
                events.append(fill)
            book.rpt_seq += 1
            events.append(TradePrint(book.symbol, trade_id, price, qty, None, book.rpt_seq, ts))
            volume += qty
            if not buy.leaves:
                b = next(buys, None)
            if not sell.leaves:
                s = next(sells, None)
        for side, level in touched.values():
            levels = book.bids if side is _BUY else book.asks
            if not level.count:
                levels.pop(book.key(side, level.price), None)  # (self-trade prevention may have taken it already)
            self._level_update(book, side, level, events)
        if volume:
            self._update_stats(book, price, volume, events)
        return price

    def _eligible(self, book: OrderBook, side: Side, price: int) -> Iterator[tuple[Order, Level]]:
        """``side``'s orders that can trade at ``price`` in auction priority, with the queue each is in: better
        prices first, at one price market orders (at their protection price) before limit orders, then time. The
        caller may take the order it was given off its queue before asking for the next."""
        buy = side is _BUY
        caps = book.caps
        queue = book.market_buys if buy else book.market_sells
        market = [o for o in queue.orders() if (caps[o.order_id] >= price if buy else caps[o.order_id] <= price)]
        market.sort(key=(lambda o: -caps[o.order_id]) if buy else (lambda o: caps[o.order_id]))
        levels = []
        for level in (book.bids if buy else book.asks).values():
            if level.price < price if buy else level.price > price:
                break
            levels.append(level)
        i = 0
        for level in levels:
            while i < len(market) and (caps[market[i].order_id] >= level.price if buy else
                                       caps[market[i].order_id] <= level.price):  # fmt: skip
                yield market[i], queue
                i += 1
            order = level.head
            while order is not None:
                nxt = order.next
                yield order, level
                order = nxt
        for order in market[i:]:
            yield order, queue

    @staticmethod
    def _update_stats(book: OrderBook, price: int, volume: int, events: list[Event]) -> None:
        """The statistics after a trade, or after an auction's trades (one update each, not one per trade)."""
        symbol = book.symbol
        book.last_px = price
        if book.open is None:
            book.open = price
            book.rpt_seq += 1
            events.append(StatUpdate(symbol, Stat.OPEN, price, book.rpt_seq))
        if book.high is None or price > book.high:
            book.high = price
            book.rpt_seq += 1
            events.append(StatUpdate(symbol, Stat.HIGH, price, book.rpt_seq))
        if book.low is None or price < book.low:
            book.low = price
            book.rpt_seq += 1
            events.append(StatUpdate(symbol, Stat.LOW, price, book.rpt_seq))
        book.volume += volume
        book.rpt_seq += 1
        events.append(StatUpdate(symbol, Stat.VOLUME, book.volume, book.rpt_seq))

    # ------------------------------------------------------------------ phase commands

    def _configure_trading(self, cmd: ConfigureTrading, events: list[Event]) -> None:
        self.rules = rules = TradingRules.from_dict(cmd.rules)
        self._strict_halt = rules.halted is HaltPolicy.NO_ENTRY
        self._window = rules.finished_orders
        self._trim_finished()
        for symbol, book in self.books.items():
            protection = rules.protection.get(symbol)
            if protection is None or (protection.band_bps is None and protection.breaker_bps is None):
                book.guard = None
            elif book.guard is None:
                book.guard = Guard(protection)
            else:
                book.guard.protection = protection  # the breaker's window goes on

    def _set_phase(self, cmd: SetPhase, events: list[Event]) -> None:
        if cmd.symbol is not None and cmd.symbol not in self.books:
            if cmd.request_id:
                self._operator_result(cmd, f"{cmd.phase.value} {cmd.symbol}", _R_UNKNOWN_SYMBOL, events)
            return
        books = [self.books[cmd.symbol]] if cmd.symbol is not None else list(self.books.values())
        for book in books:
            if cmd.cause is PhaseCause.SCHEDULE:
                book.scheduled = cmd.phase
                self._scheduled(book, cmd.phase, cmd.ts, events)
            else:
                done = self._operated(book, cmd.phase, cmd.ts, events)
                reason = None if done else Reason.PHASE_NOT_ALLOWED
                self._operator_result(cmd, f"{cmd.phase.value} {book.symbol}", reason, events)

    def _scheduled(self, book: OrderBook, phase: Phase, ts: int, events: list[Event]) -> None:
        """The schedule moves an instrument forward through its day only, and ends a halt only by closing."""
        cause, current = PhaseCause.SCHEDULE, book.phase
        if phase is _CLOSED and current is not _CLOSED:
            self._close_book(book, cause, ts, events)
        elif phase is _PRE_OPEN and current is _CLOSED:
            self._enter(book, _PRE_OPEN, cause, ts, events)
            self._indicate(book, events)
        elif phase is _CONTINUOUS and (current is _CLOSED or current is _PRE_OPEN):
            self._open(book, cause, ts, events)

    def _operated(self, book: OrderBook, phase: Phase, ts: int, events: list[Event]) -> bool:
        """An operator's phase change; False if the instrument's phase does not allow it."""
        cause, current = PhaseCause.OPERATOR, book.phase
        if phase is _HALTED and current is not _CLOSED:
            self._halt(book, cause, ts, events)
        elif phase is _CONTINUOUS and current is not _CONTINUOUS:
            self._open(book, cause, ts, events)
        elif phase is _PRE_OPEN and (current is _CLOSED or current is _HALTED):
            self._enter(book, _PRE_OPEN, cause, ts, events)
            self._indicate(book, events)
        elif phase is _CLOSED and current is not _CLOSED:
            self._close_book(book, cause, ts, events)
        else:
            return False
        return True

    def _tick(self, cmd: Tick, events: list[Event]) -> None:
        for book in self.books.values():
            until = book.halt_until
            if until is not None and until <= cmd.ts and book.phase is _HALTED:
                self._open(book, PhaseCause.HALT_ENDED, cmd.ts, events)

    def _end_of_day(self, cmd: EndOfDay, events: list[Event]) -> None:
        previous = self.trading_date
        if previous is not None and cmd.trading_date <= previous:
            return  # a day already begun (ISO dates sort as text): the same end of day twice changes nothing
        if previous is not None:
            for book in self.books.values():
                self._expire(book, cmd.ts, events)
                self._reset_stats(book, events)
            self._forget_finished()
        self.trading_date = cmd.trading_date
        events.append(TradingDayChange(cmd.trading_date, previous, cmd.ts))
