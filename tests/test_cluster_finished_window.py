"""The window of finished orders on the multi-process venue (rules of engagement, "Order identity"; README "Scale-out"):
the order-entry gateway knows a session's orders as the shards' engines do (working ones and the last N finished ones
per shard), so an order beyond the window is forgotten there too: a PossResend with its ClOrdID is a new order, and
its ClOrdIDs may be used again on another shard; inside the window they may not. The gateway's tables hold no more
than that, and a restarted gateway rebuilds the same tables from the result streams.

Two shards (``eq``: AAPL, MSFT; ``crypto``: BTC-USD), one active engine each, one gateway, a three-server JetStream
cluster."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from fixclient import FixSession
from roles.config import load
from tests.cluster_process import RoleProcess, cluster_config
from tests.fixtools import cancel, f, new_order, utc_now, wait_er
from tests.nats_cluster import NatsCluster
from tests.test_recovery import reconnect
from tests.test_trading_day_e2e import at, midday_zone

pytestmark = pytest.mark.timeout(240)

WINDOW = 2
SHARDS = {"eq": ["AAPL", "MSFT"], "crypto": ["BTC-USD"]}


def orders_known(gateway: RoleProcess) -> list[dict[str, int]]:
    """The sizes of the gateway's order tables from each of its ``orders_known`` log lines (start and stop)."""
    lines = [json.loads(line) for line in gateway.log_text().splitlines() if '"orders_known"' in line]
    return [{k: line[k] for k in ("orders", "clordids", "inflight")} for line in lines]


def poss_resend(s: FixSession, clordid: str, symbol: str, qty: str, price: str) -> None:
    s.send("D", [(97, "Y"), (11, clordid), (1, "ACC1"), (55, symbol), (54, "1"), (38, qty), (40, "2"),
                 (44, price), (59, "1"), (60, utc_now())])  # fmt: skip


def btc(s: FixSession, clordid: str) -> None:
    """A resting GTC buy on the other shard (cancel-on-disconnect leaves it)."""
    new_order(s, clordid, side="1", qty="0.0100", price="50000.00", symbol="BTC-USD", tif="1")


def test_the_gateway_forgets_orders_beyond_the_window_like_the_engines_and_rebuilds_the_same_tables(
    tmp_path: Path, nats3: NatsCluster
) -> None:
    config, ports = cluster_config(tmp_path, nats3.urls, {"gw1": ["CLIENT1"]}, {}, replicas=3, shards=SHARDS,
                                   overrides={"order_entry.finished_orders": WINDOW})  # fmt: skip
    assert load(config)[0].finished_orders == WINDOW
    processes = []
    try:
        for shard in SHARDS:
            engine = RoleProcess(config, "engine", f"{shard}1", tmp_path, shard).start()
            processes.append(engine)
            engine.wait_for("startup_commands_published")
        gw = RoleProcess(config, "gateway", "gw1", tmp_path).start()
        processes.append(gw)
        s = FixSession("127.0.0.1", ports["gw1"], "CLIENT1", "pass1", heartbeat=30)
        s.logon()

        new_order(s, "w", qty="1", price="90.00", tif="1")  # working (GTC): never forgotten
        wait_er(s, "w", "0")
        for i in range(WINDOW + 2):  # WINDOW + 2 finished orders on eq: a0 and a1 fall out of the window
            new_order(s, f"a{i}", qty="1", price="90.00")
            wait_er(s, f"a{i}", "0")
            cancel(s, f"a{i}x", f"a{i}")
            wait_er(s, f"a{i}x", "4")

        # Inside the window: a PossResend is answered with the order's status, the ClOrdID is refused elsewhere.
        poss_resend(s, "a3", "AAPL", "1", "90.00")
        assert f(wait_er(s, "a3", "I"), 39) == "4"
        btc(s, "a3x")
        assert f(wait_er(s, "a3x", "8"), 58) == "duplicate ClOrdID"
        # Beyond it: forgotten, as by the one-process venue. A PossResend is a new order, and the ClOrdIDs of the
        # order's chain may be used again (here on the other shard).
        poss_resend(s, "a0", "BTC-USD", "0.0100", "50000.00")
        assert f(wait_er(s, "a0", "0"), 39) == "0"
        btc(s, "a1x")
        assert f(wait_er(s, "a1x", "0"), 39) == "0"

        # eq knows w, a2 (a2, a2x) and a3 (a3, a3x); crypto knows a0 and a1x, working.
        expected = {"orders": 5, "clordids": 7, "inflight": 0}
        s.logout()
        assert gw.stop() == 0
        assert orders_known(gw)[-1] == expected
        gw.start()
        assert orders_known(gw)[-1] == expected  # rebuilt from the result streams
        s, _, _ = reconnect(s, ports["gw1"])
        poss_resend(s, "a2", "AAPL", "1", "90.00")
        assert f(wait_er(s, "a2", "I"), 39) == "4"
        btc(s, "a2x")
        assert f(wait_er(s, "a2x", "8"), 58) == "duplicate ClOrdID"
        btc(s, "a1")
        assert f(wait_er(s, "a1", "0"), 39) == "0"
        new_order(s, "a0x", qty="1", price="90.00", tif="1")  # the eq engine forgot it too (its window is the config's)
        assert f(wait_er(s, "a0x", "0"), 39) == "0"
        s.logout()
    finally:
        for p in reversed(processes):
            if p.alive():
                p.stop()


END_AT = 20  # seconds after the test starts: the end of the trading day


def test_the_gateway_forgets_every_finished_order_at_the_end_of_the_day_but_not_working_ones(
    tmp_path: Path, nats3: NatsCluster
) -> None:
    zone, local = midday_zone()
    start = time.monotonic()
    overrides = {
        "order_entry.finished_orders": WINDOW,
        "venue.timezone": zone,
        "schedule.end_of_day": at(local, END_AT),
    }
    config, ports = cluster_config(tmp_path, nats3.urls, {"gw1": ["CLIENT1"]}, {}, replicas=3, overrides=overrides)
    processes = []
    try:
        engine = RoleProcess(config, "engine", "e1", tmp_path).start()
        processes.append(engine)
        engine.wait_for("startup_commands_published")
        gw = RoleProcess(config, "gateway", "gw1", tmp_path).start()
        processes.append(gw)
        s = FixSession("127.0.0.1", ports["gw1"], "CLIENT1", "pass1", heartbeat=30)
        s.logon()
        new_order(s, "g", qty="1", price="90.00", tif="1")  # GTC: stays known over the night
        wait_er(s, "g", "0")
        new_order(s, "day", qty="1", price="90.00")  # Day: expires at the end of the day
        wait_er(s, "day", "0")
        for clordid in ("d0", "d1"):
            new_order(s, clordid, qty="1", price="90.00")
            wait_er(s, clordid, "0")
            cancel(s, clordid + "x", clordid)
            wait_er(s, clordid + "x", "4")
        poss_resend(s, "d1", "AAPL", "1", "90.00")
        assert f(wait_er(s, "d1", "I"), 39) == "4"  # known today
        assert time.monotonic() - start < END_AT - 1, "the venue started too slowly for the schedule"

        wait_er(s, "day", "C", timeout=END_AT + 30)  # the end of the day (its events come in one result)
        poss_resend(s, "d1", "AAPL", "1", "90.00")  # yesterday's finished order: forgotten, a new order
        assert f(wait_er(s, "d1", "0"), 39) == "0"
        poss_resend(s, "g", "AAPL", "1", "90.00")  # the GTC order still works: known
        assert f(wait_er(s, "g", "I"), 39) == "0"

        expected = {"orders": 2, "clordids": 2, "inflight": 0}  # g and the new d1
        s.logout()
        assert gw.stop() == 0
        assert orders_known(gw)[-1] == expected
        gw.start()
        assert orders_known(gw)[-1] == expected  # the end of the day replayed from the result stream
    finally:
        for p in reversed(processes):
            if p.alive():
                p.stop()
