"""Start the real gateway as a subprocess on free loopback ports, for end-to-end tests and benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEMO_CONFIG = ROOT / "config" / "venue.toml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return str(value)


def dump_toml(data: dict[str, Any]) -> str:
    """TOML for a nested dict of tables and scalars (every nested dict becomes a table of its own)."""
    lines: list[str] = []

    def table(path: list[str], body: dict[str, Any]) -> None:
        scalars = {k: v for k, v in body.items() if not isinstance(v, dict)}
        if scalars or not any(isinstance(v, dict) for v in body.values()):
            lines.append("[" + ".".join(_toml_value(part) if i else part for i, part in enumerate(path)) + "]")
            lines.extend(
                f"{_toml_value(k) if not k.isidentifier() else k} = {_toml_value(v)}" for k, v in scalars.items()
            )
            lines.append("")
        for k, v in body.items():
            if isinstance(v, dict):
                table([*path, k], v)

    for section, body in data.items():
        table([section], body)
    return "\n".join(lines)


def make_config(
    directory: Path, overrides: dict[str, Any] | None = None, sessions: dict[str, dict[str, Any]] | None = None
) -> tuple[Path, dict[str, int]]:
    """The demo config with its own data dir and free ports, without its trading schedule and price protection (so
    that flows do not depend on the time of day or halt); ``overrides`` maps 'section.key' to a value (tests that
    want a schedule or protection give their own) and ``sessions`` adds or replaces session tables."""
    ports = {name: free_port() for name in ("order_entry", "market_data", "metrics", "operator", "drop_copy")}
    data = tomllib.loads(DEMO_CONFIG.read_text())
    data.pop("schedule", None)
    data.pop("protection", None)
    values: dict[str, Any] = {
        "venue.data_dir": str(directory / "data"),
        "venue.log_format": "json",
        "fix.dictionary": str(ROOT / "fix_specs" / "FIX44-venue.xml"),
        "order_entry.port": ports["order_entry"],
        "market_data.port": ports["market_data"],
        "market_data.snapshot_interval": 0.0,
        "metrics.port": ports["metrics"],
        "operator.port": ports["operator"],
        "drop_copy.port": ports["drop_copy"],
        "risk.max_messages_per_second": 0,  # flows in tests go as fast as they can; the limit's own test sets it
        "store.enabled": False,  # the store tests turn it on
        # The demo's hashes (20,000 iterations) are re-hashed after their first logon, in the background: at the
        # lowest setting allowed, so that a hundred test gateways do not spend minutes of CPU on it.
        "logon.hash_iterations": 100_000,
        "store.http_port": free_port(),
    }
    values.update(overrides or {})
    for dotted, value in values.items():
        section, key = dotted.split(".", 1)
        data.setdefault(section, {})[key] = value
    data["sessions"].update(sessions or {})
    path = directory / "venue.toml"
    path.write_text(dump_toml(data))
    return path, ports


class GatewayProcess:
    """The gateway in a subprocess: start, wait until ready, stop gracefully or kill -9, restart on the same data."""

    def __init__(self, config: Path, ports: dict[str, int], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.config, self.ports, self.log_path = config, ports, log_path
        self.env = dict(env or {})  # extra environment of the next start (e.g. FIXGW_FAILPOINT)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def oe_port(self) -> int:
        return self.ports["order_entry"]

    @property
    def md_port(self) -> int:
        return self.ports["market_data"]

    @property
    def dc_port(self) -> int:
        return self.ports["drop_copy"]

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['metrics']}"

    def start(self, timeout: float = 30.0) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--config", str(self.config)],
            stdout=log, stderr=log, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode}:\n{self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.metrics_url + "/readyz", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"gateway not ready within {timeout}s:\n{self.log_path.read_text()[-3000:]}")

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.proc is not None
        return terminate(self.proc, timeout)

    def kill(self) -> None:
        """SIGKILL: the crash case."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def metrics(self) -> str:
        with urllib.request.urlopen(self.metrics_url + "/metrics", timeout=5) as r:
            return str(r.read().decode())

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def metric_value(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text output (0.0 if absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, rest = head.partition("{")
        if metric != name:
            continue
        got = ",".join(sorted(p for p in rest.rstrip("}").split(",") if p)) if rest else ""
        if got == want:
            return float(value)
    return 0.0


def start_on_free_ports(
    directory: Path,
    overrides: dict[str, Any] | None = None,
    sessions: dict[str, dict[str, Any]] | None = None,
    env: dict[str, str] | None = None,
    created: Callable[[GatewayProcess], None] | None = None,
) -> GatewayProcess:
    """A gateway on the demo config (:func:`make_config`) in ``directory``, started; ``created`` sees each process
    before it starts (to stop it later whatever happens).

    A "free" port is free when :func:`make_config` picks it, not necessarily when the gateway binds it: another
    process (a parallel test run) may have taken it meanwhile. Then the venue is not at fault: it is started again
    on new ports, up to three times."""
    directory.mkdir(parents=True, exist_ok=True)
    for attempt in range(3):
        config, ports = make_config(directory, overrides, sessions)
        gw = GatewayProcess(config, ports, directory / "gateway.log", env)
        if created is not None:
            created(gw)
        try:
            gw.start()
        except RuntimeError as exc:
            if "Address already in use" not in str(exc) or attempt == 2:
                raise
            continue
        return gw
    raise AssertionError("unreachable")


def terminate(proc: subprocess.Popen[bytes], timeout: float) -> int:
    """SIGTERM a venue process and wait for it (SIGKILL, and TimeoutExpired, if it does not end in time)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    return int(proc.returncode)
