"""The follower: replays the deterministic engine from the command journal and writes the rows of its events.

Start-up: read the position committed in the database, build the engine exactly as the gateway does (the venue
config's instruments and self-trade prevention), load the newest gateway snapshot at or before that position, and
replay the journal up to the position without writing anything (those rows are in the database already). Then,
for every batch of records after it: run them through the engine, turn the events into rows, and write the rows
and the new position in one transaction. A crash of either process at any moment leaves the database at a batch
boundary, so the next start continues exactly there: every row is written once.

Several logs (a multi-shard venue's command streams, README "Scale-out"): one follower replays one engine per log,
each with its own position (a ``store_position`` row per shard), into one database; a transaction holds the rows of
one shard's batch and moves that shard's position only, so each shard restarts exactly where its rows end. Balances
are summed over the shards' ledgers as the engines stand, each at its committed position.

At start-up the follower also checks that the journal still holds, at the committed position, the record it last
wrote (its CRC-32 is in the database): a replaced or shortened journal is refused rather than silently mixed in.
"""

from __future__ import annotations

import gc
import threading
import time
import zlib
from array import array
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import orjson

from engine import Command, Instrument, MatchingEngine
from engine.codec import decode
from engine.snapshot import load_state
from gateway.config import VenueConfig
from gateway.journal import snapshots
from seqlog import LogReader
from store.db import Backend, Batch, Position, StoreError
from store.rows import RowBuilder
from store.schema import INSTRUMENTS

MAX_BATCH = 5000  # journal records per transaction at most (when catching up)
REPLAY_CHUNK = 20_000
GC_FREEZE_EVERY = 10_000  # records between gc.freeze() calls: resting orders live long (as in the gateway)
LAG_KEEP_NS = 600 * 10**9  # lag samples kept for /status (ten minutes)


@runtime_checkable
class Retention(Protocol):
    """A log that trims itself (the cluster's command stream) and keeps what its readers tell it they need."""

    def starting(self, position: int) -> None:
        """The store holds its database's lock; its committed position is ``position``: register it, put the
        snapshot to rebuild from in place, or raise :class:`StoreError` if the log no longer holds what it needs."""

    def committed(self, position: int) -> None:
        """Rows are committed up to ``position``."""

    def withdraw(self) -> None:
        """The store will not run after all (another of its logs refused it): undo what :meth:`starting` did."""


def _command(position: int, payload: bytes) -> Command:
    try:
        return decode(payload)
    except (ValueError, KeyError, IndexError, TypeError) as exc:  # intact (its CRC matched) but not a command
        raise StoreError(f"the journal record at {position} is not a command this fixgw knows: {exc!r}") from None


def _mismatch(detail: str) -> StoreError:
    return StoreError(
        f"the journal does not match the store's database ({detail}): was it replaced or cut? Point the store at a "
        "new database, or remove this one to rebuild it from the journal"
    )


class LagWindow:
    """Per-record lag (journal record appended -> its rows committed), kept for a while, read by the HTTP thread.

    The append time is the command's timestamp, which the gateway takes just before it journals the command."""

    def __init__(self) -> None:
        self._batches: deque[tuple[int, array[int]]] = deque()
        self._lock = threading.Lock()

    def add(self, committed_ns: int, stamps: list[int]) -> None:
        lags = array("q", [committed_ns - ts for ts in stamps])
        with self._lock:
            self._batches.append((committed_ns, lags))
            while self._batches and self._batches[0][0] < committed_ns - LAG_KEEP_NS:
                self._batches.popleft()

    def summary(self, seconds: float) -> dict[str, Any]:
        """Lag percentiles (milliseconds) of the records committed in the last ``seconds``."""
        since = time.time_ns() - int(seconds * 1e9)
        with self._lock:
            chosen = [lags for at, lags in self._batches if at >= since]
        values = sorted(v for lags in chosen for v in lags)
        if not values:
            return {"window_s": seconds, "records": 0}

        def pct(p: float) -> float:
            return round(values[min(len(values) - 1, int(p * len(values)))] / 1e6, 3)

        return {"window_s": seconds, "records": len(values), "p50_ms": pct(0.5), "p99_ms": pct(0.99),
                "max_ms": round(values[-1] / 1e6, 3)}  # fmt: skip


@dataclass
class Source:
    """A log the follower replays: its ``store_position`` row, its reader, the snapshots whose offsets are positions
    in it, and how its engine starts (a shard's instruments and the base of its ids, as its engines build theirs)."""

    shard: int
    reader: LogReader
    snapshot_dir: Path
    instruments: Sequence[Instrument]
    id_base: int = 0


class _Lane:
    """A source being followed: its engine, row builder and committed position."""

    def __init__(self, source: Source, cfg: VenueConfig, ledgers: Callable[[], list[Any]] | None) -> None:
        self.source = source
        self.reader = source.reader
        self.engine = self.fresh_engine(cfg)
        self.builder = RowBuilder(cfg.instruments, lambda: self.engine.ledger, ledgers)
        self.pos = Position(shard=source.shard)
        self.retention = source.reader if isinstance(source.reader, Retention) else None
        self.snapshot: str | None = None

    def fresh_engine(self, cfg: VenueConfig) -> MatchingEngine:
        return MatchingEngine(self.source.instruments, cfg.self_trade_prevention, id_base=self.source.id_base)


class Follower:
    """One run of the follower over one database connection; after any error it is thrown away and rebuilt."""

    def __init__(
        self,
        cfg: VenueConfig,
        backend: Backend,
        reader: LogReader | None,
        log: Any,
        snapshot_dir: Path | None = None,
        lag: LagWindow | None = None,
        sources: Sequence[Source] = (),
    ) -> None:
        """Follows ``reader`` (snapshots in ``snapshot_dir``, default the journal's), or every one of ``sources``."""
        self.cfg = cfg
        self.backend = backend
        self.log = log
        self.lag = lag if lag is not None else LagWindow()
        if not sources:
            assert reader is not None
            where = snapshot_dir if snapshot_dir is not None else cfg.data_dir / "journal" / "snapshots"
            sources = (Source(0, reader, where, cfg.instruments),)
        self.lanes: list[_Lane] = []
        ledgers = (lambda: [lane.engine.ledger for lane in self.lanes]) if len(sources) > 1 else None
        self.lanes += [_Lane(source, cfg, ledgers) for source in sources]
        self.rows_written = 0
        self.batches = 0
        self.caught_up = False
        self._frozen_at = 0

    # The first (or only) log's: what the one-log store reports
    @property
    def engine(self) -> MatchingEngine:
        return self.lanes[0].engine

    @property
    def pos(self) -> Position:
        return self.lanes[0].pos

    @property
    def snapshot(self) -> str | None:
        return self.lanes[0].snapshot

    @property
    def records(self) -> int:
        """Commands processed up to the committed positions, over every log."""
        return sum(lane.pos.records for lane in self.lanes)

    # ------------------------------------------------------------------ start-up

    def start(self, lock_timeout: float = 5.0) -> None:
        """Lock, migrate, record the instruments, then rebuild the engine up to the committed position (closes the
        database and the reader if any of it fails)."""
        try:
            self._start(lock_timeout)
        except BaseException:
            self.close()
            raise

    def _start(self, lock_timeout: float) -> None:
        t0 = time.perf_counter()
        self.backend.lock(lock_timeout)
        before, after = self.backend.migrate()
        if before != after:
            self.log.info("store_migrated", backend=self.backend.dialect, from_version=before, to_version=after)
        instruments = {i.symbol: (i.symbol, str(i.tick_size), str(i.lot_size)) for i in self.cfg.instruments}
        positions = [self.backend.position(lane.source.shard) for lane in self.lanes]
        self.backend.write(Batch(upserts={INSTRUMENTS: instruments}), positions[0], positions[0])
        started: list[Retention] = []
        for lane, pos in zip(self.lanes, positions, strict=True):
            if lane.retention is None:
                continue
            try:
                lane.retention.starting(pos.position)
            except StoreError:  # refused by one log: registered with none (README "Scale-out")
                for retention in started:
                    retention.withdraw()
                raise
            started.append(lane.retention)
        for lane, pos in zip(self.lanes, positions, strict=True):
            gc.disable()
            try:
                lane.snapshot = self._rebuild(lane, pos)
            finally:
                gc.enable()
            gc.freeze()
            lane.pos = pos
            shard = {"shard": lane.source.shard} if len(self.lanes) > 1 else {}
            self.log.info(
                "store_started", backend=self.backend.dialect, position=pos.position, records=pos.records,
                snapshot=lane.snapshot, seconds=round(time.perf_counter() - t0, 3), **shard,
            )  # fmt: skip

    def _rebuild(self, lane: _Lane, pos: Position) -> str | None:
        """The lane's engine as of ``pos``: the newest usable snapshot at or before it, plus a silent replay."""
        cfg, reader = self.cfg, lane.reader
        lane.engine = lane.fresh_engine(cfg)
        if pos.last_record is not None:  # first, cheaply: is this still the journal the store followed?
            found = reader.read(pos.last_record, 1)
            if not found or found[0][1] != pos.position or zlib.crc32(found[0][2]) != pos.last_crc:
                raise _mismatch(f"the record the store wrote last, at {pos.last_record}, is not in it")
        at, used = 0, None
        for offset, path in snapshots(lane.source.snapshot_dir):
            if offset > pos.position:
                continue
            try:  # (every instrument, as an engine of the cluster loads its snapshots: roles.engine)
                lane.engine = load_state(orjson.loads(path.read_bytes()), cfg.instruments, cfg.self_trade_prevention)
            except (OSError, ValueError, KeyError, orjson.JSONDecodeError) as exc:
                self.log.warning("store_snapshot_ignored", snapshot=path.name, error=repr(exc))
                continue
            at, used = offset, path.name
            break
        process = lane.engine.process
        while at < pos.position:
            records = reader.read(at, REPLAY_CHUNK)
            if not records:
                raise _mismatch(f"it ends at {at}, before the store's position {pos.position}")  # (no CRC to check)
            for position, nxt, payload in records:
                if nxt > pos.position:
                    raise _mismatch(f"the store's position {pos.position} is not one of its record boundaries")
                process(_command(position, payload))
                at = nxt
                if at == pos.position:
                    break
        if lane.engine.commands_processed != pos.records:
            raise _mismatch(f"its {lane.engine.commands_processed} commands up to {pos.position} are not the "
                            f"{pos.records} the store recorded")  # fmt: skip
        return used

    # ------------------------------------------------------------------ following

    def step(self, max_records: int = MAX_BATCH) -> int:
        """Write the rows of the next records available in each log (at most ``max_records`` each, one transaction
        each); returns how many records."""
        if len(self.lanes) == 1:
            return self._step(self.lanes[0], max_records)
        done, caught_up = 0, True
        for lane in self.lanes:
            done += self._step(lane, max_records)
            caught_up = caught_up and self.caught_up
        self.caught_up = caught_up
        return done

    def _step(self, lane: _Lane, max_records: int) -> int:
        records = lane.reader.read(lane.pos.position, max_records)
        self.caught_up = len(records) < max_records
        if not records:
            return 0
        commands = []
        for i, (position, _, payload) in enumerate(records):
            try:
                commands.append(_command(position, payload))
            except StoreError:
                if not i:
                    raise
                records = records[:i]  # write what comes before it; the next step stops at it
                break
        batch = Batch()
        add, process = lane.builder.add, lane.engine.process
        for (position, _, _), command in zip(records, commands, strict=True):
            add(process(command), position, batch, command)
        lane.builder.finish(batch)  # balances and positions as of the batch's last record
        stamps = [c.ts for c in commands]
        last_position, next_position, last_payload = records[-1]
        after = Position(next_position, lane.engine.commands_processed, last_position, zlib.crc32(last_payload),
                         lane.source.shard)  # fmt: skip
        self.backend.write(batch, lane.pos, after)
        self.lag.add(time.time_ns(), stamps)
        lane.pos = after
        if lane.retention is not None:
            lane.retention.committed(after.position)
        self.rows_written += batch.rows()
        self.batches += 1
        records_now = self.records
        if records_now - self._frozen_at >= GC_FREEZE_EVERY:
            gc.freeze()
            self._frozen_at = records_now
        return len(records)

    def follow(self, stop: Callable[[], bool], drain: Callable[[], bool], idle_wait: float = 0.1) -> None:
        """Write rows as records arrive until ``stop()``; once ``drain()`` (the gateway is gone), write what the
        journal holds and return."""
        step, lanes = self.step, self.lanes
        if len(lanes) == 1:
            reader, lane = lanes[0].reader, lanes[0]

            def wait() -> None:
                reader.wait(lane.pos.position, idle_wait)
        else:

            def wait() -> None:  # each log in turn (a reader waits on its own connection)
                for lane in lanes:
                    if lane.reader.wait(lane.pos.position, idle_wait / len(lanes)):
                        return

        while not stop():
            # No pause between transactions: what arrived while one was written makes the next (measured: pausing
            # 20 ms to let records gather doubled the records per transaction but saved no CPU, and added lag).
            if step():
                continue
            if drain():
                while step() and not stop():
                    pass
                return
            wait()

    def close(self) -> None:
        try:
            self.backend.close()
        finally:
            for lane in self.lanes:
                lane.reader.close()
