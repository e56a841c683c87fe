"""``fixgw journal``: look inside a command journal (see :mod:`gateway.journal` for the format).

    fixgw journal print PATH [--from N] [--limit N] [--config FILE]   one line per record
    fixgw journal verify PATH [--config FILE]                         every record's CRC, then conservation
    fixgw journal book PATH --symbol AAPL [--at N] [--depth 10] [--config FILE]
    fixgw journal segments PATH                                       the journal's segments (one per trading day)

PATH is the journal directory (``data_dir/journal``: every segment, in order) or one segment file
(``commands.journal``, ``commands-<position>-<date>.journal``: that day's record). ``print`` shows each record's
number (from 0, in what PATH names), position in the whole journal, command kind and fields. Prices and quantities are
the integers the journal stores (ticks and lots) unless ``--config`` names the venue config, whose instruments turn
them into decimals; money (deposits, withdrawals, notional limits) is always shown in the asset, with the scales of the
latest CONFIGURE record before it (for a later segment, it may be in the segments before). ``verify`` checks every
record's CRC-32, then replays the journal into a fresh engine (the config's instruments; the journal carries its own
money rules) and checks conservation per asset: the available and held balances of every account plus the fee account
must equal deposits minus withdrawals. Exit 1 if a record is corrupt or any asset does not balance. ``verify`` and
``book`` read the journal from its start (through the segment PATH names, if it names one): the state of a day builds
on the days before. ``book`` replays with the config's instruments (the shipped demo config by default), the first N
records with ``--at``, and prints the aggregated book of one symbol.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import sys
from collections.abc import Iterator
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

from engine import Command, Configure, Fund, Instrument, Kill, Ledger, LedgerSetup, MatchingEngine, SetLimits, Side
from engine.codec import decode
from engine.ledger import LIMIT_NAMES, PPM
from gateway.journal import ScanResult, read_records
from seqlog.segments import first_segment, read_log, segments
from tools.support import CLIError, Progress

KINDS = {
    "NewOrder": "NEW",
    "CancelOrder": "CANCEL",
    "ReplaceOrder": "REPLACE",
    "MassCancel": "MASS_CANCEL",
    "QueryOrder": "STATUS",
    "ExpireDayOrders": "EXPIRE_DAY",
    "SetLimits": "SET_LIMITS",
    "QueryPositions": "POSITIONS",
    "SetPhase": "PHASE",
    "Tick": "TICK",
    "EndOfDay": "END_OF_DAY",
    "ConfigureTrading": "TRADING_RULES",
}
FIRST_SEGMENT = "commands.journal"
_DECODE_ERRORS = (ValueError, KeyError, IndexError, TypeError)


def _journal(path: str) -> Path:
    p = Path(path)
    if not p.is_file() and not (p.is_dir() and (p / FIRST_SEGMENT).is_file()):
        raise CLIError(f"no journal at {p}")
    return p


def _scan(path: Path, scan: ScanResult, through: bool = False) -> Iterator[tuple[int, bytes]]:
    """(position, payload) of the records PATH names: a directory, the whole journal; a segment, that segment (with
    ``through``, the journal from its start through that segment)."""
    if path.is_dir():
        return read_log(path / FIRST_SEGMENT, 0, scan)
    first = first_segment(path)
    base = next((b for b, p in segments(first) if p.name == path.name), 0)
    if through:
        return _through(first, base + path.stat().st_size, scan)
    return _segment(path, base, scan)


def _segment(path: Path, base: int, scan: ScanResult) -> Iterator[tuple[int, bytes]]:
    """One segment's records, positions (and ``scan``) in terms of the whole journal."""
    inner = ScanResult()
    for offset, payload in read_records(path, 0, inner):
        scan.size, scan.records, scan.good_end = base + inner.size, inner.records, base + inner.good_end
        yield base + offset, payload
    scan.size, scan.records, scan.good_end = base + inner.size, inner.records, base + inner.good_end
    scan.error = inner.error


def _through(first: Path, end: int, scan: ScanResult) -> Iterator[tuple[int, bytes]]:
    for position, payload in read_log(first, 0, scan):
        if position >= end:
            return
        yield position, payload


def _instruments(config: str | None) -> tuple[tuple[Instrument, ...], Any]:
    from gateway.config import load_config

    cfg = load_config(config)
    return cfg.instruments, cfg.self_trade_prevention


def _records(path: Path, scan: ScanResult, what: str, through: bool = False) -> Iterator[tuple[int, int, Command]]:
    """(record number, position, command) of each intact record PATH names; progress on stderr for long runs."""
    return _decoded(_scan(path, scan, through), scan, what)


def _decoded(records: Iterator[tuple[int, bytes]], scan: ScanResult, what: str) -> Iterator[tuple[int, int, Command]]:
    progress = Progress()
    for n, (offset, payload) in enumerate(records):
        if progress.due():
            progress.show(f"{what}: {n:,} records, {offset * 100 // max(scan.size, 1)}% of {scan.size:,} bytes")
        try:
            command = decode(payload)
        except _DECODE_ERRORS as exc:
            progress.done()
            raise CLIError(f"record {n} at offset {offset} does not decode: {exc!r}") from None
        yield n, offset, command
    progress.done()


def _timestamp(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _amount(units: int, scale: int | None) -> str:
    """``units`` of an asset of ``scale`` as decimal text (the integer as it is if the scale is unknown)."""
    if not scale:
        return str(units)
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), 10**scale)
    return f"{sign}{whole}.{frac:0{scale}d}"


def _bps(ppm: int) -> str:
    return f"{(Decimal(ppm) / (PPM // 10_000)).normalize():f}bp"


def _limits(
    values: list[int | None], symbol: str, setup: LedgerSetup | None, instruments: dict[str, Instrument] | None
) -> list[str]:
    """Limits as ``name=value`` (quantities in the instrument's units with --config, notional in the quote asset)."""
    ins = instruments.get(symbol) if instruments else None
    market = setup.markets.get(symbol) if setup else None
    out = []
    for name, value in zip(LIMIT_NAMES, values, strict=True):
        if value is None:
            text = "none"
        elif name in ("max_order_qty", "max_position") and ins is not None:
            text = ins.qty_str(value)
        elif name == "max_order_notional" and market is not None and setup is not None:
            text = _amount(value, setup.assets.get(market.quote))
        else:
            text = str(value)
        out.append(f"{name}={text}")
    return out


def _configure(setup: LedgerSetup, instruments: dict[str, Instrument] | None) -> str:
    """The money rules of a Configure record on one line."""
    assets = ",".join(f"{a}:{scale}" for a, scale in setup.assets.items())
    markets = ",".join(f"{s}={m.base}/{m.quote}:maker={_bps(m.maker_ppm)}:taker={_bps(m.taker_ppm)}"
                       for s, m in setup.markets.items())  # fmt: skip
    parts = [f"CONFIGURE assets={assets}", f"markets={markets}", f"accounts={','.join(setup.accounts)}",
             f"fee_account={setup.fee_account}", f"funds_checks={'on' if setup.funds_checks else 'off'}"]  # fmt: skip
    for symbol, limits in setup.default_limits.items():
        parts.append(f"limits[{symbol}]=" + ",".join(_limits(limits.to_list(), symbol, setup, instruments)))
    return " ".join(parts)


def _operator(command: Command, setup: LedgerSetup | None, instruments: dict[str, Instrument] | None) -> str | None:
    """An operator command on one line, in the operator's terms; None for the order commands."""
    ts = f"ts={_timestamp(command.ts)}"
    if isinstance(command, Configure):
        return f"{_configure(LedgerSetup.from_dict(command.setup), instruments)} {ts}"
    if isinstance(command, Fund):
        kind = "DEPOSIT" if command.amount > 0 else "WITHDRAW"
        scale = setup.assets.get(command.asset) if setup else None
        return (f"{kind} request_id={command.request_id} account={command.account} asset={command.asset} "
                f"amount={_amount(abs(command.amount), scale)} funding_id={command.funding_id} {ts}")  # fmt: skip
    if isinstance(command, SetLimits):
        who = command.account if command.account is not None else "<venue default>"
        limits = " ".join(_limits(command.limits, command.symbol, setup, instruments))
        return f"SET_LIMITS request_id={command.request_id} account={who} symbol={command.symbol} {limits} {ts}"
    if isinstance(command, Kill):
        who = f"account={command.account}" if command.account is not None else f"session={command.owner}"
        return f"{'REVIVE' if command.revive else 'KILL'} request_id={command.request_id} {who} {ts}"
    return None


def describe(
    command: Command, instruments: dict[str, Instrument] | None = None, setup: LedgerSetup | None = None
) -> str:
    """``KIND name=value ...`` for one command (None fields left out). ``setup`` is the money rules in force (the
    journal's latest Configure), whose scales show amounts in the asset."""
    operator = _operator(command, setup, instruments)
    if operator is not None:
        return operator
    name = type(command).__name__
    ins = instruments.get(getattr(command, "symbol", None) or "") if instruments else None
    parts = [KINDS.get(name, name)]
    for f in dataclasses.fields(command):
        value = getattr(command, f.name)
        if value is None or (f.name == "parties" and not value):
            continue
        if f.name == "ts":
            text = _timestamp(value)
        elif isinstance(value, Enum):
            text = str(getattr(value, "code", value.name))
        elif f.name == "price" and ins is not None:
            text = str(ins.ticks_to_price(value))
        elif f.name == "qty" and ins is not None:
            text = str(ins.lots_to_qty(value))
        elif f.name == "parties":
            text = value.replace("\x01", "|")  # FIX text: '|' for SOH, as in the Rules of Engagement
        else:
            text = str(value) if value != "" else '""'
        parts.append(f"{f.name}={text}")
    return " ".join(parts)


def _setup_before(path: Path) -> LedgerSetup | None:
    """The money rules in force where the segment ``path`` starts: the latest CONFIGURE of the segments before it
    (None for a directory or the first segment, whose records carry their own)."""
    if path.is_dir():
        return None
    first = first_segment(path)
    base = next((b for b, p in segments(first) if p.name == path.name), 0)
    setup: LedgerSetup | None = None
    scan = ScanResult()
    for _, _, command in _decoded(_through(first, base, scan), scan, "the money rules of the segments before"):
        if isinstance(command, Configure):
            setup = LedgerSetup.from_dict(command.setup)
    return setup


def cmd_print(args: argparse.Namespace) -> int:
    path = _journal(args.path)
    instruments = {i.symbol: i for i in _instruments(args.config)[0]} if args.config else None
    start, limit = args.from_, args.limit
    if start < 0 or (limit is not None and limit < 0):
        raise CLIError("--from and --limit must not be negative")
    scan = ScanResult()
    shown = 0
    out = sys.stdout
    setup = _setup_before(path)
    for n, offset, command in _records(path, scan, "print"):
        if isinstance(command, Configure):
            setup = LedgerSetup.from_dict(command.setup)  # the scales of the amounts that follow
        if n < start:
            continue
        if limit is not None and shown >= limit:
            return 0
        out.write(f"{n:>8} {offset:>12} {describe(command, instruments, setup)}\n")
        shown += 1
    if scan.error is not None:
        print(f"journal ends with a bad record: {scan.error}", file=sys.stderr)
        return 1
    return 0


class _NoReplay(Exception):
    pass


def cmd_verify(args: argparse.Namespace) -> int:
    path = _journal(args.path)
    instruments, stp = _instruments(args.config)
    engine = MatchingEngine(instruments, stp)
    scan = ScanResult()
    bad: str | None = None
    replayed = 0
    try:
        for n, offset, command in _records(path, scan, "verify", through=True):
            try:
                engine.process(command)
            except Exception as exc:  # a journal of another venue: its instruments are not the config's
                raise _NoReplay(
                    f"record {n} at offset {offset} does not replay with the instruments of "
                    f"{args.config or 'the demo config'} ({exc!r}): pass the venue's config with --config"
                ) from None
            replayed = n + 1
    except _NoReplay as exc:
        raise CLIError(str(exc)) from None
    except CLIError as exc:  # a record whose CRC matches but whose payload is not a command
        bad = str(exc)
    ok = scan.error is None and bad is None
    if ok:
        print(f"ok: {scan.records} records, {scan.size} bytes, every CRC-32 matches")
    else:
        first_bad = scan.good_end
        print(
            f"corrupt: {scan.records} good records; first bad record at offset {first_bad} ({bad or scan.error}); "
            f"{scan.size - first_bad} of {scan.size} bytes unusable"
        )
    if engine.ledger is None:
        print("no ledger in this journal (the venue has no [assets]): no money to check")
        return 0 if ok else 1
    lines, balanced = conservation_report(engine.ledger)
    print(f"conservation after replaying {replayed} records:")
    print("\n".join(lines))
    return 0 if ok and balanced else 1


def conservation_report(ledger: Ledger) -> tuple[list[str], bool]:
    """Per asset: what the accounts hold (available, held), the fee account, net deposits and the imbalance
    (accounts + fee account - net deposits), as an aligned table; and whether every imbalance is zero."""
    scales = ledger.setup.assets
    totals = ledger.totals()
    imbalance = ledger.imbalance()
    header = ("asset", "available", "held", "fee account", "deposits - withdrawals", "imbalance")
    rows: list[tuple[str, ...]] = [header]
    for asset in sorted(set(totals) | set(imbalance)):
        available, held = totals.get(asset, (0, 0))
        scale = scales.get(asset)
        figures = (available, held, ledger.fees.available.get(asset, 0), ledger.net_funding.get(asset, 0),
                   imbalance.get(asset, 0))  # fmt: skip
        rows.append((asset, *(_amount(v, scale) for v in figures)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths,
             strict=True))).rstrip() for r in rows]  # fmt: skip
    broken = [asset for asset, value in sorted(imbalance.items()) if value]
    if broken:
        lines.append(f"IMBALANCE in {', '.join(broken)}: the ledger created or destroyed money (a bug)")
    else:
        lines.append("balanced: every asset's imbalance is 0")
    return lines, not broken


def cmd_book(args: argparse.Namespace) -> int:
    path = _journal(args.path)
    instruments, stp = _instruments(args.config)
    symbols = [i.symbol for i in instruments]
    if args.symbol not in symbols:
        raise CLIError(f"unknown symbol {args.symbol!r}: the config has {', '.join(symbols)}")
    if args.at is not None and args.at < 0:
        raise CLIError("--at must not be negative")
    engine = MatchingEngine(instruments, stp)
    scan = ScanResult()
    replayed, offset_after = 0, 0
    for n, offset, command in _records(path, scan, "replay", through=True):
        if args.at is not None and n >= args.at:
            offset_after = offset
            break
        engine.process(command)
        replayed = n + 1
    else:
        offset_after = scan.good_end
    if scan.error is not None:
        print(f"replay stopped at a bad record: {scan.error}", file=sys.stderr)
    if args.at is not None and replayed < args.at:
        print(f"the journal has only {replayed} intact records", file=sys.stderr)
    print(f"{args.symbol} after {replayed} records (journal offset {offset_after})")
    print(render_book(engine, args.symbol, args.depth))
    return 0


def cmd_segments(args: argparse.Namespace) -> int:
    path = _journal(args.path)
    first = path / FIRST_SEGMENT if path.is_dir() else first_segment(path)
    print(f"{'start':>14} {'bytes':>12} {'records':>9}  {'first record':<27} {'last record':<27} segment")
    for base, segment in segments(first):
        scan = ScanResult()
        times = [decode(payload).ts for _, payload in read_records(segment, 0, scan)]
        span = (_timestamp(times[0]), _timestamp(times[-1])) if times else ("-", "-")
        bad = f"  (bad record: {scan.error})" if scan.error else ""
        print(f"{base:>14} {scan.size:>12} {scan.records:>9}  {span[0]:<27} {span[1]:<27} {segment.name}{bad}")
    return 0


def render_book(engine: MatchingEngine, symbol: str, depth: int) -> str:
    """Side-by-side aggregated levels (orders, quantity, price), best first, in decimals."""
    book = engine.books[symbol]
    ins = book.instrument
    bids, asks = book.depth(Side.BUY, depth), book.depth(Side.SELL, depth)
    lines = [f"{'orders':>7} {'qty':>14} {'bid':>12} | {'ask':<12} {'qty':<14} {'orders'}"]
    for i in range(max(len(bids), len(asks))):
        b = bids[i] if i < len(bids) else None
        a = asks[i] if i < len(asks) else None
        left = f"{b.count:>7} {ins.lots_to_qty(b.qty)!s:>14} {ins.ticks_to_price(b.price)!s:>12}" if b else " " * 35
        right = f"{ins.ticks_to_price(a.price)!s:<12} {ins.lots_to_qty(a.qty)!s:<14} {a.count}" if a else ""
        lines.append(f"{left} | {right}".rstrip())
    if not bids and not asks:
        lines.append("(empty book)")
    stats = []
    if book.last_px is not None:
        stats.append(f"last {ins.ticks_to_price(book.last_px)}")
    if book.volume:
        stats.append(f"volume {ins.lots_to_qty(book.volume)}")
    resting = sum(lv.count for side in (book.bids, book.asks) for lv in side.values())
    stats.append(f"resting orders {resting}")
    lines.append("  ".join(stats))
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="{print,verify,book,segments}")
    pr = sub.add_parser("print", help="one line per record: number, position, kind, fields")
    pr.add_argument("path", help="the journal directory (data_dir/journal) or one segment file")
    pr.add_argument("--from", dest="from_", type=int, default=0, help="first record number to show (from 0)")
    pr.add_argument("--limit", type=int, help="show at most this many records")
    pr.add_argument("--config", help="venue config: show prices and quantities as decimals")
    pr.set_defaults(action_func=cmd_print)
    ve = sub.add_parser("verify", help="check every record's CRC, then conservation after a replay; exit 1 if not ok")
    ve.add_argument("path")
    ve.add_argument("--config", help="venue config with the instruments (default: the shipped demo config)")
    ve.set_defaults(action_func=cmd_verify)
    bo = sub.add_parser("book", help="replay the first N records and print one symbol's book")
    bo.add_argument("path")
    bo.add_argument("--symbol", required=True)
    bo.add_argument("--at", type=int, help="replay only the first N records (default: all)")
    bo.add_argument("--depth", type=int, default=10, help="levels per side (0 = all; default 10)")
    bo.add_argument("--config", help="venue config with the instruments (default: the shipped demo config)")
    bo.set_defaults(action_func=cmd_book)
    se = sub.add_parser("segments", help="the journal's segments: start position, size, records, time span")
    se.add_argument("path")
    se.set_defaults(action_func=cmd_segments)


def main(args: argparse.Namespace) -> int:
    result: int = args.action_func(args)
    return result
