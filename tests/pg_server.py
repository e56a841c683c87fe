"""A real PostgreSQL server for the tests: Debian's ``postgresql`` package, started in a temporary directory on a free
loopback port, removed afterwards (see /work/shared/notes/real-services.md).

``initdb`` and ``pg_ctl`` refuse to run as root, so they run as the package's ``postgres`` user; the test process
itself connects over TCP. ``fsync`` and friends are off: the tests need a real server, not a durable one. If the
server cannot start, the fixture fails loudly (PostgreSQL tests never skip: ``.ci/run`` installs the package).
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg

from tests.gateway_process import free_port


def pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/pg_ctl): "
            "apt-get install postgresql (.ci/run does it)"
        )
    return Path(found[-1]).parent


class PgServer:
    def __init__(self) -> None:
        self.bin = pg_bin()
        self.dir = Path(tempfile.mkdtemp(prefix="fixgw-pg-"))
        self.port = free_port()
        self._dbs = itertools.count(1)
        self._as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> None:
        done = subprocess.run([*self._as_postgres, *argv], capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            log = (self.dir / "log").read_text() if (self.dir / "log").exists() else ""
            raise RuntimeError(f"{' '.join(argv[:1])} failed: {done.stdout}{done.stderr}{log[-2000:]}")

    def start(self, durable: bool = False) -> None:
        """initdb and start; ``durable`` keeps PostgreSQL's defaults (fsync on), for benchmarks."""
        if self._as_postgres:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        data = str(self.dir / "data")
        self._run(str(self.bin / "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8",
                  "--locale=C.UTF-8")  # fmt: skip
        options = f"-h 127.0.0.1 -p {self.port} -k {self.dir}"
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(str(self.bin / "pg_ctl"), "-D", data, "-l", str(self.dir / "log"), "-w", "-t", "30", "-o", options,
                  "start")  # fmt: skip

    def new_database(self) -> str:
        """A fresh, empty database; returns its DSN."""
        name = f"t{next(self._dbs)}"
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
