"""The ledger inside the engine: holds, settlement, fees, positions, pre-trade risk, kill switch, operator funding."""

from __future__ import annotations

import orjson

from engine import (
    CancelOrder,
    Configure,
    ExecType,
    Fund,
    Kill,
    Limits,
    Market,
    MassCancel,
    OperatorResult,
    OrdType,
    PositionsReport,
    QueryPositions,
    Reason,
    ReplaceOrder,
    SelfTradePrevention,
    SetLimits,
    TimeInForce,
)
from engine.codec import decode, encode
from engine.snapshot import dump_state, load_state
from gateway.fixcodes import REJECT_CODES
from tests.engine_helpers import BTC, BUY, XYZ, buy, executions, sell
from tests.ledger_helpers import MARKETS, check_invariants, funded_engine, ledger_of

USD = 10**6  # one dollar in USD units
NO_FEES = {**MARKETS, "XYZ": Market("XYZ", "XYZ", "USD", base_per_lot=1, quote_per_tick_lot=10_000)}


def usd(engine, account):  # type: ignore[no-untyped-def]
    acct = ledger_of(engine).accounts[account]
    return acct.available.get("USD", 0), acct.held.get("USD", 0)


def base(engine, account, asset="XYZ"):  # type: ignore[no-untyped-def]
    acct = ledger_of(engine).accounts[account]
    return acct.available.get(asset, 0), acct.held.get(asset, 0)


def test_a_limit_buy_holds_notional_plus_taker_fee_and_a_cancel_gives_it_back() -> None:
    eng = funded_engine(usd=2000 * USD)
    eng.process(buy("b1", 10_000, 10, owner="A", account="A"))  # 10 @ 100.00 = 1,000 USD; taker 5 bp = 0.50 USD
    assert usd(eng, "A") == (2000 * USD - 1000_500_000, 1000_500_000)
    check_invariants(eng)
    eng.process(CancelOrder("A", "x1", "b1"))
    assert usd(eng, "A") == (2000 * USD, 0)
    check_invariants(eng)


def test_an_order_beyond_the_funds_is_refused_without_an_order_id() -> None:
    eng = funded_engine(usd=999 * USD)
    (rej,) = executions(eng.process(buy("b1", 10_000, 10, owner="A", account="A")))
    assert rej.exec_type is ExecType.REJECTED and rej.reason is Reason.INSUFFICIENT_FUNDS
    assert rej.order.order_id == 0 and REJECT_CODES[Reason.INSUFFICIENT_FUNDS].ord_rej == 3
    assert usd(eng, "A") == (999 * USD, 0)
    assert "XYZ" not in ledger_of(eng).accounts["A"].positions  # no position report for an order that never was
    (ack,) = executions(eng.process(buy("b2", 9_000, 10, owner="A", account="A")))
    assert ack.exec_type is ExecType.NEW and ack.order.order_id == 1  # the refusal consumed no order id


def test_a_sell_holds_the_base_asset() -> None:
    eng = funded_engine(xyz=5)
    (rej,) = executions(eng.process(sell("s1", 10_000, 6, owner="A", account="A")))
    assert rej.reason is Reason.INSUFFICIENT_FUNDS
    eng.process(sell("s2", 10_000, 5, owner="A", account="A"))
    assert base(eng, "A") == (0, 5)


def test_a_trade_moves_exactly_the_right_amounts_and_fees_go_to_the_fee_account() -> None:
    eng = funded_engine(usd=10_000 * USD, xyz=100)
    eng.process(sell("s1", 10_000, 10, owner="B", account="B"))  # maker: rebate 1 bp
    before_a, before_b = usd(eng, "A")[0], usd(eng, "B")[0]
    events = eng.process(buy("b1", 10_100, 4, owner="A", account="A"))  # taker at 101.00 limit, fills at 100.00
    taker, maker = (e for e in executions(events, ExecType.TRADE))
    notional = 4 * 10_000 * 10_000  # 400 USD
    assert taker.fee == notional * 500 // 10**6 == 200_000  # 0.20 USD
    assert maker.fee == -(notional * 100 // 10**6) == -40_000  # a 0.04 USD rebate
    # A paid 400.20 and holds nothing: the hold at 101.00 was released in full (price improvement came back).
    assert usd(eng, "A") == (before_a - notional - 200_000, 0)
    assert base(eng, "A") == (100 + 4, 0)
    # B received 400 + 0.04 and still holds the 6 unsold shares.
    assert usd(eng, "B")[0] == before_b + notional + 40_000
    assert base(eng, "B") == (90, 6)
    fees = ledger_of(eng).fees.available
    assert fees == {"USD": 200_000 - 40_000}
    check_invariants(eng)


def test_a_resting_buy_filled_as_maker_gets_the_unused_taker_fee_back() -> None:
    eng = funded_engine(usd=10_000 * USD)
    eng.process(buy("b1", 10_000, 10, owner="A", account="A"))
    held = usd(eng, "A")[1]
    eng.process(sell("s1", 9_000, 10, owner="B", account="B"))  # fills at the maker's 100.00
    notional = 10 * 10_000 * 10_000
    assert held == notional + notional * 500 // 10**6
    assert usd(eng, "A") == (10_000 * USD - notional + notional * 100 // 10**6, 0)  # paid notional, got the rebate
    check_invariants(eng)


def test_partial_fills_keep_the_hold_equal_to_what_the_rest_needs() -> None:
    eng = funded_engine()
    eng.process(buy("b1", 10_000, 7, owner="A", account="A"))
    for i in range(3):
        eng.process(sell(f"s{i}", 9_999, 2, owner="B", account="B"))
        check_invariants(eng)
    eng.process(CancelOrder("A", "x", "b1"))
    assert usd(eng, "A")[1] == 0
    check_invariants(eng)


def test_replace_up_beyond_the_funds_is_refused_and_the_order_is_untouched() -> None:
    eng = funded_engine(usd=1100 * USD)
    eng.process(buy("b1", 10_000, 10, owner="A", account="A"))
    held = usd(eng, "A")[1]
    (rej,) = eng.process(ReplaceOrder("A", "b2", "b1", None, "XYZ", BUY, 10_000, 11))
    assert rej.reason is Reason.INSUFFICIENT_FUNDS  # type: ignore[union-attr]
    order = eng.find("A", "b1")
    assert order is not None and order.qty == 10 and order.clordid == "b1" and usd(eng, "A")[1] == held
    (rep,) = executions(eng.process(ReplaceOrder("A", "b3", "b1", None, "XYZ", BUY, 9_000, 10)))  # down: releases
    assert rep.exec_type is ExecType.REPLACED
    assert usd(eng, "A")[1] == 10 * 9_000 * 10_000 + 10 * 9_000 * 10_000 * 500 // 10**6
    check_invariants(eng)


def test_a_market_buy_holds_at_its_protection_price_and_releases_the_rest() -> None:
    eng = funded_engine()
    eng.process(sell("s1", 10_000, 3, owner="B", account="B"))
    eng.process(sell("s2", 10_500, 3, owner="C", account="C"))
    eng.process(sell("own", 9_000, 5, owner="A", account="A"))  # own order: cancelled by STP, not a price to reach
    events = eng.process(buy("m1", None, 5, owner="A", account="A", ord_type=OrdType.MARKET))
    trades = executions(events, ExecType.TRADE)
    assert [(t.last_qty, t.last_px) for t in trades if t.order.owner == "A"] == [(3, 10_000), (2, 10_500)]
    assert usd(eng, "A")[1] == 0
    check_invariants(eng)


def test_a_market_buy_its_funds_cannot_cover_at_the_protection_price_is_refused() -> None:
    eng = funded_engine(usd=101 * USD)
    eng.process(sell("s1", 10_000, 1, owner="B", account="B"))
    eng.process(sell("s2", 50_000, 1, owner="B", account="B"))
    (rej,) = executions(eng.process(buy("m1", None, 2, owner="A", account="A", ord_type=OrdType.MARKET)))
    assert rej.reason is Reason.INSUFFICIENT_FUNDS  # held at 2 x 500.00, although 100.00 + 500.00 is what it costs
    (ack, fill, _maker) = executions(eng.process(buy("m2", None, 1, owner="A", account="A", ord_type=OrdType.MARKET)))
    assert ack.exec_type is ExecType.NEW and fill.last_px == 10_000
    check_invariants(eng)


def test_every_way_an_order_ends_releases_its_hold() -> None:
    eng = funded_engine(stp=SelfTradePrevention.CANCEL_BOTH)
    eng.process(buy("ioc", 9_000, 5, owner="A", account="A", tif=TimeInForce.IOC))  # nothing to take: expires
    eng.process(buy("fok", 9_000, 5, owner="A", account="A", tif=TimeInForce.FOK))
    eng.process(buy("r1", 9_000, 5, owner="A", account="A"))
    eng.process(sell("stp", 9_000, 5, owner="A2", account="A"))  # same account: both cancelled
    eng.process(buy("m1", 9_100, 5, owner="A", account="A", tif=TimeInForce.GTC))
    eng.process(MassCancel("A", "mc"))
    eng.process(buy("k1", 9_000, 5, owner="A", account="A"))
    eng.process(Kill("op", account="A"))
    assert usd(eng, "A")[1] == 0 and base(eng, "A")[1] == 0
    check_invariants(eng)


def test_kill_cancels_every_working_order_refuses_new_ones_until_revived() -> None:
    eng = funded_engine()
    eng.process(buy("b1", 9_000, 5, owner="A", account="A"))
    eng.process(sell("s1", 11_000, 5, owner="A", account="A", symbol="XYZ"))
    events = eng.process(Kill("op1", account="A"))
    cancels = executions(events, ExecType.CANCELED)
    assert len(cancels) == 2 and {c.reason for c in cancels} == {Reason.KILL_SWITCH}
    (result,) = [e for e in events if isinstance(e, OperatorResult)]
    assert result.applied and result.cancelled == 2
    (rej,) = executions(eng.process(buy("b2", 9_000, 5, owner="A", account="A")))
    assert rej.reason is Reason.ACCOUNT_KILLED
    eng.process(Kill("op2", account="A", revive=True))
    (ack, *_) = executions(eng.process(buy("b3", 9_000, 5, owner="A", account="A")))
    assert ack.exec_type is ExecType.NEW


def test_killing_a_session_stops_its_orders_on_every_account() -> None:
    eng = funded_engine()
    eng.process(buy("b1", 9_000, 5, owner="S1", account="A"))
    eng.process(buy("b2", 9_000, 5, owner="S2", account="A"))
    events = eng.process(Kill("op", owner="S1"))
    assert [c.order.owner for c in executions(events, ExecType.CANCELED)] == ["S1"]
    assert executions(eng.process(buy("b3", 9_000, 1, owner="S1", account="A")))[0].reason is Reason.ACCOUNT_KILLED
    assert executions(eng.process(buy("b4", 9_000, 1, owner="S2", account="A")))[0].exec_type is ExecType.NEW


def test_risk_checks_refuse_in_the_documented_order() -> None:
    eng = funded_engine(usd=2000 * USD)
    limits = Limits(max_order_qty=10, max_order_notional=500 * USD, max_open_orders=2, max_position=12)
    assert eng.process(SetLimits("op", "A", "XYZ", limits.to_list()))[0].applied  # type: ignore[union-attr]

    def reason(cmd):  # type: ignore[no-untyped-def]
        return executions(eng.process(cmd))[0].reason

    assert reason(buy("q", 100, 11, owner="A", account="A")) is Reason.RISK_ORDER_QTY
    assert reason(buy("n", 10_000, 6, owner="A", account="A")) is Reason.RISK_ORDER_NOTIONAL  # 600 > 500 USD
    assert reason(buy("o1", 100, 5, owner="A", account="A")) is None
    assert reason(buy("o2", 100, 5, owner="A", account="A")) is None
    assert reason(buy("o3", 100, 1, owner="A", account="A")) is Reason.RISK_OPEN_ORDERS
    eng.process(CancelOrder("A", "c", "o2"))
    assert reason(buy("p", 100, 8, owner="A", account="A")) is Reason.RISK_POSITION  # 5 open + 8 > 12
    eng.process(SetLimits("op", "A", "XYZ", Limits().to_list()))
    assert reason(buy("f", 30_000, 10, owner="A", account="A")) is Reason.INSUFFICIENT_FUNDS
    assert Reason.UNKNOWN_ACCOUNT is reason(buy("u", 100, 1, owner="Z", account="nobody"))


def test_venue_default_limits_apply_unless_the_account_has_its_own() -> None:
    eng = funded_engine(default_limits={"XYZ": Limits(max_order_qty=3)})
    assert executions(eng.process(buy("a", 100, 4, owner="A", account="A")))[0].reason is Reason.RISK_ORDER_QTY
    eng.process(SetLimits("op", "A", "XYZ", Limits(max_order_qty=100).to_list()))
    assert executions(eng.process(buy("b", 100, 4, owner="A", account="A")))[0].reason is None
    assert executions(eng.process(buy("c", 100, 4, owner="B", account="B")))[0].reason is Reason.RISK_ORDER_QTY


def test_funding_is_idempotent_and_a_withdrawal_cannot_exceed_what_is_available() -> None:
    eng = funded_engine(usd=100 * USD)

    def result(cmd):  # type: ignore[no-untyped-def]
        (r,) = eng.process(cmd)
        assert isinstance(r, OperatorResult)
        return r

    assert result(Fund("r1", "A", "USD", 5 * USD, "dep-1")).applied
    dup = result(Fund("r2", "A", "USD", 5 * USD, "dep-1"))
    assert not dup.applied and dup.reason is Reason.DUPLICATE_FUNDING_ID
    assert usd(eng, "A")[0] == 105 * USD
    eng.process(buy("b", 10_000, 1, owner="A", account="A"))  # holds 100.05 USD
    too_much = result(Fund("r3", "A", "USD", -5 * USD, "wd-1"))
    assert not too_much.applied and too_much.reason is Reason.INSUFFICIENT_FUNDS
    assert result(Fund("r4", "A", "USD", -4 * USD, "wd-2")).applied
    assert result(Fund("r5", "A", "EUR", 1, "x")).reason is Reason.UNKNOWN_ASSET
    assert result(Fund("r6", "nobody", "USD", 1, "y")).reason is Reason.UNKNOWN_ACCOUNT
    assert result(Fund("r7", "A", "USD", 0, "z")).reason is Reason.INVALID_AMOUNT
    check_invariants(eng)


def test_positions_follow_the_average_cost_method_with_fees_in_realized_pnl() -> None:
    eng = funded_engine(markets=NO_FEES)
    ledger = ledger_of(eng)
    eng.process(sell("s1", 10_000, 10, owner="B", account="B"))
    eng.process(buy("b1", 10_000, 10, owner="A", account="A"))  # A long 10 @ 100
    eng.process(sell("s2", 12_000, 10, owner="C", account="C"))
    eng.process(buy("b2", 12_000, 10, owner="A", account="A"))  # A long 20, cost 2,200 USD: avg 110
    eng.process(buy("b3", 13_000, 5, owner="D", account="D"))
    eng.process(sell("s3", 13_000, 5, owner="A", account="A"))  # A sells 5 @ 130: realized 5 x (130 - 110)
    pos = ledger.accounts["A"].positions["XYZ"]
    assert pos.net == 15 and pos.cost == 1650 * USD and pos.realized == 100 * USD
    (report,) = eng.process(QueryPositions("A", "req", "A"))
    assert isinstance(report, PositionsReport) and report.reason is None
    (view,) = report.positions
    assert (view.symbol, view.net, view.cost, view.realized, view.mark) == ("XYZ", 15, 1650 * USD, 100 * USD, 13_000)
    check_invariants(eng)


def test_position_flips_through_zero() -> None:
    eng = funded_engine(markets=NO_FEES)
    ledger = ledger_of(eng)
    eng.process(sell("s1", 10_000, 4, owner="B", account="B"))
    eng.process(buy("b1", 10_000, 4, owner="A", account="A"))  # long 4 @ 100
    eng.process(buy("b2", 9_000, 10, owner="C", account="C"))
    eng.process(sell("s2", 9_000, 10, owner="A", account="A"))  # sells 10 @ 90: closes 4 (-40), short 6 @ 90
    pos = ledger.accounts["A"].positions["XYZ"]
    assert pos.net == -6 and pos.realized == -40 * USD and pos.cost == 6 * 90 * USD


def test_the_ledger_survives_a_snapshot_and_the_journal_codec() -> None:
    eng = funded_engine()
    eng.process(SetLimits("op", "A", "XYZ", Limits(max_open_orders=5).to_list()))
    eng.process(buy("b1", 10_000, 10, owner="A", account="A"))
    eng.process(sell("s1", 9_990, 4, owner="B", account="B"))
    eng.process(Kill("op", account="C"))
    copy = load_state(orjson.loads(orjson.dumps(dump_state(eng))), (XYZ, BTC))
    assert orjson.dumps(dump_state(copy)) == orjson.dumps(dump_state(eng))
    for cmd in (
        sell("s2", 9_990, 6, owner="B", account="B"),
        Fund("r", "A", "USD", 7, "f-2"),
        Fund("r", "A", "USD", 7, "f-2"),
        Kill("op", account="C", revive=True),
        QueryPositions("A", "q", "A"),
    ):
        cmd = decode(encode(cmd))
        assert repr(eng.process(cmd)) == repr(copy.process(cmd))
    check_invariants(copy)


def test_without_funds_checks_orders_are_not_held_and_balances_may_go_negative() -> None:
    eng = funded_engine(usd=0, xyz=0, btc=0, funds_checks=False)
    eng.process(sell("s1", 10_000, 5, owner="B", account="B"))
    eng.process(buy("b1", 10_000, 5, owner="A", account="A"))
    assert usd(eng, "A")[0] < 0 and base(eng, "B")[0] == -5 and usd(eng, "A")[1] == 0
    check_invariants(eng)


def test_btc_usd_settles_in_satoshis_and_micro_dollars() -> None:
    eng = funded_engine()
    eng.process(sell("s1", 5_000_000, 2_500, owner="B", account="B", symbol="BTC-USD"))  # 0.25 BTC @ 50,000.00
    eng.process(buy("b1", 5_000_000, 2_500, owner="A", account="A", symbol="BTC-USD"))
    assert base(eng, "A", "BTC") == (100 * 10**8 + 25_000_000, 0)
    notional = 12_500 * USD
    assert usd(eng, "A")[0] == 1_000_000 * USD - notional - notional // 1000
    assert usd(eng, "B")[0] == 1_000_000 * USD + notional
    check_invariants(eng)


def test_new_rules_keep_an_operators_venue_default_the_config_did_not_change() -> None:
    eng = funded_engine(default_limits={"XYZ": Limits(max_order_qty=3)})
    ledger = ledger_of(eng)
    eng.process(SetLimits("op", None, "BTC-USD", Limits(max_order_qty=7).to_list()))  # the operator's default
    setup = ledger.setup
    eng.process(Configure({**setup.to_dict(), "accounts": [*setup.accounts, "E"]}))  # a new account, nothing else
    assert ledger.defaults["BTC-USD"] == Limits(max_order_qty=7) and ledger.defaults["XYZ"] == Limits(max_order_qty=3)
    changed = {**setup.to_dict(), "default_limits": {"XYZ": Limits(max_order_qty=5).to_list()}}
    eng.process(Configure(changed))  # the config changed XYZ's default (and dropped BTC-USD's: the operator's stays)
    assert ledger.defaults["XYZ"] == Limits(max_order_qty=5) and ledger.defaults["BTC-USD"] == Limits(max_order_qty=7)
