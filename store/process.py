"""How ``fixgw serve`` starts the store beside the gateway: a child process that the gateway never waits for.

The child gets the gateway's pid and stops by itself when the gateway exits (it notices its parent is gone, however
the gateway ended, writes the rows of what the journal holds, and exits). It runs in a session of its own, so the
Ctrl-C that stops ``make run`` reaches the gateway only and the store can finish behind it; its log goes to the
gateway's stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys

from gateway.config import VenueConfig


def start_store_process(cfg: VenueConfig) -> subprocess.Popen[bytes] | None:
    """Start ``fixgw store`` for ``cfg`` unless the store is disabled or there is no journal; returns the child."""
    if not cfg.store.enabled or cfg.journal.durability == "off" or cfg.source is None:
        return None
    config, pid = str(cfg.source.resolve()), str(os.getpid())
    argv = [sys.executable, "-m", "gateway", "store", "--config", config, "--gateway-pid", pid]
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)
