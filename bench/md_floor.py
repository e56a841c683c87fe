"""The market-data fan-out floor: how fast a bare QuickFIX acceptor can send one message to every session.

Why: the venue's latency target for market data is per (subscriber, message). One engine event goes to every
subscriber as its own FIX message (each session has its own MsgSeqNum, so the bytes differ), and the sends happen
one after another on the one thread that owns the SocketAcceptor. The k-th session of N therefore waits for k
sends, whatever the gateway does around them: the time from "message ready" to "handed to session k" is a lower
bound for that session's latency. This script measures exactly that, with nothing else running in the acceptor.

One run: a bare SocketAcceptor (no log, no dictionary checks on output, the sessions spread over ``--ports``
ports as the gateway does) and a client process holding ``--sessions`` raw sessions that only read and discard.
Once every session is logged on, ``--rounds`` times at ``--rate`` rounds/s (the acceptor is polled in between, as
in the gateway loop): build one MarketDataIncrementalRefresh with one entry, then ``sendToTarget`` it to every
session in turn, stamping the clock after each send. Reported: fan-out time per round, CPU per send, and the
distribution over all (round, session) pairs of "ready -> handed to the session": p50/p99/max.

    python -m bench.md_floor --sessions 1000 --rounds 50 --store file     # FileStore, PersistMessages=Y
    python -m bench.md_floor --sessions 1000 --rounds 50 --store memory   # no persistence at all
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import simplefix

SENDER = "EXCH"
PREFIX = "MD"


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


# ---------------------------------------------------------------------------------------------------- client


async def hold_sessions(ports: list[int], n: int) -> None:
    """Log on ``n`` sessions and read (discard) until stdin closes."""
    received = 0

    async def one(k: int) -> None:
        nonlocal received
        reader, writer = await asyncio.open_connection("127.0.0.1", ports[k % len(ports)])
        logon = simplefix.FixMessage()
        for tag, value in ((8, "FIX.4.4"), (35, "A"), (49, f"{PREFIX}{k + 1}"), (56, SENDER), (34, 1)):
            logon.append_pair(tag, value, header=tag != 8)
        logon.append_utc_timestamp(52, precision=3, header=True)
        for tag, value in ((98, 0), (108, 30), (141, "Y")):
            logon.append_pair(tag, value)
        writer.write(logon.encode())
        while data := await reader.read(1 << 16):
            received += len(data)

    tasks = [asyncio.create_task(one(k)) for k in range(n)]
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # the driver closes stdin at the end
    for t in tasks:
        t.cancel()
    print(json.dumps({"bytes_received": received}), flush=True)


# ---------------------------------------------------------------------------------------------------- acceptor


def settings_text(ports: list[int], n: int, store_dir: str) -> str:
    lines = [
        "[DEFAULT]",
        "ConnectionType=acceptor",
        "BeginString=FIX.4.4",
        f"SenderCompID={SENDER}",
        "StartTime=00:00:00",
        "EndTime=00:00:00",
        "UseDataDictionary=N",
        "SocketNodelay=Y",
        "SocketReuseAddress=Y",
        f"FileStorePath={store_dir}",
        "PersistMessages=Y",
        "TimestampPrecision=6",
    ]
    for k in range(n):
        lines += ["", "[SESSION]", f"TargetCompID={PREFIX}{k + 1}", f"SocketAcceptPort={ports[k % len(ports)]}"]
    return "\n".join(lines) + "\n"


def run(sessions: int, n_ports: int, rounds: int, rate: float, store_kind: str) -> dict[str, Any]:
    import quickfix as fix  # imported here: the client process does not need it

    class App(fix.Application):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.logged_on: list[Any] = []

        def onCreate(self, sid: Any) -> None:
            pass

        def onLogon(self, sid: Any) -> None:
            self.logged_on.append(sid)

        def onLogout(self, sid: Any) -> None:
            pass

        def toAdmin(self, msg: Any, sid: Any) -> None:
            pass

        def fromAdmin(self, msg: Any, sid: Any) -> None:
            pass

        def toApp(self, msg: Any, sid: Any) -> None:
            pass

        def fromApp(self, msg: Any, sid: Any) -> None:
            pass

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ports = free_ports(n_ports)
    with tempfile.TemporaryDirectory(prefix="md-floor-") as tmp:
        cfg = Path(tmp) / "floor.cfg"
        cfg.write_text(settings_text(ports, sessions, tmp))
        settings = fix.SessionSettings(str(cfg))
        app = App()
        store = fix.FileStoreFactory(settings) if store_kind == "file" else fix.MemoryStoreFactory()
        acceptor = fix.SocketAcceptor(app, store, settings)
        acceptor.poll()  # the first poll binds the ports (as in the gateway, driven by poll)
        client = subprocess.Popen(
            [sys.executable, "-m", "bench.md_floor", "--client", "--ports", ",".join(map(str, ports)),
             "--sessions", str(sessions)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while len(app.logged_on) < sessions:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {len(app.logged_on)} of {sessions} sessions logged on")
            acceptor.poll()
        sids = list(app.logged_on)
        send = fix.Session.sendToTarget
        stamps: list[float] = []  # microseconds from "message ready" to "handed to session k"
        fanouts: list[float] = []
        cpu = 0.0
        period = 1.0 / rate
        next_round = time.monotonic()
        for r in range(rounds):
            while time.monotonic() < next_round:
                acceptor.poll()
            next_round += period
            msg = fix.Message()
            msg.getHeader().setField(35, "X")
            group = fix.Group(268, 279)
            for tag, value in ((279, "1"), (269, "0"), (270, "100.00"), (271, str(100 + r)), (83, str(r + 1))):
                group.setField(tag, value)
            msg.addGroup(group)
            c0 = time.process_time()
            t0 = time.perf_counter()
            clock = time.perf_counter
            for sid in sids:
                send(msg, sid)
                stamps.append((clock() - t0) * 1e6)
            fanouts.append((clock() - t0) * 1e3)
            cpu += time.process_time() - c0
        assert client.stdin is not None and client.stdout is not None
        end = time.monotonic() + 2
        while time.monotonic() < end:  # let the client read the tail
            acceptor.poll()
        client.stdin.close()
        received = json.loads(client.stdout.readline() or "{}")
        client.wait(timeout=30)
        acceptor.stop()
    stamps.sort()
    n = len(stamps)
    return {
        "store": store_kind,
        "sessions": sessions,
        "ports": n_ports,
        "rounds": rounds,
        "sends": n,
        "fanout_ms_median": round(statistics.median(fanouts), 2),
        "fanout_ms_max": round(max(fanouts), 2),
        "cpu_us_per_send": round(cpu / n * 1e6, 1),
        "ready_to_handed_ms": {
            "p50": round(stamps[n // 2] / 1000, 2),
            "p99": round(stamps[int(n * 0.99)] / 1000, 2),
            "max": round(stamps[-1] / 1000, 2),
        },
        "client_bytes": received.get("bytes_received"),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sessions", type=int, default=1000)
    p.add_argument("--ports", default="10", help="number of ports (acceptor) / the port list (client)")
    p.add_argument("--rounds", type=int, default=50)
    p.add_argument("--rate", type=float, default=10.0, help="rounds per second")
    p.add_argument("--store", choices=("file", "memory"), default="file")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.client:
        asyncio.run(hold_sessions([int(x) for x in args.ports.split(",")], args.sessions))
        return 0
    print(f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; load {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
    for _ in range(args.repeat):
        print(json.dumps(run(args.sessions, int(args.ports), args.rounds, args.rate, args.store)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
