"""The trading day at the gateway: the schedule's timers, the engine's own timers, the end of the day, the operator's
phase actions, and status messages on order-entry sessions.

Every change of phase is an engine command with its time, sent through the gateway's one entry into the engine (so
it is journaled first and recovery restores it exactly): :class:`~engine.commands.SetPhase` from the schedule or an
operator, :class:`~engine.commands.Tick` when the engine says something is due (a circuit-breaker halt ends:
:meth:`~engine.MatchingEngine.next_due`), :class:`~engine.commands.EndOfDay` when the trading date advances, after
which the journal rolls to a new segment with a snapshot. The loop looks every :data:`TIMER` seconds, and does work
only when a schedule boundary or a due time has come: a restart (or a late timer) catches up with what it missed in
order — the day's close, the end of the day, then where the new day's schedule stands now.

Order-entry sessions that are logged on receive every SecurityStatus (f) as the stock FIX 4.4 dictionary has it (no
RptSeq) and the venue's TradingSessionStatus (h) when it changes; they may ask with e and g too.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from engine import (
    Command,
    ConfigureTrading,
    EndOfDay,
    Event,
    MatchingEngine,
    OperatorResult,
    Phase,
    PhaseCause,
    PhaseChange,
    SetPhase,
    TradingDayChange,
)
from feeds import status
from gateway.config import Role, VenueConfig
from gateway.fixcodes import PHASE_STATUS, SecurityTradingStatus
from gateway.operator_desk import Change
from gateway.persistence import Persistence
from gateway.schedule import due_commands
from gateway.scheduler import Scheduler

if TYPE_CHECKING:
    from gateway.order_entry import Outbox
    from gateway.server import SessionState

TIMER = 0.05  # seconds between two looks at the schedule and the engine's due time
SCHEDULE, OPERATOR = PhaseCause.SCHEDULE, PhaseCause.OPERATOR
# Operator actions: the phase each asks for, and the phases it may come from (the engine's own rules are broader:
# to continuous trading from any other phase; "open" and "resume" name the two cases).
ACTIONS: dict[str, tuple[Phase, frozenset[Phase] | None]] = {
    "halt": (Phase.HALTED, None),
    "resume": (Phase.CONTINUOUS, frozenset({Phase.HALTED})),
    "open": (Phase.CONTINUOUS, frozenset({Phase.CLOSED, Phase.PRE_OPEN})),
    "close": (Phase.CLOSED, None),
    "preopen": (Phase.PRE_OPEN, None),
}


class TradingDay:
    """Drives phase changes into the engine and tells order-entry sessions about them."""

    def __init__(
        self,
        cfg: VenueConfig,
        engine: Callable[[], MatchingEngine],
        apply: Callable[[Command], list[Event]],
        dispatch: Callable[[list[Event]], None],
        persistence: Persistence,
        sessions: Iterable[SessionState],
        outbox: Outbox,
        audit: Callable[[dict[str, Any]], None],
        log: Any,
    ) -> None:
        self.cfg = cfg
        self.schedule = cfg.schedule
        self._engine = engine
        self.apply = apply
        self.dispatch = dispatch
        self.persistence = persistence
        self.order_entry = [s for s in sessions if s.role is Role.ORDER_ENTRY]
        self.outbox = outbox
        self.audit = audit
        self.log = log
        self._next_check = 0  # ns: the next schedule boundary (0: look now)
        self._venue: tuple[str | None, Any] | None = None  # the last h sent to order-entry sessions
        self._ids = 0

    # ------------------------------------------------------------------ start-up and timers

    def configure(self) -> None:
        """Journal the config's halt policy, price protection and window of finished orders if they differ from the
        engine's."""
        rules = dataclasses.replace(self.cfg.trading_rules, finished_orders=self.cfg.finished_orders).to_dict()
        if self._engine().rules.to_dict() != rules:
            self._run(ConfigureTrading(rules, time.time_ns()))
            self.log.info("trading_rules_configured", rules=rules)
            self.audit({"event": "trading_rules_configured", "rules": rules, "ts": time.time_ns()})

    def start(self, scheduler: Scheduler) -> None:
        self._venue = (self._engine().trading_date, status.venue_status(self._engine().books.values()))
        scheduler.every(TIMER, self.on_timer)

    def on_timer(self, _: float = 0.0) -> None:
        now = time.time_ns()
        due = self._engine().next_due()
        if (self.schedule is not None and now >= self._next_check) or (due is not None and now >= due):
            self.catch_up(now)

    def catch_up(self, now: int | None = None) -> None:
        """Bring the engine to where the schedule and its own timers say it should be at ``now``."""
        now = time.time_ns() if now is None else now
        engine = self._engine()
        for command in due_commands(self.schedule, engine, now):
            previous = engine.trading_date
            self._run(command)
            if isinstance(command, EndOfDay) and previous is not None:
                self.persistence.roll(engine, command.trading_date)
        if self.schedule is not None:
            self._next_check = self.schedule.next_change(now)

    def _run(self, command: Command) -> list[Event]:
        events = self.apply(command)
        for ev in events:
            if isinstance(ev, PhaseChange):
                self.log.info(
                    "phase_change", symbol=ev.symbol, phase=ev.phase.value, previous=ev.previous.value,
                    cause=ev.cause.code, halt_until=ev.halt_until,
                )  # fmt: skip
            elif isinstance(ev, TradingDayChange):
                self.log.info("trading_day", trading_date=ev.trading_date, previous=ev.previous)
        self.dispatch([e for e in events if not isinstance(e, OperatorResult)])
        return events

    # ------------------------------------------------------------------ the operator's actions

    def operate(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        """``halt``, ``resume``, ``open``, ``close`` or ``preopen`` one instrument (``symbol``) or ``all``."""
        change = phase_request(self._engine(), action, params, self._request_id, self.audit)
        return change.answer([self._run(cmd) for cmd in change.commands])

    def _request_id(self) -> str:
        self._ids += 1
        return f"op-{time.time_ns()}-{self._ids}"

    def phases(self, params: dict[str, Any]) -> dict[str, Any]:
        return phases(self._engine())

    # ------------------------------------------------------------------ order-entry sessions

    def broadcast(self, events: list[Any]) -> None:
        """SecurityStatus (f) of each phase change, then TradingSessionStatus (h) if the venue's state changed, to
        every logged-on order-entry session."""
        engine = self._engine()
        targets = [s for s in self.order_entry if s.logged_on]
        for ev in events:
            if isinstance(ev, PhaseChange) and targets:
                msg = status.phase_change(ev, engine.trading_date)
                self.outbox.replies.extend((msg, s, "f") for s in targets)
        venue = (engine.trading_date, status.venue_status(engine.books.values()))
        if venue != self._venue:
            self._venue = venue
            if targets:
                msg = status.trading_session_status(venue[1], venue[0])
                self.outbox.replies.extend((msg, s, "h") for s in targets)

    def security_status_request(self, f: dict[str, str], state: SessionState) -> None:
        """SecurityStatusRequest (e) on an order-entry session: one f (changes reach the session anyway); an
        unsubscribe (263=2) is not answered."""
        if f.get("263") == "2":
            return
        engine = self._engine()
        symbol, req_id = f.get("55", ""), f.get("324", "")
        book = engine.books.get(symbol)
        if book is None:
            text, code = f"unknown symbol {symbol or '(none)'}", SecurityTradingStatus.UNKNOWN_OR_INVALID
        else:
            text, code = status.phase_text(book.phase, None, book.halt_until), PHASE_STATUS[book.phase]
        msg = status.security_status(symbol, code, text, None, engine.trading_date, req_id=req_id)
        self.outbox.replies.append((msg, state, "f"))

    def session_status_request(self, f: dict[str, str], state: SessionState) -> None:
        """TradingSessionStatusRequest (g) on an order-entry session: one h (263=2: none)."""
        if f.get("263") == "2":
            return
        engine = self._engine()
        venue = status.venue_status(engine.books.values())
        msg = status.trading_session_status(venue, engine.trading_date, f.get("335", ""))
        self.outbox.replies.append((msg, state, "h"))


# ---------------------------------------------------------------------- the operator's phase actions


def phase_request(
    engine: MatchingEngine,
    action: str,
    params: dict[str, Any],
    request_id: Callable[[], str],
    audit: Callable[[dict[str, Any]], None],
) -> Change:
    """The SetPhase commands of ``halt``, ``resume``, ``open``, ``close`` or ``preopen`` for one instrument
    (``symbol``) or ``all``, and the answer their events make: per instrument, applied or why not, and its phase
    after the command. An instrument the action cannot come from gets no command (ValueError: unknown symbol)."""
    target, allowed = ACTIONS[action]
    symbol = str(params["symbol"])
    if symbol != "all" and symbol not in engine.books:
        raise ValueError(f"unknown symbol {symbol!r}")
    symbols = list(engine.books) if symbol == "all" else [symbol]
    movable = [s for s in symbols if allowed is None or engine.books[s].phase in allowed]
    commands: list[Command] = [SetPhase(request_id(), s, target, OPERATOR, time.time_ns()) for s in movable]

    def answer(events: list[list[Event]]) -> dict[str, Any]:
        results = []
        outcome = dict(zip(movable, events, strict=True))
        for sym in symbols:
            book = engine.books[sym]
            row: dict[str, Any] = {"symbol": sym}
            if sym not in outcome:
                row.update(applied=False, error=f"{action}: {sym} is {status.PHASE_NAMES[book.phase]}")
            else:
                result = next(e for e in outcome[sym] if isinstance(e, OperatorResult))
                row["applied"] = result.applied
                if result.reason is not None:
                    row["error"] = f"{action}: {result.reason.text} ({sym} is {status.PHASE_NAMES[book.phase]})"
                else:
                    audit({"event": "operator_phase", "action": action, "symbol": sym, "phase": book.phase.value,
                           "request_id": result.request_id, "ts": time.time_ns()})  # fmt: skip
            row["phase"] = book.phase.value
            results.append(row)
        ok = all(r["applied"] for r in results)
        reply: dict[str, Any] = {"ok": ok, "applied": action, "results": results}
        if not ok:
            reply["error"] = "; ".join(r["error"] for r in results if not r["applied"])
        return reply

    return Change(commands, answer)


def phases(engine: MatchingEngine) -> dict[str, Any]:
    """Every instrument's phase (and when a circuit-breaker halt ends), and the trading date."""
    rows = []
    for sym, book in engine.books.items():
        row: dict[str, Any] = {"symbol": sym, "phase": book.phase.value, "scheduled": book.scheduled.value}
        if book.halt_until is not None:
            row["halt_until"] = status.utc_text(book.halt_until)
        rows.append(row)
    return {"ok": True, "trading_date": engine.trading_date, "instruments": rows}
