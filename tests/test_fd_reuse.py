"""A client connecting while another one's connection is being dropped must not lose its connection.

QuickFIX's socket monitor closed a dropped socket at once and told the acceptor at its next turn. A connection
accepted in between could get the same descriptor: the acceptor, still holding the old connection under it, ignored
the new one, then closed its socket with the old one's disconnect, silently (seen as a rare "connection closed
before the Logon answer" in the conformance tests). The fixgw patch closes a dropped socket only once its
disconnect is handled (third_party/quickfix/README.md). Real sockets, a real QuickFIX acceptor.
"""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway_process import ROOT, free_port
from tests.rawfix import Closed, RawClient

pytestmark = pytest.mark.timeout(120)
ROUNDS = 12


@pytest.fixture
def acceptor(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tests.fd_reuse_acceptor", str(port), str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline().strip() == "LISTENING"
    yield port
    proc.terminate()
    assert proc.wait(timeout=30) == 0


def reset_close(client: RawClient) -> None:
    """Close with a TCP reset (no FIN, no Logout): the acceptor drops the connection when it reads."""
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.sock.close()


def test_a_logon_arriving_while_another_connection_drops_is_answered(acceptor: int) -> None:
    busy = RawClient(acceptor, "FDC", "pw")
    busy.logon()
    answered = 0
    for n in range(ROUNDS):
        dropping = RawClient(acceptor, "FDA", "pw")
        dropping.logon()
        # The acceptor's thread sleeps on this order; meanwhile FDA's reset and FDB's connection and Logon arrive.
        busy.send("D", f"11=o{n}|55=X|54=1|38=1|40=1|60=20261206-00:00:00|")
        reset_close(dropping)
        newcomer = RawClient(acceptor, "FDB", "pw")
        try:
            newcomer.logon()
        except Closed:
            pytest.fail(f"round {n + 1}: FDB's connection was closed before its Logon was answered")
        answered += 1
        newcomer.send("5", "")
        newcomer.expect("5")
        newcomer.close()
    assert answered == ROUNDS
