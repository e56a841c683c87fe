"""A bare QuickFIX acceptor for ``tests/test_fd_reuse.py``: ``python -m tests.fd_reuse_acceptor PORT DIR``.

Its client connections get descriptors below the listening socket's (descriptors opened before the acceptor
starts are closed after), as they do in a venue that has closed files opened before it started listening. A
NewOrderSingle makes the acceptor sleep 0.3 s, so that what arrives meanwhile reaches one poll together.

Driven as the venue drives its acceptor: ``poll()`` on one thread, which also stops it. Not ``start()``: stock
QuickFIX's ``stop()`` then closes the acceptor's server from the calling thread (``onStop``) while the acceptor's own
thread, seeing the stop flag, may be deleting that server: a SIGSEGV at teardown, 3 runs in 40 on a loaded machine.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import quickfix as fix

SESSIONS = ("FDA", "FDB", "FDC")


class App(fix.Application):  # type: ignore[misc]
    def onCreate(self, sessionID: fix.SessionID) -> None: ...
    def onLogon(self, sessionID: fix.SessionID) -> None: ...
    def onLogout(self, sessionID: fix.SessionID) -> None: ...
    def toAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None: ...
    def fromAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None: ...
    def toApp(self, message: fix.Message, sessionID: fix.SessionID) -> None: ...

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        try:
            if message.getHeader().getField(35) == "D":
                time.sleep(0.3)  # holds the acceptor's one thread: the next poll sees all that came meanwhile
        except Exception:  # never into the binding
            pass


def main() -> int:
    port, directory = int(sys.argv[1]), Path(sys.argv[2])
    cfg = directory / "acceptor.cfg"
    lines = ["[DEFAULT]", "ConnectionType=acceptor", "BeginString=FIX.4.4", "SenderCompID=EXCH",
             f"SocketAcceptPort={port}", "StartTime=00:00:00", "EndTime=00:00:00", "UseDataDictionary=N",
             "ResetOnLogon=Y", "ResetOnDisconnect=Y", "SocketReuseAddress=Y", f"FileStorePath={directory}"]  # fmt: skip
    for comp_id in SESSIONS:
        lines += ["", "[SESSION]", f"TargetCompID={comp_id}"]
    cfg.write_text("\n".join(lines) + "\n")
    stopping: list[int] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda signum, _: stopping.append(signum))
    placeholders = [os.open(os.devnull, os.O_RDONLY) for _ in range(20)]
    settings = fix.SessionSettings(str(cfg))
    acceptor = fix.SocketAcceptor(App(), fix.MemoryStoreFactory(), settings)
    acceptor.poll()  # the first poll listens
    for fd in placeholders:  # free descriptors below the listening socket's
        os.close(fd)
    print("LISTENING", flush=True)
    while not stopping:
        acceptor.poll()  # never blocks
        time.sleep(0.001)
    acceptor.stop(True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
