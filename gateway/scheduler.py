"""Work the gateway loop runs between polls, on its one thread: timers and deferred actions.

``every(interval, action)`` runs ``action(now)`` every ``interval`` seconds (the loop looks at the timers every
``TIMER_CHECK_INTERVAL``, so that is the precision). ``defer(action)`` runs ``action()`` at the next turn of the
loop: for work that must not run inside a QuickFIX callback (a session that is mid-disconnect) or that must come
after the callback that asked for it. Nothing here takes a lock: everything runs on the loop's thread.

An action that raises is logged and dropped; it never stops the loop nor the actions after it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

TIMER_CHECK_INTERVAL = 0.05  # seconds between two looks at the timers


class Scheduler:
    """Timers and deferred actions of the loop; :meth:`run_deferred` and :meth:`run_timers` are called by the loop."""

    def __init__(self, log: Any) -> None:
        self.log = log
        self.deferred: list[Callable[[], None]] = []
        """Actions for the next turn, in order. The loop tests this list itself: cheaper than a call every turn."""
        self._timers: list[tuple[float, float, Callable[[float], None]]] = []  # (due, interval, action)

    def every(self, interval: float, action: Callable[[float], None]) -> None:
        """Run ``action(now)`` every ``interval`` seconds, the first time ``interval`` seconds from now."""
        self._timers.append((time.monotonic() + interval, interval, action))

    def defer(self, action: Callable[[], None]) -> None:
        """Run ``action()`` at the next turn of the loop, after the actions deferred before it."""
        self.deferred.append(action)

    def run_deferred(self) -> None:
        """Run the actions deferred so far (one deferred meanwhile waits for the next call)."""
        work, self.deferred = self.deferred, []
        for action in work:
            try:
                action()
            except Exception as exc:
                self.log.error("deferred_failed", error=repr(exc), exc_info=exc)

    def run_timers(self, now: float) -> None:
        """Run every timer that is due at ``now`` (``time.monotonic()``), and schedule its next run."""
        for i, (due, interval, action) in enumerate(self._timers):
            if now >= due:
                self._timers[i] = (now + interval, interval, action)
                try:
                    action(now)
                except Exception as exc:
                    self.log.error("timer_failed", error=repr(exc), exc_info=exc)
