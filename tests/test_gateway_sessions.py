"""Session behaviour: QuickFIX initiator clients, cancel-on-disconnect, restart with sequence continuity and resend."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import quickfix as fix
import simplefix

from fixclient import FixSession, SessionError, field
from fixclient.session import describe
from tests.conftest import PASSWORDS, ClientFactory, unique, verify_passwords
from tests.fixtools import f, new_order, wait_er
from tests.gateway_process import GatewayProcess
from tests.qf_initiator import QuickFixClient

pytestmark = pytest.mark.timeout(90)


def reconnect(old: FixSession) -> FixSession:
    """The same session again, sequence numbers continuing (no reset)."""
    s = FixSession(old.host, old.port, old.sender, old.password, next_out=old.next_out, expected_in=old.expected_in)
    s.logon()
    return s


def test_quickfix_initiator_trades(gateway: GatewayProcess, tmp_path: Path, connect: ClientFactory) -> None:
    client = QuickFixClient(tmp_path / "qf", gateway.oe_port, "CLIENT4", PASSWORDS["CLIENT4"])
    client.start()
    try:
        cl = unique("qf")
        msg = fix.Message()
        msg.getHeader().setField(35, "D")
        for tag, value in [(11, cl), (1, "ACC4"), (55, "AAPL"), (54, "2"), (38, "7"), (40, "2"), (44, "300.00"),
                           (59, "1"), (60, "20260101-00:00:00.000")]:  # fmt: skip
            msg.setField(tag, value)
        client.send(msg)
        ack = client.wait_for("8", t11=cl, t150="0")
        assert ack.getField(39) == "0" and ack.getField(59) == "1"
        taker = connect("CLIENT5")
        hit = unique()
        new_order(taker, hit, "1", "7", "300.00")
        fill = client.wait_for("8", t11=cl, t150="F")
        assert (fill.getField(32), fill.getField(31), fill.getField(39)) == ("7", "300.00", "2")
        # A reject validates in the client's stock FIX 4.4 dictionary too.
        bad = unique("qf")
        msg.setField(11, bad)
        msg.setField(44, "300.005")
        client.send(msg)
        rej = client.wait_for("8", t11=bad, t150="8")
        assert (rej.getField(103), rej.getField(58)) == ("99", "price is not a multiple of the tick size")
    finally:
        client.stop()


def test_cancel_on_disconnect_cancels_day_orders_and_reports_on_next_logon(connect: ClientFactory) -> None:
    s = connect("CLIENT3")
    day, gtc = unique(), unique()
    new_order(s, day, "1", "1", "5.00", tif="0")
    new_order(s, gtc, "1", "1", "5.01", tif="1")
    wait_er(s, day, "0")
    wait_er(s, gtc, "0")
    assert s.sock is not None
    s.sock.close()  # connection drops without a Logout
    s.sock = None
    back = reconnect(s)  # the venue's Logon is ahead of us: we ask for the gap
    cancelled = wait_er(back, day, "4")
    assert (f(cancelled, 58), f(cancelled, 43)) == ("cancelled on disconnect", "Y")
    back.send("H", [(11, gtc), (55, "AAPL"), (54, "1")])
    assert f(wait_er(back, gtc, "I"), 39) == "0"  # GTC survives a disconnect
    back.logout()


def test_restart_continues_sequence_numbers_and_resends_missed_reports(fresh_gateway: GatewayProcess) -> None:
    gw = fresh_gateway
    maker = FixSession("127.0.0.1", gw.oe_port, "CLIENT1", PASSWORDS["CLIENT1"], reset_seq=True)
    maker.logon()
    resting = unique()
    new_order(maker, resting, "2", "3", "42.00", tif="1")
    wait_er(maker, resting, "0")
    maker.logout()
    taker = FixSession("127.0.0.1", gw.oe_port, "CLIENT2", PASSWORDS["CLIENT2"], reset_seq=True)
    taker.logon()
    hit = unique()
    new_order(taker, hit, "1", "3", "42.00")
    wait_er(taker, hit, "F")
    # Graceful stop while CLIENT2 is still logged on: it is told why.
    assert gw.stop() == 0
    with pytest.raises(SessionError, match="venue shutting down"):
        taker.wait_for(lambda m: False, timeout=10)
    gw.start()
    back = reconnect(maker)
    fill = wait_er(back, resting, "F")
    assert (f(fill, 43), f(fill, 32), f(fill, 39)) == ("Y", "3", "2")
    assert int(field(fill, 34) or 0) < back.expected_in
    seq_before = back.next_out
    back.send("0")
    assert back.next_out == seq_before + 1
    back.logout()


def test_order_in_same_segment_as_logon_is_processed(gateway: GatewayProcess) -> None:
    verify_passwords(gateway, gateway.oe_port, {"CLIENT6": PASSWORDS["CLIENT6"]})  # so that this Logon is accepted
    s = FixSession("127.0.0.1", gateway.oe_port, "CLIENT6", PASSWORDS["CLIENT6"], reset_seq=True)
    s.connect()
    cl = unique()
    logon = s.encode("A", [(98, 0), (108, 30), (141, "Y"), (553, "CLIENT6"), (554, PASSWORDS["CLIENT6"])], seq=1)
    order = s.encode(
        "D", [(11, cl), (1, "ACC6"), (55, "AAPL"), (54, "1"), (38, "1"), (40, "2"), (44, "3.00"), (59, "0"),
              (60, "20260101-00:00:00")], seq=2,
    )  # fmt: skip
    s.next_out = 3
    s.send_raw(logon + order)
    s.wait_for(lambda m: field(m, 35) == "A", timeout=10, admin=True)
    s.logged_on = True
    # QuickFIX's SocketAcceptor parks bytes that came with the Logon until more arrive; any next message
    # (here a Heartbeat) releases the order. Documented in the rules of engagement.
    s.send("0")
    assert f(wait_er(s, cl, "0"), 44) == "3.00"
    s.logout()


def test_logout_text_on_missing_password(gateway: GatewayProcess) -> None:
    s = FixSession("127.0.0.1", gateway.oe_port, "CLIENT8", None, reset_seq=True)
    with pytest.raises(SessionError, match="Username \\(553\\) and Password \\(554\\) are required"):
        s.logon()
    s.close()


# ---------------------------------------------------------------------- rejects the rules of engagement promise


def test_logon_refused_when_username_is_not_the_sender(gateway: GatewayProcess) -> None:
    """Another session's valid credentials do not log CLIENT1 on (RoE 2.1)."""
    s = FixSession("127.0.0.1", gateway.oe_port, "CLIENT1", None, reset_seq=True)
    with pytest.raises(SessionError) as refused:
        s.logon(extra=[(553, "CLIENT2"), (554, PASSWORDS["CLIENT2"])])
    assert str(refused.value) == "Rejected Logon Attempt: Username (553) must equal SenderCompID (49)"
    with pytest.raises(SessionError):  # and the connection is closed
        s.wait_for(lambda m: False, 10)


def test_stale_sending_time_gets_reject_373_10_then_logout(gateway: GatewayProcess) -> None:
    """SendingTime more than max_latency (120 s) away: Reject 373=10, Logout, disconnect; the order is not taken."""
    s = FixSession("127.0.0.1", gateway.oe_port, "CLIENT8", PASSWORDS["CLIENT8"], reset_seq=True)
    s.logon()
    cl = unique("stale")
    stale = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]
    seq = s.next_out
    order = simplefix.FixMessage()
    for tag, value in [(8, "FIX.4.4"), (35, "D"), (49, "CLIENT8"), (56, "EXCH"), (34, seq), (52, stale)]:
        order.append_pair(tag, value, header=True)
    for tag, value in [(11, cl), (1, "ACC8"), (55, "AAPL"), (54, "1"), (38, "1"), (40, "2"), (44, "1.00"),
                       (59, "0"), (60, stale)]:  # fmt: skip
        order.append_pair(tag, value)
    s.send_raw(order.encode())
    s.next_out += 1
    reject = s.wait_for(lambda m: field(m, 35) in ("3", "5", "8"), 10, admin=True)
    assert (field(reject, 35), field(reject, 45), field(reject, 373), field(reject, 58)) == (
        "3", str(seq), "10", "SendingTime accuracy problem",
    )  # fmt: skip
    logout = s.wait_for(lambda m: field(m, 35) in ("5", "8"), 10, admin=True)
    assert (field(logout, 35), field(logout, 58)) == ("5", None), describe(logout)
    with pytest.raises(SessionError):  # disconnected
        s.wait_for(lambda m: False, 10)
    again = FixSession("127.0.0.1", gateway.oe_port, "CLIENT8", PASSWORDS["CLIENT8"], reset_seq=True)
    again.logon()
    again.send("H", [(11, cl), (55, "AAPL"), (54, "1")])
    answer = wait_er(again, cl, "I")
    assert (f(answer, 39), f(answer, 58)) == ("8", "unknown order")
    again.logout()


@pytest.mark.parametrize("heartbeat", [4, 121])
def test_heartbeat_interval_outside_the_production_bounds_is_refused(gateway: GatewayProcess, heartbeat: int) -> None:
    """The production profile accepts HeartBtInt 5 to 120 (RoE 2.1, 2.7)."""
    s = FixSession("127.0.0.1", gateway.oe_port, "CLIENT9", PASSWORDS["CLIENT9"], heartbeat=heartbeat, reset_seq=True)
    with pytest.raises(SessionError) as refused:
        s.logon()
    assert str(refused.value) == "Rejected Logon Attempt: HeartBtInt (108) must be between 5 and 120 seconds"
    s.close()
