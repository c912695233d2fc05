"""Applying the feed's records to the Book, and knowing which accounts they touched.

A snapshot replaces the book; a change set replaces keyed records. The returned set of
account ids is what must be recomputed — nothing else is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from risk_tui.core.model import (
    Account,
    Book,
    Borrow,
    CashBalance,
    CashMovement,
    FxRate,
    Instrument,
    Position,
    Quote,
)


@dataclass
class BookChanges:
    """Validated records of one feed payload (a snapshot or a change set)."""

    cursor: str
    as_of: datetime
    instruments: list[Instrument] = field(default_factory=list)
    quotes: list[Quote] = field(default_factory=list)
    fx: list[FxRate] = field(default_factory=list)
    accounts: list[Account] = field(default_factory=list)
    cash: list[CashBalance] = field(default_factory=list)
    positions: list[Position] = field(default_factory=list)
    borrow: list[Borrow] = field(default_factory=list)
    # Not applied to the book (the cash balances already include them): the desk keeps
    # them apart, per open call (`desk.deposits`).
    cash_movements: list[CashMovement] = field(default_factory=list)

    @property
    def record_count(self) -> int:
        return (
            len(self.instruments)
            + len(self.quotes)
            + len(self.fx)
            + len(self.accounts)
            + len(self.cash)
            + len(self.positions)
            + len(self.borrow)
            + len(self.cash_movements)
        )


def book_from_snapshot(snapshot: BookChanges) -> Book:
    book = Book()
    apply_records(book, snapshot)
    return book


@dataclass(frozen=True)
class Applied:
    """What one payload moved: accounts by their own records, symbols, currencies."""

    accounts: set[str]
    symbols: set[str]
    currencies: set[str]


def apply_records(book: Book, changes: BookChanges) -> Applied:
    """Apply in dependency order; say what moved, without looking for holders."""
    touched: set[str] = set()
    moved_symbols: set[str] = set()
    for instrument in changes.instruments:
        book.instruments[instrument.symbol] = instrument
        moved_symbols.add(instrument.symbol)
    for quote in changes.quotes:
        book.quotes[quote.symbol] = quote
        moved_symbols.add(quote.symbol)
    moved_currencies: set[str] = set()
    for rate in changes.fx:
        book.set_fx(rate)
        moved_currencies.update((rate.from_ccy, rate.to_ccy))
    for account in changes.accounts:
        book.accounts[account.account_id] = account
        touched.add(account.account_id)
    for cash in changes.cash:
        book.set_cash(cash)
        touched.add(cash.account_id)
    for position in changes.positions:
        book.set_position(position)
        touched.add(position.account_id)
    for borrow in changes.borrow:
        book.borrow[borrow.symbol] = borrow
    book.cursor = changes.cursor
    book.as_of = changes.as_of
    return Applied(touched, moved_symbols, moved_currencies)


def exposed_to(book: Book, currencies: set[str]) -> set[str]:
    """Accounts whose base, cash or holdings are in any of the currencies."""
    symbols = {s for s, i in book.instruments.items() if i.currency in currencies}
    exposed = {a.account_id for a in book.accounts.values() if a.base_currency in currencies}
    exposed |= {aid for aid, cash in book.cash.items() if not currencies.isdisjoint(cash)}
    return exposed | book.holders_of(symbols)
