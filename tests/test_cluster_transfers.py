"""Moving funds between shards (README "Scale-out", "Money is per shard") on a three-server JetStream cluster with
two shards, ``eq`` (AAPL, MSFT) and ``crypto`` (BTC-USD), each with an active engine and a standby.

``fixgw admin transfer`` through a gateway debits the account on the source shard and credits it on the target
shard, so an order the target's share could not pay for is accepted afterwards; a credit delivered again (a frozen
engine's late re-publish) changes nothing; and a kill -9 of the source's active engine between the debit and the
credit ends, once its standby has taken over, with the funds credited exactly once. In every case a replay of both
shards' command streams conserves money across the venue and leaves nothing in flight."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nats
import pytest

from engine import MatchingEngine, TransferIn
from engine.codec import encode
from engine.ledger import Ledger, venue_imbalance
from gateway.failpoint import TRANSFER_STALL, VARIABLE
from gateway.operator import call
from roles.engine import opening_share
from seqlog.jetstream import MSG_ID, pack
from tests.cluster_process import RoleProcess
from tests.fixtools import f, new_order, wait_er
from tests.gateway_process import ROOT
from tests.nats_cluster import NatsCluster
from tests.test_cluster_shards import ShardedVenue
from tools.admin import DEMO_TOKEN

pytestmark = pytest.mark.timeout(300)

MILLION = 10**6 * 10**6  # 1,000,000 USD in units (USD has 6 decimals in the demo venue)


def admin(v: ShardedVenue, action: str, **params: Any) -> dict[str, Any]:
    return call(f"http://127.0.0.1:{v.ports['gw1.operator']}", DEMO_TOKEN, action, params)


def replayed(v: ShardedVenue) -> dict[str, Ledger]:
    """Each shard's ledger after a single-process replay of its whole command stream."""
    engines: dict[str, MatchingEngine] = {s.name: v.replay(s)[0] for s in v.cluster.shards}
    out = {name: e.ledger for name, e in engines.items() if e.ledger is not None}
    assert len(out) == 2
    return out


def usd_share(v: ShardedVenue, shard: str) -> int:
    spec = v.cluster.shard(shard)
    return opening_share(v.cfg, v.cluster, spec, "USD", v.cfg.opening_balances["ACC1"]["USD"])


def held_usd(ledger: Ledger) -> int:
    balance = ledger.accounts["ACC1"].balances["USD"]
    return balance.available + balance.held


def wait_log_count(p: RoleProcess, text: str, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while p.log_text().count(text) < count:
        assert time.monotonic() < deadline, f"{p.name}: fewer than {count} {text!r}:\n{p.tail()}"
        time.sleep(0.05)


def test_a_transfer_lets_the_target_shard_accept_an_order_its_share_could_not_pay_and_is_applied_once(
    tmp_path: Path, nats3: NatsCluster
) -> None:
    v = ShardedVenue(tmp_path, nats3, {"gw1": ["CLIENT1"]})
    try:
        c1 = v.client("CLIENT1", "pass1", "gw1")
        new_order(c1, "big1", side="1", qty="100", price="55000.00", symbol="BTC-USD")
        refused = wait_er(c1, "big1", "8")
        assert f(refused, 58) == "insufficient funds"
        out = subprocess.run([sys.executable, "-m", "gateway", "admin", "--config", str(v.config), "--gateway", "gw1",
                              "transfer", "ACC1", "USD", "1000000", "--from", "eq", "--to", "crypto", "--transfer-id",
                              "t-1"], cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
        assert (out.returncode, out.stdout.strip()) == (0, "applied: transfer 1000000.000000 USD of ACC1 from shard eq "
                                                        "to crypto (transfer id t-1): debited: the credit to the other "
                                                        "shard follows")  # fmt: skip
        v.engines["eq1"].wait_for("transfer_confirmation_applied")  # the crypto engine applied the credit
        new_order(c1, "big2", side="1", qty="100", price="55000.00", symbol="BTC-USD")
        wait_er(c1, "big2", "0")
        # The operator's retry of the same transfer is refused as a repeat; a transfer to no shard, or from a shard
        # the request did not reach, is refused with the reason
        again = admin(v, "transfer", account="ACC1", asset="USD", amount="1000000", from_shard="eq",
                      to_shard="crypto", transfer_id="t-1")  # fmt: skip
        assert (again["ok"], again["reason"]) == (False, "duplicate_funding_id")
        nowhere = admin(v, "transfer", account="ACC1", asset="USD", amount="1", from_shard="eq", to_shard="eq")
        assert nowhere["error"] == "to_shard 'eq': name another shard of the venue (eq, crypto)"
        too_much = admin(v, "transfer", account="ACC1", asset="USD", amount="99000000", from_shard="crypto",
                         to_shard="eq")  # fmt: skip
        assert (too_much["ok"], too_much["reason"]) == (False, "insufficient_funds")
        # The credit delivered once more, long after (a frozen engine's re-publish, past JetStream's duplicate
        # window: a new Nats-Msg-Id): the target applies it as a repeat, which changes nothing
        asyncio.run(publish(v, "crypto", TransferIn("t-1", "eq", 1, "ACC1", "USD", MILLION), "transfer:eq:t-1:x:9"))
        wait_log_count(v.engines["crypto1"], "transfer_credit_applied", 2)

        ledgers = replayed(v)
        assert set(venue_imbalance(ledgers).values()) == {0}
        assert all(not ledger.outgoing for ledger in ledgers.values())
        assert held_usd(ledgers["crypto"]) == usd_share(v, "crypto") + MILLION  # credited once, not twice
        assert held_usd(ledgers["eq"]) == usd_share(v, "eq") - MILLION
    finally:
        v.stop()


def test_a_kill_of_the_source_engine_between_debit_and_credit_still_credits_once(
    tmp_path: Path, nats3: NatsCluster
) -> None:
    v = ShardedVenue(tmp_path, nats3, {"gw1": ["CLIENT1"]}, engine_env={"eq1": {VARIABLE: TRANSFER_STALL}})
    try:
        c1 = v.client("CLIENT1", "pass1", "gw1")
        moved = admin(v, "transfer", account="ACC1", asset="USD", amount="1000000", from_shard="eq",
                      to_shard="crypto", transfer_id="t-kill")  # fmt: skip
        assert moved["ok"], moved
        v.engines["eq1"].wait_for("transfer_stalled")  # debited; the credit is not published
        ledgers = replayed(v)
        assert list(ledgers["eq"].outgoing) == ["t-kill"] and held_usd(ledgers["crypto"]) == usd_share(v, "crypto")
        assert set(venue_imbalance(ledgers).values()) == {0}  # the million is in flight, and counted
        v.engines["eq1"].kill()  # SIGKILL of the source's active engine, mid-transfer
        v.engines["eq2"].wait_for("engine_active")
        v.engines["eq2"].wait_for("transfer_confirmation_applied")  # re-published by the standby, credited
        new_order(c1, "big1", side="1", qty="100", price="55000.00", symbol="BTC-USD")
        wait_er(c1, "big1", "0")

        ledgers = replayed(v)
        assert set(venue_imbalance(ledgers).values()) == {0}
        assert all(not ledger.outgoing for ledger in ledgers.values())
        assert held_usd(ledgers["crypto"]) == usd_share(v, "crypto") + MILLION
        assert held_usd(ledgers["eq"]) == usd_share(v, "eq") - MILLION
    finally:
        v.stop()


async def publish(v: ShardedVenue, shard: str, cmd: Any, msg_id: str) -> None:
    nc = await nats.connect(v.urls)
    try:
        await nc.jetstream().publish(v.cluster.command_stream(shard).subject, pack([encode(cmd)]),
                                     headers={MSG_ID: msg_id})  # fmt: skip
    finally:
        await nc.close()
