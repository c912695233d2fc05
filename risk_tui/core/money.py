"""Exact money: Decimal arithmetic, rounding to a currency's minor unit, formatting.

The one place that rounds and formats money. Amounts are computed unrounded and rounded
only for display and for the amount written on a call.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_UP, Context, Decimal, localcontext
from functools import cache

from iso4217 import Currency

# Enough digits that an inverse fx rate (1 / 0.1723 does not terminate) loses nothing a
# minor unit could show, even on sums over millions of positions.
PRECISION = 40

ZERO = Decimal(0)
ONE = Decimal(1)


def context() -> Context:
    """The arithmetic context every margin computation runs in."""
    return Context(prec=PRECISION)


class UnknownCurrency(ValueError):
    """A code that is not an ISO 4217 currency with a minor unit: its amounts cannot be
    rounded, so they are refused rather than guessed at two decimals."""

    def __init__(self, currency: str, why: str = "not an ISO 4217 currency") -> None:
        self.currency = currency
        self.why = why
        super().__init__(f"{why}: {currency!r}")


@cache
def minor_units(currency: str) -> int:
    """The currency's minor unit (decimals), from ISO 4217's own list — the `iso4217`
    package, kept current with it (SPEC.md settled: ISO 4217, not CLDR, is the authority).

    Raises `UnknownCurrency` for a code ISO 4217 does not list (codes are upper case, as
    the feed sends them) or one without a minor unit (gold XAU, the test code XTS, XXX).
    """
    try:
        exponent = Currency(currency).exponent
    except ValueError:
        raise UnknownCurrency(currency) from None
    if exponent is None:
        raise UnknownCurrency(currency, "an ISO 4217 code with no minor unit: not money")
    return exponent


def check_currency(currency: str) -> str:
    """`currency` as given, when it is money ISO 4217 knows; else `UnknownCurrency`."""
    minor_units(currency)
    return currency


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


def format_money(amount: Decimal | None, currency: str, *, code: bool = False) -> str:
    """`1,015.00` (or `SGD 1,015.00` with code=True); `—` for a figure that is unknown."""
    if amount is None:
        return "—"
    text = f"{round_money(amount, currency):,.{minor_units(currency)}f}"
    return f"{currency} {text}" if code else text


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
