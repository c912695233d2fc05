"""Domain types of the book: instruments, quotes, fx, accounts, cash, positions, borrow,
and the cash movements (deposits and withdrawals) the feed reports once each.

These are the feed's records after validation, in the desk's words. They are immutable;
the Book holds the latest of each keyed record.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum


class Market(StrEnum):
    HK = "HK"
    SG = "SG"
    US = "US"


class AccountKind(StrEnum):
    MARGIN = "margin"
    INTRADAY = "intraday"  # 日內融: intraday financing, its own ratios
    CASH = "cash"  # no financing: never in margin call


class Side(StrEnum):
    SELL = "sell"  # reduce a long
    BUY = "buy"  # cover a short


@dataclass(frozen=True, slots=True)
class Instrument:
    symbol: str
    name: str
    market: Market
    currency: str
    lot_size: Decimal
    im_ratio: Decimal
    mm_ratio: Decimal
    fm_ratio: Decimal
    short_im_ratio: Decimal | None = None
    short_mm_ratio: Decimal | None = None
    short_fm_ratio: Decimal | None = None
    intraday_im_ratio: Decimal | None = None
    intraday_mm_ratio: Decimal | None = None
    intraday_fm_ratio: Decimal | None = None
    suspended: bool = False
    delisted: bool = False


@dataclass(frozen=True, slots=True)
class Quote:
    symbol: str
    price: Decimal
    ts: datetime | None = None


@dataclass(frozen=True, slots=True)
class FxRate:
    from_ccy: str
    to_ccy: str
    rate: Decimal


@dataclass(frozen=True, slots=True)
class Contact:
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class Account:
    account_id: str
    client_name: str
    kind: AccountKind
    base_currency: str
    market: Market
    contact: Contact = field(default_factory=Contact)
    # The client's language for messages as the feed gave it (FEED.md: optional, BCP 47,
    # kept as sent; `core.messages.choose_language` reads it). None: the market's default.
    language: str | None = None


@dataclass(frozen=True, slots=True)
class CashBalance:
    account_id: str
    currency: str
    balance: Decimal


class MovementKind(StrEnum):
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"


@dataclass(frozen=True, slots=True)
class CashMovement:
    """Money the client moved in or out (FEED.md `cash_movements`), sent once by the feed.

    Not a keyed record of the book: the `cash` balance already includes it. It is what
    lets a call be met by deposit (`core.deposits`).
    """

    movement_id: str
    account_id: str
    currency: str
    amount: Decimal  # positive
    kind: MovementKind
    ts: datetime

    @property
    def signed_amount(self) -> Decimal:
        """In the movement's currency: + for a deposit, − for a withdrawal."""
        return self.amount if self.kind is MovementKind.DEPOSIT else -self.amount


@dataclass(frozen=True, slots=True)
class Position:
    account_id: str
    symbol: str
    quantity: Decimal  # negative for a short
    avg_cost: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Borrow:
    symbol: str
    available: Decimal
    recall_quantity: Decimal
    recall_due: date | None
    rate: Decimal | None


@dataclass
class Book:
    """The latest state of every keyed record, as the feed last described it.

    Mutable on purpose: the poller applies changes in place and reports which
    accounts they touched, so only those are recomputed.
    """

    instruments: dict[str, Instrument] = field(default_factory=dict)
    quotes: dict[str, Quote] = field(default_factory=dict)
    fx: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    accounts: dict[str, Account] = field(default_factory=dict)
    cash: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    positions: dict[str, dict[str, Position]] = field(default_factory=dict)
    borrow: dict[str, Borrow] = field(default_factory=dict)
    as_of: datetime | None = None
    cursor: str | None = None
    # The short holders, kept by `set_position`, so the Short positions tab never scans
    # millions of positions: symbol → {account: quantity short (positive)}, and the total.
    shorts: dict[str, dict[str, Decimal]] = field(default_factory=dict, compare=False, repr=False)
    short_totals: dict[str, Decimal] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Positions handed to the constructor are indexed once, here.
        self.shorts = {}
        self.short_totals = {}
        for holdings in self.positions.values():
            for position in holdings.values():
                if position.quantity < 0:
                    self._index_short(position)

    def set_cash(self, record: CashBalance) -> None:
        self.cash.setdefault(record.account_id, {})[record.currency] = record.balance

    def set_position(self, record: Position) -> None:
        holdings = self.positions.setdefault(record.account_id, {})
        previous = holdings.get(record.symbol)
        # is_signed, not `< 0`: this runs for every position of a 2M-position snapshot.
        if previous is not None and previous.quantity.is_signed():
            self._unindex_short(previous)
        quantity = record.quantity
        if quantity == 0:
            holdings.pop(record.symbol, None)
        else:
            holdings[record.symbol] = record
            if quantity.is_signed():
                self._index_short(record)

    def _index_short(self, position: Position) -> None:
        quantity = -position.quantity
        holders = self.shorts.setdefault(position.symbol, {})
        before = holders.get(position.account_id)
        holders[position.account_id] = quantity
        total = self.short_totals.get(position.symbol, Decimal(0))
        self.short_totals[position.symbol] = total + quantity - (before or 0)

    def _unindex_short(self, position: Position) -> None:
        holders = self.shorts.get(position.symbol)
        if holders is None or position.account_id not in holders:
            return
        quantity = holders.pop(position.account_id)
        if holders:
            self.short_totals[position.symbol] -= quantity
        else:
            del self.shorts[position.symbol]
            del self.short_totals[position.symbol]

    def set_fx(self, record: FxRate) -> None:
        self.fx[(record.from_ccy, record.to_ccy)] = record.rate

    def holders_of(self, symbols: Iterable[str]) -> set[str]:
        """Accounts holding any of the symbols: the ones a price change can move."""
        wanted = set(symbols)
        return {
            account_id
            for account_id, holdings in self.positions.items()
            if not wanted.isdisjoint(holdings)
        }
