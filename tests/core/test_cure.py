"""The account after trades and the least-value cure (`core.cure`), pinned by the seed
example and checked against an independent brute force over board lots."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from risk_tui.core.cure import (
    CureMethod,
    TradeError,
    TradeLine,
    post_trade,
    propose_cure,
    published_minimum,
)
from risk_tui.core.cure_search import LotItem, least_cost
from risk_tui.core.margin import CallFormula, CallPolicy, MissingData, compute_account
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
from tests.brute_cure import brute_force

MM_BUFFER = CallPolicy(CallFormula.MM_BUFFER, D("0.02"))
IM_FORMULA = CallPolicy(CallFormula.IM)


def instrument(symbol: str, im: str, mm: str, fm: str, **kw: Any) -> Instrument:
    return Instrument(
        symbol=symbol,
        name=symbol,
        market=Market.SG,
        currency=kw.pop("currency", "SGD"),
        lot_size=D(str(kw.pop("lot", "100"))),
        im_ratio=D(im),
        mm_ratio=D(mm),
        fm_ratio=D(fm),
        **kw,
    )


def seed_book() -> Book:
    """SPEC.md's worked example: cash −15,000; A 1,000 @ 5.00; B 1,000 @ 19.50."""
    book = Book()
    book.instruments["A.SG"] = instrument("A.SG", "0.30", "0.25", "0.20")
    book.instruments["B.SG"] = instrument("B.SG", "0.50", "0.45", "0.40")
    book.quotes["A.SG"] = Quote("A.SG", D("5.00"))
    book.quotes["B.SG"] = Quote("B.SG", D("19.50"))
    book.accounts["A1001"] = Account("A1001", "Tan Mei Ling", AccountKind.MARGIN, "SGD", Market.SG)
    book.set_cash(CashBalance("A1001", "SGD", D("-15000.00")))
    book.set_position(Position("A1001", "A.SG", D("1000")))
    book.set_position(Position("A1001", "B.SG", D("1000")))
    return book


# --- after the trades -------------------------------------------------------------------


def test_selling_700_a_leaves_70_to_collect_not_a_cure() -> None:
    """The issue's A1001 case: 700 A.SG "cured alone" by value × IM ratio (1,050 ≥ 1,015),
    but the recomputed call is MM 9,150 + 2 % × 21,000 − 9,500 = 70.00."""
    after = post_trade(seed_book(), "A1001", MM_BUFFER, [TradeLine("A.SG", Side.SELL, D("700"))])
    assert after.before.call_amount == D("1015.00")
    assert after.after.equity == D("9500.00")  # a sale at the last price moves no equity
    assert after.after.mm == D("9150.00")
    assert after.after.gross_mv == D("21000.00")
    assert after.after.call_amount == D("70.00")
    assert not after.meets_call
    assert after.left_to_collect == D("70.00")
    (line,) = after.lines
    assert (line.value, line.relief, line.cures_alone) == (D("3500.00"), D("945"), False)


def test_after_credits_proceeds_and_recomputes_margin() -> None:
    after = post_trade(seed_book(), "A1001", MM_BUFFER, [TradeLine("B.SG", Side.SELL, D("200"))])
    assert after.after.cash == {"SGD": D("-11100.00")}
    assert after.after.mm == D("8270.00")  # 5,000 × 25 % + 15,600 × 45 %
    assert after.after.call_amount == D("0")
    assert after.meets_call
    assert after.lines[0].cures_alone
    assert after.value == D("3900.00")


def test_a_limit_sale_trades_at_its_limit() -> None:
    line = TradeLine("B.SG", Side.SELL, D("100"), limit_price=D("20.00"))
    after = post_trade(seed_book(), "A1001", MM_BUFFER, [line])
    assert after.after.equity == D("9550.00")  # 50 above the last price
    assert after.lines[0].value == D("2000.00")


def test_under_the_im_formula_the_call_is_back_to_im() -> None:
    after = post_trade(seed_book(), "A1001", IM_FORMULA, [TradeLine("A.SG", Side.SELL, D("700"))])
    assert after.before.call_amount == D("1750.00")
    assert after.after.call_amount == D("1750.00") - D("3500") * D("0.30")


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (TradeLine("A.SG", Side.SELL, D("1100")), "more than the 1000 held"),
        (TradeLine("A.SG", Side.BUY, D("100")), "no short position to cover"),
        (TradeLine("Z.SG", Side.SELL, D("100")), "no long position to sell"),
        (TradeLine("A.SG", Side.SELL, D("0")), "more than zero"),
    ],
)
def test_a_line_that_cannot_trade_is_refused(line: TradeLine, words: str) -> None:
    with pytest.raises(TradeError, match=words):
        post_trade(seed_book(), "A1001", MM_BUFFER, [line])


def test_the_desks_book_is_left_as_it_was() -> None:
    book = seed_book()
    post_trade(book, "A1001", MM_BUFFER, [TradeLine("A.SG", Side.SELL, D("700"))])
    propose_cure(book, "A1001", MM_BUFFER, open_call=True)
    assert book.positions["A1001"]["A.SG"].quantity == D("1000")
    assert book.cash["A1001"] == {"SGD": D("-15000.00")}


# --- the cure ---------------------------------------------------------------------------


def test_seed_cure_is_one_lot_of_each_for_2450() -> None:
    """Least value in whole lots: 100 A + 100 B (2,450) beats 200 B (3,900) and 800 A."""
    cure = propose_cure(seed_book(), "A1001", MM_BUFFER, open_call=True)
    assert [(x.symbol, x.side, x.quantity) for x in cure.lines] == [
        ("A.SG", Side.SELL, D("100")),
        ("B.SG", Side.SELL, D("100")),
    ]
    assert cure.value == D("2450.00")
    assert cure.method is CureMethod.EXACT
    assert cure.in_call
    assert cure.meets_call
    assert cure.call_amount == D("1015.00")
    assert cure.after.call_amount == D("0")
    assert cure.after.mm == D("9022.50")
    # On its own: 2 lots of B, or 8 of A (7 leave 70.00).
    assert cure.single("B.SG") == D("200")
    assert cure.single("A.SG") == D("800")


def test_the_published_minimum_is_call_over_im_ratio() -> None:
    cure = propose_cure(seed_book(), "A1001", MM_BUFFER, open_call=True)
    floors = {m.symbol: m.value for m in cure.published_minimum}
    assert floors["B.SG"] == D("2030")
    assert round(floors["A.SG"], 2) == D("3383.33")
    assert published_minimum(compute_account(seed_book(), "A1001", MM_BUFFER)) == (
        cure.published_minimum
    )


def test_not_in_call_proposes_nothing() -> None:
    book = seed_book()
    book.set_cash(CashBalance("A1001", "SGD", D("0")))
    cure = propose_cure(book, "A1001", MM_BUFFER, open_call=False)
    assert not cure.in_call
    assert cure.lines == ()
    assert cure.meets_call
    assert cure.call_amount == D("0")


def test_an_open_call_targets_the_call_amount_whatever_the_equity() -> None:
    """Equity back above MM but not at MM + buffer: the call stays open, and so the cure
    aims at the recomputed amount ≤ 0."""
    book = seed_book()
    book.set_cash(CashBalance("A1001", "SGD", D("-14200.00")))  # equity 10,300 ≥ MM 10,025
    result = compute_account(book, "A1001", MM_BUFFER)
    assert not result.in_call
    assert result.call_amount == D("215.00")
    assert not propose_cure(book, "A1001", MM_BUFFER, open_call=False).in_call
    cure = propose_cure(book, "A1001", MM_BUFFER, open_call=True)
    assert cure.in_call
    assert cure.meets_call
    # 215.00 due: two lots of A (270 off, 1,000) rather than one of B (916.50 off, 1,950).
    assert [(x.symbol, x.quantity) for x in cure.lines] == [("A.SG", D("200"))]


def test_a_debt_with_nothing_left_to_sell_cannot_be_cured() -> None:
    book = seed_book()
    book.set_cash(CashBalance("A1001", "SGD", D("-30000.00")))  # equity −5,500
    cure = propose_cure(book, "A1001", MM_BUFFER, open_call=True)
    assert not cure.meets_call
    assert cure.left_to_collect == D("5500.00")  # everything sold: equity −5,500, MM 0


def test_suspended_holdings_are_left_and_shorts_are_bought_back() -> None:
    book = seed_book()
    book.instruments["C.SG"] = instrument("C.SG", "0.50", "0.45", "0.40", suspended=True)
    book.instruments["S.SG"] = instrument(
        "S.SG", "0.60", "0.55", "0.50", short_im_ratio=D("0.80"), short_mm_ratio=D("0.70")
    )
    book.quotes["C.SG"] = Quote("C.SG", D("2.00"))
    book.quotes["S.SG"] = Quote("S.SG", D("10.00"))
    book.set_position(Position("A1001", "C.SG", D("500")))
    book.set_position(Position("A1001", "S.SG", D("-300")))
    cure = propose_cure(book, "A1001", MM_BUFFER, open_call=True)
    assert "C.SG" not in {x.symbol for x in cure.lines}
    sides = {x.symbol: x.side for x in cure.lines}
    assert sides.get("S.SG", Side.BUY) is Side.BUY  # a short is never sold
    assert cure.meets_call
    brute = brute_force(book, "A1001", MM_BUFFER)
    assert brute.least_value == cure.value


def test_working_orders_count_as_traded() -> None:
    working = [TradeLine("B.SG", Side.SELL, D("100"))]
    cure = propose_cure(seed_book(), "A1001", MM_BUFFER, open_call=True, pending=working)
    # 100 B already working takes 916.50 off the 1,015.00: one lot of A finishes it.
    assert [(x.symbol, x.quantity) for x in cure.lines] == [("A.SG", D("100"))]
    assert cure.after.call_amount == D("0")
    assert cure.before.call_amount == D("1015.00")


def test_incomplete_figures_are_refused() -> None:
    book = seed_book()
    del book.quotes["B.SG"]
    with pytest.raises(MissingData, match=r"no price for B\.SG"):
        propose_cure(book, "A1001", MM_BUFFER, open_call=True)


def greedy_trap() -> Book:
    """A lot of A takes 40 % of its value off the call, a lot of B 37.5 %: cure per dollar
    says A first, and two lots of A (600) cure where one falls short; swapping one of
    them for B does not help. The least value is one lot of B (400)."""
    book = Book()
    book.instruments["A.SG"] = instrument("A.SG", "0.50", "0.38", "0.30", lot=100)
    book.instruments["B.SG"] = instrument("B.SG", "0.50", "0.355", "0.30", lot=100)
    book.quotes["A.SG"] = Quote("A.SG", D("3.00"))  # a lot: 300, takes 120 off
    book.quotes["B.SG"] = Quote("B.SG", D("4.00"))  # a lot: 400, takes 150 off
    book.accounts["P1"] = Account("P1", "P", AccountKind.MARGIN, "SGD", Market.SG)
    book.set_position(Position("P1", "A.SG", D("200")))
    book.set_position(Position("P1", "B.SG", D("100")))
    # MM 228 + 142 = 370, buffer 2 % × 1,000 = 20: at equity 240, 150 is due.
    book.set_cash(CashBalance("P1", "SGD", D("-760.00")))
    return book


def test_a_greedy_trap_is_solved_exactly() -> None:
    book = greedy_trap()
    exact = propose_cure(book, "P1", MM_BUFFER, open_call=True)
    assert exact.call_amount == D("150.00")
    assert [(x.symbol, x.quantity) for x in exact.lines] == [("B.SG", D("100"))]
    assert (exact.value, exact.method) == (D("400.00"), CureMethod.EXACT)
    greedy = propose_cure(book, "P1", MM_BUFFER, open_call=True, exact_limit=0)
    assert greedy.method is CureMethod.GREEDY
    assert greedy.meets_call
    assert greedy.value == D("600.00")  # what a search that is not exact sells


def test_foreign_holdings_are_valued_in_the_base_currency() -> None:
    book = seed_book()
    book.instruments["H.HK"] = instrument("H.HK", "0.40", "0.35", "0.30", currency="HKD", lot=500)
    book.quotes["H.HK"] = Quote("H.HK", D("8.00"))
    book.set_fx(FxRate("HKD", "SGD", D("0.1723")))
    book.set_position(Position("A1001", "H.HK", D("2000")))
    book.set_cash(CashBalance("A1001", "SGD", D("-18000.00")))
    cure = propose_cure(book, "A1001", MM_BUFFER, open_call=True)
    assert cure.meets_call
    assert brute_force(book, "A1001", MM_BUFFER).least_value == cure.value
    sold = post_trade(book, "A1001", MM_BUFFER, [TradeLine("H.HK", Side.SELL, D("500"))])
    assert sold.after.cash["HKD"] == D("4000.00")  # credited in the instrument's currency
    assert sold.lines[0].value == D("689.2000")


# --- against the brute force ------------------------------------------------------------

CURRENCIES = ("SGD", "HKD", "USD")
RATES = {("HKD", "SGD"): D("0.1723"), ("USD", "SGD"): D("1.3450"), ("USD", "HKD"): D("7.8050")}


@st.composite
def small_accounts(draw: st.DrawFn) -> tuple[Book, CallPolicy]:
    book = Book()
    for (a, b), rate in RATES.items():
        book.set_fx(FxRate(a, b, rate))
    base = draw(st.sampled_from(CURRENCIES))
    kind = draw(st.sampled_from([AccountKind.MARGIN, AccountKind.INTRADAY]))
    book.accounts["P1"] = Account("P1", "P", kind, base, Market.SG)
    for i in range(draw(st.integers(1, 4))):
        symbol = f"S{i}"
        lot = draw(st.sampled_from(["1", "10", "100", "500"]))
        fm, mm, im = sorted(draw(st.lists(st.integers(5, 90), min_size=3, max_size=3)))
        short = draw(st.booleans()) and i > 0
        book.instruments[symbol] = instrument(
            symbol,
            str(D(im) / 100),
            str(D(mm) / 100),
            str(D(fm) / 100),
            currency=draw(st.sampled_from(CURRENCIES)),
            lot=lot,
            suspended=draw(st.integers(0, 9)) == 0,
            short_mm_ratio=D(mm + 5) / 100 if short else None,
            intraday_mm_ratio=D(mm) / 200 if kind is AccountKind.INTRADAY else None,
        )
        price = draw(st.decimals(min_value=D("0.5"), max_value=D("80"), places=2))
        book.quotes[symbol] = Quote(symbol, price)
        lots = draw(st.integers(1, 5))
        odd = draw(st.sampled_from([0, 0, 3]))
        quantity = D(lots) * D(lot) + odd
        book.set_position(Position("P1", symbol, -quantity if short else quantity))
    cash = draw(st.decimals(min_value=D("-60000"), max_value=D("5000"), places=2))
    book.set_cash(CashBalance("P1", base, cash))
    formula = draw(st.sampled_from([CallFormula.MM_BUFFER, CallFormula.IM]))
    buffer = draw(st.sampled_from(["0", "0.02", "0.05"]))
    return book, CallPolicy(formula, D(buffer))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_accounts())
@example((greedy_trap(), MM_BUFFER))  # a greedy fill sells 600 here, not 400
def test_the_cure_agrees_with_a_brute_force_over_board_lots(drawn: tuple[Book, CallPolicy]) -> None:
    book, policy = drawn
    if compute_account(book, "P1", policy).incomplete is not None:
        return
    cure = propose_cure(book, "P1", policy, open_call=True)
    brute = brute_force(book, "P1", policy)
    assert cure.method is CureMethod.EXACT
    if brute.least_value is None:  # nothing cures: everything is traded, the rest said
        assert not cure.meets_call
        assert cure.left_to_collect == brute.left_after_everything
    else:
        assert cure.meets_call
        assert cure.after.call_amount == 0
        # The least value, to a hundredth of the minor unit (the search's tolerance).
        assert brute.least_value <= cure.value <= brute.least_value + D("0.0001")
    # Never more than held, whole lots, a short only bought back, suspended left alone.
    for line in cure.lines:
        position = book.positions["P1"][line.symbol]
        instrument_ = book.instruments[line.symbol]
        assert line.quantity <= abs(position.quantity)
        assert line.quantity % instrument_.lot_size == 0
        assert line.side is (Side.SELL if position.quantity > 0 else Side.BUY)
        assert not instrument_.suspended


# --- the search on its own ----------------------------------------------------------------


def brute_lots(items: list[LotItem], need: int) -> int | None:
    best: int | None = None

    def walk(i: int, gain: int, cost: int) -> None:
        nonlocal best
        if i == len(items):
            if gain >= need and (best is None or cost < best):
                best = cost
            return
        for k in range(items[i].count + 1):
            walk(i + 1, gain + k * items[i].gain, cost + k * items[i].cost)

    walk(0, 0, 0)
    return best


lot_items = st.lists(
    st.builds(LotItem, st.integers(1, 60), st.integers(1, 60), st.integers(1, 4)),
    min_size=1,
    max_size=5,
)


@settings(max_examples=400, deadline=None)
@given(lot_items, st.integers(1, 400))
def test_branch_and_bound_is_least(items: list[LotItem], need: int) -> None:
    choice = least_cost(items, need, exact=True)
    best = brute_lots(items, need)
    if best is None:
        assert not choice.feasible
        assert choice.lots == tuple(item.count for item in items)
    else:
        assert choice.feasible
        assert choice.proven
        assert choice.cost == best
        assert choice.gain >= need
    greedy = least_cost(items, need, exact=False)
    assert greedy.feasible == (best is not None)
    assert all(0 <= k <= item.count for k, item in zip(greedy.lots, items, strict=True))


def test_out_of_steps_says_not_proven() -> None:
    items = [
        LotItem(85, 87, 3),
        LotItem(61, 63, 8),
        LotItem(68, 65, 8),
        LotItem(71, 73, 8),
        LotItem(82, 82, 7),
        LotItem(92, 90, 5),
    ]
    cut_short = least_cost(items, 790, exact=True, step_limit=20)
    assert cut_short.feasible
    assert not cut_short.proven
    complete = least_cost(items, 790, exact=True)
    assert complete.proven
    assert complete.cost == brute_lots(items, 790) == 769 < cut_short.cost
