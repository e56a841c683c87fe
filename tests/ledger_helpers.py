"""A funded engine for the ledger tests: two instruments, USD/XYZ/BTC assets, fees, accounts A..D funded."""

from __future__ import annotations

from typing import Any

from engine import Fund, Ledger, LedgerSetup, Limits, Market, MatchingEngine, SelfTradePrevention
from engine.ledger import fee_of
from engine.order import Order
from tests.engine_helpers import BTC, XYZ

# USD in micro-dollars (6 decimals), XYZ in whole shares, BTC in satoshis (8 decimals).
ASSETS = {"USD": 6, "XYZ": 0, "BTC": 8}
# XYZ: tick 0.01 USD x lot 1 share = 0.01 USD = 10,000 units; BTC-USD: tick 0.01 x lot 0.0001 BTC = 0.000001 USD.
MARKETS = {
    "XYZ": Market("XYZ", "XYZ", "USD", base_per_lot=1, quote_per_tick_lot=10_000, maker_ppm=-100, taker_ppm=500),
    "BTC-USD": Market("BTC-USD", "BTC", "USD", base_per_lot=10_000, quote_per_tick_lot=1, maker_ppm=0, taker_ppm=1000),
}
ACCOUNTS = ("A", "B", "C", "D")


def setup(**changes: Any) -> LedgerSetup:
    values: dict[str, Any] = {"assets": ASSETS, "markets": MARKETS, "accounts": ACCOUNTS, "fee_account": "FEES"}
    values.update(changes)
    return LedgerSetup(**values)


def funded_engine(
    usd: int = 1_000_000 * 10**6,
    xyz: int = 10_000,
    btc: int = 100 * 10**8,
    stp: SelfTradePrevention = SelfTradePrevention.CANCEL_RESTING,
    **changes: Any,
) -> MatchingEngine:
    """An engine listing XYZ and BTC-USD whose accounts A..D each hold ``usd``/``xyz``/``btc`` units."""
    engine = MatchingEngine((XYZ, BTC), stp, Ledger(setup(**changes)))
    for name in ACCOUNTS:
        for asset, amount in (("USD", usd), ("XYZ", xyz), ("BTC", btc)):
            if amount:
                events = engine.process(Fund("r", name, asset, amount, f"seed-{name}-{asset}"))
                assert events[0].applied  # type: ignore[union-attr]
    return engine


def ledger_of(engine: MatchingEngine) -> Ledger:
    assert engine.ledger is not None
    return engine.ledger


def required_hold(ledger: Ledger, order: Order, price: int | None = None) -> int:
    """What an open limit order must hold, computed from first principles (not with the ledger's own helper); a
    market order waiting for an auction holds as a limit order at ``price``, its protection price."""
    market = ledger.markets[order.symbol]
    if order.side.value == 1:
        notional = order.leaves * (price or order.price) * market.quote_per_tick_lot  # type: ignore[operator]
        return notional + fee_of(notional, max(market.taker_ppm, 0))
    return order.leaves * market.base_per_lot


def check_invariants(engine: MatchingEngine) -> None:
    """Conservation per asset; nothing negative; every account holds exactly what its open orders need; positions
    sum to zero per instrument; open-order counters agree with the books."""
    ledger = ledger_of(engine)
    assert all(v == 0 for v in ledger.imbalance().values()), ledger.imbalance()
    expected_held: dict[tuple[str, str], int] = {}
    open_counts: dict[tuple[str, str], list[int]] = {}
    for book in engine.books.values():
        market = ledger.markets[book.symbol]
        for order in book.resting_orders():
            asset = market.quote if order.side.value == 1 else market.base
            key = (order.account, asset)
            if ledger.funds_checks:  # without funds checks nothing is held
                hold = required_hold(ledger, order, book.caps.get(order.order_id))
                expected_held[key] = expected_held.get(key, 0) + hold
            counts = open_counts.setdefault((order.account, order.symbol), [0, 0, 0])
            counts[0] += 1
            counts[1 if order.side.value == 1 else 2] += order.leaves
    for name, account in ledger.accounts.items():
        for asset in ASSETS:
            if ledger.funds_checks:
                assert account.available.get(asset, 0) >= 0, (name, asset, account.available)
            assert account.held.get(asset, 0) == expected_held.get((name, asset), 0), (name, asset)
        for symbol, pos in account.positions.items():
            assert [pos.open_orders, pos.open_buy, pos.open_sell] == open_counts.get((name, symbol), [0, 0, 0]), (
                name,
                symbol,
            )
    for symbol in ledger.markets:
        assert sum(a.positions[symbol].net for a in ledger.accounts.values() if symbol in a.positions) == 0


LIMITLESS = Limits()
