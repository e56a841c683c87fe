"""``fixgw store``: the store process. Follows the journal until stopped, serves read-only JSON over HTTP.

It is a process of its own, never a thread of the gateway: the gateway's loop must keep the GIL to itself, and the
gateway never waits for the store. ``fixgw serve`` starts it (unless ``store.enabled = false``) and passes its own
pid: when the gateway exits, however it exits, the store writes what the journal holds and stops. SIGTERM or
SIGINT stop it after the batch in progress.

Database or I/O errors (PostgreSQL restarting, a full disk) do not end the process: the follower is thrown away
and rebuilt from the committed position after a pause (1 s, doubling to 30 s). Errors that retrying cannot fix
(a journal that does not match the database, a schema newer than this code) end it with status 2.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import nats.errors
import nats.js.errors
import psycopg

from gateway.config import VenueConfig
from gateway.logs import get_logger
from seqlog import FileLogReader, LogReader
from store.db import PositionConflict, StoreBusy, StoreError, StoreUnavailable, open_backend
from store.follower import Follower, LagWindow, Source

RETRY_MAX = 30.0


class StoreService:
    """The follower with its retry loop and the state the HTTP endpoint reports."""

    def __init__(
        self,
        cfg: VenueConfig,
        gateway_pid: int | None = None,
        open_reader: Callable[[], LogReader] | None = None,
        snapshot_dir: Path | None = None,
        open_sources: Callable[[], Sequence[Source]] | None = None,
    ) -> None:
        """``open_reader``: the log to follow, opened afresh after each error (default: the local journal);
        ``snapshot_dir``: engine snapshots whose offsets are positions in that log (default: the journal's);
        ``open_sources``: instead, the logs to follow (a multi-shard venue's command streams), opened afresh."""
        self.cfg = cfg
        self.gateway_pid = gateway_pid
        self.open_reader = open_reader or self._journal_reader
        self.open_sources = open_sources
        self.snapshot_dir = snapshot_dir
        self.log = get_logger("store")
        self.lag = LagWindow()
        self.follower: Follower | None = None
        self.stopping = False
        self.started_ns = time.time_ns()

    def request_stop(self, *_: Any) -> None:
        self.stopping = True

    def gateway_gone(self) -> bool:
        return self.gateway_pid is not None and os.getppid() != self.gateway_pid

    def status(self, lag_window: float = 60.0) -> dict[str, Any]:
        f = self.follower
        several = (
            {"positions": {lane.pos.shard: lane.pos.position for lane in f.lanes}} if f and len(f.lanes) > 1 else {}
        )
        return {
            "pid": os.getpid(),
            "backend": self.cfg.store.backend.value,
            "position": f.pos.position if f else None,
            "records": f.records if f else None,
            **several,
            "rows_written": f.rows_written if f else 0,
            "batches": f.batches if f else 0,
            "caught_up": f.caught_up if f else False,
            "lag": self.lag.summary(lag_window),
        }

    def _journal_reader(self) -> LogReader:
        journal = self.cfg.data_dir / "journal" / "commands.journal"
        return FileLogReader(journal, lambda problem: self.log.warning("journal_unreadable", error=problem))

    def run(self) -> int:
        delay, waiting = 1.0, False
        while not self.stopping:
            follower = None
            try:
                backend = open_backend(self.cfg, writer=True)
                try:
                    sources = self.open_sources() if self.open_sources is not None else ()
                    reader = None if sources else self.open_reader()
                except BaseException:
                    backend.close()
                    raise
                follower = Follower(self.cfg, backend, reader, self.log, self.snapshot_dir, self.lag, sources)
                follower.start()
                self.follower = follower
                delay = 1.0
                follower.follow(lambda: self.stopping, self.gateway_gone)
                follower.close()
                self.log.info("store_stopped", position=follower.pos.position, records=follower.records)
                return 0
            except StoreBusy as exc:  # e.g. the store of a gateway that just crashed, still writing what it read
                if follower is not None:
                    _close_quietly(follower)
                if not waiting:
                    self.log.warning("store_waiting", reason=str(exc))
                    waiting = True
                if self.gateway_gone():
                    return 1
            except (StoreUnavailable, psycopg.Error, sqlite3.Error, OSError, PositionConflict, nats.errors.Error,
                    nats.js.errors.Error) as exc:  # fmt: skip
                self.log.error("store_error", error=repr(exc), retry_in=delay)
                if follower is not None:
                    _close_quietly(follower)
                if self.gateway_gone():
                    return 1
                deadline = time.monotonic() + delay
                while not self.stopping and time.monotonic() < deadline:
                    time.sleep(0.1)
                delay = min(delay * 2, RETRY_MAX)
            except StoreError as exc:
                self.log.error("store_failed", error=str(exc))
                return 2
        return 0


def _close_quietly(follower: Follower) -> None:
    with contextlib.suppress(Exception):
        follower.close()


def serve_store(cfg: VenueConfig, gateway_pid: int | None = None, **source: Any) -> int:
    """Run the store process until stopped; returns its exit status. ``source``: what to follow, if not the local
    journal (:class:`StoreService`'s ``open_reader`` and ``snapshot_dir``, or ``open_sources``)."""
    from store.http import StoreHttpServer

    service = StoreService(cfg, gateway_pid, **source)
    signal.signal(signal.SIGTERM, service.request_stop)
    signal.signal(signal.SIGINT, service.request_stop)
    http = StoreHttpServer(cfg, service) if cfg.store.http_port else None
    if http is not None:
        http.start()
    try:
        return service.run()
    finally:
        if http is not None:
            http.stop()
