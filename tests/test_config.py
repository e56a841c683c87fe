"""The venue configuration: profiles, per-session options and the QuickFIX settings generated from them."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from gateway.config import DEFAULT_CONFIG, parse_config, quickfix_settings

DEMO: dict[str, Any] = tomllib.loads(DEFAULT_CONFIG.read_text())


def _config(venue: dict[str, Any] | None = None, fix: dict[str, Any] | None = None, **sessions: dict[str, Any]) -> Any:
    raw = {**DEMO, "venue": {**DEMO["venue"], **(venue or {})}, "fix": {**DEMO["fix"], **(fix or {})}}
    raw["sessions"] = {name: {**DEMO["sessions"]["CLIENT1"], **spec} for name, spec in sessions.items()}
    return parse_config(raw, base=DEFAULT_CONFIG.parent)


def _options(cfg: Any, comp_id: str) -> tuple[bool, int, int]:
    s = cfg.session(comp_id)
    return s.reset_on_logon, s.heartbeat_min, s.heartbeat_max


def test_profiles_set_the_defaults_and_fix_and_sessions_override_them() -> None:
    production = _config(A={})
    assert (production.profile, _options(production, "A"), production.message_log) == (
        "production", (False, 5, 120), False,
    )  # fmt: skip
    test = _config({"profile": "test"}, {"message_log": False}, A={}, B={"reset_on_logon": False, "heartbeat_max": 30})
    assert (_options(test, "A"), _options(test, "B"), test.message_log) == ((True, 1, 120), (False, 1, 30), False)
    venue_wide = _config(fix={"reset_on_logon": True, "heartbeat_min": 10}, A={}, B={"heartbeat_min": 20})
    assert (_options(venue_wide, "A"), _options(venue_wide, "B")) == ((True, 10, 120), (True, 20, 120))
    assert _config({"profile": "test"}, A={}).message_log is True


@pytest.mark.parametrize(
    ("venue", "session", "error"),
    [
        ({"profile": "staging"}, {}, "venue.profile must be one of production, test, not 'staging'"),
        ({}, {"heartbeat_min": 0}, "sessions.A: heartbeat bounds need 1 <= heartbeat_min <= heartbeat_max"),
        ({}, {"heartbeat_min": 60, "heartbeat_max": 30}, "sessions.A: heartbeat bounds"),
    ],
)
def test_bad_session_options_are_refused_at_load(venue: dict[str, Any], session: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error.replace("(", r"\(").replace(")", r"\)")):
        _config(venue, A=session)


def test_quickfix_settings_check_every_tag_and_reset_only_the_sessions_that_ask(tmp_path: Path) -> None:
    cfg = _config(A={"reset_on_logon": True}, B={})
    default, *sessions = quickfix_settings(cfg).split("[SESSION]")
    assert "AllowUnknownMsgFields=N" in default and "ResetOnLogon=N" in default
    by_target = {block.split("TargetCompID=")[1].split()[0]: block for block in sessions}
    assert "ResetOnLogon=Y" in by_target["A"] and "ResetOnLogon" not in by_target["B"]
