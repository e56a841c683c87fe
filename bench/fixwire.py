"""Many FIX sessions in one process, hand-framed, with the checks a soak needs: for the soak and the reconnect storm.

Why not :class:`fixclient.FixSession`: it costs ~170 µs of client CPU per order (simplefix), and a soak at 1,000
orders/s with 50 market-data sessions on a 2-core machine cannot spend that beside the gateway. Here messages are
byte templates (as in :mod:`bench.loadgen`), replies are framed on the ``<SOH>10=xxx<SOH>`` trailer, and a
market-data message sent to many subscribers is split into fields once (:data:`X_CACHE`).

What every session checks, because a soak must notice loss and duplication rather than hide them:

* **MsgSeqNum**, as a FIX engine does: messages are processed strictly in sequence; one above the expected number is
  held back and a ResendRequest (``16=0``) asks for the gap; the gap is filled by resent messages (``43=Y``) and
  SequenceReset-GapFill. A message below the expected number is a duplicate: harmless with PossDupFlag (a resend
  overlapping what already arrived), an error without it. Whatever is still held or owed at the end is lost.
* **Order entry**: every request (D, F, G) is answered (first ExecutionReport or OrderCancelReject carrying its
  ClOrdID: the latency sample); ExecIDs of one session rise strictly (the venue numbers executions in processing
  order); every ExecutionReport is about an order the session knows, or a new one; the session's own model of its
  open orders (by OrderID: symbol, side, price, LeavesQty) is compared with the venue's book at the end.
* **Market data**: RptSeq rises by exactly one per entry of a view (a gap is loss, a repeat not covered by a
  snapshot is a duplicate); each periodic snapshot (W) of a view the session is in step with must equal the session's
  own book at that RptSeq; the books are compared with the venue's at the end.

One :class:`Loop` (``selectors``) drives every session of the process; nothing here blocks except ``connect``.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import random
import selectors
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar

from bench.loadgen import Clock, field_value, frame
from fixclient.session import LOGON_REFUSED

SOH = b"\x01"
TRAILER = b"\x0110="
RECV_SIZE = 65536
TERMINAL = frozenset((b"2", b"3", b"4", b"8", b"C"))  # OrdStatus after which an order is gone
COD_TEXT = b"cancelled on disconnect"
SAMPLE_LIMIT = 5
X_CACHE_LIMIT = 8192

DOWN, LOGON_SENT, UP, LOGOUT_SENT = "down", "logon_sent", "up", "logout_sent"
RETRY_FIRST, RETRY_MAX = 0.05, 1.0  # seconds before a refused Logon is sent again, doubling


class LatencyHistogram:
    """Log-spaced buckets (2% wide) of microseconds: small, mergeable across processes, percentiles within 2%."""

    RATIO = 1.02
    _LOG = math.log(RATIO)

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.total = 0

    def add_ns(self, ns: int) -> None:
        b = int(math.log(max(ns, 1000) / 1000) / self._LOG)
        self.counts[b] = self.counts.get(b, 0) + 1
        self.total += 1

    def merge(self, counts: dict[Any, int]) -> None:
        for b, n in counts.items():
            self.counts[int(b)] = self.counts.get(int(b), 0) + n
            self.total += n

    def percentile(self, pct: float) -> float | None:
        """Upper bound (µs) of the bucket holding the nearest-rank percentile."""
        if not self.total:
            return None
        rank = max(1, math.ceil(self.total * pct / 100))
        seen = 0
        for b in sorted(self.counts):
            seen += self.counts[b]
            if seen >= rank:
                return round(self.RATIO ** (b + 1), 1)
        return None

    def to_json(self) -> dict[str, int]:
        return {str(b): n for b, n in self.counts.items()}


def fields_of(msg: bytes) -> dict[bytes, bytes]:
    """Tag -> value of a message without repeating groups (the last value wins)."""
    out = {}
    for part in msg.split(SOH):
        tag, _, value = part.partition(b"=")
        out[tag] = value
    return out


# ---------------------------------------------------------------------- the event loop


class Loop:
    """A ``selectors`` loop over every connection of the process."""

    def __init__(self) -> None:
        self.sel = selectors.DefaultSelector()
        self.later: list[tuple[float, Callable[[], None]]] = []  # (monotonic time, callback): a few, short-lived

    def call_at(self, when: float, callback: Callable[[], None]) -> None:
        self.later.append((when, callback))

    def register(self, conn: Conn) -> None:
        assert conn.sock is not None
        self.sel.register(conn.sock, selectors.EVENT_READ, conn)

    def unregister(self, conn: Conn) -> None:
        if conn.sock is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(conn.sock)

    def want_write(self, conn: Conn, on: bool) -> None:
        if conn.sock is not None:
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if on else 0)
            self.sel.modify(conn.sock, events, conn)

    def add_reader(self, fileobj: Any, callback: Callable[[], None]) -> None:
        self.sel.register(fileobj, selectors.EVENT_READ, callback)

    def run_once(self, timeout: float) -> None:
        if self.later:
            now = time.monotonic()
            due = [cb for when, cb in self.later if when <= now]
            if due:
                self.later = [(when, cb) for when, cb in self.later if when > now]
                for callback in due:
                    callback()
            if self.later:
                timeout = min(timeout, max(0.0, min(when for when, _ in self.later) - now))
        for key, mask in self.sel.select(max(timeout, 0.0)):
            target = key.data
            if isinstance(target, Conn):
                if mask & selectors.EVENT_WRITE:
                    target.flush()
                if mask & selectors.EVENT_READ:
                    target.on_readable()
            else:
                target()

    def run_until(self, done: Callable[[], bool], timeout: float, tick: Callable[[], None] | None = None) -> bool:
        """Run until ``done()`` or ``timeout`` seconds; ``tick`` after every round. Returns ``done()``."""
        deadline = time.monotonic() + timeout
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.run_once(min(left, 0.05))
            if tick is not None:
                tick()
        return True


# ---------------------------------------------------------------------- one FIX session


@dataclass(eq=False)
class Conn:
    """A FIX session's connection, sequence numbers and session-level checks; subclasses handle the application."""

    loop: Loop
    comp_id: str
    password: str
    port: int
    host: str = "127.0.0.1"
    target: str = "EXCH"
    heartbeat: int = 30
    clock: Clock = field(default_factory=Clock)
    sock: socket.socket | None = None
    state: str = DOWN
    next_out: int = 1
    expected_in: int = 1
    held: dict[int, bytes] = field(default_factory=dict)
    resend_to: int = 0  # a ResendRequest is outstanding for everything up to this number
    buf: bytearray = field(default_factory=bytearray)
    out: bytearray = field(default_factory=bytearray)
    last_sent: float = 0.0
    logon_started: int = 0
    logon_ns: list[int] = field(default_factory=list)
    logout_texts: list[str] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    answered_test_requests: set[bytes] = field(default_factory=set)
    """TestReqIDs (112) of the Heartbeats read in sequence: everything the venue sent before each has been read."""

    ERRORS: ClassVar[tuple[str, ...]] = (
        "dup_seq",
        "unexpected_disconnects",
        "venue_resend_requests",
        "skipped_by_gap_fill",
        "bad_frames",
    )

    def __post_init__(self) -> None:
        self._logon_args: tuple[bool, float, int, int] = (False, RETRY_FIRST, 1, 1)
        for name in (*self.ERRORS, "gaps", "possdup_ignored", "logons", "drops", "messages", "logon_retries"):
            self.counts.setdefault(name, 0)
        self._head = b"\x0149=%s\x0156=%s\x0134=" % (self.comp_id.encode(), self.target.encode())

    # ---- wire
    def send(self, msg_type: bytes, fields: bytes, seq: int | None = None, poss_dup: bool = False) -> int:
        """Frame and send one message (``fields`` after the header, ending in SOH); returns its MsgSeqNum."""
        if seq is None:
            seq = self.next_out
            self.next_out += 1
        dup = b"43=Y\x01" if poss_dup else b""
        body = b"35=%s%s%d\x01%s52=%s\x01%s" % (msg_type, self._head, seq, dup, self.clock.now(), fields)
        self.write(frame(body))
        return seq

    def write(self, data: bytes) -> None:
        if self.sock is None:
            return
        self.last_sent = time.monotonic()
        if self.out:
            self.out += data
            return
        try:
            n = self.sock.send(data)
        except BlockingIOError:
            n = 0
        except OSError:
            return  # the read side sees the end
        if n < len(data):
            self.out += data[n:]
            self.loop.want_write(self, True)

    def flush(self) -> None:
        if self.sock is None or not self.out:
            return
        try:
            n = self.sock.send(self.out)
        except BlockingIOError:
            return
        except OSError:
            self.out.clear()
            return
        del self.out[:n]
        if not self.out:
            self.loop.want_write(self, False)

    def sample(self, text: str) -> None:
        if len(self.samples) < SAMPLE_LIMIT:
            self.samples.append(f"{self.comp_id}: {text}")

    # ---- session
    def logon(self, reset: bool, retry_delay: float = RETRY_FIRST) -> None:
        """Connect and send Logon; ``reset`` starts both sides at MsgSeqNum 1 (141=Y). A Logon refused because the
        venue has not verified the password yet (it verifies it meanwhile, RoE 1.2) is sent again a little later."""
        self._logon_args = (reset, retry_delay, self.next_out, self.expected_in)
        if reset:
            self.next_out, self.expected_in, self.resend_to = 1, 1, 0
            self.held.clear()
        sock = socket.create_connection((self.host, self.port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        self.sock = sock
        self.buf.clear()
        self.out.clear()
        self.loop.register(self)
        self.state = LOGON_SENT
        if retry_delay == RETRY_FIRST:  # logon time counts from the first attempt
            self.logon_started = time.perf_counter_ns()
        fields = b"98=0\x01108=%d\x01%s553=%s\x01554=%s\x01" % (
            self.heartbeat, b"141=Y\x01" if reset else b"", self.comp_id.encode(), self.password.encode(),
        )  # fmt: skip
        self.send(b"A", fields)

    def logout(self) -> None:
        if self.state == UP:
            self.state = LOGOUT_SENT
            self.send(b"5", b"")

    def drop(self) -> None:
        """Close the connection without a Logout (an abrupt disconnect)."""
        if self.sock is not None:
            self.counts["drops"] += 1
        self._close()

    def _close(self) -> None:
        if self.sock is not None:
            self.loop.unregister(self)
            self.sock.close()
            self.sock = None
        self.state = DOWN
        self.resend_to = 0  # a new connection asks again for whatever is still owed

    def test_request(self, test_req_id: bytes) -> None:
        """Ask the venue for a Heartbeat carrying ``test_req_id`` (see :attr:`answered_test_requests`)."""
        self.send(b"1", b"112=%s\x01" % test_req_id)

    def keepalive(self, now: float) -> None:
        if self.state == UP and now - self.last_sent >= self.heartbeat * 0.8:
            self.send(b"0", b"")

    @property
    def synced(self) -> bool:
        """Logged on with nothing held back or owed."""
        return self.state == UP and not self.held and self.resend_to < self.expected_in

    # ---- receiving
    def on_readable(self) -> None:
        if self.sock is None:
            return
        try:
            data = self.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            if self.state not in (LOGOUT_SENT, DOWN):
                self.counts["unexpected_disconnects"] += 1
                self.sample(f"connection closed by the venue in state {self.state}")
            self._close()
            return
        buf = self.buf
        buf += data
        start = 0
        while True:
            i = buf.find(TRAILER, start)
            if i < 0 or i + 8 > len(buf):
                break
            self.on_frame(bytes(buf[start : i + 8]))
            if self.sock is None:
                return
            start = i + 8
        if start:
            del buf[:start]

    def on_frame(self, msg: bytes) -> None:
        self.counts["messages"] += 1
        j = msg.find(b"\x0135=")
        s = msg.find(b"\x0134=")
        if j < 0 or s < 0:
            self.counts["bad_frames"] += 1
            self.sample(f"unframed bytes {msg[:80]!r}")
            return
        msg_type = msg[j + 4 : msg.find(SOH, j + 4)]
        seq = int(msg[s + 4 : msg.find(SOH, s + 4)])
        poss_dup = msg.find(b"\x0143=Y\x01") >= 0
        # Admin messages that need an answer now, whatever their place in the sequence.
        if msg_type == b"A" and self.state == LOGON_SENT:
            self.state = UP
            self.counts["logons"] += 1
            self.logon_ns.append(time.perf_counter_ns() - self.logon_started)
            self.on_logon()
        elif msg_type == b"1" and not poss_dup and self.state == UP:
            # Not once our Logout is out: a Heartbeat sent after it is never read by the venue, which then asks for
            # that sequence number again at the next logon (a TestRequest queued before it read our Logout).
            self.send(b"0", b"112=%s\x01" % (field_value(msg, b"112") or b""))
        elif msg_type == b"2":
            # We keep no store of what we sent: skip it with a gap fill. The soak drives sessions so that the venue
            # has read every application message before a disconnect, so this should never be needed.
            begin = int(field_value(msg, b"7") or b"1")
            self.counts["venue_resend_requests"] += 1
            self.sample(f"venue asked to resend from {begin}")
            self.send(b"4", b"122=%s\x01123=Y\x0136=%d\x01" % (self.clock.now(), self.next_out), begin, True)
        elif msg_type == b"5":
            text = field_value(msg, b"58")
            if self.state == LOGON_SENT and text == LOGON_REFUSED.encode():
                reset, delay, self.next_out, self.expected_in = self._logon_args  # the refusal counted nothing
                self.counts["logon_retries"] += 1
                self._close()
                self.loop.call_at(time.monotonic() + delay, lambda: self.logon(reset, min(delay * 2, RETRY_MAX)))
                return
            if self.state != LOGOUT_SENT:
                self.logout_texts.append((text or b"").decode(errors="replace"))
                self.sample(f"Logout from the venue: {text!r}")
                self.send(b"5", b"")
                self.counts["unexpected_disconnects"] += 1
            if seq == self.expected_in:
                self.expected_in += 1
            self._close()
            return
        if msg_type == b"4" and field_value(msg, b"123") != b"Y":  # SequenceReset-Reset: no sequence check
            self.expected_in = int(field_value(msg, b"36") or seq)
            self._drain()
            return
        if seq < self.expected_in:
            if poss_dup:
                self.counts["possdup_ignored"] += 1
            else:
                self.counts["dup_seq"] += 1
                self.sample(f"MsgSeqNum {seq} again (expected {self.expected_in}) without PossDupFlag")
            return
        if seq > self.expected_in:
            self.held[seq] = msg
            if self.resend_to < self.expected_in:
                self.counts["gaps"] += 1
                self.send(b"2", b"7=%d\x0116=0\x01" % self.expected_in)
                self.resend_to = seq - 1
            return
        self._in_order(msg, msg_type, seq)
        self._drain()

    def _in_order(self, msg: bytes, msg_type: bytes, seq: int) -> None:
        if msg_type == b"4":  # GapFill: the numbers up to NewSeqNo carried nothing to process
            self.expected_in = max(int(field_value(msg, b"36") or seq + 1), seq + 1)
            return
        self.expected_in = seq + 1
        if msg_type == b"0" and (test_req_id := field_value(msg, b"112")):
            self.answered_test_requests.add(test_req_id)
        if msg_type not in (b"0", b"1", b"2", b"A", b"5"):
            self.on_app(msg_type, msg)

    def _drain(self) -> None:
        held = self.held
        while held:
            msg = held.pop(self.expected_in, None)
            if msg is None:
                break
            j = msg.find(b"\x0135=") + 4
            self._in_order(msg, msg[j : msg.find(SOH, j)], self.expected_in)
        for seq in [s for s in held if s < self.expected_in]:  # covered by a gap fill
            msg = held.pop(seq)
            j = msg.find(b"\x0135=") + 4
            if msg[j : msg.find(SOH, j)] not in (b"0", b"1", b"2", b"4", b"A"):
                self.counts["skipped_by_gap_fill"] += 1
                self.sample(f"application message {seq} skipped by a gap fill")

    # ---- for subclasses
    def on_logon(self) -> None:
        pass

    def on_app(self, msg_type: bytes, msg: bytes) -> None:
        pass

    def errors(self) -> dict[str, int]:
        return {k: self.counts[k] for k in self.ERRORS}


# ---------------------------------------------------------------------- order entry


@dataclass(eq=False)
class Order:
    order_id: bytes
    clordid: bytes
    symbol: bytes
    side: bytes
    price: bytes
    leaves: bytes
    cum: bytes
    busy: bool = False  # a cancel or replace of it is in flight


class OpenOrders:
    """Open orders by OrderID, with O(1) random choice among those not busy."""

    def __init__(self) -> None:
        self.by_id: dict[bytes, Order] = {}
        self._idle: list[bytes] = []
        self._where: dict[bytes, int] = {}

    def __len__(self) -> int:
        return len(self.by_id)

    def _idle_add(self, oid: bytes) -> None:
        if oid not in self._where:
            self._where[oid] = len(self._idle)
            self._idle.append(oid)

    def _idle_remove(self, oid: bytes) -> None:
        i = self._where.pop(oid, None)
        if i is not None:
            last = self._idle.pop()
            if last != oid:
                self._idle[i] = last
                self._where[last] = i

    def put(self, order: Order) -> None:
        self.by_id[order.order_id] = order
        if order.busy:
            self._idle_remove(order.order_id)
        else:
            self._idle_add(order.order_id)

    def pop(self, oid: bytes) -> Order | None:
        self._idle_remove(oid)
        return self.by_id.pop(oid, None)

    def set_busy(self, order: Order, busy: bool) -> None:
        order.busy = busy
        if busy:
            self._idle_remove(order.order_id)
        elif order.order_id in self.by_id:
            self._idle_add(order.order_id)

    def choose_idle(self, rng: random.Random) -> Order | None:
        return self.by_id[rng.choice(self._idle)] if self._idle else None

    def levels(self) -> dict[tuple[str, str, Decimal], Decimal]:
        """(symbol, side, price) -> total LeavesQty."""
        out: dict[tuple[str, str, Decimal], Decimal] = {}
        for o in self.by_id.values():
            key = (o.symbol.decode(), o.side.decode(), Decimal(o.price.decode()))
            out[key] = out.get(key, Decimal(0)) + Decimal(o.leaves.decode())
        return out


@dataclass(eq=False)
class OeClient(Conn):
    """An order-entry session that sends orders, cancels and replaces and keeps a model of its open orders."""

    account: str = ""
    symbols: tuple[str, ...] = ("AAPL",)
    seed: int = 1
    run_id: str = "r"
    orders: OpenOrders = field(default_factory=OpenOrders)
    pending: dict[bytes, tuple[int, bytes | None]] = field(default_factory=dict)  # ClOrdID -> (sent ns, OrderID)
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    by_second: dict[int, LatencyHistogram] | None = None
    """When set (the soak), each latency also goes into the histogram of the wall-clock second it was measured in."""
    last_exec_id: int = 0
    ids: int = 0

    ERRORS = (*Conn.ERRORS, "exec_id_not_rising", "unknown_order_reports", "unexpected_rejects", "model_divergence")

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("requests", "reports", "cancel_rejects", "cancels", "cod_cancels", "trades"):
            self.counts.setdefault(name, 0)
        self.rng = random.Random(self.seed)
        self._acct = self.account.encode()

    # ---- requests
    def _clordid(self) -> bytes:
        self.ids += 1
        return b"%s-%s-%d" % (self.comp_id.encode(), self.run_id.encode(), self.ids)

    def new_order(self, symbol: str, side: bytes, price: str, qty: int | str, tif: bytes = b"0") -> bytes:
        cl = self._clordid()
        self.pending[cl] = (time.perf_counter_ns(), None)
        self.send(
            b"D",
            b"11=%s\x011=%s\x0155=%s\x0154=%s\x0140=2\x0144=%s\x0138=%s\x0159=%s\x0160=%s\x01"
            % (cl, self._acct, symbol.encode(), side, price.encode(), str(qty).encode(), tif, self.clock.now()),
        )
        self.counts["requests"] += 1
        return cl

    def cancel(self, order: Order) -> None:
        cl = self._clordid()
        self.pending[cl] = (time.perf_counter_ns(), order.order_id)
        self.orders.set_busy(order, True)
        self.send(
            b"F",
            b"11=%s\x0141=%s\x0137=%s\x0155=%s\x0154=%s\x0160=%s\x01"
            % (cl, order.clordid, order.order_id, order.symbol, order.side, self.clock.now()),
        )
        self.counts["requests"] += 1

    def replace(self, order: Order, price: str, extra_qty: int) -> None:
        cl = self._clordid()
        self.pending[cl] = (time.perf_counter_ns(), order.order_id)
        self.orders.set_busy(order, True)
        qty = Decimal(order.cum.decode()) + extra_qty
        self.send(
            b"G",
            b"11=%s\x0141=%s\x0137=%s\x0155=%s\x0154=%s\x0138=%s\x0140=2\x0144=%s\x0159=0\x0160=%s\x01"
            % (cl, order.clordid, order.order_id, order.symbol, order.side, str(qty).encode(), price.encode(),
               self.clock.now()),
        )  # fmt: skip
        self.counts["requests"] += 1

    # ---- replies
    def on_app(self, msg_type: bytes, msg: bytes) -> None:
        if msg_type == b"8":
            self.on_report(fields_of(msg))
        elif msg_type == b"9":
            self.on_cancel_reject(fields_of(msg))
        else:
            self.counts["unexpected_rejects"] += 1
            self.sample(f"unexpected {msg.replace(SOH, b'|')[:200]!r}")

    def _answered(self, clordid: bytes) -> None:
        entry = self.pending.pop(clordid, None)
        if entry is None:
            return
        sent, oid = entry
        took = time.perf_counter_ns() - sent
        self.latency.add_ns(took)
        if self.by_second is not None:
            second = int(time.time())
            hist = self.by_second.get(second)
            if hist is None:
                hist = self.by_second[second] = LatencyHistogram()
            hist.add_ns(took)
        if oid is not None:
            order = self.orders.by_id.get(oid)
            if order is not None:
                self.orders.set_busy(order, False)

    def on_report(self, f: dict[bytes, bytes]) -> None:
        self.counts["reports"] += 1
        clordid = f.get(b"11", b"")
        exec_id = int(f.get(b"17", b"0"))
        if exec_id <= self.last_exec_id:
            self.counts["exec_id_not_rising"] += 1
            self.sample(f"ExecID {exec_id} after {self.last_exec_id}")
        self.last_exec_id = max(exec_id, self.last_exec_id)
        oid, exec_type, status = f.get(b"37", b"NONE"), f.get(b"150"), f.get(b"39")
        if oid == b"NONE":
            self.counts["unexpected_rejects"] += 1
            self.sample(f"rejected: {f.get(b'58')!r}")
            self._answered(clordid)
            return
        if exec_type == b"F":
            self.counts["trades"] += 1
        elif exec_type == b"4":
            self.counts["cancels"] += 1
            if f.get(b"58") == COD_TEXT:
                self.counts["cod_cancels"] += 1
                self.on_cod_cancel(oid)
        order = self.orders.by_id.get(oid)
        if order is None and exec_type != b"0":
            self.counts["unknown_order_reports"] += 1
            self.sample(f"ExecType {exec_type!r} for unknown OrderID {oid!r}")
        if status in TERMINAL:
            self.orders.pop(oid)
        elif order is None:  # an IOC order lives for one turn: never a candidate for a cancel or replace
            busy = f.get(b"59") == b"3"
            self.orders.put(Order(oid, clordid, f[b"55"], f[b"54"], f[b"44"], f[b"151"], f[b"14"], busy))
        else:
            order.clordid, order.price, order.leaves, order.cum = clordid, f[b"44"], f[b"151"], f[b"14"]
        self._answered(clordid)

    def on_cancel_reject(self, f: dict[bytes, bytes]) -> None:
        self.counts["cancel_rejects"] += 1
        entry = self.pending.get(f.get(b"11", b""))
        self._answered(f.get(b"11", b""))
        oid = entry[1] if entry else None
        if f.get(b"102") == b"1" and oid is not None and oid in self.orders.by_id:
            self.counts["model_divergence"] += 1  # the venue does not know an order this session thinks is open
            self.sample(f"cancel/replace of OrderID {oid!r} refused as unknown")

    def on_cod_cancel(self, order_id: bytes) -> None:
        pass


# ---------------------------------------------------------------------- market data

Entry = tuple[int, bytes, bytes, bytes, bytes | None, bytes | None]  # RptSeq, action, type, symbol, price, size
X_CACHE: dict[bytes, tuple[Entry, ...]] = {}


def parse_x(body: bytes) -> tuple[Entry, ...]:
    """The entries of an X body (from ``268=``): each starts at MDUpdateAction (279)."""
    entries: list[list[Any]] = []
    cur: list[Any] | None = None
    for part in body.split(SOH):
        tag, _, value = part.partition(b"=")
        if tag == b"279":
            cur = [0, value, b"", b"", None, None]
            entries.append(cur)
        elif cur is None:
            continue
        elif tag == b"269":
            cur[2] = value
        elif tag == b"55":
            cur[3] = value
        elif tag == b"270":
            cur[4] = value
        elif tag == b"271":
            cur[5] = value
        elif tag == b"83":
            cur[0] = int(value)
    return tuple((e[0], e[1], e[2], e[3], e[4], e[5]) for e in entries)


def parse_w(msg: bytes) -> tuple[bytes, int, dict[bytes, bytes], dict[bytes, bytes]]:
    """Symbol, RptSeq, bids and offers (price -> size) of a snapshot."""
    symbol, rpt = b"", 0
    bids: dict[bytes, bytes] = {}
    asks: dict[bytes, bytes] = {}
    in_group = False
    entry_type, price = b"", b""
    for part in msg.split(SOH):
        tag, _, value = part.partition(b"=")
        if tag == b"268":
            in_group = True
        elif not in_group:
            if tag == b"55":
                symbol = value
            elif tag == b"83":
                rpt = int(value)
        elif tag == b"269":
            entry_type, price = value, b""
        elif tag == b"270":
            price = value
        elif tag == b"271":
            if entry_type == b"0":
                bids[price] = value
            elif entry_type == b"1":
                asks[price] = value
    return symbol, rpt, bids, asks


@dataclass(eq=False)
class Book:
    bids: dict[bytes, bytes] = field(default_factory=dict)
    asks: dict[bytes, bytes] = field(default_factory=dict)
    rpt: int = -1  # last RptSeq applied; -1 before the first snapshot
    snapshot_rpt: int = -1  # RptSeq of the last snapshot

    def as_decimal(self) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]:
        def conv(side: dict[bytes, bytes]) -> dict[Decimal, Decimal]:
            return {Decimal(p.decode()): Decimal(s.decode()) for p, s in side.items()}

        return conv(self.bids), conv(self.asks)


@dataclass(eq=False)
class MdClient(Conn):
    """A market-data session subscribed (bids, offers, trades; ``depth`` levels a side) to some symbols, one book
    each (a depth-limited view deletes the levels that leave its top N, so a book keyed by price stays exact)."""

    symbols: tuple[str, ...] = ("AAPL",)
    depth: int = 0  # MarketDepth (264): 0 full depth, N the top N levels a side
    books: dict[bytes, Book] = field(default_factory=dict)
    subscribed: bool = False
    lag: float = 0.0  # the largest delay seen between a sampled X's SendingTime and its reading, seconds

    ERRORS = (*Conn.ERRORS, "rpt_gaps", "rpt_dups", "snapshot_mismatches", "foreign_entries", "md_rejects")

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("X", "W", "snapshot_checks"):
            self.counts.setdefault(name, 0)

    def subscribe(self) -> None:
        symbols = b"".join(b"55=%s\x01" % s.encode() for s in self.symbols)
        self.books = {s.encode(): Book() for s in self.symbols}
        self.send(
            b"V",
            b"262=%s-sub\x01263=1\x01264=%d\x01265=1\x01267=3\x01269=0\x01269=1\x01269=2\x01146=%d\x01%s"
            % (self.comp_id.encode(), self.depth, len(self.symbols), symbols),
        )

    def on_logon(self) -> None:
        if not self.books:  # subscriptions survive a disconnect: only the first logon subscribes
            self.subscribe()

    @property
    def has_books(self) -> bool:
        return bool(self.books) and all(b.rpt >= 0 for b in self.books.values())

    def on_app(self, msg_type: bytes, msg: bytes) -> None:
        if msg_type == b"X":
            self.on_x(msg)
        elif msg_type == b"W":
            self.on_w(msg)
        else:
            self.counts["md_rejects"] += 1
            self.sample(f"unexpected {msg.replace(SOH, b'|')[:200]!r}")

    def on_x(self, msg: bytes) -> None:
        self.counts["X"] += 1
        if not self.counts["X"] & 63:  # now and then: how late this client reads what the venue sent
            self.lag = max(self.lag, lag_seconds(msg))
        start = msg.find(b"\x01268=") + 1
        body = msg[start : msg.rfind(TRAILER) + 1]
        entries = X_CACHE.get(body)
        if entries is None:
            entries = parse_x(body)
            if len(X_CACHE) >= X_CACHE_LIMIT:
                del X_CACHE[next(iter(X_CACHE))]
            X_CACHE[body] = entries
        counts, books = self.counts, self.books
        for rpt, action, entry_type, symbol, price, size in entries:
            book = books.get(symbol)
            if book is None or book.rpt < 0:
                counts["foreign_entries"] += 1
                continue
            if rpt <= book.rpt:
                if rpt > book.snapshot_rpt:
                    counts["rpt_dups"] += 1
                    self.sample(f"{symbol!r} RptSeq {rpt} again (at {book.rpt})")
                continue
            if rpt != book.rpt + 1:
                counts["rpt_gaps"] += 1
                self.sample(f"{symbol!r} RptSeq {book.rpt} -> {rpt}")
            book.rpt = rpt
            side = book.bids if entry_type == b"0" else book.asks if entry_type == b"1" else None
            if side is None or price is None:
                continue
            if action == b"2":
                side.pop(price, None)
            else:
                side[price] = size or b"0"

    def on_w(self, msg: bytes) -> None:
        self.counts["W"] += 1
        symbol, rpt, bids, asks = parse_w(msg)
        book = self.books.get(symbol)
        if book is None:
            self.counts["foreign_entries"] += 1
            return
        if book.rpt >= 0:
            if book.rpt == rpt:
                self.counts["snapshot_checks"] += 1
                if book.bids != bids or book.asks != asks:
                    self.counts["snapshot_mismatches"] += 1
                    self.sample(f"{symbol!r} at RptSeq {rpt}: book differs from the snapshot")
            elif rpt < book.rpt:
                self.counts["rpt_dups"] += 1
                self.sample(f"{symbol!r} snapshot at RptSeq {rpt} behind the book ({book.rpt})")
        book.bids, book.asks, book.rpt, book.snapshot_rpt = bids, asks, rpt, rpt


def lag_seconds(msg: bytes) -> float:
    """Now minus the message's SendingTime (52, UTC)."""
    sent = field_value(msg, b"52")
    if sent is None:
        return 0.0
    when = datetime.datetime.strptime(sent.decode()[:21], "%Y%m%d-%H:%M:%S.%f").replace(tzinfo=datetime.UTC)
    return time.time() - when.timestamp()


def sum_counts(conns: Iterable[Conn]) -> dict[str, int]:
    total: dict[str, int] = {}
    for c in conns:
        for k, v in c.counts.items():
            total[k] = total.get(k, 0) + v
    return total
