"""The auction's price: where a crossed book uncrosses, and what would execute there. Pure arithmetic on levels.

Rule (docs/rules-of-engagement.md, section 11): the auction price is one of the limit prices in the book, or the
reference price (the last trade), whichever

1. executes the most quantity;
2. then leaves the least imbalance (|buy quantity - sell quantity| that could execute at the price);
3. then is closest to the reference price;
4. then is the lowest.

A market order takes part as a limit order at its protection price, ahead of the limit orders at that price; it
never sets the price. Only prices inside the crossed range can execute anything, so only levels between the best
ask and the best bid are looked at: the cost is O(levels in the crossed range + market orders).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sortedcontainers import SortedDict

from engine.book import first_key


@dataclass(frozen=True, slots=True)
class Uncross:
    """``price`` None: nothing would execute (and ``volume`` and ``imbalance`` are 0)."""

    price: int | None
    volume: int
    imbalance: int  # buy minus sell quantity that could execute at the price


NOTHING = Uncross(None, 0, 0)


def uncross(
    bids: SortedDict,
    asks: SortedDict,
    market_buys: Iterable[tuple[int, int]],
    market_sells: Iterable[tuple[int, int]],
    reference: int | None,
) -> Uncross:
    """The auction of a book whose ``bids`` (keyed by -price) and ``asks`` (keyed by price) hold price levels, with
    market orders as (protection price, quantity)."""
    mbuys, msells = list(market_buys), list(market_sells)
    best_bid = -first_key(bids) if bids else None
    if mbuys:
        top = max(c for c, _ in mbuys)
        best_bid = top if best_bid is None else max(best_bid, top)
    best_ask = first_key(asks) if asks else None
    if msells:
        bottom = min(c for c, _ in msells)
        best_ask = bottom if best_ask is None else min(best_ask, bottom)
    if best_bid is None or best_ask is None or best_bid < best_ask:
        return NOTHING
    low, high = best_ask, best_bid
    buys: list[tuple[int, int]] = [(c, q) for c, q in mbuys if c >= low]
    sells: list[tuple[int, int]] = [(c, q) for c, q in msells if c <= high]
    prices: set[int] = set()
    for level in bids.values():
        if level.price < low:
            break
        buys.append((level.price, level.qty))
        prices.add(level.price)
    for level in asks.values():
        if level.price > high:
            break
        sells.append((level.price, level.qty))
        prices.add(level.price)
    if reference is not None and low <= reference <= high:
        prices.add(reference)
    if not prices:
        return NOTHING
    candidates = sorted(prices)
    # Sell quantity at or below each candidate (ascending), buy quantity at or above it (descending).
    sells.sort()
    supply, at, total = [], 0, 0
    for p in candidates:
        while at < len(sells) and sells[at][0] <= p:
            total += sells[at][1]
            at += 1
        supply.append(total)
    buys.sort(reverse=True)
    demand, at, total = [0] * len(candidates), 0, 0
    for i in range(len(candidates) - 1, -1, -1):
        p = candidates[i]
        while at < len(buys) and buys[at][0] >= p:
            total += buys[at][1]
            at += 1
        demand[i] = total
    best: tuple[int, int, int, int] | None = None
    chosen = NOTHING
    for p, d, s in zip(candidates, demand, supply, strict=True):
        volume = min(d, s)
        if not volume:
            continue
        key = (-volume, abs(d - s), abs(p - reference) if reference is not None else 0, p)
        if best is None or key < best:
            best, chosen = key, Uncross(p, volume, d - s)
    return chosen
