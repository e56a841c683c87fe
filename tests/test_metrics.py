"""Metrics: scrape the real gateway's /metrics during real sessions and check that the figures move as they should;
check that the shipped Grafana dashboard and Prometheus config refer only to metrics the gateway exports."""

from __future__ import annotations

import importlib
import json
import math
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from feeds.client import MarketDataClient, rptseq_gaps
from fixclient import FixSession, SessionError
from gateway.metricnames import PREFIX, problems
from gateway.metrics import Metrics
from gateway.operator import call
from tests.conftest import PASSWORDS, ClientFactory, start_gateway, start_gateway_with, unique
from tests.exposition import naming_problems
from tests.fixtools import cancel, f, new_order, wait_er
from tests.gateway_process import ROOT, GatewayProcess, metric_value
from tools.admin import DEMO_TOKEN

pytestmark = pytest.mark.timeout(60)

DASHBOARD = ROOT / "config" / "grafana-dashboard.json"
PROMETHEUS = ROOT / "config" / "prometheus.yml"


def value(gw: GatewayProcess, name: str, **labels: str) -> float:
    return metric_value(gw.metrics(), name, **labels)


def wait_value(
    gw: GatewayProcess, name: str, ok: Callable[[float], bool], timeout: float = 10.0, **labels: str
) -> float:
    """Scrape until ``ok(value)``; fail with the last value after ``timeout`` (the gauges refresh every second)."""
    deadline = time.monotonic() + timeout
    while True:
        v = value(gw, name, **labels)
        if ok(v):
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}{labels} is {v} after {timeout}s")
        time.sleep(0.05)  # scrape interval: the loop ends on the condition, not on the sleep


def equals(target: float) -> Callable[[float], bool]:
    return lambda v: v == pytest.approx(target)


def exact_amount(target: float) -> Callable[[float], bool]:
    """Equal to well within a micro-dollar: ``pytest.approx``'s relative tolerance would allow ~90 USD on the demo's
    90M USD total."""
    return lambda v: abs(v - target) < 1e-7


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


# ---------------------------------------------------------------------------- the live gateway


def test_health_and_readiness_endpoints(gateway: GatewayProcess) -> None:
    assert http_status(gateway.metrics_url + "/healthz") == 200
    assert http_status(gateway.metrics_url + "/readyz") == 200
    assert http_status(gateway.metrics_url + "/nothing-here") == 404
    text = gateway.metrics()
    assert "# TYPE process_cpu_seconds_total counter" in text
    assert metric_value(text, "process_resident_memory_bytes") > 0


def test_new_orders_counted_by_type_session_symbol_and_latency(gateway: GatewayProcess, connect: ClientFactory):
    s = connect("CLIENT1")
    received = value(gateway, "fixgw_fix_messages_received_total", msg_type="D", session="CLIENT1")
    sent = value(gateway, "fixgw_fix_messages_sent_total", msg_type="8", session="CLIENT1")
    accepted = value(gateway, "fixgw_orders_accepted_total", symbol="MSFT")
    news = value(gateway, "fixgw_executions_total", exec_type="new")
    latency_count = value(gateway, "fixgw_order_to_execution_report_seconds_count")
    ids = [unique("m") for _ in range(3)]
    for i, clordid in enumerate(ids):
        new_order(s, clordid, "1", "10", f"10.0{i}", symbol="MSFT")
    for clordid in ids:
        wait_er(s, clordid, "0")
    wait_value(gateway, "fixgw_fix_messages_received_total", equals(received + 3), msg_type="D", session="CLIENT1")
    wait_value(gateway, "fixgw_fix_messages_sent_total", equals(sent + 3), msg_type="8", session="CLIENT1")
    wait_value(gateway, "fixgw_orders_accepted_total", equals(accepted + 3), symbol="MSFT")
    wait_value(gateway, "fixgw_executions_total", equals(news + 3), exec_type="new")
    count = wait_value(gateway, "fixgw_order_to_execution_report_seconds_count", lambda v: v >= latency_count + 3)
    buckets = metric_value(gateway.metrics(), "fixgw_order_to_execution_report_seconds_bucket", le="+Inf")
    assert buckets == count
    assert value(gateway, "fixgw_order_to_execution_report_seconds_sum") > 0


def test_rejected_orders_counted_by_reason(gateway: GatewayProcess, connect: ClientFactory) -> None:
    s = connect("CLIENT2")
    reasons = ("invalid_quantity", "price_off_tick", "unknown_symbol")
    before = {r: value(gateway, "fixgw_orders_rejected_total", reason=r) for r in reasons}
    rejected = value(gateway, "fixgw_executions_total", exec_type="rejected")
    accepted = value(gateway, "fixgw_orders_accepted_total", symbol="MSFT")
    a, b, c = unique("r"), unique("r"), unique("r")
    new_order(s, a, "1", "0", "10.00", symbol="MSFT")
    new_order(s, b, "1", "5", "10.001", symbol="MSFT")
    new_order(s, c, "1", "5", "10.00", symbol="NOSUCH")
    for clordid in (a, b, c):
        wait_er(s, clordid, "8")
    for r in reasons:
        wait_value(gateway, "fixgw_orders_rejected_total", equals(before[r] + 1), reason=r)
    wait_value(gateway, "fixgw_executions_total", equals(rejected + 3), exec_type="rejected")
    assert value(gateway, "fixgw_orders_accepted_total", symbol="MSFT") == accepted


def test_trades_counted_once_with_quantity_in_instrument_units(gateway: GatewayProcess, connect: ClientFactory):
    maker, taker = connect("CLIENT3"), connect("CLIENT4")
    trade_reports = value(gateway, "fixgw_executions_total", exec_type="trade")
    trades = {sym: value(gateway, "fixgw_trades_total", symbol=sym) for sym in ("MSFT", "BTC-USD")}
    qty = {sym: value(gateway, "fixgw_traded_quantity_total", symbol=sym) for sym in ("MSFT", "BTC-USD")}
    for sym, size, price in (("MSFT", "5", "300.00"), ("BTC-USD", "0.0150", "30000.00")):
        ask, bid = unique("t"), unique("t")
        new_order(maker, ask, "2", size, price, symbol=sym)
        wait_er(maker, ask, "0")
        new_order(taker, bid, "1", size, price, symbol=sym)
        wait_er(taker, bid, "F")
        wait_er(maker, ask, "F")
    wait_value(gateway, "fixgw_executions_total", equals(trade_reports + 4), exec_type="trade")  # both sides, twice
    wait_value(gateway, "fixgw_trades_total", equals(trades["MSFT"] + 1), symbol="MSFT")
    wait_value(gateway, "fixgw_trades_total", equals(trades["BTC-USD"] + 1), symbol="BTC-USD")
    wait_value(gateway, "fixgw_traded_quantity_total", equals(qty["MSFT"] + 5), symbol="MSFT")
    wait_value(gateway, "fixgw_traded_quantity_total", equals(qty["BTC-USD"] + 0.015), symbol="BTC-USD")


def test_sessions_logged_on_gauge_follows_logon_and_logout(gateway: GatewayProcess, connect: ClientFactory):
    # Earlier tests' sessions have logged out, but the venue answers a Logout before its disconnect callback counts
    # it: under load a scrape can fall in between. Start from the settled count (no session of this module is on).
    oe = wait_value(gateway, "fixgw_fix_sessions_logged_on", equals(0), role="order_entry")
    md = wait_value(gateway, "fixgw_fix_sessions_logged_on", equals(0), role="market_data")
    logons = value(gateway, "fixgw_fix_logons_total", role="order_entry")
    s = connect("CLIENT5")
    wait_value(gateway, "fixgw_fix_sessions_logged_on", equals(oe + 1), role="order_entry")
    wait_value(gateway, "fixgw_fix_logons_total", equals(logons + 1), role="order_entry")
    m = connect("MD1")
    wait_value(gateway, "fixgw_fix_sessions_logged_on", equals(md + 1), role="market_data")
    s.logout()
    wait_value(gateway, "fixgw_fix_sessions_logged_on", equals(oe), role="order_entry")
    m.logout()
    wait_value(gateway, "fixgw_fix_sessions_logged_on", equals(md), role="market_data")


def test_refused_logons_counted_by_reason(gateway: GatewayProcess) -> None:
    """A wrong password is refused while the venue verifies it (``verifying``) and counted as a failed verification;
    the same password again is refused from the venue's memory (``bad_password``, or ``throttled`` inside the
    back-off the failure started)."""
    reasons = ("verifying", "bad_password", "throttled")
    refused = {r: value(gateway, "fixgw_fix_logon_failures_total", reason=r) for r in reasons}
    bad = value(gateway, "fixgw_logon_verifications_total", result="bad_password")
    oe = value(gateway, "fixgw_fix_sessions_logged_on", role="order_entry")

    def attempt() -> None:
        s = FixSession("127.0.0.1", gateway.oe_port, "CLIENT6", "not-the-password", reset_seq=True)
        try:
            with pytest.raises(SessionError):
                s.logon(retry=False)
        finally:
            s.close()

    attempt()
    wait_value(gateway, "fixgw_fix_logon_failures_total", equals(refused["verifying"] + 1), reason="verifying")
    wait_value(gateway, "fixgw_logon_verifications_total", equals(bad + 1), result="bad_password")
    attempt()
    deadline = time.monotonic() + 10
    while sum(value(gateway, "fixgw_fix_logon_failures_total", reason=r) - refused[r] for r in refused) < 2:
        assert time.monotonic() < deadline, "the second refusal was not counted"
        time.sleep(0.05)
    assert value(gateway, "fixgw_fix_logon_failures_total", reason="verifying") == refused["verifying"] + 1
    assert value(gateway, "fixgw_fix_sessions_logged_on", role="order_entry") == oe
    assert "not-the-password" not in gateway.metrics()


def test_resend_request_counted(gateway: GatewayProcess, connect: ClientFactory) -> None:
    s = connect("CLIENT7")
    before = value(gateway, "fixgw_fix_resend_requests_received_total", role="order_entry")
    clordid = unique("rs")
    new_order(s, clordid, "1", "1", "1.00", symbol="MSFT")
    wait_er(s, clordid, "0")
    s.send("2", [(7, 1), (16, 0)])
    wait_value(gateway, "fixgw_fix_resend_requests_received_total", equals(before + 1), role="order_entry")


def test_book_gauges_follow_the_book(gateway: GatewayProcess, connect: ClientFactory) -> None:
    """fixgw_resting_orders / fixgw_best_bid_price / fixgw_best_ask_price are refreshed every second: wait for them."""
    s = connect("CLIENT8")
    bid, ask = unique("g"), unique("g")
    new_order(s, bid, "1", "10", "150.00", symbol="AAPL")
    new_order(s, ask, "2", "10", "151.00", symbol="AAPL")
    wait_er(s, bid, "0")
    wait_er(s, ask, "0")
    wait_value(gateway, "fixgw_resting_orders", equals(2), symbol="AAPL")
    wait_value(gateway, "fixgw_best_bid_price", equals(150.0), symbol="AAPL")
    wait_value(gateway, "fixgw_best_ask_price", equals(151.0), symbol="AAPL")
    cx = unique("g")
    cancel(s, cx, bid, symbol="AAPL")
    wait_er(s, cx, "4")
    wait_value(gateway, "fixgw_resting_orders", equals(1), symbol="AAPL")
    wait_value(gateway, "fixgw_best_bid_price", math.isnan, symbol="AAPL")
    assert value(gateway, "fixgw_best_ask_price", symbol="AAPL") == 151.0


def test_market_data_messages_subscriptions_and_publish_latency(gateway: GatewayProcess, connect: ClientFactory):
    snapshots = value(gateway, "fixgw_md_messages_sent_total", msg_type="W")
    increments = value(gateway, "fixgw_md_messages_sent_total", msg_type="X")
    subscriptions = value(gateway, "fixgw_md_subscriptions")
    published = value(gateway, "fixgw_md_publish_seconds_count")
    client = MarketDataClient("127.0.0.1", gateway.md_port, "MD3", PASSWORDS["MD3"])
    client.logon()
    try:
        client.subscribe("MSFT", depth=5)
        wait_value(gateway, "fixgw_md_subscriptions", equals(subscriptions + 1))
        wait_value(gateway, "fixgw_md_messages_sent_total", lambda v: v >= snapshots + 1, msg_type="W")
        s = connect("CLIENT9")
        clordid = unique("md")
        new_order(s, clordid, "1", "3", "5.55", symbol="MSFT")
        wait_er(s, clordid, "0")
        client.wait_until(
            lambda: any(lv.price == Decimal("5.55") for lv in client.book("MSFT").bids), 10, "the new bid"
        )
        wait_value(gateway, "fixgw_md_messages_sent_total", lambda v: v >= increments + 1, msg_type="X")
        wait_value(gateway, "fixgw_md_publish_seconds_count", lambda v: v > published)
    finally:
        client.close()
    wait_value(gateway, "fixgw_md_subscriptions", equals(subscriptions))
    assert value(gateway, "fixgw_md_slow_consumer_events_total", action="logout") == 0


# ---------------------------------------------------------------------------- names


def test_every_name_a_real_gateway_exports_follows_the_naming_rules(gateway: GatewayProcess) -> None:
    """The one application prefix, snake_case, base units, _total on counters only (gateway/metricnames.py); only
    the process and platform collectors' standard names go without the prefix."""
    text = gateway.metrics()
    assert not naming_problems(text), "\n".join(naming_problems(text))
    own = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")]
    assert sum(name.startswith(PREFIX) for name in own) >= 30
    assert "fixgw_journal_fsync_seconds" in own and "fixgw_ready" in own


def test_the_naming_rules_catch_what_they_forbid() -> None:
    assert problems("fixgw_trades_total", "counter", ["symbol"]) == []
    assert problems("fixgw_order_to_execution_report_seconds", "histogram", ["le"]) == []
    assert problems("fixgw_resting_orders", "gauge", ["symbol"]) == []
    for name, kind, labels, why in (
        ("trades_total", "counter", [], "no application prefix"),
        ("fixgw_fixgw_trades_total", "counter", [], "more than once"),
        ("fixgw_Trades_total", "counter", [], "snake_case"),
        ("fixgw_trades__total", "counter", [], "snake_case"),
        ("fixgw_trades", "counter", [], "ends in _total"),
        ("fixgw_resting_orders_total", "gauge", [], "only counters"),
        ("fixgw_order_latency_milliseconds", "histogram", [], "not a base unit: milliseconds"),
        ("fixgw_journal_size_mb", "gauge", [], "not a base unit: mb"),
        ("fixgw_order_latency", "histogram", [], "names the unit"),
        ("fixgw_orders_count", "gauge", [], "suffixes"),
        ("fixgw_orders", "untyped", [], "TYPE"),
        ("fixgw_orders", "gauge", ["Symbol"], "label 'Symbol'"),
        ("fixgw_orders", "gauge", ["le"], "reserved"),
    ):
        found = problems(name, kind, labels)
        assert any(why in p for p in found), (name, found)


def test_exposition_check_reports_a_foreign_name_and_an_untyped_sample() -> None:
    text = "# TYPE orders_total counter\norders_total 1.0\nstray_metric 2.0\n"
    found = naming_problems(text)
    assert any(p.startswith("orders_total: no application prefix") for p in found), found
    assert "stray_metric: a sample without a # TYPE line" in found
    assert naming_problems("# TYPE process_open_fds gauge\nprocess_open_fds 9.0\n") == []


# ---------------------------------------------------------------------------- dashboard and scrape config

_PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
                 "offset", "inf", "nan"}  # fmt: skip


def exported_names() -> set[str]:
    """Every sample name a gateway's registry and the reference market-data client's can export, with the suffixes
    each family type adds (families are listed even before they have samples). Only names PromQL can select: a
    counter's family name without ``_total`` is not one."""
    names: set[str] = set()
    client = CollectorRegistry()
    rptseq_gaps(client)
    for registry in (Metrics().registry, client):
        for family in registry.collect():
            if family.type == "counter":
                names.add(family.name + "_total")
            elif family.type == "histogram":
                names.update(family.name + s for s in ("_bucket", "_sum", "_count"))
            else:
                names.add(family.name)
    return names


def promql_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (functions, keywords, label names, ranges and strings left out)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    found = set()
    for m in re.finditer(r"(?<![\w.$])[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        if expr[m.end() :].lstrip().startswith("(") or m.group().lower() in _PROMQL_WORDS:
            continue
        found.add(m.group())
    return found


def dashboard_exprs(dashboard: dict[str, object]) -> list[str]:
    exprs: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, v in node.items():
                if key == "expr" and isinstance(v, str):
                    exprs.append(v)
                elif key == "definition" and isinstance(v, str):
                    exprs.extend(re.findall(r"label_values\(\s*([a-zA-Z_:][\w:]*)", v))
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(dashboard)
    return exprs


def test_promql_name_extraction() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, command) (rate(fixgw_engine_command_seconds_bucket{instance=~"$i"}'
        "[$__rate_interval]))) / on (x) group_left foo_total offset 5m"
    )
    assert promql_names(expr) == {"fixgw_engine_command_seconds_bucket", "foo_total"}
    known = exported_names()
    assert {
        "fixgw_orders_accepted_total", "fixgw_order_to_execution_report_seconds_bucket", "fixgw_resting_orders",
        "fixgw_md_client_rptseq_gaps_total", "process_cpu_seconds_total", "process_resident_memory_bytes",
    } <= known  # fmt: skip
    assert not {
        "orders_accepted_total", "fixgw_orders_accepted", "fixgw_orders_accepted_count",
        "fixgw_order_to_execution_report_seconds", "fixgw_fix_logons_created", "nope",
    } & known  # fmt: skip


def test_dashboard_is_grafana_json_over_exported_metrics_only() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] and dashboard["uid"] and dashboard["schemaVersion"] >= 30
    panels = dashboard["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for p in panels:
        assert set(p["gridPos"]) == {"h", "w", "x", "y"} and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
        if p["type"] != "row":
            assert p["targets"] and all(t["expr"] and t["refId"] for t in p["targets"]), p["title"]
            assert p["datasource"]["uid"] == "${datasource}"
    known = exported_names()
    referenced: set[str] = set()
    prometheus_own = {"up"}  # a series Prometheus writes for every target it scrapes
    for expr in dashboard_exprs(dashboard):
        referenced |= promql_names(expr)
    unknown = referenced - known - prometheus_own
    assert not unknown, f"the dashboard refers to metrics gateway/metrics.py does not export: {sorted(unknown)}"
    # Every metric of the venue is charted (a histogram through its buckets), and the process's CPU and memory.
    wanted = {name for name in known if name.startswith(PREFIX) and not name.endswith(("_sum", "_count"))}
    wanted |= {"process_cpu_seconds_total", "process_resident_memory_bytes"}
    assert wanted <= referenced, f"missing from the dashboard: {sorted(wanted - referenced)}"


def test_prometheus_config_scrapes_the_metrics_endpoint() -> None:
    text = PROMETHEUS.read_text()
    try:
        yaml = importlib.import_module("yaml")
    except ImportError:  # not a dependency: check the few lines that matter by hand
        assert re.search(r"^scrape_configs:", text, re.M)
        assert re.search(r"job_name:\s*fixgw", text)
        assert re.search(r"metrics_path:\s*/metrics", text)
        assert re.search(r"targets:\s*\[\s*\"127\.0\.0\.1:9464\"\s*\]", text)
    else:
        job = yaml.safe_load(text)["scrape_configs"][0]
        assert job["metrics_path"] == "/metrics"
        assert job["static_configs"][0]["targets"] == ["127.0.0.1:9464"]
    venue = (ROOT / "config" / "venue.toml").read_text()
    assert re.search(r"^port = 9464\b", venue, re.M), "the demo config's metrics port changed: update prometheus.yml"


# ---------------------------------------------------------------------------- the ledger, risk and the operator


def test_ledger_gauges_and_counters_follow_a_deposit_an_order_a_trade_and_refusals(
    gateway: GatewayProcess, connect: ClientFactory
) -> None:
    """Totals in whole assets (USD in dollars): what a deposit, a hold, a trade with a fee and a cancel move."""
    operator = f"http://127.0.0.1:{gateway.ports['operator']}"
    # The starting point: the ledger as the operator channel reads it, once the gauges (refreshed every second)
    # show it too (earlier tests' sessions logged out, and cancel-on-disconnect released their holds).
    usd = usd_totals(operator)
    for name, total in usd.items():
        wait_value(gateway, name, exact_amount(total), asset="USD")
    actions = {(a, r): value(gateway, "fixgw_operator_actions_total", action=a, result=r)
               for a, r in (("deposit", "applied"), ("withdraw", "refused"))}  # fmt: skip
    risk = {
        c: value(gateway, "fixgw_risk_refusals_total", check=c) for c in ("insufficient_funds", "risk_order_notional")
    }
    assert call(operator, DEMO_TOKEN, "deposit", {"account": "ACC1", "asset": "USD", "amount": "1000",
                                                  "funding_id": unique("m-")})["ok"]  # fmt: skip
    wait_value(gateway, "fixgw_ledger_available", exact_amount(usd["fixgw_ledger_available"] + 1000), asset="USD")
    assert not call(operator, DEMO_TOKEN, "withdraw", {"account": "ACC1", "asset": "USD", "amount": "1e12",
                                                       "funding_id": unique("m-")})["ok"]  # fmt: skip
    wait_value(gateway, "fixgw_operator_actions_total", equals(actions["deposit", "applied"] + 1),
               action="deposit", result="applied")  # fmt: skip
    wait_value(gateway, "fixgw_operator_actions_total", equals(actions["withdraw", "refused"] + 1),
               action="withdraw", result="refused")  # fmt: skip

    maker, taker = connect("CLIENT1"), connect("CLIENT2")
    bid = unique("lg")
    new_order(maker, bid, "1", "10", "100.00", symbol="MSFT", tif="1")  # holds 1,000 + the 1 bp taker fee: 1,000.10
    wait_er(maker, bid, "0")
    wait_value(gateway, "fixgw_ledger_held", exact_amount(usd["fixgw_ledger_held"] + 1000.10), asset="USD")
    wait_value(
        gateway, "fixgw_ledger_available", exact_amount(usd["fixgw_ledger_available"] + 1000 - 1000.10), asset="USD"
    )
    hit = unique("lg")
    new_order(taker, hit, "2", "4", "100.00", symbol="MSFT")  # 400 USD: the taker pays 0.04, the maker nothing
    wait_er(taker, hit, "F")
    wait_value(gateway, "fixgw_ledger_fee_account", exact_amount(usd["fixgw_ledger_fee_account"] + 0.04), asset="USD")
    wait_value(gateway, "fixgw_ledger_held", exact_amount(usd["fixgw_ledger_held"] + 600.06), asset="USD")
    wait_value(gateway, "fixgw_ledger_available", exact_amount(usd["fixgw_ledger_available"] + 399.90), asset="USD")

    beyond_funds = (unique("lg"), "BTC-USD", "100", "1000000.00")  # 100M USD: more than ACC2 has
    beyond_notional = (unique("lg"), "MSFT", "100000", "1000.00")  # 100M USD: over the 5M USD notional limit
    for clordid, symbol, qty, price in (beyond_funds, beyond_notional):
        new_order(taker, clordid, "1", qty, price, symbol=symbol)
        assert f(wait_er(taker, clordid, "8"), 103) == "3"
    for check in risk:
        wait_value(gateway, "fixgw_risk_refusals_total", equals(risk[check] + 1), check=check)

    cx = unique("lg")
    cancel(maker, cx, bid, symbol="MSFT")
    wait_er(maker, cx, "4")
    wait_value(gateway, "fixgw_ledger_held", exact_amount(usd["fixgw_ledger_held"]), asset="USD")
    wait_value(gateway, "fixgw_ledger_available", exact_amount(usd["fixgw_ledger_available"] + 999.96), asset="USD")
    for asset in ("USD", "BTC", "MSFT", "AAPL"):
        assert value(gateway, "fixgw_ledger_imbalance", asset=asset) == 0
    text = gateway.metrics()
    assert re.search(r'^fixgw_ledger_imbalance\{asset="USD"\} 0\.0$', text, re.M), "the conservation gauge is exported"


def journal_counts(gw: GatewayProcess) -> tuple[float, float, float]:
    text = gw.metrics()
    return (
        metric_value(text, "fixgw_journal_commands_total"), metric_value(text, "fixgw_journal_fsyncs_total"),
        metric_value(text, "fixgw_journal_fsync_seconds_count"),
    )  # fmt: skip


def equals_fsyncs(commands: float, fsyncs: float, timed: float) -> bool:
    return commands >= 5 and fsyncs == commands and timed == fsyncs


def one_fsync_or_more_per_loop_turn(commands: float, fsyncs: float, timed: float) -> bool:
    return commands >= 5 and 1 <= fsyncs <= commands and timed == fsyncs


@pytest.mark.parametrize("durability", ["fsync", "group"])
def test_every_journal_fsync_counted_and_timed(tmp_path: Path, durability: str) -> None:
    """``fsync``: one fsync per journaled command, each counted; ``group``: one per loop turn that journaled."""
    gw = start_gateway(tmp_path / "gw", **{"journal.durability": durability})
    try:
        s = FixSession("127.0.0.1", gw.oe_port, "CLIENT1", PASSWORDS["CLIENT1"], reset_seq=True)
        s.logon()
        ids = [unique("fs") for _ in range(5)]
        for clordid in ids:
            new_order(s, clordid, "1", "1", "1.00", symbol="MSFT")
        for clordid in ids:
            wait_er(s, clordid, "0")
        s.logout()
        # One scrape for both: the logout's cancel-on-disconnect journals one more command at any moment.
        settled = equals_fsyncs if durability == "fsync" else one_fsync_or_more_per_loop_turn
        deadline = time.monotonic() + 10
        while not settled(*(counts := journal_counts(gw))):
            assert time.monotonic() < deadline, f"commands, fsyncs, fsyncs timed: {counts}"
            time.sleep(0.05)
        assert value(gw, "fixgw_journal_fsync_seconds_sum") > 0
    finally:
        assert gw.stop() == 0


def test_rate_limit_logouts_counted_by_session(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path / "gw", **{"risk.max_messages_per_second": 5})
    try:
        s = FixSession("127.0.0.1", gw.oe_port, "CLIENT3", PASSWORDS["CLIENT3"], reset_seq=True)
        s.logon()
        for _ in range(10):
            s.send("H", [(11, "none"), (55, "AAPL"), (54, "1")])
        with pytest.raises(SessionError, match="message rate limit exceeded"):
            s.wait_for(lambda m: False, 10)
        s.close()
        wait_value(gw, "fixgw_rate_limit_logouts_total", equals(1), session="CLIENT3")
        assert value(gw, "fixgw_rate_limit_logouts_total", session="CLIENT4") == 0
    finally:
        assert gw.stop() == 0


def usd_totals(operator: str) -> dict[str, float]:
    """What the USD gauges must read, from every account's balances on the operator channel."""
    answer = call(operator, DEMO_TOKEN, "accounts", {})
    rows = [row["balances"].get("USD", {"available": "0", "held": "0"}) for row in answer["accounts"]]
    fees = answer["fee_account"]["balances"].get("USD", {"available": "0"})
    return {
        "fixgw_ledger_available": float(sum(Decimal(b["available"]) for b in rows)),
        "fixgw_ledger_held": float(sum(Decimal(b["held"]) for b in rows)),
        "fixgw_ledger_fee_account": float(Decimal(fees["available"])),
    }


def test_a_loop_turn_over_100_ms_is_logged_and_counted(tmp_path: Path) -> None:
    """A turn of the gateway's one loop that made every session wait is in the log (loop_stalled, with its seconds)
    and in fixgw_loop_stall_seconds; the venue goes on. Here one turn stalls on purpose for 0.4 s (the failpoint
    loop_stall, a second after the venue went live); any other turn over 100 ms (a busy host) is counted alike."""
    gw = start_gateway_with(tmp_path / "gw", {}, env={"FIXGW_FAILPOINT": "loop_stall:0.4"})
    try:
        assert "# TYPE fixgw_loop_stall_seconds histogram" in gw.metrics()  # exported from the start
        wait_value(gw, "fixgw_loop_stall_seconds_count", lambda v: v >= 1)
        lines = [json.loads(line) for line in gw.log_text().splitlines() if '"event": "loop_stalled"' in line]
        assert any(rec["seconds"] >= 0.4 and rec["limit"] == 0.1 for rec in lines), lines
        metrics = gw.metrics()
        assert metric_value(metrics, "fixgw_loop_stall_seconds_count") == len(lines)
        assert metric_value(metrics, "fixgw_loop_stall_seconds_sum") >= 0.4
        s = FixSession("127.0.0.1", gw.oe_port, "CLIENT1", PASSWORDS["CLIENT1"], reset_seq=True)
        s.logon()
        order = unique("after")
        new_order(s, order, "1", "1", "1.00")
        wait_er(s, order, "0")
        s.logout()
    finally:
        assert gw.stop() == 0
