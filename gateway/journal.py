"""The command journal and engine snapshots: every acknowledged order survives a crash.

Journal file format: a sequence of records ``[u32 little-endian payload length][u32 CRC-32 of payload][payload]``,
the payload being one command encoded by :mod:`engine.codec`, in segments (one per trading day: the journal rolls at
the end of each day, :mod:`seqlog.segments`). Records are appended *before* the command is applied,
and no ExecutionReport or market-data message that depends on a command leaves the process before its record is as
durable as the policy promises. Only engine commands are journaled: a cancel, replace or mass cancel that the FIX edge
refuses (:mod:`gateway.orders`) never becomes one, changes nothing and has no record.

``off``     no journal; a restart starts with empty books.
``write``   each record is handed to the OS before the command runs: survives a crash of the process, not of the
            machine (a power loss can lose the last records).
``group``   group commit: records of one turn of the gateway loop (everything QuickFIX read in one poll) are fsynced
            together, and the replies to those commands are held until that fsync returns. Survives a power loss;
            the added latency is bounded by one loop turn plus one fsync.
``fsync``   fsync after every record, before the command runs. Survives a power loss; one fsync per command.

Snapshots (``snapshot-<journal offset>.json`` in the snapshot directory) are written by a forked child process, so
the engine thread does not stop to serialise. Offsets are positions in the whole journal, across its segments.
Recovery loads the newest snapshot whose offset lies within the journal, then replays the records after it. A torn
or corrupt record (short read, bad length, CRC mismatch) ends the usable journal: it is reported, and the last
segment is cut there before the gateway accepts any logon (a bad record in an earlier segment refuses the start).
"""

from __future__ import annotations

import gc
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson

from engine import Command, EndOfDay, Execution, Instrument, MatchingEngine, SelfTradePrevention
from engine.codec import decode, encode
from engine.snapshot import dump_state, load_state

# The record format, its scanner and the file writer live in seqlog (the sequenced log); re-exported here.
from seqlog.filelog import Durability as Durability
from seqlog.filelog import FileLogWriter
from seqlog.records import HEADER as HEADER
from seqlog.records import MAX_RECORD as MAX_RECORD
from seqlog.records import ScanResult as ScanResult
from seqlog.records import read_records as read_records
from seqlog.segments import log_size, read_log, segments


class Journal:
    """The gateway's command journal: commands encoded by :mod:`engine.codec`, appended to a
    :class:`~seqlog.filelog.FileLogWriter` (which has the file format, the segments and the durability policies).
    ``path`` is the first segment; :meth:`roll` starts a new one (:mod:`seqlog.segments`)."""

    def __init__(self, path: Path, policy: Durability, on_fsync: Callable[[float], None] | None = None) -> None:
        self.log = FileLogWriter(path, policy, on_fsync)
        self.first = path
        self.policy = policy
        self._append = self.log.append

    @property
    def path(self) -> Path:
        """The segment appends go to."""
        return self.log.path

    @property
    def base(self) -> int:
        """The position the current segment starts at."""
        return self.log.base

    @property
    def offset(self) -> int:
        """The position after the last record appended (records not yet synced included), across segments."""
        return self.log.offset

    @property
    def unsynced(self) -> int:
        return self.log.unsynced

    @property
    def fsyncs(self) -> int:
        return self.log.fsyncs

    def roll(self, label: str) -> Path:
        """Close the segment (synced) and continue in a new one starting at :attr:`offset`; returns its path."""
        return self.log.roll(label)

    def append(self, command: Command) -> None:
        self._append(encode(command))

    def commit(self) -> bool:
        """Make appended records durable (group commit); True if an fsync was done."""
        return self.log.commit()

    def close(self) -> None:
        self.log.close()


# ---------------------------------------------------------------------------- snapshots


def snapshot_path(directory: Path, offset: int) -> Path:
    return directory / f"snapshot-{offset:016d}.json"


def write_snapshot(engine: MatchingEngine, directory: Path, offset: int) -> Path:
    """Write the engine state as of journal ``offset`` (atomically: temp file, fsync, rename)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = snapshot_path(directory, offset)
    tmp = path.with_suffix(".tmp")
    state = dump_state(engine)
    state["journal_offset"] = offset
    with tmp.open("wb") as f:
        f.write(orjson.dumps(state))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def fork_snapshot(engine: MatchingEngine, directory: Path, offset: int) -> int:
    """Write a snapshot from a forked child (copy-on-write view of the engine); returns the child's pid."""
    pid = os.fork()
    if pid == 0:  # child: serialise and leave without running any parent cleanup
        code = 0
        try:
            write_snapshot(engine, directory, offset)
        except BaseException:
            code = 1
        os._exit(code)
    return pid


def snapshots(directory: Path) -> list[tuple[int, Path]]:
    """(journal offset, path) of every complete snapshot, newest first."""
    if not directory.exists():
        return []
    found = []
    for p in directory.glob("snapshot-*.json"):
        try:
            found.append((int(p.stem.split("-")[1]), p))
        except ValueError:
            continue
    return sorted(found, reverse=True)


# ---------------------------------------------------------------------------- recovery

_EXEC_ID = re.compile(rb"\x0135=8\x01.*?\x0117=(\d+)\x01")
T = TypeVar("T")


def read_store_tail(store_body: Path, read: Callable[[bytes, bool], T | None], tail: int = 4 << 20) -> T | None:
    """``read(data, whole)`` of the last ``tail`` bytes of a QuickFIX FileStore body file, and of the whole file
    (``whole`` true) if that gave None: what a restart needs is nearly always near the end. None without a file."""
    if not store_body.exists():
        return None
    with store_body.open("rb") as f:
        size = f.seek(0, os.SEEK_END)
        for start in (max(0, size - tail), 0):
            f.seek(start)
            found = read(f.read(), start == 0)
            if found is not None or start == 0:
                return found
    return None


def last_exec_ids(store_body: Path, group: Callable[[int], str], groups: int, tail: int = 4 << 20) -> dict[str, int]:
    """The highest ExecID (17) of each ``group(exec_id)`` among the ExecutionReports in a QuickFIX FileStore body
    file (the multi-process venue's shards); the whole file is read when its tail lacks one of the ``groups`` (an
    ExecID of group ``""`` counts for none)."""

    def read(data: bytes, whole: bool) -> dict[str, int] | None:
        found: dict[str, int] = {}
        for m in _EXEC_ID.findall(data):
            exec_id = int(m)
            key = group(exec_id)
            if exec_id > found.get(key, 0):
                found[key] = exec_id
        return found if whole or len(found) - ("" in found) >= groups else None

    return read_store_tail(store_body, read, tail) or {}


def last_exec_id(store_body: Path, tail: int = 4 << 20) -> int:
    """The highest ExecID (17) among the ExecutionReports in a QuickFIX FileStore body file (0 if none)."""

    def read(data: bytes, whole: bool) -> int | None:
        ids = [int(m) for m in _EXEC_ID.findall(data)]
        return max(ids) if ids else (0 if whole else None)

    return read_store_tail(store_body, read, tail) or 0


@dataclass
class Recovery:
    """How the engine was rebuilt."""

    snapshot: Path | None = None
    snapshot_offset: int = 0
    replayed: int = 0
    journal_end: int = 0
    cut_bytes: int = 0
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    unsent: list[Execution] = field(default_factory=list)  # replayed reports the sessions' stores never got
    unaudited: list[Execution] = field(default_factory=list)  # replayed executions above the audit trail's last
    last_command: Command | None = None  # the last command replayed (None: none after the snapshot)
    ended_day: bool = False  # the last EndOfDay replayed ended a trading day (the first one only sets the date)


class JournalDamaged(ValueError):
    """A bad record in a segment other than the last: recovery cannot go past it, nor cut the log there."""


def recover(
    journal_path: Path,
    snapshot_dir: Path,
    instruments: tuple[Instrument, ...],
    stp: SelfTradePrevention,
    cut: bool = True,
    last_sent: dict[str, int] | None = None,
    last_audited: int | None = None,
) -> tuple[MatchingEngine, Recovery]:
    """Rebuild the engine from the newest usable snapshot plus the journal after it; cut a bad tail if ``cut``.

    ``last_sent`` maps an owner to the highest ExecID its FIX message store holds: replayed executions above it were
    journaled but never handed to QuickFIX (the process died between the group commit and the send), and are
    returned in ``Recovery.unsent`` so the gateway can send them now. ``last_audited`` is the highest ExecID in the
    audit trail: replayed executions above it are returned in ``Recovery.unaudited`` (the trail's buffer died with the
    process) so the gateway can write their lines now.

    The cyclic garbage collector is paused meanwhile (the engine makes no reference cycles, and a million new
    long-lived orders would otherwise trigger repeated full collections), and the rebuilt state is frozen.
    """
    gc.disable()
    try:
        engine, report = _recover(journal_path, snapshot_dir, instruments, stp, cut, last_sent, last_audited)
    finally:
        gc.enable()
    gc.freeze()
    return engine, report


def _recover(
    journal_path: Path,
    snapshot_dir: Path,
    instruments: tuple[Instrument, ...],
    stp: SelfTradePrevention,
    cut: bool,
    last_sent: dict[str, int] | None,
    last_audited: int | None = None,
) -> tuple[MatchingEngine, Recovery]:
    report = Recovery()
    size = log_size(journal_path)
    engine: MatchingEngine | None = None
    for offset, path in snapshots(snapshot_dir):
        if offset > size:
            report.notes.append(f"ignored {path.name}: beyond the end of the journal")
            continue
        try:
            state: dict[str, Any] = orjson.loads(path.read_bytes())
            engine = load_state(state, instruments, stp)
        except (OSError, ValueError, KeyError, orjson.JSONDecodeError) as exc:
            report.notes.append(f"ignored {path.name}: {exc}")
            continue
        report.snapshot, report.snapshot_offset = path, offset
        break
    if engine is None:
        engine = MatchingEngine(instruments, stp)
    found = segments(journal_path)
    if not found:
        return engine, report
    scan = ScanResult()
    process = engine.process
    for _, payload in read_log(journal_path, report.snapshot_offset, scan):
        command = decode(payload)
        report.last_command = command
        if type(command) is EndOfDay:
            report.ended_day = engine.trading_date not in (None, command.trading_date)
        events = process(command)
        report.replayed += 1
        if last_sent is not None:
            for ev in events:
                if type(ev) is Execution and ev.order.owner in last_sent and ev.seq > last_sent[ev.order.owner]:
                    report.unsent.append(ev)
        if last_audited is not None:
            report.unaudited += [ev for ev in events if type(ev) is Execution and ev.seq > last_audited]
    report.journal_end = scan.good_end
    if scan.error is not None:
        report.error = scan.error
        report.cut_bytes = scan.size - scan.good_end
        base, last = found[-1]
        if scan.good_end < base:  # the bad record is in a day's segment before the last: nothing to cut safely
            raise JournalDamaged(f"the journal is damaged before its last segment ({scan.error}): start refused")
        if cut:
            with last.open("r+b") as f:
                f.truncate(scan.good_end - base)
                f.flush()
                os.fsync(f.fileno())
    return engine, report
