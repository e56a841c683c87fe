"""The operator's actions, carried out on the gateway loop: requests from the operator channel in, answers out.

Every action that changes the venue (deposit, withdraw, limits, kill, revive) becomes an engine command that goes
through the gateway's one entry into the engine, so it is journaled before it runs and recovery restores it exactly;
the orders a kill cancels are reported to their owners like any other cancellation. Reads (accounts, account) look
at the engine between commands, so they see one consistent state. Each answer says what was applied, or exactly why
not; each applied change is an audit line, and so is each refused one (`operator_refused`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine import Command, Event, Fund, Kill, MatchingEngine, OperatorResult, SetLimits
from engine.ledger import LIMIT_NAMES, Ledger, Limits
from gateway.money import Assets, limits_of, limits_text
from gateway.operator import OperatorRequest
from gateway.positions import average_cost, unrealized_pnl

CHANGES = frozenset({"deposit", "withdraw", "limits", "kill", "revive"})
ACTIONS = CHANGES | {"accounts", "account"}
Answer = dict[str, Any]


@dataclass(frozen=True)
class Change:
    """What an operator's request changes: the engine commands to run, in order, and how their events (one list
    per command) make the answer."""

    commands: list[Command]
    answer: Callable[[list[list[Event]]], Answer]


class OperatorDesk:
    """Answers :class:`~gateway.operator.OperatorRequest` objects on the gateway thread."""

    def __init__(
        self,
        engine: Callable[[], MatchingEngine],
        apply: Callable[[Command], list[Event]],
        dispatch: Callable[[list[Event]], None],
        assets: Assets,
        audit: Callable[[dict[str, Any]], None],
        sessions: frozenset[str] = frozenset(),
    ) -> None:
        self._engine = engine  # the engine is replaced by recovery: always ask for the current one
        self.apply = apply
        self.dispatch = dispatch
        self.assets = assets
        self.audit = audit
        self.sessions = sessions  # the order-entry CompIDs a kill may name
        self._ids = 0
        self._handlers: dict[str, Callable[[dict[str, Any]], Answer | Change]] = {
            "deposit": self.deposit,
            "withdraw": self.withdraw,
            "limits": self.limits,
            "kill": self.kill,
            "revive": self.kill,
            "accounts": self.accounts,
            "account": self.account,
        }

    def add_action(self, name: str, handler: Callable[[dict[str, Any]], Answer | Change]) -> None:
        """An action another part of the venue answers (the logon guard's ``logons`` and ``unlock``, the trading
        day's ``halt``, ``phases`` ...), carried out on the loop like the desk's own: an answer, or a :class:`Change`;
        ``handler`` may raise KeyError, ValueError or TypeError to refuse."""
        self._handlers[name] = handler

    @property
    def actions(self) -> frozenset[str]:
        """Every action the desk answers (the operator channel refuses the others)."""
        return frozenset(self._handlers)

    @property
    def ledger(self) -> Ledger:
        ledger = self._engine().ledger
        if ledger is None:
            raise ValueError("the venue keeps no ledger (its config has no [assets])")
        return ledger

    def handle(self, request: OperatorRequest) -> Answer:
        """Carry out one request and return its answer; never raises. The caller hands the answer over once the
        journal record of the change is durable (after the loop turn's commit)."""
        step = self.prepare(request)
        if isinstance(step, Change):
            return self.finish(request, step, [self.apply(cmd) for cmd in step.commands])
        return step

    def prepare(self, request: OperatorRequest) -> Answer | Change:
        """The engine commands a request needs, or its answer (a read, or a refusal); never raises."""
        params = dict(request.params)
        if request.action == "revive":
            params["revive"] = True
        try:
            step = self._handlers[request.action](params)
        except (KeyError, ValueError, TypeError) as exc:
            text = f"missing parameter {exc}" if isinstance(exc, KeyError) else str(exc)
            step = {"ok": False, "error": text}
        if not isinstance(step, Change):
            self._audit_refusal(request, step)
        return step

    def finish(self, request: OperatorRequest, change: Change, events: list[list[Event]]) -> Answer:
        """The answer to a request whose commands ran with these events (one list per command)."""
        for evs in events:
            self.dispatch([e for e in evs if not isinstance(e, OperatorResult)])
        answer = change.answer(events)
        self._audit_refusal(request, answer)
        return answer

    def _audit_refusal(self, request: OperatorRequest, reply: Answer) -> None:
        if not reply.get("ok") and request.action in CHANGES:  # refused changes are on the record too
            self.audit({"event": "operator_refused", "action": request.action, "params": request.params,
                        "error": reply.get("error"), "reason": reply.get("reason")})  # fmt: skip

    def request_id(self) -> str:
        self._ids += 1
        return f"op-{time.time_ns()}-{self._ids}"

    def change(self, cmd: Command, what: Answer, amend: Callable[[Answer], None] | None = None) -> Change:
        """A change of one command, answered with ``what`` it did (``amend`` adds to the answer of a refusal)."""

        def answer(events: list[list[Event]]) -> Answer:
            result = next(e for e in events[0] if isinstance(e, OperatorResult))
            if not result.applied:
                assert result.reason is not None
                refused = {"ok": False, "error": result.reason.text, "reason": result.reason.code, **what}
                if amend is not None:
                    amend(refused)
                return refused
            applied = {"ok": True, "applied": result.action, **what}
            if result.action == "transfer":
                applied["state"] = "debited: the credit to the other shard follows"
            if result.action == "kill":
                applied["cancelled"] = result.cancelled
            self.audit({"event": f"operator_{result.action}", **what, "request_id": result.request_id})
            return applied

        return Change([cmd], answer)

    # ------------------------------------------------------------------ changes

    def deposit(self, p: dict[str, Any], sign: int = 1) -> Change:
        account, asset, funding_id = str(p["account"]), str(p["asset"]), str(p["funding_id"])
        acct = self.ledger.accounts.get(account)
        if acct is None:
            raise ValueError(f"unknown account {account!r}")
        amount = self.assets.to_units(asset, str(p["amount"]))
        if amount <= 0:
            raise ValueError("amount must be positive")
        cmd = Fund(self.request_id(), account, asset, sign * amount, funding_id, time.time_ns())
        what = {"account": account, "asset": asset, "amount": self.assets.text(asset, amount), "funding_id": funding_id}

        def amend(answer: Answer) -> None:
            if answer.get("reason") == "insufficient_funds":  # say how much there is to withdraw
                available = self.assets.text(asset, acct.available.get(asset, 0))
                answer["available"] = available
                answer["error"] += f": {account} has {available} {asset} available"

        return self.change(cmd, what, amend)

    def withdraw(self, p: dict[str, Any]) -> Change:
        return self.deposit(p, -1)

    def limits(self, p: dict[str, Any]) -> Change:
        """Change some limits of an account (or, with ``"account": null``, the venue default) in one instrument;
        ``changes`` maps limit names to decimal text, or to null/"none" to remove a limit."""
        account = p.get("account")
        symbol = str(p["symbol"])
        engine = self._engine()
        if symbol not in engine.books:
            raise ValueError(f"unknown symbol {symbol!r}")
        ledger = self.ledger
        instrument, market = engine.books[symbol].instrument, ledger.markets[symbol]
        if account is not None and account not in ledger.accounts:
            raise ValueError(f"unknown account {account!r}")
        current = ledger.defaults[symbol] if account is None else ledger.limits(ledger.accounts[account], symbol)
        changes = limits_of(dict(p.get("changes", {})), instrument, market, self.assets, "limits")
        given = {name for name in dict(p.get("changes", {}))}
        merged = [
            new if name in given else old
            for name, old, new in zip(LIMIT_NAMES, current.to_list(), changes.to_list(), strict=True)
        ]
        cmd = SetLimits(self.request_id(), account, symbol, merged, time.time_ns())
        text = limits_text(Limits.from_list(merged), instrument, market, self.assets)
        return self.change(cmd, {"account": account, "symbol": symbol, "limits": text})

    def kill(self, p: dict[str, Any]) -> Change:
        account, session = p.get("account"), p.get("session")
        if (account is None) == (session is None):
            raise ValueError("name exactly one of account or session")
        if account is not None and account not in self.ledger.accounts:
            raise ValueError(f"unknown account {account!r}")
        if session is not None and session not in self.sessions:
            raise ValueError(f"unknown session {session!r}: not an order-entry session of this venue")
        revive = bool(p.get("revive", False))
        cmd = Kill(self.request_id(), account, session, revive, time.time_ns())
        what = {"account": account} if account is not None else {"session": session}
        return self.change(cmd, what)

    # ------------------------------------------------------------------ reads

    def accounts(self, p: dict[str, Any]) -> dict[str, Any]:
        ledger = self.ledger
        rows = []
        for name, acct in sorted(ledger.accounts.items()):
            rows.append({"account": name, "killed": acct.killed, "balances": self._balances(acct)})
        fees = self._balances(ledger.fees)
        return {"ok": True, "accounts": rows, "fee_account": {"account": ledger.fees.name, "balances": fees},
                "killed_sessions": sorted(ledger.killed_owners)}  # fmt: skip

    def account(self, p: dict[str, Any]) -> dict[str, Any]:
        name = str(p["account"])
        ledger = self.ledger
        acct = ledger.accounts.get(name)
        if acct is None:
            return {"ok": False, "error": f"unknown account {name!r}"}
        engine = self._engine()
        positions = []
        for symbol, pos in sorted(acct.positions.items()):
            book = engine.books[symbol]
            ins, market = book.instrument, ledger.markets[symbol]
            mark = book.last_px
            unrealized = unrealized_pnl(pos.net, pos.cost, mark, market.quote_per_tick_lot)
            avg = average_cost(pos.cost, pos.net, market.quote_per_tick_lot, ins.tick_size) if pos.net else None
            positions.append({
                "symbol": symbol,
                "net": ins.qty_str(pos.net),
                "avg_cost": avg,
                "mark": ins.price_str(mark) if mark is not None else None,
                "realized_pnl": self.assets.text(market.quote, pos.realized),
                "unrealized_pnl": self.assets.text(market.quote, unrealized),
                "fees": self.assets.text(market.quote, pos.fees),
                "open_orders": pos.open_orders,
            })  # fmt: skip
        limits = {  # the engine's instruments: a shard's engine has its own only (roles.operator_shards)
            symbol: limits_text(ledger.limits(acct, symbol), engine.books[symbol].instrument, market, self.assets)
            for symbol, market in ledger.markets.items()
            if symbol in engine.books
        }
        return {"ok": True, "account": name, "killed": acct.killed, "balances": self._balances(acct),
                "positions": positions, "limits": limits}  # fmt: skip

    def _balances(self, acct: Any) -> dict[str, dict[str, str]]:
        assets = sorted(set(acct.available) | set(acct.held))
        return {
            a: {
                "available": self.assets.text(a, acct.available.get(a, 0)),
                "held": self.assets.text(a, acct.held.get(a, 0)),
            }
            for a in assets
        }
