"""The FIX edge's memoised conversions: the same answer from memory as computed, and bounded memory."""

from __future__ import annotations

from decimal import Decimal

from engine import Instrument, Reason, Side
from gateway import orders
from gateway.orders import InstrumentTexts, read_side

BTC = Instrument(
    "BTC-USD", tick_size=Decimal("0.01"), lot_size=Decimal("0.0001"), min_qty=Decimal("0.0001"),
    max_qty=Decimal("1000"), min_price=Decimal("0.01"), max_price=Decimal("1000000"),
)  # fmt: skip


def test_client_text_to_grid_units_and_refusals() -> None:
    grid = InstrumentTexts(BTC)
    cases = {
        "0.0002": 2, "1": 10_000, "0.00015": Reason.QUANTITY_OFF_LOT, "0": Reason.INVALID_QUANTITY,
        "-1": Reason.INVALID_QUANTITY, "abc": Reason.INVALID_QUANTITY, "NaN": Reason.INVALID_QUANTITY,
    }  # fmt: skip
    for _ in range(2):  # the second pass is answered from memory
        assert {text: grid.lots_of[text] for text in cases} == cases
    assert set(grid.lots_of) == {"0.0002", "1"}  # refusals are not remembered
    prices = {"100.01": 10_001, "100.015": Reason.PRICE_OFF_TICK, "0.00": Reason.INVALID_PRICE, "1e400": None}
    for _ in range(2):
        got = {text: grid.ticks_of[text] for text in prices}
        assert got["100.01"] == 10_001 and got["100.015"] is Reason.PRICE_OFF_TICK
        assert got["0.00"] is Reason.INVALID_PRICE and isinstance(got["1e400"], Reason)


def test_grid_units_to_text() -> None:
    grid = InstrumentTexts(BTC)
    assert (grid.price[10_001], grid.qty[2], grid.qty[10_000]) == ("100.01", "0.0002", "1.0000")
    assert grid.avg_price(3 * 10_001, 3) == "100.01"  # whole tick: the memoised price text
    assert grid.avg_price(10_001 + 10_002, 2) == BTC.avg_price_str(10_001 + 10_002, 2) == "100.015"
    assert grid.avg_price(0, 0) == "0"


def test_memory_is_bounded_and_stays_correct_after_a_reset() -> None:
    grid = InstrumentTexts(BTC)
    for ticks in range(1, 3 * orders.MEMO_LIMIT):
        assert grid.price[ticks] == BTC.price_str(ticks)
        assert len(grid.price) <= orders.MEMO_LIMIT
    for n in range(1, 2 * orders.MEMO_LIMIT):
        assert grid.lots_of[str(n)] == n * 10_000
    assert len(grid.lots_of) <= orders.MEMO_LIMIT


def test_side_is_read_one_way_and_never_defaulted() -> None:
    """Every FIX 4.4 Side but Buy and Sell (sell short, cross, ...) is refused, as is a missing one."""
    assert read_side({"54": "1"}) is Side.BUY and read_side({"54": "2"}) is Side.SELL
    for other in [*"3456789ABCDEFG", "", "x", "11"]:
        assert read_side({"54": other}) is Reason.UNSUPPORTED_SIDE, other
    assert read_side({}) is Reason.UNSUPPORTED_SIDE
