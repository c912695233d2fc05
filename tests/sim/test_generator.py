"""The book generator: deterministic, FEED.md-valid record by record, shaped like a real desk."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest

from risk_tui.core.book import book_from_snapshot
from risk_tui.core.margin import CallFormula, CallPolicy, compute_account
from risk_tui.core.model import AccountKind, Book
from risk_tui.feed.models import parse_payload
from risk_tui.sim.generator import MIN_SYMBOLS, generate_book
from risk_tui.sim.seed import SEED_ACCOUNT, seed_book
from risk_tui.sim.store import SimBook
from risk_tui.sim.ticks import round_to_tick
from tests.sim.helpers import NOW, margins

ACCOUNTS = 2_000
SEED_SYMBOLS = {i["symbol"] for i in seed_book()["instruments"]}
SEED_ACCOUNTS = {a["account_id"] for a in seed_book()["accounts"]}


@pytest.fixture(scope="module")
def book() -> SimBook:
    return generate_book(ACCOUNTS, 7, as_of=NOW)


@pytest.fixture(scope="module")
def desk(book: SimBook) -> Book:
    parsed = parse_payload({"cursor": "1", "as_of": NOW.isoformat(), **book.as_lists()})
    assert parsed.rejected == []
    return book_from_snapshot(parsed.changes)


def test_same_seed_same_book_byte_for_byte(book: SimBook) -> None:
    again = generate_book(ACCOUNTS, 7, as_of=NOW)
    assert again.tables == book.tables
    other = generate_book(ACCOUNTS, 8, as_of=NOW)
    assert other.tables["positions"] != book.tables["positions"]


def test_every_record_validates_and_the_seed_desk_is_unchanged(book: SimBook) -> None:
    lists = book.as_lists()
    parsed = parse_payload({"cursor": "1", "as_of": NOW.isoformat(), **lists})
    assert parsed.rejected == []
    assert parsed.changes.record_count == sum(len(records) for records in lists.values())
    for name, records in seed_book().items():
        for record in records:
            assert record in lists[name], (name, record)


def test_the_worked_example_still_calls_1015(desk: Book) -> None:
    assert compute_account(desk, SEED_ACCOUNT, CallPolicy()).call_amount == Decimal("1015.00")
    hk = compute_account(desk, "H2001", CallPolicy(CallFormula.IM))
    assert hk.call_amount == Decimal("22000.00")


def test_counts_are_those_of_a_real_desk(desk: Book) -> None:
    generated = {s: i for s, i in desk.instruments.items() if s not in SEED_SYMBOLS}
    assert len(generated) == ACCOUNTS // 40
    by_market = Counter(str(i.market) for i in generated.values())
    assert min(by_market.values()) >= 10, by_market
    assert all(
        i.currency == {"HK": "HKD", "SG": "SGD", "US": "USD"}[i.market] for i in generated.values()
    )
    hk_lots = {i.lot_size for i in generated.values() if i.market == "HK"}
    assert hk_lots <= {Decimal(n) for n in (100, 200, 250, 300, 400, 500, 1000, 2000)}
    assert len(hk_lots) > 1
    assert {i.lot_size for i in generated.values() if i.market == "SG"} == {Decimal(100)}
    assert {i.lot_size for i in generated.values() if i.market == "US"} == {Decimal(1)}
    assert any(i.short_mm_ratio is not None for i in generated.values())
    assert any(i.short_mm_ratio is None for i in generated.values())
    assert any(i.intraday_mm_ratio is not None for i in generated.values())
    assert any(i.suspended for i in generated.values())
    assert any(i.delisted for i in generated.values())

    accounts = {a: x for a, x in desk.accounts.items() if a not in SEED_ACCOUNTS}
    assert len(accounts) == ACCOUNTS
    kinds = Counter(a.kind for a in accounts.values())
    assert 0.03 <= kinds[AccountKind.INTRADAY] / ACCOUNTS <= 0.08, kinds
    assert 0.01 <= kinds[AccountKind.CASH] / ACCOUNTS <= 0.06, kinds
    home = {"HK": "HKD", "SG": "SGD", "US": "USD"}
    matching = sum(1 for a in accounts.values() if a.base_currency == home[a.market])
    assert matching / ACCOUNTS >= 0.85

    margin_ids = [a for a, x in accounts.items() if x.kind is AccountKind.MARGIN]
    held = [len(desk.positions.get(a, {})) for a in margin_ids]
    assert 7 <= sum(held) / len(held) <= 13
    debits = sum(1 for a in margin_ids if sum(desk.cash[a].values()) < 0)
    assert debits / len(margin_ids) >= 0.6  # most margin clients are financed


def test_shorts_have_borrow_with_room_to_spare(desk: Book) -> None:
    short: Counter[str] = Counter()
    positions = [p for holdings in desk.positions.values() for p in holdings.values()]
    for position in positions:
        if position.quantity < 0:
            short[position.symbol] += int(-position.quantity)
            assert desk.accounts[position.account_id].kind is AccountKind.MARGIN
    assert sum(1 for p in positions if p.quantity < 0) / len(positions) >= 0.01
    for symbol, total in short.items():
        borrow = desk.borrow[symbol]
        assert borrow.available >= total, symbol
        if symbol not in SEED_SYMBOLS:
            assert borrow.recall_quantity == 0
            assert borrow.recall_due is None
            assert borrow.rate is not None
            assert 0 < borrow.rate < 1


def test_a_few_accounts_start_below_maintenance(desk: Book) -> None:
    figures = margins(desk)
    incomplete = [a for a, m in figures.items() if m.incomplete]
    assert incomplete == ["I7001"]  # the seed's unquoted holding; every fx pair is there
    share = sum(1 for m in figures.values() if m.in_call) / len(figures)
    assert 0.005 <= share <= 0.025, share
    assert any(
        str(m.risk_level) == "force_call" for a, m in figures.items() if a not in SEED_ACCOUNTS
    )


def test_generated_accounts_hold_no_seed_symbols(desk: Book) -> None:
    for account_id, holdings in desk.positions.items():
        if account_id not in SEED_ACCOUNTS:
            assert not SEED_SYMBOLS & set(holdings), account_id


def test_prices_sit_on_the_exchange_tick_grid(desk: Book) -> None:
    for symbol, quote in desk.quotes.items():
        if symbol in SEED_SYMBOLS:
            continue
        milli = int(quote.price * 1000)
        assert milli == quote.price * 1000
        assert round_to_tick(str(desk.instruments[symbol].market), milli / 1000) == milli, symbol
        assert quote.ts == NOW


def test_size_scales_and_zero_is_the_seed_desk() -> None:
    assert generate_book(0, 1).as_lists() == SimBook.from_records(seed_book()).as_lists()
    small = generate_book(100, 1)
    assert small.count("instruments") == len(SEED_SYMBOLS) + MIN_SYMBOLS
    assert small.count("accounts") == 100 + len(SEED_ACCOUNTS)
    with pytest.raises(ValueError, match="accounts must be ≥ 0"):
        generate_book(-1, 1)
    assert generate_book(10, -3).count("accounts") == 10 + len(SEED_ACCOUNTS)
