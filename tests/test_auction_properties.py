"""Property tests of the auction: random pre-open books uncrossed by the engine, against a simple reference.

The reference below is written from the rule in the Rules of Engagement (section 11), not from engine.auction: it
tries every candidate price by brute force, and allocates by sorting every order by its priority. Orders come from
distinct accounts here (self-trade prevention in the auction has its own test in test_phases.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import (
    ConfigureTrading,
    ExecType,
    MatchingEngine,
    Phase,
    PhaseCause,
    Protection,
    SetPhase,
    Side,
    TradePrint,
    TradingRules,
)
from tests.engine_helpers import GTC, INSTRUMENTS, buy, executions, make_engine, run, sell

pytestmark = pytest.mark.timeout(300)

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
XYZ = INSTRUMENTS[0]


@dataclass(frozen=True)
class Spec:
    """One order of the generated book: side, limit price (None: market), quantity."""

    buy: bool
    price: int | None
    qty: int


orders = st.lists(
    st.builds(
        Spec,
        st.booleans(),
        st.one_of(st.integers(95, 105), st.integers(95, 105), st.none()),
        st.integers(1, 20),
    ),
    min_size=0,
    max_size=25,
)


def reference_price(specs: list[Spec], caps: tuple[int, int], ref: int | None) -> tuple[int | None, int, int]:
    """(price, volume, imbalance) by the documented rule, by brute force over the candidate prices."""
    buy_cap, sell_cap = caps

    def limit(s: Spec) -> int:
        return s.price if s.price is not None else (buy_cap if s.buy else sell_cap)

    candidates = {s.price for s in specs if s.price is not None} | ({ref} if ref is not None else set())
    best: tuple[int, int, int, int] | None = None
    chosen: tuple[int | None, int, int] = (None, 0, 0)
    for p in sorted(candidates):
        demand = sum(s.qty for s in specs if s.buy and limit(s) >= p)
        supply = sum(s.qty for s in specs if not s.buy and limit(s) <= p)
        volume = min(demand, supply)
        if not volume:
            continue
        key = (-volume, abs(demand - supply), abs(p - ref) if ref is not None else 0, p)
        if best is None or key < best:
            best, chosen = key, (p, volume, demand - supply)
    return chosen


def reference_fills(specs: list[Spec], caps: tuple[int, int], price: int, volume: int) -> list[int]:
    """Each order's filled quantity: eligible orders sorted by price (market orders at their cap), at one price
    market before limit, then time; filled in that order up to ``volume`` on each side."""
    buy_cap, sell_cap = caps
    fills = [0] * len(specs)
    for side in (True, False):
        ranked = []
        for i, s in enumerate(specs):
            if s.buy is not side:
                continue
            lim = s.price if s.price is not None else (buy_cap if side else sell_cap)
            if (lim >= price) if side else (lim <= price):
                ranked.append(((-lim if side else lim), s.price is not None, i))
        left = volume
        for _, _, i in sorted(ranked):
            take = min(left, specs[i].qty)
            fills[i] = take
            left -= take
    return fills


def auction(specs: list[Spec], band_bps: int | None, ref: int | None) -> tuple[MatchingEngine, list[object]]:
    engine = make_engine()
    if band_bps is not None:
        protection = {"XYZ": Protection(band_bps=band_bps)}
        engine.process(ConfigureTrading(TradingRules(protection=protection).to_dict()))
    if ref is not None:  # the reference price: a trade before the day's pre-open
        run(engine, [sell("r-s", ref, 1, owner="ref-s"), buy("r-b", ref, 1, owner="ref-b")])
    run(engine, [SetPhase("", "XYZ", Phase.CLOSED, PhaseCause.SCHEDULE), SetPhase("", "XYZ", Phase.PRE_OPEN,
                                                                                    PhaseCause.SCHEDULE)])  # fmt: skip
    for i, s in enumerate(specs):
        new = buy if s.buy else sell
        events = engine.process(new(f"c{i}", s.price, s.qty, owner=f"o{i}", tif=GTC))
        assert executions(events)[0].exec_type is ExecType.NEW, events
    return engine, engine.process(SetPhase("", "XYZ", Phase.CONTINUOUS, PhaseCause.SCHEDULE))


def caps_of(band_bps: int | None, ref: int | None) -> tuple[int, int]:
    if band_bps is not None and ref is not None:
        return ref * (10_000 + band_bps) // 10_000, -(-ref * (10_000 - band_bps) // 10_000)
    return XYZ.max_ticks, XYZ.min_ticks


@PROPERTY
@given(orders, st.one_of(st.none(), st.integers(97, 103)), st.one_of(st.none(), st.just(1000)))
def test_the_auction_matches_the_reference(specs: list[Spec], ref: int | None, band_bps: int | None) -> None:
    engine, events = auction(specs, band_bps, ref)
    caps = caps_of(band_bps, ref)
    price, volume, _ = reference_price(specs, caps, ref)
    prints = [e for e in events if isinstance(e, TradePrint)]
    # One price, the reference's; the quantity the reference executes.
    assert {e.price for e in prints} == (set() if price is None else {price})
    assert sum(e.qty for e in prints) == volume
    # Each order's fills: price-time priority at that price.
    fills = {e.clordid: e.cum for e in executions(events, ExecType.TRADE)}
    got = [fills.get(f"c{i}", 0) for i in range(len(specs))]
    assert got == (reference_fills(specs, caps, price, volume) if price is not None else [0] * len(specs))
    # Quantity conserved: bought = sold = volume; no order fills beyond its quantity or trades through its limit.
    assert sum(q for q, s in zip(got, specs, strict=True) if s.buy) == volume
    assert sum(q for q, s in zip(got, specs, strict=True) if not s.buy) == volume
    for q, s in zip(got, specs, strict=True):
        assert q <= s.qty
        if q and s.price is not None:
            assert (price <= s.price) if s.buy else (price >= s.price)  # type: ignore[operator]
    # What is left: every order's figures add up, no market order waits, and the book does not cross.
    book = engine.book("XYZ")
    assert book.phase is Phase.CONTINUOUS and not book.market_buys.count and not book.market_sells.count
    for order in engine.orders.values():
        assert order.cum + order.leaves == order.qty or not order.is_open
    bid, ask = book.best(Side.BUY), book.best(Side.SELL)
    assert bid is None or ask is None or bid.price < ask.price


@PROPERTY
@given(orders, st.one_of(st.none(), st.integers(97, 103)))
def test_no_price_executes_more_than_the_auction_price(specs: list[Spec], ref: int | None) -> None:
    """The chosen price maximises the executed quantity over every price, not only over the candidates (without a
    band, market orders' protection prices are the static band's ends, outside the prices tried)."""
    _, events = auction(specs, None, ref)
    volume = sum(e.qty for e in events if isinstance(e, TradePrint))
    if ref is None and all(s.price is None for s in specs):
        assert volume == 0  # market orders alone have no price to trade at
        return
    buy_cap, sell_cap = caps_of(None, ref)
    for p in range(80, 121):
        demand = sum(s.qty for s in specs if s.buy and (s.price if s.price is not None else buy_cap) >= p)
        supply = sum(s.qty for s in specs if not s.buy and (s.price if s.price is not None else sell_cap) <= p)
        assert min(demand, supply) <= volume, p
