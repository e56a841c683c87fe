"""Capture the example messages of docs/rules-of-engagement.md from a real gateway.

    .venv/bin/python docs/examples.py            # from the repository root; prints Markdown to stdout

The script starts the gateway (``python -m gateway serve``) on the shipped demo configuration with its own data
directory in a temporary directory and free loopback ports (with ``tests/gateway_process.py``), lets it verify the
clients' passwords once (the first sight of a password is refused while the venue verifies it: one example shows
that), runs a fixed exchange of messages through :class:`fixclient.FixSession` clients (CLIENT1 to CLIENT5, MD1 to
MD3; the kill switch and the phase actions through the operator channel), then the message-rate and slow-consumer
probe examples on a second gateway with a low message limit and a small max_backlog,
records every message each client sends and receives, stops the gateways with SIGTERM and prints each example as a
Markdown section: one line per message, SOH shown as ``|``, prefixed ``C->V`` (client to venue) or ``V->C`` (venue
to client). Heartbeats and TestRequests are left out except in the example about them.

Exit status 0 if every expected answer arrived, 1 otherwise (with the reason on stderr).
"""

from __future__ import annotations

import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterable
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import simplefix  # noqa: E402

from fixclient import FixSession, field, utc_now  # noqa: E402
from gateway.operator import call  # noqa: E402
from tests.gateway_process import GatewayProcess, metric_value, start_on_free_ports  # noqa: E402

DEMO_CONFIG = ROOT / "config" / "venue.toml"
PASSWORDS = {**{f"CLIENT{i}": f"pass{i}" for i in range(1, 10)}, **{f"MD{i}": f"mdpass{i}" for i in range(1, 10)}}
ALL_TYPES = ("0", "1", "2", "4", "7", "8", "B")
TIMEOUT = 30.0  # a deadline: under load a logon (the password check) can take longer than 10 s


# ---------------------------------------------------------------------------- recording clients


def _text(msg: simplefix.FixMessage) -> str:
    return "|".join(f"{t.decode()}={v.decode()}" for t, v in msg.pairs)


class _RecordingParser(simplefix.FixParser):  # type: ignore[misc]
    def __init__(self, sink: Callable[[simplefix.FixMessage], None]) -> None:
        super().__init__()
        self._sink = sink

    def get_message(self) -> simplefix.FixMessage | None:
        msg = super().get_message()
        if msg is not None:
            self._sink(msg)
        return msg


Entry = tuple[int, str, str, str]  # (when sent, ns since the epoch; direction; MsgType; text)


def _sent_at(msg: simplefix.FixMessage) -> int:
    """The venue's SendingTime (52, microseconds) as ns since the epoch: same clock as the client's, same host."""
    stamp = datetime.strptime(field(msg, 52) or "", "%Y%m%d-%H:%M:%S.%f").replace(tzinfo=UTC)
    return int(stamp.timestamp()) * 1_000_000_000 + stamp.microsecond * 1000


class Client(FixSession):
    """A FixSession that keeps every message it sends and receives (see :data:`Entry`)."""

    def __init__(self, port: int, comp_id: str, password: str | None = None, **kwargs: Any) -> None:
        super().__init__("127.0.0.1", port, comp_id, password or PASSWORDS[comp_id], **kwargs)
        self.log: list[Entry] = []

    def connect(self, timeout: float = 5.0) -> None:
        super().connect(timeout)
        self.parser = _RecordingParser(lambda m: self.log.append((_sent_at(m), "V->C", field(m, 35) or "", _text(m))))

    def send_raw(self, data: bytes) -> None:
        text = data.decode().rstrip("\x01").replace("\x01", "|")
        msg_type = next((p[3:] for p in text.split("|") if p.startswith("35=")), "")
        self.log.append((time.time_ns(), "C->V", msg_type, text))
        super().send_raw(data)

    def wait(self, msg_type: str, timeout: float = TIMEOUT, **tags: str) -> simplefix.FixMessage:
        """The next message of ``msg_type`` whose tags match (``t150="F"`` means 150=F)."""
        want = {int(k[1:]): v for k, v in tags.items()}

        def match(m: simplefix.FixMessage) -> bool:
            return field(m, 35) == msg_type and all(field(m, t) == v for t, v in want.items())

        return self.wait_for(match, timeout, admin=msg_type in "012345A")

    def count(self, msg_type: str, n: int, timeout: float = TIMEOUT) -> None:
        """Read until ``n`` more messages of ``msg_type`` have arrived."""
        for _ in range(n):
            self.wait(msg_type, timeout)


class Example:
    """One printed example: the messages the given clients logged while it ran."""

    def __init__(self, title: str, note: str, clients: Iterable[Client], keep: str = "") -> None:
        self.title, self.note, self.clients, self.keep = title, note, list(clients), keep
        self.marks: dict[int, int] = {}

    def __enter__(self) -> Example:
        self.marks = {id(c): len(c.log) for c in self.clients}
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            return
        print(f"### {self.title}\n")
        if self.note:
            print(textwrap.fill(self.note, width=118, break_on_hyphens=False) + "\n")
        print("```text")
        entries: list[Entry] = []
        for c in self.clients:
            entries += c.log[self.marks[id(c)] :]
        entries.sort(key=lambda e: e[0])  # in the order they were sent, whichever side sent them
        for _, direction, msg_type, text in entries:
            if msg_type in ("0", "1") and msg_type not in self.keep:
                continue
            print(f"{direction} {text}")
        print("```\n")


# ---------------------------------------------------------------------------- the exchange


def order(c: Client, clordid: str, side: str, qty: str, price: str | None, symbol: str = "AAPL", tif: str = "0",
          extra: Iterable[tuple[int, Any]] = ()) -> int:  # fmt: skip
    account = "ACC" + c.sender.removeprefix("CLIENT")
    fields: list[tuple[int, Any]] = [
        (11, clordid), (1, account), (55, symbol), (54, side), (38, qty), (40, "2" if price else "1"), (44, price),
        (59, tif), *extra, (60, utc_now()),
    ]  # fmt: skip
    return c.send("D", fields)


def md_request(
    c: Client, req_id: str, symbols: list[str], depth: int, types: Iterable[str], req_type: str = "1"
) -> None:
    types = list(types)
    fields: list[tuple[int, Any]] = [(262, req_id), (263, req_type), (264, depth)]
    if req_type == "1":
        fields.append((265, 1))
    fields += [(267, len(types)), *((269, t) for t in types), (146, len(symbols)), *((55, s) for s in symbols)]
    c.send("V", fields)


def verify_passwords(oe: int, md: int) -> None:
    """Log each example client on once, unrecorded: the venue refuses a password it has not verified yet and
    verifies it meanwhile, so without this the examples would show refused first attempts (a varying number)."""
    for comp_id in ("CLIENT1", "CLIENT2", "CLIENT4", "MD1", "MD2"):
        s = FixSession("127.0.0.1", md if comp_id.startswith("MD") else oe, comp_id, PASSWORDS[comp_id], reset_seq=True)
        s.logon(TIMEOUT)
        s.logout()


def positions_request(c: Client, req_id: str, account: str) -> None:
    today = datetime.now(UTC).strftime("%Y%m%d")
    c.send("AN", [(710, req_id), (724, "0"), (1, account), (581, "1"), (715, today), (60, utc_now())])


def operator(gw: GatewayProcess, action: str, **params: Any) -> dict[str, Any]:
    """A request on the gateway's operator channel, as ``fixgw admin`` sends it (the demo token)."""
    return call(f"http://127.0.0.1:{gw.ports['operator']}", "demo-operator-token", action, params)


def run(gw: GatewayProcess) -> None:
    oe, md = gw.oe_port, gw.md_port
    verify_passwords(oe, md)
    c1 = Client(oe, "CLIENT1", reset_seq=True)
    c2 = Client(oe, "CLIENT2", reset_seq=True)
    m1 = Client(md, "MD1", reset_seq=True)
    m2 = Client(md, "MD2", reset_seq=True)

    with Example("Logon", "ResetSeqNumFlag=Y: both sides start again at MsgSeqNum 1.", [c1]):
        c1.logon(TIMEOUT)
    c2.logon(TIMEOUT)
    m1.logon(TIMEOUT)
    m2.logon(TIMEOUT)

    bad = Client(oe, "CLIENT3", password="wrong", reset_seq=True)
    refused = Example(
        "Logon refused",
        "A wrong password: Logout with the one Text of every credential refusal, then the venue closes the connection.",
        [bad],
    )
    with refused, suppress(Exception):  # SessionError: expected
        bad.logon(TIMEOUT, retry=False)
    bad.close()

    c5 = Client(oe, "CLIENT5", reset_seq=True)
    with Example(
        "Logon with a password the venue has not verified yet",
        "The first Logon with CLIENT5's password since the venue started: refused with the same Text while the venue "
        "verifies the password off its main thread; the same Logon a moment later is accepted.",
        [c5],
    ):
        verified = metric_value(gw.metrics(), "fixgw_logon_verifications_total", result="ok")
        with suppress(Exception):  # SessionError: expected
            c5.logon(TIMEOUT, retry=False)
        c5.close()
        deadline = time.monotonic() + TIMEOUT
        while metric_value(gw.metrics(), "fixgw_logon_verifications_total", result="ok") <= verified:
            if time.monotonic() > deadline:
                raise TimeoutError("the venue did not verify CLIENT5's password")
            time.sleep(0.05)
        c5.next_out = 1
        c5.logon(TIMEOUT, retry=False)
    c5.logout()

    with Example(
        "MarketDataRequest and snapshots",
        "MD1 subscribes to two symbols, full depth, every entry type: one W per symbol (empty books; the volume "
        "entry is always there).",
        [m1],
    ):
        md_request(m1, "md1-book", ["AAPL", "MSFT"], 0, ALL_TYPES)
        m1.count("W", 2)

    with Example(
        "NewOrderSingle and ExecutionReport (New)",
        "A DAY limit order rests; MD1 receives the new bid level.",
        [c1, m1],
    ):
        order(c1, "ord-1", "1", "10", "100.00")
        c1.wait("8", t11="ord-1", t150="0")
        m1.count("X", 1)

    with Example(
        "A trade: taker and maker ExecutionReports and the market data",
        "CLIENT2 sells 4 into CLIENT1's bid. CLIENT2 gets New then Trade with LastLiquidityInd 2 (taker); CLIENT1 "
        "gets Trade with LastLiquidityInd 1 (maker). Both carry the trade id in SecondaryExecID (527) and their fee "
        "in Commission (12): the 1 bp taker fee on 400 USD, 0.04 USD, and the maker's 0. MD1 gets one X: the trade "
        "(with TradeID and AggressorSide), open/high/low/volume, then the changed bid level.",
        [c1, c2, m1],
    ):
        order(c2, "ord-2", "2", "4", "100.00")
        c2.wait("8", t11="ord-2", t150="F")
        c1.wait("8", t11="ord-1", t150="F")
        m1.count("X", 1)

    with Example(
        "A fill with a maker rebate",
        "On BTC-USD the taker pays 5 bp and the maker earns a 1 bp rebate. CLIENT1 offers 0.0100 BTC at 30,000.00; "
        "CLIENT2 bids 30,100.00 and trades at 30,000.00: 300 USD, Commission 0.15 USD for the taker and -0.03 USD "
        "(a rebate) for the maker, in CommCurrency (479) USD.",
        [c1, c2],
    ):
        order(c1, "ord-btc-1", "2", "0.0100", "30000.00", symbol="BTC-USD")
        c1.wait("8", t11="ord-btc-1", t150="0")
        order(c2, "ord-btc-2", "1", "0.0100", "30100.00", symbol="BTC-USD")
        c2.wait("8", t11="ord-btc-2", t150="F")
        c1.wait("8", t11="ord-btc-1", t150="F")

    with Example(
        "ExecutionReport (Rejected): insufficient funds",
        "100 BTC at 100,000.00 would hold 10,000,000 USD plus the 5 bp taker fee, more than CLIENT2 has: "
        "OrdRejReason 3 (order exceeds limit), nothing held.",
        [c2],
    ):
        order(c2, "ord-btc-3", "1", "100", "100000.00", symbol="BTC-USD")
        c2.wait("8", t11="ord-btc-3", t150="8")

    with Example(
        "RequestForPositions: the ack and the reports",
        "CLIENT2 asks for its account's balances and positions. The ack counts the reports; then one PositionReport "
        "per asset (LongQty available, ShortQty held, CASH the balance) and one per instrument (the net position as "
        "LongQty or ShortQty, the mark in SettlPrice, the average cost in PriorSettlPrice, FMTM the unrealized and "
        "CASH the realized PnL, fees included, in Currency). CLIENT2 is short 4 AAPL sold at 100.00 and long 0.0100 "
        "BTC bought at 30,000.00.",
        [c2],
    ):
        positions_request(c2, "pos-1", "ACC2")
        ack = c2.wait("AO", t710="pos-1")
        c2.count("AP", int(field(ack, 727) or 0))

    with Example(
        "RequestForPositionsAck (rejected)",
        "Another session's account: PosReqResult 3 (not authorized), PosReqStatus 2 (rejected), no reports.",
        [c2],
    ):
        positions_request(c2, "pos-2", "ACC1")
        c2.wait("AO", t710="pos-2")

    with Example(
        "A depth-limited view",
        "MD2 subscribes to the top 2 bid/offer levels of AAPL (W with MDEntryPositionNo). CLIENT1 adds a bid at 99.00 "
        "(MD2: NEW at position 2), then one at 99.50, which pushes 99.00 out of MD2's top 2: MD2 gets DELETE 99.00 "
        "and NEW 99.50 at position 2, while MD1 (full depth) gets just the new level.",
        [c1, m1, m2],
    ):
        md_request(m2, "md2-top2", ["AAPL"], 2, ["0", "1"])
        m2.count("W", 1)
        order(c1, "ord-3", "1", "5", "99.00")
        c1.wait("8", t11="ord-3", t150="0")
        m1.count("X", 1)
        m2.count("X", 1)
        order(c1, "ord-4", "1", "5", "99.50")
        c1.wait("8", t11="ord-4", t150="0")
        m1.count("X", 1)
        m2.count("X", 1)

    with Example("ExecutionReport (Rejected)", "A price off the 0.01 tick: OrdRejReason 99 and the Text.", [c1]):
        order(c1, "ord-5", "1", "1", "100.005")
        c1.wait("8", t11="ord-5", t150="8")

    with Example(
        "OrderCancelReplaceRequest",
        "Quantity down from 10 to 8 at the same price: the order keeps its time priority (4 filled, 4 left).",
        [c1, m1],
    ):
        c1.send("G", [(11, "ord-1r"), (41, "ord-1"), (55, "AAPL"), (54, "1"), (38, "8"), (40, "2"), (44, "100.00"),
                      (59, "0"), (60, utc_now())])  # fmt: skip
        c1.wait("8", t11="ord-1r", t150="5")
        m1.count("X", 1)

    with Example(
        "OrderCancelReject (unsupported side)",
        "A replace naming Side 5 (sell short) for the buy order is refused before the order is looked up "
        "(37=NONE, 39=8, CxlRejReason 99); the order stays as it was.",
        [c1],
    ):
        c1.send("G", [(11, "ord-1x"), (41, "ord-1r"), (55, "AAPL"), (54, "5"), (38, "8"), (40, "2"), (44, "100.00"),
                      (59, "0"), (60, utc_now())])  # fmt: skip
        c1.wait("9", t11="ord-1x")

    with Example("OrderStatusRequest", "Asked by the original ClOrdID, answered in its terms (ExecType I).", [c1]):
        c1.send("H", [(11, "ord-1"), (55, "AAPL"), (54, "1")])
        c1.wait("8", t11="ord-1", t150="I")

    with Example("OrderCancelRequest", "Cancel by OrigClOrdID; MD1 sees the level deleted.", [c1, m1]):
        c1.send("F", [(11, "ord-1c"), (41, "ord-1r"), (55, "AAPL"), (54, "1"), (60, utc_now())])
        c1.wait("8", t11="ord-1c", t150="4")
        m1.count("X", 1)

    with Example(
        "OrderCancelReject", "The same order again: it is already cancelled (CxlRejReason 0, too late).", [c1]
    ):
        c1.send("F", [(11, "ord-1c2"), (41, "ord-1r"), (55, "AAPL"), (54, "1"), (60, utc_now())])
        c1.wait("9", t11="ord-1c2")

    order(c1, "ord-6", "2", "3", "50.00", symbol="MSFT", tif="1")
    c1.wait("8", t11="ord-6", t150="0")
    m1.count("X", 1)
    m2.drain(0.3)
    with Example(
        "OrderMassCancelRequest and OrderMassCancelReport",
        "All of CLIENT1's orders (two AAPL bids, one GTC MSFT offer): the report comes first, then one "
        "ExecutionReport per cancelled order; MD1 gets one X per symbol.",
        [c1, m1],
    ):
        c1.send("q", [(11, "mass-1"), (530, "7"), (60, utc_now())])
        c1.wait("r", t11="mass-1")
        c1.count("8", 3)
        m1.count("X", 2)

    with Example(
        "OrderMassCancelReport (rejected)", "MassCancelRequestType 1 for a symbol the venue does not list.", [c1]
    ):
        c1.send("q", [(11, "mass-2"), (530, "1"), (55, "NOPE"), (60, utc_now())])
        c1.wait("r", t11="mass-2")

    with Example("BusinessMessageReject", "A MarketDataRequest sent on an order-entry session.", [c1]):
        md_request(c1, "wrong-port", ["AAPL"], 0, ["0"])
        c1.wait("j")

    with Example("Reject (session level)", "A NewOrderSingle without ClOrdID (11), a required field.", [c1]):
        c1.send("D", [(1, "ACC1"), (55, "AAPL"), (54, "1"), (38, "1"), (40, "2"), (44, "1.00"), (60, utc_now())])
        c1.wait("3")

    with Example("MarketDataRequestReject", "A symbol the venue does not list.", [m1]):
        md_request(m1, "md1-nope", ["NOPE"], 0, ALL_TYPES)
        m1.wait("Y")

    c5 = Client(oe, "CLIENT5", reset_seq=True)
    c5.logon(TIMEOUT)
    with Example(
        "The kill switch",
        "CLIENT5 has a DAY bid resting when the operator kills account ACC5 (`fixgw admin kill ACC5`, not a FIX "
        "message): the bid is cancelled with the kill switch's Text, and a new order is refused with OrdRejReason 0 "
        "until the operator revives the account.",
        [c5],
    ):
        order(c5, "ord-k1", "1", "1", "95.00")
        c5.wait("8", t11="ord-k1", t150="0")
        answer = operator(gw, "kill", account="ACC5")
        assert answer.get("cancelled") == 1, answer
        c5.wait("8", t11="ord-k1", t150="4")
        order(c5, "ord-k2", "1", "1", "95.00")
        c5.wait("8", t11="ord-k2", t150="8")
    assert operator(gw, "revive", account="ACC5").get("ok")
    c5.logout()

    c4 = Client(oe, "CLIENT4", reset_seq=True)
    c4.logon(TIMEOUT)
    order(c4, "ord-7", "1", "1", "90.00")
    c4.wait("8", t11="ord-7", t150="0")
    with Example(
        "Cancel on disconnect, then resend at the next logon",
        "CLIENT4's connection drops with a DAY order resting (nothing is sent on the closed connection). It logs on "
        "again without resetting sequence numbers and waits for the venue's Logon, whose MsgSeqNum shows a gap; it "
        "asks for it with ResendRequest. The venue replays the stored cancellation (PossDupFlag=Y, OrigSendingTime) "
        "and gap-fills its own Logon, an admin message.",
        [c4],
    ):
        assert c4.sock is not None
        c4.sock.close()
        c4.sock = None
        time.sleep(1.0)  # the gateway notices the disconnect and applies cancel-on-disconnect
        back = Client(oe, "CLIENT4", next_out=c4.next_out, expected_in=c4.expected_in)
        back.log = c4.log
        back.logon(TIMEOUT)
        back.wait("8", t11="ord-7", t150="4")
        back.wait_for(lambda m: field(m, 35) == "4", TIMEOUT, admin=True)
    back.logout()

    c3 = Client(oe, "CLIENT3", reset_seq=True)
    c3.logon(TIMEOUT)
    parties = [(453, 2), (448, "TRADER7"), (447, "D"), (452, "11"), (448, "CUST-42"), (447, "D"), (452, "3"), (802, 1),
               (523, "DESK-A"), (803, "10")]  # fmt: skip
    with Example(
        "NewOrderSingle with Parties",
        "CLIENT3 names the order-origination trader (452=11) and the client (452=3, with its desk as a PartySubID) "
        "in the Parties block. Every ExecutionReport about the order carries the block as it came.",
        [c3],
    ):
        order(c3, "ord-8", "1", "0.5", "25000.00", symbol="BTC-USD", extra=parties)
        c3.wait("8", t11="ord-8", t150="0")
    with Example(
        "PossResend",
        "CLIENT3 sends the same order again with PossResend=Y (97, a header field): the venue already has it, so it "
        "answers with the order's current status (ExecType I), neither a second order nor a duplicate reject.",
        [c3],
    ):
        c3.send("D", [(97, "Y"), (11, "ord-8"), (1, "ACC3"), (55, "BTC-USD"), (54, "1"), (38, "0.5"), (40, "2"),
                      (44, "25000.00"), (59, "0"), *parties, (60, utc_now())])  # fmt: skip
        c3.wait("8", t11="ord-8", t150="I")
    c3.logout()

    md_request(m1, "md1-book", ["AAPL", "MSFT"], 0, ALL_TYPES, req_type="2")  # MD3 follows the phases
    m1.drain(0.3)
    phases(c1, c2, gw)

    for c in (c1, c2, m1, m2):
        c.logout()


def phase_action(gw: GatewayProcess, action: str, symbol: str) -> None:
    """An operator's phase action (what ``fixgw admin ACTION SYMBOL`` sends)."""
    answer = operator(gw, action, symbol=symbol)
    if not answer.get("ok"):
        raise RuntimeError(f"{action} {symbol}: {answer}")


def phases(c1: Client, c2: Client, gw: GatewayProcess) -> None:
    """Section 11: a halt, pre-open with the indicative price, the opening auction, the status requests. MD3 follows
    MSFT (a session of its own, that reads everything at once: the examples' max_backlog is small)."""
    m1 = Client(gw.md_port, "MD3", reset_seq=True)
    m1.logon(TIMEOUT)
    md_request(m1, "md3-msft", ["MSFT"], 0, (*ALL_TYPES, "A"))
    m1.wait("W")
    c1.drain(0.3)
    with Example(
        "A halt: SecurityStatus on every session",
        "Market operations halt MSFT (fixgw admin halt MSFT). MD3, subscribed to MSFT, gets a SecurityStatus with "
        "SecurityTradingStatus 2 (trading halt) in its RptSeq sequence; CLIENT1, logged on, gets the same without "
        "RptSeq, and so does CLIENT2. A new order is refused with OrdRejReason 2 and a Text naming the phase.",
        [c1, c2, m1],
    ):
        phase_action(gw, "halt", "MSFT")
        m1.wait("f")
        c1.wait("f")
        c2.wait("f")
        order(c1, "ord-9", "1", "1", "50.00", symbol="MSFT")
        c1.wait("8", t11="ord-9", t150="8")
    with Example(
        "Pre-open and the indicative auction price",
        "Market operations move MSFT to pre-open (fixgw admin preopen MSFT). CLIENT1 bids 5 at 51.00, CLIENT2 offers "
        "3 at 50.50: the orders rest although they cross, and MD3 gets the indicative price (MDEntryType 4 with "
        "OpenCloseSettlFlag 5) and the imbalance (MDEntryType A, TradeCondition P: more buyers).",
        [c1, c2, m1],
    ):
        phase_action(gw, "preopen", "MSFT")
        m1.wait("f")
        c1.wait("f")
        c2.wait("f")
        order(c1, "ord-10", "1", "5", "51.00", symbol="MSFT")
        c1.wait("8", t11="ord-10", t150="0")
        m1.count("X", 1)
        order(c2, "ord-11", "2", "3", "50.50", symbol="MSFT")
        c2.wait("8", t11="ord-11", t150="0")
        m1.count("X", 1)
    with Example(
        "The opening auction",
        "fixgw admin open MSFT: MD3 gets SecurityStatus 22 (the auction), one X with the trade (no AggressorSide), "
        "the changed levels, the statistics and the indicative entries deleted, then SecurityStatus 17 (continuous "
        "trading). The fills carry the Text filled in the auction and no LastLiquidityInd; CLIENT1 and CLIENT2 are "
        "told both phases too.",
        [c1, c2, m1],
    ):
        phase_action(gw, "open", "MSFT")
        c1.wait("8", t11="ord-10", t150="F")
        c2.wait("8", t11="ord-11", t150="F")
        m1.count("f", 2)
        c1.count("f", 2)
        c2.count("f", 2)
    with Example(
        "SecurityStatusRequest and TradingSessionStatusRequest",
        "MD3 asks for MSFT's phase and for the venue's state: a SecurityStatus answer (UnsolicitedIndicator N, with "
        "the instrument's RptSeq) and a TradingSessionStatus (TradingSessionID - : this venue has no schedule, so no "
        "trading date).",
        [m1],
    ):
        m1.send("e", [(324, "st-1"), (55, "MSFT"), (263, "0")])
        m1.wait("f")
        m1.send("g", [(335, "ts-1"), (263, "0")])
        m1.wait("h")
    m1.logout()


def run_probe(gw: GatewayProcess) -> None:
    """On the second venue (max_backlog 8), where nothing else can send MD1 a probe earlier: on the first venue a
    probe's timing depended on how fast the examples before it ran, and so did MD1's MsgSeqNum."""
    m1 = Client(gw.md_port, "MD1", reset_seq=True)
    m1.logon(TIMEOUT)
    with Example(
        "Slow-consumer probe",
        "On a venue configured with market_data.max_backlog = 8, MD1 subscribes to three books. Once more than a "
        "quarter of max_backlog messages are queued since a session's last answered probe, the venue queues a "
        "TestRequest behind its data (checked about once a second); the Heartbeat that answers it proves the client "
        "has read everything before it.",
        [m1],
        keep="01",
    ):
        md_request(m1, "md1-probe", ["AAPL", "MSFT", "BTC-USD"], 0, ALL_TYPES)
        m1.count("W", 3)
        m1.wait("1", timeout=5)
        m1.receive(0.2)  # the client's FixSession answers the TestRequest with a Heartbeat
    m1.close()


def run_rate_limit(gw: GatewayProcess) -> None:
    c1 = Client(gw.oe_port, "CLIENT1", reset_seq=True)
    c1.logon(TIMEOUT)
    with Example(
        "Message-rate logout",
        "On a venue configured with risk.max_messages_per_second = 3, CLIENT1 sends four OrderStatusRequests at "
        "once. The first three are answered; the fourth is ignored, and the venue logs the session out with a Text "
        "that says why (cancel-on-disconnect follows, section 4).",
        [c1],
    ):
        burst = [c1.encode("H", [(11, f"st-{n}"), (55, "AAPL"), (54, "1")], c1.next_out + n) for n in range(4)]
        c1.next_out += 4
        sent = time.time_ns()
        for data in burst:  # logged one by one, sent in one segment: all four arrive before any answer leaves
            c1.log.append((sent, "C->V", "H", data.decode().rstrip("\x01").replace("\x01", "|")))
        assert c1.sock is not None
        c1.sock.sendall(b"".join(burst))
        c1.count("8", 3)
        c1.wait("5")
        with suppress(Exception):  # the venue closes the connection once the Logouts are exchanged
            c1.receive(2.0)
    c1.close()


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="fixgw-examples-") as tmp:
        # The demo config with its own data directory and free ports, no periodic snapshots (the tests' harness).
        # No logon back-off: the wrong password of "Logon refused" must not hold up the logons that follow it.
        overrides = {"market_data.snapshot_interval": 0.0, "logon.backoff_base": 0.0, "logon.backoff_max": 0.0}
        started: list[GatewayProcess] = []
        try:
            gw = start_on_free_ports(Path(tmp), overrides, created=started.append)
            run(gw)
            # A second venue for the message-rate example, whose limit a few messages reach, and the probe example,
            # whose max_backlog (8) a few messages reach.
            second = {"risk.max_messages_per_second": 3, "market_data.max_backlog": 8,
                      "market_data.snapshot_interval": 0.0}  # fmt: skip
            limited = start_on_free_ports(Path(tmp) / "rate-limited", second, created=started.append)
            run_rate_limit(limited)
            run_probe(limited)
        except Exception as exc:
            print(f"docs/examples.py: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        finally:
            for g in started:
                if g.proc is not None:
                    g.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
