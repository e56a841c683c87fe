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
* **After a restart** the gateway reads the result stream from its start before it accepts a logon. It sends
  again only what its sessions' FIX stores do not hold (ExecutionReports above each session's highest ExecID, as
  the one-process venue does after a crash), then applies cancel-on-disconnect to every session that has it (a
  MassCancel; the engine makes it a no-op when nothing rests).

What it shares with the market-data publisher (the loop, following the result stream, catching up) is
:mod:`roles.front`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from nats.aio.msg import Msg
from nats.js import JetStreamContext

from engine import Command, Event, Execution, PhaseChange, TradingDayChange
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
from seqlog.jetstream import ORIGIN, JetStreamWriter, unpack

Context = tuple[Echo | None, str | None, str, float]
"""What a command's replies need besides its events: echo, request type, account type (OrderEntry.complete), and
``perf_counter()`` when it was published (order -> report latency)."""


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
                last = self.last_sent
                unsent = [
                    e for e in events if type(e) is Execution and e.seq > last.get(e.order.owner, e.seq)
                ]  # fmt: skip
                if unsent:
                    self.dispatch(unsent)
            elif contexts is not None:
                echo, request_type, account_type, t0 = contexts[i]
                self.outbox.started.append(t0)
                self.complete(events, echo, request_type, account_type)
            else:
                self.complete(events)


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
            if s.role is Role.ORDER_ENTRY
        }
        self.connect_and_catch_up()
        for state in self.sessions.values():
            if state.role is Role.ORDER_ENTRY and state.cancel_on_disconnect:
                self.remote.cancel_on_disconnect(state.comp_id)
        self._step()
        self._flush()
        self.start_metrics()
        self.going_live()

    def before_step(self) -> None:
        # Order -> report latency is observed when the report comes back (RemoteOrderEntry.on_result), not when the
        # request was published.
        self.outbox.started.clear()
        self.remote.commit()  # the turn's commands: one message

    def on_stopping(self) -> None:
        self.remote.commit()  # cancel-on-disconnect of the sessions just logged out
        writer = self.remote.writer
        try:
            if writer is not None:
                self.pump.run(writer.flush(5.0), 10.0)
        except TimeoutError:
            self.log.error("commands_not_stored", pending=writer.pending if writer else 0)


def serve(cfg: VenueConfig, cluster: ClusterConfig, name: str) -> int:
    return run(OrderGateway(cfg, cluster, cluster.process("gateway", name)))
