"""The window of finished orders over FIX (rules of engagement, "Order identity"): a session's last N finished orders
are known (status, duplicate ClOrdID, "too late", PossResend), older ones are forgotten, across a restart too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fixclient import FixSession, utc_now
from tests.conftest import _connector, start_gateway_with, unique
from tests.fixtools import cancel, f, new_order, wait_er, wait_msg
from tests.gateway_process import GatewayProcess

pytestmark = pytest.mark.timeout(90)
WINDOW = 2


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[GatewayProcess]:
    gw = start_gateway_with(tmp_path / "gw", {"order_entry.finished_orders": WINDOW})
    yield gw
    if gw.proc is not None and gw.proc.poll() is None:
        gw.stop()


def status(s: FixSession, clordid: str) -> tuple[str | None, ...]:
    s.send("H", [(11, clordid), (55, "AAPL"), (54, "1")])
    answer = wait_er(s, clordid, "I")
    return f(answer, 39), f(answer, 103), f(answer, 58)


def test_a_session_s_last_finished_orders_are_known_and_older_ones_forgotten(gw: GatewayProcess) -> None:
    clients = _connector(gw)
    s = next(clients)("CLIENT1")
    ids = [unique("win") for _ in range(WINDOW + 1)]
    for clordid in ids:  # entered and cancelled: WINDOW + 1 finished orders, the first one beyond the window
        new_order(s, clordid, "1", "1", "90.00")
        wait_er(s, clordid, "0")
        cancel(s, clordid + "x", clordid)
        wait_er(s, clordid + "x", "4")
    oldest, kept = ids[0], ids[1]

    assert status(s, oldest) == ("8", "5", "unknown order")
    assert status(s, kept) == ("4", None, None)
    cancel(s, unique("late"), kept)
    assert (f(wait_msg(s, "9", t41=kept), 102)) == "0"  # too late: known, and done
    cancel(s, unique("gone"), oldest)
    assert (f(wait_msg(s, "9", t41=oldest), 102)) == "1"  # unknown order

    new_order(s, kept, "1", "1", "90.00")  # a ClOrdID inside the window is still a duplicate
    assert f(wait_er(s, kept, "8"), 103) == "6"
    s.send("D", [(97, "Y"), (11, kept), (1, "ACC1"), (55, "AAPL"), (54, "1"), (38, "1"), (40, "2"), (44, "90.00"),
                 (59, "0"), (60, utc_now())])  # fmt: skip
    assert f(wait_er(s, kept, "I"), 39) == "4"  # PossResend inside the window: its status, not a second order

    # Restarted, the venue knows the same orders (its snapshot and journal keep the window).
    s.logout()
    assert gw.stop() == 0
    gw.start()
    s = next(_connector(gw))("CLIENT1")
    assert status(s, oldest) == ("8", "5", "unknown order")
    assert status(s, kept) == ("4", None, None)

    new_order(s, oldest, "1", "1", "90.00")  # beyond the window, a ClOrdID may be used again
    assert f(wait_er(s, oldest, "0"), 39) == "0"
    cancel(s, oldest + "y", oldest)
    wait_er(s, oldest + "y", "4")
    s.logout()
