"""Restart and crash recovery end to end, each expectation taken from what the clients sent and were told, never
from the gateway's own journal: cancel-on-disconnect after a crash, reports lost between the journal commit and the
FIX store, the durability policies, and the per-session cancel-on-disconnect override."""

from __future__ import annotations

import contextlib
import json
import time
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import simplefix

from fixclient import FixSession, SessionError, field, group_entries
from gateway import failpoint
from tests.conftest import PASSWORDS, start_gateway, start_gateway_with, unique
from tests.fixtools import f, new_order, wait_er
from tests.gateway_process import DEMO_CONFIG, GatewayProcess

pytestmark = pytest.mark.timeout(120)

COD_TEXT = "cancelled on disconnect"
Level = tuple[str, Decimal, Decimal]  # (MDEntryType, price, size)


def logon(gw: GatewayProcess, comp_id: str) -> FixSession:
    """A fresh session (sequence numbers reset)."""
    s = FixSession("127.0.0.1", gw.oe_port, comp_id, PASSWORDS[comp_id], reset_seq=True)
    s.logon()
    return s


def drop(s: FixSession) -> None:
    """The connection goes away without a Logout (or is already gone with the venue)."""
    s.close()


def disconnect(gw: GatewayProcess, s: FixSession, timeout: float = 10.0) -> None:
    """Drop the connection of a live session and wait until the gateway has seen it go."""
    seen = len(log_events(gw, "logout", s.sender))
    s.close()
    deadline = time.monotonic() + timeout
    while len(log_events(gw, "logout", s.sender)) == seen:
        assert time.monotonic() < deadline, f"the gateway did not notice {s.sender} leave"
        time.sleep(0.02)


def reconnect(old: FixSession, port: int) -> tuple[FixSession, simplefix.FixMessage, list[simplefix.FixMessage]]:
    """Log on again with the sequence numbers continuing; returns the session, the venue's Logon and every
    application message received until the session is in step (a TestRequest answered after the resend).

    QuickFIX may park bytes that arrive while it fills a gap until more bytes come (see the rules of engagement),
    so an unanswered TestRequest is repeated, as a client's heartbeat timer would."""
    s = FixSession("127.0.0.1", port, old.sender, old.password, next_out=old.next_out, expected_in=old.expected_in)
    venue_logon = s.logon()
    received: list[simplefix.FixMessage] = []
    for attempt in range(10):
        probe = unique(f"sync{attempt}-")
        s.send("1", [(112, probe)])
        while (msg := s.receive(2, admin=True)) is not None:
            if field(msg, 35) == "0" and field(msg, 112) == probe:
                return s, venue_logon, received
            if field(msg, 35) not in ("0", "1", "2", "4", "5", "A"):
                received.append(msg)
    raise AssertionError("no answer to TestRequest after reconnect")


def summary(msgs: list[simplefix.FixMessage]) -> list[tuple[str | None, ...]]:
    """(MsgType, ClOrdID, ExecType) of each message, for readable assertions."""
    return [(field(m, 35), field(m, 11), field(m, 150)) for m in msgs]


def reports(msgs: list[simplefix.FixMessage], exec_type: str) -> list[simplefix.FixMessage]:
    return [m for m in msgs if field(m, 35) == "8" and field(m, 150) == exec_type]


def status(s: FixSession, clordid: str, side: str = "1") -> simplefix.FixMessage:
    """The venue's answer to an OrderStatusRequest."""
    s.send("H", [(11, clordid), (55, "AAPL"), (54, side)])
    return wait_er(s, clordid, "I")


def book(gw: GatewayProcess, symbol: str = "AAPL") -> list[Level]:
    """The book as a market-data client sees it: a snapshot (263=0) of bids and offers, full depth."""
    md = FixSession("127.0.0.1", gw.md_port, "MD1", PASSWORDS["MD1"], reset_seq=True)
    md.logon()
    try:
        md.send("V", [(262, unique("snap")), (263, "0"), (264, "0"), (267, 2), (269, "0"), (269, "1"), (146, 1),
                      (55, symbol)])  # fmt: skip
        snap = md.wait_for(lambda m: field(m, 35) == "W", 10)
        return [(e[269], Decimal(e[270]), Decimal(e[271])) for e in group_entries(snap, 268, 269)]
    finally:
        md.logout()


def log_events(gw: GatewayProcess, event: str, session: str | None = None) -> list[dict[str, Any]]:
    """The gateway's JSON log lines of ``event`` (of one session if given), every start of it included."""
    out = []
    for line in gw.log_text().splitlines():
        with contextlib.suppress(ValueError):
            rec = json.loads(line)
            if isinstance(rec, dict) and rec.get("event") == event and session in (None, rec.get("session")):
                out.append(rec)
    return out


# ---------------------------------------------------------------------------- 1. cancel-on-disconnect after a crash


def test_crash_cancels_day_orders_at_restart_and_reports_them_by_resend(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path / "gw")
    c1, c2 = logon(gw, "CLIENT1"), logon(gw, "CLIENT2")
    new_order(c1, "day-bid", "1", "10", "99.00", tif="0")
    new_order(c1, "day-ask", "2", "5", "101.00", tif="0")
    new_order(c1, "gtc-bid", "1", "7", "98.00", tif="1")
    new_order(c2, "gtc-ask", "2", "3", "102.00", tif="1")
    new_order(c2, "day-ask2", "2", "2", "103.00", tif="0")
    ids = {cl: f(wait_er(s, cl, "0"), 37) for s, cl in [(c1, "day-bid"), (c1, "day-ask"), (c1, "gtc-bid"),
                                                          (c2, "gtc-ask"), (c2, "day-ask2")]}  # fmt: skip
    new_order(c2, "hit", "2", "4", "99.00", tif="0")  # fills 4 of day-bid: it rests with 6 left
    wait_er(c2, "hit", "F")
    wait_er(c1, "day-bid", "F")
    gw.kill()
    drop(c1)
    drop(c2)

    gw.start()
    # What the clients sent and were told: their DAY orders are gone, their GTC orders rest.
    assert book(gw) == [("0", Decimal("98.00"), Decimal(7)), ("1", Decimal("102.00"), Decimal(3))]
    back1, _, got1 = reconnect(c1, gw.oe_port)
    back2, _, got2 = reconnect(c2, gw.oe_port)
    cancelled1 = {f(m, 11): m for m in reports(got1, "4")}
    assert sorted(str(f(m, 11)) for m in reports(got1, "4")) == ["day-ask", "day-bid"]  # each once; gtc-bid not
    assert [f(m, 11) for m in reports(got2, "4")] == ["day-ask2"]
    for cl, cum in (("day-bid", "4"), ("day-ask", "0")):
        m = cancelled1[cl]
        assert (f(m, 39), f(m, 58), f(m, 37), f(m, 14), f(m, 151)) == ("4", COD_TEXT, ids[cl], cum, "0"), cl
        assert (f(m, 43), f(m, 41)) == ("Y", None), cl  # delivered by resend; a cancel the venue initiated
    assert (f(reports(got2, "4")[0], 58), f(reports(got2, "4")[0], 43)) == (COD_TEXT, "Y")
    assert (f(status(back1, "gtc-bid"), 39), f(status(back1, "gtc-bid"), 151)) == ("0", "7")
    assert (f(status(back1, "day-bid"), 39), f(status(back1, "day-bid"), 14)) == ("4", "4")
    back1.logout()
    back2.logout()
    assert gw.stop() == 0


# ---------------------------------------------------------------------------- 2. reports lost before the FIX store


def test_reports_journaled_but_never_handed_to_quickfix_are_delivered_once_after_restart(tmp_path: Path) -> None:
    # The third command is journaled and committed, then the process dies before its reports reach QuickFIX.
    gw = start_gateway_with(tmp_path / "gw", env={failpoint.VARIABLE: "exit_after_commit:3"})
    maker, taker = logon(gw, "CLIENT1"), logon(gw, "CLIENT2")
    new_order(maker, "rest", "1", "5", "99.00", tif="1")
    new_order(maker, "other", "2", "4", "101.00", tif="1")
    acks = [int(f(wait_er(maker, cl, "0"), 17)) for cl in ("rest", "other")]
    new_order(taker, "hit", "2", "2", "99.00", tif="0")  # trades 2 with "rest"
    assert gw.proc is not None and gw.proc.wait(20) == failpoint.EXIT_STATUS
    with pytest.raises(SessionError):  # neither side was told anything before the crash
        taker.wait_for(lambda m: field(m, 35) == "8", 10)
    with pytest.raises(SessionError):
        maker.wait_for(lambda m: field(m, 35) == "8", 10)

    gw.env = {}
    gw.start()
    back_m, _, got_m = reconnect(maker, gw.oe_port)
    back_t, _, got_t = reconnect(taker, gw.oe_port)
    assert [(f(m, 11), f(m, 150)) for m in got_m] == [("rest", "F")]
    assert [(f(m, 11), f(m, 150)) for m in got_t] == [("hit", "0"), ("hit", "F")]
    assert [e["count"] for e in log_events(gw, "resending_unsent_reports")] == [3]
    maker_fill, (taker_ack, taker_fill) = got_m[0], got_t
    assert (f(maker_fill, 32), f(maker_fill, 31), f(maker_fill, 39), f(maker_fill, 151)) == ("2", "99.00", "1", "3")
    assert (f(taker_fill, 32), f(taker_fill, 31), f(taker_fill, 39), f(taker_fill, 151)) == ("2", "99.00", "2", "0")
    assert f(maker_fill, 527) == f(taker_fill, 527) and (f(maker_fill, 851), f(taker_fill, 851)) == ("1", "2")
    assert len({f(m, 17) for m in (maker_fill, taker_ack, taker_fill)}) == 3
    trail = audited(gw)  # the three are in the audit trail once each, though sent after the restart
    assert sorted(line["exec_id"] for line in trail) == sorted([*acks, *(int(f(m, 17)) for m in got_m + got_t)])
    assert all(f(m, 43) == "Y" for m in got_m + got_t)  # stored while they were away, delivered by resend
    assert (f(status(back_m, "rest"), 39), f(status(back_m, "rest"), 14)) == ("1", "2")
    # A second (clean) restart must not send them again: they are in the FIX store now.
    assert gw.stop() == 0
    drop(back_m)
    drop(back_t)
    gw.start()
    again_m, _, got_m = reconnect(back_m, gw.oe_port)
    again_t, _, got_t = reconnect(back_t, gw.oe_port)
    assert summary(got_m) == [] and summary(got_t) == []
    assert len(log_events(gw, "resending_unsent_reports")) == 1
    again_m.logout()
    again_t.logout()
    assert gw.stop() == 0


def audit_path(gw: GatewayProcess) -> Path:
    return gw.config.parent / "data" / "audit.jsonl"


def audited(gw: GatewayProcess) -> list[dict[str, Any]]:
    """The audit trail's execution lines, in order."""
    lines = [json.loads(line) for line in audit_path(gw).read_text().splitlines()]
    return [line for line in lines if "exec_id" in line]


def test_audit_lines_a_crash_lost_are_written_once_at_restart(tmp_path: Path) -> None:
    """The audit trail goes through a buffer flushed every 0.2 s: a kill -9 loses its last lines and can leave one
    cut in half. At restart the executions above the trail's last ExecID are written again from the journal, marked
    ``recovered``: every ExecID the clients were sent is in the trail once, each line as it was."""
    gw = start_gateway(tmp_path / "gw")
    c1, c2 = logon(gw, "CLIENT1"), logon(gw, "CLIENT2")
    new_order(c1, "rest", "1", "5", "99.00", tif="1")
    sent = [wait_er(c1, "rest", "0")]
    new_order(c2, "hit", "2", "2", "99.00", tif="1")  # trades 2 with "rest", which rests with 3 (GTC: kept)
    sent += [wait_er(c2, "hit", "0"), wait_er(c2, "hit", "F"), wait_er(c1, "rest", "F")]
    sent_ids = sorted(int(f(m, 17)) for m in sent)
    deadline = time.monotonic() + 10
    while sorted(line["exec_id"] for line in audited(gw)) != sent_ids:  # flushed within 0.2 s
        assert time.monotonic() < deadline, audited(gw)
        time.sleep(0.05)
    before = audited(gw)
    gw.kill()
    drop(c1)
    drop(c2)
    # What the kill would have lost had it come a moment earlier: the buffer from the third execution's line on,
    # that line cut in half.
    lines = audit_path(gw).read_bytes().splitlines(keepends=True)
    third = [i for i, line in enumerate(lines) if b'"exec_id"' in line][2]
    audit_path(gw).write_bytes(b"".join(lines[:third]) + lines[third][: len(lines[third]) // 2])

    gw.start()
    after = audited(gw)  # every line whole JSON again: the torn one is gone
    assert sorted(line["exec_id"] for line in after) == sent_ids
    assert [line.pop("recovered", False) for line in after] == [False, False, True, True]
    assert after == before
    assert [e["count"] for e in log_events(gw, "auditing_recovered_executions")] == [2]
    # A clean restart writes nothing again.
    assert gw.stop() == 0
    gw.start()
    assert len(audited(gw)) == 4
    assert gw.stop() == 0


# ---------------------------------------------------------------------------- 3. the durability policies


@pytest.mark.parametrize(("policy", "crash"), [("off", False), ("write", True), ("fsync", True)])
def test_durability_policy_across_a_restart(tmp_path: Path, policy: str, crash: bool) -> None:
    """`off` loses everything even across a clean restart; `write` and `fsync` survive SIGKILL (a power loss, which
    only `fsync` and `group` survive, cannot be staged here). FIX sequence numbers persist under every policy."""
    gw = start_gateway(tmp_path / "gw", **{"journal.durability": policy})
    maker, taker = logon(gw, "CLIENT1"), logon(gw, "CLIENT2")
    new_order(maker, "g1", "1", "10", "97.00", tif="1")
    ack = wait_er(maker, "g1", "0")
    new_order(taker, "t1", "2", "3", "97.00", tif="0")
    taker_fill = wait_er(taker, "t1", "F")
    maker_fill = wait_er(maker, "g1", "F")
    seen_exec_ids = [int(f(m, 17) or 0) for m in (ack, taker_fill, maker_fill)]
    if crash:
        gw.kill()
    else:
        assert gw.stop() == 0
    drop(maker)
    drop(taker)

    gw.start()
    back, venue_logon, got = reconnect(maker, gw.oe_port)
    assert int(field(venue_logon, 34) or 0) >= maker.expected_in  # the venue's sequence numbers continued
    assert summary(got) == []  # nothing is reported about g1 at logon, whatever the policy
    journal = tmp_path / "gw" / "data" / "journal" / "commands.journal"
    answer = status(back, "g1")
    resting = book(gw)
    new_order(back, "g1", "1", "1", "97.00", tif="1")  # the same ClOrdID again
    if policy == "off":
        assert not journal.exists()
        assert (f(answer, 39), f(answer, 37), f(answer, 58)) == ("8", "NONE", "unknown order")
        assert resting == []
        again = wait_er(back, "g1", "0")  # ClOrdID memory is gone, and the ids start again from scratch
        assert f(again, 37) == f(ack, 37) and int(f(again, 17) or 0) < max(seen_exec_ids)
    else:
        assert journal.stat().st_size > 0
        assert (f(answer, 39), f(answer, 37), f(answer, 151), f(answer, 14)) == ("1", f(ack, 37), "7", "3")
        assert resting == [("0", Decimal("97.00"), Decimal(7))]
        dup = wait_er(back, "g1", "8")
        assert (f(dup, 103), f(dup, 58)) == ("6", "duplicate ClOrdID")
        assert int(f(dup, 17) or 0) > max(seen_exec_ids)  # ExecIDs never repeat while the journal lives
    back.logout()
    assert gw.stop() == 0


# ---------------------------------------------------------------------------- 3. the per-session COD override


def test_session_with_cancel_on_disconnect_off_keeps_its_day_orders(tmp_path: Path) -> None:
    demo = tomllib.loads(DEMO_CONFIG.read_text())["sessions"]
    gw = start_gateway_with(tmp_path / "gw", sessions={"CLIENT5": {**demo["CLIENT5"], "cancel_on_disconnect": False}})
    keep, lose = logon(gw, "CLIENT5"), logon(gw, "CLIENT6")
    new_order(keep, "k1", "1", "2", "95.00", tif="0")
    new_order(lose, "l1", "1", "3", "94.00", tif="0")
    wait_er(keep, "k1", "0")
    wait_er(lose, "l1", "0")
    disconnect(gw, keep)  # both connections drop
    disconnect(gw, lose)
    keep, _, got_keep = reconnect(keep, gw.oe_port)
    lose, _, got_lose = reconnect(lose, gw.oe_port)
    assert summary(got_keep) == []
    assert [(f(m, 11), f(m, 58)) for m in reports(got_lose, "4")] == [("l1", COD_TEXT)]  # the default still applies
    assert (f(status(keep, "k1"), 39), f(status(keep, "k1"), 151)) == ("0", "2")
    assert book(gw) == [("0", Decimal("95.00"), Decimal(2))]
    # After a crash too, its DAY order is in the book again and nothing is cancelled.
    gw.kill()
    drop(keep)
    drop(lose)
    gw.start()
    assert book(gw) == [("0", Decimal("95.00"), Decimal(2))]
    keep, _, got_keep = reconnect(keep, gw.oe_port)
    assert summary(got_keep) == []
    assert (f(status(keep, "k1"), 39), f(status(keep, "k1"), 151)) == ("0", "2")
    keep.logout()
    assert gw.stop() == 0


def test_a_malformed_failpoint_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"FIXGW_FAILPOINT='exit_after_commit': expected exit_after_commit:N"):
        start_gateway_with(tmp_path / "gw", env={failpoint.VARIABLE: "exit_after_commit"})
