"""Money at the edge: the venue config's assets, markets, fees and limits as the ledger's integers, and back.

The ledger (:mod:`engine.ledger`) counts every asset in whole units of ``10**-scale``. Here, once at start-up, each
instrument's grid is tied to its assets: one lot must be a whole number of base units and one tick x one lot a
whole number of quote units, or the config is refused; fees in basis points become parts per million; limits given
as decimals become lots and quote units. The same tables turn integers back into decimal text for FIX, the operator
channel and the audit trail.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from engine import Instrument, LedgerSetup, Limits, Market
from engine.ledger import LIMIT_NAMES

PPM_PER_BP = 100


class Assets:
    """Asset codes and scales: decimal text <-> integer units."""

    def __init__(self, scales: Mapping[str, int]) -> None:
        self.scales = dict(scales)
        self._units = {code: Decimal(1).scaleb(-scale) for code, scale in scales.items()}

    def unit(self, asset: str) -> Decimal:
        return self._units[asset]

    def to_units(self, asset: str, text: str | int | Decimal) -> int:
        """``text`` (a decimal amount of ``asset``) in units; ValueError if it is not a number or has more decimals
        than the asset's scale."""
        if asset not in self.scales:
            raise ValueError(f"unknown asset {asset!r}")
        value = _decimal(text, f"amount of {asset}")
        units, rest = divmod(value, self._units[asset])
        if rest:
            raise ValueError(f"{text} {asset} has more decimals than {asset}'s scale ({self.scales[asset]})")
        return int(units)

    def text(self, asset: str, units: int) -> str:
        """``units`` of ``asset`` as plain decimal text with the asset's decimals (e.g. "1000.000000")."""
        scale = self.scales[asset]
        if not scale:
            return str(units)
        sign = "-" if units < 0 else ""
        whole, frac = divmod(abs(units), 10**scale)
        return f"{sign}{whole}.{frac:0{scale}d}"


def _decimal(value: Any, what: str) -> Decimal:
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{what}: {value!r} is not a number") from None
    if not d.is_finite():
        raise ValueError(f"{what}: {value!r} is not a number")
    return d


def _whole(value: Decimal, unit: Decimal, what: str) -> int:
    units, rest = divmod(value, unit)
    if rest:
        raise ValueError(f"{what}: {value} is not a whole multiple of {unit}")
    return int(units)


def market_of(instrument: Instrument, spec: Mapping[str, Any], assets: Assets) -> Market:
    """The ledger's view of one instrument from its config table (``base``, ``quote``, ``maker_fee_bps``,
    ``taker_fee_bps``). ``base`` defaults to the symbol before a ``-`` (``BTC`` for ``BTC-USD``), else the symbol."""
    symbol = instrument.symbol
    base = str(spec.get("base", symbol.split("-")[0]))
    quote = str(spec.get("quote", symbol.split("-")[1] if "-" in symbol else ""))
    for role, asset in (("base", base), ("quote", quote)):
        if asset not in assets.scales:
            raise ValueError(f"config: instruments.{symbol}.{role} = {asset!r} is not a configured [assets] entry")
    base_per_lot = _whole(instrument.lot_size, assets.unit(base), f"instruments.{symbol}: lot_size in {base} units")
    quote_per_tick_lot = _whole(
        instrument.tick_size * instrument.lot_size, assets.unit(quote), f"instruments.{symbol}: tick x lot in {quote}"
    )
    maker = _bps_to_ppm(spec.get("maker_fee_bps", 0), f"instruments.{symbol}.maker_fee_bps")
    taker = _bps_to_ppm(spec.get("taker_fee_bps", 0), f"instruments.{symbol}.taker_fee_bps")
    if maker > taker:
        raise ValueError(f"config: instruments.{symbol}: maker_fee_bps must not exceed taker_fee_bps (a buy's hold "
                         "covers the taker fee)")  # fmt: skip
    if taker + maker < 0:
        raise ValueError(f"config: instruments.{symbol}: the maker rebate must not exceed the taker fee")
    return Market(symbol, base, quote, base_per_lot, quote_per_tick_lot, maker, taker)


def _bps_to_ppm(value: Any, what: str) -> int:
    bps = _decimal(value, what)
    ppm = bps * PPM_PER_BP
    if ppm != ppm.to_integral_value():
        raise ValueError(f"config: {what} = {value}: at most two decimals of a basis point")
    if abs(ppm) >= 1_000_000:
        raise ValueError(f"config: {what} = {value}: a fee must be below 100% of the notional")
    return int(ppm)


def limits_of(spec: Mapping[str, Any], instrument: Instrument, market: Market, assets: Assets, where: str) -> Limits:
    """Limits from a table of decimals: quantities in the instrument's quantity, notional in its quote asset."""
    unknown = set(spec) - set(LIMIT_NAMES)
    if unknown:
        raise ValueError(f"{where}: unknown limit(s) {', '.join(sorted(unknown))}; known: {', '.join(LIMIT_NAMES)}")
    values: dict[str, int | None] = {}
    for name, raw in spec.items():
        if raw is None or str(raw).lower() == "none":
            values[name] = None
            continue
        value = _decimal(raw, f"{where}.{name}")
        if name in ("max_order_qty", "max_position"):
            values[name] = _whole(value, instrument.lot_size, f"{where}.{name} in lots of {instrument.lot_size}")
        elif name == "max_order_notional":
            values[name] = assets.to_units(market.quote, value)
        else:
            values[name] = _whole(value, Decimal(1), f"{where}.{name}")
        if values[name] is not None and values[name] < 0:  # type: ignore[operator]
            raise ValueError(f"{where}.{name} must not be negative")
    return Limits(**values)


def limits_text(limits: Limits, instrument: Instrument, market: Market, assets: Assets) -> dict[str, str | None]:
    """``limits`` as decimal text (None: no limit), for the operator channel."""
    out: dict[str, str | None] = {}
    for name, value in zip(LIMIT_NAMES, limits.to_list(), strict=True):
        if value is None:
            out[name] = None
        elif name in ("max_order_qty", "max_position"):
            out[name] = instrument.qty_str(value)
        elif name == "max_order_notional":
            out[name] = assets.text(market.quote, value)
        else:
            out[name] = str(value)
    return out


def ledger_setup(
    raw: Mapping[str, Any], instruments: Iterable[Instrument], accounts: Iterable[str]
) -> tuple[LedgerSetup, Assets, dict[str, dict[str, int]]]:
    """The ledger setup, the asset table and the opening balances (account -> asset -> units) from the parsed
    config (its ``[assets]``, ``[instruments.X]``, ``[risk]`` and ``[accounts]`` tables)."""
    assets_raw = raw.get("assets", {})
    assets = Assets({str(code): _scale(code, scale) for code, scale in assets_raw.items()})
    instruments = tuple(instruments)
    specs = raw.get("instruments", {})
    markets = {i.symbol: market_of(i, specs.get(i.symbol, {}), assets) for i in instruments}
    risk = raw.get("risk", {})
    limit_tables = risk.get("limits", {})
    everywhere = limit_tables.get("*", {})
    defaults: dict[str, Limits] = {}
    for i in instruments:
        spec = {**everywhere, **limit_tables.get(i.symbol, {})}
        if spec:
            defaults[i.symbol] = limits_of(spec, i, markets[i.symbol], assets, f"risk.limits.{i.symbol}")
    unknown = set(limit_tables) - {"*"} - set(markets)
    if unknown:
        raise ValueError(f"config: risk.limits names unknown instrument(s) {', '.join(sorted(unknown))}")
    accounts_raw = raw.get("accounts", {})
    # [accounts] holds the common opening_balance and one table per account named there (``[accounts.NAME]``).
    own_tables = {k: v for k, v in accounts_raw.items() if k != "opening_balance" and isinstance(v, dict)}
    names = list(dict.fromkeys([*accounts, *own_tables]))
    fee_account = str(raw.get("venue", {}).get("fee_account", "FEES"))
    if fee_account in names:
        raise ValueError(f"config: venue.fee_account {fee_account!r} is also a trading account")
    common = accounts_raw.get("opening_balance", {})
    opening: dict[str, dict[str, int]] = {}
    for name in names:
        balances = {**common, **own_tables.get(name, {}).get("opening_balance", {})}
        opening[name] = {asset: assets.to_units(asset, amount) for asset, amount in balances.items()}
    setup = LedgerSetup(
        assets=assets.scales,
        markets=markets,
        accounts=tuple(names),
        default_limits=defaults,
        fee_account=fee_account,
        funds_checks=bool(risk.get("funds_checks", True)),
    )
    return setup, assets, opening


def _scale(code: Any, scale: Any) -> int:
    if not isinstance(scale, int) or not 0 <= scale <= 18:
        raise ValueError(f"config: assets.{code} must be an integer scale between 0 and 18 (decimal places)")
    return scale
