"""``fixgw simulate``: random but realistic order flow through real FIX sessions.

Each simulated participant is one order-entry session (:class:`fixclient.FixSession`). At ``--rate`` order messages
per second, spread over the sessions at random, the simulator sends the kind of flow a lit book sees:

* 55% passive limit orders on either side, a few ticks (geometrically distributed) behind the touch;
* 15% cancels and 10% cancel/replaces (a new quantity, or the price moved a tick or three) of the session's own
  resting orders;
* 20% marketable orders: limit IOC or DAY orders priced through the touch, and some market orders.

The touch follows a mean-reverting random walk around ``--base-price``; quantities are small round lots. A session
never has more than ``MAX_OPEN`` orders resting: beyond that it cancels. It stops after ``--seconds`` or
``--orders`` order messages, waits for the last answers, logs every session out and prints a summary; a progress
line is shown every second meanwhile. One thread: ``select()`` over the sessions' sockets.
"""

from __future__ import annotations

import argparse
import random
import select
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import simplefix

from fixclient import FixSession, SessionError, utc_now
from fixclient import field as fix_field
from fixclient.tls import add_tls_arguments, context_from_args
from tools.client import run_prefix
from tools.support import CLIError, Progress, default_password, read_password_file

MAX_OPEN = 30  # resting orders per session before it starts cancelling
QTY_STEPS = (1, 1, 2, 5, 5, 10, 10, 20, 50, 100)  # order sizes in quantity units (see _qty_unit)
ANSWER_TIMEOUT = 5.0  # seconds to wait for outstanding answers at the end


@dataclass
class SimOrder:
    clordid: str
    side: str  # FIX 54
    price: int | None  # ticks; None for a market order
    qty: int  # lots
    leaves: int
    acked: bool = False
    busy: bool = False  # a cancel or replace is in flight


@dataclass
class SimSession:
    comp_id: str
    session: FixSession
    orders: dict[str, SimOrder] = field(default_factory=dict)  # by every ClOrdID the order had
    pending: dict[str, int] = field(default_factory=dict)  # ClOrdID awaiting its first answer -> MsgSeqNum

    def resting(self) -> list[SimOrder]:
        live = (o for o in self.orders.values() if o.acked and not o.busy and o.leaves and o.price is not None)
        return list({id(o): o for o in live}.values())


@dataclass
class Counts:
    new: int = 0
    marketable: int = 0
    cancel: int = 0
    replace: int = 0
    ers: int = 0
    fills: int = 0
    trades: int = 0
    traded_lots: int = 0
    rejects: int = 0
    cancel_rejects: int = 0
    session_rejects: int = 0

    @property
    def sent(self) -> int:
        return self.new + self.cancel + self.replace


class Simulator:
    """Drives the sessions; :meth:`run` returns the counts."""

    def __init__(
        self,
        sessions: list[SimSession],
        symbol: str,
        base_price: Decimal,
        tick: Decimal,
        lot: Decimal,
        rate: float,
        seconds: float | None,
        max_orders: int | None,
        rng: random.Random,
        progress: Progress | None = None,
    ) -> None:
        self.sessions = sessions
        self.symbol = symbol
        self.tick, self.lot = tick, lot
        self.base = int(base_price / tick)
        self.mid = float(self.base)
        self.half_spread = 2
        self.unit = _qty_unit(lot)
        self.rate = rate
        self.seconds = seconds
        self.max_orders = max_orders
        self.rng = rng
        self.progress = progress
        self.counts = Counts()
        self.prefix = run_prefix()
        self._ids = 0
        self.by_sock = {id(s.session.sock): s for s in sessions}
        self.elapsed = 0.0

    # ------------------------------------------------------------------ order flow

    def next_id(self) -> str:
        self._ids += 1
        return f"{self.prefix}-s{self._ids}"

    def _price(self, ticks: int) -> str:
        return str(self.tick * max(ticks, 1))

    def _lots(self) -> int:
        return int(self.unit * self.rng.choice(QTY_STEPS) / self.lot)

    def step(self) -> None:
        """Send one order message from a random session."""
        rng = self.rng
        # Mean-reverting walk of the mid price (in ticks), about one tick of noise per order.
        self.mid += rng.gauss(0.0, 0.6) + 0.02 * (self.base - self.mid)
        s = rng.choice(self.sessions)
        resting = s.resting()
        r = rng.random()
        if len(resting) >= MAX_OPEN or (r < 0.15 and resting):
            self.cancel(s, rng.choice(resting))
        elif r < 0.25 and resting:
            self.replace(s, rng.choice(resting))
        elif r < 0.45:
            self.marketable(s)
        else:
            self.passive(s)

    def passive(self, s: SimSession) -> None:
        side = self.rng.choice("12")
        behind = min(int(self.rng.expovariate(0.4)), 25)
        mid = round(self.mid)
        price = mid - self.half_spread - behind if side == "1" else mid + self.half_spread + behind
        self.new_order(s, side, price, "0")

    def marketable(self, s: SimSession) -> None:
        side = self.rng.choice("12")
        r = self.rng.random()
        if r < 0.25:
            self.new_order(s, side, None, "3")  # market, IOC
        else:
            through = self.rng.randint(0, 3)
            mid = round(self.mid)
            price = mid + self.half_spread + through if side == "1" else mid - self.half_spread - through
            self.new_order(s, side, price, "3" if r < 0.75 else "0")
        self.counts.marketable += 1

    def new_order(self, s: SimSession, side: str, price: int | None, tif: str) -> None:
        lots = self._lots()
        clordid = self.next_id()
        fields: list[tuple[int, Any]] = [
            (11, clordid), (55, self.symbol), (54, side), (38, self.lot * lots),
            (40, "2" if price is not None else "1"), (44, self._price(price) if price is not None else None),
            (59, tif), (60, utc_now()),
        ]  # fmt: skip
        s.orders[clordid] = SimOrder(clordid, side, max(price, 1) if price is not None else None, lots, lots)
        s.pending[clordid] = s.session.send("D", fields)
        self.counts.new += 1

    def cancel(self, s: SimSession, order: SimOrder) -> None:
        clordid = self.next_id()
        order.busy = True
        fields = [(11, clordid), (41, order.clordid), (55, self.symbol), (54, order.side), (60, utc_now())]
        s.orders[clordid] = order
        s.pending[clordid] = s.session.send("F", fields)
        self.counts.cancel += 1

    def replace(self, s: SimSession, order: SimOrder) -> None:
        assert order.price is not None  # only limit orders rest
        price, qty = order.price, order.qty
        if self.rng.random() < 0.5:
            qty = max(order.qty - order.leaves + self._lots(), order.qty - order.leaves + 1)  # keep cum below
        else:
            price = max(1, price + self.rng.choice((-3, -2, -1, 1, 2, 3)))
        clordid = self.next_id()
        order.busy = True
        fields: list[tuple[int, Any]] = [
            (11, clordid), (41, order.clordid), (55, self.symbol), (54, order.side), (38, self.lot * qty),
            (40, "2"), (44, self._price(price)), (59, "0"), (60, utc_now()),
        ]  # fmt: skip
        s.orders[clordid] = order
        s.pending[clordid] = s.session.send("G", fields)
        self.counts.replace += 1

    # ------------------------------------------------------------------ answers

    def on_message(self, s: SimSession, msg: simplefix.FixMessage) -> None:
        msg_type = fix_field(msg, 35)
        clordid = fix_field(msg, 11) or ""
        c = self.counts
        if msg_type == "8":
            c.ers += 1
            s.pending.pop(clordid, None)
            order = s.orders.get(clordid) or s.orders.get(fix_field(msg, 41) or "")
            exec_type = fix_field(msg, 150)
            leaves = self._to_lots(fix_field(msg, 151))
            if exec_type == "F":
                c.fills += 1
                if fix_field(msg, 851) == "2":  # count each trade once: on the aggressor's report
                    c.trades += 1
                    c.traded_lots += self._to_lots(fix_field(msg, 32))
            elif exec_type == "8":
                c.rejects += 1
            if order is None:
                return
            order.leaves = leaves
            if exec_type == "0":
                order.acked = True
            elif exec_type == "5":
                order.busy = False
                order.clordid = clordid
                order.qty = self._to_lots(fix_field(msg, 38)) or order.qty
                order.price = self._to_ticks(fix_field(msg, 44)) or order.price
            if fix_field(msg, 39) in ("2", "4", "8", "C"):  # done: forget every ClOrdID it had
                for key in [k for k, o in s.orders.items() if o is order]:
                    del s.orders[key]
        elif msg_type == "9":
            c.cancel_rejects += 1
            s.pending.pop(clordid, None)
            order = s.orders.pop(clordid, None)
            if order is not None:
                order.busy = False
                if fix_field(msg, 39) in ("2", "4", "8", "C"):  # too late: the order is done
                    for key in [k for k, o in s.orders.items() if o is order]:
                        del s.orders[key]
        elif msg_type in ("3", "j"):
            c.session_rejects += 1
            ref = fix_field(msg, 45)
            for key, seq in list(s.pending.items()):
                if str(seq) == ref:
                    del s.pending[key]

    def _to_lots(self, text: str | None) -> int:
        try:
            return int(Decimal(text or "0") / self.lot)
        except InvalidOperation:
            return 0

    def _to_ticks(self, text: str | None) -> int | None:
        try:
            return int(Decimal(text) / self.tick) if text else None
        except InvalidOperation:
            return None

    def pump(self, timeout: float) -> None:
        """Wait up to ``timeout`` for any session to have data, then handle everything that arrived."""
        socks = [s.session.sock for s in self.sessions if s.session.sock is not None]
        ready, _, _ = select.select(socks, [], [], max(timeout, 0.0))
        for sock in ready:
            s = self.by_sock[id(sock)]
            try:
                while (msg := s.session.receive(0.0005)) is not None:
                    self.on_message(s, msg)
            except SessionError as exc:
                raise CLIError(f"session {s.comp_id} ended by the venue: {exc}") from None

    # ------------------------------------------------------------------ the run

    def finished(self, now: float, start: float) -> bool:
        if self.max_orders is not None and self.counts.sent >= self.max_orders:
            return True
        return self.seconds is not None and now - start >= self.seconds

    def status_line(self, now: float, start: float) -> str:
        c = self.counts
        open_orders = sum(len(s.resting()) for s in self.sessions)
        return (
            f"simulate {now - start:5.1f}s: sent {c.sent} (new {c.new}, cancel {c.cancel}, replace {c.replace}), "
            f"ERs {c.ers}, fills {c.fills}, rejects {c.rejects + c.cancel_rejects + c.session_rejects}, "
            f"resting {open_orders}"
        )

    def run(self) -> Counts:
        interval = 1.0 / self.rate
        start = time.monotonic()
        next_send = start
        while True:
            now = time.monotonic()
            if self.finished(now, start):
                break
            if now >= next_send:
                self.step()
                next_send += interval
                if now - next_send > 1.0:  # fell behind by a second: don't burst to catch up
                    next_send = now
                continue
            self.pump(min(next_send - now, 0.1))
            if self.progress is not None and self.progress.due():
                self.progress.show(self.status_line(time.monotonic(), start))
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while any(s.pending for s in self.sessions) and time.monotonic() < deadline:
            self.pump(min(0.1, deadline - time.monotonic()))
        self.elapsed = time.monotonic() - start
        if self.progress is not None:
            self.progress.done()
        return self.counts

    def unanswered(self) -> int:
        return sum(len(s.pending) for s in self.sessions)


def _qty_unit(lot: Decimal) -> Decimal:
    """The size step of simulated orders: one lot, or 0.001 for finely divided instruments (crypto)."""
    if lot >= 1:
        return lot
    unit = Decimal("0.001")
    return unit if unit % lot == 0 else lot


def session_ids(spec: str) -> list[str]:
    """``3`` -> CLIENT1..CLIENT3; ``CLIENT2,CLIENT5`` -> those."""
    spec = spec.strip()
    if spec.isdigit():
        n = int(spec)
        if n < 1:
            raise CLIError("--sessions must be at least 1")
        return [f"CLIENT{i}" for i in range(1, n + 1)]
    ids = [s.strip() for s in spec.split(",") if s.strip()]
    if not ids:
        raise CLIError("--sessions: give a count or comma-separated CompIDs")
    return ids


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9876, help="order-entry port (default 9876)")
    p.add_argument("--symbol", default="AAPL")
    p.add_argument("--base-price", default="100.00", help="centre of the random walk (default 100.00)")
    p.add_argument("--rate", type=float, default=20.0, help="order messages per second, all sessions (default 20)")
    p.add_argument("--seconds", type=float, help="stop after this long (default 10 s unless --orders is given)")
    p.add_argument("--orders", type=int, help="stop after this many order messages (new, cancel, replace)")
    p.add_argument("--sessions", default="2", help="N for CLIENT1..N, or comma-separated CompIDs (default 2)")
    p.add_argument("--password-file", type=Path, help="COMPID=PASSWORD lines (default: $FIXGW_PASSWORD or demo)")
    p.add_argument("--seed", type=int, help="random seed (default: a fresh one, printed in the summary)")
    p.add_argument("--config", help="venue config for the symbol's tick and lot size (default: the demo config)")
    p.add_argument("--tick-size", help="override the tick size")
    p.add_argument("--lot-size", help="override the lot size")
    p.add_argument("--target", default="EXCH", help="the venue's CompID (default EXCH)")
    add_tls_arguments(p)


def _grid(args: argparse.Namespace) -> tuple[Decimal, Decimal]:
    tick = lot = None
    if not (args.tick_size and args.lot_size):
        from gateway.config import load_config

        cfg = load_config(args.config)
        ins = {i.symbol: i for i in cfg.instruments}.get(args.symbol)
        if ins is None:
            raise CLIError(f"{args.symbol} is not in {cfg.source}: pass --config, or --tick-size and --lot-size")
        tick, lot = ins.tick_size, ins.lot_size
    try:
        tick = Decimal(args.tick_size) if args.tick_size else tick
        lot = Decimal(args.lot_size) if args.lot_size else lot
    except InvalidOperation:
        raise CLIError("--tick-size and --lot-size must be numbers") from None
    assert tick is not None and lot is not None
    if tick <= 0 or lot <= 0:
        raise CLIError("--tick-size and --lot-size must be positive")
    return tick, lot


def main(args: argparse.Namespace) -> int:
    if args.rate <= 0:
        raise CLIError("--rate must be positive")
    if args.orders is not None and args.orders < 1:
        raise CLIError("--orders must be at least 1")
    seconds = args.seconds if args.seconds is not None else (None if args.orders is not None else 10.0)
    try:
        base = Decimal(args.base_price)
    except InvalidOperation:
        raise CLIError(f"--base-price must be a number, not {args.base_price!r}") from None
    tick, lot = _grid(args)
    if base <= 0 or base % tick:
        raise CLIError(f"--base-price {base} must be positive and a multiple of the tick size {tick}")
    passwords = read_password_file(args.password_file) if args.password_file else {}
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    comp_ids = session_ids(args.sessions)
    tls = context_from_args(args)
    sessions: list[SimSession] = []
    try:
        for comp_id in comp_ids:
            fs = FixSession(args.host, args.port, comp_id, default_password(comp_id, passwords), args.target,
                            reset_seq=True, tls=tls, server_name=args.tls_server_name)  # fmt: skip
            try:
                fs.connect()
            except OSError as exc:
                raise CLIError(f"cannot connect to {args.host}:{args.port}: {exc.strerror or exc}") from None
            sessions.append(SimSession(comp_id, fs))
            try:
                fs.logon()
            except (SessionError, TimeoutError) as exc:
                raise CLIError(f"logon as {comp_id} refused: {exc}") from None
        print(
            f"simulate: {len(sessions)} session(s) logged on; {args.symbol} around {base}, {args.rate:g} orders/s, "
            f"seed {seed}",
            file=sys.stderr,
            flush=True,
        )
        sim = Simulator(
            sessions, args.symbol, base, tick, lot, args.rate, seconds, args.orders, random.Random(seed), Progress()
        )
        c = sim.run()
    finally:
        for s in sessions:
            s.session.logout(timeout=2.0)
    elapsed = max(sim.elapsed, 1e-9)
    print(
        f"simulated {c.sent} orders in {elapsed:.2f}s ({c.sent / elapsed:.1f}/s) on {args.symbol} around {base} "
        f"with {len(sessions)} session(s) ({', '.join(comp_ids)}), seed {seed}"
    )
    print(f"  sent: orders={c.sent} new={c.new} marketable={c.marketable} cancel={c.cancel} replace={c.replace}")
    print(
        f"  received: ers={c.ers} fills={c.fills} trades={c.trades} traded_qty={lot * c.traded_lots} "
        f"rejects={c.rejects} cancel_rejects={c.cancel_rejects} session_rejects={c.session_rejects} "
        f"unanswered={sim.unanswered()}"
    )
    return 0
