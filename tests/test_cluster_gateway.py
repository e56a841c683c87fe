"""The multi-process venue end to end on a three-server JetStream cluster (replicas 3): an active engine, a standby,
an order-entry gateway and a market-data publisher as real processes. FIX clients trade through the gateway exactly
as through the one-process venue and a market-data client sees the exact book; the active engine is killed with
SIGKILL under flow and every order a client sent is answered, every report a client received is the one a
single-process replay of the command stream produces (nothing lost, nothing twice, no ExecID or OrderID reused), and
the market-data clients' books equal the replay's; the same when the server leading the command stream dies."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import simplefix

from engine import Execution, MatchingEngine, Side
from engine.codec import decode
from feeds.client import BookSnapshot, Level, MarketDataClient
from fixclient import FixSession
from roles.config import load
from seqlog.jetstream import JetStreamLogReader, StreamSpec, connect
from tests.cluster_process import RoleProcess, cluster_config
from tests.fixtools import f, new_order, wait_er, wait_msg
from tests.nats_cluster import NatsCluster
from tests.test_cluster_engine import read_stream
from tests.test_recovery import reconnect, summary

pytestmark = pytest.mark.timeout(240)


class Venue:
    """Two engines (the first active), a gateway serving CLIENT1, CLIENT2 and DROP1, a publisher serving MD1, MD2."""

    def __init__(self, tmp_path: Path, nats: NatsCluster, gateways: dict[str, list[str]] | None = None) -> None:
        gateways = gateways or {"gw1": ["CLIENT1", "CLIENT2", "DROP1"]}
        self.config, self.ports = cluster_config(tmp_path, nats.urls, gateways, {"md1": ["MD1", "MD2"]}, replicas=3)
        self.urls = nats.urls
        self.e1 = RoleProcess(self.config, "engine", "e1", tmp_path).start()
        self.e1.wait_for("engine_active")
        self.e1.wait_for("startup_commands_published")  # the money rules and opening balances
        self.e2 = RoleProcess(self.config, "engine", "e2", tmp_path).start()
        self.gateways = {name: RoleProcess(self.config, "gateway", name, tmp_path).start() for name in gateways}
        self.md = RoleProcess(self.config, "md", "md1", tmp_path).start()
        self.sessions: list[FixSession] = []
        self.md_clients: list[MarketDataClient] = []

    def client(self, comp_id: str, password: str, gateway: str = "gw1") -> FixSession:
        s = FixSession("127.0.0.1", self.ports[gateway], comp_id, password, heartbeat=30)
        s.logon()
        self.sessions.append(s)
        return s

    def md_client(self, comp_id: str, password: str) -> MarketDataClient:
        c = MarketDataClient("127.0.0.1", self.ports["md1"], comp_id, password)
        c.logon()
        self.md_clients.append(c)
        return c

    def stop(self) -> None:
        for s in self.sessions:
            s.close()
        for c in self.md_clients:
            c.session.close()
        for p in (*self.gateways.values(), self.md, self.e1, self.e2):
            if p.alive():
                p.stop()

    def replay(self, commands: int) -> tuple[MatchingEngine, dict[int, Execution]]:
        """A single-process replay of the first ``commands`` commands of the stream, and its executions by ExecID."""
        cfg, cluster = load(self.config)
        engine = MatchingEngine(cfg.instruments, cfg.self_trade_prevention)
        out: dict[int, Execution] = {}
        for _, payload in read_stream(self.urls, cluster.commands, commands):
            for ev in engine.process(decode(payload)):
                if isinstance(ev, Execution):
                    out[ev.seq] = ev
        return engine, out


def expected_book(engine: MatchingEngine, symbol: str) -> tuple[int, tuple[Level, ...], tuple[Level, ...]]:
    """(RptSeq, bids, asks) of the replay's book as a market-data client shows it."""
    book = engine.books[symbol]
    ins = book.instrument

    def levels(side: Side) -> tuple[Level, ...]:
        return tuple(Level(ins.ticks_to_price(lv.price), ins.lots_to_qty(lv.qty), lv.count) for lv in book.depth(side))

    return book.rpt_seq, levels(Side.BUY), levels(Side.SELL)


def seen(snapshot: BookSnapshot) -> tuple[int, tuple[Level, ...], tuple[Level, ...]]:
    return snapshot.rpt_seq, snapshot.bids, snapshot.asks


@pytest.fixture
def venue(tmp_path: Path, nats3: NatsCluster) -> Iterator[Venue]:
    v = Venue(tmp_path, nats3)
    yield v
    v.stop()


def test_clients_trade_through_the_gateway_role_and_market_data_shows_the_book(venue: Venue) -> None:
    md = venue.md_client("MD1", "mdpass1")
    md.subscribe("AAPL")
    c1 = venue.client("CLIENT1", "pass1")
    c2 = venue.client("CLIENT2", "pass2")
    new_order(c1, "b1", side="1", qty="10", price="100.00")
    wait_er(c1, "b1", "0")
    new_order(c2, "s1", side="2", qty="4", price="100.00")
    new_ack = wait_er(c2, "s1", "0")
    fill = wait_er(c2, "s1", "F")
    assert (f(fill, 32), f(fill, 31), f(fill, 151), f(fill, 851)) == ("4", "100.00", "0", "2")  # taker
    maker = wait_er(c1, "b1", "F")  # CLIENT1's fill, caused by CLIENT2's order
    assert (f(maker, 32), f(maker, 151), f(maker, 39), f(maker, 851)) == ("4", "6", "1", "1")
    assert f(maker, 527) == f(fill, 527)  # one trade
    assert f(new_ack, 37) != f(maker, 37)
    # A reject is issued by the engine and echoes what the client sent
    new_order(c1, "b2", side="1", qty="1", price="100.005")
    reject = wait_er(c1, "b2", "8")
    assert (f(reject, 58), f(reject, 44), f(reject, 37)) == ("price is not a multiple of the tick size", "100.005",
                                                            "NONE")  # fmt: skip
    # The subscriber saw the order rest, trade and shrink: bid 6 @ 100.00, last 100.00, volume 4
    bid = (Level(Decimal("100.00"), Decimal(6), 1),)
    md.wait_until(lambda: md.book("AAPL").bids == bid, 10, "the bid after the trade")
    book = md.book("AAPL")
    assert (book.asks, book.volume, book.last_trade and book.last_trade.price) == ((), Decimal(4), Decimal("100.00"))
    assert book.phase == "continuous"  # the publisher's W carries the phase
    c1.send("e", [(324, "q1"), (55, "AAPL"), (263, "0")])  # SecurityStatusRequest on the order-entry gateway
    status = wait_msg(c1, "f", t324="q1")
    assert (f(status, 326), f(status, 325)) == ("17", "N")  # continuous trading, an answer


def test_killing_the_active_engine_under_flow_loses_no_acknowledged_order(venue: Venue) -> None:
    flow_with_a_fault(venue, venue.e1.kill)  # SIGKILL
    assert "engine_active" in venue.e2.log_text()  # the standby took over


def test_losing_the_command_streams_leader_under_flow_stops_nothing(venue: Venue, nats3: NatsCluster) -> None:
    _, cluster = load(venue.config)
    leader = stream_leader(venue.urls, cluster.commands.name)
    flow_with_a_fault(venue, lambda: nats3.kill(leader))  # SIGKILL of the server leading the command stream
    assert all(p.alive() for p in (venue.e1, venue.e2, venue.md, *venue.gateways.values()))


def stream_leader(urls: list[str], stream: str) -> int:
    """The index of the server that leads ``stream``."""

    async def ask() -> str:
        nc = await connect(urls, "test-probe")
        try:
            info = await nc.jetstream().stream_info(stream)
        finally:
            await nc.close()
        assert info.cluster is not None and info.cluster.leader is not None
        return info.cluster.leader

    return int(asyncio.run(ask()).removeprefix("n"))


def flow_with_a_fault(venue: Venue, fault: Callable[[], None]) -> None:
    """Two clients trade 300 orders (at most 20 unanswered) while ``fault`` strikes in the middle; then every order
    must have been answered, every report a client received must be the one a single-process replay of the command
    stream produces (and every one it produces for them received), no ExecID or OrderID reused, and the market-data
    subscribers' books must equal the replay's."""
    full = venue.md_client("MD1", "mdpass1")
    full.subscribe("AAPL")
    c1 = venue.client("CLIENT1", "pass1")
    c2 = venue.client("CLIENT2", "pass2")
    received: dict[str, list[simplefix.FixMessage]] = {"CLIENT1": [], "CLIENT2": []}
    answered: set[str] = set()  # ClOrdIDs with a first report
    sent: list[str] = []

    def collect(s: FixSession, timeout: float) -> None:
        msg = s.receive(timeout)
        if msg is not None and f(msg, 35) == "8":
            received[s.sender].append(msg)
            answered.add(f(msg, 11) or "")

    n, window = 300, 20
    for i in range(n):
        # Buys at 99.96-100.03 and sells at 99.98-100.06: some trade, the rest build a book of several levels
        s, side, clordid, price = (c1, "1", f"b{i}", 9996 + i % 8) if i % 2 == 0 else (c2, "2", f"s{i}", 9998 + i % 9)
        new_order(s, clordid, side=side, qty=str(1 + i % 5), price=f"{price / 100:.2f}")
        sent.append(clordid)
        if i == n // 2:
            fault()
        while len(sent) - len(answered & set(sent)) >= window:  # at most `window` orders unanswered
            collect(c1, 0.05)
            collect(c2, 0.05)
            full.pump()
    for s in (c1, c2):  # everything else in flight, until both sessions are quiet
        while True:
            before = len(received[s.sender])
            collect(s, 2.0)
            if len(received[s.sender]) == before:
                break
    assert set(sent) <= answered, f"orders never answered: {sorted(set(sent) - answered)[:10]}"
    reports = received["CLIENT1"] + received["CLIENT2"]
    exec_ids = [int(f(m, 17) or 0) for m in reports]
    assert len(exec_ids) == len(set(exec_ids)), "an ExecID was reused"
    # Every report a client received is the one a single-process replay of the command stream produces, and every
    # report the replay produces for these clients was received.
    engine, replay = venue.replay(_commands_in_stream(venue))
    expected = {seq: ev for seq, ev in replay.items() if ev.order.owner in ("CLIENT1", "CLIENT2")}
    assert sorted(exec_ids) == sorted(expected)
    order_ids: dict[str, str] = {}
    for m in reports:
        ev = expected[int(f(m, 17) or 0)]
        assert (f(m, 11), f(m, 150), f(m, 37)) == (ev.clordid, ev.exec_type.value, str(ev.order.order_id))
        if f(m, 150) == "0":
            order_ids[f(m, 11) or ""] = f(m, 37) or ""
    assert len(set(order_ids.values())) == len(order_ids) == n, "an OrderID was reused or an order not accepted"
    # The subscriber that watched the flow, and one that subscribes now (a snapshot of the publisher's book), both
    # see the replay's book
    want = expected_book(engine, "AAPL")
    assert want[1] and want[2], "the flow should leave orders on both sides"
    full.wait_until(lambda: seen(full.book("AAPL")) == want, 10, "the replay's book")
    top = venue.md_client("MD2", "mdpass2")
    top.subscribe("AAPL", depth=5)
    assert (top.book("AAPL").bids, top.book("AAPL").asks) == (want[1][:5], want[2][:5])
    assert full.gaps == 0


def test_clients_of_a_killed_gateway_and_publisher_recover_after_the_restart(
    tmp_path: Path, nats3: NatsCluster
) -> None:
    v = Venue(tmp_path, nats3, {"gw1": ["CLIENT1"], "gw2": ["CLIENT2", "DROP1"]})
    try:
        md = v.md_client("MD1", "mdpass1")
        md.subscribe("AAPL")
        c1 = v.client("CLIENT1", "pass1", "gw1")
        c2 = v.client("CLIENT2", "pass2", "gw2")
        new_order(c1, "day", side="1", qty="10", price="100.00")
        wait_er(c1, "day", "0")
        new_order(c1, "gtc", side="1", qty="5", price="99.00", tif="1")
        wait_er(c1, "gtc", "0")
        md.wait_until(lambda: len(md.book("AAPL").bids) == 2, 10, "both bids")
        v.gateways["gw1"].kill()
        v.md.kill()
        c1.close()
        md.session.close()
        new_order(c2, "s1", side="2", qty="4", price="100.00")
        wait_er(c2, "s1", "F")  # traded against CLIENT1's Day order while its gateway was down
        v.gateways["gw1"].start()
        v.md.start()
        # CLIENT1 logs on again with its sequence numbers: it gets the fill it missed, then cancel-on-disconnect of
        # the Day order's rest (applied when its gateway came back); the GTC order stays
        back, _, got = reconnect(c1, v.ports["gw1"])
        v.sessions.append(back)
        while len(got) < 2:
            got.append(back.wait_for(lambda m: f(m, 35) == "8", 10))
        assert summary(got) == [("8", "day", "F"), ("8", "day", "4")]
        assert (f(got[0], 32), f(got[0], 151), f(got[1], 151)) == ("4", "6", "0")
        # A subscriber of the restarted publisher sees the book as it is: the GTC bid, the trade
        again = v.md_client("MD1", "mdpass1")
        again.subscribe("AAPL")
        bid = (Level(Decimal("99.00"), Decimal(5), 1),)
        again.wait_until(lambda: again.book("AAPL").bids == bid, 10, "the GTC bid alone")
        book = again.book("AAPL")
        assert (book.asks, book.volume) == ((), Decimal(4))
        engine, _ = v.replay(_commands_in_stream(v))
        assert seen(book) == expected_book(engine, "AAPL")  # the engine's RptSeq too
    finally:
        v.stop()


def _commands_in_stream(venue: Venue) -> int:
    """How many commands the command stream holds now (it is quiet: no wait finds more)."""
    _, cluster = load(venue.config)
    return commands_in_stream(venue.urls, cluster.commands)


def commands_in_stream(urls: list[str], spec: StreamSpec) -> int:
    """How many records ``spec`` holds now (it is quiet: no wait finds more)."""
    reader = JetStreamLogReader(urls, spec)
    count, pos = 0, 0
    try:
        while True:
            records = reader.read(pos, 10_000)
            if not records:
                if not reader.wait(pos, 1.0):
                    return count
                continue
            count += len(records)
            pos = records[-1][1]
    finally:
        reader.close()
