"""Fault injection for the recovery tests: ``FIXGW_FAILPOINT=exit_after_commit:N``.

The one failure that loses ExecutionReports without losing commands: the process dies after a loop turn's journal
commit and before the replies of that turn are handed to QuickFIX (so they never reach the sessions' FIX stores).
Recovery must send those reports again (:attr:`gateway.journal.Recovery.unsent`); the failpoint makes that crash
happen on demand, right after the commit of the turn in which the N-th command since start-up was journaled.

Read once at start-up: when the variable is unset nothing is installed and the order path is unchanged; when set,
the journal's ``commit`` is wrapped (one comparison per loop turn).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from gateway.journal import Journal

VARIABLE = "FIXGW_FAILPOINT"
EXIT_STATUS = 86  # what the process exits with when the failpoint fires (distinct from crashes and clean stops)


def arm(journal: Journal | None, commands: Callable[[], int]) -> str | None:
    """Install the failpoint named by ``$FIXGW_FAILPOINT`` on ``journal``; ``commands()`` counts the commands
    processed so far. Returns the failpoint's description, or None if the variable is unset. Raises ValueError for
    a value it does not understand or a gateway without a journal."""
    spec = os.environ.get(VARIABLE)
    if not spec:
        return None
    name, _, count = spec.partition(":")
    if name != "exit_after_commit" or not count.isdigit() or int(count) < 1:
        raise ValueError(f"{VARIABLE}={spec!r}: expected exit_after_commit:N with N >= 1")
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
