"""The engine role: one matching engine (with its ledger) fed by the shard's command stream.

``fixgw serve --role engine --name e1 [--shard NAME] --config venue.toml``; start two or more per shard for
standbys. An engine holds only its shard's instruments, numbers its ids from the shard's base
(:attr:`~roles.config.ShardSpec.id_base`) and keeps that shard's share of every account's balances.

Every engine process, active or standby, replays the command stream from its start and applies each command in
stream order, so all of them hold the same books, ledger and counters (the engine is deterministic: same commands,
same events, same OrderIDs and ExecIDs). Only the *active* one publishes results:

* **The result stream mirrors the command stream.** Result message ``n`` holds the events of the commands of
  command message ``n`` (one record per command, :mod:`engine.eventcodec`), with the command message's origin
  and id in its headers, so a gateway can tell its own requests. It is published with
  ``Nats-Expected-Last-Sequence: n - 1``: JetStream stores it only if it is the next one, which fences off a
  second engine that believes it is active (its publish fails and it steps back) and makes a re-publish after a
  fail-over impossible to duplicate.
* **Leadership is a lease** in a JetStream key-value bucket whose entries expire after ``lease_seconds``: the
  active engine renews it three times per period; a standby that finds the key gone creates it (only one create
  can succeed) and becomes active. It then publishes the results the stream does not have yet, from the last one
  stored on, out of the results it computed while standing by: no acknowledged command is lost, no ExecID or
  OrderID is reused.
* **Operator requests** (``fixgw admin``, relayed by the gateways) are carried out by the active engine: reads
  from its state, changes published into its shard's command stream and answered once applied (:mod:`roles.operator`).
* **Start-up commands.** Once active and caught up, an engine compares the config's money rules, opening
  balances and trading rules (``[protection]``) with its own and publishes a ``Configure``, deposits and a
  ``ConfigureTrading`` into the command stream, as the one-process venue journals them at start-up.
* **The trading day.** The active engine is the venue's clock: every :data:`TIMER` seconds it asks
  :func:`gateway.schedule.due_commands` what the schedule (``[schedule]``) and the engine's own timers (the end of
  a circuit-breaker halt) want at this time, and publishes those commands, stamped with it, into the command
  stream as one *clock message*, like any other command (the engine reads no clock). A clock message's
  ``Nats-Msg-Id`` is ``clock:<stream sequence of the last clock message this engine applied>``: two engines that
  both believe they are active (a lease changing hands), or a new active engine that has not yet applied its
  predecessor's last clock message, compute the same id, and JetStream's duplicate window stores only the first;
  the other is dropped, and the next decision is taken on a state that includes the winner. After publishing,
  the engine waits until its clock message (or the one that won the place) is applied before it decides again.
  A standby that takes over after a boundary catches up with it at once (the commands carry the takeover's
  time, as after a restart of the one-process venue). Applying the same boundary twice is a no-op anyway (the
  schedule only moves an instrument forward; an end of day for a date already begun changes nothing).
* **Transfers between shards** (``fixgw admin transfer``, README "Scale-out"). The operator's request reaches the
  source shard's active engine, which publishes a ``TransferOut`` into its own command stream: applied, it debits
  the account and leaves the transfer pending in the ledger. While a transfer is pending, the source's active
  engine publishes its credit (``TransferIn``) into the target shard's command stream: at once, again every
  :data:`TRANSFER_RETRY` seconds, and at once after a fail-over (the new active engine finds the pending transfers
  in its ledger). The target's engines apply a credit once however often it arrives (the ledger numbers transfers
  per pair of shards). The target's active engine confirms every credit it applies, new or repeated, with a
  ``TransferDone`` into the source's command stream, which ends the pending state. Why the target confirms and the
  source retries: each side then acts only on what its own ledger says, so a kill -9 of either active engine
  loses nothing. A source killed before publishing the credit, or before the confirmation arrived, is replaced by
  a standby whose ledger holds the same pending transfer; a target killed after applying a credit but before
  confirming it has its confirmation owed by the next retry, which its successor applies as a repeat and confirms.
  A credit's ``Nats-Msg-Id`` is ``transfer:<source>:<transfer id>:<engine>:<attempt>``: JetStream drops the
  client's own resends of one attempt, while every retry reaches the target (where it is a no-op) so that it can be
  confirmed again.
* **Snapshots.** An engine starts from the shard's latest snapshot, if there is one, and follows the command
  stream after it; the active engine writes one every ``cluster.snapshot_every`` commands and trims the command
  stream behind it (:mod:`roles.snapshots`), but not what a registered post-trade store still needs
  (:mod:`roles.storehold`).

The process is plain asyncio: no QuickFIX in it, so its one thread is free to spend its time in the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import time
from collections import deque
from pathlib import Path
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.kv import KeyValue
from nats.js.object_store import ObjectStore

from engine import Command, Configure, ConfigureTrading, Event, Fund, MatchingEngine, TransferDone, TransferIn
from engine.codec import decode, encode
from engine.eventcodec import encode_events
from engine.ledger import Transfer
from engine.snapshot import load_state
from gateway.config import VenueConfig
from gateway.failpoint import TRANSFER_STALL, VARIABLE
from gateway.logs import get_logger
from gateway.schedule import due_commands
from roles.config import ClusterConfig, ShardSpec, data_dir
from roles.operator import EngineOperator
from roles.snapshots import fork_dump, load_latest, object_name, open_store, prune, stored
from roles.storehold import base_snapshot, open_bucket, positions, retention
from seqlog.jetstream import (
    API_TIMEOUT,
    EXPECTED_LAST_SEQ,
    MSG_ID,
    ORIGIN,
    Follower,
    JetStreamWriter,
    connect,
    ensure_stream,
    last_sequence,
    pack,
    retry,
    unpack,
)

BATCH = "Fixgw-Batch"  # result header: the Nats-Msg-Id of the command message it answers
COMMAND_SEQ = "Fixgw-Command-Seq"
WINDOW = 64  # result messages in flight to the stream at once
WRONG_LAST_SEQUENCE = 10071
CLOCK = "clock:"  # Nats-Msg-Id prefix of the active engine's clock messages (the trading day's commands)
TIMER = 0.05  # seconds between two looks at the schedule and the engine's due time
CLOCK_WAIT = 2.0  # seconds to wait for a published clock message to come back before deciding again anyway
TRANSFER = "transfer:"  # Nats-Msg-Id prefix of a transfer's credit in the target shard's command stream
TRANSFER_DONE = "transfer-done:"  # ... and of its confirmation in the source shard's
TRANSFER_RETRY = 1.0  # seconds between two publishes of the credit of a transfer still pending


async def ensure_lease_bucket(js: JetStreamContext, cluster: ClusterConfig) -> KeyValue:
    async def open_or_create() -> KeyValue:
        try:
            return await js.key_value(cluster.lease_bucket)
        except nats.js.errors.BucketNotFoundError:
            return await js.create_key_value(
                bucket=cluster.lease_bucket, history=1, ttl=cluster.lease_seconds, replicas=cluster.replicas
            )

    return await retry(open_or_create, time.monotonic() + 30)


def opening_share(cfg: VenueConfig, cluster: ClusterConfig, shard: ShardSpec, asset: str, units: int) -> int:
    """The part of an opening balance that ``shard`` holds: balances are per shard (README "Scale-out"), so an
    asset is split evenly over the shards whose instruments use it (as base or quote), the remainder to the first
    of them; an asset no instrument uses goes to the first shard. The shares add up to ``units`` exactly."""
    users = cluster.shards_of_asset(cfg, asset)
    if shard not in users:
        return 0
    share = units // len(users)
    return share + (units - share * len(users) if shard == users[0] else 0)


def startup_commands(
    cfg: VenueConfig, engine: MatchingEngine, cluster: ClusterConfig | None = None, shard: ShardSpec | None = None
) -> list[Command]:
    """The config's money rules if the engine's differ, the opening balances (this shard's share of them) not
    deposited yet, and the trading rules (halt policy, price protection) if the engine's differ."""
    out: list[Command] = []
    now = time.time_ns()
    setup = cfg.ledger
    if setup is not None:
        ledger = engine.ledger
        if ledger is None or ledger.setup != setup:
            out.append(Configure(setup.to_dict(), now))
        funded = ledger.funding_ids if ledger is not None else set()
        for account, balances in cfg.opening_balances.items():
            for asset, units in balances.items():
                funding_id = f"opening:{account}:{asset}"
                if cluster is not None and shard is not None:
                    units = opening_share(cfg, cluster, shard, asset, units)
                if units > 0 and funding_id not in funded:
                    out.append(Fund("opening", account, asset, units, funding_id, now))
    # The window of finished orders travels with the rules, as in one process (gateway.trading_day.configure).
    rules = dataclasses.replace(cfg.trading_rules, finished_orders=cfg.finished_orders).to_dict()
    if engine.rules.to_dict() != rules:
        out.append(ConfigureTrading(rules, now))
    return out


class EngineNode:
    """One engine process: applies the command stream; publishes results while it holds the shard's lease."""

    def __init__(self, cfg: VenueConfig, cluster: ClusterConfig, name: str, shard: ShardSpec) -> None:
        self.cfg = cfg
        self.cluster = cluster
        self.name = name
        self.shard = shard
        self.commands = cluster.command_stream(shard.name)
        self.results_spec = cluster.result_stream(shard.name)
        self.log = get_logger("engine").bind(node=name, shard=shard.name)
        instruments = [i for i in cfg.instruments if i.symbol in shard.symbols]
        self.engine = MatchingEngine(instruments, cfg.self_trade_prevention, id_base=shard.id_base)
        self.applied = 0  # command messages applied
        self.published = 0  # result messages known to be in the result stream
        self.results: deque[tuple[int, bytes, dict[str, str]]] = deque()  # computed, not known to be published
        self.active = False
        self.stopping = False
        self._wake = asyncio.Event()
        self._caught_up_configured = False
        self.js: JetStreamContext | None = None
        self.commands_applied = 0
        self.operator = EngineOperator(cfg, cluster, name, shard.name, lambda: self.engine, self.log)
        self._credits: dict[str, tuple[float, int]] = {}  # pending transfer id -> (last publish, attempts)
        self._confirmations: deque[TransferIn] = deque()  # credits applied while active, to confirm
        self._stall = os.environ.get(VARIABLE) == TRANSFER_STALL  # tests: hang before publishing a credit
        self.clock_seq = 0  # stream sequence of the last clock message applied
        self._clock_basis: int | None = None  # the clock_seq a published clock message was decided on
        self._clock_wait_until = 0.0
        self._next_check = 0  # ns: the schedule's next boundary (0: look now)
        self.snapshot_seq = 0  # command message of the latest snapshot stored (or loaded)
        self.stores: KeyValue | None = None  # the post-trade stores' positions: what trimming must keep
        self._snapshot_at = 0  # commands_applied when the last snapshot was started
        self._child: tuple[int, int, int, Path] | None = None  # (pid, stream seq, previous, file) being written

    # ------------------------------------------------------------------ applying commands

    def on_command(self, seq: int, msg: Msg) -> None:
        """Command message ``seq``: apply its commands, keep its result until it is in the result stream."""
        process = self.engine.process
        events: list[list[Event]] = []
        results: list[bytes] = []
        for payload in unpack(msg.data):
            evs = process(decode(payload))
            results.append(encode_events(evs))  # now: the events refer to orders that later commands change
            events.append(evs)
        self.commands_applied += len(results)
        headers = msg.headers or {}
        self.applied = seq
        if self.operator.pending:
            self.operator.applied(headers, events)
        msg_id = headers.get(MSG_ID, "")
        if msg_id.startswith(CLOCK):
            self.clock_seq = seq
        elif msg_id.startswith(TRANSFER):  # a credit from another shard, new or a repeat: the active engine confirms it
            self.log.info("transfer_credit_applied", msg_id=msg_id, seq=seq)
            if self.active and self.engine.ledger is not None:  # (no ledger yet: not credited, the retry will be)
                self._confirmations.extend(c for c in map(decode, unpack(msg.data)) if isinstance(c, TransferIn))
        elif msg_id.startswith(TRANSFER_DONE):
            self.log.info("transfer_confirmation_applied", msg_id=msg_id, seq=seq)
        every = self.cluster.snapshot_every
        if every and self.active and self._child is None and self.commands_applied - self._snapshot_at >= every:
            self._start_snapshot()
        if seq <= self.published:
            return  # its result is already in the stream (we are catching up)
        result_headers = {ORIGIN: headers.get(ORIGIN, ""), BATCH: headers.get(MSG_ID, ""), COMMAND_SEQ: str(seq)}
        self.results.append((seq, pack(results), result_headers))
        if self.active:
            self._wake.set()

    # ------------------------------------------------------------------ publishing (active only)

    async def publish_results(self) -> None:
        """While active: results in order, ``WINDOW`` in flight, each accepted only as the stream's next."""
        assert self.js is not None
        js, subject = self.js, self.results_spec.subject
        inflight: deque[tuple[int, asyncio.Task[Any]]] = deque()
        while not self.stopping:
            if not self.active:
                await self._drop(inflight)
                await self._wait()
                continue
            sent = inflight[-1][0] if inflight else self.published
            for seq, body, headers in self.results:
                if len(inflight) >= WINDOW:
                    break
                if seq <= sent:
                    continue
                hdrs = {**headers, EXPECTED_LAST_SEQ: str(seq - 1)}
                inflight.append((seq, asyncio.ensure_future(js.publish(subject, body, timeout=API_TIMEOUT,
                                                                       headers=hdrs))))  # fmt: skip
                sent = seq
            if not inflight:
                await self._wait()
                continue
            seq, task = inflight[0]
            try:
                ack = await task
            except nats.js.errors.APIError as exc:
                await self._drop(inflight)
                if exc.err_code == WRONG_LAST_SEQUENCE:  # someone else published: learn how far the stream is
                    await self._sync_published()
                else:
                    self.log.warning("result_publish_failed", seq=seq, error=repr(exc))
                    await asyncio.sleep(0.1)
                continue
            except (nats.errors.Error, nats.js.errors.Error, TimeoutError) as exc:
                self.log.warning("result_publish_retry", seq=seq, error=repr(exc))
                await self._drop(inflight)
                await asyncio.sleep(0.1)
                await self._sync_published()
                continue
            inflight.popleft()
            if int(ack.seq) != seq:  # cannot happen with the expected-sequence header; never go on silently
                raise RuntimeError(f"result {seq} stored as {ack.seq}")
            self.published = seq
            while self.results and self.results[0][0] <= seq:
                self.results.popleft()

    async def _wait(self) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), 0.5)

    @staticmethod
    async def _drop(inflight: deque[tuple[int, asyncio.Task[Any]]]) -> None:
        for _, task in inflight:
            task.cancel()
        for _, task in inflight:
            with contextlib.suppress(BaseException):
                await task
        inflight.clear()

    async def _sync_published(self) -> None:
        """Learn the result stream's last sequence; forget the results it already holds."""
        assert self.js is not None
        last = await last_sequence(self.js, self.results_spec.name)
        self.published = max(self.published, last)
        while self.results and self.results[0][0] <= self.published:
            self.results.popleft()

    # ------------------------------------------------------------------ leadership

    async def hold_lease(self, kv: KeyValue) -> None:
        key, value = f"engine-{self.shard.name}", self.name.encode()
        revision = 0
        period = self.cluster.lease_seconds / 3
        while not self.stopping:
            try:
                if self.active:
                    revision = await kv.update(key, value, last=revision)
                else:
                    revision = await kv.create(key, value)
                    await self._sync_published()
                    self.active = True
                    self.log.info("engine_active", applied=self.applied, published=self.published)
                    self._wake.set()
            except nats.js.errors.KeyWrongLastSequenceError:
                if self.active:  # the lease went to another engine: stand back (its results equal ours)
                    self.active = False
                    self.log.warning("engine_standby", reason="lease lost")
                    await self.operator.deactivate()
            except (nats.errors.Error, nats.js.errors.Error, TimeoutError) as exc:
                self.log.warning("lease_retry", error=repr(exc))
            if self.active and not self._caught_up_configured:
                await self._startup_commands()
            if self.active and self._caught_up_configured:  # operators see a state caught up with the stream
                await self.operator.activate()  # (a no-op once subscribed)
            await asyncio.sleep(period)

    async def _startup_commands(self) -> None:
        """Once active and caught up with the command stream: the config's money rules and opening balances."""
        assert self.js is not None
        if self.applied < await last_sequence(self.js, self.commands.name):
            return
        self._caught_up_configured = True
        commands = startup_commands(self.cfg, self.engine, self.cluster, self.shard)
        if not commands:
            return
        writer = JetStreamWriter(self.js, self.commands, f"engine-{self.name}")
        for cmd in commands:
            writer.append(encode(cmd))
        await writer.flush(timeout=60)
        self.log.info("startup_commands_published", commands=len(commands))

    # ------------------------------------------------------------------ the trading day (active only)

    async def drive_day(self) -> None:
        """While active and configured: publish the schedule's and the engine's timed commands when they are due."""
        schedule, engine = self.cfg.schedule, self.engine
        while not self.stopping:
            await asyncio.sleep(TIMER)
            if not (self.active and self._caught_up_configured):
                self._next_check = 0  # a standby that takes over looks at once
                continue
            if self._clock_basis is not None:
                if self.clock_seq == self._clock_basis and time.monotonic() < self._clock_wait_until:
                    continue  # the last clock message (ours or the one stored in its place) is not applied yet
                self._clock_basis = None
            now = time.time_ns()
            due = engine.next_due()
            if not ((schedule is not None and now >= self._next_check) or (due is not None and now >= due)):
                continue
            commands = due_commands(schedule, engine, now)
            if commands and not await self._publish_clock(commands):
                continue  # not stored: decide again at the next look
            if schedule is not None:
                self._next_check = schedule.next_change(now)

    async def _publish_clock(self, commands: list[Command]) -> bool:
        """One clock message; True once JetStream stored it or a message with its id (see the module's doc)."""
        assert self.js is not None
        basis = self.clock_seq
        headers = {MSG_ID: f"{CLOCK}{basis}", ORIGIN: f"engine-{self.name}"}
        try:
            ack = await self.js.publish(self.commands.subject, pack([encode(c) for c in commands]),
                                        timeout=API_TIMEOUT, headers=headers)  # fmt: skip
        except (nats.errors.Error, nats.js.errors.Error, TimeoutError) as exc:
            self.log.warning("clock_publish_retry", error=repr(exc))
            return False
        self._clock_basis, self._clock_wait_until = basis, time.monotonic() + CLOCK_WAIT
        self.log.info("clock_published", seq=int(ack.seq), after=basis, duplicate=bool(ack.duplicate),
                      commands=[type(c).__name__ for c in commands])  # fmt: skip
        return True

    # ------------------------------------------------------------------ transfers between shards (active only)

    async def move_funds(self) -> None:
        """While active and caught up: publish the credits of pending transfers, confirm the credits applied."""
        while not self.stopping:
            await asyncio.sleep(TIMER)
            ledger = self.engine.ledger
            if not (self.active and self._caught_up_configured) or ledger is None:
                self._credits.clear()  # a standby that takes over publishes every pending credit at once
                self._confirmations.clear()  # (the source's retries make up for these)
                continue
            now = time.monotonic()
            for transfer in list(ledger.outgoing.values()):
                last, attempts = self._credits.get(transfer.transfer_id, (-TRANSFER_RETRY, 0))
                if now - last >= TRANSFER_RETRY:
                    if self._stall:  # the failpoint: debited and never credited, until this process is killed
                        self.log.warning("transfer_stalled", transfer_id=transfer.transfer_id)
                        await asyncio.Event().wait()
                    self._credits[transfer.transfer_id] = (now, attempts + 1)
                    await self._publish_credit(transfer, attempts)
            for transfer_id in [t for t in self._credits if t not in ledger.outgoing]:
                del self._credits[transfer_id]  # confirmed
            while self._confirmations:
                credit = self._confirmations[0]
                if not await self._publish(self.cluster.command_stream(credit.from_shard).subject,
                                           TransferDone(credit.transfer_id, time.time_ns()),
                                           f"{TRANSFER_DONE}{credit.from_shard}:{credit.transfer_id}"):  # fmt: skip
                    break  # tried again at the next look
                self._confirmations.popleft()

    async def _publish_credit(self, transfer: Transfer, attempt: int) -> None:
        credit = TransferIn(transfer.transfer_id, self.shard.name, transfer.seq, transfer.account, transfer.asset,
                            transfer.amount, time.time_ns())  # fmt: skip
        msg_id = f"{TRANSFER}{self.shard.name}:{transfer.transfer_id}:{self.name}:{attempt}"
        if await self._publish(self.cluster.command_stream(transfer.to_shard).subject, credit, msg_id):
            self.log.info("transfer_credit_published", transfer_id=transfer.transfer_id, to=transfer.to_shard,
                          seq=transfer.seq, attempt=attempt)  # fmt: skip

    async def _publish(self, subject: str, cmd: Command, msg_id: str) -> bool:
        assert self.js is not None
        headers = {MSG_ID: msg_id, ORIGIN: f"engine-{self.name}"}
        try:
            await self.js.publish(subject, pack([encode(cmd)]), timeout=API_TIMEOUT, headers=headers)
        except (nats.errors.Error, nats.js.errors.Error, TimeoutError) as exc:
            self.log.warning("transfer_publish_retry", msg_id=msg_id, error=repr(exc))
            return False
        return True

    # ------------------------------------------------------------------ snapshots (active only)

    def _start_snapshot(self) -> None:
        """Fork a child that writes the engine's state as of the command message just applied."""
        seq, previous = self.applied, self.snapshot_seq
        path = data_dir(self.cfg, self.name) / "snapshots" / f"engine-{self.shard.name}-{seq:016d}.json"
        meta = {"stream_seq": seq, "clock_seq": self.clock_seq, "previous": previous}
        self._child = (fork_dump(self.engine, path, meta), seq, previous, path)
        self._snapshot_at = self.commands_applied

    async def store_snapshots(self, store: ObjectStore) -> None:
        """Upload each snapshot the child wrote once its last result is in the result stream, then trim the
        command stream below the snapshot before it."""
        assert self.js is not None
        while not self.stopping:
            await asyncio.sleep(0.1)
            if self._child is None:
                continue
            pid, seq, previous, path = self._child
            if pid:
                done, status = os.waitpid(pid, os.WNOHANG)
                if not done:
                    continue
                self._child = (0, seq, previous, path)
                if status != 0:
                    self.log.error("snapshot_failed", seq=seq, status=status)
                    self._child = None
                    continue
            if self.active and self.published < seq:
                continue  # result `seq` not stored yet: an engine starting from this snapshot would lack it
            try:  # (the slot stays taken until the upload ends: the next snapshot names this one as previous)
                if self.active:
                    await self._store_snapshot(store, seq, previous, path)
            finally:
                path.unlink(missing_ok=True)
                self._child = None

    async def _store_snapshot(self, store: ObjectStore, seq: int, previous: int, path: Path) -> None:
        assert self.js is not None
        try:
            data = path.read_bytes()
            await store.put(object_name(self.shard.name, seq), data)
            self.snapshot_seq = max(self.snapshot_seq, seq)
        except (nats.errors.Error, nats.js.errors.Error, TimeoutError, OSError) as exc:
            self.log.warning("snapshot_not_stored", seq=seq, error=repr(exc))
            return
        first, held = await self._trim(store, previous) if previous else (0, {})
        self.log.info("snapshot_stored", seq=seq, bytes=len(data), purged_below=first, held_by=held)

    async def _trim(self, store: ObjectStore, previous: int) -> tuple[int, dict[str, int]]:
        """Purge the command stream and prune the snapshots behind ``previous``, but nothing a registered store
        still needs (:mod:`roles.storehold`); returns (first command message kept, the stores that held it back
        and their positions). Nothing is trimmed if the stores' positions cannot be read."""
        assert self.js is not None and self.stores is not None
        try:
            stores = await positions(self.js, self.stores, self.cluster.store_bucket, self.shard.name)
            first, keep = retention(previous, await stored(store, self.shard.name), stores.values())
            if first > 1:
                await self.js.purge_stream(self.commands.name, seq=first)
            await prune(store, self.shard.name, keep)
        except (nats.errors.Error, nats.js.errors.Error, TimeoutError) as exc:
            self.log.warning("stream_not_trimmed", previous=previous, error=repr(exc))
            return 0, {}
        return first, {name: seq for name, seq in stores.items() if base_snapshot(keep, seq) < previous}

    async def _load_snapshot(self, store: ObjectStore) -> None:
        """Start from the shard's latest snapshot, if there is one."""
        t0 = time.perf_counter()
        state = await load_latest(store, self.shard.name)
        if state is None:
            return
        self.engine = load_state(state, self.cfg.instruments, self.cfg.self_trade_prevention)
        self.applied = self.snapshot_seq = int(state["stream_seq"])
        self.clock_seq = int(state["clock_seq"])
        self.log.info("snapshot_loaded", seq=self.applied, commands=self.engine.commands_processed,
                      seconds=round(time.perf_counter() - t0, 3))  # fmt: skip

    # ------------------------------------------------------------------ the process

    async def run(self) -> None:
        nc = await connect(self.cluster.servers, f"fixgw-engine-{self.name}")
        self.js = js = nc.jetstream()
        await ensure_stream(js, self.commands)
        await ensure_stream(js, self.results_spec)
        kv = await ensure_lease_bucket(js, self.cluster)
        await self.operator.connected(nc, js)
        store = await open_store(js, self.cluster)
        self.stores = await open_bucket(js, self.cluster)
        await self._load_snapshot(store)
        await self._sync_published()
        t0 = time.perf_counter()
        follower = Follower(js, self.commands, self.on_command, self.log)
        await follower.start(self.applied)
        self.log.info("engine_started", after=self.applied, published=self.published,
                      seconds=round(time.perf_counter() - t0, 3))  # fmt: skip
        print(f"READY pid={os.getpid()}", flush=True)
        jobs = (self.hold_lease(kv), self.publish_results(), self.drive_day(), self.store_snapshots(store),
                self.move_funds())  # fmt: skip
        tasks = [asyncio.ensure_future(job) for job in jobs]
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        self.log.info("engine_stopping", applied=self.applied, published=self.published, active=self.active)
        await self.operator.deactivate()
        if self.active:  # let the results computed so far reach the stream, then free the lease at once
            deadline = time.monotonic() + 5
            while self.results and time.monotonic() < deadline:
                self._wake.set()
                await asyncio.sleep(0.01)
            with contextlib.suppress(nats.errors.Error, nats.js.errors.Error):
                await kv.delete(f"engine-{self.shard.name}")
        self.stopping = True
        for task in tasks:
            task.cancel()
        await follower.stop()
        await nc.close()
        self.operator.close()
        self.log.info("engine_stopped")


def serve(cfg: VenueConfig, cluster: ClusterConfig, name: str, shard: str | None = None) -> int:
    asyncio.run(EngineNode(cfg, cluster, name, cluster.shard(shard)).run())
    return 0
