"""Helpers of the store tests: configs with a store, a journal of varied order flow, what the engine says it holds."""

from __future__ import annotations

import random
import tomllib
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from engine import (
    CancelOrder,
    Command,
    ExecType,
    Execution,
    ExpireDayOrders,
    MassCancel,
    MatchingEngine,
    NewOrder,
    OrdStatus,
    OrdType,
    QueryOrder,
    Reason,
    ReplaceOrder,
    Side,
    TimeInForce,
)
from engine.codec import decode
from gateway.config import VenueConfig, parse_config
from gateway.journal import Durability, Journal, read_records, write_snapshot
from store.db import Backend, open_backend
from tests.gateway_process import DEMO_CONFIG

BACKENDS = ("sqlite", "postgresql")
SYMBOLS = {"AAPL": 10_000, "BTC-USD": 5_000_000}  # symbol -> mid price in ticks
OWNERS = ("CLIENT1", "CLIENT2", "CLIENT3")


def store_config(directory: Path, backend: str, dsn: str = "", timezone: str = "UTC") -> VenueConfig:
    """The demo config with its data under ``directory`` and the given store backend."""
    raw: dict[str, Any] = tomllib.loads(DEMO_CONFIG.read_text())
    raw["venue"].update(data_dir=str(directory / "data"), timezone=timezone)
    raw["store"] = {"backend": backend, "dsn": dsn, "http_port": 0}
    return parse_config(raw, base=DEMO_CONFIG.parent)


def random_flow(seed: int, n: int, start_ns: int = 1_800_000_000 * 10**9, step_ns: int = 10**9) -> list[Command]:
    """Varied order flow on AAPL and BTC-USD: passive and marketable limit orders, market orders, IOC/FOK, post-only,
    cancels, replaces, mass cancels, status queries, rejects of each kind, an end-of-day expiry. ``ts`` advances by
    ``step_ns`` per command."""
    rng = random.Random(seed)
    out: list[Command] = []
    sent: list[tuple[str, str, str, Side]] = []  # owner, clordid, symbol, side
    for i in range(n):
        ts = start_ns + i * step_ns
        owner = rng.choice(OWNERS)
        account = owner.replace("CLIENT", "ACC")
        r = rng.random()
        if r < 0.12 and sent:
            o, cl, _, _ = rng.choice(sent)
            out.append(CancelOrder(o, f"x{i}", cl, None, ts))
        elif r < 0.22 and sent:
            o, cl, sym, side = rng.choice(sent)
            price = SYMBOLS[sym] + rng.randint(-5, 5)
            out.append(ReplaceOrder(o, f"r{i}", cl, None, sym, side, price, rng.randint(1, 30), ts))
        elif r < 0.24:
            out.append(MassCancel(owner, f"m{i}", rng.choice([None, "AAPL"]), None, False, Reason.MASS_CANCEL, ts))
        elif r < 0.26:
            out.append(QueryOrder(owner, rng.choice(sent)[1] if sent else "nope", None, ts))
        elif r < 0.28:
            reject = rng.choice([Reason.PRICE_OFF_TICK, None])
            sym = "AAPL" if reject else "NOPE"
            out.append(NewOrder(owner, f"n{i}", account, sym, Side.BUY, OrdType.LIMIT, TimeInForce.DAY, 100, 1,
                                False, ts, reject))  # fmt: skip
        elif r < 0.285:
            out.append(ExpireDayOrders(ts))
        else:
            sym = rng.choice(list(SYMBOLS))
            side = rng.choice([Side.BUY, Side.SELL])
            market = rng.random() < 0.05
            tif = rng.choice([TimeInForce.DAY, TimeInForce.DAY, TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK])
            offset = rng.randint(-4, 6)
            price = None if market else SYMBOLS[sym] + (-offset if side is Side.BUY else offset)
            qty = rng.randint(1, 40) * (1 if sym == "AAPL" else 37)
            post = not market and tif in (TimeInForce.DAY, TimeInForce.GTC) and rng.random() < 0.1
            cl = f"n{i}"
            out.append(NewOrder(owner, cl, account, sym, side, OrdType.MARKET if market else OrdType.LIMIT,
                                TimeInForce.IOC if market else tif, price, qty, post, ts))  # fmt: skip
            sent.append((owner, cl, sym, side))
    return out


def write_journal(
    cfg: VenueConfig, commands: list[Command], snapshot_after: tuple[int, ...] = ()
) -> tuple[MatchingEngine, list[Execution], Path]:
    """Journal ``commands`` the way the gateway does (and write engine snapshots after the given command numbers);
    returns the engine, every execution it reported, and the journal's path."""
    path = cfg.data_dir / "journal" / "commands.journal"
    journal = Journal(path, Durability.WRITE)
    engine = MatchingEngine(cfg.instruments, cfg.self_trade_prevention)
    executions: list[Execution] = []
    for i, cmd in enumerate(commands):
        journal.append(cmd)
        executions += [e for e in engine.process(cmd) if type(e) is Execution]
        if i in snapshot_after:
            write_snapshot(engine, path.parent / "snapshots", journal.offset)
    journal.close()
    return engine, executions, path


def table(db: Backend, sql: str) -> list[tuple[Any, ...]]:
    """Rows with decimals as text, whichever the backend (PostgreSQL returns NUMERIC as Decimal)."""
    return [tuple(str(v) if isinstance(v, Decimal) else v for v in row) for row in db.fetch(sql)]


def expected_executions(executions: list[Execution], cfg: VenueConfig) -> dict[int, tuple[Any, ...]]:
    """exec_id -> (order_id, exec_type, status, clordid, leaves, cum, last_qty, last_px, trade_id) from the engine."""
    ins = {i.symbol: i for i in cfg.instruments}
    out = {}
    for e in executions:
        if e.exec_type is ExecType.ORDER_STATUS:
            continue
        i = ins.get(e.order.symbol)
        trade = e.exec_type is ExecType.TRADE
        out[e.seq] = (
            e.order.order_id or None, e.exec_type.name, e.status.name, e.clordid,
            i.qty_str(e.leaves) if i else None, i.qty_str(e.cum) if i else None,
            i.qty_str(e.last_qty) if trade and i else None, i.price_str(e.last_px) if trade and i else None,
            e.trade_id if trade else None,
        )  # fmt: skip
    return out


def expected_trades(executions: list[Execution], cfg: VenueConfig) -> dict[int, tuple[Any, ...]]:
    """trade id -> (symbol, price, qty, aggressor, buy account, buy order, sell account, sell order), from the pairs
    of TRADE executions the engine reported."""
    ins = {i.symbol: i for i in cfg.instruments}
    sides: dict[int, dict[str, Execution]] = {}
    for e in executions:
        if e.exec_type is ExecType.TRADE:
            sides.setdefault(e.trade_id, {})[e.order.side.name] = e
    out = {}
    for tid, pair in sides.items():
        b, s = pair["BUY"], pair["SELL"]
        i = ins[b.order.symbol]
        taker = b if b.aggressor else s
        out[tid] = (b.order.symbol, i.price_str(b.last_px), i.qty_str(b.last_qty), taker.order.side.name,
                    b.order.account, b.order.order_id, s.order.account, s.order.order_id)  # fmt: skip
    return out


ALL_STATUSES = frozenset({OrdStatus.FILLED.name, OrdStatus.CANCELED.name, OrdStatus.EXPIRED.name, OrdStatus.NEW.name})


def assert_store_holds(
    cfg: VenueConfig,
    engine: Any,
    executions: list[Execution],
    journal: Path,
    min_trades: int = 100,
    statuses: frozenset[str] = ALL_STATUSES,
) -> None:
    """The store holds exactly the rows of the engine's executions, the trades they make and the orders' final
    states (no row missing, none extra), and its position is the end of the journal."""
    db = open_backend(cfg)
    try:
        got = {r[0]: r[1:] for r in table(db, "SELECT exec_id, order_id, exec_type, status, clordid, leaves, cum, "
                                               "last_qty, last_px, trade_id FROM executions")}  # fmt: skip
        assert got == expected_executions(executions, cfg)
        trades = table(db, "SELECT trade_id, symbol, price, qty, aggressor, buy_account, buy_order_id, sell_account, "
                           "sell_order_id FROM trades")  # fmt: skip
        assert {r[0]: r[1:] for r in trades} == expected_trades(executions, cfg)
        assert len(trades) >= min_trades
        ins = {i.symbol: i for i in cfg.instruments}
        orders = {
            r[0]: r[1:] for r in table(db, "SELECT order_id, status, clordid, qty, leaves, cum, avg_px FROM orders")
        }
        want = {
            o.order_id: (o.status.name, o.clordid, ins[o.symbol].qty_str(o.qty), ins[o.symbol].qty_str(o.leaves),
                         ins[o.symbol].qty_str(o.cum), ins[o.symbol].avg_price_str(o.notional, o.cum))
            for o in engine.orders.values()
        }  # fmt: skip
        assert orders == want
        assert statuses <= {s for s, *_ in orders.values()}  # the flow reached every state asked for
        assert db.fetch("SELECT position, records FROM store_position")[0] == (
            journal.stat().st_size,
            engine.commands_processed,
        )
    finally:
        db.close()


def http_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        return orjson.loads(r.read())


def replay(cfg: VenueConfig) -> tuple[MatchingEngine, list[Execution], Path]:
    """The engine and its executions after the whole journal, computed here from scratch (the reference)."""
    path = cfg.data_dir / "journal" / "commands.journal"
    engine = MatchingEngine(cfg.instruments, cfg.self_trade_prevention)
    executions: list[Execution] = []
    for _, payload in read_records(path):
        executions += [e for e in engine.process(decode(payload)) if type(e) is Execution]
    return engine, executions, path
