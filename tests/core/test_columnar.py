"""The columnar book decides exactly what the Decimal reference (`compute_account`) decides.

For every account: the same risk level, the same call amount (to the minor unit, no
tolerance) and the same incompleteness. Equity, IM, MM, FM and the other figures are
digit for digit the reference's when no inverse fx rate is involved, and within the
reference's own 40-significant-digit precision when one is (1/7.8050 does not
terminate: see the module doc of risk_tui.core.columnar_scales).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from risk_tui.core.book import book_from_snapshot
from risk_tui.core.columnar import LEVELS, ColumnarBook
from risk_tui.core.margin import (
    AccountMargin,
    CallFormula,
    CallPolicy,
    MarginFigures,
    MissingData,
    RiskLevel,
    compute_account,
    fx_rate,
)
from risk_tui.core.model import (
    Account,
    AccountKind,
    Book,
    Instrument,
    Market,
    Position,
    Quote,
)
from risk_tui.feed.models import parse_payload
from risk_tui.sim.generator import generate_book
from risk_tui.sim.seed import SEED_ACCOUNT, seed_book
from risk_tui.sim.store import SimBook

NOW = datetime.fromisoformat("2026-11-23T10:15:00+08:00")
D = Decimal

DESK_POLICIES = {
    Market.SG: CallPolicy(CallFormula.MM_BUFFER, D("0.02")),
    Market.US: CallPolicy(CallFormula.MM_BUFFER, D("0.02")),
    Market.HK: CallPolicy(CallFormula.IM),
}


def desk(lists: dict[str, list[dict[str, Any]]]) -> Book:
    """The book as the desk builds it from a FEED.md snapshot."""
    parsed = parse_payload({"cursor": "1", "as_of": NOW.isoformat(), **lists})
    assert parsed.rejected == []
    return book_from_snapshot(parsed.changes)


def policy_of(book: Book, account_id: str, policies: dict[Market, CallPolicy]) -> CallPolicy:
    return policies[book.accounts[account_id].market]


def assert_same_as_reference(
    columns: ColumnarBook, book: Book, policies: dict[Market, CallPolicy]
) -> dict[str, AccountMargin]:
    """Every account of the book, against `compute_account` on the same book."""
    assert columns.account_ids == list(book.accounts)
    results = {}
    shown = columns.display(np.arange(len(columns.account_ids), dtype=np.int64))
    for row, account_id in enumerate(columns.account_ids):
        expected = compute_account(book, account_id, policy_of(book, account_id, policies))
        results[account_id] = expected
        where = f"{account_id}: {expected}"
        # What a warning row shows: the reference's figures, digit for digit where the
        # account has no inverse fx; none for an incomplete account.
        row_figures, reference = shown[row], MarginFigures.of(expected)
        assert row_figures.risk_level is reference.risk_level, where
        assert row_figures.call_amount == reference.call_amount, where
        assert row_figures.holds_positions == reference.holds_positions, where
        if expected.incomplete is not None or columns.figures(account_id).exact:
            assert row_figures == reference, where
        else:
            # Through an inverse rate: the columns' floors, a few units of 10**-σ below.
            unit = D(1).scaleb(-columns.scales.base)
            for name in ("equity", "im", "mm", "fm"):
                below = getattr(reference, name) - getattr(row_figures, name)
                assert -unit < below < 4 * unit, (name, below, where)
        assert columns.risk_level(account_id) is expected.risk_level, where
        assert LEVELS[int(columns.level_codes[row])] is expected.risk_level, where
        assert columns.call_amount(account_id) == expected.call_amount, where
        assert (columns.risk_level(account_id) is RiskLevel.INCOMPLETE) == (
            expected.incomplete is not None
        ), where
        figures = columns.figures(account_id)
        assert figures.call_amount == expected.call_amount, where
        assert figures.risk_level is expected.risk_level, where
        names = (
            *("equity", "im", "mm", "fm", "cash_base", "long_mv", "short_mv", "gross_mv"),
            *("illiquid_mv", "liquid_net_assets"),
        )
        if figures.exact:
            for name in names:
                assert getattr(figures, name) == getattr(expected, name), (name, where)
            if columns.in_columns[row]:
                # The vectorised columns hold the same exact figures at 10**-σ.
                sigma = columns.scales.base
                for name in ("equity", "im", "mm", "fm"):
                    column = getattr(columns, name)
                    value = D(int(column[row])).scaleb(-sigma)
                    assert value == getattr(expected, name), (name, where)
        else:
            # Inverse fx: both sides carry 1/rate at 40 significant digits.
            size = (abs(expected.gross_mv) + abs(expected.cash_base) + 1) * 20
            for name in names:
                difference = abs(getattr(figures, name) - getattr(expected, name))
                assert difference <= size * D("1e-36"), (name, difference, where)
            if columns.in_columns[row]:
                # The columns hold floors: below the true figures by less than one unit
                # of 10**-σ per inverse-rate currency (at most three here).
                unit = D(1).scaleb(-columns.scales.base)
                for name in ("equity", "im", "mm", "fm"):
                    below = getattr(expected, name) - D(int(getattr(columns, name)[row])) * unit
                    assert -unit < below < 3 * unit + unit, (name, below, where)
    return results


# -- the worked example -----------------------------------------------------------------


def test_the_worked_example_to_the_cent() -> None:
    book = desk(seed_book())
    columns = ColumnarBook.from_book(book, DESK_POLICIES)
    assert_same_as_reference(columns, book, DESK_POLICIES)
    a1001 = columns.figures(SEED_ACCOUNT)
    assert (a1001.cash_base, a1001.long_mv, a1001.equity) == (D(-15000), D(24500), D(9500))
    assert (a1001.im, a1001.mm) == (D(11250), D(10025))
    assert a1001.call_amount == D("1015.00")
    assert str(a1001.call_amount) == "1015.00"
    assert a1001.risk_level is RiskLevel.MARGIN_CALL
    assert a1001.exact
    assert not a1001.by_reference
    # SPEC.md: the Hong Kong pages call back to initial margin, 1,750 on the same example.
    im_formula = ColumnarBook.from_book(book, CallPolicy(CallFormula.IM))
    assert im_formula.call_amount(SEED_ACCOUNT) == D("1750.00")
    # The rest of the seed desk: HK back to IM, a US short in force call converting HKD
    # cash through the inverse of USD/HKD, an account with no quote.
    assert columns.call_amount("H2001") == D("22000.00")
    assert columns.risk_level("U3001") is RiskLevel.FORCE_CALL
    assert not columns.figures("U3001").exact  # 1 / 7.8050
    assert columns.risk_level("I7001") is RiskLevel.INCOMPLETE
    assert columns.materialize("I7001").incomplete == "no price for NOQ.SG"
    assert columns.stats().by_reference == 0


# -- random books -----------------------------------------------------------------------

CURRENCIES = ("SGD", "HKD", "USD", "JPY")  # JPY: no minor unit


def decimals(low: int, high: int, places: int) -> st.SearchStrategy[Decimal]:
    return st.integers(low * 10**places, high * 10**places).map(lambda n: D(n).scaleb(-places))


def amounts(high: int, places: st.SearchStrategy[int]) -> st.SearchStrategy[Decimal]:
    return places.flatmap(lambda p: decimals(-high, high, p))


# Mostly the feed's precision; now and then finer (a larger scale) or too fine for any
# scale (off scale: the reference decides those accounts).
price_places = st.sampled_from([2, 3, 3, 3, 3, 3, 3, 3, 0, 4, 7])
rate_places = st.sampled_from([4, 4, 4, 4, 4, 4, 4, 4, 2, 6, 9])
ratio_places = st.sampled_from([2, 2, 2, 2, 2, 2, 2, 2, 1, 3, 6])
cash_places = st.sampled_from([2, 2, 2, 2, 2, 2, 2, 2, 0, 3, 5])


@st.composite
def prices(draw: st.DrawFn) -> Decimal:
    if draw(st.integers(0, 30)) == 0:
        return D(0)
    places = draw(price_places)
    high = draw(st.sampled_from([20, 200, 200, 2_000]))
    return draw(decimals(0, high, places).filter(lambda p: p > 0))


@st.composite
def ratio_triples(draw: st.DrawFn) -> tuple[Decimal, Decimal, Decimal]:
    if draw(st.integers(0, 8)) == 0:
        return D("1.00"), D("1.00"), D("1.00")  # not marginable: equity = IM ties
    places = draw(ratio_places)
    values = sorted(draw(st.lists(decimals(0, 2, places), min_size=3, max_size=3)))
    return values[2], values[1], values[0]


def rates() -> st.SearchStrategy[Decimal]:
    highs = st.sampled_from([2, 10, 10, 150])
    return st.tuples(rate_places, highs).flatmap(lambda ph: decimals(0, ph[1], ph[0]))


@dataclass
class RandomDesk:
    book: Book
    policies: dict[Market, CallPolicy]


@st.composite
def random_desks(draw: st.DrawFn) -> RandomDesk:
    book = Book()
    # fx: each pair quoted one way, the other, both, or not at all.
    for i, a in enumerate(CURRENCIES):
        for b in CURRENCIES[i + 1 :]:
            how = draw(st.sampled_from(["direct", "inverse", "both", "inverse", "direct", "none"]))
            rate = draw(rates().filter(bool))
            if how in ("direct", "both"):
                book.fx[(a, b)] = rate
            if how in ("inverse", "both"):
                other = draw(rates().filter(bool))
                book.fx[(b, a)] = other if how == "both" else rate
    symbols = [f"S{i}" for i in range(draw(st.integers(1, 7)))]
    for symbol in symbols:
        if draw(st.integers(0, 25)) == 0:
            continue  # held but unknown: incomplete
        im, mm, fm = draw(ratio_triples())
        short = draw(st.none() | ratio_triples()) or (None, None, None)
        day = draw(st.none() | ratio_triples()) or (None, None, None)
        book.instruments[symbol] = Instrument(
            symbol,
            symbol,
            draw(st.sampled_from(list(Market))),
            draw(st.sampled_from(CURRENCIES)),
            D(100),
            im,
            mm,
            fm,
            short_im_ratio=short[0],
            short_mm_ratio=short[1],
            short_fm_ratio=short[2],
            intraday_im_ratio=day[0],
            intraday_mm_ratio=day[1],
            intraday_fm_ratio=day[2],
            suspended=draw(st.integers(0, 8)) == 0,
            delisted=draw(st.integers(0, 12)) == 0,
        )
        if draw(st.integers(0, 20)) > 0:
            book.quotes[symbol] = Quote(symbol, draw(prices()))
    for n in range(draw(st.integers(1, 6))):
        account_id = f"X{n}"
        kind = draw(st.sampled_from([AccountKind.MARGIN] * 3 + list(AccountKind)))
        base = draw(st.sampled_from(CURRENCIES))
        market = draw(st.sampled_from(list(Market)))
        book.accounts[account_id] = Account(account_id, account_id, kind, base, market)
        for currency in draw(st.lists(st.sampled_from(CURRENCIES), max_size=3, unique=True)):
            size = draw(st.sampled_from([10**4, 10**6, 10**6, 10**7]))
            book.cash.setdefault(account_id, {})[currency] = draw(amounts(size, cash_places))
        whale = draw(st.integers(0, 40)) == 0  # beyond the int64 bounds: the reference
        held = draw(st.lists(st.sampled_from(symbols), max_size=5, unique=True))
        for symbol in held:
            size = draw(st.sampled_from([100, 5_000, 5_000, 50_000]))
            quantity = D(draw(st.integers(-size, size).filter(bool)))
            if draw(st.integers(0, 15)) == 0:
                quantity = quantity / 8  # fractional: 3 places, more than the cap
            elif draw(st.integers(0, 15)) == 0:
                quantity = quantity / 2
            if whale:
                quantity *= 10**14
            book.positions.setdefault(account_id, {})[symbol] = Position(
                account_id, symbol, quantity
            )
        if draw(st.booleans()):
            # Geared: a debit of 30–90 % of the holdings' value, so equity lands near
            # IM, MM and FM (where watch, margin_call and force_call are decided).
            value = D(0)
            for position in book.positions.get(account_id, {}).values():
                instrument = book.instruments.get(position.symbol)
                quote = book.quotes.get(position.symbol)
                if instrument is None or quote is None:
                    continue
                try:
                    rate = fx_rate(book, instrument.currency, base)
                except MissingData:
                    continue
                value += position.quantity * quote.price * rate
            gearing = D(draw(st.integers(30, 90))) / 100
            debit = (value * gearing).quantize(D("0.01"))
            book.cash.setdefault(account_id, {})[base] = -debit
    buffers = st.sampled_from([D("0.02"), D("0"), D("0.025"), D("0.1")])
    policies = {
        market: CallPolicy(draw(st.sampled_from(list(CallFormula))), draw(buffers))
        for market in Market
    }
    return RandomDesk(book, policies)


@st.composite
def polls(draw: st.DrawFn, symbols: list[str]) -> list[tuple[str, Decimal | None]]:
    """Quote updates: a new price, or (rarely) the quote gone."""
    if not symbols:
        return []
    chosen = draw(st.lists(st.sampled_from(symbols), max_size=len(symbols), unique=True))
    return [(s, None if draw(st.integers(0, 12)) == 0 else draw(prices())) for s in chosen]


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_desks(), st.data())
def test_random_books_equal_the_reference_before_and_after_polls(
    random_desk: RandomDesk, data: st.DataObject
) -> None:
    book, policies = random_desk.book, random_desk.policies
    columns = ColumnarBook.from_book(book, policies)
    assert_same_as_reference(columns, book, policies)
    # What the examples exercise (pytest --hypothesis-show-statistics).
    for account_id in columns.account_ids:
        figures = columns.figures(account_id)
        if figures.risk_level is RiskLevel.INCOMPLETE:
            event("has an incomplete account")
        elif figures.by_reference:
            event("has an account decided by the reference")
        else:
            how = "exact" if figures.exact else "through an inverse rate"
            event(f"the columns decide an account {how}")
            event(f"the columns decide an account {how}: {figures.risk_level}")

    for _ in range(data.draw(st.integers(1, 3))):
        changes = data.draw(polls(sorted(book.instruments)))
        before = {s: book.quotes.get(s) for s, _ in changes}
        for symbol, price in changes:
            if price is None:
                book.quotes.pop(symbol, None)
            else:
                book.quotes[symbol] = Quote(symbol, price)
        moved_fx = data.draw(st.integers(0, 4)) == 0 and bool(book.fx)
        if moved_fx:
            pair = data.draw(st.sampled_from(sorted(book.fx)))
            book.fx[pair] = data.draw(rates())
        done = columns.recompute([s for s, _ in changes], fx=moved_fx)
        # Exactly the holders of the symbols whose quote changed (or every account the
        # fx move could reach), no fewer.
        changed = {s for s, _ in changes if before[s] != book.quotes.get(s)}
        assert set(done.account_ids) >= book.holders_of(changed) & set(book.accounts)
        if not moved_fx:
            assert set(done.account_ids) <= book.holders_of(changed)
        assert_same_as_reference(columns, book, policies)

    # The incremental state is the state a fresh build computes.
    fresh = ColumnarBook.from_book(book, policies)
    assert np.array_equal(fresh.level_codes, columns.level_codes)
    assert np.array_equal(fresh.call_minor, columns.call_minor)


# -- the paths an account can take ------------------------------------------------------


def _inverse_desk(**cash: str) -> Book:
    """A USD account holding an SGD stock, SGD/USD quoted only as USD→SGD 1.3450."""
    lists = seed_book()
    lists["accounts"].append(
        {"account_id": "T1", "client_name": "t", "kind": "margin", "base_currency": "USD",
         "market": "US", "contact": {}}
    )  # fmt: skip
    lists["instruments"].append(
        {"symbol": "Z.SG", "name": "z", "market": "SG", "currency": "SGD", "lot_size": "100",
         "im_ratio": "1.00", "mm_ratio": "1.00", "fm_ratio": "1.00"}
    )  # fmt: skip
    lists["quotes"].append({"symbol": "Z.SG", "price": "3.21"})
    lists["positions"].append({"account_id": "T1", "symbol": "Z.SG", "quantity": "700"})
    for currency, balance in cash.items():
        lists["cash"].append({"account_id": "T1", "currency": currency, "balance": balance})
    return desk(lists)


def test_a_tie_through_an_inverse_rate_goes_to_the_reference() -> None:
    # 700 × 3.21 / 1.3450 of a 100 %-ratio stock and no cash: equity = IM exactly in
    # truth; only the reference can say which side its 40 digits fall on.
    book = _inverse_desk()
    columns = ColumnarBook.from_book(book, DESK_POLICIES)
    row = columns.row_of("T1")
    assert row is not None
    assert columns.by_reference[row]
    assert_same_as_reference(columns, book, DESK_POLICIES)
    # Away from the tie the columns decide it themselves.
    book = _inverse_desk(USD="-0.01")
    columns = ColumnarBook.from_book(book, DESK_POLICIES)
    row = columns.row_of("T1")
    assert row is not None
    assert not columns.by_reference[row]
    assert columns.risk_level("T1") is RiskLevel.FORCE_CALL
    assert_same_as_reference(columns, book, DESK_POLICIES)


def test_a_call_on_the_cent_through_an_inverse_rate_is_the_references() -> None:
    # IM formula, HKD base: IM 5,000 − equity 4,900 is exactly 100.00, and the SGD holding
    # (100 at 0.01, 100 % ratios, SGD→HKD only as the inverse of 0.1723) adds exactly 0 to
    # IM − equity. The reference adds it to equity and to IM at 40 digits each, and its
    # rounding leaves IM − equity a hair above 100.00: it asks 100.01. Equal means equal
    # to the reference, so the columns must hand this account to it.
    book = Book()
    book.fx[("HKD", "SGD")] = D("0.1723")
    book.instruments["H"] = Instrument(
        "H", "H", Market.HK, "HKD", D(100), D("0.5"), D("0.4"), D("0.3")
    )
    book.instruments["S"] = Instrument("S", "S", Market.SG, "SGD", D(100), D(1), D(1), D(1))
    book.quotes["H"] = Quote("H", D("10.00"))
    book.quotes["S"] = Quote("S", D("0.01"))
    book.accounts["T"] = Account("T", "t", AccountKind.MARGIN, "HKD", Market.HK)
    book.cash["T"] = {"HKD": D("-5100.00")}
    book.positions["T"] = {"H": Position("T", "H", D(1000)), "S": Position("T", "S", D(100))}
    policies = {market: CallPolicy(CallFormula.IM) for market in Market}
    assert compute_account(book, "T", policies[Market.HK]).call_amount == D("100.01")
    columns = ColumnarBook.from_book(book, policies)
    assert columns.call_amount("T") == D("100.01")
    assert columns.by_reference[columns.row_of("T")]
    assert_same_as_reference(columns, book, policies)


def test_off_scale_inputs_go_to_the_reference_and_come_back() -> None:
    book = desk(seed_book())
    columns = ColumnarBook.from_book(book, DESK_POLICIES)
    book.quotes["B.SG"] = Quote("B.SG", D("19.4999999"))  # 7 places: beyond the price cap
    done = columns.recompute(["B.SG"])
    assert set(done.account_ids) == {SEED_ACCOUNT, "D4001"}
    rows = [columns.row_of(SEED_ACCOUNT), columns.row_of("D4001")]
    assert None not in rows
    assert columns.by_reference[[row for row in rows if row is not None]].all()
    assert_same_as_reference(columns, book, DESK_POLICIES)
    book.quotes["B.SG"] = Quote("B.SG", D("19.50"))
    columns.recompute(["B.SG"])
    assert columns.stats().by_reference == 0
    assert columns.call_amount(SEED_ACCOUNT) == D("1015.00")


def test_a_missing_quote_is_incomplete_until_it_arrives() -> None:
    book = desk(seed_book())
    columns = ColumnarBook.from_book(book, DESK_POLICIES)
    assert columns.risk_level("I7001") is RiskLevel.INCOMPLETE
    book.quotes["NOQ.SG"] = Quote("NOQ.SG", D("0.150"))
    assert columns.recompute(["NOQ.SG"]).account_ids == ["I7001"]
    assert columns.risk_level("I7001") is RiskLevel.FORCE_CALL  # −100 + 75 < FM
    del book.quotes["B.SG"]
    columns.recompute(["B.SG"])
    assert columns.risk_level(SEED_ACCOUNT) is RiskLevel.INCOMPLETE
    assert_same_as_reference(columns, book, DESK_POLICIES)


def test_changed_records_are_decided_by_the_reference() -> None:
    book = desk(seed_book())
    columns = ColumnarBook.from_book(book, DESK_POLICIES)
    # A deposit (cash record) and a suspension (instrument record) the columns never read.
    book.cash[SEED_ACCOUNT]["SGD"] = D("-14000.00")
    instrument = book.instruments["0700.HK"]
    book.instruments["0700.HK"] = replace(instrument, suspended=True)
    done = columns.recompute(["0700.HK"], accounts=[SEED_ACCOUNT, "NEW1"])
    assert set(done.account_ids) == {SEED_ACCOUNT, "H2001"}
    assert columns.call_amount(SEED_ACCOUNT) == D("15.00")
    assert_same_as_reference(columns, book, DESK_POLICIES)
    book.accounts["NEW1"] = replace(book.accounts[SEED_ACCOUNT], account_id="NEW1")
    assert columns.recompute(accounts=["NEW1"]).outside == ("NEW1",)


# -- a generated desk under a sell-off --------------------------------------------------


@pytest.fixture(scope="module")
def generated() -> SimBook:
    return generate_book(3_000, 11, as_of=NOW)


def test_a_generated_desk_through_a_selloff(generated: SimBook) -> None:
    book = desk(generated.as_lists())
    columns = ColumnarBook.from_book(book, DESK_POLICIES)
    assert columns.stats().inverse_fx_accounts > 1_000  # inverse fx is the common case
    rng = np.random.default_rng(3)
    symbols = sorted(book.quotes)
    in_call = [len(columns.rows_in_call())]
    for _ in range(5):
        moved = rng.choice(len(symbols), size=len(symbols) // 10, replace=False)
        for index in moved.tolist():
            quote = book.quotes[symbols[index]]
            fall = D(int(rng.integers(900, 1000))) / 1000
            book.quotes[quote.symbol] = Quote(
                quote.symbol, (quote.price * fall).quantize(D("0.001"))
            )
        columns.recompute([symbols[i] for i in moved.tolist()])
        in_call.append(len(columns.rows_in_call()))
    assert in_call[-1] > in_call[0]  # the sell-off puts accounts into call
    assert_same_as_reference(columns, book, DESK_POLICIES)
    # The fast path decided them: none needed the reference.
    assert columns.stats().by_reference == 0
