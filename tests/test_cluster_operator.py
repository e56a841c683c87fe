"""The operator channel of the multi-process venue on a three-server JetStream cluster: ``fixgw admin`` through
either gateway, carried out by the active engine as journaled commands of the command stream (so the standby
applies them too and answers the same after a SIGKILL of the active engine); the same token check as one process;
reports a kill causes reach the owner at another gateway; a halt reaches every gateway's clients."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine import MatchingEngine
from engine.codec import decode
from fixclient import FixSession
from gateway.operator import OperatorError, call
from roles.config import load
from tests.cluster_process import RoleProcess, cluster_config
from tests.fixtools import f, new_order, wait_er, wait_msg
from tests.gateway_process import ROOT
from tests.nats_cluster import NatsCluster
from tests.test_cluster_engine import read_stream
from tests.test_cluster_gateway import commands_in_stream
from tools.admin import DEMO_TOKEN

pytestmark = pytest.mark.timeout(240)


class Venue:
    """Engines e1 (active) and e2 (standby); gateway gw1 serves CLIENT1, gw2 serves CLIENT2; both serve operators."""

    def __init__(self, tmp_path: Path, nats: NatsCluster) -> None:
        gateways = {"gw1": ["CLIENT1"], "gw2": ["CLIENT2"]}
        self.config, self.ports = cluster_config(tmp_path, nats.urls, gateways, {}, replicas=3)
        self.urls = nats.urls
        self.e1 = RoleProcess(self.config, "engine", "e1", tmp_path).start()
        self.e1.wait_for("startup_commands_published")
        self.e2 = RoleProcess(self.config, "engine", "e2", tmp_path).start()
        self.gw = {name: RoleProcess(self.config, "gateway", name, tmp_path).start() for name in gateways}
        self.sessions: list[FixSession] = []

    def admin(self, gateway: str, action: str, token: str = DEMO_TOKEN, **params: Any) -> dict[str, Any]:
        return call(f"http://127.0.0.1:{self.ports[gateway + '.operator']}", token, action, params)

    def client(self, comp_id: str, password: str, gateway: str) -> FixSession:
        s = FixSession("127.0.0.1", self.ports[gateway], comp_id, password, heartbeat=30)
        s.logon()
        self.sessions.append(s)
        return s

    def stop(self) -> None:
        for s in self.sessions:
            s.close()
        for p in (*self.gw.values(), self.e1, self.e2):
            if p.alive():
                p.stop()


@pytest.fixture
def venue(tmp_path: Path, nats3: NatsCluster) -> Iterator[Venue]:
    v = Venue(tmp_path, nats3)
    yield v
    v.stop()


def usd(answer: dict[str, Any], account: str) -> Decimal:
    rows = {r["account"]: r for r in answer["accounts"]}
    return Decimal(rows[account]["balances"]["USD"]["available"])


def test_fixgw_admin_acts_on_the_cluster_through_any_gateway(venue: Venue) -> None:
    # The token is checked as in one process
    with pytest.raises(OperatorError, match="missing or invalid operator token"):
        venue.admin("gw1", "accounts", token="wrong")
    # `fixgw admin --config` finds a gateway's channel in the [cluster] tables
    out = subprocess.run([sys.executable, "-m", "gateway", "admin", "--config", str(venue.config), "--gateway", "gw2",
                          "deposit", "ACC1", "USD", "1000", "--funding-id", "dep-1"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert (out.returncode, out.stdout.strip()) == (0, "applied: deposit 1000.000000 USD to ACC1 (funding id dep-1)")
    assert usd(venue.admin("gw1", "accounts"), "ACC1") == Decimal("10001000")  # the opening balance + 1000
    # A repeated funding id is refused, whichever gateway relays it
    again = venue.admin("gw1", "deposit", account="ACC1", asset="USD", amount="1000", funding_id="dep-1")
    assert (again["ok"], again["reason"]) == (False, "duplicate_funding_id")
    too_much = venue.admin("gw2", "withdraw", account="ACC2", asset="USD", amount="99999999999", funding_id="wd-1")
    assert too_much["reason"] == "insufficient_funds" and "ACC2 has" in too_much["error"]
    assert venue.admin("gw1", "deposit", account="NOPE", asset="USD", amount="1", funding_id="x")["error"] == (
        "unknown account 'NOPE'"
    )
    # Limits apply to the next order, entered at another gateway
    limits = venue.admin("gw2", "limits", account="ACC1", symbol="AAPL", changes={"max_order_qty": "5"})
    assert limits["ok"] and limits["limits"]["max_order_qty"] == "5"
    c1 = venue.client("CLIENT1", "pass1", "gw1")
    c2 = venue.client("CLIENT2", "pass2", "gw2")
    new_order(c1, "big", side="1", qty="10", price="99.00")
    assert f(wait_er(c1, "big", "8"), 58) == "order quantity above the account's limit"
    new_order(c1, "rest", side="1", qty="5", price="99.00")
    wait_er(c1, "rest", "0")
    # The kill switch, relayed by gw2, cancels CLIENT1's order at gw1 and refuses its next one until revived
    kill = venue.admin("gw2", "kill", account="ACC1")
    assert (kill["ok"], kill["cancelled"]) == (True, 1)
    assert f(wait_er(c1, "rest", "4"), 58) == "cancelled by the kill switch"
    new_order(c1, "killed", side="1", qty="1", price="99.00")
    assert f(wait_er(c1, "killed", "8"), 58) == "account or session disabled by the kill switch"
    assert venue.admin("gw1", "revive", account="ACC1")["ok"]
    new_order(c1, "alive", side="1", qty="1", price="99.00")
    wait_er(c1, "alive", "0")
    # A halt reaches the clients of every gateway, and the engine refuses orders in the halted instrument
    halt = venue.admin("gw1", "halt", symbol="AAPL")
    assert halt["ok"] and halt["results"] == [{"symbol": "AAPL", "applied": True, "phase": "halted"}]
    for s in (c1, c2):
        status = wait_msg(s, "f", t55="AAPL")
        assert f(status, 326) == "2"  # trading halt
    new_order(c2, "halted", side="2", qty="1", price="101.00")
    assert f(wait_er(c2, "halted", "8"), 58) == "instrument halted: only cancels are accepted"
    c2.send("e", [(324, "q1"), (55, "AAPL"), (263, "0")])  # the gateway knows the phase too
    assert f(wait_msg(c2, "f", t324="q1"), 326) == "2"
    phases = venue.admin("gw2", "phases")
    assert {r["symbol"]: r["phase"] for r in phases["instruments"]}["AAPL"] == "halted"
    assert venue.admin("gw2", "resume", symbol="AAPL")["results"][0]["phase"] == "continuous"
    # The gateway's own logon guard is answered by the gateway
    assert venue.admin("gw1", "logons") == {"ok": True, "failures": []}
    # Operator commands are journaled commands: a replay of the command stream holds the same ledger
    now = venue.admin("gw1", "accounts")
    cfg, cluster = load(venue.config)
    replay = MatchingEngine(cfg.instruments, cfg.self_trade_prevention)
    for _, payload in read_stream(venue.urls, cluster.commands, commands_in_stream(venue.urls, cluster.commands)):
        replay.process(decode(payload))
    assert replay.ledger is not None
    for row in now["accounts"]:
        acct = replay.ledger.accounts[row["account"]]
        assert {a: b["available"] for a, b in row["balances"].items()} == {
            a: cfg.assets.text(a, acct.available.get(a, 0)) for a in row["balances"]
        }
    # Kill the active engine: the standby, which applied the same commands, takes the lease and answers
    venue.e1.kill()
    venue.e2.wait_for("engine_active", timeout=20)
    assert wait_answer(venue, "gw1", "accounts") == now
    assert venue.admin("gw2", "deposit", account="ACC1", asset="USD", amount="0.5", funding_id="dep-2")["ok"]
    assert usd(venue.admin("gw1", "accounts"), "ACC1") == usd(now, "ACC1") + Decimal("0.5")
    assert '"event":"operator_kill"' in (venue.e1.log_path.parent / "data" / "e1" / "audit.jsonl").read_text()


def wait_answer(venue: Venue, gateway: str, action: str) -> dict[str, Any]:
    """The answer once an engine serves requests again (503 "no active engine" until then)."""
    import time

    deadline = time.monotonic() + 20
    while True:
        try:
            return venue.admin(gateway, action)
        except OperatorError as exc:
            assert "no active engine" in str(exc) or "did not answer" in str(exc), exc
            assert time.monotonic() < deadline, f"no engine answered within 20s: {exc}"
            time.sleep(0.2)


def test_with_two_shards_the_operator_acts_on_the_shards_a_request_concerns(tmp_path: Path, nats3: NatsCluster) -> None:
    """Shard ``eq`` (AAPL, MSFT) and ``crypto`` (BTC-USD), one active engine each, CLIENT1 (account ACC1) at gw1."""
    shards = {"eq": ["AAPL", "MSFT"], "crypto": ["BTC-USD"]}
    config, ports = cluster_config(tmp_path, nats3.urls, {"gw1": ["CLIENT1"]}, {}, replicas=3, shards=shards)
    engines = {s: RoleProcess(config, "engine", f"{s}1", tmp_path, s) for s in shards}
    procs = [*engines.values()]
    session: FixSession | None = None
    try:
        for e in engines.values():
            e.start().wait_for("startup_commands_published")  # this shard's share of the opening balances
        procs.append(RoleProcess(config, "gateway", "gw1", tmp_path).start())

        def admin(action: str, **params: Any) -> dict[str, Any]:
            return call(f"http://127.0.0.1:{ports['gw1.operator']}", DEMO_TOKEN, action, params)

        def usd(shard: str | None = None) -> Decimal:
            row = next(r for r in admin("accounts")["accounts"] if r["account"] == "ACC1")
            return Decimal((row["by_shard"][shard] if shard else row["balances"])["USD"]["available"])

        # Reads ask every shard: USD is split over both, the sum is the configured opening balance
        assert (usd(), usd("eq"), usd("crypto")) == (10_000_000, 5_000_000, 5_000_000)
        # A deposit goes to the first shard using the asset, or to the shard named (`fixgw admin --shard`)
        assert admin("deposit", account="ACC1", asset="USD", amount="1000", funding_id="d1")["shard"] == "eq"
        out = subprocess.run([sys.executable, "-m", "gateway", "admin", "--config", str(config), "deposit", "ACC1",
                              "USD", "500", "--funding-id", "d2", "--shard", "crypto"], cwd=ROOT, capture_output=True,
                             text=True, timeout=60)  # fmt: skip
        assert (out.returncode, out.stdout.strip()) == (
            0, "applied: deposit 500.000000 USD to ACC1 on shard crypto (funding id d2)"
        )  # fmt: skip
        assert (usd(), usd("eq"), usd("crypto")) == (10_001_500, 5_001_000, 5_000_500)
        # A withdrawal is checked against its shard's share, and says so
        big = admin("withdraw", account="ACC1", asset="USD", amount="5001001", funding_id="w1")
        assert big["reason"] == "insufficient_funds"
        assert big["error"].endswith("ACC1 has 5001000.000000 USD available on shard eq (balances are per shard)")

        # A kill reaches every shard: CLIENT1's resting orders on both are cancelled
        session = FixSession("127.0.0.1", ports["gw1"], "CLIENT1", "pass1", heartbeat=30)
        session.logon()
        new_order(session, "a1", side="1", qty="10", price="99.00")
        wait_er(session, "a1", "0")
        new_order(session, "b1", side="1", qty="0.0100", price="40000.00", symbol="BTC-USD")
        wait_er(session, "b1", "0")
        kill = admin("kill", account="ACC1")
        assert (kill["ok"], kill["cancelled"], set(kill["shards"])) == (True, 2, {"eq", "crypto"})
        cancels = [wait_msg(session, "8", t150="4") for _ in range(2)]  # the shards' reports, in either order
        assert sorted((f(m, 11), f(m, 58)) for m in cancels) == [("a1", "cancelled by the kill switch"),
                                                                 ("b1", "cancelled by the kill switch")]  # fmt: skip
        account = admin("account", account="ACC1")  # one answer: both shards' positions and limits
        assert (account["killed"], sorted(account["limits"])) == (True, ["AAPL", "BTC-USD", "MSFT"])
        assert {p["symbol"]: p["open_orders"] for p in account["positions"]} == {"AAPL": 0, "BTC-USD": 0}

        # A halt of one symbol halts only its instrument, on its shard
        halt = admin("halt", symbol="BTC-USD")
        assert (halt["shard"], halt["results"]) == (
            "crypto",
            [{"symbol": "BTC-USD", "applied": True, "phase": "halted"}],
        )
        assert f(wait_msg(session, "f", t55="BTC-USD"), 326) == "2"
        phases = {r["symbol"]: r["phase"] for r in admin("phases")["instruments"]}
        assert phases == {"AAPL": "continuous", "MSFT": "continuous", "BTC-USD": "halted"}

        # One shard without an engine: a change is applied where it can be and says where not; a read is refused
        engines["crypto"].stop()
        revive = admin("revive", account="ACC1")
        assert (revive["ok"], revive["applied_on"], revive["shards"]["eq"]["ok"]) == (False, ["eq"], True)
        assert revive["error"].startswith("applied on shard(s) eq only; shard crypto: no active engine")
        with pytest.raises(OperatorError, match=r"^shard crypto: no active engine"):
            admin("accounts")
        new_order(session, "a2", side="1", qty="1", price="99.00")
        wait_er(session, "a2", "0")  # eq applied the revival
        engines["crypto"].start().wait_for("engine_active")
        assert wait_answer_at(admin, "revive", account="ACC1")["ok"]  # repeating it is harmless
        assert [r["killed"] for r in admin("accounts")["accounts"] if r["account"] == "ACC1"] == [False]
    finally:
        if session is not None:
            session.close()
        for p in procs:
            if p.alive():
                p.stop()


def wait_answer_at(admin: Any, action: str, **params: Any) -> dict[str, Any]:
    """``admin(action, **params)`` once every shard's engine serves requests again."""
    import time

    deadline = time.monotonic() + 20
    while True:
        answer = admin(action, **params)
        if "no active engine" not in str(answer.get("error")) or time.monotonic() > deadline:
            return answer
        time.sleep(0.2)
