"""The venue dictionary loads, keeps the venue's fields inside the market-data groups, and is up to date.

Why these checks: QuickFIX re-parses every resent message with the dictionary, and a field missing from a
group definition silently leaves the group (pitfall 12 of the shared notes), so the group contents are tested
by round-tripping real messages, not by reading the XML.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import quickfix as fix

SPECS = Path(__file__).resolve().parent.parent / "fix_specs"
VENUE_XML = SPECS / "FIX44-venue.xml"
STOCK_XML = Path(sys.prefix) / "share" / "quickfix" / "FIX44.xml"
SOH = "\x01"
HEADER = "49=EXCH|56=CLIENT1|34=7|52=20240102-10:00:00.000|"


def _frame(body: str) -> str:
    """FIX string with BodyLength and CheckSum from ``body`` written with '|' as the separator."""
    body = ("35=" + body).replace("|", SOH)
    head = f"8=FIX.4.4{SOH}9={len(body)}{SOH}"
    checksum = sum((head + body).encode()) % 256
    return f"{head}{body}10={checksum:03d}{SOH}"


def _entries(entry: str, count: int) -> str:
    return "".join(entry.format(i=i) for i in range(1, count + 1))


@pytest.fixture(scope="module")
def dd() -> fix.DataDictionary:
    return fix.DataDictionary(str(VENUE_XML))


@pytest.fixture(scope="module")
def stock() -> fix.DataDictionary:
    if not STOCK_XML.exists():
        pytest.skip("stock FIX44.xml not installed with quickfix")
    return fix.DataDictionary(str(STOCK_XML))


def _roundtrip(text: str, dd: fix.DataDictionary) -> fix.Message:
    """Parse with the dictionary (validating), serialise, parse again: what a resend would go through."""
    first = fix.Message(text, dd, True)
    return fix.Message(first.toString(), dd, True)


def _group_fields(msg: fix.Message, count_tag: int, delimiter: int, tags: list[int]) -> list[dict[int, str]]:
    entries = []
    for i in range(1, int(msg.getField(count_tag)) + 1):
        group = fix.Group(count_tag, delimiter)
        msg.getGroup(i, group)
        entries.append({t: group.getField(t) for t in tags if group.isSetField(t)})
    return entries


def test_incremental_refresh_entries_keep_rptseq_and_trade_fields(dd: fix.DataDictionary) -> None:
    entry = "279=0|269=2|55=AAPL|270=100.0{i}|271={i}|273=10:00:00.00{i}|346=1|290=1|83={i}|1003=T{i}|20001={side}|"
    body = "X|" + HEADER + "268=3|" + "".join(entry.format(i=i, side=1 + i % 2) for i in range(1, 4))
    msg = _roundtrip(_frame(body), dd)
    tags = [279, 269, 55, 270, 271, 273, 346, 290, 83, 1003, 20001]
    entries = _group_fields(msg, 268, 279, tags)
    assert [e[83] for e in entries] == ["1", "2", "3"]
    assert [e[1003] for e in entries] == ["T1", "T2", "T3"]
    assert [e[20001] for e in entries] == ["2", "1", "2"]
    assert all(len(e) == len(tags) for e in entries), entries
    assert not msg.isSetField(83)  # RptSeq stayed inside the entries


def test_snapshot_entries_keep_rptseq_and_trade_fields(dd: fix.DataDictionary) -> None:
    entry = "269={t}|270=100.0{i}|271={i}|273=10:00:00.000|346=2|290={i}|83={i}|1003=T{i}|20001=1|"
    entries_text = "".join(entry.format(i=i, t=(0, 1, 2)[i - 1]) for i in range(1, 4))
    msg = _roundtrip(_frame("W|" + HEADER + "262=R1|55=AAPL|268=3|" + entries_text), dd)
    entries = _group_fields(msg, 268, 269, [269, 270, 271, 273, 346, 290, 83, 1003, 20001])
    assert [e[83] for e in entries] == ["1", "2", "3"]
    assert [e[290] for e in entries] == ["1", "2", "3"]
    assert [e[1003] for e in entries] == ["T1", "T2", "T3"]
    assert all(e[20001] == "1" for e in entries)


def test_stock_dictionary_would_push_rptseq_out_of_the_entries(stock: fix.DataDictionary) -> None:
    """The reason for the venue dictionary: with the stock one, RptSeq ends the group and validation fails."""
    msg = fix.Message(_frame("X|" + HEADER + "268=1|279=0|269=2|55=AAPL|270=100|271=1|83=4|"), stock, True)
    with pytest.raises(fix.TagNotDefinedForMessage):
        stock.validate(msg)


def test_aggressor_side_values_are_declared(dd: fix.DataDictionary) -> None:
    assert dd.isFieldValue(20001, "1") and dd.isFieldValue(20001, "2")
    assert not dd.isFieldValue(20001, "3")


def test_quickfix_does_not_check_values_inside_groups(dd: fix.DataDictionary) -> None:
    """Pinned binding behaviour: QuickFIX C++ validates enum values of body fields but not of group fields.

    So the gateway must check values it reads from groups itself (e.g. MDEntryType in a 35=V request).
    """
    body_level = fix.Message(_frame("X|" + HEADER + "20001=3|268=1|279=0|269=2|55=AAPL|270=100|"), dd, True)
    with pytest.raises(fix.IncorrectTagValue):
        dd.validate(body_level)
    in_group = fix.Message(_frame("X|" + HEADER + "268=1|279=9|269=2|55=AAPL|270=100|20001=3|"), dd, True)
    dd.validate(in_group)  # no exception: 279=9 and 20001=3 pass


def test_execution_report_uses_only_stock_values(dd: fix.DataDictionary, stock: fix.DataDictionary) -> None:
    """Order-entry messages the venue sends must validate with a client's stock FIX 4.4 dictionary."""
    reject = (
        "8|" + HEADER + "37=NONE|11=C1|17=E1|150=8|39=8|103=99|1=ACC1|55=AAPL|54=1|"
        "38=5|40=2|44=100.005|59=0|151=0|14=0|6=0|60=20240102-10:00:00.000|58=price is not a multiple of the tick size|"
    )
    fill = (
        "8|" + HEADER + "37=O1|527=T42|11=C1|41=C0|17=E2|150=F|39=2|1=ACC1|55=AAPL|54=2|38=5|40=2|44=100|"
        "59=0|32=5|31=100|151=0|14=5|6=100|60=20240102-10:00:00.000|851=2|"
    )
    for dictionary in (dd, stock):
        for body in (reject, fill):
            msg = _roundtrip(_frame(body), dictionary)
            dictionary.validate(msg)
        assert (msg.getField(527), msg.getField(851)) == ("T42", "2")
    assert not dd.isFieldValue(103, "16") and not dd.isFieldValue(103, "18")  # FIX 5.0 values: not sent
    assert not dd.isMsgField("8", 880)  # TrdMatchID: the trade id goes in SecondaryExecID (527)


def test_cancel_by_order_id_alone_but_replace_needs_origclordid(dd: fix.DataDictionary) -> None:
    by_order_id = "F|" + HEADER + "11=C2|37=O1|55=AAPL|54=1|60=20240102-10:00:00.000|"
    dd.validate(fix.Message(_frame(by_order_id), dd, True))
    replace = "G|" + HEADER + "11=C3|37=O1|55=AAPL|54=1|38=1|40=2|44=1|60=20240102-10:00:00.000|"
    with pytest.raises(fix.RequiredTagMissing):
        dd.validate(fix.Message(_frame(replace), dd, True))


def test_snapshot_carries_rptseq_in_the_body(dd: fix.DataDictionary) -> None:
    """RptSeq in the body of 35=W (last update reflected) round-trips beside the entries' own RptSeq."""
    entries = "268=2|269=0|270=99|271=3|83=40|269=1|270=101|271=4|83=41|"
    msg = _roundtrip(_frame("W|" + HEADER + "262=R1|83=42|55=AAPL|" + entries), dd)
    dd.validate(msg)
    assert msg.getField(83) == "42"
    assert [e[83] for e in _group_fields(msg, 268, 269, [269, 83])] == ["40", "41"]
    empty = _roundtrip(_frame("W|" + HEADER + "262=R2|83=7|55=AAPL|268=0|"), dd)
    dd.validate(empty)
    assert (empty.getField(83), empty.getField(268)) == ("7", "0")


def test_mass_cancel_messages(dd: fix.DataDictionary) -> None:
    request = "q|" + HEADER + "11=MC1|530=1|55=AAPL|54=1|1=ACC1|60=20240102-10:00:00.000|"
    report = "r|" + HEADER + "11=MC1|37=MC1|530=1|531=1|533=4|58=done|"
    rejected = "r|" + HEADER + "11=MC2|37=NONE|530=1|531=0|532=1|58=unknown symbol|"
    for body, tag, value in ((request, 1, "ACC1"), (report, 533, "4"), (rejected, 532, "1")):
        msg = fix.Message(_frame(body), dd, True)
        dd.validate(msg)
        assert msg.getField(tag) == value


def test_logon_keeps_credentials(dd: fix.DataDictionary) -> None:
    body = "A|" + HEADER + "98=0|108=30|141=Y|553=CLIENT1|554=secret|"
    msg = fix.Message(_frame(body), dd, True)
    dd.validate(msg)
    assert (msg.getField(553), msg.getField(554)) == ("CLIENT1", "secret")


def test_unsupported_types_are_declared_as_stubs_requiring_nothing(
    dd: fix.DataDictionary, stock: fix.DataDictionary
) -> None:
    """Every stock type is declared, with its stock fields, so QuickFIX hands it to the application, which answers
    35=j 380=3; nothing in a stub is required, so the answer is 35=j whatever the client left out."""
    supported = set("0123458A9jqrDFGHVWXY")
    for msg_type in supported | {"J", "AE", "6", "R", "S", "AR", "n", "BH"}:
        assert dd.isMsgType(msg_type), msg_type
        assert dd.isFieldValue(35, msg_type), msg_type
    assert dd.isField(20001) and dd.isField(1003)
    assert dd.isField(71) and dd.isMsgField("J", 71)  # AllocTransType: a stub keeps its stock fields
    assert dd.isMsgField("R", 146) and not dd.isMsgField("0", 55)
    strict(dd)
    dd.validate(fix.Message(_frame("J|" + HEADER + "70=A1|"), dd, True))  # the stock J requires 71, 626, 54...


def strict(dd: fix.DataDictionary) -> fix.DataDictionary:
    """``dd`` configured as the gateway's sessions are (gateway.config.quickfix_settings)."""
    dd.checkUserDefinedFields(True)
    dd.allowUnknownMsgFields(False)
    return dd


ALLOCATION = "J|" + HEADER + "70=A1|71=0|626=1|54=1|55=AAPL|53=1|6=1|75=20240102|"
ORDER = "D|" + HEADER + "11=C1|1=ACC1|55=AAPL|54=1|38=1|40=2|44=1|60=20240102-10:00:00.000|"
PARTY = "448=T1|447=D|452=11|"


@pytest.mark.parametrize(
    ("body", "error", "tag"),
    [
        ("0|" + HEADER + "999=HI|", fix.InvalidTagNumber, 999),  # 373=0: FIX 4.4 defines no tag 999
        ("0|" + HEADER + "55=MSFT|", fix.TagNotDefinedForMessage, 55),  # 373=2: a FIX 4.4 tag, not a Heartbeat's
        (ORDER + "4000=x|", fix.InvalidTagNumber, 4000),
        (ORDER + "20001=1|", fix.TagNotDefinedForMessage, 20001),  # the venue's own tag, defined for X and W only
        (ALLOCATION + "6000=x|", fix.InvalidTagNumber, 6000),
        (ORDER + "453=2|" + PARTY, fix.RepeatingGroupCountMismatch, 453),  # 373=16: fewer entries than counted
        (ORDER + "453=1|" + PARTY + PARTY, fix.RepeatingGroupCountMismatch, 453),  # more
        (ORDER + "386=3|336=PRE-OPEN|336=AFTER-HOURS|", fix.RepeatingGroupCountMismatch, 386),
        (ORDER.replace("40=2", "40=Z"), fix.IncorrectTagValue, 40),  # 373=5
        (ORDER.replace("11=C1|", ""), fix.RequiredTagMissing, 11),  # 373=1
        (ORDER.replace("38=1", "38=ten"), fix.IncorrectDataFormat, 38),  # 373=6
    ],
)
def test_every_tag_is_checked(dd: fix.DataDictionary, body: str, error: type[Exception], tag: int) -> None:
    """With AllowUnknownMsgFields=N QuickFIX applies every FIX 4.4 check to every message, the stubs' included."""
    strict(dd)
    with pytest.raises(error) as refused:
        dd.validate(fix.Message(_frame(body), dd, True))
    assert refused.value.field == tag  # RefTagID (371) of the Reject


def test_well_formed_messages_pass_strict_validation(dd: fix.DataDictionary) -> None:
    strict(dd)
    for body in (
        ALLOCATION,  # an unsupported type with its stock content: reaches the application (-> 35=j)
        "R|" + HEADER + "131=Q1|146=1|55=AAPL|38=5|",
        ORDER + "453=2|" + PARTY + "448=C9|447=D|452=3|802=1|523=desk 4|803=10|",  # Parties, sub-ids included
        ORDER + "386=2|336=PRE-OPEN|336=AFTER-HOURS|",
    ):
        dd.validate(fix.Message(_frame(body), dd, True))


def test_allow_unknown_msg_fields_would_switch_the_checks_off() -> None:
    """Pins why the acceptor does not set AllowUnknownMsgFields=Y (the earlier way to let empty stubs through):
    QuickFIX then skips the tag-number, tag-in-message and group-count checks of every tag below 5000."""
    lenient = fix.DataDictionary(str(VENUE_XML))
    lenient.checkUserDefinedFields(True)
    lenient.allowUnknownMsgFields(True)
    for body in ("0|" + HEADER + "999=HI|", "0|" + HEADER + "55=MSFT|", ORDER + "453=2|" + PARTY):
        lenient.validate(fix.Message(_frame(body), lenient, True))  # no exception: accepted silently


def test_post_only_exec_inst_is_allowed(dd: fix.DataDictionary) -> None:
    assert dd.isFieldValue(18, "6")


def test_committed_dictionary_is_up_to_date(stock: fix.DataDictionary) -> None:
    done = subprocess.run(
        [sys.executable, str(SPECS / "build_dictionary.py"), "--check", "--source", str(STOCK_XML)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
