"""Property tests: random command streams through the matching engine, against invariants and a reference.

Streams use two listed symbols and an unlisted one, four owners (``o1`` and ``o3`` trade for the same account,
so self-trade prevention fires across owners as well as within one), prices clustered around 100 ticks so that
orders cross often, every command kind and each self-trade prevention mode, with some invalid values mixed in.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import (
    CancelOrder,
    CancelReject,
    Command,
    Event,
    ExecType,
    Execution,
    ExpireDayOrders,
    MassCancel,
    MassCancelReport,
    MatchingEngine,
    NewOrder,
    OrdStatus,
    OrdType,
    QueryOrder,
    Reason,
    ReplaceOrder,
    SelfTradePrevention,
    Side,
    TimeInForce,
)
from tests.engine_helpers import (
    BUY,
    INSTRUMENTS,
    L2,
    SELL,
    apply_book_updates,
    client_view,
    engine_depth,
    executions,
    l2_depth,
    market_data,
)
from tests.reference_model import Listing, ReferenceEngine

pytestmark = pytest.mark.timeout(120)

SYMBOLS = ("XYZ", "ABC")
ACCOUNT_OF = {"o1": "A1", "o2": "A2", "o3": "A1", "o4": "A4"}
DAY, GTC, IOC, FOK = TimeInForce.DAY, TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK
OPEN = (OrdStatus.NEW, OrdStatus.PARTIALLY_FILLED)
# INSTRUMENTS in the reference model's own terms, stated independently: (symbol, lots min..max, ticks min..max).
LISTINGS = (
    Listing("XYZ", 1, 1000, 1, 100_000),
    Listing("ABC", 1, 1000, 1, 100_000),
    Listing("BAND", 10, 1000, 5000, 15_000),
)

PROPERTY = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# A command is decoded from 12 random bytes; each table puts its simplest value first, so that shrinking the
# bytes towards zero gives simpler streams. Drawing bytes rather than many small values keeps generation cheap.
_BYTES = 12
_OWNERS = sorted(ACCOUNT_OF)
_SYMBOLS = [*SYMBOLS * 20, "NOPE"]  # NOPE is not listed
_PRICES = [100, 99, 101, 98, 102, 97, 103, 96, 104] * 6 + [None, 0, 100_001]
_QTYS = [*range(1, 13)] * 6 + [0, -1, 1001]
_TIFS = [DAY, DAY, DAY, GTC, GTC, IOC, FOK]


@dataclass(frozen=True)
class Case:
    """A self-trade prevention mode and a command stream."""

    stp: SelfTradePrevention
    commands: list[Command]


def _decode(data: bytes, stp: SelfTradePrevention) -> list[Command]:
    """Turn random bytes into commands.

    A reference engine runs alongside, so that most cancels, replaces and queries name a live order (by its
    current ClOrdID or its id) and only some name a done, foreign or unknown one.
    """
    shadow = ReferenceEngine(LISTINGS, stp)
    first_clordid: dict[int, str] = {}  # order id -> the ClOrdID it was entered with
    out: list[Command] = []
    for i in range(len(data) // _BYTES):
        b = data[i * _BYTES : (i + 1) * _BYTES]
        kind, variant, flavour = b[0] % 100, b[1] % 10, b[2] % 40
        owner, symbol = _OWNERS[b[3] % len(_OWNERS)], _SYMBOLS[b[4] % len(_SYMBOLS)]
        side = SELL if b[5] & 1 else BUY
        price, qty, tif = _PRICES[b[6] % len(_PRICES)], _QTYS[b[7] % len(_QTYS)], _TIFS[b[8] % len(_TIFS)]
        ref = int.from_bytes(b[9:12], "big")
        clordid = f"c{i}"
        live = shadow.resting
        pool = live if live and b[10] % 4 else list(shadow.orders.values())  # mostly live, sometimes any
        target = pool[ref % len(pool)] if pool else None
        orig: str | None = None
        order_id: int | None = None
        foreign = owner
        if target is not None and kind >= 50:  # acts on an order: usually its owner does
            foreign = _OWNERS[(_OWNERS.index(target.owner) + 1) % len(_OWNERS)]
            owner, orig = target.owner, target.clordid
        cmd: Command
        if target is None or kind < 50:
            if variant == 9 and flavour < 20 and target is not None:
                owner, clordid = target.owner, target.clordid  # duplicate ClOrdID
            ord_type = OrdType.MARKET if flavour in (1, 2, 3) else OrdType.LIMIT
            if flavour in (1, 2):
                price = None
            account = ACCOUNT_OF[owner]
            post_only = flavour in (4, 5)
            cmd = NewOrder(owner, clordid, account, symbol, side, ord_type, tif, price, qty, post_only, i)
            if flavour == 6:
                cmd.edge_reject = Reason.PRICE_OFF_TICK  # the FIX edge found it off the tick grid
        elif kind < 90 and kind % 5 == 4:
            scope_symbol = symbol if variant % 2 else None
            scope_side = side if variant % 3 == 0 else None
            reason = Reason.CANCEL_ON_DISCONNECT if variant > 6 else Reason.MASS_CANCEL
            cmd = MassCancel(owner, clordid, scope_symbol, scope_side, variant > 6, reason, i)
        elif kind < 90:
            if variant in (1, 2):
                orig, order_id = None, target.order_id  # by venue order id
            if variant == 2:
                owner = foreign  # someone else's order
            elif variant == 3:
                orig = None  # names no order at all
            elif variant == 4:
                orig = "no-such-clordid"
            elif variant == 5:
                clordid = target.clordid  # duplicate ClOrdID
            elif variant == 6:
                orig = first_clordid[target.order_id]  # an earlier ClOrdID of the chain
            if kind < 65:
                cmd = CancelOrder(owner, clordid, orig, order_id, i)
            else:
                symbol, side = target.symbol, target.side
                if flavour % 10 == 6:
                    side = side.opposite  # changes identity: rejected
                elif flavour % 10 == 7:
                    qty = target.cum  # at or below filled: rejected
                elif flavour % 10 < 5 and target.price is not None:
                    price = target.price  # same price: priority depends on the quantity
                    if flavour % 10 < 3:
                        qty = max(target.cum + 1, target.qty - flavour % 10)  # smaller: keeps priority
                cmd = ReplaceOrder(owner, clordid, orig, order_id, symbol, side, price, qty, i)
        elif kind < 97:
            if variant in (1, 2):
                orig, order_id = None, target.order_id
            if variant == 2:
                owner = foreign
            elif variant == 3:
                orig = None
            elif variant == 4:
                orig = first_clordid[target.order_id]
            cmd = QueryOrder(owner, orig, order_id, i)
        else:
            cmd = ExpireDayOrders(i)
        last_id = shadow.last_order_id
        shadow.process(cmd)
        if isinstance(cmd, NewOrder) and shadow.last_order_id != last_id:
            first_clordid[shadow.last_order_id] = cmd.clordid
        out.append(cmd)
    return out


@st.composite
def cases(draw: st.DrawFn, max_len: int = 200) -> Case:
    """A random self-trade prevention mode and command stream of 1..``max_len`` commands."""
    stp = draw(st.sampled_from(list(SelfTradePrevention)))
    n = draw(st.integers(1, max_len))
    return Case(stp, _decode(draw(st.binary(min_size=n * _BYTES, max_size=n * _BYTES)), stp))


# ---------------------------------------------------------------------------------------------- trace


@dataclass(frozen=True)
class BookState:
    """What the books look like between two commands."""

    queues: dict[tuple[str, Side], list[tuple[int, int, str]]]  # (order id, price, account), priority order
    depth: dict[tuple[str, Side], list[tuple[int, int, int]]]  # (price, qty, count), best first
    rpt_seq: dict[str, int]


@dataclass(frozen=True)
class Step:
    """One command, the events it caused, and the books just before and just after it."""

    command: Command
    events: list[Event]
    before: BookState
    after: BookState


def book_state(engine: MatchingEngine) -> BookState:
    """Snapshot every listed symbol's queues, depth and RptSeq."""
    queues, depth = {}, {}
    for symbol in SYMBOLS:
        for side in (BUY, SELL):
            levels = engine.book(symbol).side(side).values()
            queues[symbol, side] = [(o.order_id, o.price, o.account) for lv in levels for o in lv.orders()]
            depth[symbol, side] = engine_depth(engine, symbol, side)
    return BookState(queues, depth, {s: engine.book(s).rpt_seq for s in SYMBOLS})


def run_trace(case: Case) -> tuple[MatchingEngine, list[Step]]:
    """Feed the case's commands to a fresh engine, recording each step."""
    engine = MatchingEngine(INSTRUMENTS, case.stp)
    steps = []
    state = book_state(engine)
    for cmd in case.commands:
        events = engine.process(cmd)
        after = book_state(engine)
        steps.append(Step(cmd, events, state, after))
        state = after
    return engine, steps


def _taker(step: Step) -> Execution | None:
    """The acknowledgement of the order a step may match (NEW or REPLACED), or None."""
    first = step.events[0] if step.events else None
    if isinstance(first, Execution) and first.exec_type in (ExecType.NEW, ExecType.REPLACED):
        return first
    return None


# ---------------------------------------------------------------------------------------------- properties


def test_reference_model_lists_the_engine_instruments() -> None:
    """The model's own listings agree with the instruments the engine is given (same symbols, order and limits)."""
    engine_view = [(i.symbol, i.min_lots, i.max_lots, i.min_ticks, i.max_ticks) for i in INSTRUMENTS]
    model_view = [(li.symbol, li.min_lots, li.max_lots, li.min_ticks, li.max_ticks) for li in LISTINGS]
    assert model_view == engine_view


@PROPERTY
@given(cases())
def test_engine_matches_reference_model_event_for_event(case: Case) -> None:
    """The fast engine and the naive reference produce identical events and books for any command stream."""
    engine, ref = MatchingEngine(INSTRUMENTS, case.stp), ReferenceEngine(LISTINGS, case.stp)
    for i, cmd in enumerate(case.commands):
        got = [client_view(e) for e in engine.process(cmd)]
        want = [client_view(e) for e in ref.process(cmd)]
        assert got == want, f"command {i}: {cmd}"
    for symbol in SYMBOLS:
        for side in (BUY, SELL):
            assert engine_depth(engine, symbol, side) == ref.depth(symbol, side)
        assert engine.book(symbol).rpt_seq == ref.rpt_seq[symbol]


@PROPERTY
@given(cases())
def test_book_never_crossed_and_l2_replay_matches_depth(case: Case) -> None:
    """After every command the best bid is below the best ask, and the BookUpdates rebuild the engine's depth."""
    engine = MatchingEngine(INSTRUMENTS, case.stp)
    l2: L2 = {}
    for cmd in case.commands:
        apply_book_updates(l2, engine.process(cmd))
        for symbol in SYMBOLS:
            bid, ask = engine.book(symbol).bbo()
            assert bid is None or ask is None or bid.price < ask.price, (symbol, bid, ask)
            for side in (BUY, SELL):
                assert l2_depth(l2, symbol, side) == engine_depth(engine, symbol, side)


@PROPERTY
@given(cases())
def test_rpt_seq_rises_by_one_per_symbol(case: Case) -> None:
    """Each market-data event's RptSeq is its symbol's previous one plus one, from 1; ExecIDs likewise venue-wide."""
    engine = MatchingEngine(INSTRUMENTS, case.stp)
    last = dict.fromkeys(SYMBOLS, 0)
    last_exec_id = 0
    for cmd in case.commands:
        events = engine.process(cmd)
        for md in market_data(events):
            assert md.rpt_seq == last[md.symbol] + 1, md
            last[md.symbol] = md.rpt_seq
        for e in events:
            if isinstance(e, Execution | CancelReject | MassCancelReport):
                assert e.seq == last_exec_id + 1, e  # ExecIDs: venue-wide, no gaps
                last_exec_id = e.seq
    assert {s: engine.book(s).rpt_seq for s in SYMBOLS} == last


@PROPERTY
@given(cases())
def test_quantity_is_conserved_per_order(case: Case) -> None:
    """For every order, filled + leaves + cancelled/expired equals its quantity, as reported in the events."""
    engine, steps = run_trace(case)
    filled: dict[int, int] = {}
    leaves: dict[int, int] = {}
    for step in steps:
        for ex in executions(step.events):
            oid = ex.order.order_id
            if ex.exec_type is ExecType.REJECTED or oid == 0:
                assert ex.leaves == 0 and ex.cum == 0 and oid == 0
                continue
            if ex.exec_type is ExecType.NEW:
                assert oid not in filled
                filled[oid], leaves[oid] = 0, ex.qty
            if ex.exec_type is ExecType.ORDER_STATUS:
                assert (ex.cum, ex.leaves) == (filled[oid], leaves[oid]), ex
                continue
            if ex.exec_type is ExecType.TRADE:
                assert ex.last_qty > 0
                filled[oid] += ex.last_qty
            assert ex.cum == filled[oid], ex
            if ex.exec_type in (ExecType.CANCELED, ExecType.EXPIRED):
                cancelled = leaves[oid]
                assert ex.leaves == 0 and cancelled > 0, ex
                assert ex.cum + cancelled == ex.qty, ex
            else:
                assert ex.cum + ex.leaves == ex.qty, ex
            leaves[oid] = ex.leaves
            if ex.leaves == 0:
                assert ex.status not in OPEN, ex
    resting = {o.order_id: o for s in SYMBOLS for o in engine.book(s).resting_orders()}
    for oid, left in leaves.items():
        order = engine.order(oid)
        assert order is not None and order.leaves == left and order.cum == filled[oid]
        assert (oid in resting) == (order.status in OPEN) == (left > 0)


@PROPERTY
@given(cases())
def test_trades_at_resting_prices_in_price_time_order(case: Case) -> None:
    """An aggressive order meets the opposite queue strictly in priority order and trades at each maker's price.

    The makers it touched (traded with, or cancelled by self-trade prevention) are a prefix of the opposite
    side's queue as it stood before the command; all but the last are used up; no trade is beyond its limit;
    and a remainder expires only when no acceptable liquidity is left.
    """
    for step in run_trace(case)[1]:
        ack = _taker(step)
        if ack is None:
            continue
        taker = ack.order
        opposite = (taker.symbol, taker.side.opposite)
        queue = step.before.queues[opposite]
        price_of = {oid: price for oid, price, _ in queue}
        touched: list[int] = []
        maker_px: dict[int, int] = {}  # trade id -> price the maker reported
        taker_px: dict[int, int] = {}
        for ex in executions(step.events):
            oid = ex.order.order_id
            if oid == taker.order_id:
                if ex.exec_type is ExecType.TRADE:
                    assert ex.aggressor
                    taker_px[ex.trade_id] = ex.last_px
                    limit = ex.price
                    assert limit is None or (ex.last_px <= limit if taker.side is BUY else ex.last_px >= limit)
                continue
            if oid not in touched:
                touched.append(oid)
            if ex.exec_type is ExecType.TRADE:
                assert not ex.aggressor and ex.last_px == price_of[oid] == ex.price
                maker_px[ex.trade_id] = ex.last_px
            else:
                assert ex.exec_type is ExecType.CANCELED and ex.reason is Reason.SELF_TRADE, ex
        assert taker_px == maker_px
        assert touched == [oid for oid, _, _ in queue[: len(touched)]]
        left = step.after.queues[opposite]
        untouched = queue[len(touched) :]
        assert left == untouched or (touched and left == queue[len(touched) - 1 :])  # only the last is partial
        last = executions(step.events)[-1]
        if last.order is taker and last.exec_type is ExecType.EXPIRED and last.reason is not Reason.FOK_NOT_FILLED:
            # A remainder expires only when nothing acceptable is left on the other side.
            assert not left or not _crosses(taker.side, taker.price, left[0][1])


def _crosses(side: Side, limit: int | None, price: int) -> bool:
    """Whether an order on ``side`` with ``limit`` (None: market) may trade at a resting ``price``."""
    return limit is None or (price <= limit if side is BUY else price >= limit)


@PROPERTY
@given(cases())
def test_fill_or_kill_is_atomic(case: Case) -> None:
    """A FOK order either fills completely in its own command or expires with the book and feed untouched."""
    for step in run_trace(case)[1]:
        cmd = step.command
        ack = _taker(step)
        if not isinstance(cmd, NewOrder) or cmd.tif is not FOK or ack is None:
            continue
        mine = [e for e in executions(step.events) if e.order is ack.order]
        if mine[-1].status is OrdStatus.FILLED:
            assert sum(e.last_qty for e in mine) == cmd.qty
            continue
        # Any other event (a trade, a book update) shows as itself and fails the comparison.
        assert [(e.exec_type, e.reason) if isinstance(e, Execution) else e for e in step.events] == [
            (ExecType.NEW, None),
            (ExecType.EXPIRED, Reason.FOK_NOT_FILLED),
        ]
        assert step.after == step.before


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(max_len=120))
def test_replaying_a_stream_gives_the_same_events(case: Case) -> None:
    """Determinism: the same commands into a new engine yield field-for-field the same events."""
    first = [client_view(e) for step in run_trace(case)[1] for e in step.events]
    second = [client_view(e) for step in run_trace(case)[1] for e in step.events]
    assert first == second
