"""Checks of a Prometheus text exposition (what ``/metrics`` serves) against the venue's naming rules."""

from __future__ import annotations

import re
from collections import defaultdict

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from gateway.metricnames import problems

_TYPE_LINE = re.compile(r"^# TYPE (\S+) (\S+)$", re.M)
_SAMPLE_SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("", "_sum", "_count")}


def library_names() -> set[str]:
    """The families prometheus-client's process and platform collectors export under the standard names every
    client library uses (``process_cpu_seconds_total``, ...): exempt from the application prefix, and only those."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return {name for name, _ in _TYPE_LINE.findall(generate_latest(registry).decode())}


def naming_problems(text: str) -> list[str]:
    """Every breach of :func:`gateway.metricnames.problems` in an exposition, one line each, plus any sample that
    belongs to no ``# TYPE``d family."""
    exempt = library_names()
    types = dict(_TYPE_LINE.findall(text))
    labels: dict[str, set[str]] = defaultdict(set)
    samples: set[str] = set()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels[family.name].update(sample.labels)
            samples.add(sample.name)
    found = []
    typed: set[str] = set()
    for name, kind in types.items():
        typed.update(name + suffix for suffix in _SAMPLE_SUFFIXES.get(kind, ("",)))
        if name in exempt:
            continue
        family = name.removesuffix("_total") if kind == "counter" else name  # how the parser names a counter
        found.extend(f"{name}: {problem}" for problem in problems(name, kind, labels.get(family, ())))
    found.extend(f"{name}: a sample without a # TYPE line" for name in sorted(samples - typed))
    return found
