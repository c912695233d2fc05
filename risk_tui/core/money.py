"""Exact money: Decimal arithmetic, rounding to a currency's minor unit, formatting.

The one place that rounds and formats money. Amounts are computed unrounded and rounded
only for display and for the amount written on a call.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_UP, Context, Decimal, localcontext

# ISO 4217 minor units for the currencies a HK/SG/US desk sees; anything else has 2.
_MINOR_UNITS: dict[str, int] = {"JPY": 0, "KRW": 0, "IDR": 0, "VND": 0, "BHD": 3, "KWD": 3}

# Enough digits that an inverse fx rate (1 / 0.1723 does not terminate) loses nothing a
# minor unit could show, even on sums over millions of positions.
PRECISION = 40

ZERO = Decimal(0)
ONE = Decimal(1)


def context() -> Context:
    """The arithmetic context every margin computation runs in."""
    return Context(prec=PRECISION)


def minor_units(currency: str) -> int:
    return _MINOR_UNITS.get(currency.upper(), 2)


def quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_units(currency))


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Round half-up to the currency's minor unit: how every figure is shown and stored."""
    with localcontext(context()):
        return amount.quantize(quantum(currency), rounding=ROUND_HALF_UP)


def round_call_amount(amount: Decimal, currency: str) -> Decimal:
    """Round a call amount up to the minor unit, so the amount asked never falls short."""
    with localcontext(context()):
        return amount.quantize(quantum(currency), rounding=ROUND_CEILING)


def format_money(amount: Decimal | None, currency: str | None = None, *, code: bool = False) -> str:
    """`1,015.00` (or `SGD 1,015.00` with code=True); `—` for a figure that is unknown."""
    if amount is None:
        return "—"
    cur = currency or "XXX"
    text = f"{round_money(amount, cur):,.{minor_units(cur)}f}"
    return f"{cur} {text}" if code and currency else text


def format_ratio(ratio: Decimal | None, places: int = 2) -> str:
    """A ratio as a percentage, `45.00%`; `—` when undefined."""
    if ratio is None:
        return "—"
    with localcontext(context()):
        pct = (ratio * 100).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return f"{pct}%"


def money_str(amount: Decimal, currency: str) -> str:
    """The decimal string written to JSON/CSV and storage: rounded, no grouping."""
    return str(round_money(amount, currency))
