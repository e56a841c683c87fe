"""``fixgw client``: an interactive order-entry client over :class:`fixclient.FixSession`.

Commands are read from stdin, one per line (a terminal or a pipe)::

    buy QTY SYMBOL [@PRICE] [ioc|fok|gtc|day] [post]     no @PRICE: a market order
    sell QTY SYMBOL [@PRICE] [ioc|fok|gtc|day] [post]
    cancel CLORDID                                        OrderCancelRequest (F)
    replace CLORDID QTY [@PRICE]                          OrderCancelReplaceRequest (G)
    status CLORDID                                        OrderStatusRequest (H)
    cancelall [SYMBOL]                                    OrderMassCancelRequest (q)
    balances                                              RequestForPositions (AN): the account's assets
    positions                                             RequestForPositions (AN): the account's positions
    phase SYMBOL                                          SecurityStatusRequest (e): the instrument's phase
    session                                               TradingSessionStatusRequest (g): the venue's state
    orders                                                this run's open orders, as the client knows them
    quit                                                  (or end of input) wait for answers, log out

Every ExecutionReport, OrderCancelReject, mass-cancel report and Reject is printed as one line as it arrives::

    ER c1 NEW AAPL BUY 10@100.00 leaves=10 cum=0
    ER c2 FILL AAPL SELL 4@99.00 last=4@100.00 leaves=0 cum=4 avg=100
    REJECT c3 order quantity must be positive
    BALANCE USD available=3997.000000 held=0.000000
    POSITION BTC-USD net=0.3000 avg=20000.00 mark=20000.00 realized=-3.000000 unrealized=0.000000 USD
    STATUS AAPL halted "halted: volatility circuit breaker; reopening auction at 2026-12-07T14:02:07Z"
    SESSION open trading date 2026-12-07

The venue pushes a SecurityStatus (``STATUS``) on every phase change and a TradingSessionStatus (``SESSION``) when
the venue's state changes, while the session is logged on.

The client names its orders c1, c2, ...; the ClOrdID sent is that name behind a per-run prefix (``k3x9af-c1``) so
that a restarted client never reuses one. Commands accept either form. ``cancel``/``status`` of an order placed by
an earlier run take its symbol and side too: ``cancel k3x9af-c1 AAPL buy``.

One thread: ``select()`` waits on stdin and the socket together, so answers are shown while the user types.
"""

from __future__ import annotations

import argparse
import os
import select
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TextIO

import simplefix

from fixclient import FixSession, SessionError, field, group_entries, utc_now
from fixclient.tls import add_tls_arguments, context_from_args
from gateway.fixcodes import PHASE_STATUS, TradSesStatus
from tools.support import CLIError, default_password

EXEC_TYPES = {"0": "NEW", "4": "CANCELED", "5": "REPLACED", "8": "REJECTED", "C": "EXPIRED", "F": "FILL", "I": "STATUS"}
ORD_STATUS = {"0": "NEW", "1": "PARTIALLY_FILLED", "2": "FILLED", "4": "CANCELED", "8": "REJECTED", "C": "EXPIRED"}
SIDES = {"buy": "1", "sell": "2"}
SIDE_NAMES = {"1": "BUY", "2": "SELL"}
TIFS = {"day": "0", "gtc": "1", "ioc": "3", "fok": "4"}
TIF_NAMES = {v: k.upper() for k, v in TIFS.items()}
PHASES = {str(int(code)): phase.value for phase, code in PHASE_STATUS.items()} | {"20": "unknown"}
VENUE_STATES = {str(int(s)): s.name.lower().replace("_", "-") for s in TradSesStatus}
HELP = """commands:
  buy|sell QTY SYMBOL [@PRICE] [ioc|fok|gtc|day] [post]   (no @PRICE: market order)
  cancel CLORDID | replace CLORDID QTY [@PRICE] | status CLORDID | cancelall [SYMBOL]
  balances | positions   (the account's assets available/held; positions with average cost, mark and PnL)
  phase SYMBOL | session | orders | help | quit"""
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def run_prefix() -> str:
    """Five base-36 digits from the clock (tenths of a second, wrapping every ~70 days) and one from the pid:
    distinct for every run a person can start by hand."""
    n = int(time.time() * 10) % 36**5
    digits = []
    for _ in range(5):
        n, r = divmod(n, 36)
        digits.append(_ALPHABET[r])
    return "".join(reversed(digits)) + _ALPHABET[os.getpid() % 36]


@dataclass
class OrderInfo:
    """What the client knows about one of its orders."""

    name: str  # c1
    clordid: str  # the ClOrdID of the order's latest accepted version (changes on replace/cancel)
    symbol: str
    side: str  # FIX 54
    qty: str
    price: str | None
    tif: str  # FIX 59
    post_only: bool
    status: str = "PENDING_NEW"
    leaves: str = ""
    cum: str = "0"

    @property
    def open(self) -> bool:
        return self.status in ("PENDING_NEW", "NEW", "PARTIALLY_FILLED")


def _number(text: str, what: str) -> str:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise CLIError(f"{what} must be a number, not {text!r}") from None
    if not value.is_finite():
        raise CLIError(f"{what} must be a number, not {text!r}")
    return text


@dataclass
class PositionRequest:
    """A ``balances`` or ``positions`` command waiting for its AO and APs."""

    kind: str  # "balances" or "positions"
    remaining: int = 1  # reports still to come (the AO tells how many)
    shown: bool = False


def describe_position(msg: simplefix.FixMessage) -> str:
    """One line for a PositionReport: an asset's available and held amounts, or an instrument position's net
    quantity (negative: short), average cost, mark price and PnL in its quote currency."""
    (qty,) = group_entries(msg, 702, 703) or [{}]
    amounts = {e.get(707): e.get(708) for e in group_entries(msg, 753, 707)}
    symbol = field(msg, 55)
    if symbol is None:
        return f"BALANCE {field(msg, 15)} available={qty.get(704)} held={qty.get(705)}"
    short = qty.get(705, "0")
    net = f"-{short}" if Decimal(short) else qty.get(704, "0")
    return (
        f"POSITION {symbol} net={net} avg={field(msg, 734)} mark={field(msg, 730)} realized={amounts.get('CASH')} "
        f"unrealized={amounts.get('FMTM')} {field(msg, 15)}"
    )


class OrderEntryClient:
    """The command interpreter and the message printer; :meth:`run` drives both from one loop."""

    def __init__(self, session: FixSession, out: TextIO, account: str | None = None, prefix: str | None = None):
        self.session = session
        self.out = out
        self.account = account
        self.prefix = prefix or run_prefix()
        self.counter = 0
        self.orders: dict[str, OrderInfo] = {}  # by name and by every ClOrdID the order had
        self.names: dict[str, str] = {}  # ClOrdID -> name, for display
        self.pending: dict[int, str] = {}  # MsgSeqNum -> ClOrdID (or PosReqID) the answer will carry
        self.reports = 0
        self.position_requests: dict[str, PositionRequest] = {}  # PosReqID -> what to print of its answer

    # ------------------------------------------------------------------ output

    def say(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()

    def _name(self, clordid: str | None) -> str:
        if clordid is None:
            return "?"
        return self.names.get(clordid, clordid)

    # ------------------------------------------------------------------ commands

    def next_id(self) -> tuple[str, str]:
        """(name, ClOrdID) for a new request."""
        self.counter += 1
        name = f"c{self.counter}"
        clordid = f"{self.prefix}-{name}"
        self.names[clordid] = name
        return name, clordid

    def _send(self, msg_type: str, fields: list[tuple[int, Any]], answer_clordid: str) -> None:
        seq = self.session.send(msg_type, fields)
        self.pending[seq] = answer_clordid

    def execute(self, line: str) -> bool:
        """Run one command line; False once the user asked to quit. Mistakes are reported, not raised."""
        words = line.split()
        if not words or words[0].startswith("#"):
            return True
        verb, args = words[0].lower(), words[1:]
        try:
            if verb in ("quit", "exit", "q"):
                return False
            if verb in SIDES:
                self.new_order(verb, args)
            elif verb == "cancel":
                self.cancel(args)
            elif verb == "replace":
                self.replace(args)
            elif verb == "status":
                self.status(args)
            elif verb == "cancelall":
                self.cancel_all(args)
            elif verb in ("balances", "positions"):
                self.request_positions(verb, args)
            elif verb == "orders":
                self.list_orders()
            elif verb == "phase":
                if len(args) != 1:
                    raise CLIError("usage: phase SYMBOL")
                self._send("e", [(324, self.next_id()[1]), (55, args[0].upper()), (263, "0")], "")
            elif verb == "session":
                self._send("g", [(335, self.next_id()[1]), (263, "0")], "")
            elif verb in ("help", "?"):
                self.say(HELP)
            else:
                raise CLIError(f"unknown command {verb!r} (try help)")
        except CLIError as exc:
            self.say(f"error: {exc}")
        return True

    def new_order(self, verb: str, args: list[str]) -> None:
        if len(args) < 2:
            raise CLIError(f"usage: {verb} QTY SYMBOL [@PRICE] [ioc|fok|gtc|day] [post]")
        qty = _number(args[0], "quantity")
        symbol = args[1].upper()
        price: str | None = None
        tif, post = "0", False
        for word in args[2:]:
            low = word.lower()
            if word.startswith("@"):
                price = _number(word[1:], "price")
            elif low in TIFS:
                tif = TIFS[low]
            elif low == "post":
                post = True
            else:
                raise CLIError(f"unexpected {word!r}: usage: {verb} QTY SYMBOL [@PRICE] [ioc|fok|gtc|day] [post]")
        side = SIDES[verb]
        name, clordid = self.next_id()
        info = OrderInfo(name, clordid, symbol, side, qty, price, tif, post)
        self.orders[name] = self.orders[clordid] = info
        fields: list[tuple[int, Any]] = [
            (11, clordid), (1, self.account), (55, symbol), (54, side), (38, qty),
            (40, "2" if price is not None else "1"), (44, price), (59, tif), (18, "6" if post else None),
            (60, utc_now()),
        ]  # fmt: skip
        self._send("D", fields, clordid)
        where = f"@{price}" if price is not None else "market"
        extra = " post-only" if post else ""
        self.say(f"sent {name} {verb} {qty} {symbol} {where} {TIF_NAMES[tif]}{extra} (ClOrdID {clordid})")

    def _order(self, args: list[str], usage: str) -> OrderInfo:
        if not args:
            raise CLIError(f"usage: {usage}")
        ref = args[0]
        info = self.orders.get(ref)
        if info is not None:
            return info
        if len(args) >= 3 and args[2].lower() in SIDES:  # an order of an earlier run: CLORDID SYMBOL SIDE
            side = SIDES[args[2].lower()]
            return OrderInfo(ref, ref, args[1].upper(), side, "0", None, "0", False, status="NEW")
        raise CLIError(f"unknown order {ref!r}: for an order of an earlier run give CLORDID SYMBOL buy|sell")

    def cancel(self, args: list[str]) -> None:
        info = self._order(args, "cancel CLORDID")
        name, clordid = self.next_id()
        qty = info.qty if info.qty != "0" else None
        fields = [(11, clordid), (41, info.clordid), (55, info.symbol), (54, info.side), (38, qty), (60, utc_now())]
        self._send("F", fields, clordid)
        self.say(f"sent {name} cancel {info.name}")

    def replace(self, args: list[str]) -> None:
        if len(args) < 2:
            raise CLIError("usage: replace CLORDID QTY [@PRICE]")
        info = self._order(args[:1], "replace CLORDID QTY [@PRICE]")
        qty = _number(args[1], "quantity")
        price = info.price
        for word in args[2:]:
            if not word.startswith("@"):
                raise CLIError(f"unexpected {word!r}: usage: replace CLORDID QTY [@PRICE]")
            price = _number(word[1:], "price")
        if price is None:
            raise CLIError(f"{info.name} is a market order: nothing to replace")
        name, clordid = self.next_id()
        fields: list[tuple[int, Any]] = [
            (11, clordid), (41, info.clordid), (1, self.account), (55, info.symbol), (54, info.side), (38, qty),
            (40, "2"), (44, price), (59, info.tif), (18, "6" if info.post_only else None), (60, utc_now()),
        ]  # fmt: skip
        self.orders[name] = info  # the replacement's name refers to the same order
        self._send("G", fields, clordid)
        self.say(f"sent {name} replace {info.name} {qty} @{price}")

    def status(self, args: list[str]) -> None:
        info = self._order(args, "status CLORDID")
        self._send("H", [(11, info.clordid), (55, info.symbol), (54, info.side)], info.clordid)
        self.say(f"sent status {info.name}")

    def cancel_all(self, args: list[str]) -> None:
        if len(args) > 1:
            raise CLIError("usage: cancelall [SYMBOL]")
        name, clordid = self.next_id()
        fields: list[tuple[int, Any]] = [(11, clordid), (530, "1" if args else "7"), (60, utc_now())]
        if args:
            fields.append((55, args[0].upper()))
        self._send("q", fields, clordid)
        self.say(f"sent {name} cancelall {args[0].upper() if args else '(all symbols)'}")

    def request_positions(self, verb: str, args: list[str]) -> None:
        """RequestForPositions (AN) for the account (``--account``, else the session's only one); ``balances``
        prints the answer's asset reports, ``positions`` its instrument reports."""
        if args:
            raise CLIError(f"usage: {verb}")
        self.counter += 1
        req_id = f"{self.prefix}-p{self.counter}"
        self.position_requests[req_id] = PositionRequest(verb)
        fields: list[tuple[int, Any]] = [
            (710, req_id), (724, "0"), (1, self.account), (581, "1"),
            (715, datetime.now(UTC).strftime("%Y%m%d")), (60, utc_now()),
        ]  # fmt: skip
        self._send("AN", fields, req_id)
        self.say(f"sent {verb} request (PosReqID {req_id})")

    def list_orders(self) -> None:
        shown = {id(o): o for o in self.orders.values() if o.open}
        if not shown:
            self.say("no open orders")
        for o in shown.values():
            where = f"@{o.price}" if o.price is not None else "market"
            self.say(
                f"{o.name} {SIDE_NAMES.get(o.side, o.side)} {o.qty} {o.symbol} {where} {o.status} "
                f"leaves={o.leaves or o.qty} cum={o.cum} (ClOrdID {o.clordid})"
            )

    # ------------------------------------------------------------------ incoming

    def _answered(self, clordid: str | None = None, ref_seq: str | None = None) -> None:
        if ref_seq is not None and ref_seq.isdigit():
            self.pending.pop(int(ref_seq), None)
            return
        for seq, expected in self.pending.items():
            if expected == clordid:
                del self.pending[seq]
                return

    def on_message(self, msg: simplefix.FixMessage) -> None:
        msg_type = field(msg, 35)
        text = field(msg, 58)
        if msg_type == "8":
            self.reports += 1
            self._answered(field(msg, 11))
            self.say(self.describe_er(msg))
        elif msg_type == "9":
            self._answered(field(msg, 11))
            what = "REPLACE_REJECT" if field(msg, 434) == "2" else "CANCEL_REJECT"
            self.say(f"{what} {self._name(field(msg, 11))} orig={self._name(field(msg, 41))} {text or ''}".rstrip())
        elif msg_type == "r":
            self._answered(field(msg, 11))
            name = self._name(field(msg, 11))
            if field(msg, 531) == "0":
                self.say(f"MASS_CANCEL_REJECT {name} {text or ''}".rstrip())
            else:
                self.say(f"MASS_CANCEL {name} {field(msg, 55) or 'all symbols'} cancelled={field(msg, 533)}")
        elif msg_type in ("AO", "AP"):
            self.on_position_message(msg)
        elif msg_type == "3":
            self._answered(ref_seq=field(msg, 45))
            self.say(f"SESSION_REJECT seq={field(msg, 45)} tag={field(msg, 371) or '-'} {text or ''}".rstrip())
        elif msg_type == "j":
            self._answered(ref_seq=field(msg, 45))
            self.say(f"BUSINESS_REJECT seq={field(msg, 45)} type={field(msg, 372)} {text or ''}".rstrip())
        elif msg_type == "f":
            if field(msg, 325) == "N":  # an answer (UnsolicitedIndicator N), not a push
                self._answered("")
            code = field(msg, 326) or ""
            self.say(f'STATUS {field(msg, 55)} {PHASES.get(code, code)} "{text or ""}"')
        elif msg_type == "h":
            if field(msg, 325) == "N":
                self._answered("")
            code = field(msg, 340) or ""
            self.say(f"SESSION {VENUE_STATES.get(code, code)} trading date {field(msg, 336)}")
        else:
            self.say(f"MSG {msg_type} {msg}")

    def on_position_message(self, msg: simplefix.FixMessage) -> None:
        """RequestForPositionsAck (AO) and PositionReport (AP): one line per report the command asked for."""
        req_id = field(msg, 710) or ""
        request = self.position_requests.get(req_id)
        if request is None:
            return
        if field(msg, 35) == "AO":
            request.remaining = int(field(msg, 727) or 0)
            if field(msg, 729) != "0":  # PosReqStatus 2: rejected
                self.say(f"POSITIONS_REJECT {field(msg, 1) or '?'} {field(msg, 58) or ''}".rstrip())
                request.remaining = 0
                request.shown = True
        else:
            request.remaining -= 1
            line = describe_position(msg)
            if line.startswith("BALANCE") == (request.kind == "balances"):
                self.say(line)
                request.shown = True
        if request.remaining <= 0:
            if not request.shown:
                self.say(f"no {request.kind}")
            del self.position_requests[req_id]
            self._answered(req_id)

    def describe_er(self, msg: simplefix.FixMessage) -> str:
        """One readable line for an ExecutionReport (and the client's view of the order updated)."""
        clordid = field(msg, 11)
        name = self._name(clordid)
        exec_type, status, text = field(msg, 150) or "", field(msg, 39) or "", field(msg, 58)
        info = self.orders.get(clordid or "")
        orig = field(msg, 41)
        if info is None and orig is not None:
            info = self.orders.get(orig)
        if info is not None and not (exec_type == "I" and status == "8"):  # (not an "unknown order" answer)
            info.status = ORD_STATUS.get(status, status)
            info.leaves = field(msg, 151) or info.leaves
            info.cum = field(msg, 14) or info.cum
            if exec_type == "5" and clordid is not None:
                info.clordid = clordid
                info.qty = field(msg, 38) or info.qty
                info.price = field(msg, 44) or info.price
                self.orders[clordid] = info
            elif exec_type == "4" and clordid is not None:
                info.clordid = clordid
                self.orders[clordid] = info
        if exec_type == "8":
            return f"REJECT {name} {text or ''}".rstrip()
        kind = EXEC_TYPES.get(exec_type, f"150={exec_type}")
        if exec_type == "F" and status != "2":
            kind = "PARTIAL_FILL"
        side = SIDE_NAMES.get(field(msg, 54) or "", "?")
        price = field(msg, 44) or "MKT"
        parts = [f"ER {name} {kind} {field(msg, 55) or '?'} {side} {field(msg, 38) or '?'}@{price}"]
        if exec_type == "F":
            parts.append(f"last={field(msg, 32)}@{field(msg, 31)}")
        parts.append(f"leaves={field(msg, 151)} cum={field(msg, 14)}")
        if field(msg, 14) not in (None, "0") and field(msg, 6):
            parts.append(f"avg={field(msg, 6)}")
        if orig is not None:
            parts.append(f"orig={self._name(orig)}")
        if exec_type == "I":
            parts.append(f"status={ORD_STATUS.get(status, status)}")
        if text and exec_type in ("4", "C", "I"):
            parts.append(f'"{text}"')
        return " ".join(parts)

    # ------------------------------------------------------------------ the loop

    def pump(self) -> None:
        """Handle everything the socket has ready (returns after ~1 ms without data; answers heartbeats)."""
        while (msg := self.session.receive(0.001)) is not None:
            self.on_message(msg)

    def run(self, stdin_fd: int, answer_timeout: float = 5.0) -> int:
        """Read commands until quit or end of input, then wait for outstanding answers and log out."""
        sock = self.session.sock
        assert sock is not None
        buffered = b""
        reading = True
        while reading:
            ready, _, _ = select.select([stdin_fd, sock], [], [], 1.0)
            if sock in ready or not ready:  # not ready: a quiet second, time to heartbeat if due
                self.pump()
            if stdin_fd in ready:
                chunk = os.read(stdin_fd, 4096)
                if not chunk:
                    break
                buffered += chunk
                while b"\n" in buffered:
                    line, buffered = buffered.split(b"\n", 1)
                    if not self.execute(line.decode(errors="replace")):
                        reading = False
                        break
        if reading and buffered.strip():  # last line without a newline
            self.execute(buffered.decode(errors="replace"))
        deadline = time.monotonic() + answer_timeout
        while self.pending and time.monotonic() < deadline:
            ready, _, _ = select.select([sock], [], [], max(0.0, deadline - time.monotonic()))
            if ready:
                self.pump()
        if self.pending:
            print(f"fixgw client: {len(self.pending)} request(s) still unanswered at logout", file=sys.stderr)
        self.session.logout()
        return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9876, help="order-entry port (default 9876)")
    p.add_argument("--comp-id", default="CLIENT1", help="our SenderCompID and Username (default CLIENT1)")
    p.add_argument("--password", help="default: $FIXGW_PASSWORD, else the demo password pass<N> for CLIENT<N>")
    p.add_argument("--account", help="Account (1) of orders, balances and positions (default: the session's only one)")
    p.add_argument("--target", default="EXCH", help="the venue's CompID (default EXCH)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for logon, and for answers at quit")
    add_tls_arguments(p)


def main(args: argparse.Namespace) -> int:
    password = args.password or default_password(args.comp_id)
    session = FixSession(
        args.host, args.port, args.comp_id, password, args.target, reset_seq=True, tls=context_from_args(args),
        server_name=args.tls_server_name,
    )  # fmt: skip
    try:
        session.connect(args.timeout)
    except OSError as exc:
        raise CLIError(f"cannot connect to {args.host}:{args.port}: {exc.strerror or exc}") from None
    try:
        session.logon(args.timeout)
    except TimeoutError:
        raise CLIError(f"no Logon answer from {args.host}:{args.port} within {args.timeout:g}s") from None
    except SessionError as exc:
        raise CLIError(f"logon as {args.comp_id} refused: {exc}") from None
    client = OrderEntryClient(session, sys.stdout, args.account)
    print(
        f"logged on to {args.host}:{args.port} as {args.comp_id}; ClOrdIDs {client.prefix}-c1, "
        f"{client.prefix}-c2, ... (type c1, c2, ...); 'help' lists commands",
        file=sys.stderr,
        flush=True,
    )
    try:
        return client.run(sys.stdin.fileno(), args.timeout)
    except SessionError as exc:
        raise CLIError(f"session ended by the venue: {exc}") from None
    finally:
        session.close()
