"""Money at the edge: the venue config's money rules as the ledger sees them, and amounts written back as text."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path

from gateway.config import DEFAULT_CONFIG, parse_config
from gateway.positions import average_cost

DEMO = tomllib.loads(DEFAULT_CONFIG.read_text())


def test_the_demo_config_opens_exactly_the_sessions_accounts_each_with_the_opening_balance() -> None:
    cfg = parse_config(DEMO, base=DEFAULT_CONFIG.parent)
    assert cfg.ledger is not None
    names = [f"ACC{n}" for n in range(1, 10)]
    assert list(cfg.ledger.accounts) == names  # the common opening_balance table is not an account
    assert list(cfg.opening_balances) == names
    assert cfg.opening_balances["ACC1"] == {"USD": 10_000_000 * 10**6, "BTC": 100 * 10**8, "AAPL": 100_000,
                                            "MSFT": 100_000}  # fmt: skip
    btc = cfg.ledger.markets["BTC-USD"]
    assert (btc.maker_ppm, btc.taker_ppm, btc.base_per_lot, btc.quote_per_tick_lot) == (-100, 500, 10_000, 1)


def test_an_accounts_table_opens_an_account_and_overrides_the_common_opening_balance(tmp_path: Path) -> None:
    raw = {**DEMO, "accounts": {**DEMO["accounts"], "HOUSE": {"opening_balance": {"USD": "5.5"}}}}
    cfg = parse_config(raw, base=tmp_path)
    assert cfg.ledger is not None
    assert cfg.ledger.accounts[-1] == "HOUSE" and "opening_balance" not in cfg.ledger.accounts
    assert cfg.opening_balances["HOUSE"]["USD"] == 5_500_000
    assert cfg.opening_balances["HOUSE"]["BTC"] == 100 * 10**8  # the rest from the common table


def test_the_average_cost_of_a_position_is_written_like_avgpx() -> None:
    tick = Decimal("0.01")
    assert average_cost(6_000_000_000, 3000, 1, tick) == "20000.00"  # a whole number of ticks: the tick's decimals
    assert average_cost(3 * 10_000 * 1001, 3, 10_000, tick) == "10.01"
    # Otherwise rounded half up to 8 decimals beyond the tick, trailing zeros dropped.
    assert average_cost(10, 3, 1, tick) == "0.0333333333"
    assert average_cost(20, 3, 1, tick) == "0.0666666667"
    assert average_cost(3 * 10_000 * 100 + 5_000, 3, 10_000, tick) == "1.0016666667"  # a cost basis off the grid
    assert average_cost(2 * 10**11 + 1, 10**9, 2, Decimal(1)) == "100"  # rounds to a whole tick: no dangling point
    assert average_cost(123, 0, 1, tick) == "0"  # flat
