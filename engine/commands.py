"""Commands: the engine's only input.

Each command carries everything the engine needs, including the time (``ts``, integer nanoseconds since the epoch,
supplied by the caller), so that the same command sequence always yields the same events. Prices are integer ticks,
quantities integer lots. ``owner`` names who may later cancel or query the order (the gateway uses the FIX session's
client CompID); ``account`` is the trading account, used for self-trade prevention.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.types import OrdType, Phase, PhaseCause, Reason, Side, TimeInForce


@dataclass(slots=True)
class NewOrder:
    owner: str
    clordid: str
    account: str
    symbol: str
    side: Side
    ord_type: OrdType
    tif: TimeInForce
    price: int | None
    qty: int
    post_only: bool = False
    ts: int = 0
    edge_reject: Reason | None = None
    """Set by the FIX edge when the order failed a check that needs decimals (tick/lot grid, unsupported
    enumerations): the engine then rejects it with this reason, so every ExecID comes from one sequence."""
    parties: str = ""
    """Who is behind the order (trader, client...) as the edge received it: opaque to the engine, which keeps it
    on the order so that every report about the order can carry it."""


@dataclass(slots=True)
class CancelOrder:
    """Cancel by ``orig_clordid`` (the owner's ClOrdID of the order) or, if given, by venue ``order_id``."""

    owner: str
    clordid: str
    orig_clordid: str | None
    order_id: int | None = None
    ts: int = 0


@dataclass(slots=True)
class ReplaceOrder:
    """Cancel/replace: new total quantity ``qty`` and new ``price``; symbol and side must match the order."""

    owner: str
    clordid: str
    orig_clordid: str | None
    order_id: int | None
    symbol: str
    side: Side
    price: int | None
    qty: int
    ts: int = 0


@dataclass(slots=True)
class MassCancel:
    """Cancel the owner's resting orders, optionally only one symbol and/or side, optionally only DAY orders.

    ``reason`` is :attr:`Reason.MASS_CANCEL` for a client request and :attr:`Reason.CANCEL_ON_DISCONNECT` when the
    gateway applies cancel-on-disconnect (then ``day_only`` is set: GTC orders survive a disconnect).
    """

    owner: str
    clordid: str
    symbol: str | None = None
    side: Side | None = None
    day_only: bool = False
    reason: Reason = Reason.MASS_CANCEL
    ts: int = 0


@dataclass(slots=True)
class QueryOrder:
    """Order status request by the owner's ClOrdID or by venue ``order_id``."""

    owner: str
    clordid: str | None
    order_id: int | None = None
    ts: int = 0
    edge_reject: Reason | None = None
    """Set by the FIX edge when the request carries a value the venue does not support (Side): the engine answers
    as for an unknown order, with this reason, without looking the order up."""


@dataclass(slots=True)
class ExpireDayOrders:
    """End of trading day: every resting DAY order expires."""

    ts: int = 0


@dataclass(slots=True)
class Configure:
    """The venue's money rules (:class:`engine.ledger.LedgerSetup` as a plain dict): journaled at start-up whenever
    the configuration changed them, so that a replay applies each day's rules from the day it came into force."""

    setup: dict[str, Any]
    ts: int = 0


@dataclass(slots=True)
class Fund:
    """Operator: deposit (``amount`` > 0) or withdraw (``amount`` < 0) ``amount`` units of ``asset``. A
    ``funding_id`` already applied is refused, so a repeated request is never applied twice."""

    request_id: str
    account: str
    asset: str
    amount: int
    funding_id: str
    ts: int = 0


@dataclass(slots=True)
class SetLimits:
    """Operator: the pre-trade limits of ``account`` (the venue default if None) in ``symbol``, as
    :meth:`engine.ledger.Limits.to_list` (``None`` entries: no limit)."""

    request_id: str
    account: str | None
    symbol: str
    limits: list[int | None]
    ts: int = 0


@dataclass(slots=True)
class Kill:
    """Operator: kill (``revive`` False) or revive an ``account`` or a session (``owner``). Killing cancels every
    working order of it and refuses its new orders until it is revived."""

    request_id: str
    account: str | None = None
    owner: str | None = None
    revive: bool = False
    ts: int = 0


@dataclass(slots=True)
class QueryPositions:
    """RequestForPositions: ``account``'s balances and positions, answered to ``owner``."""

    owner: str
    req_id: str
    account: str
    ts: int = 0
    edge_reject: Reason | None = None
    """Set by the FIX edge when the request cannot be answered (another session's account, an unsupported kind of
    request): the engine refuses it with this reason, so the answer's id still comes from the engine's sequence."""


@dataclass(slots=True)
class ConfigureTrading:
    """The rules of the phases and each instrument's price protection (:class:`engine.protection.TradingRules` as a
    plain dict): journaled at start-up whenever the configuration changed them, like :class:`Configure`."""

    rules: dict[str, Any]
    ts: int = 0


@dataclass(slots=True)
class SetPhase:
    """Move ``symbol`` (every instrument if None) to ``phase``: from the trading schedule (``cause`` SCHEDULE) or an
    operator (OPERATOR, answered with an :class:`~engine.events.OperatorResult` per instrument). CONTINUOUS is
    reached through an auction. The schedule only moves an instrument forward through its day (closed -> pre-open ->
    continuous -> closed) and never ends a halt but by closing."""

    request_id: str
    symbol: str | None
    phase: Phase
    cause: PhaseCause
    ts: int = 0


@dataclass(slots=True)
class Tick:
    """The time is ``ts``: whatever the engine said was due (:meth:`MatchingEngine.next_due`) happens, e.g. the end
    of a circuit-breaker halt. The engine reads no clock: time reaches it only in commands."""

    ts: int = 0


@dataclass(slots=True)
class EndOfDay:
    """The trading day ends and ``trading_date`` (YYYY-MM-DD) begins: every DAY order and every market order waiting
    for an auction expires, the session statistics reset. The first one only sets the date; one for a date that is
    not after the current one changes nothing (the multi-process venue may publish the same end of day twice)."""

    trading_date: str
    ts: int = 0


@dataclass(slots=True)
class TransferOut:
    """Operator, on the source shard: move ``amount`` (> 0) units of ``asset`` of ``account`` to shard ``to_shard``.
    Debited here at once and pending until :class:`TransferDone`; ``transfer_id`` shares the funding ids'
    namespace, so a repeated request is refused."""

    request_id: str
    transfer_id: str
    account: str
    asset: str
    amount: int
    to_shard: str
    ts: int = 0


@dataclass(slots=True)
class TransferIn:
    """On the target shard: the credit of transfer number ``seq`` from ``from_shard`` (published by the source's
    active engine, again after a fail-over). Applied once; a repeat changes nothing."""

    transfer_id: str
    from_shard: str
    seq: int
    account: str
    asset: str
    amount: int
    ts: int = 0


@dataclass(slots=True)
class TransferDone:
    """On the source shard: the target credited ``transfer_id``; it is no longer pending (a repeat: no-op)."""

    transfer_id: str
    ts: int = 0


OperatorCommand = Configure | Fund | SetLimits | Kill | TransferOut | TransferIn | TransferDone
PhaseCommand = ConfigureTrading | SetPhase | Tick | EndOfDay
Command = (
    NewOrder
    | CancelOrder
    | ReplaceOrder
    | MassCancel
    | QueryOrder
    | ExpireDayOrders
    | OperatorCommand
    | QueryPositions
    | PhaseCommand
)
