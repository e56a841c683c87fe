"""Hostile input: seeded random order-entry messages must never crash, hang or corrupt the venue."""

from __future__ import annotations

import random
import time

import pytest

from fixclient import SessionError, field
from tests.conftest import ClientFactory, unique
from tests.fixtools import f, new_order, wait_er, wait_msg
from tests.gateway_process import GatewayProcess

pytestmark = pytest.mark.timeout(120)

VALUES = [
    "", "0", "-1", "1", "7", "100.00", "1e5", "NaN", "Infinity", "-0.0", "99999999999999999999999999999999999999",
    "0.000000001", "AAPL", "BTC-USD", "ZZZ", "ACC1", "ACC2", "x" * 300, "1.2.3", "\u00e9", "0x10", " 5", "2", "3", "6",
    "20260101-00:00:00", "garbage",
]  # fmt: skip
TAGS = [1, 11, 18, 37, 38, 40, 41, 44, 54, 55, 59, 60, 99, 126, 530, 9999]


def test_random_messages_never_break_the_venue(gateway: GatewayProcess, connect: ClientFactory) -> None:
    rng = random.Random(20261122)
    s = connect("CLIENT9")
    answered = 0
    for i in range(300):
        if rng.random() < 0.6:  # a valid order with one to three fields replaced: reaches the application
            msg_type = "D"
            valid = {11: f"fz{i}", 1: "ACC9", 55: "AAPL", 54: "1", 38: "10", 40: "2", 44: "10.00", 59: "0",
                     60: "20260101-00:00:00"}  # fmt: skip
            for tag in rng.sample(sorted(valid), rng.randint(1, 3)):
                valid[tag] = rng.choice(VALUES)
            fields = list(valid.items())
        else:
            msg_type = rng.choice("DFGHqJ")
            fields = [(11, f"fz{i}")] if rng.random() < 0.9 else []
            for _ in range(rng.randint(0, 9)):
                fields.append((rng.choice(TAGS), rng.choice(VALUES)))
        try:
            s.send(msg_type, fields)
        except SessionError:
            s = connect("CLIENT9")  # the venue may log a session out for a malformed header; it must not die
            continue
        if i % 25 == 0:  # a well-formed order still gets its report: the session and the engine are fine
            cl = unique("ok")
            new_order(s, cl, "1", "1", "1.00", symbol="MSFT", account="ACC9")
            try:
                wait_er(s, cl, "0")
                answered += 1
            except SessionError:
                s = connect("CLIENT9")
    assert answered >= 10
    # The fuzz reached the engine's checks, not only QuickFIX's (the audit file is flushed every 0.2 s).
    audit = gateway.config.parent / "data" / "audit.jsonl"
    deadline = time.monotonic() + 10
    while audit.read_text().count('"order_rejected"') < 20:
        assert time.monotonic() < deadline, "too few orders reached the engine"
        time.sleep(0.05)
    assert gateway.proc is not None and gateway.proc.poll() is None, "the gateway process died"
    # The books are still sane: with the fuzzer's orders cancelled, two fresh orders trade with each other.
    s.send("q", [(11, unique("mc")), (530, "7"), (60, "20260101-00:00:00")])
    wait_msg(s, "r")
    buyer, seller = connect("CLIENT7"), connect("CLIENT8")
    b, a = unique("fzb"), unique("fza")
    new_order(buyer, b, "1", "3", "77.77", symbol="AAPL")
    wait_er(buyer, b, "0")
    new_order(seller, a, "2", "3", "77.77", symbol="AAPL")
    fill = wait_er(seller, a, "F")
    assert (f(fill, 32), f(fill, 31), field(fill, 39)) == ("3", "77.77", "2")
