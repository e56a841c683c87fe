"""Instruments sharded over engines (README "Scale-out") on a three-server JetStream cluster (replicas 3): shard ``eq``
(AAPL, MSFT) and shard ``crypto`` (BTC-USD), each with an active engine and a standby, one or two order-entry
gateways and a market-data publisher as real processes.

Clients trade on both shards through one session; requests that name an order reach its shard; a mass cancel
without a symbol and a positions request are answered once for every shard; a gateway restarted after fills on both
shards resends exactly the reports its clients lack; killing one shard's active engine with SIGKILL leaves the other
shard trading, its standby takes over, and afterwards every report a client received is the one a single-process
replay of its shard's command stream produces, OrderIDs and ExecIDs are unique venue-wide, the subscribers' books
equal each replay's, and money is conserved across the shards."""

from __future__ import annotations

import itertools
import time
from decimal import Decimal
from pathlib import Path

import pytest
import simplefix

from engine import Execution, MatchingEngine
from engine.codec import decode
from feeds.client import MarketDataClient
from fixclient import FixSession
from roles.config import ID_SPAN, ClusterConfig, ShardSpec, load
from seqlog.jetstream import JetStreamLogReader, StreamSpec
from tests.cluster_process import RoleProcess, cluster_config
from tests.fixtools import cancel, f, holdings, new_order, replace, utc_now, wait_er, wait_msg
from tests.nats_cluster import NatsCluster
from tests.test_cluster_gateway import expected_book, seen
from tests.test_recovery import reconnect, summary

pytestmark = pytest.mark.timeout(300)

SHARDS = {"eq": ["AAPL", "MSFT"], "crypto": ["BTC-USD"]}


class ShardedVenue:
    """Per shard an active engine (``<shard>1``) and a standby (``<shard>2``); the given gateways; publisher md1."""

    def __init__(
        self, tmp_path: Path, nats: NatsCluster, gateways: dict[str, list[str]],
        engine_env: dict[str, dict[str, str]] | None = None,
    ) -> None:  # fmt: skip
        self.config, self.ports = cluster_config(
            tmp_path, nats.urls, gateways, {"md1": ["MD1", "MD2"]}, replicas=3, shards=SHARDS
        )
        self.urls = nats.urls
        self.cfg, self.cluster = load(self.config)
        self.engines: dict[str, RoleProcess] = {}
        for shard in SHARDS:
            env = (engine_env or {}).get(f"{shard}1")  # (e.g. a failpoint for one engine)
            active = self.engines[f"{shard}1"] = RoleProcess(self.config, "engine", f"{shard}1", tmp_path, shard, env)
            active.start().wait_for("engine_active")
            active.wait_for("startup_commands_published")  # the money rules and this shard's opening balances
        for shard in SHARDS:
            self.engines[f"{shard}2"] = RoleProcess(self.config, "engine", f"{shard}2", tmp_path, shard).start()
        self.gateways = {name: RoleProcess(self.config, "gateway", name, tmp_path).start() for name in gateways}
        self.md = RoleProcess(self.config, "md", "md1", tmp_path).start()
        self.sessions: list[FixSession] = []
        self.md_clients: list[MarketDataClient] = []

    def client(self, comp_id: str, password: str, gateway: str) -> FixSession:
        s = FixSession("127.0.0.1", self.ports[gateway], comp_id, password, heartbeat=30)
        s.logon()
        self.sessions.append(s)
        return s

    def md_client(self) -> MarketDataClient:
        c = MarketDataClient("127.0.0.1", self.ports["md1"], "MD1", "mdpass1")
        c.logon()
        self.md_clients.append(c)
        return c

    def stop(self) -> None:
        for s in self.sessions:
            s.close()
        for c in self.md_clients:
            c.session.close()
        for p in (*self.gateways.values(), self.md, *self.engines.values()):
            if p.alive():
                p.stop()

    def replay(self, shard: ShardSpec) -> tuple[MatchingEngine, dict[int, Execution]]:
        """A single-process replay of ``shard``'s whole command stream, and its executions by ExecID."""
        instruments = [i for i in self.cfg.instruments if i.symbol in shard.symbols]
        engine = MatchingEngine(instruments, self.cfg.self_trade_prevention, id_base=shard.id_base)
        out: dict[int, Execution] = {}
        for payload in stream_records(self.urls, self.cluster.command_stream(shard.name)):
            for ev in engine.process(decode(payload)):
                if isinstance(ev, Execution):
                    out[ev.seq] = ev
        return engine, out


def stream_records(urls: list[str], spec: StreamSpec) -> list[bytes]:
    """Every record of a quiet stream (no wait finds more)."""
    reader = JetStreamLogReader(urls, spec)
    out: list[bytes] = []
    pos = 0
    try:
        while True:
            records = reader.read(pos, 10_000)
            if not records:
                if not reader.wait(pos, 1.0):
                    return out
                continue
            out += [payload for _, _, payload in records]
            pos = records[-1][1]
    finally:
        reader.close()


def shard_of(cluster: ClusterConfig, venue_id: str | None) -> str:
    shard = cluster.shard_of_id(int(venue_id or 0))
    assert shard is not None, f"id {venue_id} is in no shard's range"
    return shard.name


def until_quiet(s: FixSession, quiet: float = 1.5) -> list[simplefix.FixMessage]:
    """Application messages until none comes for ``quiet`` seconds."""
    out = []
    while (msg := s.receive(quiet)) is not None:
        out.append(msg)
    return out


def test_orders_are_routed_to_their_shard_and_a_mass_cancel_and_a_gateway_restart_span_every_shard(
    tmp_path: Path, nats3: NatsCluster
) -> None:
    v = ShardedVenue(tmp_path, nats3, {"gw1": ["CLIENT1"], "gw2": ["CLIENT2", "DROP1"]})
    try:
        cluster = v.cluster
        c1 = v.client("CLIENT1", "pass1", "gw1")
        c2 = v.client("CLIENT2", "pass2", "gw2")
        # One session, orders on both shards: each engine numbers its OrderIDs and ExecIDs in its own range
        new_order(c1, "a1", side="1", qty="10", price="100.00", tif="1")  # GTC: survives cancel-on-disconnect
        aapl = wait_er(c1, "a1", "0")
        new_order(c1, "b1", side="1", qty="0.0100", price="50000.00", symbol="BTC-USD", tif="1")
        btc = wait_er(c1, "b1", "0")
        assert shard_of(cluster, f(aapl, 37)) == shard_of(cluster, f(aapl, 17)) == "eq"
        assert shard_of(cluster, f(btc, 37)) == shard_of(cluster, f(btc, 17)) == "crypto"
        assert int(f(btc, 37) or 0) > ID_SPAN
        # A ClOrdID in use on one shard is refused on the other, as the one-process venue refuses it
        new_order(c1, "a1", side="1", qty="1", price="50000.00", symbol="BTC-USD")
        dup = wait_er(c1, "a1", "8")
        assert (f(dup, 55), f(dup, 58)) == ("BTC-USD", "duplicate ClOrdID")
        # Replace and cancel by ClOrdID reach the order's shard
        new_order(c1, "m1", side="2", qty="5", price="300.00", symbol="MSFT")
        wait_er(c1, "m1", "0")
        replace(c1, "m2", "m1", qty="6", price="301.00", side="2", symbol="MSFT")
        assert f(wait_er(c1, "m2", "5"), 37) is not None
        replace(c1, "b2", "b1", qty="0.0200", price="50000.00", side="1", symbol="BTC-USD")
        replaced = wait_er(c1, "b2", "5")
        assert (f(replaced, 37), f(replaced, 151)) == (f(btc, 37), "0.0200")
        cancel(c1, "m3", "m2", side="2", symbol="MSFT")
        wait_er(c1, "m3", "4")
        new_order(c1, "b5", side="2", qty="0.0001", price="60000.00", symbol="BTC-USD")
        wait_er(c1, "b5", "0")
        c1.send("H", [(11, "b5"), (55, "BTC-USD"), (54, "2")])  # OrderStatusRequest by ClOrdID
        assert (f(wait_er(c1, "b5", "I"), 39)) == "0"
        cancel(c1, "b6", "b5", side="2", symbol="BTC-USD")
        assert shard_of(cluster, f(wait_er(c1, "b6", "4"), 17)) == "crypto"

        # CLIENT1's gateway dies; CLIENT2 trades against both of CLIENT1's GTC orders meanwhile
        v.gateways["gw1"].kill()
        c1.close()
        new_order(c2, "s1", side="2", qty="4", price="100.00")
        wait_er(c2, "s1", "F")
        new_order(c2, "s2", side="2", qty="0.0050", price="50000.00", symbol="BTC-USD")
        wait_er(c2, "s2", "F")
        v.gateways["gw1"].start()
        # Both fills come back by resend, although the AAPL fill's ExecID is below the highest ExecID CLIENT1 had
        # already received (the BTC replace, from the crypto shard's range): the gateway compares per shard
        back, _, got = reconnect(c1, v.ports["gw1"])
        v.sessions.append(back)
        deadline = time.monotonic() + 10
        while len([m for m in got if f(m, 35) == "8"]) < 2 and time.monotonic() < deadline:
            msg = back.receive(1.0)
            if msg is not None:
                got.append(msg)
        fills = sorted(summary([m for m in got if f(m, 35) == "8"]))
        assert fills == [("8", "a1", "F"), ("8", "b2", "F")], fills

        # RequestForPositions: one answer, the balances summed over the shards (each holds half of the opening USD),
        # the positions of both shards' instruments (MSFT: its order was cancelled)
        held = holdings(back)
        assert set(held.positions) == {"AAPL", "MSFT", "BTC-USD"} and held.positions["MSFT"]["net"] == "0"
        assert (held.positions["AAPL"]["net"], Decimal(held.positions["BTC-USD"]["net"])) == ("4", Decimal("0.005"))
        usd = sum(Decimal(x) for x in held.balances["USD"])
        assert Decimal(9_999_000) < usd < Decimal(10_000_000), held.balances  # 10,000,000 less the cost of 2 buys
        assert sum(Decimal(x) for x in held.balances["BTC"]) == Decimal("100.005")  # on the crypto shard only
        # A mass cancel of every instrument: one OrderMassCancelReport for all shards, then every cancellation
        back.send("q", [(11, "mc1"), (530, "7"), (60, utc_now())])
        report = wait_msg(back, "r", t11="mc1")
        assert (f(report, 531), f(report, 533)) == ("7", "2")
        cancelled = [wait_msg(back, "8", t150="4") for _ in range(2)]
        assert sorted(f(m, 11) for m in cancelled) == ["a1", "b2"]
        assert {shard_of(cluster, f(m, 17)) for m in cancelled} == {"eq", "crypto"}
        # Nothing else about the mass cancel follows: an order on each shard is answered next, with no second r
        new_order(back, "a9", side="1", qty="1", price="90.00")
        new_order(back, "b9", side="1", qty="0.0001", price="40000.00", symbol="BTC-USD")
        rest = []
        while {"a9", "b9"} - {f(m, 11) for m in rest if f(m, 150) == "0"}:
            msg = back.receive(10)
            assert msg is not None, f"no ack of a9 and b9: {summary(rest)}"
            rest.append(msg)
        assert [f(m, 35) for m in rest] == ["8", "8"], summary(rest)
    finally:
        v.stop()


def test_killing_one_shards_engine_leaves_the_other_trading_and_loses_no_acknowledged_order(
    tmp_path: Path, nats3: NatsCluster
) -> None:
    v = ShardedVenue(tmp_path, nats3, {"gw1": ["CLIENT1", "CLIENT2", "DROP1"]})
    try:
        full = v.md_client()
        full.subscribe("AAPL")
        full.subscribe("BTC-USD")
        c1 = v.client("CLIENT1", "pass1", "gw1")
        c2 = v.client("CLIENT2", "pass2", "gw1")
        received: dict[str, list[tuple[float, simplefix.FixMessage]]] = {"CLIENT1": [], "CLIENT2": []}
        answered: set[str] = set()
        sent: list[str] = []

        def collect(s: FixSession, timeout: float) -> None:
            msg = s.receive(timeout)
            if msg is not None and f(msg, 35) == "8":
                received[s.sender].append((time.monotonic(), msg))
                answered.add(f(msg, 11) or "")

        n, window, killed_at = 320, 20, 0.0
        for i in range(n):
            # Buys and sells around 100.00 (AAPL) and 50,000.00 (BTC-USD): some trade, the rest build books
            btc = i % 4 >= 2
            buy = i % 2 == 0
            s = c1 if buy else c2
            ticks = 9996 + i % 8 if buy else 9998 + i % 9
            price = f"{ticks / 100:.2f}" if not btc else f"{50000 + (ticks - 10000) / 100:.2f}"
            qty = str(1 + i % 5) if not btc else f"{(1 + i % 5) / 10000:.4f}"
            clordid = f"{'b' if btc else 'a'}{i}"
            new_order(s, clordid, side="1" if buy else "2", qty=qty, price=price, symbol="BTC-USD" if btc else "AAPL")
            sent.append(clordid)
            if i == n // 2:
                v.engines["eq1"].kill()  # SIGKILL of the eq shard's active engine
                killed_at = time.monotonic()
            while len(sent) - len(answered & set(sent)) >= window:
                collect(c1, 0.05)
                collect(c2, 0.05)
                full.pump()
        for s in (c1, c2):
            while True:
                before = len(received[s.sender])
                collect(s, 2.0)
                if len(received[s.sender]) == before:
                    break
        assert set(sent) <= answered, f"orders never answered: {sorted(set(sent) - answered)[:10]}"
        v.engines["eq2"].wait_for("engine_active", 5)  # the eq standby took over
        assert "engine_active" not in v.engines["crypto2"].log_text()  # the crypto shard never failed over
        # The crypto shard kept trading while the eq shard had no engine: in the longest silence of AAPL reports
        # (the fail-over, after the kill), BTC-USD reports kept arriving
        times = sorted((t, f(m, 55)) for r in received.values() for t, m in r)
        aapl = [t for t, symbol in times if symbol == "AAPL"]
        gap_start, gap_end = max(itertools.pairwise(aapl), key=lambda g: g[1] - g[0])
        assert gap_start >= killed_at - 1.0 and gap_end - gap_start > 0.5, (gap_start - killed_at, gap_end - gap_start)
        assert sum(symbol == "BTC-USD" and gap_start < t < gap_end for t, symbol in times) >= 2

        reports = [m for r in received.values() for _, m in r]
        exec_ids = [int(f(m, 17) or 0) for m in reports]
        assert len(exec_ids) == len(set(exec_ids)), "an ExecID was reused"
        engines: dict[str, MatchingEngine] = {}
        expected: dict[int, Execution] = {}
        for shard in v.cluster.shards:
            engines[shard.name], replay = v.replay(shard)
            expected.update({seq: ev for seq, ev in replay.items() if ev.order.owner in ("CLIENT1", "CLIENT2")})
        assert sorted(exec_ids) == sorted(expected)  # every report received, none the replays lack
        order_ids: dict[str, str] = {}
        for m in reports:
            ev = expected[int(f(m, 17) or 0)]
            assert (f(m, 11), f(m, 150), f(m, 37)) == (ev.clordid, ev.exec_type.value, str(ev.order.order_id))
            if f(m, 150) == "0":
                order_ids[f(m, 11) or ""] = f(m, 37) or ""
        assert len(set(order_ids.values())) == len(order_ids) == n, "an OrderID was reused or an order not accepted"
        # The subscriber's books equal each shard's replay
        for symbol, shard in (("AAPL", "eq"), ("BTC-USD", "crypto")):
            want = expected_book(engines[shard], symbol)
            assert want[1] and want[2], f"the flow should leave {symbol} orders on both sides"
            full.wait_until(lambda s=symbol, w=want: seen(full.book(s)) == w, 10, f"the replay's {symbol} book")
        assert full.gaps == 0
        # Money: each shard's ledger balances, and the shards together hold exactly the config's opening balances
        for shard, engine in engines.items():
            assert engine.ledger is not None
            assert set(engine.ledger.imbalance().values()) == {0}, shard
        for asset in ("USD", "AAPL", "BTC"):
            opened = sum(b.get(asset, 0) for b in v.cfg.opening_balances.values())
            funded = sum(e.ledger.net_funding.get(asset, 0) for e in engines.values() if e.ledger is not None)
            assert funded == opened > 0, asset
        usd = [e.ledger.net_funding.get("USD", 0) for e in engines.values() if e.ledger is not None]
        assert len(usd) == 2 and all(u > 0 for u in usd), "USD is used by both shards: both hold a share"
        crypto = engines["crypto"].ledger
        assert crypto is not None and crypto.net_funding.get("AAPL", 0) == 0  # AAPL trades on eq only
    finally:
        v.stop()
