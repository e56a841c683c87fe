"""Instrument reference data and the decimal <-> integer conversion done once at the FIX edge.

Inside the engine a price is an integer number of ticks and a quantity an integer number of lots. The edge calls
:meth:`Instrument.price_to_ticks` / :meth:`Instrument.qty_to_lots`, which return ``None`` for a value that is not an
exact multiple, and :meth:`Instrument.ticks_to_price` / :meth:`Instrument.lots_to_qty` on the way out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any


@dataclass(frozen=True, slots=True)
class Instrument:
    """One tradable instrument.

    ``min_price``/``max_price`` are the static price band: a limit price outside it is rejected
    (:attr:`~engine.types.Reason.PRICE_OUTSIDE_BAND`). ``min_qty``/``max_qty`` bound a single order's quantity.
    """

    symbol: str
    tick_size: Decimal
    lot_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    min_price: Decimal
    max_price: Decimal
    # Integer forms, derived once.
    min_lots: int = field(init=False)
    max_lots: int = field(init=False)
    min_ticks: int = field(init=False)
    max_ticks: int = field(init=False)
    # tick = _tick_units x 10**-_tick_exp (and the same for the lot): integer formatting without Decimal.
    _tick_units: int = field(init=False, repr=False)
    _tick_exp: int = field(init=False, repr=False)
    _lot_units: int = field(init=False, repr=False)
    _lot_exp: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.tick_size <= 0 or self.lot_size <= 0:
            raise ValueError(f"{self.symbol}: tick_size and lot_size must be positive")
        for name, value, unit in (
            ("min_qty", self.min_qty, self.lot_size),
            ("max_qty", self.max_qty, self.lot_size),
            ("min_price", self.min_price, self.tick_size),
            ("max_price", self.max_price, self.tick_size),
        ):
            if value % unit != 0:
                raise ValueError(f"{self.symbol}: {name}={value} is not a multiple of {unit}")
        object.__setattr__(self, "min_lots", int(self.min_qty / self.lot_size))
        object.__setattr__(self, "max_lots", int(self.max_qty / self.lot_size))
        object.__setattr__(self, "min_ticks", int(self.min_price / self.tick_size))
        object.__setattr__(self, "max_ticks", int(self.max_price / self.tick_size))
        for name, step in (("tick", self.tick_size), ("lot", self.lot_size)):
            exp = max(0, -int(step.as_tuple().exponent))
            object.__setattr__(self, f"_{name}_units", int(step.scaleb(exp)))
            object.__setattr__(self, f"_{name}_exp", exp)
        if not 0 < self.min_lots <= self.max_lots:
            raise ValueError(f"{self.symbol}: need 0 < min_qty <= max_qty")
        if not 0 < self.min_ticks <= self.max_ticks:
            raise ValueError(f"{self.symbol}: need 0 < min_price <= max_price")

    @classmethod
    def from_config(cls, symbol: str, spec: dict[str, Any]) -> Instrument:
        """Build from a config table; numbers may be given as strings (preferred) or ints."""
        return cls(
            symbol=symbol,
            tick_size=Decimal(str(spec["tick_size"])),
            lot_size=Decimal(str(spec["lot_size"])),
            min_qty=Decimal(str(spec.get("min_qty", spec["lot_size"]))),
            max_qty=Decimal(str(spec["max_qty"])),
            min_price=Decimal(str(spec["min_price"])),
            max_price=Decimal(str(spec["max_price"])),
        )

    def price_to_ticks(self, price: Decimal) -> int | None:
        """Ticks for ``price``, or ``None`` if it is not on the tick grid (or not a finite, representable number)."""
        return _units(price, self.tick_size)

    def qty_to_lots(self, qty: Decimal) -> int | None:
        """Lots for ``qty``, or ``None`` if it is not a multiple of the lot size (or not finite and representable)."""
        return _units(qty, self.lot_size)

    def price_str(self, ticks: int) -> str:
        """``ticks`` as the FIX price text, e.g. 15000 -> "150.00" for a 0.01 tick (same text as the Decimal)."""
        return _fixed(ticks * self._tick_units, self._tick_exp)

    def qty_str(self, lots: int) -> str:
        """``lots`` as the FIX quantity text, e.g. 2000 -> "0.2000" for a 0.0001 lot."""
        return _fixed(lots * self._lot_units, self._lot_exp)

    def avg_price_str(self, notional: int, cum: int, places: int = 8) -> str:
        """Average price of fills worth ``notional`` (ticks x lots) over ``cum`` lots, rounded half up to
        ``places`` decimals beyond the tick, trailing zeros dropped; "0" before any fill."""
        if not cum:
            return "0"
        if notional % cum == 0:
            return self.price_str(notional // cum)
        scale = 10**places
        scaled = (2 * notional * self._tick_units * scale + cum) // (2 * cum)
        return _fixed(scaled, self._tick_exp + places).rstrip("0")

    def ticks_to_price(self, ticks: int) -> Decimal:
        return self.tick_size * ticks

    def lots_to_qty(self, lots: int) -> Decimal:
        return self.lot_size * lots


def _units(value: Decimal, unit: Decimal) -> int | None:
    """``value / unit`` if that is a whole number, else None. Infinities and values whose quotient exceeds the
    decimal context's precision make ``divmod`` raise InvalidOperation; they are not on any grid either."""
    try:
        units, rest = divmod(value, unit)
    except InvalidOperation:
        return None
    return None if rest else int(units)


def parse_decimal(text: str | None) -> Decimal | None:
    """A FIX decimal field's value, or None if absent or not a finite number ("NaN" and "Infinity" parse as
    Decimals but are no FIX values, and comparing a NaN raises)."""
    if text is None:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _fixed(units: int, exp: int) -> str:
    """``units`` x 10**-exp as plain decimal text with exactly ``exp`` decimals."""
    if not exp:
        return str(units)
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), 10**exp)
    return f"{sign}{whole}.{frac:0{exp}d}"
