"""``fixgw``: the one command-line entry point.

    fixgw serve      run the gateway (order entry, market data, metrics)
    fixgw client     interactive order entry over one FIX session (commands on stdin)
    fixgw md         a symbol's live book from the market-data feed (the reference client, feeds.client)
    fixgw simulate   random, realistic order flow through real FIX sessions
    fixgw bench      the benchmarks in bench/ (engine, gateway, floor)
    fixgw journal    print, verify, or replay a command journal
    fixgw admin      operator actions on the running venue: deposits, withdrawals, limits, kill switch, accounts;
                     halt, resume, open, close an instrument
    fixgw store      the post-trade store: follow the journal into a SQL database (fixgw serve starts it)
    fixgw trades     trades from the store;  fixgw orders: orders;  fixgw stats: 24-hour statistics

Errors are one clear line on stderr (``fixgw CMD: error: ...``) and exit status 2, not a traceback (set
``FIXGW_DEBUG=1`` to see the traceback of an unexpected error). Each tool's module has the details.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from fixclient import SessionError
from fixclient.tls import add_tls_arguments
from tools.support import CLIError


def _serve(args: argparse.Namespace) -> int:
    from gateway.config import load_config
    from gateway.logs import configure_logging, get_logger
    from gateway.malloc import pin_mmap_threshold
    from gateway.server import private_files, serve
    from store.process import start_store_process

    pin_mmap_threshold()  # RSS flat while the engine's tables churn (gateway/malloc.py)
    cfg = load_config(args.config)
    configure_logging(args.log_format or cfg.log_format, cfg.log_level)
    private_files(cfg.data_dir)  # before the store process starts: it inherits the umask
    if args.role is not None:  # one process of the multi-process venue (roles/, README "Scale-out")
        from roles import serve_role

        if not args.name:
            raise CLIError("--role needs --name (the process's name in the config's [cluster] tables)")
        return serve_role(args.role, args.name, args.config, args.shard)
    store = start_store_process(cfg)  # a separate process: the gateway never waits for it
    if store is not None:
        get_logger("gateway").info("store_process_started", pid=store.pid, backend=cfg.store.backend.value)
    elif cfg.store.enabled:
        get_logger("gateway").warning("store_not_started", reason="journal.durability is off: nothing to follow")
    return serve(cfg)


def _store(args: argparse.Namespace) -> int:
    from gateway.malloc import pin_mmap_threshold
    from tools import store as store_cli

    pin_mmap_threshold()  # the store replays the engine: the same tables churn
    os.umask(0o077)  # the database files: readable by the venue's user only
    return store_cli.run_store(args)


def _query(args: argparse.Namespace) -> int:
    from tools import store as store_cli

    return store_cli.run_query(args)


def _client(args: argparse.Namespace) -> int:
    from tools import client

    return client.main(args)


def _simulate(args: argparse.Namespace) -> int:
    from tools import simulator

    return simulator.main(args)


def _journal(args: argparse.Namespace) -> int:
    from tools import journal

    return journal.main(args)


def _admin(args: argparse.Namespace) -> int:
    from tools import admin

    return admin.main(args)


def _bench(args: argparse.Namespace) -> int:
    from tools import bench

    return bench.main(args)


def _md(args: argparse.Namespace) -> int:
    """Delegate to the reference market-data client (``python -m feeds.client``) with our defaults."""
    from feeds import client as md_client
    from tools.support import default_password

    if args.depth < 0:
        raise CLIError("--depth must not be negative")
    ns = argparse.Namespace(
        host=args.host, port=args.port, comp_id=args.comp_id,
        password=args.password or default_password(args.comp_id), target=args.target, symbol=args.symbol,
        depth=args.depth, types=args.types or "".join(md_client.ALL_ENTRY_TYPES), once=args.once, timeout=args.timeout,
        metrics_port=args.metrics_port, tls=args.tls, tls_ca=args.tls_ca, tls_cert=args.tls_cert, tls_key=args.tls_key,
        tls_server_name=args.tls_server_name,
    )  # fmt: skip
    try:
        return md_client.run(ns)
    except KeyboardInterrupt:
        return 0  # Ctrl-C is how a live view ends
    except md_client.MarketDataError as exc:
        raise CLIError(str(exc)) from None


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors as one line too (the usage itself is one ``-h`` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} -h)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fixgw", description="FIX 4.4 exchange gateway and its tools")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("serve", help="run the gateway (order entry, market data, metrics)")
    p.add_argument("--config", help="venue config TOML (default: the shipped demo config/venue.toml)")
    p.add_argument("--log-format", choices=["console", "json"], help="override venue.log_format")
    p.add_argument(
        "--role", choices=["engine", "gateway", "md", "store"],
        help="run one process of the multi-process venue (the config's [cluster] tables) instead of the whole venue",
    )  # fmt: skip
    p.add_argument("--name", help="with --role: this process's name (a [cluster.gateways.NAME] table, or any name)")
    p.add_argument("--shard", help="with --role engine: the [cluster.shards.NAME] this engine runs (if there are any)")
    p.set_defaults(func=_serve)

    from tools import bench, client, journal, simulator

    p = sub.add_parser(
        "client", help="interactive order entry (commands on stdin)", description=client.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    client.add_arguments(p)
    p.set_defaults(func=_client)

    p = sub.add_parser("md", help="a symbol's live book from the market-data feed")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9877, help="market-data port (default 9877)")
    p.add_argument("--comp-id", default="MD1", help="our SenderCompID (default MD1)")
    p.add_argument("--password", help="default: $FIXGW_PASSWORD, else the demo password mdpass<N> for MD<N>")
    p.add_argument("--target", default="EXCH", help="the venue's CompID (default EXCH)")
    p.add_argument("--symbol", required=True)
    p.add_argument("--depth", type=int, default=10, help="levels per side (0 = full book; default 10)")
    p.add_argument("--types", help="MDEntryType letters (default: every type the venue publishes)")
    p.add_argument("--once", action="store_true", help="print one snapshot and exit")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for logon and the snapshot")
    p.add_argument("--metrics-port", type=int, default=0, help="serve fixgw_md_client_rptseq_gaps_total here (0 = off)")
    add_tls_arguments(p)
    p.set_defaults(func=_md)

    p = sub.add_parser(
        "simulate", help="random, realistic order flow through real FIX sessions", description=simulator.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    simulator.add_arguments(p)
    p.set_defaults(func=_simulate)

    p = sub.add_parser(
        "bench", help="run a benchmark from bench/ (extra arguments are passed through)",
        description=bench.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("which", choices=sorted(bench.MODULES))
    p.add_argument("args", nargs=argparse.REMAINDER, help="passed to the benchmark script")
    p.set_defaults(func=_bench)

    from tools import admin

    p = sub.add_parser(
        "admin", help="operator actions on the running venue (funds, limits, kill switch, accounts)",
        description=admin.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    admin.add_arguments(p)
    p.set_defaults(func=_admin)

    p = sub.add_parser(
        "journal", help="print, verify or replay a command journal", description=journal.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    journal.add_arguments(p)
    p.set_defaults(func=_journal)

    from tools import store as store_cli

    p = sub.add_parser(
        "store", help="the post-trade store: follow the journal into a SQL database", description=store_cli.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    store_cli.add_store_arguments(p)
    p.set_defaults(func=_store)
    for name, what in (("trades", "trades"), ("orders", "orders (current state)"), ("stats", "24-hour statistics")):
        p = sub.add_parser(
            name, help=f"{what} from the post-trade store", description=store_cli.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )  # fmt: skip
        store_cli.add_query_arguments(p, name)
        p.set_defaults(func=_query)
    return parser


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `fixgw journal print ... | head`
        _silence_stdout()
        return 0
    except (CLIError, SessionError, OSError, ValueError, KeyError, TimeoutError) as exc:
        return _fail(args.command, _one_line(exc))
    except Exception as exc:  # a bug: still one line, unless asked for the traceback
        if os.environ.get("FIXGW_DEBUG"):
            raise
        return _fail(args.command, f"{type(exc).__name__}: {_one_line(exc)} (FIXGW_DEBUG=1 shows the traceback)")


def _fail(command: Any, message: str) -> int:
    print(f"fixgw {command}: error: {message}", file=sys.stderr)
    return 2


def _silence_stdout() -> None:
    """After EPIPE, point stdout at /dev/null so the interpreter's final flush does not complain."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    raise SystemExit(main())
