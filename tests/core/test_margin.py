"""The margin rules of SPEC.md, pinned: the seed example to the cent, and the edges."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal as D
from decimal import localcontext
from typing import Any

import pytest

from risk_tui.core.cure import propose_cure
from risk_tui.core.margin import (
    CallFormula,
    CallPolicy,
    RiskLevel,
    classify,
    compute_account,
)
from risk_tui.core.model import (
    Account,
    AccountKind,
    Book,
    CashBalance,
    FxRate,
    Instrument,
    Market,
    Position,
    Quote,
    Side,
)
from risk_tui.core.money import context, format_money, round_call_amount

MM_BUFFER = CallPolicy(CallFormula.MM_BUFFER, D("0.02"))
IM_FORMULA = CallPolicy(CallFormula.IM)


def instrument(
    symbol: str, im: str, mm: str, fm: str, currency: str = "SGD", **kw: Any
) -> Instrument:
    return Instrument(
        symbol=symbol,
        name=symbol,
        market=Market.SG,
        currency=currency,
        lot_size=D(str(kw.pop("lot", "100"))),
        im_ratio=D(im),
        mm_ratio=D(mm),
        fm_ratio=D(fm),
        **kw,
    )


def seed_book() -> Book:
    """SPEC.md's worked example: cash −15,000; 5,000 of A; B bought at 25,000 now 19,500."""
    book = Book()
    book.instruments["A"] = instrument("A", "0.30", "0.25", "0.20")
    book.instruments["B"] = instrument("B", "0.50", "0.45", "0.40")
    book.quotes["A"] = Quote("A", D("5.00"))
    book.quotes["B"] = Quote("B", D("19.50"))
    book.accounts["A1001"] = Account("A1001", "Tan Mei Ling", AccountKind.MARGIN, "SGD", Market.SG)
    book.set_cash(CashBalance("A1001", "SGD", D("-15000.00")))
    book.set_position(Position("A1001", "A", D("1000")))
    book.set_position(Position("A1001", "B", D("1000")))
    return book


def test_seed_example_mm_buffer_is_1015() -> None:
    result = compute_account(seed_book(), "A1001", MM_BUFFER)
    assert result.cash_base == D("-15000.00")
    assert result.long_mv == D("24500.00")
    assert result.equity == D("9500.00")
    assert result.im == D("11250.00")
    assert result.mm == D("10025.00")
    assert result.mm - result.equity == D("525.00")  # the shortfall
    assert result.call_amount == D("1015.00")
    assert format_money(result.call_amount, "SGD") == "1,015.00"
    assert result.risk_level is RiskLevel.MARGIN_CALL
    assert result.in_call


def test_seed_example_im_formula_is_1750() -> None:
    result = compute_account(seed_book(), "A1001", IM_FORMULA)
    assert result.call_amount == D("1750.00")


def test_risk_levels_boundaries() -> None:
    im, mm, fm = D("100"), D("80"), D("60")
    assert classify(D("100"), im, mm, fm) is RiskLevel.SAFE
    assert classify(D("99.99"), im, mm, fm) is RiskLevel.WATCH
    assert classify(D("80"), im, mm, fm) is RiskLevel.WATCH  # equity = MM: not in call
    assert classify(D("79.99"), im, mm, fm) is RiskLevel.MARGIN_CALL
    assert classify(D("60"), im, mm, fm) is RiskLevel.MARGIN_CALL
    assert classify(D("59.99"), im, mm, fm) is RiskLevel.FORCE_CALL


def test_fx_into_base_currency_direct_and_inverse() -> None:
    book = seed_book()
    book.instruments["T"] = instrument("T", "0.40", "0.35", "0.30", currency="HKD")
    book.quotes["T"] = Quote("T", D("380.00"))
    book.set_position(Position("A1001", "T", D("100")))
    book.set_fx(FxRate("HKD", "SGD", D("0.1723")))
    result = compute_account(book, "A1001", MM_BUFFER)
    t = next(p for p in result.positions if p.symbol == "T")
    assert t.market_value == D("6547.4000")  # 100 × 380 × 0.1723 exactly
    assert result.im == D("11250.00") + D("6547.4000") * D("0.40")
    # Only the inverse pair given: SGD→HKD 5.8038
    book.fx.clear()
    book.set_fx(FxRate("SGD", "HKD", D("5.8038")))
    result = compute_account(book, "A1001", MM_BUFFER)
    t = next(p for p in result.positions if p.symbol == "T")
    with localcontext(context()):
        assert t.market_value == 100 * D("380.00") * (1 / D("5.8038"))


def test_cash_in_foreign_currency_is_converted() -> None:
    book = seed_book()
    book.set_cash(CashBalance("A1001", "USD", D("1000")))
    book.set_fx(FxRate("USD", "SGD", D("1.3450")))
    result = compute_account(book, "A1001", MM_BUFFER)
    assert result.cash_base == D("-15000.00") + D("1345.0000")
    assert result.equity == D("9500.00") + D("1345.0000")


def test_short_uses_short_ratios_and_reduces_equity() -> None:
    book = Book()
    book.instruments["S"] = instrument(
        "S",
        "0.50",
        "0.30",
        "0.25",
        lot="1",
        short_im_ratio=D("1.50"),
        short_mm_ratio=D("1.30"),
        short_fm_ratio=D("1.20"),
    )
    book.quotes["S"] = Quote("S", D("250"))
    book.accounts["X"] = Account("X", "Short", AccountKind.MARGIN, "SGD", Market.SG)
    book.set_cash(CashBalance("X", "SGD", D("20000")))  # includes the short-sale proceeds
    book.set_position(Position("X", "S", D("-40")))
    result = compute_account(book, "X", MM_BUFFER)
    assert result.short_mv == D("10000")
    assert result.equity == D("10000")  # 20,000 − |−10,000|
    assert result.im == D("15000.00")
    assert result.mm == D("13000.00")
    assert result.fm == D("12000.00")
    assert result.risk_level is RiskLevel.FORCE_CALL
    (line,) = propose_cure(book, "X", MM_BUFFER, open_call=True).lines
    assert line.side is Side.BUY  # a short is bought back, never sold


def test_short_ratios_null_mean_long_ratios() -> None:
    book = seed_book()
    book.set_position(Position("A1001", "B", D("-100")))
    result = compute_account(book, "A1001", MM_BUFFER)
    b = next(p for p in result.positions if p.symbol == "B")
    assert b.ratios.im == D("0.50")


def test_intraday_account_uses_intraday_ratios() -> None:
    book = seed_book()
    book.instruments["B"] = instrument(
        "B",
        "0.50",
        "0.45",
        "0.40",
        intraday_im_ratio=D("0.25"),
        intraday_mm_ratio=D("0.20"),
        intraday_fm_ratio=D("0.15"),
    )
    book.accounts["A1001"] = Account("A1001", "T", AccountKind.INTRADAY, "SGD", Market.SG)
    result = compute_account(book, "A1001", MM_BUFFER)
    assert result.im == D("5000") * D("0.30") + D("19500") * D("0.25")
    assert result.mm == D("5000") * D("0.25") + D("19500") * D("0.20")
    assert result.fm == D("5000") * D("0.20") + D("19500") * D("0.15")


def test_suspended_holdings_reduce_liquid_net_assets() -> None:
    book = seed_book()
    book.instruments["A"] = instrument("A", "0.30", "0.25", "0.20", suspended=True)
    result = compute_account(book, "A1001", MM_BUFFER)
    assert result.illiquid_mv == D("5000.00")
    assert result.liquid_net_assets == D("4500.00")
    # 4,500 ÷ max(4,500, 24,500 − 5,000 + 0)
    with localcontext(context()):
        assert result.net_asset_ratio == D("4500.00") / D("19500.00")
    # A suspended holding cannot be sold: the cure leaves it.
    cure = propose_cure(book, "A1001", MM_BUFFER, open_call=True)
    assert [line.symbol for line in cure.lines] == ["B"]
    assert [line.symbol for line in cure.singles] == ["B"]


def test_net_asset_ratio_undefined_without_exposure_or_assets() -> None:
    book = seed_book()
    book.positions.clear()
    result = compute_account(book, "A1001", MM_BUFFER)
    assert result.net_asset_ratio is None  # debt, nothing held
    assert result.call_amount == D("15000.00")  # 0 + 0 − (−15,000)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda b: b.quotes.pop("B"), "no price for B"),
        (lambda b: b.instruments.pop("B"), "unknown instrument B"),
        (lambda b: b.set_cash(CashBalance("A1001", "JPY", D("1"))), "no fx rate JPY→SGD"),
    ],
)
def test_incomplete_never_safe(mutate: Callable[[Book], object], reason: str) -> None:
    book = seed_book()
    mutate(book)
    result = compute_account(book, "A1001", MM_BUFFER)
    assert result.risk_level is RiskLevel.INCOMPLETE
    assert result.incomplete == reason
    assert not result.in_call
    assert result.call_amount == 0


def test_call_amount_rounds_up_to_minor_unit() -> None:
    assert round_call_amount(D("1015.001"), "SGD") == D("1015.01")
    assert round_call_amount(D("1015"), "SGD") == D("1015.00")
    assert round_call_amount(D("10.2"), "JPY") == D("11")
