"""The operator channel end to end: ``fixgw admin`` as a subprocess and ``gateway.operator.call`` against the real
gateway, the answers an operator reads, what FIX clients see of the changes, the audit trail and the journal, and
restarts after SIGKILL and after a clean stop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fixclient import FixSession
from gateway import failpoint
from gateway.auth import hash_password
from gateway.config import load_config, parse_config
from gateway.operator import OperatorError, call, token_hash
from tests.conftest import PASSWORDS, ClientFactory, start_gateway, start_gateway_with, unique
from tests.fixtools import cancel, f, new_order, wait_er
from tests.gateway_process import DEMO_CONFIG, ROOT, GatewayProcess
from tools.admin import DEMO_TOKEN, _url_from_config

pytestmark = pytest.mark.timeout(120)

SCRIPT = Path(sys.executable).parent / "fixgw"
KILL_TEXT = "cancelled by the kill switch"
KILLED_TEXT = "account or session disabled by the kill switch"


def fixgw(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """``fixgw ARGS`` as a user runs it (no operator token in the environment: the demo token is the default)."""
    argv = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "gateway"]
    env = {k: v for k, v in os.environ.items() if k not in ("FIXGW_OPERATOR_TOKEN", "FIXGW_DEBUG")}
    return subprocess.run([*argv, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env,
                          check=False)  # fmt: skip


def url(gw: GatewayProcess) -> str:
    return f"http://127.0.0.1:{gw.ports['operator']}"


def admin(gw: GatewayProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return fixgw("admin", "--url", url(gw), *args)


def applied(done: subprocess.CompletedProcess[str]) -> str:
    """The one-line answer to a change the venue applied (exit status 0)."""
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    assert done.stdout.startswith("applied: "), done.stdout
    return done.stdout.strip()


def refused(done: subprocess.CompletedProcess[str]) -> str:
    """The one-line refusal of a request the venue turned down (exit status 1)."""
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert done.stdout.startswith("refused: ") and "Traceback" not in done.stderr, done.stdout
    return done.stdout.strip().removeprefix("refused: ")


def account(gw: GatewayProcess, name: str) -> dict[str, Any]:
    answer = call(url(gw), DEMO_TOKEN, "account", {"account": name})
    assert answer["ok"], answer
    return answer


def available(gw: GatewayProcess, name: str, asset: str) -> Decimal:
    return Decimal(account(gw, name)["balances"][asset]["available"])


def held(gw: GatewayProcess, name: str, asset: str) -> Decimal:
    return Decimal(account(gw, name)["balances"][asset]["held"])


def audit_lines(gw: GatewayProcess) -> list[dict[str, Any]]:
    path = gw.config.parent / "data" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_audit(gw: GatewayProcess, event: str, **fields: Any) -> dict[str, Any]:
    """The audit line of ``event`` with ``fields`` (the trail is flushed every 0.2 s)."""
    deadline = time.monotonic() + 10
    while True:
        for line in audit_lines(gw):
            if line["event"] == event and all(line.get(k) == v for k, v in fields.items()):
                return line
        if time.monotonic() > deadline:
            raise AssertionError(f"no audit line {event} {fields}")
        time.sleep(0.05)


def post(gw: GatewayProcess, path: str, body: bytes, token: str | None) -> tuple[int, dict[str, Any]]:
    """A raw request to the operator channel: (HTTP status, JSON answer)."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url(gw) + path, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


# ---------------------------------------------------------------------------- deposits and withdrawals


def test_deposit_and_withdraw_applied_once_and_refused_with_their_reason(gateway: GatewayProcess) -> None:
    usd = available(gateway, "ACC1", "USD")
    wire = unique("wire-")
    assert applied(admin(gateway, "deposit", "ACC1", "USD", "1000.5", "--funding-id", wire)) == (
        f"applied: deposit 1000.500000 USD to ACC1 (funding id {wire})"
    )
    assert available(gateway, "ACC1", "USD") == usd + Decimal("1000.5")
    # The same funding id again (a retried request): not applied twice, whatever the amount or direction.
    assert refused(admin(gateway, "deposit", "ACC1", "USD", "1000.5", "--funding-id", wire)) == (
        "funding id already applied"
    )
    assert refused(admin(gateway, "withdraw", "ACC1", "USD", "1", "--funding-id", wire)) == "funding id already applied"
    assert available(gateway, "ACC1", "USD") == usd + Decimal("1000.5")

    total = usd + Decimal("1000.5")
    too_much = refused(admin(gateway, "withdraw", "ACC1", "USD", str(total + 1), "--funding-id", unique("wd-")))
    assert too_much == f"insufficient funds: ACC1 has {total:.6f} USD available"
    assert refused(admin(gateway, "deposit", "ACC1", "USD", "0.0000001", "--funding-id", unique("w-"))) == (
        "0.0000001 USD has more decimals than USD's scale (6)"
    )
    assert refused(admin(gateway, "deposit", "ACC1", "AAPL", "1.5", "--funding-id", unique("w-"))) == (
        "1.5 AAPL has more decimals than AAPL's scale (0)"
    )
    assert refused(admin(gateway, "deposit", "ACC1", "USD", "0", "--funding-id", unique("w-"))) == (
        "amount must be positive"
    )
    assert "is not a number" in refused(admin(gateway, "deposit", "ACC1", "USD", "lots", "--funding-id", "w-x"))
    assert refused(admin(gateway, "deposit", "NOPE", "USD", "1", "--funding-id", unique("w-"))) == (
        "unknown account 'NOPE'"
    )
    assert refused(admin(gateway, "deposit", "ACC1", "EUR", "1", "--funding-id", unique("w-"))) == (
        "unknown asset 'EUR'"
    )
    negative = call(url(gateway), DEMO_TOKEN, "withdraw", {"account": "ACC1", "asset": "USD", "amount": "-5",
                                                          "funding_id": unique("w-")})  # fmt: skip
    assert negative == {"ok": False, "error": "amount must be positive"}
    missing = call(url(gateway), DEMO_TOKEN, "deposit", {"account": "ACC1", "asset": "USD", "amount": "5"})
    assert missing == {"ok": False, "error": "missing parameter 'funding_id'"}
    assert available(gateway, "ACC1", "USD") == total  # nothing refused moved anything

    wd = unique("wd-")
    assert applied(admin(gateway, "withdraw", "ACC1", "USD", "500.25", "--funding-id", wd)) == (
        f"applied: withdraw 500.250000 USD to ACC1 (funding id {wd})"
    )
    assert available(gateway, "ACC1", "USD") == total - Decimal("500.25")
    line = wait_audit(gateway, "operator_withdraw", funding_id=wd)
    assert (line["account"], line["asset"], line["amount"]) == ("ACC1", "USD", "500.250000")
    assert wait_audit(gateway, "operator_deposit", funding_id=wire)["amount"] == "1000.500000"
    refusal = wait_audit(gateway, "operator_refused", action="withdraw", reason="insufficient_funds")
    assert refusal["params"]["account"] == "ACC1"


def test_a_withdrawal_can_take_only_what_orders_do_not_hold(gateway: GatewayProcess, connect: ClientFactory):
    """Held funds belong to working orders: a withdrawal sees the available balance only."""
    s = connect("CLIENT2")
    btc = available(gateway, "ACC2", "BTC")
    ask = unique("h")
    new_order(s, ask, "2", str(btc - 1), "900000.00", symbol="BTC-USD", tif="1")  # holds all but 1 BTC
    wait_er(s, ask, "0")
    assert (available(gateway, "ACC2", "BTC"), held(gateway, "ACC2", "BTC")) == (1, btc - 1)
    assert refused(admin(gateway, "withdraw", "ACC2", "BTC", "1.5", "--funding-id", unique("wd-"))) == (
        "insufficient funds: ACC2 has 1.00000000 BTC available"
    )
    cx = unique("h")
    cancel(s, cx, ask, side="2", symbol="BTC-USD")
    wait_er(s, cx, "4")
    assert applied(admin(gateway, "withdraw", "ACC2", "BTC", "1.5", "--funding-id", unique("wd-")))
    assert (available(gateway, "ACC2", "BTC"), held(gateway, "ACC2", "BTC")) == (btc - Decimal("1.5"), 0)


# ---------------------------------------------------------------------------- limits


def test_limits_of_an_account_and_the_venue_default_refuse_orders_over_fix(
    gateway: GatewayProcess, connect: ClientFactory
) -> None:
    s3, s4 = connect("CLIENT3"), connect("CLIENT4")
    answer = applied(admin(gateway, "limits", "ACC3", "AAPL", "max_order_qty=50"))
    assert answer == ("applied: limits of ACC3 in AAPL: max_order_qty=50, max_order_notional=5000000.000000, "
                      "max_open_orders=1000, max_position=500000")  # fmt: skip
    over, at = unique("l"), unique("l")
    new_order(s3, over, "1", "51", "1.00")
    rejected = wait_er(s3, over, "8")
    assert (f(rejected, 58), f(rejected, 103), f(rejected, 39)) == (
        "order quantity above the account's limit",
        "3",
        "8",
    )
    new_order(s3, at, "1", "50", "1.00")
    wait_er(s3, at, "0")
    other = unique("l")
    new_order(s4, other, "1", "51", "1.00")  # the override is ACC3's alone
    wait_er(s4, other, "0")
    assert account(gateway, "ACC3")["limits"]["AAPL"]["max_order_qty"] == "50"
    assert account(gateway, "ACC4")["limits"]["AAPL"]["max_order_qty"] is None

    # The venue default, for every account without an override in that instrument.
    answer = applied(admin(gateway, "limits", "--default", "MSFT", "max_order_notional=1000"))
    assert answer.startswith("applied: limits of venue default in MSFT: max_order_qty=none, "
                             "max_order_notional=1000.000000,")  # fmt: skip
    try:
        for s in (s3, s4):
            big, ok = unique("n"), unique("n")
            new_order(s, big, "1", "11", "100.00", symbol="MSFT")  # 1,100 USD
            rejected = wait_er(s, big, "8")
            assert (f(rejected, 58), f(rejected, 103)) == ("order notional above the account's limit", "3")
            new_order(s, ok, "1", "10", "100.00", symbol="MSFT")  # 1,000 USD: at the limit
            wait_er(s, ok, "0")
    finally:
        applied(admin(gateway, "limits", "--default", "MSFT", "max_order_notional=5000000"))

    # none removes a limit; bad values and names are refused with what is wrong.
    applied(admin(gateway, "limits", "ACC3", "AAPL", "max_order_qty=none"))
    again = unique("l")
    new_order(s3, again, "1", "51", "1.00")
    wait_er(s3, again, "0")
    assert "unknown limit(s) max_orders" in refused(admin(gateway, "limits", "ACC3", "AAPL", "max_orders=5"))
    assert "is not a whole multiple of 1" in refused(admin(gateway, "limits", "ACC3", "AAPL", "max_order_qty=0.5"))
    assert refused(admin(gateway, "limits", "ACC3", "NOPE", "max_order_qty=5")) == "unknown symbol 'NOPE'"
    assert refused(admin(gateway, "limits", "NOPE", "AAPL", "max_order_qty=5")) == "unknown account 'NOPE'"
    assert wait_audit(gateway, "operator_limits", account=None, symbol="MSFT")["limits"]["max_order_notional"] == (
        "1000.000000"
    )


# ---------------------------------------------------------------------------- kill switch


def test_kill_and_revive_an_account(gateway: GatewayProcess, connect: ClientFactory) -> None:
    s = connect("CLIENT5")
    a, b = unique("k"), unique("k")
    new_order(s, a, "1", "10", "10.00", symbol="MSFT", tif="1")
    new_order(s, b, "2", "3", "9000.00", symbol="MSFT")
    wait_er(s, a, "0")
    wait_er(s, b, "0")
    assert held(gateway, "ACC5", "USD") > 0 and held(gateway, "ACC5", "MSFT") == 3
    assert applied(admin(gateway, "kill", "ACC5")) == "applied: kill ACC5, 2 working order(s) cancelled"
    for clordid in (a, b):
        assert f(wait_er(s, clordid, "4"), 58) == KILL_TEXT
    assert (held(gateway, "ACC5", "USD"), held(gateway, "ACC5", "MSFT")) == (0, 0)  # the holds went back
    refused_order = unique("k")
    new_order(s, refused_order, "1", "1", "10.00", symbol="MSFT")
    assert f(wait_er(s, refused_order, "8"), 58) == KILLED_TEXT
    listing = fixgw("admin", "--url", url(gateway), "accounts")
    assert listing.returncode == 0 and "ACC5 KILLED: " in listing.stdout
    assert account(gateway, "ACC5")["killed"] is True
    assert fixgw("admin", "--url", url(gateway), "account", "ACC5").stdout.splitlines()[0] == "ACC5 KILLED"
    assert refused(admin(gateway, "kill", "ACC55")) == "unknown account 'ACC55'"

    assert applied(admin(gateway, "revive", "ACC5")) == "applied: revive ACC5"
    after = unique("k")
    new_order(s, after, "1", "1", "10.00", symbol="MSFT")
    wait_er(s, after, "0")
    assert "ACC5 KILLED" not in fixgw("admin", "--url", url(gateway), "accounts").stdout
    assert wait_audit(gateway, "operator_kill", account="ACC5")["request_id"]
    assert wait_audit(gateway, "operator_revive", account="ACC5")["request_id"]


def test_kill_and_revive_a_session(gateway: GatewayProcess, connect: ClientFactory) -> None:
    s = connect("CLIENT6")
    a = unique("ks")
    new_order(s, a, "1", "10", "10.00", symbol="AAPL", tif="1")
    wait_er(s, a, "0")
    assert applied(admin(gateway, "kill", "--session", "CLIENT6")) == (
        "applied: kill session CLIENT6, 1 working order(s) cancelled"
    )
    assert f(wait_er(s, a, "4"), 58) == KILL_TEXT
    b = unique("ks")
    new_order(s, b, "1", "1", "10.00", symbol="AAPL")
    assert f(wait_er(s, b, "8"), 58) == KILLED_TEXT
    listing = fixgw("admin", "--url", url(gateway), "accounts").stdout
    assert "killed sessions: CLIENT6" in listing and "ACC6 KILLED" not in listing  # the session, not its account
    assert refused(admin(gateway, "kill", "--session", "CLIENT66")) == (
        "unknown session 'CLIENT66': not an order-entry session of this venue"
    )
    assert refused(admin(gateway, "kill", "--session", "MD1")).startswith("unknown session 'MD1'")
    assert applied(admin(gateway, "revive", "--session", "CLIENT6")) == "applied: revive session CLIENT6"
    c = unique("ks")
    new_order(s, c, "1", "1", "10.00", symbol="AAPL")
    wait_er(s, c, "0")
    assert "killed sessions" not in fixgw("admin", "--url", url(gateway), "accounts").stdout


# ---------------------------------------------------------------------------- the channel itself


def test_requests_without_the_token_or_for_unknown_actions_are_refused(gateway: GatewayProcess) -> None:
    usd = available(gateway, "ACC7", "USD")
    body = json.dumps({"account": "ACC7", "asset": "USD", "amount": "5", "funding_id": unique("t-")}).encode()
    assert post(gateway, "/v1/deposit", body, None) == (
        401,
        {"ok": False, "error": "missing or invalid operator token"},
    )
    assert post(gateway, "/v1/deposit", body, "not-the-token")[0] == 401
    assert post(gateway, "/v1/deposit", body, "")[0] == 401
    assert post(gateway, "/v1/explode", b"{}", DEMO_TOKEN) == (404, {"ok": False, "error": "unknown action 'explode'"})
    assert post(gateway, "/deposit", body, DEMO_TOKEN)[0] == 404
    assert post(gateway, "/v1/deposit", b"{not json", DEMO_TOKEN) == (
        400,
        {"ok": False, "error": "the body is not JSON"},
    )
    assert post(gateway, "/v1/deposit", b"[1, 2]", DEMO_TOKEN)[0] == 400
    assert available(gateway, "ACC7", "USD") == usd  # nothing was applied
    with pytest.raises(OperatorError, match="missing or invalid operator token"):
        call(url(gateway), "wrong", "accounts", {})
    done = fixgw("admin", "--url", url(gateway), "--token", "wrong", "accounts")
    assert done.returncode == 2 and done.stderr.strip() == "fixgw admin: error: missing or invalid operator token"
    unreachable = fixgw("admin", "--url", "http://127.0.0.1:1", "accounts")
    assert (
        unreachable.returncode == 2 and "cannot reach the operator channel at http://127.0.0.1:1" in unreachable.stderr
    )


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of the TCP sockets listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for name in ("tcp", "tcp6"):
        path = Path("/proc/net") / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                if len(raw) == 4:
                    found.add(".".join(str(b) for b in reversed(raw)))
                else:
                    found.add(raw.hex())
    return found


def test_the_channel_listens_on_loopback_only_by_default(gateway: GatewayProcess, tmp_path: Path) -> None:
    assert _listening_addresses(gateway.ports["operator"]) == {"127.0.0.1"}
    raw = {"instruments": {"X": {"tick_size": "0.01", "lot_size": "1", "max_qty": "10", "min_price": "0.01",
                                 "max_price": "10"}},
           "sessions": {"C": {"password_hash": hash_password("p", 1000), "accounts": ["A"]}},
           "assets": {"X": 0, "USD": 2},
           "operator": {"token_sha256": token_hash("t")}}  # fmt: skip
    raw["instruments"]["X"]["quote"] = "USD"
    cfg = parse_config(raw, base=tmp_path)
    assert (cfg.operator.host, cfg.operator.port) == ("127.0.0.1", 9470)


def test_the_demo_config_needs_no_flags(gateway: GatewayProcess) -> None:
    # The defaults come from the config: its [operator] address, and the demo token (whose hash the demo config
    # holds). Pointed at this test's own copy of the demo config (free ports), `fixgw admin` needs nothing else.
    demo = load_config(DEMO_CONFIG)
    assert _url_from_config(None) == f"http://127.0.0.1:{demo.operator.port}"
    assert token_hash(DEMO_TOKEN) == demo.operator.token_sha256
    done = fixgw("admin", "--config", str(gateway.config), "accounts")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(":")[0].removesuffix(" KILLED") for line in lines if not line.startswith("killed")] == [
        *(f"ACC{i}" for i in range(1, 10)),
        "FEES",
    ]
    assert all(" USD " in line for line in lines if line.startswith("ACC"))


def test_opening_balance_is_not_an_account(gateway: GatewayProcess) -> None:
    """``[accounts] opening_balance = {...}`` is the common opening balance, not an account of that name."""
    answer = call(url(gateway), DEMO_TOKEN, "accounts", {})
    assert [row["account"] for row in answer["accounts"]] == [f"ACC{i}" for i in range(1, 10)]
    cfg = load_config(DEMO_CONFIG)
    assert cfg.ledger is not None and "opening_balance" not in cfg.ledger.accounts
    assert set(cfg.opening_balances) == {f"ACC{i}" for i in range(1, 10)}


# ---------------------------------------------------------------------------- durability


def _logon(gw: GatewayProcess, comp_id: str) -> FixSession:
    s = FixSession("127.0.0.1", gw.oe_port, comp_id, PASSWORDS[comp_id], reset_seq=True)
    s.logon()
    return s


def _state(gw: GatewayProcess) -> dict[str, Any]:
    """Everything the operator can read: every account in full, the list, the killed sessions."""
    listing = call(url(gw), DEMO_TOKEN, "accounts", {})
    return {
        "accounts": listing,
        "text": fixgw("admin", "--url", url(gw), "accounts").stdout,
        **{name: account(gw, name) for name in (f"ACC{i}" for i in range(1, 10))},
        **{f"{name} text": fixgw("admin", "--url", url(gw), "account", name).stdout for name in ("ACC1", "ACC3")},
    }


def test_every_change_survives_sigkill_and_a_clean_restart_exactly(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path / "gw")
    c1, c2, c3, c4, c5 = (_logon(gw, f"CLIENT{i}") for i in range(1, 6))
    applied(admin(gw, "deposit", "ACC1", "USD", "1234.56", "--funding-id", "wire-1"))
    applied(admin(gw, "withdraw", "ACC2", "BTC", "0.5", "--funding-id", "wd-1"))
    applied(admin(gw, "limits", "ACC1", "AAPL", "max_order_qty=77"))
    applied(admin(gw, "limits", "--default", "MSFT", "max_position=1000"))
    # Holds (GTC orders: cancel-on-disconnect at restart takes only Day orders), trades with fees and rebates.
    new_order(c1, "bid", "1", "10", "100.00", tif="1")
    wait_er(c1, "bid", "0")
    new_order(c4, "hit", "2", "4", "100.00")  # AAPL: 4 at 100.00, taker fee 1 bp
    wait_er(c4, "hit", "F")
    new_order(c2, "ask", "2", "0.5", "30000.00", symbol="BTC-USD", tif="1")
    wait_er(c2, "ask", "0")
    new_order(c3, "lift", "1", "0.2", "30000.00", symbol="BTC-USD", tif="3")  # maker rebate 1 bp, taker 5 bp
    wait_er(c3, "lift", "F")
    new_order(c5, "gone", "1", "1", "50.00", symbol="MSFT", tif="1")
    wait_er(c5, "gone", "0")
    assert applied(admin(gw, "kill", "ACC5")).endswith("1 working order(s) cancelled")
    applied(admin(gw, "kill", "--session", "CLIENT6"))
    refused(admin(gw, "deposit", "ACC1", "USD", "1", "--funding-id", "wire-1"))
    before = _state(gw)
    assert before["ACC1"]["positions"][0]["net"] == "4" and before["ACC3"]["positions"][0]["net"] == "0.2000"
    assert before["accounts"]["fee_account"]["balances"]["USD"]["available"] != "0.000000"
    assert before["ACC1"]["limits"]["AAPL"]["max_order_qty"] == "77"
    assert before["ACC9"]["limits"]["MSFT"]["max_position"] == "1000"
    assert "  AAPL: net 4  avg 100" in before["ACC1 text"] and "  BTC-USD: net 0.2000  avg 30000" in before["ACC3 text"]
    journal = fixgw("journal", "print", str(gw.config.parent / "data" / "journal" / "commands.journal"))
    for kind in ("CONFIGURE", "DEPOSIT", "WITHDRAW", "SET_LIMITS", "KILL"):
        assert f"\n{kind} " in "\n" + "\n".join(line.split(None, 2)[2] for line in journal.stdout.splitlines())
    for session in (c1, c2, c3, c4, c5):
        session.close()

    gw.kill()
    gw.start()
    assert _state(gw) == before
    # Still in force after the restart, not only on display: the limit, the kill and the spent funding id.
    c1 = _logon(gw, "CLIENT1")
    over = unique("r")
    new_order(c1, over, "1", "78", "1.00")
    assert f(wait_er(c1, over, "8"), 58) == "order quantity above the account's limit"
    c5 = _logon(gw, "CLIENT5")
    dead = unique("r")
    new_order(c5, dead, "1", "1", "1.00")
    assert f(wait_er(c5, dead, "8"), 58) == KILLED_TEXT
    assert refused(admin(gw, "deposit", "ACC1", "USD", "1", "--funding-id", "wire-1")) == "funding id already applied"
    c1.logout()
    c5.logout()
    # A clean stop writes a snapshot; the next start loads it rather than replaying: the same state again, and the
    # configuration is not journaled again (it did not change), so the operator's venue default stands.
    before = _state(gw)
    assert gw.stop() == 0
    gw.start()
    assert _state(gw) == before
    configured = [line for line in audit_lines(gw) if line["event"] == "ledger_configured"]
    assert len(configured) == 1
    assert gw.stop() == 0


def test_an_operator_is_told_applied_only_once_the_change_is_durable(tmp_path: Path) -> None:
    """The process dies right after the journal commit of a deposit, before the loop turn's answers go out: the
    operator gets no answer (so never an "applied" that a crash could undo); the deposit is there after the
    restart, and the retry with the same funding id is refused as a duplicate, never applied twice."""
    gw = start_gateway_with(tmp_path / "gw", env={failpoint.VARIABLE: "exit_after_commit:1"})
    usd = available(gw, "ACC1", "USD")
    with pytest.raises(OperatorError, match="cannot reach the operator channel"):
        call(url(gw), DEMO_TOKEN, "deposit", {"account": "ACC1", "asset": "USD", "amount": "10", "funding_id": "f-1"})
    assert gw.proc is not None and gw.proc.wait(20) == failpoint.EXIT_STATUS
    gw.env = {}
    gw.start()
    assert available(gw, "ACC1", "USD") == usd + 10
    retry = call(
        url(gw), DEMO_TOKEN, "deposit", {"account": "ACC1", "asset": "USD", "amount": "10", "funding_id": "f-1"}
    )
    assert retry["ok"] is False and retry["reason"] == "duplicate_funding_id"
    assert available(gw, "ACC1", "USD") == usd + 10
    assert gw.stop() == 0
