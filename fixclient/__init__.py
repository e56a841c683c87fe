"""Lightweight FIX clients on simplefix: the session layer shared by the CLI, simulator, tests and tools."""

from fixclient.session import FixSession, SessionError, field, group_entries, utc_now

__all__ = ["FixSession", "SessionError", "field", "group_entries", "utc_now"]
