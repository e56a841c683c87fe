"""The trading schedule from the config: phases by time of day, the trading date, the next boundary, and the config
checks; the journal in segments, read across them by recovery, seqlog's reader and the store's follower."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path
from typing import Any

import pytest

from engine import (
    EndOfDay,
    ExecType,
    Execution,
    HaltPolicy,
    MatchingEngine,
    Phase,
    PhaseCause,
    SelfTradePrevention,
    SetPhase,
)
from gateway.config import parse_config
from gateway.journal import Durability, Journal, read_records, recover
from gateway.schedule import Schedule, due_commands, parse_protection, parse_schedule
from seqlog import FileLogReader, read_log, segments
from store.db import open_backend
from tests.engine_helpers import INSTRUMENTS, buy, sell
from tests.gateway_process import DEMO_CONFIG
from tests.store_support import random_flow, store_config
from tests.test_durability import random_commands
from tests.test_store import follow_to_end

pytestmark = pytest.mark.timeout(60)

NS = 1_000_000_000
TZ = "America/New_York"


def ns(text: str, tz: str = TZ) -> int:
    """Local time ``YYYY-MM-DD HH:MM[:SS]`` in ``tz`` as ns since the epoch."""
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=zoneinfo.ZoneInfo(tz)).timestamp() * NS)


def schedule(**raw: Any) -> Schedule:
    table = {"end_of_day": "17:00", "pre_open": "09:00", "open": "09:30", "close": "16:00", **raw}
    parsed = parse_schedule(table, INSTRUMENTS, TZ)
    assert parsed is not None
    return parsed


def test_phases_follow_the_session_times_in_the_venues_time_zone() -> None:
    s = schedule(instruments={"ABC": {"continuous": True}})
    assert [s.phase_at("XYZ", ns(f"2026-12-07 {t}")) for t in ("08:59:59", "09:00", "09:29:59", "09:30", "15:59",
                                                                 "16:00", "23:00")] == [
        Phase.CLOSED, Phase.PRE_OPEN, Phase.PRE_OPEN, Phase.CONTINUOUS, Phase.CONTINUOUS, Phase.CLOSED, Phase.CLOSED
    ]  # fmt: skip
    assert s.phase_at("ABC", ns("2026-12-07 03:00")) is Phase.CONTINUOUS  # no session: always continuous
    # The same UTC instant is a different local time elsewhere: the venue's zone decides.
    assert s.phase_at("XYZ", ns("2026-12-07 14:45", "UTC")) is Phase.CONTINUOUS  # 09:45 in New York


def test_the_trading_date_advances_at_the_end_of_day_and_skips_days_without_sessions() -> None:
    s = schedule(days=["mon", "tue", "wed", "thu", "fri"])
    assert s.trading_date(ns("2026-12-07 16:59:59")) == dt.date(2026, 12, 7)  # a Monday
    assert s.trading_date(ns("2026-12-07 17:00")) == dt.date(2026, 12, 8)
    assert s.trading_date(ns("2026-12-11 17:30")) == dt.date(2026, 12, 14)  # Friday evening: Monday's
    assert s.phase_at("XYZ", ns("2026-12-12 10:00")) is Phase.CLOSED  # Saturday
    midnight = schedule(end_of_day="00:00")
    assert midnight.trading_date(ns("2026-12-07 23:59")) == dt.date(2026, 12, 7)


def test_the_next_boundary_is_the_next_session_time_or_end_of_day() -> None:
    s = schedule()
    assert s.next_change(ns("2026-12-07 08:00")) == ns("2026-12-07 09:00")
    assert s.next_change(ns("2026-12-07 09:00")) == ns("2026-12-07 09:30")
    assert s.next_change(ns("2026-12-07 16:30")) == ns("2026-12-07 17:00")
    assert s.next_change(ns("2026-12-07 17:00")) == ns("2026-12-08 09:00")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"end_of_day": "25:00"}, "not a time of day"),
        ({"open": "08:00"}, "pre_open < open < close"),
        ({"close": "18:00"}, "close must not be after schedule.end_of_day"),
        ({"days": ["mon", "funday"]}, "days of the week"),
        ({"instruments": {"NOPE": {"continuous": True}}}, "unknown instruments"),
        ({"instruments": {"XYZ": {"open": "10:00"}}}, "needs pre_open, open and close"),
    ],
)
def test_a_bad_schedule_is_refused_with_what_is_wrong(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        schedule(**raw)


def test_protection_config_in_basis_points_and_nanoseconds() -> None:
    rules = parse_protection(
        {"halted": "no_entry", "*": {"band_pct": "10"}, "XYZ": {"breaker_pct": "2.5", "breaker_window": 30,
                                                                "breaker_halt": "0.5"}},
        INSTRUMENTS,
    )  # fmt: skip
    assert rules.halted is HaltPolicy.NO_ENTRY
    assert rules.protection["ABC"].band_bps == 1000 and rules.protection["ABC"].breaker_bps is None
    xyz = rules.protection["XYZ"]
    assert (xyz.band_bps, xyz.breaker_bps, xyz.breaker_window_ns, xyz.breaker_halt_ns) == (1000, 250, 30 * NS, NS // 2)
    for bad, message in (({"XYZ": {"band_pct": "0.001"}}, "whole basis points"), ({"XYZ": {"breaker_pct": "5"}},
                         "breaker_window"), ({"halted": "maybe"}, "cancels_only or no_entry")):  # fmt: skip
        with pytest.raises(ValueError, match=message):
            parse_protection(bad, INSTRUMENTS)


def test_the_demo_config_schedules_aapl_and_msft_and_keeps_btc_continuous() -> None:
    import tomllib

    cfg = parse_config(tomllib.loads(DEMO_CONFIG.read_text()), DEMO_CONFIG.parent)
    assert cfg.schedule is not None and sorted(cfg.schedule.sessions) == ["AAPL", "MSFT"]
    assert cfg.schedule.phase_at("BTC-USD", 0) is Phase.CONTINUOUS
    without = tomllib.loads(DEMO_CONFIG.read_text())
    del without["schedule"], without["protection"]
    bare = parse_config(without, DEMO_CONFIG.parent)
    assert bare.schedule is None and not bare.trading_rules.protection  # no schedule: today's behaviour


# ---------------------------------------------------------------------------- the journal in segments


def rolled_journal(path: Path) -> list[int]:
    """A journal of three days (two rolls), each day ended by an EndOfDay; returns each segment's start."""
    journal = Journal(path, Durability.WRITE)
    starts = [0]
    for day, label in enumerate(("2026-12-07", "2026-12-08", "2026-12-09")):
        for cmd in random_commands(day, 40):
            journal.append(cmd)
        journal.append(EndOfDay(label, day))
        if day < 2:
            journal.roll(f"2026-12-{8 + day:02d}")
            starts.append(journal.offset)
    journal.close()
    return starts


def test_a_rolled_journal_reads_as_one_log_with_positions_across_segments(tmp_path: Path) -> None:
    path = tmp_path / "commands.journal"
    starts = rolled_journal(path)
    found = segments(path)
    assert [b for b, _ in found] == starts
    assert [p.name for _, p in found][1:] == [f"commands-{starts[1]:016d}-2026-12-08.journal",
                                             f"commands-{starts[2]:016d}-2026-12-09.journal"]  # fmt: skip
    whole = list(read_log(path))
    by_segment = [(b + off, payload) for b, p in found for off, payload in read_records(p)]
    assert whole == by_segment and len(whole) == 3 * 41
    reader = FileLogReader(path)
    got, pos = [], 0
    while batch := reader.read(pos, 50):
        got += [(p, payload) for p, _, payload in batch]
        pos = batch[-1][1]
    assert got == whole and pos == reader.size()
    # Reopened, the journal appends to the last segment.
    journal = Journal(path, Durability.WRITE)
    assert journal.offset == pos and journal.path == found[-1][1]
    journal.close()


def test_recovery_replays_across_segments_and_cuts_only_the_last(tmp_path: Path) -> None:
    path = tmp_path / "commands.journal"
    rolled_journal(path)
    engine, report = recover(path, tmp_path / "snaps", INSTRUMENTS, SelfTradePrevention.CANCEL_RESTING)
    assert report.replayed == 3 * 41 and engine.trading_date == "2026-12-09" and report.error is None
    last = segments(path)[-1][1]
    with last.open("ab") as f:
        f.write(b"\x05\x00")  # a torn header at the very end
    _, cut = recover(path, tmp_path / "snaps", INSTRUMENTS, SelfTradePrevention.CANCEL_RESTING)
    assert (
        cut.error is not None and cut.cut_bytes == 2 and last.stat().st_size == cut.journal_end - segments(path)[-1][0]
    )


def test_the_reader_notices_a_new_segment(tmp_path: Path) -> None:
    path = tmp_path / "commands.journal"
    journal = Journal(path, Durability.WRITE)
    journal.append(buy("b", 100, 1))
    reader = FileLogReader(path)
    first = reader.read(0, 10)
    assert len(first) == 1
    journal.roll("2026-12-08")
    journal.append(sell("s", 100, 1))
    journal.close()
    assert reader.wait(first[-1][1], 2.0)
    second = reader.read(first[-1][1], 10)
    assert [p for p, _, _ in second] == [first[-1][1]]


def test_the_store_follows_the_journal_across_its_segments_and_records_auction_trades(tmp_path: Path) -> None:
    from engine import Execution, SetPhase

    cfg = store_config(tmp_path, "sqlite")
    path = cfg.data_dir / "journal" / "commands.journal"
    journal = Journal(path, Durability.WRITE)
    engine = MatchingEngine(cfg.instruments, cfg.self_trade_prevention)
    start = 1_800_000_000 * NS

    def phase(to: Phase, ts: int) -> SetPhase:
        return SetPhase("", "AAPL", to, PhaseCause.SCHEDULE, ts)

    day = [EndOfDay("2027-01-15", start), phase(Phase.CLOSED, start), phase(Phase.PRE_OPEN, start + 1),
           buy("b1", 10_001, 5, owner="CLIENT1", account="ACC1", symbol="AAPL", ts=start + 2),
           buy("m1", None, 3, owner="CLIENT1", account="ACC1", symbol="AAPL", ts=start + 3),
           sell("s1", 9_999, 7, owner="CLIENT2", account="ACC2", symbol="AAPL", ts=start + 4),
           phase(Phase.CONTINUOUS, start + 5)]  # fmt: skip
    executions: list[Execution] = []
    for i, cmd in enumerate([*day, *random_flow(3, 300, start + 10), EndOfDay("2027-01-18", start + 400 * NS),
                             *random_flow(4, 300, start + 500 * NS)]):  # fmt: skip
        journal.append(cmd)
        executions += [e for e in engine.process(cmd) if type(e) is Execution]
        if isinstance(cmd, EndOfDay) and i > 0:
            journal.roll(cmd.trading_date)
    journal.close()
    assert len(segments(path)) == 2
    follow_to_end(cfg, path).close()
    db = open_backend(cfg)
    rows = db.fetch("SELECT trade_id, aggressor, buy_order_id, sell_order_id FROM trades ORDER BY trade_id")
    trade_ids = {e.trade_id for e in executions if e.exec_type is ExecType.TRADE}
    assert [r[0] for r in rows] == sorted(trade_ids)  # every trade of both days, once
    auction = [r for r in rows if r[1] == "AUCTION"]
    assert len(auction) == 2 and all(r[2] and r[3] for r in auction)  # m1 x3 then b1 x4 against s1


# ---------------------------------------------------------------------------- the commands a clock sends


def test_due_commands_catch_up_in_order_and_applying_them_twice_changes_nothing() -> None:
    """What the multi-process venue's clock relies on (roles.engine): a late decision catches up with every boundary
    it missed, and a second copy of the same decision (two engines both believing they are active) is a no-op."""
    s = schedule(instruments={"ABC": {"continuous": True}, "BAND": {"continuous": True}})  # XYZ alone has a session
    engine = MatchingEngine(INSTRUMENTS)
    for t, want in (
        ("2026-12-07 08:00", ["2026-12-07", "closed"]),  # the first day begins; XYZ closed before its pre-open
        ("2026-12-07 09:10", ["pre_open"]),
        ("2026-12-07 16:01", ["closed"]),  # late: the open was missed, the close is what is due now
        ("2026-12-07 17:01", ["2026-12-08"]),  # the day ends: the date moves on
        ("2026-12-08 09:45", ["continuous"]),  # late: straight to trading, through the opening auction
    ):
        commands = due_commands(s, engine, ns(t))
        assert [c.trading_date if isinstance(c, EndOfDay) else c.phase.value for c in commands] == want, t
        assert all(c.ts == ns(t) for c in commands)  # type: ignore[union-attr]
        first = [e for c in commands for e in engine.process(c)]
        assert first and [e for c in commands for e in engine.process(c)] == []  # the same decision again: nothing
        assert due_commands(s, engine, ns(t)) == []
    assert engine.trading_date == "2026-12-08" and engine.books["XYZ"].phase is Phase.CONTINUOUS


def test_an_end_of_day_for_a_date_already_begun_changes_nothing() -> None:
    engine = MatchingEngine(INSTRUMENTS)
    engine.process(EndOfDay("2026-12-07", 1))
    engine.process(buy("day", 99, 1))
    assert engine.process(EndOfDay("2026-12-07", 2)) == [] and engine.process(EndOfDay("2026-12-06", 3)) == []
    order = engine.find("o1", "day")
    assert engine.trading_date == "2026-12-07" and order is not None and order.is_open  # the DAY order still works
