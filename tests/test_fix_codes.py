"""Every FIX code the venue sends means what FIX 4.4 says it means.

The venue writes enumeration values only from named tables: :mod:`gateway.fixcodes`, the engine's enumerations
whose values are FIX values, and the market-data constants. Each member is named as the FIX 4.4 dictionary names
its value (a few abbreviations are listed below), so this test, reading the venue's dictionary and QuickFIX's
stock FIX44.xml, fails on any value that is not defined for its tag or is defined with another meaning.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from enum import Enum
from pathlib import Path

import pytest

from engine import ExecType, OrdStatus, OrdType, Reason, Side, TimeInForce
from engine.events import Stat
from feeds import service, views
from gateway import fixcodes, parties
from gateway.fixcodes import REJECT_CODES, CxlRejReason, MassCancelRejectReason, OrdRejReason

ROOT = Path(__file__).resolve().parent.parent
DICTIONARIES = {
    "venue": ROOT / "fix_specs" / "FIX44-venue.xml",
    "stock": Path(sys.prefix) / "share" / "quickfix" / "FIX44.xml",
}
VENUE_TAGS_FROM = 5000  # user-defined tags (AggressorSide 20001) exist only in the venue's dictionary

# Names the code shortens, and the dictionary's name for the same value.
ABBREVIATIONS = {
    "GTC": "GOOD_TILL_CANCEL",
    "IOC": "IMMEDIATE_OR_CANCEL",
    "FOK": "FILL_OR_KILL",
    "OPEN": "OPENING_PRICE",
    "HIGH": "TRADING_SESSION_HIGH_PRICE",
    "LOW": "TRADING_SESSION_LOW_PRICE",
    "VOLUME": "TRADE_VOLUME",
    "ORDER_CANCEL_REPLACE_REQUEST": "ORDER_CANCEL",  # QuickFIX's name for "Order Cancel/Replace Request"
}


def _members(cls: type[Enum]) -> dict[str, str]:
    return {name: str(m.value) for name, m in cls.__members__.items()}  # aliases included


def _named(module: object, *names: str) -> dict[str, str]:
    return {name: getattr(module, name) for name in names}


ENGINE_TAGS: dict[type[Enum], int] = {Side: 54, OrdType: 40, TimeInForce: 59, ExecType: 150, OrdStatus: 39, Stat: 269}
REQUEST_TYPES = {
    "SNAPSHOT": service.SUBSCRIBE_SNAPSHOT,
    "SNAPSHOT_AND_UPDATES": service.SUBSCRIBE_UPDATES,
    "DISABLE_PREVIOUS_SNAPSHOT": service.UNSUBSCRIBE,
}
# (table, tag, {name: FIX value}) for every table the venue writes codes from.
TABLES: list[tuple[str, int, dict[str, str]]] = [
    *((cls.__name__, tag, _members(cls)) for cls, tag in {**fixcodes.FIX_TAGS, **ENGINE_TAGS}.items()),
    ("Side as AggressorSide", 20001, _members(Side)),
    (
        "feeds.views entry types",
        269,
        _named(views, "BID", "OFFER", "TRADE", "OPEN", "HIGH", "LOW", "IMBALANCE", "VOLUME"),
    ),
    ("feeds.views update actions", 279, _named(views, "NEW", "CHANGE", "DELETE")),
    ("feeds.service request types", 263, REQUEST_TYPES),
]


def _enumerations(path: Path) -> dict[int, dict[str, str]]:
    """{tag: {value: name}} of every enumerated field of the dictionary."""
    root = ET.parse(path).getroot()
    fields = root.find("fields")
    assert fields is not None
    return {
        int(f.get("number", "0")): {v.get("enum", ""): v.get("description", "") for v in f.findall("value")}
        for f in fields.findall("field")
        if f.findall("value")
    }


@pytest.fixture(scope="module", params=sorted(DICTIONARIES))
def enums(request: pytest.FixtureRequest) -> dict[int, dict[str, str]]:
    path = DICTIONARIES[request.param]
    if not path.exists():
        pytest.skip(f"{path} not installed")
    return _enumerations(path)


@pytest.mark.parametrize(("table", "tag", "members"), TABLES, ids=[f"{t[0]}-{t[1]}" for t in TABLES])
def test_every_value_has_its_standard_meaning(
    enums: dict[int, dict[str, str]], table: str, tag: int, members: dict[str, str]
) -> None:
    if tag not in enums:
        assert tag >= VENUE_TAGS_FROM, f"{tag} has no enumeration in the dictionary"
        return
    wrong = _misnamed(enums[tag], members)
    assert not wrong, f"{table} ({tag}): values whose FIX 4.4 meaning differs from their name: {wrong}"


def _misnamed(defined: dict[str, str], members: dict[str, str]) -> dict[str, str]:
    """{name=value: the dictionary's name for that value} for every member whose name is not the value's."""
    return {
        f"{name}={value}": defined.get(value, "(not defined)")
        for name, value in members.items()
        if defined.get(value) not in (name, ABBREVIATIONS.get(name, name))  # (TradSesStatus OPEN is OPEN)
    }


def test_the_check_catches_a_code_used_with_another_meaning() -> None:
    """The two mistakes this test was written for: 103=1 for an unknown order, 102=1 for an unknown symbol."""
    venue = _enumerations(DICTIONARIES["venue"])
    assert _misnamed(venue[103], {"UNKNOWN_ORDER": "1"}) == {"UNKNOWN_ORDER=1": "UNKNOWN_SYMBOL"}
    assert _misnamed(venue[102], {"UNKNOWN_SYMBOL": "1"}) == {"UNKNOWN_SYMBOL=1": "UNKNOWN_ORDER"}
    assert _misnamed(venue[532], {"OTHER": "7"}) == {"OTHER=7": "(not defined)"}
    assert not _misnamed(venue[103], {"UNKNOWN_ORDER": "5"})


def test_every_reason_has_its_codes_in_each_message() -> None:
    """Each Reason says how each message tells it; a reject reason has a code in at least one message."""
    assert set(REJECT_CODES) == set(Reason)
    for reason, codes in REJECT_CODES.items():
        assert codes.ord_rej is None or isinstance(codes.ord_rej, OrdRejReason), reason
        assert codes.cxl_rej is None or isinstance(codes.cxl_rej, CxlRejReason), reason
        assert codes.mass_rej is None or isinstance(codes.mass_rej, MassCancelRejectReason), reason
        assert codes.pos_rej is None or isinstance(codes.pos_rej, fixcodes.PosReqResult), reason
    cancel_reasons = {r for r, c in REJECT_CODES.items() if c == fixcodes.RejectCodes()}
    assert cancel_reasons == {
        Reason.CLIENT_REQUEST, Reason.MASS_CANCEL, Reason.CANCEL_ON_DISCONNECT, Reason.SELF_TRADE,
        Reason.IOC_REMAINDER, Reason.MARKET_REMAINDER, Reason.FOK_NOT_FILLED, Reason.END_OF_DAY, Reason.KILL_SWITCH,
        Reason.UNKNOWN_ASSET, Reason.INVALID_AMOUNT, Reason.DUPLICATE_FUNDING_ID, Reason.AMOUNT_OUT_OF_RANGE,
        Reason.AUCTION_FILL, Reason.AUCTION_MARKET_REMAINDER, Reason.MARKET_BAND_REMAINDER, Reason.BREAKER_REMAINDER,
        Reason.HALT_CANCEL, Reason.PHASE_NOT_ALLOWED,
    }  # fmt: skip


SYNONYMS = {Reason.NOT_OWNER: Reason.UNKNOWN_ORDER}  # another session's order is an unknown order, on purpose


def _reason_mismatches(codes: dict[Reason, fixcodes.RejectCodes]) -> list[str]:
    """Where a Reason and a FIX code share a name they must go together: a reason whose name is a value of the tag
    gets that value, and that value goes to no other reason (synonyms aside)."""
    wrong = []
    for reason, rc in codes.items():
        for code, cls in (
            (rc.ord_rej, OrdRejReason),
            (rc.cxl_rej, CxlRejReason),
            (rc.mass_rej, MassCancelRejectReason),
            (rc.pos_rej, fixcodes.PosReqResult),
        ):
            meant = SYNONYMS.get(reason, reason).name
            if meant in cls.__members__ and code is not None and code.name != meant:
                wrong.append(f"{reason.name} -> {cls.__name__}.{code.name}, not {meant}")
            if code is not None and code.name in Reason.__members__ and code.name != meant:
                wrong.append(f"{reason.name} -> {cls.__name__}.{code.name}, which is another reason")
    return wrong


def test_each_reason_gets_the_code_of_its_own_meaning() -> None:
    assert not _reason_mismatches(REJECT_CODES)
    # The mistakes this guards against: 103=1 (Unknown symbol) for an unknown order, 102=1 (Unknown order) for an
    # unlisted symbol.
    broken = {
        Reason.UNKNOWN_ORDER: fixcodes.RejectCodes(OrdRejReason.UNKNOWN_SYMBOL, CxlRejReason.UNKNOWN_ORDER),
        Reason.UNKNOWN_SYMBOL: fixcodes.RejectCodes(OrdRejReason.UNKNOWN_SYMBOL, CxlRejReason.UNKNOWN_ORDER),
    }
    assert len(_reason_mismatches(broken)) == 3


def test_tables_are_enumerations_of_distinct_values() -> None:
    """One name per value in each table: two names for one code would hide which meaning is sent."""
    for cls in [*fixcodes.FIX_TAGS, *ENGINE_TAGS]:
        assert issubclass(cls, Enum)
        assert len({m.value for m in cls.__members__.values()}) == len(cls.__members__), cls


@pytest.mark.parametrize(
    ("tag", "accepted"),
    [(447, parties.PARTY_ID_SOURCES), (452, parties.PARTY_ROLES), (803, parties.PARTY_SUB_ID_TYPES)],
)
def test_party_values_accepted_are_exactly_fix_44s(
    enums: dict[int, dict[str, str]], tag: int, accepted: object
) -> None:
    """QuickFIX does not check values inside groups, so the venue checks the Parties block's itself: every FIX 4.4
    value of PartyIDSource, PartyRole and PartySubIDType, and nothing else."""
    assert set(enums[tag]) == accepted
