"""Enumerations shared by the engine, the FIX edge and the documentation.

Every business outcome the engine can produce is a member of :class:`Reason`; the FIX edge maps it to OrdRejReason
(103) or CxlRejReason (102) and uses its ``text`` verbatim, and ``docs/rules-of-engagement.md`` lists the same table.
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


class Reason(Enum):
    """Every reject and cancel reason the venue gives, with its FIX code and the Text sent to the client.

    ``fix_code`` is OrdRejReason (103) for order rejects, CxlRejReason (102) for cancel/replace rejects; for
    cancels and expiries it is unused (the Text says why). Only values the stock FIX 4.4 dictionary defines are
    used, so that every order-entry message validates in any client engine; where FIX 4.4 has no specific code
    the value is 99 (other) and the Text is specific.
    """

    # New-order rejects (OrdRejReason)
    UNKNOWN_SYMBOL = ("unknown_symbol", 1, "unknown symbol")
    UNKNOWN_ACCOUNT = ("unknown_account", 15, "unknown account or account not permitted for this session")
    DUPLICATE_CLORDID = ("duplicate_clordid", 6, "duplicate ClOrdID")
    INVALID_QUANTITY = ("invalid_quantity", 13, "order quantity must be positive")
    QUANTITY_OFF_LOT = ("quantity_off_lot", 13, "order quantity is not a multiple of the lot size")
    QUANTITY_BELOW_MIN = ("quantity_below_min", 13, "order quantity below the minimum")
    QUANTITY_ABOVE_MAX = ("quantity_above_max", 13, "order quantity above the maximum order size")
    MISSING_PRICE = ("missing_price", 99, "limit order requires a price")
    INVALID_PRICE = ("invalid_price", 99, "price must be positive")
    PRICE_OFF_TICK = ("price_off_tick", 99, "price is not a multiple of the tick size")
    PRICE_OUTSIDE_BAND = ("price_outside_band", 99, "price outside the instrument's price band")
    PRICE_ON_MARKET = ("price_on_market", 11, "market order must not carry a price")
    UNSUPPORTED_ORDER_TYPE = ("unsupported_order_type", 11, "unsupported order type")
    UNSUPPORTED_TIME_IN_FORCE = ("unsupported_time_in_force", 11, "unsupported time in force")
    UNSUPPORTED_SIDE = ("unsupported_side", 11, "unsupported side")
    UNSUPPORTED_EXEC_INST = ("unsupported_exec_inst", 11, "unsupported ExecInst: only 6 (post-only) is accepted")
    POST_ONLY_NOT_LIMIT = ("post_only_not_limit", 11, "post-only requires a DAY or GTC limit order")
    POST_ONLY_WOULD_TAKE = ("post_only_would_take", 99, "post-only order would take liquidity")
    # Cancel / replace rejects (CxlRejReason)
    UNKNOWN_ORDER = ("unknown_order", 1, "unknown order")
    NOT_OWNER = ("not_owner", 1, "unknown order for this session")
    ORDER_DONE = ("order_done", 0, "too late: order already filled, cancelled or expired")
    DUPLICATE_CLORDID_CXL = ("duplicate_clordid_cxl", 6, "duplicate ClOrdID")
    REPLACE_BELOW_FILLED = ("replace_below_filled", 99, "replace quantity at or below the filled quantity")
    REPLACE_CHANGES_IDENTITY = ("replace_changes_identity", 99, "replace may not change symbol or side")
    REPLACE_INVALID = ("replace_invalid", 99, "replace rejected")
    # Cancel and expiry reasons (Text on ExecType 4 / C)
    CLIENT_REQUEST = ("client_request", 0, "cancelled at client request")
    MASS_CANCEL = ("mass_cancel", 0, "cancelled by mass cancel")
    CANCEL_ON_DISCONNECT = ("cancel_on_disconnect", 0, "cancelled on disconnect")
    SELF_TRADE = ("self_trade", 0, "cancelled by self-trade prevention")
    IOC_REMAINDER = ("ioc_remainder", 0, "unfilled quantity of immediate-or-cancel order expired")
    MARKET_REMAINDER = ("market_remainder", 0, "unfilled quantity of market order expired: no more liquidity")
    FOK_NOT_FILLED = ("fok_not_filled", 0, "fill-or-kill order could not be filled completely")
    END_OF_DAY = ("end_of_day", 0, "day order expired at end of trading day")

    def __init__(self, code: str, fix_code: int, text: str) -> None:
        self.code = code
        self.fix_code = fix_code
        self.text = text
