"""Drop copy in the multi-process venue on a three-server JetStream cluster: a drop-copy session pinned to one
gateway receives, in order, copies of the ExecutionReports and OrderCancelRejects of orders entered at another
gateway; after a SIGKILL of its gateway and a restart, it recovers by resend exactly what it missed (what was
reported while its gateway was down), nothing twice."""

from __future__ import annotations

from pathlib import Path

import pytest
import simplefix

from fixclient import FixSession, field
from gateway.auth import hash_password
from tests.cluster_process import RoleProcess, cluster_config
from tests.conftest import PASSWORDS
from tests.fixtools import cancel, new_order, wait_er, wait_msg
from tests.nats_cluster import NatsCluster
from tests.test_recovery import reconnect

pytestmark = pytest.mark.timeout(240)


def key(m: simplefix.FixMessage) -> tuple[str | None, ...]:
    """What identifies a report across sessions: type, ExecID (or ClOrdID of a cancel reject), ExecType, account."""
    return (field(m, 35), field(m, 17) or field(m, 11), field(m, 150), field(m, 1))


def copies(s: FixSession, count: int) -> list[simplefix.FixMessage]:
    got: list[simplefix.FixMessage] = []
    s.wait_for(lambda m: field(m, 35) in ("8", "9") and got.append(m) is None and len(got) == count, timeout=15)
    return got


def test_drop_copy_at_another_gateway_gets_every_report_and_recovers_after_its_gateway_restarts(
    tmp_path: Path, nats3: NatsCluster
) -> None:
    gateways = {"gw1": ["CLIENT1"], "gw2": ["CLIENT2", "DROP1", "DROP2"]}
    acc1_only = {"role": "drop_copy", "accounts": ["ACC1"], "password_hash": hash_password("droppass2", 1000)}
    config, ports = cluster_config(tmp_path, nats3.urls, gateways, {}, replicas=3, sessions={"DROP2": acc1_only})
    engine = RoleProcess(config, "engine", "e1", tmp_path).start()
    engine.wait_for("startup_commands_published")
    gw = {name: RoleProcess(config, "gateway", name, tmp_path).start() for name in gateways}
    sessions: list[FixSession] = []

    def logon(comp_id: str, port: int) -> FixSession:
        s = FixSession("127.0.0.1", port, comp_id, {**PASSWORDS, "DROP2": "droppass2"}[comp_id], heartbeat=30)
        s.logon()
        sessions.append(s)
        return s

    try:
        drop = logon("DROP1", ports["gw2.drop_copy"])
        acc1 = logon("DROP2", ports["gw2.drop_copy"])  # ACC1's reports only
        c1 = logon("CLIENT1", ports["gw1"])  # another gateway than the drop copy's
        c2 = logon("CLIENT2", ports["gw2"])
        seen = []
        new_order(c1, "rest", side="1", qty="5", price="50.00")
        seen.append(wait_er(c1, "rest", "0"))
        new_order(c2, "hit", side="2", qty="2", price="50.00")
        seen += [wait_er(c2, "hit", "0"), wait_er(c2, "hit", "F"), wait_er(c1, "rest", "F")]
        cancel(c1, "x1", "never-sent")  # an OrderCancelReject for an unknown order: ACC1's session asked
        seen.append(wait_msg(c1, "9", t11="x1"))
        assert [key(m) for m in copies(drop, len(seen))] == [key(m) for m in seen]
        mine = [m for m in seen if field(m, 1) == "ACC1" or field(m, 35) == "9"]  # the 9: CLIENT1 (ACC1) asked
        assert [key(m) for m in copies(acc1, len(mine))] == [key(m) for m in mine]
        assert not [m for m in acc1.drain(0.3) if field(m, 35) in ("8", "9")]
        # The drop copy's gateway dies; CLIENT1 goes on trading at gw1 and CLIENT2's order is cancelled by the
        # engine (cancel-on-disconnect is applied when gw2 comes back)
        gw["gw2"].kill()
        drop.close()
        c2.close()
        missed = []
        cancel(c1, "x2", "rest")  # the rest of CLIENT1's order
        missed.append(wait_er(c1, "x2", "4"))
        new_order(c1, "more", side="1", qty="1", price="49.00")
        missed.append(wait_er(c1, "more", "0"))
        cancel(c1, "x3", "never-sent-either")
        missed.append(wait_msg(c1, "9", t11="x3"))
        gw["gw2"].start()
        back, _, got = reconnect(drop, ports["gw2.drop_copy"])
        sessions.append(back)
        assert [key(m) for m in got] == [key(m) for m in missed]  # exactly what it missed, in order, once
        # And live again afterwards
        new_order(c1, "after", side="1", qty="1", price="48.00")
        after = wait_er(c1, "after", "0")
        assert [key(m) for m in copies(back, 1)] == [key(after)]
        assert not [m for m in back.drain(0.5) if field(m, 35) in ("8", "9")]
    finally:
        for s in sessions:
            s.close()
        for p in (*gw.values(), engine):
            if p.alive():
                p.stop()
