"""Short positions: the book's short index, the per-stock overview, and the allocation of a
recall shortfall across clients (examples worked by hand, and properties)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from risk_tui.config import ConfigError, load_settings
from risk_tui.core.margin import CallPolicy, compute_account
from risk_tui.core.model import (
    Account,
    AccountKind,
    Book,
    Borrow,
    CashBalance,
    FxRate,
    Instrument,
    Market,
    Position,
    Quote,
)
from risk_tui.core.shorts import (
    AllocationRule,
    ShortHolder,
    allocate,
    allocation_order,
    margin_deficit,
    short_detail,
    short_holders,
    short_overview,
    summarize,
    whole_lots_up,
)

# --- a small desk -------------------------------------------------------------------------


def instrument(symbol: str, currency: str, lot: str, market: Market = Market.US) -> Instrument:
    return Instrument(symbol, f"{symbol} Co", market, currency, D(lot), D("0.5"), D("0.3"),
                      D("0.25"), short_im_ratio=D("1.5"), short_mm_ratio=D("1.3"),
                      short_fm_ratio=D("1.2"))  # fmt: skip


def desk() -> Book:
    """TSLA.US: three clients short 40 + 300 + 60 = 400 against 150 available → shortfall
    250. 0700.HK: one client short, no borrow record. B.SG: held long only."""
    book = Book()
    for item in (
        instrument("TSLA.US", "USD", "1"),
        instrument("0700.HK", "HKD", "100", Market.HK),
        instrument("B.SG", "SGD", "100", Market.SG),
    ):
        book.instruments[item.symbol] = item
    for symbol, price in (("TSLA.US", "250"), ("0700.HK", "380"), ("B.SG", "19.50")):
        book.quotes[symbol] = Quote(symbol, D(price))
    book.set_fx(FxRate("USD", "SGD", D("1.3450")))
    book.set_fx(FxRate("HKD", "SGD", D("0.1723")))
    book.set_fx(FxRate("USD", "HKD", D("7.8050")))
    for account_id, ccy, market in (
        ("U1", "USD", Market.US),  # deep in call
        ("H1", "HKD", Market.HK),  # the largest deficit, once converted into SGD
        ("S1", "SGD", Market.SG),  # safe
    ):
        book.accounts[account_id] = Account(account_id, f"client {account_id}",
                                            AccountKind.MARGIN, ccy, market)  # fmt: skip
    # U1: short 40 TSLA = 10,000 USD, MM 13,000; cash 22,000 → equity 12,000: deficit 1,000 USD
    book.set_cash(CashBalance("U1", "USD", D("22000")))
    book.set_position(Position("U1", "TSLA.US", D("-40")))
    # H1: short 300 TSLA = 75,000 USD = 585,375 HKD, MM 760,987.5; cash 760,000 HKD →
    # equity 174,625: deficit 586,362.5 HKD = 101,030.26 SGD (the largest once converted)
    book.set_cash(CashBalance("H1", "HKD", D("760000")))
    book.set_position(Position("H1", "TSLA.US", D("-300")))
    # S1: short 60 TSLA = 15,000 USD = 20,175 SGD with 100,000 SGD: safe, deficit 0.
    book.set_cash(CashBalance("S1", "SGD", D("100000")))
    book.set_position(Position("S1", "TSLA.US", D("-60")))
    book.set_position(Position("S1", "0700.HK", D("-200")))
    book.set_position(Position("S1", "B.SG", D("500")))  # a long: not in the index
    book.borrow["TSLA.US"] = Borrow("TSLA.US", D("150"), D("2000"), date(2026, 11, 25),
                                    D("0.035"))  # fmt: skip
    return book


def results(book: Book) -> dict[str, Any]:
    return {a: compute_account(book, a, CallPolicy()) for a in book.accounts}


# --- the index ----------------------------------------------------------------------------


def brute_force(book: Book) -> tuple[dict[str, dict[str, D]], dict[str, D]]:
    shorts: dict[str, dict[str, D]] = {}
    for holdings in book.positions.values():
        for p in holdings.values():
            if p.quantity < 0:
                shorts.setdefault(p.symbol, {})[p.account_id] = -p.quantity
    return shorts, {s: sum(h.values(), D(0)) for s, h in shorts.items()}


def test_the_index_follows_every_kind_of_position_change() -> None:
    book = desk()
    assert book.shorts["TSLA.US"] == {"U1": D(40), "H1": D(300), "S1": D(60)}
    assert book.short_totals["TSLA.US"] == D(400)
    book.set_position(Position("U1", "TSLA.US", D("-10")))  # partly covered
    assert book.short_totals["TSLA.US"] == D(370)
    book.set_position(Position("S1", "TSLA.US", D("5")))  # flipped long
    assert "S1" not in book.shorts["TSLA.US"]
    assert book.short_totals["TSLA.US"] == D(310)
    book.set_position(Position("S1", "0700.HK", D("0")))  # closed: the stock leaves
    assert "0700.HK" not in book.shorts
    assert "0700.HK" not in book.short_totals
    assert "B.SG" not in book.shorts
    assert (book.shorts, book.short_totals) == brute_force(book)


def test_a_book_built_with_positions_indexes_them() -> None:
    positions = {"X": {"T": Position("X", "T", D("-7"))}, "Y": {"T": Position("Y", "T", D("3"))}}
    book = Book(positions=positions)
    assert book.shorts == {"T": {"X": D(7)}}
    assert book.short_totals == {"T": D(7)}


changes = st.lists(
    st.tuples(
        st.sampled_from(["A", "B", "C", "D"]),
        st.sampled_from(["S1", "S2", "S3"]),
        st.integers(min_value=-500, max_value=500),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(changes)
def test_the_index_always_equals_a_scan_of_every_position(
    steps: list[tuple[str, str, int]],
) -> None:
    book = Book()
    for account_id, symbol, quantity in steps:
        book.set_position(Position(account_id, symbol, D(quantity)))
        assert (book.shorts, book.short_totals) == brute_force(book)


# --- the overview -------------------------------------------------------------------------


class Untouchable(dict[str, Any]):
    """A positions table that fails the test if anyone scans it."""

    def _scan(self, *args: Any) -> Any:
        raise AssertionError("the overview scanned every position")

    values = items = keys = __iter__ = get = __getitem__ = _scan


def test_the_overview_per_stock_reads_the_index_not_the_positions() -> None:
    book = desk()
    book.positions = Untouchable(book.positions)
    lines = {line.symbol: line for line in short_overview(book, "SGD")}
    assert set(lines) == {"TSLA.US", "0700.HK"}
    tsla = lines["TSLA.US"]
    assert (tsla.short_quantity, tsla.clients, tsla.shortfall) == (D(400), 3, D(250))
    assert tsla.borrow is not None
    assert tsla.borrow.recall_quantity == D(2000)
    assert tsla.shortfall_value == D(250) * D(250) * D("1.3450")  # 84,062.50 SGD
    hk = lines["0700.HK"]
    assert hk.borrow is None
    assert hk.shortfall is None
    assert hk.shortfall_value is None
    assert hk.lot_size == D(100)


def test_the_summary_counts_shortfalls_unknowns_and_recalls() -> None:
    book = desk()
    book.borrow["B.SG"] = Borrow("B.SG", D(0), D(0), None, None)
    book.set_position(Position("S1", "B.SG", D("-100")))
    del book.fx[("USD", "SGD")]  # TSLA's shortfall cannot be valued in SGD now
    book.set_fx(FxRate("SGD", "USD", D("0.5")))  # …unless by the inverse pair
    summary = summarize(short_overview(book, "SGD"), "SGD")
    assert (summary.symbols, summary.with_shortfall, summary.without_borrow) == (3, 2, 1)
    assert summary.recalled == 1
    assert summary.shortfall_value == D(250) * D(250) * 2 + D(100) * D("19.50")
    del book.fx[("SGD", "USD")]
    summary = summarize(short_overview(book, "SGD"), "SGD")
    assert summary.unvalued == ("TSLA.US",)
    assert summary.shortfall_value == D(1950)


def test_no_shorts_no_rows() -> None:
    book = Book()
    book.set_position(Position("A", "X", D(100)))
    assert short_overview(book, "SGD") == ()
    assert summarize((), "SGD").symbols == 0


# --- the clients of a stock ---------------------------------------------------------------


def test_deficits_are_compared_in_the_reporting_currency() -> None:
    book = desk()
    margins = results(book)
    assert margin_deficit(margins["U1"]) == D(1000)
    assert margin_deficit(margins["S1"]) == D(0)
    holders = {h.account_id: h for h in short_holders(book, margins, {}, "TSLA.US", "SGD")}
    assert holders["U1"].deficit_reporting == D(1000) * D("1.3450")
    assert holders["H1"].deficit == margins["H1"].mm - margins["H1"].equity
    assert holders["H1"].deficit_reporting == holders["H1"].deficit * D("0.1723")
    assert holders["S1"].deficit_reporting == D(0)
    order = allocation_order(holders.values(), AllocationRule.LARGEST_DEFICIT)
    assert [h.account_id for h in order] == ["H1", "U1", "S1"]


def test_a_client_without_figures_ranks_after_every_known_deficit_and_says_why() -> None:
    book = desk()
    margins = results(book)
    del book.quotes["0700.HK"]  # S1 cannot be valued any more
    margins["S1"] = compute_account(book, "S1", CallPolicy())
    book.set_position(Position("GHOST", "TSLA.US", D("-500")))  # an account never described
    holders = short_holders(book, margins, {}, "TSLA.US", "SGD")
    order = allocation_order(holders, AllocationRule.LARGEST_DEFICIT)
    assert [h.account_id for h in order] == ["H1", "U1", "GHOST", "S1"]
    why = {h.account_id: h.unknown for h in holders}
    assert why["S1"] is not None
    assert "no price for 0700.HK" in why["S1"]
    assert why["GHOST"] == "the feed has not described this account"
    assert margin_deficit(margins["S1"]) is None


def test_the_recall_shortfall_is_allocated_largest_deficit_first_in_whole_lots() -> None:
    book = desk()
    detail = short_detail(book, results(book), {}, "TSLA.US", AllocationRule.LARGEST_DEFICIT,
                          "SGD")  # fmt: skip
    assert detail is not None
    got = [(a.holder.account_id, a.suggested) for a in detail.allocations]
    # 250 to buy back: H1 (the largest deficit) is short 300, so it alone gives the 250.
    assert got == [("H1", D(250)), ("U1", D(0)), ("S1", D(0))]
    assert detail.suggested_total == D(250)
    assert detail.covered is True


def test_lots_round_up_but_never_beyond_a_clients_short() -> None:
    holders = [
        ShortHolder("A", D(250), deficit_reporting=D(900)),  # 2½ lots: the half is a close-out
        ShortHolder("B", D(1000), deficit_reporting=D(500)),
        ShortHolder("C", D(400), deficit_reporting=D(500)),  # same deficit, smaller short
    ]
    got = allocate(holders, D(420), D(100), AllocationRule.LARGEST_DEFICIT)
    assert [(a.holder.account_id, a.suggested) for a in got] == [
        ("A", D(250)),  # all of it: 300 would be more than it is short
        ("B", D(200)),  # 170 still missing → 2 whole lots
        ("C", D(0)),
    ]
    by_size = allocate(holders, D(420), D(100), AllocationRule.LARGEST_POSITION)
    assert [(a.holder.account_id, a.suggested) for a in by_size] == [
        ("B", D(500)), ("C", D(0)), ("A", D(0)),
    ]  # fmt: skip
    pro_rata = allocate(holders, D(420), D(100), AllocationRule.PRO_RATA)
    # shares of 420: B 1000/1650 → 254.5… → 300; C 101.8… → 200; A 63.6… → 100
    assert [(a.holder.account_id, a.suggested) for a in pro_rata] == [
        ("B", D(300)), ("C", D(200)), ("A", D(100)),
    ]  # fmt: skip


def test_no_or_unknown_shortfall_suggests_nothing() -> None:
    holders = [ShortHolder("A", D(100), deficit_reporting=D(1))]
    for shortfall in (None, D(0)):
        for rule in AllocationRule:
            assert [a.suggested for a in allocate(holders, shortfall, D(1), rule)] == [D(0)]
    book = desk()
    detail = short_detail(book, results(book), {}, "0700.HK", AllocationRule.LARGEST_DEFICIT,
                          "SGD")  # fmt: skip
    assert detail is not None
    assert detail.covered is None
    assert detail.suggested_total == 0
    assert short_detail(book, {}, {}, "NOBODY", AllocationRule.PRO_RATA, "SGD") is None


def test_whole_lots_up() -> None:
    assert whole_lots_up(D(1), D(100)) == D(100)
    assert whole_lots_up(D(100), D(100)) == D(100)
    assert whole_lots_up(D(101), D(100)) == D(200)
    assert whole_lots_up(D("0.5"), D(0)) == D(1)  # a lot of 0 is taken as 1


# --- properties of the allocation ---------------------------------------------------------


@st.composite
def allocations_case(draw: st.DrawFn) -> tuple[list[ShortHolder], D, D]:
    lot = D(draw(st.sampled_from([1, 10, 100, 1000])))
    count = draw(st.integers(min_value=1, max_value=12))
    holders = []
    for index in range(count):
        lots = draw(st.integers(min_value=0, max_value=30))
        odd = draw(st.integers(min_value=0, max_value=int(lot) - 1)) if lot > 1 else 0
        quantity = D(lots) * lot + D(odd)
        if quantity == 0:
            quantity = lot
        deficit = draw(st.one_of(st.none(), st.decimals(min_value=0, max_value=10**6, places=2)))
        holders.append(ShortHolder(f"C{index:02d}", quantity, deficit_reporting=deficit))
    total = sum((h.short_quantity for h in holders), D(0))
    shortfall = D(draw(st.integers(min_value=0, max_value=int(total) + 500)))
    return holders, shortfall, lot


@settings(max_examples=400, deadline=None)
@given(allocations_case(), st.sampled_from(list(AllocationRule)))
def test_allocations_cover_the_shortfall_within_each_short_in_the_rules_order(
    case: tuple[list[ShortHolder], D, D], rule: AllocationRule
) -> None:
    holders, shortfall, lot = case
    total = sum((h.short_quantity for h in holders), D(0))
    got = allocate(holders, shortfall, lot, rule)
    assert sorted(a.holder.account_id for a in got) == sorted(h.account_id for h in holders)
    suggested = sum((a.suggested for a in got), D(0))
    for a in got:
        # never beyond the client's short; whole lots, or the whole short (a close-out)
        assert 0 <= a.suggested <= a.holder.short_quantity
        assert a.suggested % lot == 0 or a.suggested == a.holder.short_quantity
    if shortfall <= total:
        assert suggested >= shortfall  # coverable: covered
    else:
        assert suggested == total  # not coverable: everyone gives everything
    if rule is AllocationRule.PRO_RATA:
        for a in got:
            share = shortfall * a.holder.short_quantity / total
            assert a.suggested >= min(share, a.holder.short_quantity)
        return
    # the rule's order: a client is asked for anything only once everyone before it gives
    # its whole short, and never more than one lot beyond what is missing
    order = [a.holder for a in got]
    assert order == allocation_order(holders, rule)
    for before, after in pairwise(got):
        if after.suggested > 0:
            assert before.suggested == before.holder.short_quantity
    if 0 < shortfall <= total:
        assert suggested < shortfall + lot
    keys = [
        (h.deficit_reporting is None, -(h.deficit_reporting or 0), -h.short_quantity)
        if rule is AllocationRule.LARGEST_DEFICIT
        else (-h.short_quantity,)
        for h in order
    ]
    assert keys == sorted(keys)


# --- the broker's rule in the config ------------------------------------------------------


def test_the_allocation_rule_is_configured_and_checked(tmp_path: Path) -> None:
    assert load_settings(None, env={}, discover=False).shorts.allocation is (
        AllocationRule.LARGEST_DEFICIT
    )
    chosen = tmp_path / "risk-tui.toml"
    chosen.write_text('[shorts]\nallocation = "pro_rata"\n')
    assert load_settings(chosen, env={}).shorts.allocation is AllocationRule.PRO_RATA
    env = {"RISK_TUI_SHORTS__ALLOCATION": "largest_position"}
    assert load_settings(None, env=env, discover=False).shorts.allocation is (
        AllocationRule.LARGEST_POSITION
    )
    chosen.write_text('[shorts]\nallocation = "smallest_first"\n')
    with pytest.raises(ConfigError) as refused:
        load_settings(chosen, env={})
    line = str(refused.value)
    assert "\n" not in line
    assert str(chosen) in line
    assert "shorts.allocation" in line
    assert "smallest_first" in line
    assert "largest_deficit" in line
