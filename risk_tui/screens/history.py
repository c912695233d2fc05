"""The History tab (歷史記錄): ended calls, newest first, read a page at a time from the database.

Each row is one ended call with its trigger and end time, end reason, call amount,
the cash that came in (see `risk_tui.core.history.CASH_IN_MEANING`: derived from the
snapshots, not from deposit records) and, in words, how it was met. Enter opens
`HistoryDetailsScreen`: the trigger snapshot beside the end snapshot with the
differences, and every snapshot in between on the timeline. `x` exports a period for
compliance through `risk_tui.desk.export` (the same file `risk-tui export` writes).

Reading: never the whole history. The first page (`PAGE_SIZE` calls) is read when the
tab is first shown; the next page when the cursor comes within `PREFETCH_ROWS` of the
last row read (keyset paging: `DeskApi.history_page`). The `/` filter runs in the
database too, so it finds calls beyond the pages read. While the tab is shown, its top
is re-read when the desk's open calls change (a call ended) and every `PROBE_SECONDS`
(calls ended by another engine on a shared database) — never more than once per
`MIN_READ_SECONDS`, always in a worker.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static

from risk_tui.core.history import CallOutcome, call_outcome
from risk_tui.core.lifecycle import MarginCall
from risk_tui.core.money import format_money
from risk_tui.core.records import HistoryKey
from risk_tui.core.text import sanitize
from risk_tui.screens.history_details import HistoryDetailsScreen
from risk_tui.widgets.desk_pane import DeskPane
from risk_tui.widgets.dialogs.export import ExportDialog
from risk_tui.widgets.dialogs.formatting import (
    aware,
    format_elapsed,
    market_stamp,
    plural,
    signed_money,
)
from risk_tui.widgets.host import DeskHost
from risk_tui.widgets.live_table import Column, LiveTable, RowData
from risk_tui.widgets.render import data_text

if TYPE_CHECKING:
    from risk_tui.core.view import DeskView
    from risk_tui.desk.api import DeskApi, HistoryEntry

log = logging.getLogger(__name__)

PAGE_SIZE = 200
"""Calls read per page: several screens at 50 rows, one cheap indexed query."""
PREFETCH_ROWS = 20
"""The next page is read when the cursor comes this close to the last row read."""
MIN_READ_SECONDS = 1.0
"""Automatic re-reads (calls ended, periodic probe) at most this often."""
PROBE_SECONDS = 5.0
"""While shown, the top of the list is re-read this often even if no call ended here."""
TOP_OVERLAP = timedelta(seconds=5)
"""Re-reading the top goes this far back from the newest call held, so a call another
engine ended with a slightly earlier clock is not missed."""

CASH_IN_SHORT = "Cash in: rise in cash, trigger to end snapshot = deposits + sale proceeds"

REASON_WORDS = {
    "met_by_deposit": "deposit",
    "met": "met",
    "liquidated": "liquidated",
    "closed": "closed",
}


# --- rows ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One ended call and what its trigger and end snapshots say about it."""

    call: MarginCall
    outcome: CallOutcome
    key: HistoryKey  # its place in history (`HistoryEntry.key`)


def _by_amount(amount: Decimal | None) -> tuple[int, Decimal]:
    """Sort money by the figure itself (in its own currency); an unknown one first."""
    return (0, Decimal(0)) if amount is None else (1, amount)


# Declared in the order shown; `priority` says what 80 columns show: who, how much was
# called (with its currency), how it ended. The wide layout keeps the account and the
# amount in place: every figure scrolled beside them is in that currency.
COLUMNS = (
    Column("account", "Account", max_width=12, priority=1, frozen=True),
    Column("client", "Client", max_width=20, priority=2),
    Column(
        "call_amount",
        "Call amount",
        align="right",
        sort_value=lambda row: _by_amount(row.call.trigger_call_amount),
        descending_first=True,
        whole=True,
        priority=3,
        frozen=True,
    ),
    Column("reason", "Reason", max_width=10, priority=4),
    Column("ended", "Ended (market)", max_width=19, priority=5),
    Column(
        "cash_in",
        "Cash in",
        align="right",
        sort_value=lambda row: _by_amount(row.outcome.cash_in),
        descending_first=True,
        whole=True,
        priority=6,
    ),
    Column("how", "How it was met", max_width=26, priority=7),
    Column("took", "Took", align="right", max_width=11, priority=8),
    Column("triggered", "Triggered (market)", max_width=19, priority=9),
    Column("note", "Note / remark", max_width=40, priority=10),
)


def history_cells(row: HistoryRow, now: datetime | None = None) -> RowData:
    """The row's cells; times in the year of `now` omit the year."""
    call, outcome = row.call, row.outcome
    ccy = call.currency
    took = (
        format_elapsed(aware(call.ended_at) - aware(call.triggered_at))
        if call.ended_at is not None
        else "—"
    )
    reason = call.end_reason.value if call.end_reason is not None else "—"
    note = call.end_note or call.remark
    amount = call.trigger_call_amount
    return RowData(
        (
            data_text(call.account_id),
            data_text(call.client_name),
            Text(format_money(amount, ccy, code=amount is not None), style="bold"),
            Text(REASON_WORDS.get(reason, reason)),
            Text(market_stamp(call.ended_at, call, now)),
            Text(signed_money(outcome.cash_in, ccy)),
            Text(outcome.how),
            Text(took),
            Text(market_stamp(call.triggered_at, call, now)),
            data_text(note),
        ),
        record=row,
    )


def history_row(entry: HistoryEntry) -> HistoryRow:
    """An ended call and what its trigger and end snapshots say about it."""
    trigger, end = entry.ends.trigger, entry.ends.end
    return HistoryRow(
        entry.call,
        call_outcome(
            entry.call,
            trigger.payload if trigger is not None and isinstance(trigger.payload, dict) else None,
            end.payload if end is not None and isinstance(end.payload, dict) else None,
        ),
        entry.key,
    )


# --- the tab ---------------------------------------------------------------------------------


class HistoryPane(DeskPane):
    """Ended calls, newest first, a page at a time. Keys: enter details, x export."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "x", "export", "Export", tooltip="Export history (compliance file)", id="history.export"
        ),
    ]

    DEFAULT_CSS = """
    HistoryPane > #history-status, HistoryPane > #history-legend {
        height: 1; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis;
    }
    HistoryPane > #history-status { text-style: bold; }
    HistoryPane > #history-legend { color: $text-muted; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._rows: dict[str, HistoryRow] = {}  # call_id → row, in history order
        self._total: int | None = None
        self._exhausted = False
        self._needle = ""
        self._generation = 0  # bumped by a new filter: reads of an older one are dropped
        self._want_reset = True
        self._want_more = False
        self._want_top = False
        self._reading = False
        self._last_auto_read = float("-inf")  # time.monotonic of the last top/reset read
        self._open_ids: frozenset[str] | None = None
        self._view: DeskView | None = None
        self._problem: str | None = None
        self._desk: DeskApi | None = None
        self._now: datetime | None = None  # rows of this year are shown without it

    def compose(self) -> ComposeResult:
        yield Static(Text("History: reading the database…"), id="history-status")
        yield Static(Text(CASH_IN_SHORT), id="history-legend")
        yield LiveTable(COLUMNS, noun="ended calls", id=f"{self.id}-table")

    # --- what the app calls --------------------------------------------------------------

    def refresh_from(self, desk: DeskApi, view: DeskView, now: datetime) -> None:
        """Cheap unless calls ended: compares the open call ids, and starts a read at
        most once per `MIN_READ_SECONDS` (the read itself runs in a worker)."""
        if not self.is_mounted:
            return
        self._desk = desk
        self._now = now
        if view is not self._view:  # the app's clock tick hands the same view again
            self._view = view
            open_ids = frozenset(row.call.call_id for row in view.warnings)
            if self._open_ids is not None and open_ids != self._open_ids:
                self._want_top = True  # a call left the open list: it may have ended
            self._open_ids = open_ids
        if time.monotonic() - self._last_auto_read >= PROBE_SECONDS:
            self._want_top = True
        self._kick()

    def set_text_filter(self, needle: str) -> None:
        """The `/` filter, run in the database: account, client or call id contains it."""
        needle = needle.strip()
        if needle == self._needle:
            return
        self._needle = needle
        self.table.set_filter(None, needle=needle)  # filtered in the database: the words
        self._generation += 1
        self._want_reset = True
        self._kick(now=True)

    @property
    def rows(self) -> tuple[HistoryRow, ...]:
        """The calls read so far, newest first."""
        return tuple(self._rows.values())

    @property
    def total(self) -> int | None:
        """How many ended calls match the filter (None until counted)."""
        return self._total

    @property
    def exhausted(self) -> bool:
        """Every matching call has been read."""
        return self._exhausted

    # --- reading ---------------------------------------------------------------------------

    def _kick(self, *, now: bool = False) -> None:
        if self._reading or self._desk is None:
            return
        automatic = self._want_reset or self._want_top
        if not (self._want_more or automatic):
            return
        if not now and not self._want_more and not self._auto_read_allowed():
            return
        self._reading = True
        self._read()

    def _auto_read_allowed(self) -> bool:
        return time.monotonic() - self._last_auto_read >= MIN_READ_SECONDS

    @work(exclusive=True, group="history-read", exit_on_error=False)
    async def _read(self) -> None:
        try:
            while self._desk is not None:
                desk = self._desk
                generation = self._generation
                if self._want_reset:
                    self._want_reset = self._want_top = False
                    self._last_auto_read = time.monotonic()
                    await self._read_first_page(desk, generation)
                elif self._want_more:
                    self._want_more = False
                    await self._read_next_page(desk, generation)
                elif self._want_top and self._auto_read_allowed():
                    self._want_top = False
                    self._last_auto_read = time.monotonic()
                    await self._read_top(desk, generation)
                else:
                    break
                self._problem = None
                self._show_status()
        except Exception as problem:  # the operator must see why history stopped updating
            log.exception("reading history failed")
            first = str(getattr(problem, "orig", None) or problem).strip().splitlines()
            text = f"cannot read history: {first[0] if first else type(problem).__name__}"
            if text != self._problem:
                self.app.notify(sanitize(text, max_length=300), severity="error", timeout=10)
            self._show_status(problem=text)
        finally:
            self._reading = False

    async def _read_first_page(self, desk: DeskApi, generation: int) -> None:
        needle = self._needle or None
        total = await desk.history_count(needle)
        entries = await desk.history_page(PAGE_SIZE, needle=needle)
        rows = [history_row(entry) for entry in entries]
        if generation != self._generation:
            self._want_reset = True
            return
        self._total = total
        self._exhausted = len(entries) < PAGE_SIZE
        self._rows = {row.call.call_id: row for row in rows}
        self.table.set_rows(self._cells(self._rows))

    async def _read_next_page(self, desk: DeskApi, generation: int) -> None:
        if self._exhausted or not self._rows:
            return
        last = next(reversed(self._rows.values()))
        entries = await desk.history_page(PAGE_SIZE, before=last.key, needle=self._needle or None)
        rows = [history_row(entry) for entry in entries]
        if generation != self._generation:
            return
        self._exhausted = len(entries) < PAGE_SIZE
        fresh = {row.call.call_id: row for row in rows if row.call.call_id not in self._rows}
        self._rows.update(fresh)
        if fresh:  # older than every row held: appended, in order, at the bottom
            self.table.apply_diff(self._cells(fresh))

    async def _read_top(self, desk: DeskApi, generation: int) -> None:
        if not self._rows:
            self._want_reset = True  # nothing held yet: the first page is the top
            return
        newest = next(iter(self._rows.values()))
        since = aware(newest.key[0]) - TOP_OVERLAP
        entries = await desk.history_page(PAGE_SIZE, since=since, needle=self._needle or None)
        if len(entries) >= PAGE_SIZE:  # a burst of endings: start again from the top
            self._want_reset = True
            return
        rows = [history_row(entry) for entry in entries if entry.call.call_id not in self._rows]
        if not rows or generation != self._generation:
            return
        merged = {**self._rows, **{row.call.call_id: row for row in rows}}
        ordered = sorted(merged.values(), key=lambda row: row.key, reverse=True)
        self._rows = {row.call.call_id: row for row in ordered}
        if self._total is not None:
            self._total += len(rows)
        # New rows go above older ones: a full load keeps the cursor on its call.
        self.table.set_rows(self._cells(self._rows))

    def _cells(self, rows: dict[str, HistoryRow]) -> dict[str, RowData]:
        return {key: history_cells(row, self._now) for key, row in rows.items()}

    def _show_status(self, problem: str | None = None) -> None:
        if problem is not None:
            self._problem = problem
        text = Text("History: ")
        if self._total is None:
            text.append("reading the database…")
        elif self._total == 0:
            text.append("no ended calls")
            if self._needle:
                text.append(" matching ")
                text.append_text(data_text(repr(self._needle)))
            text.append(" · x export")
        else:
            text.append(f"{self._total:,} ended call{'s' if self._total != 1 else ''}")
            if self._needle:
                text.append(" matching ")
                text.append_text(data_text(repr(self._needle)))
            text.append(f", newest first · {len(self._rows):,} read")
            if not self._exhausted:
                text.append(", more as you scroll")
            text.append(" · enter details · x export")
        if self._problem:
            text = Text(f"History: {self._problem}", style="bold reverse")
        for status in self.query("#history-status").results(Static):
            status.update(text)

    # --- rows and keys -------------------------------------------------------------------

    @on(LiveTable.CursorMoved)
    def _cursor_moved(self, event: LiveTable.CursorMoved) -> None:
        if event.control is not self.table or self._exhausted or not self._rows:
            return
        index = self.table.cursor_index
        if index is not None and index >= self.table.row_count - PREFETCH_ROWS:
            self._want_more = True
            self._kick(now=True)

    @on(LiveTable.RowSelected)
    def _row_selected(self, event: LiveTable.RowSelected) -> None:
        if event.control is not self.table:
            return
        event.stop()  # the app opens call details only for the warnings tables
        row = self._rows.get(event.key)
        if row is not None:
            self.open_details(row.call)

    @work(exclusive=True, group="history-details", exit_on_error=False)
    async def open_details(self, call: MarginCall) -> None:
        desk = self._desk
        if desk is None:
            return
        try:
            details = await desk.call_details(call.call_id)
        except Exception as problem:  # the operator must see why the call cannot be shown
            log.exception("reading call %s failed", call.call_id)
            self.app.notify(
                sanitize(f"cannot read call {call.call_id}: {problem}", max_length=300),
                severity="error",
                timeout=10,
            )
            return
        await self.app.push_screen_wait(
            HistoryDetailsScreen(call, details.snapshots, details.remarks, details.orders)
        )

    def action_export(self) -> None:
        self.export()

    @work(exclusive=True, group="history-export", exit_on_error=False)
    async def export(self) -> None:
        host = cast("DeskHost", self.app)
        desk = self._desk
        if desk is None:
            self.app.notify("export: the desk's database is not open yet", severity="warning")
            return
        today = aware(host.now()).astimezone(UTC).date()
        request = await self.app.push_screen_wait(ExportDialog(today, Path.cwd()))
        if request is None:
            return

        async def write() -> str:
            counts = await desk.export(request)
            return (
                f"export written: {request.path} ({plural(counts.get('call', 0), 'call')}, "
                f"{plural(counts.get('snapshot', 0), 'snapshot')}, "
                f"{plural(counts.get('audit', 0), 'audit record')})"
            )

        await host.act(write, "export")


__all__ = [
    "COLUMNS",
    "PAGE_SIZE",
    "HistoryPane",
    "HistoryRow",
    "history_cells",
    "history_row",
]
