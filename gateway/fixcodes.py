"""The FIX 4.4 enumeration values the venue sends, by their standard names, and how each Reason is told in FIX.

Each class lists the values of one tag that the venue uses, every member named exactly as the FIX 4.4 dictionary
names that value (the ``description`` in QuickFIX's ``FIX44.xml``), so that a code can only be used with its
standard meaning: ``tests/test_fix_codes.py`` checks every member against ``fix_specs/FIX44-venue.xml`` and the
stock dictionary, together with the engine's enumerations whose values are FIX values (Side, OrdType, TimeInForce,
ExecType, OrdStatus). The venue sends no custom value of a standard tag. Codes are written from these tables, never
as literals.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum, unique

from engine.types import Phase, Reason


@unique
class OrdRejReason(IntEnum):
    """OrdRejReason (103): on ExecutionReport ``150=8`` and on the status answer (``150=I``) for an unknown order."""

    BROKER_CREDIT = 0  # "Broker / Exchange option": the kill switch
    UNKNOWN_SYMBOL = 1
    EXCHANGE_CLOSED = 2  # the instrument is closed or halted (the Text names the phase)
    ORDER_EXCEEDS_LIMIT = 3  # pre-trade risk: a limit or the funds
    UNKNOWN_ORDER = 5
    DUPLICATE_ORDER = 6
    UNSUPPORTED_ORDER_CHARACTERISTIC = 11
    INCORRECT_QUANTITY = 13
    UNKNOWN_ACCOUNT = 15
    OTHER = 99


@unique
class CxlRejReason(IntEnum):
    """CxlRejReason (102) on OrderCancelReject (9)."""

    TOO_LATE_TO_CANCEL = 0
    UNKNOWN_ORDER = 1
    BROKER_CREDIT = 2  # "Broker / Exchange option": a replace refused by pre-trade risk
    DUPLICATE_CL_ORD_ID = 6
    OTHER = 99


@unique
class CxlRejResponseTo(StrEnum):
    """CxlRejResponseTo (434) on OrderCancelReject (9)."""

    ORDER_CANCEL_REQUEST = "1"
    ORDER_CANCEL_REPLACE_REQUEST = "2"  # QuickFIX's dictionary shortens it to ORDER_CANCEL


@unique
class MassCancelRequestType(StrEnum):
    """MassCancelRequestType (530): the values the venue carries out; the others are refused."""

    CANCEL_ORDERS_FOR_A_SECURITY = "1"
    CANCEL_ALL_ORDERS = "7"


@unique
class MassCancelResponse(StrEnum):
    """MassCancelResponse (531): the request's type when accepted."""

    CANCEL_REQUEST_REJECTED = "0"
    CANCEL_ORDERS_FOR_A_SECURITY = "1"
    CANCEL_ALL_ORDERS = "7"


@unique
class MassCancelRejectReason(StrEnum):
    """MassCancelRejectReason (532) on a refused OrderMassCancelReport (``531=0``); a STRING field in FIX 4.4."""

    MASS_CANCEL_NOT_SUPPORTED = "0"
    INVALID_OR_UNKNOWN_SECURITY = "1"
    OTHER = "99"


@unique
class ExecInst(StrEnum):
    """ExecInst (18): the one instruction the venue supports, post-only."""

    PARTICIPATE_DO_NOT_INITIATE = "6"


@unique
class LastLiquidityInd(StrEnum):
    """LastLiquidityInd (851) on a fill: the maker added liquidity, the taker removed it."""

    ADDED_LIQUIDITY = "1"
    REMOVED_LIQUIDITY = "2"


@unique
class CommType(StrEnum):
    """CommType (13) on a fill: the fee (Commission 12, in CommCurrency 479) is an amount, not a rate."""

    ABSOLUTE = "3"


@unique
class PosReqResult(IntEnum):
    """PosReqResult (728) on RequestForPositionsAck (AO) and PositionReport (AP)."""

    VALID_REQUEST = 0
    NO_POSITIONS_FOUND_THAT_MATCH_CRITERIA = 2
    NOT_AUTHORIZED_TO_REQUEST_POSITIONS = 3
    REQUEST_FOR_POSITION_NOT_SUPPORTED = 4


@unique
class PosReqStatus(IntEnum):
    """PosReqStatus (729) on RequestForPositionsAck (AO)."""

    COMPLETED = 0
    REJECTED = 2


@unique
class PosType(StrEnum):
    """PosType (703) in a PositionReport's NoPositions entry: TQ for an instrument, TOT for an asset balance."""

    TRANSACTION_QUANTITY = "TQ"
    TOTAL_TRANSACTION_QTY = "TOT"


@unique
class PosAmtType(StrEnum):
    """PosAmtType (707) in a PositionReport's NoPosAmt entry."""

    FINAL_MARK_TO_MARKET_AMOUNT = "FMTM"  # unrealized PnL at the mark price
    CASH_AMOUNT = "CASH"  # realized PnL (instrument), or the balance (asset)


@unique
class SettlPriceType(IntEnum):
    """SettlPriceType (731): the venue has no settlement cycle; its prices are theoretical (a mark)."""

    THEORETICAL = 2


@unique
class BusinessRejectReason(IntEnum):
    """BusinessRejectReason (380) on BusinessMessageReject (j)."""

    OTHER = 0
    UNSUPPORTED_MESSAGE_TYPE = 3
    CONDITIONALLY_REQUIRED_FIELD_MISSING = 5  # sent by QuickFIX when the order path raises FieldNotFound
    NOT_AUTHORIZED = 6  # an application message on a drop-copy session


@unique
class MDReqRejReason(StrEnum):
    """MDReqRejReason (281) on MarketDataRequestReject (Y)."""

    UNKNOWN_SYMBOL = "0"
    DUPLICATE_MD_REQ_ID = "1"
    UNSUPPORTED_SUBSCRIPTION_REQUEST_TYPE = "4"
    UNSUPPORTED_MARKET_DEPTH = "5"
    UNSUPPORTED_MD_UPDATE_TYPE = "6"
    UNSUPPORTED_MD_ENTRY_TYPE = "8"


@unique
class SecurityTradingStatus(IntEnum):
    """SecurityTradingStatus (326) on SecurityStatus (f) and in the venue's W: an instrument's phase (PHASE_STATUS)."""

    TRADING_HALT = 2
    READY_TO_TRADE = 17  # continuous trading
    NOT_AVAILABLE_FOR_TRADING = 18  # closed
    UNKNOWN_OR_INVALID = 20  # the answer to a SecurityStatusRequest for a symbol the venue does not list
    PRE_OPEN = 21
    OPENING_ROTATION = 22  # the auction


@unique
class TradSesStatus(IntEnum):
    """TradSesStatus (340) on TradingSessionStatus (h): the venue as a whole."""

    HALTED = 1
    OPEN = 2
    CLOSED = 3
    PRE_OPEN = 4


@unique
class UnsolicitedIndicator(StrEnum):
    """UnsolicitedIndicator (325) on f and h: Y when pushed on a change, N when answering a request."""

    YES = "Y"
    NO = "N"


@unique
class OpenCloseSettlFlag(StrEnum):
    """OpenCloseSettlFlag (286) on the indicative auction price entry (MDEntryType 4 Opening price)."""

    THEORETICAL_PRICE_VALUE = "5"


@unique
class TradeCondition(StrEnum):
    """TradeCondition (277) on the imbalance entry (MDEntryType A Imbalance): which side has more."""

    IMBALANCE_MORE_BUYERS = "P"
    IMBALANCE_MORE_SELLERS = "Q"


FIX_TAGS: dict[type, int] = {
    OrdRejReason: 103,
    CxlRejReason: 102,
    CxlRejResponseTo: 434,
    MassCancelRequestType: 530,
    MassCancelResponse: 531,
    MassCancelRejectReason: 532,
    ExecInst: 18,
    LastLiquidityInd: 851,
    BusinessRejectReason: 380,
    MDReqRejReason: 281,
    CommType: 13,
    PosReqResult: 728,
    PosReqStatus: 729,
    PosType: 703,
    PosAmtType: 707,
    SettlPriceType: 731,
    SecurityTradingStatus: 326,
    TradSesStatus: 340,
    UnsolicitedIndicator: 325,
    OpenCloseSettlFlag: 286,
    TradeCondition: 277,
}
"""The tag of each table above."""


@dataclass(frozen=True, slots=True)
class RejectCodes:
    """How one :class:`~engine.types.Reason` is told in each message that can refuse with it (None: never there)."""

    ord_rej: OrdRejReason | None = None
    """ExecutionReport 150=8, and the status answer for an order that is not there"""
    cxl_rej: CxlRejReason | None = None
    """OrderCancelReject (9)"""
    mass_rej: MassCancelRejectReason | None = None
    """OrderMassCancelReport 531=0"""
    pos_rej: PosReqResult | None = None
    """RequestForPositionsAck (AO) 729=2"""


_O, _C, _M, _P = OrdRejReason, CxlRejReason, MassCancelRejectReason, PosReqResult
_NONE = RejectCodes()  # cancel and expiry reasons: Text only
REJECT_CODES: dict[Reason, RejectCodes] = {
    Reason.UNKNOWN_SYMBOL: RejectCodes(_O.UNKNOWN_SYMBOL, _C.OTHER, _M.INVALID_OR_UNKNOWN_SECURITY),
    Reason.UNKNOWN_ACCOUNT: RejectCodes(ord_rej=_O.UNKNOWN_ACCOUNT, pos_rej=_P.NOT_AUTHORIZED_TO_REQUEST_POSITIONS),
    Reason.DUPLICATE_CLORDID: RejectCodes(ord_rej=_O.DUPLICATE_ORDER),
    Reason.INVALID_QUANTITY: RejectCodes(_O.INCORRECT_QUANTITY, _C.OTHER),
    Reason.QUANTITY_OFF_LOT: RejectCodes(_O.INCORRECT_QUANTITY, _C.OTHER),
    Reason.QUANTITY_BELOW_MIN: RejectCodes(_O.INCORRECT_QUANTITY, _C.OTHER),
    Reason.QUANTITY_ABOVE_MAX: RejectCodes(_O.INCORRECT_QUANTITY, _C.OTHER),
    Reason.MISSING_PRICE: RejectCodes(_O.OTHER, _C.OTHER),
    Reason.INVALID_PRICE: RejectCodes(_O.OTHER, _C.OTHER),
    Reason.PRICE_OFF_TICK: RejectCodes(_O.OTHER, _C.OTHER),
    Reason.PRICE_OUTSIDE_BAND: RejectCodes(_O.OTHER, _C.OTHER),
    Reason.PRICE_ON_MARKET: RejectCodes(ord_rej=_O.UNSUPPORTED_ORDER_CHARACTERISTIC),
    Reason.UNSUPPORTED_ORDER_TYPE: RejectCodes(ord_rej=_O.UNSUPPORTED_ORDER_CHARACTERISTIC),
    Reason.UNSUPPORTED_TIME_IN_FORCE: RejectCodes(ord_rej=_O.UNSUPPORTED_ORDER_CHARACTERISTIC),
    Reason.UNSUPPORTED_SIDE: RejectCodes(_O.UNSUPPORTED_ORDER_CHARACTERISTIC, _C.OTHER, _M.OTHER),
    Reason.UNSUPPORTED_EXEC_INST: RejectCodes(ord_rej=_O.UNSUPPORTED_ORDER_CHARACTERISTIC),
    Reason.POST_ONLY_NOT_LIMIT: RejectCodes(ord_rej=_O.UNSUPPORTED_ORDER_CHARACTERISTIC),
    Reason.POST_ONLY_WOULD_TAKE: RejectCodes(_O.OTHER, _C.OTHER),
    Reason.UNKNOWN_ORDER: RejectCodes(_O.UNKNOWN_ORDER, _C.UNKNOWN_ORDER),
    Reason.NOT_OWNER: RejectCodes(_O.UNKNOWN_ORDER, _C.UNKNOWN_ORDER),
    Reason.ORDER_DONE: RejectCodes(cxl_rej=_C.TOO_LATE_TO_CANCEL),
    Reason.DUPLICATE_CLORDID_CXL: RejectCodes(cxl_rej=_C.DUPLICATE_CL_ORD_ID),
    Reason.REPLACE_BELOW_FILLED: RejectCodes(cxl_rej=_C.OTHER),
    Reason.REPLACE_CHANGES_IDENTITY: RejectCodes(cxl_rej=_C.OTHER),
    Reason.UNSUPPORTED_MASS_CANCEL_TYPE: RejectCodes(mass_rej=_M.MASS_CANCEL_NOT_SUPPORTED),
    Reason.CLIENT_REQUEST: _NONE,
    Reason.MASS_CANCEL: _NONE,
    Reason.CANCEL_ON_DISCONNECT: _NONE,
    Reason.SELF_TRADE: _NONE,
    Reason.IOC_REMAINDER: _NONE,
    Reason.MARKET_REMAINDER: _NONE,
    Reason.FOK_NOT_FILLED: _NONE,
    Reason.END_OF_DAY: _NONE,
    Reason.KILL_SWITCH: _NONE,
    Reason.ACCOUNT_KILLED: RejectCodes(ord_rej=_O.BROKER_CREDIT),  # a kill leaves no working order to replace
    Reason.RISK_ORDER_QTY: RejectCodes(_O.ORDER_EXCEEDS_LIMIT, _C.BROKER_CREDIT),
    Reason.RISK_ORDER_NOTIONAL: RejectCodes(_O.ORDER_EXCEEDS_LIMIT, _C.BROKER_CREDIT),
    Reason.RISK_OPEN_ORDERS: RejectCodes(ord_rej=_O.ORDER_EXCEEDS_LIMIT),
    Reason.RISK_POSITION: RejectCodes(_O.ORDER_EXCEEDS_LIMIT, _C.BROKER_CREDIT),
    Reason.INSUFFICIENT_FUNDS: RejectCodes(_O.ORDER_EXCEEDS_LIMIT, _C.BROKER_CREDIT),
    Reason.POSITIONS_UNSUPPORTED: RejectCodes(pos_rej=_P.REQUEST_FOR_POSITION_NOT_SUPPORTED),
    Reason.INSTRUMENT_CLOSED: RejectCodes(_O.EXCHANGE_CLOSED, _C.OTHER),
    Reason.HALTED_CANCELS_ONLY: RejectCodes(_O.EXCHANGE_CLOSED, _C.OTHER),
    Reason.HALTED_NO_ENTRY: RejectCodes(_O.EXCHANGE_CLOSED, _C.OTHER),
    Reason.PRE_OPEN_IMMEDIATE: RejectCodes(ord_rej=_O.OTHER),
    Reason.PRICE_OUTSIDE_DYNAMIC_BAND: RejectCodes(_O.OTHER, _C.OTHER),
    Reason.REPLACE_MARKET_ORDER: RejectCodes(cxl_rej=_C.OTHER),
    Reason.AUCTION_FILL: _NONE,
    Reason.AUCTION_MARKET_REMAINDER: _NONE,
    Reason.MARKET_BAND_REMAINDER: _NONE,
    Reason.BREAKER_REMAINDER: _NONE,
    Reason.HALT_CANCEL: _NONE,
    # Operator refusals: answered on the operator channel, never in a FIX message
    Reason.UNKNOWN_ASSET: _NONE,
    Reason.INVALID_AMOUNT: _NONE,
    Reason.DUPLICATE_FUNDING_ID: _NONE,
    Reason.AMOUNT_OUT_OF_RANGE: _NONE,
    Reason.PHASE_NOT_ALLOWED: _NONE,
}
"""Every Reason, with the code each message gives it; where FIX 4.4 has no specific value the code is OTHER (99)
and the Text is specific."""

PHASE_STATUS: dict[Phase, SecurityTradingStatus] = {
    Phase.CLOSED: SecurityTradingStatus.NOT_AVAILABLE_FOR_TRADING,
    Phase.PRE_OPEN: SecurityTradingStatus.PRE_OPEN,
    Phase.AUCTION: SecurityTradingStatus.OPENING_ROTATION,
    Phase.CONTINUOUS: SecurityTradingStatus.READY_TO_TRADE,
    Phase.HALTED: SecurityTradingStatus.TRADING_HALT,
}
"""How each trading phase is told in SecurityTradingStatus (326)."""
