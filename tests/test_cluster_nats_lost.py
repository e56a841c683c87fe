"""When the JetStream cluster goes away, role processes say so in one line each and still stop on SIGTERM.

nats-py's default error callback logged a traceback for every failed reconnect attempt (ten a second), which buried
everything else in a role's log while its cluster was down.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.cluster_process import RoleProcess, cluster_config
from tests.nats_cluster import NatsCluster


@pytest.mark.timeout(180)
def test_roles_log_the_lost_cluster_in_lines_and_stop_on_sigterm(tmp_path: Path) -> None:
    nats = NatsCluster(tmp_path / "nats", 1).start()
    config, _ = cluster_config(tmp_path, nats.urls, {"gw1": ["CLIENT1"]}, {"md1": ["MD1"]})
    roles = [
        RoleProcess(config, "engine", "e1", tmp_path),
        RoleProcess(config, "gateway", "gw1", tmp_path),
        RoleProcess(config, "md", "md1", tmp_path),
    ]
    try:
        for role in roles:
            role.start(60)
        nats.kill(0)
        for role in roles:
            role.wait_for('"event": "nats_disconnected"', 30)
        for role in roles:
            assert role.proc is not None
            role.proc.send_signal(signal.SIGTERM)
            role.proc.wait(30)  # raises if the role ignores SIGTERM
            text = role.log_text()
            assert "Traceback" not in text, f"{role.role} logged a traceback:\n{role.tail()}"
    finally:
        for role in roles:
            if role.alive():
                role.kill()
        nats.stop()
