"""The documentation tells the truth: its examples are what a real gateway sends today, its reject tables give each
reason the code and Text the code sends, its commands are the real ones."""

from __future__ import annotations

import difflib
import re
import subprocess
import sys

import pytest

from engine import ExecType, OrdStatus, Reason
from feeds.service import RequestReject
from gateway import fixcodes, parties
from gateway.application import BusinessReject
from gateway.config import PROFILES, SESSION_OPTIONS
from gateway.fixcodes import REJECT_CODES
from gateway.orders import ORDER_QTY, SYMBOL
from gateway.server import HEARTBEAT_REFUSAL
from tests import test_session_conformance as conformance
from tests.gateway_process import ROOT

pytestmark = pytest.mark.timeout(120)

RULES = (ROOT / "docs" / "rules-of-engagement.md").read_text()
README = (ROOT / "README.md").read_text()
BEFORE_EXAMPLES, EXAMPLES = RULES.split("\n## 13. Example messages\n")
PHASES_SECTION = BEFORE_EXAMPLES[BEFORE_EXAMPLES.index("\n## 11. Trading phases") : BEFORE_EXAMPLES.index("\n## 12. ")]

# What legitimately changes from run to run: timestamps and dates, and so BodyLength and CheckSum.
_PER_RUN = [
    (re.compile(r"\b(52|60|122)=\d{8}-\d{2}:\d{2}:\d{2}(\.\d+)?"), r"\1=<time>"),
    (re.compile(r"\b715=\d{8}\b"), "715=<date>"),  # ClearingBusinessDate of positions
    (re.compile(r"\|9=\d+\|"), "|9=<len>|"),
    (re.compile(r"\|10=\d{3}$", re.M), "|10=<sum>"),
]


def _normal(text: str) -> str:
    for pattern, replacement in _PER_RUN:
        text = pattern.sub(replacement, text)
    return text.strip()


def _section(number: str) -> str:
    """The text of section ``number`` (e.g. "7", "2.5") up to the next heading of the same or a higher level."""
    level = "###" if "." in number else "##"
    start = RULES.index(f"\n### {number} " if "." in number else f"\n## {number}. ")
    following = re.search(rf"\n#{{2,{len(level)}}} ", RULES[start + 1 :])
    return RULES[start : start + 1 + following.start()] if following else RULES[start:]


def _table(text: str, header: str) -> list[list[str]]:
    """The rows (as lists of cells) of the Markdown table whose header line starts with ``header``."""
    lines = text[text.index(header) :].splitlines()
    rows = []
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    assert rows, header
    return rows


def _values(cell: str, tag: int) -> set[str]:
    return set(re.findall(rf"\b{tag}=(\w+)", cell))


def _code(value: object | None) -> set[str]:
    return set() if value is None else {str(getattr(value, "value", value))}


def test_documented_examples_are_what_a_real_gateway_sends() -> None:
    done = subprocess.run(
        [sys.executable, "docs/examples.py"], cwd=ROOT, capture_output=True, text=True, timeout=100, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    fresh, documented = _normal(done.stdout), _normal(EXAMPLES[EXAMPLES.index("### ") :])
    diff = "\n".join(difflib.unified_diff(documented.splitlines(), fresh.splitlines(), "documented", "fresh", n=1))
    assert fresh == documented, f"section 13 is out of date: run docs/examples.py\n{diff[:4000]}"
    for msg_type in ("8", "9", "r", "W", "X", "Y", "5", "AO", "AP"):  # the venue really sent each kind
        assert re.search(rf"^V->C 8=FIX\.4\.4\|9=\d+\|35={msg_type}\|", done.stdout, flags=re.M), msg_type


def test_the_example_comparison_ignores_only_what_changes_per_run() -> None:
    a = "V->C 8=FIX.4.4|9=75|35=8|52=20261122-05:03:45.708962|17=3|60=20261122-05:03:45.7|10=232"
    b = "V->C 8=FIX.4.4|9=76|35=8|52=20261206-12:00:00.000001|17=3|60=20261206-12:00:00.1|10=007"
    assert _normal(a) == _normal(b)
    assert _normal(a) != _normal(b.replace("17=3", "17=4"))
    assert _normal("V->C 8=FIX.4.4|9=75|35=AP|715=20261122|10=001") == _normal(
        "V->C 8=FIX.4.4|9=75|35=AP|715=20270101|10=002"
    )


def test_reject_table_gives_each_reason_its_codes_and_text() -> None:
    """Section 7, row by row: the reason exists, and its OrdRejReason, CxlRejReason, MassCancelRejectReason,
    PosReqResult and Text are the ones the code sends."""
    rows = _table(_section("7"), "| Reason | When |")
    names = [row[0].strip("`") for row in rows]
    assert sorted(names) == sorted(Reason.__members__), "section 7 must list every Reason exactly once"
    for name, _when, er, cxl, mass, ao, text in rows:
        reason, codes = Reason[name.strip("`")], REJECT_CODES[Reason[name.strip("`")]]
        assert _values(er, 103) == _code(codes.ord_rej), f"{name}: OrdRejReason"
        assert _values(cxl, 102) == _code(codes.cxl_rej), f"{name}: CxlRejReason"
        assert _values(mass, 532) == _code(codes.mass_rej), f"{name}: MassCancelRejectReason"
        assert _values(ao, 728) == _code(codes.pos_rej), f"{name}: PosReqResult"
        if codes.pos_rej is not None:
            assert _values(ao, 729) == {str(int(fixcodes.PosReqStatus.REJECTED))}, name
        assert text == f"`{reason.text}`", name
        if codes.ord_rej is not None:
            assert _values(er, 150) <= {ExecType.REJECTED.value, ExecType.ORDER_STATUS.value}, name
        if codes.mass_rej is not None:
            assert _values(mass, 531) == {fixcodes.MassCancelResponse.CANCEL_REQUEST_REJECTED.value}, name


def _filled(text: str) -> str:
    return re.sub(r"<([^>]+)>", r"\1", text)


def test_market_data_reject_table_matches_the_code() -> None:
    rows = _table(_section("7"), "| MDReqRejReason (281) |")
    documented = set()
    for code_and_name, _when, text_cell in rows:
        code, name = code_and_name.split(" ", 1)
        text = _filled(re.findall(r"`([^`]+)`", text_cell)[0])
        matches = [
            r
            for r in RequestReject
            if r.code.value == code and re.fullmatch(re.escape(r.text).replace(r"\{\}", ".+"), text)
        ]
        assert matches, f"no MarketDataRequestReject with 281={code} and Text {text!r}"
        # The documented name is FIX's name for the code.
        assert re.sub(r"\W|_", "", name).lower() == matches[0].code.name.replace("_", "").lower(), code_and_name
        documented.update(matches)
    assert documented == set(RequestReject), "every MarketDataRequestReject is documented"


QUICKFIX_BUSINESS_REJECTS = {("3", "Unsupported Message Type"), ("5", "Conditionally Required Field Missing (55)")}
# Tags whose absence the order path answers with FieldNotFound, which QuickFIX turns into 380=5: Symbol and OrderQty
# on D and G (gateway/orders.py), the Parties fields (gateway/parties.py).
MISSING_FIELD_TAGS = {SYMBOL, ORDER_QTY, *parties.REQUIRED}


def test_business_reject_table_matches_the_code() -> None:
    rows = [row for row in _table(_section("2.5"), "| Message | When |") if row[0].startswith("BusinessMessageReject")]
    documented = {(_values(row[2], 380).pop(), re.findall(r"Text `([^`]+)`", row[2])[0]) for row in rows}
    venue = {(str(int(b.code)), b.text) for b in BusinessReject}
    missing_field = {text for code, text in documented if code == "5"}
    assert documented - {("5", text) for text in missing_field} == venue | {("3", "Unsupported Message Type")}
    assert all(text.startswith("Conditionally Required Field Missing (") for text in missing_field)
    # Every tag whose absence is answered with 380=5 is named in a 380=5 row, and no other.
    named = {int(tag) for row in rows if "380=5" in row[2] for tag in re.findall(r"\((\d+)\)", row[2])}
    assert named == MISSING_FIELD_TAGS
    # A missing Symbol or OrderQty raises FieldNotFound, which QuickFIX answers with 380=5, wherever it is documented.
    missing = re.findall(r"Missing: BusinessMessageReject `380=(\d+)`", BEFORE_EXAMPLES)
    assert len(missing) >= 3 and set(missing) == {
        str(int(fixcodes.BusinessRejectReason.CONDITIONALLY_REQUIRED_FIELD_MISSING))
    }


def test_parties_value_rejects_are_documented() -> None:
    """The Reject row for the Parties block names exactly the tags whose values the venue checks itself."""
    rows = [
        row for row in _table(_section("2.5"), "| Message | When |") if "Parties" in row[1] and row[0] == "Reject (3)"
    ]
    assert len(rows) == 1 and "`373=5`" in rows[0][2]
    assert {int(tag) for tag in re.findall(r"\((\d+)\)", rows[0][1])} == set(parties.VALUE_CHECKED)


def test_logon_refusals_are_the_ones_the_code_sends() -> None:
    """2.1's Logout table: what can refuse a Logon once its credentials are accepted (the HeartBtInt bounds, QuickFIX's
    MsgSeqNum check); the credential refusals are section 1.4's (test below)."""
    rows = _table(_section("2.1"), "| Logout Text | When |")
    documented = {re.findall(r"`([^`]+)`", row[0])[0] for row in rows}
    heartbeat = "Rejected Logon Attempt: " + HEARTBEAT_REFUSAL.format("<min>", "<max>")
    assert documented == {heartbeat, "MsgSeqNum too low, expecting N but received M"}


def test_session_protocol_table_gives_quickfix_texts() -> None:
    """2.6: every SessionRejectReason documented comes with the Text the venue really sends (the conformance tests
    check those texts against a running venue), and every one the tests exercise is documented."""
    documented = dict(re.findall(r"`373=(\d+)[^`]*` Text `([^`]+)`", _section("2.6")))
    assert documented == {**conformance.TEXTS, "9": "CompID problem", "10": "SendingTime accuracy problem"}


def test_session_options_table_gives_each_profiles_defaults() -> None:
    rows = _table(_section("2.7"), "| Option |")
    documented: dict[str, dict[str, str]] = {"production": {}, "test": {}}
    for options, production, test, _meaning in rows:
        names = re.findall(r"`(\w+)`", options)
        for profile, cell in (("production", production), ("test", test)):
            values = re.findall(r"`?(\w+)`?", cell)
            documented[profile].update(zip(names, values, strict=True))
    for profile, defaults in PROFILES.items():
        expected = {key: str(defaults[key]).lower() for key in SESSION_OPTIONS}
        assert documented[profile] == expected, profile
    # The README's configuration reference states the same production defaults.
    for key in SESSION_OPTIONS:
        row = next(line for line in README.splitlines() if line.startswith(f"| `{key}` | "))
        assert f"`{str(PROFILES['production'][key]).lower()}`" in row, row


# Enumerated tags the venue sends, with the values it can send (its tables).
SENT_VALUES: dict[int, set[str]] = {
    **{tag: {str(m.value) for m in cls} for cls, tag in fixcodes.FIX_TAGS.items()},
    150: {e.value for e in ExecType},
    39: {s.value for s in OrdStatus},
}
SENT_VALUES.pop(530)  # inbound: the documents name the values clients may send


def test_every_code_the_documents_mention_is_one_the_venue_sends() -> None:
    """`103=1`, `532=0`... anywhere in sections 1 to 12 must be a value the code's tables hold for that tag."""
    mentioned = re.findall(r"(?<![\w.=])(\d{2,3})=([0-9A-Z]+)\b", BEFORE_EXAMPLES)
    wrong = sorted({f"{tag}={value}" for tag, value in mentioned if value not in SENT_VALUES.get(int(tag), {value})})
    assert not wrong, f"codes documented but never sent: {wrong}"


def test_readme_opens_with_the_two_commands_ci_runs() -> None:
    head = README[:600]
    assert "make run" in head and "make test" in head
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, flags=re.M)


def test_logon_refusals_are_documented_as_the_venue_and_its_acceptor_send_them() -> None:
    """Section 1.4: its three Texts are the ones gateway/logon.py and the patched acceptor (third_party/quickfix)
    send, and it names every reason the audit trail and fix_logon_failures_total can give."""
    from gateway.logon import LOGON_PREFIX, Refusal

    section = _section("1.4")
    texts = {re.findall(r"`([^`]+)`", row[0])[0] for row in _table(section, "| Logout Text |")}
    assert texts == {LOGON_PREFIX + r.text for r in Refusal}
    assert set(re.findall(r"\(`([a-z_]+)`\)", section)) == {r.value for r in Refusal}
    patch = (ROOT / "third_party" / "quickfix" / "fixgw-1.16.0.patch").read_text()
    for text in texts:
        assert f'"{text}"' in patch, text
