"""Events to bytes and back, for the engine's result stream (the multi-process venue). Pure: no I/O.

One command's events are encoded as one compact JSON array (orjson) of arrays, each naming its kind first, like
:mod:`engine.codec` does for commands. An :class:`~engine.events.Execution` carries what the FIX edge reads of its
order (the static fields and the status), so a gateway without an engine rebuilds an :class:`~engine.order.Order`
that writes the same ExecutionReport; the order's book links are not carried.
"""

from __future__ import annotations

from typing import Any

import orjson

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
from engine.order import Order
from engine.types import ExecType, OrdStatus, OrdType, Phase, PhaseCause, Reason, Side, TimeInForce

_REASONS = {r.code: r for r in Reason}
_SIDES = {s.value: s for s in Side}
_ORD_TYPES = {t.value: t for t in OrdType}
_TIFS = {t.value: t for t in TimeInForce}
_EXEC_TYPES = {t.value: t for t in ExecType}
_STATUSES = {s.value: s for s in OrdStatus}
_STATS = {s.value: s for s in Stat}
_PHASES = {p.value: p for p in Phase}
_CAUSES = {c.code: c for c in PhaseCause}


def _reason(r: Reason | None) -> str | None:
    return None if r is None else r.code


def _order(o: Order) -> list[Any]:
    return [
        o.order_id, o.owner, o.clordid, o.account, o.symbol, o.side, o.ord_type, o.tif, o.price, o.qty,
        o.post_only, o.parties, o.status.value,
    ]  # fmt: skip


def _order_from(t: list[Any]) -> Order:
    o = Order(t[0], t[1], t[2], t[3], t[4], _SIDES[t[5]], _ORD_TYPES[t[6]], _TIFS[t[7]], t[8], t[9], t[10], t[11])
    o.status = _STATUSES[t[12]]
    return o


def to_list(ev: Event) -> list[Any]:
    """The event as a JSON-able list."""
    kind = type(ev)
    if kind is Execution:
        e: Any = ev
        return [
            "X", e.seq, e.exec_type.value, e.clordid, e.orig_clordid, e.status.value, e.price, e.qty, e.leaves, e.cum,
            e.notional, e.ts, e.last_qty, e.last_px, e.trade_id, e.aggressor, _reason(e.reason), e.fee,
            _order(e.order),
        ]  # fmt: skip
    if kind is BookUpdate:
        b: Any = ev
        return ["B", b.symbol, b.side, b.price, b.qty, b.count, b.rpt_seq]
    if kind is TradePrint:
        p: Any = ev
        return ["T", p.symbol, p.trade_id, p.price, p.qty, p.aggressor, p.rpt_seq, p.ts]
    if kind is StatUpdate:
        s: Any = ev
        return ["S", s.symbol, s.stat.value, s.value, s.rpt_seq]
    if kind is CancelReject:
        c: Any = ev
        order = None if c.order is None else _order(c.order)
        return ["C", c.seq, c.owner, c.clordid, c.orig_clordid, order, c.is_replace, c.reason.code, c.ts]
    if kind is MassCancelReport:
        m: Any = ev
        side = None if m.side is None else int(m.side)
        return [
            "M", m.seq, m.owner, m.clordid, m.symbol, side, m.cancelled, m.reason.code, m.ts, _reason(m.rejected)
        ]  # fmt: skip
    if kind is OperatorResult:
        r: Any = ev
        return ["O", r.seq, r.request_id, r.action, r.applied, _reason(r.reason), r.ts, r.cancelled]
    if kind is PositionsReport:
        q: Any = ev
        balances = [[b.asset, b.available, b.held] for b in q.balances]
        positions = [[v.symbol, v.net, v.cost, v.realized, v.fees, v.mark] for v in q.positions]
        return ["P", q.seq, q.owner, q.req_id, q.account, balances, positions, _reason(q.reason), q.ts]
    if kind is PhaseChange:
        h: Any = ev
        return ["H", h.symbol, h.phase.value, h.previous.value, h.cause.code, h.rpt_seq, h.ts, h.halt_until]
    if kind is Indicative:
        i: Any = ev
        return ["I", i.symbol, i.price, i.qty, i.rpt_seq]
    if kind is Imbalance:
        a: Any = ev
        return ["A", a.symbol, a.qty, a.rpt_seq]
    if kind is TradingDayChange:
        d: Any = ev
        return ["D", d.trading_date, d.previous, d.ts]
    raise TypeError(f"not an event: {ev!r}")


def from_list(t: list[Any]) -> Event:
    """The event a :func:`to_list` list describes."""
    kind = t[0]
    if kind == "X":
        reason = None if t[16] is None else _REASONS[t[16]]
        return Execution(
            t[1], _EXEC_TYPES[t[2]], _order_from(t[18]), t[3], t[4], _STATUSES[t[5]], t[6], t[7], t[8], t[9], t[10],
            t[11], t[12], t[13], t[14], t[15], reason, t[17],
        )  # fmt: skip
    if kind == "B":
        return BookUpdate(t[1], _SIDES[t[2]], t[3], t[4], t[5], t[6])
    if kind == "T":
        return TradePrint(t[1], t[2], t[3], t[4], None if t[5] is None else _SIDES[t[5]], t[6], t[7])  # None: auction
    if kind == "S":
        return StatUpdate(t[1], _STATS[t[2]], t[3], t[4])
    if kind == "C":
        order = None if t[5] is None else _order_from(t[5])
        return CancelReject(t[1], t[2], t[3], t[4], order, t[6], _REASONS[t[7]], t[8])
    if kind == "M":
        side = None if t[5] is None else _SIDES[t[5]]
        rejected = None if t[9] is None else _REASONS[t[9]]
        return MassCancelReport(t[1], t[2], t[3], t[4], side, t[6], _REASONS[t[7]], t[8], rejected)
    if kind == "O":
        return OperatorResult(t[1], t[2], t[3], t[4], None if t[5] is None else _REASONS[t[5]], t[6], t[7])
    if kind == "P":
        balances = [Balance(*b) for b in t[5]]
        positions = [PositionView(*v) for v in t[6]]
        return PositionsReport(
            t[1], t[2], t[3], t[4], balances, positions, None if t[7] is None else _REASONS[t[7]], t[8]
        )
    if kind == "H":
        return PhaseChange(t[1], _PHASES[t[2]], _PHASES[t[3]], _CAUSES[t[4]], t[5], t[6], t[7])
    if kind == "I":
        return Indicative(t[1], t[2], t[3], t[4])
    if kind == "A":
        return Imbalance(t[1], t[2], t[3])
    if kind == "D":
        return TradingDayChange(t[1], t[2], t[3])
    raise ValueError(f"unknown event kind {kind!r}")


def encode_events(events: list[Event]) -> bytes:
    return orjson.dumps([to_list(ev) for ev in events])


def decode_events(data: bytes) -> list[Event]:
    return [from_list(t) for t in orjson.loads(data)]
