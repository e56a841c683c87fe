"""The cluster gateway's mirror of what a shard's engine knows (roles.known): fed the engine's result events as they
travel (encoded, decoded), it knows exactly the engine's ClOrdIDs after every command: working orders, each owner's
last N finished ones, none of the day's finished ones after an end of day; so it is bounded like the engine."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import Command, EndOfDay, Execution, MatchingEngine, TradingDayChange
from engine.eventcodec import decode_events, encode_events
from roles.known import KnownOrders
from tests.engine_helpers import GTC, INSTRUMENTS, IOC, buy, make_engine
from tests.test_engine_properties import Case, cases
from tests.test_finished_window import WINDOW, window

pytestmark = pytest.mark.timeout(120)


def feed(known: KnownOrders, engine: MatchingEngine, cmd: Command) -> None:
    """What the gateway does with one result record (RemoteOrderEntry.on_result)."""
    for ev in decode_events(encode_events(engine.process(cmd))):
        if type(ev) is Execution:
            known.execution(ev)
        elif type(ev) is TradingDayChange and ev.previous is not None:
            known.end_of_day()


def engine_view(engine: MatchingEngine) -> dict[str, dict[str, int]]:
    return {owner: {c: o.order_id for c, o in ids.items()} for owner, ids in engine.clordids.items() if ids}


def test_the_mirror_forgets_beyond_the_window_and_at_the_end_of_the_day_but_keeps_working_orders() -> None:
    engine, known = make_engine(), KnownOrders(2)
    engine.process(window(2))
    feed(known, engine, EndOfDay("2026-01-05"))
    feed(known, engine, buy("gtc", 90, 5, tif=GTC))
    for i in range(5):
        feed(known, engine, buy(f"b{i}", 100, 5, tif=IOC))  # accepted, then cancelled: finished
    assert sorted(known.ids["o1"]) == ["b3", "b4", "gtc"] == sorted(engine.clordids["o1"])
    assert len(known) == 3
    feed(known, engine, EndOfDay("2026-01-06"))
    assert sorted(known.ids["o1"]) == ["gtc"] == sorted(engine.clordids["o1"])
    assert len(known) == 1 and known.clordids() == 1


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cases(), st.data())
def test_the_mirror_knows_exactly_the_engine_s_clordids_after_every_command(case: Case, data: st.DataObject) -> None:
    engine, known = MatchingEngine(INSTRUMENTS, case.stp), KnownOrders(WINDOW)
    engine.process(window(WINDOW))
    days = sorted(data.draw(st.sets(st.integers(0, len(case.commands)), max_size=3)))
    commands: list[Command] = list(case.commands)
    for n, at in enumerate(reversed(days)):  # ends of day at random points, dates increasing
        commands.insert(at, EndOfDay(f"2026-01-{len(days) - n + 1:02d}"))
    for cmd in [EndOfDay("2026-01-01"), *commands]:
        feed(known, engine, cmd)
        assert {o: dict(ids) for o, ids in known.ids.items()} == engine_view(engine)
        assert set(known.chains) == set(engine.orders)
