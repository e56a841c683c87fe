"""Reconnect storms: many sessions log on at once, drop their connections abruptly and come back, round after round.

The whole storm is :mod:`bench.storm` (the benchmark runs it bigger and reports logon times); here it runs small and
the test asserts what users would notice: every session back with everything it missed (its cancel-on-disconnect
reports, by resend; its books), each disconnect's cancel-on-disconnect applied exactly once (reports, audit trail,
log), a session that stays logged on answered all along, and connections that never send anything harmless.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import storm

pytestmark = pytest.mark.timeout(120)


def test_sessions_recover_everything_after_every_storm(tmp_path: Path) -> None:
    ns = storm.parse_args(
        ["--oe", "20", "--md", "20", "--rounds", "3", "--orders", "2", "--silent", "3", "--iterations", "1000",
         "--workdir", str(tmp_path)]
    )  # fmt: skip
    report = storm.run(ns)
    assert report["errors"] == {}, report["error_samples"]
    assert report["gateway_exit_code"] == 0
    totals = report["totals"]
    assert totals["logons"] == 40 * 4  # every session, every round, and once more at the end
    assert totals["drops"] == 40 * 3
    assert totals["cancel_on_disconnect_reports"] == 20 * 2 * 3  # each Day order, once per disconnect
    assert totals["gaps_recovered"] >= 40 * 3  # each comeback found the venue ahead and asked for the rest
    assert report["canary"]["requests"] > 0 and report["ok"]
