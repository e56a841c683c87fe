"""Trading phases in the engine: what each phase accepts, the auction, halts, the band and the breaker, end of day.

Every phase change is a command carrying its time; these tests drive the engine with them directly (the gateway's
schedule and operator channel send the same commands: tests/test_trading_day_e2e.py).
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from engine import (
    CancelOrder,
    ConfigureTrading,
    EndOfDay,
    ExecType,
    Imbalance,
    Indicative,
    Kill,
    MassCancel,
    MatchingEngine,
    OperatorResult,
    OrdStatus,
    Phase,
    PhaseCause,
    PhaseChange,
    Protection,
    QueryOrder,
    Reason,
    ReplaceOrder,
    SetPhase,
    Stat,
    StatUpdate,
    Tick,
    TradePrint,
    TradingDayChange,
    TradingRules,
)
from engine.codec import decode, encode
from engine.ledger import fee_of
from engine.snapshot import dump_state, load_state
from engine.types import HaltPolicy
from tests.engine_helpers import (
    FOK,
    GTC,
    INSTRUMENTS,
    IOC,
    buy,
    client_view,
    engine_depth,
    executions,
    make_engine,
    run,
    sell,
)
from tests.ledger_helpers import check_invariants, funded_engine, ledger_of

pytestmark = pytest.mark.timeout(60)

S = 1_000_000_000  # one second in ns
SCHEDULE, OPERATOR = PhaseCause.SCHEDULE, PhaseCause.OPERATOR
CLOSED, PRE_OPEN, AUCTION, CONTINUOUS, HALTED = (
    Phase.CLOSED, Phase.PRE_OPEN, Phase.AUCTION, Phase.CONTINUOUS, Phase.HALTED
)  # fmt: skip


def phase(symbol: str, to: Phase, cause: PhaseCause = SCHEDULE, ts: int = 0, request_id: str = "") -> SetPhase:
    return SetPhase(request_id if cause is SCHEDULE else request_id or "op", symbol, to, cause, ts)


def rules(**protection: Protection | None) -> ConfigureTrading:
    return ConfigureTrading(TradingRules(protection={s: p for s, p in protection.items() if p}).to_dict())


def pre_open(engine: MatchingEngine, symbol: str = "XYZ") -> None:
    run(engine, [phase(symbol, CLOSED), phase(symbol, PRE_OPEN)])
    assert engine.book(symbol).phase is PRE_OPEN


def phases_of(events: list[Any]) -> list[Phase]:
    return [e.phase for e in events if isinstance(e, PhaseChange)]


def reasons(events: list[Any]) -> list[tuple[str, str, str | None]]:
    return [(e.clordid, e.exec_type.name, e.reason.code if e.reason else None) for e in executions(events)]


# ---------------------------------------------------------------------------- what each phase accepts


def test_a_venue_without_phase_commands_trades_continuously_as_before() -> None:
    engine = make_engine()
    assert all(book.phase is CONTINUOUS for book in engine.books.values())
    events = run(engine, [sell("s", 100, 5, owner="o2"), buy("b", 100, 5)])
    assert [e.exec_type for e in executions(events)][-2:] == [ExecType.TRADE, ExecType.TRADE]
    assert engine.next_due() is None


def test_closed_refuses_orders_and_replaces_but_takes_cancels() -> None:
    engine = make_engine()
    run(engine, [buy("gtc", 99, 5, tif=GTC)])
    events = engine.process(phase("XYZ", CLOSED))
    assert phases_of(events) == [CLOSED]
    refused = executions(engine.process(buy("b", 99, 5)))[0]
    assert (refused.exec_type, refused.reason) == (ExecType.REJECTED, Reason.INSTRUMENT_CLOSED)
    replace = engine.process(ReplaceOrder("o1", "r", "gtc", None, "XYZ", buy("x", 1, 1).side, 98, 5))
    assert replace[0].reason is Reason.INSTRUMENT_CLOSED  # type: ignore[union-attr]
    cancel = executions(engine.process(CancelOrder("o1", "c", "gtc")))[0]
    assert cancel.exec_type is ExecType.CANCELED
    # The other instruments are not affected.
    assert executions(engine.process(buy("abc", 99, 5, symbol="ABC")))[0].exec_type is ExecType.NEW


def test_pre_open_takes_day_and_gtc_orders_matches_nothing_and_refuses_immediate_ones() -> None:
    engine = make_engine()
    pre_open(engine)
    events = run(engine, [sell("s", 99, 5), buy("b", 101, 3), buy("m", None, 2), sell("ms", None, 1, tif=GTC)])
    assert [e.exec_type for e in executions(events)] == [ExecType.NEW] * 4  # crossing, yet no trade
    assert engine_depth(engine, "XYZ", buy("x", 1, 1).side) == [(101, 3, 1)]
    for tif in (IOC, FOK):
        for price in (100, None):
            refused = executions(engine.process(buy(f"i{tif}{price}", price, 1, tif=tif)))[0]
            assert refused.reason is Reason.PRE_OPEN_IMMEDIATE
    # Market orders wait in their own queue, shown in no price level.
    book = engine.book("XYZ")
    assert [o.clordid for o in book.market_buys.orders()] == ["m"]
    assert book.caps[book.market_buys.head.order_id] == INSTRUMENTS[0].max_ticks  # type: ignore[union-attr]
    # Replaces re-rest without matching; a market order cannot be replaced.
    moved = run(engine, [ReplaceOrder("o1", "b2", "b", None, "XYZ", buy("x", 1, 1).side, 102, 3)])
    assert [e.exec_type for e in executions(moved)] == [ExecType.REPLACED]
    refused_replace = engine.process(ReplaceOrder("o1", "m2", "m", None, "XYZ", buy("x", 1, 1).side, None, 3))
    assert refused_replace[0].reason is Reason.REPLACE_MARKET_ORDER  # type: ignore[union-attr]
    # Cancelling a market order takes it out of its queue.
    assert executions(engine.process(CancelOrder("o1", "cm", "m")))[0].exec_type is ExecType.CANCELED
    assert not book.market_buys.count and "m" not in {o.clordid for o in book.resting_orders()}


def test_pre_open_publishes_the_indicative_price_volume_and_imbalance_as_they_change() -> None:
    engine = make_engine()
    pre_open(engine)
    quiet = engine.process(sell("s", 100, 5))
    assert not [e for e in quiet if isinstance(e, Indicative | Imbalance)]  # nothing crosses yet
    events = engine.process(buy("b", 101, 8))
    indicative = [e for e in events if isinstance(e, Indicative)]
    imbalance = [e for e in events if isinstance(e, Imbalance)]
    assert [(e.price, e.qty) for e in indicative] == [(100, 5)]  # max volume 5; least imbalance at 100 and 101: lower
    assert [e.qty for e in imbalance] == [3]  # 8 to buy, 5 to sell at 100
    book = engine.book("XYZ")
    assert indicative[0].rpt_seq == book.rpt_seq - 1 and imbalance[0].rpt_seq == book.rpt_seq
    same = engine.process(buy("b2", 90, 1))  # below the crossing: nothing changes, nothing is published
    assert not [e for e in same if isinstance(e, Indicative | Imbalance)]
    gone = engine.process(CancelOrder("o1", "cb", "b"))
    assert [(e.price, e.qty) for e in gone if isinstance(e, Indicative)] == [(None, 0)]
    assert [e.qty for e in gone if isinstance(e, Imbalance)] == [0]


def test_halted_takes_cancels_only_or_nothing_as_configured() -> None:
    for policy, cancel_ok in ((HaltPolicy.CANCELS_ONLY, True), (HaltPolicy.NO_ENTRY, False)):
        engine = make_engine()
        engine.process(ConfigureTrading(TradingRules(halted=policy).to_dict()))
        run(engine, [buy("b", 99, 5), buy("b2", 98, 5)])
        result = engine.process(phase("XYZ", HALTED, OPERATOR))
        assert phases_of(result) == [HALTED]
        assert [o.clordid for o in engine.book("XYZ").resting_orders()] == ["b", "b2"]  # a halt cancels nothing
        want = Reason.HALTED_CANCELS_ONLY if cancel_ok else Reason.HALTED_NO_ENTRY
        assert executions(engine.process(buy("n", 99, 1)))[0].reason is want
        cancel = engine.process(CancelOrder("o1", "c", "b"))
        if cancel_ok:
            assert executions(cancel)[0].exec_type is ExecType.CANCELED
        else:
            assert cancel[0].reason is Reason.HALTED_NO_ENTRY  # type: ignore[union-attr]
        # A client's mass cancel skips a no-entry halt; cancel on disconnect does not.
        mass = engine.process(MassCancel("o1", "mc"))
        assert mass[-1].cancelled == (1 if cancel_ok else 0)  # type: ignore[union-attr]
        disconnect = engine.process(MassCancel("o1", "", day_only=True, reason=Reason.CANCEL_ON_DISCONNECT))
        assert not engine.book("XYZ").resting_orders(), disconnect


def test_a_halt_can_be_configured_to_cancel_every_order_of_the_instrument() -> None:
    engine = make_engine()
    engine.process(ConfigureTrading(TradingRules(cancel_on_halt=True).to_dict()))
    run(engine, [buy("b", 99, 5, tif=GTC), sell("s", 101, 5), buy("abc", 99, 5, symbol="ABC")])
    events = engine.process(phase("XYZ", HALTED, OPERATOR))
    assert reasons(events) == [("b", "CANCELED", "halt_cancel"), ("s", "CANCELED", "halt_cancel")]
    assert [o.clordid for o in engine.book("ABC").resting_orders()] == ["abc"]


def test_operator_phase_changes_are_answered_per_instrument_and_refused_where_the_phase_does_not_allow() -> None:
    engine = make_engine()
    events = engine.process(SetPhase("op-1", None, HALTED, OPERATOR, 5))
    results = [e for e in events if isinstance(e, OperatorResult)]
    assert [(r.action, r.applied) for r in results] == [(f"halted {s}", True) for s in ("XYZ", "ABC", "BAND")]
    assert phases_of(events) == [HALTED] * 3
    closed = engine.process(SetPhase("op-2", "XYZ", CLOSED, OPERATOR, 6))
    assert phases_of(closed) == [CLOSED]
    refused = engine.process(SetPhase("op-3", "XYZ", HALTED, OPERATOR, 7))  # a closed instrument is not halted
    assert [(r.applied, r.reason) for r in refused if isinstance(r, OperatorResult)] == [
        (False, Reason.PHASE_NOT_ALLOWED)
    ]
    unknown = engine.process(SetPhase("op-4", "NOPE", HALTED, OPERATOR, 8))
    assert [(r.applied, r.reason) for r in unknown if isinstance(r, OperatorResult)] == [(False, Reason.UNKNOWN_SYMBOL)]


def test_the_schedule_moves_forward_only_and_ends_a_halt_only_by_closing() -> None:
    engine = make_engine()
    run(engine, [phase("XYZ", CLOSED), phase("XYZ", PRE_OPEN), phase("XYZ", HALTED, OPERATOR)])
    assert not phases_of(engine.process(phase("XYZ", CONTINUOUS)))  # the schedule's open leaves a halt alone
    assert engine.book("XYZ").scheduled is CONTINUOUS
    assert phases_of(engine.process(phase("XYZ", CLOSED))) == [CLOSED]
    # Opened early by an operator: the schedule's pre-open does not take it back.
    run(engine, [phase("XYZ", CONTINUOUS, OPERATOR)])
    assert not phases_of(engine.process(phase("XYZ", PRE_OPEN)))
    assert engine.book("XYZ").phase is CONTINUOUS


# ---------------------------------------------------------------------------- the auction


def test_the_opening_auction_uncrosses_at_one_price_in_price_time_priority() -> None:
    engine = make_engine()
    pre_open(engine)
    run(engine, [
        sell("s1", 99, 4, owner="o2"), sell("s2", 100, 6, owner="o3"), sell("s3", 102, 5, owner="o2"),
        buy("b1", 101, 3), buy("b2", 100, 5), buy("b3", 100, 4, owner="o4"), buy("m", None, 2, owner="o4"),
    ])  # fmt: skip
    events = engine.process(phase("XYZ", CONTINUOUS, ts=42))
    assert phases_of(events) == [AUCTION, CONTINUOUS]
    prints = [e for e in events if isinstance(e, TradePrint)]
    assert {e.price for e in prints} == {100} and all(e.aggressor is None for e in prints)
    assert sum(e.qty for e in prints) == 10  # demand 14 at 100, supply 10: all sells at or below 100 fill
    fills = {e.clordid: e.cum for e in executions(events, ExecType.TRADE)}
    # The market order first (at its protection price), then 101, then 100 in time order: b2 fills, b3 does not.
    assert fills == {"m": 2, "b1": 3, "b2": 5, "s1": 4, "s2": 6}
    assert all(e.reason is Reason.AUCTION_FILL and not e.aggressor for e in executions(events, ExecType.TRADE))
    book = engine.book("XYZ")
    assert (book.last_px, book.open, book.volume) == (100, 100, 10)
    stats = [e.stat for e in events if isinstance(e, StatUpdate)]
    assert stats == [Stat.OPEN, Stat.HIGH, Stat.LOW, Stat.VOLUME]  # once each, not per trade
    # The book no longer crosses: best bid below best ask.
    assert book.best(buy("x", 1, 1).side).price < book.best(sell("x", 1, 1).side).price  # type: ignore[union-attr]
    assert engine.process(buy("after", 101, 1)) and book.phase is CONTINUOUS


def test_market_orders_left_after_the_auction_expire_and_an_uncrossed_book_opens_without_trades() -> None:
    engine = make_engine()
    pre_open(engine)
    run(engine, [buy("m", None, 5), sell("s", 100, 2, owner="o2"), buy("b", 98, 1)])
    events = engine.process(phase("XYZ", CONTINUOUS))
    assert reasons(events)[-1] == ("m", "EXPIRED", "auction_market_remainder")
    assert executions(events, ExecType.TRADE)[0].last_qty == 2
    engine2 = make_engine()
    pre_open(engine2)
    run(engine2, [buy("b", 98, 1), sell("s", 100, 2)])
    quiet = engine2.process(phase("XYZ", CONTINUOUS))
    assert phases_of(quiet) == [AUCTION, CONTINUOUS] and not executions(quiet)


def test_self_trade_prevention_in_the_auction_cancels_the_later_order() -> None:
    engine = make_engine()
    pre_open(engine)
    run(engine, [sell("s", 100, 5, owner="o1"), buy("b", 100, 5, owner="o1"), buy("b2", 100, 5, owner="o2")])
    events = engine.process(phase("XYZ", CONTINUOUS))
    assert ("b", "CANCELED", "self_trade") in reasons(events)
    assert {e.clordid for e in executions(events, ExecType.TRADE)} == {"s", "b2"}


def test_auction_fills_settle_through_the_ledger_at_the_maker_rate_and_market_buys_hold_their_cap() -> None:
    engine = funded_engine()
    pre_open(engine)
    ledger = ledger_of(engine)
    market = ledger.markets["XYZ"]
    run(engine, [buy("m", None, 3, account="A"), sell("s", 100, 5, account="B"), buy("b", 101, 1, account="C")])
    cap = engine.book("XYZ").caps[engine.find("o1", "m").order_id]  # type: ignore[union-attr]
    check_invariants(engine)
    held = ledger.accounts["A"].held["USD"]
    assert held == 3 * cap * market.quote_per_tick_lot * (10**6 + market.taker_ppm) // 10**6
    before = ledger.accounts["B"].available["USD"]
    events = engine.process(phase("XYZ", CONTINUOUS))
    fills = executions(events, ExecType.TRADE)
    assert [(f.clordid, f.last_qty, f.last_px) for f in fills] == [("m", 3, 100), ("s", 3, 100), ("b", 1, 100),
                                                                    ("s", 1, 100)]  # fmt: skip
    for f in fills:  # nobody took liquidity: both sides pay the maker rate
        assert f.fee == fee_of(f.last_qty * f.last_px * market.quote_per_tick_lot, market.maker_ppm)
    check_invariants(engine)
    assert ledger.accounts["A"].held["USD"] == 0 and not ledger.capped
    assert ledger.accounts["B"].available["USD"] == before + 4 * 100 * market.quote_per_tick_lot - sum(
        f.fee for f in fills if f.clordid == "s"
    )


# ---------------------------------------------------------------------------- the band and the breaker


def test_the_dynamic_band_refuses_far_limit_prices_and_stops_market_orders_at_its_edge() -> None:
    engine = make_engine()
    # Asks entered before the band existed: 105 (within 10% of 100) and 120 (beyond).
    run(engine, [sell("far", 120, 2, owner="o2"), sell("near", 105, 2, owner="o2")])
    engine.process(rules(XYZ=Protection(band_bps=1000)))  # 10% around the last trade
    assert executions(engine.process(buy("free", 103, 1)))[0].exec_type is ExecType.NEW  # no reference: no band
    run(engine, [CancelOrder("o1", "cf", "free"), sell("s", 100, 1, owner="o2"), buy("t", 100, 1)])
    assert engine.book("XYZ").last_px == 100
    assert executions(engine.process(buy("high", 111, 1)))[0].reason is Reason.PRICE_OUTSIDE_DYNAMIC_BAND
    assert executions(engine.process(sell("low", 89, 1)))[0].reason is Reason.PRICE_OUTSIDE_DYNAMIC_BAND
    assert executions(engine.process(buy("edge", 90, 1)))[0].exec_type is ExecType.NEW
    events = engine.process(buy("mkt", None, 4))
    assert reasons(events) == [("mkt", "NEW", None), ("mkt", "TRADE", None), ("near", "TRADE", None),
                               ("mkt", "CANCELED", "market_band_remainder")]  # fmt: skip
    replace = engine.process(ReplaceOrder("o2", "r", "far", None, "XYZ", sell("x", 1, 1).side, 80, 2))
    assert replace[0].reason is Reason.PRICE_OUTSIDE_DYNAMIC_BAND  # type: ignore[union-attr]


def breaker_engine(**extra: Any) -> MatchingEngine:
    engine = make_engine()
    engine.process(rules(XYZ=Protection(breaker_bps=500, breaker_window_ns=60 * S, breaker_halt_ns=30 * S)))
    run(engine, [sell("s0", 100, 1, owner="o2", ts=1 * S), buy("b0", 100, 1, ts=1 * S)])  # the reference: 100
    run(engine, [sell("s1", 104, 2, owner="o2", ts=2 * S), sell("s2", 106, 3, owner="o2", ts=2 * S)])
    return engine


def test_the_breaker_halts_before_a_trade_beyond_its_limit_and_the_triggering_order_rests() -> None:
    engine = breaker_engine()
    events = engine.process(buy("big", 107, 5, ts=10 * S))
    # 104 is within 5% of 100; 106 is not: the instrument halts instead of trading there.
    assert [e.last_px for e in executions(events, ExecType.TRADE)] == [104, 104]
    assert phases_of(events) == [HALTED]
    change = next(e for e in events if isinstance(e, PhaseChange))
    assert (change.cause, change.halt_until) == (PhaseCause.CIRCUIT_BREAKER, 40 * S)
    book = engine.book("XYZ")
    assert [o.clordid for o in book.bids[-107].orders()] == ["big"]  # the rest of a DAY limit order waits: crossed
    assert engine.next_due() == 40 * S
    assert executions(engine.process(buy("n", 99, 1, ts=11 * S)))[0].reason is Reason.HALTED_CANCELS_ONLY
    assert not engine.process(Tick(39 * S))  # not yet
    reopen = engine.process(Tick(40 * S))
    assert phases_of(reopen) == [AUCTION, CONTINUOUS]
    assert [(e.price, e.qty) for e in reopen if isinstance(e, TradePrint)] == [(106, 3)]
    assert engine.next_due() is None and book.halt_until is None


def test_the_breaker_expires_an_ioc_remainder() -> None:
    engine = breaker_engine()
    events = engine.process(buy("ioc", 107, 5, tif=IOC, ts=10 * S))
    assert [e.last_px for e in executions(events, ExecType.TRADE)] == [104, 104]
    assert reasons(events)[-1] == ("ioc", "EXPIRED", "breaker_remainder")
    assert phases_of(events) == [HALTED]


def test_the_breakers_window_slides() -> None:
    engine = breaker_engine()  # a trade at 100 at 1 s
    run(engine, [buy("y", 104, 1, ts=70 * S)])  # the 100 left the window but is its baseline: 104 is within 5%
    assert engine.book("XYZ").last_px == 104
    events = engine.process(buy("z", 106, 3, ts=140 * S))  # 100 is forgotten, 104 the baseline: 106 is within 5%
    assert not phases_of(events) and [e.last_px for e in executions(events, ExecType.TRADE)][-1] == 106
    early = breaker_engine()
    assert phases_of(early.process(buy("z", 106, 3, ts=30 * S))) == [HALTED]  # within the window: 100 counts


def test_a_fill_or_kill_order_is_judged_within_the_breaker_limit() -> None:
    engine = breaker_engine()
    events = engine.process(buy("fok", 107, 5, tif=FOK, ts=10 * S))
    assert reasons(events) == [("fok", "NEW", None), ("fok", "EXPIRED", "fok_not_filled")]
    assert engine.book("XYZ").phase is CONTINUOUS


# ---------------------------------------------------------------------------- close and end of day


def test_the_close_expires_day_orders_keeps_gtc_and_resets_the_statistics() -> None:
    engine = make_engine()
    run(engine, [sell("s", 100, 1, owner="o2"), buy("b", 100, 1), buy("day", 99, 1), buy("gtc", 98, 1, tif=GTC)])
    events = engine.process(phase("XYZ", CLOSED, ts=7))
    assert reasons(events) == [("day", "EXPIRED", "end_of_day")]
    assert [(e.stat, e.value) for e in events if isinstance(e, StatUpdate)] == [
        (Stat.OPEN, None), (Stat.HIGH, None), (Stat.LOW, None), (Stat.VOLUME, 0)
    ]  # fmt: skip
    book = engine.book("XYZ")
    assert [o.clordid for o in book.resting_orders()] == ["gtc"] and book.last_px == 100  # the reference stays


def test_end_of_day_expires_day_orders_everywhere_and_advances_the_trading_date() -> None:
    engine = make_engine()
    first = engine.process(EndOfDay("2026-12-07", 1))
    assert first == [TradingDayChange("2026-12-07", None, 1)]
    run(engine, [buy("day", 99, 1), buy("gtc", 98, 1, tif=GTC), buy("abc", 50, 1, symbol="ABC")])
    events = engine.process(EndOfDay("2026-12-08", 2))
    assert sorted(r[0] for r in reasons(events)) == ["abc", "day"]
    assert events[-1] == TradingDayChange("2026-12-08", "2026-12-07", 2)
    assert engine.trading_date == "2026-12-08"


def test_a_killed_account_stays_killed_across_a_halt() -> None:
    engine = funded_engine()
    run(engine, [buy("a", 100, 1, account="A")])
    engine.process(Kill("k", account="A"))
    run(engine, [phase("XYZ", HALTED, OPERATOR), phase("XYZ", CONTINUOUS, OPERATOR)])
    assert executions(engine.process(buy("a2", 100, 1, account="A")))[0].reason is Reason.ACCOUNT_KILLED


# ---------------------------------------------------------------------------- journal and snapshots


def day_of_commands() -> list[Any]:
    return [
        rules(XYZ=Protection(band_bps=2000, breaker_bps=500, breaker_window_ns=60 * S, breaker_halt_ns=30 * S)),
        EndOfDay("2026-12-07", 0),
        phase("XYZ", CLOSED), phase("XYZ", PRE_OPEN, ts=1 * S),
        sell("s1", 100, 5, owner="o2", ts=2 * S), buy("b1", 101, 3, ts=2 * S), buy("m1", None, 4, ts=3 * S),
        sell("s2", 103, 4, owner="o2", ts=3 * S, tif=GTC),
        phase("XYZ", CONTINUOUS, ts=4 * S),
        sell("s3", 110, 5, owner="o2", ts=5 * S), buy("b2", 112, 6, ts=6 * S),  # 110 is more than 5% above 100
        QueryOrder("o1", "b2", ts=6 * S),
    ]  # fmt: skip


def test_every_phase_command_survives_the_journal_codec() -> None:
    for cmd in [*day_of_commands(), Tick(5), SetPhase("op-9", None, HALTED, OPERATOR, 3)]:
        assert decode(encode(cmd)) == cmd


@pytest.mark.parametrize("cut", range(len(day_of_commands()) + 1))
def test_a_snapshot_taken_in_any_phase_goes_on_exactly_like_the_engine(cut: int) -> None:
    """Snapshot after ``cut`` commands (pre-open with market orders waiting, an indicative price, a breaker halt
    with its window and timer...), then both engines take the same commands: same events, same state."""
    commands = [*day_of_commands(), Tick(20 * S), Tick(40 * S), sell("s4", 112, 1, owner="o2", ts=41 * S),
                phase("XYZ", CLOSED, ts=50 * S), EndOfDay("2026-12-08", 51 * S)]  # fmt: skip
    original = make_engine()
    run(original, commands[:cut])
    copy = load_state(orjson.loads(orjson.dumps(dump_state(original))), INSTRUMENTS)
    for cmd in commands[cut:]:
        assert [client_view(e) for e in copy.process(cmd)] == [client_view(e) for e in original.process(cmd)], cmd
    assert dump_state(copy) == dump_state(original)


def test_the_day_of_commands_reaches_every_phase() -> None:
    engine = make_engine()
    events = run(engine, [*day_of_commands(), Tick(36 * S)])
    assert phases_of(events) == [CLOSED, PRE_OPEN, AUCTION, CONTINUOUS, HALTED, AUCTION, CONTINUOUS]
    assert engine.book("XYZ").phase is CONTINUOUS
    assert OrdStatus.FILLED in {e.status for e in executions(events) if e.clordid == "b2"}
