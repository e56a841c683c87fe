"""Trading status messages: SecurityStatus (f) for an instrument's phase, TradingSessionStatus (h) for the venue.

Built once per change and sent to every session that should see it: market-data sessions (f with the view's RptSeq,
see feeds.service) and order-entry sessions (f without RptSeq, exactly as the stock FIX 4.4 dictionary has it, and
h). The Text says what the phase is and why; a circuit-breaker halt also says when it ends.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import quickfix as fix

from engine import Phase, PhaseCause, PhaseChange
from gateway.fixcodes import PHASE_STATUS, SecurityTradingStatus, TradSesStatus, UnsolicitedIndicator
from gateway.fixtime import format_utc

if TYPE_CHECKING:
    from feeds.views import BookState

SYMBOL, TEXT, TRANSACT_TIME, RPT_SEQ, TRADING_SESSION_ID = 55, 58, 60, 83, 336
SECURITY_STATUS_REQ_ID, UNSOLICITED, SECURITY_TRADING_STATUS = 324, 325, 326
TRAD_SES_REQ_ID, TRAD_SES_STATUS = 335, 340

PHASE_NAMES = {
    Phase.CLOSED: "closed",
    Phase.PRE_OPEN: "pre-open",
    Phase.AUCTION: "auction",
    Phase.CONTINUOUS: "continuous trading",
    Phase.HALTED: "halted",
}


def phase_text(phase: Phase, cause: PhaseCause | None, halt_until: int | None = None) -> str:
    """E.g. ``halted: volatility circuit breaker; reopening auction at 2026-12-07T14:02:07Z``."""
    text = PHASE_NAMES[phase] if cause is None else f"{PHASE_NAMES[phase]}: {cause.text}"
    if halt_until is not None:
        text += f"; reopening auction at {utc_text(halt_until)}"
    return text


def utc_text(ns: int) -> str:
    """``ns`` as a UTC time to the second, e.g. ``2026-12-07T14:02:07Z``."""
    return dt.datetime.fromtimestamp(ns // 1_000_000_000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def venue_status(books: Iterable[BookState]) -> TradSesStatus:
    """The venue as a whole: open if any instrument trades continuously, else pre-open if any is in pre-open, else
    halted if any is halted, else closed."""
    phases = {b.phase for b in books}
    if Phase.CONTINUOUS in phases:
        return TradSesStatus.OPEN
    if Phase.PRE_OPEN in phases:
        return TradSesStatus.PRE_OPEN
    if Phase.HALTED in phases:
        return TradSesStatus.HALTED
    return TradSesStatus.CLOSED


def security_status(
    symbol: str,
    status: SecurityTradingStatus,
    text: str,
    ts: int | None,
    trading_date: str | None,
    *,
    rpt_seq: int | None = None,
    req_id: str | None = None,
) -> Any:
    """SecurityStatus (f): pushed on a change (UnsolicitedIndicator Y) or answering a request (N, with its
    SecurityStatusReqID); ``rpt_seq`` on market-data sessions only."""
    msg = fix.Message()
    msg.getHeader().setField(35, "f")
    if req_id is not None:
        msg.setField(SECURITY_STATUS_REQ_ID, req_id)
    msg.setField(SYMBOL, symbol)
    if trading_date is not None:
        msg.setField(TRADING_SESSION_ID, trading_date)
    unsolicited = UnsolicitedIndicator.NO if req_id is not None else UnsolicitedIndicator.YES
    msg.setField(UNSOLICITED, unsolicited.value)
    msg.setField(SECURITY_TRADING_STATUS, str(int(status)))
    if rpt_seq is not None:
        msg.setField(RPT_SEQ, str(rpt_seq))
    if ts is not None:
        msg.setField(TRANSACT_TIME, format_utc(ts))
    msg.setField(TEXT, text)
    return msg


def phase_change(ev: PhaseChange, trading_date: str | None, rpt_seq: int | None = None) -> Any:
    """The f announcing ``ev`` (``rpt_seq``: the view's, on market-data sessions)."""
    text = phase_text(ev.phase, ev.cause, ev.halt_until)
    return security_status(ev.symbol, PHASE_STATUS[ev.phase], text, ev.ts, trading_date, rpt_seq=rpt_seq)


def trading_session_status(status: TradSesStatus, trading_date: str | None, req_id: str | None = None) -> Any:
    """TradingSessionStatus (h): the venue's state; TradingSessionID is the trading date (``-`` before the first)."""
    msg = fix.Message()
    msg.getHeader().setField(35, "h")
    if req_id is not None:
        msg.setField(TRAD_SES_REQ_ID, req_id)
    msg.setField(TRADING_SESSION_ID, trading_date or "-")
    unsolicited = UnsolicitedIndicator.NO if req_id is not None else UnsolicitedIndicator.YES
    msg.setField(UNSOLICITED, unsolicited.value)
    msg.setField(TRAD_SES_STATUS, str(int(status)))
    day = f"trading date {trading_date}" if trading_date else "no trading date yet"
    msg.setField(TEXT, f"{status.name.lower().replace('_', '-')}; {day}")
    return msg
