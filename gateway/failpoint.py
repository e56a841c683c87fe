"""Fault injection for tests: ``FIXGW_FAILPOINT=exit_after_commit:N``, ``md_publisher_stall:S`` or ``loop_stall:S``.

The one failure that loses ExecutionReports without losing commands: the process dies after a loop turn's journal
commit and before the replies of that turn are handed to QuickFIX (so they never reach the sessions' FIX stores).
Recovery must send those reports again (:attr:`gateway.journal.Recovery.unsent`); the failpoint makes that crash
happen on demand, right after the commit of the turn in which the N-th command since start-up was journaled.

Read once at start-up: when the variable is unset nothing is installed and the order path is unchanged; when set,
the journal's ``commit`` is wrapped (one comparison per loop turn).

``md_publisher_stall:S`` makes the market-data publisher thread sleep S seconds once, before it hands over its first
incremental refresh: the venue falls behind its own subscribers, which must not be blamed for it
(:func:`publisher_stall`).

``loop_stall:S`` makes the gateway's loop sleep S seconds once, in a timer a second after it went live: a loop turn
that long, which the venue must report (``loop_stalled`` in its log, ``fixgw_loop_stall_seconds``).

``transfer_stall`` (an engine of the multi-process venue) makes the active engine hang, for good, when it is about to
publish the credit of a transfer between shards: the debit is applied and the credit not sent, the state a kill -9
of the source's engine in the middle of a transfer leaves (:mod:`roles.engine`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from gateway.journal import Journal

VARIABLE = "FIXGW_FAILPOINT"
EXIT_STATUS = 86  # what the process exits with when the failpoint fires (distinct from crashes and clean stops)
PUBLISHER_STALL = "md_publisher_stall"
LOOP_STALL = "loop_stall"
TRANSFER_STALL = "transfer_stall"


def _stall(which: str) -> float:
    """Seconds of the stall ``which:S`` if that is the failpoint set, else 0."""
    name, _, value = os.environ.get(VARIABLE, "").partition(":")
    if name != which:
        return 0.0
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if seconds <= 0:
        raise ValueError(f"{VARIABLE}={name}:{value!r}: expected {which}:SECONDS with SECONDS > 0")
    return seconds


def publisher_stall() -> float:
    """Seconds the market-data publisher is to stall once (``md_publisher_stall:S``), else 0."""
    return _stall(PUBLISHER_STALL)


def loop_stall() -> float:
    """Seconds the gateway's loop is to stall once (``loop_stall:S``), else 0."""
    return _stall(LOOP_STALL)


def arm(journal: Journal | None, commands: Callable[[], int]) -> str | None:
    """Install the failpoint named by ``$FIXGW_FAILPOINT`` on ``journal``; ``commands()`` counts the commands
    processed so far. Returns the failpoint's description, or None if the variable is unset. Raises ValueError for
    a value it does not understand or a gateway without a journal."""
    spec = os.environ.get(VARIABLE)
    if not spec:
        return None
    name, _, count = spec.partition(":")
    if name in (PUBLISHER_STALL, LOOP_STALL):
        _stall(name)  # validates; the publisher or the loop installs it
        return spec
    if name != "exit_after_commit" or not count.isdigit() or int(count) < 1:
        raise ValueError(
            f"{VARIABLE}={spec!r}: expected exit_after_commit:N with N >= 1, {PUBLISHER_STALL}:SECONDS or "
            f"{LOOP_STALL}:SECONDS"
        )
    if journal is None:
        raise ValueError(f"{VARIABLE} needs a journal (journal.durability is off)")
    limit = commands() + int(count)
    commit = journal.commit

    def commit_then_exit() -> bool:
        synced = commit()
        if commands() >= limit:  # durable now, and no reply of this turn has been handed over: die here
            sys.stderr.write(f"{VARIABLE}: exit_after_commit:{count} fired\n")
            sys.stderr.flush()
            os._exit(EXIT_STATUS)
        return synced

    journal.commit = commit_then_exit  # type: ignore[method-assign]
    return spec
