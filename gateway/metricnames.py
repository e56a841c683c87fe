"""The venue's one metric-name prefix, and the Prometheus naming rules every name it exports must follow.

From https://prometheus.io/docs/practices/naming/: one single-word application prefix (``fixgw_``) so that the names
never collide with another exporter's in a shared Prometheus; snake_case; one unit per metric, in base units, named
by a plural suffix (``_seconds``, ``_bytes``, ``_ratio``; never ``_milliseconds`` or ``_percent``); ``_total`` on
counters and only on counters; ``_bucket``, ``_count`` and ``_sum`` left to histograms and summaries. Colons are for
recording rules, and label names starting with ``__`` are Prometheus' own.

:mod:`gateway.metrics` puts the prefix on every name it declares (write ``counter("trades_total", ...)``); the tests
check every name a real gateway and the reference market-data client export against :func:`problems`.
Dependency-free on purpose: any process of the venue can import it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

NAMESPACE = "fixgw"
PREFIX = NAMESPACE + "_"

BASE_UNITS = ("seconds", "bytes", "ratio", "meters", "grams", "volts", "amperes", "joules", "celsius")
"""Unit suffixes a histogram or summary may end with (what it observes has a unit)."""

NOT_BASE_UNITS = frozenset({
    "ns", "us", "ms", "nanoseconds", "microseconds", "milliseconds", "millis", "micros", "nanos", "minutes", "hours",
    "days", "kb", "mb", "gb", "kib", "mib", "gib", "kilobytes", "megabytes", "gigabytes", "bits", "percent", "pct",
})  # fmt: skip
"""Words that name a unit other than the base one: convert to seconds, bytes or a 0-1 ratio instead."""

_SNAKE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")  # no double, leading or trailing _
_RESERVED_SUFFIXES = ("_bucket", "_count", "_sum")
_RESERVED_LABELS = {"histogram": "le", "summary": "quantile"}


def prefixed(name: str) -> str:
    """``name`` with the application prefix (the one place that adds it)."""
    return PREFIX + name


def problems(name: str, kind: str, labels: Iterable[str] = ()) -> list[str]:
    """What breaks the rules in a metric family as exposed (``name`` as on its ``# TYPE`` line, ``kind`` the type
    there, ``labels`` its samples' label names); an empty list if nothing does."""
    found = []
    if not _SNAKE.fullmatch(name):
        found.append("not snake_case: lower-case letters, digits and single underscores, starting with a letter")
    if not name.startswith(PREFIX):
        found.append(f"no application prefix {PREFIX!r}")
    elif f"_{NAMESPACE}_" in name or name.endswith(f"_{NAMESPACE}"):
        found.append(f"the application prefix {NAMESPACE!r} more than once")
    if bad := sorted(NOT_BASE_UNITS.intersection(name.split("_"))):
        found.append(f"not a base unit: {', '.join(bad)} (use seconds, bytes or a 0-1 ratio)")
    if kind == "counter" and not name.endswith("_total"):
        found.append("a counter's name ends in _total")
    if kind != "counter" and name.endswith("_total"):
        found.append("only counters end in _total")
    if kind in ("histogram", "summary"):
        if not name.endswith(tuple("_" + unit for unit in BASE_UNITS)):
            found.append(f"a {kind} names the unit it observes: end in one of _{', _'.join(BASE_UNITS)}")
    elif name.endswith(_RESERVED_SUFFIXES):
        found.append(f"{', '.join(_RESERVED_SUFFIXES)} are a histogram's or a summary's own suffixes")
    if kind not in ("counter", "gauge", "histogram", "summary", "info", "stateset"):
        found.append(f"no or an unknown TYPE ({kind!r})")
    for label in labels:
        if not _SNAKE.fullmatch(label):
            found.append(f"label {label!r} is not snake_case")
        elif label in ("le", "quantile") and _RESERVED_LABELS.get(kind) != label:
            found.append(f"label {label!r} is reserved for {'histograms' if label == 'le' else 'summaries'}")
    return found
