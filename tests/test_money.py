"""The venue config's money rules as the ledger sees them: accounts, opening balances, fees in ppm."""

from __future__ import annotations

import tomllib
from pathlib import Path

from gateway.config import DEFAULT_CONFIG, parse_config

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
