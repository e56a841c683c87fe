"""Order-entry helpers for tests: send an order, wait for the ExecutionReport a user would look for."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import simplefix

from fixclient import FixSession, field, group_entries, utc_now

TIMEOUT = 10.0


def new_order(
    s: FixSession,
    clordid: str,
    side: str = "1",
    qty: str = "10",
    price: str | None = "100.00",
    symbol: str = "AAPL",
    ord_type: str | None = None,
    tif: str = "0",
    account: str | None = None,
    extra: list[tuple[int, Any]] | None = None,
) -> int:
    ord_type = ord_type or ("2" if price is not None else "1")
    account = account or "ACC" + s.sender.removeprefix("CLIENT")
    fields: list[tuple[int, Any]] = [
        (11, clordid), (1, account), (55, symbol), (54, side), (38, qty), (40, ord_type), (44, price),
        (59, tif), (60, utc_now()),
    ]  # fmt: skip
    return s.send("D", fields + (extra or []))


def cancel(
    s: FixSession, clordid: str, orig: str | None, side: str = "1", symbol: str = "AAPL", order_id: str | None = None
) -> int:
    return s.send("F", [(11, clordid), (41, orig), (37, order_id), (55, symbol), (54, side), (60, utc_now())])


def replace(s: FixSession, clordid: str, orig: str, qty: str, price: str, side: str = "1", symbol: str = "AAPL") -> int:
    return s.send(
        "G",
        [
            (11, clordid),
            (41, orig),
            (55, symbol),
            (54, side),
            (38, qty),
            (40, "2"),
            (44, price),
            (59, "0"),
            (60, utc_now()),
        ],
    )


def wait_msg(s: FixSession, msg_type: str, timeout: float = TIMEOUT, **fields: str) -> simplefix.FixMessage:
    """The next message of ``msg_type`` whose fields (tag=value via names like t150='F') all match."""
    want = {int(k.lstrip("t")): v for k, v in fields.items()}

    def match(m: simplefix.FixMessage) -> bool:
        return field(m, 35) == msg_type and all(field(m, t) == v for t, v in want.items())

    return s.wait_for(match, timeout)


def wait_er(s: FixSession, clordid: str, exec_type: str, timeout: float = TIMEOUT) -> simplefix.FixMessage:
    return wait_msg(s, "8", timeout, t11=clordid, t150=exec_type)


def f(msg: simplefix.FixMessage, tag: int) -> str | None:
    return field(msg, tag)


_req_ids = itertools.count(1)


def request_positions(
    s: FixSession, account: str | None, req_id: str, pos_req_type: str = "0", extra: list[tuple[int, Any]] | None = None
) -> int:
    """RequestForPositions (AN) with the fields the dictionary requires (``account`` None: no Account tag)."""
    fields: list[tuple[int, Any]] = [
        (710, req_id), (724, pos_req_type), (1, account), (581, "1"),
        (715, datetime.now(UTC).strftime("%Y%m%d")), (60, utc_now()),
    ]  # fmt: skip
    return s.send("AN", fields + (extra or []))


@dataclass
class Holdings:
    """An account's balances and positions as the venue reported them over AN/AO/AP, as the text it sent."""

    ack: simplefix.FixMessage
    reports: list[simplefix.FixMessage]
    balances: dict[str, tuple[str, str]] = dataclass_field(default_factory=dict)  # asset -> (available, held)
    positions: dict[str, dict[str, str]] = dataclass_field(default_factory=dict)  # symbol -> net, avg, mark, ...

    def view(self) -> tuple[dict[str, tuple[str, str]], dict[str, dict[str, str]]]:
        """What must not change across a restart: balances and positions (no report ids, no dates)."""
        return self.balances, self.positions


def holdings(s: FixSession, account: str | None = None, timeout: float = TIMEOUT) -> Holdings:
    """Ask for ``account``'s balances and positions (default: the session's ``ACCn``) and read the AO and every AP.

    Each AP is checked for the shape the Rules of Engagement give it: one NoPositions entry, and CASH (plus FMTM for
    an instrument) in NoPosAmt."""
    account = account or "ACC" + s.sender.removeprefix("CLIENT")
    req_id = f"pos-{next(_req_ids)}"
    request_positions(s, account, req_id)
    ack = wait_msg(s, "AO", timeout, t710=req_id)
    assert field(ack, 728) in ("0", "2") and field(ack, 729) == "0", ack
    reports = [wait_msg(s, "AP", timeout, t710=req_id) for _ in range(int(field(ack, 727) or 0))]
    out = Holdings(ack, reports)
    for ap in reports:
        (qty,) = group_entries(ap, 702, 703)
        amounts = {e[707]: e[708] for e in group_entries(ap, 753, 707)}
        symbol = field(ap, 55)
        if symbol is None:  # an asset balance
            assert qty[703] == "TOT" and set(amounts) == {"CASH"}, ap
            asset = field(ap, 15) or ""
            out.balances[asset] = (qty[704], qty[705])
            assert Decimal(amounts["CASH"]) == Decimal(qty[704]) + Decimal(qty[705])  # the balance: available + held
        else:
            assert qty[703] == "TQ" and set(amounts) == {"FMTM", "CASH"}, ap
            long, short = Decimal(qty[704]), Decimal(qty[705])
            assert not (long and short), ap
            net = qty[704] if long or not short else "-" + qty[705]
            out.positions[symbol] = {
                "net": net, "avg": field(ap, 734) or "", "mark": field(ap, 730) or "",
                "realized": amounts["CASH"], "unrealized": amounts["FMTM"], "currency": field(ap, 15) or "",
            }  # fmt: skip
    return out
