"""The engine's result stream codec: every event of a varied flow with money survives encoding, and a gateway that
rebuilds the events from bytes writes exactly the FIX messages the one-process venue writes."""

from __future__ import annotations

from pathlib import Path

from engine import MatchingEngine
from engine.eventcodec import decode_events, encode_events, to_list
from engine.events import CancelReject, Execution, MassCancelReport, PositionsReport
from gateway.accounts import fee_texts, position_formatter
from gateway.orders import OrderTranslator
from tests.store_support import money_flow, store_config


def fix_texts(translator: OrderTranslator, positions, events) -> list[str]:
    out = []
    for ev in events:
        if isinstance(ev, Execution):
            out.append(str(translator.execution_report(ev)))
        elif isinstance(ev, CancelReject):
            out.append(translator.cancel_reject(ev).toString())
        elif isinstance(ev, MassCancelReport):
            out.append(translator.mass_cancel_report(ev, "7").toString())
        elif isinstance(ev, PositionsReport):
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
