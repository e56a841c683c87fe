"""Connections that have not sent a complete first message: keep them away from QuickFIX, drop them in time.

Why. QuickFIX's SocketAcceptor reads the first message of a connection (the one that names its session) in a
blocking loop: it waits in select(2), up to one second, for the rest of a partial message, on the one thread that
runs every session and the engine. Measured: a client that sent half a Logon stalled every other session's orders
for a second, three such connections for three seconds. And a connection that sends nothing was never closed:
QuickFIX times out sessions, and a connection has no session until its first message is complete.

How, leaving QuickFIX's sockets otherwise alone. When a listening FIX port had a connection waiting before a poll
of the acceptor (which accepts it), the guard looks for the new connection's descriptor afterwards and raises its
``SO_RCVLOWAT`` far above any first message, so that select(2) and poll(2) do not report it readable. Before every
poll of the acceptor it peeks (``MSG_PEEK``) at those connections: once a complete FIX message is buffered, the
mark goes back to one byte and the guard forgets the connection (QuickFIX then reads the whole message at once).
A connection still without one ``logon_timeout`` seconds after it was accepted, or with ``MAX_FIRST_MESSAGE``
bytes and no complete message, is shut down; QuickFIX sees the peer gone and closes the descriptor itself.

A connection the guard did not see accepted (it arrived between the guard's look at the listening socket and the
acceptor's own, so only the periodic full scan finds it) may already be a logged-on session: the guard leaves alone
any connection from which bytes have already been read (TCP_INFO's bytes received above what is still buffered).
Found by the soak: a quiet market-data session, adopted that way after its Logon, was shut down at the logon timeout.

Descriptors belong to QuickFIX: the guard wraps one in a ``socket`` object only for the duration of a call and
always detaches it (a ``socket`` object that closed a descriptor behind QuickFIX's back would be a disaster).
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import socket
import stat
import struct
import termios
import time
from dataclasses import dataclass
from typing import Any

FD_DIR = "/proc/self/fd"
MAX_FIRST_MESSAGE = 8192  # bytes: a Logon is a few hundred
HOLD_LOWAT = 65536  # never reached by a first message; larger would make the kernel grow the receive buffer
FULL_SCAN_EVERY = 10.0  # seconds: also look at descriptor numbers that were closed and reused between two scans
TCP_INFO_BYTES_RECEIVED = 128  # offset of tcpi_bytes_received (u64) in Linux's struct tcp_info (kernel 4.1+)
_HEADER = re.compile(rb"8=[^\x01]*\x019=(\d{1,7})\x01")


def first_message_complete(data: bytes) -> bool:
    """True if ``data`` holds a whole FIX message the way QuickFIX's parser frames one: from ``8=``, BodyLength (9)
    bytes after the BodyLength field, then ``10=...<SOH>``."""
    start = data.find(b"8=")
    if start < 0:
        return False
    header = _HEADER.match(data, start)
    if header is None:
        return False
    body_end = header.end() + int(header.group(1))
    trailer = data.find(b"\x0110=", body_end - 1)
    return trailer >= 0 and data.find(b"\x01", trailer + 4) >= 0


@dataclass
class _Pending:
    inode: int
    since: float
    peer: str


def _with_socket(fd: int, action: Any) -> Any:
    """``action(sock)`` on a temporary socket object for QuickFIX's descriptor ``fd``; None if it is not a socket."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError:
        return None
    try:
        return action(sock)
    finally:
        sock.detach()


def already_read(sock: socket.socket) -> bool:
    """True if bytes have been read from the connection (by QuickFIX): it is past its first message. TCP_INFO before
    FIONREAD: bytes arriving in between can only make a fresh connection look fresher."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, TCP_INFO_BYTES_RECEIVED + 8)
        buffered: int = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]
    except OSError:
        return False
    if len(info) < TCP_INFO_BYTES_RECEIVED + 8:
        return False  # an older kernel: hold it as a new connection
    received: int = struct.unpack_from("Q", info, TCP_INFO_BYTES_RECEIVED)[0]
    return received > buffered


def _inode(fd: int) -> int | None:
    """The inode of ``fd`` if it is an open socket, 0 for another open descriptor, None if it is not open."""
    try:
        st = os.fstat(fd)
    except OSError:  # closed meanwhile (the listing's own directory descriptor is one of these)
        return None
    return st.st_ino if stat.S_ISSOCK(st.st_mode) else 0


class ConnectionGuard:
    """Holds back connections on the FIX ports until their first message is complete; drops the ones that take
    longer than ``logon_timeout`` seconds. Call :meth:`turn` on the gateway thread before every acceptor poll."""

    def __init__(
        self, ports: set[int], logon_timeout: float, log: Any, full_scan_every: float = FULL_SCAN_EVERY
    ) -> None:
        self.ports = ports
        self.full_scan_every = full_scan_every
        self.logon_timeout = logon_timeout
        self.log = log
        self.pending: dict[int, _Pending] = {}
        self._sockets: dict[int, int] = {}  # descriptor -> inode of every socket seen (listening ones included)
        self._others: set[int] = set()  # descriptors seen that are not sockets
        self._listeners = select.poll()
        self._accepting = False
        self._full_scan_at = 0.0
        self.dropped = 0
        self._scan(full=True)
        for fd, _ in list(self._sockets.items()):
            if _with_socket(fd, self._is_fix_listener):
                self._listeners.register(fd, select.POLLIN)

    def _is_fix_listener(self, sock: socket.socket) -> bool:
        try:
            listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
            return bool(listening) and sock.getsockname()[1] in self.ports
        except (OSError, IndexError):
            return False

    def turn(self) -> None:
        """Before an acceptor poll: adopt connections the last poll accepted, release or drop waiting ones."""
        now = time.monotonic()
        if self._accepting or now >= self._full_scan_at:
            self._scan(full=now >= self._full_scan_at)
        if self.pending:
            self._check(now)
        self._accepting = bool(self._listeners.poll(0))

    def _scan(self, full: bool) -> None:
        """Find connections accepted since the last scan: new descriptor numbers, and numbers of sockets whose
        inode changed (closed and reused); ``full`` also re-checks numbers that were not sockets."""
        now = time.monotonic()
        if full:
            self._full_scan_at = now + self.full_scan_every
        listed = {int(name) for name in os.listdir(FD_DIR)}
        for fd in list(self._sockets):
            if fd not in listed:
                del self._sockets[fd]
        self._others &= listed
        for fd in listed:
            if fd in self._others and not full:
                continue
            inode = _inode(fd)
            if not inode:
                if inode == 0:
                    self._others.add(fd)
                self._sockets.pop(fd, None)
                continue
            self._others.discard(fd)
            if self._sockets.get(fd) == inode:
                continue
            self._sockets[fd] = inode
            peer = _with_socket(fd, self._new_connection)
            if peer is not None:
                self.pending[fd] = _Pending(inode, now, peer)
        for fd in [fd for fd, p in self.pending.items() if self._sockets.get(fd) != p.inode]:
            del self.pending[fd]  # closed (by QuickFIX, the peer having gone) or reused by something else

    def _new_connection(self, sock: socket.socket) -> str | None:
        """Hold a newly accepted connection on a FIX port; its peer address, or None if it is not one."""
        try:
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) or sock.getsockname()[1] not in self.ports:
                return None
            if already_read(sock):
                return None  # QuickFIX has read its first message already (accepted behind the guard's back)
            peer = sock.getpeername()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, HOLD_LOWAT)
        except (OSError, IndexError):
            return None
        return f"{peer[0]}:{peer[1]}"

    def _check(self, now: float) -> None:
        for fd, p in list(self.pending.items()):
            if _inode(fd) != p.inode:
                del self.pending[fd]
                continue
            verdict = _with_socket(fd, lambda sock, p=p: self._peek(sock, now - p.since))
            if verdict is None:
                continue
            del self.pending[fd]
            if verdict:
                self.dropped += 1
                self.log.warning("connection_dropped", peer=p.peer, reason=verdict, seconds=round(now - p.since, 3))

    def _peek(self, sock: socket.socket, age: float) -> str | None:
        """None to keep waiting; "" when the connection is released to QuickFIX (or gone); else why it was dropped."""
        try:
            data = sock.recv(MAX_FIRST_MESSAGE + 1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            data = None
        except OSError:
            return ""  # reset by the peer: QuickFIX finds out and closes it
        if data == b"":
            return ""  # the peer closed: likewise
        if data is not None and first_message_complete(data):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 1)
            return ""
        if data is not None and len(data) > MAX_FIRST_MESSAGE:
            why = f"no complete message in the first {MAX_FIRST_MESSAGE} bytes"
        elif age >= self.logon_timeout:
            why = f"no complete first message within the logon timeout ({self.logon_timeout:g} s)"
        else:
            return None
        try:
            sock.shutdown(socket.SHUT_RDWR)  # QuickFIX sees the connection end and closes its descriptor
        except OSError:
            return ""
        return why
