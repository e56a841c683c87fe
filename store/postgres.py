"""The PostgreSQL backend (psycopg 3): bulk writes with COPY.

Insert-only tables are loaded with ``COPY ... FROM STDIN``; upserted tables (orders) are copied into a temporary
staging table and merged with one ``INSERT ... ON CONFLICT DO UPDATE``. The follower's session runs with
``synchronous_commit = off``: a commit returns before its WAL is flushed, and a server crash may lose the last
transactions, but each took its journal position with it, so the follower writes them again (the journal, not the
store, is the durable record). One writer at a time: a session-level advisory lock.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import psycopg

from store.db import (
    POSITION_UPDATE,
    Backend,
    Batch,
    Position,
    PositionConflict,
    StoreUnavailable,
    position_params,
    wait_for_lock,
)
from store.schema import Table

WRITER_LOCK = 0x66697867_73746F72  # pg_advisory_lock key: "fixgstor"


class PostgresBackend(Backend):
    dialect = "postgresql"
    _bigint = "BIGINT"

    def __init__(self, dsn: str, writer: bool = False) -> None:
        self.dsn = dsn
        try:
            self.conn = psycopg.connect(dsn, autocommit=True, connect_timeout=10, application_name="fixgw-store")
        except psycopg.Error as exc:
            raise StoreUnavailable(f"cannot connect to PostgreSQL: {_one_line(exc)}") from None
        if writer:
            self.conn.execute("SET synchronous_commit = off")
        else:
            self.conn.execute("SET default_transaction_read_only = on")
        self._staged: set[Table] = set()
        self._sql: dict[Table, tuple[str, str, str]] = {}

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql.replace("?", "%s"), tuple(params)).fetchall()

    def _has_table(self, name: str) -> bool:
        return bool(self.fetch("SELECT to_regclass(?)", (name,))[0][0])

    def close(self) -> None:
        self.conn.close()  # also releases the advisory lock

    def lock(self, timeout: float) -> None:
        def try_lock() -> bool:
            return bool(self.fetch("SELECT pg_try_advisory_lock(?)", (WRITER_LOCK,))[0][0])

        wait_for_lock(try_lock, timeout, "this PostgreSQL database")

    def _execute_script(self, statements: list[str], version: int, description: str) -> None:
        with self.conn.transaction():
            for statement in statements:
                self.conn.execute(statement)
            if version:
                self.conn.execute(
                    "INSERT INTO schema_migrations (version, description, applied_ns) VALUES (%s, %s, %s)",
                    (version, description, time.time_ns()),
                )

    def _statements(self, table: Table) -> tuple[str, str, str]:
        """(COPY into the table, COPY into its staging table, merge staging into the table) for ``table``."""
        sql = self._sql.get(table)
        if sql is None:
            cols = ", ".join(table.columns)
            stage = f"stage_{table.name}"
            sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in table.updated)
            sql = self._sql[table] = (
                f"COPY {table.name} ({cols}) FROM STDIN",
                f"COPY {stage} ({cols}) FROM STDIN",
                f"INSERT INTO {table.name} ({cols}) SELECT {cols} FROM {stage} "
                f"ON CONFLICT ({table.conflict}) DO UPDATE SET {sets}",
            )
        return sql

    def write(self, batch: Batch, before: Position, after: Position) -> None:
        conn = self.conn
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(POSITION_UPDATE.replace("?", "%s"), position_params(before, after))
            if cur.rowcount != 1:
                raise PositionConflict(f"the database is no longer at journal position {before.position}")
            for table, rows in batch.inserts.items():
                if rows:
                    with cur.copy(self._statements(table)[0]) as copy:
                        for row in rows:
                            copy.write_row(row)
            for table, keyed in batch.upserts.items():
                if not keyed:
                    continue
                if table not in self._staged:
                    cur.execute(
                        f"CREATE TEMP TABLE IF NOT EXISTS stage_{table.name} (LIKE {table.name}) ON COMMIT DELETE ROWS"
                    )
                    self._staged.add(table)
                _, stage_copy, merge = self._statements(table)
                with cur.copy(stage_copy) as copy:
                    for row in keyed.values():
                        copy.write_row(row)
                cur.execute(merge)


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
