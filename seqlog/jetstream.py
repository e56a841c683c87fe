"""NATS JetStream behind the sequenced-log interface: a replicated log of record batches.

A JetStream *message* here is one batch of records in the file format of :mod:`seqlog.records`
(``[length][CRC-32][payload]`` each), so the local journal and a stream hold the same bytes and one parser reads
both. A writer turns everything appended during one loop turn into one message (the group commit of a replicated
log: one round trip to the stream leader, which stores it on a quorum of replicas before it acknowledges).

Positions (what :class:`~seqlog.LogReader` hands out) are ``stream_sequence << BATCH_BITS | index in the batch``:
they grow with the log, and the record after the last one of message ``n`` is at ``(n + 1) << BATCH_BITS``.

Ordering and exactly-once: :class:`JetStreamWriter` keeps at most one batch in flight. A batch that is not
acknowledged (a time-out while the servers elect a new stream leader) is published again with the same
``Nats-Msg-Id``, which the stream's duplicate window turns into a no-op if the first attempt was stored; the next
batch waits until then, so batches are stored exactly once and in the order they were committed.

Everything here is asyncio (``nats-py``); a process whose main thread runs QuickFIX drives the event loop in short
steps between polls (:class:`LoopPump`) instead of running it on a second thread (QuickFIX notes, pitfall 2).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import nats
import nats.errors
import nats.js.errors
import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from seqlog.records import HEADER, parse

BATCH_BITS = 16
MAX_BATCH = (1 << BATCH_BITS) - 1  # records per message at most (a loop turn never gets near this)
ORIGIN = "Fixgw-Origin"  # header: the writer that published a batch
MSG_ID = "Nats-Msg-Id"
EXPECTED_LAST_SEQ = "Nats-Expected-Last-Sequence"
API_TIMEOUT = 2.0  # seconds for one JetStream API call or publish acknowledgement before trying again
RETRY_PAUSE = 0.2
DELIVERY_TIMEOUT = 30.0  # seconds a reader waits for a message the stream is known to hold
T = TypeVar("T")


def position(seq: int, index: int = 0) -> int:
    return seq << BATCH_BITS | index


def split(pos: int) -> tuple[int, int]:
    """(stream sequence, index in its batch) of a position."""
    return pos >> BATCH_BITS, pos & MAX_BATCH


def pack(payloads: Sequence[bytes]) -> bytes:
    """Records in the log-file format, concatenated: one message's body."""
    pack_header, crc = HEADER.pack, zlib.crc32
    return b"".join(pack_header(len(p), crc(p)) + p for p in payloads)


def unpack(body: bytes) -> list[bytes]:
    """The records of one message's body (a corrupt batch raises ValueError: JetStream checks its own storage, so
    this means a writer that is not ours)."""
    out: list[tuple[int, int, bytes]] = []
    problem = parse(body, 0, out, MAX_BATCH + 1)
    if problem is not None:
        raise ValueError(f"unreadable batch: {problem}")
    return [payload for _, _, payload in out]


@dataclass(frozen=True)
class StreamSpec:
    """One stream of the venue: its name, the one subject it holds, and how many servers keep a copy."""

    name: str
    subject: str
    replicas: int = 1
    duplicate_window: float = 120.0  # seconds a Nats-Msg-Id is remembered (a retried batch inside it is ignored)


class ConnectionEvents:
    """nats-py's callbacks as one log line each: its default error callback logs a traceback on every failed
    reconnect attempt (ten a second while the cluster is down); here one ``nats_error`` line per distinct error
    every ``QUIET`` seconds, and a line when the connection is lost and when it is back."""

    QUIET = 10.0

    def __init__(self, name: str) -> None:
        self.log = structlog.get_logger(component="nats", connection=name)
        self._said: dict[str, float] = {}

    async def error(self, exc: Exception) -> None:
        text = f"{type(exc).__name__}: {exc}"
        now = time.monotonic()
        if now - self._said.get(text, -self.QUIET) >= self.QUIET:
            self._said[text] = now
            self.log.warning("nats_error", error=text)

    async def disconnected(self) -> None:
        self.log.warning("nats_disconnected")

    async def reconnected(self) -> None:
        self._said.clear()
        self.log.info("nats_reconnected")


async def connect(servers: Sequence[str], name: str) -> NATS:
    """A connection that reconnects forever (to any of ``servers``) and never gives up on a restarting cluster."""
    events = ConnectionEvents(name)
    return await nats.connect(
        servers=list(servers),
        name=name,
        error_cb=events.error,
        disconnected_cb=events.disconnected,
        reconnected_cb=events.reconnected,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.1,
        connect_timeout=2,
        allow_reconnect=True,
        ping_interval=2,
        max_outstanding_pings=2,
    )


async def retry(what: Callable[[], Awaitable[T]], deadline: float, pause: float = RETRY_PAUSE) -> T:
    """``await what()`` until it succeeds or ``deadline`` (monotonic) passes; JetStream API calls time out while the
    cluster elects a leader, and then succeed."""
    while True:
        try:
            return await what()
        except (nats.errors.TimeoutError, nats.js.errors.ServiceUnavailableError, nats.errors.NoRespondersError,
                nats.js.errors.NoStreamResponseError, nats.errors.ConnectionReconnectingError):  # fmt: skip
            if time.monotonic() + pause >= deadline:
                raise
        except nats.js.errors.APIError as exc:
            # 10008: JetStream not available (yet); 10074..: cluster not ready, stream leader unknown; 10005 "no
            # suitable peers for placement": the meta leader does not know every server of a cluster just started yet
            if (exc.code not in (500, 503) and exc.err_code != 10005) or time.monotonic() + pause >= deadline:
                raise
        await asyncio.sleep(pause)


async def ensure_stream(js: JetStreamContext, spec: StreamSpec, timeout: float = 30.0) -> None:
    """Create the stream if it does not exist (idempotent: several processes may start at once)."""
    deadline = time.monotonic() + timeout

    async def create() -> None:
        try:
            await js.stream_info(spec.name)
            return
        except nats.js.errors.NotFoundError:
            pass
        try:
            await js.add_stream(
                name=spec.name,
                subjects=[spec.subject],
                num_replicas=spec.replicas,
                storage=api.StorageType.FILE,
                duplicate_window=spec.duplicate_window,
                discard=api.DiscardPolicy.OLD,
            )
        except nats.js.errors.BadRequestError as exc:
            if "already in use" not in str(exc.description):
                raise

    await retry(create, deadline)


async def last_sequence(js: JetStreamContext, stream: str, timeout: float = 30.0) -> int:
    """The sequence of the last message in ``stream`` (0 if empty)."""
    info = await retry(lambda: js.stream_info(stream), time.monotonic() + timeout)
    return int(info.state.last_seq)


class JetStreamWriter:
    """Appends records; each :meth:`commit` hands what was appended since the last one to the stream as one message.

    ``on_stored(batch_number, stream_sequence)`` is called for each batch once the stream acknowledged it (stored on
    a quorum); ``on_retry(batch_number, error)`` for every failed attempt. :attr:`pending` counts records appended
    and not yet acknowledged. Use from the event loop's thread only.
    """

    def __init__(
        self,
        js: JetStreamContext,
        spec: StreamSpec,
        origin: str,
        on_stored: Callable[[int, int], None] | None = None,
        on_retry: Callable[[int, str], None] | None = None,
    ) -> None:
        self.js = js
        self.spec = spec
        self.origin = origin
        self.on_stored = on_stored
        self.on_retry = on_retry
        self.boot = f"{origin}:{time.time_ns():x}"
        self._numbers = itertools.count(1)
        self._open: list[bytes] = []
        self._queue: deque[tuple[int, list[bytes]]] = deque()  # committed batches not yet stored, oldest first
        self._task: asyncio.Task[None] | None = None
        self.pending = 0
        self.batches = 0  # acknowledged
        self.retries = 0

    def append(self, payload: bytes) -> None:
        self._open.append(payload)
        self.pending += 1

    @property
    def unsynced(self) -> int:
        return len(self._open)

    def commit(self) -> int:
        """Close the open batch and queue it for the stream; returns its number (0 if nothing was appended)."""
        if not self._open:
            return 0
        number = next(self._numbers)
        records, self._open = self._open, []
        while records:
            self._queue.append((number, records[:MAX_BATCH]))
            records = records[MAX_BATCH:]
        if self._task is None or self._task.done():
            self._task = asyncio.get_event_loop().create_task(self._drain())
        return number

    async def _drain(self) -> None:
        while self._queue:
            number, records = self._queue[0]
            headers = {MSG_ID: f"{self.boot}:{number}:{len(records)}", ORIGIN: self.origin}
            body = pack(records)
            while True:
                try:
                    ack = await self.js.publish(self.spec.subject, body, timeout=API_TIMEOUT, headers=dict(headers))
                    break
                except (TimeoutError, nats.errors.Error, nats.js.errors.Error) as exc:
                    self.retries += 1
                    if self.on_retry is not None:
                        self.on_retry(number, repr(exc))
                    await asyncio.sleep(RETRY_PAUSE)
            self._queue.popleft()
            self.pending -= len(records)
            self.batches += 1
            if self.on_stored is not None:
                self.on_stored(number, int(ack.seq))

    async def flush(self, timeout: float = 10.0) -> None:
        """Wait until every committed batch is stored."""
        self.commit()
        deadline = time.monotonic() + timeout
        while self._queue:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self._queue)} batches not stored within {timeout:g}s")
            await asyncio.sleep(0.005)


class Follower:
    """Delivers the messages of a stream from a sequence on, each exactly once and in order, to ``on_message``
    (``(sequence, msg)``). Built on an ordered push consumer (which re-creates itself when it misses heartbeats, as
    after a server dies); a message out of order makes it start again after the last one delivered."""

    def __init__(
        self, js: JetStreamContext, spec: StreamSpec, on_message: Callable[[int, Msg], None], log: Any = None
    ) -> None:
        self.js = js
        self.spec = spec
        self.on_message = on_message
        self.log = log
        self.last = 0
        self._sub: Any = None
        self._restart: asyncio.Task[None] | None = None

    async def start(self, after: int) -> None:
        """Deliver every message with a sequence above ``after``."""
        self.last = after
        await self._subscribe()

    async def _subscribe(self) -> None:
        deadline = time.monotonic() + 60
        config = api.ConsumerConfig(
            deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=self.last + 1, idle_heartbeat=0.5
        )
        self._sub = await retry(
            lambda: self.js.subscribe(
                self.spec.subject, stream=self.spec.name, cb=self._cb, ordered_consumer=True, config=config,
                pending_msgs_limit=-1, pending_bytes_limit=-1,
            ),
            deadline,
        )  # fmt: skip

    async def _cb(self, msg: Msg) -> None:
        seq = msg.metadata.sequence.stream
        if seq <= self.last:
            return  # a redelivery after a reset: already delivered
        if seq != self.last + 1:
            if self.log is not None:
                self.log.warning("stream_gap", stream=self.spec.name, expected=self.last + 1, got=seq)
            if self._restart is None or self._restart.done():
                self._restart = asyncio.get_event_loop().create_task(self.restart())
            return
        self.last = seq
        self.on_message(seq, msg)

    async def restart(self) -> None:
        await self.stop()
        await self._subscribe()

    async def stop(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(nats.errors.Error, nats.js.errors.Error):
                await sub.unsubscribe()


class LoopPump:
    """An asyncio event loop driven in steps by a thread that has other work (the QuickFIX poll loop): each
    :meth:`step` runs the callbacks that are ready and the I/O that is readable now, then returns."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)

    def step(self) -> None:
        loop = self.loop
        loop.call_soon(loop.stop)
        loop.run_forever()

    def drain(self, max_steps: int = 16) -> bool:
        """Step until no callback is ready (nats-py hands a message on through a few tasks), at most ``max_steps``;
        True if some are still ready (the caller should come back without sleeping)."""
        ready = self.loop._ready  # type: ignore[attr-defined]  # the loop's queue of ready callbacks
        for _ in range(max_steps):
            self.step()
            if not ready:
                return False
        return True

    def run_for(self, seconds: float) -> None:
        self.loop.run_until_complete(asyncio.sleep(seconds))

    def run(self, coro: Awaitable[T], timeout: float | None = None) -> T:
        return self.loop.run_until_complete(asyncio.wait_for(coro, timeout))

    def close(self) -> None:
        self.loop.close()


class JetStreamLogReader:
    """A stream as a :class:`~seqlog.LogReader` for a synchronous follower (the post-trade store): positions are
    :func:`position` values; a private event loop runs inside :meth:`read` and :meth:`wait`."""

    def __init__(self, servers: Sequence[str], spec: StreamSpec) -> None:
        self.servers = servers
        self.spec = spec
        self.pump = LoopPump()
        self._nc: NATS | None = None
        self._follower: Follower | None = None
        self._buffer: deque[tuple[int, bytes]] = deque()  # (sequence, body) delivered, not yet read
        self._stored = 0  # the stream's last sequence when the follower started: those messages are on their way

    def _ensure(self, seq: int) -> Follower:
        """A follower whose next message is ``seq``."""
        f = self._follower
        if f is not None and (self._buffer[0][0] if self._buffer else f.last + 1) == seq:
            return f
        if f is not None:
            self.pump.run(f.stop(), API_TIMEOUT * 5)
        self._buffer.clear()

        async def start() -> Follower:
            js = await self.jetstream()
            follower = Follower(js, self.spec, lambda s, m: self._buffer.append((s, m.data)))
            await follower.start(seq - 1)
            self._stored = await last_sequence(js, self.spec.name)
            return follower

        self._follower = self.pump.run(start(), 60)
        return self._follower

    async def jetstream(self) -> JetStreamContext:
        """The reader's connection (made at the first use), for a subclass's own calls through :attr:`pump`."""
        if self._nc is None:
            self._nc = await connect(self.servers, "fixgw-log-reader")
        return self._nc.jetstream()

    def read(self, position_: int, max_records: int) -> list[tuple[int, int, bytes]]:
        seq, index = split(position_)
        seq = max(seq, 1)
        self._ensure(seq)
        self.pump.step()
        if not self._buffer and seq <= self._stored:  # stored already: wait for it rather than say the log ends
            deadline = time.monotonic() + DELIVERY_TIMEOUT
            while not self._buffer:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.spec.name}: message {seq} not delivered within {DELIVERY_TIMEOUT:g}s")
                self.pump.run(asyncio.sleep(0.002))
        out: list[tuple[int, int, bytes]] = []
        while self._buffer and len(out) < max_records:
            s, body = self._buffer[0]
            records = unpack(body)
            for i in range(index, len(records)):
                if len(out) >= max_records:
                    self._buffer[0] = (s, body)
                    return out
                nxt = position(s, i + 1) if i + 1 < len(records) else position(s + 1)
                out.append((position(s, i), nxt, records[i]))
            self._buffer.popleft()
            index = 0
        return out

    def wait(self, position_: int, timeout: float) -> bool:
        seq, _ = split(position_)
        self._ensure(max(seq, 1))
        deadline = time.monotonic() + timeout
        while not self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.pump.run(asyncio.sleep(min(left, 0.002)))
        return True

    def close(self) -> None:
        async def stop() -> None:
            if self._follower is not None:
                await self._follower.stop()
            if self._nc is not None:
                await self._nc.close()

        try:
            self.pump.run(stop(), 5)
        finally:
            self.pump.close()
