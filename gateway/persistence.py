"""The engine's state on disk for one gateway: rebuilt at start-up, journaled while running, snapshotted on the side.

Start-up rebuilds the engine from the newest snapshot plus the journal after it, cutting a torn tail, and opens the
journal for append (:mod:`gateway.journal` has the file formats and durability policies). At the end of each trading
day the journal rolls to a new segment with a snapshot at its start (:meth:`Persistence.roll`). While the gateway runs,
every ``snapshot_every`` commands a forked child writes a snapshot (one child at a time: the engine thread never
stops to serialise), and a clean stop writes one last snapshot so that the next start replays nothing. With
durability ``off`` there is no journal and no snapshot: the engine starts empty.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine import EndOfDay, Execution, MatchingEngine
from gateway.config import Role, VenueConfig
from gateway.journal import Durability, Journal, fork_snapshot, last_exec_id, recover, write_snapshot

NEVER = sys.maxsize


class Persistence:
    """The journal and the snapshots of the gateway's one engine."""

    def __init__(self, cfg: VenueConfig, log: Any, on_fsync: Callable[[float], None] | None = None) -> None:
        self.cfg = cfg
        self.log = log
        self.on_fsync = on_fsync  # handed to the journal: the seconds of each fsync
        self.durability = Durability(cfg.journal.durability)
        self.journal: Journal | None = None
        """Open once :meth:`recover` has run, unless durability is ``off``."""
        self.next_snapshot_at = NEVER
        """``commands_processed`` from which :meth:`snapshot` is due (the loop compares: cheaper than a call)."""
        self._child = 0  # pid of the snapshot child still running, 0 if none
        self.before_snapshot: Callable[[], None] = lambda: None
        """Called before each snapshot: the gateway flushes its audit trail, so that every execution before a
        snapshot is in the trail (recovery rebuilds lost lines only from the journal after the snapshot)."""

    @property
    def journal_path(self) -> Path:
        return self.cfg.data_dir / "journal" / "commands.journal"

    @property
    def snapshot_dir(self) -> Path:
        return self.cfg.data_dir / "journal" / "snapshots"

    def recover(self, last_audited: int | None = None) -> tuple[MatchingEngine, list[Execution], list[Execution]]:
        """The engine as the disk left it, the reports that were journaled but never handed to QuickFIX, and the
        executions above ``last_audited`` (the audit trail's highest ExecID), whose lines the trail lost.

        Rebuilds from snapshot + journal (cutting a bad tail), then opens the journal for append. With durability
        ``off``: an empty engine and nothing to resend.
        """
        cfg = self.cfg
        if self.durability is Durability.OFF:
            return MatchingEngine(cfg.instruments, cfg.self_trade_prevention), [], []
        t0 = time.perf_counter()
        store = cfg.data_dir / "store"
        last_sent = {
            s.comp_id: last_exec_id(store / f"FIX.4.4-{cfg.comp_id}-{s.comp_id}.body")
            for s in cfg.sessions
            if s.role is Role.ORDER_ENTRY
        }
        engine, report = recover(
            self.journal_path,
            self.snapshot_dir,
            cfg.instruments,
            cfg.self_trade_prevention,
            last_sent=last_sent,
            last_audited=last_audited,
        )
        if report.error:
            self.log.error(
                "journal_tail_cut", error=report.error, cut_bytes=report.cut_bytes, kept_bytes=report.journal_end
            )
        for note in report.notes:
            self.log.warning("journal_note", note=note)
        self.log.info(
            "recovered", snapshot=report.snapshot.name if report.snapshot else None, replayed=report.replayed,
            commands=engine.commands_processed, resting=sum(1 for o in engine.orders.values() if o.is_open),
            seconds=round(time.perf_counter() - t0, 3),
        )  # fmt: skip
        self.journal = Journal(self.journal_path, self.durability, self.on_fsync)
        self._schedule_after(engine.commands_processed)
        last = report.last_command
        if isinstance(last, EndOfDay) and report.ended_day and self.journal.offset > self.journal.base:
            self.roll(engine, last.trading_date)  # the day ended just before the crash, its roll was lost
        return engine, report.unsent, report.unaudited

    def roll(self, engine: MatchingEngine, label: str) -> None:
        """End of a trading day (after an :class:`~engine.commands.EndOfDay` that ended one; the first only sets
        the date): the journal goes on in a new segment named after the new day, and a snapshot is written at its
        start, so recovery never reads an older day."""
        if self.journal is None:
            return
        path = self.journal.roll(label)
        self._reap(block=True)  # this snapshot must be written: wait for one still being written
        self._schedule_after(engine.commands_processed)
        self.before_snapshot()
        self._child = fork_snapshot(engine, self.snapshot_dir, self.journal.offset)
        self.log.info("journal_rolled", segment=path.name, offset=self.journal.offset)

    def snapshot(self, engine: MatchingEngine) -> None:
        """Fork a child that writes the engine's state; if the previous child still runs, wait for a later turn."""
        assert self.journal is not None
        if not self._reap(block=False):
            return
        self.journal.commit()
        self._schedule_after(engine.commands_processed)
        self.before_snapshot()
        self._child = fork_snapshot(engine, self.snapshot_dir, self.journal.offset)
        self.log.info("snapshot_started", commands=engine.commands_processed, offset=self.journal.offset)

    def close(self, engine: MatchingEngine) -> None:
        """At a clean stop: close the journal and write a final snapshot (it makes the next start fast)."""
        if self.journal is None:
            return
        offset = self.journal.offset
        self.journal.close()
        self._reap(block=True)
        self.before_snapshot()
        write_snapshot(engine, self.snapshot_dir, offset)

    def _schedule_after(self, commands: int) -> None:
        every = self.cfg.journal.snapshot_every
        self.next_snapshot_at = commands + every if every > 0 else NEVER

    def _reap(self, block: bool) -> bool:
        """True if no snapshot child is running (a finished one is collected)."""
        if not self._child:
            return True
        pid, status = os.waitpid(self._child, 0 if block else os.WNOHANG)
        if pid == 0:
            return False
        self._child = 0
        if status != 0:
            self.log.error("snapshot_failed", status=status)
        return True
