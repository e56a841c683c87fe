"""When the venue's own market-data publisher falls behind, its subscribers are not the ones to blame.

Found by the soak (bench/soak.py): at 1,000 orders/s with 50 subscribers on a busy machine, the venue's publisher
thread ran seconds behind, and every subscriber, each reading all it was sent within milliseconds, was logged out
as a slow consumer: the backlog counted the messages still waiting in the venue's own queue. The failpoint
``md_publisher_stall:S`` makes the publisher fall behind on purpose.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.conftest import start_gateway_with
from tests.gateway_process import metric_value
from tests.test_market_data import SYMBOL, TICK, Venue, assert_converges, log_events, venue  # noqa: F401

pytestmark = pytest.mark.timeout(60)


def test_a_reader_is_not_cut_off_while_the_venue_catches_up(venue: Venue) -> None:  # noqa: F811
    gw = venue.gw = start_gateway_with(
        venue.directory / "gw", {"market_data.max_backlog": 30}, env={"FIXGW_FAILPOINT": "md_publisher_stall:3"}
    )
    reader = venue.md("MD9")
    reader.subscribe(SYMBOL)
    flow = venue.flow(("CLIENT5",))
    for i in range(120):  # each order one incremental; the publisher sits on them for 3 s, four times the limit
        side, price = ("1", Decimal("90.00") + TICK * i) if i % 2 else ("2", Decimal("110.00") - TICK * i)
        flow.limit("CLIENT5", side, price, 1)
        reader.pump(0)
    flow.barrier()
    assert_converges(reader, flow.truth())  # reads everything once the venue hands it over
    metrics = gw.metrics()
    late = metric_value(metrics, "fixgw_md_publish_seconds_count") - metric_value(
        metrics, "fixgw_md_publish_seconds_bucket", le="1.0"
    )
    assert late > 0, "the venue did fall behind its subscribers (an incremental waited over a second)"
    assert not log_events(gw, "md_slow_consumer", "MD9")
    assert reader.session.logged_on and reader.gaps == 0
