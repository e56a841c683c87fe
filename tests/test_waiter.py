"""The idle wait of the gateway loop (gateway.waiter) with real sockets and files of this process."""

from __future__ import annotations

import os
import socket
import tempfile
import time

import pytest

from gateway.waiter import SocketWaiter

pytestmark = pytest.mark.timeout(30)


def test_finds_sockets_and_ignores_files() -> None:
    waiter = SocketWaiter()
    a, b = socket.socketpair()
    with a, b, tempfile.TemporaryFile() as f:
        waiter.scan()
        assert {a.fileno(), b.fileno()} <= waiter.sockets
        assert f.fileno() not in waiter.sockets


def test_wakes_on_input_of_a_connection_accepted_after_the_scan() -> None:
    waiter = SocketWaiter(full_scan_every=3600)  # only the listening socket's wake-up can find the new one
    with socket.create_server(("127.0.0.1", 0)) as server:
        waiter.scan()
        with socket.create_connection(server.getsockname()) as client:
            waiter.wait(10)  # woken by the pending connection on the listening socket
            conn, _ = server.accept()  # what QuickFIX does inside poll()
            with conn:
                client.sendall(b"8=FIX.4.4\x01")
                start = time.monotonic()
                waiter.wait(20)
                assert time.monotonic() - start < 10, "slept to the timeout instead of waking on input"
                assert conn.fileno() in waiter.sockets


def test_closed_socket_leaves_the_set() -> None:
    waiter = SocketWaiter(full_scan_every=3600)
    a, b = socket.socketpair()
    waiter.scan()
    fd = a.fileno()
    assert fd in waiter.sockets
    a.close()
    b.close()
    waiter.wait(0.01)  # POLLNVAL for the closed descriptor
    assert fd not in waiter.sockets


def test_full_scan_drops_a_number_reused_by_a_file() -> None:
    waiter = SocketWaiter(full_scan_every=0)
    a, b = socket.socketpair()
    waiter.scan()
    fd = a.fileno()
    a.close()
    reused = os.open(os.devnull, os.O_RDONLY)
    try:
        if reused != fd:
            pytest.skip("the kernel did not reuse the descriptor number")
        waiter.wait(0.01)
        assert fd not in waiter.sockets
    finally:
        os.close(reused)
        b.close()
