"""``bench/cluster_bench.py --smoke``: the one-process venue and a cluster (nats-server, engine, two gateways, two
market-data publishers) each carry a little load, and every role's CPU per unit of work comes out of the run. A
benchmark that silently stops measuring a role (a process not sampled, no stream messages counted) fails here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import cluster_bench

pytestmark = pytest.mark.timeout(240)


def test_smoke_measures_every_role(tmp_path: Path) -> None:
    out = tmp_path / "runs.jsonl"
    assert cluster_bench.main(["--smoke", "--json-out", str(out)]) == 0
    runs = [json.loads(line) for line in out.read_text().splitlines()]
    by = {(r["part"], r["layout"]): r for r in runs}
    one, cluster, md = by["oe", "one"], by["oe", "r1-gw2"], by["md", "r1-pub2"]
    for run in (one, cluster):
        assert run["orders_sent"] > 0 and run["unanswered"] == 0
    assert one["venue_us_per_order"] > 0
    for key in ("gateway_us_per_order", "engine_us_per_command", "nats_us_per_message"):
        assert cluster[key] > 0, key
    assert set(cluster["cpu_s"]) == {"nats:n0", "engine:e1", "gateway:gw1", "gateway:gw2"}
    assert cluster["stream_messages"] >= 2  # commands and their results
    assert md["books_exact"] == md["books_total"] == 4 and md["x_mismatched"] == 0
    assert md["x_delivered"] > 0 and md["publisher_us_per_x"] > 0
    assert set(md["publisher_cpu_pct"]) == {"md:md1", "md:md2"}
