"""A real QuickFIX initiator for tests: logs on with Username/Password and collects what the venue sends.

Callbacks run on the initiator's own thread; they only append to a queue (every body guarded: an exception in a
QuickFIX callback would hang the process). The test thread waits on that queue with a deadline.
"""

from __future__ import annotations

import contextlib
import queue
import time
from pathlib import Path
from typing import Any

import quickfix as fix

from tests.gateway_process import ROOT


class Collector(fix.Application):  # type: ignore[misc]
    def __init__(self, password: str) -> None:
        super().__init__()
        self.password = password
        self.inbox: queue.Queue[Any] = queue.Queue()
        self.logged_on = False
        self.session_id: Any = None

    def onCreate(self, sessionID: Any) -> None:
        self.session_id = sessionID

    def onLogon(self, sessionID: Any) -> None:
        self.logged_on = True

    def onLogout(self, sessionID: Any) -> None:
        self.logged_on = False

    def toAdmin(self, message: Any, sessionID: Any) -> None:
        with contextlib.suppress(Exception):  # never let an exception into the binding
            if message.getHeader().getField(35) == "A":
                message.setField(553, sessionID.getSenderCompID().getValue())
                message.setField(554, self.password)

    def fromAdmin(self, message: Any, sessionID: Any) -> None:
        with contextlib.suppress(Exception):
            self.inbox.put(fix.Message(message))

    def toApp(self, message: Any, sessionID: Any) -> None:
        return

    def fromApp(self, message: Any, sessionID: Any) -> None:
        with contextlib.suppress(Exception):
            self.inbox.put(fix.Message(message))


class QuickFixClient:
    """A SocketInitiator session CLIENTn -> EXCH on ``port``, with its own store under ``directory``."""

    def __init__(self, directory: Path, port: int, comp_id: str, password: str, reset: bool = True) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        cfg = directory / "initiator.cfg"
        cfg.write_text(
            "\n".join(
                [
                    "[DEFAULT]", "ConnectionType=initiator", "BeginString=FIX.4.4", f"SenderCompID={comp_id}",
                    "TargetCompID=EXCH", "SocketConnectHost=127.0.0.1", f"SocketConnectPort={port}",
                    "HeartBtInt=30", "ReconnectInterval=1", f"FileStorePath={directory / 'store'}",
                    "NonStopSession=Y", "UseDataDictionary=Y",
                    f"DataDictionary={ROOT / '.venv' / 'share' / 'quickfix' / 'FIX44.xml'}",
                    f"ResetOnLogon={'Y' if reset else 'N'}", "SocketNodelay=Y", "", "[SESSION]",
                ]
            )
            + "\n"
        )  # fmt: skip
        self.app = Collector(password)
        settings = fix.SessionSettings(str(cfg))
        self.initiator = fix.SocketInitiator(self.app, fix.FileStoreFactory(settings), settings)

    def start(self, timeout: float = 10.0) -> None:
        self.initiator.start()
        deadline = time.monotonic() + timeout
        while not self.app.logged_on:
            if time.monotonic() > deadline:
                raise TimeoutError("QuickFIX initiator did not log on")
            time.sleep(0.01)

    def send(self, message: Any) -> None:
        fix.Session.sendToTarget(message, self.app.session_id)

    def wait_for(self, msg_type: str, timeout: float = 10.0, **fields: str) -> Any:
        want = {int(k.lstrip("t")): v for k, v in fields.items()}
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                msg = self.app.inbox.get(timeout=remaining)
            except queue.Empty:
                break
            if msg.getHeader().getField(35) != msg_type:
                continue
            if all(msg.isSetField(t) and msg.getField(t) == v for t, v in want.items()):
                return msg
        raise TimeoutError(f"no {msg_type} {fields} from the venue")

    def stop(self) -> None:
        self.initiator.stop()
