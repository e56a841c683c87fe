"""Recording order events: the metrics they move and the audit line each one leaves. One job, no FIX, no engine.

Called by the gateway for every order event it reports, on the order path: names of Enum members are looked up in
tables built once (an Enum member's ``.name`` goes through a descriptor, ~0.7 us a time) and labelled metric children
are cached (``labels()`` costs ~7 us, a cached child's ``inc()`` far less).
"""

from __future__ import annotations

from typing import Any

from engine import CancelReject, ExecType, Execution, Instrument, MassCancelReport, OrdStatus, Side
from gateway.logs import AuditTrail
from gateway.metrics import Metrics

_EXEC_NAMES = {e: e.name.lower() for e in ExecType}
_AUDIT_EVENTS = {e: "order_" + e.name.lower() for e in ExecType}
_STATUS_NAMES = {s: s.name for s in OrdStatus}
_SIDE_NAMES = {s: s.name for s in Side}
_NEW, _REJECTED, _TRADE = ExecType.NEW, ExecType.REJECTED, ExecType.TRADE


class OrderRecorder:
    """Metrics and audit trail of order events."""

    def __init__(self, metrics: Metrics, audit: AuditTrail, instruments: dict[str, Instrument]) -> None:
        self.metrics = metrics
        self.audit = audit
        self.instruments = instruments
        self._labelled: dict[tuple[Any, str], Any] = {}

    def execution(self, ex: Execution) -> None:
        """Count an ExecutionReport's worth and write its audit line."""
        order = ex.order
        et = ex.exec_type
        m, child = self.metrics, self._child
        name = _EXEC_NAMES[et]
        child(m.executions, name).inc()
        ins = self.instruments.get(order.symbol)
        if et is _NEW:
            child(m.orders_accepted, order.symbol).inc()
        elif et is _REJECTED and ex.reason is not None:
            child(m.orders_rejected, ex.reason.code).inc()
        elif et is _TRADE and ex.aggressor and ins is not None:
            child(m.trades, order.symbol).inc()
            child(m.traded_quantity, order.symbol).inc(float(ins.qty_str(ex.last_qty)))
        price, qty = ex.price, ex.qty
        self.audit.record(
            _AUDIT_EVENTS[et], exec_id=ex.seq, session=order.owner, account=order.account, clordid=ex.clordid,
            orig_clordid=ex.orig_clordid, order_id=order.order_id, symbol=order.symbol, side=_SIDE_NAMES[order.side],
            price=ins.price_str(price) if ins and price is not None else None,
            qty=ins.qty_str(qty) if ins else None, leaves=ins.qty_str(ex.leaves) if ins else None,
            cum=ins.qty_str(ex.cum) if ins else None, status=_STATUS_NAMES[ex.status],
            last_qty=ins.qty_str(ex.last_qty) if ins and ex.last_qty else None,
            last_px=ins.price_str(ex.last_px) if ins and ex.last_px else None, trade_id=ex.trade_id or None,
            reason=ex.reason.code if ex.reason else None, ts=ex.ts,
        )  # fmt: skip

    def _child(self, metric: Any, label: str) -> Any:
        """``metric.labels(label)``, cached: ``labels()`` costs ~7 us, the cached child's ``inc()`` ~1 us."""
        key = (metric, label)
        child = self._labelled.get(key)
        if child is None:
            child = self._labelled[key] = metric.labels(label)
        return child

    def cancel_reject(self, ev: CancelReject) -> None:
        self._child(self.metrics.cancel_rejects, ev.reason.code).inc()
        self.audit.record(
            "cancel_reject", session=ev.owner, clordid=ev.clordid, orig_clordid=ev.orig_clordid,
            order_id=ev.order.order_id if ev.order else None, replace=ev.is_replace, reason=ev.reason.code,
        )  # fmt: skip

    def mass_cancel(self, ev: MassCancelReport) -> None:
        self.audit.record("mass_cancel", session=ev.owner, clordid=ev.clordid, symbol=ev.symbol, cancelled=ev.cancelled)
