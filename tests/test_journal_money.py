"""``fixgw journal verify`` and ``print`` on journals that carry money: conservation checked after a replay of a real
gateway's journal with trades, fees, rebates, deposits and withdrawals; the operator's commands printed readably."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from engine import Configure, Fund
from fixclient import FixSession
from gateway.journal import Durability, Journal
from gateway.operator import call
from seqlog.segments import segments
from tests.conftest import PASSWORDS, start_gateway
from tests.fixtools import cancel, new_order, wait_er
from tests.gateway_process import GatewayProcess
from tests.ledger_helpers import funded_engine, ledger_of, setup
from tests.store_support import random_flow, store_config, write_journal
from tests.test_operator import fixgw
from tools.admin import DEMO_TOKEN
from tools.journal import conservation_report

pytestmark = pytest.mark.timeout(120)


def journal_of(gw: GatewayProcess) -> Path:
    return gw.config.parent / "data" / "journal" / "commands.journal"


def operator(gw: GatewayProcess, action: str, **params: object) -> dict[str, object]:
    answer = call(f"http://127.0.0.1:{gw.ports['operator']}", DEMO_TOKEN, action, dict(params))
    assert answer["ok"], answer
    return answer


def test_verify_replays_a_real_journal_and_every_asset_balances(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path / "gw")
    c1, c2, c3, c4 = (FixSession("127.0.0.1", gw.oe_port, f"CLIENT{i}", PASSWORDS[f"CLIENT{i}"], reset_seq=True)
                      for i in range(1, 5))  # fmt: skip
    for s in (c1, c2, c3, c4):
        s.logon()
    operator(gw, "deposit", account="ACC1", asset="USD", amount="1000", funding_id="wire-1")
    operator(gw, "withdraw", account="ACC2", asset="USD", amount="250.5", funding_id="wd-1")
    operator(gw, "limits", account="ACC3", symbol="AAPL", changes={"max_order_qty": "500"})
    operator(gw, "kill", session="CLIENT9")
    operator(gw, "revive", session="CLIENT9")
    new_order(c1, "bid", "1", "10", "100.00", tif="1")  # AAPL
    wait_er(c1, "bid", "0")
    new_order(c2, "hit", "2", "4", "100.00")  # 400 USD: the taker pays 1 bp, 0.04 USD
    wait_er(c2, "hit", "F")
    new_order(c3, "ask", "2", "0.5", "30000.00", symbol="BTC-USD", tif="1")
    wait_er(c3, "ask", "0")
    new_order(c4, "lift", "1", "0.2", "30000.00", symbol="BTC-USD", tif="3")  # 6,000 USD: 5 bp paid, 1 bp rebated
    wait_er(c4, "lift", "F")
    cancel(c1, "cx", "bid")
    wait_er(c1, "cx", "4")
    fees = operator(gw, "accounts")["fee_account"]["balances"]["USD"]["available"]  # type: ignore[index]
    assert fees == "2.440000"  # 0.04 + 3.00 - 0.60
    for s in (c1, c2, c3, c4):
        s.logout()
    assert gw.stop() == 0

    done = fixgw("journal", "verify", str(journal_of(gw)), "--config", str(gw.config))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert re.match(r"ok: \d+ records, \d+ bytes, every CRC-32 matches", lines[0])
    assert re.match(r"conservation after replaying \d+ records:", lines[1])
    assert lines[2].split() == ["asset", "available", "held", "fee", "account", "deposits", "-", "withdrawals",
                                "imbalance"]  # fmt: skip
    rows = {line.split()[0]: line.split()[1:] for line in lines[3:7]}
    assert sorted(rows) == ["AAPL", "BTC", "MSFT", "USD"]
    assert rows["USD"][2:] == ["2.440000", "90000749.500000", "0.000000"]  # fees; 9 x 10M + 1,000 - 250.50; 0
    assert rows["BTC"][2:] == ["0.00000000", "900.00000000", "0.00000000"]
    for asset, (available, held, fee_account, net, imbalance) in rows.items():
        assert Decimal(available) + Decimal(held) + Decimal(fee_account) == Decimal(net), asset
        assert Decimal(imbalance) == 0
    assert lines[7:] == ["balanced: every asset's imbalance is 0"]

    printed = fixgw("journal", "print", str(journal_of(gw)), "--config", str(gw.config)).stdout
    operator_lines = [line.split(None, 2)[2] for line in printed.splitlines() if "request_id=op-" in line]
    shown = [re.sub(r" (request_id|ts)=\S+", "", line) for line in operator_lines]
    assert shown == [
        "DEPOSIT account=ACC1 asset=USD amount=1000.000000 funding_id=wire-1",
        "WITHDRAW account=ACC2 asset=USD amount=250.500000 funding_id=wd-1",
        "SET_LIMITS account=ACC3 symbol=AAPL max_order_qty=500 max_order_notional=5000000.000000 "
        "max_open_orders=1000 max_position=500000",
        "KILL session=CLIENT9",
        "REVIVE session=CLIENT9",
    ]
    configure = next(line for line in printed.splitlines() if " CONFIGURE " in line)
    assert "assets=USD:6,BTC:8,AAPL:0,MSFT:0" in configure and "fee_account=FEES funds_checks=on" in configure
    assert "BTC-USD=BTC/USD:maker=-1bp:taker=5bp" in configure and "accounts=ACC1,ACC2," in configure
    opening = [line.split(None, 2)[2] for line in printed.splitlines() if "funding_id=opening:ACC1:" in line]
    assert [re.sub(r" (request_id|ts)=\S+", "", line) for line in opening] == [
        f"DEPOSIT account=ACC1 asset={asset} amount={amount} funding_id=opening:ACC1:{asset}"
        for asset, amount in (("USD", "10000000.000000"), ("BTC", "100.00000000"), ("AAPL", "100000"),
                              ("MSFT", "100000"))
    ]  # fmt: skip


def test_conservation_report_names_an_imbalance() -> None:
    """What verify prints when the ledger does not balance (here: a unit conjured into an account by hand)."""
    engine = funded_engine()
    ledger = ledger_of(engine)
    engine.process(Fund("r", "A", "USD", -5, "wd"))
    lines, balanced = conservation_report(ledger)
    assert balanced and lines[-1] == "balanced: every asset's imbalance is 0"
    ledger.accounts["A"].balance("USD").available += 1
    lines, balanced = conservation_report(ledger)
    assert not balanced
    usd = next(line.split() for line in lines if line.split()[0] == "USD")
    assert usd[-1] == "0.000001"
    assert lines[-1] == "IMBALANCE in USD: the ledger created or destroyed money (a bug)"


def test_verify_of_a_journal_without_money(tmp_path: Path) -> None:
    cfg = store_config(tmp_path, "sqlite")
    _, _, path = write_journal(cfg, random_flow(3, 200))  # a bare engine: no Configure record, no ledger
    done = fixgw("journal", "verify", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[1] == "no ledger in this journal (the venue has no [assets]): no money to check"


def test_print_of_a_later_segment_shows_money_in_the_asset(tmp_path: Path) -> None:
    """The money rules (asset scales) are journaled once, in the first segment: printing a later trading day alone
    still shows its withdrawals in the asset, not as raw units."""
    first = tmp_path / "journal" / "commands.journal"
    journal = Journal(first, Durability.WRITE)
    journal.append(Configure(setup().to_dict(), 1))
    journal.append(Fund("op-1", "A", "USD", 1_500_000, "dep-1", 2))
    journal.roll("20261207")
    journal.append(Fund("op-2", "A", "USD", -250_000, "wd-1", 3))
    journal.close()
    later = segments(first)[1][1]
    done = fixgw("journal", "print", str(later))
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    assert line.split(None, 2)[2].startswith("WITHDRAW request_id=op-2 account=A asset=USD amount=0.250000 "), line
