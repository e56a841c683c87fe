"""The order-entry gateway role on a three-server JetStream cluster (replicas 3), with an active engine and a standby
as real processes: FIX clients trade through the gateway exactly as through the one-process venue; the active engine
is killed with SIGKILL under flow and every order a client sent is answered, every report a client received is the
one a single-process replay of the command stream produces (nothing lost, nothing twice, no ExecID or OrderID
reused), and a restarted gateway sends a reconnecting client the reports it missed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import simplefix

from engine import Execution, MatchingEngine
from engine.codec import decode
from fixclient import FixSession
from roles.config import load
from seqlog.jetstream import JetStreamLogReader
from tests.cluster_process import RoleProcess, cluster_config
from tests.fixtools import f, new_order, wait_er
from tests.nats_cluster import NatsCluster
from tests.test_cluster_engine import read_stream

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def nats3(tmp_path: Path) -> Iterator[NatsCluster]:
    cluster = NatsCluster(tmp_path / "nats", 3).start()
    yield cluster
    cluster.stop()


class Venue:
    """Two engines (the first active), one gateway serving CLIENT1, CLIENT2 and DROP1."""

    def __init__(self, tmp_path: Path, nats: NatsCluster) -> None:
        self.config, self.ports = cluster_config(
            tmp_path, nats.urls, {"gw1": ["CLIENT1", "CLIENT2", "DROP1"]}, {}, replicas=3
        )
        self.urls = nats.urls
        self.e1 = RoleProcess(self.config, "engine", "e1", tmp_path).start()
        self.e1.wait_for("engine_active")
        self.e1.wait_for("startup_commands_published")  # the money rules and opening balances
        self.e2 = RoleProcess(self.config, "engine", "e2", tmp_path).start()
        self.gw = RoleProcess(self.config, "gateway", "gw1", tmp_path).start()
        self.sessions: list[FixSession] = []

    def client(self, comp_id: str, password: str) -> FixSession:
        s = FixSession("127.0.0.1", self.ports["gw1"], comp_id, password, heartbeat=30)
        s.logon()
        self.sessions.append(s)
        return s

    def stop(self) -> None:
        for s in self.sessions:
            s.close()
        for p in (self.gw, self.e1, self.e2):
            if p.alive():
                p.stop()

    def replay(self, commands: int) -> dict[int, Execution]:
        """ExecID -> execution, from a single-process replay of the first ``commands`` commands of the stream."""
        cfg, cluster = load(self.config)
        engine = MatchingEngine(cfg.instruments, cfg.self_trade_prevention)
        out: dict[int, Execution] = {}
        for _, payload in read_stream(self.urls, cluster.commands, commands):
            for ev in engine.process(decode(payload)):
                if isinstance(ev, Execution):
                    out[ev.seq] = ev
        return out


@pytest.fixture
def venue(tmp_path: Path, nats3: NatsCluster) -> Iterator[Venue]:
    v = Venue(tmp_path, nats3)
    yield v
    v.stop()


def test_clients_trade_through_the_gateway_role(venue: Venue) -> None:
    c1 = venue.client("CLIENT1", "pass1")
    c2 = venue.client("CLIENT2", "pass2")
    new_order(c1, "b1", side="1", qty="10", price="100.00")
    wait_er(c1, "b1", "0")
    new_order(c2, "s1", side="2", qty="4", price="100.00")
    new_ack = wait_er(c2, "s1", "0")
    fill = wait_er(c2, "s1", "F")
    assert (f(fill, 32), f(fill, 31), f(fill, 151), f(fill, 851)) == ("4", "100.00", "0", "2")  # taker
    maker = wait_er(c1, "b1", "F")  # CLIENT1's fill, caused by CLIENT2's order
    assert (f(maker, 32), f(maker, 151), f(maker, 39), f(maker, 851)) == ("4", "6", "1", "1")
    assert f(maker, 527) == f(fill, 527)  # one trade
    assert f(new_ack, 37) != f(maker, 37)
    # A reject is issued by the engine and echoes what the client sent
    new_order(c1, "b2", side="1", qty="1", price="100.005")
    reject = wait_er(c1, "b2", "8")
    assert (f(reject, 58), f(reject, 44), f(reject, 37)) == ("price is not a multiple of the tick size", "100.005",
                                                            "NONE")  # fmt: skip


def test_killing_the_active_engine_under_flow_loses_no_acknowledged_order(venue: Venue) -> None:
    c1 = venue.client("CLIENT1", "pass1")
    c2 = venue.client("CLIENT2", "pass2")
    received: dict[str, list[simplefix.FixMessage]] = {"CLIENT1": [], "CLIENT2": []}
    answered: set[str] = set()  # ClOrdIDs with a first report
    sent: list[str] = []

    def collect(s: FixSession, timeout: float) -> None:
        msg = s.receive(timeout)
        if msg is not None and f(msg, 35) == "8":
            received[s.sender].append(msg)
            answered.add(f(msg, 11) or "")

    n, window = 300, 20
    for i in range(n):
        s, side, clordid = (c1, "1", f"b{i}") if i % 2 == 0 else (c2, "2", f"s{i}")
        new_order(s, clordid, side=side, qty=str(1 + i % 5), price="100.00")
        sent.append(clordid)
        if i == n // 2:
            venue.e1.kill()  # SIGKILL in the middle of the flow
        while len(sent) - len(answered & set(sent)) >= window:  # at most `window` orders unanswered
            collect(c1, 0.05)
            collect(c2, 0.05)
    venue.e2.wait_for("engine_active", timeout=30)
    for s in (c1, c2):  # everything else in flight, until both sessions are quiet
        while True:
            before = len(received[s.sender])
            collect(s, 2.0)
            if len(received[s.sender]) == before:
                break
    assert set(sent) <= answered, f"orders never answered: {sorted(set(sent) - answered)[:10]}"
    reports = received["CLIENT1"] + received["CLIENT2"]
    exec_ids = [int(f(m, 17) or 0) for m in reports]
    assert len(exec_ids) == len(set(exec_ids)), "an ExecID was reused"
    # Every report a client received is the one a single-process replay of the command stream produces, and every
    # report the replay produces for these clients was received.
    replay = venue.replay(_commands_in_stream(venue))
    expected = {seq: ev for seq, ev in replay.items() if ev.order.owner in ("CLIENT1", "CLIENT2")}
    assert sorted(exec_ids) == sorted(expected)
    order_ids: dict[str, str] = {}
    for m in reports:
        ev = expected[int(f(m, 17) or 0)]
        assert (f(m, 11), f(m, 150), f(m, 37)) == (ev.clordid, ev.exec_type.value, str(ev.order.order_id))
        if f(m, 150) == "0":
            order_ids[f(m, 11) or ""] = f(m, 37) or ""
    assert len(set(order_ids.values())) == len(order_ids) == n, "an OrderID was reused or an order not accepted"
    assert "engine_active" in venue.e2.log_text()


def _commands_in_stream(venue: Venue) -> int:
    """How many commands the command stream holds now (it is quiet: no wait finds more)."""
    _, cluster = load(venue.config)
    reader = JetStreamLogReader(venue.urls, cluster.commands)
    count, pos = 0, 0
    try:
        while True:
            records = reader.read(pos, 10_000)
            if not records:
                if not reader.wait(pos, 1.0):
                    return count
                continue
            count += len(records)
            pos = records[-1][1]
    finally:
        reader.close()
