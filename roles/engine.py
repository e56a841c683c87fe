"""The engine role: one matching engine (with its ledger) fed by the shard's command stream.

``fixgw serve --role engine --name e1 --config venue.toml``; start two or more for standbys.

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
  from its state, changes published into the command stream and answered once applied (:mod:`roles.operator`).
* **Start-up commands.** Once active and caught up, an engine compares the config's money rules and opening
  balances with its ledger and publishes a ``Configure`` and deposits into the command stream, as the one-process
  venue journals them at start-up.

The process is plain asyncio: no QuickFIX in it, so its one thread is free to spend its time in the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections import deque
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from engine import Command, Configure, Event, Fund, MatchingEngine
from engine.codec import decode, encode
from engine.eventcodec import encode_events
from gateway.config import VenueConfig
from gateway.logs import get_logger
from roles.config import SHARD, ClusterConfig
from roles.operator import EngineOperator
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


async def ensure_lease_bucket(js: JetStreamContext, cluster: ClusterConfig) -> KeyValue:
    async def open_or_create() -> KeyValue:
        try:
            return await js.key_value(cluster.lease_bucket)
        except nats.js.errors.BucketNotFoundError:
            return await js.create_key_value(
                bucket=cluster.lease_bucket, history=1, ttl=cluster.lease_seconds, replicas=cluster.replicas
            )

    return await retry(open_or_create, time.monotonic() + 30)


def startup_commands(cfg: VenueConfig, engine: MatchingEngine) -> list[Command]:
    """The config's money rules if the engine's differ, and the opening balances not deposited yet."""
    setup = cfg.ledger
    if setup is None:
        return []
    out: list[Command] = []
    ledger = engine.ledger
    now = time.time_ns()
    if ledger is None or ledger.setup != setup:
        out.append(Configure(setup.to_dict(), now))
    funded = ledger.funding_ids if ledger is not None else set()
    for account, balances in cfg.opening_balances.items():
        for asset, units in balances.items():
            funding_id = f"opening:{account}:{asset}"
            if units > 0 and funding_id not in funded:
                out.append(Fund("opening", account, asset, units, funding_id, now))
    return out


class EngineNode:
    """One engine process: applies the command stream; publishes results while it holds the shard's lease."""

    def __init__(self, cfg: VenueConfig, cluster: ClusterConfig, name: str) -> None:
        self.cfg = cfg
        self.cluster = cluster
        self.name = name
        self.log = get_logger("engine").bind(node=name)
        self.engine = MatchingEngine(cfg.instruments, cfg.self_trade_prevention)
        self.applied = 0  # command messages applied
        self.published = 0  # result messages known to be in the result stream
        self.results: deque[tuple[int, bytes, dict[str, str]]] = deque()  # computed, not known to be published
        self.active = False
        self.stopping = False
        self._wake = asyncio.Event()
        self._caught_up_configured = False
        self.js: JetStreamContext | None = None
        self.commands_applied = 0
        self.operator = EngineOperator(cfg, cluster, name, lambda: self.engine, self.log)

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
        js, subject = self.js, self.cluster.results.subject
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
        last = await last_sequence(self.js, self.cluster.results.name)
        self.published = max(self.published, last)
        while self.results and self.results[0][0] <= self.published:
            self.results.popleft()

    # ------------------------------------------------------------------ leadership

    async def hold_lease(self, kv: KeyValue) -> None:
        key, value = f"engine-{SHARD}", self.name.encode()
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
        if self.applied < await last_sequence(self.js, self.cluster.commands.name):
            return
        self._caught_up_configured = True
        commands = startup_commands(self.cfg, self.engine)
        if not commands:
            return
        writer = JetStreamWriter(self.js, self.cluster.commands, f"engine-{self.name}")
        for cmd in commands:
            writer.append(encode(cmd))
        await writer.flush(timeout=60)
        self.log.info("startup_commands_published", commands=len(commands))

    # ------------------------------------------------------------------ the process

    async def run(self) -> None:
        nc = await connect(self.cluster.servers, f"fixgw-engine-{self.name}")
        self.js = js = nc.jetstream()
        await ensure_stream(js, self.cluster.commands)
        await ensure_stream(js, self.cluster.results)
        kv = await ensure_lease_bucket(js, self.cluster)
        await self.operator.connected(nc, js)
        await self._sync_published()
        t0 = time.perf_counter()
        follower = Follower(js, self.cluster.commands, self.on_command, self.log)
        await follower.start(0)
        self.log.info("engine_started", published=self.published, seconds=round(time.perf_counter() - t0, 3))
        print(f"READY pid={os.getpid()}", flush=True)
        tasks = [asyncio.ensure_future(self.hold_lease(kv)), asyncio.ensure_future(self.publish_results())]
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
                await kv.delete(f"engine-{SHARD}")
        self.stopping = True
        for task in tasks:
            task.cancel()
        await follower.stop()
        await nc.close()
        self.operator.close()
        self.log.info("engine_stopped")


def serve(cfg: VenueConfig, cluster: ClusterConfig, name: str) -> int:
    asyncio.run(EngineNode(cfg, cluster, name).run())
    return 0
