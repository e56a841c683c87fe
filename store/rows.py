"""The engine's events as rows: one handler per event type, each adding to a :class:`~store.db.Batch`.

* every :class:`~engine.Execution` except an order-status answer (it changes nothing) -> one ``executions`` row, and
  the order's current state -> its ``orders`` row (upserted; rejected orders have no OrderID and no orders row);
* the two TRADE executions of one trade (the taker's, then the maker's; an auction's: the buy's, then the sell's) ->
  one ``trades`` row with both sides (``aggressor`` AUCTION for an auction's trade).

Cancel rejects and mass-cancel reports change no order and are not stored; the market-data events neither (the
trades table is the tape). Prices and quantities are written as the exact decimal text of the engine's integers.

Money (when the journal carries a ledger): each trade's fees go in its row (``buy_fee``, ``sell_fee`` in the quote
asset, ``fee_asset``). The ``balances`` and ``positions`` rows are not rebuilt from events: the follower's engine
keeps the very ledger the gateway keeps, so the builder notes which (account, asset) and (account, instrument) a
record touched (an accepted order's reports move its holds, a fill its balances, positions and the fee account, an
operator's deposit or withdrawal one balance) and :meth:`RowBuilder.finish` reads their figures from the ledger once
per batch, as they stand at the batch's journal position.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from engine import Command, Event, ExecType, Execution, Fund, Instrument, Ledger, OrdStatus, OrdType, Side, TimeInForce
from gateway.money import Assets
from store.db import Batch
from store.schema import BALANCES, EXECUTIONS, ORDERS, POSITIONS, TRADES

_SIDE = {s: s.name for s in Side}
_ORD_TYPE = {t: t.name for t in OrdType}
_TIF = {t: t.name for t in TimeInForce}
_STATUS = {s: s.name for s in OrdStatus}
_EXEC_TYPE = {t: t.name for t in ExecType}
_ORDER_STATUS = ExecType.ORDER_STATUS
_TRADE = ExecType.TRADE
_BUY = Side.BUY
AUCTION = "AUCTION"  # the aggressor of an auction's trade: nobody came in


class _Texts(dict[int, str]):
    """An instrument's decimal text of an integer (ticks or lots), memoised: a dict hit instead of formatting. Starts
    afresh past 4,096 values, so no flow can grow it without bound."""

    def __init__(self, format: Callable[[int], str]) -> None:
        super().__init__()
        self.format = format

    def __missing__(self, units: int) -> str:
        if len(self) >= 4096:
            self.clear()
        text = self[units] = self.format(units)
        return text


class RowBuilder:
    """Turns the events of journal records into rows; holds the half of a trade seen so far, and what the records
    of the current batch changed in the ledger."""

    def __init__(
        self,
        instruments: Iterable[Instrument],
        ledger: Callable[[], Ledger | None] = lambda: None,
        summed: Callable[[], list[Ledger | None]] | None = None,
    ) -> None:
        """``ledger``: the ledger of the engine whose events come in; ``summed``: every shard's ledger (that one's
        included), whose balances a ``balances`` row adds up (default: that one alone)."""
        self.instruments = {i.symbol: i for i in instruments}
        self.texts = {s: (_Texts(i.price_str), _Texts(i.qty_str)) for s, i in self.instruments.items()}
        self._takers: dict[int, tuple[Execution, int]] = {}  # trade id -> the taker's execution, its position
        self._ledger = ledger  # the follower's engine's ledger (the engine is replaced on a rebuild: ask each time)
        self._summed = summed
        self._setup: Any = None  # the ledger setup ``_assets`` and ``_fee_texts`` were made for
        self._assets = Assets({})
        self._fee_texts: dict[str, _Texts] = {}  # asset -> its amounts' text
        self._balances: dict[tuple[str, str], int] = {}  # (account, asset) -> ts of the last change, this batch
        self._positions: dict[tuple[str, str], int] = {}  # (account, symbol) -> ts of the last change, this batch
        self.handlers: dict[type, Callable[[Any, int, Batch], None]] = {Execution: self._execution}

    def add(self, events: list[Event], position: int, batch: Batch, command: Command | None = None) -> None:
        """Rows for the events of the journal record at ``position`` (``command``: the record's command)."""
        handlers = self.handlers
        for ev in events:
            handler = handlers.get(type(ev))
            if handler is not None:
                handler(ev, position, batch)
        if type(command) is Fund:  # a deposit or withdrawal (refused ones change nothing, and rewrite the same)
            self._balances[command.account, command.asset] = command.ts

    def finish(self, batch: Batch) -> None:
        """The ``balances`` and ``positions`` rows of what the batch's records changed, read from the ledger."""
        if not self._balances and not self._positions:
            return
        ledger = self._ledger()
        if ledger is None:  # a Fund on a venue without a ledger: refused, nothing to write
            self._balances.clear()
            self._positions.clear()
            return
        assets = self._money(ledger)
        balances = batch.upserts.setdefault(BALANCES, {})
        fees = ledger.fees
        summed = [lg for lg in self._summed() if lg is not None] if self._summed is not None else [ledger]
        for (name, asset), ts in self._balances.items():
            account = fees if name == fees.name else ledger.accounts.get(name)
            if account is None or asset not in assets.scales:  # refused: unknown account or asset
                continue
            available = held = 0
            for lg in summed:  # money is per shard: the venue's balance is the sum of the shards' (as committed)
                part = lg.fees if name == lg.fees.name else lg.accounts.get(name)
                if part is not None:
                    available += part.available.get(asset, 0)
                    held += part.held.get(asset, 0)
            balances[name, asset] = (name, asset, assets.text(asset, available), assets.text(asset, held), ts)
        positions = batch.upserts.setdefault(POSITIONS, {})
        for (name, symbol), ts in self._positions.items():
            pos = ledger.accounts[name].positions[symbol]
            quote = ledger.markets[symbol].quote
            money = assets.text
            positions[name, symbol] = (
                name, symbol, self.instruments[symbol].qty_str(pos.net), money(quote, pos.cost),
                money(quote, pos.realized), money(quote, pos.fees), quote, ts,
            )  # fmt: skip
        self._balances.clear()
        self._positions.clear()

    def _money(self, ledger: Ledger) -> Assets:
        """The asset table of the ledger's current rules (they change only with a Configure record)."""
        if ledger.setup is not self._setup:
            self._setup = ledger.setup
            self._assets = Assets(ledger.setup.assets)
            self._fee_texts = {a: _Texts(partial(self._assets.text, a)) for a in ledger.setup.assets}
        return self._assets

    def _execution(self, ev: Execution, position: int, batch: Batch) -> None:
        if ev.exec_type is _ORDER_STATUS:
            return
        order = ev.order
        if order.order_id:  # an accepted order's report moved its holds or funds
            ledger = self._ledger()
            if ledger is not None:
                self._touch(ledger, ev, order)
        texts = self.texts.get(order.symbol)
        price: str | None
        qty: str | None
        leaves: str | None
        cum: str | None
        avg_px: str | None
        trade = ev.exec_type is _TRADE
        last_qty = last_px = None
        if texts is not None:
            prices, lots = texts
            price = None if ev.price is None else prices[ev.price]
            qty, leaves, cum = lots[ev.qty], lots[ev.leaves], lots[ev.cum]
            notional, filled = ev.notional, ev.cum
            if not filled:
                avg_px = "0"
            elif notional % filled == 0:
                avg_px = prices[notional // filled]
            else:
                avg_px = self.instruments[order.symbol].avg_price_str(notional, filled)
            if trade:
                last_qty, last_px = lots[ev.last_qty], prices[ev.last_px]
        else:  # a reject for a symbol the venue does not list: no grid to express its figures on
            price = qty = leaves = cum = avg_px = None
        side = _SIDE[order.side]
        reason = ev.reason.code if ev.reason is not None else None
        order_id = order.order_id or None
        batch.inserts.setdefault(EXECUTIONS, []).append(
            (ev.seq, order_id, order.owner, order.account, order.symbol, side, ev.clordid, ev.orig_clordid,
             _EXEC_TYPE[ev.exec_type], _STATUS[ev.status], price, qty, leaves, cum, avg_px, last_qty, last_px,
             ev.trade_id if trade else None, ev.aggressor if trade else None, reason, ev.ts, position)
        )  # fmt: skip
        if order_id is not None:
            orders = batch.upserts.setdefault(ORDERS, {})
            earlier = orders.get(order_id)
            created = earlier[16] if earlier is not None else ev.ts  # kept from the first write by the upsert
            orders[order_id] = (
                order_id, order.owner, order.account, order.symbol, side, _ORD_TYPE[order.ord_type],
                _TIF[order.tif], order.post_only, ev.clordid, price, qty, leaves, cum, avg_px, _STATUS[ev.status],
                reason, created, ev.ts, ev.seq,
            )  # fmt: skip
        if trade:
            self._trade_half(ev, position, batch)

    def _touch(self, ledger: Ledger, ev: Execution, order: Any) -> None:
        market = ledger.markets.get(order.symbol)
        if market is None:
            return
        account, ts = order.account, ev.ts
        self._balances[account, market.quote] = ts
        self._balances[account, market.base] = ts
        if ev.exec_type is _TRADE:
            self._positions[account, order.symbol] = ts
            self._balances[ledger.fees.name, market.quote] = ts

    def _trade_half(self, ev: Execution, position: int, batch: Batch) -> None:
        if ev.aggressor or ev.trade_id not in self._takers:  # the taker's half comes first (an auction's: the buy's)
            self._takers[ev.trade_id] = (ev, position)
            return
        taker, _ = self._takers.pop(ev.trade_id)
        maker = ev
        buy, sell = (taker, maker) if taker.order.side is _BUY else (maker, taker)
        prices, lots = self.texts[maker.order.symbol]
        b, s = buy.order, sell.order
        buy_fee = sell_fee = fee_asset = None
        ledger = self._ledger()
        if ledger is not None:  # the fees each side paid (negative: a maker rebate), in the quote asset
            self._money(ledger)
            fee_asset = ledger.markets[b.symbol].quote
            texts = self._fee_texts[fee_asset]
            buy_fee, sell_fee = texts[buy.fee], texts[sell.fee]
        batch.inserts.setdefault(TRADES, []).append(
            (ev.trade_id, b.symbol, prices[ev.last_px], lots[ev.last_qty], ev.last_px, ev.last_qty,
             _SIDE[taker.order.side] if taker.aggressor else AUCTION,
             b.order_id, b.owner, b.account, buy.clordid, buy.seq,
             s.order_id, s.owner, s.account, sell.clordid, sell.seq,
             buy_fee, sell_fee, fee_asset, ev.ts, position)
        )  # fmt: skip
