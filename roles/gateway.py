"""The order-entry gateway role: the FIX sessions pinned to this process, with the engine in another one.

``fixgw serve --role gateway --name gw1 --config venue.toml`` serves the sessions of ``[cluster.gateways.gw1]``
(order entry and drop copy) exactly as the one-process venue does: it is the same :class:`~gateway.server.Gateway`
(QuickFIX acceptor, logon checks, validation and translation at the edge, replies built as text, one loop thread),
with one difference: a command is not run here, it is published.

* **Out:** every command the edge builds is appended to its shard's command stream
  (:meth:`RemoteOrderEntry.shards_of`: a new order by its symbol; a cancel, replace or status request by the
  OrderID's range or the ClOrdID's shard; a mass cancel without a symbol to every shard, answered with one report
  once every shard has). The commands of one loop turn are one message per shard
  (:class:`~seqlog.jetstream.JetStreamWriter`), stored on a quorum of servers before JetStream acknowledges it.
  Nothing is said to the client then: the engine only ever sees stored commands, so the report that answers a
  command is itself the proof that the command is durable.
* **In:** the gateway follows every shard's result stream (result message ``n`` holds the events of command message
  ``n`` of the same shard) and turns every event into replies for the sessions it serves: the ExecutionReports of
  its own requests, the fills that another gateway's orders caused against its clients' orders, drop copies. The
  request's own context (the client's fields a reject echoes, a mass cancel's request type) is kept per published
  message until its results come back, found by the message id the engine copies into the result's headers.
* **The operator channel**, if its table has an ``operator_port``: ``fixgw admin`` requests relayed to the active
  engines of the shards each request concerns (:mod:`roles.operator`, :mod:`roles.operator_shards`).
* **After a restart** the gateway reads every result stream from its start before it accepts a logon. It sends
  again only what its sessions' FIX stores do not hold (per shard, ExecutionReports above each session's highest
  ExecID in that shard's range, as the one-process venue does after a crash), then applies cancel-on-disconnect
  to every session that has it (a MassCancel to every shard; an engine makes it a no-op when nothing rests).
  Drop copies get the same per shard: the reports above their store's highest ExecID in that shard's range, and
  the cancel rejects after it (less those the store holds).

What it shares with the market-data publisher (the loop, following the result stream, catching up) is
:mod:`roles.front`.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nats.aio.msg import Msg
from nats.js import JetStreamContext

from engine import (
    CancelOrder,
    CancelReject,
    Command,
    Event,
    ExecType,
    Execution,
    MassCancel,
    MassCancelReport,
    NewOrder,
    PhaseChange,
    PositionsReport,
    QueryOrder,
    QueryPositions,
    Reason,
    ReplaceOrder,
    TradingDayChange,
)
from engine.codec import encode
from engine.eventcodec import decode_events
from engine.events import Balance
from gateway.config import Role, VenueConfig
from gateway.journal import last_exec_ids, read_store_tail
from gateway.order_entry import ON_DISCONNECT, OrderEntry
from gateway.orders import Echo
from gateway.positions import CUSTOMER
from gateway.server import run
from roles.config import ClusterConfig, ProcessSpec, ShardSpec
from roles.engine import BATCH
from roles.front import ClusterFront
from roles.operator import relay
from seqlog.jetstream import ORIGIN, JetStreamWriter, unpack


@dataclass
class FanOut:
    """A command sent to every shard (a mass cancel without a symbol, cancel-on-disconnect, a positions request): its
    events are kept until the last shard answered, then completed as one command's (:func:`merge_answers`)."""

    waiting: int
    events: list[Event] = field(default_factory=list)


def merge_answers(events: list[Event]) -> list[Event]:
    """Every shard's events for one command as one command's, with one answer: a mass cancel's single
    MassCancelReport (the lowest shard's id as its OrderID, the orders cancelled in every shard as
    TotalAffectedOrders) ahead of every shard's cancellations; a positions request's single PositionsReport (the
    account's balances summed over the shards, each shard's positions: its instruments')."""
    reports = [e for e in events if type(e) is MassCancelReport]
    if reports:
        first = min(reports, key=lambda r: r.seq)
        merged: Event = dataclasses.replace(first, cancelled=sum(r.cancelled for r in reports))
        return [merged, *(e for e in events if type(e) is not MassCancelReport)]
    answers = sorted((e for e in events if type(e) is PositionsReport), key=lambda r: r.seq)
    if not answers:
        return events
    if answers[0].reason is not None:  # refused: every shard refuses alike (the request's fault)
        return [answers[0]]
    balances: dict[str, Balance] = {}
    for answer in answers:
        for b in answer.balances:
            total = balances.get(b.asset)
            balances[b.asset] = b if total is None else Balance(b.asset, total.available + b.available,
                                                                total.held + b.held)  # fmt: skip
    positions = [p for answer in answers for p in answer.positions]
    return [dataclasses.replace(answers[0], balances=list(balances.values()), positions=positions)]


Context = tuple[Echo | None, str | None, str, float, FanOut | None]
"""What a command's replies need besides its events: echo, request type, account type (OrderEntry.complete),
``perf_counter()`` when it was published (order -> report latency), and the fan-out it is part of (None: it went to
one shard)."""


_REPORT_TYPE = re.compile(rb"\x0135=([89])\x01")


def rejects_after_last_report(store_body: Path, tail: int = 4 << 20) -> int:
    """OrderCancelRejects (35=9) after the last ExecutionReport in a QuickFIX FileStore body file."""

    def read(data: bytes, whole: bool) -> int | None:
        types = _REPORT_TYPE.findall(data)
        if b"8" in types:
            return types[::-1].index(b"8")
        return len(types) if whole else None

    return read_store_tail(store_body, read, tail) or 0


class RemoteOrderEntry(OrderEntry):
    """Order entry whose engines are the engine role: :meth:`execute` publishes to the command's shard (or to every
    shard), :meth:`on_result` completes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cluster: ClusterConfig | None = None  # once connected
        self.writers: dict[str, JetStreamWriter] = {}  # shard -> its command stream's writer, once connected
        self.open: dict[str, list[Context]] = {}  # shard -> the commands appended since the last commit
        self.pending: dict[tuple[str, int], list[Context]] = {}  # (shard, message number) -> its commands
        self.clordids: dict[str, set[str]] = {}  # owner -> ClOrdIDs the engines accepted (PossResend checks)
        self.routes: dict[str, dict[str, str]] = {}  # owner -> ClOrdID -> the shard of the order it names
        self.last_sent: dict[tuple[str, str], int] = {}  # (session, shard) -> its highest ExecID in the FIX store
        self.on_events: Callable[[list[Event]], None] | None = None  # every result's events, before replies
        self.copies_passed: set[tuple[str, str]] = set()  # (drop copy, shard) past the last report its store held
        self.rejects_held: dict[str, int] = {}  # drop copy -> cancel rejects its store holds after that report

    # ------------------------------------------------------------------ routing

    def shards_of(self, cmd: Command) -> list[str]:
        """The shards a command goes to: an order's instrument's, or the shard of the order it names (by OrderID,
        whose range names the shard, or by ClOrdID, from :attr:`routes`); every shard for a mass cancel without a
        symbol; the first shard for what no shard owns (its engine answers: unknown symbol, unknown order)."""
        cluster = self.cluster
        assert cluster is not None
        if len(cluster.shards) == 1:
            return [cluster.shards[0].name]
        t = type(cmd)
        if t is NewOrder:
            assert isinstance(cmd, NewOrder)
            shard = cluster.shard_of_symbol(cmd.symbol).name
            routes = self.routes.setdefault(cmd.owner, {})
            known = routes.get(cmd.clordid)
            if known is None:
                routes[cmd.clordid] = shard
            elif known != shard and cmd.edge_reject is None:  # the ClOrdID names an order of another shard
                cmd.edge_reject = Reason.DUPLICATE_CLORDID
            return [shard]
        if t is MassCancel:
            assert isinstance(cmd, MassCancel)
            if cmd.symbol is None:
                return [s.name for s in cluster.shards]
            return [cluster.shard_of_symbol(cmd.symbol).name]
        if t is QueryPositions:  # balances are per shard: every shard's share, summed (merge_answers)
            return [s.name for s in cluster.shards]
        if t is CancelOrder or t is ReplaceOrder or t is QueryOrder:
            assert isinstance(cmd, CancelOrder | ReplaceOrder | QueryOrder)
            by_id = cluster.shard_of_id(cmd.order_id) if cmd.order_id else None
            named = cmd.orig_clordid if not isinstance(cmd, QueryOrder) else cmd.clordid
            found = by_id.name if by_id is not None else self.routes.get(cmd.owner, {}).get(named or "")
            shard = found or cluster.shard_of_symbol(cmd.symbol if isinstance(cmd, ReplaceOrder) else None).name
            if isinstance(cmd, ReplaceOrder):
                self.routes.setdefault(cmd.owner, {}).setdefault(cmd.clordid, shard)
            return [shard]
        return [cluster.shards[0].name]

    def execute(
        self, cmd: Command, echo: Echo | None = None, request_type: str | None = None, account_type: str = CUSTOMER
    ) -> None:
        shards = self.shards_of(cmd)
        payload = encode(cmd)
        fan = FanOut(len(shards)) if len(shards) > 1 else None
        context = (echo, request_type, account_type, time.perf_counter(), fan)
        for shard in shards:
            self.writers[shard].append(payload)
            self.open.setdefault(shard, []).append(context)

    def cancel_on_disconnect(self, comp_id: str) -> int:
        self.execute(self.on_disconnect(comp_id), request_type=ON_DISCONNECT)
        return 0  # not known yet: the engines answer later

    def commit(self) -> None:
        """End of a loop turn: the commands appended during it go to each shard's stream as one message."""
        if self.open:
            for shard, contexts in self.open.items():
                self.pending[shard, self.writers[shard].commit()] = contexts
            self.open = {}

    # ------------------------------------------------------------------ results

    def on_result(self, shard: ShardSpec, msg: Msg, earlier: bool) -> None:
        """A result message of ``shard``: the events of one command message, one record per command; ``earlier``:
        it was in the stream when this process started."""
        writer = self.writers[shard.name]
        headers = msg.headers or {}
        contexts: list[Context] | None = None
        batch = headers.get(BATCH, "").rsplit(":", 2)  # the command message's id: "<writer boot>:<number>:<count>"
        if len(batch) == 3 and batch[0] == writer.boot:
            contexts = self.pending.pop((shard.name, int(batch[1])), None)
        # Results of commands published before this process started: only the reports its sessions may lack.
        recovered = earlier or (contexts is None and headers.get(ORIGIN) == writer.origin)
        owners, clordids = self.owners, self.clordids
        routes = self.routes if len(self.writers) > 1 else None  # one shard: nothing to route
        for i, payload in enumerate(unpack(msg.data)):
            events: list[Event] = decode_events(payload)
            if self.on_events is not None:
                self.on_events(events)
            for ev in events:
                if type(ev) is Execution and ev.order.owner in owners:
                    owner = ev.order.owner
                    if ev.order.order_id:
                        ids = clordids.get(owner)
                        if ids is None:
                            ids = clordids[owner] = set()
                        ids.add(ev.clordid)
                        if routes is not None:
                            routes.setdefault(owner, {})[ev.clordid] = shard.name
                    elif (
                        routes is not None
                        and ev.exec_type is ExecType.REJECTED
                        and ev.clordid not in clordids.get(owner, ())
                    ):
                        mine = routes.get(owner)  # a refused order leaves its ClOrdID free for another shard
                        if mine is not None and mine.get(ev.clordid) == shard.name:
                            del mine[ev.clordid]
            if recovered:
                self.recover(shard.name, events)
            elif contexts is not None:
                echo, request_type, account_type, t0, fan = contexts[i]
                if fan is not None:
                    fan.events += events
                    fan.waiting -= 1
                    if fan.waiting:
                        continue
                    events = merge_answers(fan.events)
                self.outbox.started.append(t0)
                self.complete(events, echo, request_type, account_type)
            else:
                self.complete(events)

    def recover(self, shard: str, events: list[Event]) -> None:
        """Events of a command of ``shard`` from before this process started: only what its sessions' FIX stores
        lack. An ExecutionReport goes to its owner, and is copied to each drop copy covering its account, if its
        ExecID is above the highest of that shard in that session's store; an OrderCancelReject is copied to a drop
        copy once the shard's events have passed the last report its store holds, except as many as the store holds
        after that report (the gateway copies in stream order, so those are the first ones)."""
        last, passed, held, t = self.last_sent, self.copies_passed, self.rejects_held, self.translator
        for ev in events:
            if type(ev) is Execution:
                seq = ev.seq
                to_owner = seq > last.get((ev.order.owner, shard), seq)
                copies = []
                for covered, state in self.drop_copies:
                    key = (state.comp_id, shard)
                    mark = last.get(key, 0)
                    if seq >= mark:
                        passed.add(key)
                        if seq > mark and (covered is None or ev.order.account in covered):
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
                    if (state.comp_id, shard) in passed and (covered is None or any(a in covered for a in accounts)):
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
        self.remote.cluster = self.cluster
        for shard in self.cluster.shards:
            self.remote.writers[shard.name] = JetStreamWriter(
                js, self.cluster.command_stream(shard.name), f"gateway-{self.name}", on_retry=self._retry_logger(shard)
            )

    def _retry_logger(self, shard: ShardSpec) -> Callable[[int, str], None]:
        def on_retry(number: int, error: str) -> None:
            self.log.warning("command_publish_retry", shard=shard.name, batch=number, error=error)

        return on_retry

    def on_result(self, shard: ShardSpec, seq: int, msg: Msg) -> None:
        self.remote.on_result(shard, msg, seq <= self.replay_until[shard.name])

    def start(self) -> None:
        store = self.cfg.data_dir / "store"
        cluster = self.cluster

        def shard_of(exec_id: int) -> str:
            shard = cluster.shard_of_id(exec_id)
            return shard.name if shard is not None else ""

        drop_copies = [s.comp_id for s in self.cfg.sessions if s.role is Role.DROP_COPY]
        for s in self.cfg.sessions:
            if s.role in (Role.ORDER_ENTRY, Role.DROP_COPY):
                body = store / f"FIX.4.4-{self.cfg.comp_id}-{s.comp_id}.body"
                for shard in cluster.shards:  # none of the shard's reports sent
                    self.remote.last_sent[s.comp_id, shard.name] = shard.id_base
                for name, exec_id in last_exec_ids(body, shard_of, len(cluster.shards)).items():
                    self.remote.last_sent[s.comp_id, name] = exec_id
        self.remote.rejects_held = {c: rejects_after_last_report(store / f"FIX.4.4-{self.cfg.comp_id}-{c}.body")
                                    for c in drop_copies}  # fmt: skip
        self.remote.copies_passed = {  # a store without a report of the shard lacks all of it
            (c, shard.name) for c in drop_copies for shard in cluster.shards
            if self.remote.last_sent[c, shard.name] == shard.id_base
        }  # fmt: skip
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
        for shard, writer in self.remote.writers.items():
            try:
                self.pump.run(writer.flush(5.0), 10.0)
            except TimeoutError:
                self.log.error("commands_not_stored", shard=shard, pending=writer.pending)


def serve(cfg: VenueConfig, cluster: ClusterConfig, name: str) -> int:
    return run(OrderGateway(cfg, cluster, cluster.process("gateway", name)))
