"""Transfers between shards, engine side (README "Scale-out", "Money is per shard"): the source's ledger debits and
keeps the transfer pending, the target's credits it exactly once however often and in whatever order credits and
confirmations arrive, and money is conserved across the shards at every step, counting what is in flight."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import (
    Command,
    Configure,
    Fund,
    MatchingEngine,
    OperatorResult,
    Reason,
    TransferDone,
    TransferIn,
    TransferOut,
)
from engine.codec import decode, encode
from engine.ledger import Ledger, venue_imbalance
from engine.snapshot import dump_state, load_state
from tests.engine_helpers import BTC, XYZ
from tests.ledger_helpers import ACCOUNTS, ledger_of, setup

SHARDS = ("s0", "s1", "s2")
USD = 1_000 * 10**6


class Shard:
    """One shard's engine and the log of every command it applied (its command stream)."""

    def __init__(self) -> None:
        self.engine = MatchingEngine((XYZ, BTC))
        self.log: list[bytes] = []
        self.apply(Configure(setup().to_dict()))
        for account in ACCOUNTS:
            self.apply(Fund("r", account, "USD", USD, f"seed-{account}-USD"))

    @property
    def ledger(self) -> Ledger:
        return ledger_of(self.engine)

    def apply(self, cmd: Command) -> list[object]:
        self.log.append(encode(cmd))
        return list(self.engine.process(decode(self.log[-1])))


def ledgers(shards: dict[str, Shard]) -> dict[str, Ledger]:
    return {name: s.ledger for name, s in shards.items()}


def credit_of(source: str, ledger: Ledger, transfer_id: str) -> TransferIn:
    t = ledger.outgoing[transfer_id]
    return TransferIn(t.transfer_id, source, t.seq, t.account, t.asset, t.amount)


def test_a_transfer_debits_the_source_credits_the_target_once_and_is_conserved_while_in_flight() -> None:
    shards = {name: Shard() for name in ("s0", "s1")}
    src, dst = shards["s0"], shards["s1"]
    [result] = src.apply(TransferOut("r1", "t1", "A", "USD", 300 * 10**6, "s1"))
    assert isinstance(result, OperatorResult) and result.applied and result.action == "transfer"
    assert src.ledger.accounts["A"].available["USD"] == 700 * 10**6
    assert venue_imbalance(ledgers(shards)) == {"USD": 0, "XYZ": 0, "BTC": 0}  # the 300 are in flight
    assert src.ledger.imbalance()["USD"] == 0
    credit = credit_of("s0", src.ledger, "t1")
    for _ in range(3):  # delivered three times (retries, a fail-over's re-publish): credited once
        dst.apply(credit)
    assert dst.ledger.accounts["A"].available["USD"] == 1_300 * 10**6
    assert (dst.ledger.imbalance()["USD"], venue_imbalance(ledgers(shards))["USD"]) == (0, 0)
    src.apply(TransferDone("t1"))
    src.apply(TransferDone("t1"))  # a repeated confirmation: nothing
    assert not src.ledger.outgoing and venue_imbalance(ledgers(shards))["USD"] == 0
    dst.apply(credit)  # a credit arriving after the confirmation (a frozen engine's late re-publish): still nothing
    assert dst.ledger.accounts["A"].available["USD"] == 1_300 * 10**6
    assert (dst.ledger.received, dst.ledger.received_above) == ({"s0": 1}, {"s0": set()})  # bounded: one number


def test_refused_transfers_change_nothing() -> None:
    src = Shard()
    before = orjson.dumps(dump_state(src.engine))
    for cmd, reason in (
        (TransferOut("r", "t1", "NOPE", "USD", 1, "s1"), Reason.UNKNOWN_ACCOUNT),
        (TransferOut("r", "t1", "A", "EUR", 1, "s1"), Reason.UNKNOWN_ASSET),
        (TransferOut("r", "t1", "A", "USD", 0, "s1"), Reason.INVALID_AMOUNT),
        (TransferOut("r", "t1", "A", "USD", USD + 1, "s1"), Reason.INSUFFICIENT_FUNDS),
        (TransferOut("r", "seed-A-USD", "A", "USD", 1, "s1"), Reason.DUPLICATE_FUNDING_ID),  # ids: one namespace
    ):
        [result] = src.apply(cmd)
        assert isinstance(result, OperatorResult) and (result.applied, result.reason) == (False, reason)
    assert orjson.dumps(dump_state(src.engine))[-200:] == before[-200:] and not src.ledger.outgoing
    assert src.apply(TransferOut("r", "t1", "A", "USD", 5, "s1"))[0].applied  # type: ignore[attr-defined]
    [again] = src.apply(TransferOut("r", "t1", "A", "USD", 5, "s1"))  # the operator's retry of the same id
    assert isinstance(again, OperatorResult) and again.reason is Reason.DUPLICATE_FUNDING_ID
    assert src.ledger.accounts["A"].available["USD"] == USD - 5


def test_a_snapshot_carries_pending_transfers_and_the_credits_applied() -> None:
    src, dst = Shard(), Shard()
    for i in range(1, 4):
        src.apply(TransferOut("r", f"t{i}", "B", "USD", i, "s1"))
    dst.apply(credit_of("s0", src.ledger, "t2"))  # out of order: 2 before 1
    restored = {
        "s0": ledger_of(load_state(orjson.loads(orjson.dumps(dump_state(src.engine))), (XYZ, BTC))),
        "s1": ledger_of(load_state(orjson.loads(orjson.dumps(dump_state(dst.engine))), (XYZ, BTC))),
    }
    assert sorted(restored["s0"].outgoing) == ["t1", "t2", "t3"] and restored["s0"].sent == {"s1": 3}
    assert (restored["s1"].received, restored["s1"].received_above) == ({"s0": 0}, {"s0": {2}})
    assert restored["s1"].credited("s0", 2) and not restored["s1"].credited("s0", 1)
    assert (
        venue_imbalance(restored)
        == venue_imbalance({"s0": src.ledger, "s1": dst.ledger})
        == dict.fromkeys(("USD", "XYZ", "BTC"), 0)
    )


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_conservation_holds_whatever_the_order_of_debits_credits_confirmations_and_replays(data: st.DataObject) -> None:
    """Random transfers between three shards; the network delivers every credit any number of times and in any
    order (retries, fail-over re-publishes), loses or repeats confirmations, and shards are rebuilt from their
    command logs (a standby taking over). At every step each ledger balances and the venue conserves money counting
    what is in flight; once everything is delivered, every transfer is credited exactly once."""
    shards = {name: Shard() for name in SHARDS}
    wire: list[TransferIn] = []  # credits published so far (each may be delivered again at any time)
    confirmations: list[tuple[str, TransferDone]] = []  # (source shard, confirmation) not delivered yet
    debited: dict[str, tuple[str, str, str, int]] = {}  # transfer id -> (source, target, account, amount)
    ids = 0

    def check() -> None:
        assert set(venue_imbalance(ledgers(shards)).values()) == {0}
        for s in shards.values():
            assert set(s.ledger.imbalance().values()) == {0}
            assert all(a.available.get("USD", 0) >= 0 for a in s.ledger.accounts.values())

    def deliver(credit: TransferIn) -> None:
        shards[debited[credit.transfer_id][1]].apply(credit)
        confirmations.append((credit.from_shard, TransferDone(credit.transfer_id)))  # new or repeat: confirmed

    for _ in range(data.draw(st.integers(5, 40))):
        step = data.draw(st.sampled_from(["transfer", "publish", "deliver", "confirm", "lose", "replay"]))
        if step == "transfer":
            source, target = data.draw(st.permutations(SHARDS))[:2]
            account = data.draw(st.sampled_from(ACCOUNTS))
            amount = data.draw(st.integers(1, USD // 2))
            ids += 1
            [result] = shards[source].apply(TransferOut("r", f"x{ids}", account, "USD", amount, target))
            if result.applied:  # type: ignore[attr-defined]
                debited[f"x{ids}"] = (source, target, account, amount)
        elif step == "publish":  # a source's active engine publishes every pending credit
            for name, s in shards.items():
                wire.extend(credit_of(name, s.ledger, t) for t in s.ledger.outgoing)
        elif step == "deliver" and wire:
            deliver(wire[data.draw(st.integers(0, len(wire) - 1))])
        elif step == "confirm" and confirmations:
            source, done = confirmations.pop(data.draw(st.integers(0, len(confirmations) - 1)))
            shards[source].apply(done)
        elif step == "lose" and confirmations:  # a target engine died before confirming
            confirmations.pop(data.draw(st.integers(0, len(confirmations) - 1)))
        elif step == "replay":  # a standby rebuilt from the shard's command log holds the same ledger
            name = data.draw(st.sampled_from(SHARDS))
            replayed = MatchingEngine((XYZ, BTC))
            for payload in shards[name].log:
                replayed.process(decode(payload))
            assert orjson.dumps(dump_state(replayed)) == orjson.dumps(dump_state(shards[name].engine))
            shards[name].engine = replayed
        check()
    # The network settles: sources re-publish what is pending until every confirmation is in
    while any(s.ledger.outgoing for s in shards.values()) or confirmations:
        for name, s in shards.items():
            for t in list(s.ledger.outgoing):
                deliver(credit_of(name, s.ledger, t))
        while confirmations:
            source, done = confirmations.pop()
            shards[source].apply(done)
        check()
    expected = {(name, a): USD for name in SHARDS for a in ACCOUNTS}
    for source, target, account, amount in debited.values():  # opened, minus sent, plus received: once each
        expected[(source, account)] -= amount
        expected[(target, account)] += amount
    for (name, account), units in expected.items():
        assert shards[name].ledger.accounts[account].available.get("USD", 0) == units, (name, account)
    for s in shards.values():
        assert not any(s.ledger.received_above.values()), "every credit numbered, none left above the mark"
