"""The ``fixgw`` tools as a user runs them: subprocesses against the real gateway, assertions on their output."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

from gateway.config import DEFAULT_CONFIG, parse_config
from tests.conftest import ClientFactory, unique
from tests.fixtools import new_order, wait_er
from tests.gateway_process import ROOT, GatewayProcess, free_port
from tools.bench import gateway_template

pytestmark = pytest.mark.timeout(120)

SCRIPT = Path(sys.executable).parent / "fixgw"


def fixgw(*args: str, stdin: str | None = None, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run ``fixgw ARGS`` (the installed console script) and capture its output."""
    argv = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "gateway"]
    env = {k: v for k, v in os.environ.items() if k not in ("FIXGW_PASSWORD", "FIXGW_DEBUG")}
    return subprocess.run(
        [*argv, *args], input=stdin, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env, check=False
    )


def journal_path(gw: GatewayProcess) -> Path:
    return gw.config.parent / "data" / "journal" / "commands.journal"


def assert_one_line_error(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "error" in lines[0] and "Traceback" not in done.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_help_lists_every_subcommand() -> None:
    done = fixgw("--help")
    assert done.returncode == 0
    for command in ("serve", "client", "md", "simulate", "bench", "journal", "store", "trades", "orders", "stats"):
        assert command in done.stdout


def test_client_new_reject_fill_status_cancel_replace_cancelall(gateway: GatewayProcess, connect: ClientFactory):
    maker = connect("CLIENT1")
    ask = unique("mk")
    new_order(maker, ask, "2", "5", "200.00", symbol="MSFT")
    wait_er(maker, ask, "0")
    commands = [
        "buy 10 AAPL @50.00",  # c1 rests
        "sell 0 AAPL @50",  # c2 rejected by the venue
        "buy 5 MSFT @200.00",  # c3 trades with the maker's ask
        "status c1",
        "cancel c1",  # c4
        "buy 3 AAPL @51.00 gtc",  # c5
        "replace c5 6 @51.50",  # c6
        "bogus",
        "cancelall AAPL",  # c7
        "quit",
    ]
    done = fixgw("client", "--port", str(gateway.oe_port), "--comp-id", "CLIENT2", stdin="\n".join(commands) + "\n")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    out = done.stdout.splitlines()

    def line(pattern: str) -> str:
        found = [x for x in out if re.fullmatch(pattern, x)]
        assert found, f"no line matches {pattern!r} in:\n{done.stdout}"
        return found[0]

    assert re.search(r"\(ClOrdID [0-9a-z]+-c1\)", line(r"sent c1 buy 10 AAPL @50.00 DAY .*"))
    line(r"ER c1 NEW AAPL BUY 10@50\.00 leaves=10 cum=0")
    line(r"REJECT c2 order quantity must be positive")
    line(r"ER c3 NEW MSFT BUY 5@200\.00 leaves=5 cum=0")
    line(r"ER c3 FILL MSFT BUY 5@200\.00 last=5@200\.00 leaves=0 cum=5 avg=200(\.0+)?")
    line(r"ER c1 STATUS AAPL BUY 10@50\.00 leaves=10 cum=0 status=NEW")
    line(r'ER c4 CANCELED AAPL BUY 10@50\.00 leaves=0 cum=0 orig=c1 "cancelled at client request"')
    line(r"ER c6 REPLACED AAPL BUY 6@51\.50 leaves=6 cum=0 orig=c5")
    line(r"error: unknown command 'bogus' \(try help\)")
    line(r"MASS_CANCEL c7 AAPL cancelled=1")
    line(r'ER c6 CANCELED AAPL BUY 6@51\.50 leaves=0 cum=0 "cancelled by mass cancel"')
    assert wait_er(maker, ask, "F") is not None  # the other side of c3's trade


def test_client_balances_and_positions(gateway: GatewayProcess, connect: ClientFactory) -> None:
    maker = connect("CLIENT9")
    ask = unique("bp")
    new_order(maker, ask, "2", "2", "999.99")
    wait_er(maker, ask, "0")
    commands = ["help", "positions", "buy 2 AAPL @999.99", "positions", "balances", "balances now", "quit"]
    done = fixgw("client", "--port", str(gateway.oe_port), "--comp-id", "CLIENT8", stdin="\n".join(commands) + "\n")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    out = done.stdout.splitlines()
    assert "  balances | positions" in done.stdout  # the help says so
    shown = [x for x in out if x.startswith(("POSITION", "BALANCE", "no "))]
    # 2 x 999.99 = 1,999.98 USD and the 1 bp taker fee, 0.199998 USD: 2,000.179998 USD from 10,000,000.
    assert shown == [
        "no positions",
        "POSITION AAPL net=2 avg=999.99 mark=999.99 realized=-0.199998 unrealized=0.000000 USD",
        "BALANCE AAPL available=100002 held=0",
        "BALANCE BTC available=100.00000000 held=0.00000000",
        "BALANCE MSFT available=100000 held=0",
        "BALANCE USD available=9997999.820002 held=0.000000",
    ], done.stdout
    assert "error: usage: balances" in out
    other = fixgw("client", "--port", str(gateway.oe_port), "--comp-id", "CLIENT8", "--account", "ACC1",
                  stdin="balances\n")  # fmt: skip
    assert other.returncode == 0, other.stderr
    assert "POSITIONS_REJECT ACC1 unknown account or account not permitted for this session" in other.stdout


def test_errors_are_one_line_with_exit_2(gateway: GatewayProcess) -> None:
    assert_one_line_error(fixgw("client", "--port", "1", stdin=""), "cannot connect", "127.0.0.1:1")
    refused = fixgw("client", "--port", str(gateway.oe_port), "--comp-id", "CLIENT3", "--password", "wrong", stdin="")
    assert_one_line_error(refused, "refused")
    assert_one_line_error(fixgw("client", "--port", "1", "--comp-id", "NOBODY", stdin=""), "FIXGW_PASSWORD")
    assert_one_line_error(fixgw("simulate", "--port", "1", "--orders", "5"), "cannot connect")
    assert_one_line_error(fixgw("md", "--port", "1", "--symbol", "AAPL", "--once"), "cannot connect")
    assert_one_line_error(fixgw("journal", "verify", "/nonexistent/commands.journal"), "no journal")
    assert_one_line_error(fixgw("journal", "book", str(journal_path(gateway)), "--symbol", "NOPE"), "unknown symbol")
    assert_one_line_error(fixgw("nonsense"), "invalid choice")
    assert_one_line_error(fixgw("bench", "nothing"), "invalid choice")


def test_simulate_sends_flow_and_prints_a_summary(gateway: GatewayProcess) -> None:
    done = fixgw(
        "simulate", "--port", str(gateway.oe_port), "--symbol", "BTC-USD", "--base-price", "30000.00",
        "--orders", "120", "--rate", "100", "--sessions", "CLIENT4,CLIENT5", "--seed", "7",
        "--config", str(gateway.config),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    figures = {k: v for k, v in re.findall(r"(\w+)=([0-9.]+)", done.stdout)}
    assert int(figures["orders"]) == 120
    assert int(figures["new"]) > 0 and int(figures["cancel"]) > 0 and int(figures["replace"]) > 0
    assert int(figures["ers"]) >= int(figures["new"])  # every order is answered at least once
    assert int(figures["fills"]) > 0 and int(figures["trades"]) > 0
    assert int(figures["session_rejects"]) == 0 and int(figures["unanswered"]) == 0
    assert "seed 7" in done.stdout and "2 session(s)" in done.stdout


def test_journal_print_verify_book(gateway: GatewayProcess, connect: ClientFactory, tmp_path: Path) -> None:
    path = journal_path(gateway)
    before = fixgw("journal", "verify", str(path))
    assert before.returncode == 0, before.stdout + before.stderr
    records_before = int(re.search(r"ok: (\d+) records", before.stdout).group(1))  # type: ignore[union-attr]

    s = connect("CLIENT6")
    bid, ask = unique("jb"), unique("ja")
    new_order(s, bid, "1", "7", "1.23", symbol="MSFT", tif="1")
    new_order(s, ask, "2", "9", "9999.00", symbol="MSFT", tif="1")
    wait_er(s, bid, "0")
    wait_er(s, ask, "0")

    verified = fixgw("journal", "verify", str(path))
    assert verified.returncode == 0
    records = int(re.search(r"ok: (\d+) records", verified.stdout).group(1))  # type: ignore[union-attr]
    assert records == records_before + 2

    printed = fixgw("journal", "print", str(path), "--from", str(records_before))
    assert printed.returncode == 0, printed.stderr
    lines = printed.stdout.splitlines()
    assert len(lines) == 2
    assert re.match(
        rf"\s*{records_before}\s+\d+ NEW owner=CLIENT6 clordid={bid} account=ACC6 symbol=MSFT side=BUY", lines[0]
    )
    assert "price=123 qty=7" in lines[0] and "tif=GTC" in lines[0]
    decimals = fixgw("journal", "print", str(path), "--from", str(records_before), "--limit", "1",
                     "--config", str(gateway.config))  # fmt: skip
    assert decimals.stdout.count("\n") == 1 and "price=1.23 qty=7" in decimals.stdout
    assert fixgw("journal", "print", str(path), "--limit", "3").stdout.count("\n") == min(3, records)

    book = fixgw("journal", "book", str(path), "--symbol", "MSFT", "--config", str(gateway.config))
    assert book.returncode == 0, book.stderr
    assert f"MSFT after {records} records" in book.stdout
    assert re.search(r"^\s+1\s+7\s+1\.23 \|", book.stdout, re.M), book.stdout
    assert re.search(r"\| 9999\.00\s+9\s+1$", book.stdout, re.M), book.stdout
    earlier = fixgw("journal", "book", str(path), "--symbol", "MSFT", "--at", str(records_before))
    assert earlier.returncode == 0 and f"after {records_before} records" in earlier.stdout
    assert "1.23" not in earlier.stdout and "9999.00" not in earlier.stdout

    # A flipped byte in the last record's payload, and a torn tail: both found, with the offset, exit 1.
    last_offset = int(lines[1].split()[1])
    corrupt = tmp_path / "corrupt.journal"
    shutil.copy(path, corrupt)
    data = bytearray(corrupt.read_bytes())
    data[last_offset + 8 + 5] ^= 0x20
    corrupt.write_bytes(bytes(data))
    bad = fixgw("journal", "verify", str(corrupt))
    assert bad.returncode == 1, bad.stdout
    assert f"first bad record at offset {last_offset}" in bad.stdout and "checksum" in bad.stdout
    torn = tmp_path / "torn.journal"
    torn.write_bytes(path.read_bytes()[:-3])
    bad = fixgw("journal", "verify", str(torn))
    assert bad.returncode == 1 and f"first bad record at offset {last_offset}" in bad.stdout


def test_md_once_prints_the_book(gateway: GatewayProcess, connect: ClientFactory) -> None:
    s = connect("CLIENT7")
    bid = unique("md")
    new_order(s, bid, "1", "4", "2.50", symbol="MSFT")
    wait_er(s, bid, "0")
    done = fixgw("md", "--port", str(gateway.md_port), "--comp-id", "MD2", "--symbol", "MSFT", "--depth", "3", "--once")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("MSFT")
    assert re.search(r"^\s+1\s+4\s+2\.50 \|", done.stdout, re.M), done.stdout


def test_md_serves_the_gap_counter_on_its_metrics_port(gateway: GatewayProcess, tmp_path: Path) -> None:
    """`fixgw md --metrics-port P` (README, config/prometheus.yml): the live view serves its RptSeq gap counter."""
    port = free_port()
    argv = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "gateway"]
    out = tmp_path / "md.out"
    with out.open("wb") as stdout:
        proc = subprocess.Popen(
            [*argv, "md", "--port", str(gateway.md_port), "--comp-id", "MD4", "--symbol", "AAPL",
             "--metrics-port", str(port)],
            stdout=stdout, stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + 30
        scraped = ""
        while not (out.read_text().startswith("AAPL  depth 10") and "fixgw_md_client_rptseq_gaps_total{" in scraped):
            assert proc.poll() is None, out.read_text()
            assert time.monotonic() < deadline, (out.read_text(), scraped)
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
                scraped = response.read().decode()
            time.sleep(0.05)
        assert 'fixgw_md_client_rptseq_gaps_total{symbol="AAPL"} 0.0' in scraped.splitlines()
    finally:
        proc.send_signal(signal.SIGINT)  # how a live view ends
        assert proc.wait(10) == 0, out.read_text()


def test_bench_engine_passes_arguments_through() -> None:
    done = fixgw("bench", "engine", "--commands", "3000", "--runs", "1", "--resting", "2000")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "commands/s" in done.stdout
    assert "bench.engine_bench --commands 3000 --runs 1 --resting 2000" in done.stderr


def test_bench_gateway_template_is_a_valid_venue_config(tmp_path: Path) -> None:
    text = gateway_template(DEFAULT_CONFIG.read_text())
    filled = text.replace("@PORT@", "7001").replace("@FREE_PORT_1@", "7002").replace("@FREE_PORT_2@", "7003")
    filled = filled.replace("@FREE_PORT_3@", "7004")
    filled = filled.replace("@WORKDIR@", str(tmp_path)).replace("@REPO@", str(ROOT))
    cfg = parse_config(tomllib.loads(filled), base=tmp_path)
    assert (cfg.order_entry_port, cfg.market_data.port, cfg.metrics_port) == (7001, 7002, 7003)
    assert cfg.data_dir == tmp_path / "data" and cfg.dictionary.exists()
    assert not cfg.store.enabled  # the benchmark measures the gateway alone
    assert {s.comp_id for s in cfg.sessions} >= {f"CLIENT{n}" for n in range(1, 5)}
    assert not any(s.role.value == "drop_copy" for s in cfg.sessions)  # no copy of every report stored either
    assert cfg.operator.port == 0 and cfg.max_messages_per_second == 0
    assert cfg.ledger is not None and not any(cfg.ledger.default_limits.values())


@pytest.mark.timeout(90)
def test_bench_gateway_measures_the_real_gateway() -> None:
    done = fixgw(
        "bench", "gateway", "--rates", "200", "--reps", "1", "--seconds", "1", "--warmup", "0.2", "--sessions", "2",
        timeout=80,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Target: gateway" in done.stdout and "-m gateway serve" in done.stdout
    assert re.search(r"^\| 200 \| [0-9.]+ \|", done.stdout, re.M), done.stdout
