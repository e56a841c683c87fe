"""The engine's window of finished orders: it keeps every working order and each owner's last N finished ones, and
forgets the rest, identically on replay and from a snapshot (memory bounded by the working set, issue 14)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import (
    CancelOrder,
    CancelReject,
    Command,
    ConfigureTrading,
    EndOfDay,
    Event,
    ExecType,
    Execution,
    MatchingEngine,
    OrdStatus,
    QueryOrder,
    Reason,
    ReplaceOrder,
    TradingRules,
)
from engine.snapshot import dump_state, load_state
from tests.engine_helpers import BUY, GTC, INSTRUMENTS, IOC, buy, client_view, executions, make_engine, sell
from tests.test_engine_properties import Case, cases

pytestmark = pytest.mark.timeout(120)
WINDOW = 3


def window(n: int) -> ConfigureTrading:
    return ConfigureTrading(TradingRules(finished_orders=n).to_dict())


def finished_reports(events: list[Event]) -> list[Execution]:
    """The last report of each order that finished in ``events`` (filled, cancelled or expired after acceptance)."""
    return [
        e for e in executions(events)
        if e.order.order_id and not e.leaves and e.exec_type is not ExecType.ORDER_STATUS
    ]  # fmt: skip


def status(engine: MatchingEngine, owner: str, clordid: str) -> Execution:
    (report,) = engine.process(QueryOrder(owner, clordid))
    assert isinstance(report, Execution)
    return report


# ---------------------------------------------------------------------------------------------- the rule


def test_a_finished_order_is_known_inside_the_window_and_forgotten_beyond_it() -> None:
    engine = make_engine()
    engine.process(window(2))
    for i in range(3):  # three orders entered and cancelled: the first falls out of a window of two
        engine.process(buy(f"b{i}", 100, 5))
        engine.process(CancelOrder("o1", f"b{i}-x", f"b{i}", None))
    first, second = engine.find("o1", "b0-x"), engine.find("o1", "b1-x")
    assert first is None and engine.find("o1", "b0") is None
    assert second is not None and engine.find("o1", "b1") is second  # every ClOrdID of its chain

    forgotten = status(engine, "o1", "b0")
    assert (forgotten.status, forgotten.reason) == (OrdStatus.REJECTED, Reason.UNKNOWN_ORDER)
    known = status(engine, "o1", "b1")
    assert (known.status, known.exec_type, known.order.order_id) == (OrdStatus.CANCELED, ExecType.ORDER_STATUS, 2)
    assert status(engine, "o1", "b1-x").status is OrdStatus.CANCELED

    # A cancel of the known finished order is "too late"; of the forgotten one, "unknown order".
    (late,) = engine.process(CancelOrder("o1", "c1", "b1-x", None))
    (unknown,) = engine.process(CancelOrder("o1", "c0", "b0-x", None))
    assert isinstance(late, CancelReject) and isinstance(unknown, CancelReject)
    assert (late.reason, unknown.reason) == (Reason.ORDER_DONE, Reason.UNKNOWN_ORDER)

    # A ClOrdID inside the window is still a duplicate; one beyond it may be used again.
    refused = engine.process(buy("b1", 100, 5))[0]
    assert isinstance(refused, Execution) and refused.reason is Reason.DUPLICATE_CLORDID
    reused = engine.process(buy("b0", 100, 5))[0]
    assert isinstance(reused, Execution) and reused.exec_type is ExecType.NEW


def test_working_orders_are_never_forgotten_and_each_owner_has_its_own_window() -> None:
    engine = make_engine()
    engine.process(window(1))
    engine.process(buy("rest", 100, 5))  # works all along
    engine.process(sell("other", 200, 5, owner="o2"))
    engine.process(CancelOrder("o2", "other-x", "other", None))
    for i in range(5):
        engine.process(buy(f"ioc{i}", 90, 5, tif=IOC))
    assert engine.find("o1", "rest") is not None and engine.find("o1", "ioc4") is not None
    assert all(engine.find("o1", f"ioc{i}") is None for i in range(4))
    assert engine.find("o2", "other-x") is not None  # o1's orders do not push o2's out
    assert len(engine.orders) == 3


def test_fills_finish_orders_on_both_sides_and_a_replace_chain_is_forgotten_whole() -> None:
    engine = make_engine()
    engine.process(window(1))
    engine.process(sell("s", 100, 10, owner="o2"))
    engine.process(buy("b", 90, 10))
    engine.process(ReplaceOrder("o1", "b2", "b", None, "XYZ", BUY, 95, 10))
    engine.process(ReplaceOrder("o1", "b3", "b2", None, "XYZ", BUY, 100, 10))  # fills both
    assert status(engine, "o1", "b").status is OrdStatus.FILLED  # by its first ClOrdID
    assert status(engine, "o2", "s").status is OrdStatus.FILLED
    engine.process(buy("next", 90, 1, tif=IOC))  # o1's next finished order
    assert [engine.find("o1", c) for c in ("b", "b2", "b3")] == [None, None, None]
    assert engine.find("o2", "s") is not None


def test_the_end_of_the_trading_day_forgets_every_finished_order_but_not_gtc_ones_working() -> None:
    engine = make_engine()
    engine.process(EndOfDay("2026-12-07"))
    engine.process(buy("done", 100, 5))
    engine.process(CancelOrder("o1", "done-x", "done", None))
    engine.process(buy("day", 100, 5))
    engine.process(buy("gtc", 100, 5, tif=GTC))
    events = engine.process(EndOfDay("2026-12-08"))
    assert [e.order.clordid for e in executions(events, ExecType.EXPIRED)] == ["day"]
    assert [engine.find("o1", c) is not None for c in ("done", "done-x", "day", "gtc")] == [False] * 3 + [True]
    assert len(engine.orders) == 1 and not any(engine.finished.values())
    assert engine.process(buy("done", 100, 5))[0].exec_type is ExecType.NEW  # type: ignore[union-attr]


def test_a_smaller_window_configured_later_forgets_at_once() -> None:
    engine = make_engine()
    for i in range(5):
        engine.process(buy(f"b{i}", 100, 5, tif=IOC))
    assert len(engine.orders) == 5
    engine.process(window(2))
    assert sorted(o.clordid for o in engine.orders.values()) == ["b3", "b4"]


# ---------------------------------------------------------------------------------------------- properties


def _run(case: Case, commands: list[Command], engine: MatchingEngine | None = None) -> tuple[MatchingEngine, list]:
    engine = engine or MatchingEngine(INSTRUMENTS, case.stp)
    return engine, [engine.process(c) for c in commands]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cases())
def test_the_engine_knows_exactly_the_working_orders_and_the_last_finished_ones(case: Case) -> None:
    engine = MatchingEngine(INSTRUMENTS, case.stp)
    engine.process(window(WINDOW))
    finished: dict[str, list[int]] = {}  # owner -> order ids in the order they finished, from the events
    for cmd in case.commands:
        for report in finished_reports(engine.process(cmd)):
            finished.setdefault(report.order.owner, []).append(report.order.order_id)
        working = {o.order_id for o in engine.orders.values() if o.is_open}
        expected = working | {oid for ids in finished.values() for oid in ids[-WINDOW:]}
        assert set(engine.orders) == expected
        assert {o: [x.order_id for x in w] for o, w in engine.finished.items()} == {
            o: ids[-WINDOW:] for o, ids in finished.items()
        }
        for owner, ids in engine.clordids.items():  # a ClOrdID names a known order of its owner
            assert all(engine.orders.get(o.order_id) is o and o.owner == owner for o in ids.values())
        for o in engine.orders.values():  # and every ClOrdID of a known order's chain is known
            assert all(engine.clordids[o.owner][c] is o for c in (o.clordid, *o.aliases))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cases(max_len=150), st.data())
def test_replay_and_a_snapshot_taken_anywhere_forget_the_same_orders(case: Case, data: st.DataObject) -> None:
    commands: list[Command] = [window(WINDOW), *case.commands]
    live, live_events = _run(case, commands)
    replayed, replayed_events = _run(case, commands)
    assert dump_state(replayed) == dump_state(live)
    assert [[client_view(e) for e in ev] for ev in replayed_events] == [
        [client_view(e) for e in ev] for ev in live_events
    ]

    cut = data.draw(st.integers(0, len(commands)))
    first, _ = _run(case, commands[:cut])
    restored = load_state(dump_state(first), INSTRUMENTS, case.stp)
    assert dump_state(restored) == dump_state(first)
    restored, rest = _run(case, commands[cut:], restored)
    assert [[client_view(e) for e in ev] for ev in rest] == [[client_view(e) for e in ev] for ev in live_events[cut:]]
    assert dump_state(restored) == dump_state(live)


def test_a_snapshot_from_before_the_window_loads_with_its_done_orders_as_the_window() -> None:
    engine = make_engine()
    for i in range(4):
        engine.process(buy(f"b{i}", 100, 5, tif=IOC))
    engine.process(buy("rest", 100, 5))
    old = dump_state(engine)
    del old["finished"]
    old["rules"]["finished_orders"] = 2
    restored = load_state(old, INSTRUMENTS)
    assert sorted(o.clordid for o in restored.orders.values()) == ["b2", "b3", "rest"]
    assert [o.clordid for o in restored.finished["o1"]] == ["b2", "b3"]
