"""Price protection: the dynamic price band and the volatility circuit breaker of one instrument, in integers.

* **Dynamic band.** The *reference price* is the instrument's last trade (an auction's price is a trade). A limit
  price more than ``band_bps`` basis points from it is refused; a market order trades only up to the band's edge.
  Before the first trade there is no reference and no band.
* **Circuit breaker** (velocity logic, as CME's and US LULD's). The breaker's references are the prices traded in
  the last ``breaker_window_ns`` and the last price traded before that window. A trade more than ``breaker_bps``
  above the lowest of them, or below the highest, is not made: the instrument halts for ``breaker_halt_ns`` instead,
  then reopens through an auction (whose price is the new baseline).

Percentages in basis points: ``hi = floor(ref x (10000 + bps) / 10000)``, ``lo = ceil(ref x (10000 - bps) / 10000)``;
a price within [lo, hi] is allowed. The window is kept as two monotonic queues (O(1) amortised per trade).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.types import HaltPolicy

FINISHED_ORDERS = 10_000  # the default window of finished orders kept per session

BPS = 10_000


def upper(ref: int, bps: int) -> int:
    """The highest price within ``bps`` above ``ref``."""
    return ref * (BPS + bps) // BPS


def lower(ref: int, bps: int) -> int:
    """The lowest price within ``bps`` below ``ref`` (at least 1 tick)."""
    return max(1, -(-ref * (BPS - bps) // BPS))


@dataclass(frozen=True, slots=True)
class Protection:
    """One instrument's band and breaker parameters; ``None``: that protection is off."""

    band_bps: int | None = None
    breaker_bps: int | None = None
    breaker_window_ns: int = 0
    breaker_halt_ns: int = 0

    def to_list(self) -> list[int | None]:
        return [self.band_bps, self.breaker_bps, self.breaker_window_ns, self.breaker_halt_ns]

    @classmethod
    def from_list(cls, values: list[Any]) -> Protection:
        return cls(*values)


@dataclass(frozen=True)
class TradingRules:
    """The venue's rules of the phases: what a halted instrument accepts, whether a halt cancels orders, and each
    instrument's price protection. Journaled (:class:`~engine.commands.ConfigureTrading`) whenever the config changes
    them, so that a replay applies each day's rules from the day they came into force."""

    halted: HaltPolicy = HaltPolicy.CANCELS_ONLY
    cancel_on_halt: bool = False
    protection: Mapping[str, Protection] = field(default_factory=dict)
    # How many finished orders (filled, cancelled, expired) the engine keeps known per session (owner), besides
    # its working ones: status requests, PossResend answers, "too late" cancel rejects and the duplicate-ClOrdID
    # check see these; an older finished order is forgotten. A rule like the others, so that a replay and a
    # standby forget exactly the same orders.
    finished_orders: int = FINISHED_ORDERS

    def to_dict(self) -> dict[str, Any]:
        return {
            "halted": self.halted.value,
            "cancel_on_halt": self.cancel_on_halt,
            "protection": {s: p.to_list() for s, p in sorted(self.protection.items())},
            "finished_orders": self.finished_orders,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TradingRules:
        return cls(
            HaltPolicy(d["halted"]),
            bool(d["cancel_on_halt"]),
            {s: Protection.from_list(v) for s, v in d["protection"].items()},
            int(d.get("finished_orders", FINISHED_ORDERS)),  # (journals from before the window: the default)
        )


class Guard:
    """The live price protection of one book: its parameters and the breaker's window of recent trades."""

    __slots__ = ("baseline", "maxs", "mins", "protection", "trades")

    def __init__(self, protection: Protection) -> None:
        self.protection = protection
        self.trades: deque[tuple[int, int]] = deque()  # (ts, last price) of each order's trades, oldest first
        self.mins: deque[tuple[int, int]] = deque()  # (ts, price), prices increasing: the window's minimum first
        self.maxs: deque[tuple[int, int]] = deque()  # (ts, price), prices decreasing: the window's maximum first
        self.baseline: int | None = None  # the last price traded before the window

    # ------------------------------------------------------------------ the band

    def outside_band(self, price: int, ref: int | None) -> bool:
        bps = self.protection.band_bps
        if bps is None or ref is None:
            return False
        return price > upper(ref, bps) or price < lower(ref, bps)

    def band_stop(self, ref: int | None, buy: bool) -> int | None:
        """The farthest price a market order may trade at, or None (no band, or no reference)."""
        bps = self.protection.band_bps
        if bps is None or ref is None:
            return None
        return upper(ref, bps) if buy else lower(ref, bps)

    # ------------------------------------------------------------------ the breaker

    def breaker_stop(self, ts: int, buy: bool) -> int | None:
        """The farthest price a trade at ``ts`` may have before the breaker halts the instrument, or None."""
        bps = self.protection.breaker_bps
        if bps is None:
            return None
        cutoff = ts - self.protection.breaker_window_ns
        trades, mins, maxs = self.trades, self.mins, self.maxs
        while trades and trades[0][0] <= cutoff:
            self.baseline = trades.popleft()[1]
        while mins and mins[0][0] <= cutoff:
            mins.popleft()
        while maxs and maxs[0][0] <= cutoff:
            maxs.popleft()
        base = self.baseline
        if buy:
            ref = mins[0][1] if mins else base
            if ref is None:
                return None
            return upper(min(ref, base) if base is not None else ref, bps)
        ref = maxs[0][1] if maxs else base
        if ref is None:
            return None
        return lower(max(ref, base) if base is not None else ref, bps)

    def record(self, ts: int, low: int, high: int, last: int) -> None:
        """One order's trades at ``ts``: the lowest and highest prices and the last one."""
        if self.protection.breaker_bps is None:
            return
        self.trades.append((ts, last))
        mins, maxs = self.mins, self.maxs
        while mins and mins[-1][1] >= low:
            mins.pop()
        mins.append((ts, low))
        while maxs and maxs[-1][1] <= high:
            maxs.pop()
        maxs.append((ts, high))

    def restart(self, price: int | None) -> None:
        """After a reopening auction: the window starts empty, the auction's price (if any) is the baseline."""
        self.trades.clear()
        self.mins.clear()
        self.maxs.clear()
        if price is not None:
            self.baseline = price

    # ------------------------------------------------------------------ snapshot

    def dump(self) -> list[Any]:
        return [list(map(list, self.trades)), list(map(list, self.mins)), list(map(list, self.maxs)), self.baseline]

    def load(self, d: list[Any]) -> None:
        trades, mins, maxs, self.baseline = d
        self.trades = deque((t, p) for t, p in trades)
        self.mins = deque((t, p) for t, p in mins)
        self.maxs = deque((t, p) for t, p in maxs)
