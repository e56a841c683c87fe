"""The QuickFIX logs of the venue: the acceptor's connection events, and the FIX message log with passwords masked.

:class:`VenueLogFactory` is what the acceptor gets instead of QuickFIX's ``FileLogFactory``:

* The acceptor's own log reads the events of the patched acceptor (``third_party/quickfix``): ``FIXGW-PEER
  <address>`` just before a connection's first message goes to its session, so the Logon that QuickFIX hands to
  ``fromAdmin`` right after, on the same thread, came from that address; and ``FIXGW-REFUSED <reason> <address>
  <CompID>`` when the acceptor refused a connection itself (unknown CompID, wrong port, session already connected,
  address not allowed, no first message in time). It writes nothing: QuickFIX also hands it the raw first message of
  a connection it cannot route, and that may carry a password.
* With ``fix.message_log`` each session's messages and events go to ``<data_dir>/fixlog/<session>.messages.log``
  and ``.event.log``, one line each as QuickFIX's FileLog writes them, except that the values of Password (554) and
  NewPassword (925) are replaced by ``*****`` (QuickFIX's FileLog writes Logons verbatim). Without it, sessions have
  no log at all, so the order path makes no Python call for logging.

Every method catches everything: an exception escaping into the binding hangs the process.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import quickfix as fix

_SECRET_FIELDS = re.compile(r"(\x01(?:554|925)=)[^\x01]*")
MASK = "*****"

RefusedCallback = Callable[[str, str, str], None]  # (reason, address, CompID as sent)


def mask_passwords(text: str) -> str:
    """``text`` with the values of Password (554) and NewPassword (925) replaced by ``*****``."""
    return _SECRET_FIELDS.sub(r"\g<1>" + MASK, text)


class ConnectionEvents(fix.Log):  # type: ignore[misc]
    """The acceptor's log: remembers the address of the connection whose first message is being processed."""

    def __init__(self, on_refused: RefusedCallback) -> None:
        super().__init__()
        self.peer: str | None = None
        self._on_refused = on_refused

    def take_peer(self) -> str | None:
        """The address of the connection whose first message QuickFIX is processing now (once; None if unknown)."""
        peer, self.peer = self.peer, None
        return peer

    def onEvent(self, text: str) -> None:
        try:
            if text.startswith("FIXGW-PEER "):
                self.peer = text[len("FIXGW-PEER ") :]
            elif text.startswith("FIXGW-REFUSED "):
                parts = text.split(" ", 3)
                if len(parts) == 4:
                    self.peer = None
                    self._on_refused(parts[1], parts[2], parts[3])
        except Exception:  # never into the binding
            pass

    def onIncoming(self, text: str) -> None:
        pass

    def onOutgoing(self, text: str) -> None:
        pass

    def clear(self) -> None:
        pass

    def backup(self) -> None:
        pass


class MessageLog(fix.Log):  # type: ignore[misc]
    """One session's FIX messages and events, passwords masked."""

    def __init__(self, directory: Path, name: str) -> None:
        super().__init__()
        self._messages: TextIO = (directory / f"{name}.messages.log").open("a", buffering=1)
        self._events: TextIO = (directory / f"{name}.event.log").open("a", buffering=1)

    @staticmethod
    def _line(out: TextIO, text: str) -> None:
        try:
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H:%M:%S.%f")
            out.write(f"{stamp} : {mask_passwords(text)}\n")
        except Exception:
            pass

    def onIncoming(self, text: str) -> None:
        self._line(self._messages, text)

    def onOutgoing(self, text: str) -> None:
        self._line(self._messages, text)

    def onEvent(self, text: str) -> None:
        self._line(self._events, text)

    def clear(self) -> None:
        pass

    def backup(self) -> None:
        pass

    def close(self) -> None:
        try:
            self._messages.close()
            self._events.close()
        except Exception:
            pass


class VenueLogFactory(fix.LogFactory):  # type: ignore[misc]
    """``create()``: the acceptor's :class:`ConnectionEvents`; ``create(session)``: a :class:`MessageLog` when
    ``message_dir`` is set, else None (QuickFIX then logs nothing for the session)."""

    def __init__(self, events: ConnectionEvents, message_dir: Path | None) -> None:
        super().__init__()
        self.events = events
        self.message_dir = message_dir
        self._logs: list[Any] = []  # QuickFIX holds raw pointers: keep every log alive here

    def create(self, *args: Any) -> Any:
        try:
            if not args:
                return _keep(self.events)
            if self.message_dir is None:
                return None
            sid = args[0]
            name = f"{sid.getBeginString().getValue()}-{sid.getSenderCompID().getValue()}-" + (
                sid.getTargetCompID().getValue()
            )
            log = MessageLog(self.message_dir, name)
            self._logs.append(log)
            return _keep(log)
        except Exception:
            return None

    def destroy(self, log: Any) -> None:
        pass

    def close(self) -> None:
        for log in self._logs:
            if isinstance(log, MessageLog):
                log.close()


def _keep(log: Any) -> Any:
    """Hand ``log`` to QuickFIX while Python keeps it (the factory holds a reference). Handing over ownership instead
    goes through a lock the stock SWIG wrapper frees after its first use: the second session's log then corrupted
    the heap (fixed by the fixgw patch, avoided here with any binding)."""
    log.thisown = False
    return log
