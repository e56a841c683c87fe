"""The FIX edge's memoised conversions: the same answer from memory as computed, and bounded memory."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import quickfix as fix

from engine import Instrument, Reason, Side
from gateway import orders, parties
from gateway.orders import InstrumentTexts, read_side
from gateway.parties import PartiesCheck, check_parties, parties_text

VENUE_DICTIONARY = Path(__file__).resolve().parent.parent / "fix_specs" / "FIX44-venue.xml"

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


# ---------------------------------------------------------------------- the Parties block (gateway/parties.py)

TRADER, CLIENT = "448=TRADER 7|447=D|452=11|", "448=CL=9|447=D|452=3|802=2|523=desk 4|803=10|523=LDN|803=25|"


def _text(body: str) -> str:
    return ("8=FIX.4.4|9=0|35=D|11=c1|" + body + "55=AAPL|10=000|").replace("|", "\x01")


def test_parties_block_is_cut_from_the_message_text_whole() -> None:
    """From 453 to its last entry (sub-ids included), however the values look, and nothing after it."""
    block = ("453=2|" + TRADER + CLIENT).replace("|", "\x01")
    assert parties_text(_text("453=2|" + TRADER + CLIENT)) == block
    assert check_parties(block) == block  # a complete block passes as it is


@pytest.mark.parametrize(
    ("block", "error", "tag"),
    [
        ("453=1|448=T|452=11|", fix.FieldNotFound, 447),  # conditionally required: -> BusinessMessageReject 380=5
        ("453=1|448=T|447=D|", fix.FieldNotFound, 452),
        ("453=1|447=D|452=11|", fix.FieldNotFound, 448),
        ("453=1|448=T|447=Z|452=11|", fix.IncorrectTagValue, 447),  # not a FIX 4.4 value: -> Reject 373=5
        ("453=1|448=T|447=D|452=23|", fix.IncorrectTagValue, 452),
        ("453=1|448=T|447=D|452=11|802=2|523=x|803=10|", fix.IncorrectTagValue, 802),  # counts one entry, says two
        ("453=1|448=T|447=D|452=11|802=1|523=x|803=99|", fix.IncorrectTagValue, 803),
        ("453=1|448=T|447=D|452=11|802=1|803=10|", fix.FieldNotFound, 523),
        ("453=2|" + TRADER + "448=C|447=D|", fix.FieldNotFound, 452),  # the second entry is checked too
    ],
)
def test_parties_block_faults(block: str, error: type[Exception], tag: int) -> None:
    with pytest.raises(error) as refused:
        check_parties(block.replace("|", "\x01"))
    assert refused.value.field == tag


def test_fields_of_keeps_the_parties_block_beside_the_fields() -> None:
    msg = fix.Message()
    msg.setString(_text("453=1|" + TRADER), False, fix.DataDictionary(str(VENUE_DICTIONARY)))
    fields = orders.fields_of(msg)
    assert fields["453"] == "1" and fields["448"] == "TRADER 7"
    assert fields[orders.PARTIES] == ("453=1|" + TRADER).replace("|", "\x01")
    msg.setString(_text(""), False)
    assert orders.PARTIES not in orders.fields_of(msg)


def test_accepted_blocks_are_remembered_refused_ones_are_not() -> None:
    check = PartiesCheck()
    good, bad = ("453=1|" + TRADER).replace("|", "\x01"), "453=1|448=T|447=D|452=23|".replace("|", "\x01")
    for _ in range(2):  # the second time from memory: the same answers
        assert check(good) == good
        with pytest.raises(fix.IncorrectTagValue):
            check(bad)
    assert check.accepted == {good}
    for n in range(2 * parties.MEMO_LIMIT):
        check(f"453=1\x01448=T{n}\x01447=D\x01452=11\x01")
        assert len(check.accepted) <= parties.MEMO_LIMIT
