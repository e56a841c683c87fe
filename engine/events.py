"""Events: the engine's only output.

Order events (:class:`Execution`, :class:`CancelReject`, :class:`MassCancelReport`) go to the owner of the order as
ExecutionReports, OrderCancelRejects and OrderMassCancelReports. Market-data events (:class:`BookUpdate`,
:class:`TradePrint`, :class:`StatUpdate`) carry the instrument's ``rpt_seq``, which rises by exactly one per event.

``seq`` on order events is a venue-wide counter that never repeats; the gateway uses it as ExecID. An
:class:`Execution` copies the order's mutable figures at the moment of the event, so a consumer that reads it after
the whole command ran still sees the state the event describes; the static fields are read from ``order``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from engine.order import Order
from engine.types import ExecType, OrdStatus, Phase, PhaseCause, Reason, Side


@dataclass(slots=True)
class Execution:
    """One ExecutionReport's worth: ``exec_type`` says what happened to ``order``."""

    seq: int
    exec_type: ExecType
    order: Order
    clordid: str
    orig_clordid: str | None
    status: OrdStatus
    price: int | None
    qty: int
    leaves: int
    cum: int
    notional: int
    ts: int
    last_qty: int = 0
    last_px: int = 0
    trade_id: int = 0
    aggressor: bool = False
    reason: Reason | None = None
    fee: int = 0
    """On a fill: the fee this order paid for it, in quote-asset units (negative: a rebate)."""


@dataclass(slots=True)
class CancelReject:
    """A cancel (``is_replace`` False) or cancel/replace (True) that was refused; ``order`` is None if unknown."""

    seq: int
    owner: str
    clordid: str
    orig_clordid: str | None
    order: Order | None
    is_replace: bool
    reason: Reason
    ts: int


@dataclass(slots=True)
class MassCancelReport:
    """Answer to a :class:`~engine.commands.MassCancel`: how many orders it cancelled (``reason`` says why they
    were), or, with ``rejected`` set, why the request was refused (then nothing was cancelled)."""

    seq: int
    owner: str
    clordid: str
    symbol: str | None
    side: Side | None
    cancelled: int
    reason: Reason
    ts: int
    rejected: Reason | None = None


@dataclass(slots=True)
class BookUpdate:
    """A price level's new aggregate: total quantity and order count; ``qty == 0`` means the level is gone."""

    symbol: str
    side: Side
    price: int
    qty: int
    count: int
    rpt_seq: int


@dataclass(slots=True)
class TradePrint:
    """A trade for the public tape, at the resting order's price (an auction's trades: at the auction price, and
    without an aggressor)."""

    symbol: str
    trade_id: int
    price: int
    qty: int
    aggressor: Side | None
    rpt_seq: int
    ts: int


@dataclass(slots=True)
class PhaseChange:
    """An instrument entered ``phase`` (from ``previous``) because of ``cause``; ``halt_until`` (ns) is when a
    circuit-breaker halt ends."""

    symbol: str
    phase: Phase
    previous: Phase
    cause: PhaseCause
    rpt_seq: int
    ts: int
    halt_until: int | None = None


@dataclass(slots=True)
class Indicative:
    """Outside continuous trading: the price the book would uncross at now and the quantity it would execute
    (``price`` None: nothing would execute)."""

    symbol: str
    price: int | None
    qty: int
    rpt_seq: int


@dataclass(slots=True)
class Imbalance:
    """Outside continuous trading: at the indicative price, buy quantity minus sell quantity that could execute
    there (positive: more buyers; 0: none)."""

    symbol: str
    qty: int
    rpt_seq: int


@dataclass(slots=True)
class TradingDayChange:
    """The trading date became ``trading_date`` (``previous`` None: the venue's first day)."""

    trading_date: str
    previous: str | None
    ts: int


class Stat(str, Enum):
    """Session statistics; values are FIX MDEntryType (269)."""

    OPEN = "4"
    HIGH = "7"
    LOW = "8"
    VOLUME = "B"


@dataclass(slots=True)
class StatUpdate:
    """A session statistic's new value (price in ticks; volume in lots)."""

    symbol: str
    stat: Stat
    value: int | None  # None: reset (no value until the next trade)
    rpt_seq: int


@dataclass(slots=True)
class OperatorResult:
    """The outcome of an operator command: applied, or refused with ``reason``."""

    seq: int
    request_id: str
    action: str
    applied: bool
    reason: Reason | None
    ts: int
    cancelled: int = 0  # orders a kill cancelled


@dataclass(slots=True)
class Balance:
    """One asset of an account, in the asset's units."""

    asset: str
    available: int
    held: int


@dataclass(slots=True)
class PositionView:
    """One instrument position of an account: ``net`` lots, cost basis and PnL in quote units, ``mark`` the last
    trade price in ticks (None before the instrument's first trade)."""

    symbol: str
    net: int
    cost: int
    realized: int
    fees: int
    mark: int | None


@dataclass(slots=True)
class PositionsReport:
    """Answer to :class:`~engine.commands.QueryPositions`; ``seq`` numbers the answer, ``reason`` refuses it."""

    seq: int
    owner: str
    req_id: str
    account: str
    balances: list[Balance]
    positions: list[PositionView]
    reason: Reason | None
    ts: int


Event = (
    Execution
    | CancelReject
    | MassCancelReport
    | BookUpdate
    | TradePrint
    | StatUpdate
    | OperatorResult
    | PositionsReport
    | PhaseChange
    | Indicative
    | Imbalance
    | TradingDayChange
)
MarketDataEvent = BookUpdate | TradePrint | StatUpdate | PhaseChange | Indicative | Imbalance
