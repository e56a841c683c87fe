"""A cluster config with a trading schedule and price protection: the roles load it (they were refused before the
engine role drove the trading day), and an engine that becomes active publishes the protection rules as a start-up
command, once (the end-to-end day is tests/test_cluster_trading_day.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine import ConfigureTrading, MatchingEngine
from roles import config as cluster_config
from roles import serve_role
from roles.engine import opening_share, startup_commands
from roles.operator import NO_ENGINE
from roles.operator_shards import Reply, combine, route
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


def test_the_same_cluster_config_without_them_loads(tmp_path: Path) -> None:
    cfg, cluster = cluster_config.load(config_with(tmp_path, {}))
    assert cfg.schedule is None and [p.name for p in cluster.gateways] == ["gw1"]


SHARDS = {"eq": ["AAPL", "MSFT"], "crypto": ["BTC-USD"]}


def sharded(tmp_path: Path, shards: dict[str, list[str]]) -> Path:
    path, _ = make_cluster_config(tmp_path, ["nats://127.0.0.1:1"], {"gw1": ["CLIENT1"]}, {"md1": ["MD1"]},
                                  shards=shards)  # fmt: skip
    return path


def test_shards_name_their_instruments_and_id_ranges(tmp_path: Path) -> None:
    _, cluster = cluster_config.load(sharded(tmp_path, SHARDS))
    eq, crypto = cluster.shards
    assert (eq.name, eq.symbols, eq.id_base) == ("eq", {"AAPL", "MSFT"}, 0)
    assert (crypto.name, crypto.symbols, crypto.id_base) == ("crypto", {"BTC-USD"}, cluster_config.ID_SPAN)
    assert cluster.shard_of_symbol("BTC-USD") is crypto and cluster.shard_of_symbol("NOPE") is eq
    assert [cluster.shard_of_id(i) for i in (1, cluster_config.ID_SPAN, cluster_config.ID_SPAN + 1)] == [eq, eq, crypto]
    assert cluster.shard_of_id(2 * cluster_config.ID_SPAN + 1) is None and cluster.shard_of_id(0) is None
    assert (cluster.command_stream("crypto").name, cluster.result_stream("crypto").subject) == (
        "FIXGW_CMD_crypto", "fixgw.res.crypto")  # fmt: skip


def test_a_config_without_shards_has_one_shard_holding_every_instrument(tmp_path: Path) -> None:
    cfg, cluster = cluster_config.load(config_with(tmp_path, {}))
    (only,) = cluster.shards
    assert (only.name, only.symbols, only.id_base) == ("0", {i.symbol for i in cfg.instruments}, 0)
    assert (cluster.commands.name, cluster.results.name) == ("FIXGW_CMD_0", "FIXGW_RES_0")


@pytest.mark.parametrize(
    ("shards", "error"),
    [({"a": ["AAPL", "MSFT"], "b": ["BTC-USD", "AAPL"]}, "config: instrument AAPL is in both shards a and b"),
     ({"a": ["AAPL", "MSFT"]}, "config: instrument(s) BTC-USD in no [cluster.shards] table"),
     ({"a": ["AAPL", "MSFT", "BTC-USD", "TSLA"]}, "config: cluster.shards.a: no instrument TSLA"),
     ({"a": ["AAPL", "MSFT", "BTC-USD"], "b": []},
      "config: cluster.shards.b: symbols must list at least one instrument"),
     ({"a b": ["AAPL", "MSFT", "BTC-USD"]},
      "config: cluster.shards.a b: a shard name is 1-32 letters, digits, '_' or '-'")],
)  # fmt: skip
def test_a_shard_table_that_does_not_place_every_instrument_once_is_refused(
    tmp_path: Path, shards: dict[str, list[str]], error: str
) -> None:
    with pytest.raises(ValueError) as refused:
        cluster_config.load(sharded(tmp_path, shards))
    assert str(refused.value) == error


def test_an_engine_of_a_sharded_venue_must_name_its_shard(tmp_path: Path) -> None:
    path = str(sharded(tmp_path, SHARDS))
    with pytest.raises(ValueError, match=r"several shards \(eq, crypto\): give the engine --shard NAME"):
        serve_role("engine", "e1", path)
    with pytest.raises(ValueError, match=r"no \[cluster.shards.fx\] \(configured: eq, crypto\)"):
        serve_role("engine", "e1", path, "fx")
    with pytest.raises(ValueError, match="--shard is for --role engine"):
        serve_role("gateway", "gw1", path, "eq")


def test_opening_balances_are_split_over_the_shards_that_use_each_asset(tmp_path: Path) -> None:
    cfg, cluster = cluster_config.load(sharded(tmp_path, SHARDS))
    eq, crypto = cluster.shards
    assert [opening_share(cfg, cluster, s, "USD", 1001) for s in (eq, crypto)] == [501, 500]  # quote of both
    assert [opening_share(cfg, cluster, s, "AAPL", 7) for s in (eq, crypto)] == [7, 0]
    assert [opening_share(cfg, cluster, s, "BTC", 7) for s in (eq, crypto)] == [0, 7]
    assert [opening_share(cfg, cluster, s, "EUR", 7) for s in (eq, crypto)] == [7, 0]  # no instrument: first shard


def test_operator_requests_go_to_the_shards_they_concern(tmp_path: Path) -> None:
    cfg, cluster = cluster_config.load(sharded(tmp_path, SHARDS))
    eq, crypto = cluster.shards
    assert route(cfg, cluster, "accounts", {}) == route(cfg, cluster, "kill", {"account": "ACC1"}) == [eq, crypto]
    assert route(cfg, cluster, "halt", {"symbol": "BTC-USD"}) == [crypto]
    assert route(cfg, cluster, "halt", {"symbol": "all"}) == [eq, crypto]
    assert route(cfg, cluster, "limits", {"symbol": "AAPL"}) == [eq]
    # Money is per shard: a deposit goes to the first shard using the asset (as an opening balance's remainder),
    # or to the one it names
    assert route(cfg, cluster, "deposit", {"asset": "USD"}) == [eq]
    assert route(cfg, cluster, "withdraw", {"asset": "BTC"}) == [crypto]
    assert route(cfg, cluster, "deposit", {"asset": "USD", "shard": "crypto"}) == [crypto]
    with pytest.raises(ValueError, match=r"^unknown shard 'fx' \(the venue's shards: eq, crypto\)$"):
        route(cfg, cluster, "deposit", {"asset": "USD", "shard": "fx"})
    # A transfer between shards: its source shard's engine debits (and sends the credit on)
    assert route(cfg, cluster, "transfer", {"from_shard": "crypto", "to_shard": "eq"}) == [crypto]
    with pytest.raises(ValueError, match=r"^from_shard: unknown shard 'fx' \(the venue's shards: eq, crypto\)$"):
        route(cfg, cluster, "transfer", {"from_shard": "fx", "to_shard": "eq"})


def test_a_venue_wide_halt_with_a_shard_down_is_applied_where_it_can_be_and_says_where_not(tmp_path: Path) -> None:
    cfg, cluster = cluster_config.load(sharded(tmp_path, SHARDS))
    eq, crypto = cluster.shards
    halted = [{"symbol": s, "applied": True, "phase": "halted"} for s in ("AAPL", "MSFT")]
    down = {"ok": False, "error": NO_ENGINE}
    answer, status = combine(cfg.assets, "halt", [Reply(eq, {"ok": True, "applied": "halt", "results": halted}),
                                                  Reply(crypto, down, answered=False)], several=True)  # fmt: skip
    assert (status, answer["ok"], answer["applied_on"]) == (200, False, ["eq"])
    assert answer["results"] == [*halted, {"symbol": "BTC-USD", "applied": False, "phase": None,
                                           "error": f"shard crypto: {NO_ENGINE}"}]  # fmt: skip
    assert answer["error"].startswith(f"applied on shard(s) eq only; shard crypto: {NO_ENGINE}")
    # Nothing applied anywhere: 503 if a shard could not act, and one refusal is said once
    assert combine(cfg.assets, "halt", [Reply(eq, down, False), Reply(crypto, down, False)], True)[1] == 503
    unknown = {"ok": False, "error": "unknown account 'X'"}
    assert combine(cfg.assets, "kill", [Reply(eq, unknown), Reply(crypto, unknown)], True) == (
        {"ok": False, "cancelled": 0, "shards": {"eq": unknown, "crypto": unknown}, "error": "unknown account 'X'"},
        200,
    )
