"""Many market-data sessions in one process: asyncio + raw sockets, hand-framed parsing, one book per session.

Driven by :mod:`bench.md_bench` over stdin/stdout (one JSON object per line), or by hand::

    python -m bench.md_clients --ports 9901,9902 --sessions 100 --password mdbench

Every session MD<first>..MD<first+n-1> connects to ``ports[i % len(ports)]`` (the order of the venue config's
``port`` per session), logs on (simplefix encodes the Logon and the MarketDataRequest: once per session), subscribes
to one symbol, full depth, entry types 0,1,2, and then reads for as long as the run lasts:

* Framing splits the stream on the ``<SOH>10=xxx<SOH>`` trailer; only MsgSeqNum (34), MsgType (35) and, for W and X,
  the entries (279/269/270/271/83) are read. The CheckSum is not verified (loopback).
* The body of an X (from ``268=`` to the trailer) is byte-identical for every subscriber of the venue's view, so its
  parse is cached by those bytes: each session still applies the entries *it* received to *its own* book and checks
  their RptSeq, but the splitting into fields happens once per distinct message, not once per session.
* TestRequests are answered with a Heartbeat carrying their TestReqID (the venue's slow-consumer probe needs this).
* A MsgSeqNum above the expected one is a sequence gap and an entry whose RptSeq is not the last one plus one is a
  RptSeq gap: both are counted, nothing is recovered (a benchmark must not hide loss).
* Every X is time-stamped (``time.monotonic_ns``, the system-wide CLOCK_MONOTONIC) when the read that returned it
  completes; the first RptSeq of the X identifies the message across sessions.

Protocol with the driver: after every session has its first snapshot, print ``{"event": "ready", ...}``; then read one
command line ``{"cmd": "finish", "truth": {...}, "sendlog": PATH, "timeout": S}``: wait until every live session has
applied the truth's RptSeq (or the timeout), print ``{"event": "caught_up", ...}``, compare every book with the truth,
match X messages with the send log (see :func:`latencies`), print ``{"event": "result", ...}``, log out and exit.
End of file on stdin ends the process too. Everything is bounded by ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import resource
import signal
import sys
import time
from array import array
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import simplefix

from bench.loadgen import LOGON_REFUSED, Clock, frame

SOH = b"\x01"
TRAILER = b"\x0110="
PARSE_CACHE_LIMIT = 4096
Entry = tuple[int, bytes, bytes, bytes | None, bytes | None]  # RptSeq, MDUpdateAction, MDEntryType, price, size
Signature = tuple[str, str, Decimal]  # (action or "T" for a trade, MDEntryType, price): what caused an X


def emit(obj: dict[str, Any]) -> None:
    """One JSON line to the driver."""
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def parse_x(body: bytes) -> tuple[tuple[Entry, ...], Signature | None]:
    """The entries of an X body (``268=...`` up to the trailer) and the signature of the command behind it.

    The signature is the first trade's price if the X has a trade, else the first entry's action, side and price:
    what :mod:`bench.md_bench` logs for each order it sends, to pair X messages with orders.
    """
    entries: list[list[Any]] = []
    cur: list[Any] | None = None
    for f in body.split(SOH):
        tag, _, val = f.partition(b"=")
        if tag == b"279":
            cur = [0, val, b"", None, None]
            entries.append(cur)
        elif cur is None:
            continue
        elif tag == b"269":
            cur[2] = val
        elif tag == b"270":
            cur[3] = val
        elif tag == b"271":
            cur[4] = val
        elif tag == b"83":
            cur[0] = int(val)
    out = tuple((e[0], e[1], e[2], e[3], e[4]) for e in entries)
    sig: Signature | None = None
    for e in out:
        if e[2] == b"2" and e[3] is not None:
            sig = ("T", "2", Decimal(e[3].decode()))
            break
    if sig is None and out and out[0][3] is not None:
        first = out[0]
        sig = (first[1].decode(), first[2].decode(), Decimal(first[3].decode()))
    return out, sig


def parse_w(body: bytes) -> tuple[int, list[tuple[bytes, bytes, bytes | None]]]:
    """RptSeq (body, before the group) and the (MDEntryType, price, size) entries of a W body."""
    rpt = 0
    entries: list[list[Any]] = []
    in_group = False
    for f in body.split(SOH):
        tag, _, val = f.partition(b"=")
        if tag == b"268":
            in_group = True
        elif not in_group:
            if tag == b"83":
                rpt = int(val)
        elif tag == b"269":
            entries.append([val, b"", None])
        elif entries and tag == b"270":
            entries[-1][1] = val
        elif entries and tag == b"271":
            entries[-1][2] = val
    return rpt, [(e[0], e[1], e[2]) for e in entries]


@dataclass
class Shared:
    """What the sessions share: the X parse cache, X signatures by first RptSeq, the clock, counters."""

    symbol: str
    clock: Clock = field(default_factory=Clock)
    parse_cache: dict[bytes, tuple[tuple[Entry, ...], int, Signature | None]] = field(default_factory=dict)
    signatures: dict[int, Signature | None] = field(default_factory=dict)
    parses: int = 0
    subscribed: int = 0
    all_subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    expected: int = 0


class MdSession(asyncio.Protocol):
    """One market-data session: logon, one subscription, a book, counters and X receive times."""

    def __init__(self, shared: Shared, comp_id: str, password: str, heartbeat: int) -> None:
        self.shared = shared
        self.comp_id = comp_id
        self.password = password
        self.heartbeat = heartbeat
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.out_seq = 1
        self.expected_seq = 1
        self.logged_on = False
        self.subscribed = False
        self.closed = False
        self.logout_text: str | None = None  # Text of a Logout the venue started
        self.logging_out = False
        self.refused = False  # the venue refused the Logon while it verified the password: log on again
        self.rpt = -1  # last RptSeq applied; -1 until the snapshot
        self.bids: dict[bytes, bytes | None] = {}
        self.asks: dict[bytes, bytes | None] = {}
        self.x_first = array("q")  # first RptSeq of each X received
        self.x_time = array("q")  # its receive time (monotonic ns)
        self.counts = {
            "X": 0,
            "W": 0,
            "test_requests": 0,
            "seq_gaps": 0,
            "rpt_gaps": 0,
            "dup_entries": 0,
            "x_before_snapshot": 0,
            "rejects_Y": 0,
            "session_rejects_3": 0,
            "other": 0,
        }
        self.last_sent = time.monotonic()
        self.head = b"\x0149=%s\x0156=EXCH\x0134=" % comp_id.encode()

    # ---------------------------------------------------------------- sending

    def _encode(self, msg_type: str, fields: list[tuple[int, Any]]) -> bytes:
        """Logon and MarketDataRequest: once per session, so simplefix is cheap enough."""
        m = simplefix.FixMessage()
        m.append_pair(8, "FIX.4.4", header=True)
        m.append_pair(35, msg_type, header=True)
        m.append_pair(49, self.comp_id, header=True)
        m.append_pair(56, "EXCH", header=True)
        m.append_pair(34, self.out_seq, header=True)
        m.append_pair(52, self.shared.clock.now().decode(), header=True)
        for tag, value in fields:
            m.append_pair(tag, value)
        self.out_seq += 1
        return bytes(m.encode())

    def _admin(self, msg_type: bytes, fields: bytes = b"") -> bytes:
        """A hand-encoded admin message (Heartbeat, Logout) with the next MsgSeqNum."""
        body = b"35=%s%s%d\x0152=%s\x01%s" % (msg_type, self.head, self.out_seq, self.shared.clock.now(), fields)
        self.out_seq += 1
        return frame(body)

    def retry_logon(self) -> None:
        """Start again after a refused Logon (a new connection, sequence numbers from 1: 141=Y)."""
        self.transport, self.closed, self.refused = None, False, False
        self.buf.clear()
        self.out_seq = self.expected_seq = 1

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)
            self.last_sent = time.monotonic()

    def subscribe(self) -> None:
        fields: list[tuple[int, Any]] = [
            (262, f"{self.comp_id}-1"),
            (263, "1"),
            (264, 0),
            (265, 1),
            (267, 3),
            (269, "0"),
            (269, "1"),
            (269, "2"),
            (146, 1),
            (55, self.shared.symbol),
        ]
        self.write(self._encode("V", fields))

    def logout(self) -> None:
        if self.logged_on and not self.closed:
            self.logging_out = True
            self.write(self._admin(b"5"))

    # ---------------------------------------------------------------- asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        fields: list[tuple[int, Any]] = [
            (98, 0),
            (108, self.heartbeat),
            (141, "Y"),
            (553, self.comp_id),
            (554, self.password),
        ]
        self.write(self._encode("A", fields))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.logged_on = False

    def data_received(self, data: bytes) -> None:
        now = time.monotonic_ns()
        buf = self.buf
        if buf:
            buf += data
            data = bytes(buf)
            buf.clear()
        start = 0
        n = len(data)
        while True:
            i = data.find(TRAILER, start)
            if i < 0 or i + 8 > n:
                break
            end = i + 8
            self.on_message(data[start:end], i - start, now)
            start = end
        if start < n:
            buf += data[start:]

    # ---------------------------------------------------------------- messages

    def on_message(self, msg: bytes, trailer: int, now: int) -> None:
        j = msg.find(b"\x0135=") + 4
        k = msg.find(SOH, j)
        msg_type = msg[j:k]
        s = msg.find(b"\x0134=", k - 1) + 4
        seq = int(msg[s : msg.find(SOH, s)])
        if seq == self.expected_seq:
            self.expected_seq = seq + 1
        elif seq > self.expected_seq:
            self.counts["seq_gaps"] += 1
            self.expected_seq = seq + 1
        if msg_type == b"X":
            self.on_x(msg, trailer, now)
        elif msg_type == b"1":
            self.counts["test_requests"] += 1
            t = msg.find(b"\x01112=") + 5
            self.write(self._admin(b"0", b"112=%s\x01" % msg[t : msg.find(SOH, t)]))
        elif msg_type == b"0":
            pass
        elif msg_type == b"W":
            self.on_w(msg, trailer)
        elif msg_type == b"A":
            self.logged_on = True
            self.subscribe()
        elif msg_type == b"5" and not self.logged_on and LOGON_REFUSED in msg:
            self.refused = True  # the venue's first sight of this password: it answers from its cache next time
            if self.transport is not None:
                self.transport.close()
        elif msg_type == b"5":
            if not self.logging_out:  # the venue ended the session: keep its reason, answer
                t = msg.find(b"\x0158=")
                text = msg[t + 4 : msg.find(SOH, t + 4)].decode(errors="replace") if t >= 0 else ""
                self.logout_text = text or "(no text)"
                self.write(self._admin(b"5"))
            self.logged_on = False
            if self.transport is not None:
                self.transport.close()
        elif msg_type == b"4":
            t = msg.find(b"\x0136=") + 4
            self.expected_seq = int(msg[t : msg.find(SOH, t)])
        elif msg_type == b"Y":
            self.counts["rejects_Y"] += 1
        elif msg_type == b"3":
            self.counts["session_rejects_3"] += 1
        else:
            self.counts["other"] += 1

    def on_x(self, msg: bytes, trailer: int, now: int) -> None:
        shared = self.shared
        body = msg[msg.find(b"\x01268=") + 1 : trailer]
        parsed = shared.parse_cache.get(body)
        if parsed is None:
            entries, sig = parse_x(body)
            first = entries[0][0] if entries else 0
            parsed = (entries, first, sig)
            shared.parses += 1
            cache = shared.parse_cache
            if len(cache) >= PARSE_CACHE_LIMIT:
                del cache[next(iter(cache))]
            cache[body] = parsed
            shared.signatures.setdefault(first, sig)
        entries, first, _ = parsed
        counts = self.counts
        counts["X"] += 1
        if self.rpt < 0:
            counts["x_before_snapshot"] += 1
            return
        self.x_first.append(first)
        self.x_time.append(now)
        rpt = self.rpt
        bids, asks = self.bids, self.asks
        for seq, action, et, px, size in entries:
            if seq <= rpt:
                counts["dup_entries"] += 1
                continue
            if seq != rpt + 1:
                counts["rpt_gaps"] += 1
            rpt = seq
            if et == b"0":
                side = bids
            elif et == b"1":
                side = asks
            else:
                continue
            if action == b"2":
                side.pop(px, None)  # type: ignore[arg-type]
            else:
                side[px] = size  # type: ignore[index]
        self.rpt = rpt

    def on_w(self, msg: bytes, trailer: int) -> None:
        h = msg.find(b"\x0156=")
        body = msg[msg.find(SOH, h + 4) + 1 : trailer]
        rpt, entries = parse_w(body)
        self.counts["W"] += 1
        self.bids.clear()
        self.asks.clear()
        for et, px, size in entries:
            if et == b"0":
                self.bids[px] = size
            elif et == b"1":
                self.asks[px] = size
        self.rpt = rpt
        if not self.subscribed:
            self.subscribed = True
            shared = self.shared
            shared.subscribed += 1
            if shared.subscribed >= shared.expected:
                shared.all_subscribed.set()

    # ---------------------------------------------------------------- results

    def book(self) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]:
        def conv(side: dict[bytes, bytes | None]) -> dict[Decimal, Decimal]:
            return {Decimal(p.decode()): Decimal((s or b"0").decode()) for p, s in side.items()}

        return conv(self.bids), conv(self.asks)


def raise_nofile() -> tuple[int, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def percentile(sorted_values: list[int], pct: float) -> float | None:
    """Nearest-rank percentile of sorted nanosecond values, in milliseconds."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * pct // 100))
    return round(sorted_values[int(rank) - 1] / 1e6, 3)


def latencies(
    sessions: list[MdSession], signatures: dict[int, Signature | None], sendlog: list[list[Any]]
) -> dict[str, Any]:
    """Pair the k-th distinct X (by first RptSeq) with the k-th order of the send log and check they match.

    Every order of the flow changes the book of the one symbol, so the venue publishes exactly one X per order, in
    order-entry order (one order-entry session, processed in arrival order). The pairing is checked, not assumed:
    the X's signature (trade price, or first entry's action/side/price) must equal the one logged for the order.
    Latency = X receive time - order send time, both CLOCK_MONOTONIC, for every (session, X) pair that matched.
    """
    firsts = sorted(signatures)
    send_ns: dict[int, int] = {}
    mismatched = 0
    for k, first in enumerate(firsts):
        if k >= len(sendlog):
            mismatched += 1
            continue
        t, action, et, price = sendlog[k]
        sig = signatures[first]
        if sig is not None and (sig[0], sig[1], sig[2]) == (action, et, Decimal(price)):
            send_ns[first] = int(t)
        else:
            mismatched += 1
    pooled: list[int] = []
    per_session_p50: list[float | None] = []
    first_send = int(sendlog[0][0]) if sendlog else 0
    worst_by_second: dict[int, int] = {}  # second of the flow (by send time) -> worst latency of an X sent then
    for s in sessions:
        mine = []
        for f, t in zip(s.x_first, s.x_time, strict=True):
            sent = send_ns.get(f)
            if sent is None:
                continue
            lat = t - sent
            mine.append(lat)
            sec = (sent - first_send) // 1_000_000_000
            if lat > worst_by_second.get(sec, 0):
                worst_by_second[sec] = lat
        mine.sort()
        per_session_p50.append(percentile(mine, 50))
        pooled.extend(mine)
    pooled.sort()
    last_recv = max((s.x_time[-1] for s in sessions if len(s.x_time)), default=0)
    last_send = int(sendlog[-1][0]) if sendlog else 0
    return {
        "orders_logged": len(sendlog),
        "x_distinct": len(firsts),
        "x_matched": len(send_ns),
        "x_mismatched": mismatched,
        "samples": len(pooled),
        "latency_ms": {
            "p50": percentile(pooled, 50),
            "p99": percentile(pooled, 99),
            "p99.9": percentile(pooled, 99.9),
            "max": percentile(pooled, 100),
        },
        "worst_ms_by_second": [
            round(worst_by_second.get(k, 0) / 1e6, 1) for k in range(max(worst_by_second, default=-1) + 1)
        ],
        "p50_ms_first_session": per_session_p50[0] if per_session_p50 else None,
        "p50_ms_last_session": per_session_p50[-1] if per_session_p50 else None,
        "first_send_to_last_recv_s": round((last_recv - first_send) / 1e9, 3) if last_recv and first_send else None,
        "flow_s": round((last_send - first_send) / 1e9, 3),
    }


def compare_books(sessions: list[MdSession], truth: dict[str, Any]) -> dict[str, Any]:
    want_bids = {Decimal(p): Decimal(q) for p, q in truth["bids"]}
    want_asks = {Decimal(p): Decimal(q) for p, q in truth["asks"]}
    exact = 0
    bad: list[str] = []
    for s in sessions:
        bids, asks = s.book()
        if bids == want_bids and asks == want_asks and s.rpt == truth["rpt_seq"]:
            exact += 1
        elif len(bad) < 5:
            bad.append(f"{s.comp_id}: rpt {s.rpt} bids {len(bids)} asks {len(asks)} closed {s.closed}")
    return {"books_exact": exact, "books_total": len(sessions), "inexact_samples": bad}


async def read_command(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    line = await reader.readline()
    if not line:
        return None
    return dict(json.loads(line))


async def connect(
    loop: asyncio.AbstractEventLoop, s: MdSession, host: str, port: int, sem: asyncio.Semaphore, deadline: float
) -> None:
    """Connect and log on; a Logon refused while the venue verifies the password is sent again until ``deadline``."""
    async with sem:
        while True:
            for attempt in range(5):
                try:
                    await loop.create_connection(lambda: s, host, port)
                    break
                except OSError:
                    await asyncio.sleep(0.2 * (attempt + 1))
            else:
                s.closed = True
                return
            while not (s.logged_on or s.closed) and time.monotonic() < deadline:
                await asyncio.sleep(0.01)  # polled: the Logon's answer arrives through the protocol callbacks
            # Refused while the venue verified the password, or closed before the Logon's answer for any other
            # reason (each run saw one or two such sessions among 1,000): try again until the deadline.
            if s.logged_on or time.monotonic() >= deadline:
                return
            s.retry_logon()
            await asyncio.sleep(0.05)


async def run(args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    t_start = time.monotonic()
    nofile = raise_nofile()
    shared = Shared(args.symbol)
    shared.expected = args.sessions
    ports = [int(p) for p in args.ports.split(",")]
    sessions = [
        MdSession(shared, f"{args.prefix}{i}", args.password, args.heartbeat)
        for i in range(args.first, args.first + args.sessions)
    ]
    sem = asyncio.Semaphore(args.connect_concurrency)
    deadline = time.monotonic() + args.setup_timeout
    connects = [connect(loop, s, args.host, ports[k % len(ports)], sem, deadline) for k, s in enumerate(sessions)]
    await asyncio.gather(*connects)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(shared.all_subscribed.wait(), args.setup_timeout)
    failed = [s.comp_id for s in sessions if not s.subscribed]
    emit(
        {
            "event": "ready",
            "sessions": len(sessions),
            "subscribed": shared.subscribed,
            "failed": failed[:10],
            "failed_count": len(failed),
            "setup_s": round(time.monotonic() - t_start, 2),
            "nofile": nofile,
        }
    )

    async def keepalive() -> None:
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for s in sessions:
                if s.logged_on and now - s.last_sent > s.heartbeat * 0.8:
                    s.write(s._admin(b"0"))

    ka = loop.create_task(keepalive())
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    gc.collect()
    gc.freeze()  # the sessions live for the whole run: keep the cyclic GC from walking them during the flow
    remaining = args.max_seconds - (time.monotonic() - t_start)
    try:
        cmd = await asyncio.wait_for(read_command(reader), max(remaining, 1.0))
    except TimeoutError:
        cmd = None
    if cmd is not None and cmd.get("cmd") == "finish":
        truth = cmd["truth"]
        target = int(truth["rpt_seq"])
        t_wait = time.monotonic()
        deadline = t_wait + float(cmd.get("timeout", 30.0))
        while time.monotonic() < deadline and any(s.rpt < target and not s.closed for s in sessions):
            await asyncio.sleep(0.01)
        behind = sum(1 for s in sessions if s.rpt < target)
        emit({"event": "caught_up", "behind": behind, "waited_s": round(time.monotonic() - t_wait, 3)})
        sendlog = json.loads(Path(cmd["sendlog"]).read_text())
        totals: dict[str, int] = {}
        for s in sessions:
            for k, v in s.counts.items():
                totals[k] = totals.get(k, 0) + v
        result: dict[str, Any] = {
            "event": "result",
            "counts": totals,
            "x_parses": shared.parses,
            "closed_sessions": sum(1 for s in sessions if s.closed),
            "logout_texts": sorted({s.logout_text for s in sessions if s.logout_text})[:5],
            **compare_books(sessions, truth),
            **latencies(sessions, shared.signatures, sendlog),
        }
        emit(result)
    ka.cancel()
    for s in sessions:
        s.logout()
    deadline = time.monotonic() + args.logout_timeout
    while time.monotonic() < deadline and any(not s.closed for s in sessions):
        await asyncio.sleep(0.05)
    for s in sessions:
        if s.transport is not None and not s.closed:
            s.transport.abort()
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Many market-data sessions in one asyncio process (see module docstring)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--ports", required=True, help="comma-separated; session k connects to ports[k %% len(ports)]")
    p.add_argument("--sessions", type=int, required=True)
    p.add_argument("--first", type=int, default=1, help="number of the first session")
    p.add_argument("--prefix", default="MD", help="SenderCompID prefix (also the Username)")
    p.add_argument("--password", required=True)
    p.add_argument("--symbol", default="AAPL")
    p.add_argument("--heartbeat", type=int, default=30)
    p.add_argument("--connect-concurrency", type=int, default=100)
    p.add_argument("--setup-timeout", type=float, default=280.0)  # 1,000 first logons: ~40 s of PBKDF2
    p.add_argument("--logout-timeout", type=float, default=10.0)
    p.add_argument("--max-seconds", type=float, default=900.0, help="hard bound on the whole process")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.alarm(int(args.max_seconds))  # the hard bound: SIGALRM's default action ends the process
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
