"""Connections that never log on properly are dropped without holding the venue's resources or stalling anyone.

Each test opens connections that misbehave in one way while a logged-on session keeps trading, then checks that the
venue closed them (the peer sees end of file; no FIX message for a connection that never logged on), and that the
gateway's sockets opened for them (/proc/<pid>/fd) are all closed again (RoE section 2.1).
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator

import pytest

from fixclient import FixSession, field
from tests.conftest import PASSWORDS, start_gateway_with, unique, verify_passwords
from tests.fixtools import new_order, wait_er
from tests.gateway_process import GatewayProcess

pytestmark = pytest.mark.timeout(60)

LOGON_TIMEOUT = 2  # seconds (fix.logon_timeout); the demo config has 10
HALF_A_LOGON = b"8=FIX.4.4\x019=71\x0135=A\x0149=CLIENT7\x0156=EXCH\x0134=1\x0152=2026"


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    # HeartBtInt 1 is below the demo's heartbeat_min (5): allowed here so that a silent session is dropped quickly
    gw = start_gateway_with(tmp_path_factory.mktemp("gw"), {"fix.logon_timeout": LOGON_TIMEOUT, "fix.heartbeat_min": 1})
    # The raw Logons below are sent once: have the venue verify their passwords first (RoE 1.2).
    verify_passwords(gw, gw.oe_port, {c: PASSWORDS[c] for c in ("CLIENT1", "CLIENT2", "CLIENT3", "CLIENT7")})
    yield gw
    assert gw.stop() == 0, gw.log_text()[-3000:]


@pytest.fixture
def trader(venue: GatewayProcess) -> Iterator[FixSession]:
    s = FixSession("127.0.0.1", venue.oe_port, "CLIENT1", PASSWORDS["CLIENT1"], reset_seq=True)
    s.logon()
    yield s
    s.logout()


def open_sockets(gw: GatewayProcess) -> set[str]:
    """The gateway's open socket descriptors, by inode (``socket:[N]``)."""
    assert gw.proc is not None
    fds = f"/proc/{gw.proc.pid}/fd"
    links = set()
    for fd in os.listdir(fds):
        with contextlib.suppress(FileNotFoundError):  # closed meanwhile
            links.add(os.readlink(f"{fds}/{fd}"))
    return {link for link in links if link.startswith("socket:")}


def wait_sockets_released(gw: GatewayProcess, before: set[str], timeout: float = 10.0) -> None:
    """Every socket the gateway opened since ``before`` is closed again. Sockets open at ``before`` may close
    meanwhile (a refused Logon or a metrics scrape from the setup): fewer is not a leak."""
    deadline = time.monotonic() + timeout
    while held := open_sockets(gw) - before:
        assert time.monotonic() < deadline, f"the venue still holds {len(held)} of the connections' sockets"
        time.sleep(0.05)


def connect(gw: GatewayProcess, first_bytes: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", gw.oe_port), timeout=5)
    if first_bytes:
        sock.sendall(first_bytes)
    return sock


def still_open(sock: socket.socket) -> bool:
    """True while the venue has neither closed the connection nor sent anything on it."""
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.settimeout(timeout)
    return False


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """Everything the venue sends until it closes the connection; fails if it is still open after ``timeout``."""
    sock.settimeout(timeout)
    received = b""
    while chunk := sock.recv(1 << 16):
        received += chunk
    return received


def trade_while_waiting(trader: FixSession, waiting: list[socket.socket]) -> None:
    """An order from a logged-on session is answered while the misbehaving connections are all still held."""
    order = unique("busy")
    new_order(trader, order, "1", "1", "1.00")
    wait_er(trader, order, "0")
    assert all(still_open(s) for s in waiting), "a connection was closed before the logon timeout"


def dropped_lines(gw: GatewayProcess) -> int:
    """Connections the acceptor dropped for want of a complete first message (RoE 1, logged as a refusal)."""
    return sum(
        '"event": "logon_refused"' in line and '"reason": "first_message_timeout"' in line
        for line in gw.log_text().splitlines()
    )


def test_a_connection_that_sends_nothing_is_closed_after_the_logon_timeout(
    venue: GatewayProcess, trader: FixSession
) -> None:
    before, logged = open_sockets(venue), dropped_lines(venue)
    silent = [connect(venue) for _ in range(3)]
    trade_while_waiting(trader, silent)
    for sock in silent:
        assert read_until_closed(sock, LOGON_TIMEOUT + 10) == b""  # closed, not a word said
        sock.close()
    wait_sockets_released(venue, before)
    assert dropped_lines(venue) - logged == 3
    trade_while_waiting(trader, [])


def test_half_a_message_neither_stalls_other_sessions_nor_stays(venue: GatewayProcess, trader: FixSession) -> None:
    """QuickFIX alone waited up to a second for the rest of a first message, with every session stalled, then
    closed the connection: here the connections are held until the logon timeout and nobody waits for them."""
    before, logged = open_sockets(venue), dropped_lines(venue)
    halves = [connect(venue, HALF_A_LOGON) for _ in range(3)]
    trade_while_waiting(trader, halves)
    for sock in halves:
        assert read_until_closed(sock, LOGON_TIMEOUT + 10) == b""
        sock.close()
    wait_sockets_released(venue, before)
    assert dropped_lines(venue) - logged == 3


def test_the_rest_of_a_slow_logon_is_still_welcome(venue: GatewayProcess, trader: FixSession) -> None:
    """A Logon that arrives in pieces within the timeout logs on normally."""
    s = FixSession("127.0.0.1", venue.oe_port, "CLIENT2", PASSWORDS["CLIENT2"], reset_seq=True)
    s.connect()
    logon = s.encode("A", [(98, 0), (108, 30), (141, "Y"), (553, "CLIENT2"), (554, PASSWORDS["CLIENT2"])])
    s.next_out = 2
    s.send_raw(logon[:25])
    trade_while_waiting(trader, [s.sock] if s.sock else [])
    s.send_raw(logon[25:])
    reply = s.wait_for(lambda m: field(m, 35) in ("A", "5"), 10, admin=True)
    assert field(reply, 35) == "A"
    s.logged_on = True
    s.logout()


def test_a_logon_then_silence_ends_with_a_test_request_and_a_disconnect(
    venue: GatewayProcess, trader: FixSession
) -> None:
    """Once logged on, the heartbeat rules apply: TestRequest after 1.2 HeartBtInt of silence, disconnect (no
    Logout) after 2.4; cancel-on-disconnect follows."""
    before = open_sockets(venue)
    quiet = FixSession("127.0.0.1", venue.oe_port, "CLIENT3", PASSWORDS["CLIENT3"], reset_seq=True, heartbeat=1)
    quiet.connect()
    assert quiet.sock is not None
    logon = quiet.encode("A", [(98, 0), (108, 1), (141, "Y"), (553, "CLIENT3"), (554, PASSWORDS["CLIENT3"])])
    order = unique("quiet")
    quiet.next_out = 2
    quiet.sock.sendall(logon)
    quiet.wait_for(lambda m: field(m, 35) == "A", 10, admin=True)
    new_order(quiet, order, "1", "1", "1.00")
    wait_er(quiet, order, "0")
    # From here on the client sends nothing; everything it is sent is kept.
    received = read_until_closed(quiet.sock, 15)
    quiet.sock.close()
    types = [part.split(b"\x01")[0] for part in received.split(b"\x0135=")[1:]]
    assert b"1" in types and b"5" not in types, received
    wait_sockets_released(venue, before)
    back = FixSession("127.0.0.1", venue.oe_port, "CLIENT3", PASSWORDS["CLIENT3"], reset_seq=True)
    back.logon()
    back.send("H", [(11, order), (55, "AAPL"), (54, "1")])
    status = wait_er(back, order, "I")
    assert field(status, 39) == "4"  # cancelled on disconnect
    back.logout()
    trade_while_waiting(trader, [])
