"""A small FIX 4.4 initiator session over a raw socket, built on ``simplefix``.

Used by the command-line client, the simulator, the market-data reference client and the tests. It does the session
layer a venue expects from a client: Logon with Username/Password, MsgSeqNum in both directions, Heartbeats and
answers to TestRequest, ResendRequest when it sees a gap, SequenceReset handling, Logout. It is synchronous: the
owner calls :meth:`FixSession.receive` (or :meth:`FixSession.wait_for`) with a deadline; nothing runs behind its back.

Over TLS when given an ``ssl.SSLContext`` (:func:`fixclient.tls.client_context` makes one). A Logon the venue refuses
with :data:`LOGON_REFUSED` is tried again until the logon's timeout: the venue gives that answer to a password it
has not verified yet, and verifies it meanwhile (see the venue's Rules of Engagement, "Connectivity and security").
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from typing import Any

import simplefix

SOH = b"\x01"
_ADMIN_TYPES = frozenset("012345A")
LOGON_REFUSED = "Rejected Logon Attempt: logon refused: credentials not accepted"  # the venue's one credential refusal
_RETRY_FIRST, _RETRY_MAX = 0.05, 1.0  # seconds between Logon attempts after LOGON_REFUSED, doubling
Fields = Iterable[tuple[int, Any]]


def utc_now() -> str:
    """FIX UTCTimestamp with milliseconds."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


def field(msg: simplefix.FixMessage, tag: int) -> str | None:
    """A field's value as text, or None."""
    value = msg.get(tag)
    return value.decode(errors="replace") if value is not None else None


def describe(msg: simplefix.FixMessage) -> str:
    """``tag=value|...`` for people; unlike ``str(msg)`` it survives bytes that are not ASCII."""
    return "|".join(f"{int(t)}={v.decode(errors='replace')}" for t, v in msg.pairs)


def group_entries(msg: simplefix.FixMessage, count_tag: int, delimiter: int) -> list[dict[int, str]]:
    """The instances of a repeating group as dicts, split on the delimiter tag (first field of each instance)."""
    entries: list[dict[int, str]] = []
    inside = False
    for tag_b, value_b in msg.pairs:
        tag = int(tag_b)
        if tag == count_tag:
            inside = True
            continue
        if not inside:
            continue
        if tag == delimiter:
            entries.append({})
        if entries and tag not in (10,):
            entries[-1][tag] = value_b.decode(errors="replace")
    return entries


class SessionError(RuntimeError):
    """The venue refused or ended the session (the message says why)."""


class FixSession:
    """One FIX session to the venue. Not thread-safe: one owner drives it."""

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        password: str | None = None,
        target: str = "EXCH",
        heartbeat: int = 30,
        reset_seq: bool = False,
        next_out: int = 1,
        expected_in: int = 1,
        auto_resend: bool = True,
        tls: ssl.SSLContext | None = None,
        server_name: str | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.tls = tls
        self.server_name = server_name or host  # the name the venue's certificate must carry (with tls)
        self.sender, self.target = sender, target
        self.password = password
        self.heartbeat = heartbeat
        self.reset_seq = reset_seq
        self.next_out = next_out
        self.expected_in = expected_in
        self.auto_resend = auto_resend
        self.sock: socket.socket | None = None
        self.parser = simplefix.FixParser()
        self.logged_on = False
        self.logout_text: str | None = None
        self.gaps_seen = 0
        self.resend_requested_to = 0
        self.connection_first_seq = next_out
        self._sent_app: dict[int, tuple[str, list[tuple[int, Any]]]] = {}  # this connection's app messages
        self._last_sent = time.monotonic()

    # ------------------------------------------------------------------ connection

    def connect(self, timeout: float = 5.0) -> None:
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            try:
                sock = self.tls.wrap_socket(sock, server_hostname=self.server_name)
            except (ssl.SSLError, OSError) as exc:
                sock.close()
                raise SessionError(f"TLS handshake with {self.host}:{self.port} failed: {exc}") from exc
        self.sock = sock
        self.parser = simplefix.FixParser()

    def logon(self, timeout: float = 5.0, extra: Fields = (), retry: bool = True) -> simplefix.FixMessage:
        """Connect if needed, send Logon, wait for the venue's Logon; raises SessionError if refused.

        With ``retry`` a refusal with :data:`LOGON_REFUSED` is tried again on a new connection, with the same
        MsgSeqNum (the venue did not count the refused Logon), until ``timeout``."""
        deadline = time.monotonic() + timeout
        delay = _RETRY_FIRST
        seq = self.next_out
        while True:
            try:
                return self._logon_once(max(0.1, deadline - time.monotonic()), extra)
            except SessionError as exc:
                if not retry or str(exc) != LOGON_REFUSED or time.monotonic() + delay >= deadline:
                    raise
            self.close()
            time.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX)
            self.next_out = seq

    def _logon_once(self, timeout: float, extra: Fields) -> simplefix.FixMessage:
        if self.sock is None:
            self.connect(timeout)
        self.connection_first_seq = 1 if self.reset_seq else self.next_out
        if self.reset_seq:  # both sides start again at 1: the venue's Logon will be its message 1
            self.expected_in = 1
        self._sent_app.clear()
        fields: list[tuple[int, Any]] = [(98, 0), (108, self.heartbeat)]
        if self.reset_seq:
            fields.append((141, "Y"))
        if self.password is not None:
            fields += [(553, self.sender), (554, self.password)]
        fields += list(extra)
        self.send("A", fields)
        reply = self.wait_for(lambda m: field(m, 35) in ("A", "5"), timeout, admin=True)
        if field(reply, 35) == "5":
            raise SessionError(field(reply, 58) or "logon refused")
        self.logged_on = True
        return reply

    def logout(self, text: str | None = None, timeout: float = 5.0) -> None:
        """Send Logout and wait for the venue's (or the connection to close)."""
        if self.sock is None:
            return
        try:
            self.send("5", [(58, text)] if text else [])
            self.wait_for(lambda m: field(m, 35) == "5", timeout, admin=True)
        except (SessionError, OSError, TimeoutError):
            pass
        self.close()

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None
        self.logged_on = False

    # ------------------------------------------------------------------ sending

    def encode(self, msg_type: str, fields: Fields, seq: int | None = None, poss_dup: bool = False) -> bytes:
        msg = simplefix.FixMessage()
        msg.append_pair(8, "FIX.4.4", header=True)
        msg.append_pair(35, msg_type, header=True)
        msg.append_pair(49, self.sender, header=True)
        msg.append_pair(56, self.target, header=True)
        msg.append_pair(34, seq if seq is not None else self.next_out, header=True)
        if poss_dup:
            msg.append_pair(43, "Y", header=True)
        msg.append_pair(52, utc_now(), header=True)
        for tag, value in fields:
            if value is not None:
                msg.append_pair(tag, value)
        return bytes(msg.encode())

    def send(self, msg_type: str, fields: Fields = ()) -> int:
        """Send one message; returns its MsgSeqNum."""
        seq = self.next_out
        fields = list(fields)
        self.send_raw(self.encode(msg_type, fields, seq))
        if msg_type not in _ADMIN_TYPES:
            self._sent_app[seq] = (msg_type, fields)
        self.next_out = seq + 1
        return seq

    def _answer_resend(self, begin: int, end: int) -> None:
        """Resend this connection's application messages in the range (PossDupFlag=Y); gap-fill the rest.

        Messages of earlier connections are not kept: they are skipped with a GapFill, as a client without a
        persistent store does.
        """
        last = self.next_out - 1 if end == 0 or end >= self.next_out else end
        gap_start: int | None = None
        for seq in range(begin, last + 1):
            stored = self._sent_app.get(seq)
            if stored is None:
                gap_start = seq if gap_start is None else gap_start
                continue
            if gap_start is not None:
                self.send_raw(self.encode("4", [(123, "Y"), (36, seq)], seq=gap_start, poss_dup=True))
                gap_start = None
            msg_type, fields = stored
            self.send_raw(self.encode(msg_type, [(122, utc_now()), *fields], seq=seq, poss_dup=True))
        if gap_start is not None:
            self.send_raw(self.encode("4", [(123, "Y"), (36, last + 1)], seq=gap_start, poss_dup=True))

    def send_raw(self, data: bytes) -> None:
        if self.sock is None:
            raise SessionError("not connected")
        self.sock.sendall(data)
        self._last_sent = time.monotonic()

    # ------------------------------------------------------------------ receiving

    def receive(self, timeout: float, admin: bool = False) -> simplefix.FixMessage | None:
        """The next message within ``timeout`` seconds, or None.

        Session-level messages are handled here (TestRequest answered, SequenceReset applied, gaps trigger one
        ResendRequest) and returned only if ``admin`` is true; a Logout always raises SessionError after being
        answered, unless ``admin`` is true.
        """
        deadline = time.monotonic() + timeout
        while True:
            msg = self.parser.get_message()
            if msg is not None:
                if self._on_session_message(msg) or admin:
                    if not admin and field(msg, 35) == "5":
                        raise SessionError(field(msg, 58) or "logged out")
                    return msg
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._keepalive()
            if self.sock is None:
                raise SessionError(self.logout_text or "not connected")
            self.sock.settimeout(min(remaining, 1.0))
            try:
                data = self.sock.recv(1 << 16)
            except TimeoutError:
                continue
            except OSError as exc:  # reset by the peer, or closed under us
                self.close()
                raise SessionError(self.logout_text or f"connection lost: {exc}") from exc
            if not data:
                self.close()
                raise SessionError(self.logout_text or "connection closed by venue")
            self.parser.append_buffer(data)

    def wait_for(
        self, predicate: Callable[[simplefix.FixMessage], bool], timeout: float, admin: bool = False
    ) -> simplefix.FixMessage:
        """The first message satisfying ``predicate`` within ``timeout``; raises TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        skipped: list[str] = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = "\n".join(skipped[-10:]) or "(nothing)"
                raise TimeoutError(f"no matching FIX message before the deadline; last received:\n{seen}")
            msg = self.receive(remaining, admin=admin)
            if msg is not None:
                if predicate(msg):
                    return msg
                skipped.append(describe(msg))

    def drain(self, timeout: float = 0.2) -> list[simplefix.FixMessage]:
        """Everything that arrives within ``timeout`` (application messages only)."""
        out = []
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            msg = self.receive(remaining)
            if msg is not None:
                out.append(msg)
        return out

    def _keepalive(self) -> None:
        if self.logged_on and time.monotonic() - self._last_sent > self.heartbeat * 0.8:
            self.send("0")

    def _on_session_message(self, msg: simplefix.FixMessage) -> bool:
        """Apply session-level handling; True if the message is for the application."""
        msg_type = field(msg, 35)
        seq = int(field(msg, 34) or 0)
        poss_dup = field(msg, 43) == "Y"
        if msg_type == "4":  # SequenceReset (GapFill or reset)
            new_seq = int(field(msg, 36) or seq)
            if new_seq > self.expected_in:
                self.expected_in = new_seq
            return False
        if seq > self.expected_in and not poss_dup and msg_type != "5":
            # A gap: ask once for everything from the first missing message; resent messages (PossDupFlag=Y)
            # are delivered as they arrive, the owner decides what to do with duplicates.
            self.gaps_seen += 1
            if self.auto_resend and self.resend_requested_to < seq - 1:
                self.send("2", [(7, self.expected_in), (16, 0)])
                self.resend_requested_to = seq - 1
        if seq >= self.expected_in:
            self.expected_in = seq + 1
        if msg_type == "1":
            self.send("0", [(112, field(msg, 112))])
            return False
        if msg_type == "0":
            return False
        if msg_type == "2":
            self._answer_resend(int(field(msg, 7) or 1), int(field(msg, 16) or 0))
            return False
        if msg_type == "5":
            self.logout_text = field(msg, 58)
            if self.logged_on:
                with contextlib.suppress(OSError):
                    self.send("5")
            self.logged_on = False
            return True
        return msg_type != "A"
