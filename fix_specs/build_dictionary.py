"""Build the venue's FIX 4.4 dictionary ``FIX44-venue.xml`` from QuickFIX's stock ``FIX44.xml``.

Regenerate (after a quickfix upgrade or a change below) from the repository root::

    .venv/bin/python fix_specs/build_dictionary.py            # writes fix_specs/FIX44-venue.xml
    .venv/bin/python fix_specs/build_dictionary.py --check    # exit 1 if the committed file is stale

Why a script and not a hand-edited copy: the stock file is 6,600 lines; the venue's changes are the dozen
edits listed in this file, so they can be reviewed here and replayed on any later stock dictionary. What it
does:

* keeps the header, the trailer, the admin messages (0 1 2 3 4 5 A) and only the application messages the
  venue supports (:data:`APP_MESSAGES`); MsgType (35) lists only those types;
* adds RptSeq (83), TradeID (1003, from FIX 5.0) and AggressorSide (20001, venue field) to the market-data
  entries of 35=W and 35=X: the stock file lacks RptSeq there, and QuickFIX re-parses a resent message with
  the dictionary, so a field missing from a group definition leaves the group and the entries are replayed
  mangled;
* adds OrdRejReason (103) values 16 and 18 (FIX 5.0), TrdMatchID (880) to the ExecutionReport and Account (1)
  to the OrderMassCancelRequest;
* removes every component and field no longer referenced, so the file documents exactly what the venue speaks.
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
APP_MESSAGES = ("D", "F", "G", "H", "q", "r", "8", "9", "j", "V", "W", "X", "Y")

# (number, name, type, enum values) of fields the stock FIX 4.4 dictionary does not define.
NEW_FIELDS: tuple[tuple[int, str, str, tuple[tuple[str, str], ...]], ...] = (
    (1003, "TradeID", "STRING", ()),  # FIX 5.0: identifies the trade in market data
    (20001, "AggressorSide", "CHAR", (("1", "BUY"), ("2", "SELL"))),  # venue: side of the taking order
)
# Enum values added to stock fields: tag -> (value, description).
NEW_VALUES: dict[int, tuple[tuple[str, str], ...]] = {
    103: (("16", "PRICE_EXCEEDS_CURRENT_PRICE_BAND"), ("18", "INVALID_PRICE_INCREMENT")),  # from FIX 5.0
}
# Fields inserted into a message or component after an existing field: (container, after, new field names).
INSERTIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("component:MDFullGrp", "MDEntryPositionNo", ("RptSeq", "TradeID", "AggressorSide")),
    ("component:MDIncGrp", "MDEntryPositionNo", ("RptSeq", "TradeID", "AggressorSide")),
    ("message:8", "LastLiquidityInd", ("TrdMatchID",)),
    ("message:q", "Side", ("Account",)),
)
# Fields the venue relies on, checked after the build: container -> names (searched through components).
REQUIRED_CONTENT: dict[str, tuple[str, ...]] = {
    "message:A": ("Username", "Password", "HeartBtInt", "ResetSeqNumFlag"),
    "message:8": (
        "OrderID", "ClOrdID", "OrigClOrdID", "ExecID", "ExecType", "OrdStatus", "OrdRejReason", "Account",
        "Symbol", "Side", "OrderQty", "OrdType", "Price", "TimeInForce", "ExecInst", "LastQty", "LastPx",
        "LeavesQty", "CumQty", "AvgPx", "TransactTime", "Text", "TrdMatchID", "LastLiquidityInd",
    ),
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
        "MDEntryType", "Symbol", "MDEntryTime", "TradeID", "AggressorSide",
    ),
}
REQUIRED_VALUES: dict[int, tuple[str, ...]] = {18: ("6",), 103: ("16", "18")}


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
    for message in list(messages):
        if message.get("msgtype") not in keep:
            messages.remove(message)
    missing = keep - {m.get("msgtype") for m in messages}
    if missing:
        raise SystemExit(f"stock dictionary lacks message types {sorted(missing)}")

    by_number = {int(f.get("number", "0")): f for f in fields_section}
    for number, name, ftype, values in NEW_FIELDS:
        if number in by_number:
            raise SystemExit(f"tag {number} already defined as {by_number[number].get('name')}")
        field = ET.Element("field", number=str(number), name=name, type=ftype)
        for enum, description in values:
            ET.SubElement(field, "value", enum=enum, description=description)
        by_number[number] = field
    for number, values in NEW_VALUES.items():
        present = {v.get("enum") for v in by_number[number]}
        for enum, description in values:
            if enum not in present:
                by_number[number].append(ET.Element("value", enum=enum, description=description))
        by_number[number][:] = sorted(by_number[number], key=lambda v: int(v.get("enum", "0")))
    for key, after, names in INSERTIONS:
        _insert_after(_find(root, key), after, names)

    # Prune what the kept messages no longer reach, then list only the kept types in MsgType (35).
    header, trailer = root.find("header"), root.find("trailer")
    assert header is not None and trailer is not None
    used_components, used_fields = _referenced(root, [header, trailer, *messages])
    for component in list(components_section):
        if component.get("name") not in used_components:
            components_section.remove(component)
    fields_section[:] = [by_number[n] for n in sorted(by_number) if by_number[n].get("name") in used_fields]
    msg_type = by_number[35]
    msg_type[:] = [v for v in msg_type if v.get("enum") in keep]

    _check(root)
    ET.indent(root, space=" ")
    return root


def _check(root: ET.Element) -> None:
    """Fail the build if a field the venue relies on went missing or a reference dangles."""
    defined = {f.get("name") for f in root.iter("field") if f.get("number")}
    for key, names in REQUIRED_CONTENT.items():
        present = {c.get("name") for c in _children(root, _find(root, key))}
        lacking = [n for n in names if n not in present]
        if lacking:
            raise SystemExit(f"{key} lacks {lacking}")
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
