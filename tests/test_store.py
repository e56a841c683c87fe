"""The post-trade store on a real SQLite file and a real PostgreSQL server: rows, restarts, statistics, queries.

A journal of varied order flow is written the way the gateway writes it; the follower turns it into rows; the rows
are checked against what the engine itself reported and holds.
"""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import time
import tomllib
import zlib
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine import Execution, MatchingEngine
from gateway.config import VenueConfig
from gateway.journal import Durability, Journal, write_snapshot
from gateway.logs import get_logger
from roles.config import ClusterConfig, ShardSpec
from seqlog import HEADER, FileLogReader
from store.db import Batch, Position, PositionConflict, StoreBusy, StoreError, open_backend
from store.follower import Follower, Source
from store.queries import Filters, parse_time, to_ns, trades, venue_tz
from store.schema import BOOTSTRAP, EXECUTIONS, LATEST, MIGRATIONS, TRADES
from store.stats import stats
from tests.gateway_process import DEMO_CONFIG, ROOT, dump_toml, free_port
from tests.store_support import (
    assert_money_holds,
    assert_shards_hold,
    assert_store_holds,
    http_json,
    money_flow,
    random_flow,
    split_by_shard,
    store_config,
    table,
    write_journal,
)

pytestmark = pytest.mark.timeout(60)
LOG = get_logger("store-test")


REJECT_ROW = (10**9, None, "X", "ACC1", "AAPL", "BUY", "c", None, "REJECTED", "REJECTED", None, None, None, None,
              None, None, None, None, None, "unknown_symbol", 1, 0)  # an executions row  # fmt: skip


def follower(cfg: VenueConfig, path: Path, lock_timeout: float = 5.0) -> Follower:
    f = Follower(cfg, open_backend(cfg, writer=True), FileLogReader(path), LOG)
    f.start(lock_timeout)
    return f


def follow_to_end(cfg: VenueConfig, path: Path) -> Follower:
    f = follower(cfg, path)
    while f.step():
        pass
    return f


def test_rows_are_the_engines_events_written_once_across_restarts(store_backend: tuple[str, str], tmp_path: Path):
    cfg = store_config(tmp_path, *store_backend)
    commands = random_flow(7, 2500)
    engine, executions, path = write_journal(cfg, commands, snapshot_after=(900, 1700))
    # Uneven batches, and a new follower (as a restarted process would be) after each round: each one rebuilds its
    # engine from the committed position, some from a snapshot, and must neither skip nor repeat a row.
    snapshots_used = []
    for size in (1, 7, 300, 64, 1000, 5000, 2):
        f = follower(cfg, path)
        snapshots_used.append(f.snapshot)
        f.step(size)
        f.step(size // 2 + 1)
        f.close()
    f = follow_to_end(cfg, path)
    snapshots_used.append(f.snapshot)
    f.close()
    assert snapshots_used[0] is None and snapshots_used[-1] is not None and "snapshot" in snapshots_used[-1]
    assert_store_holds(cfg, engine, executions, path)


def test_balances_positions_and_fees_are_the_engines_ledger(store_backend: tuple[str, str], tmp_path: Path) -> None:
    cfg = store_config(tmp_path, *store_backend)
    commands = money_flow(cfg, 11, 2500)
    engine, executions, path = write_journal(cfg, commands, snapshot_after=(1100,))
    refused = [e for e in executions if e.reason is not None and e.reason.code == "insufficient_funds"]
    assert refused and engine.ledger is not None and not any(engine.ledger.imbalance().values())
    # Uneven batches and restarts (some from the snapshot): a balance touched in one batch and read in a later one
    # must still be written as the ledger has it at each batch's end.
    for size in (3, 400, 1, 900):
        f = follower(cfg, path)
        f.step(size)
        f.close()
    f = follow_to_end(cfg, path)
    assert f.snapshot is not None
    f.close()
    assert_store_holds(cfg, engine, executions, path)
    assert_money_holds(cfg, engine, executions)


def test_decimals_read_back_exactly_as_written(store_backend: tuple[str, str], tmp_path: Path) -> None:
    """PostgreSQL hands NUMERIC back as Decimal, whose str() writes "0.00000001" as "1E-8": the tools must not."""
    cfg = store_config(tmp_path, *store_backend)
    _, _, path = write_journal(cfg, [])
    f = follower(cfg, path)
    row = (10**9, "BTC-USD", "30000.00", "0.00000001", 3_000_000, 1, "BUY", 1, "A", "ACC1", "a", 1, 2, "B", "ACC2",
           "b", 2, "0.00000000", "-0.00000001", "BTC", 1, 0)  # fmt: skip
    f.backend.write(Batch(inserts={TRADES: [row]}), f.pos, f.pos)
    f.close()
    db = open_backend(cfg)
    got = trades(db, Filters(), venue_tz("UTC"))
    db.close()
    assert [(t["qty"], t["buy_fee"], t["sell_fee"]) for t in got] == [("0.00000001", "0.00000000", "-0.00000001")]


def test_a_second_store_on_the_same_database_waits(store_backend: tuple[str, str], tmp_path: Path) -> None:
    cfg = store_config(tmp_path, *store_backend)
    _, _, path = write_journal(cfg, random_flow(1, 50))
    first = follower(cfg, path)
    t0 = time.monotonic()
    with pytest.raises(StoreBusy, match="another store process"):
        follower(cfg, path, lock_timeout=0.3)
    assert time.monotonic() - t0 >= 0.3
    first.close()
    follower(cfg, path, lock_timeout=0.3).close()  # free again


def test_a_write_from_a_stale_position_is_refused_whole(store_backend: tuple[str, str], tmp_path: Path) -> None:
    cfg = store_config(tmp_path, *store_backend)
    _, _, path = write_journal(cfg, random_flow(2, 200))
    f = follow_to_end(cfg, path)
    with pytest.raises(PositionConflict):
        f.backend.write(Batch(inserts={EXECUTIONS: [REJECT_ROW]}), Position(0), Position(1, 1))
    assert f.backend.fetch("SELECT COUNT(*) FROM executions WHERE exec_id = ?", (10**9,))[0][0] == 0
    assert f.backend.position().position == path.stat().st_size
    f.close()


def test_a_batch_that_fails_half_way_leaves_neither_rows_nor_position(store_backend: tuple[str, str], tmp_path: Path):
    cfg = store_config(tmp_path, *store_backend)
    _, _, path = write_journal(cfg, random_flow(2, 200))
    f = follow_to_end(cfg, path)
    before = f.backend.position()
    good = REJECT_ROW
    bad = (10**9 + 1, *good[1:5], None, *good[6:])  # side is NOT NULL: the database refuses the second row
    after = Position(before.position + 1, before.records + 1, before.position, 0)
    with pytest.raises(Exception, match=r"(?i)null"):
        f.backend.write(Batch(inserts={EXECUTIONS: [good, bad]}), before, after)
    assert f.backend.fetch("SELECT COUNT(*) FROM executions WHERE exec_id >= ?", (10**9,))[0][0] == 0
    assert f.backend.position() == before
    f.close()


def test_a_journal_that_does_not_match_the_database_is_refused(store_backend: tuple[str, str], tmp_path: Path):
    cfg = store_config(tmp_path, *store_backend)
    _, _, path = write_journal(cfg, random_flow(3, 300))
    follow_to_end(cfg, path).close()
    original = path.read_bytes()
    path.write_bytes(original[: len(original) // 2])  # cut below the store's position
    with pytest.raises(StoreError, match=r"does not match.*the record the store wrote last, at \d+, is not in it"):
        follower(cfg, path)
    path.unlink()
    write_journal(cfg, random_flow(4, 400))  # another day's journal, longer than the first
    with pytest.raises(StoreError, match=r"does not match.*the record the store wrote last, at \d+, is not in it"):
        follower(cfg, path)
    path.write_bytes(original)  # the right one again: fine
    follower(cfg, path).close()


def test_a_record_that_is_no_command_stops_the_store_with_a_clear_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, ("sqlite", ""), "UTC")
    from gateway.config import load_config

    cfg = load_config(config)
    _, _, path = write_journal(cfg, random_flow(5, 20))
    good_end = path.stat().st_size
    payload = orjson.dumps(["Z", "from a newer fixgw"])
    with path.open("ab") as f:  # intact (right length and CRC), but not a command this code knows
        f.write(HEADER.pack(len(payload), zlib.crc32(payload)) + payload)
    done = subprocess.run([sys.executable, "-m", "gateway", "store", "--config", str(config)], cwd=ROOT,
                          capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"the journal record at {good_end} is not a command this fixgw knows" in done.stderr
    assert "Traceback" not in done.stderr
    db = open_backend(cfg)
    assert db.position().position == good_end  # everything before it was written
    db.close()


def test_migrations_create_the_schema_once_and_readers_need_it(store_backend: tuple[str, str], tmp_path: Path):
    cfg = store_config(tmp_path, *store_backend)
    if cfg.store.backend.value == "sqlite":
        with pytest.raises(StoreError, match="no store database"):
            open_backend(cfg)
    writer = open_backend(cfg, writer=True)
    reader = open_backend(cfg)
    with pytest.raises(StoreError, match="schema version 0"):
        reader.check_readable()
    assert writer.migrate() == (0, LATEST)
    assert writer.migrate() == (LATEST, LATEST)
    reader.check_readable()
    versions = [r[0] for r in writer.fetch("SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == [m.version for m in MIGRATIONS]
    writer.fetch("INSERT INTO schema_migrations VALUES (?, 'from the future', 0) RETURNING version", (LATEST + 1,))
    with pytest.raises(StoreError, match="newer than this fixgw"):
        writer.migrate()
    writer.close()
    reader.close()


def recompute(trades: list[tuple[Any, ...]], now_ns: int, tick: Decimal) -> dict[str, Any]:
    """The 24-hour figures straight from the trade rows (id, price, qty, ts), with Decimal."""
    window = sorted((t for t in trades if now_ns - 86_400 * 10**9 < t[3] <= now_ns), key=lambda t: t[0])
    prices = [Decimal(p) for _, p, _, _ in window]
    volume = sum((Decimal(q) for _, _, q, _ in window), Decimal(0))
    notional = sum((Decimal(p) * Decimal(q) for _, p, q, _ in window), Decimal(0))
    places = Decimal(1).scaleb(tick.as_tuple().exponent - 6)  # type: ignore[operator]
    vwap = (notional / volume).quantize(places, ROUND_HALF_UP)
    return {
        "open": prices[0], "high": max(prices), "low": min(prices), "last": prices[-1], "volume": volume,
        "notional": notional, "vwap": vwap, "trades": len(window), "change": prices[-1] - prices[0],
        "change_pct": ((prices[-1] - prices[0]) * 100 / prices[0]).quantize(Decimal("0.01"), ROUND_HALF_UP),
    }  # fmt: skip


def test_24_hour_statistics_agree_with_a_recomputation_from_the_trades(store_backend: tuple[str, str], tmp_path: Path):
    cfg = store_config(tmp_path, *store_backend)
    start = 1_800_000_000 * 10**9
    step = 48 * 10**9  # 3,000 commands over 40 hours; 24 hours is exactly 1,800 steps
    write_journal(cfg, random_flow(11, 3000, start, step))
    follow_to_end(cfg, cfg.data_dir / "journal" / "commands.journal").close()
    db = open_backend(cfg)
    ticks = {s: Decimal(str(t)) for s, t in db.fetch("SELECT symbol, tick_size FROM instruments")}
    for now_ns in (start + 2500 * step, start + 2500 * step + 1, start + 3000 * step):
        got = {row["symbol"]: row for row in stats(db, venue_tz("UTC"), now_ns=now_ns)}
        assert set(got) == {i.symbol for i in cfg.instruments}
        assert got["MSFT"]["trades"] == 0 and got["MSFT"]["open"] is None
        for symbol in ("AAPL", "BTC-USD"):
            rows = table(db, f"SELECT trade_id, price, qty, ts_ns FROM trades WHERE symbol = '{symbol}'")
            want = recompute(rows, now_ns, ticks[symbol])
            assert 0 < want["trades"] < len(rows)  # the window leaves trades out on both sides of the test
            row = got[symbol]
            assert {k: row[k] if k == "trades" else Decimal(row[k]) for k in want} == want
            assert all(isinstance(row[k], str) for k in want if k != "trades")  # decimal strings, never floats
        assert got["AAPL"]["window_end"] == dt.datetime.fromtimestamp(now_ns // 10**9, dt.UTC).isoformat()
    # The boundaries: a trade at `now` is in, one exactly 24 hours old is out.
    first = table(db, "SELECT ts_ns FROM trades WHERE symbol = 'AAPL' ORDER BY trade_id LIMIT 1")[0][0]
    at_first = [t for t in table(db, "SELECT ts_ns FROM trades WHERE symbol = 'AAPL'") if t[0] == first]

    def count(now_ns: int) -> int:
        return int(stats(db, venue_tz("UTC"), "AAPL", now_ns=now_ns)[0]["trades"])

    assert count(first - 1) == 0 and count(first) == len(at_first)
    day = 86_400 * 10**9
    assert count(first + day - 1) - count(first + day) == len(at_first)
    db.close()


def test_time_bounds_follow_the_venue_time_zone() -> None:
    ny = venue_tz("America/New_York")
    now = dt.datetime(2026, 3, 8, 15, 0, tzinfo=ny).timestamp()  # the day clocks go forward: 23 hours long
    assert parse_time("today", ny, now) == to_ns(dt.datetime(2026, 3, 8, 5, 0, tzinfo=dt.UTC))
    assert parse_time("yesterday", ny, now) == to_ns(dt.datetime(2026, 3, 7, 5, 0, tzinfo=dt.UTC))
    assert parse_time("2026-03-09", ny, now) - parse_time("today", ny, now) == 23 * 3600 * 10**9
    assert parse_time("2026-03-08T10:30:00", ny, now) == to_ns(dt.datetime(2026, 3, 8, 14, 30, tzinfo=dt.UTC))
    assert parse_time("2026-03-08T10:30:00.25Z", ny, now) == to_ns(dt.datetime(2026, 3, 8, 10, 30, 0, 250000, dt.UTC))
    assert parse_time("4h", ny, now) == int((now - 4 * 3600) * 1e9)
    assert parse_time("now", ny, now) == int(now * 1e9)
    for bad in ("noon", "2026-13-01", "4w", ""):
        with pytest.raises(ValueError, match="not a time"):
            parse_time(bad, ny, now)


# ---------------------------------------------------------------------------- the commands, as a user runs them


def write_config(tmp_path: Path, backend: tuple[str, str], timezone: str, http_port: int = 0) -> Path:
    raw: dict[str, Any] = tomllib.loads(DEMO_CONFIG.read_text())
    raw["venue"].update(data_dir=str(tmp_path / "data"), timezone=timezone, log_format="json")
    raw["fix"]["dictionary"] = str(ROOT / "fix_specs" / "FIX44-venue.xml")
    raw["store"] = {"backend": backend[0], "dsn": backend[1], "http_port": http_port}
    path = tmp_path / "venue.toml"
    path.write_text(dump_toml(raw))
    return path


def fixgw(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=60, check=False)  # fmt: skip


def test_trades_orders_and_stats_commands(store_backend: tuple[str, str], tmp_path: Path) -> None:
    config = write_config(tmp_path, store_backend, "America/New_York")
    from gateway.config import load_config

    cfg = load_config(config)
    start = to_ns(dt.datetime(2026, 1, 14, 22, 0, tzinfo=dt.UTC))  # 17:00 in New York
    write_journal(cfg, random_flow(21, 1200, start, 60 * 10**9))  # 20 hours, over New York's midnight (05:00 UTC)
    missing = fixgw("trades", "--config", str(config))
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    assert "fixgw trades: error:" in missing.stderr
    assert "no store database" in missing.stderr or "start the store" in missing.stderr
    follow_to_end(cfg, cfg.data_dir / "journal" / "commands.journal").close()

    every = orjson.loads(fixgw("trades", "--config", str(config), "--format", "json").stdout)
    assert len(every) > 100 and [t["trade_id"] for t in every] == sorted(t["trade_id"] for t in every)
    midnight = to_ns(dt.datetime(2026, 1, 15, 5, 0, tzinfo=dt.UTC))
    done = fixgw("trades", "--config", str(config), "--format", "json", "--account", "ACC1", "--symbol", "AAPL",
                 "--since", "2026-01-15", "--until", "2026-01-15T03:00")  # fmt: skip
    assert done.returncode == 0, done.stderr
    got = orjson.loads(done.stdout)
    want = [t for t in every if t["symbol"] == "AAPL" and "ACC1" in (t["buy_account"], t["sell_account"])
            and midnight <= t["ts_ns"] < midnight + 3 * 3600 * 10**9]  # fmt: skip
    assert got == want and len(want) >= 3
    acc1 = orjson.loads(fixgw("trades", "--config", str(config), "--format", "json", "--account", "ACC1").stdout)
    assert acc1 == [t for t in every if "ACC1" in (t["buy_account"], t["sell_account"])]
    assert any(t["buy_account"] == "ACC1" != t["sell_account"] for t in acc1)  # either side matches
    assert any(t["sell_account"] == "ACC1" != t["buy_account"] for t in acc1)
    assert all(t["time"].endswith("-05:00") for t in got)
    assert isinstance(got[0]["price"], str) and isinstance(got[0]["trade_id"], int)

    csv_out = fixgw("orders", "--config", str(config), "--format", "csv", "--account", "ACC2", "--until", "2026-01-15")
    lines = csv_out.stdout.strip().splitlines()
    assert lines[0].startswith("order_id,created,updated,account") and len(lines) > 10
    assert all(",ACC2,CLIENT2," in line for line in lines[1:])
    assert all(line.split(",")[1] < "2026-01-15" for line in lines[1:])

    text = fixgw("trades", "--config", str(config), "--symbol", "BTC-USD").stdout.splitlines()
    assert text[0].split()[:4] == ["time", "trade_id", "symbol", "aggressor"] and len(text) > 10
    assert fixgw("trades", "--config", str(config), "--symbol", "MSFT").stdout == "no trades\n"

    stat = orjson.loads(fixgw("stats", "--config", str(config), "--format", "json", "--symbol", "AAPL").stdout)
    assert [s["symbol"] for s in stat] == ["AAPL"] and stat[0]["trades"] == 0  # the flow is months old by now
    for args, words in (
        (["trades", "--since", "noon"], "not a time"),
        (["stats", "--symbol", "NOPE"], "unknown symbol"),
        (["orders", "--format", "xml"], "invalid choice"),
    ):
        bad = fixgw(*args, "--config", str(config))
        assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and words in bad.stderr, bad.stderr


def test_store_process_serves_stats_and_status_over_http(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, ("sqlite", ""), "UTC", port)
    from gateway.config import load_config

    cfg = load_config(config)
    now = time.time_ns()
    _, _, path = write_journal(cfg, random_flow(31, 1500, now - 30 * 3600 * 10**9, 60 * 10**9))  # up to ~5 h ago
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "store", "--config", str(config)], cwd=ROOT,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                status = http_json(url + "/status")
                if status["position"] == path.stat().st_size:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "store did not catch up"
            time.sleep(0.05)
        assert status["records"] == 1500 and status["caught_up"] and status["pid"] == proc.pid
        assert status["lag"]["records"] == 1500 and status["lag"]["p50_ms"] > 5 * 3600 * 1000  # old records
        over_http = http_json(url + "/stats")
        db = open_backend(cfg)
        direct = stats(db, venue_tz("UTC"))
        db.close()
        strip = ("window_start", "window_end")
        assert [{k: v for k, v in s.items() if k not in strip} for s in over_http] == [
            {k: v for k, v in s.items() if k not in strip} for s in direct
        ]
        aapl = http_json(url + "/stats?symbol=AAPL")
        assert [{k: v for k, v in s.items() if k not in strip} for s in aapl] == [
            {k: v for k, v in s.items() if k not in strip} for s in direct if s["symbol"] == "AAPL"
        ]
        db = open_backend(cfg)
        aapl_trades = db.fetch("SELECT COUNT(*) FROM trades WHERE symbol = 'AAPL'")[0][0]
        db.close()
        assert 0 < aapl[0]["trades"] < aapl_trades  # the window cut the older ones off
        assert http_json(url + "/healthz") == {"ok": True}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert "store_stopped" in (proc.stderr.read() if proc.stderr else "")
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_database_of_one_log_keeps_its_position_when_migrated_for_several(store_backend: tuple[str, str], tmp_path):
    cfg = store_config(tmp_path, *store_backend)
    db = open_backend(cfg, writer=True)
    db._execute_script([BOOTSTRAP.format(bigint=db._bigint)], 0, "")
    for m in MIGRATIONS[:2]:  # a database written before migration 3, at some position
        db._execute_script(m.statements(db.dialect), m.version, m.description)
    db._execute_script(["UPDATE store_position SET position = 4242, records = 17, last_record = 4200, last_crc = 9"],
                       0, "")  # fmt: skip
    assert db.migrate() == (2, LATEST)
    assert db.position() == Position(4242, 17, 4200, 9, shard=0)  # the one log's position is shard 0's
    assert db.position(1) == Position(0, 0, None, None, shard=1)  # a second shard starts at its log's start
    assert db.fetch("SELECT shard, position FROM store_position ORDER BY shard") == [(0, 4242), (1, 0)]
    db.close()


def test_one_follower_writes_several_shards_logs_exactly_once(store_backend: tuple[str, str], tmp_path: Path):
    """Two shards' journals (each its engine's, with its id base) into one database, in uneven batches with
    restarts: every row once, a position per shard, each balance the sum of the two ledgers."""
    cfg = store_config(tmp_path, *store_backend)
    cluster = ClusterConfig(("nats://127.0.0.1:4222",), shards=(
        ShardSpec("eq", 0, frozenset({"AAPL", "MSFT"})), ShardSpec("crypto", 1, frozenset({"BTC-USD"}))))  # fmt: skip
    flows = split_by_shard(cluster, money_flow(cfg, 13, 2000))
    engines, executions, sources = [], [], []
    for shard in cluster.shards:
        path = tmp_path / shard.name / "commands.journal"
        journal = Journal(path, Durability.WRITE)
        instruments = [i for i in cfg.instruments if i.symbol in shard.symbols]
        engine = MatchingEngine(instruments, cfg.self_trade_prevention, id_base=shard.id_base)
        for i, cmd in enumerate(flows[shard.name]):
            journal.append(cmd)
            executions += [e for e in engine.process(cmd) if type(e) is Execution]
            if i == 700:
                write_snapshot(engine, path.parent / "snapshots", journal.offset)
        journal.close()
        engines.append(engine)
        sources.append((shard, path, instruments))

    def follower() -> Follower:
        logs = [Source(s.index, FileLogReader(p), p.parent / "snapshots", ins, s.id_base) for s, p, ins in sources]
        f = Follower(cfg, open_backend(cfg, writer=True), None, LOG, sources=logs)
        f.start()
        return f

    for size in (5, 600, 1, 333):
        f = follower()
        f.step(size)
        f.close()
    f = follower()
    assert all(lane.snapshot is not None for lane in f.lanes)  # each shard's engine rebuilt from its snapshot
    while f.step():
        pass
    f.close()
    assert {lane.source.shard: lane.pos.records for lane in f.lanes} == {0: len(flows["eq"]), 1: len(flows["crypto"])}
    assert_shards_hold(cfg, cluster, engines, executions)
