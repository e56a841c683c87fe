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
    Configure,
    ExecType,
    Execution,
    ExpireDayOrders,
    Fund,
    Kill,
    MassCancel,
    MatchingEngine,
    NewOrder,
    OrdStatus,
    OrdType,
    QueryOrder,
    Reason,
    ReplaceOrder,
    SetLimits,
    Side,
    TimeInForce,
)
from engine.codec import decode
from gateway.config import VenueConfig, parse_config
from gateway.journal import Durability, Journal, read_records, write_snapshot
from gateway.money import Assets
from roles.config import ClusterConfig
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


def money_flow(cfg: VenueConfig, seed: int, n: int) -> list[Command]:
    """:func:`random_flow` on a venue with money: the config's rules journaled first (as the gateway does), the
    accounts funded (ACC3 thinly, so that some of its orders are refused for funds), and operator commands among
    the orders: deposits and withdrawals (some refused, one funding id repeated), limit changes, kills and revivals
    of an account and of a session."""
    assert cfg.ledger is not None
    rng = random.Random(seed)
    t0 = 1_800_000_000 * 10**9
    out: list[Command] = [Configure(cfg.ledger.to_dict(), t0)]
    funding = {"ACC1": {"USD": 10**13, "BTC": 10**10, "AAPL": 10**5}, "ACC2": {"USD": 10**13, "BTC": 10**10,
               "AAPL": 10**5}, "ACC3": {"USD": 3 * 10**9, "BTC": 10**6, "AAPL": 50}}  # fmt: skip
    for account, amounts in funding.items():
        out += [Fund("seed", account, asset, units, f"seed:{account}:{asset}", t0) for asset, units in amounts.items()]
    for i, cmd in enumerate(random_flow(seed, n, start_ns=t0 + 10**9)):
        out.append(cmd)
        if i % 37 != 36:
            continue
        ts, k = cmd.ts, i // 37
        account = f"ACC{rng.randint(1, 3)}"
        out += rng.choice([
            [Fund(f"op{k}", account, "USD", rng.randint(1, 10**9), f"dep{k}", ts)],
            [Fund(f"op{k}", account, rng.choice(["USD", "BTC"]), -rng.randint(1, 10**9), f"wd{k}", ts)],
            [Fund(f"op{k}", account, "USD", 5, "dep0", ts)],  # a repeated funding id: refused
            [SetLimits(f"op{k}", account, "AAPL", [rng.randint(5, 40), None, None, None], ts)],
            [SetLimits(f"op{k}", None, "BTC-USD", [None, None, rng.randint(1, 5), None], ts)],
            [Kill(f"op{k}", account=account, ts=ts), Kill(f"op{k}r", account=account, revive=True, ts=ts)],
            [Kill(f"op{k}", owner="CLIENT2", ts=ts), Kill(f"op{k}r", owner="CLIENT2", revive=True, ts=ts)],
        ])  # fmt: skip
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
    """Rows with decimals as text, whichever the backend (PostgreSQL returns NUMERIC as Decimal; format "f" keeps
    "0.00000000" as it was written, where str() gives "0E-8")."""
    return [tuple(format(v, "f") if isinstance(v, Decimal) else v for v in row) for row in db.fetch(sql)]


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
    journal: Path | int,
    min_trades: int = 100,
    statuses: frozenset[str] = ALL_STATUSES,
) -> None:
    """The store holds exactly the rows of the engine's executions, the trades they make and the orders' final
    states (no row missing, none extra), and its position is the end of the journal (a path, or the position where
    the log ends)."""
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
            journal if isinstance(journal, int) else journal.stat().st_size,
            engine.commands_processed,
        )
    finally:
        db.close()


def assert_money_holds(cfg: VenueConfig, engine: MatchingEngine, executions: list[Execution]) -> None:
    """The store's balances and positions are the engine's ledger, exactly; each trade row carries the fees its two
    fills reported; and the balances conserve money per asset, as the ledger does."""
    ledger = engine.ledger
    assert ledger is not None
    assets = Assets(ledger.setup.assets)
    ins = {i.symbol: i for i in cfg.instruments}
    db = open_backend(cfg)
    try:
        balances = {(r[0], r[1]): (r[2], r[3]) for r in table(db, "SELECT account, asset, available, held "
                                                                  "FROM balances")}  # fmt: skip
        text = assets.text
        want = {
            (name, asset): (text(asset, acct.available.get(asset, 0)), text(asset, acct.held.get(asset, 0)))
            for name, acct in [*ledger.accounts.items(), (ledger.fees.name, ledger.fees)]
            for asset in {*acct.available, *acct.held}
        }
        assert balances == want
        traded = {(e.order.account, e.order.symbol) for e in executions if e.exec_type is ExecType.TRADE}
        positions = {(r[0], r[1]): r[2:] for r in table(db, "SELECT account, symbol, net, cost, realized, fees, "
                                                            "quote_asset FROM positions")}  # fmt: skip
        want_positions = {}
        for name, acct in ledger.accounts.items():
            for symbol, p in acct.positions.items():
                quote = ledger.markets[symbol].quote
                figures = (ins[symbol].qty_str(p.net), assets.text(quote, p.cost), assets.text(quote, p.realized),
                           assets.text(quote, p.fees), quote)  # fmt: skip
                if (name, symbol) in traded:
                    want_positions[name, symbol] = figures
                else:  # a position that never traded has nothing to show
                    assert (p.net, p.cost, p.realized, p.fees) == (0, 0, 0, 0)
        assert positions == want_positions and len(positions) >= 4
        fees = {}
        for e in executions:
            if e.exec_type is ExecType.TRADE:
                fees.setdefault(e.trade_id, {})[e.order.side.name] = assets.text("USD", e.fee)
        rows = table(db, "SELECT trade_id, buy_fee, sell_fee, fee_asset FROM trades")
        assert {r[0]: r[1:] for r in rows} == {t: (f["BUY"], f["SELL"], "USD") for t, f in fees.items()}
        assert any(Decimal(r[1]) < 0 or Decimal(r[2]) < 0 for r in rows)  # maker rebates (BTC-USD)
        total: dict[str, Decimal] = {}
        for (_, asset), (available, held) in balances.items():
            total[asset] = total.get(asset, Decimal(0)) + Decimal(available) + Decimal(held)
        assert total == {a: Decimal(assets.text(a, ledger.net_funding.get(a, 0))) for a in total}
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


def split_by_shard(cluster: ClusterConfig, flow: list[Command]) -> dict[str, list[Command]]:
    """``flow`` as the gateways route it: an order to its symbol's shard, a cancel, replace or status request to its
    order's, a mass cancel without a symbol and everything that is no order (money rules, funding, kills, end of
    day) to every shard (a shard's ledger is funded on its own)."""
    first = cluster.shards[0].name
    out: dict[str, list[Command]] = {s.name: [] for s in cluster.shards}
    where: dict[tuple[str, str], str] = {}  # (owner, ClOrdID) -> shard
    for cmd in flow:
        if isinstance(cmd, NewOrder | ReplaceOrder):
            shard = cluster.shard_of_symbol(cmd.symbol).name
            where[cmd.owner, cmd.clordid] = shard
            targets = [shard]
        elif isinstance(cmd, CancelOrder):
            targets = [where.get((cmd.owner, cmd.orig_clordid or ""), first)]
        elif isinstance(cmd, QueryOrder):
            targets = [where.get((cmd.owner, cmd.clordid or ""), first)]
        elif isinstance(cmd, MassCancel | SetLimits) and cmd.symbol is not None:
            targets = [cluster.shard_of_symbol(cmd.symbol).name]
        else:
            targets = list(out)
        for shard in targets:
            out[shard].append(cmd)
    return out


def assert_shards_hold(
    cfg: VenueConfig,
    cluster: ClusterConfig,
    engines: list[MatchingEngine],
    executions: list[Execution],
    min_trades: int = 100,
) -> None:
    """A store of several shards (their engines, every execution of any) holds exactly their rows: executions,
    trades (of every shard), orders; each balance the sum of the shards' ledgers, which conserves money; each
    position its instrument's shard's."""
    db = open_backend(cfg)
    try:
        got = {r[0]: r[1:] for r in table(db, "SELECT exec_id, order_id, exec_type, status, clordid, leaves, cum, "
                                               "last_qty, last_px, trade_id FROM executions")}  # fmt: skip
        assert got == expected_executions(executions, cfg)
        trades = {r[0]: r[1:] for r in table(db, "SELECT trade_id, symbol, price, qty, aggressor, buy_account, "
                                                 "buy_order_id, sell_account, sell_order_id FROM trades")}  # fmt: skip
        assert trades == expected_trades(executions, cfg) and len(trades) >= min_trades
        assert {cluster.shard_of_id(t).name for t in trades} == {s.name for s in cluster.shards}
        ins = {i.symbol: i for i in cfg.instruments}
        orders = {r[0]: (r[1], r[2]) for r in table(db, "SELECT order_id, status, cum FROM orders")}
        assert orders == {o.order_id: (o.status.name, ins[o.symbol].qty_str(o.cum))
                          for engine in engines for o in engine.orders.values()}  # fmt: skip
        ledgers = [engine.ledger for engine in engines if engine.ledger is not None]
        assert len(ledgers) == len(engines)
        assets = Assets(ledgers[0].setup.assets)
        want: dict[tuple[str, str], list[int]] = {}
        funded: dict[str, int] = {}
        for ledger in ledgers:
            for name, acct in [*ledger.accounts.items(), (ledger.fees.name, ledger.fees)]:
                for asset in {*acct.available, *acct.held}:
                    sums = want.setdefault((name, asset), [0, 0])
                    sums[0] += acct.available.get(asset, 0)
                    sums[1] += acct.held.get(asset, 0)
            for asset, units in ledger.net_funding.items():
                funded[asset] = funded.get(asset, 0) + units
        balances = {(r[0], r[1]): (r[2], r[3]) for r in table(db, "SELECT account, asset, available, held "
                                                                  "FROM balances")}  # fmt: skip
        assert balances == {k: (assets.text(k[1], a), assets.text(k[1], h)) for k, (a, h) in want.items()}
        total: dict[str, Decimal] = {}
        for (_, asset), (available, held) in balances.items():
            total[asset] = total.get(asset, Decimal(0)) + Decimal(available) + Decimal(held)
        assert total == {a: Decimal(assets.text(a, funded.get(a, 0))) for a in total}  # money is conserved
        positions = {(r[0], r[1]): r[2] for r in table(db, "SELECT account, symbol, net FROM positions")}
        assert {cluster.shard_of_symbol(symbol).name for _, symbol in positions} == {s.name for s in cluster.shards}
        for (account, symbol), net in positions.items():
            [ledger] = [lg for lg, s in zip(ledgers, cluster.shards, strict=True) if symbol in s.symbols]
            assert net == ins[symbol].qty_str(ledger.accounts[account].positions[symbol].net)
    finally:
        db.close()
