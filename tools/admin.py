"""``fixgw admin``: the operator's commands, sent to the running venue over its operator channel.

    fixgw admin deposit ACC1 USD 1000 --funding-id wire-0001
    fixgw admin withdraw ACC1 USD 250 --funding-id wd-0001      (--shard NAME: which shard's share; README "Scale-out")
    fixgw admin transfer ACC1 USD 1000000 --from eq --to crypto [--transfer-id T1]   (a venue sharded over engines)
    fixgw admin limits ACC1 AAPL max_order_qty=500 max_position=none     (--default instead of an account: venue-wide)
    fixgw admin kill ACC1            fixgw admin kill --session CLIENT1
    fixgw admin revive ACC1          fixgw admin revive --session CLIENT1
    fixgw admin accounts             fixgw admin account ACC1
    fixgw admin halt AAPL            fixgw admin resume AAPL     (also: open, close, preopen; SYMBOL or all)
    fixgw admin phases               every instrument's phase and the trading date
    fixgw admin logons               (CompIDs and addresses with failed logons: back-off, lock-outs)
    fixgw admin unlock --comp-id CLIENT1     fixgw admin unlock --address 203.0.113.7

The channel's address comes from the venue config (``[operator]``, the demo config by default; for the
multi-process venue, a gateway's ``operator_port``: ``--gateway NAME``, else the first that has one) and the token from
``--token``, else ``$FIXGW_OPERATOR_TOKEN``, else the demo token. Every answer says what was applied or exactly why
not; ``--json`` prints it as the venue sent it. Exit status: 0 applied, 1 refused by the venue, 2 usage or
connection error.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from gateway.operator import OperatorError, call
from tools.support import CLIError

DEMO_TOKEN = "demo-operator-token"
PHASE_ACTIONS = {
    "halt": "halt trading",
    "resume": "end a halt through a reopening auction",
    "open": "open through the opening auction (from closed or pre-open)",
    "close": "close: DAY orders expire, statistics reset",
    "preopen": "pre-open: orders accepted, nothing matches",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="venue config TOML (default: the shipped demo config)")
    p.add_argument("--url", help="operator channel URL (default: from the config's [operator] table)")
    p.add_argument("--gateway", help="with a [cluster] config: the gateway whose operator channel to use")
    p.add_argument("--token", help="operator token (default: $FIXGW_OPERATOR_TOKEN, else the demo token)")
    p.add_argument("--json", action="store_true", help="print the venue's answer as JSON")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action in ("deposit", "withdraw"):
        q = sub.add_parser(action, help=f"{action} an amount of an asset")
        q.add_argument("account")
        q.add_argument("asset")
        q.add_argument("amount", help="decimal amount, e.g. 1000 or 0.5")
        q.add_argument("--funding-id", required=True, help="unique id of this transfer: a repeated id is not applied")
        q.add_argument("--shard", help="with several [cluster.shards]: the shard whose share of the balance changes "
                       "(default: the first shard whose instruments use the asset)")  # fmt: skip
    q = sub.add_parser("transfer", help="move an amount of an asset between two shards of a sharded venue")
    q.add_argument("account")
    q.add_argument("asset")
    q.add_argument("amount", help="decimal amount, e.g. 1000 or 0.5")
    q.add_argument("--from", dest="from_shard", required=True, help="the shard the funds leave")
    q.add_argument("--to", dest="to_shard", required=True, help="the shard the funds reach")
    q.add_argument("--transfer-id", help="unique id of this transfer (default: generated): a repeated id is refused")
    q = sub.add_parser("limits", help="change pre-trade limits (NAME=VALUE, VALUE 'none' removes a limit)")
    q.add_argument("account", nargs="?", help="the account (omit with --default)")
    q.add_argument("symbol")
    q.add_argument("changes", nargs="+", metavar="NAME=VALUE")
    q.add_argument("--default", action="store_true", help="change the venue-wide default instead of one account")
    for action in ("kill", "revive"):
        q = sub.add_parser(action, help=f"{action} an account or (--session) a session")
        q.add_argument("account", nargs="?")
        q.add_argument("--session", help="a session's CompID instead of an account")
    for action, what in PHASE_ACTIONS.items():
        q = sub.add_parser(action, help=f"{what} (an instrument, or all)")
        q.add_argument("symbol", metavar="SYMBOL|all")
    sub.add_parser("phases", help="every instrument's phase and the trading date")
    sub.add_parser("accounts", help="every account's balances and kill state")
    q = sub.add_parser("account", help="one account: balances, positions and PnL, limits")
    q.add_argument("account")
    sub.add_parser("logons", help="CompIDs and addresses with failed logons (back-off, lock-out)")
    q = sub.add_parser("unlock", help="clear the failed logons (and lock-out) of a CompID or an address")
    who = q.add_mutually_exclusive_group(required=True)
    who.add_argument("--comp-id")
    who.add_argument("--address")


def main(args: argparse.Namespace) -> int:
    url = args.url or _url_from_config(args.config, args.gateway)
    token = args.token or os.environ.get("FIXGW_OPERATOR_TOKEN") or DEMO_TOKEN
    action, params = _request(args)
    try:
        answer = call(url, token, action, params)
    except OperatorError as exc:
        raise CLIError(str(exc)) from None
    if args.json:
        print(json.dumps(answer, indent=2))
    else:
        print(render(action, answer))
    return 0 if answer.get("ok") else 1


def _url_from_config(path: str | None, gateway: str | None = None) -> str:
    import tomllib

    from gateway.config import load_config
    from roles.config import parse_cluster

    cfg = load_config(path)
    assert cfg.source is not None
    with cfg.source.open("rb") as f:
        cluster = parse_cluster(tomllib.load(f), cfg)
    if cluster is not None:  # the multi-process venue: its gateways serve the channel (roles.operator)
        ports = {g.name: g.operator_port for g in cluster.gateways if g.operator_port}
        if gateway is not None and gateway not in ports:
            raise CLIError(f"no gateway {gateway!r} with an operator_port (with one: {', '.join(ports) or 'none'})")
        if not ports:
            raise CLIError("no [cluster.gateways.NAME] table of the config has an operator_port")
        return f"http://{cfg.operator.host}:{ports[gateway or next(iter(ports))]}"
    if gateway is not None:
        raise CLIError("--gateway needs a config with a [cluster] table")
    if not cfg.operator.port:
        raise CLIError("the venue config has no operator channel (operator.port = 0)")
    return f"http://{cfg.operator.host}:{cfg.operator.port}"


def _request(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    action = args.action
    if action in ("deposit", "withdraw"):
        params = {"account": args.account, "asset": args.asset, "amount": args.amount, "funding_id": args.funding_id}
        return action, params if args.shard is None else {**params, "shard": args.shard}
    if action == "transfer":
        return action, {"account": args.account, "asset": args.asset, "amount": args.amount,
                        "from_shard": args.from_shard, "to_shard": args.to_shard,
                        "transfer_id": args.transfer_id}  # fmt: skip
    if action == "limits":
        if args.default == (args.account is not None):
            raise CLIError("name an account, or give --default for the venue-wide limits (not both)")
        changes = {}
        for item in args.changes:
            name, sep, value = item.partition("=")
            if not sep:
                raise CLIError(f"expected NAME=VALUE, got {item!r}")
            changes[name] = None if value.lower() == "none" else value
        return action, {"account": args.account, "symbol": args.symbol, "changes": changes}
    if action in ("kill", "revive"):
        if (args.account is None) == (args.session is None):
            raise CLIError("name an account or give --session COMPID (exactly one)")
        return action, {"account": args.account} if args.account else {"session": args.session}
    if action == "account":
        return action, {"account": args.account}
    if action in PHASE_ACTIONS:
        return action, {"symbol": args.symbol if args.symbol == "all" else args.symbol.upper()}
    if action == "unlock":
        return action, {"comp_id": args.comp_id} if args.comp_id else {"address": args.address}
    return action, {}


def render(action: str, answer: dict[str, Any]) -> str:
    """A short human reading of the venue's answer."""
    if action in PHASE_ACTIONS and "results" in answer:  # per instrument, applied or not
        return "\n".join(
            f"applied: {action} {r['symbol']}: now {r['phase']}" if r["applied"] else f"refused: {r['error']}"
            for r in answer["results"]
        )
    if not answer.get("ok"):
        return f"refused: {answer.get('error')}"
    if action == "phases":
        lines = [f"trading date {answer['trading_date'] or '(none: the venue has no schedule)'}"]
        for r in answer["instruments"]:
            until = f" until {r['halt_until']}" if r.get("halt_until") else ""
            lines.append(f"{r['symbol']}: {r['phase']}{until} (schedule: {r['scheduled']})")
        return "\n".join(lines)
    if action in ("deposit", "withdraw"):
        shard = f" on shard {answer['shard']}" if "shard" in answer else ""
        return (f"applied: {action} {answer['amount']} {answer['asset']} to {answer['account']}{shard} "
                f"(funding id {answer['funding_id']})")  # fmt: skip
    if action == "transfer":
        return (f"applied: transfer {answer['amount']} {answer['asset']} of {answer['account']} from shard "
                f"{answer['from_shard']} to {answer['to_shard']} (transfer id {answer['transfer_id']}): "
                f"{answer['state']}")  # fmt: skip
    if action == "limits":
        who = answer["account"] or "venue default"
        items = ", ".join(f"{k}={v if v is not None else 'none'}" for k, v in answer["limits"].items())
        return f"applied: limits of {who} in {answer['symbol']}: {items}"
    if action in ("kill", "revive"):
        who = answer.get("account") or f"session {answer.get('session')}"
        extra = f", {answer['cancelled']} working order(s) cancelled" if action == "kill" else ""
        return f"applied: {action} {who}{extra}"
    if action == "accounts":
        lines = []
        for row in [*answer["accounts"], answer["fee_account"]]:
            flag = " KILLED" if row.get("killed") else ""
            balances = "  ".join(f"{a} {b['available']} (held {b['held']})" for a, b in row["balances"].items())
            lines.append(f"{row['account']}{flag}: {balances or 'no balances'}")
        if answer.get("killed_sessions"):
            lines.append(f"killed sessions: {', '.join(answer['killed_sessions'])}")
        return "\n".join(lines)
    if action == "account":
        lines = [f"{answer['account']}{' KILLED' if answer['killed'] else ''}"]
        for a, b in answer["balances"].items():
            lines.append(f"  {a}: available {b['available']}  held {b['held']}")
        for p in answer["positions"]:
            lines.append(
                f"  {p['symbol']}: net {p['net']}  avg {p['avg_cost']}  mark {p['mark']}  realized {p['realized_pnl']}"
                f"  unrealized {p['unrealized_pnl']}  fees {p['fees']}  open orders {p['open_orders']}"
            )
        return "\n".join(lines)
    if action == "logons":
        rows = answer["failures"]
        if not rows:
            return "no failed logons"
        return "\n".join(
            f"{row.get('comp_id') or row.get('address')}: {row['failures']} failure(s), "
            + ("LOCKED" if row["locked"] else f"blocked {row['blocked_seconds']} s more")
            for row in rows
        )
    if action == "unlock":
        return f"applied: unlock {' '.join(f'{k} {v}' for k, v in answer['unlocked'].items())}"
    return json.dumps(answer)
