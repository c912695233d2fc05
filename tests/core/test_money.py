"""Money's minor units come from ISO 4217 (the `iso4217` package), never a guess of two."""

from __future__ import annotations

from decimal import Decimal

import pytest

from risk_tui.core.money import (
    UnknownCurrency,
    check_currency,
    format_money,
    minor_units,
    money_str,
    round_call_amount,
    round_money,
)


@pytest.mark.parametrize(
    ("currency", "units"),
    [
        ("SGD", 2),
        ("HKD", 2),
        ("USD", 2),
        ("IDR", 2),  # the hand-written table said 0
        ("JPY", 0),
        ("KRW", 0),
        ("CLP", 0),  # silently 2 before
        ("ISK", 0),
        ("VND", 0),
        ("KWD", 3),
        ("BHD", 3),
        ("OMR", 3),  # silently 2 before
        ("JOD", 3),
        ("TND", 3),
        ("IQD", 3),  # ISO 4217, where CLDR says 0 (SPEC.md: ISO 4217 is the authority)
        ("LAK", 2),
        ("IRR", 2),
    ],
)
def test_minor_units_are_iso_4217s(currency: str, units: int) -> None:
    assert minor_units(currency) == units


@pytest.mark.parametrize("code", ["ABC", "sgd", "XAU", "XTS", "XXX", "CNH", ""])
def test_an_unknown_currency_is_an_error_not_two_decimals(code: str) -> None:
    with pytest.raises(UnknownCurrency):
        minor_units(code)
    with pytest.raises(UnknownCurrency):
        format_money(Decimal("1.005"), code)
    with pytest.raises(UnknownCurrency):
        round_money(Decimal("1.005"), code)
    with pytest.raises(UnknownCurrency):
        check_currency(code)


def test_rounding_and_formatting_follow_the_minor_unit() -> None:
    assert format_money(Decimal("1234.5675"), "KWD", code=True) == "KWD 1,234.568"
    assert format_money(Decimal("1234.5"), "CLP") == "1,235"
    assert format_money(Decimal("1234.5"), "IDR") == "1,234.50"
    assert money_str(Decimal("0.0005"), "OMR") == "0.001"
    assert round_call_amount(Decimal("100.0001"), "BHD") == Decimal("100.001")
    assert round_call_amount(Decimal("100.1"), "ISK") == Decimal("101")
    assert format_money(None, "SGD") == "—"
