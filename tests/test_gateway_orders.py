"""Order entry end to end: real gateway subprocess, real sockets, simplefix clients."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
import simplefix

from fixclient import FixSession, utc_now
from tests.conftest import ClientFactory, unique
from tests.fixtools import TIMEOUT, cancel, f, new_order, replace, wait_er, wait_msg
from tests.gateway_process import GatewayProcess

pytestmark = pytest.mark.timeout(60)


def test_lifecycle_new_partial_fills_across_sessions_and_fill(connect: ClientFactory) -> None:
    buyer, seller = connect("CLIENT1"), connect("CLIENT2")
    sym = "MSFT"
    bid = unique()
    new_order(buyer, bid, "1", "10", "50.00", symbol=sym)
    ack = wait_er(buyer, bid, "0")
    assert (f(ack, 39), f(ack, 151), f(ack, 14), f(ack, 44), f(ack, 38)) == ("0", "10", "0", "50.00", "10")
    order_id = f(ack, 37)
    assert order_id and order_id != "NONE"

    ask1 = unique()
    new_order(seller, ask1, "2", "4", "49.00", symbol=sym)  # crosses: trades at the resting 50.00
    taker = wait_er(seller, ask1, "F")
    maker = wait_er(buyer, bid, "F")
    assert (f(taker, 31), f(taker, 32), f(taker, 39), f(taker, 851)) == ("50.00", "4", "2", "2")
    assert (f(maker, 31), f(maker, 32), f(maker, 39), f(maker, 151), f(maker, 14)) == ("50.00", "4", "1", "6", "4")
    assert f(maker, 851) == "1" and f(maker, 527) == f(taker, 527)
    assert f(maker, 37) == order_id and f(maker, 17) != f(ack, 17)

    ask2 = unique()
    new_order(seller, ask2, "2", "6", "50.00", symbol=sym)
    done = wait_er(buyer, bid, "F")
    assert (f(done, 39), f(done, 151), f(done, 14), f(done, 6)) == ("2", "0", "10", "50.00")


def test_cancel_by_clordid_and_by_order_id(connect: ClientFactory) -> None:
    s = connect("CLIENT1")
    a, b = unique(), unique()
    new_order(s, a, "1", "5", "10.00")
    new_order(s, b, "1", "5", "10.01")
    order_b = f(wait_er(s, b, "0"), 37)
    cx = unique()
    cancel(s, cx, a)
    er = wait_er(s, cx, "4")
    assert (f(er, 41), f(er, 39), f(er, 151), f(er, 58)) == (a, "4", "0", "cancelled at client request")
    cx2 = unique()
    cancel(s, cx2, None, order_id=order_b)
    assert f(wait_er(s, cx2, "4"), 37) == order_b


def test_replace_down_keeps_priority_and_price_change_loses_it(connect: ClientFactory) -> None:
    mm, other, taker = connect("CLIENT1"), connect("CLIENT3"), connect("CLIENT2")
    sym, px = "MSFT", "70.00"
    first, second = unique(), unique()
    new_order(mm, first, "2", "10", px, symbol=sym)
    wait_er(mm, first, "0")
    new_order(other, second, "2", "10", px, symbol=sym)
    wait_er(other, second, "0")
    # Quantity down at the same price: still first in the queue.
    r1 = unique()
    replace(mm, r1, first, "8", px, side="2", symbol=sym)
    rep = wait_er(mm, r1, "5")
    assert (f(rep, 41), f(rep, 38), f(rep, 151)) == (first, "8", "8")
    hit = unique()
    new_order(taker, hit, "1", "3", px, symbol=sym)
    assert f(wait_er(mm, r1, "F"), 32) == "3"
    # Price change (away and back): loses priority, so the next buy fills the other seller first.
    r2, r3 = unique(), unique()
    replace(mm, r2, r1, "5", "70.01", side="2", symbol=sym)
    wait_er(mm, r2, "5")
    replace(mm, r3, r2, "5", px, side="2", symbol=sym)
    wait_er(mm, r3, "5")
    hit2 = unique()
    new_order(taker, hit2, "1", "10", px, symbol=sym)
    assert f(wait_er(other, second, "F"), 32) == "10"
    mass = unique()
    mm.send("q", [(11, mass), (530, "1"), (55, sym), (60, "20260101-00:00:00")])
    report = wait_msg(mm, "r", t11=mass)
    assert (f(report, 531), f(report, 533)) == ("1", "1")


def test_replace_quantity_increase_loses_priority(connect: ClientFactory) -> None:
    mm, other, taker = connect("CLIENT4"), connect("CLIENT5"), connect("CLIENT6")
    sym, px = "MSFT", "71.00"
    a, b = unique(), unique()
    new_order(mm, a, "1", "5", px, symbol=sym)
    wait_er(mm, a, "0")
    new_order(other, b, "1", "5", px, symbol=sym)
    wait_er(other, b, "0")
    up = unique()
    replace(mm, up, a, "6", px, symbol=sym)
    wait_er(mm, up, "5")
    hit = unique()
    new_order(taker, hit, "2", "5", px, symbol=sym)
    assert f(wait_er(other, b, "F"), 39) == "2"


def test_order_status_and_mass_cancel(connect: ClientFactory) -> None:
    s = connect("CLIENT7")
    ids = [unique() for _ in range(3)]
    for i, cl in enumerate(ids):
        new_order(s, cl, "1", "1", f"20.0{i}", symbol="AAPL")
        wait_er(s, cl, "0")
    s.send("H", [(11, ids[1]), (55, "AAPL"), (54, "1")])
    status = wait_er(s, ids[1], "I")
    assert (f(status, 39), f(status, 151), f(status, 44)) == ("0", "1", "20.01")
    unknown = unique()
    s.send("H", [(11, unknown), (55, "AAPL"), (54, "1")])
    answer = wait_er(s, unknown, "I")
    assert (f(answer, 39), f(answer, 37), f(answer, 103), f(answer, 58)) == ("8", "NONE", "5", "unknown order")
    mass = unique()
    s.send("q", [(11, mass), (530, "7"), (60, "20260101-00:00:00")])
    report = wait_msg(s, "r", t11=mass)
    assert (f(report, 531), f(report, 533)) == ("7", "3")
    cancels = [wait_msg(s, "8", t150="4") for _ in ids]
    assert {f(m, 11) for m in cancels} == set(ids)
    assert {f(m, 58) for m in cancels} == {"cancelled by mass cancel"}


def test_ioc_fok_market_and_post_only(connect: ClientFactory) -> None:
    maker, taker = connect("CLIENT8"), connect("CLIENT9")
    sym = "BTC-USD"
    rest = unique()
    new_order(maker, rest, "2", "0.5", "30000.00", symbol=sym)
    wait_er(maker, rest, "0")
    fok = unique()
    new_order(taker, fok, "1", "0.6", "30000.00", symbol=sym, tif="4")
    assert f(wait_er(taker, fok, "C"), 14) == "0.0000"  # not enough: nothing traded
    ioc = unique()
    new_order(taker, ioc, "1", "0.2", "30000.00", symbol=sym, tif="3")
    assert f(wait_er(taker, ioc, "F"), 32) == "0.2000"
    mkt = unique()
    new_order(taker, mkt, "1", "0.4", None, symbol=sym, tif="3")
    wait_er(taker, mkt, "F")
    expired = wait_er(taker, mkt, "C")
    assert (f(expired, 14), f(expired, 39)) == ("0.3000", "C")
    post = unique()
    new_order(maker, post, "2", "1", "29999.00", symbol=sym, extra=[(18, "6")])
    wait_er(maker, post, "0")
    cross = unique()
    new_order(taker, cross, "1", "1", "29999.00", symbol=sym, extra=[(18, "6")])
    rej = wait_er(taker, cross, "8")
    assert (f(rej, 103), f(rej, 58)) == ("99", "post-only order would take liquidity")


@pytest.mark.parametrize(
    ("kwargs", "reason", "text"),
    [
        ({"symbol": "NOPE"}, "1", "unknown symbol"),
        ({"qty": "0"}, "13", "order quantity must be positive"),
        ({"qty": "-5"}, "13", "order quantity must be positive"),
        ({"symbol": "BTC-USD", "qty": "0.00005"}, "13", "order quantity is not a multiple of the lot size"),
        ({"price": "100.001"}, "99", "price is not a multiple of the tick size"),
        ({"price": "200000.00"}, "99", "price outside the instrument's price band"),
        ({"qty": "100001"}, "13", "order quantity above the maximum order size"),
        ({"price": None, "ord_type": "2"}, "99", "limit order requires a price"),
        ({"ord_type": "3"}, "11", "unsupported order type"),
        ({"tif": "6"}, "11", "unsupported time in force"),
        ({"side": "5"}, "11", "unsupported side"),
        ({"side": "7"}, "11", "unsupported side"),
        ({"account": "ACC2"}, "15", "unknown account or account not permitted for this session"),
    ],
)
def test_new_order_rejects(connect: ClientFactory, kwargs: dict[str, str | None], reason: str, text: str) -> None:
    s = connect("CLIENT1")
    cl = unique()
    new_order(s, cl, **kwargs)  # type: ignore[arg-type]
    rej = wait_er(s, cl, "8")
    assert (f(rej, 39), f(rej, 103), f(rej, 58), f(rej, 37)) == ("8", reason, text, "NONE")


def test_duplicate_clordid_rejected(connect: ClientFactory) -> None:
    s = connect("CLIENT2")
    cl = unique()
    new_order(s, cl, "1", "1", "1.00")
    wait_er(s, cl, "0")
    new_order(s, cl, "1", "1", "1.00")
    rej = wait_er(s, cl, "8")
    assert (f(rej, 103), f(rej, 58)) == ("6", "duplicate ClOrdID")


def test_cancel_and_replace_rejects(connect: ClientFactory) -> None:
    me, other = connect("CLIENT3"), connect("CLIENT4")
    cx = unique()
    cancel(me, cx, "never-sent")
    rej = wait_msg(me, "9", t11=cx)
    assert (f(rej, 102), f(rej, 434), f(rej, 58), f(rej, 37)) == ("1", "1", "unknown order", "NONE")
    theirs = unique()
    new_order(other, theirs, "1", "1", "2.00")
    their_id = f(wait_er(other, theirs, "0"), 37)
    cx2 = unique()
    cancel(me, cx2, None, order_id=their_id)
    assert f(wait_msg(me, "9", t11=cx2), 102) == "1"
    mine = unique()
    new_order(me, mine, "2", "1", "2.00")  # fills against the other session's bid
    wait_er(me, mine, "F")
    rp = unique()
    replace(me, rp, mine, "2", "2.00", side="2")
    done = wait_msg(me, "9", t11=rp)
    assert (f(done, 102), f(done, 434), f(done, 39)) == ("0", "2", "2")
    live = unique()
    new_order(me, live, "1", "5", "1.50")
    wait_er(me, live, "0")
    below = unique()
    replace(me, below, live, "5", "1.505")
    assert f(wait_msg(me, "9", t11=below), 58) == "price is not a multiple of the tick size"
    elsewhere = unique()
    replace(me, elsewhere, live, "5", "1.50", symbol="NOPE")
    refused = wait_msg(me, "9", t11=elsewhere)
    assert (f(refused, 102), f(refused, 58), f(refused, 37), f(refused, 39)) == ("99", "unknown symbol", "NONE", "8")


def _until(s: FixSession, match: Callable[[simplefix.FixMessage], bool]) -> list[simplefix.FixMessage]:
    """Every application message received up to and including the first that matches."""
    seen: list[simplefix.FixMessage] = []
    deadline = time.monotonic() + TIMEOUT
    while not (seen and match(seen[-1])):
        remaining = deadline - time.monotonic()
        assert remaining > 0, [f(m, 35) for m in seen]
        msg = s.receive(remaining)
        if msg is not None:
            seen.append(msg)
    return seen


def _status(s: FixSession, clordid: str) -> tuple[str | None, ...]:
    """The order's side, quantity, price, status and leaves, as a status request answers them."""
    s.send("H", [(11, clordid), (55, "AAPL"), (54, "1")])
    st = wait_er(s, clordid, "I")
    return f(st, 54), f(st, 38), f(st, 44), f(st, 39), f(st, 151)


def test_replace_to_another_side_is_refused_and_the_order_is_untouched(connect: ClientFactory) -> None:
    """A replace with Side 5 (sell short) on a buy used to be taken for a buy; now any side but the order's own is
    refused: an unsupported one before the lookup (37=NONE), the other supported one by the engine."""
    s = connect("CLIENT5")
    bid = unique()
    new_order(s, bid, "1", "10", "40.00")
    wait_er(s, bid, "0")
    short = unique()
    replace(s, short, bid, "8", "40.01", side="5")
    rej = wait_msg(s, "9", t11=short)
    assert (f(rej, 434), f(rej, 102), f(rej, 58), f(rej, 37), f(rej, 39)) == (
        "2",
        "99",
        "unsupported side",
        "NONE",
        "8",
    )
    sell = unique()
    replace(s, sell, bid, "8", "40.01", side="2")
    rej = wait_msg(s, "9", t11=sell)
    assert (f(rej, 102), f(rej, 58), f(rej, 39)) == ("99", "replace may not change symbol or side", "0")
    assert _status(s, bid) == ("1", "10", "40.00", "0", "10")


def test_cancel_with_an_unsupported_side_is_refused(connect: ClientFactory) -> None:
    s = connect("CLIENT5")
    bid = unique()
    new_order(s, bid, "1", "3", "41.00")
    wait_er(s, bid, "0")
    cx = unique()
    cancel(s, cx, bid, side="5")
    rej = wait_msg(s, "9", t11=cx)
    assert (f(rej, 434), f(rej, 102), f(rej, 58), f(rej, 37), f(rej, 39)) == (
        "1",
        "99",
        "unsupported side",
        "NONE",
        "8",
    )
    assert _status(s, bid) == ("1", "3", "41.00", "0", "3")


def test_status_request_with_an_unsupported_side_is_answered_as_refused(connect: ClientFactory) -> None:
    s = connect("CLIENT5")
    bid = unique()
    new_order(s, bid, "1", "2", "42.00")
    wait_er(s, bid, "0")
    s.send("H", [(11, bid), (55, "AAPL"), (54, "5")])
    st = wait_er(s, bid, "I")
    assert (f(st, 39), f(st, 37), f(st, 103), f(st, 58), f(st, 54)) == ("8", "NONE", "11", "unsupported side", "5")


def test_mass_cancel_with_an_unsupported_side_cancels_nothing(gateway: GatewayProcess, connect: ClientFactory) -> None:
    """A mass cancel with Side 7 used to cancel both sides; now it is refused and every order stays."""
    s = connect("CLIENT6")
    bid, ask = unique(), unique()
    new_order(s, bid, "1", "1", "43.00")
    new_order(s, ask, "2", "1", "43.50")
    wait_er(s, bid, "0")
    wait_er(s, ask, "0")
    masses = []
    for req_type, symbol in (("7", None), ("1", "AAPL")):
        mass = unique()
        masses.append(mass)
        s.send("q", [(11, mass), (530, req_type), (55, symbol), (54, "7"), (60, utc_now())])
        report = wait_msg(s, "r", t11=mass)
        assert (f(report, 531), f(report, 532), f(report, 58), f(report, 533)) == ("0", "99", "unsupported side", None)
        assert (f(report, 530), f(report, 37), f(report, 54)) == (req_type, "NONE", None)
    # The status answers come after anything the refused requests could have caused: no cancellation among them.
    s.send("H", [(11, bid), (55, "AAPL"), (54, "1")])
    seen = _until(s, lambda m: f(m, 150) == "I" and f(m, 11) == bid)
    s.send("H", [(11, ask), (55, "AAPL"), (54, "2")])
    seen += _until(s, lambda m: f(m, 150) == "I" and f(m, 11) == ask)
    assert not [m for m in seen if f(m, 150) == "4"]
    assert [f(m, 39) for m in seen if f(m, 150) == "I"] == ["0", "0"]
    # The audit trail says the requests were refused, and why.
    audit = gateway.config.parent / "data" / "audit.jsonl"
    deadline = time.monotonic() + 10  # flushed every 0.2 s
    while True:
        lines = [json.loads(line) for line in audit.read_text().splitlines() if "mass_cancel" in line]
        mine = [(line["event"], line.get("reason")) for line in lines if line["clordid"] in masses]
        if len(mine) == 2:
            break
        assert time.monotonic() < deadline, mine
        time.sleep(0.05)
    assert mine == [("mass_cancel_reject", "unsupported_side")] * 2


def test_wrong_kind_of_message_gets_business_reject(connect: ClientFactory) -> None:
    oe, md = connect("CLIENT5"), connect("MD1")
    oe.send("V", [(262, unique()), (263, "1"), (264, "0"), (267, 1), (269, "0"), (146, 1), (55, "AAPL")])
    j = wait_msg(oe, "j")
    assert (f(j, 372), f(j, 380)) == ("V", "3")
    new_order(md, unique())
    j2 = wait_msg(md, "j")
    assert (f(j2, 372), f(j2, 380)) == ("D", "3")


def test_malformed_message_gets_session_reject(connect: ClientFactory) -> None:
    s = connect("CLIENT6")
    s.send("D", [(1, "ACC6"), (55, "AAPL"), (54, "1"), (38, "1"), (40, "2"), (44, "1.00"), (60, "20260101-00:00:00")])
    rej = wait_msg(s, "3")
    assert (f(rej, 371), f(rej, 373)) == ("11", "1")  # ClOrdID missing: required tag missing
    s.send("D", [(11, unique()), (1, "ACC6"), (55, "AAPL"), (54, "1"), (38, "ten"), (40, "2"), (44, "1"), (60, "x")])
    assert f(wait_msg(s, "3"), 373) in ("5", "6")  # value incorrect / incorrect data format


@pytest.mark.parametrize(("password", "text"), [("wrong", "credentials not accepted"), ("", "required")])
def test_wrong_or_missing_password_is_logged_out_with_text(connect: ClientFactory, password: str, text: str) -> None:
    from fixclient import SessionError

    s = connect("CLIENT7", password=password or "x", logon=False)
    if not password:
        s.password = None
    with pytest.raises(SessionError, match=text):
        s.logon(retry=False)


def test_unsupported_message_type_gets_business_reject(connect: ClientFactory) -> None:
    """Stock FIX 4.4 types the venue does not support are declared as stubs: 35=j 380=3, not 35=3 373=11."""
    s = connect("CLIENT1")
    alloc = unique("a")
    alloc_seq = s.send("J", [(70, alloc), (71, "0"), (626, "1"), (54, "1"), (55, "AAPL"), (53, "1"), (6, "1")])
    j = wait_msg(s, "j", t372="J")
    assert (f(j, 45), f(j, 380)) == (str(alloc_seq), "3")
    quote_seq = s.send("R", [(131, unique("q")), (146, 1), (55, "AAPL"), (38, "5")])
    j2 = wait_msg(s, "j", t372="R")
    assert (f(j2, 45), f(j2, 380)) == (str(quote_seq), "3")
    live = unique()  # the session is still in step afterwards
    new_order(s, live, "1", "1", "10.00")
    wait_er(s, live, "0")


def test_reject_echoes_what_the_client_sent(connect: ClientFactory) -> None:
    s = connect("CLIENT2")
    stop, gtd, no_qty = unique(), unique(), unique()
    new_order(s, stop, "2", "5", "1.00", ord_type="3")
    new_order(s, gtd, "1", "5", "1.00", tif="6")
    rej = wait_er(s, stop, "8")
    assert (f(rej, 40), f(rej, 54), f(rej, 38), f(rej, 44)) == ("3", "2", "5", "1.00")
    assert f(wait_er(s, gtd, "8"), 59) == "6"
    s.send(
        "D",
        [(11, no_qty), (1, "ACC2"), (55, "AAPL"), (54, "1"), (40, "2"), (44, "1.00"), (60, "20260101-00:00:00")],
    )
    j = wait_msg(s, "j")
    assert (f(j, 380), f(j, 372)) == ("5", "D")  # conditionally required field missing: OrderQty
    s.send("H", [(11, unique()), (55, "MSFT"), (54, "2")])
    status = wait_msg(s, "8", t150="I")
    assert (f(status, 39), f(status, 55), f(status, 54)) == ("8", "MSFT", "2")


def test_a_repeated_value_gets_the_same_answer(connect: ClientFactory) -> None:
    """Prices and quantities are converted once per distinct text and remembered: the second sight of a value
    (served from memory) must be judged exactly like the first."""
    s = connect("CLIENT3")
    for _ in range(2):
        off_tick, zero, ok = unique(), unique(), unique()
        new_order(s, off_tick, "1", "5", "100.005", symbol="MSFT")
        new_order(s, zero, "1", "0", "10.00", symbol="MSFT")
        new_order(s, ok, "1", "7", "10.10", symbol="MSFT")
        assert f(wait_er(s, off_tick, "8"), 58) == "price is not a multiple of the tick size"
        assert f(wait_er(s, zero, "8"), 58) == "order quantity must be positive"
        ack = wait_er(s, ok, "0")
        assert (f(ack, 44), f(ack, 38), f(ack, 151), f(ack, 6)) == ("10.10", "7", "7", "0")


def test_clordid_containing_an_equals_sign(connect: ClientFactory) -> None:
    s = connect("CLIENT3")
    cl, cx = unique("a=b="), unique("x=")
    new_order(s, cl, "2", "3", "500.00")
    assert f(wait_er(s, cl, "0"), 11) == cl
    cancel(s, cx, cl, side="2")
    assert f(wait_er(s, cx, "4"), 41) == cl


def test_audit_trail_has_one_line_per_order_event(gateway: GatewayProcess, connect: ClientFactory) -> None:
    buyer, seller = connect("CLIENT4"), connect("CLIENT5")
    bid, ask = unique("aud"), unique("aud")
    new_order(buyer, bid, "1", "2", "33.33", symbol="MSFT", account="ACC4")
    wait_er(buyer, bid, "0")
    new_order(seller, ask, "2", "5", "33.33", symbol="MSFT", account="ACC5")
    wait_er(seller, ask, "F")
    audit = gateway.config.parent / "data" / "audit.jsonl"
    deadline = time.monotonic() + 10  # flushed every 0.2 s
    while True:
        lines = [json.loads(line) for line in audit.read_text().splitlines() if bid in line or ask in line]
        if len(lines) >= 4:
            break
        assert time.monotonic() < deadline, lines
        time.sleep(0.05)
    events = {(line["clordid"], line["event"]): line for line in lines}
    assert set(events) == {(bid, "order_new"), (bid, "order_trade"), (ask, "order_new"), (ask, "order_trade")}
    taker = events[ask, "order_trade"]
    assert (taker["session"], taker["account"], taker["symbol"], taker["side"]) == ("CLIENT5", "ACC5", "MSFT", "SELL")
    fill = (taker["last_qty"], taker["last_px"], taker["leaves"], taker["cum"], taker["status"])
    assert fill == ("2", "33.33", "3", "2", "PARTIALLY_FILLED")
    assert taker["trade_id"] == events[bid, "order_trade"]["trade_id"]
    assert events[bid, "order_new"]["price"] == "33.33" and "last_px" not in events[bid, "order_new"]
    assert all(value is not None for line in lines for value in line.values())


@pytest.mark.parametrize(("msg_type", "missing"), [("D", 55), ("D", 38), ("G", 55), ("G", 38)])
def test_order_without_symbol_or_quantity_gets_business_reject_naming_the_field(
    connect: ClientFactory, msg_type: str, missing: int
) -> None:
    """D or G without Symbol (55) or OrderQty (38): BusinessMessageReject 380=5 naming the field (RoE 2.5), and
    nothing else happens."""
    s = connect("CLIENT4")
    live = unique()
    new_order(s, live, "1", "5", "12.00", symbol="MSFT")
    wait_er(s, live, "0")
    cl = unique()
    if msg_type == "D":
        fields = [(11, cl), (1, "ACC4"), (55, "MSFT"), (54, "1"), (38, "3"), (40, "2"), (44, "12.00"), (59, "0")]
    else:
        fields = [(11, cl), (41, live), (55, "MSFT"), (54, "1"), (38, "6"), (40, "2"), (44, "12.01"), (59, "0")]
    seq = s.send(msg_type, [(tag, value) for tag, value in fields if tag != missing] + [(60, utc_now())])
    j = wait_msg(s, "j")
    assert (f(j, 45), f(j, 372), f(j, 380), f(j, 58)) == (
        str(seq), msg_type, "5", f"Conditionally Required Field Missing ({missing})",
    )  # fmt: skip
    s.send("H", [(11, live), (55, "MSFT"), (54, "1")])
    still = wait_er(s, live, "I")
    assert (f(still, 39), f(still, 38), f(still, 44), f(still, 11)) == ("0", "5", "12.00", live)
    s.send("H", [(11, cl), (55, "MSFT"), (54, "1")])
    assert f(wait_er(s, cl, "I"), 39) == "8"  # the refused request's ClOrdID names nothing
