"""Prometheus metrics of the venue, in one registry, and the HTTP endpoint that serves them.

Every name gets the one application prefix ``fixgw_`` here (:mod:`gateway.metricnames` holds it and the naming
rules the tests check every exported name against): declare ``counter("trades_total", ...)``, export
``fixgw_trades_total``. Base units (seconds; quantities in instrument units, money in whole assets), ``_total`` on
counters, ``_seconds`` on latency histograms, and low-cardinality labels only (message type, session CompID, role,
symbol, reason): never ClOrdID or OrderID. Series whose label values are known at start-up (roles, symbols,
sessions, slow-consumer actions) are exported at 0 from the start (:meth:`Metrics.preset`), so that dashboards and
``increase()`` in alerts see the first event. The endpoint serves ``/metrics``, ``/healthz`` (the process is up)
and ``/readyz`` (200 once the acceptor listens and the engine has recovered, 503 before).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from gateway.hotmetrics import HotCollector, HotCounter, HotHistogram
from gateway.metricnames import prefixed

# prometheus-client exports a ``<name>_created`` gauge (a timestamp) beside every counter and histogram child:
# twice the series, unused by Prometheus' text-format scrapes, and not named by the rules. Process-wide, on purpose.
disable_created_metrics()  # type: ignore[no-untyped-call]

_LATENCY_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
)  # fmt: skip
_ENGINE_BUCKETS = (0.000002, 0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.001, 0.01)
_FSYNC_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_STALL_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SLOW_CONSUMER_ACTIONS = ("conflate", "logout")


def counter(name: str, documentation: str, labels: Sequence[str], registry: CollectorRegistry) -> Counter:
    """A prometheus-client counter named ``fixgw_<name>`` (for processes other than the gateway, too)."""
    return Counter(prefixed(name), documentation, labels, registry=registry)


def gauge(name: str, documentation: str, labels: Sequence[str], registry: CollectorRegistry) -> Gauge:
    return Gauge(prefixed(name), documentation, labels, registry=registry)


class Metrics:
    """Every metric the venue exports. One instance per gateway (tests make several in one process)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        hot = HotCollector(r)  # the order path's figures: plain ints, exported at scrape time

        def hot_counter(name: str, doc: str, labels: list[str]) -> HotCounter:
            metric = HotCounter(prefixed(name), doc, labels)
            hot.add(metric)
            return metric

        def hot_histogram(name: str, doc: str, labels: list[str], buckets: tuple[float, ...]) -> HotHistogram:
            metric = HotHistogram(prefixed(name), doc, labels, buckets)
            hot.add(metric)
            return metric

        self.messages_received = hot_counter(
            "fix_messages_received_total", "FIX application messages received", ["msg_type", "session"]
        )
        self.messages_sent = hot_counter(
            "fix_messages_sent_total", "FIX application messages sent", ["msg_type", "session"]
        )
        self.orders_accepted = hot_counter("orders_accepted_total", "New orders accepted", ["symbol"])
        self.orders_rejected = hot_counter("orders_rejected_total", "New orders rejected", ["reason"])
        self.executions = hot_counter("executions_total", "ExecutionReports by ExecType", ["exec_type"])
        self.trades = hot_counter("trades_total", "Trades", ["symbol"])
        self.traded_quantity = hot_counter("traded_quantity_total", "Traded quantity (instrument units)", ["symbol"])
        self.md_messages = hot_counter("md_messages_sent_total", "Market-data messages sent", ["msg_type"])
        self.order_latency = hot_histogram(
            "order_to_execution_report_seconds",
            "From an order message entering the application to its first ExecutionReport handed to QuickFIX",
            [],
            _LATENCY_BUCKETS,
        )
        self.engine_latency = hot_histogram(
            "engine_command_seconds", "Engine time per command (one command in 16 is timed)", ["command"],
            _ENGINE_BUCKETS,
        )  # fmt: skip
        self.md_publish_latency = hot_histogram(
            "md_publish_seconds",
            "From the engine event to the market-data message handed to QuickFIX for every subscriber",
            [],
            _LATENCY_BUCKETS,
        )
        self.cancel_rejects = counter("cancel_rejects_total", "OrderCancelRejects by reason", ["reason"], r)
        self.resting_orders = gauge("resting_orders", "Orders resting in the book", ["symbol"], r)
        self.best_bid = gauge("best_bid_price", "Best bid price (NaN if none)", ["symbol"], r)
        self.best_ask = gauge("best_ask_price", "Best ask price (NaN if none)", ["symbol"], r)
        self.ready = gauge("ready", "1 once the engine has recovered and the acceptor listens (as /readyz)", [], r)
        self.sessions_logged_on = gauge("fix_sessions_logged_on", "FIX sessions logged on", ["role"], r)
        self.logons = counter("fix_logons_total", "Successful logons", ["role"], r)
        self.logon_failures = counter(
            "fix_logon_failures_total", "Refused logons (and connections refused before their logon), by reason",
            ["reason"], r,
        )  # fmt: skip
        self.logon_verifications = counter(
            "logon_verifications_total", "Passwords verified on the worker thread, by result", ["result"], r
        )
        self.logon_lockouts = gauge(
            "logon_lockouts", "CompIDs and addresses locked out after failed logons (until an operator unlocks)", [], r
        )
        self.session_rejects = counter("fix_session_rejects_total", "Session-level Rejects (3) sent", ["session"], r)
        self.business_rejects = counter("fix_business_rejects_total", "BusinessMessageRejects (j) sent", ["session"], r)
        self.resend_requests_received = counter(
            "fix_resend_requests_received_total", "ResendRequests received", ["role"], r
        )
        self.resend_requests_sent = counter("fix_resend_requests_sent_total", "ResendRequests sent", ["role"], r)
        self.messages_replayed = counter(
            "fix_messages_replayed_total", "Messages resent (PossDupFlag=Y) in answer to ResendRequests", ["role"], r
        )
        self.slow_consumers = counter(
            "md_slow_consumer_events_total", "Market-data sessions that fell too far behind", ["action"], r
        )
        self.md_subscriptions = gauge("md_subscriptions", "Active market-data subscriptions", [], r)
        self.journal_commands = hot_counter("journal_commands_total", "Commands appended to the journal", [])
        self.journal_fsyncs = hot_counter("journal_fsyncs_total", "Journal fsyncs (every one, whatever the policy)", [])
        self.journal_fsync_latency = hot_histogram(
            "journal_fsync_seconds", "Time in each fsync of the journal", [], _FSYNC_BUCKETS
        )
        self.loop_stalls = hot_histogram(
            "loop_stall_seconds",
            "Turns of the gateway's loop that took over 100 ms: every session waited",
            [],
            _STALL_BUCKETS,
        )
        # The ledger (gauges refreshed once a second by the gateway loop) and pre-trade risk.
        self.risk_refusals = hot_counter(
            "risk_refusals_total", "Orders and replaces refused by a pre-trade risk check", ["check"]
        )
        self.ledger_available = gauge(
            "ledger_available", "Sum of every trading account's available balance (in the asset)", ["asset"], r
        )
        self.ledger_held = gauge(
            "ledger_held", "Sum of every trading account's held balance (in the asset)", ["asset"], r
        )
        self.ledger_fee_account = gauge(
            "ledger_fee_account", "Balance of the fee account: fees net of rebates (in the asset)", ["asset"], r
        )
        self.ledger_imbalance = gauge(
            "ledger_imbalance",
            "Accounts + fee account - (deposits - withdrawals), per asset: anything but 0 is a bug",
            ["asset"],
            r,
        )
        self.rate_limit_logouts = counter(
            "rate_limit_logouts_total", "Sessions logged out for exceeding the message rate", ["session"], r
        )
        self.operator_actions = counter(
            "operator_actions_total", "Operator requests by action and result", ["action", "result"], r
        )

    def observe_fsync(self, seconds: float) -> None:
        """One fsync of the journal (called by :class:`gateway.journal.Journal` on the gateway thread)."""
        self.journal_fsyncs.inc()
        self.journal_fsync_latency.observe(seconds)

    def preset(
        self, roles: Iterable[str], symbols: Iterable[str], sessions: Iterable[str], rate_limited: Iterable[str]
    ) -> None:
        """Export the series whose label values are known at start-up at 0: a series that appears only with its
        first event hides that event from ``increase()`` and leaves a dashboard's variables empty."""
        for role in roles:
            for metric in (
                self.sessions_logged_on, self.logons, self.resend_requests_received, self.resend_requests_sent,
                self.messages_replayed,
            ):  # fmt: skip
                metric.labels(role)
        for symbol in symbols:
            for hot_metric in (self.orders_accepted, self.trades, self.traded_quantity):
                hot_metric.labels(symbol)
            self.resting_orders.labels(symbol)
        for session in sessions:
            self.session_rejects.labels(session)
            self.business_rejects.labels(session)
        for session in rate_limited:
            self.rate_limit_logouts.labels(session)
        for action in SLOW_CONSUMER_ACTIONS:
            self.slow_consumers.labels(action)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsServer:
    """A tiny HTTP server on its own thread (it only sleeps in accept/read between scrapes)."""

    def __init__(self, metrics: Metrics, host: str, port: int, ready: Callable[[], bool]) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/metrics"):
                    body, status, ctype = metrics.render(), 200, CONTENT_TYPE_LATEST
                elif self.path == "/healthz":
                    body, status, ctype = b"ok\n", 200, "text/plain"
                elif self.path == "/readyz":
                    ok = outer.ready()
                    body, status, ctype = (b"ready\n", 200, "text/plain") if ok else (b"not ready\n", 503, "text/plain")
                else:
                    body, status, ctype = b"not found\n", 404, "text/plain"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # quiet: scrapes are not events
                return

        self.ready = ready
        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="metrics-http", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
