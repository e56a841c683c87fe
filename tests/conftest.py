"""Fixtures: the real gateway in a subprocess on free loopback ports, and logged-on FIX clients."""

from __future__ import annotations

import itertools
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fixclient import LOGON_REFUSED, FixSession, SessionError
from tests import cluster_process
from tests.gateway_process import GatewayProcess, metric_value, start_on_free_ports
from tests.nats_cluster import NatsCluster
from tests.pg_server import PgServer

PASSWORDS = {
    **{f"CLIENT{i}": f"pass{i}" for i in range(1, 10)}, **{f"MD{i}": f"mdpass{i}" for i in range(1, 10)},
    "DROP1": "droppass1",
}  # fmt: skip
_ids = itertools.count(1)

# Tests end live views the way a user does, with Ctrl-C (SIGINT). A runner started in the background by a shell
# without job control (`pytest ... &` in a script, nohup) inherits SIGINT ignored and so would every child: the
# view never ends and the test times out. Importing QuickFIX resets SIGINT, which hid this whenever a QuickFIX test
# ran earlier in the session. The children get the default disposition, as under an interactive shell.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def unique(prefix: str = "c") -> str:
    """A ClOrdID / MDReqID no other test uses."""
    return f"{prefix}{next(_ids)}"


_started: list[GatewayProcess] = []


def start_gateway(directory: Path, **overrides: object) -> GatewayProcess:
    """Start a gateway subprocess; every one started is killed at the end of the session if still running."""
    return start_gateway_with(directory, overrides)


def start_gateway_with(
    directory: Path,
    overrides: dict[str, Any] | None = None,
    sessions: dict[str, dict[str, Any]] | None = None,
    env: dict[str, str] | None = None,
) -> GatewayProcess:
    """:func:`start_gateway` with session tables (as in :func:`make_config`) and extra environment variables."""
    return start_on_free_ports(directory, overrides, sessions, env, created=_started.append)


def verify_passwords(gw: GatewayProcess, port: int, passwords: dict[str, str], timeout: float = 30.0) -> None:
    """Have the venue verify these passwords before a test's first Logon: it refuses a password it has not verified
    since it started, and verifies it meanwhile off its loop (RoE 1.2); raw clients do not log on again. One refused
    Logon per CompID, which changes nothing at the venue, then wait for the verdicts (in batches below the venue's
    ``logon.max_pending``)."""
    todo = list(passwords.items())
    deadline = time.monotonic() + timeout
    while todo:
        batch, todo = todo[:32], todo[32:]
        before = metric_value(gw.metrics(), "fixgw_logon_verifications_total", result="ok")
        for comp_id, password in batch:
            s = FixSession("127.0.0.1", port, comp_id, password, reset_seq=True)
            try:
                s.logon(timeout=5, retry=False)
            except SessionError as exc:
                assert str(exc) == LOGON_REFUSED, exc
            else:
                s.logout()  # verified already
                before -= 1
            finally:
                s.close()
        while metric_value(gw.metrics(), "fixgw_logon_verifications_total", result="ok") < before + len(batch):
            assert time.monotonic() < deadline, "the venue did not verify the passwords in time"
            time.sleep(0.02)


@pytest.fixture(autouse=True)
def _no_role_left_running() -> Iterator[None]:
    """A cluster test that failed half way must not leave its role processes running: with their NATS cluster gone
    they went on reconnecting, for good (PPID 1), beside every later test and benchmark."""
    yield
    while cluster_process.STARTED:
        role = cluster_process.STARTED.pop()
        if role.alive():
            role.kill()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A test that failed half way must not leave a gateway running (it would skew every later benchmark)."""
    for gw in _started:
        if gw.proc is not None and gw.proc.poll() is None:
            gw.kill()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A real PostgreSQL server for the whole session (started on first use, removed at the end). It must start:
    the PostgreSQL tests fail rather than skip when it cannot."""
    server = PgServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_backend(request: pytest.FixtureRequest) -> tuple[str, str]:
    """Each store test runs on both backends: (backend, dsn), the PostgreSQL one a fresh database of its own."""
    if request.param == "sqlite":
        return "sqlite", ""
    server: PgServer = request.getfixturevalue("pg_server")
    return "postgresql", server.new_database()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """One gateway shared by the tests of a module (tests use their own ClOrdIDs)."""
    gw = start_gateway(tmp_path_factory.mktemp("gw"))
    yield gw
    assert gw.stop() == 0, gw.log_text()[-3000:]


@pytest.fixture
def fresh_gateway(tmp_path: Path) -> Iterator[GatewayProcess]:
    """A gateway of the test's own, for tests that restart or kill it."""
    gw = start_gateway(tmp_path / "gw")
    yield gw
    if gw.proc is not None and gw.proc.poll() is None:
        gw.stop()


ClientFactory = Callable[..., FixSession]


@pytest.fixture
def connect(gateway: GatewayProcess) -> Iterator[ClientFactory]:
    """``connect("CLIENT1")`` -> a logged-on simplefix session (sequence numbers reset at logon)."""
    yield from _connector(gateway)


def _connector(gw: GatewayProcess) -> Iterator[ClientFactory]:
    sessions: list[FixSession] = []

    def factory(comp_id: str, password: str | None = None, reset: bool = True, logon: bool = True) -> FixSession:
        port = gw.md_port if comp_id.startswith("MD") else gw.dc_port if comp_id.startswith("DROP") else gw.oe_port
        session = FixSession("127.0.0.1", port, comp_id, password or PASSWORDS[comp_id], reset_seq=reset)
        sessions.append(session)
        if logon:
            session.logon()
        return session

    yield factory
    for s in sessions:
        if s.sock is not None:
            s.logout()


@pytest.fixture
def nats3(tmp_path: Path) -> Iterator[NatsCluster]:
    """A three-server NATS cluster with JetStream on free loopback ports (the cluster tests' replication)."""
    cluster = NatsCluster(tmp_path / "nats", 3).start()
    yield cluster
    cluster.stop()
