"""The orders one shard's engine knows, as an order-entry gateway mirrors them from the shard's result events.

The engine knows every working order and each owner's last ``finished_orders`` finished ones (filled, cancelled,
expired), and forgets every finished order at the end of the trading day (``MatchingEngine._execution``,
``_end_of_day``; rules of engagement, "Order identity"). A gateway needs the same knowledge for its own sessions
(a PossResend NewOrderSingle is answered with the order's status only if the venue knows its ClOrdID; a ClOrdID in
use on one shard is refused on another; a cancel names its order's shard by ClOrdID), and must not keep more: its
tables would otherwise grow with every order of the week. The result events say everything the rule needs, in the
engine's order, so applying the engine's rule to them forgets exactly the orders the engine forgets, at the same
event; a gateway restarted from the result stream rebuilds the same tables.
"""

from __future__ import annotations

from collections import deque

from engine import ExecType, Execution

_ORDER_STATUS = ExecType.ORDER_STATUS


class KnownOrders:
    """One shard's known orders of some owners: their ClOrdIDs (each of an order's cancel/replace chain)."""

    def __init__(self, window: int) -> None:
        self.window = window  # order_entry.finished_orders: the engine's window (roles.engine publishes it)
        self.ids: dict[str, dict[str, int]] = {}  # owner -> ClOrdID -> order id
        self.chains: dict[int, tuple[str, list[str]]] = {}  # order id -> (owner, the ClOrdIDs it has had)
        self.finished: dict[str, deque[int]] = {}  # owner -> its finished orders still known, oldest first

    def __len__(self) -> int:
        return len(self.chains)

    def order_of(self, owner: str, clordid: str) -> int | None:
        """The id of the known order ``owner`` names by ``clordid``, or None."""
        ids = self.ids.get(owner)
        return ids.get(clordid) if ids is not None else None

    def clordids(self) -> int:
        return sum(len(ids) for ids in self.ids.values())

    def execution(self, ev: Execution) -> None:
        """An ExecutionReport of the shard: an accepted order (or request) becomes known under its ClOrdID; the
        report that finishes an order puts it in its owner's window, forgetting the oldest one beyond it (the
        engine's condition, on the same report)."""
        order = ev.order
        order_id = order.order_id
        if not order_id:  # a rejected order: never known
            return
        chain = self.chains.get(order_id)
        if chain is None:
            chain = self.chains[order_id] = (order.owner, [])
        if ev.clordid not in chain[1]:  # a new order, or an accepted replace or cancel: its ClOrdID names it now
            chain[1].append(ev.clordid)
            ids = self.ids.get(order.owner)
            if ids is None:
                ids = self.ids[order.owner] = {}
            ids[ev.clordid] = order_id
        if not ev.leaves and ev.exec_type is not _ORDER_STATUS:
            window = self.finished.get(order.owner)
            if window is None:
                window = self.finished[order.owner] = deque()
            window.append(order_id)
            if len(window) > self.window:
                self._forget(window.popleft())

    def end_of_day(self) -> None:
        """The shard's engine began a new trading day (TradingDayChange with a previous date): it forgot every
        finished order."""
        for window in self.finished.values():
            for order_id in window:
                self._forget(order_id)
        self.finished.clear()

    def _forget(self, order_id: int) -> None:
        owner, chain = self.chains.pop(order_id)
        ids = self.ids[owner]
        for clordid in chain:
            if ids.get(clordid) == order_id:
                del ids[clordid]
        if not ids:
            del self.ids[owner]
