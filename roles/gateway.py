"""The order-entry gateway role: the FIX sessions pinned to this process, with the engine in another one.

``fixgw serve --role gateway --name gw1 --config venue.toml`` serves the sessions of ``[cluster.gateways.gw1]``
(order entry and drop copy) exactly as the one-process venue does: it is the same :class:`~gateway.server.Gateway`
(QuickFIX acceptor, logon checks, validation and translation at the edge, replies built as text, one loop thread),
with one difference: a command is not run here, it is published.

* **Out:** every command the edge builds is appended to the shard's command stream; the commands of one loop turn
  are one message (:class:`~seqlog.jetstream.JetStreamWriter`), stored on a quorum of servers before JetStream
  acknowledges it. Nothing is said to the client then: the engine only ever sees stored commands, so the report
  that answers a command is itself the proof that the command is durable.
* **In:** the gateway follows the result stream (result message ``n`` holds the events of command message ``n``)
  and turns every event into replies for the sessions it serves: the ExecutionReports of its own requests, the
  fills that another gateway's orders caused against its clients' orders, drop copies. The request's own context
  (the client's fields a reject echoes, a mass cancel's request type) is kept per published message until its
  results come back, found by the message id the engine copies into the result's headers.
* **The operator channel**, if its table has an ``operator_port``: ``fixgw admin`` requests relayed to the active
  engine (:mod:`roles.operator`).
* **After a restart** the gateway reads the result stream from its start before it accepts a logon. It sends
  again only what its sessions' FIX stores do not hold (ExecutionReports above each session's highest ExecID, as
  the one-process venue does after a crash), then applies cancel-on-disconnect to every session that has it (a
  MassCancel; the engine makes it a no-op when nothing rests).

What it shares with the market-data publisher (the loop, following the result stream, catching up) is
:mod:`roles.front`.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nats.aio.msg import Msg
from nats.js import JetStreamContext

from engine import CancelReject, Command, Event, Execution, PhaseChange, TradingDayChange
from engine.codec import encode
from engine.eventcodec import decode_events
from gateway.config import Role, VenueConfig
from gateway.journal import last_exec_id
from gateway.order_entry import ON_DISCONNECT, OrderEntry
from gateway.orders import Echo
from gateway.positions import CUSTOMER
from gateway.server import run
from roles.config import ClusterConfig, ProcessSpec
from roles.engine import BATCH
from roles.front import ClusterFront
from roles.operator import relay
from seqlog.jetstream import ORIGIN, JetStreamWriter, unpack

Context = tuple[Echo | None, str | None, str, float]
"""What a command's replies need besides its events: echo, request type, account type (OrderEntry.complete), and
``perf_counter()`` when it was published (order -> report latency)."""


_REPORT_TYPE = re.compile(rb"\x0135=([89])\x01")


def rejects_after_last_report(store_body: Path, tail: int = 4 << 20) -> int:
    """OrderCancelRejects (35=9) after the last ExecutionReport in a QuickFIX FileStore body file."""
    if not store_body.exists():
        return 0
    with store_body.open("rb") as f:
        size = f.seek(0, os.SEEK_END)
        for start in (max(0, size - tail), 0):
            f.seek(start)
            types = _REPORT_TYPE.findall(f.read())
            if b"8" in types or start == 0:
                return types[::-1].index(b"8") if b"8" in types else len(types)
    return 0


class RemoteOrderEntry(OrderEntry):
    """Order entry whose engine is the engine role: :meth:`execute` publishes, :meth:`on_result` completes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.writer: JetStreamWriter | None = None  # once connected
        self.open: list[Context] = []  # the commands appended since the last commit
        self.pending: dict[int, list[Context]] = {}  # published message number -> its commands, until answered
        self.clordids: dict[str, set[str]] = {}  # owner -> ClOrdIDs the engine accepted (PossResend checks)
        self.last_sent: dict[str, int] = {}  # order-entry session -> highest ExecID in its FIX store at start-up
        self.on_events: Callable[[list[Event]], None] | None = None  # every result's events, before replies
        self.copies_passed: set[str] = set()  # drop copies past the last report their stores held (recover)
        self.rejects_held: dict[str, int] = {}  # drop copy -> cancel rejects its store holds after that report

    def execute(
        self, cmd: Command, echo: Echo | None = None, request_type: str | None = None, account_type: str = CUSTOMER
    ) -> None:
        assert self.writer is not None
        self.writer.append(encode(cmd))
        self.open.append((echo, request_type, account_type, time.perf_counter()))

    def cancel_on_disconnect(self, comp_id: str) -> int:
        self.execute(self.on_disconnect(comp_id), request_type=ON_DISCONNECT)
        return 0  # not known yet: the engine answers later

    def commit(self) -> None:
        """End of a loop turn: the commands appended during it go to the stream as one message."""
        if self.open:
            assert self.writer is not None
            self.pending[self.writer.commit()] = self.open
            self.open = []

    def on_result(self, msg: Msg, earlier: bool) -> None:
        """A result message: the events of one command message, one record per command; ``earlier``: it was in
        the stream when this process started."""
        assert self.writer is not None
        headers = msg.headers or {}
        contexts: list[Context] | None = None
        batch = headers.get(BATCH, "").rsplit(":", 2)  # the command message's id: "<writer boot>:<number>:<count>"
        if len(batch) == 3 and batch[0] == self.writer.boot:
            contexts = self.pending.pop(int(batch[1]), None)
        # Results of commands published before this process started: only the reports its sessions may lack.
        recovered = earlier or (contexts is None and headers.get(ORIGIN) == self.writer.origin)
        owners, clordids = self.owners, self.clordids
        for i, payload in enumerate(unpack(msg.data)):
            events: list[Event] = decode_events(payload)
            if self.on_events is not None:
                self.on_events(events)
            for ev in events:
                if type(ev) is Execution and ev.order.order_id and ev.order.owner in owners:
                    ids = clordids.get(ev.order.owner)
                    if ids is None:
                        ids = clordids[ev.order.owner] = set()
                    ids.add(ev.clordid)
            if recovered:
                self.recover(events)
            elif contexts is not None:
                echo, request_type, account_type, t0 = contexts[i]
                self.outbox.started.append(t0)
                self.complete(events, echo, request_type, account_type)
            else:
                self.complete(events)

    def recover(self, events: list[Event]) -> None:
        """Events of a command from before this process started: only what its sessions' FIX stores lack. An
        ExecutionReport goes to its owner, and is copied to each drop copy covering its account, if its ExecID is
        above the highest in that session's store; an OrderCancelReject is copied to a drop copy once the events
        have passed the last report its store holds, except as many as the store holds after that report (the
        gateway copies in stream order, so those are the first ones)."""
        last, passed, held, t = self.last_sent, self.copies_passed, self.rejects_held, self.translator
        for ev in events:
            if type(ev) is Execution:
                seq = ev.seq
                to_owner = seq > last.get(ev.order.owner, seq)
                copies = []
                for covered, state in self.drop_copies:
                    if seq >= last.get(state.comp_id, 0):
                        passed.add(state.comp_id)
                        if seq > last.get(state.comp_id, 0) and (covered is None or ev.order.account in covered):
                            copies.append(state)
                if to_owner or copies:
                    report = t.execution_report(ev, None)
                    if to_owner:
                        self._reply(ev.order.owner, "8", report)
                        self.recorder.execution(ev)
                    self.outbox.replies.extend((report, state, "8") for state in copies)
            elif type(ev) is CancelReject and self.drop_copies:
                owner = self.owners.get(ev.owner)
                accounts = (
                    (ev.order.account,) if ev.order is not None
                    else owner.accounts if owner else self.elsewhere.get(ev.owner, frozenset())
                )  # fmt: skip
                copies = []
                for covered, state in self.drop_copies:
                    if state.comp_id in passed and (covered is None or any(a in covered for a in accounts)):
                        if held.get(state.comp_id, 0):  # in its store already
                            held[state.comp_id] -= 1
                        else:
                            copies.append(state)
                if copies:
                    reject = t.cancel_reject(ev)
                    self.outbox.replies.extend((reject, state, "9") for state in copies)


class OrderGateway(ClusterFront):
    """The one-process gateway's order-entry and drop-copy sessions, with the engine behind the command and result
    streams."""

    role = "gateway"

    def __init__(self, cfg: VenueConfig, cluster: ClusterConfig, spec: ProcessSpec) -> None:
        super().__init__(cfg, cluster, spec)
        base = self.orders
        self.remote: RemoteOrderEntry
        self.orders = self.remote = RemoteOrderEntry(
            base.translator, base.recorder, self._no_local_engine, base.owners, base.outbox,
            lambda owner, clordid: clordid in self.remote.clordids.get(owner, ()), base.positions_formatter,
            base.drop_copies,
        )  # fmt: skip
        # Phase requests and changes as in one process: this process's engine stays empty of orders, but its
        # instruments' phases and the trading date follow the engine's events (_mirror).
        self.remote.handlers.update({t: base.handlers[t] for t in ("e", "g")})
        self.remote.on_status = base.on_status
        self.remote.elsewhere = {s.comp_id: frozenset(s.accounts) for s in cfg.sessions if s.role is Role.ORDER_ENTRY}
        self.operator = relay(self)
        self.remote.on_events = self._mirror

    def _mirror(self, events: list[Event]) -> None:
        """Keep the local engine's phases and trading date as the cluster's engine has them (what SecurityStatus
        and TradingSessionStatus on order-entry sessions tell)."""
        for ev in events:
            if type(ev) is PhaseChange:
                book = self.engine.books[ev.symbol]
                book.phase, book.halt_until = ev.phase, ev.halt_until
            elif type(ev) is TradingDayChange:
                self.engine.trading_date = ev.trading_date

    @staticmethod
    def _no_local_engine(command: Command) -> list[Event]:
        raise RuntimeError("the gateway role has no engine: commands are published")

    async def on_connect(self, js: JetStreamContext) -> None:
        self.remote.writer = JetStreamWriter(
            js, self.cluster.commands, f"gateway-{self.name}",
            on_retry=lambda number, error: self.log.warning("command_publish_retry", batch=number, error=error),
        )  # fmt: skip

    def on_result(self, seq: int, msg: Msg) -> None:
        self.remote.on_result(msg, seq <= self.replay_until)

    def start(self) -> None:
        store = self.cfg.data_dir / "store"
        self.remote.last_sent = {
            s.comp_id: last_exec_id(store / f"FIX.4.4-{self.cfg.comp_id}-{s.comp_id}.body")
            for s in self.cfg.sessions
            if s.role in (Role.ORDER_ENTRY, Role.DROP_COPY)
        }
        drop_copies = [s.comp_id for s in self.cfg.sessions if s.role is Role.DROP_COPY]
        self.remote.rejects_held = {c: rejects_after_last_report(store / f"FIX.4.4-{self.cfg.comp_id}-{c}.body")
                                    for c in drop_copies}  # fmt: skip
        self.remote.copies_passed = {c for c in drop_copies if not self.remote.last_sent[c]}  # empty: lacks all
        self.connect_and_catch_up()
        for state in self.sessions.values():
            if state.role is Role.ORDER_ENTRY and state.cancel_on_disconnect:
                self.remote.cancel_on_disconnect(state.comp_id)
        self._step()
        self._flush()
        self.start_metrics()
        if self.operator is not None:
            self.operator.start()
        self.going_live()

    def before_step(self) -> None:
        # Order -> report latency is observed when the report comes back (RemoteOrderEntry.on_result), not when the
        # request was published.
        self.outbox.started.clear()
        self.remote.commit()  # the turn's commands: one message

    def on_stopping(self) -> None:
        if self.operator is not None:
            self.operator.stop()
        self.remote.commit()  # cancel-on-disconnect of the sessions just logged out
        writer = self.remote.writer
        try:
            if writer is not None:
                self.pump.run(writer.flush(5.0), 10.0)
        except TimeoutError:
            self.log.error("commands_not_stored", pending=writer.pending if writer else 0)


def serve(cfg: VenueConfig, cluster: ClusterConfig, name: str) -> int:
    return run(OrderGateway(cfg, cluster, cluster.process("gateway", name)))
