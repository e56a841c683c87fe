"""A market-data publisher's book kept from events alone (feeds.levelbook, the cluster's publishers) holds what the
engine's book holds for a view: levels, statistics, RptSeq and the trading phase with the indicative auction figures,
so its snapshots (W) and phase (f) are the one-process venue's."""

from __future__ import annotations

import pytest

from engine.eventcodec import decode_events, encode_events
from engine.events import BookUpdate, Imbalance, Indicative, PhaseChange, StatUpdate, TradePrint
from feeds.levelbook import LevelBook
from feeds.views import ALL_ENTRY_TYPES, BookView
from tests.engine_helpers import INSTRUMENTS, make_engine
from tests.test_eventcodec import trading_day_flow

pytestmark = pytest.mark.timeout(60)

_MD = (BookUpdate, TradePrint, StatUpdate, PhaseChange, Indicative, Imbalance)
FIELDS = ("rpt_seq", "last_px", "open", "high", "low", "volume", "phase", "halt_until", "indicative")


def test_a_level_book_follows_the_engine_through_a_trading_day() -> None:
    engine = make_engine()
    books = {i.symbol: LevelBook(i.symbol) for i in INSTRUMENTS}
    phases, indicatives = set(), set()
    for cmd in trading_day_flow():
        for ev in decode_events(encode_events(engine.process(cmd))):  # as a publisher reads the result stream
            if isinstance(ev, _MD):
                books[ev.symbol].apply(ev)
        for symbol, book in books.items():
            theirs = engine.book(symbol)
            assert [getattr(book, f) for f in FIELDS] == [getattr(theirs, f) for f in FIELDS], (cmd, symbol)
            for depth in (0, 1):
                mine, engines = BookView(book, depth, ALL_ENTRY_TYPES), BookView(theirs, depth, ALL_ENTRY_TYPES)
                assert mine.snapshot() == engines.snapshot(), (cmd, symbol, depth)
            phases.add(book.phase)
            indicatives.add(book.indicative)
    assert len(phases) == 4  # closed, pre-open, continuous, halted (the auction lasts within one command)
    assert len(indicatives) >= 2  # none, and the pre-open's
