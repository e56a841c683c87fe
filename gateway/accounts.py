"""The gateway's side of the ledger: the venue's money rules into the journal, the operator channel, the gauges.

* At start-up, before any logon, :meth:`Accounts.configure` journals the config's money rules as a
  :class:`~engine.commands.Configure` command whenever they differ from the engine's (so a replay applies each day's
  rules from the day they came into force, never today's config), and the opening balances of accounts the venue has
  not funded yet as deposits with the funding id ``opening:<ACCOUNT>:<ASSET>`` (idempotent across restarts).
* :meth:`Accounts.start` opens the operator channel; its requests wait in a queue the gateway loop drains every
  :data:`OPERATOR_POLL` seconds and carries out through :class:`~gateway.operator_desk.OperatorDesk`; each answer is
  handed back after the loop turn's group commit, so an operator is never told "applied" before it is durable.
* :meth:`Accounts.refresh_gauges` publishes per-asset totals and the conservation check once a second.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

from engine import Command, Configure, Event, Fund, MatchingEngine, OperatorResult
from gateway.config import Role, VenueConfig
from gateway.logs import AuditTrail
from gateway.metrics import Metrics
from gateway.operator import OperatorServer
from gateway.operator_desk import OperatorDesk
from gateway.orders import FeeText
from gateway.positions import PositionFormatter
from gateway.scheduler import Scheduler

OPERATOR_POLL = 0.05  # seconds between two looks at the operator queue (an operator does not notice 50 ms)


def fee_texts(cfg: VenueConfig) -> dict[str, FeeText]:
    """Each instrument's fee asset and how its amounts are written, for the ExecutionReports' Commission."""
    if cfg.ledger is None:
        return {}
    assets = cfg.assets
    return {symbol: (m.quote, partial(assets.text, m.quote)) for symbol, m in cfg.ledger.markets.items()}


def position_formatter(cfg: VenueConfig) -> PositionFormatter | None:
    """What answers RequestForPositions; None when the venue keeps no ledger."""
    if cfg.ledger is None:
        return None
    return PositionFormatter({i.symbol: i for i in cfg.instruments}, dict(cfg.ledger.markets), cfg.assets)


class LedgerMismatch(ValueError):
    """The journal holds resting orders from before the venue kept a ledger: they hold no money."""


class Accounts:
    """Configures the ledger, runs the operator channel and exports the ledger's gauges."""

    def __init__(
        self,
        cfg: VenueConfig,
        engine: Callable[[], MatchingEngine],
        apply: Callable[[Command], list[Event]],
        dispatch: Callable[[list[Event]], None],
        after_commit: Callable[[Callable[[], None]], None],
        metrics: Metrics,
        audit: AuditTrail,
        log: Any,
    ) -> None:
        self.cfg = cfg
        self._engine = engine
        self.apply = apply
        self.after_commit = after_commit  # runs an action once the loop turn's journal records are durable
        self.metrics = metrics
        self.audit = audit
        self.log = log
        sessions = frozenset(s.comp_id for s in cfg.sessions if s.role is Role.ORDER_ENTRY)
        self.desk = OperatorDesk(engine, apply, dispatch, cfg.assets, self._audit_line, sessions)
        self.server: OperatorServer | None = None

    @property
    def enabled(self) -> bool:
        return self.cfg.ledger is not None

    # ------------------------------------------------------------------ start-up

    def configure(self) -> None:
        """Journal the config's money rules if they changed, then the opening balances not yet deposited."""
        setup = self.cfg.ledger
        engine = self._engine()
        if setup is None:
            if engine.ledger is not None:
                self.log.warning("ledger_kept", note="the config has no [assets] but the journal has a ledger: kept")
            return
        if engine.ledger is None and any(o.is_open for o in engine.orders.values()):
            raise LedgerMismatch(
                "the journal has resting orders from a venue without a ledger (they hold no money); start this venue "
                "on a new data directory (keep the old one as the record of its days)"
            )
        if engine.ledger is None or engine.ledger.setup != setup:
            self.apply(Configure(setup.to_dict(), time.time_ns()))
            self.log.info("ledger_configured", accounts=len(setup.accounts), assets=sorted(setup.assets))
            self._audit_line({"event": "ledger_configured", "setup": setup.to_dict()})
        ledger = engine.ledger
        assert ledger is not None
        for account, balances in self.cfg.opening_balances.items():
            for asset, units in balances.items():
                funding_id = f"opening:{account}:{asset}"
                if units > 0 and funding_id not in ledger.funding_ids:
                    events = self.apply(Fund("opening", account, asset, units, funding_id, time.time_ns()))
                    result = events[0]
                    assert isinstance(result, OperatorResult)
                    self._audit_line({
                        "event": "opening_balance", "account": account, "asset": asset,
                        "amount": self.cfg.assets.text(asset, units), "applied": result.applied,
                    })  # fmt: skip

    def start(self, scheduler: Scheduler) -> None:
        """Open the operator channel (if configured: with or without a ledger, it also carries the phase actions)
        and publish the gauges once a second."""
        op = self.cfg.operator
        if op.port:
            self.server = OperatorServer(op.host, op.port, op.token_sha256, self.desk.actions)
            self.server.start()
            scheduler.every(OPERATOR_POLL, self._serve_operator)
            if not op.token_sha256:
                self.log.warning("operator_without_token", note="operator.token_sha256 is empty: every request fails")
        if not self.enabled:
            return
        scheduler.every(1.0, self.refresh_gauges)
        self.refresh_gauges()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    @property
    def operator_port(self) -> int | None:
        return self.server.port if self.server is not None else None

    # ------------------------------------------------------------------ on the loop

    def _serve_operator(self, _: float = 0.0) -> None:
        assert self.server is not None
        inbox = self.server.inbox
        while not inbox.empty():
            request = inbox.get_nowait()
            reply = self.desk.handle(request)
            # Like an ExecutionReport, the answer waits for the group commit: "applied" means journaled and durable.
            self.after_commit(partial(request.answer, reply))
            result = "applied" if reply.get("ok") else "refused"
            self.metrics.operator_actions.labels(request.action, result).inc()
            self.log.info("operator_request", action=request.action, result=result, error=reply.get("error"))

    def refresh_gauges(self, _: float = 0.0) -> None:
        ledger = self._engine().ledger
        if ledger is None:
            return
        m = self.metrics
        # In whole assets (dollars, bitcoins: units / 10**scale), like the rest of the venue's figures: a dashboard
        # can then chart USD and BTC without knowing their scales. The sums themselves are exact integers.
        unit = {asset: 10**scale for asset, scale in ledger.setup.assets.items()}
        for asset, (available, held) in ledger.totals().items():
            one = unit.get(asset, 1)
            m.ledger_available.labels(asset).set(available / one)
            m.ledger_held.labels(asset).set(held / one)
            m.ledger_fee_account.labels(asset).set(ledger.fees.available.get(asset, 0) / one)
        for asset, imbalance in ledger.imbalance().items():
            m.ledger_imbalance.labels(asset).set(imbalance / unit.get(asset, 1))
            if imbalance:
                self.log.error("ledger_imbalance", asset=asset, imbalance=imbalance)

    def _audit_line(self, line: dict[str, Any]) -> None:
        self.audit.write({**line, "ts": time.time_ns()})
