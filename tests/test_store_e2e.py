"""The store beside a real gateway: what clients received over FIX is what the store holds, on both backends, and
kill -9 of the store or of the gateway in the middle of a load loses no row and duplicates none."""

from __future__ import annotations

import random
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import simplefix

from engine import ExecType, OrdStatus
from fixclient import FixSession
from fixclient import field as fix_field
from gateway.config import VenueConfig, load_config
from gateway.journal import ScanResult, read_records
from gateway.operator import call
from store.db import StoreError, open_backend
from tests.conftest import PASSWORDS, start_gateway
from tests.gateway_process import ROOT, GatewayProcess
from tests.store_support import assert_store_holds, http_json, replay, table
from tools.admin import DEMO_TOKEN
from tools.simulator import SimSession, Simulator

pytestmark = pytest.mark.timeout(120)


def store_overrides(backend: tuple[str, str], enabled: bool = True) -> dict[str, object]:
    return {"store.enabled": enabled, "store.backend": backend[0], "store.dsn": backend[1]}


def position(cfg: VenueConfig) -> int:
    try:
        db = open_backend(cfg)
    except StoreError:
        return -1  # not created yet
    try:
        return int(db.fetch("SELECT position FROM store_position")[0][0])
    except Exception:  # the follower has not migrated yet
        return -1
    finally:
        db.close()


def store_trades(cfg: VenueConfig) -> int:
    try:
        db = open_backend(cfg)
    except StoreError:
        return 0  # not created yet
    try:
        return int(db.fetch("SELECT count(*) FROM trades")[0][0])
    except Exception:  # the follower has not migrated yet
        return 0
    finally:
        db.close()


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def caught_up(cfg: VenueConfig) -> bool:
    journal = cfg.data_dir / "journal" / "commands.journal"
    return journal.exists() and position(cfg) == journal.stat().st_size


def gone(pid: int) -> bool:
    """The process has exited (a zombie nobody reaped counts as exited)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def store_http(gw: GatewayProcess) -> str:
    port = tomllib.loads(gw.config.read_text())["store"]["http_port"]
    return f"http://127.0.0.1:{port}"


# ---------------------------------------------------------------------------- what the clients received


class RecordingSimulator(Simulator):
    """The simulator, keeping every ExecutionReport its sessions receive."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reports: list[dict[int, str]] = []

    def on_message(self, s: SimSession, msg: simplefix.FixMessage) -> None:
        if fix_field(msg, 35) == "8":
            self.reports.append({int(tag): value.decode() for tag, value in msg.pairs})
        super().on_message(s, msg)


@pytest.fixture
def sessions(request: pytest.FixtureRequest) -> Iterator[Callable[[GatewayProcess], list[FixSession]]]:
    opened: list[FixSession] = []

    def logon(gw: GatewayProcess) -> list[FixSession]:
        for comp_id in ("CLIENT1", "CLIENT2", "CLIENT3"):
            s = FixSession("127.0.0.1", gw.oe_port, comp_id, PASSWORDS[comp_id], reset_seq=True)
            s.logon()
            opened.append(s)
        return opened

    yield logon
    for s in opened:
        if s.sock is not None:
            s.logout()


def simulate(fix_sessions: list[FixSession], symbol: str, tick: str, lot: str, seed: int) -> RecordingSimulator:
    sims = [SimSession(s.sender, s) for s in fix_sessions]
    base = "100.00" if symbol == "AAPL" else "50000.00"
    sim = RecordingSimulator(sims, symbol, Decimal(base), Decimal(tick), Decimal(lot), 300.0, 1.2, None,
                             random.Random(seed))  # fmt: skip
    sim.run()
    return sim


def test_store_holds_what_the_clients_received(
    store_backend: tuple[str, str], tmp_path: Path, sessions: Callable[[GatewayProcess], list[FixSession]]
) -> None:
    gw = start_gateway(tmp_path / "gw", **store_overrides(store_backend))  # fixgw serve starts the store
    cfg = load_config(gw.config)
    fix_sessions = sessions(gw)
    sims = [simulate(fix_sessions, "AAPL", "0.01", "1", 1), simulate(fix_sessions, "BTC-USD", "0.01", "0.0001", 2)]
    wait_until(lambda: caught_up(cfg), 30, "the store to catch up")
    db = open_backend(cfg)
    stored = {r[0]: r[1:] for r in table(db, "SELECT exec_id, exec_type, status, clordid, order_id, leaves, cum, "
                                             "last_qty, last_px, trade_id FROM executions")}  # fmt: skip
    reports = [r for sim in sims for r in sim.reports]

    def pump() -> bool:  # the last reports of the run may still be on their way to the clients
        for sim in sims:
            sim.pump(0.01)
        reports[:] = [r for sim in sims for r in sim.reports]
        return {int(r[17]) for r in reports if r[150] != "I"} == set(stored)

    wait_until(pump, 10, "every stored execution to reach its client")
    received = {
        int(r[17]): (
            ExecType(r[150]).name, OrdStatus(r[39]).name, r[11], int(r[37]) if r[37] != "NONE" else None,
            r[151] if r[37] != "NONE" else None, r[14] if r[37] != "NONE" else None, r.get(32), r.get(31),
            int(r[527]) if 527 in r else None,
        )
        for r in reports if r[150] != "I"
    }  # fmt: skip
    assert stored == received
    # Trades: one row per trade, both sides, as the two clients involved were told.
    sides: dict[int, dict[str, dict[int, str]]] = {}
    for r in reports:
        if r[150] == "F":
            sides.setdefault(int(r[527]), {})[r[54]] = r
    want = {
        tid: (s["1"][55], s["1"][31], s["1"][32], "BUY" if s["1"][851] == "2" else "SELL", s["1"][1], s["1"][11],
              int(s["1"][37]), int(s["1"][17]), s["2"][1], s["2"][11], int(s["2"][37]), int(s["2"][17]),
              s["1"][12], s["2"][12], s["1"][479])  # each side's fee as its Commission (12), in CommCurrency (479)
        for tid, s in sides.items()
    }  # fmt: skip
    got = table(db, "SELECT trade_id, symbol, price, qty, aggressor, buy_account, buy_clordid, buy_order_id, "
                    "buy_exec_id, sell_account, sell_clordid, sell_order_id, sell_exec_id, buy_fee, sell_fee, "
                    "fee_asset FROM trades")  # fmt: skip
    assert {r[0]: r[1:] for r in got} == want
    assert any(Decimal(r[13]) > 0 for r in got) and any(Decimal(r[14]) < 0 for r in got)  # fees and rebates
    # Balances: what the gateway's own ledger says, on its operator channel, for every account and the fee account.
    wait_until(lambda: caught_up(cfg), 30, "the store to catch up")
    accounts = call(f"http://127.0.0.1:{gw.ports['operator']}", DEMO_TOKEN, "accounts", {})
    ledger = {
        (row["account"], asset): (b["available"], b["held"])
        for row in [*accounts["accounts"], accounts["fee_account"]]
        for asset, b in row["balances"].items()
    }
    assert {(r[0], r[1]): r[2:] for r in table(db, "SELECT account, asset, available, held FROM balances")} == ledger
    assert len(table(db, "SELECT account FROM positions")) >= 2
    assert len(want) > 50 and {r[1] for r in got} == {"AAPL", "BTC-USD"}
    # The statistics over HTTP, from the store process `fixgw serve` started.
    stats = {s["symbol"]: s for s in http_json(store_http(gw) + "/stats")}
    for symbol in ("AAPL", "BTC-USD"):
        mine = [r for r in got if r[1] == symbol]
        assert stats[symbol]["trades"] == len(mine)
        assert Decimal(stats[symbol]["volume"]) == sum(Decimal(r[3]) for r in mine)
    db.close()
    # Stopping the gateway stops the store, after it has written the shutdown's records too.
    store_pid = http_json(store_http(gw) + "/status")["pid"]
    assert not gone(store_pid)
    assert gw.stop() == 0
    wait_until(lambda: gone(store_pid), 20, "the store process to stop")
    assert caught_up(cfg)


# ---------------------------------------------------------------------------- crashes under load


def loadgen(gw: GatewayProcess, tmp_path: Path, seconds: float = 6.0) -> subprocess.Popen[str]:
    passwords = tmp_path / "passwords.txt"
    passwords.write_text("".join(f"CLIENT{n}=pass{n}\n" for n in range(1, 4)))
    argv = [sys.executable, "-m", "bench.loadgen", "--port", str(gw.oe_port), "--sessions", "3", "--rate", "1500",
            "--seconds", str(seconds), "--warmup", "0.2", "--cross-fraction", "0.3",
            "--password-file", str(passwords)]  # fmt: skip
    return subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def start_store(cfg_path: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "gateway", "store", "--config", str(cfg_path)], cwd=ROOT,
                                stdout=out, stderr=out)  # fmt: skip


def test_store_killed_mid_load_restarts_without_loss_or_duplicates(store_backend: tuple[str, str], tmp_path: Path):
    gw = start_gateway(tmp_path / "gw", **store_overrides(store_backend, enabled=False))
    cfg = load_config(gw.config)
    log = tmp_path / "store.log"
    store = start_store(gw.config, log)
    # The load starts once the store runs, and lasts long enough for two restarts on a busy machine (6 s from the
    # store's launch once ended before its second kill there).
    wait_until(lambda: "store_started" in log.read_text(), 30, "the store to start")
    load = loadgen(gw, tmp_path, seconds=12.0)
    try:
        for _ in range(2):  # twice, each time while rows are being written
            before = max(position(cfg), 0)
            wait_until(lambda before=before: position(cfg) > before, 20, "the store to write rows")
            assert load.poll() is None, "the load ended before the kill"
            store.kill()
            store.wait()
            store = start_store(gw.config, log)
        assert load.wait(30) == 0, load.stdout.read() if load.stdout else ""
        wait_until(lambda: caught_up(cfg), 30, "the restarted store to catch up")
        engine, executions, journal = replay(cfg)
        assert_store_holds(cfg, engine, executions, journal, min_trades=100, statuses=frozenset({"FILLED", "CANCELED"}))
    finally:
        store.kill()
        load.kill()
    assert log.read_text().count("store_started") == 3


def test_gateway_killed_mid_load_store_catches_up_after_restart(store_backend: tuple[str, str], tmp_path: Path):
    gw = start_gateway(tmp_path / "gw", **store_overrides(store_backend))
    cfg = load_config(gw.config)
    load = loadgen(gw, tmp_path, seconds=3.0)
    try:
        wait_until(lambda: position(cfg) > 0, 20, "the store to write rows")
        store_pid = http_json(store_http(gw) + "/status")["pid"]
        # Killed mid-load once the store holds 100 trades: the minimum the check below asks for, however slowly
        # a busy machine lets the load start (a byte count of journal undershot it under load).
        wait_until(lambda: store_trades(cfg) >= 100, 20, "100 trades in the store")
        assert load.poll() is None, "the load ended before the kill"
        gw.kill()
        # The orphaned store notices, writes what the journal holds (up to a record the kill may have torn) and
        # stops by itself.
        wait_until(lambda: gone(store_pid), 20, "the orphaned store to stop")
        scan = ScanResult()
        for _ in read_records(cfg.data_dir / "journal" / "commands.journal", 0, scan):
            pass
        assert position(cfg) == scan.good_end
        load.wait(30)
        gw.start()  # recovery cuts a torn tail, applies cancel-on-disconnect; a new store follows
        new_pid = 0

        def new_store() -> bool:
            nonlocal new_pid
            try:
                new_pid = http_json(store_http(gw) + "/status")["pid"]
            except OSError:
                return False
            return True

        wait_until(new_store, 20, "the new store's endpoint")
        assert new_pid != store_pid
        wait_until(lambda: caught_up(cfg), 30, "the new store to catch up")
        engine, executions, journal = replay(cfg)
        assert_store_holds(cfg, engine, executions, journal, min_trades=100, statuses=frozenset({"FILLED", "CANCELED"}))
        assert gw.stop() == 0
        wait_until(lambda: gone(new_pid), 20, "the store to stop with the gateway")
    finally:
        load.kill()
