"""The multi-process venue refuses what only the one-process venue does (README, Scale-out): a trading schedule and
price protection. The refusal is one line on stderr before anything connects; the same config without them loads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from roles import config as cluster_config
from tests.cluster_process import cluster_config as make_cluster_config
from tests.gateway_process import ROOT

pytestmark = pytest.mark.timeout(60)

SCHEDULE = {
    "schedule.end_of_day": "00:00",
    "schedule.pre_open": "08:00",
    "schedule.open": "08:15",
    "schedule.close": "16:30",
}
PROTECTION = {"protection.AAPL": {"band_pct": "10"}}
REFUSAL = "not supported by the multi-process venue (--role): run `fixgw serve` without --role, or remove them"


def config_with(tmp_path: Path, overrides: dict[str, Any]) -> Path:
    path, _ = make_cluster_config(tmp_path, ["nats://127.0.0.1:1"], {"gw1": ["CLIENT1"]}, {"md1": ["MD1"]},
                                  overrides=overrides)  # fmt: skip
    return path


@pytest.mark.parametrize(
    ("overrides", "tables"),
    [(SCHEDULE, "[schedule]"), (PROTECTION, "[protection]"), ({"protection.halted": "no_entry"}, "[protection]"),
     ({**SCHEDULE, **PROTECTION}, "[schedule] and [protection]")],
)  # fmt: skip
def test_a_cluster_config_with_a_schedule_or_protection_is_refused(
    tmp_path: Path, overrides: dict[str, Any], tables: str
) -> None:
    with pytest.raises(ValueError) as refused:
        cluster_config.load(config_with(tmp_path, overrides))
    assert str(refused.value) == f"config: {tables} {REFUSAL}"


def test_the_same_cluster_config_without_them_loads(tmp_path: Path) -> None:
    cfg, cluster = cluster_config.load(config_with(tmp_path, {}))
    assert cfg.schedule is None and [p.name for p in cluster.gateways] == ["gw1"]


@pytest.mark.parametrize("role", ["engine", "gateway", "md"])
def test_every_role_process_refuses_it_in_one_line(tmp_path: Path, role: str) -> None:
    name = {"engine": "e1", "gateway": "gw1", "md": "md1"}[role]
    proc = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--config", str(config_with(tmp_path, SCHEDULE)), "--role", role,
         "--name", name],
        cwd=ROOT, capture_output=True, text=True, timeout=45,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [f"fixgw serve: error: config: [schedule] {REFUSAL}"]
