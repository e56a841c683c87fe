"""The QuickFIX ``Application``: the thin seam between the FIX session layer and the venue.

Every callback body is wrapped so that a Python exception can never escape into the binding (an uncaught
exception there deadlocks the whole process). QuickFIX's own exceptions that carry FIX meaning are let through on
purpose: ``RejectLogon`` (Logout with Text), ``UnsupportedMessageType`` (BusinessMessageReject j), ``DoNotSend``.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Any

import quickfix as fix

from gateway.fixcodes import BusinessRejectReason

if TYPE_CHECKING:
    from gateway.server import Gateway

_PASS_THROUGH = (fix.RejectLogon, fix.UnsupportedMessageType, fix.DoNotSend, fix.FieldNotFound,
                 fix.IncorrectTagValue, fix.IncorrectDataFormat)  # fmt: skip


class BusinessReject(Enum):
    """The BusinessMessageRejects (j) the venue sends itself: BusinessRejectReason (380) and Text. QuickFIX sends two
    more: 380=3 ``Unsupported Message Type`` (UnsupportedMessageType raised) and 380=5 ``Conditionally Required
    Field Missing (<tag>)`` (FieldNotFound raised by the order path)."""

    MARKET_DATA_ON_ORDER_ENTRY = (
        BusinessRejectReason.UNSUPPORTED_MESSAGE_TYPE,
        "MarketDataRequest is not accepted on an order-entry session; use a market-data session",
    )
    ORDERS_ON_MARKET_DATA = (
        BusinessRejectReason.UNSUPPORTED_MESSAGE_TYPE,
        "order messages are not accepted on a market-data session; use an order-entry session",
    )
    INTERNAL_ERROR = (BusinessRejectReason.OTHER, "internal error processing the message")
    DROP_COPY_READ_ONLY = (
        BusinessRejectReason.NOT_AUTHORIZED,
        "a drop-copy session only receives: application messages are not accepted",
    )

    def __init__(self, code: BusinessRejectReason, text: str) -> None:
        self.code = code
        self.text = text


class FixApplication(fix.Application):  # type: ignore[misc]
    """Forwards QuickFIX callbacks to the :class:`~gateway.server.Gateway`, which runs them on its one thread."""

    def __init__(self, gateway: Gateway) -> None:
        super().__init__()
        self.gw = gateway
        self.callbacks = 0  # the main loop reads this to know whether a poll did any work

    def _guard(self, where: str, exc: BaseException) -> None:
        self.gw.log.error("callback_failed", callback=where, error=repr(exc), exc_info=exc)

    def onCreate(self, sessionID: Any) -> None:
        try:
            self.gw.on_create(sessionID)
        except Exception as exc:
            self._guard("onCreate", exc)

    def onLogon(self, sessionID: Any) -> None:
        self.callbacks += 1
        try:
            self.gw.on_logon(sessionID)
        except Exception as exc:
            self._guard("onLogon", exc)

    def onLogout(self, sessionID: Any) -> None:
        self.callbacks += 1
        try:
            self.gw.on_logout(sessionID)
        except Exception as exc:
            self._guard("onLogout", exc)

    def toAdmin(self, message: Any, sessionID: Any) -> None:
        try:
            self.gw.to_admin(message, sessionID)
        except Exception as exc:
            self._guard("toAdmin", exc)

    def fromAdmin(self, message: Any, sessionID: Any) -> None:
        self.callbacks += 1
        try:
            self.gw.from_admin(message, sessionID)
        except _PASS_THROUGH:
            raise
        except Exception as exc:
            self._guard("fromAdmin", exc)

    def toApp(self, message: Any, sessionID: Any) -> None:
        try:
            self.gw.to_app(message, sessionID)
        except fix.DoNotSend:
            raise
        except Exception as exc:
            self._guard("toApp", exc)

    def fromApp(self, message: Any, sessionID: Any) -> None:
        self.callbacks += 1
        try:
            self.gw.from_app(message, sessionID)
        except _PASS_THROUGH:
            raise
        except Exception as exc:
            self._guard("fromApp", exc)
            self.gw.business_reject(message, sessionID, BusinessReject.INTERNAL_ERROR)
