"""Drop copy over real sockets: a read-only session that receives a copy of every ExecutionReport and
OrderCancelReject of the accounts it covers, in order, and recovers what it missed by resend."""

from __future__ import annotations

from pathlib import Path

import pytest
import simplefix

from fixclient import FixSession, field
from tests.conftest import PASSWORDS, start_gateway_with, unique
from tests.fixtools import cancel, new_order, wait_er, wait_msg

pytestmark = pytest.mark.timeout(90)


def reports(s: FixSession, count: int) -> list[simplefix.FixMessage]:
    """The next ``count`` application messages (ExecutionReports and OrderCancelRejects), in order."""
    got: list[simplefix.FixMessage] = []
    s.wait_for(lambda m: field(m, 35) in ("8", "9") and got.append(m) is None and len(got) == count, timeout=15)
    return got


def key(m: simplefix.FixMessage) -> tuple[str | None, ...]:
    """What identifies a report across sessions: type, ExecID (or ClOrdID of a cancel reject), ExecType, account."""
    return (field(m, 35), field(m, 17) or field(m, 11), field(m, 150), field(m, 1))


@pytest.fixture
def venue(tmp_path: Path):  # type: ignore[no-untyped-def]
    acc1_only = {"role": "drop_copy", "accounts": ["ACC1"], "password_hash": _hash("droppass2")}
    gw = start_gateway_with(tmp_path / "gw", sessions={"DROP2": acc1_only})
    yield gw
    gw.stop()


def _hash(password: str) -> str:
    from gateway.auth import hash_password

    return hash_password(password, iterations=1000)


def test_drop_copy_receives_every_report_of_its_accounts_in_order(venue) -> None:  # type: ignore[no-untyped-def]
    drop = FixSession("127.0.0.1", venue.dc_port, "DROP1", PASSWORDS["DROP1"], reset_seq=True)
    drop.logon()
    acc1 = FixSession("127.0.0.1", venue.dc_port, "DROP2", "droppass2", reset_seq=True)
    acc1.logon()
    c1 = FixSession("127.0.0.1", venue.oe_port, "CLIENT1", PASSWORDS["CLIENT1"], reset_seq=True)
    c1.logon()
    c2 = FixSession("127.0.0.1", venue.oe_port, "CLIENT2", PASSWORDS["CLIENT2"], reset_seq=True)
    c2.logon()
    seen: list[simplefix.FixMessage] = []
    rest, hit, gone = unique(), unique(), unique()
    new_order(c1, rest, "1", "5", "50.00")
    seen.append(wait_er(c1, rest, "0"))
    new_order(c2, hit, "2", "2", "50.00")
    seen += [wait_er(c2, hit, "0"), wait_er(c2, hit, "F"), wait_er(c1, rest, "F")]
    cancel(c1, unique(), rest)
    seen.append(wait_msg(c1, "8", t150="4"))
    cancel(c1, gone, "never-sent")  # an OrderCancelReject for an unknown order: ACC1's session asked
    seen.append(wait_msg(c1, "9", t11=gone))
    everything = reports(drop, len(seen))
    assert [key(m) for m in everything] == [key(m) for m in seen]
    assert all(field(m, 56) == "DROP1" for m in everything)
    # DROP2 covers ACC1 only: CLIENT2's reports (ACC2) are not copied to it.
    mine = [m for m in seen if field(m, 1) == "ACC1" or field(m, 35) == "9"]
    assert [key(m) for m in reports(acc1, len(mine))] == [key(m) for m in mine]
    assert not [m for m in acc1.drain(0.5) if field(m, 35) == "8"]
    for s in (c1, c2, drop, acc1):
        s.logout()


def test_application_messages_from_a_drop_copy_are_refused(venue) -> None:  # type: ignore[no-untyped-def]
    drop = FixSession("127.0.0.1", venue.dc_port, "DROP1", PASSWORDS["DROP1"], reset_seq=True)
    drop.logon()
    cl = unique()
    seq = new_order(drop, cl, account="ACC1")
    reject = wait_msg(drop, "j")
    assert (field(reject, 45), field(reject, 372), field(reject, 380)) == (str(seq), "D", "6")
    assert field(reject, 58) == "a drop-copy session only receives: application messages are not accepted"
    drop.logout()


def test_a_drop_copy_that_was_away_recovers_every_report_by_resend(venue) -> None:  # type: ignore[no-untyped-def]
    drop = FixSession("127.0.0.1", venue.dc_port, "DROP1", PASSWORDS["DROP1"], reset_seq=True)
    drop.logon()
    drop.close()  # gone without a Logout
    c3 = FixSession("127.0.0.1", venue.oe_port, "CLIENT3", PASSWORDS["CLIENT3"], reset_seq=True)
    c3.logon()
    sent = []
    for _ in range(3):
        cl = unique()
        new_order(c3, cl, "1", "1", "10.00", account="ACC3")
        sent.append(wait_er(c3, cl, "0"))
    back = FixSession("127.0.0.1", venue.dc_port, "DROP1", PASSWORDS["DROP1"], next_out=drop.next_out,
                      expected_in=drop.expected_in)  # fmt: skip
    back.logon()  # the venue's Logon shows the gap; the client asks for it (ResendRequest)
    again = reports(back, len(sent))
    assert [key(m) for m in again] == [key(m) for m in sent]
    assert all(field(m, 43) == "Y" for m in again)
    c3.logout()
    back.logout()
