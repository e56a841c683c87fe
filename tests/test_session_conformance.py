"""FIX 4.4 session-protocol conformance, over raw sockets, against a real gateway running the ``test`` profile.

Each test drives one corner of the session protocol (FIX 4.4 Volume 2, "Session-level test cases") with hand-framed
messages (tests/rawfix.py) and asserts exactly what the venue sends back: message type, MsgSeqNum, every body
field, Text. Where QuickFIX's behaviour differs from the FIX 4.4 text the test pins what it really does, and the
Rules of Engagement (section 2.6) say so.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gateway.auth import hash_password
from tests.conftest import PASSWORDS, start_gateway_with, verify_passwords
from tests.gateway_process import GatewayProcess
from tests.rawfix import ANY, RawClient, frame, timestamp

pytestmark = pytest.mark.timeout(60)

PASSWORD = "conf"
REFUSED = "Rejected Logon Attempt: logon refused: credentials not accepted"
CONF_SESSIONS = 80
_HASH = hash_password(PASSWORD, iterations=1_000)
SESSIONS = {
    **{f"CONF{n}": {"password_hash": _HASH, "accounts": [f"CACC{n}"]} for n in range(1, CONF_SESSIONS + 1)},
    # Per-session overrides of the profile's defaults (reset_on_logon = true, HeartBtInt 1 to 120).
    "HBLIM": {"password_hash": _HASH, "accounts": ["HACC"], "heartbeat_min": 10, "heartbeat_max": 60},
    "KEEPSEQ": {"password_hash": _HASH, "accounts": ["KACC"], "reset_on_logon": False},
    "KEEPSEQ2": {"password_hash": _HASH, "accounts": ["KACC2"], "reset_on_logon": False},
}
_comp_ids = (f"CONF{n}" for n in itertools.count(1))
Client = Callable[..., RawClient]


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    # No logon back-off or lock-out: the tests that send wrong or unroutable Logons (all from 127.0.0.1) must not
    # throttle the next test's Logon; throttling has its own tests (tests/test_security.py).
    overrides = {"venue.profile": "test", "logon.backoff_base": 0.0, "logon.backoff_max": 0.0, "logon.lockout_after": 0}
    gw = start_gateway_with(tmp_path_factory.mktemp("conformance"), overrides, SESSIONS)
    verify_passwords(gw, gw.oe_port, dict.fromkeys(SESSIONS, PASSWORD))
    verify_passwords(gw, gw.md_port, {"MD1": PASSWORDS["MD1"]})
    yield gw
    assert gw.stop() == 0, gw.log_text()[-3000:]


@pytest.fixture
def client(venue: GatewayProcess) -> Iterator[Client]:
    """``client()``: a connection as a CompID no other test uses (``logon=True``: logged on, HeartBtInt 30)."""
    opened: list[RawClient] = []

    def factory(comp_id: str | None = None, logon: bool = True, port: int | None = None) -> RawClient:
        raw = RawClient(port or venue.oe_port, comp_id or next(_comp_ids), PASSWORD)
        opened.append(raw)
        if logon:
            raw.logon()
        return raw

    yield factory
    for raw in opened:
        raw.close()


def order(clordid: str, price: str = "1.00") -> str:
    return f"11={clordid}|55=AAPL|54=1|38=1|40=2|44={price}|59=0|60={timestamp()}|"


def new_ack(raw: RawClient, clordid: str, price: str = "1.00") -> dict[str, str]:
    """The venue's ExecutionReport 150=0 for ``order(clordid, price)``."""
    account = "CACC" + raw.comp_id.removeprefix("CONF")
    return raw.expect(
        "8", t1=account, t6="0", t11=clordid, t14="0", t17=ANY, t37=ANY, t38="1", t39="0", t40="2", t44=price,
        t54="1", t55="AAPL", t59="0", t60=ANY, t150="0", t151="1",
    )  # fmt: skip


def still_in_step(raw: RawClient, seq: int | None = None) -> None:
    """A TestRequest (at ``seq``) is answered at once: the venue expects that MsgSeqNum and sent nothing before."""
    test_id = f"probe-{raw.next_out if seq is None else seq}"
    raw.send("1", f"112={test_id}|", seq=seq)
    raw.expect("0", t112=test_id)


def log_out(raw: RawClient, venue_text: str | None = None) -> None:
    """Answer or start the Logout handshake; the venue then closes the connection."""
    raw.send("5")
    if venue_text is not None:
        raw.expect("5", t58=venue_text)
    else:
        raw.expect("5")
    raw.expect_closed()


# ---------------------------------------------------------------------- session options


def test_reset_on_logon_starts_both_sides_at_one_and_discards_what_was_stored(client: Client) -> None:
    """ResetOnLogon (the test profile's default): every Logon starts both sides at 1; what the venue stored for the
    session while it was away (here a cancel-on-disconnect report) is gone, so a ResendRequest gets a GapFill."""
    first = client()
    first.send("D", order("reset-1"))
    new_ack(first, "reset-1")
    log_out(first)  # cancel-on-disconnect stores the cancellation for the next logon
    again = client(first.comp_id)  # logs on with MsgSeqNum 1, no ResetSeqNumFlag; the venue answers with 1
    again.send("2", "7=1|16=0|")
    again.expect("4", seq=1, t43="Y", t122=ANY, t123="Y", t36="2")  # only its own Logon: gap-filled
    again.send("H", "11=reset-1|55=AAPL|54=1|")
    status = again.expect(
        "8", t1=ANY, t6="0", t11="reset-1", t14="0", t17=ANY, t37=ANY, t38="1", t39="4", t40="2", t44="1.00",
        t54="1", t55="AAPL", t59="0", t60=ANY, t150="I", t151="0",
    )  # fmt: skip
    assert status["39"] == "4"  # it was cancelled on disconnect all the same


def test_reset_on_logon_with_a_higher_msg_seq_num_asks_for_the_gap(client: Client) -> None:
    raw = client(logon=False)
    raw.logon(seq=3)
    raw.expect("2", t7="1", t16="0")  # the venue expects 1 after the reset


def test_a_session_can_keep_its_sequence_numbers_under_the_test_profile(client: Client) -> None:
    """``reset_on_logon = false`` in [sessions.KEEPSEQ] overrides the profile: numbers continue across logons."""
    first = client("KEEPSEQ")
    still_in_step(first)
    log_out(first)
    again = client("KEEPSEQ", logon=False)
    again.next_out, again.venue_seq = first.next_out, first.venue_seq
    again.logon()  # the venue's Logon continues its numbering
    still_in_step(again)
    log_out(again)
    assert again.venue_seq == first.venue_seq + 3


def test_a_refused_reset_logon_resets_nothing(client: Client) -> None:
    """Stock QuickFIX reset the session on ResetSeqNumFlag=Y before the venue checked the password; the patched
    acceptor asks first (RoE 1.2): a refused Logon leaves both sides' numbers and what was stored as they were."""
    first = client("KEEPSEQ2")
    still_in_step(first)
    log_out(first)  # both sides are at 4 now
    intruder = client("KEEPSEQ2", logon=False)
    intruder.send("A", "98=0|108=30|141=Y|553=KEEPSEQ2|554=wrong|", seq=1)
    intruder.expect("5", seq=1, t58=REFUSED)
    intruder.expect_closed()
    back = client("KEEPSEQ2", logon=False)
    back.next_out, back.venue_seq = first.next_out, first.venue_seq
    back.logon()  # the venue's Logon continues its numbering: nothing was reset
    assert back.venue_seq == first.venue_seq + 1
    still_in_step(back)
    log_out(back)


@pytest.mark.parametrize(
    ("comp_id", "heartbeat", "bounds"),
    [("HBLIM", 5, (10, 60)), ("HBLIM", 61, (10, 60)), (None, 0, (1, 120)), (None, 121, (1, 120))],
)
def test_heartbeat_interval_outside_the_bounds_is_refused_at_logon(
    client: Client, comp_id: str | None, heartbeat: int, bounds: tuple[int, int]
) -> None:
    """HeartBtInt (108) outside [heartbeat_min, heartbeat_max] (the session's, else the venue's): Logout with Text."""
    raw = client(comp_id, logon=False)
    raw.send("A", f"98=0|108={heartbeat}|553={raw.comp_id}|554={PASSWORD}|")
    low, high = bounds
    raw.expect("5", t58=f"Rejected Logon Attempt: HeartBtInt (108) must be between {low} and {high} seconds")
    raw.expect_closed()


def test_heartbeat_interval_inside_per_session_bounds_is_accepted(client: Client) -> None:
    raw = client("HBLIM", logon=False)
    raw.logon(heartbeat=10)
    log_out(raw)


# ---------------------------------------------------------------------- garbled messages


GARBLED: dict[str, Callable[[RawClient], bytes]] = {
    "wrong CheckSum": lambda r: frame(f"35=1|49={r.comp_id}|56=EXCH|34=2|52={timestamp()}|112=x|", checksum=7),
    "BodyLength too short": lambda r: frame(f"35=1|49={r.comp_id}|56=EXCH|34=2|52={timestamp()}|112=x|", length=20),
    "BeginString not first": lambda r: b"35=1\x01" + frame(f"49={r.comp_id}|56=EXCH|34=2|52={timestamp()}|"),
    "not FIX at all": lambda r: b"GET / HTTP/1.1\r\n\r\n",
}


@pytest.mark.parametrize("how", GARBLED)
def test_garbled_message_is_ignored(client: Client, how: str) -> None:
    """A garbled message (FIX 4.4: wrong BodyLength or CheckSum, first three fields out of place) is ignored: no
    answer, and the venue still expects its MsgSeqNum."""
    raw = client()
    raw.send_bytes(GARBLED[how](raw))
    still_in_step(raw, seq=2)


def test_body_length_too_long_also_loses_the_next_message(client: Client) -> None:
    """QuickFIX reads a too-long message up to the next message's CheckSum: both are one garbled message."""
    raw = client()
    fields = f"35=1|49={raw.comp_id}|56=EXCH|34=2|52={timestamp()}|112=long|"
    raw.send_bytes(frame(fields, length=len(fields) + 10))
    raw.send("1", "112=swallowed|", seq=2)
    still_in_step(raw, seq=2)


# ---------------------------------------------------------------------- header checks


def test_wrong_begin_string_gets_logout(client: Client) -> None:
    raw = client()
    raw.send("1", "112=x|", begin="FIX.4.2")
    raw.expect("5", t58="Incorrect BeginString")
    raw.send("5")
    raw.expect_closed()


def test_wrong_sender_comp_id_gets_reject_373_9_then_logout(client: Client) -> None:
    raw = client()
    seq = raw.send("1", "112=x|", sender="CLIENT1")
    raw.expect("3", t45=str(seq), t58="CompID problem", t372="1", t373="9")
    raw.expect("5")  # no Text: a QuickFIX deviation (FIX 4.4 asks for one), RoE 2.6
    raw.send("5")
    raw.expect_closed()


def test_wrong_target_comp_id_gets_reject_then_logout_and_unanswered_disconnect(client: Client) -> None:
    raw = client()
    seq = raw.send("1", "112=x|", target="NOTEXCH")
    raw.expect("3", t45=str(seq), t58="CompID problem", t372="1", t373="9")
    raw.expect("5")
    waited = raw.expect_closed()  # the venue waits for our Logout (LogoutTimeout, 2 s), then closes
    assert waited > 1.0


def test_missing_sending_time_gets_reject_373_1(client: Client) -> None:
    raw = client()
    seq = raw.send("1", "112=x|", sending_time="")
    raw.expect("3", t45=str(seq), t58="Required tag missing", t371="52", t372="1", t373="1")
    still_in_step(raw)  # the rejected message counted


@pytest.mark.parametrize("offset", [-600, 600])
def test_sending_time_too_far_from_the_venue_clock_gets_reject_373_10_then_logout(client: Client, offset: int) -> None:
    raw = client()
    seq = raw.send("1", "112=x|", sending_time=timestamp(offset))
    raw.expect("3", t45=str(seq), t58="SendingTime accuracy problem", t372="1", t373="10")
    raw.expect("5")
    raw.send("5")
    raw.expect_closed()


# ---------------------------------------------------------------------- PossDup


def test_poss_dup_below_the_expected_number_is_ignored(client: Client) -> None:
    raw = client()
    seq = raw.send("D", order("dup-1"))
    new_ack(raw, "dup-1")
    raw.send("D", order("dup-1"), seq=seq, header=f"43=Y|122={timestamp(-1)}|")
    still_in_step(raw)  # nothing in between: not executed twice, and no MsgSeqNum consumed


def test_poss_dup_below_the_expected_number_without_orig_sending_time_gets_reject_373_1(client: Client) -> None:
    raw = client()
    seq = raw.send("D", order("dup-2"))
    new_ack(raw, "dup-2")
    raw.send("D", order("dup-2"), seq=seq, header="43=Y|")
    raw.expect("3", t45=str(seq), t58="Required tag missing", t371="122", t372="D", t373="1")
    still_in_step(raw)


def test_poss_dup_with_orig_sending_time_after_sending_time_gets_reject_373_10_then_logout(client: Client) -> None:
    raw = client()
    seq = raw.send("D", order("dup-3"))
    new_ack(raw, "dup-3")
    raw.send("D", order("dup-3"), seq=seq, header=f"43=Y|122={timestamp(60)}|")
    raw.expect("3", t45=str(seq), t58="SendingTime accuracy problem", t372="D", t373="10")
    raw.expect("5")
    raw.send("5")
    raw.expect_closed()


@pytest.mark.parametrize("orig_sending_time", [-1, None, 60])
def test_poss_dup_at_the_expected_number_is_processed(client: Client, orig_sending_time: int | None) -> None:
    """A PossDupFlag=Y message the venue has not seen is processed. Without OrigSendingTime, or with one after
    SendingTime, too: QuickFIX checks it only below the expected MsgSeqNum (a deviation, RoE 2.6)."""
    raw = client()
    clordid = f"dup-new-{orig_sending_time}"
    orig = "" if orig_sending_time is None else f"122={timestamp(orig_sending_time)}|"
    raw.send("D", order(clordid), header=f"43=Y|{orig}")
    new_ack(raw, clordid)


# ---------------------------------------------------------------------- MsgSeqNum too high or too low


def test_msg_seq_num_too_high_gets_resend_request_and_is_processed_once_the_gap_is_filled(client: Client) -> None:
    raw = client()
    raw.send("D", order("gap-1"), seq=4)
    raw.expect("2", t7="2", t16="0")
    raw.send("4", "123=Y|36=4|", seq=2, header=f"43=Y|122={timestamp()}|")
    new_ack(raw, "gap-1")  # the order waited for the gap, then ran
    still_in_step(raw, seq=5)


def test_msg_seq_num_too_low_without_poss_dup_gets_logout_and_disconnect(client: Client) -> None:
    raw = client()
    still_in_step(raw, seq=2)
    raw.send("0", seq=2)
    raw.expect("5", t58="MsgSeqNum too low, expecting 3 but received 2")
    raw.expect_closed()


# ---------------------------------------------------------------------- SequenceReset


def test_gap_fill_at_the_expected_number_moves_it_to_new_seq_no(client: Client) -> None:
    raw = client()
    raw.send("4", "123=Y|36=10|", seq=2)
    still_in_step(raw, seq=10)


def test_gap_fill_beyond_the_expected_number_gets_resend_request(client: Client) -> None:
    raw = client()
    raw.send("4", "123=Y|36=10|", seq=5)
    raw.expect("2", t7="2", t16="0")
    raw.send("4", "123=Y|36=5|", seq=2, header=f"43=Y|122={timestamp()}|")  # fill 2-4; the queued one does the rest
    still_in_step(raw, seq=10)


def test_gap_fill_lowering_the_number_gets_reject_373_5(client: Client) -> None:
    raw = client()
    still_in_step(raw, seq=2)
    raw.send("4", "123=Y|36=2|", seq=3)
    raw.expect("3", t45="3", t58="Value is incorrect (out of range) for this tag", t372="4", t373="5")
    still_in_step(raw, seq=3)  # the refused GapFill did not count


def test_gap_fill_below_the_expected_number(client: Client) -> None:
    """With PossDupFlag=Y it is ignored; without, it is a MsgSeqNum too low: Logout."""
    raw = client()
    still_in_step(raw, seq=2)
    raw.send("4", "123=Y|36=9|", seq=2, header=f"43=Y|122={timestamp()}|")
    still_in_step(raw, seq=3)
    raw.send("4", "123=Y|36=9|", seq=2)
    raw.expect("5", t58="MsgSeqNum too low, expecting 4 but received 2")
    raw.expect_closed()


@pytest.mark.parametrize("flag", ["", "123=N|"])
def test_sequence_reset_sets_the_expected_number_whatever_its_msg_seq_num(client: Client, flag: str) -> None:
    """SequenceReset-Reset (GapFillFlag N or absent): NewSeqNo above or equal to the expected number is taken, and
    its own MsgSeqNum is not checked."""
    raw = client()
    raw.send("4", f"{flag}36=20|", seq=1)
    still_in_step(raw, seq=20)
    raw.send("4", f"{flag}36=21|", seq=7)
    still_in_step(raw, seq=21)


def test_sequence_reset_lowering_the_number_gets_reject_373_5(client: Client) -> None:
    raw = client()
    still_in_step(raw, seq=2)
    raw.send("4", "36=2|", seq=9)
    raw.expect("3", t45="9", t58="Value is incorrect (out of range) for this tag", t372="4", t373="5")
    still_in_step(raw, seq=3)


# ---------------------------------------------------------------------- heartbeats and test requests


def test_test_request_is_answered_with_its_test_req_id(client: Client) -> None:
    raw = client()
    raw.send("1", "112=HELLO 1|")
    raw.expect("0", t112="HELLO 1")


def test_silent_client_gets_heartbeat_then_test_request_then_disconnect(client: Client) -> None:
    """HeartBtInt 1 (the test profile allows it): the venue heartbeats when it has sent nothing for HeartBtInt,
    sends a TestRequest when it has heard nothing, and closes the connection (no Logout) when that is not
    answered."""
    raw = client(logon=False)
    raw.logon(heartbeat=1)
    raw.expect("0", timeout=5)
    raw.expect("1", timeout=5, t112="TEST")
    raw.expect_closed(timeout=5)


def test_answered_test_request_keeps_the_session(client: Client) -> None:
    raw = client(logon=False)
    raw.logon(heartbeat=1)
    raw.expect("0", timeout=5)
    raw.expect("1", timeout=5, t112="TEST")
    raw.send("0", "112=TEST|")
    still_in_step(raw)


# ---------------------------------------------------------------------- logout


def test_client_initiated_logout_is_answered_and_the_venue_disconnects(client: Client) -> None:
    raw = client()
    raw.send("5", "58=end of test|")
    raw.expect("5")
    raw.expect_closed()


def test_venue_initiated_logout_at_shutdown(tmp_path: Path) -> None:
    gw = start_gateway_with(tmp_path / "gw", {"venue.profile": "test"})
    verify_passwords(gw, gw.oe_port, {"CLIENT1": PASSWORDS["CLIENT1"]})
    raw = RawClient(gw.oe_port, "CLIENT1", PASSWORDS["CLIENT1"])
    raw.logon()
    exit_codes: list[int] = []
    stopping = threading.Thread(target=lambda: exit_codes.append(gw.stop()))
    stopping.start()
    raw.expect("5", t58="venue shutting down")
    raw.send("5")
    raw.expect_closed()
    stopping.join(30)
    assert exit_codes == [0]


# ---------------------------------------------------------------------- logon


def test_first_message_not_a_logon_is_answered_by_closing_the_connection(client: Client) -> None:
    raw = client(logon=False)
    raw.send("1", "112=x|")
    raw.expect_closed()


def test_logon_with_sending_time_off_the_clock_is_answered_by_closing_the_connection(client: Client) -> None:
    """QuickFIX refuses it: closed, no Logout (RoE 2.6)."""
    raw = client(logon=False)
    raw.send("A", f"98=0|108=30|553={raw.comp_id}|554={PASSWORD}|", sending_time=timestamp(-600))
    raw.expect_closed()


def test_logon_to_another_target_comp_id_gets_the_credential_refusal(client: Client) -> None:
    """No such session: the patched acceptor answers as for a wrong password (RoE 1.4), MsgSeqNum 1."""
    raw = client(logon=False)
    raw.send("A", f"98=0|108=30|553={raw.comp_id}|554={PASSWORD}|", target="NOTEXCH")
    raw.target = "NOTEXCH"  # the Logout comes from the CompID the Logon named
    raw.expect("5", seq=1, t58=REFUSED)
    raw.expect_closed()


def test_second_connection_for_a_logged_on_comp_id_is_refused_and_the_first_goes_on(client: Client) -> None:
    first = client()
    second = client(first.comp_id, logon=False)
    second.send("A", f"98=0|108=30|553={first.comp_id}|554={PASSWORD}|")
    second.expect("5", seq=1, t58=REFUSED)  # already_logged_on: the one credential Text (RoE 1.4)
    second.expect_closed()
    still_in_step(first)


def test_second_logon_on_a_logged_on_connection_ends_the_session(client: Client) -> None:
    raw = client()
    raw.send("A", f"98=0|108=30|553={raw.comp_id}|554={PASSWORD}|")
    raw.expect_closed()


# ---------------------------------------------------------------------- message validation (373 codes)


def _out_of_order(raw: RawClient) -> int:
    """A header field (MsgSeqNum) after a body field."""
    seq = raw.next_out
    raw.next_out += 1
    raw.send_bytes(frame(f"35=1|49={raw.comp_id}|56=EXCH|52={timestamp()}|112=x|34={seq}|"))
    return seq


INVALID: dict[str, tuple[Callable[[RawClient], int], dict[str, str]]] = {
    "undefined tag": (lambda r: r.send("0", "999=HI|"), {"371": "999", "372": "0", "373": "0"}),
    "undefined user-defined tag": (lambda r: r.send("0", "5000=HI|"), {"371": "5000", "372": "0", "373": "0"}),
    "tag not in the message type": (lambda r: r.send("0", "55=MSFT|"), {"371": "55", "372": "0", "373": "2"}),
    "venue tag not in the message type": (
        lambda r: r.send("D", order("bad") + "20001=1|"),
        {"371": "20001", "372": "D", "373": "2"},
    ),
    "tag without a value": (lambda r: r.send("1", "112=|"), {"371": "112", "372": "1", "373": "4"}),
    "value out of range": (
        lambda r: r.send("D", order("bad").replace("54=1", "54=Z")),
        {"371": "54", "372": "D", "373": "5"},
    ),
    "incorrect data format": (
        lambda r: r.send("D", order("bad").replace("38=1", "38=ten")),
        {"371": "38", "372": "D", "373": "6"},
    ),
    "required tag missing": (lambda r: r.send("D", order("bad")[7:]), {"371": "11", "372": "D", "373": "1"}),
    "tag appears twice": (lambda r: r.send("D", order("bad") + "55=MSFT|"), {"371": "55", "372": "D", "373": "13"}),
    "header field after the body": (_out_of_order, {"371": "34", "372": "1", "373": "14"}),
    "NumInGroup larger than the entries": (
        lambda r: r.send("D", order("bad") + "453=2|448=T1|447=D|452=11|"),
        {"371": "453", "372": "D", "373": "16"},
    ),
    "NumInGroup smaller than the entries": (
        lambda r: r.send("D", order("bad") + "386=1|336=PRE-OPEN|336=AFTER-HOURS|"),
        {"371": "386", "372": "D", "373": "16"},
    ),
    "MsgType FIX does not define": (lambda r: r.send("ZZ"), {"372": "ZZ", "373": "11"}),
}
TEXTS = {
    "0": "Invalid tag number", "1": "Required tag missing", "2": "Tag not defined for this message type",
    "4": "Tag specified without a value", "5": "Value is incorrect (out of range) for this tag",
    "6": "Incorrect data format for value", "11": "Invalid MsgType", "13": "Tag appears more than once",
    "14": "Tag specified out of required order", "16": "Incorrect NumInGroup count for repeating group",
}  # fmt: skip


@pytest.mark.parametrize("case", INVALID)
def test_invalid_message_gets_the_session_reject_fix_prescribes(client: Client, case: str) -> None:
    """Reject (3) with RefSeqNum, RefTagID, RefMsgType, SessionRejectReason and QuickFIX's Text; the message counts
    (the next MsgSeqNum is expected), and an order refused this way was not entered."""
    raw = client()
    send, fields = INVALID[case]
    seq = send(raw)
    raw.expect("3", t45=str(seq), t58=TEXTS[fields["373"]], **{f"t{tag}": value for tag, value in fields.items()})
    still_in_step(raw)
    raw.send("H", "11=bad|55=AAPL|54=1|")
    raw.expect(
        "8", t6="0", t11="bad", t14="0", t17=ANY, t37="NONE", t38="0", t39="8", t40="2", t54="1", t55="AAPL",
        t58="unknown order", t59="0", t60=ANY, t103="5", t150="I", t151="0",
    )  # fmt: skip


def test_unsupported_message_type_gets_business_reject_whatever_it_carries(client: Client) -> None:
    """A FIX 4.4 type the venue does not support, with or without the fields FIX requires of it: 35=j 380=3."""
    raw = client()
    for body in ("70=A1|71=0|626=1|54=1|55=AAPL|53=1|6=1|75=20260101|", "70=A2|"):
        seq = raw.send("J", body)
        raw.expect("j", t45=str(seq), t58="Unsupported Message Type", t372="J", t380="3")


def test_market_data_sessions_are_validated_the_same_way(client: Client, venue: GatewayProcess) -> None:
    raw = client("MD1", port=venue.md_port, logon=False)
    raw.password = PASSWORDS["MD1"]
    raw.logon()
    seq = raw.send("V", "262=m1|263=1|264=0|267=1|269=0|146=1|55=AAPL|5555=1|")
    raw.expect("3", t45=str(seq), t58="Invalid tag number", t371="5555", t372="V", t373="0")
