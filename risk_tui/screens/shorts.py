"""The Short positions tab (融券持倉概覽) and the details of one shorted stock.

The tab has one row per stock clients are short: shortfall and its worth in the reporting
currency, total client short, the firm's borrow available, recall quantity and due date,
number of clients, borrow rate; `o` steps through orderings (worth of the shortfall
first). It is computed from the book's short index (never a scan of every position),
again only when the feed's cursor moved and at most once a second.

Enter opens the stock's details (`screens.short_details`); the cells are
`screens.short_cells`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static

from risk_tui.core.money import format_money
from risk_tui.core.shorts import (
    RULE_WORDS,
    AllocationRule,
    ShortLine,
    summarize,
)
from risk_tui.screens.short_cells import line_cells, market_date, overview_columns, rule_of
from risk_tui.screens.short_details import ShortDetailsScreen
from risk_tui.widgets.desk_pane import DeskPane
from risk_tui.widgets.host import DeskHost
from risk_tui.widgets.live_table import LiveTable, RowData

if TYPE_CHECKING:
    from risk_tui.core.view import DeskView
    from risk_tui.desk.api import DeskApi




MIN_INTERVAL = 1.0  # seconds: the overview is recomputed at most this often


# `o` steps through these orders (column, descending). First: what the shortfall is worth
# (share counts of different stocks do not compare).
SORT_CYCLE: tuple[tuple[str, bool], ...] = (
    ("value", True),
    ("shortfall", True),
    ("short", True),
    ("due", False),
    ("symbol", False),
)


class ShortsPane(DeskPane):
    """Tab 3: one row per shorted stock; enter opens its clients and the allocation."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "o", "cycle_order", "Order by", tooltip="Order by the next column", id="shorts.order"
        ),
    ]

    DEFAULT_CSS = """
    ShortsPane > #shorts-summary { height: auto; padding: 0 1; background: $boost; }
    """

    def __init__(
        self,
        *,
        id: str | None = None,
        min_interval: float = MIN_INTERVAL,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(id=id)
        self.min_interval = min_interval
        self.monotonic = monotonic
        self._seen: tuple[Any, ...] | None = None  # (cursor, minute) last shown
        self._last_at = -float("inf")
        self._shown: dict[str, tuple[ShortLine, date]] = {}
        self._order = 0
        self.computed = 0  # overview computations, for tests

    def compose(self) -> ComposeResult:
        yield Static(Text("Waiting for the feed: no book yet."), id="shorts-summary")
        currency = self.host.settings.desk.reporting_currency
        yield LiveTable(overview_columns(currency), noun="short positions", id=f"{self.id}-table")

    def on_mount(self) -> None:
        column, reverse = SORT_CYCLE[0]
        self.table.sort_by(column, reverse)

    @property
    def host(self) -> DeskHost:
        return cast("DeskHost", self.app)

    def refresh_from(self, desk: DeskApi, view: DeskView, now: datetime) -> None:
        """Recompute when the feed moved (or the minute turned), at most once a second."""
        if not self.query(LiveTable):
            return  # not composed yet: the next view shows it
        seen = (view.cursor, int(now.timestamp() // 60))
        at = self.monotonic()
        if seen == self._seen or at - self._last_at < self.min_interval:
            return
        self._seen = seen
        self._last_at = at
        settings = self.host.settings
        self.show(desk, now, settings.desk.reporting_currency, rule_of(settings))

    def show(self, desk: DeskApi, now: datetime, currency: str, rule: AllocationRule) -> None:
        overview = desk.short_overview()
        lines = overview.lines
        self.computed += 1
        upserts: dict[str, RowData] = {}
        seen: set[str] = set()
        # New rows arrive last symbol first: a descending sort reads ties backwards, so
        # stocks without a shortfall then list in symbol order.
        for line in reversed(lines):
            today = market_date(line, now)
            seen.add(line.symbol)
            if self._shown.get(line.symbol) != (line, today):
                self._shown[line.symbol] = (line, today)
                upserts[line.symbol] = line_cells(line, today, currency)
        removals = [symbol for symbol in self._shown if symbol not in seen]
        for symbol in removals:
            del self._shown[symbol]
        if upserts or removals:
            self.table.apply_diff(upserts, removals)
        for summary in self.query("#shorts-summary").results(Static):
            summary.update(self._summary(lines, currency, rule, fed=overview.fed))

    @staticmethod
    def _summary(
        lines: Iterable[ShortLine], currency: str, rule: AllocationRule, *, fed: bool
    ) -> Text:
        lines = tuple(lines)
        if not fed:
            return Text("Waiting for the feed: no book yet.")
        if not lines:
            return Text("No client is short any stock.")
        summary = summarize(lines, currency)
        text = Text()
        plural = "s" if summary.symbols != 1 else ""
        text.append(f"{summary.symbols} shorted stock{plural}  ", style="bold")
        text.append(f"Shortfall in {summary.with_shortfall}")
        text.append(f" ({format_money(summary.shortfall_value, currency, code=True)} to buy back")
        if summary.unvalued:
            text.append(f"; {len(summary.unvalued)} not valued: no price or fx")
        text.append(")  ")
        text.append(f"Recalled {summary.recalled}  ")
        if summary.without_borrow:
            text.append(
                f"No borrow record {summary.without_borrow} (shortfall unknown)  ", style="bold"
            )
        text.append(f"\nAllocation of a shortfall: {RULE_WORDS[rule]}")
        return text

    def action_cycle_order(self) -> None:
        self._order = (self._order + 1) % len(SORT_CYCLE)
        column, reverse = SORT_CYCLE[self._order]
        self.table.sort_by(column, reverse)

    @on(LiveTable.RowSelected)
    def _open_details(self, event: LiveTable.RowSelected) -> None:
        if event.control is not self.table:
            return
        event.stop()
        host = self.host
        if host.desk is None:
            return
        settings = host.settings
        self.app.push_screen(
            ShortDetailsScreen(
                host.desk,
                event.key,
                host.actor,
                rule=rule_of(settings),
                reporting_currency=settings.desk.reporting_currency,
                clock=host.now,
            )
        )


__all__ = ["SORT_CYCLE", "ShortsPane"]
