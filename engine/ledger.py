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
reach in the book as it stands, counting only other accounts' orders (see :meth:`reach`).

Fees are ``notional x rate // 1,000,000`` (rates in parts per million of the notional, i.e. 1 bp = 100 ppm), rounded
toward zero: a positive fee is rounded down, a negative fee (a maker rebate) is rounded toward zero too. Rounding
down makes the hold of a buy always enough (the fee of a part never exceeds its share of the fee of the whole), and a
venue that keeps ``taker >= -maker`` never pays out more in rebates than it takes in fees on the same trade.

Conservation, per asset, at all times: the sum over accounts of available + held, plus the fee account, equals
deposits minus withdrawals (:meth:`imbalance` returns the difference, which is zero unless there is a bug).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from engine.order import Order
from engine.types import OrdType, Reason, Side

PPM = 1_000_000
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


class Position:
    """One account's position in one instrument, and its working orders there.

    ``net`` is the signed position in lots (bought minus sold); ``cost`` the cost basis of the open position in quote
    units (average-cost method: opening fills add their notional, closing fills remove the proportional part, rounded
    down); ``realized`` the realized PnL in quote units, fees included; ``fees`` the fees paid (rebates negative).
    ``open_orders`` counts working orders; ``open_buy``/``open_sell`` are their remaining lots per side.
    """

    __slots__ = ("cost", "fees", "net", "open_buy", "open_orders", "open_sell", "realized")

    def __init__(self) -> None:
        self.net = 0
        self.cost = 0
        self.realized = 0
        self.fees = 0
        self.open_orders = 0
        self.open_buy = 0
        self.open_sell = 0

    def to_list(self) -> list[int]:
        return [self.net, self.cost, self.realized, self.fees, self.open_orders, self.open_buy, self.open_sell]

    @classmethod
    def from_list(cls, values: list[int]) -> Position:
        p = cls()
        p.net, p.cost, p.realized, p.fees, p.open_orders, p.open_buy, p.open_sell = values
        return p

    def trade(self, lots: int, notional: int, fee: int) -> None:
        """Apply a fill of ``lots`` (positive bought, negative sold) worth ``notional`` quote units, paying ``fee``."""
        self.realized -= fee
        self.fees += fee
        net = self.net
        if net == 0 or (net > 0) == (lots > 0):  # opening or adding to the position
            self.net = net + lots
            self.cost += notional
            return
        size = abs(lots)
        closing = min(size, abs(net))
        basis = self.cost * closing // abs(net)
        proceeds = notional * closing // size
        self.realized += proceeds - basis if net > 0 else basis - proceeds
        self.cost -= basis
        rest = size - closing
        self.net = net + (closing if lots > 0 else -closing)
        if rest:  # the fill went through zero: the rest opens a position the other way
            self.net += rest if lots > 0 else -rest
            self.cost = notional - proceeds


_FLAT = Position()  # read, never written: the figures of an instrument the account has no order or fill in yet


class Account:
    """One trading account: per-asset available and held amounts, positions, limit overrides, kill state."""

    __slots__ = ("available", "held", "killed", "limits", "name", "positions")

    def __init__(self, name: str) -> None:
        self.name = name
        self.available: dict[str, int] = {}
        self.held: dict[str, int] = {}
        self.killed = False
        self.limits: dict[str, Limits] = {}  # per-instrument overrides of the venue defaults
        self.positions: dict[str, Position] = {}

    def to_dict(self) -> dict[str, Any]:
        return {
            "available": self.available,
            "held": self.held,
            "killed": self.killed,
            "limits": {s: lim.to_list() for s, lim in self.limits.items()},
            "positions": {s: p.to_list() for s, p in self.positions.items()},
        }

    @classmethod
    def from_dict(cls, name: str, d: dict[str, Any]) -> Account:
        a = cls(name)
        a.available, a.held, a.killed = dict(d["available"]), dict(d["held"]), d["killed"]
        a.limits = {s: Limits.from_list(v) for s, v in d["limits"].items()}
        a.positions = {s: Position.from_list(v) for s, v in d["positions"].items()}
        return a


def _add(book: dict[str, int], asset: str, amount: int) -> None:
    book[asset] = book.get(asset, 0) + amount


class Ledger:
    """Balances, holds, fees, positions and risk limits of every account. See the module docstring."""

    def __init__(self, setup: LedgerSetup) -> None:
        self.setup = setup
        self.accounts: dict[str, Account] = {}
        self.fees = Account(setup.fee_account)
        self.funding_ids: set[str] = set()
        self.net_funding: dict[str, int] = {}  # asset -> deposits minus withdrawals
        self.killed_owners: set[str] = set()
        self._inflight_hold = 0  # what the market buy being matched still holds (it never rests)
        self.configure(setup)

    # ------------------------------------------------------------------ setup

    def configure(self, setup: LedgerSetup) -> None:
        """Adopt new rules: new accounts are opened; existing balances, holds and positions stay."""
        self.setup = setup
        self.markets = dict(setup.markets)
        self.defaults = {s: setup.default_limits.get(s, NO_LIMITS) for s in setup.markets}
        self.funds_checks = setup.funds_checks
        if self.fees.name != setup.fee_account:
            self.fees.name = setup.fee_account
        for name in setup.accounts:
            if name not in self.accounts:
                self.accounts[name] = Account(name)

    def limits(self, account: Account, symbol: str) -> Limits:
        """The limits in force for ``account`` in ``symbol``: its overrides, else the venue defaults."""
        return account.limits.get(symbol) or self.defaults.get(symbol, NO_LIMITS)

    # ------------------------------------------------------------------ holds

    def hold_for(self, market: Market, side: Side, lots: int, price: int) -> int:
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

    def admit(self, order: Order, opposite_levels: Iterable[Any]) -> Reason | None:
        """Pre-trade risk for a new order, then its hold. Checks, in order: account known and enabled (and its
        session not killed); max order quantity; max order notional; max open orders; max position after the order
        would fill; funds. Returns the first refusal, or None once the hold is taken."""
        account = self.accounts.get(order.account)
        if account is None:
            return Reason.UNKNOWN_ACCOUNT
        if account.killed or order.owner in self.killed_owners:
            return Reason.ACCOUNT_KILLED
        market = self.markets[order.symbol]
        pos = account.positions.get(order.symbol) or _FLAT  # a refused order leaves no position behind
        limits = account.limits.get(order.symbol) or self.defaults[order.symbol]
        lots = order.leaves
        buy = order.side is _BUY
        price = hold_price = order.price
        if order.ord_type is _MARKET:  # valued at the dearest price it can reach; a buy is held at its worst
            best, hold_price = self.reach(order, opposite_levels)
            price = hold_price if buy else best
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
                hold = lots * market.base_per_lot
            elif hold_price is None:  # a market buy facing no other account's order will trade nothing
                hold = 0
            else:
                hold = self.hold_for(market, _BUY, lots, hold_price)
            asset = market.quote if buy else market.base
            available = account.available.get(asset, 0)
            if hold > available:
                return Reason.INSUFFICIENT_FUNDS
            if hold:
                account.available[asset] = available - hold
                account.held[asset] = account.held.get(asset, 0) + hold
            if buy and order.ord_type is _MARKET:
                self._inflight_hold = hold
        if pos is _FLAT:
            pos = account.positions[order.symbol] = Position()
        pos.open_orders += 1
        if buy:
            pos.open_buy += lots
        else:
            pos.open_sell += lots
        return None

    def fill(self, taker: Order, maker: Order, lots: int, price: int) -> tuple[int, int]:
        """Settle a trade of ``lots`` at ``price`` between ``taker`` and ``maker`` (called before either order's
        ``leaves`` is reduced). Returns the fees (taker's, maker's) in quote units."""
        market = self.markets[taker.symbol]
        notional = lots * price * market.quote_per_tick_lot
        taker_fee = fee_of(notional, market.taker_ppm)
        maker_fee = fee_of(notional, market.maker_ppm)
        self._settle(taker, market, lots, notional, taker_fee)
        self._settle(maker, market, lots, notional, maker_fee)
        _add(self.fees.available, market.quote, taker_fee + maker_fee)
        return taker_fee, maker_fee

    def _settle(self, order: Order, market: Market, lots: int, notional: int, fee: int) -> None:
        account = self.accounts[order.account]
        pos = account.positions[order.symbol]
        base, quote = market.base, market.quote
        base_lots = lots * market.base_per_lot
        left = order.leaves - lots
        if order.side is _BUY:
            cost = notional + fee
            if self.funds_checks:
                if order.ord_type is _MARKET:
                    release = self._inflight_hold if not left else cost
                    self._inflight_hold -= release
                else:
                    release = self.hold_for(market, _BUY, order.leaves, order.price) - self.hold_for(  # type: ignore[arg-type]
                        market,
                        _BUY,
                        left,
                        order.price,  # type: ignore[arg-type]
                    )
                _add(account.held, quote, -release)
                _add(account.available, quote, release - cost)
            else:
                _add(account.available, quote, -cost)
            _add(account.available, base, base_lots)
            pos.open_buy -= lots
            pos.trade(lots, notional, fee)
        else:
            _add(account.held if self.funds_checks else account.available, base, -base_lots)
            _add(account.available, quote, notional - fee)
            pos.open_sell -= lots
            pos.trade(-lots, notional, fee)
        if not left:
            pos.open_orders -= 1

    def close(self, order: Order) -> None:
        """``order`` ends with ``leaves`` unfilled (cancel, expiry, self-trade prevention, kill): release its hold.
        Called before ``leaves`` is set to zero."""
        account = self.accounts[order.account]
        pos = account.positions[order.symbol]
        lots = order.leaves
        pos.open_orders -= 1
        if order.side is _BUY:
            pos.open_buy -= lots
        else:
            pos.open_sell -= lots
        if not self.funds_checks:
            return
        market = self.markets[order.symbol]
        if order.side is _BUY and order.ord_type is _MARKET:
            hold, self._inflight_hold = self._inflight_hold, 0
        else:
            hold = self.hold_for(market, order.side, lots, order.price)  # type: ignore[arg-type]
        if hold:
            asset = market.quote if order.side is _BUY else market.base
            _add(account.held, asset, -hold)
            _add(account.available, asset, hold)

    def rehold(self, order: Order, price: int, lots: int) -> Reason | None:
        """A replace to ``lots`` remaining at ``price``: check the limits that could now be breached and move the
        hold to what the new figures need, or refuse with the order untouched."""
        account = self.accounts[order.account]
        market = self.markets[order.symbol]
        pos = account.positions[order.symbol]
        limits = self.limits(account, order.symbol)
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
            asset = market.quote if buy else market.base
            if new - old > account.available.get(asset, 0):
                return Reason.INSUFFICIENT_FUNDS
            if new != old:
                _add(account.available, asset, old - new)
                _add(account.held, asset, new - old)
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
        if amount < 0 and -amount > account.available.get(asset, 0):
            return Reason.INSUFFICIENT_FUNDS
        self.funding_ids.add(funding_id)
        _add(account.available, asset, amount)
        _add(self.net_funding, asset, amount)
        return None

    def set_limits(self, account_name: str | None, symbol: str, limits: Limits) -> Reason | None:
        """Set ``account_name``'s limits in ``symbol`` (the venue default if None)."""
        if symbol not in self.markets:
            return Reason.UNKNOWN_SYMBOL
        if account_name is None:
            self.defaults[symbol] = limits
            return None
        account = self.accounts.get(account_name)
        if account is None:
            return Reason.UNKNOWN_ACCOUNT
        account.limits[symbol] = limits
        return None

    # ------------------------------------------------------------------ reports

    def imbalance(self) -> dict[str, int]:
        """Per asset: (available + held of every account) + fee account - (deposits - withdrawals). Zero always."""
        totals: dict[str, int] = dict.fromkeys(self.setup.assets, 0)
        for account in (*self.accounts.values(), self.fees):
            for book in (account.available, account.held):
                for asset, amount in book.items():
                    totals[asset] = totals.get(asset, 0) + amount
        return {asset: totals[asset] - self.net_funding.get(asset, 0) for asset in totals}

    def totals(self) -> dict[str, tuple[int, int]]:
        """Per asset: (available, held) summed over the trading accounts (the fee account excluded)."""
        out = {asset: [0, 0] for asset in self.setup.assets}
        for account in self.accounts.values():
            for asset, amount in account.available.items():
                out.setdefault(asset, [0, 0])[0] += amount
            for asset, amount in account.held.items():
                out.setdefault(asset, [0, 0])[1] += amount
        return {asset: (v[0], v[1]) for asset, v in out.items()}

    # ------------------------------------------------------------------ snapshot

    def dump(self) -> dict[str, Any]:
        return {
            "setup": self.setup.to_dict(),
            "defaults": {s: lim.to_list() for s, lim in self.defaults.items()},
            "accounts": {name: a.to_dict() for name, a in self.accounts.items()},
            "fees": self.fees.to_dict(),
            "funding_ids": sorted(self.funding_ids),
            "net_funding": self.net_funding,
            "killed_owners": sorted(self.killed_owners),
        }

    @classmethod
    def load(cls, d: dict[str, Any]) -> Ledger:
        ledger = cls(LedgerSetup.from_dict(d["setup"]))
        ledger.defaults = {s: Limits.from_list(v) for s, v in d["defaults"].items()}
        ledger.accounts = {name: Account.from_dict(name, a) for name, a in d["accounts"].items()}
        ledger.fees = Account.from_dict(ledger.setup.fee_account, d["fees"])
        ledger.funding_ids = set(d["funding_ids"])
        ledger.net_funding = dict(d["net_funding"])
        ledger.killed_owners = set(d["killed_owners"])
        return ledger


def with_limits(limits: Limits, **changes: int | None) -> Limits:
    """``limits`` with some fields changed (``None`` removes a limit)."""
    unknown = set(changes) - set(LIMIT_NAMES)
    if unknown:
        raise ValueError(f"unknown limit(s): {', '.join(sorted(unknown))}")
    return replace(limits, **changes)
