"""A real Prometheus server for the tests: Debian's ``prometheus`` package, started in a temporary directory on a free
loopback port with the config the test writes, removed afterwards. No skip when it is missing: ``.ci/run`` installs
the package (its ``promtool`` checks the rule files)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from tests.gateway_process import free_port


def prometheus_tool(name: str) -> str:
    """The path of ``prometheus`` or ``promtool``; fails with the way to install it."""
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is not installed: apt-get install prometheus (.ci/run does it)")
    return path


class PrometheusServer:
    def __init__(self, config_text: str, files: dict[str, str] | None = None) -> None:
        """``config_text`` becomes ``prometheus.yml`` in the server's directory, beside ``files`` (name -> text, e.g.
        the rule files it names)."""
        self.dir = Path(tempfile.mkdtemp(prefix="fixgw-prom-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (self.dir / "prometheus.yml").write_text(config_text)
        for name, text in (files or {}).items():
            (self.dir / name).write_text(text)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        log = (self.dir / "log").open("wb")
        self.proc = subprocess.Popen(
            [
                prometheus_tool("prometheus"), f"--config.file={self.dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.dir / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=log, stderr=log, cwd=self.dir,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"prometheus not ready within {timeout}s:\n{self.log()[-3000:]}")

    def api(self, path: str, **params: str) -> Any:
        """GET ``/api/v1/<path>`` and return its ``data``; raises with Prometheus' error text on failure."""
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                answer = json.loads(r.read())
        except urllib.error.HTTPError as exc:
            answer = json.loads(exc.read() or b"{}")
        if answer.get("status") != "success":
            raise AssertionError(f"{path} {params}: {answer.get('errorType')}: {answer.get('error')}")
        return answer["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query (at ``at``, a Unix time, or now); the result vector."""
        params = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
        data = self.api("query", **params)
        assert data["resultType"] == "vector", f"{expr}: {data['resultType']}"
        return list(data["result"])

    def log(self) -> str:
        path = self.dir / "log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(20)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
