"""Order identity over real sockets: the Parties block (453) on orders and their reports, and PossResend (97)."""

from __future__ import annotations

from typing import Any

import pytest
import simplefix

from fixclient import FixSession, field
from tests.conftest import ClientFactory, unique
from tests.fixtools import cancel, f, new_order, replace, wait_er, wait_msg

pytestmark = pytest.mark.timeout(60)

GROUP_TAGS = {"453", "448", "447", "452", "802", "523", "803"}
TRADER: list[tuple[int, Any]] = [
    (453, 2), (448, "TRADER 7"), (447, "D"), (452, "11"),
    (448, "CL=9"), (447, "D"), (452, "3"), (802, 2), (523, "desk 4"), (803, "10"), (523, "LDN"), (803, "25"),
]  # fmt: skip
OTHER: list[tuple[int, Any]] = [(453, 1), (448, "T2"), (447, "C"), (452, "12")]


def parties(msg: simplefix.FixMessage) -> list[tuple[int, str]]:
    """The Parties block of ``msg`` as sent: the run of pairs from 453 to its last entry."""
    pairs = [(tag.decode(), value.decode()) for tag, value in msg.pairs]
    start = next((i for i, (tag, _) in enumerate(pairs) if tag == "453"), len(pairs))
    block = []
    for tag, value in pairs[start:]:
        if tag not in GROUP_TAGS:
            break
        block.append((int(tag), value))
    return block


def as_sent(fields: list[tuple[int, Any]]) -> list[tuple[int, str]]:
    return [(tag, str(value)) for tag, value in fields]


def test_parties_are_accepted_and_echoed_on_every_report_of_the_order(connect: ClientFactory) -> None:
    maker, taker = connect("CLIENT1"), connect("CLIENT2")
    cl = unique("pty")
    new_seq = new_order(maker, cl, "1", "10", "55.00", symbol="MSFT", extra=TRADER)
    assert parties(wait_er(maker, cl, "0")) == as_sent(TRADER)
    hit = unique("pty")
    new_order(taker, hit, "2", "4", "55.00", symbol="MSFT", extra=OTHER)
    assert parties(wait_er(taker, hit, "0")) == as_sent(OTHER)
    assert parties(wait_er(taker, hit, "F")) == as_sent(OTHER)  # each side's reports carry its own block
    assert parties(wait_er(maker, cl, "F")) == as_sent(TRADER)
    smaller = unique("pty")
    replace(maker, smaller, cl, "8", "55.00", symbol="MSFT")
    assert parties(wait_er(maker, smaller, "5")) == as_sent(TRADER)
    maker.send("H", [(11, smaller), (55, "MSFT"), (54, "1")])
    assert parties(wait_er(maker, smaller, "I")) == as_sent(TRADER)
    gone = unique("pty")
    cancel(maker, gone, smaller, symbol="MSFT")
    assert parties(wait_er(maker, gone, "4")) == as_sent(TRADER)
    refused = unique("pty")
    new_order(maker, refused, "1", "1", "55.005", symbol="MSFT", extra=TRADER)
    assert parties(wait_er(maker, refused, "8")) == as_sent(TRADER)  # the reject says who sent it too
    # QuickFIX's resend re-parses the stored report with the venue dictionary: the group comes back whole.
    maker.send("2", [(7, new_seq), (16, new_seq)])
    resent = maker.wait_for(lambda m: field(m, 43) == "Y" and field(m, 11) == cl, 10)
    assert (f(resent, 150), parties(resent)) == ("0", as_sent(TRADER))


def test_a_report_stored_while_away_keeps_its_parties(connect: ClientFactory) -> None:
    """Cancel-on-disconnect reports are stored and delivered by resend at the next logon, Parties intact."""
    s = connect("CLIENT3")
    cl = unique("away")
    new_order(s, cl, "1", "1", "5.00", symbol="MSFT", extra=TRADER)
    wait_er(s, cl, "0")
    assert s.sock is not None
    s.sock.close()  # gone without a Logout
    s.sock = None
    back = FixSession(s.host, s.port, s.sender, s.password, next_out=s.next_out, expected_in=s.expected_in)
    back.logon()  # the venue's Logon shows the gap; the client asks for it
    cancelled = wait_er(back, cl, "4")
    assert (f(cancelled, 43), f(cancelled, 58), parties(cancelled)) == ("Y", "cancelled on disconnect", as_sent(TRADER))
    back.logout()


@pytest.mark.parametrize(
    ("block", "reply"),
    [
        ([(453, 1), (448, "T1"), (452, "11")], ("j", "380", "5", "Conditionally Required Field Missing (447)")),
        ([(453, 1), (447, "D"), (452, "11")], ("j", "380", "5", "Conditionally Required Field Missing (448)")),
        ([(453, 1), (448, "T1"), (447, "D"), (452, "23")], ("3", "373", "5", "452")),
        ([(453, 1), (448, "T1"), (447, "Q"), (452, "11")], ("3", "373", "5", "447")),
        ([(453, 1), (448, "T1"), (447, "D"), (452, "11"), (802, 2), (523, "x"), (803, "1")], ("3", "373", "5", "802")),
        ([(453, 2), (448, "T1"), (447, "D"), (452, "11")], ("3", "373", "16", "453")),
    ],
)
def test_a_faulty_parties_block_refuses_the_order(
    connect: ClientFactory, block: list[tuple[int, Any]], reply: tuple[str, str, str, str]
) -> None:
    """A missing field: BusinessMessageReject 380=5 naming it. A value FIX 4.4 does not define, or a count that
    does not match: Reject 373=5 (373=16 for NoPartyIDs) naming the tag (371). The order is not entered."""
    s = connect("CLIENT4")
    cl = unique("bad")
    seq = new_order(s, cl, "1", "1", "5.00", symbol="MSFT", extra=block)
    msg_type, tag, code, detail = reply
    got = wait_msg(s, msg_type, **{"t45": str(seq), f"t{tag}": code})
    assert f(got, 58 if msg_type == "j" else 371) == detail
    s.send("H", [(11, cl), (55, "MSFT"), (54, "1")])
    assert f(wait_er(s, cl, "I"), 58) == "unknown order"


def _resend(s: FixSession, clordid: str, price: str = "44.00") -> int:
    """The NewOrderSingle again with PossResend=Y (in the header, right after SendingTime)."""
    fields = [(97, "Y"), (11, clordid), (1, "ACC" + s.sender.removeprefix("CLIENT")), (55, "MSFT"), (54, "1"),
              (38, "10"), (40, "2"), (44, price), (59, "0"), (60, "20260101-00:00:00")]  # fmt: skip
    return s.send("D", fields)


def test_poss_resend_of_an_accepted_order_is_answered_with_its_status(connect: ClientFactory) -> None:
    s, other = connect("CLIENT5"), connect("CLIENT6")
    cl = unique("pr")
    new_order(s, cl, "1", "10", "44.00", symbol="MSFT")
    wait_er(s, cl, "0")
    hit = unique("pr")
    new_order(other, hit, "2", "4", "44.00", symbol="MSFT")
    wait_er(s, cl, "F")
    _resend(s, cl)
    status = wait_msg(s, "8", t11=cl)  # the first report about it after the resend
    assert (f(status, 150), f(status, 39), f(status, 14), f(status, 151)) == ("I", "1", "4", "6")
    s.send("q", [(11, unique("mc")), (530, "1"), (55, "MSFT"), (60, "20260101-00:00:00")])
    assert f(wait_msg(s, "r"), 533) == "1"  # one order, not two


def test_poss_resend_of_a_cancel_request_clordid_is_answered_with_the_orders_status(connect: ClientFactory) -> None:
    s = connect("CLIENT7")
    cl, gone = unique("pr"), unique("pr")
    new_order(s, cl, "1", "10", "43.00", symbol="MSFT")
    wait_er(s, cl, "0")
    cancel(s, gone, cl, symbol="MSFT")
    wait_er(s, gone, "4")
    _resend(s, gone, "43.00")
    status = wait_msg(s, "8", t11=gone)
    assert (f(status, 150), f(status, 39)) == ("I", "4")


def test_poss_resend_with_a_new_or_refused_clordid_is_a_new_order(connect: ClientFactory) -> None:
    """PossResend with a ClOrdID the venue has not accepted (never seen, or seen on a rejected order) is processed
    as any order."""
    s = connect("CLIENT8")
    fresh, refused = unique("pr"), unique("pr")
    _resend(s, fresh)
    assert f(wait_msg(s, "8", t11=fresh), 150) == "0"
    new_order(s, refused, "1", "10", "44.005", symbol="MSFT")
    wait_er(s, refused, "8")
    _resend(s, refused)
    assert f(wait_msg(s, "8", t11=refused), 150) == "0"
