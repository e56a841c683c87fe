"""Lightweight FIX clients on simplefix: the session layer shared by the CLI, simulator, tests and tools."""

from fixclient.session import LOGON_REFUSED, FixSession, SessionError, field, group_entries, utc_now
from fixclient.tls import client_context

__all__ = ["LOGON_REFUSED", "FixSession", "SessionError", "client_context", "field", "group_entries", "utc_now"]
