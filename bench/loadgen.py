"""Order-entry load generator: N FIX 4.4 sessions sending NewOrderSingle, measuring order -> first ER latency.

Why hand-rolled bytes: a FIX library costs 20-170 µs of client CPU per order (simplefix, the QuickFIX
initiator), which on a 2-core machine steals the CPU the gateway under test needs. Here every order is a
pre-encoded template in which only MsgSeqNum, SendingTime/TransactTime, ClOrdID, BodyLength and CheckSum are
filled in, and replies are framed by splitting on the ``10=xxx<SOH>`` trailer and read with ``bytes.find``: a
few µs per message. Standard library only; single thread, ``select`` loop (µs timeouts, so a fixed rate is
paced finely).

Run from the repository root::

    python -m bench.loadgen --port 9878 --sessions 4 --rate 1000 --seconds 8
    python -m bench.loadgen --port 9878 --sessions 4 --rate max --in-flight 16 --cross-fraction 0.2

Modes: ``--rate R`` offers R orders/s in total across the sessions (open loop: paced on a monotonic clock,
orders are sent whether or not earlier ones were answered) and reports the rate achieved; ``--rate max`` keeps
``--in-flight K`` unanswered orders per session (closed loop) to find the throughput ceiling. The first
``--warmup`` seconds are sent but not measured. Orders are DAY limit orders in AAPL, sides alternating;
resting buys are priced 99.50-99.99 and resting sells 100.01-100.50, so by default nothing crosses;
``--cross-fraction F`` turns exactly that fraction into orders priced through the opposite side (buy 100.50 /
sell 99.50).

TLS: ``--tls-ca FILE`` (and ``--tls-cert``/``--tls-key`` for mutual TLS) connects over TLS, verifying the venue's
certificate; the handshake is done before the run, so the figures show what TLS costs per message. A Logon refused
with the venue's credential Text (its first sight of a password, which it then verifies) is sent again on a new
connection until ``--logon-timeout``.

Output: one JSON line (see :func:`Run.results`): throughput counts orders whose first ExecutionReport (35=8
with their ClOrdID) arrived inside the measurement window; latency is from handing the order to the kernel to
reading that first ER, for orders sent inside the window. Also counts 35=3, 35=j and 39=8 replies, with a few
samples to diagnose rejects, and the generator's own CPU time.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import select
import socket
import ssl
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

SOH = b"\x01"
TRAILER = b"\x0110="
BEGIN = b"8=FIX.4.4\x019="
SAMPLE_LIMIT = 3
RECV_SIZE = 65536  # below malloc's mmap threshold: recv(1 MiB) costs an mmap/munmap per call (8x slower)
LOGON_REFUSED = b"58=Rejected Logon Attempt: logon refused: credentials not accepted\x01"  # see fixclient.session
_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


def _checksum_trailer(msg: bytes) -> bytes:
    """``10=xxx<SOH>`` for ``msg`` (everything up to and including the SOH before tag 10)."""
    return b"10=%03d\x01" % (sum(msg) & 255)


def frame(body: bytes) -> bytes:
    """A complete message from ``body`` (tag 35 onwards, ending in SOH): BodyLength and CheckSum added."""
    msg = BEGIN + b"%d\x01" % len(body) + body
    return msg + _checksum_trailer(msg)


def field_value(msg: bytes, tag: bytes) -> bytes | None:
    """Value of the first ``tag`` (e.g. ``b"11"``) in a framed message, or None; ``bytes.find`` is C-fast."""
    key = SOH + tag + b"="
    i = msg.find(key)
    if i < 0:
        return None
    i += len(key)
    return msg[i : msg.find(SOH, i)]


class Clock:
    """UTC FIX timestamps (``YYYYMMDD-HH:MM:SS.sss``); the date-time part is formatted once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = b""

    def now(self) -> bytes:
        t = time.time()
        second = int(t)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(second)).encode()
        return b"%s.%03d" % (self._prefix, int((t - second) * 1000))


def order_tails(count: int, cross_fraction: float) -> list[bytes]:
    """``count`` pre-encoded order tails (Side .. TransactTime tag), cycling; an exact fraction crosses.

    Resting buys 99.50-99.99 and resting sells 100.01-100.50 never meet; a crossing buy is priced 100.50 and a
    crossing sell 99.50, through every resting order of the other side. Quantities cycle 1..10.
    """
    tails = []
    for i in range(count):
        buy = i % 2 == 0
        crosses = int((i + 1) * cross_fraction) > int(i * cross_fraction)
        offset = 1 + (i * 7) % 50  # 1..50 cents from 100.00
        through = 10050 if buy else 9950
        price = through if crosses else (10000 - offset if buy else 10000 + offset)
        qty = 1 + (i * 3) % 10
        tails.append(
            b"54=%s\x0140=2\x0144=%d.%02d\x0138=%d\x0159=0\x0160="
            % (b"1" if buy else b"2", price // 100, price % 100, qty)
        )
    return tails


@dataclass(eq=False)
class Session:
    """One FIX session's socket, sequence numbers and unanswered orders."""

    index: int
    comp_id: str
    target: str
    account: str
    sock: socket.socket
    seq: int = 1
    buf: bytearray = field(default_factory=bytearray)
    out: bytearray = field(default_factory=bytearray)
    pending: dict[bytes, tuple[int, int]] = field(default_factory=dict)  # ClOrdID -> (sent ns, MsgSeqNum)
    by_seq: dict[int, bytes] = field(default_factory=dict)  # MsgSeqNum -> ClOrdID, to map 35=3 back to orders
    password: str = ""
    symbol: str = "AAPL"
    logged_on: bool = False
    logged_out: bool = False
    refused: bool = False  # the venue refused the Logon with LOGON_REFUSED: try again
    logout_answered: bool = False
    last_sent: float = 0.0
    counter: int = 0
    order_head: bytes = b""
    order_mid: bytes = b""
    clordid_prefix: bytes = b""

    def __post_init__(self) -> None:
        self.order_head = b"35=D\x0149=%s\x0156=%s\x0134=" % (self.comp_id.encode(), self.target.encode())
        self.order_mid = b"\x011=%s\x0155=%s\x01" % (self.account.encode(), self.symbol.encode())

    def admin(self, msg_type: bytes, fields: bytes, ts: bytes) -> bytes:
        """An admin message (``fields`` = body after the header, ending in SOH) with the next MsgSeqNum."""
        body = b"35=%s\x0149=%s\x0156=%s\x0134=%d\x0152=%s\x01%s" % (
            msg_type,
            self.comp_id.encode(),
            self.target.encode(),
            self.seq,
            ts,
            fields,
        )
        self.seq += 1
        return frame(body)


class Run:
    """The load-generation run: logon, send/receive loop, drain, logout, results."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.clock = Clock()
        self.max_mode = args.rate == "max"
        self.rate = 0.0 if self.max_mode else float(args.rate)
        self.tails = order_tails(1000, args.cross_fraction)
        passwords = read_passwords(args.password_file) if args.password_file else {}
        self.tls: ssl.SSLContext | None = None
        if args.tls_ca:
            self.tls = ssl.create_default_context(cafile=str(args.tls_ca))
            if args.tls_cert:
                self.tls.load_cert_chain(str(args.tls_cert), str(args.tls_key) if args.tls_key else None)
        run_id = b"%x" % (time.time_ns() // 1_000_000 % 0xFFFFFFFFF)  # ClOrdIDs stay unique across runs
        self.sessions: list[Session] = []
        for n in range(args.first, args.first + args.sessions):
            comp_id = f"{args.comp_id_prefix}{n}"
            sock = self.connect()
            password = passwords.get(comp_id) or args.password.format(n=n, comp_id=comp_id)
            s = Session(
                n,
                comp_id,
                args.target,
                args.account.format(n=n, comp_id=comp_id),
                sock,
                password=password,
                symbol=args.symbol,
            )
            s.clordid_prefix = b"%s-%d-" % (run_id, n)
            self.sessions.append(s)
        self.by_sock = {s.sock: s for s in self.sessions}
        # measurement
        self.window_start_ns = 0
        self.window_end_ns = 0
        self.measuring = False
        self.sending = True
        self.sent = 0
        self.sent_in_window = 0
        self.acked_in_window = 0
        self.latencies_ns: list[int] = []
        self.counts = {
            "er": 0,
            "first_er": 0,
            "reject_39_8": 0,
            "session_reject_3": 0,
            "business_reject_j": 0,
            "logout_5": 0,
            "disconnects": 0,
            "test_request_1": 0,
            "resend_request_2": 0,
        }
        self.logging_out = False
        self.all_gone = False
        self.samples: list[str] = []
        self.max_send_lag_us = 0.0
        self.cpu_start = 0.0
        self.cpu_end = 0.0

    def connect(self) -> socket.socket:
        """A new connection to the venue (TLS handshake included), still blocking."""
        args = self.args
        sock = socket.create_connection((args.host, args.port), timeout=args.connect_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_hostname=args.tls_server_name or args.host)
        return sock

    # ---- wire helpers ------------------------------------------------------------------------------------
    def _send(self, s: Session, data: bytes) -> None:
        """Write now if the socket takes it, else queue; never blocks."""
        if s.out:
            s.out += data
            return
        try:
            n = s.sock.send(data)
        except _WOULD_BLOCK:
            n = 0
        except OSError:  # peer gone: the read side will see EOF
            s.logged_on = False
            return
        if n < len(data):
            s.out += data[n:]
        s.last_sent = time.monotonic()

    def _flush(self, s: Session) -> None:
        try:
            n = s.sock.send(s.out)
        except _WOULD_BLOCK:
            return
        except OSError:
            s.out.clear()
            s.logged_on = False
            return
        del s.out[:n]

    def _sample(self, msg: bytes) -> None:
        if len(self.samples) < SAMPLE_LIMIT:
            self.samples.append(msg.replace(SOH, b"|").decode(errors="replace"))

    def send_orders(self, s: Session, count: int) -> None:
        """Encode and send ``count`` NewOrderSingles on ``s`` in one write (one timestamp for the batch)."""
        ts = self.clock.now()
        parts = []
        pending, by_seq, tails = s.pending, s.by_seq, self.tails
        head, mid, prefix = s.order_head, s.order_mid, s.clordid_prefix
        now_ns = time.perf_counter_ns()
        for _ in range(count):
            s.counter += 1
            clordid = b"%s%d" % (prefix, s.counter)
            seq = s.seq
            s.seq += 1
            body = b"%s%d\x0152=%s\x0111=%s%s%s%s\x01" % (
                head,
                seq,
                ts,
                clordid,
                mid,
                tails[(s.counter + s.index) % 1000],
                ts,
            )
            msg = b"8=FIX.4.4\x019=%d\x01%s" % (len(body), body)
            parts.append(msg + b"10=%03d\x01" % (sum(msg) & 255))
            pending[clordid] = (now_ns, seq)
            by_seq[seq] = clordid
        self._send(s, b"".join(parts))
        self.sent += count
        if self.measuring:
            self.sent_in_window += count

    # ---- receive -----------------------------------------------------------------------------------------
    def on_readable(self, s: Session) -> None:
        """Read what is there, handle each complete message, then (max mode) top the session back up."""
        try:
            data = s.sock.recv(RECV_SIZE)
        except _WOULD_BLOCK:
            return
        except OSError:
            data = b""
        now_ns = time.perf_counter_ns()
        if not data:
            if not s.logged_out and not self.logging_out:
                self.counts["disconnects"] += 1
            s.logged_out = True
            s.logged_on = False
            return
        buf = s.buf
        buf += data
        start = 0
        while True:
            i = buf.find(TRAILER, start)
            if i < 0 or i + 8 > len(buf):
                break
            end = i + 8
            self.on_message(s, bytes(buf[start:end]), now_ns)
            start = end
        if start:
            del buf[:start]
        if self.max_mode and self.sending and s.logged_on:
            need = self.args.in_flight - len(s.pending)
            if need > 0:
                self.send_orders(s, need)

    def on_message(self, s: Session, msg: bytes, now_ns: int) -> None:
        """Dispatch one framed message on its MsgType."""
        i = msg.find(b"\x0135=") + 4
        msg_type = msg[i : msg.find(SOH, i)]
        if msg_type == b"8":
            self.counts["er"] += 1
            clordid = field_value(msg, b"11")
            entry = s.pending.pop(clordid, None) if clordid is not None else None
            if msg.find(b"\x0139=8\x01") >= 0:
                self.counts["reject_39_8"] += 1
                self._sample(msg)
            if entry is not None:
                sent_ns, seq = entry
                del s.by_seq[seq]
                self.counts["first_er"] += 1
                if self.measuring:
                    self.acked_in_window += 1
                start, end = self.window_start_ns, self.window_end_ns
                if start and sent_ns >= start and (not end or sent_ns < end):
                    self.latencies_ns.append(now_ns - sent_ns)
        elif msg_type == b"0":
            pass
        elif msg_type in (b"3", b"j"):
            self.counts["session_reject_3" if msg_type == b"3" else "business_reject_j"] += 1
            self._sample(msg)
            ref = field_value(msg, b"45")
            clordid = s.by_seq.pop(int(ref), None) if ref and ref.isdigit() else None
            if clordid is not None:  # the order will never get an ER: stop waiting for it
                s.pending.pop(clordid, None)
        elif msg_type == b"A":
            s.logged_on = True
        elif msg_type == b"5":
            self.counts["logout_5"] += 1
            if not s.logged_on and msg.find(LOGON_REFUSED) >= 0:  # not verified yet: log on again
                s.refused = s.logged_out = True
                return
            if not self.logging_out:  # the venue ended the session: say why
                self.counts["disconnects"] += 1
                self._sample(msg)
            elif s.logged_on:
                s.logout_answered = True
            s.logged_on = False
            s.logged_out = True
        elif msg_type == b"1":
            self.counts["test_request_1"] += 1
            req = field_value(msg, b"112") or b"TEST"
            self._send(s, s.admin(b"0", b"112=%s\x01" % req, self.clock.now()))
        elif msg_type == b"2":
            # We keep no store: answer with SequenceReset-Reset to our next number (no resend of orders).
            self.counts["resend_request_2"] += 1
            self._send(s, s.admin(b"4", b"123=N\x0136=%d\x01" % (s.seq + 1), self.clock.now()))

    # ---- phases ------------------------------------------------------------------------------------------
    def poll(self, timeout: float) -> None:
        """One ``select`` round over all sessions; ``select`` rather than epoll for sub-ms timeouts."""
        readers = [s.sock for s in self.sessions if not s.logged_out]
        writers = [s.sock for s in self.sessions if s.out]
        if not readers and not writers:
            self.all_gone = True  # every session has ended: the phase loops stop on this
            return
        if self.tls is not None:  # TLS may hold decrypted bytes that select() cannot see
            buffered = [sock for sock in readers if isinstance(sock, ssl.SSLSocket) and sock.pending()]
            timeout = 0.0 if buffered else timeout
        readable, writable, _ = select.select(readers, writers, [], max(timeout, 0.0))
        if self.tls is not None:
            readable = list({*readable, *buffered})
        by_sock = self.by_sock
        for sock in writable:
            self._flush(by_sock[sock])
        for sock in readable:
            self.on_readable(by_sock[sock])

    def _send_logon(self, s: Session) -> None:
        s.sock.setblocking(False)
        s.seq = 1
        fields = b"98=0\x01108=%d\x01141=Y\x01553=%s\x01554=%s\x01" % (
            self.args.heartbeat,
            s.comp_id.encode(),
            s.password.encode(),
        )
        self._send(s, s.admin(b"A", fields, self.clock.now()))

    def logon(self) -> list[str]:
        """Log every session on (141=Y: sequence numbers start at 1); returns the CompIDs that failed. A Logon
        refused with LOGON_REFUSED (the venue was verifying the password) is sent again on a new connection."""
        for s in self.sessions:
            self._send_logon(s)
        deadline = time.monotonic() + self.args.logon_timeout
        retry_at = 0.0
        settled = lambda s: s.logged_on or (s.logged_out and not s.refused)  # noqa: E731 (refused: tried again)
        while time.monotonic() < deadline and not all(settled(s) for s in self.sessions):
            self.poll(0.05)
            if self.all_gone:  # every session was refused: nothing to wait on before the retry
                self.all_gone = False
                time.sleep(max(0.0, min(0.05, retry_at - time.monotonic())))
            if time.monotonic() >= retry_at and any(s.refused for s in self.sessions):
                retry_at = time.monotonic() + 0.1
                for s in (s for s in self.sessions if s.refused):
                    del self.by_sock[s.sock]
                    s.sock.close()
                    s.sock, s.refused, s.logged_out = self.connect(), False, False
                    s.buf.clear()
                    s.out.clear()
                    self.by_sock[s.sock] = s
                    self._send_logon(s)
        return [s.comp_id for s in self.sessions if not s.logged_on]

    def heartbeats(self) -> None:
        """Send a Heartbeat on sessions idle for HeartBtInt (only matters for long, slow runs)."""
        now = time.monotonic()
        for s in self.sessions:
            if s.logged_on and now - s.last_sent >= self.args.heartbeat:
                self._send(s, s.admin(b"0", b"", self.clock.now()))

    def load(self) -> None:
        """Warm-up, then the measured window, then drain the answers still in flight."""
        args = self.args
        live = [s for s in self.sessions if s.logged_on]
        t0 = time.perf_counter()
        warm_end = t0 + args.warmup
        send_end = warm_end + args.seconds
        next_hb = t0 + 1.0
        if self.max_mode:
            for s in live:
                self.send_orders(s, args.in_flight)
        rr = 0
        max_burst = max(1, int(self.rate * 0.01)) if self.rate else 0  # catch up at most 10 ms at once
        while True:
            now = time.perf_counter()
            if not self.measuring and now >= warm_end:
                self.measuring = True
                self.window_start_ns = time.perf_counter_ns()
                self.cpu_start = _cpu_seconds()
            if now >= send_end or self.all_gone:
                break
            timeout = 0.05
            if not self.max_mode:
                due = int((now - t0) * self.rate) - self.sent
                if due > 0:
                    lag = (now - t0 - (self.sent + 1) / self.rate) * 1e6
                    if self.measuring and lag > self.max_send_lag_us:
                        self.max_send_lag_us = lag
                    for _ in range(min(due, max_burst)):
                        s = live[rr % len(live)]
                        rr += 1
                        if s.logged_on:
                            self.send_orders(s, 1)
                        else:
                            self.sent += 1  # keep the schedule even if a session dropped
                timeout = t0 + (self.sent + 1) / self.rate - time.perf_counter()
            self.poll(min(timeout, send_end - now, 0.05))
            if now >= next_hb:
                self.heartbeats()
                next_hb = now + 1.0
        self.window_end_ns = time.perf_counter_ns()
        self.cpu_end = _cpu_seconds()
        self.measuring = False
        self.sending = False
        drain_deadline = time.monotonic() + args.drain
        while time.monotonic() < drain_deadline and any(s.pending and s.logged_on for s in self.sessions):
            self.poll(0.05)

    def logout(self) -> int:
        """Send Logout on every session and wait (bounded) for the answers; returns how many answered."""
        ts = self.clock.now()
        self.logging_out = True
        for s in self.sessions:
            if s.logged_on:
                self._send(s, s.admin(b"5", b"", ts))
        deadline = time.monotonic() + self.args.logout_timeout
        while time.monotonic() < deadline and any(s.logged_on for s in self.sessions):
            self.poll(0.05)
        clean = sum(1 for s in self.sessions if s.logout_answered)
        for s in self.sessions:
            s.sock.close()
        return clean

    def results(self, clean_logouts: int, failed: list[str]) -> dict[str, object]:
        """The JSON-able summary of the run."""
        window_s = (self.window_end_ns - self.window_start_ns) / 1e9 if self.window_end_ns else 0.0
        lat = sorted(self.latencies_ns)
        cpu_window = self.cpu_end - self.cpu_start
        return {
            "mode": "max" if self.max_mode else "rate",
            "offered_rate": None if self.max_mode else self.rate,
            "in_flight_per_session": self.args.in_flight if self.max_mode else None,
            "sessions": len(self.sessions),
            "logon_failed": failed,
            "cross_fraction": self.args.cross_fraction,
            "window_s": round(window_s, 3),
            "orders_sent": self.sent,
            "sent_per_s": round(self.sent_in_window / window_s, 1) if window_s else 0.0,
            "orders_per_s": round(self.acked_in_window / window_s, 1) if window_s else 0.0,
            "latency_samples": len(lat),
            "latency_us": {
                "p50": _percentile_us(lat, 50),
                "p99": _percentile_us(lat, 99),
                "p99.9": _percentile_us(lat, 99.9),
                "max": round(lat[-1] / 1e3, 1) if lat else None,
            },
            "max_send_lag_us": round(self.max_send_lag_us, 1) if not self.max_mode else None,
            "unanswered": sum(len(s.pending) for s in self.sessions),
            "counts": self.counts,
            "reject_samples": self.samples,
            "clean_logouts": clean_logouts,
            "loadgen_cpu_s": round(_cpu_seconds(), 3),
            "loadgen_cpu_window_s": round(cpu_window, 3),
            "loadgen_cpu_us_per_order": round(cpu_window * 1e6 / self.acked_in_window, 2)
            if self.acked_in_window
            else None,
        }


def read_passwords(path: Path) -> dict[str, str]:
    """CompID -> password from lines ``COMPID=PASSWORD`` (blank lines and ``#`` comments ignored)."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            comp_id, _, password = line.partition("=")
            out[comp_id.strip()] = password.strip()
    return out


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _percentile_us(sorted_ns: list[int], pct: float) -> float | None:
    """Nearest-rank percentile of sorted nanosecond samples, in µs."""
    if not sorted_ns:
        return None
    rank = max(1, -(-len(sorted_ns) * pct // 100))
    return round(sorted_ns[int(rank) - 1] / 1e3, 1)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    p = argparse.ArgumentParser(description="FIX 4.4 order-entry load generator (one JSON line of results)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--sessions", type=int, default=4, help="number of sessions: CLIENT1..CLIENTn")
    p.add_argument("--first", type=int, default=1, help="number of the first session (several generators)")
    p.add_argument("--comp-id-prefix", default="CLIENT", help="SenderCompID (and Username) prefix")
    p.add_argument("--target", default="EXCH", help="TargetCompID")
    p.add_argument(
        "--password",
        default=os.environ.get("LOADGEN_PASSWORD", "secret"),
        help="Password (554); {n}, {comp_id} substituted (default $LOADGEN_PASSWORD or 'secret')",
    )
    p.add_argument(
        "--password-file",
        type=Path,
        default=None,
        help="lines COMPID=PASSWORD; overrides --password for the CompIDs it lists",
    )
    p.add_argument("--account", default="ACC{n}", help="Account (1); {n} = session number, {comp_id}")
    p.add_argument("--symbol", default="AAPL")
    p.add_argument("--rate", default="1000", help="orders/s across all sessions, or 'max'")
    p.add_argument("--in-flight", type=int, default=16, help="unanswered orders per session with --rate max")
    p.add_argument("--cross-fraction", type=float, default=0.0, help="fraction of orders that cross (0..1)")
    p.add_argument("--seconds", type=float, default=8.0, help="measured window")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before the window")
    p.add_argument("--drain", type=float, default=3.0, help="max wait for answers after the window")
    p.add_argument("--heartbeat", type=int, default=30, help="HeartBtInt (108)")
    p.add_argument("--connect-timeout", type=float, default=5.0)
    p.add_argument("--logon-timeout", type=float, default=10.0)
    p.add_argument("--logout-timeout", type=float, default=5.0)
    p.add_argument("--tls-ca", type=Path, help="connect over TLS; the venue's certificate must chain to this CA")
    p.add_argument("--tls-cert", type=Path, help="client certificate (PEM) for mutual TLS")
    p.add_argument("--tls-key", type=Path, help="its key (default: in --tls-cert)")
    p.add_argument("--tls-server-name", help="name the venue's certificate must carry (default: --host)")
    args = p.parse_args(argv)
    if args.rate != "max":
        try:
            if float(args.rate) <= 0:
                raise ValueError
        except ValueError:
            p.error("--rate must be a positive number or 'max'")
    if not 0.0 <= args.cross_fraction <= 1.0:
        p.error("--cross-fraction must be within 0..1")
    if args.sessions < 1 or args.in_flight < 1:
        p.error("--sessions and --in-flight must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run once and print one JSON line; exit 0, or 1 if a session was lost, 2 if one never logged on."""
    args = parse_args(argv)
    try:
        run = Run(args)
    except OSError as exc:
        print(json.dumps({"error": f"connect {args.host}:{args.port}: {exc}"}))
        return 2
    failed = run.logon()
    if failed:
        clean = run.logout()
        out = run.results(clean, failed)
        out["error"] = "logon failed"
        print(json.dumps(out))
        return 2
    gc.collect()
    gc.disable()  # the run creates no cycles; a collection pause would show up as latency
    run.load()
    gc.enable()
    clean = run.logout()
    out = run.results(clean, failed)
    if run.counts["disconnects"]:
        out["error"] = f"{run.counts['disconnects']} session(s) lost during the run"
    print(json.dumps(out))
    return 1 if "error" in out else 0


if __name__ == "__main__":
    sys.exit(main())
