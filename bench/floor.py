"""The throughput floor: a bare QuickFIX acceptor answering each NewOrderSingle with one fixed ER (35=8).

Why: no gateway built on the ``quickfix`` binding can be faster than this; it is what the real gateway's
figures are compared with (``bench/run_floor_vs.py``). It does the minimum any gateway must do per order, with
the cheap idioms of the binding: read fields as strings with ``msg.getField(tag)``, reuse one ExecutionReport
object, one ``sendToTarget`` per order, and a Python thread state pinned on the QuickFIX thread
(:class:`ThreadStatePin`, about 30% less CPU per order). SocketAcceptor (one I/O thread), MemoryStore, no log
(the binding accepts a SocketAcceptor without a LogFactory), no data dictionary unless ``--dictionary``.

Run from the repository root::

    python -m bench.floor --port 9878 --sessions CLIENT1,CLIENT2,CLIENT3,CLIENT4
    python -m bench.floor --port 9878 --dictionary fix_specs/FIX44-venue.xml   # validate like the gateway

Any Username/Password is accepted. Runs until SIGTERM or SIGINT, then stops the acceptor and exits 0.
"""

from __future__ import annotations

import argparse
import ctypes
import signal
import sys
import tempfile
import threading
import traceback
from pathlib import Path

import quickfix as fix

SENDER_COMP_ID = "EXCH"


class ThreadStatePin:
    """Keep a Python thread state alive on each QuickFIX thread that calls back into Python.

    The binding enters Python with ``PyGILState_Ensure``/``Release``; on a thread Python did not create,
    each outermost callback otherwise builds and frees a whole thread state (with an mmap/munmap of its 16 KB
    frame stack in CPython 3.11). One extra, never released ``PyGILState_Ensure`` per thread keeps it, so
    later callbacks only take the GIL. Costs one leaked thread state per QuickFIX thread.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.pinned: set[int] = set()

    def __call__(self) -> None:
        if self.enabled and threading.get_ident() not in self.pinned:
            self.pinned.add(threading.get_ident())
            ctypes.pythonapi.PyGILState_Ensure()  # called with the GIL held: only bumps the nesting count


class FloorApplication(fix.Application):  # type: ignore[misc]
    """Answers 35=D with 35=8 150=0 39=0 echoing ClOrdID, Symbol, Side and OrderQty; ignores everything else.

    Every callback body is wrapped in try/except: an exception escaping into the binding hangs the process.
    """

    def __init__(self, pin: ThreadStatePin) -> None:
        super().__init__()
        self.pin = pin
        self.order_id = 0
        self.errors = 0
        # One ExecutionReport reused for every answer: building a Message costs more than resetting fields.
        self.er = fix.Message()
        self.er.getHeader().setField(fix.BeginString(fix.BeginString_FIX44))
        self.er.getHeader().setField(fix.MsgType(fix.MsgType_ExecutionReport))
        for tag, value in ((150, "0"), (39, "0"), (14, "0"), (6, "0")):
            self.er.setField(tag, value)

    def onCreate(self, sessionID: fix.SessionID) -> None:
        pass

    def onLogon(self, sessionID: fix.SessionID) -> None:
        pass

    def onLogout(self, sessionID: fix.SessionID) -> None:
        pass

    def toAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        try:
            self.pin()
        except Exception:
            self.errors += 1

    def fromAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        try:  # any Username/Password is accepted
            self.pin()
        except Exception:
            self.errors += 1

    def toApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        pass

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        try:
            self.pin()
            if message.getHeader().getField(35) != "D":
                return
            self.order_id += 1
            oid = str(self.order_id)
            er = self.er
            get = message.getField
            qty = get(38)
            er.setField(37, oid)
            er.setField(17, oid)
            er.setField(11, get(11))
            er.setField(55, get(55))
            er.setField(54, get(54))
            er.setField(38, qty)
            er.setField(151, qty)
            fix.Session.sendToTarget(er, sessionID)
        except Exception:  # never let an exception into the binding (it would hang the process)
            self.errors += 1
            if self.errors <= 5:
                traceback.print_exc()


def settings_text(port: int, sessions: list[str], store_dir: str, dictionary: str | None = None) -> str:
    """QuickFIX settings: one acceptor port, one [SESSION] per client CompID, always in session."""
    lines = [
        "[DEFAULT]",
        "ConnectionType=acceptor",
        "BeginString=FIX.4.4",
        f"SenderCompID={SENDER_COMP_ID}",
        f"SocketAcceptPort={port}",
        "StartTime=00:00:00",
        "EndTime=00:00:00",
        *(["UseDataDictionary=Y", f"DataDictionary={dictionary}"] if dictionary else ["UseDataDictionary=N"]),
        "SocketNodelay=Y",
        "SocketReuseAddress=Y",
        f"FileStorePath={store_dir}",
        f"FileLogPath={store_dir}",
    ]
    for comp_id in sessions:
        lines += ["", "[SESSION]", f"TargetCompID={comp_id}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Start the acceptor, wait for SIGTERM/SIGINT, stop it, exit 0."""
    parser = argparse.ArgumentParser(description="Bare QuickFIX acceptor: one fixed ER per NewOrderSingle")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--sessions",
        default="CLIENT1,CLIENT2,CLIENT3,CLIENT4",
        help="comma-separated client CompIDs (TargetCompID of each session)",
    )
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="don't pin a Python thread state on the QuickFIX thread (to measure the effect)",
    )
    parser.add_argument(
        "--file-store",
        action="store_true",
        help="persist messages in a QuickFIX FileStore (as the gateway does) instead of memory",
    )
    parser.add_argument(
        "--dictionary", default=None, help="validate incoming messages with this dictionary (as the gateway does)"
    )
    args = parser.parse_args(argv)
    sessions = [s for s in args.sessions.split(",") if s]

    # Block SIGTERM/SIGINT before the acceptor starts its threads (they inherit the mask), then wait for one
    # with sigwait: no handler race, and `import quickfix` resetting SIGINT's handler no longer matters.
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)

    with tempfile.TemporaryDirectory(prefix="floor-") as tmp:
        cfg = Path(tmp) / "floor.cfg"
        dictionary = str(Path(args.dictionary).resolve()) if args.dictionary else None
        cfg.write_text(settings_text(args.port, sessions, tmp, dictionary))
        settings = fix.SessionSettings(str(cfg))
        app = FloorApplication(ThreadStatePin(enabled=not args.no_pin))
        store = fix.FileStoreFactory(settings) if args.file_store else fix.MemoryStoreFactory()
        acceptor = fix.SocketAcceptor(app, store, settings)  # no LogFactory: nothing is logged
        acceptor.start()
        print(f"floor: listening on {args.port} for {','.join(sessions)}", flush=True)
        signum = signal.sigwait(stop_signals)  # blocks without holding the GIL
        print(f"floor: {signal.Signals(signum).name}, stopping", flush=True)
        acceptor.stop(True)
        del acceptor
    if app.errors:
        print(f"floor: {app.errors} callback errors", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
