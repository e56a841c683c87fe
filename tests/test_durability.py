"""Durability: the journal and snapshots on real files, and a real gateway killed with SIGKILL under order flow."""

from __future__ import annotations

import contextlib
import random
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine import MatchingEngine, NewOrder, OrdType, SelfTradePrevention, Side, TimeInForce
from engine.codec import decode, encode
from engine.snapshot import dump_state, load_state
from fixclient import FixSession, SessionError, field, group_entries
from gateway.config import load_config
from gateway.journal import Durability, Journal, read_records, recover, write_snapshot
from tests.conftest import PASSWORDS, start_gateway
from tests.fixtools import new_order

pytestmark = pytest.mark.timeout(180)

CFG = load_config()
INSTRUMENTS = CFG.instruments


def random_commands(seed: int, n: int) -> list[NewOrder]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        side = rng.choice([Side.BUY, Side.SELL])
        price = 10_000 + rng.randint(-20, 20)
        tif = rng.choice([TimeInForce.DAY, TimeInForce.GTC, TimeInForce.IOC])
        owner = rng.choice(["A", "B", "C"])
        parties = f"453=1\x01448=T{i % 7}\x01447=D\x01452=11\x01" if i % 5 == 0 else ""  # opaque to the engine
        qty = rng.randint(1, 50)
        out.append(NewOrder(owner, f"c{i}", owner, "AAPL", side, OrdType.LIMIT, tif, price, qty, ts=i, parties=parties))
    return out


def test_journal_replay_and_snapshot_rebuild_the_same_engine(tmp_path: Path) -> None:
    journal_path, snap_dir = tmp_path / "j", tmp_path / "snaps"
    live = MatchingEngine(INSTRUMENTS)
    journal = Journal(journal_path, Durability.GROUP)
    commands = random_commands(1, 2000)
    for i, cmd in enumerate(commands):
        journal.append(cmd)
        live.process(cmd)
        if i == 1200:
            journal.commit()
            write_snapshot(live, snap_dir, journal.offset)
    journal.close()
    recovered, report = recover(journal_path, snap_dir, INSTRUMENTS, SelfTradePrevention.CANCEL_RESTING)
    assert report.snapshot is not None and report.replayed == 2000 - 1201 and report.error is None
    assert dump_state(recovered) == dump_state(live)
    # And it keeps behaving the same: the next command yields identical events.
    probe = NewOrder("A", "next", "A", "AAPL", Side.BUY, OrdType.LIMIT, TimeInForce.DAY, 10_030, 500, ts=9)
    assert repr(recovered.process(probe)) == repr(live.process(probe))
    # A snapshot round trip alone is exact too.
    assert dump_state(load_state(dump_state(live), INSTRUMENTS)) == dump_state(live)
    with_parties = [o for o in recovered.orders.values() if o.parties]
    assert with_parties and all(o.parties == live.orders[o.order_id].parties for o in with_parties)


def test_journal_records_without_parties_keep_their_format() -> None:
    """A NewOrder without Parties encodes exactly as before they existed; one with Parties decodes with them."""
    plain, with_parties = random_commands(2, 2)[1], random_commands(2, 1)[0]
    assert len(orjson.loads(encode(plain))) == 13 and decode(encode(plain)) == plain
    assert with_parties.parties and decode(encode(with_parties)) == with_parties


@pytest.mark.parametrize("damage", ["torn", "garbage", "bitflip"])
def test_corrupt_tail_is_detected_reported_and_cut(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "j"
    journal = Journal(path, Durability.WRITE)
    commands = random_commands(2, 100)
    for cmd in commands:
        journal.append(cmd)
    journal.close()
    good_size = path.stat().st_size
    data = path.read_bytes()
    if damage == "torn":  # the last record half written
        path.write_bytes(data[:-7])
        expect_records = 99
    elif damage == "garbage":
        path.write_bytes(data + b"\x13\x00\x00\x00garbage")
        expect_records = 100
    else:  # a flipped byte inside the last record's payload
        path.write_bytes(data[:-3] + bytes([data[-3] ^ 0xFF]) + data[-2:])
        expect_records = 99
    engine, report = recover(path, tmp_path / "none", INSTRUMENTS, SelfTradePrevention.CANCEL_RESTING)
    assert report.error is not None and report.replayed == expect_records
    assert report.cut_bytes > 0 and path.stat().st_size == report.journal_end <= good_size
    reference = MatchingEngine(INSTRUMENTS)
    for cmd in commands[:expect_records]:
        reference.process(cmd)
    assert dump_state(engine) == dump_state(reference)
    # After the cut the journal is clean: a second recovery finds nothing wrong.
    assert recover(path, tmp_path / "none", INSTRUMENTS, SelfTradePrevention.CANCEL_RESTING)[1].error is None


# ---------------------------------------------------------------------------- crash test


class Trader:
    """A client that remembers what the venue told it about each of its orders."""

    def __init__(self, comp_id: str, port: int) -> None:
        self.comp_id = comp_id
        self.session = FixSession("127.0.0.1", port, comp_id, PASSWORDS[comp_id], reset_seq=True)
        self.session.logon()
        self.known: dict[str, tuple[str, str]] = {}  # ClOrdID -> (OrdStatus, CumQty) from the latest ER
        self.sent: list[str] = []
        self.alias: dict[str, str] = {}

    def absorb(self, timeout: float = 0.0) -> None:
        """Record what arrives within ``timeout``, one message at a time (so a dropped connection loses none)."""
        deadline = time.monotonic() + timeout
        while (msg := self.session.receive(max(0.0, deadline - time.monotonic()))) is not None:
            self.record(msg)

    def record(self, msg: Any) -> None:
        if field(msg, 35) != "8" or field(msg, 150) == "I" or field(msg, 37) == "NONE":
            return
        cl, orig = field(msg, 11) or "", field(msg, 41)
        root = self.alias.get(orig, orig) if orig else cl  # cancels name the order by its first ClOrdID
        self.alias[cl] = root
        self.known[root] = (field(msg, 39) or "", field(msg, 14) or "")

    def reconnect(self, port: int) -> None:
        old = self.session
        self.session = FixSession("127.0.0.1", port, self.comp_id, PASSWORDS[self.comp_id],
                                  next_out=old.next_out, expected_in=old.expected_in)  # fmt: skip
        self.session.logon()
        # The ResendRequest went out before the TestRequest: every resent message arrives before the answer.
        # QuickFIX may park bytes that arrive while it is filling a gap until more bytes come (see the rules of
        # engagement), so an unanswered TestRequest is repeated, as a client's heartbeat timer would.
        for attempt in range(10):
            probe = f"sync{attempt}"
            self.session.send("1", [(112, probe)])
            while (msg := self.session.receive(2, admin=True)) is not None:
                if field(msg, 35) == "0" and field(msg, 112) == probe:
                    return
                self.record(msg)
        raise AssertionError("no answer to TestRequest after reconnect")


@pytest.mark.parametrize("seed", [11, 22, 33])
def test_sigkill_under_order_flow_loses_no_acknowledged_order(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    gw = start_gateway(tmp_path / "gw", **{"journal.durability": "group", "journal.snapshot_every": 150})
    traders = [Trader(f"CLIENT{i}", gw.oe_port) for i in (1, 2, 3)]
    kill_at = rng.randint(120, 400)
    for step in range(kill_at):
        t = rng.choice(traders)
        cl = f"{t.comp_id}-{step}"
        side = rng.choice("12")
        price = f"{100 + rng.randint(-5, 5) / 100:.2f}"
        tif = rng.choice("001")  # mostly DAY, some GTC
        new_order(t.session, cl, side, str(rng.randint(1, 20)), price, tif=tif)
        t.sent.append(cl)
        if rng.random() < 0.2 and t.known:
            victim = rng.choice(list(t.known))
            t.session.send("F", [(11, f"x{cl}"), (41, victim), (55, "AAPL"), (54, "1"), (60, "20260101-00:00:00")])
        t.absorb(0.001)
    gw.kill()
    for t in traders:
        with contextlib.suppress(SessionError):
            t.absorb(0.05)  # whatever was already on the wire
        t.session.close()

    gw.start()  # recovery runs before the acceptor listens
    assert '"event": "recovered"' in gw.log_text()
    for t in traders:
        t.reconnect(gw.oe_port)

    # An independent replay of the journal file.
    journal = tmp_path / "gw" / "data" / "journal" / "commands.journal"
    replay = MatchingEngine(INSTRUMENTS)
    for _, payload in read_records(journal):
        replay.process(decode(payload))

    for t in traders:
        for cl in t.sent:
            t.session.send("H", [(11, cl), (55, "AAPL"), (54, "1")])
            status = t.session.wait_for(lambda m, cl=cl: field(m, 35) == "8" and field(m, 11) == cl, 10)
            in_journal = replay.find(t.comp_id, cl)
            if cl in t.known:  # acknowledged before the crash (or its ER was resent): present, same state
                assert in_journal is not None, cl
                assert (field(status, 39), field(status, 14)) == t.known[cl], cl
            if in_journal is None:  # never journaled: must not exist
                assert field(status, 39) == "8", cl
            else:
                assert field(status, 39) == in_journal.status.value, cl

    # The market-data snapshot of the recovered venue equals the independent replay's book.
    md = FixSession("127.0.0.1", gw.md_port, "MD1", PASSWORDS["MD1"], reset_seq=True)
    md.logon()
    md.send("V", [(262, "s"), (263, "0"), (264, "0"), (267, 2), (269, "0"), (269, "1"), (146, 1), (55, "AAPL")])
    snap = md.wait_for(lambda m: field(m, 35) == "W", 10)
    levels = [(e[269], Decimal(e[270]), int(e[271])) for e in group_entries(snap, 268, 269)]
    book = replay.book("AAPL")
    ins = book.instrument
    expected = [("0", ins.ticks_to_price(lv.price), lv.qty) for lv in book.depth(Side.BUY)]
    expected += [("1", ins.ticks_to_price(lv.price), lv.qty) for lv in book.depth(Side.SELL)]
    assert levels == expected
    md.logout()
    for t in traders:
        t.session.logout()
    assert gw.stop() == 0


def test_gateway_cuts_a_corrupt_journal_tail_on_start(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path / "gw")
    t = Trader("CLIENT4", gw.oe_port)
    new_order(t.session, "keep", "1", "3", "99.00", tif="1")
    t.session.wait_for(lambda m: field(m, 11) == "keep" and field(m, 150) == "0", 10)
    t.session.logout()
    assert gw.stop() == 0
    journal = tmp_path / "gw" / "data" / "journal" / "commands.journal"
    for snap in (tmp_path / "gw" / "data" / "journal" / "snapshots").glob("*.json"):
        snap.unlink()  # force a replay of the journal itself
    with journal.open("ab") as f:
        f.write(b"\xff\xff\x00\x00torn")
    gw.start()
    assert '"event": "journal_tail_cut"' in gw.log_text()
    t2 = Trader("CLIENT4", gw.oe_port)
    t2.session.send("H", [(11, "keep"), (55, "AAPL"), (54, "1")])
    status = t2.session.wait_for(lambda m: field(m, 11) == "keep" and field(m, 150) == "I", 10)
    assert (field(status, 39), field(status, 151)) == ("0", "3")
    t2.session.logout()
    assert gw.stop() == 0
