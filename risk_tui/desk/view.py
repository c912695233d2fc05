"""The published desk view: one warning row per open call with its figures, and totals.

A view is immutable; the terminal and `risk-tui report` only read it. A row is the same
object as in the last view when nothing it shows changed (the table's diff compares
identity), and a row's figures come from the columns (made lazily) or, for accounts the
columns do not decide, from the reference. A row also carries its conversion into the
reporting currency (what sorts compare across currencies) and, while its account is
incomplete, why and the last complete figures it showed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np

from risk_tui.core.margin import MarginFigures, RiskLevel
from risk_tui.core.view import (
    DeskView,
    IncompleteRow,
    WarningRow,
    compute_desk_totals,
    compute_totals,
    in_reporting,
    reporting_rate,
)
from risk_tui.desk.book import BookState
from risk_tui.desk.open_calls import OpenCalls

_UNKNOWN = Decimal("NaN")  # a rate not read yet this publish (None: the feed has none)


class ViewBuilder:
    """The rows' figures per open call, and the view built from them."""

    def __init__(
        self,
        state: BookState,
        calls: OpenCalls,
        *,
        reporting_currency: str,
        long_outstanding_days: int,
    ) -> None:
        self._state = state
        self._calls = calls
        self.reporting_currency = reporting_currency
        self.long_outstanding_days = long_outstanding_days
        self.figures: dict[str, MarginFigures | None] = {}  # per open call: its row shows
        self._shown_rows: dict[str, WarningRow] = {}
        # Per open call, the last complete figures published: shown, marked as not
        # current, while the account's figures cannot be computed.
        self._last_complete: dict[str, MarginFigures] = {}
        self._rates: dict[str, Decimal | None] = {}  # currency → reporting, last publish
        self._shown_incomplete: dict[str, IncompleteRow] = {}
        self.view = DeskView(None, None, True, (), (), compute_totals((), state.book, "SGD"))

    def forget(self, account_ids: Iterable[str]) -> None:
        """These accounts' rows make their figures afresh (a call ended or is new here)."""
        for account_id in account_ids:
            self.figures.pop(account_id, None)

    def show_from_columns(self, account_ids: Iterable[str]) -> None:
        """Figures from the columns, in bulk, for calls new here (partial accounts and
        those the columns do not hold are made from the reference when shown)."""
        state = self._state
        rows = []
        for account_id in account_ids:
            row = state.columns.row_of(account_id)
            if row is not None and account_id not in state.partial:
                rows.append(row)
        ids = state.columns.account_ids
        made = state.columns.display(np.array(rows, dtype=np.int64))
        for row, figures in zip(rows, made, strict=True):
            self.figures[ids[row]] = figures

    def refresh(self, rows: np.ndarray, others: list[str], recorded: set[str]) -> None:
        """The figures the open calls' rows show, for the calls whose account moved
        (`recorded`: already set from the result a snapshot recorded)."""
        state = self._state
        columns = state.columns
        ids = columns.account_ids
        wanted = [
            row
            for row in rows[self._calls.level[rows] >= 0].tolist()
            if ids[row] not in recorded and ids[row] not in state.partial
        ]
        shown = columns.display(np.array(wanted, dtype=np.int64))
        for row, figures in zip(wanted, shown, strict=True):
            self.figures[ids[row]] = figures
        for account_id in self._calls.calls:
            if account_id in recorded:
                continue
            stale = account_id in state.partial or account_id in others
            if stale or account_id not in self.figures:
                self.figures[account_id] = state.reference_figures(account_id)

    def rows(self, now: datetime) -> tuple[WarningRow, ...]:
        """One row per open call, oldest first; a row is the same object as last
        publish when nothing it shows changed (the table's diff compares identity)."""
        # 長期未結清: triggered more than the configured days ago (`long_outstanding`).
        cutoff = now - timedelta(days=self.long_outstanding_days)
        kept = self._shown_rows
        rates = self._reporting_rates()
        incomplete = self._state.incomplete
        last_complete = self._last_complete
        rows: list[WarningRow] = []
        for account_id, call in self._calls.in_trigger_order():
            figures = self.figures.get(account_id)
            if figures is None and account_id not in self.figures:
                figures = self.figures[account_id] = self._state.reference_figures(account_id)
            long_outstanding = call.triggered_at < cutoff
            planned = call.call_id in self._calls.planned
            rate = rates.get(call.currency, _UNKNOWN)
            if rate is _UNKNOWN:
                rate = rates[call.currency] = reporting_rate(
                    self._state.book, call.currency, self.reporting_currency
                )
            reason: str | None = None
            last: MarginFigures | None = None
            if figures is not None and figures.risk_level is not RiskLevel.INCOMPLETE:
                last_complete[account_id] = figures
            else:
                last = last_complete.get(account_id)
                reason = incomplete.get(account_id)
            row = kept.get(account_id)
            if (
                row is None
                or row.call is not call
                or row.margin is not figures
                or row.long_outstanding != long_outstanding
                or row.planned != planned
                or row.reporting_rate is not rate
                or row.incomplete != reason
                or row.last_figures is not last
            ):
                row = WarningRow(
                    call,
                    figures,
                    long_outstanding,
                    planned,
                    reporting_rate=rate,
                    call_amount_reporting=in_reporting(call.call_amount, rate),
                    incomplete=reason,
                    last_figures=last,
                )
            rows.append(row)
        self._shown_rows = {row.account_id: row for row in rows}
        for gone in last_complete.keys() - self._shown_rows.keys():
            del last_complete[gone]
        return tuple(rows)

    def _reporting_rates(self) -> dict[str, Decimal | None]:
        """The rates of the last publish, kept as the same objects while the feed's rate
        is unchanged (rows compare them by identity); others are read when first needed."""
        book = self._state.book
        rates: dict[str, Decimal | None] = {}
        for currency, before in self._rates.items():
            now = reporting_rate(book, currency, self.reporting_currency)
            rates[currency] = before if now == before else now
        self._rates = rates
        return rates

    def _incomplete_rows(self) -> tuple[IncompleteRow, ...]:
        """Every monitored account whose figures cannot be computed, and why (the same
        object as last publish while nothing about it changed)."""
        book = self._state.book
        calls = self._calls.calls
        kept = self._shown_incomplete
        rows: list[IncompleteRow] = []
        for account_id, reason in sorted(self._state.incomplete.items()):
            account = book.accounts.get(account_id)
            if account is None:
                continue
            row = IncompleteRow(
                account_id,
                account.client_name,
                reason,
                account.kind,
                account.market,
                account.base_currency,
                open_call=account_id in calls,
            )
            before = kept.get(account_id)
            rows.append(before if before == row else row)
        self._shown_incomplete = {row.account_id: row for row in rows}
        return tuple(rows)

    def publish(self, now: datetime, *, stale: bool, rejected: int) -> DeskView:
        """A new view of every open call, incomplete account and total: kept as `view`."""
        rows = self.rows(now)
        book = self._state.book
        incomplete = self._incomplete_rows()
        totals = compute_desk_totals(rows, book, self.reporting_currency)
        self.view = DeskView(
            as_of=book.as_of,
            cursor=book.cursor,
            stale=stale,
            warnings=rows,
            incomplete=incomplete,
            totals=totals.every,
            rejected_records=rejected,
            intraday_totals=totals.intraday,
            live_totals=totals.live,
            exception_totals=totals.exceptions,
        )
        return self.view

    def with_rows(self, now: datetime) -> DeskView:
        """The view with its rows rebuilt (a call changed), totals as they were."""
        self.view = replace(self.view, warnings=self.rows(now), incomplete=self._incomplete_rows())
        return self.view
