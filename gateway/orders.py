"""Order entry at the FIX edge: FIX messages -> engine commands, engine events -> FIX messages.

This is the only place where decimals meet the engine: prices and quantities are converted to ticks and lots with
the instrument's grid on the way in, and back on the way out. A value that is off the grid, or an enumeration the
venue does not support, is refused here: a new order or a status request then carries ``edge_reject``, so the engine
issues the reject and every ExecID comes from the engine's one sequence; a cancel, replace or mass cancel is answered
straight away (OrderCancelReject, OrderMassCancelReport ``531=0``: no ExecID, no engine command, no journal record).

Every enumeration value written here comes from a named table (:mod:`gateway.fixcodes`, :mod:`engine.types`).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final, Literal

import _quickfix as _qf
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
    OrdStatus,
    OrdType,
    QueryOrder,
    Reason,
    ReplaceOrder,
    Side,
    TimeInForce,
)
from engine.instruments import parse_decimal
from gateway.fixcodes import (
    REJECT_CODES,
    CommType,
    CxlRejResponseTo,
    ExecInst,
    LastLiquidityInd,
    MassCancelRequestType,
    MassCancelResponse,
)
from gateway.fixtime import format_utc
from gateway.parties import PartiesCheck, parties_text

# FIX tags used here.
ACCOUNT, AVG_PX, CL_ORD_ID, CUM_QTY, EXEC_ID, EXEC_INST = 1, 6, 11, 14, 17, 18
LAST_PX, LAST_QTY, MSG_TYPE, ORDER_ID, ORDER_QTY, ORD_STATUS, ORD_TYPE = 31, 32, 35, 37, 38, 39, 40
ORIG_CL_ORD_ID, PRICE, SIDE, SYMBOL, TEXT, TIME_IN_FORCE, TRANSACT_TIME = 41, 44, 54, 55, 58, 59, 60
ORD_REJ_REASON, CXL_REJ_REASON, CXL_REJ_RESPONSE_TO, EXEC_TYPE, LEAVES_QTY = 103, 102, 434, 150, 151
MASS_CANCEL_REQUEST_TYPE, MASS_CANCEL_RESPONSE, MASS_CANCEL_REJECT_REASON, TOTAL_AFFECTED_ORDERS = 530, 531, 532, 533
LAST_LIQUIDITY_IND, SECONDARY_EXEC_ID = 851, 527  # the trade id goes in SecondaryExecID

POST_ONLY = ExecInst.PARTICIPATE_DO_NOT_INITIATE.value
_ABSOLUTE = CommType.ABSOLUTE.value
_TRADE, _REJECTED = ExecType.TRADE, ExecType.REJECTED  # names, not Enum attribute lookups (~0.25 us each)
_ZERO = Decimal(0)
SOH = "\x01"
# FIX text of each enumeration member: a dict lookup, not a descriptor call or an Enum.__format__.
_EXEC_TYPE_TEXT = {e: e.value for e in ExecType}
_ORD_STATUS_TEXT = {s: s.value for s in OrdStatus}
_SIDE_TEXT = {s: str(s.value) for s in Side}
_ORD_TYPE_TEXT = {t: str(t.value) for t in OrdType}
_TIF_TEXT = {t: str(t.value) for t in TimeInForce}
# ... and back: the values the venue supports; any other value of the tag is refused, never defaulted.
_SIDES = {text: s for s, text in _SIDE_TEXT.items()}
_ORD_TYPES = {text: t for t, text in _ORD_TYPE_TEXT.items()}
_TIFS = {text: t for t, text in _TIF_TEXT.items()}
_DAY = _TIF_TEXT[TimeInForce.DAY]  # TimeInForce when absent
_UNSUPPORTED_SIDE: Final = Reason.UNSUPPORTED_SIDE
_ORD_REJ_TEXT = {r: str(int(c.ord_rej)) for r, c in REJECT_CODES.items() if c.ord_rej is not None}
_CXL_REJ_TEXT = {r: str(int(c.cxl_rej)) for r, c in REJECT_CODES.items() if c.cxl_rej is not None}
_MASS_REJ_TEXT = {r: c.mass_rej.value for r, c in REJECT_CODES.items() if c.mass_rej is not None}
_POST_ONLY_FIELD = f"18={POST_ONLY}\x01"
_MAKER_FIELD = f"851={LastLiquidityInd.ADDED_LIQUIDITY.value}\x01"
_TAKER_FIELD = f"851={LastLiquidityInd.REMOVED_LIQUIDITY.value}\x01"
_BY_SYMBOL, _ALL_ORDERS = MassCancelRequestType.CANCEL_ORDERS_FOR_A_SECURITY, MassCancelRequestType.CANCEL_ALL_ORDERS
_UNKNOWN_ORDER_ECHO = {"38": "0", "40": _ORD_TYPE_TEXT[OrdType.LIMIT], "59": _DAY}  # the status answer's placeholders
PARTIES = "parties"  # fields_of's key for the Parties block's FIX text (a dict keeps only one value per tag)
# Distinct values remembered per table (four tables per instrument): at most ~1 MB per instrument, however many
# different prices clients send; a few thousand prices around the touch is what real flow revisits.
MEMO_LIMIT = 2_000


class _Memo(dict[Any, Any]):
    """``memo[key]`` is ``compute(key)``, computed on first use and remembered: prices and quantities repeat, and a
    hit is a C-level dict lookup (~0.05 us) where formatting a price costs ~1.4 us and parsing one ~3 us. Bounded:
    it starts afresh when it holds ``MEMO_LIMIT`` keys, so a client sending ever new values cannot grow it."""

    def __init__(self, compute: Callable[[Any], Any]) -> None:
        super().__init__()
        self.compute = compute

    def __missing__(self, key: Any) -> Any:
        value = self.compute(key)
        if self.remember(value):
            if len(self) >= MEMO_LIMIT:
                self.clear()
            self[key] = value
        return value

    @staticmethod
    def remember(value: Any) -> bool:
        return True


class _GridMemo(_Memo):
    """A :class:`_Memo` of client texts that remembers only values on the grid: a refusal (a :class:`Reason`) is
    recomputed each time; refusals are rare, and a client sending ever new invalid texts must not churn the table."""

    @staticmethod
    def remember(value: Any) -> bool:
        return not isinstance(value, Reason)


class InstrumentTexts:
    """An instrument's grid at the FIX edge, memoised both ways: ``price[ticks]`` and ``qty[lots]`` are FIX text;
    ``ticks_of[text]`` and ``lots_of[text]`` are a client's price and quantity in ticks and lots, or the
    :class:`~engine.types.Reason` the value is refused for (not a number, not positive, off the grid)."""

    __slots__ = ("fee", "fee_asset", "instrument", "lots_of", "price", "qty", "ticks_of")

    def __init__(self, instrument: Instrument, fee: FeeText | None = None) -> None:
        self.instrument = instrument
        self.price: dict[int, str] = _Memo(instrument.price_str)
        self.qty: dict[int, str] = _Memo(instrument.qty_str)
        self.ticks_of: dict[str, int | Reason] = _GridMemo(self._ticks)
        self.lots_of: dict[str, int | Reason] = _GridMemo(self._lots)
        # A fill's fee (quote-asset units) as decimal text, and that asset; None: the venue keeps no ledger
        self.fee: dict[int, str] | None = None
        self.fee_asset = ""
        if fee is not None:
            self.fee_asset, text = fee
            self.fee = _Memo(text)

    def avg_price(self, notional: int, cum: int) -> str:
        """AvgPx (6): the memoised price text when the fills average to a whole tick (always for a single fill)."""
        if cum and notional % cum == 0:
            return self.price[notional // cum]
        return self.instrument.avg_price_str(notional, cum)

    def _lots(self, text: str) -> int | Reason:
        return _grid_units(text, self.instrument.qty_to_lots, Reason.INVALID_QUANTITY, Reason.QUANTITY_OFF_LOT)

    def _ticks(self, text: str) -> int | Reason:
        return _grid_units(text, self.instrument.price_to_ticks, Reason.INVALID_PRICE, Reason.PRICE_OFF_TICK)


def _grid_units(
    text: str, to_units: Callable[[Decimal], int | None], not_positive: Reason, off_grid: Reason
) -> int | Reason:
    """A client's decimal text in whole grid units (ticks or lots), or why not."""
    value = parse_decimal(text)
    if value is None or value <= _ZERO:
        return not_positive
    units = to_units(value)
    return off_grid if units is None else units


def fields_of(msg: fix.Message) -> dict[str, str]:
    """Every field of ``msg`` as {tag: value} (last one wins), and the Parties block's text under :data:`PARTIES`
    when there is one: it is the only group the order path uses.

    One ``toString()`` and a split cost ~4 us; eight raw ``getField`` calls ~13 us, through the SWIG wrapper ~50.
    When no value contains "=" (one "=" per field), tags and values alternate in one split: half the cost of
    splitting each field.
    """
    text = _qf.Message_toString(msg)
    if text.count("=") == text.count(SOH):
        tags_and_values = iter(text.replace("=", SOH).split(SOH))  # ends with the "" after the last SOH
        fields = dict(zip(tags_and_values, tags_and_values))  # noqa: B905 (pairs; the odd "" is dropped)
    else:
        fields = dict(pair.split("=", 1) for pair in text.split(SOH)[:-1])
    if "453" in fields:
        fields[PARTIES] = parties_text(text)
    return fields


class GroupedText(str):
    """An ExecutionReport's FIX text that carries a repeating group (Parties). Text without a group is parsed for
    sending without the dictionary, the cheapest way; QuickFIX then writes fields in tag order, which would tear a
    group apart (QuickFIX notes, pitfall 7). This type tells the sender to parse with the dictionary instead."""

    __slots__ = ()


def _need(f: dict[str, str], tag: int) -> str:
    """A field the order path cannot do without; its absence becomes BusinessMessageReject 380=5."""
    value = f.get(str(tag))
    if value is None:
        raise fix.FieldNotFound(tag)
    return value


def _order_id(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


def read_side(f: dict[str, str]) -> Side | Literal[Reason.UNSUPPORTED_SIDE]:
    """Side (54) of an order-entry message, or :attr:`Reason.UNSUPPORTED_SIDE` for a value the venue does not trade
    (sell short, cross...) or none at all. D, F, G, H and q all read it here, so an unsupported side is refused
    everywhere and never taken for another."""
    return _SIDES.get(f.get("54", ""), _UNSUPPORTED_SIDE)


def _refused(owner: str, clordid: str, orig: str | None, is_replace: bool, reason: Reason, ts: int) -> CancelReject:
    """The OrderCancelReject for a cancel or replace refused before the order is looked up (37=NONE, 39=8)."""
    return CancelReject(
        seq=0, owner=owner, clordid=clordid, orig_clordid=orig, order=None, is_replace=is_replace, reason=reason, ts=ts
    )


FeeText = tuple[str, Callable[[int], str]]
"""An instrument's fee asset (its quote asset) and how an amount of it in units is written (decimal text)."""

Echo = dict[str, str]
"""The client's own fields ({tag: text}) that a reject must echo even if they could not be converted: OrderQty (38),
Price (44), Side (54), OrdType (40), TimeInForce (59, default "0") and Symbol (55). For a new order it is the
order's own field dict, so accepting an order builds nothing extra."""


class OrderTranslator:
    """Parses order-entry messages into commands and renders order events as FIX messages."""

    def __init__(self, instruments: dict[str, Instrument], fees: dict[str, FeeText] | None = None) -> None:
        self.instruments = instruments
        fees = fees or {}
        self.texts = {symbol: InstrumentTexts(ins, fees.get(symbol)) for symbol, ins in instruments.items()}
        self.check_parties = PartiesCheck()

    # ---------------------------------------------------------------- inbound

    def new_order(self, f: dict[str, str], owner: str, accounts: frozenset[str], ts: int) -> tuple[NewOrder, Echo]:
        get = f.get
        symbol, qty_text = get("55"), get("38")
        if symbol is None or qty_text is None:  # -> BusinessMessageReject 380=5 naming the field
            raise fix.FieldNotFound(SYMBOL if symbol is None else ORDER_QTY)
        account = get("1") or (min(accounts) if len(accounts) == 1 else "")
        side = read_side(f)
        ord_type = _ORD_TYPES.get(f["40"])
        tif = _TIFS.get(get("59", _DAY))
        exec_inst = get("18")
        post_only = exec_inst is not None and POST_ONLY in exec_inst.split()
        reject: Reason | None = None
        if side is _UNSUPPORTED_SIDE:  # "is", not isinstance (~0.1 us on an Enum)
            reject, side = _UNSUPPORTED_SIDE, Side.BUY  # a placeholder: the reject echoes the client's Side
        elif ord_type is None:
            reject = Reason.UNSUPPORTED_ORDER_TYPE
        elif tif is None:
            reject = Reason.UNSUPPORTED_TIME_IN_FORCE
        elif exec_inst is not None and exec_inst.split() != [POST_ONLY]:
            reject = Reason.UNSUPPORTED_EXEC_INST
        elif account not in accounts:
            reject = Reason.UNKNOWN_ACCOUNT
        lots, ticks = 0, None
        grid = self.texts.get(symbol)
        if reject is None and grid is not None:
            lots, ticks, reject = self._convert(grid, qty_text, get("44"))
        parties = f.get(PARTIES)
        cmd = NewOrder(
            owner, f["11"], account, symbol, side, ord_type or OrdType.LIMIT, tif or TimeInForce.DAY,
            ticks, lots, post_only, ts, reject, "" if parties is None else self.check_parties(parties),
        )  # fmt: skip
        return cmd, f

    @staticmethod
    def _convert(grid: InstrumentTexts, qty_text: str, price_text: str | None) -> tuple[int, int | None, Reason | None]:
        """The client's quantity and price as lots and ticks, or the reason they are refused (memoised by text)."""
        lots = grid.lots_of[qty_text]
        if isinstance(lots, Reason):
            return 0, None, lots
        if price_text is None:
            return lots, None, None
        ticks = grid.ticks_of[price_text]
        if isinstance(ticks, Reason):
            return lots, None, ticks
        return lots, ticks, None

    def cancel(self, f: dict[str, str], owner: str, ts: int) -> CancelOrder | CancelReject:
        """The cancel command, or the reject to send straight back for an unsupported Side."""
        clordid, orig = f["11"], f.get("41")
        side = read_side(f)
        if isinstance(side, Reason):
            return _refused(owner, clordid, orig, False, side, ts)
        return CancelOrder(owner, clordid, orig, _order_id(f.get("37")), ts)

    def replace(self, f: dict[str, str], owner: str, ts: int) -> ReplaceOrder | CancelReject:
        """The replace command, or the reject to send straight back for an unsupported Side, an unlisted symbol or a
        price or quantity off the grid. A supported side other than the order's is the engine's to refuse."""
        clordid, orig = f["11"], f.get("41")
        symbol, qty_text = _need(f, SYMBOL), _need(f, ORDER_QTY)
        side = read_side(f)
        if isinstance(side, Reason):
            return _refused(owner, clordid, orig, True, side, ts)
        grid = self.texts.get(symbol)
        if grid is None:
            return _refused(owner, clordid, orig, True, Reason.UNKNOWN_SYMBOL, ts)
        lots, ticks, reason = self._convert(grid, qty_text, f.get("44"))
        if reason is not None:
            return _refused(owner, clordid, orig, True, reason, ts)
        return ReplaceOrder(owner, clordid, orig, _order_id(f.get("37")), symbol, side, ticks, lots, ts)

    def status(self, f: dict[str, str], owner: str, ts: int) -> tuple[QueryOrder, Echo]:
        """The query, and what to echo if the order is not there (the request's Symbol and Side). An unsupported
        Side is answered like an unknown order, with its own reason."""
        side = read_side(f)
        reject = side if isinstance(side, Reason) else None
        echo = {**_UNKNOWN_ORDER_ECHO, "54": f.get("54", _SIDE_TEXT[Side.BUY])}
        if "55" in f:
            echo["55"] = f["55"]
        return QueryOrder(owner, f.get("11"), _order_id(f.get("37")), ts, reject), echo

    def mass_cancel(self, f: dict[str, str], owner: str, ts: int) -> MassCancel | MassCancelReport:
        """The mass cancel, or the report refusing it (a request type the venue does not carry out, an unknown
        symbol, an unsupported side): then nothing is cancelled."""
        clordid, req_type, symbol = f["11"], f["530"], f.get("55")
        side = read_side(f) if "54" in f else None  # optional here: no Side, both sides
        refused: Reason | None = None
        if req_type == _BY_SYMBOL:
            if symbol is None or symbol not in self.instruments:
                refused = Reason.UNKNOWN_SYMBOL
        elif req_type != _ALL_ORDERS:
            refused = Reason.UNSUPPORTED_MASS_CANCEL_TYPE
        if isinstance(side, Reason):
            refused, side = refused or side, None
        if refused is not None:
            return MassCancelReport(
                seq=0, owner=owner, clordid=clordid, symbol=symbol, side=side, cancelled=0, reason=Reason.MASS_CANCEL,
                ts=ts, rejected=refused,
            )  # fmt: skip
        return MassCancel(
            owner=owner, clordid=clordid, symbol=symbol if req_type == _BY_SYMBOL else None, side=side,
            day_only=False, reason=Reason.MASS_CANCEL, ts=ts,
        )  # fmt: skip

    # ---------------------------------------------------------------- outbound

    def execution_report(self, ex: Execution, echo: Echo | None = None) -> str:
        """The ExecutionReport (8) for ``ex`` as FIX text (BodyLength and CheckSum are filled in when it is sent);
        ``echo`` supplies the client's strings for a new-order reject.

        Text, handed to QuickFIX as one string (~4 us), rather than ~20 ``setField`` calls (~30 us); enumerations
        and prices come from tables (a formatted Enum costs ~0.4 us, a price ~1.4 us).
        """
        order = ex.order
        texts = self.texts.get(order.symbol)
        side: str
        ord_type: str
        tif: str
        if echo is not None and not order.order_id:  # the reject of this order: say what the client sent
            side, ord_type, tif = echo["54"], echo["40"], echo.get("59", _DAY)
        else:
            echo = None  # the other reports of the command (maker fills...) are about orders that exist
            side, ord_type, tif = _SIDE_TEXT[order.side], _ORD_TYPE_TEXT[order.ord_type], _TIF_TEXT[order.tif]
        exec_type = ex.exec_type
        p = [
            f"8=FIX.4.4\x019=0\x0135=8\x0137={order.order_id or 'NONE'}\x0111={ex.clordid}\x01"
            f"17={ex.seq}\x01150={_EXEC_TYPE_TEXT[exec_type]}\x0139={_ORD_STATUS_TEXT[ex.status]}\x01"
            f"54={side}\x0140={ord_type}\x0159={tif}\x01"
        ]
        if ex.orig_clordid is not None:
            p.append(f"41={ex.orig_clordid}\x01")
        if order.account:
            p.append(f"1={order.account}\x01")
        symbol = order.symbol or (echo.get("55") if echo is not None else None)
        if symbol:
            p.append(f"55={symbol}\x01")
        if order.post_only:
            p.append(_POST_ONLY_FIELD)
        if texts is not None and order.order_id:
            lots, ticks = texts.qty, texts.price
            p.append(f"38={lots[ex.qty]}\x01151={lots[ex.leaves]}\x0114={lots[ex.cum]}\x01")
            p.append(f"6={texts.avg_price(ex.notional, ex.cum)}\x01")
            if ex.price is not None:
                p.append(f"44={ticks[ex.price]}\x01")
            if exec_type is _TRADE:
                p.append(f"32={lots[ex.last_qty]}\x0131={ticks[ex.last_px]}\x01527={ex.trade_id}\x01")
                if ex.reason is None:  # an auction's fill (reason AUCTION_FILL) neither added nor removed liquidity
                    p.append(_TAKER_FIELD if ex.aggressor else _MAKER_FIELD)
                if texts.fee is not None:  # the fee of this fill, in the quote asset (negative: a rebate)
                    p.append(f"12={texts.fee[ex.fee]}\x0113={_ABSOLUTE}\x01479={texts.fee_asset}\x01")
        else:  # reject of an order that never existed: echo what the client sent
            if echo is not None:
                p.append(f"38={echo['38']}\x01")
                if "44" in echo:
                    p.append(f"44={echo['44']}\x01")
            elif texts is not None and ex.qty:
                p.append(f"38={texts.qty[ex.qty]}\x01")
            p.append("151=0\x0114=0\x016=0\x01")
        if ex.reason is not None:
            if exec_type is _REJECTED or not order.order_id:
                p.append(f"103={_ORD_REJ_TEXT[ex.reason]}\x01")
            p.append(f"58={ex.reason.text}\x01")
        if order.parties:  # every report about the order carries the Parties block it was entered with
            p.append(f"{order.parties}60={format_utc(ex.ts)}\x0110=000\x01")
            return GroupedText("".join(p))
        p.append(f"60={format_utc(ex.ts)}\x0110=000\x01")
        return "".join(p)

    def cancel_reject(self, rej: CancelReject) -> fix.Message:
        msg = fix.Message()
        msg.getHeader().setField(MSG_TYPE, "9")
        order = rej.order
        msg.setField(ORDER_ID, str(order.order_id) if order is not None and order.order_id else "NONE")
        msg.setField(CL_ORD_ID, rej.clordid)
        msg.setField(ORIG_CL_ORD_ID, rej.orig_clordid or "NONE")
        msg.setField(ORD_STATUS, (order.status if order is not None else OrdStatus.REJECTED).value)
        response_to = (
            CxlRejResponseTo.ORDER_CANCEL_REPLACE_REQUEST if rej.is_replace else CxlRejResponseTo.ORDER_CANCEL_REQUEST
        )
        msg.setField(CXL_REJ_RESPONSE_TO, response_to.value)
        msg.setField(CXL_REJ_REASON, _CXL_REJ_TEXT[rej.reason])
        msg.setField(TEXT, rej.reason.text)
        msg.setField(TRANSACT_TIME, format_utc(rej.ts))
        return msg

    def mass_cancel_report(self, rep: MassCancelReport, request_type: str) -> fix.Message:
        msg = fix.Message()
        msg.getHeader().setField(MSG_TYPE, "r")
        msg.setField(CL_ORD_ID, rep.clordid)
        msg.setField(ORDER_ID, str(rep.seq) if rep.seq else "NONE")
        msg.setField(MASS_CANCEL_REQUEST_TYPE, request_type)
        if rep.rejected is not None:
            msg.setField(MASS_CANCEL_RESPONSE, MassCancelResponse.CANCEL_REQUEST_REJECTED.value)
            msg.setField(MASS_CANCEL_REJECT_REASON, _MASS_REJ_TEXT[rep.rejected])
            msg.setField(TEXT, rep.rejected.text)
        else:
            msg.setField(MASS_CANCEL_RESPONSE, MassCancelResponse(request_type).value)  # accepted: the request's type
            msg.setField(TOTAL_AFFECTED_ORDERS, str(rep.cancelled))
            msg.setField(TEXT, rep.reason.text)
        if rep.symbol:
            msg.setField(SYMBOL, rep.symbol)
        if rep.side is not None:
            msg.setField(SIDE, str(rep.side.value))
        msg.setField(TRANSACT_TIME, format_utc(rep.ts))
        return msg


CommandFactory = Callable[[fix.Message, str, int], Command]
