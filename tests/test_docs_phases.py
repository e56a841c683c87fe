"""Section 11 of the Rules of Engagement (trading phases) tells what the code does: each phase's
SecurityTradingStatus, the causes in SecurityStatus Texts, the values of f and h, the demo schedule."""

from __future__ import annotations

import re
import tomllib

from engine import Phase, PhaseCause
from feeds.status import PHASE_NAMES
from gateway.config import parse_config
from gateway.fixcodes import PHASE_STATUS, SecurityTradingStatus, TradSesStatus
from tests.gateway_process import DEMO_CONFIG
from tests.test_docs import PHASES_SECTION, README, _table

SECTION = PHASES_SECTION


def _part(number: str) -> str:
    start = SECTION.index(f"\n### {number} ")
    end = SECTION.find("\n### ", start + 1)
    return SECTION[start : end if end > 0 else None]


def test_each_phase_is_documented_with_its_security_trading_status() -> None:
    rows = _table(_part("11.1"), "| Phase | SecurityTradingStatus (326) |")
    documented = {row[0]: int(row[1].split()[0]) for row in rows}
    assert documented == {PHASE_NAMES[p].replace("continuous trading", "continuous"): int(c)
                          for p, c in PHASE_STATUS.items()}  # fmt: skip
    assert set(PHASE_STATUS) == set(Phase)


def test_security_status_values_and_texts_are_the_codes() -> None:
    part, header = _part("11.6"), "| Tag | Name | Req | Values | Meaning |"
    rows = {row[1]: row for row in _table(part[part.index("SecurityStatus (f), outbound") :], header)}
    assert {int(v) for v in re.findall(r"\d+", rows["SecurityTradingStatus"][3])} == {
        int(s) for s in SecurityTradingStatus
    }
    causes = re.findall(r"`([^`]+)`", rows["Text"][4].split("Causes:")[1])
    assert causes[: len(PhaseCause)] == [c.text for c in PhaseCause]
    h = {row[1]: row for row in _table(part[part.index("TradingSessionStatus (h), outbound") :], header)}
    venue = h["TradSesStatus"][3]
    assert {(int(code), name.lower()) for code, name in re.findall(r"(\d) (\w[\w-]*)", venue)} == {
        (int(s), s.name.lower().replace("_", "-")) for s in TradSesStatus
    }


def test_the_documented_demo_schedule_is_the_demo_configs() -> None:
    cfg = parse_config(tomllib.loads(DEMO_CONFIG.read_text()), DEMO_CONFIG.parent)
    assert cfg.schedule is not None
    rows = _table(_part("11.2"), "| Instrument | pre-open |")
    session = cfg.schedule.sessions["AAPL"]
    times = [t.strftime("%H:%M") for t in (session.pre_open, session.open, session.close, cfg.schedule.end_of_day)]
    assert rows[0] == ["AAPL, MSFT", *times] and cfg.schedule.sessions["MSFT"] == session
    assert rows[1][0] == "BTC-USD" and "BTC-USD" not in cfg.schedule.sessions
    assert "no end-of-day" not in README.lower()
