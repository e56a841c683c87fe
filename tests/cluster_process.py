"""The multi-process venue in tests: a venue config with a ``[cluster]`` table on free ports, and its role processes
(engine, gateway, market-data publisher) as real subprocesses of ``fixgw serve --role ...``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.gateway_process import ROOT, free_port, make_config, terminate


def cluster_config(
    directory: Path,
    servers: list[str],
    gateways: dict[str, list[str]],
    publishers: dict[str, list[str]],
    replicas: int = 1,
    lease_seconds: float = 1.5,
    overrides: dict[str, Any] | None = None,
    shards: dict[str, list[str]] | None = None,
    sessions: dict[str, dict[str, Any]] | None = None,
) -> tuple[Path, dict[str, int]]:
    """The demo venue with the given gateways and publishers (name -> CompIDs), each on its own free ports (a
    gateway's drop-copy and operator ports: ``NAME.drop_copy``, ``NAME.operator``), and ``shards`` (name -> symbols;
    None: no [cluster.shards]); returns the config file and the ports by process name."""
    config, ports = make_config(directory, overrides, sessions)
    process_ports: dict[str, int] = {}
    lines = ["", "[cluster]", f"servers = {servers!r}".replace("'", '"'), f"replicas = {replicas}",
             f"lease_seconds = {lease_seconds}", ""]  # fmt: skip
    for kind, table, key in (
        ("gateways", gateways, "order_entry_port"),
        ("publishers", publishers, "market_data_port"),
    ):
        for name, sessions in table.items():
            port = process_ports[name] = free_port()
            lines += [f"[cluster.{kind}.{name}]", f"sessions = {sessions!r}".replace("'", '"'), f"{key} = {port}"]
            if kind == "gateways":
                process_ports[f"{name}.drop_copy"] = free_port()
                lines.append(f"drop_copy_port = {process_ports[f'{name}.drop_copy']}")
                process_ports[f"{name}.operator"] = free_port()
                lines.append(f"operator_port = {process_ports[f'{name}.operator']}")
            lines.append("")
    for name, symbols in (shards or {}).items():
        lines += [f'[cluster.shards."{name}"]', f"symbols = {symbols!r}".replace("'", '"'), ""]
    with config.open("a") as f:
        f.write("\n".join(lines))
    return config, {**ports, **process_ports}


STARTED: list[RoleProcess] = []  # every role process started in this test run (conftest kills those left running)


class RoleProcess:
    """``fixgw serve --role ROLE --name NAME``: start (waits for its READY line), stop, kill -9, start again."""

    def __init__(
        self, config: Path, role: str, name: str, directory: Path, shard: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        self.config, self.role, self.name, self.shard = config, role, name, shard
        self.env = env or {}  # added to the test's environment (a failpoint for this process only)
        self.log_path = directory / f"{role}-{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0, ready: str = "READY pid=") -> RoleProcess:
        log = self.log_path.open("ab")
        log.write(f"--- start {time.strftime('%H:%M:%S')}\n".encode())
        log.flush()
        self._mark = self.log_path.stat().st_size
        STARTED.append(self)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--config", str(self.config), "--role", self.role,
             "--name", self.name, *(["--shard", self.shard] if self.shard else [])],
            stdout=log, stderr=log, cwd=ROOT, env={**os.environ, **self.env, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        self.wait_for(ready, timeout)
        return self

    def wait_for(self, text: str, timeout: float = 30.0) -> None:
        """Until ``text`` appears in this run's log."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc is not None
            if text in self.log_path.read_text(errors="replace")[self._mark :]:
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.role} {self.name} exited with {self.proc.returncode}:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.role} {self.name}: no {text!r} within {timeout}s:\n{self.tail()}")
            time.sleep(0.02)

    def tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        return terminate(self.proc, timeout)

    def kill(self) -> None:
        """SIGKILL: the crash case."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
