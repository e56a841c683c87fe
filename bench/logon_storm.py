"""A storm of wrong logons: ``--rate`` Logons a second, each on a new connection, each with a new wrong password.

    python -m bench.logon_storm --port 9876 --rate 100 --seconds 10 [--source 127.0.0.2] [--tls-ca ca.pem]

Each attempt connects (from ``--source``, so that the venue's per-address throttling does not lock out the load
generator on 127.0.0.1), completes the TLS handshake with ``--tls-ca``, sends a Logon for one of ``--comp-ids``
(configured CompIDs and an unknown one, in turn) with a random password, and waits up to 2 s for the venue's Logout
or for the connection to close. Four threads share the rate, so a slow answer does not slow the storm. Output: one
JSON line with the attempts made and how the venue answered.
"""

from __future__ import annotations

import argparse
import json
import secrets
import socket
import ssl
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from bench.loadgen import Clock, field_value, frame

THREADS = 4


def attempt(args: argparse.Namespace, tls: ssl.SSLContext | None, comp_id: str, clock: Clock) -> str:
    """One wrong Logon; the venue's answer: its Logout Text, "closed", "timeout" or "error: ..."."""
    try:
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.settimeout(2.0)
        raw.bind((args.source, 0))
        raw.connect((args.host, args.port))
        sock = tls.wrap_socket(raw, server_hostname=args.host) if tls is not None else raw
    except OSError as exc:
        return f"error: {type(exc).__name__}"
    try:
        body = b"35=A\x0149=%s\x0156=%s\x0134=1\x0152=%s\x0198=0\x01108=30\x01141=Y\x01553=%s\x01554=%s\x01" % (
            comp_id.encode(), args.target.encode(), clock.now(), comp_id.encode(), secrets.token_hex(8).encode(),
        )  # fmt: skip
        sock.sendall(frame(body))
        data = b""
        while b"\x0110=" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                return "closed"
            data += chunk
        text = field_value(data, b"58")
        return text.decode(errors="replace") if text is not None else "no text"
    except TimeoutError:
        return "timeout"
    except OSError as exc:
        return f"error: {type(exc).__name__}"
    finally:
        sock.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--source", default="127.0.0.2", help="local address the storm connects from")
    p.add_argument("--rate", type=float, default=100.0, help="Logons per second")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--comp-ids", default="CLIENT5,CLIENT6,CLIENT7,CLIENT8,CLIENT9,NOBODY")
    p.add_argument("--target", default="EXCH")
    p.add_argument("--tls-ca", type=Path, help="connect over TLS, verifying the venue against this CA")
    args = p.parse_args(argv)
    tls = ssl.create_default_context(cafile=str(args.tls_ca)) if args.tls_ca else None
    comp_ids = args.comp_ids.split(",")
    answers: Counter[str] = Counter()
    lock = threading.Lock()
    start = time.monotonic()
    end = start + args.seconds
    interval = THREADS / args.rate

    def worker(k: int) -> None:
        clock = Clock()
        n = 0
        while True:
            due = start + (k / THREADS + n) * interval
            if due >= end:
                return
            time.sleep(max(0.0, due - time.monotonic()))
            answer = attempt(args, tls, comp_ids[(n * THREADS + k) % len(comp_ids)], clock)
            with lock:
                answers[answer] += 1
            n += 1

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    total = sum(answers.values())
    print(json.dumps({"attempts": total, "per_s": round(total / elapsed, 1), "answers": dict(answers)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
