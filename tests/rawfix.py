"""A FIX client that frames every message by hand, for the session-conformance tests: it can send what a real engine
never would (a wrong BodyLength or CheckSum, fields out of order, a stale SendingTime, any MsgSeqNum) and checks
exactly what the venue sends back, message by message, with no session logic of its own in the way."""

from __future__ import annotations

import datetime as dt
import socket
import time
from typing import Any, Final

import simplefix

SOH = "\x01"
ANY: Final = object()
"""An expected value meaning "present, whatever its value" (timestamps)."""
HEADER = frozenset(("8", "9", "35", "34", "49", "52", "56", "10"))
"""Standard header and trailer fields :meth:`RawClient.expect` checks itself; every other field is compared."""


def timestamp(seconds_from_now: float = 0.0) -> str:
    """A UTCTimestamp with milliseconds, ``seconds_from_now`` away from now."""
    moment = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds_from_now)
    return moment.strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


def frame(fields: str, begin: str = "FIX.4.4", length: int | None = None, checksum: int | None = None) -> bytes:
    """``fields`` (``tag=value|...``, '|' for SOH) framed with BeginString, BodyLength and CheckSum; ``length`` and
    ``checksum`` replace the correct values."""
    body = fields.replace("|", SOH)
    head = f"8={begin}{SOH}9={len(body) if length is None else length}{SOH}"
    total = sum((head + body).encode()) % 256 if checksum is None else checksum
    return f"{head}{body}10={total:03d}{SOH}".encode()


class Closed(Exception):
    """The venue closed the connection."""


class RawClient:
    """One connection to the venue as one CompID. ``next_out`` is the MsgSeqNum of the next message sent unless a
    send names one; ``venue_seq`` the venue's last MsgSeqNum seen."""

    def __init__(self, port: int, comp_id: str, password: str, target: str = "EXCH") -> None:
        self.comp_id, self.password, self.target = comp_id, password, target
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.parser = simplefix.FixParser()
        self.next_out = 1
        self.venue_seq = 0

    def send_bytes(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(
        self,
        msg_type: str,
        body: str = "",
        seq: int | None = None,
        sender: str | None = None,
        target: str | None = None,
        sending_time: str | None = None,
        header: str = "",
        **framing: Any,
    ) -> int:
        """Send ``35=msg_type`` with ``body`` ('|'-separated); ``header`` adds header fields (43, 97, 122...) after
        MsgSeqNum; ``sending_time=""`` leaves SendingTime out. Returns the MsgSeqNum used."""
        seq = self.next_out if seq is None else seq
        self.next_out = max(self.next_out, seq + 1)
        stamp = timestamp() if sending_time is None else sending_time
        fields = f"35={msg_type}|49={sender or self.comp_id}|56={target or self.target}|34={seq}|{header}"
        fields += f"52={stamp}|" if stamp else ""
        self.send_bytes(frame(fields + body, **framing))
        return seq

    def logon(self, heartbeat: int = 30, extra: str = "", seq: int | None = None) -> dict[str, str]:
        """Send a Logon (Username/Password) and expect the venue's Logon (MsgSeqNum one more than the last seen)."""
        self.send("A", f"98=0|108={heartbeat}|{extra}553={self.comp_id}|554={self.password}|", seq=seq)
        return self.expect("A", t98="0", t108=str(heartbeat))

    def receive(self, timeout: float = 10.0) -> list[tuple[str, str]] | None:
        """The next message the venue sends, as (tag, value) pairs; None after ``timeout``; raises :class:`Closed`."""
        deadline = time.monotonic() + timeout
        while (msg := self.parser.get_message()) is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(1 << 16)
            except TimeoutError:
                return None
            except ConnectionResetError:
                data = b""
            if not data:
                raise Closed
            self.parser.append_buffer(data)
        return [(tag.decode(), value.decode()) for tag, value in msg.pairs]

    def expect(self, msg_type: str, seq: int | None = None, timeout: float = 10.0, **fields: object) -> dict[str, str]:
        """The next message must be ``msg_type`` from the venue to this CompID with MsgSeqNum ``seq`` (default: one
        more than the last) and exactly ``fields`` besides the standard header (``t58="..."``; :data:`ANY` for any
        value). Returns its fields."""
        pairs = self.receive(timeout)
        assert pairs is not None, f"nothing received within {timeout}s; expected 35={msg_type} {fields}"
        got = dict(pairs)
        shown = "|".join(f"{t}={v}" for t, v in pairs)
        want_seq = self.venue_seq + 1 if seq is None else seq
        assert (got.get("35"), got.get("49"), got.get("56")) == (msg_type, self.target, self.comp_id), shown
        assert got.get("34") == str(want_seq), f"MsgSeqNum {got.get('34')}, expected {want_seq}: {shown}"
        body = {tag: value for tag, value in pairs if tag not in HEADER}
        want = {name.removeprefix("t"): value for name, value in fields.items()}
        assert body.keys() == want.keys(), f"fields {sorted(body)}, expected {sorted(want)}: {shown}"
        for tag, value in want.items():
            assert value is ANY or body[tag] == value, f"{tag}={body[tag]}, expected {value}: {shown}"
        self.venue_seq = want_seq
        return got

    def expect_closed(self, timeout: float = 10.0) -> float:
        """The venue must close the connection within ``timeout`` without sending anything more. Returns the
        seconds it took."""
        start = time.monotonic()
        try:
            pairs = self.receive(timeout)
        except Closed:
            return time.monotonic() - start
        assert pairs is not None, f"still connected after {timeout}s"
        shown = "|".join(f"{t}={v}" for t, v in pairs)
        raise AssertionError(f"received {shown} instead of the connection closing")

    def close(self) -> None:
        self.sock.close()
