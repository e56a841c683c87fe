"""What the cluster's FIX processes share: the one-process gateway's sessions and loop, fed by the result stream.

An order-entry gateway (:mod:`roles.gateway`) and a market-data publisher (:mod:`roles.marketdata`) are each the
one-process :class:`~gateway.server.Gateway` with its sessions, its QuickFIX acceptor and its one loop thread, but
without an engine: they follow every shard's result stream instead (result message ``n`` of a shard holds the events
of its command message ``n``; shards are independent, so their results interleave in no particular order). The base
class's local engine and journal stay empty and unused (the journal is ``off``).

The JetStream client is asyncio; its loop is stepped between QuickFIX polls on the gateway's one thread
(:class:`~seqlog.jetstream.LoopPump`), never on a thread of its own (QuickFIX notes, pitfall 2). The loop's idle
wait (:mod:`gateway.waiter`) polls every socket of the process, the NATS connection's among them, so a result
wakes it like a FIX message does.

At start-up, before the acceptor is polled (no logon yet), the process reads each result stream from its start up
to its last message at that moment (:meth:`ClusterFront.on_result` is told which messages those are), then goes
live.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from gateway.config import VenueConfig
from gateway.server import Gateway
from roles.config import ClusterConfig, ProcessSpec, ShardSpec, process_config
from seqlog.jetstream import Follower, LoopPump, connect, ensure_stream, last_sequence

CATCH_UP_TIMEOUT = 120.0


class ClusterFront(Gateway):
    """A FIX process of the cluster; subclasses handle result messages (:meth:`on_result`)."""

    role = "front"

    def __init__(self, cfg: VenueConfig, cluster: ClusterConfig, spec: ProcessSpec) -> None:
        local = process_config(cfg, spec)
        super().__init__(dataclasses.replace(local, journal=dataclasses.replace(local.journal, durability="off")))
        self.cluster = cluster
        self.name = spec.name
        self.pump = LoopPump()
        self.nc: NATS | None = None
        self.followers: dict[str, Follower] = {}  # shard -> the follower of its result stream
        self.replay_until: dict[str, int] = {}  # shard -> its result messages up to this one were there at start-up
        self.results = 0  # result messages handled
        self.step = self._step

    def on_result(self, shard: ShardSpec, seq: int, msg: Msg) -> None:
        raise NotImplementedError

    async def on_connect(self, js: JetStreamContext) -> None:
        """Once connected, before the result stream is followed."""

    async def _connect(self) -> None:
        cluster = self.cluster
        self.nc = nc = await connect(cluster.servers, f"fixgw-{self.role}-{self.name}")
        js = nc.jetstream()
        for shard in cluster.shards:
            await ensure_stream(js, cluster.command_stream(shard.name))
            await ensure_stream(js, cluster.result_stream(shard.name))
        await self.on_connect(js)
        for shard in cluster.shards:
            spec = cluster.result_stream(shard.name)
            self.replay_until[shard.name] = await last_sequence(js, spec.name)
            follower = self.followers[shard.name] = Follower(js, spec, self._handler(shard), self.log)
            await follower.start(0)

    def _handler(self, shard: ShardSpec) -> Callable[[int, Msg], None]:
        def on_result(seq: int, msg: Msg) -> None:
            self.results += 1
            self.on_result(shard, seq, msg)

        return on_result

    def connect_and_catch_up(self) -> None:
        """Connect, open the acceptor (its first poll binds the ports) and read the result stream up to where it
        stood at start-up, handing over what that caused (stored for sessions that are not logged on)."""
        self.pump.run(self._connect(), 60)
        self.open_acceptor()
        t0 = time.perf_counter()
        deadline = time.monotonic() + CATCH_UP_TIMEOUT
        for shard, until in self.replay_until.items():
            follower = self.followers[shard]
            while follower.last < until:
                if time.monotonic() > deadline:
                    raise ValueError(f"result stream of shard {shard}: {follower.last} of {until} messages read")
                self.pump.run_for(0.01)
                self._flush()
        self.log.info("results_caught_up", messages=sum(self.replay_until.values()),
                      seconds=round(time.perf_counter() - t0, 3))  # fmt: skip

    def before_step(self) -> None:
        """Each loop turn, before the JetStream client runs."""

    def _step(self) -> None:
        """Each loop turn: let the JetStream client run and take in what came back."""
        self.before_step()
        before = self.results
        if self.pump.drain() or self.results != before:
            self.app.callbacks += 1  # work done or waiting: do not sleep before the next poll

    def on_stopping(self) -> None:
        """After the sessions are logged out, before the connection closes."""

    def _shutdown(self, grace: float = 5.0) -> None:
        super()._shutdown(grace)
        self.on_stopping()
        for follower in self.followers.values():
            self.pump.run(follower.stop(), 5.0)
        if self.nc is not None:
            self.pump.run(self.nc.close(), 5.0)
