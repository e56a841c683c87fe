"""What the store needs from a database, and how to open the configured one.

A :class:`Backend` holds one connection. The follower's (``writer=True``) takes the single-writer lock, runs the
migrations and writes each batch of rows in one transaction together with the new journal position; readers (the
query tools, the HTTP endpoint) only run SELECTs. SQL is written once with ``?`` placeholders; the PostgreSQL
backend rewrites them.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.config import StoreBackend, VenueConfig
from store.schema import BOOTSTRAP, LATEST, MIGRATIONS, Table


class StoreError(Exception):
    """A problem the store cannot fix by retrying (a journal that does not match the database, a newer schema)."""


class StoreUnavailable(StoreError):
    """The database cannot be reached (yet): the follower retries, a tool reports it."""


class StoreBusy(Exception):
    """Another store process holds the database's writer lock."""


class PositionConflict(Exception):
    """The database's position moved under us (another follower wrote to it): rebuild from the new position."""


@dataclass(frozen=True)
class Position:
    """Where the follower is in the journal, as committed with the rows."""

    position: int = 0  # the next record to write rows for
    records: int = 0  # commands processed up to ``position``
    last_record: int | None = None  # position and CRC-32 of the record just before ``position``
    last_crc: int | None = None
    shard: int = 0  # the log it is a position in: its ``store_position`` row (README "Scale-out")


@dataclass
class Batch:
    """Rows of consecutive journal records, written in one transaction: ``inserts`` per table, and ``upserts`` per
    table keyed by the table's key (the last row for a key wins)."""

    inserts: dict[Table, list[tuple[Any, ...]]] = field(default_factory=dict)
    upserts: dict[Table, dict[Any, tuple[Any, ...]]] = field(default_factory=dict)

    def rows(self) -> int:
        return sum(map(len, self.inserts.values())) + sum(map(len, self.upserts.values()))


class Backend(ABC):
    dialect: str

    # ------------------------------------------------------------------ both

    @abstractmethod
    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a SELECT (``?`` placeholders); decimals come back as text or ``Decimal``."""

    @abstractmethod
    def close(self) -> None: ...

    def schema_version(self) -> int:
        """The newest migration applied (0 for an empty database)."""
        if not self._has_table("schema_migrations"):
            return 0
        rows = self.fetch("SELECT MAX(version) FROM schema_migrations")
        return int(rows[0][0] or 0)

    def check_readable(self) -> None:
        """Raise a clear error unless the database holds the schema this code reads."""
        version = self.schema_version()
        if version < LATEST:
            raise StoreError(
                f"the store's database is at schema version {version}, this fixgw reads version {LATEST}: "
                "start the store (fixgw store, or fixgw serve) to create or upgrade it"
            )

    @abstractmethod
    def _has_table(self, name: str) -> bool: ...

    # ------------------------------------------------------------------ the follower's

    @abstractmethod
    def lock(self, timeout: float) -> None:
        """Become the database's only writer (held until close); StoreBusy if another holds it after ``timeout``."""

    @abstractmethod
    def _execute_script(self, statements: list[str], version: int, description: str) -> None:
        """Run one migration's statements and record it, in one transaction."""

    def migrate(self) -> tuple[int, int]:
        """Apply the migrations this database lacks; returns (version before, version after)."""
        self._execute_script([BOOTSTRAP.format(bigint=self._bigint)], 0, "")
        before = self.schema_version()
        if before > LATEST:
            raise StoreError(f"the store's database is at schema version {before}, newer than this fixgw ({LATEST})")
        for m in MIGRATIONS:
            if m.version > before:
                self._execute_script(m.statements(self.dialect), m.version, m.description)
        return before, LATEST

    @property
    @abstractmethod
    def _bigint(self) -> str: ...

    def position(self, shard: int = 0) -> Position:
        """The committed position in log ``shard`` (a new shard's row is added at 0: the follower's, after lock)."""
        sql = "SELECT position, records, last_record, last_crc FROM store_position WHERE shard = ?"
        rows = self.fetch(sql, (shard,))
        if not rows:
            insert = f"INSERT INTO store_position (shard, position, records, updated_ns) VALUES ({int(shard)}, 0, 0, 0)"
            self._execute_script([insert], 0, "")
            rows = self.fetch(sql, (shard,))
        row = rows[0]
        return Position(int(row[0]), int(row[1]), row[2], row[3], shard)

    @abstractmethod
    def write(self, batch: Batch, before: Position, after: Position) -> None:
        """In one transaction: move the position from ``before`` to ``after`` (PositionConflict if the database is
        not at ``before``) and write the batch's rows."""


POSITION_UPDATE = (
    "UPDATE store_position SET position = ?, records = ?, last_record = ?, last_crc = ?, updated_ns = ? "
    "WHERE shard = ? AND position = ?"
)  # the guard: a follower only moves the position from where it believes it is


def position_params(before: Position, after: Position) -> tuple[Any, ...]:
    assert before.shard == after.shard
    return (after.position, after.records, after.last_record, after.last_crc, time.time_ns(), before.shard,
            before.position)  # fmt: skip


def open_backend(cfg: VenueConfig, writer: bool = False) -> Backend:
    """The configured database; a reader's database must exist already."""
    if cfg.store.backend is StoreBackend.POSTGRESQL:
        from store.postgres import PostgresBackend

        return PostgresBackend(cfg.store.dsn, writer)
    from store.sqlite import SqliteBackend

    return SqliteBackend(cfg.store_path, writer)


def wait_for_lock(try_lock: Callable[[], bool], timeout: float, what: str) -> None:
    """Call ``try_lock()`` until it returns True; StoreError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not try_lock():
        if time.monotonic() >= deadline:
            raise StoreBusy(f"another store process is writing to {what}")
        time.sleep(0.1)
