"""The store's commands: ``fixgw store`` (the follower process) and the queries ``trades``, ``orders``, ``stats``.

    fixgw store  [--config FILE]
    fixgw trades [--config FILE] [--account A] [--symbol S] [--since T] [--until T] [--format table|csv|json]
    fixgw orders [--config FILE] [--account A] [--symbol S] [--since T] [--until T] [--format table|csv|json]
    fixgw stats  [--config FILE] [--symbol S] [--format table|csv|json]

The queries read the database of the config's ``[store]`` section directly (the store process need not run).
``trades --account`` matches either side of a trade; ``orders --since/--until`` select by the time the order was
entered. Times: ``now``, ``today``, ``yesterday`` (midnight in ``venue.timezone``), ``YYYY-MM-DD``, an ISO
date-time (the venue's time zone unless it has an offset), or a span back from now (``90s``, ``15m``, ``4h``,
``2d``); ``--since`` is inclusive, ``--until`` exclusive. JSON output is a list of objects, one per row (one per
line); prices and quantities are exact decimal strings.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence
from typing import Any

import orjson

from gateway.config import VenueConfig, load_config
from store.db import Backend, StoreError, open_backend
from store.queries import (
    ORDER_COLUMNS,
    ORDER_TABLE,
    TRADE_COLUMNS,
    TRADE_TABLE,
    Filters,
    orders,
    parse_time,
    trades,
    venue_tz,
)
from store.stats import STAT_COLUMNS, stats
from tools.support import CLIError

FORMATS = ("table", "csv", "json")


def add_store_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="venue config TOML (default: the shipped demo config/venue.toml)")
    p.add_argument("--gateway-pid", type=int, help=argparse.SUPPRESS)  # set by `fixgw serve`: stop when it exits


def add_query_arguments(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--config", help="venue config TOML (default: the shipped demo config/venue.toml)")
    if what != "stats":
        p.add_argument("--account", help="only this account" + (" (either side)" if what == "trades" else ""))
    p.add_argument("--symbol", help="only this symbol")
    if what != "stats":
        p.add_argument("--since", help="from this time (inclusive): today, yesterday, YYYY-MM-DD, ISO, 4h, ...")
        p.add_argument("--until", help="before this time (exclusive), same forms")
    p.add_argument("--format", choices=FORMATS, default="table", help="output format (default table)")


def run_store(args: argparse.Namespace) -> int:
    from gateway.logs import configure_logging
    from store.service import serve_store

    cfg = load_config(args.config)
    configure_logging(cfg.log_format, cfg.log_level)
    if cfg.journal.durability == "off":
        raise CLIError("journal.durability is off: there is no journal for the store to follow")
    return serve_store(cfg, args.gateway_pid)


def _open(cfg: VenueConfig) -> Backend:
    try:
        db = open_backend(cfg)
        db.check_readable()
    except StoreError as exc:
        raise CLIError(str(exc)) from None
    return db


def _filters(args: argparse.Namespace, cfg: VenueConfig) -> Filters:
    tz = venue_tz(cfg.timezone)
    try:
        since = parse_time(args.since, tz) if args.since else None
        until = parse_time(args.until, tz) if args.until else None
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    return Filters(args.account, args.symbol, since, until)


def run_query(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    tz = venue_tz(cfg.timezone)
    db = _open(cfg)
    columns: Sequence[str]
    table: Sequence[str]
    try:
        if args.command == "trades":
            rows, columns, table = trades(db, _filters(args, cfg), tz), TRADE_COLUMNS, TRADE_TABLE
        elif args.command == "orders":
            rows, columns, table = orders(db, _filters(args, cfg), tz), ORDER_COLUMNS, ORDER_TABLE
        else:
            known = {str(r[0]) for r in db.fetch("SELECT symbol FROM instruments")}
            if args.symbol is not None and args.symbol not in known:
                raise CLIError(f"unknown symbol {args.symbol!r} (the store knows {', '.join(sorted(known))})")
            rows, columns, table = stats(db, tz, args.symbol), STAT_COLUMNS, STAT_COLUMNS
    finally:
        db.close()
    write(rows, columns, table, args.format, args.command)
    return 0


def write(rows: list[dict[str, Any]], columns: Sequence[str], table: Sequence[str], fmt: str, what: str) -> None:
    out = sys.stdout
    if fmt == "json":
        out.write("[" + ",\n ".join(orjson.dumps(r).decode() for r in rows) + "]\n")
    elif fmt == "csv":
        w = csv.writer(out, lineterminator="\n")
        w.writerow(columns)
        w.writerows([[_csv(r[c]) for c in columns] for r in rows])
    elif not rows:
        out.write(f"no {what}\n" if what != "stats" else "no symbols\n")
    else:
        cells = [[_cell(r[c]) for c in table] for r in rows]
        widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(table)]
        out.write("  ".join(h.ljust(w) for h, w in zip(table, widths, strict=True)).rstrip() + "\n")
        for row in cells:
            out.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n")


def _csv(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"  # as in the JSON output
    return value


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
