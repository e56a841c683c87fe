"""``fixgw journal``: look inside a command journal (see :mod:`gateway.journal` for the format).

    fixgw journal print PATH [--from N] [--limit N] [--config FILE]   one line per record
    fixgw journal verify PATH                                         every record's CRC; exit 1 if corrupt
    fixgw journal book PATH --symbol AAPL [--at N] [--depth 10] [--config FILE]
    fixgw journal segments PATH                                       the journal's segments (one per trading day)

PATH is the journal directory (``data_dir/journal``: every segment, in order) or one segment file
(``commands.journal``, ``commands-<position>-<date>.journal``: that day's record). ``print`` shows each record's
number (from 0, in what PATH names), position in the whole journal, command kind and fields. Prices and quantities are
the integers the journal stores (ticks and lots) unless ``--config`` names the venue config, whose instruments turn
them into decimals. ``book`` replays the journal from its start (through the segment PATH names) into a fresh engine
with the config's instruments (the shipped demo config by default), the first N records with ``--at``, and prints
the aggregated book of one symbol.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import sys
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Any

from engine import Command, Instrument, MatchingEngine, Side
from engine.codec import decode
from gateway.cli_support import CLIError, Progress
from gateway.journal import ScanResult, read_records
from seqlog.segments import first_segment, read_log, segments

KINDS = {
    "NewOrder": "NEW",
    "CancelOrder": "CANCEL",
    "ReplaceOrder": "REPLACE",
    "MassCancel": "MASS_CANCEL",
    "QueryOrder": "STATUS",
    "ExpireDayOrders": "EXPIRE_DAY",
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
    """(record number, position, command) of each intact record; progress on stderr for long runs."""
    progress = Progress()
    for n, (offset, payload) in enumerate(_scan(path, scan, through)):
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


def describe(command: Command, instruments: dict[str, Instrument] | None = None) -> str:
    """``KIND name=value ...`` for one command (None fields left out)."""
    name = type(command).__name__
    ins = instruments.get(getattr(command, "symbol", None) or "") if instruments else None
    parts = [KINDS.get(name, name)]
    for f in dataclasses.fields(command):
        value = getattr(command, f.name)
        if value is None:
            continue
        if f.name == "ts":
            text = _timestamp(value)
        elif isinstance(value, Enum):
            text = str(getattr(value, "code", value.name))
        elif f.name == "price" and ins is not None:
            text = str(ins.ticks_to_price(value))
        elif f.name == "qty" and ins is not None:
            text = str(ins.lots_to_qty(value))
        else:
            text = str(value) if value != "" else '""'
        parts.append(f"{f.name}={text}")
    return " ".join(parts)


def cmd_print(args: argparse.Namespace) -> int:
    path = _journal(args.path)
    instruments = {i.symbol: i for i in _instruments(args.config)[0]} if args.config else None
    start, limit = args.from_, args.limit
    if start < 0 or (limit is not None and limit < 0):
        raise CLIError("--from and --limit must not be negative")
    scan = ScanResult()
    shown = 0
    out = sys.stdout
    for n, offset, command in _records(path, scan, "print"):
        if n < start:
            continue
        if limit is not None and shown >= limit:
            return 0
        out.write(f"{n:>8} {offset:>12} {describe(command, instruments)}\n")
        shown += 1
    if scan.error is not None:
        print(f"journal ends with a bad record: {scan.error}", file=sys.stderr)
        return 1
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    path = _journal(args.path)
    scan = ScanResult()
    bad: str | None = None
    try:
        for _ in _records(path, scan, "verify"):
            pass
    except CLIError as exc:  # a record whose CRC matches but whose payload is not a command
        bad = str(exc)
    if scan.error is None and bad is None:
        print(f"ok: {scan.records} records, {scan.size} bytes, every CRC-32 matches")
        return 0
    first_bad = scan.good_end
    why = bad or scan.error
    print(
        f"corrupt: {scan.records} good records; first bad record at offset {first_bad} ({why}); "
        f"{scan.size - first_bad} of {scan.size} bytes unusable"
    )
    return 1


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
    ve = sub.add_parser("verify", help="check every record's CRC; exit 1 at the first bad one")
    ve.add_argument("path")
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
