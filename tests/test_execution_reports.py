"""Golden messages: the exact FIX text of each kind of report the order-entry edge writes.

Requests go through :class:`~gateway.orders.OrderTranslator` (as the gateway parses them) into a real
:class:`~engine.MatchingEngine`, and each event is rendered as the gateway renders it. Timestamps are fixed (each
request at ``12:00:00`` plus its number in microseconds), so every byte is known. ``|`` stands for SOH; an
ExecutionReport is written as text with ``9=0`` and ``10=000``, which QuickFIX fills in when it sends it; the other
reports are QuickFIX messages without their header, BodyLength and CheckSum computed.
"""

from __future__ import annotations

import calendar
from decimal import Decimal

import pytest

from engine import CancelReject, Event, Execution, Instrument, MassCancelReport, MatchingEngine, QueryOrder
from gateway.orders import PARTIES, Echo, GroupedText, OrderTranslator

AAPL = Instrument(
    "AAPL", tick_size=Decimal("0.01"), lot_size=Decimal(1), min_qty=Decimal(1), max_qty=Decimal(100_000),
    min_price=Decimal("0.01"), max_price=Decimal(100_000),
)  # fmt: skip
BTC = Instrument(
    "BTC-USD", tick_size=Decimal("0.01"), lot_size=Decimal("0.0001"), min_qty=Decimal("0.0001"), max_qty=Decimal(100),
    min_price=Decimal("0.01"), max_price=Decimal(1_000_000),
)  # fmt: skip
NOON = calendar.timegm((2026, 12, 1, 12, 0, 0)) * 1_000_000_000
ACCOUNTS = frozenset({"ACC1", "ACC2"})


class Venue:
    """The order-entry edge in front of an engine, without the sockets: FIX fields in, FIX text out."""

    def __init__(self) -> None:
        self.translator = OrderTranslator({"AAPL": AAPL, "BTC-USD": BTC})
        self.engine = MatchingEngine([AAPL, BTC])
        self.requests = 0

    def _ts(self) -> int:
        self.requests += 1
        return NOON + self.requests * 1_000

    def _render(self, events: list[Event], echo: Echo | None = None, request_type: str = "7") -> list[str]:
        t, out = self.translator, []
        for ev in events:
            if isinstance(ev, Execution):
                out.append(t.execution_report(ev, echo))
            elif isinstance(ev, CancelReject):
                out.append(t.cancel_reject(ev).toString())
            elif isinstance(ev, MassCancelReport):
                out.append(t.mass_cancel_report(ev, request_type).toString())
        return [text.replace("\x01", "|") for text in out]

    def order(self, owner: str = "CLIENT1", parties: str | None = None, **changes: str | None) -> list[str]:
        """A NewOrderSingle: a DAY limit buy of 10 AAPL at 100.00 for ACC1, with ``t<tag>=value`` changes (None
        leaves the tag out) and a Parties block (``453=...|``)."""
        f = {"11": "c1", "1": "ACC1", "55": "AAPL", "54": "1", "38": "10", "40": "2", "44": "100.00", "59": "0"}
        if parties is not None:
            f[PARTIES] = parties.replace("|", "\x01")
        for tag, value in changes.items():
            if value is None:
                del f[tag[1:]]
            else:
                f[tag[1:]] = value
        cmd, echo = self.translator.new_order(f, owner, ACCOUNTS, self._ts())
        return self._render(self.engine.process(cmd), echo)

    def cancel(self, **tags: str) -> list[str]:
        cmd = self.translator.cancel(_fields(tags), "CLIENT1", self._ts())
        return self._render([cmd] if isinstance(cmd, CancelReject) else self.engine.process(cmd))

    def replace(self, **tags: str) -> list[str]:
        cmd = self.translator.replace(_fields(tags), "CLIENT1", self._ts())
        return self._render([cmd] if isinstance(cmd, CancelReject) else self.engine.process(cmd))

    def status(self, **tags: str) -> list[str]:
        query, echo = self.translator.status(_fields(tags), "CLIENT1", self._ts())
        return self._render(self.engine.process(query), echo)

    def status_query(self, clordid: str) -> QueryOrder:
        return self.translator.status({"11": clordid, "54": "1"}, "CLIENT1", self._ts())[0]

    def mass_cancel(self, **tags: str) -> list[str]:
        cmd = self.translator.mass_cancel(_fields(tags), "CLIENT1", self._ts())
        if isinstance(cmd, MassCancelReport):
            return self._render([cmd], request_type=tags["t530"])
        events = self.engine.process(cmd)
        events.sort(key=lambda e: not isinstance(e, MassCancelReport))  # as the gateway sends them: report first
        return self._render(events, request_type=tags["t530"])


def _fields(tags: dict[str, str]) -> dict[str, str]:
    """``t11="x"`` -> ``{"11": "x"}``."""
    return {tag[1:]: value for tag, value in tags.items()}


@pytest.fixture
def venue() -> Venue:
    return Venue()


def test_new_limit_order(venue: Venue) -> None:
    assert venue.order() == [
        "8=FIX.4.4|9=0|35=8|37=1|11=c1|17=1|150=0|39=0|54=1|40=2|59=0|1=ACC1|55=AAPL|38=10|151=10|14=0|6=0|44=100.00"
        "|60=20261201-12:00:00.000001|10=000|"
    ]


def test_trade_reports_of_taker_and_maker(venue: Venue) -> None:
    venue.order()
    assert venue.order("CLIENT2", t11="s1", t1="ACC2", t54="2", t38="4", t44="99.00") == [
        "8=FIX.4.4|9=0|35=8|37=2|11=s1|17=2|150=0|39=0|54=2|40=2|59=0|1=ACC2|55=AAPL|38=4|151=4|14=0|6=0|44=99.00"
        "|60=20261201-12:00:00.000002|10=000|",
        # the taker: filled at the resting price, LastLiquidityInd 2 (removed liquidity), trade id in 527
        "8=FIX.4.4|9=0|35=8|37=2|11=s1|17=3|150=F|39=2|54=2|40=2|59=0|1=ACC2|55=AAPL|38=4|151=0|14=4|6=100.00"
        "|44=99.00|32=4|31=100.00|527=1|851=2|60=20261201-12:00:00.000002|10=000|",
        # the maker: LastLiquidityInd 1 (added liquidity), the taker's TransactTime
        "8=FIX.4.4|9=0|35=8|37=1|11=c1|17=4|150=F|39=1|54=1|40=2|59=0|1=ACC1|55=AAPL|38=10|151=6|14=4|6=100.00"
        "|44=100.00|32=4|31=100.00|527=1|851=1|60=20261201-12:00:00.000002|10=000|",
    ]


def test_replace_then_cancel(venue: Venue) -> None:
    venue.order()
    assert venue.replace(t11="c1r", t41="c1", t55="AAPL", t54="1", t38="8", t44="100.01") == [
        "8=FIX.4.4|9=0|35=8|37=1|11=c1r|17=2|150=5|39=0|54=1|40=2|59=0|41=c1|1=ACC1|55=AAPL|38=8|151=8|14=0|6=0"
        "|44=100.01|60=20261201-12:00:00.000002|10=000|"
    ]
    assert venue.cancel(t11="c1c", t41="c1r", t54="1") == [
        "8=FIX.4.4|9=0|35=8|37=1|11=c1c|17=3|150=4|39=4|54=1|40=2|59=0|41=c1r|1=ACC1|55=AAPL|38=8|151=0|14=0|6=0"
        "|44=100.01|58=cancelled at client request|60=20261201-12:00:00.000003|10=000|"
    ]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param(
            {"t44": "100.005"},
            "37=NONE|11=c1|17=1|150=8|39=8|54=1|40=2|59=0|1=ACC1|55=AAPL|38=10|44=100.005|151=0|14=0|6=0|103=99"
            "|58=price is not a multiple of the tick size",
            id="price off the tick: the client's price text",
        ),
        pytest.param(
            {"t54": "5"},
            "37=NONE|11=c1|17=1|150=8|39=8|54=5|40=2|59=0|1=ACC1|55=AAPL|38=10|44=100.00|151=0|14=0|6=0|103=11"
            "|58=unsupported side",
            id="sell short: the client's side",
        ),
        pytest.param(
            {"t40": "3", "t59": "6", "t38": "1e3"},
            "37=NONE|11=c1|17=1|150=8|39=8|54=1|40=3|59=6|1=ACC1|55=AAPL|38=1e3|44=100.00|151=0|14=0|6=0|103=11"
            "|58=unsupported order type",
            id="stop order: the client's type, time in force and quantity",
        ),
        pytest.param(
            {"t55": "NOPE", "t40": "1", "t44": None},
            "37=NONE|11=c1|17=1|150=8|39=8|54=1|40=1|59=0|1=ACC1|55=NOPE|38=10|151=0|14=0|6=0|103=1|58=unknown symbol",
            id="market order for an unlisted symbol: no price",
        ),
    ],
)
def test_new_order_reject_echoes_what_the_client_sent(
    venue: Venue, fields: dict[str, str | None], expected: str
) -> None:
    assert venue.order(**fields) == [f"8=FIX.4.4|9=0|35=8|{expected}|60=20261201-12:00:00.000001|10=000|"]


def test_market_order_without_price_trades_and_its_rest_expires(venue: Venue) -> None:
    venue.order(t38="3")
    assert venue.order("CLIENT2", t11="m1", t1="ACC2", t54="2", t40="1", t44=None, t38="5", t59="3") == [
        "8=FIX.4.4|9=0|35=8|37=2|11=m1|17=2|150=0|39=0|54=2|40=1|59=3|1=ACC2|55=AAPL|38=5|151=5|14=0|6=0"
        "|60=20261201-12:00:00.000002|10=000|",
        "8=FIX.4.4|9=0|35=8|37=2|11=m1|17=3|150=F|39=1|54=2|40=1|59=3|1=ACC2|55=AAPL|38=5|151=2|14=3|6=100.00"
        "|32=3|31=100.00|527=1|851=2|60=20261201-12:00:00.000002|10=000|",
        "8=FIX.4.4|9=0|35=8|37=1|11=c1|17=4|150=F|39=2|54=1|40=2|59=0|1=ACC1|55=AAPL|38=3|151=0|14=3|6=100.00"
        "|44=100.00|32=3|31=100.00|527=1|851=1|60=20261201-12:00:00.000002|10=000|",
        "8=FIX.4.4|9=0|35=8|37=2|11=m1|17=5|150=C|39=C|54=2|40=1|59=3|1=ACC2|55=AAPL|38=5|151=0|14=3|6=100.00"
        "|58=unfilled quantity of market order expired: no more liquidity|60=20261201-12:00:00.000002|10=000|",
    ]


def test_post_only_order_carries_its_exec_inst(venue: Venue) -> None:
    assert venue.order(t18="6", t59="1") == [
        "8=FIX.4.4|9=0|35=8|37=1|11=c1|17=1|150=0|39=0|54=1|40=2|59=1|1=ACC1|55=AAPL|18=6|38=10|151=10|14=0|6=0"
        "|44=100.00|60=20261201-12:00:00.000001|10=000|"
    ]


def test_status_of_an_order_of_an_unknown_one_and_with_an_unsupported_side(venue: Venue) -> None:
    venue.order()
    assert venue.status(t11="c1", t55="AAPL", t54="1") == [
        "8=FIX.4.4|9=0|35=8|37=1|11=c1|17=2|150=I|39=0|54=1|40=2|59=0|1=ACC1|55=AAPL|38=10|151=10|14=0|6=0"
        "|44=100.00|60=20261201-12:00:00.000002|10=000|"
    ]
    # Not there: the request's Symbol and Side with placeholders, OrdRejReason 5 (Unknown order).
    assert venue.status(t11="zz", t55="MSFT", t54="2") == [
        "8=FIX.4.4|9=0|35=8|37=NONE|11=zz|17=3|150=I|39=8|54=2|40=2|59=0|55=MSFT|38=0|151=0|14=0|6=0|103=5"
        "|58=unknown order|60=20261201-12:00:00.000003|10=000|"
    ]
    # An unsupported Side is not looked up, even for an order that exists: OrdRejReason 11.
    assert venue.status(t11="c1", t55="AAPL", t54="5") == [
        "8=FIX.4.4|9=0|35=8|37=NONE|11=c1|17=4|150=I|39=8|54=5|40=2|59=0|55=AAPL|38=0|151=0|14=0|6=0|103=11"
        "|58=unsupported side|60=20261201-12:00:00.000004|10=000|"
    ]


def test_lots_and_an_average_price_between_ticks(venue: Venue) -> None:
    venue.order(t11="a1", t55="BTC-USD", t54="2", t38="0.1", t44="30000.01", t59="1")
    venue.order(t11="a2", t55="BTC-USD", t54="2", t38="0.1", t44="30000.02", t59="1")
    reports = venue.order("CLIENT2", t11="b1", t1="ACC2", t55="BTC-USD", t38="0.2", t44="30000.02", t59="3")
    assert reports[-1] == (
        "8=FIX.4.4|9=0|35=8|37=2|11=a2|17=7|150=F|39=2|54=2|40=2|59=1|1=ACC1|55=BTC-USD|38=0.1000|151=0.0000"
        "|14=0.1000|6=30000.02|44=30000.02|32=0.1000|31=30000.02|527=2|851=1|60=20261201-12:00:00.000003|10=000|"
    )
    assert reports[-2] == (  # the taker's second fill: AvgPx 30000.015, beyond the tick
        "8=FIX.4.4|9=0|35=8|37=3|11=b1|17=6|150=F|39=2|54=1|40=2|59=3|1=ACC2|55=BTC-USD|38=0.2000|151=0.0000"
        "|14=0.2000|6=30000.015|44=30000.02|32=0.1000|31=30000.02|527=2|851=2|60=20261201-12:00:00.000003|10=000|"
    )


def test_cancel_rejects(venue: Venue) -> None:
    venue.order()
    # Refused before the lookup, although the order exists: 37=NONE, 39=8.
    assert venue.replace(t11="r1", t41="c1", t55="AAPL", t54="5", t38="8", t44="100.00") == [
        "9=91|35=9|11=r1|37=NONE|39=8|41=c1|58=unsupported side|60=20261201-12:00:00.000002|102=99|434=2|10=193|"
    ]
    assert venue.replace(t11="r2", t41="c1", t55="AAPL", t54="2", t38="8", t44="100.00") == [
        "9=109|35=9|11=r2|37=1|39=0|41=c1|58=replace may not change symbol or side|60=20261201-12:00:00.000003"
        "|102=99|434=2|10=020|"
    ]
    assert venue.cancel(t11="x1", t41="nope", t54="1") == [
        "9=89|35=9|11=x1|37=NONE|39=8|41=nope|58=unknown order|60=20261201-12:00:00.000004|102=1|434=1|10=106|"
    ]


def test_mass_cancel_reports(venue: Venue) -> None:
    venue.order()
    assert venue.mass_cancel(t11="m1", t530="7", t54="7") == [
        "9=86|35=r|11=m1|37=NONE|58=unsupported side|60=20261201-12:00:00.000002|530=7|531=0|532=99|10=240|"
    ]
    assert venue.mass_cancel(t11="m2", t530="3") == [
        "9=102|35=r|11=m2|37=NONE|58=unsupported MassCancelRequestType|60=20261201-12:00:00.000003|530=3|531=0"
        "|532=0|10=145|"
    ]
    assert venue.mass_cancel(t11="m3", t530="1", t55="AAPL", t54="1") == [
        "9=103|35=r|11=m3|37=3|54=1|55=AAPL|58=cancelled by mass cancel|60=20261201-12:00:00.000004|530=1|531=1"
        "|533=1|10=216|",
        "8=FIX.4.4|9=0|35=8|37=1|11=c1|17=2|150=4|39=4|54=1|40=2|59=0|1=ACC1|55=AAPL|38=10|151=0|14=0|6=0"
        "|44=100.00|58=cancelled by mass cancel|60=20261201-12:00:00.000004|10=000|",
    ]


def test_every_report_of_an_order_with_parties_carries_them(venue: Venue) -> None:
    """The Parties block, as the order brought it, goes on the order's every report (new, fills, replace, status,
    cancel, and the reject of an order that never existed); the other side's reports carry only their own."""
    trader = "453=1|448=TRADER 7|447=D|452=11|"
    assert venue.order(parties=trader) == [
        "8=FIX.4.4|9=0|35=8|37=1|11=c1|17=1|150=0|39=0|54=1|40=2|59=0|1=ACC1|55=AAPL|38=10|151=10|14=0|6=0|44=100.00"
        f"|{trader}60=20261201-12:00:00.000001|10=000|"
    ]
    taker, maker = venue.order("CLIENT2", t11="s1", t1="ACC2", t54="2", t38="4", t44="100.00")[1:]
    assert "453=" not in taker and f"|851=1|{trader}60=" in maker
    assert f"|{trader}60=" in venue.replace(t11="c2", t41="c1", t55="AAPL", t54="1", t38="8", t44="100.00")[0]
    assert f"|{trader}60=" in venue.status(t11="c2", t54="1")[0]
    assert f"|58=cancelled at client request|{trader}60=" in venue.cancel(t11="c3", t41="c2", t54="1")[0]
    reject = venue.order(t11="c4", t44="100.005", parties=trader)[0]
    assert "|150=8|" in reject and f"|{trader}60=" in reject


def test_reports_with_a_group_are_marked_for_parsing_with_the_dictionary(venue: Venue) -> None:
    """Text without a group is parsed for sending without the dictionary; a group needs it (gateway.server)."""
    venue.order()
    plain = venue.translator.execution_report(venue.engine.process(venue.status_query("c1"))[0])
    assert type(plain) is str
    venue.order(t11="p1", parties="453=1|448=T|447=D|452=11|")
    grouped = venue.translator.execution_report(venue.engine.process(venue.status_query("p1"))[0])
    assert type(grouped) is GroupedText
