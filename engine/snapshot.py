"""The engine's whole state as plain data, and back. Pure: no I/O.

A snapshot holds every order the engine knows (working, and each owner's window of finished orders in the order
they finished, so status requests, duplicate-ClOrdID checks and the window's next forgetting stay the same), each
book's resting orders in exact price-time order, the ClOrdID memory of every owner, the id counters,
each instrument's statistics, RptSeq, phase, timed halt, market orders waiting for an auction, last indicative
auction figures and circuit-breaker window, the trading rules and date, and the ledger (balances, holds, positions,
limits, funding ids, kills).
``load_state(dump_state(e))`` behaves exactly like ``e`` for any command that follows; the journal tests check that
event for event.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

from sortedcontainers import SortedDict

from engine.commands import ConfigureTrading
from engine.engine import MatchingEngine
from engine.instruments import Instrument
from engine.ledger import Ledger
from engine.order import Level, Order
from engine.types import OrdStatus, OrdType, Phase, SelfTradePrevention, Side, TimeInForce

FORMAT = 1


def dump_state(engine: MatchingEngine) -> dict[str, Any]:
    orders = [
        [o.order_id, o.owner, o.clordid, o.account, o.symbol, int(o.side), int(o.ord_type), int(o.tif), o.price,
         o.qty, o.post_only, o.leaves, o.cum, o.notional, o.status.value, *((o.parties,) if o.parties else ())]
        for o in engine.orders.values()
    ]  # fmt: skip
    books = {}
    for symbol, book in engine.books.items():
        books[symbol] = {
            "bids": [[lv.price, [o.order_id for o in lv.orders()]] for lv in book.bids.values()],
            "asks": [[lv.price, [o.order_id for o in lv.orders()]] for lv in book.asks.values()],
            "rpt_seq": book.rpt_seq,
            "last_px": book.last_px,
            "open": book.open,
            "high": book.high,
            "low": book.low,
            "volume": book.volume,
            "phase": book.phase.value,
            "scheduled": book.scheduled.value,
            "halt_until": book.halt_until,
            "market": [[o.order_id, book.caps[o.order_id]] for o in book.resting_orders() if o.price is None],
            "indicative": book.indicative,
            "guard": book.guard.dump() if book.guard is not None else None,
        }
    return {
        "format": FORMAT,
        "commands_processed": engine.commands_processed,
        "next_order_id": engine.next_order_id,
        "next_seq": engine.next_seq,
        "next_trade_id": engine.next_trade_id,
        "orders": orders,
        "clordids": {owner: {c: o.order_id for c, o in ids.items()} for owner, ids in engine.clordids.items()},
        "finished": {owner: [o.order_id for o in window] for owner, window in engine.finished.items()},
        "books": books,
        "ledger": engine.ledger.dump() if engine.ledger is not None else None,
        "rules": engine.rules.to_dict(),
        "trading_date": engine.trading_date,
    }


def load_state(
    state: dict[str, Any],
    instruments: Iterable[Instrument],
    self_trade_prevention: SelfTradePrevention = SelfTradePrevention.CANCEL_RESTING,
) -> MatchingEngine:
    if state.get("format") != FORMAT:
        raise ValueError(f"unsupported snapshot format {state.get('format')!r}")
    ledger = state.get("ledger")
    engine = MatchingEngine(instruments, self_trade_prevention, Ledger.load(ledger) if ledger else None)
    if state.get("rules") is not None:  # (snapshots from before the trading phases have none)
        engine.process(ConfigureTrading(state["rules"]))
    engine.trading_date = state.get("trading_date")
    engine.commands_processed = state["commands_processed"]
    engine.next_order_id = state["next_order_id"]
    engine.next_seq = state["next_seq"]
    engine.next_trade_id = state["next_trade_id"]
    orders = engine.orders
    # Enum lookups by table: calling Side(1) etc. costs ~0.5 us each, a lot across a million orders.
    sides, types = {s.value: s for s in Side}, {t.value: t for t in OrdType}
    tifs, statuses = {t.value: t for t in TimeInForce}, {s.value: s for s in OrdStatus}
    # An order's row ends with its parties only when it has some.
    for (oid, owner, clordid, account, symbol, side, ord_type, tif, price, qty, post_only, leaves, cum, notional,
         status, *parties) in state["orders"]:  # fmt: skip
        order = Order(oid, owner, clordid, account, symbol, sides[side], types[ord_type], tifs[tif], price, qty,
                      post_only, parties[0] if parties else "")  # fmt: skip
        order.leaves, order.cum, order.notional, order.status = leaves, cum, notional, statuses[status]
        orders[oid] = order
    engine.clordids = {owner: {c: orders[oid] for c, oid in ids.items()} for owner, ids in state["clordids"].items()}
    for ids in engine.clordids.values():  # each order's earlier ClOrdIDs, in the order it had them
        for clordid, order in ids.items():
            if clordid != order.clordid:
                order.aliases += (clordid,)
    finished = state.get("finished")
    if finished is None:  # a snapshot from before the window: every done order, in the order they were accepted
        finished = {}
        for oid, order in orders.items():
            if not order.is_open:
                finished.setdefault(order.owner, []).append(oid)
    engine.finished = {owner: deque(orders[oid] for oid in ids) for owner, ids in finished.items()}
    engine._trim_finished()
    for symbol, data in state["books"].items():
        book = engine.books[symbol]
        for side_name, sign in (("bids", -1), ("asks", 1)):
            levels = []
            for price, ids in data[side_name]:
                level = Level(price)
                for oid in ids:
                    level.append(orders[oid])
                levels.append((sign * price, level))
            setattr(book, side_name, SortedDict(levels))
        book.rpt_seq = data["rpt_seq"]
        book.last_px, book.open, book.high, book.low = data["last_px"], data["open"], data["high"], data["low"]
        book.volume = data["volume"]
        book.phase = Phase(data.get("phase", "continuous"))
        book.scheduled = Phase(data.get("scheduled", "continuous"))
        book.halt_until = data.get("halt_until")
        for oid, cap in data.get("market", ()):
            order = orders[oid]
            (book.market_buys if order.side is Side.BUY else book.market_sells).append(order)
            book.caps[oid] = cap
        indicative = data.get("indicative")
        book.indicative = tuple(indicative) if indicative is not None else None
        if data.get("guard") is not None and book.guard is not None:
            book.guard.load(data["guard"])
    if engine.ledger is not None:  # every working order reaches its account's position again
        ledger = engine.ledger
        for order in orders.values():
            if order.is_open:
                order.pos = ledger.position(ledger.accounts[order.account], order.symbol)
        for book in engine.books.values():  # market buys waiting for an auction hold at their protection price
            for order in book.market_buys.orders():
                ledger.capped[order] = book.caps[order.order_id]
    return engine
