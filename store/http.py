"""The store process's read-only HTTP endpoint (loopback by default, ``store.http_host``/``store.http_port``).

``GET /stats``            24-hour statistics of every symbol, a JSON list (``?symbol=AAPL``: that one only)
``GET /status``           the follower: journal position, records, rows written, caught up, lag percentiles of the
                          last minute (``?window=SECONDS`` for another span)
``GET /healthz``          200 while the process is up

One thread, one request at a time, with its own database connection (opened on first use, reopened after an
error); it runs in the store process, never in the gateway's.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import orjson

from gateway.config import VenueConfig
from store.db import Backend, open_backend
from store.queries import venue_tz
from store.stats import stats

if TYPE_CHECKING:
    from store.service import StoreService


class StoreHttpServer:
    def __init__(self, cfg: VenueConfig, service: StoreService) -> None:
        self.cfg = cfg
        self.service = service
        self.tz = venue_tz(cfg.timezone)
        self._db: Backend | None = None
        self.server: HTTPServer | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="store-http", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _serve(self) -> None:
        """Bind (retrying every second while the port is taken, e.g. by the store of a gateway that just crashed,
        still finishing), then serve until stopped."""
        address = (self.cfg.store.http_host, self.cfg.store.http_port)
        complained = False
        while not self._stopped.is_set():
            try:
                self.server = HTTPServer(address, self._handler())
                break
            except OSError as exc:
                if not complained:
                    self.service.log.warning("store_http_waiting", port=address[1], error=str(exc))
                    complained = True
                self._stopped.wait(1.0)
        server = self.server
        if server is None:
            return
        server.timeout = 0.2  # handle_request() returns after this long without a request: the stop flag is seen
        while not self._stopped.is_set():
            server.handle_request()
        server.server_close()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)
        if self._db is not None:
            self._db.close()

    def answer(self, path: str) -> tuple[int, Any]:
        url = urlsplit(path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path == "/healthz":
            return 200, {"ok": True}
        if url.path == "/status":
            try:
                window = float(query.get("window", "60"))
            except ValueError:
                return 400, {"error": "window must be a number of seconds"}
            return 200, self.service.status(window)
        if url.path == "/stats":
            try:
                if self._db is None:
                    self._db = open_backend(self.cfg)
                rows = stats(self._db, self.tz, query.get("symbol"))
            except Exception as exc:  # the database is not there yet, or went away: say so, reconnect next time
                if self._db is not None:
                    self._db.close()
                    self._db = None
                return 503, {"error": f"store database unavailable: {exc}"}
            if "symbol" in query and not rows:
                return 404, {"error": f"unknown symbol {query['symbol']!r}"}
            return 200, rows
        return 404, {"error": "not found: /stats, /status, /healthz"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                code, body = outer.answer(self.path)
                data = orjson.dumps(body)
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # no access log on stderr

        return Handler
