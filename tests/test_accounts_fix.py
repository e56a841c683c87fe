"""Accounts, funds and risk as a client sees them over FIX, against the real gateway.

The module's gateway funds every account with 10,000 USD, 1 BTC, 100 AAPL and 100 MSFT, so that amounts are easy to
follow. On BTC-USD (tick 0.01, lot 0.0001) the maker earns a 1 bp rebate and the taker pays 5 bp; on AAPL the taker
pays 1 bp. Each test uses sessions (and so accounts) no other test of the module uses.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import quickfix as fix

from fixclient import FixSession, SessionError, field
from gateway.operator import call
from tests.conftest import PASSWORDS, ClientFactory, start_gateway, start_gateway_with, unique
from tests.fixtools import cancel, f, holdings, new_order, replace, request_positions, wait_er, wait_msg
from tests.gateway_process import DEMO_CONFIG, GatewayProcess
from tests.qf_initiator import QuickFixClient

pytestmark = pytest.mark.timeout(120)

OPERATOR_TOKEN = "demo-operator-token"
OPENING = {"USD": "10000", "BTC": "1", "AAPL": "100", "MSFT": "100"}
_PASS1_HASH = tomllib.loads(DEMO_CONFIG.read_text())["sessions"]["CLIENT1"]["password_hash"]
EXTRA_SESSIONS = {  # password "pass1"
    "CLIENT10": {"role": "order_entry", "accounts": ["ACC10"], "password_hash": _PASS1_HASH},
    "CLIENT11": {"role": "order_entry", "accounts": ["ACC11A", "ACC11B"], "password_hash": _PASS1_HASH},
    "CLIENT12": {"role": "order_entry", "accounts": ["ACC12"], "password_hash": _PASS1_HASH},
}
USD_10K = ("10000.000000", "0.000000")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """The demo venue with small, round opening balances (overrides conftest's shared gateway for this module)."""
    gw = start_gateway_with(
        tmp_path_factory.mktemp("accounts"), {"accounts.opening_balance": OPENING}, sessions=EXTRA_SESSIONS
    )
    yield gw
    assert gw.stop() == 0, gw.log_text()[-3000:]


def operator(gw: GatewayProcess, action: str, **params: Any) -> dict[str, Any]:
    """One request on the gateway's operator channel (what ``fixgw admin`` sends)."""
    return call(f"http://127.0.0.1:{gw.ports['operator']}", OPERATOR_TOKEN, action, params)


def position(net: str, avg: str, mark: str, realized: str, unrealized: str) -> dict[str, str]:
    """A BTC-USD position as :func:`tests.fixtools.holdings` reads it (PnL in USD)."""
    return {"net": net, "avg": avg, "mark": mark, "realized": realized, "unrealized": unrealized, "currency": "USD"}


def commission(er: Any) -> tuple[str | None, str | None, str | None]:
    return f(er, 12), f(er, 13), f(er, 479)


# ---------------------------------------------------------------------------- funds


def test_an_order_beyond_the_funds_is_refused_with_103_3_and_holds_nothing(connect: ClientFactory) -> None:
    s = connect("CLIENT1")
    assert holdings(s).balances == {
        "USD": USD_10K, "BTC": ("1.00000000", "0.00000000"), "AAPL": ("100", "0"), "MSFT": ("100", "0"),
    }  # fmt: skip
    # 0.5 BTC at 20,000.00 is 10,000 USD, and the hold adds the 5 bp taker fee: 10,005 USD, 5 more than there is.
    too_big = unique("nf")
    new_order(s, too_big, "1", "0.5000", "20000.00", symbol="BTC-USD")
    rej = wait_er(s, too_big, "8")
    assert (f(rej, 39), f(rej, 103), f(rej, 58), f(rej, 37)) == ("8", "3", "insufficient funds", "NONE")
    # A sell holds the base asset: 1.0001 BTC is more than the account owns.
    oversold = unique("nf")
    new_order(s, oversold, "2", "1.0001", "20000.00", symbol="BTC-USD")
    assert (f(rej := wait_er(s, oversold, "8"), 103), f(rej, 58)) == ("3", "insufficient funds")
    assert holdings(s).balances["USD"] == USD_10K  # a refused order holds nothing
    # 0.4997 at 20,000.00 holds 9,994 + 4.997 fee: it fits, and the hold shows.
    fits = unique("nf")
    new_order(s, fits, "1", "0.4997", "20000.00", symbol="BTC-USD")
    wait_er(s, fits, "0")
    assert holdings(s).balances["USD"] == ("1.003000", "9998.997000")
    gone = unique("nfc")
    cancel(s, gone, fits, symbol="BTC-USD")
    wait_er(s, gone, "4")
    assert holdings(s).balances["USD"] == USD_10K


def test_the_risk_checks_refuse_in_their_documented_order(gateway: GatewayProcess, connect: ClientFactory) -> None:
    s = connect("CLIENT12", password="pass1")
    # The demo's venue default for AAPL: at most 5,000,000 USD of notional per order.
    big = unique("rk")
    new_order(s, big, "1", "60000", "100.00", account="ACC12")
    rej = wait_er(s, big, "8")
    assert (f(rej, 103), f(rej, 58)) == ("3", "order notional above the account's limit")
    answer = operator(gateway, "limits", account="ACC12", symbol="AAPL",
                      changes={"max_order_qty": "5", "max_open_orders": "1"})  # fmt: skip
    assert answer["ok"], answer
    # 6 at 10,000.00 breaks the quantity limit and the funds: the quantity is checked first.
    both = unique("rk")
    new_order(s, both, "1", "6", "10000.00", account="ACC12")
    assert f(rej := wait_er(s, both, "8"), 58) == "order quantity above the account's limit" and f(rej, 103) == "3"
    first = unique("rk")
    new_order(s, first, "1", "5", "1.00", account="ACC12")
    wait_er(s, first, "0")
    second = unique("rk")
    new_order(s, second, "1", "1", "1.00", account="ACC12")
    rej = wait_er(s, second, "8")
    assert (f(rej, 103), f(rej, 58)) == ("3", "too many open orders for the account in this instrument")
    # A replace beyond a limit: OrderCancelReject 102=2, the order as it was.
    bigger = unique("rk")
    replace(s, bigger, first, "6", "1.00")
    refused = wait_msg(s, "9", t11=bigger)
    assert (f(refused, 102), f(refused, 434), f(refused, 39), f(refused, 58)) == (
        "2", "2", "0", "order quantity above the account's limit",
    )  # fmt: skip
    gone = unique("rk")
    cancel(s, gone, first)
    wait_er(s, gone, "4")
    assert operator(gateway, "limits", account="ACC12", symbol="AAPL", changes={"max_position": "3"})["ok"]
    long = unique("rk")
    new_order(s, long, "1", "4", "1.00", account="ACC12")
    rej = wait_er(s, long, "8")
    assert (f(rej, 103), f(rej, 58)) == ("3", "order would take the account's position beyond its limit")


# ---------------------------------------------------------------------------- settlement and fees


def test_a_trade_moves_exactly_the_right_amounts_between_two_accounts(
    gateway: GatewayProcess, connect: ClientFactory
) -> None:
    seller, buyer = connect("CLIENT2"), connect("CLIENT3")
    fees_before = operator(gateway, "accounts")["fee_account"]["balances"].get("USD", {}).get("available", "0")
    ask = unique("tr")
    new_order(seller, ask, "2", "0.3000", "20000.00", symbol="BTC-USD")
    wait_er(seller, ask, "0")
    assert holdings(seller).balances["BTC"] == ("0.70000000", "0.30000000")
    # The buyer's limit is 20,100.00; it trades at the resting 20,000.00: 6,000 USD, taker fee 5 bp = 3 USD. It held
    # 0.3 x 20,100 + 5 bp = 6,033.015 USD; what it did not spend is back at once.
    bid = unique("tr")
    new_order(buyer, bid, "1", "0.3000", "20100.00", symbol="BTC-USD")
    taker = wait_er(buyer, bid, "F")
    maker = wait_er(seller, ask, "F")
    assert (f(taker, 31), f(taker, 32), f(taker, 851)) == ("20000.00", "0.3000", "2")
    assert commission(taker) == ("3.000000", "3", "USD")
    assert commission(maker) == ("-0.600000", "3", "USD")  # the maker's rebate: 1 bp of 6,000
    b, s = holdings(buyer), holdings(seller)
    assert b.balances["USD"] == ("3997.000000", "0.000000") and b.balances["BTC"] == ("1.30000000", "0.00000000")
    assert s.balances["USD"] == ("16000.600000", "0.000000") and s.balances["BTC"] == ("0.70000000", "0.00000000")
    assert b.positions["BTC-USD"] == position("0.3000", "20000.00", "20000.00", "-3.000000", "0.000000")
    assert s.positions["BTC-USD"] == position("-0.3000", "20000.00", "20000.00", "0.600000", "0.000000")
    # The buyer sells a third back at 20,500.00 (maker: rebate 0.205), the seller buys it (taker: fee 1.025). Each
    # closes a third of its position at the average cost of 20,000.00: the buyer realizes +50, the seller -50.
    back = unique("tr")
    new_order(buyer, back, "2", "0.1000", "20500.00", symbol="BTC-USD")
    wait_er(buyer, back, "0")
    cover = unique("tr")
    new_order(seller, cover, "1", "0.1000", "20500.00", symbol="BTC-USD")
    assert commission(wait_er(seller, cover, "F")) == ("1.025000", "3", "USD")
    assert commission(wait_er(buyer, back, "F")) == ("-0.205000", "3", "USD")
    b, s = holdings(buyer), holdings(seller)
    assert b.balances["USD"] == ("6047.205000", "0.000000") and b.balances["BTC"] == ("1.20000000", "0.00000000")
    assert s.balances["USD"] == ("13949.575000", "0.000000") and s.balances["BTC"] == ("0.80000000", "0.00000000")
    assert b.positions["BTC-USD"] == position("0.2000", "20000.00", "20500.00", "47.205000", "100.000000")
    assert s.positions["BTC-USD"] == position("-0.2000", "20000.00", "20500.00", "-50.425000", "-100.000000")
    # The venue's fee account took 3 - 0.6 + 1.025 - 0.205 = 3.22 USD: nothing was created or lost.
    fees = operator(gateway, "accounts")["fee_account"]["balances"]["USD"]["available"]
    assert Decimal(fees) - Decimal(fees_before) == Decimal("3.22")


def test_a_market_buy_is_held_at_its_protection_price(connect: ClientFactory) -> None:
    buyer, seller = connect("CLIENT4"), connect("CLIENT5")

    def ask(qty: str, price: str) -> None:
        clordid = unique("mk")
        new_order(seller, clordid, "2", qty, price, symbol="BTC-USD")
        wait_er(seller, clordid, "0")

    def market_buy(qty: str, symbol: str = "BTC-USD") -> str:
        clordid = unique("mb")
        new_order(buyer, clordid, "1", qty, None, symbol=symbol)
        return clordid

    ask("0.1000", "20000.00")
    ask("0.1000", "30000.00")
    # 0.3 facing 0.2 of other accounts' offers: held at the last of them, 0.3 x 30,000 + 5 bp = 9,004.50 (it has
    # 10,000). It buys 0.1 at 20,000 and 0.1 at 30,000 (5,000 + 2.50 fees); the rest expires.
    first = market_buy("0.3000")
    wait_er(buyer, first, "0")
    expired = wait_er(buyer, first, "C")
    assert (f(expired, 14), f(expired, 58)) == (
        "0.2000",
        "unfilled quantity of market order expired: no more liquidity",
    )
    assert holdings(buyer).balances["USD"] == ("4997.500000", "0.000000")
    ask("0.1000", "25000.00")
    ask("0.1000", "90000.00")
    # 0.1 reaches only the 25,000 offer: held at 25,000 (2,501.25), not at 90,000 (9,004.50 would not fit).
    second = market_buy("0.1000")
    assert f(wait_er(buyer, second, "F"), 31) == "25000.00"
    assert holdings(buyer).balances["USD"] == ("2496.250000", "0.000000")
    # 0.2 would reach the 90,000 offer: 18,009 USD to hold, more than there is.
    third = market_buy("0.2000")
    assert (f(rej := wait_er(buyer, third, "8"), 103), f(rej, 58)) == ("3", "insufficient funds")
    # Facing no offer at all, a market buy holds nothing: accepted, then it expires without trading.
    fourth = market_buy("1", symbol="MSFT")
    wait_er(buyer, fourth, "0")
    assert f(wait_er(buyer, fourth, "C"), 14) == "0"
    assert holdings(buyer).balances["USD"] == ("2496.250000", "0.000000")


def test_a_replace_beyond_the_funds_is_refused_and_the_order_stays_as_it_was(connect: ClientFactory) -> None:
    s = connect("CLIENT6")
    bid = unique("rp")
    new_order(s, bid, "1", "0.2000", "20000.00", symbol="BTC-USD")
    wait_er(s, bid, "0")
    assert holdings(s).balances["USD"] == ("5998.000000", "4002.000000")  # 4,000 + 5 bp
    # Up to 0.5 would hold 10,005: 6,003 more than the 5,998 available.
    up = unique("rp")
    replace(s, up, bid, "0.5000", "20000.00", symbol="BTC-USD")
    refused = wait_msg(s, "9", t11=up)
    assert (f(refused, 102), f(refused, 434), f(refused, 39), f(refused, 58)) == ("2", "2", "0", "insufficient funds")
    s.send("H", [(11, bid), (55, "BTC-USD"), (54, "1")])
    status = wait_er(s, bid, "I")
    assert (f(status, 38), f(status, 44), f(status, 151), f(status, 39)) == ("0.2000", "20000.00", "0.2000", "0")
    assert holdings(s).balances["USD"] == ("5998.000000", "4002.000000")
    # Down, then up within the funds: the hold follows each replace exactly.
    down = unique("rp")
    replace(s, down, bid, "0.1000", "19000.00", symbol="BTC-USD")
    wait_er(s, down, "5")
    assert holdings(s).balances["USD"] == ("8099.050000", "1900.950000")
    up = unique("rp")
    replace(s, up, down, "0.4000", "19000.00", symbol="BTC-USD")
    wait_er(s, up, "5")
    assert holdings(s).balances["USD"] == ("2396.200000", "7603.800000")


# ---------------------------------------------------------------------------- RequestForPositions


def test_positions_are_answered_only_for_the_sessions_own_accounts(connect: ClientFactory) -> None:
    s = connect("CLIENT7")
    refused = unique("ps")
    new_order(s, refused, "1", "1", "99999.00", symbol="MSFT")  # beyond the funds: no position comes of it
    wait_er(s, refused, "8")
    # Without Account (1): the session's only account. One report per asset, none for MSFT.
    request_positions(s, None, "own")
    ack = wait_msg(s, "AO", t710="own")
    assert (f(ack, 1), f(ack, 728), f(ack, 729), f(ack, 727), f(ack, 581)) == ("ACC7", "0", "0", "4", "1")
    reports = [wait_msg(s, "AP", t710="own") for _ in range(4)]
    assert sorted(f(r, 15) or "" for r in reports) == ["AAPL", "BTC", "MSFT", "USD"]
    assert all(f(r, 721) == f"{f(ack, 721)}-{n}" for n, r in enumerate(reports, start=1))
    # Another session's account: refused, nothing reported.
    request_positions(s, "ACC1", "theirs")
    ack = wait_msg(s, "AO", t710="theirs")
    assert (f(ack, 728), f(ack, 729), f(ack, 727), f(ack, 1)) == ("3", "2", "0", "ACC1")
    assert f(ack, 58) == "unknown account or account not permitted for this session"
    # Trades (PosReqType 1) and subscriptions (263=1) are not supported.
    for req_id, pos_req_type, extra in (("trades", "1", []), ("subscribe", "0", [(263, "1")])):
        request_positions(s, "ACC7", req_id, pos_req_type, extra)
        ack = wait_msg(s, "AO", t710=req_id)
        assert (f(ack, 728), f(ack, 729), f(ack, 727)) == ("4", "2", "0"), req_id
        assert f(ack, 58) == "only snapshot requests for positions are supported: PosReqType 0, " + (
            "SubscriptionRequestType 0 or absent"
        )
    assert not [m for m in s.drain(0.3) if field(m, 35) == "AP"]


def test_a_session_with_two_accounts_must_name_one(connect: ClientFactory) -> None:
    s = connect("CLIENT11", password="pass1")
    request_positions(s, None, "which")
    assert f(wait_msg(s, "AO", t710="which"), 728) == "3"
    assert holdings(s, "ACC11B").balances["USD"] == USD_10K


# ---------------------------------------------------------------------------- kill switch


def test_the_kill_switch_cancels_refuses_and_revive_restores(gateway: GatewayProcess, connect: ClientFactory) -> None:
    s = connect("CLIENT8")
    day, gtc = unique("ks"), unique("ks")
    new_order(s, day, "1", "10", "10.00")
    new_order(s, gtc, "2", "5", "500.00", tif="1")
    wait_er(s, day, "0")
    wait_er(s, gtc, "0")
    assert holdings(s).balances["AAPL"] == ("95", "5")
    answer = operator(gateway, "kill", account="ACC8")
    assert (answer["ok"], answer["applied"], answer["cancelled"]) == (True, "kill", 2)
    for clordid in (day, gtc):
        er = wait_er(s, clordid, "4")
        assert (f(er, 39), f(er, 58), f(er, 41), f(er, 151)) == ("4", "cancelled by the kill switch", None, "0")
    assert holdings(s).balances["AAPL"] == ("100", "0") and holdings(s).balances["USD"] == USD_10K
    refused = unique("ks")
    new_order(s, refused, "1", "1", "10.00")
    rej = wait_er(s, refused, "8")
    assert (f(rej, 103), f(rej, 58)) == ("0", "account or session disabled by the kill switch")
    assert operator(gateway, "revive", account="ACC8")["ok"]
    again = unique("ks")
    new_order(s, again, "1", "1", "10.00")
    wait_er(s, again, "0")


def test_killing_a_session_stops_its_orders_whatever_the_account(gateway: GatewayProcess, connect: ClientFactory):
    s = connect("CLIENT9")
    resting = unique("ks")
    new_order(s, resting, "1", "1", "10.00", tif="1")
    wait_er(s, resting, "0")
    assert operator(gateway, "kill", session="CLIENT9")["cancelled"] == 1
    assert f(wait_er(s, resting, "4"), 58) == "cancelled by the kill switch"
    refused = unique("ks")
    new_order(s, refused, "1", "1", "10.00")
    assert f(wait_er(s, refused, "8"), 103) == "0"
    assert operator(gateway, "revive", session="CLIENT9")["ok"]
    again = unique("ks")
    new_order(s, again, "1", "1", "10.00")
    wait_er(s, again, "0")


# ---------------------------------------------------------------------------- a stock QuickFIX client


def test_a_quickfix_client_with_the_stock_dictionary_accepts_fills_with_commission_and_positions(
    gateway: GatewayProcess, tmp_path: Path, connect: ClientFactory
) -> None:
    maker = connect("CLIENT11", password="pass1")
    ask = unique("qa")
    new_order(maker, ask, "2", "5", "100.00", account="ACC11A")
    wait_er(maker, ask, "0")
    client = QuickFixClient(tmp_path / "qf", gateway.oe_port, "CLIENT10", "pass1")
    client.start()
    try:
        bid = unique("qb")
        order = fix.Message()
        order.getHeader().setField(35, "D")
        for tag, value in [(11, bid), (1, "ACC10"), (55, "AAPL"), (54, "1"), (38, "5"), (40, "2"), (44, "100.00"),
                           (59, "0"), (60, "20260101-00:00:00.000")]:  # fmt: skip
            order.setField(tag, value)
        client.send(order)
        fill = client.wait_for("8", t11=bid, t150="F")
        # 500 USD at the 1 bp taker fee
        assert (fill.getField(12), fill.getField(13), fill.getField(479)) == ("0.050000", "3", "USD")
        assert commission(wait_er(maker, ask, "F")) == ("0.000000", "3", "USD")
        request = fix.Message()
        request.getHeader().setField(35, "AN")
        for tag, value in [(710, "qf-pos"), (724, "0"), (1, "ACC10"), (581, "1"), (715, "20260101"),
                           (60, "20260101-00:00:00.000")]:  # fmt: skip
            request.setField(tag, value)
        client.send(request)
        ack = client.wait_for("AO", t710="qf-pos")
        assert (ack.getField(728), ack.getField(729), ack.getField(727)) == ("0", "0", "5")
        reports = [client.wait_for("AP", t710="qf-pos") for _ in range(5)]
        aapl = next(r for r in reports if r.isSetField(55))
        assert (aapl.getField(55), aapl.getField(730), aapl.getField(734)) == ("AAPL", "100.00", "100.00")
        group = fix.Group(702, 703)
        aapl.getGroup(1, group)
        assert (group.getField(703), group.getField(704), group.getField(705)) == ("TQ", "5", "0")
    finally:
        client.stop()
    # Had the stock dictionary refused any of it, the client would have answered with a session Reject.
    assert "session_reject_received" not in gateway.log_text()


# ---------------------------------------------------------------------------- restart and the message-rate limit


def _logged_on(gw: GatewayProcess, comp_id: str) -> FixSession:
    s = FixSession("127.0.0.1", gw.oe_port, comp_id, PASSWORDS[comp_id], reset_seq=True)
    s.logon()
    return s


def _ledger_view(gw: GatewayProcess) -> dict[str, Any]:
    """Everything a client and an operator can see of the ledger: each account's AN/AP answer (balances, holds,
    positions) and the operator's list of accounts (balances, the fee account, kill switches)."""
    views: dict[str, Any] = {}
    for comp_id in ("CLIENT1", "CLIENT2", "CLIENT3"):
        s = _logged_on(gw, comp_id)
        views[comp_id] = holdings(s).view()
        s.logout()
    views["operator"] = operator(gw, "accounts")
    return views


@pytest.mark.timeout(180)
def test_a_restart_clean_or_after_sigkill_restores_the_ledger_exactly(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path / "gw")
    s1, s2, s3 = (_logged_on(gw, c) for c in ("CLIENT1", "CLIENT2", "CLIENT3"))
    ask, bid, btc, msft = unique("rs"), unique("rs"), unique("rs"), unique("rs")
    new_order(s1, ask, "2", "10", "150.00", tif="1")  # GTC: resting orders survive a restart, DAY ones do not
    wait_er(s1, ask, "0")
    new_order(s2, bid, "1", "4", "150.00")
    wait_er(s2, bid, "F")
    new_order(s2, btc, "1", "0.5000", "20000.00", symbol="BTC-USD", tif="1")
    wait_er(s2, btc, "0")
    new_order(s3, msft, "2", "1", "300.00", symbol="MSFT", tif="1")
    wait_er(s3, msft, "0")
    assert operator(gw, "kill", account="ACC3")["cancelled"] == 1
    assert operator(gw, "limits", account="ACC1", symbol="AAPL", changes={"max_order_qty": "50"})["ok"]
    for s in (s1, s2, s3):
        s.logout()
    before = _ledger_view(gw)
    assert before["CLIENT2"][1]["AAPL"]["net"] == "4" and before["CLIENT2"][0]["USD"][1] == "10005.000000"

    assert gw.stop() == 0  # a clean stop: the engine snapshot, ledger included
    gw.start()
    assert _ledger_view(gw) == before
    s1, s2, s3 = (_logged_on(gw, c) for c in ("CLIENT1", "CLIENT2", "CLIENT3"))
    killed, limited = unique("rs"), unique("rs")
    new_order(s3, killed, "1", "1", "1.00")
    assert f(wait_er(s3, killed, "8"), 103) == "0"  # still killed
    new_order(s1, limited, "2", "51", "150.00")
    assert f(wait_er(s1, limited, "8"), 58) == "order quantity above the account's limit"  # still limited
    more = unique("rs")
    new_order(s2, more, "1", "3", "150.00")
    wait_er(s2, more, "F")
    wait_er(s1, ask, "F")
    for s in (s1, s2, s3):
        s.logout()
    before = _ledger_view(gw)

    gw.kill()  # a crash: the journal after the snapshot is replayed
    gw.start()
    assert _ledger_view(gw) == before
    assert gw.stop() == 0


def test_a_session_past_its_message_rate_is_logged_out_and_its_day_orders_cancelled(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path / "gw", **{"risk.max_messages_per_second": 5})
    s = _logged_on(gw, "CLIENT1")
    day, gtc = unique("rl"), unique("rl")
    new_order(s, day, "1", "1", "10.00")
    new_order(s, gtc, "1", "1", "11.00", tif="1")
    wait_er(s, day, "0")
    wait_er(s, gtc, "0")
    for _ in range(10):  # ten status requests at once: more than 5 messages within a second
        s.send("H", [(11, gtc), (55, "AAPL"), (54, "1")])
    answered = 0
    while field(msg := s.wait_for(lambda m: field(m, 35) in ("5", "8"), 10, admin=True), 35) == "8":
        answered += 1
    assert f(msg, 58) == "message rate limit exceeded: more than 5 messages in one second"
    assert 3 <= answered <= 5  # the requests within the limit were answered, before the Logout; the rest ignored
    late = []
    try:
        while (m := s.receive(2.0)) is not None:
            late.append(m)
    except SessionError:
        pass  # the venue closed the connection
    assert not late
    s.close()
    back = FixSession("127.0.0.1", gw.oe_port, "CLIENT1", "pass1", next_out=s.next_out, expected_in=s.expected_in)
    back.logon()  # the venue's Logon shows a gap: the client asks for what it missed
    cancelled = wait_er(back, day, "4")
    assert f(cancelled, 58) == "cancelled on disconnect"
    back.send("H", [(11, gtc), (55, "AAPL"), (54, "1")])
    assert f(wait_er(back, gtc, "I"), 39) == "0"  # GTC orders stay
    # Only the GTC bid holds money now: 11.00 + the 1 bp taker fee.
    assert holdings(back).balances["USD"] == ("9999988.998900", "11.001100")
    back.logout()
    assert gw.stop() == 0
