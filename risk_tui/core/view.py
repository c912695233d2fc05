"""The published desk view: warning rows and totals, immutable, what the UI and report show.

Totals across base currencies are converted into the desk's reporting currency with the
feed's fx rates; a call whose currency cannot be converted is counted apart, never
silently left out of a total.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from risk_tui.core.lifecycle import MarginCall
from risk_tui.core.margin import AccountMargin, MissingData, fx_rate
from risk_tui.core.model import AccountKind, Book
from risk_tui.core.money import ZERO


@dataclass(frozen=True, slots=True)
class WarningRow:
    """One open call with the account's latest figures (None until first computed)."""

    call: MarginCall
    margin: AccountMargin | None
    long_outstanding: bool

    @property
    def account_id(self) -> str:
        return self.call.account_id

    @property
    def intraday(self) -> bool:
        return self.call.kind is AccountKind.INTRADAY

    def elapsed(self, now: datetime) -> timedelta:
        return now - self.call.triggered_at


@dataclass(frozen=True, slots=True)
class IncompleteRow:
    account_id: str
    client_name: str
    reason: str


@dataclass(frozen=True, slots=True)
class Totals:
    currency: str
    call_amount: Decimal
    long_outstanding_amount: Decimal
    count: int
    unconverted: tuple[str, ...] = ()  # call ids whose currency has no fx into `currency`


@dataclass(frozen=True, slots=True)
class DeskView:
    as_of: datetime | None
    cursor: str | None
    stale: bool
    warnings: tuple[WarningRow, ...]
    incomplete: tuple[IncompleteRow, ...]
    totals: Totals
    rejected_records: int = 0
    notes: tuple[str, ...] = field(default=())
    intraday_totals: Totals | None = None  # live (not exception) intraday calls only
    live_totals: Totals | None = None  # calls on the live list: every open call but exceptions
    exception_totals: Totals | None = None  # calls an operator marked as exceptions


def compute_totals(rows: tuple[WarningRow, ...], book: Book, reporting_currency: str) -> Totals:
    total = ZERO
    long_total = ZERO
    unconverted: list[str] = []
    for row in rows:
        try:
            rate = fx_rate(book, row.call.currency, reporting_currency)
        except MissingData:
            unconverted.append(row.call.call_id)
            continue
        amount = row.call.call_amount * rate
        total += amount
        if row.long_outstanding:
            long_total += amount
    return Totals(reporting_currency, total, long_total, len(rows), tuple(unconverted))
