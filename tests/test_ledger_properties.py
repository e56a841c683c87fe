"""Property tests of the ledger: over random command streams (orders of every kind, fills, cancels, replaces, mass
cancels, kills, deposits, withdrawals, limit changes and refusals of all of them), money is conserved per asset,
nothing available goes negative, every account holds exactly what its open orders need (so holds are released
exactly when orders end), positions net to zero, and a replay from the journal codec rebuilds the same ledger."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import (
    CancelOrder,
    Command,
    Fund,
    Kill,
    Limits,
    MassCancel,
    MatchingEngine,
    NewOrder,
    OrdType,
    ReplaceOrder,
    SelfTradePrevention,
    SetLimits,
    Side,
    TimeInForce,
)
from engine.codec import decode, encode
from engine.snapshot import dump_state, load_state
from tests.engine_helpers import BTC, XYZ
from tests.ledger_helpers import ACCOUNTS, check_invariants, funded_engine

CENTER = {"XYZ": 10_000, "BTC-USD": 5_000_000}
QTY = {"XYZ": (1, 30), "BTC-USD": (1, 20_000)}

new_order = st.tuples(
    st.just("new"),
    st.sampled_from(ACCOUNTS),
    st.sampled_from(("S1", "S2")),
    st.sampled_from(("XYZ", "BTC-USD")),
    st.sampled_from((Side.BUY, Side.SELL)),
    st.integers(-6, 6),
    st.floats(0, 1),
    st.sampled_from((TimeInForce.DAY, TimeInForce.DAY, TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK)),
    st.integers(0, 9),
)
other_step = st.one_of(
    st.tuples(st.just("cancel"), st.integers(0, 200)),
    st.tuples(st.just("replace"), st.integers(0, 200), st.integers(-6, 6), st.floats(0, 1)),
    st.tuples(st.just("mass"), st.sampled_from(("S1", "S2"))),
    st.tuples(st.just("kill"), st.sampled_from(ACCOUNTS), st.booleans()),
    st.tuples(st.just("fund"), st.sampled_from(ACCOUNTS), st.sampled_from(("USD", "XYZ", "BTC")), st.integers()),
    st.tuples(st.just("limits"), st.sampled_from(ACCOUNTS), st.integers(0, 3)),
)
# Two steps in three are orders, so that books fill and cross; cancels and replaces are the next most frequent.
step = st.integers(0, 11).flatmap(
    lambda k: (
        new_order
        if k < 8
        else other_step
        if k < 10
        else st.tuples(st.just("replace"), st.integers(0, 200), st.integers(-6, 6), st.floats(0, 1))
    )
)
actions = st.lists(step, min_size=20, max_size=150)


def commands(steps: list[tuple[Any, ...]]) -> list[Command]:
    """Concrete commands for the drawn steps (cancels and replaces name earlier orders by index)."""
    out: list[Command] = []
    placed: list[tuple[str, str, str, Side]] = []  # (owner, clordid, symbol, side)
    for i, step in enumerate(steps):
        kind = step[0]
        if kind == "new":
            _, account, owner, symbol, side, offset, size, tif, kind_roll = step
            lo, hi = QTY[symbol]
            qty = lo + int(size * (hi - lo))
            market = kind_roll == 0
            price = None if market else CENTER[symbol] + offset
            clordid = f"o{i}"
            ord_type = OrdType.MARKET if market else OrdType.LIMIT
            out.append(NewOrder(owner, clordid, account, symbol, side, ord_type, tif, price, qty, False, i))
            placed.append((owner, clordid, symbol, side))
        elif kind == "cancel" and placed:
            owner, clordid, _, _ = placed[step[1] % len(placed)]
            out.append(CancelOrder(owner, f"x{i}", clordid, None, i))
        elif kind == "replace" and placed:
            owner, clordid, symbol, side = placed[step[1] % len(placed)]
            lo, hi = QTY[symbol]
            qty = lo + int(step[3] * (hi - lo))
            out.append(ReplaceOrder(owner, f"r{i}", clordid, None, symbol, side, CENTER[symbol] + step[2], qty, i))
        elif kind == "mass":
            out.append(MassCancel(step[1], f"m{i}", ts=i))
        elif kind == "kill":
            out.append(Kill(f"k{i}", account=step[1], revive=step[2], ts=i))
        elif kind == "fund":
            amount = step[3] % 10**13 - 5 * 10**12  # withdrawals too, many of them refused
            out.append(Fund(f"f{i}", step[1], step[2], amount, f"fund-{i % 7}-{step[3] % 3}", i))
        elif kind == "limits":
            limits = [Limits(), Limits(max_order_qty=10), Limits(max_open_orders=2), Limits(max_position=25)][step[2]]
            out.append(SetLimits(f"l{i}", step[1], "XYZ", limits.to_list(), i))
    return out


@settings(max_examples=300, deadline=None)
@given(
    steps=actions,
    stp=st.sampled_from(list(SelfTradePrevention)),
    funds_checks=st.sampled_from((True, True, False)),
)
def test_money_is_conserved_and_holds_match_open_orders(
    steps: list[tuple[Any, ...]], stp: SelfTradePrevention, funds_checks: bool
) -> None:
    eng = funded_engine(usd=60_000 * 10**6, xyz=300, btc=2 * 10**8, stp=stp, funds_checks=funds_checks)
    check_invariants(eng)
    for cmd in commands(steps):
        eng.process(cmd)
        check_invariants(eng)


@settings(max_examples=60, deadline=None)
@given(steps=actions, cut=st.integers(0, 120))
def test_snapshot_plus_replay_rebuilds_the_same_ledger(steps: list[tuple[Any, ...]], cut: int) -> None:
    cmds = commands(steps)
    cut = min(cut, len(cmds))
    live = funded_engine(usd=60_000 * 10**6, xyz=300, btc=2 * 10**8)
    for cmd in cmds[:cut]:
        live.process(cmd)
    restored: MatchingEngine = load_state(orjson.loads(orjson.dumps(dump_state(live))), (XYZ, BTC))
    for cmd in cmds[cut:]:
        wire = decode(encode(cmd))
        assert repr(live.process(cmd)) == repr(restored.process(wire))
    assert orjson.dumps(dump_state(live)) == orjson.dumps(dump_state(restored))
