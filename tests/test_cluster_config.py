"""A cluster config with a trading schedule and price protection: the roles load it (they were refused before the
engine role drove the trading day), and an engine that becomes active publishes the protection rules as a start-up
command, once (the end-to-end day is tests/test_cluster_trading_day.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine import ConfigureTrading, MatchingEngine
from roles import config as cluster_config
from roles.engine import startup_commands
from tests.cluster_process import cluster_config as make_cluster_config

pytestmark = pytest.mark.timeout(60)

SCHEDULE = {
    "schedule.end_of_day": "00:00",
    "schedule.pre_open": "08:00",
    "schedule.open": "08:15",
    "schedule.close": "16:30",
}
PROTECTION = {"protection.AAPL": {"band_pct": "10"}}


def config_with(tmp_path: Path, overrides: dict[str, Any]) -> Path:
    path, _ = make_cluster_config(tmp_path, ["nats://127.0.0.1:1"], {"gw1": ["CLIENT1"]}, {"md1": ["MD1"]},
                                  overrides=overrides)  # fmt: skip
    return path


def test_a_cluster_config_with_a_schedule_and_protection_loads(tmp_path: Path) -> None:
    cfg, cluster = cluster_config.load(config_with(tmp_path, {**SCHEDULE, **PROTECTION}))
    assert cfg.schedule is not None and "AAPL" in cfg.schedule.sessions
    assert cfg.trading_rules.protection["AAPL"].band_bps == 1000
    assert [p.name for p in cluster.gateways] == ["gw1"]


def test_the_engine_publishes_the_protection_rules_until_it_has_them(tmp_path: Path) -> None:
    cfg, _ = cluster_config.load(config_with(tmp_path, PROTECTION))
    engine = MatchingEngine(cfg.instruments, cfg.self_trade_prevention)
    first = [c for c in startup_commands(cfg, engine) if isinstance(c, ConfigureTrading)]
    assert [c.rules for c in first] == [cfg.trading_rules.to_dict()]
    engine.process(first[0])
    assert not [c for c in startup_commands(cfg, engine) if isinstance(c, ConfigureTrading)]
