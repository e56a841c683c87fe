"""The Parties block (NoPartyIDs 453) of a NewOrderSingle: found in the message's text, checked, and kept as FIX
text so that every ExecutionReport about the order can carry it unchanged (Rules of Engagement 5.1).

QuickFIX has already parsed the block with the dictionary and checked its NumInGroup count (Reject 373=16
otherwise), but not the values inside it (pitfall: QuickFIX checks enumerations of body fields only), nor the
count of the nested PartySubIDs. What is left is checked here, entry by entry, and refused the way QuickFIX
refuses the same faults elsewhere: a missing field with BusinessMessageReject 380=5 (``FieldNotFound``), a value
FIX 4.4 does not define with Reject 373=5 (``IncorrectTagValue``).

Text, not objects: ``Message.toString()`` writes each entry in the dictionary's order (448, 447, 452, then 802
and its 523/803 pairs), so the block is one contiguous slice of it, echoed as is.
"""

from __future__ import annotations

import re

import quickfix as fix

SOH = "\x01"
NO_PARTY_IDS, PARTY_ID, PARTY_ID_SOURCE, PARTY_ROLE = 453, 448, 447, 452
NO_PARTY_SUB_IDS, PARTY_SUB_ID, PARTY_SUB_ID_TYPE = 802, 523, 803

# The FIX 4.4 values (QuickFIX's FIX44.xml; tests/test_fix_codes.py compares them with the venue dictionary).
PARTY_ID_SOURCES = frozenset("BCDEFGHI123456789A")
PARTY_ROLES = frozenset(str(role) for role in range(1, 39) if role != 23)
PARTY_SUB_ID_TYPES = frozenset(str(kind) for kind in range(1, 27))

# What check_parties refuses, by tag (the Rules of Engagement list them; tests/test_docs.py compares).
ENTRY_REQUIRED, SUB_ENTRY_REQUIRED = (PARTY_ID, PARTY_ID_SOURCE, PARTY_ROLE), (PARTY_SUB_ID, PARTY_SUB_ID_TYPE)
ENTRY_VALUES = {PARTY_ID_SOURCE: PARTY_ID_SOURCES, PARTY_ROLE: PARTY_ROLES}
SUB_ENTRY_VALUES = {PARTY_SUB_ID_TYPE: PARTY_SUB_ID_TYPES}
REQUIRED = ENTRY_REQUIRED + SUB_ENTRY_REQUIRED  # missing: FieldNotFound
VALUE_CHECKED = (*ENTRY_VALUES, NO_PARTY_SUB_IDS, *SUB_ENTRY_VALUES)  # wrong: IncorrectTagValue

# A field's rank in its entry: an entry (or sub-entry) starts again when a rank does not increase.
_ENTRY = {"448": 0, "447": 1, "452": 2, "802": 3}
_SUB_ENTRY = {"523": 0, "803": 1}
_BLOCK = re.compile("\x01(453=[^\x01]*\x01(?:(?:448|447|452|802|523|803)=[^\x01]*\x01)*)")
MEMO_LIMIT = 2_000  # accepted blocks remembered by a PartiesCheck


def parties_text(text: str) -> str:
    """The slice of a message's FIX text (``Message.toString()``) from ``453=`` to the end of its last entry."""
    found = _BLOCK.search(text)
    assert found is not None, "no NoPartyIDs (453) in the message"
    return found.group(1)


class PartiesCheck:
    """:func:`check_parties`, remembering the blocks it accepted: a firm sends the same few blocks (its traders and
    clients) over and over, and a set lookup costs ~0.05 us where a check costs a few. Refusals are not remembered.
    Bounded: it starts afresh at :data:`MEMO_LIMIT` blocks, so no client can grow it."""

    def __init__(self) -> None:
        self.accepted: set[str] = set()

    def __call__(self, block: str) -> str:
        if block not in self.accepted:
            check_parties(block)
            if len(self.accepted) >= MEMO_LIMIT:
                self.accepted.clear()
            self.accepted.add(block)
        return block


def check_parties(block: str) -> str:
    """``block`` (from :func:`parties_text`) if every entry is complete and uses FIX 4.4 values; otherwise raises
    ``FieldNotFound`` (a missing PartyID, PartyIDSource, PartyRole, PartySubID or PartySubIDType) or
    ``IncorrectTagValue`` (an undefined PartyIDSource, PartyRole or PartySubIDType, or a NoPartySubIDs that does
    not count the entries that follow it)."""
    entries: list[tuple[dict[str, str], list[dict[str, str]]]] = []
    rank = sub_rank = len(_ENTRY)
    for pair in block.split(SOH)[1:-1]:
        tag, value = pair.split("=", 1)
        if tag in _ENTRY:
            if _ENTRY[tag] <= rank:
                entries.append(({}, []))
            rank = _ENTRY[tag]
            entries[-1][0][tag] = value
        else:
            subs = entries[-1][1]
            if not subs or _SUB_ENTRY[tag] <= sub_rank:
                subs.append({})
            sub_rank = _SUB_ENTRY[tag]
            subs[-1][tag] = value
    for entry, subs in entries:
        _check_entry(entry, ENTRY_REQUIRED, ENTRY_VALUES)
        if entry.get(str(NO_PARTY_SUB_IDS), "0") != str(len(subs)):
            raise fix.IncorrectTagValue(NO_PARTY_SUB_IDS)
        for sub in subs:
            _check_entry(sub, SUB_ENTRY_REQUIRED, SUB_ENTRY_VALUES)
    return block


def _check_entry(entry: dict[str, str], required: tuple[int, ...], values: dict[int, frozenset[str]]) -> None:
    for tag in required:
        if str(tag) not in entry:
            raise fix.FieldNotFound(tag)
    for tag, allowed in values.items():
        if entry[str(tag)] not in allowed:
            raise fix.IncorrectTagValue(tag)
