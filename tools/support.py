"""Small pieces shared by the ``fixgw`` tools: the usage error, demo passwords, and a once-a-second progress line."""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path
from typing import TextIO

_NUMBERED = re.compile(r"^(CLIENT|MD|DROP)(\d+)$")
_DEMO_PREFIX = {"CLIENT": "pass", "MD": "mdpass", "DROP": "droppass"}


class CLIError(Exception):
    """A problem the user can fix (bad argument, missing file): ``fixgw`` prints it as one line and exits 2."""


def default_password(comp_id: str, passwords: dict[str, str] | None = None) -> str:
    """The password for ``comp_id``: from ``passwords`` (a password file), else ``$FIXGW_PASSWORD``, else the demo
    password of the shipped config (``pass<N>`` for CLIENT<N>, ``mdpass<N>`` for MD<N>, ``droppass<N>`` for
    DROP<N>)."""
    if passwords and comp_id in passwords:
        return passwords[comp_id]
    env = os.environ.get("FIXGW_PASSWORD")
    if env:
        return env
    m = _NUMBERED.match(comp_id)
    if m is None:
        raise CLIError(f"no password for {comp_id}: pass --password or set FIXGW_PASSWORD")
    return _DEMO_PREFIX[m.group(1)] + m.group(2)


def read_password_file(path: Path) -> dict[str, str]:
    """CompID -> password from lines ``COMPID=PASSWORD`` (blank lines and ``#`` comments ignored)."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            comp_id, sep, password = line.partition("=")
            if not sep:
                raise CLIError(f"{path}: expected COMPID=PASSWORD, got {line!r}")
            out[comp_id.strip()] = password.strip()
    return out


class Progress:
    """At most one status line per ``interval`` seconds on stderr: rewritten in place on a terminal, one line per
    update otherwise (so logs of long runs show how they went). Nothing is printed for runs shorter than
    ``interval`` unless the caller asks for it."""

    def __init__(self, interval: float = 1.0, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self.tty = self.stream.isatty()
        self.started = time.monotonic()
        self._next = self.started + interval
        self._shown = False

    def due(self) -> bool:
        return time.monotonic() >= self._next

    def show(self, text: str) -> None:
        self._next = time.monotonic() + self.interval
        self._shown = True
        if self.tty:
            self.stream.write("\r\x1b[K" + text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def done(self) -> None:
        """End the in-place line (on a terminal) before other output follows."""
        if self.tty and self._shown:
            self.stream.write("\n")
            self.stream.flush()
