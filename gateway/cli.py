"""``fixgw``: the one command-line entry point.

Subcommands: ``serve`` (the gateway). Errors are one clear line on stderr and a non-zero exit, not a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence


def _serve(args: argparse.Namespace) -> int:
    from gateway.config import load_config
    from gateway.logs import configure_logging
    from gateway.server import serve

    cfg = load_config(args.config)
    configure_logging(args.log_format or cfg.log_format, cfg.log_level)
    return serve(cfg)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fixgw", description="FIX 4.4 exchange gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run the gateway (order entry, market data, metrics)")
    p.add_argument("--config", help="venue config TOML (default: the shipped demo config/venue.toml)")
    p.add_argument("--log-format", choices=["console", "json"], help="override venue.log_format")
    p.set_defaults(func=_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except KeyboardInterrupt:
        return 130
    except (OSError, ValueError, KeyError) as exc:
        print(f"fixgw {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
