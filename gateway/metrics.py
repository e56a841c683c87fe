"""Prometheus metrics of the venue, in one registry, and the HTTP endpoint that serves them.

Names follow Prometheus conventions: snake_case, base units (seconds, lots are reported as instrument quantity),
``_total`` counters, ``_seconds`` histograms, and low-cardinality labels only (message type, session CompID, role,
symbol, reason): never ClOrdID or OrderID. The endpoint serves ``/metrics``, ``/healthz`` (the process is up) and
``/readyz`` (200 once the acceptor listens and the engine has recovered, 503 before).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from gateway.hotmetrics import HotCollector, HotCounter, HotHistogram

_LATENCY_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
)  # fmt: skip
_ENGINE_BUCKETS = (0.000002, 0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.001, 0.01)


class Metrics:
    """Every metric the venue exports. One instance per gateway (tests make several in one process)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        hot = HotCollector(r)  # the order path's figures: plain ints, exported at scrape time

        def hot_counter(name: str, doc: str, labels: list[str]) -> HotCounter:
            metric = HotCounter(name, doc, labels)
            hot.add(metric)
            return metric

        def hot_histogram(name: str, doc: str, labels: list[str], buckets: tuple[float, ...]) -> HotHistogram:
            metric = HotHistogram(name, doc, labels, buckets)
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
        self.cancel_rejects = Counter("cancel_rejects_total", "OrderCancelRejects by reason", ["reason"], registry=r)
        self.resting_orders = Gauge("resting_orders", "Orders resting in the book", ["symbol"], registry=r)
        self.best_bid = Gauge("best_bid_price", "Best bid price (NaN if none)", ["symbol"], registry=r)
        self.best_ask = Gauge("best_ask_price", "Best ask price (NaN if none)", ["symbol"], registry=r)
        self.sessions_logged_on = Gauge("fix_sessions_logged_on", "FIX sessions logged on", ["role"], registry=r)
        self.logons = Counter("fix_logons_total", "Successful logons", ["role"], registry=r)
        self.logon_failures = Counter(
            "fix_logon_failures_total", "Refused logons (and connections refused before their logon), by reason",
            ["reason"], registry=r,
        )  # fmt: skip
        self.logon_verifications = Counter(
            "fixgw_logon_verifications_total", "Passwords verified on the worker thread, by result", ["result"],
            registry=r,
        )  # fmt: skip
        self.logon_lockouts = Gauge(
            "fixgw_logon_lockouts", "CompIDs and addresses locked out after failed logons (until an operator unlocks)",
            registry=r,
        )  # fmt: skip
        self.session_rejects = Counter(
            "fix_session_rejects_total", "Session-level Rejects (3) sent", ["session"], registry=r
        )
        self.business_rejects = Counter(
            "fix_business_rejects_total", "BusinessMessageRejects (j) sent", ["session"], registry=r
        )
        self.resend_requests_received = Counter(
            "fix_resend_requests_received_total", "ResendRequests received", ["role"], registry=r
        )
        self.resend_requests_sent = Counter(
            "fix_resend_requests_sent_total", "ResendRequests sent", ["role"], registry=r
        )
        self.messages_replayed = Counter(
            "fix_messages_replayed_total", "Messages resent (PossDupFlag=Y) in answer to ResendRequests", ["role"],
            registry=r,
        )  # fmt: skip
        self.slow_consumers = Counter(
            "md_slow_consumer_events_total", "Market-data sessions that fell too far behind", ["action"], registry=r
        )
        self.md_subscriptions = Gauge("md_subscriptions", "Active market-data subscriptions", registry=r)
        self.journal_commands = hot_counter("journal_commands_total", "Commands appended to the journal", [])
        self.journal_fsyncs = Counter("journal_fsyncs_total", "Journal fsync calls", registry=r)
        # The ledger (gauges refreshed once a second by the gateway loop) and pre-trade risk.
        self.risk_refusals = hot_counter(
            "fixgw_risk_refusals_total", "Orders and replaces refused by a pre-trade risk check", ["check"]
        )
        self.ledger_available = Gauge(
            "fixgw_ledger_available", "Sum of every trading account's available balance (in the asset)", ["asset"],
            registry=r,
        )  # fmt: skip
        self.ledger_held = Gauge(
            "fixgw_ledger_held", "Sum of every trading account's held balance (in the asset)", ["asset"], registry=r
        )
        self.ledger_fee_account = Gauge(
            "fixgw_ledger_fee_account", "Balance of the fee account: fees net of rebates (in the asset)", ["asset"],
            registry=r,
        )  # fmt: skip
        self.ledger_imbalance = Gauge(
            "fixgw_ledger_imbalance",
            "Accounts + fee account - (deposits - withdrawals), per asset: anything but 0 is a bug",
            ["asset"],
            registry=r,
        )
        self.rate_limit_logouts = Counter(
            "fixgw_rate_limit_logouts_total", "Sessions logged out for exceeding the message rate", ["session"],
            registry=r,
        )  # fmt: skip
        self.operator_actions = Counter(
            "fixgw_operator_actions_total", "Operator requests by action and result", ["action", "result"], registry=r
        )

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
