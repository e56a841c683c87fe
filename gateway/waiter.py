"""Sleep until a socket of this process has input, instead of spinning on ``acceptor.poll()``.

``SocketAcceptor.poll()`` never blocks, and the binding exposes neither the sockets nor a blocking variant that
returns control to Python between messages. Spinning on it burns a core that, on a 2-core machine, the clients
and the market-data publisher need (measured: the gateway spent ~3x the floor's CPU per order, most of it in
empty polls). When a poll found nothing to do, the gateway loop therefore waits in ``poll(2)`` on every socket the
process has open (QuickFIX's listening and session sockets among them) for at most ``timeout``: the kernel wakes it
as soon as bytes arrive.

Finding the sockets is the costly part: a process with 1,000 sessions has ~7,000 descriptors (FileStore files
included). Reading every ``/proc/self/fd`` link 20 times a second took ~24% of the gateway's CPU in the
market-data benchmark, so the set is kept up to date cheaply instead:

* after a listening socket woke the loop (QuickFIX has accepted a connection since), only descriptor numbers not
  seen before are checked, with ``fstat`` (no path lookup);
* a socket that reports hang-up or error is dropped at once (polling it again would return at once, a spin);
* every ``full_scan_every`` seconds all descriptors are checked again, which catches a number that was closed and
  reused in between. A socket missing from the set is still served: the wait never lasts longer than ``timeout``.
"""

from __future__ import annotations

import os
import select
import socket
import stat
import time

FD_DIR = "/proc/self/fd"
_BROKEN = select.POLLNVAL | select.POLLHUP | select.POLLERR


def _is_socket(fd: int) -> bool | None:
    """True for a socket, False for another open descriptor, None if ``fd`` is not open."""
    try:
        return stat.S_ISSOCK(os.fstat(fd).st_mode)
    except OSError:  # closed meanwhile (the listing's own directory descriptor is one of these)
        return None


def _is_listening(fd: int) -> bool:
    try:
        sock = socket.socket(fileno=fd)
    except OSError:  # closed meanwhile
        return False
    try:
        return bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
    except OSError:
        return False
    finally:
        sock.detach()  # the descriptor belongs to QuickFIX: never close it


class SocketWaiter:
    """Wait for input on any socket of the process (Linux: /proc/self/fd)."""

    def __init__(self, full_scan_every: float = 10.0) -> None:
        self._full_scan_every = full_scan_every
        self._poller = select.poll()
        self._sockets: set[int] = set()  # registered with the poller
        self._listening: set[int] = set()
        self._seen: set[int] = set()  # descriptor numbers the last scan looked at
        self._full_scan_at = 0.0
        self._scan_new = False

    @property
    def sockets(self) -> frozenset[int]:
        """The descriptors the next wait polls."""
        return frozenset(self._sockets)

    def scan(self, full: bool = True) -> None:
        """Bring the socket set up to date: check every descriptor (``full``) or only numbers not seen before."""
        listed = {int(name) for name in os.listdir(FD_DIR)}
        sockets = set() if full else self._sockets & listed
        seen = set() if full else self._seen & listed
        for fd in listed if full else listed - self._seen:
            kind = _is_socket(fd)
            if kind is not None:
                seen.add(fd)
                if kind:
                    sockets.add(fd)
        for fd in self._sockets - sockets:
            self._forget(fd)
        for fd in sockets - self._sockets:
            self._poller.register(fd, select.POLLIN | select.POLLPRI)
            if _is_listening(fd):
                self._listening.add(fd)
        self._sockets = sockets
        self._seen = seen
        self._scan_new = False

    def _forget(self, fd: int) -> None:
        self._poller.unregister(fd)
        self._sockets.discard(fd)
        self._listening.discard(fd)
        self._seen.discard(fd)  # if the number comes back, look at it again

    def wait(self, timeout: float) -> None:
        """Return when a socket has input, or after ``timeout`` seconds."""
        now = time.monotonic()
        if now >= self._full_scan_at:
            self.scan(full=True)
            self._full_scan_at = now + self._full_scan_every
        elif self._scan_new:
            self.scan(full=False)
        try:
            ready = self._poller.poll(timeout * 1000)
        except OSError:  # a registered descriptor was closed under us: check them all next time
            self._full_scan_at = 0.0
            return
        for fd, events in ready:
            if events & _BROKEN:
                self._forget(fd)
                self._scan_new = True
            elif fd in self._listening:
                self._scan_new = True  # a connection is being accepted: its socket is a new descriptor
