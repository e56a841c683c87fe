"""The documentation tells the truth: its examples run, its tables name every reject, its commands are the real ones."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from engine import Reason
from tests.gateway_process import ROOT

pytestmark = pytest.mark.timeout(120)

RULES = (ROOT / "docs" / "rules-of-engagement.md").read_text()
README = (ROOT / "README.md").read_text()


def test_documented_examples_regenerate_against_a_real_gateway() -> None:
    done = subprocess.run(
        [sys.executable, "docs/examples.py"], cwd=ROOT, capture_output=True, text=True, timeout=100, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    titles = re.findall(r"^### (.+)$", done.stdout, flags=re.M)
    assert len(titles) >= 10
    for title in titles:  # every captured example is in the rules of engagement
        assert f"### {title}" in RULES, title
    for msg_type in ("8", "9", "r", "W", "X", "Y", "5"):  # and the venue really sent each kind
        assert re.search(rf"^V->C 8=FIX\.4\.4\|9=\d+\|35={msg_type}\|", done.stdout, flags=re.M), msg_type


def test_every_reject_reason_and_its_text_is_documented() -> None:
    missing = [r.name for r in Reason if r.text not in RULES]
    assert not missing, f"reasons whose Text is not in docs/rules-of-engagement.md: {missing}"


def test_readme_opens_with_the_two_commands_ci_runs() -> None:
    head = README[:600]
    assert "make run" in head and "make test" in head
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, flags=re.M)
