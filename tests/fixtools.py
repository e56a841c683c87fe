"""Order-entry helpers for tests: send an order, wait for the ExecutionReport a user would look for."""

from __future__ import annotations

from typing import Any

import simplefix

from fixclient import FixSession, field, utc_now

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
