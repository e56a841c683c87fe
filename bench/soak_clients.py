"""The soak's client processes: order-entry load or market-data subscribers, driven by :mod:`bench.soak` over pipes.

    python -m bench.soak_clients oe '<spec JSON>'
    python -m bench.soak_clients md '<spec JSON>'

**oe**: the spec's sessions log on (ResetSeqNumFlag=Y), then on ``start`` send ``rate`` requests a second in total,
round-robin over the sessions that are logged on and in step, paced on the monotonic clock: new passive Day limit
orders (buys 99.00-99.99, sells 100.01-101.00, quantity 1-20) on a random listed symbol, cancels and replaces
(new price in the same band, 1-20 more than the filled quantity) of a random open order of the session, and 10%
crossing IOC orders (buy 100.05 or sell 99.95) that trade with whatever rests there. The mix leans to new orders
below the session's share of ``working_set`` open orders and to cancels above it, so the book stays the same size.

**md**: the sessions log on and subscribe to their symbols (full depth; bids, offers, trades) and keep their books.

Both: every ``relogon_every`` seconds one session (in turn) logs out once it is in step (order entry: nothing
unanswered), stays away ``away`` seconds and logs on again without resetting sequence numbers; what the venue sent
meanwhile (cancel-on-disconnect reports, market data) comes back by resend. :mod:`bench.fixwire` checks every
message.

Protocol: one JSON object per line each way. Out: ``ready`` (every session logged on; md: every book received),
``sample`` (answering ``{"cmd": "sample"}``: counters and the latency histograms since the last sample, of the
interval and of each wall-clock second),
``stopped`` (after ``stop``: no more load or logouts, every session in step; oe: the open orders by level),
``result`` (after ``finish``; md: books compared with ``truth``). ``exit`` logs every session out and ends.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from decimal import Decimal
from typing import Any

from bench.fixwire import DOWN, UP, Conn, LatencyHistogram, Loop, MdClient, OeClient, sum_counts

BUY_PRICES = [f"{t // 100}.{t % 100:02d}" for t in range(9900, 10000)]
SELL_PRICES = [f"{t // 100}.{t % 100:02d}" for t in range(10001, 10101)]
CROSS_BUY, CROSS_SELL = "100.05", "99.95"


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Cycler:
    """Logs one session out and back in every ``every`` seconds, in turn, each once it is in step."""

    DRAIN_LIMIT = 10.0  # seconds a session may take to get its answers before it logs out anyway
    BACK_LIMIT = 60.0  # seconds to be logged on and in step again
    # Seconds to wait for the venue's Logout. 5 s was too short in the 1-hour soak on a machine at load 10-14, with
    # the venue seconds behind: the client closed first, its own Logout unread, and the venue rightly asked for it
    # again at the next logon (counted as venue_resend_requests).
    LOGOUT_LIMIT = 30.0

    def __init__(self, conns: list[Conn], every: float, away: float) -> None:
        self.conns, self.every, self.away = conns, every, away
        self.enabled = every > 0
        self.current: Conn | None = None
        self.phase = ""
        self.phase_at = 0.0
        self.next_at = time.monotonic() + every
        self.turn = 0
        self.done = 0
        self.stuck = 0

    def busy(self, conn: Conn) -> bool:
        return conn is self.current

    @property
    def idle(self) -> bool:
        return self.current is None

    def tick(self, now: float) -> None:
        c = self.current
        if c is None:
            if self.enabled and now >= self.next_at and self.conns:
                self.current = self.conns[self.turn % len(self.conns)]
                self.turn += 1
                self.phase, self.phase_at = "drain", now
            return
        if self.phase == "drain":
            quiet = c.synced and not getattr(c, "pending", None)
            if quiet or now - self.phase_at > self.DRAIN_LIMIT:
                c.logout()
                self.phase, self.phase_at = "logout", now
        elif self.phase == "logout":
            if c.state == DOWN:
                self.phase, self.phase_at = "away", now
            elif now - self.phase_at > self.LOGOUT_LIMIT:  # no Logout answer: give up on the handshake
                c.drop()
        elif self.phase == "away":
            if now - self.phase_at >= self.away:
                c.logon(reset=False)
                self.phase, self.phase_at = "back", now
        elif self.phase == "back":
            if c.synced:
                self.done += 1
                self.current = None
                self.next_at = now + self.every
            elif now - self.phase_at > self.BACK_LIMIT:
                self.stuck += 1
                c.sample("not back in step a minute after logging on again")
                self.current = None
                self.next_at = now + self.every


class Child:
    """One client process: its sessions, the load (oe), the log-out/in cycle, the commands from the driver."""

    def __init__(self, role: str, spec: dict[str, Any]) -> None:
        self.role, self.spec = role, spec
        self.loop = Loop()
        self.running = False
        self.stopping = False
        self.exit = False
        self.sent = 0
        self.t0 = 0.0
        self.rate = float(spec.get("rate", 0))
        self.rr = 0
        self.skipped = 0
        self.commands: list[dict[str, Any]] = []
        self._stdin = b""
        run_id = f"{os.getpid():x}{int(time.time()) % 100000:x}"
        sessions = spec["sessions"]
        self.conns: list[Any] = []
        for k, s in enumerate(sessions):
            common = {"loop": self.loop, "comp_id": s["comp_id"], "password": s["password"], "port": s["port"],
                      "heartbeat": int(spec.get("heartbeat", 30))}  # fmt: skip
            if role == "oe":
                self.conns.append(
                    OeClient(
                        **common,
                        account=s["account"],
                        symbols=tuple(spec["symbols"]),
                        seed=int(spec.get("seed", 1)) * 1000 + k,
                        run_id=run_id,
                    )
                )
            else:
                self.conns.append(MdClient(**common, symbols=tuple(s["symbols"]), depth=int(s.get("depth", 0))))
        for c in self.conns:
            if isinstance(c, OeClient):
                c.by_second = {}
        per_session = int(spec.get("working_set", 0)) / max(len(self.conns), 1)
        self.target = max(per_session, 1.0)
        self.cycler = Cycler(self.conns, float(spec.get("relogon_every", 0)), float(spec.get("away", 1)))
        self.loop.add_reader(sys.stdin.buffer, self._read_stdin)
        os.set_blocking(sys.stdin.fileno(), False)

    # ---- commands
    def _read_stdin(self) -> None:
        try:
            data = os.read(sys.stdin.fileno(), 65536)
        except BlockingIOError:
            return
        if not data:
            self.exit = True
            self.loop.sel.unregister(sys.stdin.buffer)
            return
        self._stdin += data
        *lines, self._stdin = self._stdin.split(b"\n")
        self.commands += [json.loads(line) for line in lines if line.strip()]

    def handle(self, cmd: dict[str, Any]) -> None:
        what = cmd.get("cmd")
        if what == "start":
            self.running, self.t0, self.sent = True, time.monotonic(), 0
        elif what == "sample":
            emit(self.sample())
        elif what == "stop":
            self.stop()
        elif what == "finish":
            emit(self.result(cmd.get("truth", {})))
        elif what == "exit":
            self.exit = True

    # ---- load
    def step(self, c: OeClient) -> None:
        rng = c.rng
        n = len(c.orders)
        r = rng.random()
        if n < self.target * 0.9 or (r < 0.35 and n < self.target * 1.1):
            self.new_passive(c)
            return
        order = c.orders.choose_idle(rng)
        if order is None or r >= 0.9:
            buy = rng.random() < 0.5
            c.new_order(rng.choice(c.symbols), b"1" if buy else b"2", CROSS_BUY if buy else CROSS_SELL,
                        rng.randint(1, 10), b"3")  # fmt: skip
        elif r < 0.65 or n > self.target * 1.1:
            c.cancel(order)
        else:
            prices = BUY_PRICES if order.side == b"1" else SELL_PRICES
            c.replace(order, rng.choice(prices), rng.randint(1, 20))

    def new_passive(self, c: OeClient) -> None:
        rng = c.rng
        buy = rng.random() < 0.5
        c.new_order(rng.choice(c.symbols), b"1" if buy else b"2", rng.choice(BUY_PRICES if buy else SELL_PRICES),
                    rng.randint(1, 20))  # fmt: skip

    def pace(self, now: float) -> float:
        """Send what is due; returns the time until the next request is due."""
        due = int((now - self.t0) * self.rate) - self.sent
        burst = max(1, int(self.rate * 0.01))
        conns = self.conns
        for _ in range(min(due, burst)):
            self.sent += 1
            for _ in range(len(conns)):
                c = conns[self.rr % len(conns)]
                self.rr += 1
                if c.state == UP and c.synced and not self.cycler.busy(c):
                    self.step(c)
                    break
            else:
                self.skipped += 1  # nobody to send it: keep the schedule
        return self.t0 + (self.sent + 1) / self.rate - time.monotonic()

    # ---- the loop
    def run(self) -> None:
        for c in self.conns:
            c.logon(reset=True)
        ready = self.loop.run_until(self.all_ready, 120)
        emit({"event": "ready", "ok": ready, "sessions": len(self.conns),
              "not_ready": [c.comp_id for c in self.conns if not self.is_ready(c)][:10]})  # fmt: skip
        next_second = time.monotonic()
        while not self.exit:
            now = time.monotonic()
            timeout = 0.05
            if self.running and self.rate:
                timeout = min(timeout, self.pace(now))
            self.loop.run_once(timeout)
            while self.commands:
                self.handle(self.commands.pop(0))
            now = time.monotonic()
            if not self.stopping:
                self.cycler.tick(now)
            if now >= next_second:
                next_second = now + 1.0
                for c in self.conns:
                    c.keepalive(now)
        for c in self.conns:
            c.logout()
        self.loop.run_until(lambda: all(c.state == DOWN for c in self.conns), 10)

    def is_ready(self, c: Any) -> bool:
        return bool(c.synced and (self.role == "oe" or c.has_books))

    def all_ready(self) -> bool:
        return all(self.is_ready(c) for c in self.conns)

    def stop(self) -> None:
        """No more load; let a log-out/in in progress finish; wait until every session is answered and in step."""
        self.running = False

        def settled() -> bool:
            return self.cycler.idle and all(c.synced and not getattr(c, "pending", None) for c in self.conns)

        self.cycler.enabled = False
        ok = self.loop.run_until(settled, 120, lambda: self.cycler.tick(time.monotonic()))
        if ok:
            # Every request is answered, so the venue has processed them all; what they caused may still be on the
            # way (an IOC's fill behind its acknowledgement, a resting order's fill on another session). A Heartbeat
            # answering a TestRequest sent now comes after all of it on each session.
            barrier = b"settled-%d" % os.getpid()
            for c in self.conns:
                c.test_request(barrier)
            ok = self.loop.run_until(lambda: all(barrier in c.answered_test_requests for c in self.conns), 60)
        self.stopping = True
        out: dict[str, Any] = {"event": "stopped", "ok": ok}
        if self.role == "oe":
            levels: dict[tuple[str, str, Decimal], Decimal] = {}
            for c in self.conns:
                for key, qty in c.orders.levels().items():
                    levels[key] = levels.get(key, Decimal(0)) + qty
            out["levels"] = [[s, side, str(p), str(q)] for (s, side, p), q in sorted(levels.items())]
            # Each open order, so that a level the venue does not have can be traced to the orders behind it
            out["orders"] = [[o.symbol.decode(), o.side.decode(), o.price.decode(), o.leaves.decode(), c.comp_id,
                              o.order_id.decode(), o.clordid.decode()]
                             for c in self.conns for o in c.orders.by_id.values()]  # fmt: skip
            out["open_orders"] = sum(len(c.orders) for c in self.conns)
            out["unanswered"] = sum(len(c.pending) for c in self.conns)
        emit(out)

    def sample(self) -> dict[str, Any]:
        hist = LatencyHistogram()
        seconds: dict[int, LatencyHistogram] = {}
        for c in self.conns:
            if isinstance(c, OeClient):
                hist.merge(c.latency.counts)
                c.latency = LatencyHistogram()
                for second, h in (c.by_second or {}).items():
                    seconds.setdefault(second, LatencyHistogram()).merge(h.counts)
                c.by_second = {}
        readers = [c for c in self.conns if isinstance(c, MdClient)]
        lag = max((c.lag for c in readers), default=0.0)
        for c in readers:
            c.lag = 0.0
        return {"event": "sample", "latency": hist.to_json(), "counts": sum_counts(self.conns), "lag_s": lag,
                "relogons": self.cycler.done, "skipped": self.skipped, "cpu_s": round(cpu_seconds(), 3),
                "seconds": {str(s): h.to_json() for s, h in seconds.items()}}  # fmt: skip

    def result(self, truth: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"event": "result", "counts": sum_counts(self.conns), "relogons": self.cycler.done,
                               "relogons_stuck": self.cycler.stuck,
                               "samples": [s for c in self.conns for s in c.samples][:20]}  # fmt: skip
        errors: dict[str, int] = {}
        for c in self.conns:
            for k, v in c.errors().items():
                errors[k] = errors.get(k, 0) + v
        errors["lost_held_or_owed"] = sum(1 for c in self.conns if not c.synced)
        out["errors"] = errors
        if self.role == "md" and truth:
            out.update(self.compare(truth))
        return out

    def compare(self, truth: dict[str, Any]) -> dict[str, Any]:
        """Wait until every book has reached the truth's RptSeq, then compare bids and offers."""
        want = {
            key: (
                int(t["rpt"]),
                {Decimal(p): Decimal(q) for p, q in t["bids"]},
                {Decimal(p): Decimal(q) for p, q in t["asks"]},
            )
            for key, t in truth.items()
        }

        def caught_up() -> bool:
            return all(b.rpt >= want[view_key(s, c.depth)][0] for c in self.conns for s, b in c.books.items())

        self.loop.run_until(caught_up, 60)
        exact, total = 0, 0
        bad: list[str] = []
        for c in self.conns:
            for sym, book in c.books.items():
                rpt, bids, asks = want[view_key(sym, c.depth)]
                total += 1
                got_bids, got_asks = book.as_decimal()
                if book.rpt == rpt and got_bids == bids and got_asks == asks:
                    exact += 1
                elif len(bad) < 5:
                    bad.append(
                        f"{c.comp_id} {view_key(sym, c.depth)}: RptSeq {book.rpt} (venue {rpt}), "
                        f"{len(got_bids)}/{len(bids)} bid and {len(got_asks)}/{len(asks)} offer levels"
                    )
        return {"books_exact": exact, "books_total": total, "book_mismatch_samples": bad}


def view_key(symbol: bytes | str, depth: int) -> str:
    """How the driver names a view in the truth it sends: ``SYMBOL@DEPTH``."""
    return f"{symbol.decode() if isinstance(symbol, bytes) else symbol}@{depth}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in ("oe", "md"):
        print(__doc__, file=sys.stderr)
        return 2
    Child(argv[0], json.loads(argv[1])).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
