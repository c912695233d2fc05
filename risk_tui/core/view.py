"""The published desk view: warning rows and totals, immutable, what the UI and report show.

Totals across base currencies are converted into the desk's reporting currency with the
feed's fx rates; a call whose currency cannot be converted is counted apart, never
silently left out of a total. Each row carries the same conversion (`reporting_rate`,
and its call amount converted once), so what a sort or a total compares across
currencies is the desk's own figure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from risk_tui.core.lifecycle import MarginCall
from risk_tui.core.margin import MarginFigures, MissingData, RiskLevel, fx_rate
from risk_tui.core.model import AccountKind, Book, Market
from risk_tui.core.money import ZERO, context

_EXACT = context()  # the margin engine's arithmetic, for the conversions below


def reporting_rate(book: Book, currency: str, reporting_currency: str) -> Decimal | None:
    """The feed's fx rate from `currency` into the reporting currency; None without one."""
    try:
        return fx_rate(book, currency, reporting_currency)
    except MissingData:
        return None


def in_reporting(amount: Decimal | None, rate: Decimal | None) -> Decimal | None:
    """`amount` in the reporting currency, unrounded (None: no amount, or no fx rate)."""
    if amount is None or rate is None:
        return None
    return _EXACT.multiply(amount, rate)


@dataclass(frozen=True, slots=True)
class WarningRow:
    """One open call with the account's latest figures (None while they are unknown): the
    columns' or the reference's, the same numbers either way.

    While the account's figures cannot be computed, `margin` is at level INCOMPLETE with
    no figures, `incomplete` says why, and `last_figures` are the last complete figures
    the desk published for it (None if it never had any): shown, marked as not current.
    `reporting_rate` converts the call's currency into the desk's reporting currency
    (None: the feed has no such rate), and `call_amount_reporting` is the call amount so
    converted, once.
    """

    call: MarginCall
    margin: MarginFigures | None
    long_outstanding: bool
    planned: bool = False  # an auto-liquidation is scheduled for the call
    reporting_rate: Decimal | None = None
    call_amount_reporting: Decimal | None = None
    incomplete: str | None = None
    last_figures: MarginFigures | None = None

    @property
    def account_id(self) -> str:
        return self.call.account_id

    @property
    def intraday(self) -> bool:
        return self.call.kind is AccountKind.INTRADAY

    @property
    def risk_level(self) -> RiskLevel:
        """The level the row shows: its figures' (INCOMPLETE when they cannot be computed),
        else the call's as last decided."""
        return self.margin.risk_level if self.margin is not None else self.call.risk_level

    @property
    def figures_current(self) -> bool:
        """False while the account's figures cannot be computed (or are not known yet):
        what the row shows is the last known, not now."""
        return self.margin is not None and self.margin.risk_level is not RiskLevel.INCOMPLETE

    @property
    def shown_figures(self) -> MarginFigures | None:
        """The figures the row shows: the current ones, else the last complete ones."""
        return self.margin if self.figures_current else self.last_figures

    def in_reporting(self, amount: Decimal | None) -> Decimal | None:
        """A figure of this row (in the call's currency) in the reporting currency."""
        return in_reporting(amount, self.reporting_rate)

    def elapsed(self, now: datetime) -> timedelta:
        return now - self.call.triggered_at


@dataclass(frozen=True, slots=True)
class IncompleteRow:
    """A monitored account whose figures cannot be computed (a price or fx rate is
    missing), and why: shown as incomplete, never as safe."""

    account_id: str
    client_name: str
    reason: str
    kind: AccountKind
    market: Market
    currency: str  # the account's base currency
    open_call: bool = False  # the account has an open call: its row is the call's


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
    """Call amounts summed exactly per currency, then each sum converted once."""
    return _Sums().add_all(rows).totals(book, reporting_currency)


@dataclass(frozen=True, slots=True)
class DeskTotals:
    every: Totals
    live: Totals  # not exceptions
    intraday: Totals  # live intraday calls
    exceptions: Totals


def compute_desk_totals(
    rows: tuple[WarningRow, ...], book: Book, reporting_currency: str
) -> DeskTotals:
    """The four totals a desk view carries, in one pass over its rows: each exactly
    what `compute_totals` gives for its rows."""
    every, live, intraday, exceptions = _Sums(), _Sums(), _Sums(), _Sums()
    for row in rows:
        every.add(row)
        if row.call.exception:
            exceptions.add(row)
        else:
            live.add(row)
            if row.intraday:
                intraday.add(row)
    return DeskTotals(
        *(sums.totals(book, reporting_currency) for sums in (every, live, intraday, exceptions))
    )


class _Sums:
    """Per-currency sums of call amounts (and of the long-outstanding ones), exact."""

    def __init__(self) -> None:
        self.by_currency: dict[str, list[Decimal]] = {}
        self.call_ids: dict[str, list[str]] = {}
        self.count = 0

    def add(self, row: WarningRow) -> None:
        call = row.call
        self.count += 1
        sums = self.by_currency.get(call.currency)
        if sums is None:
            sums = self.by_currency[call.currency] = [ZERO, ZERO]
            self.call_ids[call.currency] = []
        sums[0] += call.call_amount
        if row.long_outstanding:
            sums[1] += call.call_amount
        self.call_ids[call.currency].append(call.call_id)

    def add_all(self, rows: tuple[WarningRow, ...]) -> _Sums:
        for row in rows:
            self.add(row)
        return self

    def totals(self, book: Book, reporting_currency: str) -> Totals:
        total = ZERO
        long_total = ZERO
        unconverted: list[str] = []
        for currency, (amount, long_amount) in self.by_currency.items():
            try:
                rate = fx_rate(book, currency, reporting_currency)
            except MissingData:
                unconverted.extend(self.call_ids[currency])
                continue
            total += amount * rate
            long_total += long_amount * rate
        return Totals(reporting_currency, total, long_total, self.count, tuple(unconverted))
