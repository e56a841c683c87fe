"""Unit tests of the matching engine: every reject reason, every order type and time in force, cancel/replace,
mass cancel, status, self-trade prevention, end of day, book views, market data sequencing and statistics.

Instruments (see :mod:`tests.engine_helpers`): XYZ and ABC trade 1..1000 lots at 1..100000 ticks; BAND has a
price band of 5000..15000 ticks and a minimum of 10 lots. Owners ``o1``, ``o2``, ... trade for ``acct-o1``, ...
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from engine import (
    BBO,
    CancelOrder,
    CancelReject,
    Command,
    ExecType,
    Execution,
    ExpireDayOrders,
    Instrument,
    LevelView,
    MassCancel,
    MassCancelReport,
    MatchingEngine,
    Order,
    OrdStatus,
    OrdType,
    QueryOrder,
    Reason,
    ReplaceOrder,
    SelfTradePrevention,
    Side,
    Stat,
    StatUpdate,
    TimeInForce,
    TradePrint,
)
from engine.codec import decode, encode
from engine.events import BookUpdate, Event
from tests.engine_helpers import (
    BTC,
    BUY,
    DAY,
    FOK,
    GTC,
    INSTRUMENTS,
    IOC,
    LIMIT,
    MARKET,
    SELL,
    book_updates,
    buy,
    client_view,
    executions,
    kinds,
    make_engine,
    market_data,
    rejects,
    resting_ids,
    run,
    sell,
    trades,
)

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def eng() -> MatchingEngine:
    """A fresh engine with the default self-trade prevention (cancel resting)."""
    return make_engine()


def one_exec(events: list[Event], exec_type: ExecType) -> Execution:
    """The single Execution of ``exec_type`` in ``events``."""
    found = executions(events, exec_type)
    assert len(found) == 1, kinds(events)
    return found[0]


def reject_reason(events: list[Event]) -> Reason | None:
    """The reason of a new order's reject, after checking that nothing else happened."""
    assert kinds(events) == ["Execution:REJECTED"]
    ex = one_exec(events, ExecType.REJECTED)
    assert ex.status is OrdStatus.REJECTED and ex.leaves == 0 and ex.cum == 0 and ex.order.order_id == 0
    return ex.reason


def ids(orders: list[Order]) -> list[int]:
    """Order ids, in the given order."""
    return [o.order_id for o in orders]


# ---------------------------------------------------------------------------------------------- new-order rejects


class TestNewOrderRejects:
    """Each new-order reject reason; a reject is one REJECTED report and changes no book."""

    def test_unknown_symbol(self, eng: MatchingEngine) -> None:
        assert reject_reason(eng.process(buy("c1", 100, 5, symbol="NOPE"))) is Reason.UNKNOWN_SYMBOL

    @pytest.mark.parametrize("qty", [0, -1, -50])
    def test_zero_or_negative_quantity(self, eng: MatchingEngine, qty: int) -> None:
        assert reject_reason(eng.process(buy("c1", 100, qty))) is Reason.INVALID_QUANTITY

    def test_quantity_below_minimum(self, eng: MatchingEngine) -> None:
        assert reject_reason(eng.process(buy("c1", 10_000, 9, symbol="BAND"))) is Reason.QUANTITY_BELOW_MIN
        assert executions(eng.process(buy("c2", 10_000, 10, symbol="BAND")), ExecType.NEW)

    def test_quantity_above_maximum(self, eng: MatchingEngine) -> None:
        assert reject_reason(eng.process(buy("c1", 100, 1001))) is Reason.QUANTITY_ABOVE_MAX
        assert executions(eng.process(buy("c2", 100, 1000)), ExecType.NEW)

    def test_limit_without_price(self, eng: MatchingEngine) -> None:
        assert reject_reason(eng.process(buy("c1", None, 5, ord_type=LIMIT))) is Reason.MISSING_PRICE

    @pytest.mark.parametrize("price", [0, -100])
    def test_non_positive_price(self, eng: MatchingEngine, price: int) -> None:
        assert reject_reason(eng.process(buy("c1", price, 5))) is Reason.INVALID_PRICE

    def test_market_with_price(self, eng: MatchingEngine) -> None:
        assert reject_reason(eng.process(buy("c1", 100, 5, ord_type=MARKET))) is Reason.PRICE_ON_MARKET

    @pytest.mark.parametrize(("price", "accepted"), [(4999, False), (5000, True), (15000, True), (15001, False)])
    def test_price_band_is_inclusive(self, eng: MatchingEngine, price: int, accepted: bool) -> None:
        events = eng.process(sell("c1", price, 10, symbol="BAND"))
        if accepted:
            assert kinds(events) == ["Execution:NEW", "BookUpdate"]
        else:
            assert reject_reason(events) is Reason.PRICE_OUTSIDE_BAND

    @pytest.mark.parametrize(
        ("price", "ord_type", "tif"), [(None, MARKET, DAY), (100, LIMIT, IOC), (100, LIMIT, FOK), (None, MARKET, GTC)]
    )
    def test_post_only_needs_resting_limit(
        self, eng: MatchingEngine, price: int | None, ord_type: OrdType, tif: TimeInForce
    ) -> None:
        events = eng.process(buy("c1", price, 5, ord_type=ord_type, tif=tif, post_only=True))
        assert reject_reason(events) is Reason.POST_ONLY_NOT_LIMIT

    @pytest.mark.parametrize("price", [101, 102])
    def test_post_only_that_would_take_is_rejected_and_book_untouched(self, eng: MatchingEngine, price: int) -> None:
        eng.process(sell("s1", 101, 5, owner="o2"))
        before = eng.book("XYZ").rpt_seq
        assert reject_reason(eng.process(buy("c1", price, 5, post_only=True))) is Reason.POST_ONLY_WOULD_TAKE
        assert eng.book("XYZ").bbo() == BBO(None, LevelView(101, 5, 1))
        assert eng.book("XYZ").rpt_seq == before

    def test_post_only_that_does_not_cross_rests(self, eng: MatchingEngine) -> None:
        eng.process(sell("s1", 101, 5, owner="o2"))
        events = eng.process(buy("c1", 100, 5, post_only=True, tif=GTC))
        assert kinds(events) == ["Execution:NEW", "BookUpdate"]
        assert eng.book("XYZ").bbo().bid == LevelView(100, 5, 1)

    def test_duplicate_clordid(self, eng: MatchingEngine) -> None:
        eng.process(buy("c1", 100, 5))
        assert reject_reason(eng.process(sell("c1", 120, 7))) is Reason.DUPLICATE_CLORDID
        assert eng.book("XYZ").bbo() == BBO(LevelView(100, 5, 1), None)  # the first order is unaffected

    def test_clordid_used_by_a_cancel_is_a_duplicate(self, eng: MatchingEngine) -> None:
        eng.process(buy("c1", 100, 5))
        eng.process(CancelOrder("o1", "x1", "c1"))
        assert reject_reason(eng.process(buy("x1", 100, 5))) is Reason.DUPLICATE_CLORDID

    def test_clordids_are_per_owner(self, eng: MatchingEngine) -> None:
        eng.process(buy("c1", 100, 5, owner="o1"))
        assert executions(eng.process(buy("c1", 100, 5, owner="o2")), ExecType.NEW)

    def test_rejected_clordid_may_be_reused(self, eng: MatchingEngine) -> None:
        eng.process(buy("c1", 100, 0))
        assert executions(eng.process(buy("c1", 100, 5)), ExecType.NEW)

    def test_reject_echoes_the_order_and_uses_no_order_id(self, eng: MatchingEngine) -> None:
        ex = one_exec(eng.process(buy("c1", 100, 1001, ts=42)), ExecType.REJECTED)
        assert (ex.clordid, ex.price, ex.qty, ex.ts, ex.seq) == ("c1", 100, 1001, 42, 1)
        assert one_exec(eng.process(buy("c2", 100, 5)), ExecType.NEW).order.order_id == 1

    def test_edge_reject_is_reported_by_the_engine(self, eng: MatchingEngine) -> None:
        cmd = buy("c1", 100, 5)
        cmd.edge_reject = Reason.PRICE_OFF_TICK
        assert reject_reason(eng.process(cmd)) is Reason.PRICE_OFF_TICK
        assert eng.book("XYZ").bbo() == BBO(None, None)


# ---------------------------------------------------------------------------------------------- limit orders


class TestLimitOrders:
    """Limit orders rest, cross, fill partially and walk levels at the resting prices."""

    def test_rests_when_not_crossing(self, eng: MatchingEngine) -> None:
        events = eng.process(buy("c1", 100, 5, ts=7))
        assert kinds(events) == ["Execution:NEW", "BookUpdate"]
        new = one_exec(events, ExecType.NEW)
        assert (new.status, new.leaves, new.cum, new.order.order_id, new.ts) == (OrdStatus.NEW, 5, 0, 1, 7)
        assert book_updates(events) == [BookUpdate("XYZ", BUY, 100, 5, 1, 1)]

    def test_orders_at_one_price_aggregate(self, eng: MatchingEngine) -> None:
        run(eng, [buy("c1", 100, 5), buy("c2", 100, 3, owner="o2"), buy("c3", 99, 4)])
        assert eng.book("XYZ").depth(BUY) == [LevelView(100, 8, 2), LevelView(99, 4, 1)]

    def test_full_cross_trades_at_resting_price(self, eng: MatchingEngine) -> None:
        eng.process(sell("s1", 100, 5, owner="o2"))
        events = eng.process(buy("b1", 105, 5, ts=9))
        assert kinds(events) == [
            "Execution:NEW",
            "Execution:TRADE",  # taker first
            "Execution:TRADE",  # then maker
            "TradePrint",
            "StatUpdate",
            "StatUpdate",
            "StatUpdate",
            "StatUpdate",
            "BookUpdate",
        ]
        taker, maker = executions(events, ExecType.TRADE)
        assert (taker.clordid, taker.aggressor, taker.last_px, taker.last_qty, taker.status) == (
            "b1", True, 100, 5, OrdStatus.FILLED,
        )  # fmt: skip
        assert (maker.clordid, maker.aggressor, maker.last_px, maker.status) == ("s1", False, 100, OrdStatus.FILLED)
        assert taker.trade_id == maker.trade_id == 1
        assert trades(events) == [TradePrint("XYZ", 1, 100, 5, BUY, 2, 9)]
        assert book_updates(events)[-1] == BookUpdate("XYZ", SELL, 100, 0, 0, 7)
        assert eng.book("XYZ").bbo() == BBO(None, None)

    def test_partial_fill_of_taker_rests_the_remainder(self, eng: MatchingEngine) -> None:
        eng.process(sell("s1", 100, 3, owner="o2"))
        events = eng.process(buy("b1", 100, 10))
        taker = executions(events, ExecType.TRADE)[0]
        assert (taker.status, taker.leaves, taker.cum) == (OrdStatus.PARTIALLY_FILLED, 7, 3)
        assert book_updates(events) == [
            BookUpdate("XYZ", SELL, 100, 0, 0, 7),
            BookUpdate("XYZ", BUY, 100, 7, 1, 8),
        ]
        assert eng.book("XYZ").bbo() == BBO(LevelView(100, 7, 1), None)

    def test_partial_fill_of_maker_keeps_it_first(self, eng: MatchingEngine) -> None:
        run(eng, [sell("s1", 100, 10, owner="o2"), sell("s2", 100, 4, owner="o3")])
        events = eng.process(buy("b1", 100, 6))
        maker = executions(events, ExecType.TRADE)[1]
        assert (maker.clordid, maker.status, maker.leaves, maker.cum) == ("s1", OrdStatus.PARTIALLY_FILLED, 4, 6)
        assert book_updates(events) == [BookUpdate("XYZ", SELL, 100, 8, 2, 8)]
        assert [o.clordid for o in eng.book("XYZ").orders_at(SELL, 100)] == ["s1", "s2"]

    def test_time_priority_within_a_level(self, eng: MatchingEngine) -> None:
        run(eng, [sell("s1", 100, 5, owner="o2"), sell("s2", 100, 5, owner="o3"), sell("s3", 100, 5, owner="o2")])
        events = eng.process(buy("b1", 100, 7))
        makers = [e for e in executions(events, ExecType.TRADE) if not e.aggressor]
        assert [(m.clordid, m.last_qty) for m in makers] == [("s1", 5), ("s2", 2)]

    def test_walks_levels_at_each_resting_price_without_trading_through(self, eng: MatchingEngine) -> None:
        run(eng, [sell("s1", 100, 5, owner="o2"), sell("s2", 101, 5, owner="o2"), sell("s3", 102, 5, owner="o2")])
        events = eng.process(buy("b1", 103, 12))
        assert [(t.price, t.qty) for t in trades(events)] == [(100, 5), (101, 5), (102, 2)]
        assert [(u.price, u.qty, u.count) for u in book_updates(events)] == [(100, 0, 0), (101, 0, 0), (102, 3, 1)]
        last = executions(events, ExecType.TRADE)[-2]  # the taker's last fill
        assert (last.status, last.cum, last.notional) == (OrdStatus.FILLED, 12, 5 * 100 + 5 * 101 + 2 * 102)
        assert eng.book("XYZ").bbo() == BBO(None, LevelView(102, 3, 1))

    def test_limit_stops_at_its_price_and_rests_the_rest(self, eng: MatchingEngine) -> None:
        run(eng, [sell("s1", 100, 5, owner="o2"), sell("s2", 101, 5, owner="o2"), sell("s3", 102, 5, owner="o2")])
        events = eng.process(buy("b1", 101, 12))
        assert [t.price for t in trades(events)] == [100, 101]
        assert eng.book("XYZ").bbo() == BBO(LevelView(101, 2, 1), LevelView(102, 5, 1))

    def test_sell_walks_bids_downwards(self, eng: MatchingEngine) -> None:
        run(eng, [buy("b1", 100, 5, owner="o2"), buy("b2", 99, 5, owner="o2"), buy("b3", 98, 5, owner="o2")])
        events = eng.process(sell("s1", 99, 20))
        assert [(t.price, t.qty, t.aggressor) for t in trades(events)] == [(100, 5, SELL), (99, 5, SELL)]
        assert eng.book("XYZ").bbo() == BBO(LevelView(98, 5, 1), LevelView(99, 10, 1))

    def test_execution_reports_state_at_the_time_of_the_event(self, eng: MatchingEngine) -> None:
        run(eng, [sell("s1", 100, 2, owner="o2"), sell("s2", 101, 3, owner="o2")])
        first, second = [e for e in executions(eng.process(buy("b1", 101, 5))) if e.aggressor]
        assert (first.leaves, first.cum, first.status) == (3, 2, OrdStatus.PARTIALLY_FILLED)
        assert (second.leaves, second.cum, second.status) == (0, 5, OrdStatus.FILLED)


# ---------------------------------------------------------------------------------------------- market, IOC, FOK


class TestMarketOrders:
    """Market orders take whatever is there at any price and never rest."""

    def test_market_on_empty_book_expires(self, eng: MatchingEngine) -> None:
        events = eng.process(buy("m1", None, 5))
        assert kinds(events) == ["Execution:NEW", "Execution:EXPIRED"]
        ex = one_exec(events, ExecType.EXPIRED)
        assert (ex.reason, ex.status, ex.leaves, ex.cum) == (Reason.MARKET_REMAINDER, OrdStatus.EXPIRED, 0, 0)
        assert eng.book("XYZ").rpt_seq == 0

    @pytest.mark.parametrize("tif", [DAY, GTC, IOC])
    def test_market_never_rests(self, eng: MatchingEngine, tif: TimeInForce) -> None:
        run(eng, [sell("s1", 100, 3, owner="o2"), sell("s2", 500, 2, owner="o2")])
        events = eng.process(buy("m1", None, 10, tif=tif))
        assert [(t.price, t.qty) for t in trades(events)] == [(100, 3), (500, 2)]  # any price
        ex = executions(events)[-1]
        assert (ex.exec_type, ex.reason, ex.cum) == (ExecType.EXPIRED, Reason.MARKET_REMAINDER, 5)
        assert eng.book("XYZ").bbo() == BBO(None, None)

    def test_market_fully_filled_does_not_expire(self, eng: MatchingEngine) -> None:
        eng.process(buy("b1", 100, 10, owner="o2"))
        events = eng.process(sell("m1", None, 4))
        assert not executions(events, ExecType.EXPIRED)
        assert executions(events, ExecType.TRADE)[0].status is OrdStatus.FILLED


class TestImmediateOrCancel:
    """IOC orders trade what they can now; the remainder expires."""

    def test_ioc_that_does_not_cross_expires_without_touching_the_book(self, eng: MatchingEngine) -> None:
        eng.process(sell("s1", 101, 5, owner="o2"))
        events = eng.process(buy("i1", 100, 5, tif=IOC))
        assert kinds(events) == ["Execution:NEW", "Execution:EXPIRED"]
        assert one_exec(events, ExecType.EXPIRED).reason is Reason.IOC_REMAINDER
        assert eng.book("XYZ").depth(BUY) == []

    def test_ioc_partial_fill_expires_the_remainder(self, eng: MatchingEngine) -> None:
        eng.process(sell("s1", 100, 3, owner="o2"))
        events = eng.process(buy("i1", 100, 5, tif=IOC))
        ex = executions(events)[-1]
        assert (ex.exec_type, ex.reason, ex.cum, ex.leaves, ex.qty) == (
            ExecType.EXPIRED, Reason.IOC_REMAINDER, 3, 0, 5,
        )  # fmt: skip
        assert eng.book("XYZ").bbo() == BBO(None, None)


class TestFillOrKill:
    """FOK orders fill completely now or expire with the book untouched."""

    def test_fok_fills_completely_across_levels(self, eng: MatchingEngine) -> None:
        run(eng, [sell("s1", 100, 3, owner="o2"), sell("s2", 101, 3, owner="o2")])
        events = eng.process(buy("f1", 101, 5, tif=FOK))
        assert [(t.price, t.qty) for t in trades(events)] == [(100, 3), (101, 2)]
        assert not executions(events, ExecType.EXPIRED)
        assert eng.book("XYZ").bbo() == BBO(None, LevelView(101, 1, 1))

    @pytest.mark.parametrize(("price", "qty"), [(101, 7), (100, 4), (None, 7)])
    def test_fok_that_cannot_fill_leaves_the_book_untouched(
        self, eng: MatchingEngine, price: int | None, qty: int
    ) -> None:
        run(eng, [sell("s1", 100, 3, owner="o2"), sell("s2", 101, 3, owner="o2")])
        depth, rpt = eng.book("XYZ").depth(SELL), eng.book("XYZ").rpt_seq
        events = eng.process(buy("f1", price, qty, tif=FOK))
        assert kinds(events) == ["Execution:NEW", "Execution:EXPIRED"]
        ex = one_exec(events, ExecType.EXPIRED)
        assert (ex.reason, ex.cum, ex.status) == (Reason.FOK_NOT_FILLED, 0, OrdStatus.EXPIRED)
        assert eng.book("XYZ").depth(SELL) == depth and eng.book("XYZ").rpt_seq == rpt
        assert ids(eng.book("XYZ").orders_at(SELL, 100)) == [1]

    def test_fok_exactly_fillable(self, eng: MatchingEngine) -> None:
        run(eng, [sell("s1", 100, 3, owner="o2"), sell("s2", 101, 3, owner="o2")])
        events = eng.process(buy("f1", 101, 6, tif=FOK))
        assert sum(t.qty for t in trades(events)) == 6 and eng.book("XYZ").bbo() == BBO(None, None)

    def test_fok_does_not_count_own_orders_with_cancel_resting(self) -> None:
        eng = make_engine(SelfTradePrevention.CANCEL_RESTING)
        run(eng, [sell("own", 100, 5), sell("s2", 101, 3, owner="o2")])
        events = eng.process(buy("f1", 101, 5, tif=FOK))
        assert one_exec(events, ExecType.EXPIRED).reason is Reason.FOK_NOT_FILLED
        assert resting_ids(eng, "XYZ", SELL) == [1, 2]  # own order not cancelled: FOK changed nothing

    def test_fok_fills_past_own_orders_with_cancel_resting(self) -> None:
        eng = make_engine(SelfTradePrevention.CANCEL_RESTING)
        run(eng, [sell("own", 100, 5), sell("s2", 101, 5, owner="o2")])
        events = eng.process(buy("f1", 101, 5, tif=FOK))
        assert [(e.clordid, e.reason) for e in executions(events, ExecType.CANCELED)] == [("own", Reason.SELF_TRADE)]
        assert [(t.price, t.qty) for t in trades(events)] == [(101, 5)]

    @pytest.mark.parametrize("stp", [SelfTradePrevention.CANCEL_INCOMING, SelfTradePrevention.CANCEL_BOTH])
    def test_fok_blocked_by_own_order_leaves_the_book_untouched(self, stp: SelfTradePrevention) -> None:
        eng = make_engine(stp)
        run(eng, [sell("s1", 100, 2, owner="o2"), sell("own", 100, 5), sell("s3", 101, 9, owner="o2")])
        events = eng.process(buy("f1", 101, 5, tif=FOK))
        assert kinds(events) == ["Execution:NEW", "Execution:EXPIRED"]
        assert resting_ids(eng, "XYZ", SELL) == [1, 2, 3]


# ---------------------------------------------------------------------------------------------- cancel


class TestCancel:
    """Cancels by ClOrdID or order id, and every CancelReject reason."""

    def test_cancel_by_clordid(self, eng: MatchingEngine) -> None:
        eng.process(buy("c1", 100, 5))
        events = eng.process(CancelOrder("o1", "x1", "c1", ts=5))
        assert kinds(events) == ["Execution:CANCELED", "BookUpdate"]
        ex = one_exec(events, ExecType.CANCELED)
        assert (ex.clordid, ex.orig_clordid, ex.reason, ex.status, ex.leaves, ex.ts) == (
            "x1", "c1", Reason.CLIENT_REQUEST, OrdStatus.CANCELED, 0, 5,
        )  # fmt: skip
        assert book_updates(events) == [BookUpdate("XYZ", BUY, 100, 0, 0, 2)]
        assert eng.book("XYZ").bbo() == BBO(None, None)

    def test_cancel_by_order_id(self, eng: MatchingEngine) -> None:
        run(eng, [buy("c1", 100, 5), buy("c2", 100, 3)])
        events = eng.process(CancelOrder("o1", "x1", None, order_id=2))
        assert one_exec(events, ExecType.CANCELED).orig_clordid == "c2"
        assert eng.book("XYZ").depth(BUY) == [LevelView(100, 5, 1)]

    def test_cancel_of_partially_filled_order(self, eng: MatchingEngine) -> None:
        run(eng, [buy("c1", 100, 5), sell("s1", 100, 2, owner="o2")])
        ex = one_exec(eng.process(CancelOrder("o1", "x1", "c1")), ExecType.CANCELED)
        assert (ex.cum, ex.leaves, ex.qty) == (2, 0, 5)

    @pytest.mark.parametrize(
        ("orig", "order_id"), [("nope", None), (None, 99), (None, None)], ids=["clordid", "order-id", "neither"]
    )
    def test_unknown_order(self, eng: MatchingEngine, orig: str | None, order_id: int | None) -> None:
        eng.process(buy("c1", 100, 5))
        events = eng.process(CancelOrder("o1", "x1", orig, order_id))
        assert rejects(events) == [CancelReject(2, "o1", "x1", orig, None, False, Reason.UNKNOWN_ORDER, 0)]
        assert eng.book("XYZ").bbo().bid == LevelView(100, 5, 1)

    def test_foreign_order_by_id_is_not_owner_and_not_revealed(self, eng: MatchingEngine) -> None:
        eng.process(buy("c1", 100, 5, owner="o2"))
        (rej,) = rejects(eng.process(CancelOrder("o1", "x1", None, order_id=1)))
        assert (rej.reason, rej.order) == (Reason.NOT_OWNER, None)
        assert eng.book("XYZ").bbo().bid == LevelView(100, 5, 1)

    def test_foreign_order_by_clordid_is_unknown(self, eng: MatchingEngine) -> None:
        eng.process(buy("c1", 100, 5, owner="o2"))
        (rej,) = rejects(eng.process(CancelOrder("o1", "x1", "c1")))
        assert (rej.reason, rej.order) == (Reason.UNKNOWN_ORDER, None)

    def test_filled_order_is_done(self, eng: MatchingEngine) -> None:
        run(eng, [buy("c1", 100, 5), sell("s1", 100, 5, owner="o2")])
        (rej,) = rejects(eng.process(CancelOrder("o1", "x1", "c1")))
        assert rej.reason is Reason.ORDER_DONE and rej.order is not None and rej.order.order_id == 1

    def test_second_cancel_is_done(self, eng: MatchingEngine) -> None:
        run(eng, [buy("c1", 100, 5), CancelOrder("o1", "x1", "c1")])
        (rej,) = rejects(eng.process(CancelOrder("o1", "x2", "x1")))
        assert rej.reason is Reason.ORDER_DONE

    def test_duplicate_cancel_clordid_leaves_order_resting(self, eng: MatchingEngine) -> None:
        run(eng, [buy("c1", 100, 5), buy("c2", 99, 5)])
        (rej,) = rejects(eng.process(CancelOrder("o1", "c2", "c1")))
        assert rej.reason is Reason.DUPLICATE_CLORDID_CXL and rej.is_replace is False
        assert eng.book("XYZ").depth(BUY) == [LevelView(100, 5, 1), LevelView(99, 5, 1)]

    def test_cancelled_order_answers_to_its_new_clordid(self, eng: MatchingEngine) -> None:
        run(eng, [buy("c1", 100, 5), CancelOrder("o1", "x1", "c1")])
        order = eng.find("o1", "x1")
        assert order is eng.find("o1", "c1") and order is not None and order.status is OrdStatus.CANCELED


# ---------------------------------------------------------------------------------------------- replace


def replace(
    orig: str | None,
    clordid: str,
    price: int | None,
    qty: int,
    *,
    owner: str = "o1",
    order_id: int | None = None,
    symbol: str = "XYZ",
    side: Side = BUY,
    ts: int = 0,
) -> ReplaceOrder:
    """A cancel/replace, by default of ``o1``'s XYZ buy order named by ``orig``."""
    return ReplaceOrder(owner, clordid, orig, order_id, symbol, side, price, qty, ts)


class TestReplace:
    """Cancel/replace: when priority is kept or lost, crossing replaces, and every reject reason."""

    def setup_level(self, eng: MatchingEngine) -> None:
        run(eng, [buy("a", 100, 10), buy("b", 100, 10, owner="o2"), buy("c", 100, 10, owner="o3")])

    def test_quantity_down_keeps_priority(self, eng: MatchingEngine) -> None:
        self.setup_level(eng)
        events = eng.process(replace("a", "a2", 100, 4))
        assert kinds(events) == ["Execution:REPLACED", "BookUpdate"]
        ex = one_exec(events, ExecType.REPLACED)
        assert (ex.clordid, ex.orig_clordid, ex.qty, ex.leaves, ex.price) == ("a2", "a", 4, 4, 100)
        assert ids(eng.book("XYZ").orders_at(BUY, 100)) == [1, 2, 3]
        assert eng.book("XYZ").depth(BUY) == [LevelView(100, 24, 3)]

    def test_same_quantity_same_price_keeps_priority(self, eng: MatchingEngine) -> None:
        self.setup_level(eng)
        eng.process(replace("a", "a2", 100, 10))
        assert ids(eng.book("XYZ").orders_at(BUY, 100)) == [1, 2, 3]

    def test_quantity_up_loses_priority(self, eng: MatchingEngine) -> None:
        self.setup_level(eng)
        eng.process(replace("a", "a2", 100, 11))
        assert ids(eng.book("XYZ").orders_at(BUY, 100)) == [2, 3, 1]
        assert eng.book("XYZ").depth(BUY) == [LevelView(100, 31, 3)]

    def test_price_change_loses_priority_even_when_changed_back(self, eng: MatchingEngine) -> None:
        self.setup_level(eng)
        events = eng.process(replace("a", "a2", 99, 10))
        assert kinds(events) == ["BookUpdate", "Execution:REPLACED", "BookUpdate"]
        assert [(u.price, u.qty, u.count) for u in book_updates(events)] == [(100, 20, 2), (99, 10, 1)]
        eng.process(replace("a2", "a3", 100, 10))
        assert ids(eng.book("XYZ").orders_at(BUY, 100)) == [2, 3, 1]
        assert eng.book("XYZ").depth(BUY) == [LevelView(100, 30, 3)]

    def test_replace_that_crosses_trades_at_resting_price(self, eng: MatchingEngine) -> None:
        run(eng, [buy("a", 98, 10), sell("s1", 100, 4, owner="o2")])
        events = eng.process(replace("a", "a2", 101, 10))
        assert kinds(events)[:3] == ["BookUpdate", "Execution:REPLACED", "Execution:TRADE"]
        assert [(t.price, t.qty, t.aggressor) for t in trades(events)] == [(100, 4, BUY)]
        assert eng.book("XYZ").bbo() == BBO(LevelView(101, 6, 1), None)

    def test_replace_of_partially_filled_order(self, eng: MatchingEngine) -> None:
        run(eng, [buy("a", 100, 10), sell("s1", 100, 4, owner="o2")])
        ex = one_exec(eng.process(replace("a", "a2", 100, 6)), ExecType.REPLACED)
        assert (ex.qty, ex.cum, ex.leaves, ex.status) == (6, 4, 2, OrdStatus.PARTIALLY_FILLED)

    @pytest.mark.parametrize("qty", [4, 3])
    def test_replace_at_or_below_filled_is_rejected(self, eng: MatchingEngine, qty: int) -> None:
        run(eng, [buy("a", 100, 10), sell("s1", 100, 4, owner="o2")])
        (rej,) = rejects(eng.process(replace("a", "a2", 100, qty)))
        assert (rej.reason, rej.is_replace) == (Reason.REPLACE_BELOW_FILLED, True)
        assert eng.book("XYZ").depth(BUY) == [LevelView(100, 6, 1)]

    @pytest.mark.parametrize(
        ("kw", "price", "qty", "reason"),
        [
            ({"side": SELL}, 100, 5, Reason.REPLACE_CHANGES_IDENTITY),
            ({"symbol": "ABC"}, 100, 5, Reason.REPLACE_CHANGES_IDENTITY),
            ({}, 100_001, 5, Reason.PRICE_OUTSIDE_BAND),
            ({}, None, 5, Reason.MISSING_PRICE),
            ({}, 100, 1001, Reason.QUANTITY_ABOVE_MAX),
            ({"order_id": 99}, 100, 5, Reason.UNKNOWN_ORDER),
            ({"owner": "o2", "order_id": 1}, 100, 5, Reason.NOT_OWNER),
        ],
    )
    def test_invalid_replace_is_rejected_and_changes_nothing(
        self, eng: MatchingEngine, kw: dict[str, Any], price: int | None, qty: int, reason: Reason
    ) -> None:
        eng.process(buy("a", 100, 10))
        (rej,) = rejects(eng.process(replace("a", "a2", price, qty, **kw)))
        assert (rej.reason, rej.is_replace) == (reason, True)
        assert eng.book("XYZ").depth(BUY) == [LevelView(100, 10, 1)]
        assert eng.find("o1", "a2") is None

    def test_replace_of_done_order(self, eng: MatchingEngine) -> None:
        run(eng, [buy("a", 100, 10), CancelOrder("o1", "x", "a")])
        (rej,) = rejects(eng.process(replace("a", "a2", 100, 5)))
        assert rej.reason is Reason.ORDER_DONE

    def test_replace_with_duplicate_clordid(self, eng: MatchingEngine) -> None:
        run(eng, [buy("a", 100, 10), buy("b", 99, 10)])
        (rej,) = rejects(eng.process(replace("a", "b", 100, 5)))
        assert rej.reason is Reason.DUPLICATE_CLORDID_CXL

    def test_post_only_replace_that_would_take_is_rejected(self, eng: MatchingEngine) -> None:
        run(eng, [buy("a", 99, 10, post_only=True), sell("s1", 101, 5, owner="o2")])
        (rej,) = rejects(eng.process(replace("a", "a2", 101, 10)))
        assert rej.reason is Reason.POST_ONLY_WOULD_TAKE
        assert eng.book("XYZ").bbo() == BBO(LevelView(99, 10, 1), LevelView(101, 5, 1))

    def test_replace_chain_by_any_clordid(self, eng: MatchingEngine) -> None:
        run(eng, [buy("a", 100, 10), replace("a", "a2", 100, 8)])
        ex = one_exec(eng.process(replace("a2", "a3", 100, 6)), ExecType.REPLACED)
        assert (ex.orig_clordid, ex.qty) == ("a2", 6)
        assert eng.find("o1", "a") is eng.find("o1", "a3")
        ex = one_exec(eng.process(CancelOrder("o1", "x", None, order_id=1)), ExecType.CANCELED)
        assert ex.orig_clordid == "a3"


# ---------------------------------------------------------------------------------------------- mass cancel


class TestMassCancel:
    """Mass cancel scoped by owner, symbol, side and DAY-only."""

    def setup_orders(self, eng: MatchingEngine) -> None:
        run(eng, [
            buy("b1", 100, 1), sell("s1", 110, 2), buy("g1", 99, 3, tif=GTC),
            buy("b2", 100, 4, symbol="ABC"), sell("s2", 110, 5, symbol="ABC"),
            buy("o2b", 100, 6, owner="o2"), sell("o2s", 110, 7, owner="o2", symbol="ABC"),
        ])  # fmt: skip

    def cancelled(self, events: list[Event]) -> list[str]:
        return [e.clordid for e in executions(events, ExecType.CANCELED)]

    def test_all_of_one_owner(self, eng: MatchingEngine) -> None:
        self.setup_orders(eng)
        events = eng.process(MassCancel("o1", "m1", ts=3))
        assert sorted(self.cancelled(events)) == ["b1", "b2", "g1", "s1", "s2"]
        (report,) = [e for e in events if isinstance(e, MassCancelReport)]
        assert (report.cancelled, report.reason, report.clordid, report.ts) == (5, Reason.MASS_CANCEL, "m1", 3)
        assert events[-1] is report
        assert [o.owner for s in ("XYZ", "ABC") for o in eng.book(s).resting_orders()] == ["o2", "o2"]

    def test_by_symbol(self, eng: MatchingEngine) -> None:
        self.setup_orders(eng)
        assert sorted(self.cancelled(eng.process(MassCancel("o1", "m1", symbol="ABC")))) == ["b2", "s2"]

    def test_by_side(self, eng: MatchingEngine) -> None:
        self.setup_orders(eng)
        assert sorted(self.cancelled(eng.process(MassCancel("o1", "m1", side=SELL)))) == ["s1", "s2"]

    def test_by_symbol_and_side(self, eng: MatchingEngine) -> None:
        self.setup_orders(eng)
        assert self.cancelled(eng.process(MassCancel("o1", "m1", symbol="XYZ", side=BUY))) == ["b1", "g1"]

    def test_day_only_spares_gtc(self, eng: MatchingEngine) -> None:
        self.setup_orders(eng)
        events = eng.process(MassCancel("o1", "m1", day_only=True, reason=Reason.CANCEL_ON_DISCONNECT))
        assert "g1" not in self.cancelled(events) and len(self.cancelled(events)) == 4
        assert {e.reason for e in executions(events)} == {Reason.CANCEL_ON_DISCONNECT}
        assert ids(eng.book("XYZ").orders_at(BUY, 99)) == [3]

    def test_each_cancel_updates_its_level(self, eng: MatchingEngine) -> None:
        self.setup_orders(eng)
        events = eng.process(MassCancel("o1", "m1", symbol="XYZ"))
        assert [(u.side, u.price, u.qty, u.count) for u in book_updates(events)] == [
            (BUY, 100, 6, 1), (BUY, 99, 0, 0), (SELL, 110, 0, 0),
        ]  # fmt: skip

    @pytest.mark.parametrize("symbol", ["NOPE", None])
    def test_nothing_to_cancel_reports_zero(self, eng: MatchingEngine, symbol: str | None) -> None:
        eng.process(buy("b1", 100, 1, owner="o2"))
        events = eng.process(MassCancel("o1", "m1", symbol=symbol))
        assert kinds(events) == ["MassCancelReport"]
        assert isinstance(events[0], MassCancelReport) and events[0].cancelled == 0
        assert eng.book("XYZ").bbo().bid == LevelView(100, 1, 1)


# ---------------------------------------------------------------------------------------------- status


class TestQuery:
    """Order status requests."""

    def test_status_of_resting_order_by_clordid_and_by_id(self, eng: MatchingEngine) -> None:
        run(eng, [buy("c1", 100, 10), sell("s1", 100, 4, owner="o2")])
        for query in (QueryOrder("o1", "c1"), QueryOrder("o1", None, order_id=1)):
            events = eng.process(query)
            assert kinds(events) == ["Execution:ORDER_STATUS"]
            ex = one_exec(events, ExecType.ORDER_STATUS)
            assert (ex.status, ex.leaves, ex.cum, ex.price, ex.reason) == (
                OrdStatus.PARTIALLY_FILLED, 6, 4, 100, None,
            )  # fmt: skip

    def test_status_of_filled_order(self, eng: MatchingEngine) -> None:
        run(eng, [buy("c1", 100, 4), sell("s1", 100, 4, owner="o2")])
        ex = one_exec(eng.process(QueryOrder("o1", "c1")), ExecType.ORDER_STATUS)
        assert (ex.status, ex.leaves, ex.cum, ex.notional) == (OrdStatus.FILLED, 0, 4, 400)

    def test_status_by_earlier_clordid_answers_with_that_clordid(self, eng: MatchingEngine) -> None:
        run(eng, [buy("c1", 100, 10), replace("c1", "c2", 100, 8)])
        ex = one_exec(eng.process(QueryOrder("o1", "c1")), ExecType.ORDER_STATUS)
        assert (ex.clordid, ex.qty) == ("c1", 8)

    @pytest.mark.parametrize(
        ("owner", "clordid", "order_id", "reason"),
        [
            ("o1", "nope", None, Reason.UNKNOWN_ORDER),
            ("o1", None, 99, Reason.UNKNOWN_ORDER),
            ("o2", "c1", None, Reason.UNKNOWN_ORDER),
            ("o2", None, 1, Reason.NOT_OWNER),
        ],
    )
    def test_status_of_unknown_order(
        self, eng: MatchingEngine, owner: str, clordid: str | None, order_id: int | None, reason: Reason
    ) -> None:
        eng.process(buy("c1", 100, 10))
        ex = one_exec(eng.process(QueryOrder(owner, clordid, order_id)), ExecType.ORDER_STATUS)
        assert (ex.status, ex.reason, ex.order.order_id) == (OrdStatus.REJECTED, reason, 0)

    def test_status_request_refused_at_the_edge_is_answered_without_lookup(self, eng: MatchingEngine) -> None:
        eng.process(buy("c1", 100, 10))
        query = QueryOrder("o1", "c1", edge_reject=Reason.UNSUPPORTED_SIDE)
        ex = one_exec(eng.process(decode(encode(query))), ExecType.ORDER_STATUS)  # as replayed from the journal
        assert (ex.status, ex.reason, ex.order.order_id, ex.clordid) == (
            OrdStatus.REJECTED, Reason.UNSUPPORTED_SIDE, 0, "c1",
        )  # fmt: skip
        assert decode(b'["Q","o1","c1",null,7]') == QueryOrder("o1", "c1", None, 7)  # journals from before the field

    def test_query_changes_nothing(self, eng: MatchingEngine) -> None:
        eng.process(buy("c1", 100, 10))
        rpt = eng.book("XYZ").rpt_seq
        assert not market_data(eng.process(QueryOrder("o1", "c1")))
        assert eng.book("XYZ").rpt_seq == rpt and eng.book("XYZ").bbo().bid == LevelView(100, 10, 1)


# ---------------------------------------------------------------------------------------------- self-trade prevention


class TestSelfTradePrevention:
    """The three self-trade prevention modes; they apply per account."""

    def book(self, stp: SelfTradePrevention) -> MatchingEngine:
        """Asks at 100: o2's 3 lots, then o1's own 5 lots, then o2's 4 lots."""
        eng = make_engine(stp)
        run(eng, [sell("s1", 100, 3, owner="o2"), sell("own", 100, 5), sell("s3", 100, 4, owner="o2")])
        return eng

    def test_cancel_resting_is_the_default(self) -> None:
        assert MatchingEngine(INSTRUMENTS).stp is SelfTradePrevention.CANCEL_RESTING

    def test_cancel_resting(self) -> None:
        eng = self.book(SelfTradePrevention.CANCEL_RESTING)
        events = eng.process(buy("b1", 100, 10))
        assert [(e.clordid, e.exec_type, e.reason) for e in executions(events) if e.order.owner == "o1"] == [
            ("b1", ExecType.NEW, None),
            ("b1", ExecType.TRADE, None),
            ("own", ExecType.CANCELED, Reason.SELF_TRADE),
            ("b1", ExecType.TRADE, None),
        ]
        assert [t.qty for t in trades(events)] == [3, 4]
        assert eng.book("XYZ").bbo() == BBO(LevelView(100, 3, 1), None)  # the remainder rests

    def test_cancel_incoming(self) -> None:
        eng = self.book(SelfTradePrevention.CANCEL_INCOMING)
        events = eng.process(buy("b1", 100, 10))
        assert [t.qty for t in trades(events)] == [3]  # the trade before the own order stands
        ex = executions(events)[-1]
        assert (ex.clordid, ex.exec_type, ex.reason, ex.cum) == ("b1", ExecType.CANCELED, Reason.SELF_TRADE, 3)
        assert ids(eng.book("XYZ").orders_at(SELL, 100)) == [2, 3]
        assert eng.book("XYZ").bbo() == BBO(None, LevelView(100, 9, 2))

    def test_cancel_both(self) -> None:
        eng = self.book(SelfTradePrevention.CANCEL_BOTH)
        events = eng.process(buy("b1", 100, 10))
        cancelled = [(e.clordid, e.reason) for e in executions(events, ExecType.CANCELED)]
        assert cancelled == [("own", Reason.SELF_TRADE), ("b1", Reason.SELF_TRADE)]
        assert ids(eng.book("XYZ").orders_at(SELL, 100)) == [3]
        assert book_updates(events) == [BookUpdate("XYZ", SELL, 100, 4, 1, book_updates(events)[0].rpt_seq)]

    @pytest.mark.parametrize("stp", list(SelfTradePrevention))
    def test_applies_per_account_across_owners(self, stp: SelfTradePrevention) -> None:
        eng = make_engine(stp)
        eng.process(sell("s1", 100, 5, owner="o2", account="shared"))
        events = eng.process(buy("b1", 100, 5, owner="o1", account="shared"))
        assert not trades(events) and executions(events, ExecType.CANCELED)

    def test_same_owner_different_accounts_trade(self, eng: MatchingEngine) -> None:
        eng.process(sell("s1", 100, 5, account="A"))
        assert [t.qty for t in trades(eng.process(buy("b1", 100, 5, account="B")))] == [5]

    def test_limit_crossing_only_own_orders_rests_after_cancelling_them(self, eng: MatchingEngine) -> None:
        eng.process(sell("own", 100, 5))
        events = eng.process(buy("b1", 101, 5))
        assert [e.clordid for e in executions(events, ExecType.CANCELED)] == ["own"]
        assert eng.book("XYZ").bbo() == BBO(LevelView(101, 5, 1), None)


# ---------------------------------------------------------------------------------------------- end of day


class TestExpireDayOrders:
    """End of day: DAY orders expire, GTC orders stay."""

    def test_day_orders_expire_gtc_survive(self, eng: MatchingEngine) -> None:
        run(eng, [buy("d1", 100, 5), buy("g1", 100, 3, tif=GTC), sell("d2", 110, 2, owner="o2", symbol="ABC")])
        events = eng.process(ExpireDayOrders(ts=99))
        expired = executions(events, ExecType.EXPIRED)
        assert [(e.clordid, e.reason, e.ts) for e in expired] == [
            ("d1", Reason.END_OF_DAY, 99), ("d2", Reason.END_OF_DAY, 99),
        ]  # fmt: skip
        assert eng.book("XYZ").depth(BUY) == [LevelView(100, 3, 1)]
        assert eng.book("ABC").bbo() == BBO(None, None)
        (rej,) = rejects(eng.process(CancelOrder("o1", "x", "d1")))
        assert rej.reason is Reason.ORDER_DONE

    def test_nothing_to_expire(self, eng: MatchingEngine) -> None:
        eng.process(buy("g1", 100, 3, tif=GTC))
        assert eng.process(ExpireDayOrders()) == []


# ---------------------------------------------------------------------------------------------- book views


class TestBookViews:
    """BBO, depth, orders at a level and all resting orders."""

    def fill(self, eng: MatchingEngine) -> None:
        run(eng, [
            buy("b1", 99, 1), buy("b2", 100, 2), buy("b3", 98, 3), buy("b4", 100, 4, owner="o2"),
            sell("s1", 102, 5), sell("s2", 101, 6), sell("s3", 103, 7), sell("s4", 101, 8, owner="o2"),
        ])  # fmt: skip

    def test_empty_book(self, eng: MatchingEngine) -> None:
        book = eng.book("XYZ")
        assert book.bbo() == BBO(None, None) and book.depth(BUY) == [] and book.orders_at(SELL, 100) == []

    def test_bbo(self, eng: MatchingEngine) -> None:
        self.fill(eng)
        assert eng.book("XYZ").bbo() == BBO(LevelView(100, 6, 2), LevelView(101, 14, 2))

    def test_full_depth_best_first(self, eng: MatchingEngine) -> None:
        self.fill(eng)
        book = eng.book("XYZ")
        assert book.depth(BUY) == [LevelView(100, 6, 2), LevelView(99, 1, 1), LevelView(98, 3, 1)]
        assert book.depth(SELL, 0) == [LevelView(101, 14, 2), LevelView(102, 5, 1), LevelView(103, 7, 1)]

    @pytest.mark.parametrize("n", [1, 2, 3, 10])
    def test_depth_n(self, eng: MatchingEngine, n: int) -> None:
        self.fill(eng)
        book = eng.book("XYZ")
        assert book.depth(SELL, n) == book.depth(SELL)[:n] and len(book.depth(BUY, n)) == min(n, 3)

    def test_orders_at_in_time_priority(self, eng: MatchingEngine) -> None:
        self.fill(eng)
        assert [o.clordid for o in eng.book("XYZ").orders_at(BUY, 100)] == ["b2", "b4"]
        assert [o.clordid for o in eng.book("XYZ").orders_at(SELL, 101)] == ["s2", "s4"]
        assert eng.book("XYZ").orders_at(BUY, 101) == []

    def test_resting_orders(self, eng: MatchingEngine) -> None:
        self.fill(eng)
        assert [o.clordid for o in eng.book("XYZ").resting_orders()] == [
            "b2", "b4", "b1", "b3", "s2", "s4", "s1", "s3",
        ]  # fmt: skip

    def test_unknown_symbol_raises(self, eng: MatchingEngine) -> None:
        with pytest.raises(KeyError):
            eng.book("NOPE")


# ---------------------------------------------------------------------------------------------- sequencing, stats


def busy_day() -> list[Command]:
    """Commands touching both symbols with rests, trades, cancels, replaces and an expiry."""
    return [
        sell("s1", 101, 5, owner="o2"), sell("s2", 102, 5, owner="o2"), buy("b1", 99, 5, owner="o3"),
        buy("t1", 102, 7), sell("a1", 50, 3, symbol="ABC", owner="o2"), buy("a2", 50, 1, symbol="ABC"),
        CancelOrder("o3", "x1", "b1"), replace("t1", "t2", 100, 9), QueryOrder("o1", "t2"),
        buy("m1", None, 2, symbol="ABC"), MassCancel("o2", "mc"), ExpireDayOrders(),
        buy("f1", 200, 50, tif=FOK), sell("i1", 1, 1, tif=IOC, owner="o2"),
    ]  # fmt: skip


class TestSequencing:
    """RptSeq, ExecIDs and trade ids have no gaps; the engine is deterministic."""

    def test_rpt_seq_rises_by_one_per_market_data_event_per_symbol(self, eng: MatchingEngine) -> None:
        events = run(eng, busy_day())
        for symbol in ("XYZ", "ABC"):
            seqs = [e.rpt_seq for e in market_data(events) if e.symbol == symbol]
            assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) > 5
            assert eng.book(symbol).rpt_seq == seqs[-1]

    def test_order_events_share_one_venue_wide_seq(self, eng: MatchingEngine) -> None:
        events = run(eng, [*busy_day(), CancelOrder("o1", "zz", "nope")])
        seqs = [e.seq for e in events if isinstance(e, Execution | CancelReject | MassCancelReport)]
        assert seqs == list(range(1, len(seqs) + 1))

    def test_trade_ids_are_consecutive(self, eng: MatchingEngine) -> None:
        events = run(eng, busy_day())
        trade_ids = [t.trade_id for t in trades(events)]
        assert trade_ids == list(range(1, len(trade_ids) + 1)) and len(trade_ids) >= 3

    def test_deterministic(self) -> None:
        first = [client_view(e) for e in run(make_engine(), busy_day())]
        second = [client_view(e) for e in run(make_engine(), busy_day())]
        assert first == second and len(first) > 30


class TestStats:
    """Open, high, low and volume, updated after each trade print."""

    def test_open_high_low_volume(self, eng: MatchingEngine) -> None:
        def stats(events: list[Event]) -> list[tuple[Stat, int]]:
            return [(e.stat, e.value) for e in events if isinstance(e, StatUpdate)]

        run(eng, [sell("s1", 100, 2, owner="o2"), sell("s2", 103, 2, owner="o2"), sell("s3", 105, 9, owner="o2")])
        assert stats(eng.process(buy("b1", 100, 2))) == [
            (Stat.OPEN, 100), (Stat.HIGH, 100), (Stat.LOW, 100), (Stat.VOLUME, 2),
        ]  # fmt: skip
        assert stats(eng.process(buy("b2", 105, 3))) == [
            (Stat.HIGH, 103), (Stat.VOLUME, 4), (Stat.HIGH, 105), (Stat.VOLUME, 5),
        ]  # fmt: skip
        assert stats(eng.process(buy("b3", 105, 1))) == [(Stat.VOLUME, 6)]  # no new high
        eng.process(buy("b4", 90, 5, owner="o2"))
        assert stats(eng.process(sell("s4", 90, 5))) == [(Stat.LOW, 90), (Stat.VOLUME, 11)]
        eng.process(buy("b5", 90, 1, owner="o2"))
        assert stats(eng.process(sell("s5", 90, 1))) == [(Stat.VOLUME, 12)]  # no new low
        book = eng.book("XYZ")
        assert (book.open, book.high, book.low, book.volume, book.last_px) == (100, 105, 90, 12, 90)

    def test_stats_are_per_symbol(self, eng: MatchingEngine) -> None:
        run(eng, [sell("s1", 100, 2, owner="o2"), buy("b1", 100, 2)])
        assert eng.book("ABC").open is None and eng.book("ABC").volume == 0


# ---------------------------------------------------------------------------------------------- instruments


class TestInstrument:
    """Decimal <-> integer conversion on the tick and lot grids, and reference-data checks."""

    @pytest.mark.parametrize(
        ("qty", "lots"),
        [("0.0001", 1), ("0.00010", 1), ("1.2345", 12345), ("100", 1_000_000), ("0.00015", None), ("1E-5", None)],
    )
    def test_qty_to_lots_rejects_off_grid(self, qty: str, lots: int | None) -> None:
        assert BTC.qty_to_lots(Decimal(qty)) == lots

    @pytest.mark.parametrize(("price", "ticks"), [("100.01", 10001), ("100.010", 10001), ("100.005", None)])
    def test_price_to_ticks_rejects_off_grid(self, price: str, ticks: int | None) -> None:
        assert BTC.price_to_ticks(Decimal(price)) == ticks

    @pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1E+40", "9" * 40])
    def test_unrepresentable_values_are_off_grid_not_errors(self, value: str) -> None:
        assert BTC.price_to_ticks(Decimal(value)) is None
        assert BTC.qty_to_lots(Decimal(value)) is None

    def test_round_trip(self) -> None:
        assert BTC.ticks_to_price(10001) == Decimal("100.01")
        assert BTC.lots_to_qty(12345) == Decimal("1.2345")
        assert BTC.qty_to_lots(BTC.lots_to_qty(7)) == 7

    def test_integer_limits(self) -> None:
        assert (BTC.min_lots, BTC.max_lots, BTC.min_ticks, BTC.max_ticks) == (1, 1_000_000, 1, 100_000_000)

    @pytest.mark.parametrize(
        "spec",
        [
            {"min_qty": "0.00015"},
            {"max_price": "1000.005"},
            {"tick_size": "0"},
            {"min_qty": "2", "max_qty": "1"},
        ],
    )
    def test_inconsistent_reference_data_is_refused(self, spec: dict[str, str]) -> None:
        base = {"tick_size": "0.01", "lot_size": "0.0001", "max_qty": "100", "min_price": "0.01", "max_price": "1000"}
        with pytest.raises(ValueError):
            Instrument.from_config("X", base | spec)
