"""Order entry at the FIX edge: FIX messages -> engine commands, engine events -> FIX messages.

This is the only place where decimals meet the engine: prices and quantities are converted to ticks and lots with
the instrument's grid on the way in, and back on the way out. A value that is off the grid, or an enumeration the
venue does not support, becomes a :class:`~engine.commands.NewOrder` carrying ``edge_reject``, so the engine issues
the reject and every ExecID comes from the engine's one sequence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import quickfix as fix

from engine import (
    CancelOrder,
    CancelReject,
    Command,
    ExecType,
    Execution,
    Instrument,
    MassCancel,
    MassCancelReport,
    NewOrder,
    OrdType,
    QueryOrder,
    Reason,
    ReplaceOrder,
    Side,
    TimeInForce,
)
from gateway.fixtime import format_utc

# FIX tags used here.
ACCOUNT, AVG_PX, CL_ORD_ID, CUM_QTY, EXEC_ID, EXEC_INST = 1, 6, 11, 14, 17, 18
LAST_PX, LAST_QTY, MSG_TYPE, ORDER_ID, ORDER_QTY, ORD_STATUS, ORD_TYPE = 31, 32, 35, 37, 38, 39, 40
ORIG_CL_ORD_ID, PRICE, SIDE, SYMBOL, TEXT, TIME_IN_FORCE, TRANSACT_TIME = 41, 44, 54, 55, 58, 59, 60
ORD_REJ_REASON, CXL_REJ_REASON, CXL_REJ_RESPONSE_TO, EXEC_TYPE, LEAVES_QTY = 103, 102, 434, 150, 151
MASS_CANCEL_REQUEST_TYPE, MASS_CANCEL_RESPONSE, MASS_CANCEL_REJECT_REASON, TOTAL_AFFECTED_ORDERS = 530, 531, 532, 533
LAST_LIQUIDITY_IND, SECONDARY_EXEC_ID = 851, 527  # the trade id goes in SecondaryExecID

POST_ONLY = "6"  # ExecInst: participate, don't initiate
_CXL_REJ_CODES = {0, 1, 2, 3, 6}  # CxlRejReason values FIX 4.4 defines; anything else is 99 (other)
_SIDES = {"1": Side.BUY, "2": Side.SELL}
_ORD_TYPES = {"1": OrdType.MARKET, "2": OrdType.LIMIT}
_TIFS = {"0": TimeInForce.DAY, "1": TimeInForce.GTC, "3": TimeInForce.IOC, "4": TimeInForce.FOK}
_ZERO = Decimal(0)


def _opt(msg: fix.Message, tag: int) -> str | None:
    return msg.getField(tag) if msg.isSetField(tag) else None


def _decimal(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def _order_id(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


@dataclass(frozen=True, slots=True)
class Echo:
    """The client's own strings for fields that a reject must echo even if they could not be converted."""

    qty: str
    price: str | None


class OrderTranslator:
    """Parses order-entry messages into commands and renders order events as FIX messages."""

    def __init__(self, instruments: dict[str, Instrument]) -> None:
        self.instruments = instruments

    # ---------------------------------------------------------------- inbound

    def new_order(self, msg: fix.Message, owner: str, accounts: frozenset[str], ts: int) -> tuple[NewOrder, Echo]:
        clordid = msg.getField(CL_ORD_ID)
        symbol = msg.getField(SYMBOL)
        qty_text = msg.getField(ORDER_QTY)
        price_text = _opt(msg, PRICE)
        account = _opt(msg, ACCOUNT) or (min(accounts) if len(accounts) == 1 else "")
        side = _SIDES.get(msg.getField(SIDE))
        ord_type = _ORD_TYPES.get(msg.getField(ORD_TYPE))
        tif = _TIFS.get(_opt(msg, TIME_IN_FORCE) or "0")
        exec_inst = _opt(msg, EXEC_INST)
        post_only = exec_inst is not None and POST_ONLY in exec_inst.split()
        reject: Reason | None = None
        if side is None:
            reject = Reason.UNSUPPORTED_SIDE
        elif ord_type is None:
            reject = Reason.UNSUPPORTED_ORDER_TYPE
        elif tif is None:
            reject = Reason.UNSUPPORTED_TIME_IN_FORCE
        elif exec_inst is not None and exec_inst.split() != [POST_ONLY]:
            reject = Reason.UNSUPPORTED_EXEC_INST
        elif account not in accounts:
            reject = Reason.UNKNOWN_ACCOUNT
        lots, ticks = 0, None
        instrument = self.instruments.get(symbol)
        if reject is None and instrument is not None:
            lots, ticks, reject = self._convert(instrument, qty_text, price_text)
        cmd = NewOrder(
            owner, clordid, account, symbol, side or Side.BUY, ord_type or OrdType.LIMIT, tif or TimeInForce.DAY,
            ticks, lots, post_only, ts, reject,
        )  # fmt: skip
        return cmd, Echo(qty_text, price_text)

    @staticmethod
    def _convert(ins: Instrument, qty_text: str, price_text: str | None) -> tuple[int, int | None, Reason | None]:
        qty = _decimal(qty_text)
        if qty is None or qty <= _ZERO:
            return 0, None, Reason.INVALID_QUANTITY
        lots = ins.qty_to_lots(qty)
        if lots is None:
            return 0, None, Reason.QUANTITY_OFF_LOT
        if price_text is None:
            return lots, None, None
        price = _decimal(price_text)
        if price is None or price <= _ZERO:
            return lots, None, Reason.INVALID_PRICE
        ticks = ins.price_to_ticks(price)
        if ticks is None:
            return lots, None, Reason.PRICE_OFF_TICK
        return lots, ticks, None

    def cancel(self, msg: fix.Message, owner: str, ts: int) -> CancelOrder:
        return CancelOrder(
            owner, msg.getField(CL_ORD_ID), _opt(msg, ORIG_CL_ORD_ID), _order_id(_opt(msg, ORDER_ID)), ts
        )

    def replace(self, msg: fix.Message, owner: str, ts: int) -> ReplaceOrder | CancelReject:
        """The replace command, or the reject to send straight back if price/qty are off the grid."""
        clordid, orig = msg.getField(CL_ORD_ID), _opt(msg, ORIG_CL_ORD_ID)
        symbol = msg.getField(SYMBOL)
        side = _SIDES.get(msg.getField(SIDE), Side.BUY)
        ins = self.instruments.get(symbol)
        reason: Reason | None = Reason.UNKNOWN_SYMBOL if ins is None else None
        lots, ticks = 0, None
        if ins is not None:
            lots, ticks, reason = self._convert(ins, msg.getField(ORDER_QTY), _opt(msg, PRICE))
        if reason is not None:
            return CancelReject(0, owner, clordid, orig, None, True, reason, ts)
        return ReplaceOrder(owner, clordid, orig, _order_id(_opt(msg, ORDER_ID)), symbol, side, ticks, lots, ts)

    def status(self, msg: fix.Message, owner: str, ts: int) -> QueryOrder:
        return QueryOrder(owner, _opt(msg, CL_ORD_ID), _order_id(_opt(msg, ORDER_ID)), ts)

    def mass_cancel(self, msg: fix.Message, owner: str, ts: int) -> MassCancel | MassCancelReport:
        """The mass cancel, or the rejecting report for a request type the venue does not support."""
        clordid = msg.getField(CL_ORD_ID)
        req_type = msg.getField(MASS_CANCEL_REQUEST_TYPE)
        symbol = _opt(msg, SYMBOL)
        side = _SIDES.get(_opt(msg, SIDE) or "")
        if req_type == "7":
            return MassCancel(owner, clordid, None, side, False, Reason.MASS_CANCEL, ts)
        if req_type == "1" and symbol is not None and symbol in self.instruments:
            return MassCancel(owner, clordid, symbol, side, False, Reason.MASS_CANCEL, ts)
        why = Reason.UNKNOWN_SYMBOL if req_type == "1" else Reason.REPLACE_INVALID
        return MassCancelReport(0, owner, clordid, symbol, side, -1, why, ts)

    # ---------------------------------------------------------------- outbound

    def execution_report(self, ex: Execution, echo: Echo | None = None) -> fix.Message:
        """The ExecutionReport (8) for ``ex``; ``echo`` supplies the client's strings for a new-order reject."""
        order = ex.order
        ins = self.instruments.get(order.symbol)
        msg = fix.Message()
        msg.getHeader().setField(MSG_TYPE, "8")
        msg.setField(ORDER_ID, str(order.order_id) if order.order_id else "NONE")
        msg.setField(CL_ORD_ID, ex.clordid)
        if ex.orig_clordid is not None:
            msg.setField(ORIG_CL_ORD_ID, ex.orig_clordid)
        msg.setField(EXEC_ID, str(ex.seq))
        msg.setField(EXEC_TYPE, ex.exec_type.value)
        msg.setField(ORD_STATUS, ex.status.value)
        if order.account:
            msg.setField(ACCOUNT, order.account)
        if order.symbol:
            msg.setField(SYMBOL, order.symbol)
        msg.setField(SIDE, str(order.side.value))
        msg.setField(ORD_TYPE, str(order.ord_type.value))
        msg.setField(TIME_IN_FORCE, str(order.tif.value))
        if order.post_only:
            msg.setField(EXEC_INST, POST_ONLY)
        if ins is not None and order.order_id:
            msg.setField(ORDER_QTY, str(ins.lots_to_qty(ex.qty)))
            if ex.price is not None:
                msg.setField(PRICE, str(ins.ticks_to_price(ex.price)))
            msg.setField(LEAVES_QTY, str(ins.lots_to_qty(ex.leaves)))
            msg.setField(CUM_QTY, str(ins.lots_to_qty(ex.cum)))
            msg.setField(AVG_PX, avg_price(ins, ex.notional, ex.cum))
        else:  # reject of an order that never existed: echo what the client sent
            if echo is not None:
                msg.setField(ORDER_QTY, echo.qty)
                if echo.price is not None:
                    msg.setField(PRICE, echo.price)
            elif ins is not None and ex.qty:
                msg.setField(ORDER_QTY, str(ins.lots_to_qty(ex.qty)))
            msg.setField(LEAVES_QTY, "0")
            msg.setField(CUM_QTY, "0")
            msg.setField(AVG_PX, "0")
        if ex.exec_type is ExecType.TRADE:
            assert ins is not None
            msg.setField(LAST_QTY, str(ins.lots_to_qty(ex.last_qty)))
            msg.setField(LAST_PX, str(ins.ticks_to_price(ex.last_px)))
            msg.setField(SECONDARY_EXEC_ID, str(ex.trade_id))
            msg.setField(LAST_LIQUIDITY_IND, "2" if ex.aggressor else "1")
        if ex.reason is not None:
            if ex.exec_type is ExecType.REJECTED or not order.order_id:
                msg.setField(ORD_REJ_REASON, str(ex.reason.fix_code))
            msg.setField(TEXT, ex.reason.text)
        msg.setField(TRANSACT_TIME, format_utc(ex.ts))
        return msg

    def cancel_reject(self, rej: CancelReject) -> fix.Message:
        msg = fix.Message()
        msg.getHeader().setField(MSG_TYPE, "9")
        order = rej.order
        msg.setField(ORDER_ID, str(order.order_id) if order is not None and order.order_id else "NONE")
        msg.setField(CL_ORD_ID, rej.clordid)
        msg.setField(ORIG_CL_ORD_ID, rej.orig_clordid or "NONE")
        msg.setField(ORD_STATUS, order.status.value if order is not None else "8")
        msg.setField(CXL_REJ_RESPONSE_TO, "2" if rej.is_replace else "1")
        code = rej.reason.fix_code
        msg.setField(CXL_REJ_REASON, str(code if code in _CXL_REJ_CODES else 99))
        msg.setField(TEXT, rej.reason.text)
        msg.setField(TRANSACT_TIME, format_utc(rej.ts))
        return msg

    def mass_cancel_report(self, rep: MassCancelReport, request_type: str) -> fix.Message:
        msg = fix.Message()
        msg.getHeader().setField(MSG_TYPE, "r")
        msg.setField(CL_ORD_ID, rep.clordid)
        msg.setField(ORDER_ID, str(rep.seq) if rep.seq else "NONE")
        msg.setField(MASS_CANCEL_REQUEST_TYPE, request_type)
        if rep.cancelled < 0:
            msg.setField(MASS_CANCEL_RESPONSE, "0")
            msg.setField(MASS_CANCEL_REJECT_REASON, "1" if rep.reason is Reason.UNKNOWN_SYMBOL else "0")
            msg.setField(
                TEXT, "unknown symbol" if rep.reason is Reason.UNKNOWN_SYMBOL else "unsupported MassCancelRequestType"
            )
        else:
            msg.setField(MASS_CANCEL_RESPONSE, request_type)
            msg.setField(TOTAL_AFFECTED_ORDERS, str(rep.cancelled))
            msg.setField(TEXT, rep.reason.text)
        if rep.symbol:
            msg.setField(SYMBOL, rep.symbol)
        if rep.side is not None:
            msg.setField(SIDE, str(rep.side.value))
        msg.setField(TRANSACT_TIME, format_utc(rep.ts))
        return msg


def avg_price(ins: Instrument, notional: int, cum: int) -> str:
    """Average fill price as a decimal string, exact to 8 places; "0" before any fill."""
    if not cum:
        return "0"
    value = (ins.tick_size * notional / cum).quantize(Decimal("1e-8"))
    return format(value.normalize(), "f")


CommandFactory = Callable[[fix.Message, str, int], Command]
