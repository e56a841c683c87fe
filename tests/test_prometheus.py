"""The shipped monitoring config against a real Prometheus (Debian's package): the scrape config, the alerting rules
(``promtool check`` and ``promtool test rules``), and every expression of the Grafana dashboard evaluated over a real
gateway and the reference market-data client under a short load."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from fixclient import FixSession, SessionError
from gateway.operator import call
from tests.conftest import PASSWORDS, start_gateway, unique
from tests.fixtools import cancel, f, new_order, wait_er, wait_msg
from tests.gateway_process import ROOT, GatewayProcess, free_port
from tests.prometheus_server import PrometheusServer, prometheus_tool
from tools.admin import DEMO_TOKEN

pytestmark = pytest.mark.timeout(120)

CONFIG = ROOT / "config"
SCRAPE_INTERVAL = "1s"
# Grafana's $__rate_interval is max(4 x scrape interval, step + scrape interval): with 1 s scrapes and a 15-minute
# panel (a step of a few seconds) about 5-10 s. 10 s spans the last seconds of the load.
RATE_INTERVAL = "10s"
SYMBOL = "AAPL"
LOAD_SECONDS = 8  # long enough for several scrapes while orders rest on both sides


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([prometheus_tool("promtool"), *args], capture_output=True, text=True, timeout=60, check=False)


def test_promtool_accepts_the_scrape_config_and_the_alerting_rules_it_loads() -> None:
    done = promtool("check", "config", str(CONFIG / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    rules = re.search(r"SUCCESS: (\d+) rules found", done.stdout)
    assert "alerts.yml" in done.stdout and rules and int(rules.group(1)) >= 8, done.stdout


def test_alerting_rules_pass_their_unit_tests() -> None:
    """tests/alerts_test.yml: every rule of config/alerts.yml quiet while healthy and firing, with its labels and text,
    when its condition has held long enough."""
    done = promtool("test", "rules", str(ROOT / "tests" / "alerts_test.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


# ---------------------------------------------------------------------------- the dashboard over a real Prometheus


def dashboard() -> dict[str, Any]:
    return dict(json.loads((CONFIG / "grafana-dashboard.json").read_text()))


def panel_exprs(node: Any, title: str = "") -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target of every panel, rows' nested panels included."""
    found = []
    if isinstance(node, dict):
        title = node.get("title", title)
        if isinstance(node.get("expr"), str):
            found.append((title, node["expr"]))
        for value in node.values():
            found.extend(panel_exprs(value, title))
    elif isinstance(node, list):
        for value in node:
            found.extend(panel_exprs(value, title))
    return found


def grafana_regex(value: str) -> str:
    """A value of a multi-value variable as Grafana writes it into a PromQL regex matcher (escaped, in a string)."""
    return re.escape(value).replace("\\", "\\\\")


def substitute(expr: str, instance: str) -> str:
    """What Grafana sends for a panel with the Gateway variable on one gateway and the Symbol variable on AAPL."""
    expr = expr.replace("$__rate_interval", RATE_INTERVAL)
    expr = expr.replace("$instance", grafana_regex(instance)).replace("$symbol", grafana_regex(SYMBOL))
    assert "$" not in expr, f"a template variable the test does not know: {expr}"
    return expr


def prometheus_config(gateway_target: str, md_client_target: str) -> str:
    """The shipped config/prometheus.yml, pointed at this test's processes and scraping every second."""
    text = (CONFIG / "prometheus.yml").read_text()
    for old, new in (
        ('"127.0.0.1:9464"', f'"{gateway_target}"'), ('"127.0.0.1:9465"', f'"{md_client_target}"'),
        ("scrape_interval: 5s", f"scrape_interval: {SCRAPE_INTERVAL}"), ("scrape_timeout: 4s", "scrape_timeout: 1s"),
        ("evaluation_interval: 15s", "evaluation_interval: 1s"),
    ):  # fmt: skip
        assert old in text, f"config/prometheus.yml changed: no {old}"
        text = text.replace(old, new)
    return text


def some_of_everything(gw: GatewayProcess) -> None:
    """The events whose series only exist once they happened: a rejected order, a risk refusal, a cancel reject, a
    refused logon, an operator deposit."""
    s = FixSession("127.0.0.1", gw.oe_port, "CLIENT3", PASSWORDS["CLIENT3"], reset_seq=True)
    s.logon()
    try:
        off_tick, too_big, unknown = unique("pr"), unique("pr"), unique("pr")
        new_order(s, off_tick, "1", "5", "100.001", symbol=SYMBOL)
        assert f(wait_er(s, off_tick, "8"), 58)
        new_order(s, too_big, "1", "100000", "1000.00", symbol=SYMBOL)  # 100M USD: over the notional limit
        assert f(wait_er(s, too_big, "8"), 103) == "3"
        cancel(s, unique("pr"), unknown, symbol=SYMBOL)
        wait_msg(s, "9")
    finally:
        s.logout()
    bad = FixSession("127.0.0.1", gw.oe_port, "CLIENT4", "not-the-password", reset_seq=True)
    try:
        with pytest.raises(SessionError):
            bad.logon()
    finally:
        bad.close()
    operator = f"http://127.0.0.1:{gw.ports['operator']}"
    deposit = {"account": "ACC5", "asset": "USD", "amount": "100", "funding_id": unique("pr-")}
    assert call(operator, DEMO_TOKEN, "deposit", deposit)["ok"]


def rules_evaluated(prom: PrometheusServer) -> list[dict[str, Any]]:
    """Every alerting rule, once Prometheus has evaluated each of them at least once (else an empty list)."""
    rules = [rule for group in prom.api("rules")["groups"] for rule in group["rules"]]
    return rules if rules and all(rule["health"] != "unknown" for rule in rules) else []


def without_data(prom: PrometheusServer, exprs: list[tuple[str, str]], instance: str, at: float) -> list[str]:
    """The dashboard expressions that give no number at ``at``: no series, or NaN in every one (what a quantile of
    no observations or a gauge of an empty book gives, and Grafana draws as nothing)."""
    empty = []
    for title, expr in exprs:
        values = [float(r["value"][1]) for r in prom.query(substitute(expr, instance), at)]
        if all(math.isnan(v) for v in values):
            empty.append(f"{title}: {expr} -> {values}")
    return empty


def test_every_dashboard_expression_returns_data_from_a_real_prometheus(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path / "gw", **{"risk.max_messages_per_second": 2000})  # the demo's limit
    md_port = free_port()
    md_log = (tmp_path / "md.log").open("wb")
    md = subprocess.Popen(
        [
            sys.executable, "-m", "feeds.client", "--port", str(gw.md_port), "--comp-id", "MD1",
            "--password", PASSWORDS["MD1"], "--symbol", SYMBOL, "--metrics-port", str(md_port),
        ],
        stdout=md_log, stderr=md_log, cwd=ROOT,
    )  # fmt: skip
    gateway_target = f"127.0.0.1:{gw.ports['metrics']}"
    alerts = (CONFIG / "alerts.yml").read_text()
    prom = PrometheusServer(prometheus_config(gateway_target, f"127.0.0.1:{md_port}"), {"alerts.yml": alerts})
    exprs = panel_exprs(dashboard()["panels"])
    assert len(exprs) >= 40
    load: subprocess.Popen[str] | None = None
    try:
        prom.start()
        some_of_everything(gw)
        load = subprocess.Popen(
            [
                sys.executable, "-m", "gateway", "simulate", "--port", str(gw.oe_port), "--symbol", SYMBOL,
                "--seconds", str(LOAD_SECONDS), "--rate", "100", "--sessions", "2", "--seed", "14",
            ],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
        )  # fmt: skip
        # While the load runs (its book has both sides, its rates and histograms move), until one instant at which
        # every panel of the dashboard shows a number. Once the load logs out, its orders are cancelled: the book
        # gauges go NaN, so the wait ends with the load.
        ended: float | None = None
        while True:
            at = time.time()
            empty = without_data(prom, exprs, gateway_target, at)
            if not empty and rules_evaluated(prom):
                break
            if load.poll() is not None:
                ended = ended or time.monotonic()
                assert time.monotonic() - ended < 3, (
                    "dashboard expressions without data during the load:\n" + "\n".join(empty)
                )
            time.sleep(0.2)
        output, _ = load.communicate(timeout=60)
        assert load.returncode == 0, output
        assert md.poll() is None, (tmp_path / "md.log").read_text()

        for name, label, wanted in (("instance", "instance", gateway_target), ("symbol", "symbol", SYMBOL)):
            variable = next(v for v in dashboard()["templating"]["list"] if v["name"] == name)
            metric = re.fullmatch(rf"label_values\((\w+), {label}\)", variable["definition"])
            assert metric, variable["definition"]
            values = {r["metric"].get(label) for r in prom.query(f"count by ({label}) ({metric.group(1)})", at)}
            assert wanted in values, f"the {name} variable offers {values}"

        # The alerting rules evaluate without error over the real series, and a healthy venue fires none.
        rules = rules_evaluated(prom)
        assert len(rules) >= 8 and all(rule["health"] == "ok" for rule in rules), rules
        assert [a for a in prom.api("alerts")["alerts"] if a["state"] == "firing"] == []
    finally:
        if load is not None and load.poll() is None:
            load.kill()
            load.communicate()
        prom.stop()
        md.terminate()
        md.wait(10)
        md_log.close()
        assert gw.stop() == 0
