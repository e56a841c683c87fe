"""The engine's events as rows: one handler per event type, each adding to a :class:`~store.db.Batch`.

* every :class:`~engine.Execution` except an order-status answer (it changes nothing) -> one ``executions`` row, and
  the order's current state -> its ``orders`` row (upserted; rejected orders have no OrderID and no orders row);
* the two TRADE executions of one trade (the taker's, then the maker's; an auction's: the buy's, then the sell's) ->
  one ``trades`` row with both sides (``aggressor`` AUCTION for an auction's trade).

Cancel rejects and mass-cancel reports change no order and are not stored; the market-data events neither (the
trades table is the tape). Prices and quantities are written as the exact decimal text of the engine's integers.

Balances and positions (the accounts ledger) will be one more entry in ``handlers`` for the ledger's events,
upserting into the tables of one more migration.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from engine import Event, ExecType, Execution, Instrument, OrdStatus, OrdType, Side, TimeInForce
from store.db import Batch
from store.schema import EXECUTIONS, ORDERS, TRADES

_SIDE = {s: s.name for s in Side}
_ORD_TYPE = {t: t.name for t in OrdType}
_TIF = {t: t.name for t in TimeInForce}
_STATUS = {s: s.name for s in OrdStatus}
_EXEC_TYPE = {t: t.name for t in ExecType}
_ORDER_STATUS = ExecType.ORDER_STATUS
_TRADE = ExecType.TRADE
_BUY = Side.BUY
AUCTION = "AUCTION"  # the aggressor of an auction's trade: nobody came in


class _Texts(dict[int, str]):
    """An instrument's decimal text of an integer (ticks or lots), memoised: a dict hit instead of formatting. Starts
    afresh past 4,096 values, so no flow can grow it without bound."""

    def __init__(self, format: Callable[[int], str]) -> None:
        super().__init__()
        self.format = format

    def __missing__(self, units: int) -> str:
        if len(self) >= 4096:
            self.clear()
        text = self[units] = self.format(units)
        return text


class RowBuilder:
    """Turns the events of journal records into rows; holds the half of a trade seen so far."""

    def __init__(self, instruments: Iterable[Instrument]) -> None:
        self.instruments = {i.symbol: i for i in instruments}
        self.texts = {s: (_Texts(i.price_str), _Texts(i.qty_str)) for s, i in self.instruments.items()}
        self._takers: dict[int, tuple[Execution, int]] = {}  # trade id -> the taker's execution, its position
        self.handlers: dict[type, Callable[[Any, int, Batch], None]] = {Execution: self._execution}

    def add(self, events: list[Event], position: int, batch: Batch) -> None:
        """Rows for the events of the journal record at ``position``."""
        handlers = self.handlers
        for ev in events:
            handler = handlers.get(type(ev))
            if handler is not None:
                handler(ev, position, batch)

    def _execution(self, ev: Execution, position: int, batch: Batch) -> None:
        if ev.exec_type is _ORDER_STATUS:
            return
        order = ev.order
        texts = self.texts.get(order.symbol)
        price: str | None
        qty: str | None
        leaves: str | None
        cum: str | None
        avg_px: str | None
        trade = ev.exec_type is _TRADE
        last_qty = last_px = None
        if texts is not None:
            prices, lots = texts
            price = None if ev.price is None else prices[ev.price]
            qty, leaves, cum = lots[ev.qty], lots[ev.leaves], lots[ev.cum]
            notional, filled = ev.notional, ev.cum
            if not filled:
                avg_px = "0"
            elif notional % filled == 0:
                avg_px = prices[notional // filled]
            else:
                avg_px = self.instruments[order.symbol].avg_price_str(notional, filled)
            if trade:
                last_qty, last_px = lots[ev.last_qty], prices[ev.last_px]
        else:  # a reject for a symbol the venue does not list: no grid to express its figures on
            price = qty = leaves = cum = avg_px = None
        side = _SIDE[order.side]
        reason = ev.reason.code if ev.reason is not None else None
        order_id = order.order_id or None
        batch.inserts.setdefault(EXECUTIONS, []).append(
            (ev.seq, order_id, order.owner, order.account, order.symbol, side, ev.clordid, ev.orig_clordid,
             _EXEC_TYPE[ev.exec_type], _STATUS[ev.status], price, qty, leaves, cum, avg_px, last_qty, last_px,
             ev.trade_id if trade else None, ev.aggressor if trade else None, reason, ev.ts, position)
        )  # fmt: skip
        if order_id is not None:
            orders = batch.upserts.setdefault(ORDERS, {})
            earlier = orders.get(order_id)
            created = earlier[16] if earlier is not None else ev.ts  # kept from the first write by the upsert
            orders[order_id] = (
                order_id, order.owner, order.account, order.symbol, side, _ORD_TYPE[order.ord_type],
                _TIF[order.tif], order.post_only, ev.clordid, price, qty, leaves, cum, avg_px, _STATUS[ev.status],
                reason, created, ev.ts, ev.seq,
            )  # fmt: skip
        if trade:
            self._trade_half(ev, position, batch)

    def _trade_half(self, ev: Execution, position: int, batch: Batch) -> None:
        if ev.aggressor or ev.trade_id not in self._takers:  # the taker's half comes first (an auction's: the buy's)
            self._takers[ev.trade_id] = (ev, position)
            return
        taker, _ = self._takers.pop(ev.trade_id)
        maker = ev
        buy, sell = (taker, maker) if taker.order.side is _BUY else (maker, taker)
        prices, lots = self.texts[maker.order.symbol]
        b, s = buy.order, sell.order
        batch.inserts.setdefault(TRADES, []).append(
            (ev.trade_id, b.symbol, prices[ev.last_px], lots[ev.last_qty], ev.last_px, ev.last_qty,
             _SIDE[taker.order.side] if taker.aggressor else AUCTION,
             b.order_id, b.owner, b.account, buy.clordid, buy.seq,
             s.order_id, s.owner, s.account, sell.clordid, sell.seq,
             None, None, None, ev.ts, position)
        )  # fmt: skip
