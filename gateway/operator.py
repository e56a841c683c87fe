"""The operator channel: an authenticated HTTP endpoint through which ``fixgw admin`` acts on the running venue.

``POST /v1/<action>`` with a JSON object of parameters and ``Authorization: Bearer <token>``; the answer is a JSON
object with ``"ok"`` and either what was done or ``"error"`` saying exactly why not. The token is checked against its
SHA-256 in the venue config (``operator.token_sha256``; operator tokens are long random strings, not passwords, so a
fast hash compared in constant time is the right tool). The endpoint listens on loopback by default.

The HTTP thread never touches venue state: it parses the request, puts it on :attr:`OperatorServer.inbox` and waits
for the gateway loop — the single writer — to answer it (:class:`~gateway.operator_desk.OperatorDesk`). The thread
does a few hundred microseconds of Python per request, and operator requests are rare, so it does not compete with
the order path for the interpreter.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ANSWER_TIMEOUT = 10.0  # seconds the HTTP thread waits for the loop's answer
MAX_BODY = 64 * 1024


def token_hash(token: str) -> str:
    """The SHA-256 (hex) of an operator token, as ``operator.token_sha256`` stores it."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class OperatorRequest:
    """One operator request, answered by the gateway loop through :meth:`answer`."""

    action: str
    params: dict[str, Any]
    done: threading.Event = field(default_factory=threading.Event)
    reply: dict[str, Any] | None = None
    status: int = 200  # HTTP status of the answer: 503 when the venue cannot act now (a cluster without an engine)

    def answer(self, reply: dict[str, Any], status: int = 200) -> None:
        self.reply = reply
        self.status = status
        self.done.set()


class OperatorServer:
    """The HTTP endpoint; requests wait in :attr:`inbox` for the gateway loop."""

    def __init__(self, host: str, port: int, token_sha256: str, actions: frozenset[str]) -> None:
        self.inbox: queue.SimpleQueue[OperatorRequest] = queue.SimpleQueue()
        self.actions = actions
        self._expected = bytes.fromhex(token_sha256) if token_sha256 else b""
        server = self
        self._httpd = ThreadingHTTPServer((host, port), _handler(server))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="operator-http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def authorised(self, header: str | None) -> bool:
        if not self._expected or not header or not header.startswith("Bearer "):
            return False
        digest = hashlib.sha256(header[len("Bearer ") :].strip().encode()).digest()
        return hmac.compare_digest(digest, self._expected)


def _handler(server: OperatorServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if not server.authorised(self.headers.get("Authorization")):
                return self._send(401, {"ok": False, "error": "missing or invalid operator token"})
            path = self.path.rstrip("/")
            action = path[len("/v1/") :] if path.startswith("/v1/") else ""
            if action not in server.actions:
                return self._send(404, {"ok": False, "error": f"unknown action {action or path!r}"})
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                return self._send(413, {"ok": False, "error": "request too large"})
            try:
                params = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                return self._send(400, {"ok": False, "error": "the body is not JSON"})
            if not isinstance(params, dict):
                return self._send(400, {"ok": False, "error": "the body must be a JSON object"})
            request = OperatorRequest(action, params)
            server.inbox.put(request)
            if not request.done.wait(ANSWER_TIMEOUT):
                return self._send(503, {"ok": False, "error": "the venue did not answer in time"})
            assert request.reply is not None
            self._send(request.status, request.reply)

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:  # the gateway logs what was done, not each HTTP line
            pass

    return Handler


class OperatorError(Exception):
    """The operator channel could not be reached or refused the token."""


def call(url: str, token: str, action: str, params: dict[str, Any], timeout: float = 15.0) -> dict[str, Any]:
    """Send one request to the operator channel at ``url`` (e.g. ``http://127.0.0.1:9470``) and return its answer."""
    request = urllib.request.Request(
        f"{url.rstrip('/')}/v1/{action}",
        data=json.dumps(params).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer: dict[str, Any] = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            answer = json.loads(exc.read())
        except ValueError:
            raise OperatorError(f"HTTP {exc.code} from {url}") from None
        if exc.code in (401, 404, 400, 413, 503):
            raise OperatorError(str(answer.get("error", f"HTTP {exc.code}"))) from None
    except (urllib.error.URLError, OSError) as exc:
        raise OperatorError(f"cannot reach the operator channel at {url}: {exc}") from None
    return answer


if __name__ == "__main__":  # python -m gateway.operator TOKEN: the line to put in [operator]
    import sys

    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m gateway.operator TOKEN")
    print(f'token_sha256 = "{token_hash(sys.argv[1])}"')
