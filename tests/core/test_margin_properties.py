"""Property tests: the engine agrees with a plain Decimal reference written from SPEC.md."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal, localcontext

from hypothesis import given, settings
from hypothesis import strategies as st

from risk_tui.core.margin import CallFormula, CallPolicy, RiskLevel, compute_account
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
)
from risk_tui.core.money import context

CURRENCIES = ("SGD", "HKD", "USD")
RATES = {
    ("HKD", "SGD"): Decimal("0.1723"),
    ("USD", "SGD"): Decimal("1.3450"),
    ("USD", "HKD"): Decimal("7.8050"),
}

TOLERANCE = Decimal("1e-30")

money = st.decimals(min_value=-(10**7), max_value=10**7, places=2, allow_nan=False)
price = st.decimals(min_value=Decimal("0.001"), max_value=10**4, places=3, allow_nan=False)
quantity = st.integers(min_value=-50_000, max_value=50_000).filter(bool).map(Decimal)
ratio = st.integers(min_value=0, max_value=100).map(lambda n: Decimal(n) / 100)


@st.composite
def ratios(draw: st.DrawFn) -> tuple[Decimal, Decimal, Decimal]:
    values = sorted(draw(st.lists(ratio, min_size=3, max_size=3)))
    return values[2], values[1], values[0]  # im ≥ mm ≥ fm


@dataclass
class Holding:
    symbol: str
    currency: str
    quantity: Decimal
    price: Decimal
    long: tuple[Decimal, Decimal, Decimal]
    short: tuple[Decimal, Decimal, Decimal] | None
    intraday: tuple[Decimal, Decimal, Decimal] | None


# An account as drawn: base currency, kind, cash balances, holdings.
Drawn = tuple[str, AccountKind, dict[str, Decimal], list[Holding]]


@st.composite
def accounts(draw: st.DrawFn) -> Drawn:
    base = draw(st.sampled_from(CURRENCIES))
    kind = draw(st.sampled_from([AccountKind.MARGIN, AccountKind.INTRADAY]))
    cash = draw(st.dictionaries(st.sampled_from(CURRENCIES), money, max_size=3))
    holdings = [
        Holding(
            f"S{i}",
            draw(st.sampled_from(CURRENCIES)),
            draw(quantity),
            draw(price),
            draw(ratios()),
            draw(st.none() | ratios()),
            draw(st.none() | ratios()),
        )
        for i in range(draw(st.integers(0, 6)))
    ]
    return base, kind, cash, holdings


def reference(
    base: str,
    kind: AccountKind,
    cash: dict[str, Decimal],
    holdings: list[Holding],
    policy: CallPolicy,
) -> dict[str, object]:
    """SPEC.md, line by line, with no shared code."""

    def rate(frm: str) -> Decimal:
        if frm == base:
            return Decimal(1)
        if (frm, base) in RATES:
            return RATES[(frm, base)]
        return 1 / RATES[(base, frm)]

    with localcontext(context()):
        equity = sum((bal * rate(ccy) for ccy, bal in cash.items()), Decimal(0))
        im = mm = fm = gross = Decimal(0)
        for h in holdings:
            mv = h.quantity * h.price * rate(h.currency)
            equity += mv  # long adds, short (negative MV) subtracts |MV|
            gross += abs(mv)
            if kind is AccountKind.INTRADAY and h.intraday is not None:
                r = h.intraday
            elif kind is not AccountKind.INTRADAY and h.quantity < 0 and h.short is not None:
                r = h.short
            else:
                r = h.long
            im += abs(mv) * r[0]
            mm += abs(mv) * r[1]
            fm += abs(mv) * r[2]
        raw = (
            im - equity
            if policy.formula is CallFormula.IM
            else (mm + policy.buffer_pct * gross - equity)
        )
        call = raw.quantize(Decimal("0.01"), rounding=ROUND_CEILING) if raw > 0 else Decimal(0)
        level = (
            "safe"
            if equity >= im
            else "watch"
            if equity >= mm
            else "margin_call"
            if equity >= fm
            else "force_call"
        )
    return {"equity": equity, "im": im, "mm": mm, "fm": fm, "call": call, "level": level}


def build(base: str, kind: AccountKind, cash: dict[str, Decimal], holdings: list[Holding]) -> Book:
    book = Book()
    book.accounts["X"] = Account("X", "x", kind, base, Market.SG)
    for (frm, to), value in RATES.items():
        book.set_fx(FxRate(frm, to, value))
    for ccy, bal in cash.items():
        book.set_cash(CashBalance("X", ccy, bal))
    for h in holdings:
        i, s, d = h.long, h.short, h.intraday
        book.instruments[h.symbol] = Instrument(
            h.symbol,
            h.symbol,
            Market.SG,
            h.currency,
            Decimal(100),
            i[0],
            i[1],
            i[2],
            *(s if s else (None, None, None)),
            *(d if d else (None, None, None)),
        )
        book.quotes[h.symbol] = Quote(h.symbol, h.price)
        book.set_position(Position("X", h.symbol, h.quantity))
    return book


policies = st.sampled_from(
    [
        CallPolicy(CallFormula.MM_BUFFER, Decimal("0.02")),
        CallPolicy(CallFormula.MM_BUFFER, Decimal("0")),
        CallPolicy(CallFormula.IM),
    ]
)


@settings(max_examples=400, deadline=None)
@given(accounts(), policies)
def test_engine_matches_reference(account: Drawn, policy: CallPolicy) -> None:
    result = compute_account(build(*account), "X", policy)
    expected = reference(*account, policy)
    # Exact, except that an inverse fx rate (1 / 7.8050) does not terminate: both sides
    # carry it to 40 significant digits, and summing in another order may move the last.
    for name in ("equity", "im", "mm", "fm"):
        assert abs(getattr(result, name) - expected[name]) <= TOLERANCE, name
    assert result.call_amount == expected["call"]
    assert str(result.risk_level) == expected["level"]


@settings(max_examples=300, deadline=None)
@given(accounts(), policies)
def test_call_amount_never_negative_and_above_mm_never_in_call(
    account: Drawn,
    policy: CallPolicy,
) -> None:
    result = compute_account(build(*account), "X", policy)
    assert result.call_amount >= 0
    if result.equity >= result.mm:
        assert not result.in_call
        assert result.risk_level in (RiskLevel.SAFE, RiskLevel.WATCH)
    if result.in_call:
        assert result.call_amount > 0  # below MM there is always something to collect
