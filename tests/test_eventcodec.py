"""The engine's result stream codec: every event of a varied flow with money survives encoding, and a gateway that
rebuilds the events from bytes writes exactly the FIX messages the one-process venue writes."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

from engine import (
    Command,
    ConfigureTrading,
    EndOfDay,
    MatchingEngine,
    Phase,
    PhaseCause,
    Protection,
    QueryPositions,
    Reason,
    SetPhase,
    Tick,
    TradingRules,
)
from engine.eventcodec import decode_events, encode_events, to_list
from engine.events import CancelReject, Event, Execution, MassCancelReport, PhaseChange, PositionsReport
from gateway.accounts import fee_texts, position_formatter
from gateway.orders import OrderTranslator
from tests.engine_helpers import INSTRUMENTS, buy, make_engine, sell
from tests.store_support import money_flow, store_config

S = 1_000_000_000  # one second in ns


def fix_texts(translator: OrderTranslator, positions, events) -> list[str]:
    out = []
    for ev in events:
        if isinstance(ev, Execution):
            out.append(str(translator.execution_report(ev)))
        elif isinstance(ev, CancelReject):
            out.append(translator.cancel_reject(ev).toString())
        elif isinstance(ev, MassCancelReport):
            out.append(translator.mass_cancel_report(ev, "7").toString())
        elif isinstance(ev, PositionsReport) and positions is not None:
            out += [m if isinstance(m, str) else m.toString() for m in positions.messages(ev, "1")]
    return out


def test_events_round_trip_and_write_the_same_fix_messages(tmp_path: Path) -> None:
    cfg = store_config(tmp_path, "sqlite")
    engine = MatchingEngine(cfg.instruments, cfg.self_trade_prevention)
    translator = OrderTranslator({i.symbol: i for i in cfg.instruments}, fee_texts(cfg))
    positions = position_formatter(cfg)
    kinds: set[str] = set()
    for cmd in money_flow(cfg, seed=7, n=1500):
        events = engine.process(cmd)
        decoded = decode_events(encode_events(events))
        assert [to_list(e) for e in decoded] == [to_list(e) for e in events]
        assert fix_texts(translator, positions, decoded) == fix_texts(translator, positions, events)
        kinds |= {type(e).__name__ for e in events}
    assert kinds >= {"Execution", "CancelReject", "MassCancelReport", "BookUpdate", "TradePrint", "StatUpdate",
                     "OperatorResult"}  # fmt: skip


def trading_day_flow() -> list[Command]:
    """A day with every phase event: the first trading date, pre-open with an indicative price and an imbalance, the
    opening auction (an operator's open), a circuit-breaker halt that ends by itself, end of day expiries."""
    breaker = Protection(band_bps=2000, breaker_bps=500, breaker_window_ns=60 * S, breaker_halt_ns=30 * S)
    return [
        EndOfDay("2026-12-07", 0),
        ConfigureTrading(TradingRules(protection={"XYZ": breaker}).to_dict()),
        SetPhase("", "XYZ", Phase.CLOSED, PhaseCause.SCHEDULE, 1 * S),
        SetPhase("", "XYZ", Phase.PRE_OPEN, PhaseCause.SCHEDULE, 1 * S),
        buy("b1", 101, 5, ts=2 * S),
        sell("s1", 100, 3, owner="o2", ts=2 * S),
        buy("m1", None, 10, ts=2 * S),  # a market order waiting for the auction, its rest expires after it
        SetPhase("op-1", "XYZ", Phase.CONTINUOUS, PhaseCause.OPERATOR, 3 * S),
        sell("s2", 104, 2, owner="o2", ts=4 * S),
        sell("s3", 108, 3, owner="o2", ts=4 * S),
        buy("big", 110, 5, ts=5 * S),  # trades at 104, then the breaker halts before 108
        Tick(60 * S),  # the halt ends: reopening auction
        buy("day", 90, 1, ts=61 * S),
        EndOfDay("2026-12-08", 70 * S),  # the DAY orders expire
        QueryPositions("o1", "pos-1", "ACC1", 71 * S),  # refused: this venue keeps no ledger
    ]


def test_every_event_kind_round_trips(tmp_path: Path) -> None:
    """Every kind of event the engine makes, the phases' included, comes back from bytes as it went in (and an
    Execution writes the same ExecutionReport): the money flow and a trading day between them make them all."""
    cfg = store_config(tmp_path, "sqlite")
    translator = OrderTranslator({i.symbol: i for i in INSTRUMENTS}, {})
    kinds: set[str] = set()
    money = MatchingEngine(cfg.instruments, cfg.self_trade_prevention)
    for engine, commands in ((money, money_flow(cfg, seed=11, n=800)), (make_engine(), trading_day_flow())):
        for cmd in commands:
            events = engine.process(cmd)
            decoded = decode_events(encode_events(events))
            assert [to_list(e) for e in decoded] == [to_list(e) for e in events]
            assert decoded == events or all(type(d) is type(e) for d, e in zip(decoded, events, strict=True))
            if engine is not money:
                assert fix_texts(translator, None, decoded) == fix_texts(translator, None, events)
            kinds |= {type(e).__name__ for e in events}
    assert kinds == {t.__name__ for t in get_args(Event)}
    day = decode_events(encode_events(trading_day_flow_events()))
    reasons = {e.reason for e in day if isinstance(e, Execution)}
    assert {Reason.AUCTION_FILL, Reason.AUCTION_MARKET_REMAINDER, Reason.END_OF_DAY} <= reasons
    assert [e.halt_until for e in day if isinstance(e, PhaseChange) and e.cause is PhaseCause.CIRCUIT_BREAKER] == [
        35 * S
    ]


def trading_day_flow_events() -> list[Event]:
    engine = make_engine()
    return [ev for cmd in trading_day_flow() for ev in engine.process(cmd)]
