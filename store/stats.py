"""24-hour statistics per symbol, computed from the store's trades, exactly.

The window is the 24 hours up to ``now``: trades with ``now - 24 h < ts <= now``. One query per symbol groups the
window's trades by price (integer ticks): the sum of lots, the count and the first and last trade id at each price.
From those, with integer and ``Decimal`` arithmetic only (never a float):

``open``/``last``   the price of the first / last trade in the window (by trade id);
``high``/``low``    the highest / lowest trade price;
``volume``          the quantity traded; ``notional`` the sum of price x quantity; ``trades`` how many;
``vwap``            notional / volume, rounded half up to 6 decimals beyond the tick, trailing zeros dropped down to
                    the tick's decimals;
``change``          last - open; ``change_pct`` that as a percentage of open, rounded half away from zero to 2
                    decimals.

Figures are decimal strings (``null`` without trades in the window); ``trades`` is an integer.
"""

from __future__ import annotations

import datetime as dt
import time
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from store.db import Backend
from store.queries import format_ns

DAY_NS = 86_400 * 10**9
VWAP_EXTRA_DECIMALS = 6
STAT_COLUMNS = ("symbol", "open", "high", "low", "last", "change", "change_pct", "volume", "notional", "vwap",
                "trades", "window_start", "window_end")  # fmt: skip

_LEVELS = (
    "SELECT price_ticks, SUM(qty_lots), COUNT(*), MIN(trade_id), MAX(trade_id) FROM trades "
    "WHERE symbol = ? AND ts_ns > ? AND ts_ns <= ? GROUP BY price_ticks"
)


def plain(value: Decimal) -> str:
    """A Decimal as plain text, never in exponent notation."""
    return format(value, "f")


def decimals(step: Decimal) -> int:
    return max(0, -int(step.as_tuple().exponent))


def vwap(notional_units: int, lots: int, tick: Decimal) -> str:
    """``tick x notional_units / lots`` rounded half up to the tick's decimals + 6, trailing zeros dropped down to
    the tick's decimals. Exact: 100 significant digits hold any quotient of these integers unrounded up to the
    rounding place (a run of k nines in p/q needs q > 10**k)."""
    keep = decimals(tick)
    with localcontext() as ctx:
        ctx.prec = 100
        value = (tick * notional_units / lots).quantize(Decimal(1).scaleb(-(keep + VWAP_EXTRA_DECIMALS)), ROUND_HALF_UP)
    text = plain(value)
    if "." in text:
        whole, frac = text.split(".")
        frac = frac.rstrip("0").ljust(keep, "0")
        text = f"{whole}.{frac}" if frac else whole
    return text


def change_pct(open_: Decimal, last: Decimal) -> str:
    with localcontext() as ctx:
        ctx.prec = 100
        pct = ((last - open_) * 100 / open_).quantize(Decimal("0.01"), ROUND_HALF_UP)
    return plain(pct.copy_abs() if pct.is_zero() else pct)  # no "-0.00"


def symbol_stats(db: Backend, symbol: str, tick: Decimal, lot: Decimal, now_ns: int) -> dict[str, Any]:
    levels = [(int(p), int(q), int(n), int(first), int(last))
              for p, q, n, first, last in db.fetch(_LEVELS, (symbol, now_ns - DAY_NS, now_ns))]  # fmt: skip
    out: dict[str, Any] = {"symbol": symbol}
    if not levels:
        out.update(open=None, high=None, low=None, last=None, change=None, change_pct=None, volume=plain(lot * 0),
                   notional=plain(tick * lot * 0), vwap=None, trades=0)  # fmt: skip
        return out
    lots = sum(q for _, q, _, _, _ in levels)
    units = sum(p * q for p, q, _, _, _ in levels)
    open_ = tick * min(levels, key=lambda lv: lv[3])[0]
    last = tick * max(levels, key=lambda lv: lv[4])[0]
    out.update(
        open=plain(open_), high=plain(tick * max(p for p, *_ in levels)), low=plain(tick * min(p for p, *_ in levels)),
        last=plain(last), change=plain(last - open_), change_pct=change_pct(open_, last), volume=plain(lot * lots),
        notional=plain(tick * lot * units), vwap=vwap(units, lots, tick), trades=sum(n for _, _, n, _, _ in levels),
    )  # fmt: skip
    return out


def stats(db: Backend, tz: dt.tzinfo, symbol: str | None = None, now_ns: int | None = None) -> list[dict[str, Any]]:
    """The 24-hour statistics of every listed symbol (or one), in symbol order."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    out = []
    for sym, tick, lot in db.fetch("SELECT symbol, tick_size, lot_size FROM instruments ORDER BY symbol"):
        if symbol is not None and sym != symbol:
            continue
        row = symbol_stats(db, sym, Decimal(str(tick)), Decimal(str(lot)), now_ns)
        row["window_start"], row["window_end"] = format_ns(now_ns - DAY_NS, tz), format_ns(now_ns, tz)
        out.append(row)
    return out
