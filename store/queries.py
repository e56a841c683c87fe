"""What the tools ask the store: trades and orders with filters, and times in the venue's time zone.

A time bound (``--since``, ``--until``) is ``now``, ``today`` or ``yesterday`` (midnight in the venue's time zone),
a date ``YYYY-MM-DD`` (its midnight there), an ISO 8601 date-time (in the venue's time zone unless it carries an
offset or ``Z``), or a span back from now: ``90s``, ``15m``, ``4h``, ``2d``. ``since`` is inclusive and ``until``
exclusive, so ``--since yesterday --until today`` is exactly yesterday's trading day.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from store.db import Backend

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_SPAN = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_SPAN_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

TRADE_COLUMNS = (
    "trade_id", "time", "symbol", "price", "qty", "aggressor", "buy_account", "buy_owner", "buy_order_id",
    "buy_clordid", "buy_exec_id", "sell_account", "sell_owner", "sell_order_id", "sell_clordid", "sell_exec_id",
    "buy_fee", "sell_fee", "fee_asset", "ts_ns",
)  # fmt: skip
TRADE_TABLE = ("time", "trade_id", "symbol", "aggressor", "qty", "price", "buy_account", "buy_order_id",
               "sell_account", "sell_order_id")  # fmt: skip
ORDER_COLUMNS = (
    "order_id", "created", "updated", "account", "owner", "symbol", "side", "ord_type", "tif", "post_only",
    "price", "qty", "cum", "leaves", "avg_px", "status", "reason", "clordid", "last_exec_id", "created_ns",
    "updated_ns",
)  # fmt: skip
ORDER_TABLE = ("created", "order_id", "account", "symbol", "side", "ord_type", "tif", "qty", "price", "cum",
               "avg_px", "status", "clordid")  # fmt: skip


def parse_time(text: str, tz: dt.tzinfo, now: float | None = None) -> int:
    """A time bound (see the module docstring) as nanoseconds since the epoch; ValueError if it is none."""
    now = time.time() if now is None else now
    word = text.strip().lower()
    if word == "now":
        return int(now * 1e9)
    if word in ("today", "yesterday"):
        day = dt.datetime.fromtimestamp(now, tz).date()
        if word == "yesterday":
            day -= dt.timedelta(days=1)
        return _midnight(day, tz)
    span = _SPAN.match(word)
    if span:
        return int((now - float(span.group(1)) * _SPAN_SECONDS[span.group(2)]) * 1e9)
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", word):
            return _midnight(dt.date.fromisoformat(word), tz)
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"not a time: {text!r} (use now, today, yesterday, YYYY-MM-DD, an ISO date-time, or 90s/15m/4h/2d)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return to_ns(moment)


def to_ns(moment: dt.datetime) -> int:
    """An aware datetime as integer nanoseconds since the epoch (exact: no float on the way)."""
    delta = moment - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 10**9 + delta.microseconds * 1000


def _midnight(day: dt.date, tz: dt.tzinfo) -> int:
    return to_ns(dt.datetime.combine(day, dt.time(), tz))


def format_ns(ns: int, tz: dt.tzinfo) -> str:
    """An engine timestamp as ISO 8601 in ``tz`` (microseconds)."""
    seconds, rest = divmod(ns, 10**9)
    return dt.datetime.fromtimestamp(seconds, tz).replace(microsecond=rest // 1000).isoformat()


def venue_tz(name: str) -> dt.tzinfo:
    return zoneinfo.ZoneInfo(name)


@dataclass(frozen=True)
class Filters:
    account: str | None = None
    symbol: str | None = None
    since_ns: int | None = None
    until_ns: int | None = None


def _text(value: Any) -> Any:
    """Decimals as the text they were written as (PostgreSQL returns NUMERIC as Decimal, SQLite keeps text). Not
    ``str()``: it writes "0.00000000" as "0E-8" and "0.00000001" as "1E-8"."""
    return format(value, "f") if isinstance(value, Decimal) else value


def trades(db: Backend, f: Filters, tz: dt.tzinfo) -> list[dict[str, Any]]:
    """Trades matching ``f`` (an account matches either side), oldest first, as dicts of :data:`TRADE_COLUMNS`."""
    where, params = ["1 = 1"], []
    if f.account is not None:
        where.append("(buy_account = ? OR sell_account = ?)")
        params += [f.account, f.account]
    _common(f, "ts_ns", where, params)
    cols = [c for c in TRADE_COLUMNS if c != "time"]
    sql = f"SELECT {', '.join(cols)} FROM trades WHERE {' AND '.join(where)} ORDER BY trade_id"
    out = []
    for row in db.fetch(sql, params):
        d = {c: _text(v) for c, v in zip(cols, row, strict=True)}
        d["time"] = format_ns(d["ts_ns"], tz)
        out.append({c: d[c] for c in TRADE_COLUMNS})
    return out


def orders(db: Backend, f: Filters, tz: dt.tzinfo) -> list[dict[str, Any]]:
    """Orders entered in the time range (and matching the other filters), by OrderID, in their current state."""
    where, params = ["1 = 1"], []
    if f.account is not None:
        where.append("account = ?")
        params.append(f.account)
    _common(f, "created_ns", where, params)
    cols = [c for c in ORDER_COLUMNS if c not in ("created", "updated")]
    sql = f"SELECT {', '.join(cols)} FROM orders WHERE {' AND '.join(where)} ORDER BY order_id"
    out = []
    for row in db.fetch(sql, params):
        d = {c: _text(v) for c, v in zip(cols, row, strict=True)}
        d["post_only"] = bool(d["post_only"])
        d["created"], d["updated"] = format_ns(d["created_ns"], tz), format_ns(d["updated_ns"], tz)
        out.append({c: d[c] for c in ORDER_COLUMNS})
    return out


def _common(f: Filters, ts_column: str, where: list[str], params: list[Any]) -> None:
    if f.symbol is not None:
        where.append("symbol = ?")
        params.append(f.symbol)
    if f.since_ns is not None:
        where.append(f"{ts_column} >= ?")
        params.append(f.since_ns)
    if f.until_ns is not None:
        where.append(f"{ts_column} < ?")
        params.append(f.until_ns)
