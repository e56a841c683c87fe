"""Logon hardening, least privilege and what the venue writes, against real gateways over real sockets.

Logon rules under test (Rules of Engagement, "Connectivity and security"): a password is verified off the loop, so
its first Logon is refused with the one credential Text and the next one is answered from the cache; failures back
off and then lock a CompID (and an address) until an operator unlocks it; a refusal never tells whether a CompID
exists; nothing a Logon carries reaches a file.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fixclient import LOGON_REFUSED, FixSession, SessionError, field
from gateway.auth import hash_password
from gateway.operator import call
from tests.conftest import PASSWORDS, ClientFactory, start_gateway_with, unique
from tests.fixtools import new_order, wait_er, wait_msg
from tests.gateway_process import GatewayProcess, metric_value

pytestmark = pytest.mark.timeout(120)

REQUIRED = "Rejected Logon Attempt: Username (553) and Password (554) are required"
DEMO_TOKEN = "demo-operator-token"


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def logon_text(port: int, comp_id: str, password: str | None, **kwargs: Any) -> str | None:
    """One Logon attempt (no retry): None if the venue logged us on (then logged out), else its Logout Text."""
    s = FixSession("127.0.0.1", port, comp_id, password, reset_seq=True, **kwargs)
    try:
        s.logon(timeout=5, retry=False)
    except SessionError as exc:
        s.close()
        return str(exc)
    s.logout()
    return None


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def audit(gw: GatewayProcess) -> list[dict[str, Any]]:
    path = gw.config.parent / "data" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def audited(gw: GatewayProcess, **want: Any) -> Callable[[], bool]:
    return lambda: any(all(line.get(k) == v for k, v in want.items()) for line in audit(gw))


def failures(gw: GatewayProcess, reason: str) -> float:
    return metric_value(gw.metrics(), "fixgw_fix_logon_failures_total", reason=reason)


def verified(gw: GatewayProcess, result: str = "ok") -> float:
    return metric_value(gw.metrics(), "fixgw_logon_verifications_total", result=result)


@pytest.fixture(scope="module")
def guarded_venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """A gateway with fast back-off and an early lock-out, so that the tests see both within seconds."""
    gw = start_gateway_with(
        tmp_path_factory.mktemp("guard"),
        {"logon.backoff_base": 0.3, "logon.backoff_max": 0.6, "logon.lockout_after": 4, "fix.logon_timeout": 2},
    )
    yield gw
    assert gw.stop() == 0, gw.log_text()[-3000:]


@pytest.fixture
def guarded(guarded_venue: GatewayProcess) -> Iterator[GatewayProcess]:
    """The guarded gateway, every failure forgotten after the test: all of them come from 127.0.0.1, and one test's
    failures must not throttle the next one's logons."""
    yield guarded_venue
    url = f"http://127.0.0.1:{guarded_venue.ports['operator']}"
    for row in call(url, DEMO_TOKEN, "logons", {})["failures"]:
        row = {k: v for k, v in row.items() if k in ("comp_id", "address")}
        assert call(url, DEMO_TOKEN, "unlock", row)["ok"]


# ---------------------------------------------------------------------- verification, throttling, lock-out


def test_a_new_password_is_verified_off_the_loop_then_answered_from_the_cache(guarded: GatewayProcess) -> None:
    before = verified(guarded)
    assert logon_text(guarded.oe_port, "CLIENT1", PASSWORDS["CLIENT1"]) == LOGON_REFUSED
    wait_until(audited(guarded, event="logon_refused", session="CLIENT1", reason="verifying"), 5, "the refusal")
    wait_until(lambda: verified(guarded) == before + 1, 10, "the verification")
    assert logon_text(guarded.oe_port, "CLIENT1", PASSWORDS["CLIENT1"]) is None
    assert logon_text(guarded.oe_port, "CLIENT1", PASSWORDS["CLIENT1"]) is None
    assert verified(guarded) == before + 1  # one key derivation, however many logons
    wait_until(audited(guarded, event="logon", session="CLIENT1", address="127.0.0.1"), 5, "the logon line")
    wait_until(audited(guarded, event="logout", session="CLIENT1", reason="client_logout"), 5, "the logout line")


def test_failures_back_off_then_lock_out_until_an_operator_unlocks(guarded: GatewayProcess) -> None:
    port, comp = guarded.oe_port, "CLIENT2"
    url = f"http://127.0.0.1:{guarded.ports['operator']}"

    def locked() -> bool:
        rows = call(url, DEMO_TOKEN, "logons", {})["failures"]
        return any(row.get("comp_id") == comp and row["locked"] for row in rows)

    before = verified(guarded, "bad_password")
    guesses = iter(range(1000))
    wait_until(lambda: logon_text(port, comp, f"wrong{next(guesses)}") == LOGON_REFUSED and locked(), 30, "lock-out")
    # Only guesses whose back-off had expired were verified: at most lockout_after (4) key derivations.
    assert 1 <= verified(guarded, "bad_password") - before <= 4
    wait_until(audited(guarded, event="logon_verified", session=comp, result="bad_password"), 5, "the audit line")
    # Locked: even the right password is refused, before any hashing, with the same Text.
    hashes = verified(guarded, "ok") + verified(guarded, "bad_password")
    assert logon_text(port, comp, PASSWORDS[comp]) == LOGON_REFUSED
    wait_until(audited(guarded, event="logon_refused", session=comp, reason="locked"), 5, "the lock-out line")
    assert verified(guarded, "ok") + verified(guarded, "bad_password") == hashes
    assert metric_value(guarded.metrics(), "fixgw_logon_lockouts") >= 1
    assert call(url, DEMO_TOKEN, "unlock", {"comp_id": comp}) == {"ok": True, "unlocked": {"comp_id": comp}}
    assert call(url, DEMO_TOKEN, "unlock", {"address": "127.0.0.1"})["ok"]  # it failed as often
    s = FixSession("127.0.0.1", port, comp, PASSWORDS[comp], reset_seq=True)
    s.logon(timeout=10)  # first sight of the right password: verified, then accepted on the retry
    s.logout()
    assert call(url, DEMO_TOKEN, "logons", {})["failures"] == []


def test_a_storm_of_wrong_logons_neither_hashes_on_nor_stalls_the_venue(guarded: GatewayProcess) -> None:
    """100 wrong Logons a second beside a trading session: every order is answered, the venue derives a key only
    when a back-off has expired, and the storm's CompID ends up locked."""
    port, target = guarded.oe_port, "CLIENT9"
    hashes_before = verified(guarded, "bad_password")
    cheap = ("throttled", "locked", "verifying")  # refused without a key derivation
    cheap_before = sum(failures(guarded, reason) for reason in cheap)
    stop = threading.Event()
    sent = [0]

    def storm() -> None:
        while not stop.is_set():
            t0 = time.monotonic()
            logon_text(port, target, f"guess{sent[0]}")
            sent[0] += 1
            time.sleep(max(0.0, 0.01 - (time.monotonic() - t0)))

    attacker = threading.Thread(target=storm, daemon=True)
    trader = FixSession("127.0.0.1", port, "CLIENT3", PASSWORDS["CLIENT3"], reset_seq=True)
    trader.logon(timeout=10)
    attacker.start()
    orders, deadline = 0, time.monotonic() + 60
    try:
        while orders < 40 or sent[0] < 100:  # trade for as long as the storm takes to send 100 guesses (load)
            assert time.monotonic() < deadline, f"{sent[0]} guesses and {orders} orders in 60 s"
            cl = unique("storm")
            new_order(trader, cl, "1", "1", "1.50")
            wait_er(trader, cl, "0", timeout=2)
            orders += 1
            time.sleep(0.05)
    finally:
        stop.set()
        attacker.join(10)
    trader.logout()
    # Every guess is refused at once, from the caches: blocked, locked, or while an earlier guess of the CompID is
    # being verified. Only a guess that finds none of these starts a key derivation: at most lockout_after (4).
    assert verified(guarded, "bad_password") - hashes_before <= 4
    assert sum(failures(guarded, reason) for reason in cheap) - cheap_before >= sent[0] - 4
    wait_until(audited(guarded, event="logon_refused", session=target, reason="locked"), 5, "the lock-out")
    url = f"http://127.0.0.1:{guarded.ports['operator']}"
    assert call(url, DEMO_TOKEN, "unlock", {"comp_id": target})["ok"]
    assert call(url, DEMO_TOKEN, "unlock", {"address": "127.0.0.1"})["ok"]


def test_a_refusal_does_not_tell_whether_a_compid_exists(guarded: GatewayProcess) -> None:
    port = guarded.oe_port
    known_wrong = logon_text(port, "CLIENT4", "not-the-password")
    assert known_wrong == LOGON_REFUSED
    assert logon_text(port, "NOBODY", "whatever") == known_wrong  # unknown CompID
    assert logon_text(port, "MD4", PASSWORDS["MD4"]) == known_wrong  # a market-data CompID on the order-entry port
    assert logon_text(port, "NOBODY", None) == REQUIRED  # the message's own faults are named the same either way
    assert logon_text(port, "CLIENT4", None) == REQUIRED
    wait_until(audited(guarded, event="logon_refused", session="NOBODY", reason="unknown_session"), 5, "audit")
    wait_until(audited(guarded, event="logon_refused", session="MD4", reason="wrong_port"), 5, "audit")
    assert failures(guarded, "unknown_session") >= 2 and failures(guarded, "wrong_port") >= 1


def test_a_wrong_password_cannot_reset_a_session_or_learn_its_sequence_number(guarded: GatewayProcess) -> None:
    """Stock QuickFIX reset a session's store on ResetSeqNumFlag=Y, and answered a too-low MsgSeqNum, before it
    asked for the password."""
    port = guarded.oe_port
    owner = FixSession("127.0.0.1", port, "CLIENT6", PASSWORDS["CLIENT6"], reset_seq=True)
    owner.logon(timeout=10)
    cl = unique("seq")
    new_order(owner, cl, "1", "1", "1.25", tif="1")
    wait_er(owner, cl, "0")
    owner.logout()
    next_out, expected_in = owner.next_out, owner.expected_in
    assert logon_text(port, "CLIENT6", "wrong-reset") == LOGON_REFUSED  # 141=Y, seq 1
    low = FixSession("127.0.0.1", port, "CLIENT6", "wrong-low", next_out=1, expected_in=1)
    with pytest.raises(SessionError) as refused:
        low.logon(timeout=5, retry=False)
    assert str(refused.value) == LOGON_REFUSED  # not "MsgSeqNum too low, expecting ..."
    # The owner comes back with its own sequence numbers: nothing was reset, its order's reports are still there.
    back = FixSession("127.0.0.1", port, "CLIENT6", PASSWORDS["CLIENT6"], next_out=next_out, expected_in=expected_in)
    back.logon(timeout=10)
    back.send("H", [(11, cl), (55, "AAPL"), (54, "1")])
    assert field(wait_er(back, cl, "I"), 39) == "0"
    back.logout()


def test_a_client_that_trickles_its_first_message_does_not_hold_the_venue(guarded: GatewayProcess) -> None:
    """Stock QuickFIX read a new connection's first message to its end on its one thread."""
    s = FixSession("127.0.0.1", guarded.oe_port, "CLIENT7", PASSWORDS["CLIENT7"], reset_seq=True)
    s.logon(timeout=10)
    slow = socket.create_connection(("127.0.0.1", guarded.oe_port))
    stop = threading.Event()

    def trickle() -> None:
        for byte in b"8=FIX.4.4\x019=200\x0135=A\x0149=CLIENT8\x0156=EXCH\x01":
            if stop.is_set():
                return
            try:
                slow.send(bytes([byte]))
            except OSError:
                return
            time.sleep(0.2)

    sender = threading.Thread(target=trickle, daemon=True)
    sender.start()
    try:
        for _ in range(5):
            cl = unique("slow")
            new_order(s, cl, "1", "1", "1.10")
            wait_er(s, cl, "0", timeout=1.5)
        slow.settimeout(10)
        assert slow.recv(100) == b""  # dropped once fix.logon_timeout (2 s) passed without a whole message
    finally:
        stop.set()
        slow.close()
    s.logout()
    wait_until(audited(guarded, event="logon_refused", reason="first_message_timeout"), 5, "the audit line")


# ---------------------------------------------------------------------- stored hashes


def test_a_weak_hash_is_rehashed_at_the_first_logon_and_kept_in_the_data_directory(tmp_path: Path) -> None:
    weak = hash_password("weak-pass-1", iterations=1000)
    sessions = {"WEAK1": {"role": "order_entry", "accounts": ["ACCW"], "password_hash": weak}}
    overrides = {"logon.hash_iterations": 100_000}
    gw = start_gateway_with(tmp_path / "gw", overrides, sessions)
    s = FixSession("127.0.0.1", gw.oe_port, "WEAK1", "weak-pass-1", reset_seq=True)
    s.logon(timeout=10)
    s.logout()
    state = tmp_path / "gw" / "data" / "credentials.json"
    wait_until(state.exists, 10, "credentials.json")
    entry = json.loads(state.read_text())["hashes"]["WEAK1"]
    assert entry["replaces"] == weak and entry["hash"].startswith("pbkdf2_sha256$100000$")
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    wait_until(audited(gw, event="password_rehashed", session="WEAK1"), 10, "the re-hash audit line")
    assert gw.stop() == 0
    gw.start()  # the upgraded hash verifies the same password
    s = FixSession("127.0.0.1", gw.oe_port, "WEAK1", "weak-pass-1", reset_seq=True)
    s.logon(timeout=10)
    s.logout()
    assert gw.stop() == 0
    lines = [line["event"] for line in audit(gw) if line.get("session") == "WEAK1"]
    assert lines.count("logon_verified") == 2 and lines.count("password_rehashed") == 1  # the second run: no re-hash


# ---------------------------------------------------------------------- least privilege


def test_a_market_data_session_cannot_send_orders(gateway: GatewayProcess, connect: ClientFactory) -> None:
    md = connect("MD5")
    owner = connect("CLIENT5")
    cl = unique("md")
    for msg_type, fields in (
        ("D", [(11, cl), (1, "ACC5"), (55, "AAPL"), (54, "1"), (38, "1"), (40, "2"), (44, "1.00"), (59, "0"),
               (60, "20260101-00:00:00")]),
        ("F", [(11, unique()), (41, cl), (55, "AAPL"), (54, "1"), (60, "20260101-00:00:00")]),
        ("q", [(11, unique()), (530, "7"), (60, "20260101-00:00:00")]),
    ):  # fmt: skip
        seq = md.send(msg_type, fields)
        reject = wait_msg(md, "j", t45=str(seq))
        assert (field(reject, 380), field(reject, 372)) == ("3", msg_type)
    owner.send("H", [(11, cl), (55, "AAPL"), (54, "1")])
    assert field(wait_er(owner, cl, "I"), 58) == "unknown order"  # nothing reached the book


def test_an_order_entry_session_cannot_act_for_another_sessions_account(connect: ClientFactory) -> None:
    victim, intruder = connect("CLIENT1"), connect("CLIENT2")
    resting = unique("own")
    new_order(victim, resting, "2", "3", "250.00", tif="1")
    ack = wait_er(victim, resting, "0")
    order_id = field(ack, 37)
    stolen = unique("steal")
    new_order(intruder, stolen, "1", "1", "250.00", account="ACC1")
    assert field(wait_er(intruder, stolen, "8"), 58) == "unknown account or account not permitted for this session"
    for key in ((41, resting), (37, order_id)):  # by its ClOrdID, by its OrderID: invisible to another session
        cl = unique("steal")
        intruder.send("F", [(11, cl), key, (55, "AAPL"), (54, "2"), (60, "20260101-00:00:00")])
        reject = wait_msg(intruder, "9", t11=cl)
        assert field(reject, 102) == "1" and (field(reject, 58) or "").startswith("unknown order")
        by = [(11, resting)] if key[0] == 41 else [(11, cl), key]  # H names an order by ClOrdID or OrderID
        intruder.send("H", [*by, (55, "AAPL"), (54, "2")])
        status = wait_msg(intruder, "8", t150="I")
        assert (field(status, 39), field(status, 37)) == ("8", "NONE")
    intruder.send("q", [(11, unique()), (530, "7"), (60, "20260101-00:00:00")])
    report = wait_msg(intruder, "r")
    assert field(report, 533) == "0"  # mass cancel of "all my orders" cancels none of ACC1's
    victim.send("H", [(11, resting), (55, "AAPL"), (54, "2")])
    assert field(wait_er(victim, resting, "I"), 39) == "0"  # still resting, untouched


def test_a_drop_copy_session_can_only_receive(gateway: GatewayProcess) -> None:
    drop = FixSession("127.0.0.1", gateway.dc_port, "DROP1", PASSWORDS["DROP1"], reset_seq=True)
    drop.logon(timeout=10)
    for msg_type, fields in (
        ("D", [(11, unique()), (1, "ACC1"), (55, "AAPL"), (54, "1"), (38, "1"), (40, "2"), (44, "1.00"),
               (59, "0"), (60, "20260101-00:00:00")]),
        ("H", [(11, unique()), (55, "AAPL"), (54, "1")]),
        ("V", [(262, unique()), (263, "0"), (264, "1"), (146, "1"), (55, "AAPL"), (267, "1"), (269, "0")]),
    ):  # fmt: skip
        seq = drop.send(msg_type, fields)
        reject = wait_msg(drop, "j", t45=str(seq))
        assert (field(reject, 380), field(reject, 372)) == ("6", msg_type)
    drop.send("1", [(112, "still-alive")])  # session messages work as usual
    heartbeat = drop.wait_for(lambda m: field(m, 35) == "0" and field(m, 112) == "still-alive", 10, admin=True)
    assert heartbeat is not None
    drop.logout()


def test_the_operator_channel_listens_on_loopback_only_and_wants_its_token(gateway: GatewayProcess) -> None:
    port = gateway.ports["operator"]
    with pytest.raises(OSError):  # 127.0.0.2 is loopback too, but not the address the channel is bound to
        socket.create_connection(("127.0.0.2", port), timeout=2).close()
    url = f"http://127.0.0.1:{port}/v1/accounts"
    for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": DEMO_TOKEN}):
        request = urllib.request.Request(url, data=b"{}", headers=headers, method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert refused.value.code == 401
        assert json.loads(refused.value.read()) == {"ok": False, "error": "missing or invalid operator token"}
    assert call(f"http://127.0.0.1:{port}", DEMO_TOKEN, "accounts", {})["ok"]


# ---------------------------------------------------------------------- what the venue writes


def test_no_password_reaches_any_file_and_every_file_is_private(tmp_path: Path) -> None:
    secret, wrong, stranger = "Zq7-right-9Kx", "Zq7-wrong-3Lm", "Zq7-stranger-5Pw"
    sessions = {"SECRET1": {"role": "order_entry", "accounts": ["ACCS"], "password_hash": hash_password(secret, 1000)}}
    overrides = {
        "fix.message_log": True, "store.enabled": True, "journal.snapshot_every": 5, "logon.backoff_base": 0.0,
        "logon.backoff_max": 0.0,
    }  # fmt: skip
    gw = start_gateway_with(tmp_path / "gw", overrides, sessions)
    assert logon_text(gw.oe_port, "SECRET1", wrong) == LOGON_REFUSED
    assert logon_text(gw.oe_port, "NOBODY", stranger) == LOGON_REFUSED
    s = FixSession("127.0.0.1", gw.oe_port, "SECRET1", secret, reset_seq=True)
    s.logon(timeout=10)
    for _ in range(6):  # enough commands for a snapshot
        cl = unique("sec")
        new_order(s, cl, "1", "1", "1.00", account="ACCS")
        wait_er(s, cl, "0")
    s.logout()
    wait_until(lambda: verified(gw, "bad_password") >= 1, 10, "the wrong password's verification")
    metrics = gw.metrics()
    store = json.loads(next(line for line in gw.log_text().splitlines() if "store_process_started" in line))["pid"]
    assert gw.stop() == 0
    wait_until(lambda: gone(store), 20, "the store process to stop")  # it writes its last rows after the gateway
    written = [p for p in (tmp_path / "gw").rglob("*") if p.is_file() and p.name != "venue.toml"]
    assert any(p.suffix == ".log" and "fixlog" in p.parts for p in written)  # the message log was on
    assert any(p.name == "posttrade.sqlite" for p in written) and any("snapshot" in p.name for p in written)
    for password in (secret, wrong, stranger):
        assert password not in metrics
        for path in written:
            assert password.encode() not in path.read_bytes(), f"{password} found in {path}"
    data = tmp_path / "gw" / "data"
    for path in [data, *data.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path} is {oct(mode)}"
    assert os.stat(data).st_mode & 0o777 == 0o700
