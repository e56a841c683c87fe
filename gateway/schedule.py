"""The trading day from the config: each instrument's session times and the venue's end of day, in its time zone.

Pure: every function takes the time (ns since the epoch) it is asked about. :class:`Schedule` says which phase the
schedule wants an instrument in at a time (closed, pre-open or continuous; an instrument without a session trades
continuously), which trading date a time belongs to, and when the next boundary comes, so that the timer looks only
then; :func:`due_commands` says which commands bring an engine there. The config tables (``[schedule]``,
``[protection]``) are read here too.

The trading date of a time is its local date, or the next day from ``end_of_day`` on (an ``end_of_day`` of 00:00:
the calendar date), moved on to the next trading day (``days``) if it falls on another. Sessions lie within one
calendar day before ``end_of_day``: pre_open < open < close <= end_of_day.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from engine import (
    Command,
    EndOfDay,
    HaltPolicy,
    Instrument,
    MatchingEngine,
    Phase,
    PhaseCause,
    Protection,
    SetPhase,
    Tick,
    TradingRules,
)

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MIDNIGHT = dt.time(0)
NS = 1_000_000_000


@dataclass(frozen=True)
class Session:
    """One instrument's day: pre-open from ``pre_open``, continuous trading (after the opening auction) from
    ``open``, closed from ``close`` (local times)."""

    pre_open: dt.time
    open: dt.time
    close: dt.time


@dataclass(frozen=True)
class Schedule:
    timezone: str
    end_of_day: dt.time
    days: frozenset[int]  # weekdays with sessions (0 = Monday)
    sessions: Mapping[str, Session]  # instruments with a session; the others trade continuously

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def _local(self, ns: int) -> dt.datetime:
        return dt.datetime.fromtimestamp(ns / NS, self.tz)

    def trading_date(self, ns: int) -> dt.date:
        """The trading date ``ns`` belongs to."""
        local = self._local(ns)
        date = local.date()
        if self.end_of_day != MIDNIGHT and local.time() >= self.end_of_day:
            date += dt.timedelta(days=1)
        while date.weekday() not in self.days:
            date += dt.timedelta(days=1)
        return date

    def phase_at(self, symbol: str, ns: int) -> Phase:
        """The phase the schedule wants ``symbol`` in at ``ns``: CLOSED, PRE_OPEN or CONTINUOUS."""
        session = self.sessions.get(symbol)
        if session is None:
            return Phase.CONTINUOUS
        local = self._local(ns)
        if local.weekday() not in self.days:
            return Phase.CLOSED
        now = local.time()
        if session.open <= now < session.close:
            return Phase.CONTINUOUS
        if session.pre_open <= now < session.open:
            return Phase.PRE_OPEN
        return Phase.CLOSED

    def next_change(self, ns: int) -> int:
        """The first boundary (a session time or the end of day, on any day) after ``ns``."""
        tz, local = self.tz, self._local(ns)
        times = {self.end_of_day}
        for s in self.sessions.values():
            times |= {s.pre_open, s.open, s.close}
        for days in range(9):
            date = local.date() + dt.timedelta(days=days)
            stamps = sorted(int(dt.datetime.combine(date, t, tz).timestamp() * NS) for t in times)
            later = [x for x in stamps if x > ns]
            if later:
                return later[0]
        raise AssertionError("a schedule has a boundary every day")


def due_commands(schedule: Schedule | None, engine: MatchingEngine, now: int) -> list[Command]:
    """The commands, all at time ``now``, that bring ``engine`` to where the schedule and its own timers say it should
    be then, in order: if the trading date has moved on, the close of what is still open and the end of the day; each
    instrument's scheduled phase; a :class:`~engine.commands.Tick` if something the engine timed is due (a
    circuit-breaker halt ends). A late caller (a restart, a fail-over) catches up at once with what it missed.

    Applying the list twice, or a list computed from a state that misses part of the other, changes nothing more:
    the schedule moves an instrument forward only, an end of day for a date already begun is a no-op, and a tick
    only ends what is due (the multi-process venue relies on this, :mod:`roles.engine`)."""
    out: list[Command] = []
    scheduled = {symbol: book.scheduled for symbol, book in engine.books.items()}
    if schedule is not None:
        cause = PhaseCause.SCHEDULE
        date = schedule.trading_date(now).isoformat()
        if engine.trading_date is None or date > engine.trading_date:
            if engine.trading_date is not None:  # the day is over: what is still open closes with it
                for symbol in schedule.sessions:
                    if engine.books[symbol].phase is not Phase.CLOSED:
                        out.append(SetPhase("", symbol, Phase.CLOSED, cause, now))
                        scheduled[symbol] = Phase.CLOSED
            out.append(EndOfDay(date, now))
        for symbol in schedule.sessions:
            target = schedule.phase_at(symbol, now)
            if scheduled[symbol] is not target:
                out.append(SetPhase("", symbol, target, cause, now))
    due = engine.next_due()
    if due is not None and now >= due:
        out.append(Tick(now))
    return out


# ---------------------------------------------------------------------------- config


def _time(value: Any, where: str) -> dt.time:
    try:
        parsed = dt.time.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"config: {where} = {value!r} is not a time of day (HH:MM or HH:MM:SS)") from None
    if parsed.tzinfo is not None:
        raise ValueError(f"config: {where} = {value!r}: times are local to venue.timezone, give no offset")
    return parsed


def _session(table: Mapping[str, Any], where: str, end_of_day: dt.time) -> Session:
    missing = [k for k in ("pre_open", "open", "close") if k not in table]
    if missing:
        raise ValueError(f"config: {where} needs pre_open, open and close (missing {', '.join(missing)})")
    session = Session(*(_time(table[k], f"{where}.{k}") for k in ("pre_open", "open", "close")))
    if not session.pre_open < session.open < session.close:
        raise ValueError(f"config: {where}: need pre_open < open < close")
    if end_of_day != MIDNIGHT and session.close > end_of_day:
        raise ValueError(f"config: {where}: close must not be after schedule.end_of_day ({end_of_day})")
    return session


def parse_schedule(raw: Mapping[str, Any], instruments: tuple[Instrument, ...], timezone: str) -> Schedule | None:
    """The ``[schedule]`` table (None without one: every instrument trades continuously and no day ends)."""
    if not raw:
        return None
    if "end_of_day" not in raw:
        raise ValueError("config: [schedule] needs end_of_day (HH:MM in venue.timezone)")
    end_of_day = _time(raw["end_of_day"], "schedule.end_of_day")
    days = [str(d).lower()[:3] for d in raw.get("days", DAYS)]
    unknown = [d for d in days if d not in DAYS]
    if unknown or not days:
        raise ValueError(f"config: schedule.days must name days of the week ({', '.join(DAYS)}), not {unknown}")
    symbols = {i.symbol for i in instruments}
    default = _session(raw, "[schedule]", end_of_day) if any(k in raw for k in ("pre_open", "open", "close")) else None
    per: Mapping[str, Any] = raw.get("instruments", {})
    strange = sorted(set(per) - symbols)
    if strange:
        raise ValueError(f"config: schedule.instruments names unknown instruments {strange}")
    sessions: dict[str, Session] = {}
    for symbol in sorted(symbols):
        table = per.get(symbol, {})
        if table.get("continuous", False):
            continue
        if any(k in table for k in ("pre_open", "open", "close")):
            sessions[symbol] = _session(table, f"schedule.instruments.{symbol}", end_of_day)
        elif default is not None:
            sessions[symbol] = default
    return Schedule(timezone, end_of_day, frozenset(DAYS.index(d) for d in days), sessions)


def _bps(value: Any, where: str) -> int:
    """A percentage (decimal text) in whole basis points."""
    try:
        pct = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"config: {where} = {value!r} is not a percentage") from None
    bps = pct * 100
    if not pct.is_finite() or bps != bps.to_integral_value() or not 0 < bps < 10_000:
        raise ValueError(f"config: {where} = {value!r}: a percentage above 0 and below 100, in whole basis points")
    return int(bps)


def _seconds(value: Any, where: str) -> int:
    try:
        seconds = Decimal(str(value))
    except InvalidOperation:
        seconds = Decimal(-1)
    if not seconds.is_finite() or seconds <= 0:
        raise ValueError(f"config: {where} = {value!r}: a positive number of seconds")
    return int(seconds * NS)


def _protection(table: Mapping[str, Any], where: str) -> Protection:
    band = _bps(table["band_pct"], f"{where}.band_pct") if "band_pct" in table else None
    if "breaker_pct" not in table:
        return Protection(band)
    missing = [k for k in ("breaker_window", "breaker_halt") if k not in table]
    if missing:
        raise ValueError(f"config: {where}: breaker_pct needs breaker_window and breaker_halt (seconds)")
    return Protection(
        band,
        _bps(table["breaker_pct"], f"{where}.breaker_pct"),
        _seconds(table["breaker_window"], f"{where}.breaker_window"),
        _seconds(table["breaker_halt"], f"{where}.breaker_halt"),
    )


def parse_protection(raw: Mapping[str, Any], instruments: tuple[Instrument, ...]) -> TradingRules:
    """The ``[protection]`` table: the halted policy, cancel on halt, and each instrument's band and breaker
    (``[protection."*"]`` for every instrument, ``[protection.SYMBOL]`` overriding it key by key)."""
    halted = str(raw.get("halted", HaltPolicy.CANCELS_ONLY.value))
    if halted not in {p.value for p in HaltPolicy}:
        raise ValueError(f"config: protection.halted must be cancels_only or no_entry, not {halted!r}")
    symbols = {i.symbol for i in instruments}
    tables = {k: v for k, v in raw.items() if isinstance(v, Mapping)}
    strange = sorted(set(tables) - symbols - {"*"})
    if strange:
        raise ValueError(f"config: [protection] names unknown instruments {strange}")
    protection = {}
    for symbol in sorted(symbols):
        merged = {**tables.get("*", {}), **tables.get(symbol, {})}
        p = _protection(merged, f"protection.{symbol}")
        if p.band_bps is not None or p.breaker_bps is not None:
            protection[symbol] = p
    return TradingRules(HaltPolicy(halted), bool(raw.get("cancel_on_halt", False)), protection)
