"""Shared fixtures-by-function for the engine tests: instruments, command builders, event serialisation."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

from engine import (
    BookUpdate,
    CancelReject,
    Event,
    ExecType,
    Execution,
    Instrument,
    MatchingEngine,
    NewOrder,
    OrdType,
    SelfTradePrevention,
    Side,
    TimeInForce,
    TradePrint,
)
from engine.events import MarketDataEvent, StatUpdate

BUY, SELL = Side.BUY, Side.SELL
LIMIT, MARKET = OrdType.LIMIT, OrdType.MARKET
DAY, GTC, IOC, FOK = TimeInForce.DAY, TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK


def instrument(symbol: str, **spec: str) -> Instrument:
    """An instrument with tick 0.01, lot 1, qty 1..1000 and band 0.01..1000 unless ``spec`` says otherwise."""
    base = {"tick_size": "0.01", "lot_size": "1", "min_qty": "1", "max_qty": "1000", "min_price": "0.01"}
    base["max_price"] = "1000"
    base.update(spec)
    return Instrument.from_config(symbol, base)


# XYZ, ABC: 1..100000 ticks, 1..1000 lots. BAND: 5000..15000 ticks, 10..1000 lots. BTC: as in the demo config.
XYZ = instrument("XYZ")
ABC = instrument("ABC")
BAND = instrument("BAND", min_qty="10", min_price="50", max_price="150")
BTC = instrument("BTC-USD", lot_size="0.0001", min_qty="0.0001", max_qty="100", max_price="1000000")
INSTRUMENTS = (XYZ, ABC, BAND)


def make_engine(stp: SelfTradePrevention = SelfTradePrevention.CANCEL_RESTING) -> MatchingEngine:
    """A fresh engine listing :data:`INSTRUMENTS`."""
    return MatchingEngine(INSTRUMENTS, stp)


def order(
    clordid: str,
    side: Side,
    price: int | None,
    qty: int,
    *,
    owner: str = "o1",
    account: str | None = None,
    symbol: str = "XYZ",
    ord_type: OrdType | None = None,
    tif: TimeInForce = DAY,
    post_only: bool = False,
    ts: int = 0,
) -> NewOrder:
    """A new order; LIMIT if it has a price, MARKET otherwise; the account defaults to ``acct-<owner>``."""
    if ord_type is None:
        ord_type = MARKET if price is None else LIMIT
    return NewOrder(owner, clordid, account or f"acct-{owner}", symbol, side, ord_type, tif, price, qty, post_only, ts)


def buy(clordid: str, price: int | None, qty: int, **kw: Any) -> NewOrder:
    """A buy order (see :func:`order`)."""
    return order(clordid, BUY, price, qty, **kw)


def sell(clordid: str, price: int | None, qty: int, **kw: Any) -> NewOrder:
    """A sell order (see :func:`order`)."""
    return order(clordid, SELL, price, qty, **kw)


ORDER_STATICS = ("order_id", "owner", "account", "symbol", "side", "ord_type", "tif", "post_only")
"""The fields of an order that never change: its execution reports read them from the order itself."""


def client_view(event: Event) -> dict[str, Any]:
    """What a client sees of ``event``: every field, with the ``order`` it refers to reduced to what the order's
    reports carry. An :class:`Execution` carries the order's static fields (its figures are copied into the event);
    a :class:`CancelReject` its OrderID and current OrdStatus (37, 39 on the OrderCancelReject).

    Used to compare event streams from different engines (or runs), which share no objects: the reference model
    puts its own order record in the ``order`` slot. Take the view right after the command that caused the event,
    as the gateway does when it sends it.
    """
    view: dict[str, Any] = {"event": type(event).__name__}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if f.name != "order":
            view[f.name] = value
        elif isinstance(event, CancelReject):
            view["order.order_id"] = None if value is None else value.order_id
            view["order.status"] = None if value is None else value.status
        else:
            for name in ORDER_STATICS:
                view[f"order.{name}"] = getattr(value, name)
    return view


def executions(events: Iterable[Event], exec_type: ExecType | None = None) -> list[Execution]:
    """The :class:`Execution` events, optionally only those of ``exec_type``."""
    return [e for e in events if isinstance(e, Execution) and (exec_type is None or e.exec_type is exec_type)]


def rejects(events: Iterable[Event]) -> list[CancelReject]:
    """The :class:`CancelReject` events."""
    return [e for e in events if isinstance(e, CancelReject)]


def book_updates(events: Iterable[Event]) -> list[BookUpdate]:
    """The :class:`BookUpdate` events."""
    return [e for e in events if isinstance(e, BookUpdate)]


def trades(events: Iterable[Event]) -> list[TradePrint]:
    """The :class:`TradePrint` events."""
    return [e for e in events if isinstance(e, TradePrint)]


def market_data(events: Iterable[Event]) -> list[MarketDataEvent]:
    """The market-data events (those carrying an RptSeq)."""
    return [e for e in events if isinstance(e, BookUpdate | TradePrint | StatUpdate)]


def kinds(events: Sequence[Event]) -> list[str]:
    """A compact picture of an event stream: ``Execution:F``, ``BookUpdate``, ``TradePrint``, ..."""
    out = []
    for e in events:
        name = type(e).__name__
        out.append(f"{name}:{e.exec_type.name}" if isinstance(e, Execution) else name)
    return out


L2 = dict[tuple[str, Side], dict[int, tuple[int, int]]]


def apply_book_updates(l2: L2, events: Iterable[Event]) -> None:
    """Apply every :class:`BookUpdate` in ``events`` to a price -> (qty, count) map per (symbol, side)."""
    for e in events:
        if isinstance(e, BookUpdate):
            levels = l2.setdefault((e.symbol, e.side), {})
            if e.qty == 0:
                assert e.count == 0, e
                levels.pop(e.price, None)
            else:
                levels[e.price] = (e.qty, e.count)


def l2_depth(l2: L2, symbol: str, side: Side) -> list[tuple[int, int, int]]:
    """The levels of an :data:`L2` map as ``(price, qty, count)``, best first."""
    levels = l2.get((symbol, side), {})
    prices = sorted(levels, reverse=side is BUY)
    return [(p, *levels[p]) for p in prices]


def engine_depth(engine: MatchingEngine, symbol: str, side: Side) -> list[tuple[int, int, int]]:
    """The engine's full depth on one side as ``(price, qty, count)`` tuples, best first."""
    return [(lv.price, lv.qty, lv.count) for lv in engine.book(symbol).depth(side)]


def resting_ids(engine: MatchingEngine, symbol: str, side: Side) -> list[int]:
    """Order ids resting on one side, in priority order."""
    book = engine.book(symbol)
    return [o.order_id for level in book.side(side).values() for o in level.orders()]


def run(engine: Any, commands: Iterable[Any]) -> list[Event]:
    """Process ``commands`` in order and return all the events."""
    out: list[Event] = []
    for cmd in commands:
        out.extend(engine.process(cmd))
    return out
