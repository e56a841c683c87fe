"""Enumerations shared by the engine, the FIX edge and the documentation.

Every business outcome the engine can produce is a member of :class:`Reason`; the FIX edge sends its ``text``
verbatim with the code the message's tag gives it (``gateway.fixcodes``), and ``docs/rules-of-engagement.md`` lists
the same table. The enumerations whose values are FIX values carry FIX 4.4's meaning of each value (checked against
the dictionary by ``tests/test_fix_codes.py``).
"""

from __future__ import annotations

from enum import Enum, IntEnum, StrEnum


class Side(IntEnum):
    """Order side; values are FIX Side (54)."""

    BUY = 1
    SELL = 2

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrdType(IntEnum):
    """Order type; values are FIX OrdType (40)."""

    MARKET = 1
    LIMIT = 2


class TimeInForce(IntEnum):
    """Time in force; values are FIX TimeInForce (59)."""

    DAY = 0
    GTC = 1
    IOC = 3
    FOK = 4


class ExecType(StrEnum):
    """What an :class:`~engine.events.Execution` reports; values are FIX ExecType (150).

    A StrEnum formats as its value, so the FIX edge writes ``f"150={ex.exec_type}"`` without a descriptor call.
    """

    NEW = "0"
    CANCELED = "4"
    REPLACED = "5"
    REJECTED = "8"
    EXPIRED = "C"
    TRADE = "F"
    ORDER_STATUS = "I"


class OrdStatus(StrEnum):
    """Order state; values are FIX OrdStatus (39)."""

    NEW = "0"
    PARTIALLY_FILLED = "1"
    FILLED = "2"
    CANCELED = "4"
    REJECTED = "8"
    EXPIRED = "C"


class SelfTradePrevention(str, Enum):
    """What happens when an incoming order would trade with a resting order of the same account."""

    CANCEL_RESTING = "cancel_resting"
    CANCEL_INCOMING = "cancel_incoming"
    CANCEL_BOTH = "cancel_both"


class Phase(StrEnum):
    """An instrument's trading phase (docs/rules-of-engagement.md, section 11).

    ``AUCTION`` lasts only as long as the uncross: an instrument enters continuous trading from any other phase
    through an auction, within one command."""

    CLOSED = "closed"
    PRE_OPEN = "pre_open"
    AUCTION = "auction"
    CONTINUOUS = "continuous"
    HALTED = "halted"


class HaltPolicy(str, Enum):
    """What a halted instrument accepts: cancels only, or no entry at all (cancels refused too)."""

    CANCELS_ONLY = "cancels_only"
    NO_ENTRY = "no_entry"


class PhaseCause(Enum):
    """Why an instrument changed phase: its ``code`` (journal, audit trail) and the ``text`` clients see."""

    SCHEDULE = ("schedule", "trading schedule")
    OPERATOR = ("operator", "market operations")
    CIRCUIT_BREAKER = ("circuit_breaker", "volatility circuit breaker")
    HALT_ENDED = ("halt_ended", "end of the volatility halt")

    def __init__(self, code: str, text: str) -> None:
        self.code = code
        self.text = text


class Reason(Enum):
    """Every reject and cancel reason the venue gives: its ``code`` (in the journal, the audit trail and metrics) and
    the ``text`` sent to the client verbatim.

    What a reason is in FIX (its OrdRejReason 103, CxlRejReason 102 or MassCancelRejectReason 532, which depend on
    the message that carries it) is the FIX edge's business: ``gateway.fixcodes.REJECT_CODES``.
    """

    # New-order rejects (ExecutionReport 150=8)
    UNKNOWN_SYMBOL = ("unknown_symbol", "unknown symbol")
    UNKNOWN_ACCOUNT = ("unknown_account", "unknown account or account not permitted for this session")
    DUPLICATE_CLORDID = ("duplicate_clordid", "duplicate ClOrdID")
    INVALID_QUANTITY = ("invalid_quantity", "order quantity must be positive")
    QUANTITY_OFF_LOT = ("quantity_off_lot", "order quantity is not a multiple of the lot size")
    QUANTITY_BELOW_MIN = ("quantity_below_min", "order quantity below the minimum")
    QUANTITY_ABOVE_MAX = ("quantity_above_max", "order quantity above the maximum order size")
    MISSING_PRICE = ("missing_price", "limit order requires a price")
    INVALID_PRICE = ("invalid_price", "price must be positive")
    PRICE_OFF_TICK = ("price_off_tick", "price is not a multiple of the tick size")
    PRICE_OUTSIDE_BAND = ("price_outside_band", "price outside the instrument's price band")
    PRICE_ON_MARKET = ("price_on_market", "market order must not carry a price")
    UNSUPPORTED_ORDER_TYPE = ("unsupported_order_type", "unsupported order type")
    UNSUPPORTED_TIME_IN_FORCE = ("unsupported_time_in_force", "unsupported time in force")
    UNSUPPORTED_SIDE = ("unsupported_side", "unsupported side")
    UNSUPPORTED_EXEC_INST = ("unsupported_exec_inst", "unsupported ExecInst: only 6 (post-only) is accepted")
    POST_ONLY_NOT_LIMIT = ("post_only_not_limit", "post-only requires a DAY or GTC limit order")
    POST_ONLY_WOULD_TAKE = ("post_only_would_take", "post-only order would take liquidity")
    # Cancel / replace rejects (OrderCancelReject 9)
    UNKNOWN_ORDER = ("unknown_order", "unknown order")
    NOT_OWNER = ("not_owner", "unknown order for this session")
    ORDER_DONE = ("order_done", "too late: order already filled, cancelled or expired")
    DUPLICATE_CLORDID_CXL = ("duplicate_clordid_cxl", "duplicate ClOrdID")
    REPLACE_BELOW_FILLED = ("replace_below_filled", "replace quantity at or below the filled quantity")
    REPLACE_CHANGES_IDENTITY = ("replace_changes_identity", "replace may not change symbol or side")
    # Mass-cancel rejects (OrderMassCancelReport 531=0)
    UNSUPPORTED_MASS_CANCEL_TYPE = ("unsupported_mass_cancel_type", "unsupported MassCancelRequestType")
    # Cancel and expiry reasons (Text on ExecType 4 / C)
    CLIENT_REQUEST = ("client_request", "cancelled at client request")
    MASS_CANCEL = ("mass_cancel", "cancelled by mass cancel")
    CANCEL_ON_DISCONNECT = ("cancel_on_disconnect", "cancelled on disconnect")
    SELF_TRADE = ("self_trade", "cancelled by self-trade prevention")
    IOC_REMAINDER = ("ioc_remainder", "unfilled quantity of immediate-or-cancel order expired")
    MARKET_REMAINDER = ("market_remainder", "unfilled quantity of market order expired: no more liquidity")
    FOK_NOT_FILLED = ("fok_not_filled", "fill-or-kill order could not be filled completely")
    END_OF_DAY = ("end_of_day", "day order expired at end of trading day")
    KILL_SWITCH = ("kill_switch", "cancelled by the kill switch")
    # Trading phases and price protection (new orders: ExecutionReport 150=8; cancels and replaces: OrderCancelReject)
    INSTRUMENT_CLOSED = ("instrument_closed", "instrument closed: orders are accepted from pre-open")
    HALTED_CANCELS_ONLY = ("halted_cancels_only", "instrument halted: only cancels are accepted")
    HALTED_NO_ENTRY = ("halted_no_entry", "instrument halted: no orders or cancels are accepted")
    PRE_OPEN_IMMEDIATE = (
        "pre_open_immediate",
        "pre-open: immediate-or-cancel and fill-or-kill orders are accepted from continuous trading",
    )
    PRICE_OUTSIDE_DYNAMIC_BAND = (
        "price_outside_dynamic_band",
        "price outside the dynamic price band around the reference price",
    )
    REPLACE_MARKET_ORDER = ("replace_market_order", "a market order cannot be replaced")
    # Fills, cancels and expiries of the phases and price protection (Text on ExecType F / 4 / C)
    AUCTION_FILL = ("auction_fill", "filled in the auction")
    AUCTION_MARKET_REMAINDER = (
        "auction_market_remainder",
        "unfilled quantity of market order expired after the auction",
    )
    MARKET_BAND_REMAINDER = (
        "market_band_remainder",
        "unfilled quantity of market order cancelled: the next price is outside the dynamic price band",
    )
    BREAKER_REMAINDER = (
        "breaker_remainder",
        "unfilled quantity cancelled: trading halted by the volatility circuit breaker",
    )
    HALT_CANCEL = ("halt_cancel", "cancelled: trading halted")
    # Pre-trade risk (new orders: ExecutionReport 150=8; replaces: OrderCancelReject), in the order they are checked
    ACCOUNT_KILLED = ("account_killed", "account or session disabled by the kill switch")
    RISK_ORDER_QTY = ("risk_order_qty", "order quantity above the account's limit")
    RISK_ORDER_NOTIONAL = ("risk_order_notional", "order notional above the account's limit")
    RISK_OPEN_ORDERS = ("risk_open_orders", "too many open orders for the account in this instrument")
    RISK_POSITION = ("risk_position", "order would take the account's position beyond its limit")
    INSUFFICIENT_FUNDS = ("insufficient_funds", "insufficient funds")
    # RequestForPositions refused (RequestForPositionsAck 728)
    POSITIONS_UNSUPPORTED = (
        "positions_unsupported",
        "only snapshot requests for positions are supported: PosReqType 0, SubscriptionRequestType 0 or absent",
    )
    # Operator actions refused (answered on the operator channel, not over FIX)
    UNKNOWN_ASSET = ("unknown_asset", "unknown asset")
    INVALID_AMOUNT = ("invalid_amount", "amount must not be zero")
    DUPLICATE_FUNDING_ID = ("duplicate_funding_id", "funding id already applied")
    AMOUNT_OUT_OF_RANGE = (
        "amount_out_of_range",
        "deposit refused: the asset's total on the venue would exceed 9223372036854775807 units",
    )
    PHASE_NOT_ALLOWED = ("phase_not_allowed", "not possible in the instrument's current phase")

    def __init__(self, code: str, text: str) -> None:
        self.code = code
        self.text = text
