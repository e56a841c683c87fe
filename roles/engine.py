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

from engine import Command, Configure, Fund, MatchingEngine
from engine.codec import decode, encode
from engine.eventcodec import encode_events
from gateway.config import VenueConfig
from gateway.logs import get_logger
from roles.config import ClusterConfig, ShardSpec
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


def opening_share(cfg: VenueConfig, cluster: ClusterConfig, shard: ShardSpec, asset: str, units: int) -> int:
    """The part of an opening balance that ``shard`` holds: balances are per shard (README "Scale-out"), so an
    asset is split evenly over the shards whose instruments use it (as base or quote), the remainder to the first
    of them; an asset no instrument uses goes to the first shard. The shares add up to ``units`` exactly."""
    setup = cfg.ledger
    markets = setup.markets if setup is not None else {}
    users = [s for s in cluster.shards if any(m.symbol in s.symbols and asset in (m.base, m.quote)
                                              for m in markets.values())]  # fmt: skip
    users = users or [cluster.shards[0]]
    if shard not in users:
        return 0
    share = units // len(users)
    return share + (units - share * len(users) if shard == users[0] else 0)


def startup_commands(
    cfg: VenueConfig, engine: MatchingEngine, cluster: ClusterConfig | None = None, shard: ShardSpec | None = None
) -> list[Command]:
    """The config's money rules if the engine's differ, and the opening balances (this shard's share of them) not
    deposited yet."""
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
            if cluster is not None and shard is not None:
                units = opening_share(cfg, cluster, shard, asset, units)
            if units > 0 and funding_id not in funded:
                out.append(Fund("opening", account, asset, units, funding_id, now))
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

    # ------------------------------------------------------------------ applying commands

    def on_command(self, seq: int, msg: Msg) -> None:
        """Command message ``seq``: apply its commands, keep its result until it is in the result stream."""
        process = self.engine.process
        results = [encode_events(process(decode(payload))) for payload in unpack(msg.data)]
        self.commands_applied += len(results)
        headers = msg.headers or {}
        self.applied = seq
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
            except (nats.errors.Error, nats.js.errors.Error, TimeoutError) as exc:
                self.log.warning("lease_retry", error=repr(exc))
            if self.active and not self._caught_up_configured:
                await self._startup_commands()
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

    # ------------------------------------------------------------------ the process

    async def run(self) -> None:
        nc = await connect(self.cluster.servers, f"fixgw-engine-{self.name}")
        self.js = js = nc.jetstream()
        await ensure_stream(js, self.commands)
        await ensure_stream(js, self.results_spec)
        kv = await ensure_lease_bucket(js, self.cluster)
        await self._sync_published()
        t0 = time.perf_counter()
        follower = Follower(js, self.commands, self.on_command, self.log)
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
        self.log.info("engine_stopped")


def serve(cfg: VenueConfig, cluster: ClusterConfig, name: str, shard: str | None = None) -> int:
    asyncio.run(EngineNode(cfg, cluster, name, cluster.shard(shard)).run())
    return 0
