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

from feeds.client import MarketDataClient
from fixclient import FixSession, SessionError
from gateway.admin_cli import DEMO_TOKEN
from gateway.metrics import Metrics
from gateway.operator import call
from tests.conftest import PASSWORDS, ClientFactory, start_gateway, unique
from tests.fixtools import cancel, f, new_order, wait_er
from tests.gateway_process import ROOT, GatewayProcess, metric_value

pytestmark = pytest.mark.timeout(60)

DASHBOARD = ROOT / "config" / "grafana-dashboard.json"
PROMETHEUS = ROOT / "config" / "prometheus.yml"
METRICS_SOURCES = (ROOT / "gateway" / "metrics.py", ROOT / "feeds" / "client.py")  # the client counts RptSeq gaps


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
    received = value(gateway, "fix_messages_received_total", msg_type="D", session="CLIENT1")
    sent = value(gateway, "fix_messages_sent_total", msg_type="8", session="CLIENT1")
    accepted = value(gateway, "orders_accepted_total", symbol="MSFT")
    news = value(gateway, "executions_total", exec_type="new")
    latency_count = value(gateway, "order_to_execution_report_seconds_count")
    ids = [unique("m") for _ in range(3)]
    for i, clordid in enumerate(ids):
        new_order(s, clordid, "1", "10", f"10.0{i}", symbol="MSFT")
    for clordid in ids:
        wait_er(s, clordid, "0")
    wait_value(gateway, "fix_messages_received_total", equals(received + 3), msg_type="D", session="CLIENT1")
    wait_value(gateway, "fix_messages_sent_total", equals(sent + 3), msg_type="8", session="CLIENT1")
    wait_value(gateway, "orders_accepted_total", equals(accepted + 3), symbol="MSFT")
    wait_value(gateway, "executions_total", equals(news + 3), exec_type="new")
    count = wait_value(gateway, "order_to_execution_report_seconds_count", lambda v: v >= latency_count + 3)
    buckets = metric_value(gateway.metrics(), "order_to_execution_report_seconds_bucket", le="+Inf")
    assert buckets == count
    assert value(gateway, "order_to_execution_report_seconds_sum") > 0


def test_rejected_orders_counted_by_reason(gateway: GatewayProcess, connect: ClientFactory) -> None:
    s = connect("CLIENT2")
    reasons = ("invalid_quantity", "price_off_tick", "unknown_symbol")
    before = {r: value(gateway, "orders_rejected_total", reason=r) for r in reasons}
    rejected = value(gateway, "executions_total", exec_type="rejected")
    accepted = value(gateway, "orders_accepted_total", symbol="MSFT")
    a, b, c = unique("r"), unique("r"), unique("r")
    new_order(s, a, "1", "0", "10.00", symbol="MSFT")
    new_order(s, b, "1", "5", "10.001", symbol="MSFT")
    new_order(s, c, "1", "5", "10.00", symbol="NOSUCH")
    for clordid in (a, b, c):
        wait_er(s, clordid, "8")
    for r in reasons:
        wait_value(gateway, "orders_rejected_total", equals(before[r] + 1), reason=r)
    wait_value(gateway, "executions_total", equals(rejected + 3), exec_type="rejected")
    assert value(gateway, "orders_accepted_total", symbol="MSFT") == accepted


def test_trades_counted_once_with_quantity_in_instrument_units(gateway: GatewayProcess, connect: ClientFactory):
    maker, taker = connect("CLIENT3"), connect("CLIENT4")
    trade_reports = value(gateway, "executions_total", exec_type="trade")
    trades = {sym: value(gateway, "trades_total", symbol=sym) for sym in ("MSFT", "BTC-USD")}
    qty = {sym: value(gateway, "traded_quantity_total", symbol=sym) for sym in ("MSFT", "BTC-USD")}
    for sym, size, price in (("MSFT", "5", "300.00"), ("BTC-USD", "0.0150", "30000.00")):
        ask, bid = unique("t"), unique("t")
        new_order(maker, ask, "2", size, price, symbol=sym)
        wait_er(maker, ask, "0")
        new_order(taker, bid, "1", size, price, symbol=sym)
        wait_er(taker, bid, "F")
        wait_er(maker, ask, "F")
    wait_value(gateway, "executions_total", equals(trade_reports + 4), exec_type="trade")  # both sides, twice
    wait_value(gateway, "trades_total", equals(trades["MSFT"] + 1), symbol="MSFT")
    wait_value(gateway, "trades_total", equals(trades["BTC-USD"] + 1), symbol="BTC-USD")
    wait_value(gateway, "traded_quantity_total", equals(qty["MSFT"] + 5), symbol="MSFT")
    wait_value(gateway, "traded_quantity_total", equals(qty["BTC-USD"] + 0.015), symbol="BTC-USD")


def test_sessions_logged_on_gauge_follows_logon_and_logout(gateway: GatewayProcess, connect: ClientFactory):
    # Earlier tests' sessions have logged out, but the venue answers a Logout before its disconnect callback counts
    # it: under load a scrape can fall in between. Start from the settled count (no session of this module is on).
    oe = wait_value(gateway, "fix_sessions_logged_on", equals(0), role="order_entry")
    md = wait_value(gateway, "fix_sessions_logged_on", equals(0), role="market_data")
    logons = value(gateway, "fix_logons_total", role="order_entry")
    s = connect("CLIENT5")
    wait_value(gateway, "fix_sessions_logged_on", equals(oe + 1), role="order_entry")
    wait_value(gateway, "fix_logons_total", equals(logons + 1), role="order_entry")
    m = connect("MD1")
    wait_value(gateway, "fix_sessions_logged_on", equals(md + 1), role="market_data")
    s.logout()
    wait_value(gateway, "fix_sessions_logged_on", equals(oe), role="order_entry")
    m.logout()
    wait_value(gateway, "fix_sessions_logged_on", equals(md), role="market_data")


def test_refused_logons_counted_by_reason(gateway: GatewayProcess) -> None:
    """A wrong password is refused while the venue verifies it (``verifying``) and counted as a failed verification;
    the same password again is refused from the venue's memory (``bad_password``, or ``throttled`` inside the
    back-off the failure started)."""
    reasons = ("verifying", "bad_password", "throttled")
    refused = {r: value(gateway, "fix_logon_failures_total", reason=r) for r in reasons}
    bad = value(gateway, "fixgw_logon_verifications_total", result="bad_password")
    oe = value(gateway, "fix_sessions_logged_on", role="order_entry")

    def attempt() -> None:
        s = FixSession("127.0.0.1", gateway.oe_port, "CLIENT6", "not-the-password", reset_seq=True)
        try:
            with pytest.raises(SessionError):
                s.logon(retry=False)
        finally:
            s.close()

    attempt()
    wait_value(gateway, "fix_logon_failures_total", equals(refused["verifying"] + 1), reason="verifying")
    wait_value(gateway, "fixgw_logon_verifications_total", equals(bad + 1), result="bad_password")
    attempt()
    deadline = time.monotonic() + 10
    while sum(value(gateway, "fix_logon_failures_total", reason=r) - refused[r] for r in refused) < 2:
        assert time.monotonic() < deadline, "the second refusal was not counted"
        time.sleep(0.05)
    assert value(gateway, "fix_logon_failures_total", reason="verifying") == refused["verifying"] + 1
    assert value(gateway, "fix_sessions_logged_on", role="order_entry") == oe
    assert "not-the-password" not in gateway.metrics()


def test_resend_request_counted(gateway: GatewayProcess, connect: ClientFactory) -> None:
    s = connect("CLIENT7")
    before = value(gateway, "fix_resend_requests_received_total", role="order_entry")
    clordid = unique("rs")
    new_order(s, clordid, "1", "1", "1.00", symbol="MSFT")
    wait_er(s, clordid, "0")
    s.send("2", [(7, 1), (16, 0)])
    wait_value(gateway, "fix_resend_requests_received_total", equals(before + 1), role="order_entry")


def test_book_gauges_follow_the_book(gateway: GatewayProcess, connect: ClientFactory) -> None:
    """resting_orders / best_bid_price / best_ask_price are refreshed every second: wait for them."""
    s = connect("CLIENT8")
    bid, ask = unique("g"), unique("g")
    new_order(s, bid, "1", "10", "150.00", symbol="AAPL")
    new_order(s, ask, "2", "10", "151.00", symbol="AAPL")
    wait_er(s, bid, "0")
    wait_er(s, ask, "0")
    wait_value(gateway, "resting_orders", equals(2), symbol="AAPL")
    wait_value(gateway, "best_bid_price", equals(150.0), symbol="AAPL")
    wait_value(gateway, "best_ask_price", equals(151.0), symbol="AAPL")
    cx = unique("g")
    cancel(s, cx, bid, symbol="AAPL")
    wait_er(s, cx, "4")
    wait_value(gateway, "resting_orders", equals(1), symbol="AAPL")
    wait_value(gateway, "best_bid_price", math.isnan, symbol="AAPL")
    assert value(gateway, "best_ask_price", symbol="AAPL") == 151.0


def test_market_data_messages_subscriptions_and_publish_latency(gateway: GatewayProcess, connect: ClientFactory):
    snapshots = value(gateway, "md_messages_sent_total", msg_type="W")
    increments = value(gateway, "md_messages_sent_total", msg_type="X")
    subscriptions = value(gateway, "md_subscriptions")
    published = value(gateway, "md_publish_seconds_count")
    client = MarketDataClient("127.0.0.1", gateway.md_port, "MD3", PASSWORDS["MD3"])
    client.logon()
    try:
        client.subscribe("MSFT", depth=5)
        wait_value(gateway, "md_subscriptions", equals(subscriptions + 1))
        wait_value(gateway, "md_messages_sent_total", lambda v: v >= snapshots + 1, msg_type="W")
        s = connect("CLIENT9")
        clordid = unique("md")
        new_order(s, clordid, "1", "3", "5.55", symbol="MSFT")
        wait_er(s, clordid, "0")
        client.wait_until(
            lambda: any(lv.price == Decimal("5.55") for lv in client.book("MSFT").bids), 10, "the new bid"
        )
        wait_value(gateway, "md_messages_sent_total", lambda v: v >= increments + 1, msg_type="X")
        wait_value(gateway, "md_publish_seconds_count", lambda v: v > published)
    finally:
        client.close()
    wait_value(gateway, "md_subscriptions", equals(subscriptions))
    assert value(gateway, "md_slow_consumer_events_total", action="logout") == 0


# ---------------------------------------------------------------------------- dashboard and scrape config

_PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
                 "offset", "inf", "nan"}  # fmt: skip


def exported_names() -> set[str]:
    """Every sample name a gateway's registry can export: from the registry itself (with the suffixes each family
    type adds) and from the names written in gateway/metrics.py (in case a custom collector only reports families
    that have samples). Only names PromQL can select: a counter's family name without ``_total`` is not one."""
    names: set[str] = set()
    for family in Metrics().registry.collect():
        names.update(sample.name for sample in family.samples)
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names.update(family.name + s for s in ("_bucket", "_sum", "_count"))
        else:
            names.add(family.name)
    source = "\n".join(p.read_text() for p in METRICS_SOURCES)
    for ctor, name in re.findall(r"(\w+)\(\s*\"([a-zA-Z_:][a-zA-Z0-9_:]*)\"", source):
        if "histogram" in ctor.lower():
            names.update(name + s for s in ("_bucket", "_sum", "_count"))
        elif "counter" in ctor.lower() and not name.endswith("_total"):
            names.add(name + "_total")
        else:
            names.add(name)
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
        'histogram_quantile(0.99, sum by (le, command) (rate(engine_command_seconds_bucket{instance=~"$i"}'
        "[$__rate_interval]))) / on (x) group_left foo_total offset 5m"
    )
    assert promql_names(expr) == {"engine_command_seconds_bucket", "foo_total"}
    known = exported_names()
    assert {"orders_accepted_total", "order_to_execution_report_seconds_bucket", "resting_orders"} <= known
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes"} <= known
    assert not {"orders_accepted", "orders_accepted_count", "order_to_execution_report_seconds", "nope"} & known


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
    for expr in dashboard_exprs(dashboard):
        referenced |= promql_names(expr)
    unknown = referenced - known
    assert not unknown, f"the dashboard refers to metrics gateway/metrics.py does not export: {sorted(unknown)}"
    wanted = {
        "orders_accepted_total", "orders_rejected_total", "executions_total",
        "order_to_execution_report_seconds_bucket", "engine_command_seconds_bucket", "fix_sessions_logged_on",
        "resting_orders", "best_bid_price", "best_ask_price", "md_messages_sent_total", "md_publish_seconds_bucket",
        "md_slow_consumer_events_total",
        "fix_resend_requests_received_total", "process_cpu_seconds_total", "process_resident_memory_bytes",
        "fixgw_risk_refusals_total", "fixgw_ledger_available", "fixgw_ledger_held", "fixgw_ledger_fee_account",
        "fixgw_ledger_imbalance", "fixgw_operator_actions_total", "fixgw_rate_limit_logouts_total",
    }  # fmt: skip
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
