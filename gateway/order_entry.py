"""Order entry: the requests of order-entry sessions in, the replies they cause out.

One job: turn a request's fields into an engine command (:class:`~gateway.orders.OrderTranslator`), run it through
the gateway's one entry into the engine, and turn the events into replies to the sessions that own the orders
(ExecutionReport 8, OrderCancelReject 9, OrderMassCancelReport r), audit lines and metrics
(:class:`~gateway.order_recorder.OrderRecorder`) and market-data events. Nothing here sends: everything goes to the
:class:`Outbox`, which the gateway loop hands to QuickFIX at the end of the turn (after the group commit).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine import (
    CancelReject,
    Command,
    Event,
    Execution,
    MassCancel,
    MassCancelReport,
    PositionsReport,
    QueryOrder,
    Reason,
)  # fmt: skip
from engine.events import BookUpdate, Imbalance, Indicative, PhaseChange, StatUpdate, TradePrint, TradingDayChange
from gateway.order_recorder import OrderRecorder
from gateway.orders import Echo, OrderTranslator
from gateway.positions import CUSTOMER, PositionFormatter, positions_request

if TYPE_CHECKING:
    from gateway.server import SessionState

_MD_EVENTS = (BookUpdate, TradePrint, StatUpdate, Indicative, Imbalance)
_STATUS_EVENTS = (PhaseChange, TradingDayChange)
ON_DISCONNECT = ""  # complete()'s request_type for cancel-on-disconnect: no MassCancelReport is sent


@dataclass(slots=True)
class Outbox:
    """What a loop turn hands over at its end, in the order it was caused."""

    replies: list[tuple[Any, SessionState, str]] = field(default_factory=list)
    """(FIX text or quickfix.Message, session, MsgType)"""
    started: list[float] = field(default_factory=list)
    """``perf_counter()`` at each order request's arrival: observed as order -> report latency when handed over"""
    market_data: list[list[Any]] = field(default_factory=list)
    """each command's market-data events"""


class OrderEntry:
    """The order-entry requests (D, F, G, H, q, and AN with a ledger), cancel-on-disconnect, and the replies their
    events cause."""

    def __init__(
        self,
        translator: OrderTranslator,
        recorder: OrderRecorder,
        apply: Callable[[Command], list[Event]],
        owners: dict[str, SessionState],
        outbox: Outbox,
        accepted: Callable[[str, str], bool],
        positions: PositionFormatter | None = None,
        drop_copies: list[tuple[frozenset[str] | None, SessionState]] | None = None,
    ) -> None:
        self.translator = translator
        self.recorder = recorder
        self.apply = apply  # the gateway's one entry into the engine (journal, engine, metrics)
        self.owners = owners  # CompID -> session: where an order's reports go
        self.outbox = outbox
        self.accepted = accepted  # (owner, ClOrdID) -> the venue has accepted an order or request with that ClOrdID
        self.positions_formatter = positions  # None: the venue keeps no ledger, and AN is not supported
        self.on_status: Callable[[list[Any]], None] | None = None  # phase changes and new days, for the sessions
        # Drop-copy sessions and the accounts each covers (None: every account): each gets a copy of every
        # ExecutionReport and OrderCancelReject of its accounts, in the order the owners get them.
        self.drop_copies = drop_copies or []
        # The accounts of order-entry sessions served by other processes (the multi-process venue's gateways): a
        # cancel reject of an unknown order is copied by its session's accounts.
        self.elsewhere: dict[str, frozenset[str]] = {}
        self.handlers: dict[str, Callable[[dict[str, str], SessionState], None]] = {
            "D": self.new_order,
            "F": self.cancel,
            "G": self.replace,
            "H": self.status,
            "q": self.mass_cancel,
        }
        if positions is not None:
            self.handlers["AN"] = self.positions

    def new_order(self, msg: dict[str, str], state: SessionState) -> None:
        t0 = time.perf_counter()
        if msg.get("97") == "Y" and self.accepted(state.comp_id, msg["11"]):
            # PossResend of an order the venue already has: answered with its status, never executed twice
            self.execute(QueryOrder(state.comp_id, msg["11"], None, time.time_ns()))
        else:
            cmd, echo = self.translator.new_order(msg, state.comp_id, state.accounts, time.time_ns())
            self.execute(cmd, echo)
        self.outbox.started.append(t0)

    def cancel(self, msg: dict[str, str], state: SessionState) -> None:
        t0 = time.perf_counter()
        cmd = self.translator.cancel(msg, state.comp_id, time.time_ns())
        if isinstance(cmd, CancelReject):
            self.dispatch([cmd])
        else:
            self.execute(cmd)
        self.outbox.started.append(t0)

    def replace(self, msg: dict[str, str], state: SessionState) -> None:
        t0 = time.perf_counter()
        cmd = self.translator.replace(msg, state.comp_id, time.time_ns())
        if isinstance(cmd, CancelReject):
            self.dispatch([cmd])
        else:
            self.execute(cmd)
        self.outbox.started.append(t0)

    def status(self, msg: dict[str, str], state: SessionState) -> None:
        query, echo = self.translator.status(msg, state.comp_id, time.time_ns())
        self.execute(query, echo)

    def mass_cancel(self, msg: dict[str, str], state: SessionState) -> None:
        cmd = self.translator.mass_cancel(msg, state.comp_id, time.time_ns())
        request_type = msg["530"]
        if isinstance(cmd, MassCancelReport):
            self.dispatch([cmd], request_type=request_type)
        else:
            self.execute(cmd, request_type=request_type)

    def positions(self, msg: dict[str, str], state: SessionState) -> None:
        """RequestForPositions (AN): the account's balances and positions, or the reason it is refused."""
        query = positions_request(msg, state.comp_id, state.accounts, time.time_ns())
        self.execute(query, account_type=msg.get("581", CUSTOMER))

    def cancel_on_disconnect(self, comp_id: str) -> int:
        """Cancel the session's resting DAY orders; their reports are stored for its next logon. Returns the count."""
        events = self.apply(self.on_disconnect(comp_id))
        report = events[-1]
        self.complete(events, request_type=ON_DISCONNECT)
        return report.cancelled if isinstance(report, MassCancelReport) else 0

    @staticmethod
    def on_disconnect(comp_id: str) -> MassCancel:
        """The command that cancels a session's resting Day orders when it disconnects."""
        return MassCancel(comp_id, "", None, None, True, Reason.CANCEL_ON_DISCONNECT, time.time_ns())

    def execute(
        self, cmd: Command, echo: Echo | None = None, request_type: str | None = None, account_type: str = CUSTOMER
    ) -> None:
        """Run one command and send what it caused. The multi-process venue's gateway (:mod:`roles.gateway`)
        publishes the command instead, and calls :meth:`complete` with the same arguments when its events come back
        from the engine."""
        if request_type is None:  # the common case, without complete()'s call (this is the order path)
            self.dispatch(self.apply(cmd), echo, "7", account_type)
        else:
            self.complete(self.apply(cmd), echo, request_type, account_type)

    def complete(
        self, events: list[Any], echo: Echo | None = None, request_type: str | None = None, account_type: str = CUSTOMER
    ) -> None:
        """One command's events into replies: ``echo`` is the client's fields for a reject (a new order's, a status
        request's), ``request_type`` the MassCancelRequestType of a mass cancel (:data:`ON_DISCONNECT`: a
        cancel-on-disconnect, whose report nobody asked for), ``account_type`` the AccountType of a positions
        request."""
        if request_type is not None:
            if request_type == ON_DISCONNECT:
                events = [e for e in events if type(e) is not MassCancelReport]
                request_type = None
            else:  # the report answers the request; send it before the cancellations it caused
                events.sort(key=lambda e: type(e) is not MassCancelReport)
        self.dispatch(events, echo, request_type or "7", account_type)

    def dispatch(
        self, events: list[Any], echo: Echo | None = None, request_type: str = "7", account_type: str = CUSTOMER
    ) -> None:
        """Turn one command's events into FIX messages to their owners, audit lines and market data."""
        md: list[Any] = []
        news: list[Any] = []
        t = self.translator
        for ev in events:
            if isinstance(ev, Execution):
                report = t.execution_report(ev, echo)
                self._reply(ev.order.owner, "8", report)
                if self.drop_copies:
                    self._copy((ev.order.account,), "8", report)
                self.recorder.execution(ev)
            elif isinstance(ev, _MD_EVENTS):
                md.append(ev)
            elif isinstance(ev, _STATUS_EVENTS):
                md.append(ev)
                news.append(ev)
            elif isinstance(ev, CancelReject):
                reject = t.cancel_reject(ev)
                self._reply(ev.owner, "9", reject)
                if self.drop_copies:  # the order's account; for an unknown order, the requesting session's accounts
                    owner = self.owners.get(ev.owner)
                    accounts = (
                        (ev.order.account,) if ev.order is not None
                        else owner.accounts if owner else self.elsewhere.get(ev.owner, ())
                    )  # fmt: skip
                    self._copy(accounts, "9", reject)
                self.recorder.cancel_reject(ev)
            elif isinstance(ev, MassCancelReport):
                self._reply(ev.owner, "r", t.mass_cancel_report(ev, request_type))
                self.recorder.mass_cancel(ev)
            elif isinstance(ev, PositionsReport) and self.positions_formatter is not None:
                ack, *reports = self.positions_formatter.messages(ev, account_type)
                self._reply(ev.owner, "AO", ack)
                for report in reports:
                    self._reply(ev.owner, "AP", report)
        if md:
            self.outbox.market_data.append(md)
        if news and self.on_status is not None:
            self.on_status(news)

    def _copy(self, accounts: Iterable[str], msg_type: str, msg: Any) -> None:
        for covered, state in self.drop_copies:
            if covered is None or any(a in covered for a in accounts):
                self.outbox.replies.append((msg, state, msg_type))

    def _reply(self, owner: str, msg_type: str, msg: Any) -> None:
        state = self.owners.get(owner)
        if state is not None:
            self.outbox.replies.append((msg, state, msg_type))
