"""Build the venue's FIX 4.4 dictionary ``FIX44-venue.xml`` from QuickFIX's stock ``FIX44.xml``.

Regenerate (after a quickfix upgrade or a change below) from the repository root::

    .venv/bin/python fix_specs/build_dictionary.py            # writes fix_specs/FIX44-venue.xml
    .venv/bin/python fix_specs/build_dictionary.py --check    # exit 1 if the committed file is stale

Why a script and not a hand-edited copy: the stock file is 6,600 lines; the venue's changes are the dozen
edits listed in this file, so they can be reviewed here and replayed on any later stock dictionary. What it
does:

* keeps the header, the trailer, every stock field definition, the admin messages (0 1 2 3 4 5 A) and the
  application messages the venue supports (:data:`APP_MESSAGES`) with their contents;
* declares every other stock message type as a stub: its stock content with nothing required (each field,
  group and component of the message becomes ``required="N"``), and keeps all of them in MsgType (35).
  QuickFIX hands a message to the application only if its type is declared (otherwise the session answers
  Reject 373=11); the application raises UnsupportedMessageType, so a client sending e.g. an
  AllocationInstruction (J) or a QuoteRequest (R) gets BusinessMessageReject (35=j, 380=3), whatever FIX 4.4
  fields it carries. XMLnonFIX (n) is stubbed too: the stock file files it as admin but QuickFIX delivers it to
  ``fromApp``;
* makes OrigClOrdID (41) optional in OrderCancelRequest (F): the venue accepts a cancel by OrderID (37)
  alone. It stays required in OrderCancelReplaceRequest (G);
* adds RptSeq (83), TradeID (1003, from FIX 5.0) and AggressorSide (20001, venue field) to the market-data
  entries of 35=W and 35=X: the stock file lacks RptSeq there, and QuickFIX re-parses a resent message with
  the dictionary, so a field missing from a group definition leaves the group and the entries are replayed
  mangled;
* adds RptSeq (83) to the body of 35=W as well: the snapshot carries the sequence number of the last update
  it reflects, so the snapshot of an empty book (no entries) still has one;
* adds Account (1) to the OrderMassCancelRequest (q);
* keeps SecurityStatusRequest (e), SecurityStatus (f), TradingSessionStatusRequest (g) and TradingSessionStatus (h)
  for the trading phases, and adds RptSeq (83) to f and SecurityTradingStatus (326) to the body of W: on a
  market-data session a phase change is one more update in each view's RptSeq sequence, and a snapshot carries the
  instrument's phase. The indicative auction price and the imbalance use stock fields of the MD entries
  (OpenCloseSettlFlag 286, TradeCondition 277);
* keeps RequestForPositions (AN) and its answers, RequestForPositionsAck (AO) and PositionReport (AP), as the stock
  dictionary has them (balances and positions over FIX use stock values only), except that Account (1) is optional
  in AN: like an order without Account, a request without it is for the session's account if it has exactly one;
* removes every component no longer referenced.

Order-entry messages the venue sends (:data:`STOCK_MESSAGES`: 8 9 r j) are left exactly as in the stock
dictionary, fields and enumerations included, so that they validate with a client's stock FIX 4.4
dictionary; the build fails otherwise. Hence stock values only: OrdRejReason 99 (other) with Text for price
band and tick size errors, and the trade id in SecondaryExecID (527), not FIX 5.0's TrdMatchID (880).

Validation decision: the acceptor runs with ``AllowUnknownMsgFields=N`` (``gateway.config.quickfix_settings``),
so every FIX 4.4 check applies to every message: a tag FIX 4.4 does not define is refused (Reject 373=0), a FIX
4.4 tag the message type does not define too (373=2), a NumInGroup count that does not match the entries that
follow too (373=16). That is why the stubs carry their stock content instead of being empty: an empty stub
would make every body field of an unsupported type "not defined for this message" and the client would get a
session Reject instead of the BusinessMessageReject FIX prescribes; and why every stock field stays defined:
a FIX 4.4 tag in the wrong message is 373=2, not 373=0. (``AllowUnknownMsgFields=Y``, the earlier way to let
stubs through, also switches off QuickFIX's tag-number, tag-in-message and group-count checks for every tag
below 5000: see ``DataDictionary::shouldCheckTag`` in QuickFIX.)
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = Path(sys.prefix) / "share" / "quickfix" / "FIX44.xml"
DEFAULT_OUTPUT = HERE / "FIX44-venue.xml"

ADMIN_MESSAGES = ("0", "1", "2", "3", "4", "5", "A")
APP_MESSAGES = ("D", "F", "G", "H", "q", "r", "8", "9", "j", "V", "W", "X", "Y", "AN", "AO", "AP", "e", "f", "g", "h")
# Messages the venue sends on order-entry sessions: must stay identical to the stock dictionary's. (SecurityStatus,
# f, is sent there too, without the RptSeq the venue adds to it for market-data sessions: see INSERTIONS.)
STOCK_MESSAGES = ("8", "9", "r", "j", "AO", "AP", "h")

# (number, name, type, enum values) of fields the stock FIX 4.4 dictionary does not define.
NEW_FIELDS: tuple[tuple[int, str, str, tuple[tuple[str, str], ...]], ...] = (
    (1003, "TradeID", "STRING", ()),  # FIX 5.0: identifies the trade in market data
    (20001, "AggressorSide", "CHAR", (("1", "BUY"), ("2", "SELL"))),  # venue: side of the taking order
)
# Fields inserted into a message or component after an existing field: (container, after, new field names).
INSERTIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("component:MDFullGrp", "MDEntryPositionNo", ("RptSeq", "TradeID", "AggressorSide")),
    ("component:MDIncGrp", "MDEntryPositionNo", ("RptSeq", "TradeID", "AggressorSide")),
    ("message:W", "MDReqID", ("RptSeq",)),
    ("message:W", "RptSeq", ("SecurityTradingStatus",)),
    ("message:f", "SecurityTradingStatus", ("RptSeq",)),
    ("message:q", "Side", ("Account",)),
)
# Required flags changed on a message's own fields: (message, field name, "Y" or "N").
REQUIRED_FLAGS: tuple[tuple[str, str, str], ...] = (("message:F", "OrigClOrdID", "N"), ("message:AN", "Account", "N"))
# Fields the venue relies on, checked after the build: container -> names (searched through components).
# fmt: off
REQUIRED_CONTENT: dict[str, tuple[str, ...]] = {
    "message:A": ("Username", "Password", "HeartBtInt", "ResetSeqNumFlag"),
    "message:8": (
        "OrderID", "ClOrdID", "OrigClOrdID", "ExecID", "ExecType", "OrdStatus", "OrdRejReason", "Account",
        "Symbol", "Side", "OrderQty", "OrdType", "Price", "TimeInForce", "ExecInst", "LastQty", "LastPx",
        "LeavesQty", "CumQty", "AvgPx", "TransactTime", "Text", "SecondaryExecID", "LastLiquidityInd",
    ),
    "message:F": ("OrigClOrdID", "OrderID", "ClOrdID", "Symbol", "Side", "TransactTime"),
    "message:AN": ("PosReqID", "PosReqType", "Account", "AccountType", "ClearingBusinessDate", "TransactTime"),
    "message:AO": ("PosMaintRptID", "PosReqID", "TotalNumPosReports", "PosReqResult", "PosReqStatus", "Account"),
    "message:AP": (
        "PosMaintRptID", "PosReqID", "PosReqType", "TotalNumPosReports", "PosReqResult", "ClearingBusinessDate",
        "Account", "AccountType", "Symbol", "Currency", "SettlPrice", "SettlPriceType", "PriorSettlPrice",
        "PosType", "LongQty", "ShortQty", "PosAmtType", "PosAmt",
    ),
    "message:G": ("OrigClOrdID", "OrderID", "ClOrdID", "Symbol", "Side", "OrderQty", "Price", "TransactTime"),
    "message:q": ("ClOrdID", "MassCancelRequestType", "Symbol", "Side", "Account", "TransactTime"),
    "message:r": (
        "ClOrdID", "OrderID", "MassCancelRequestType", "MassCancelResponse", "MassCancelRejectReason",
        "TotalAffectedOrders", "Text",
    ),
    "component:MDFullGrp": (
        "RptSeq", "NumberOfOrders", "MDEntryPositionNo", "MDEntryPx", "MDEntrySize", "MDEntryType",
        "MDEntryTime", "TradeID", "AggressorSide",
    ),
    "component:MDIncGrp": (
        "RptSeq", "NumberOfOrders", "MDEntryPositionNo", "MDEntryPx", "MDEntrySize", "MDUpdateAction",
        "MDEntryType", "Symbol", "MDEntryTime", "TradeID", "AggressorSide", "OpenCloseSettlFlag", "TradeCondition",
    ),
    "message:e": ("SecurityStatusReqID", "Symbol", "SubscriptionRequestType"),
    "message:f": (
        "SecurityStatusReqID", "Symbol", "TradingSessionID", "UnsolicitedIndicator", "SecurityTradingStatus",
        "TransactTime", "Text", "RptSeq",
    ),
    "message:g": ("TradSesReqID", "SubscriptionRequestType"),
    "message:h": ("TradSesReqID", "TradingSessionID", "TradSesStatus", "UnsolicitedIndicator", "Text"),
}
# fmt: on
# Fields the venue relies on directly in a message's body (components expanded, groups not).
REQUIRED_BODY: dict[str, tuple[str, ...]] = {
    "message:W": ("MDReqID", "RptSeq", "Symbol", "SecurityTradingStatus"),
    "message:f": ("RptSeq", "SecurityTradingStatus", "Symbol"),
}
# Required flags the venue relies on: (message, field name, "Y" or "N").
REQUIRED_FLAG_CHECKS: tuple[tuple[str, str, str], ...] = (
    ("message:F", "OrigClOrdID", "N"),
    ("message:F", "OrderID", "N"),
    ("message:G", "OrigClOrdID", "Y"),
    ("message:AN", "Account", "N"),
)
REQUIRED_VALUES: dict[int, tuple[str, ...]] = {
    18: ("6",),
    103: ("0", "1", "2", "3", "5", "6", "11", "13", "15", "99"),
    269: ("4", "A"),
    277: ("P", "Q"),
    286: ("5",),
    326: ("2", "17", "18", "21", "22"),
    340: ("1", "2", "3", "4"),
    703: ("TQ", "TOT"),
    707: ("FMTM", "CASH"),
}


def _find(root: ET.Element, key: str) -> ET.Element:
    """The message (``message:<MsgType>``) or component (``component:<name>``) called ``key``."""
    kind, name = key.split(":", 1)
    if kind == "message":
        found = root.find(f"messages/message[@msgtype='{name}']")
    else:
        found = root.find(f"components/component[@name='{name}']")
    if found is None:
        raise KeyError(key)
    return found


def _children(root: ET.Element, element: ET.Element) -> Iterator[ET.Element]:
    """Every field, group and component reachable from ``element``, expanding components."""
    for child in element:
        yield child
        if child.tag == "group":
            yield from _children(root, child)
        elif child.tag == "component":
            yield from _children(root, _find(root, f"component:{child.get('name')}"))


def _referenced(root: ET.Element, tops: Iterable[ET.Element]) -> tuple[set[str], set[str]]:
    """Names of the components and fields (group counters included) used by ``tops``."""
    components: set[str] = set()
    fields: set[str] = set()
    for top in tops:
        for child in _children(root, top):
            (components if child.tag == "component" else fields).add(child.get("name", ""))
    return components, fields


def _insert_after(container: ET.Element, after: str, names: tuple[str, ...]) -> None:
    """Insert optional fields after the field ``after``, searched in ``container`` and its groups."""
    for parent in container.iter():
        for index, child in enumerate(parent):
            if child.tag == "field" and child.get("name") == after:
                for offset, name in enumerate(names, start=1):
                    parent.insert(index + offset, ET.Element("field", name=name, required="N"))
                return
    raise KeyError(f"{after} not found")


def build(source: Path) -> ET.Element:
    """The venue dictionary derived from the stock dictionary at ``source``."""
    root = ET.parse(source).getroot()
    keep = set(ADMIN_MESSAGES + APP_MESSAGES)
    messages = root.find("messages")
    fields_section = root.find("fields")
    components_section = root.find("components")
    assert messages is not None and fields_section is not None and components_section is not None
    missing = keep - {m.get("msgtype") for m in messages}
    if missing:
        raise SystemExit(f"stock dictionary lacks message types {sorted(missing)}")
    # Unsupported types stay declared with their content, nothing required, so that QuickFIX validates them as
    # FIX 4.4 and passes them to the application (-> 35=j).
    for message in messages:
        if message.get("msgtype") not in keep:
            for child in message:
                child.set("required", "N")

    by_number = {int(f.get("number", "0")): f for f in fields_section}
    for number, name, ftype, values in NEW_FIELDS:
        if number in by_number:
            raise SystemExit(f"tag {number} already defined as {by_number[number].get('name')}")
        field = ET.Element("field", number=str(number), name=name, type=ftype)
        for enum, description in values:
            ET.SubElement(field, "value", enum=enum, description=description)
        by_number[number] = field
    for key, after, names in INSERTIONS:
        _insert_after(_find(root, key), after, names)
    for key, name, required in REQUIRED_FLAGS:
        _own_field(root, key, name).set("required", required)

    # Prune what the messages no longer reach; MsgType (35) lists exactly the declared types.
    header, trailer = root.find("header"), root.find("trailer")
    assert header is not None and trailer is not None
    used_components, _ = _referenced(root, [header, trailer, *messages])
    for component in list(components_section):
        if component.get("name") not in used_components:
            components_section.remove(component)
    fields_section[:] = [by_number[n] for n in sorted(by_number)]  # all of FIX 4.4: misplaced is 373=2, not 373=0
    declared = {m.get("msgtype") for m in messages}
    msg_type = by_number[35]
    msg_type[:] = [v for v in msg_type if v.get("enum") in declared]

    _check(root)
    _check_stock(root, ET.parse(source).getroot())
    ET.indent(root, space=" ")
    return root


def _own_field(root: ET.Element, key: str, name: str) -> ET.Element:
    """The field ``name`` declared directly in the message or component ``key``."""
    found = _find(root, key).find(f"field[@name='{name}']")
    if found is None:
        raise KeyError(f"{key} has no field {name}")
    return found


def _body(root: ET.Element, element: ET.Element) -> Iterator[ET.Element]:
    """The fields and groups directly in ``element``, expanding components but not entering groups."""
    for child in element:
        if child.tag == "component":
            yield from _body(root, _find(root, f"component:{child.get('name')}"))
        else:
            yield child


def _check(root: ET.Element) -> None:
    """Fail the build if a field the venue relies on went missing or a reference dangles."""
    defined = {f.get("name") for f in root.iter("field") if f.get("number")}
    for key, names in REQUIRED_CONTENT.items():
        present = {c.get("name") for c in _children(root, _find(root, key))}
        lacking = [n for n in names if n not in present]
        if lacking:
            raise SystemExit(f"{key} lacks {lacking}")
    for key, names in REQUIRED_BODY.items():
        present = {c.get("name") for c in _body(root, _find(root, key))}
        lacking = [n for n in names if n not in present]
        if lacking:
            raise SystemExit(f"{key} lacks {lacking} in its body")
    for key, name, required in REQUIRED_FLAG_CHECKS:
        if _own_field(root, key, name).get("required") != required:
            raise SystemExit(f"{key}: {name} must have required={required}")
    fields_section = root.find("fields")
    assert fields_section is not None
    for number, values in REQUIRED_VALUES.items():
        field = fields_section.find(f"field[@number='{number}']")
        enums = {v.get("enum") for v in field} if field is not None else set()
        if not set(values) <= enums:
            raise SystemExit(f"tag {number} lacks values {values}")
    tops = [e for e in (root.find("header"), root.find("trailer")) if e is not None]
    _, used_fields = _referenced(root, [*root.iterfind("messages/message"), *tops])
    dangling = used_fields - defined
    if dangling:
        raise SystemExit(f"references to undefined fields {sorted(dangling)}")
    for message in root.iterfind("messages/message"):
        if message.get("msgtype") not in ADMIN_MESSAGES + APP_MESSAGES and message.find("*[@required='Y']") is not None:
            raise SystemExit(f"stub message {message.get('msgtype')} requires a field")


def _shape(root: ET.Element, element: ET.Element) -> list[object]:
    """``element``'s content with components expanded and each field's definition (type, values) inlined."""
    fields_section = root.find("fields")
    assert fields_section is not None
    shape: list[object] = []
    for child in element:
        if child.tag == "component":
            content = _shape(root, _find(root, f"component:{child.get('name')}"))
            shape.append(("component", child.get("required"), content))
            continue
        definition = fields_section.find(f"field[@name='{child.get('name')}']")
        assert definition is not None
        values = [(v.get("enum"), v.get("description")) for v in definition]
        spec = (definition.get("number"), definition.get("type"), values)
        nested = _shape(root, child) if child.tag == "group" else []
        shape.append((child.tag, child.get("name"), child.get("required"), spec, nested))
    return shape


def _check_stock(root: ET.Element, stock: ET.Element) -> None:
    """Fail the build if an order-entry message the venue sends differs from the stock dictionary's."""
    for msg_type in STOCK_MESSAGES:
        key = f"message:{msg_type}"
        if _shape(root, _find(root, key)) != _shape(stock, _find(stock, key)):
            raise SystemExit(f"{key} differs from the stock dictionary: a client's FIX 4.4 dictionary would reject it")


def render(root: ET.Element, source: Path) -> bytes:
    """Serialised dictionary with a banner saying where it came from."""
    banner = f" Generated by fix_specs/build_dictionary.py from QuickFIX's stock {source.name}; do not edit. "
    body = ET.tostring(root, encoding="unicode")
    return f"<?xml version='1.0' encoding='UTF-8'?>\n<!--{banner}-->\n{body}\n".encode()


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check`` verify) the venue dictionary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="stock FIX44.xml")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--check", action="store_true", help="exit 1 if --output differs from a fresh build")
    args = parser.parse_args(argv)
    data = render(build(args.source), args.source)
    if args.check:
        current = args.output.read_bytes() if args.output.exists() else b""
        if current != data:
            print(f"{args.output} is stale: run fix_specs/build_dictionary.py", file=sys.stderr)
            return 1
        return 0
    args.output.write_bytes(data)
    print(f"wrote {args.output} ({len(data):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
