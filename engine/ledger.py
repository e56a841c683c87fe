"""The ledger: what every account owns, what its orders hold, what it paid, and where its positions stand.

Pure and deterministic like the rest of the engine, and integer throughout: every amount is a whole number of the
asset's smallest unit (``10**-scale``), every quantity a number of lots, every price a number of ticks. The
:class:`~engine.engine.MatchingEngine` calls the ledger around matching (the exchange-core shape): :meth:`admit`
before an order may rest or trade (pre-trade risk, then the hold), :meth:`fill` for each trade (settlement, fees,
positions), :meth:`close` when an order ends without filling (the hold goes back), :meth:`rehold` on a replace.

Holds (spot rules). A buy holds, in the quote asset, ``leaves x limit price`` plus the taker fee on that amount; a sell
holds ``leaves`` of the base asset. After every fill the hold of the order is exactly the hold its remaining quantity
needs, and the difference between what the filled part held and what it cost (a better price, a maker fee below the
taker fee) goes back to ``available`` at once. A market buy holds at its *protection price*: the worst price it can
reach in the book as it stands, counting only other accounts' orders (see :meth:`reach`). A market buy that waits
for an auction (entered outside continuous trading) holds at the protection price the engine gives it, like a limit
buy at that price (:attr:`Ledger.capped`). Auction fills settle like any other (:meth:`fill_auction`), both sides
at the maker rate.

Fees are ``notional x rate // 1,000,000`` (rates in parts per million of the notional, i.e. 1 bp = 100 ppm), rounded
toward zero: a positive fee is rounded down, a negative fee (a maker rebate) is rounded toward zero too. Rounding
down makes the hold of a buy always enough (the fee of a part never exceeds its share of the fee of the whole), and a
venue that keeps ``taker >= -maker`` never pays out more in rebates than it takes in fees on the same trade.

Conservation, per asset, at all times: the sum over accounts of available + held, plus the fee account, equals
deposits minus withdrawals plus the transfers this ledger received minus those it sent (:meth:`imbalance` returns
the difference, which is zero unless there is a bug).

Transfers between shards (the multi-process venue keeps one ledger per engine shard, README "Scale-out"). The source
ledger debits the account at once and keeps the transfer *pending* (:attr:`Ledger.outgoing`) until it is told the
credit was applied (:meth:`transfer_done`); the target ledger credits it (:meth:`transfer_in`) exactly once, however
often the credit is delivered. Each source numbers its transfers to each target 1, 2, 3 ...; the target remembers,
per source, the highest number below which it has applied every credit and the numbers it applied above it, so a
repeat is recognised forever in memory bounded by the transfers still in flight (nothing to forget, no time
window). Across shards (:func:`venue_imbalance`): balances + the pending transfers the target has not credited yet =
deposits - withdrawals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from engine.order import Order
from engine.types import OrdType, Reason, Side

PPM = 1_000_000
# The most units of one asset the venue holds in all (deposits minus withdrawals): the journal and snapshots write
# integers as 64-bit JSON numbers, so every balance, hold and total must stay below 2**63 (exchange-core: a long).
MAX_UNITS = 2**63 - 1
_BUY = Side.BUY
_MARKET = OrdType.MARKET


def fee_of(notional: int, rate_ppm: int) -> int:
    """The fee on ``notional`` at ``rate_ppm`` (negative: a rebate), rounded toward zero."""
    if rate_ppm >= 0:
        return notional * rate_ppm // PPM
    return -(notional * -rate_ppm // PPM)


@dataclass(frozen=True, slots=True)
class Market:
    """How one instrument moves money: its base and quote assets and their units per lot and per tick x lot."""

    symbol: str
    base: str
    quote: str
    base_per_lot: int  # base-asset units in one lot
    quote_per_tick_lot: int  # quote-asset units in one tick x one lot (the notional of 1 lot at 1 tick)
    maker_ppm: int = 0
    taker_ppm: int = 0


@dataclass(frozen=True, slots=True)
class Limits:
    """Pre-trade limits for one instrument; ``None`` means no limit. Quantities in lots, notional in quote units."""

    max_order_qty: int | None = None
    max_order_notional: int | None = None
    max_open_orders: int | None = None
    max_position: int | None = None

    def to_list(self) -> list[int | None]:
        return [self.max_order_qty, self.max_order_notional, self.max_open_orders, self.max_position]

    @classmethod
    def from_list(cls, values: list[int | None]) -> Limits:
        return cls(*values)


NO_LIMITS = Limits()
LIMIT_NAMES = ("max_order_qty", "max_order_notional", "max_open_orders", "max_position")


@dataclass(frozen=True)
class LedgerSetup:
    """The venue's money rules: assets and their scales, each instrument's market, default limits, the accounts,
    the fee account and whether funds are checked. Journaled (as :class:`~engine.commands.Configure`) whenever it
    changes, so a replay never depends on the config file of the day."""

    assets: Mapping[str, int]  # asset code -> scale (decimal places of its smallest unit)
    markets: Mapping[str, Market]
    accounts: tuple[str, ...]
    default_limits: Mapping[str, Limits] = field(default_factory=dict)
    fee_account: str = "FEES"
    funds_checks: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "assets": dict(self.assets),
            "markets": {
                s: [m.base, m.quote, m.base_per_lot, m.quote_per_tick_lot, m.maker_ppm, m.taker_ppm]
                for s, m in self.markets.items()
            },
            "accounts": list(self.accounts),
            "default_limits": {s: lim.to_list() for s, lim in self.default_limits.items()},
            "fee_account": self.fee_account,
            "funds_checks": self.funds_checks,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LedgerSetup:
        return cls(
            assets=dict(d["assets"]),
            markets={s: Market(s, *v) for s, v in d["markets"].items()},
            accounts=tuple(d["accounts"]),
            default_limits={s: Limits.from_list(v) for s, v in d["default_limits"].items()},
            fee_account=d["fee_account"],
            funds_checks=d["funds_checks"],
        )


@dataclass(frozen=True, slots=True)
class Transfer:
    """A transfer its source ledger has debited and not yet seen confirmed: number ``seq`` from this shard to
    ``to_shard``."""

    transfer_id: str
    account: str
    asset: str
    amount: int
    to_shard: str
    seq: int

    def to_list(self) -> list[Any]:
        return [self.transfer_id, self.account, self.asset, self.amount, self.to_shard, self.seq]


class Balance:
    """One account's amount of one asset: ``available`` to trade or withdraw, ``held`` by its working orders."""

    __slots__ = ("available", "held")

    def __init__(self, available: int = 0, held: int = 0) -> None:
        self.available = available
        self.held = held


class Position:
    """One account's position in one instrument, and its working orders there.

    ``net`` is the signed position in lots (bought minus sold); ``cost`` the cost basis of the open position in quote
    units (average-cost method: opening fills add their notional, closing fills remove the proportional part, rounded
    down); ``realized`` the realized PnL in quote units, fees included; ``fees`` the fees paid (rebates negative).
    ``open_orders`` counts working orders; ``open_buy``/``open_sell`` are their remaining lots per side.

    A position also holds what the order path needs about its account and instrument — the market, the limits in
    force, the account's base and quote :class:`Balance` — so that each order (``Order.pos``) reaches all of it
    without a dictionary lookup.
    """

    __slots__ = (
        "account", "base", "cost", "fees", "limits", "market", "net", "open_buy", "open_orders", "open_sell", "quote",
        "realized",
    )  # fmt: skip

    def __init__(self, account: Account, market: Market, limits: Limits, base: Balance, quote: Balance) -> None:
        self.account = account
        self.market = market
        self.limits = limits
        self.base = base
        self.quote = quote
        self.net = 0
        self.cost = 0
        self.realized = 0
        self.fees = 0
        self.open_orders = 0
        self.open_buy = 0
        self.open_sell = 0

    def to_list(self) -> list[int]:
        return [self.net, self.cost, self.realized, self.fees, self.open_orders, self.open_buy, self.open_sell]

    def load(self, values: list[int]) -> None:
        self.net, self.cost, self.realized, self.fees, self.open_orders, self.open_buy, self.open_sell = values

    def trade(self, lots: int, notional: int, fee: int) -> None:
        """Apply a fill of ``lots`` (positive bought, negative sold) worth ``notional`` quote units, paying ``fee``."""
        self.realized -= fee
        self.fees += fee
        net = self.net
        if net == 0 or (net > 0) == (lots > 0):  # opening or adding to the position
            self.net = net + lots
            self.cost += notional
            return
        size = lots if lots > 0 else -lots
        held = net if net > 0 else -net
        closing = size if size < held else held
        basis = self.cost * closing // held
        proceeds = notional * closing // size
        self.realized += proceeds - basis if net > 0 else basis - proceeds
        self.cost -= basis
        rest = size - closing
        self.net = net + (closing if lots > 0 else -closing)
        if rest:  # the fill went through zero: the rest opens a position the other way
            self.net += rest if lots > 0 else -rest
            self.cost = notional - proceeds


class Account:
    """One trading account: a :class:`Balance` per asset, positions, limit overrides, kill state."""

    __slots__ = ("balances", "killed", "limits", "name", "positions")

    def __init__(self, name: str) -> None:
        self.name = name
        self.balances: dict[str, Balance] = {}
        self.killed = False
        self.limits: dict[str, Limits] = {}  # per-instrument overrides of the venue defaults
        self.positions: dict[str, Position] = {}

    def balance(self, asset: str) -> Balance:
        bal = self.balances.get(asset)
        if bal is None:
            bal = self.balances[asset] = Balance()
        return bal

    @property
    def available(self) -> dict[str, int]:
        """Asset -> available units (a copy: for reading)."""
        return {asset: b.available for asset, b in self.balances.items()}

    @property
    def held(self) -> dict[str, int]:
        """Asset -> held units (a copy: for reading)."""
        return {asset: b.held for asset, b in self.balances.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "balances": {asset: [b.available, b.held] for asset, b in self.balances.items()},
            "killed": self.killed,
            "limits": {s: lim.to_list() for s, lim in self.limits.items()},
            "positions": {s: p.to_list() for s, p in self.positions.items()},
        }


class Ledger:
    """Balances, holds, fees, positions and risk limits of every account. See the module docstring."""

    def __init__(self, setup: LedgerSetup) -> None:
        self.setup = setup
        self.accounts: dict[str, Account] = {}
        self.fees = Account(setup.fee_account)
        self.funding_ids: set[str] = set()
        self.net_funding: dict[str, int] = {}  # asset -> deposits minus withdrawals
        self.moved: dict[str, int] = {}  # asset -> transfers received minus transfers sent
        self.outgoing: dict[str, Transfer] = {}  # transfer id -> debited here, credit not confirmed yet
        self.sent: dict[str, int] = {}  # target shard -> number of the last transfer to it
        self.received: dict[str, int] = {}  # source shard -> every transfer numbered up to this one is credited
        self.received_above: dict[str, set[int]] = {}  # source shard -> numbers credited above ``received``
        self.killed_owners: set[str] = set()
        self._inflight_hold = 0  # what the market buy being matched still holds (it never rests)
        self.capped: dict[Order, int] = {}  # market buys waiting for an auction -> the price they hold at
        self._fee_balances: dict[str, Balance] = {}  # asset -> the fee account's balance (one lookup per trade)
        self.defaults: dict[str, Limits] = {}
        self.configure(setup)

    # ------------------------------------------------------------------ setup

    def configure(self, setup: LedgerSetup) -> None:
        """Adopt new rules: new accounts are opened; existing balances, holds and positions stay. A venue-default
        limit the new rules do not change keeps whatever an operator set since (``fixgw admin limits --default``)."""
        before, old_defaults = self.setup, self.defaults
        self.setup = setup
        self.markets = dict(setup.markets)
        self.defaults = {}
        for symbol in setup.markets:
            configured = setup.default_limits.get(symbol, NO_LIMITS)
            unchanged = before.default_limits.get(symbol, NO_LIMITS) == configured
            self.defaults[symbol] = old_defaults.get(symbol, configured) if unchanged else configured
        self.funds_checks = setup.funds_checks
        self.fees.name = setup.fee_account
        for name in setup.accounts:
            if name not in self.accounts:
                self.accounts[name] = Account(name)
        self._refresh_positions()

    def limits(self, account: Account, symbol: str) -> Limits:
        """The limits in force for ``account`` in ``symbol``: its overrides, else the venue defaults."""
        return account.limits.get(symbol) or self.defaults.get(symbol, NO_LIMITS)

    def position(self, account: Account, symbol: str) -> Position:
        """``account``'s position in ``symbol``, opened (flat) on first use."""
        pos = account.positions.get(symbol)
        if pos is None:
            market = self.markets[symbol]
            pos = account.positions[symbol] = Position(
                account, market, self.limits(account, symbol), account.balance(market.base),
                account.balance(market.quote),
            )  # fmt: skip
        return pos

    def _unopened(self, account: Account, symbol: str) -> Position:
        """What the checks of an account's first order in ``symbol`` read: a flat position with the account's
        balances, or zero ones where it holds nothing (not stored: a refused order leaves nothing behind)."""
        market = self.markets[symbol]
        base, quote = account.balances.get(market.base), account.balances.get(market.quote)
        return Position(account, market, self.limits(account, symbol), base or Balance(), quote or Balance())

    def _refresh_positions(self) -> None:
        """Every position sees the current markets and limits (after a change of rules or of limits)."""
        for account in self.accounts.values():
            for symbol, pos in account.positions.items():
                pos.market = self.markets[symbol]
                pos.limits = self.limits(account, symbol)
                pos.base, pos.quote = account.balance(pos.market.base), account.balance(pos.market.quote)

    # ------------------------------------------------------------------ holds

    @staticmethod
    def hold_for(market: Market, side: Side, lots: int, price: int) -> int:
        """What an order of ``lots`` on ``side`` at ``price`` must hold: quote units for a buy (notional plus taker
        fee), base units for a sell."""
        if side is _BUY:
            notional = lots * price * market.quote_per_tick_lot
            rate = market.taker_ppm
            return notional + notional * rate // PPM if rate > 0 else notional
        return lots * market.base_per_lot

    @staticmethod
    def reach(order: Order, levels: Iterable[Any]) -> tuple[int | None, int | None]:
        """The best and the worst price a market order can trade at in the book as it stands: walking the opposite
        side best first, the first level with another account's order, and the level where other accounts' orders
        add up to the order's quantity (the last such level if they never do); (None, None) if the side holds no
        other account's order. Own orders are skipped: self-trade prevention never lets the order trade with them,
        so they cannot move its fills beyond the worst price, its *protection price*."""
        need = order.leaves
        best = worst = None
        for level in levels:
            maker = level.head
            while maker is not None:
                if maker.account != order.account:
                    if best is None:
                        best = level.price
                    worst = level.price
                    need -= maker.leaves
                    if need <= 0:
                        return best, worst
                maker = maker.next
        return best, worst

    # ------------------------------------------------------------------ the engine's hooks

    def admit(self, order: Order, opposite: Any, cap: int | None = None) -> Reason | None:
        """Pre-trade risk for a new order, then its hold (``opposite``: the book side it would trade with; ``cap``:
        the protection price of a market order that waits for an auction). Checks, in order: account known and
        enabled (and its session not killed); max order quantity; max order notional; max open orders; max position
        after the order would fill; funds. Returns the first refusal, or None once the hold is taken and
        ``order.pos`` set."""
        account = self.accounts.get(order.account)
        if account is None:
            return Reason.UNKNOWN_ACCOUNT
        if account.killed or (self.killed_owners and order.owner in self.killed_owners):
            return Reason.ACCOUNT_KILLED
        pos = account.positions.get(order.symbol) or self._unopened(account, order.symbol)
        market = pos.market
        lots = order.leaves
        buy = order.side is _BUY
        price = hold_price = order.price
        if order.ord_type is _MARKET:  # valued at the dearest price it can reach; a buy is held at its worst
            if cap is not None:  # waits for an auction: as a limit order at its protection price
                price = hold_price = cap
            else:
                best, hold_price = self.reach(order, opposite.values())
                price = hold_price if buy else best
        limits = pos.limits
        if limits is not NO_LIMITS:
            if limits.max_order_qty is not None and lots > limits.max_order_qty:
                return Reason.RISK_ORDER_QTY
            if (
                limits.max_order_notional is not None
                and price is not None
                and lots * price * market.quote_per_tick_lot > limits.max_order_notional
            ):
                return Reason.RISK_ORDER_NOTIONAL
            if limits.max_open_orders is not None and pos.open_orders >= limits.max_open_orders:
                return Reason.RISK_OPEN_ORDERS
            if limits.max_position is not None:
                if buy and pos.net + pos.open_buy + lots > limits.max_position:
                    return Reason.RISK_POSITION
                if not buy and pos.net - pos.open_sell - lots < -limits.max_position:
                    return Reason.RISK_POSITION
        if self.funds_checks:
            if not buy:
                balance, hold = pos.base, lots * market.base_per_lot
            elif hold_price is None:  # a market buy facing no other account's order will trade nothing
                balance, hold = pos.quote, 0
            else:
                notional = lots * hold_price * market.quote_per_tick_lot
                rate = market.taker_ppm
                balance, hold = pos.quote, notional + notional * rate // PPM if rate > 0 else notional
            if hold > balance.available:
                return Reason.INSUFFICIENT_FUNDS
        if account.positions.get(order.symbol) is not pos:  # accepted: the first order here opens the position
            pos = self.position(account, order.symbol)
        if self.funds_checks:
            balance = pos.quote if buy else pos.base
            balance.available -= hold
            balance.held += hold
            if buy and order.ord_type is _MARKET and cap is None:
                self._inflight_hold = hold
        if cap is not None and buy:
            self.capped[order] = cap
        order.pos = pos
        pos.open_orders += 1
        if buy:
            pos.open_buy += lots
        else:
            pos.open_sell += lots
        return None

    def fill(self, taker: Order, maker: Order, lots: int, price: int) -> tuple[int, int]:
        """Settle a trade of ``lots`` at ``price`` between ``taker`` and ``maker`` (called before either order's
        ``leaves`` is reduced). Returns the fees (taker's, maker's) in quote units."""
        market: Market = taker.pos.market
        notional = lots * price * market.quote_per_tick_lot
        rate = market.taker_ppm
        taker_fee = notional * rate // PPM if rate >= 0 else -(notional * -rate // PPM)
        rate = market.maker_ppm
        maker_fee = notional * rate // PPM if rate >= 0 else -(notional * -rate // PPM)
        self._settle(taker, market, lots, notional, taker_fee)
        self._settle(maker, market, lots, notional, maker_fee)
        fees = self._fee_balances.get(market.quote) or self._fee_balance(market.quote)
        fees.available += taker_fee + maker_fee
        return taker_fee, maker_fee

    def fill_auction(self, buy: Order, sell: Order, lots: int, price: int) -> tuple[int, int]:
        """Settle an auction trade: nobody took liquidity, so both sides pay the maker rate. Returns the fees (the
        buy's, the sell's)."""
        market: Market = buy.pos.market
        notional = lots * price * market.quote_per_tick_lot
        fee = fee_of(notional, market.maker_ppm)
        self._settle(buy, market, lots, notional, fee)
        self._settle(sell, market, lots, notional, fee)
        fees = self._fee_balances.get(market.quote) or self._fee_balance(market.quote)
        fees.available += 2 * fee
        return fee, fee

    def _fee_balance(self, asset: str) -> Balance:
        balance = self._fee_balances[asset] = self.fees.balance(asset)
        return balance

    def _settle(self, order: Order, market: Market, lots: int, notional: int, fee: int) -> None:
        pos: Position = order.pos
        left = order.leaves - lots
        if order.side is _BUY:
            cost = notional + fee
            quote = pos.quote
            if self.funds_checks:
                if order.ord_type is _MARKET:
                    cap = self.capped.get(order) if self.capped else None
                    if cap is None:
                        release = self._inflight_hold if not left else cost
                        self._inflight_hold -= release
                    else:  # waited for an auction: held like a limit buy at its protection price
                        release = self._release(market, cap, order.leaves, left)
                        if not left:
                            del self.capped[order]
                else:  # the hold of the filled part: what the order held minus what its rest needs
                    k = order.price * market.quote_per_tick_lot  # type: ignore[operator]
                    rate = market.taker_ppm
                    before, after = order.leaves * k, left * k
                    release = before - after + (before * rate // PPM - after * rate // PPM if rate > 0 else 0)
                quote.held -= release
                quote.available += release - cost
            else:
                quote.available -= cost
            pos.base.available += lots * market.base_per_lot
            pos.open_buy -= lots
            pos.trade(lots, notional, fee)
        else:
            if self.funds_checks:
                pos.base.held -= lots * market.base_per_lot
            else:
                pos.base.available -= lots * market.base_per_lot
            pos.quote.available += notional - fee
            pos.open_sell -= lots
            pos.trade(-lots, notional, fee)
        if not left:
            pos.open_orders -= 1

    @staticmethod
    def _release(market: Market, price: int, leaves: int, left: int) -> int:
        """What a buy held at ``price`` releases when ``leaves`` lots become ``left``."""
        k = price * market.quote_per_tick_lot
        rate = market.taker_ppm
        before, after = leaves * k, left * k
        return before - after + (before * rate // PPM - after * rate // PPM if rate > 0 else 0)

    def close(self, order: Order) -> None:
        """``order`` ends with ``leaves`` unfilled (cancel, expiry, self-trade prevention, kill): release its hold.
        Called before ``leaves`` is set to zero."""
        pos: Position = order.pos
        lots = order.leaves
        pos.open_orders -= 1
        buy = order.side is _BUY
        if buy:
            pos.open_buy -= lots
        else:
            pos.open_sell -= lots
        if not self.funds_checks:
            return
        if not buy:
            balance, hold = pos.base, lots * pos.market.base_per_lot
        elif order.ord_type is _MARKET:
            cap = self.capped.pop(order, None) if self.capped else None
            if cap is None:
                balance, hold = pos.quote, self._inflight_hold
                self._inflight_hold = 0
            else:
                balance, hold = pos.quote, self.hold_for(pos.market, _BUY, lots, cap)
        else:
            balance, hold = pos.quote, self.hold_for(pos.market, _BUY, lots, order.price)  # type: ignore[arg-type]
        balance.held -= hold
        balance.available += hold

    def rehold(self, order: Order, price: int, lots: int) -> Reason | None:
        """A replace to ``lots`` remaining at ``price``: check the limits that could now be breached and move the
        hold to what the new figures need, or refuse with the order untouched."""
        pos: Position = order.pos
        market, limits = pos.market, pos.limits
        buy = order.side is _BUY
        more = lots - order.leaves
        if limits is not NO_LIMITS:
            if limits.max_order_qty is not None and order.cum + lots > limits.max_order_qty and more > 0:
                return Reason.RISK_ORDER_QTY
            if (
                limits.max_order_notional is not None
                and (order.cum + lots) * price * market.quote_per_tick_lot > limits.max_order_notional
            ):
                return Reason.RISK_ORDER_NOTIONAL
            if limits.max_position is not None and more > 0:
                if buy and pos.net + pos.open_buy + more > limits.max_position:
                    return Reason.RISK_POSITION
                if not buy and pos.net - pos.open_sell - more < -limits.max_position:
                    return Reason.RISK_POSITION
        if self.funds_checks:
            old = self.hold_for(market, order.side, order.leaves, order.price)  # type: ignore[arg-type]
            new = self.hold_for(market, order.side, lots, price)
            balance = pos.quote if buy else pos.base
            if new - old > balance.available:
                return Reason.INSUFFICIENT_FUNDS
            balance.available -= new - old
            balance.held += new - old
        if buy:
            pos.open_buy += more
        else:
            pos.open_sell += more
        return None

    # ------------------------------------------------------------------ operator actions

    def fund(self, account_name: str, asset: str, amount: int, funding_id: str) -> Reason | None:
        """Deposit (``amount`` > 0) or withdraw (``amount`` < 0); ``funding_id`` makes it idempotent."""
        account = self.accounts.get(account_name)
        if account is None:
            return Reason.UNKNOWN_ACCOUNT
        if asset not in self.setup.assets:
            return Reason.UNKNOWN_ASSET
        if amount == 0:
            return Reason.INVALID_AMOUNT
        if funding_id in self.funding_ids:
            return Reason.DUPLICATE_FUNDING_ID
        balance = account.balance(asset)
        if amount < 0 and -amount > balance.available:
            return Reason.INSUFFICIENT_FUNDS
        if self.net_funding.get(asset, 0) + amount > MAX_UNITS:
            return Reason.AMOUNT_OUT_OF_RANGE
        self.funding_ids.add(funding_id)
        balance.available += amount
        self.net_funding[asset] = self.net_funding.get(asset, 0) + amount
        return None

    def transfer_out(
        self, account_name: str, asset: str, amount: int, to_shard: str, transfer_id: str
    ) -> Reason | None:
        """Debit ``amount`` (> 0) for a transfer to ``to_shard``, pending until :meth:`transfer_done`. The transfer
        id shares the funding ids' namespace: a repeated request is refused as a repeat."""
        account = self.accounts.get(account_name)
        if account is None:
            return Reason.UNKNOWN_ACCOUNT
        if asset not in self.setup.assets:
            return Reason.UNKNOWN_ASSET
        if amount <= 0:
            return Reason.INVALID_AMOUNT
        if transfer_id in self.funding_ids:
            return Reason.DUPLICATE_FUNDING_ID
        balance = account.balance(asset)
        if amount > balance.available:
            return Reason.INSUFFICIENT_FUNDS
        self.funding_ids.add(transfer_id)
        balance.available -= amount
        self.moved[asset] = self.moved.get(asset, 0) - amount
        seq = self.sent[to_shard] = self.sent.get(to_shard, 0) + 1
        self.outgoing[transfer_id] = Transfer(transfer_id, account_name, asset, amount, to_shard, seq)
        return None

    def credited(self, from_shard: str, seq: int) -> bool:
        """Whether transfer ``seq`` from ``from_shard`` was credited here."""
        return seq <= self.received.get(from_shard, 0) or seq in self.received_above.get(from_shard, ())

    def transfer_in(self, from_shard: str, seq: int, account_name: str, asset: str, amount: int) -> bool:
        """Credit transfer ``seq`` from ``from_shard`` unless it already was (then nothing changes): True if it
        was credited now. Never refused: the source has debited the money already."""
        if self.credited(from_shard, seq):
            return False
        above = self.received_above.setdefault(from_shard, set())
        above.add(seq)
        mark = self.received.get(from_shard, 0)
        while mark + 1 in above:
            mark += 1
            above.discard(mark)
        self.received[from_shard] = mark
        account = self.accounts.get(account_name)
        if account is None:  # every shard's setup names the same accounts; keep the money whatever happens
            account = self.accounts[account_name] = Account(account_name)
        account.balance(asset).available += amount
        self.moved[asset] = self.moved.get(asset, 0) + amount
        return True

    def transfer_done(self, transfer_id: str) -> bool:
        """The target credited ``transfer_id``: it is no longer pending here. False if it was not pending."""
        return self.outgoing.pop(transfer_id, None) is not None

    def set_limits(self, account_name: str | None, symbol: str, limits: Limits) -> Reason | None:
        """Set ``account_name``'s limits in ``symbol`` (the venue default if None)."""
        if symbol not in self.markets:
            return Reason.UNKNOWN_SYMBOL
        if account_name is None:
            self.defaults[symbol] = limits
        else:
            account = self.accounts.get(account_name)
            if account is None:
                return Reason.UNKNOWN_ACCOUNT
            account.limits[symbol] = limits
        self._refresh_positions()
        return None

    # ------------------------------------------------------------------ reports

    def imbalance(self) -> dict[str, int]:
        """Per asset: (available + held of every account) + fee account - (deposits - withdrawals) - (transfers
        received - transfers sent). Zero always."""
        totals = self.holdings()
        return {asset: totals[asset] - self.net_funding.get(asset, 0) - self.moved.get(asset, 0) for asset in totals}

    def holdings(self) -> dict[str, int]:
        """Per asset: available + held of every account, the fee account's included."""
        totals: dict[str, int] = dict.fromkeys(self.setup.assets, 0)
        for account in (*self.accounts.values(), self.fees):
            for asset, b in account.balances.items():
                totals[asset] = totals.get(asset, 0) + b.available + b.held
        return totals

    def totals(self) -> dict[str, tuple[int, int]]:
        """Per asset: (available, held) summed over the trading accounts (the fee account excluded)."""
        out = {asset: [0, 0] for asset in self.setup.assets}
        for account in self.accounts.values():
            for asset, b in account.balances.items():
                sums = out.setdefault(asset, [0, 0])
                sums[0] += b.available
                sums[1] += b.held
        return {asset: (v[0], v[1]) for asset, v in out.items()}

    # ------------------------------------------------------------------ snapshot

    def dump(self) -> dict[str, Any]:
        out = {
            "setup": self.setup.to_dict(),
            "defaults": {s: lim.to_list() for s, lim in self.defaults.items()},
            "accounts": {name: a.to_dict() for name, a in self.accounts.items()},
            "fees": self.fees.to_dict(),
            "funding_ids": sorted(self.funding_ids),
            "net_funding": self.net_funding,
            "killed_owners": sorted(self.killed_owners),
        }
        if self.moved or self.sent or self.received:  # only then: a venue without transfers dumps as it always did
            out["transfers"] = {
                "moved": self.moved,
                "outgoing": [t.to_list() for t in self.outgoing.values()],
                "sent": self.sent,
                "received": self.received,
                "received_above": {s: sorted(v) for s, v in self.received_above.items()},
            }
        return out

    def _load_account(self, account: Account, a: dict[str, Any]) -> None:
        account.balances = {asset: Balance(*v) for asset, v in a["balances"].items()}
        account.killed = a["killed"]
        account.limits = {s: Limits.from_list(v) for s, v in a["limits"].items()}
        for symbol, values in a["positions"].items():
            self.position(account, symbol).load(values)

    @classmethod
    def load(cls, d: dict[str, Any]) -> Ledger:
        ledger = cls(LedgerSetup.from_dict(d["setup"]))
        ledger.defaults = {s: Limits.from_list(v) for s, v in d["defaults"].items()}
        ledger.funding_ids = set(d["funding_ids"])
        ledger.net_funding = dict(d["net_funding"])
        ledger.killed_owners = set(d["killed_owners"])
        transfers = d.get("transfers", {})  # (snapshots written before transfers existed have none)
        ledger.moved = dict(transfers.get("moved", {}))
        ledger.outgoing = {t[0]: Transfer(*t) for t in transfers.get("outgoing", [])}
        ledger.sent = dict(transfers.get("sent", {}))
        ledger.received = dict(transfers.get("received", {}))
        ledger.received_above = {s: set(v) for s, v in transfers.get("received_above", {}).items()}
        for name, a in d["accounts"].items():
            ledger._load_account(ledger.accounts.setdefault(name, Account(name)), a)
        ledger._load_account(ledger.fees, d["fees"])
        ledger._fee_balances.clear()  # the fee account's balances were just replaced
        ledger._refresh_positions()
        return ledger


def venue_imbalance(ledgers: Mapping[str, Ledger]) -> dict[str, int]:
    """Conservation across the shards (shard name -> its ledger), per asset: every shard's holdings, plus the
    transfers debited and not yet credited (in flight), minus every shard's deposits - withdrawals. Zero always."""
    out: dict[str, int] = {}
    for shard, ledger in ledgers.items():
        for asset, units in ledger.holdings().items():
            out[asset] = out.get(asset, 0) + units - ledger.net_funding.get(asset, 0)
        for t in ledger.outgoing.values():
            target = ledgers.get(t.to_shard)
            if target is None or not target.credited(shard, t.seq):
                out[t.asset] = out.get(t.asset, 0) + t.amount
    return out


def with_limits(limits: Limits, **changes: int | None) -> Limits:
    """``limits`` with some fields changed (``None`` removes a limit)."""
    unknown = set(changes) - set(LIMIT_NAMES)
    if unknown:
        raise ValueError(f"unknown limit(s): {', '.join(sorted(unknown))}")
    return replace(limits, **changes)
