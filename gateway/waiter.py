"""Sleep until a socket of this process has input, instead of spinning on ``acceptor.poll()``.

``SocketAcceptor.poll()`` never blocks, and the binding exposes neither the sockets nor a blocking variant that
returns control to Python between messages. Spinning on it burns a core that, on a 2-core machine, the clients
and the market-data publisher need (measured: the gateway spent ~3x the floor's CPU per order, most of it in
empty polls). When a poll found nothing to do, the gateway loop therefore waits in ``poll(2)`` on every socket the
process has open (QuickFIX's listening and session sockets among them) for at most ``timeout``: the kernel wakes it
as soon as bytes arrive. The socket list is re-read from ``/proc/self/fd`` at most every ``refresh`` seconds, and
immediately after any wake-up that found work, so new connections join the set within one refresh.
"""

from __future__ import annotations

import os
import select
import time


class SocketWaiter:
    """Wait for input on any socket of the process (Linux: /proc/self/fd)."""

    def __init__(self, refresh: float = 0.05) -> None:
        self._refresh = refresh
        self._poller = select.poll()
        self._fds: set[int] = set()
        self._read_at = 0.0

    def _sockets(self) -> set[int]:
        fds = set()
        for name in os.listdir("/proc/self/fd"):
            try:
                if os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                    fds.add(int(name))
            except OSError:  # closed meanwhile
                continue
        return fds

    def refresh(self) -> None:
        fds = self._sockets()
        for fd in self._fds - fds:
            self._poller.unregister(fd)
        for fd in fds - self._fds:
            self._poller.register(fd, select.POLLIN | select.POLLPRI)
        self._fds = fds
        self._read_at = time.monotonic()

    def wait(self, timeout: float) -> None:
        """Return when a socket has input, or after ``timeout`` seconds."""
        if time.monotonic() - self._read_at > self._refresh:
            self.refresh()
        try:
            ready = self._poller.poll(timeout * 1000)
        except OSError:  # a registered fd was closed under us: re-read next time
            self._read_at = 0.0
            return
        for _, events in ready:
            if events & (select.POLLNVAL | select.POLLHUP | select.POLLERR):
                self._read_at = 0.0  # a socket went away: drop it before the next wait, or poll spins on it
