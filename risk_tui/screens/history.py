"""The History tab (歷史記錄): ended calls, newest first, read a page at a time from the database.

Each row is one ended call with its trigger and end time, end reason, call amount,
the cash that came in (see `risk_tui.core.history.CASH_IN_MEANING`: derived from the
snapshots, not from deposit records) and, in words, how it was met. Enter opens
`HistoryDetailsScreen`: the trigger snapshot beside the end snapshot with the
differences, and every snapshot in between on the timeline. `x` exports a period for
compliance through `risk_tui.export` (the same file `risk-tui export` writes).

Reading: never the whole history. The first page (`PAGE_SIZE` calls) is read when the
tab is first shown; the next page when the cursor comes within `PREFETCH_ROWS` of the
last row read (keyset paging: `store.history.history_page`). The `/` filter runs in the
database too, so it finds calls beyond the pages read. While the tab is shown, its top
is re-read when the desk's open calls change (a call ended) and every `PROBE_SECONDS`
(calls ended by another engine on a shared database) — never more than once per
`MIN_READ_SECONDS`, always in a worker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.table import Table
from rich.text import Text
from sqlalchemy.exc import SQLAlchemyError
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Button, DataTable, Footer, Input, RadioSet, Static

from risk_tui.core.calendar import MARKET_TZ
from risk_tui.core.history import (
    CASH_IN_MEANING,
    CallOutcome,
    FigureChange,
    PositionChange,
    call_outcome,
    figure_changes,
    payload_decimal,
    position_changes,
)
from risk_tui.core.lifecycle import MarginCall, SnapshotScenario
from risk_tui.core.margin import RiskLevel
from risk_tui.core.model import Market
from risk_tui.core.money import format_money, format_ratio
from risk_tui.core.records import HistoryKey, StoredOrder, StoredRemark, StoredSnapshot
from risk_tui.core.text import sanitize
from risk_tui.export import FORMATS, Period, write_export
from risk_tui.render import data_text
from risk_tui.screens.details import order_cells, order_labels, timeline_cells, timeline_labels
from risk_tui.screens.warnings import RISK_LABEL, RISK_STYLE
from risk_tui.storage.db import create_engine
from risk_tui.storage.store import Store
from risk_tui.widgets.desk_pane import DeskPane
from risk_tui.widgets.dialogs.base import (
    DialogScreen,
    MarkRadioButton,
    Problems,
    compact_input,
    field_row,
)
from risk_tui.widgets.dialogs.formatting import (
    aware,
    format_elapsed,
    format_fx,
    format_price,
    format_quantity,
)
from risk_tui.widgets.dialogs.remark import remark_history
from risk_tui.widgets.live_table import Column, LiveTable, RowData

if TYPE_CHECKING:
    from risk_tui.app import RiskApp
    from risk_tui.core.view import DeskView
    from risk_tui.engine import Desk

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

REASON_WORDS = {"met": "met", "liquidated": "liquidated", "closed": "closed"}


# --- rows ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One ended call and what its trigger and end snapshots say about it."""

    call: MarginCall
    outcome: CallOutcome

    @property
    def key(self) -> HistoryKey:
        assert self.call.ended_at is not None  # only ended calls are in history
        return (self.call.ended_at, self.call.call_id)


def _signed(amount: Decimal | None, currency: str) -> str:
    """`+1,015.00` / `-525.00`; `—` when unknown."""
    text = format_money(amount, currency)
    return f"+{text}" if amount is not None and amount > 0 else text


def _market_time(at: datetime | None, call: MarginCall, now: datetime | None = None) -> str:
    """`11-21 10:30 SG` in the current year, `2025-12-30 10:00 SG` before (as `ls -l`
    does), on the call's market clock."""
    if at is None:
        return "—"
    zone = MARKET_TZ[call.market]
    local = aware(at).astimezone(zone)
    this_year = now is not None and aware(now).astimezone(zone).year == local.year
    shown = f"{local:%m-%d %H:%M}" if this_year else f"{local:%Y-%m-%d %H:%M}"
    return f"{shown} {call.market.value}"


def _amount(cell: Text) -> Decimal:
    """Sort money by value; `—` first."""
    try:
        return Decimal(cell.plain.replace(",", "").lstrip("+"))
    except ArithmeticError:
        return Decimal("-1e30")


COLUMNS = (
    Column("account", "Account", max_width=12),
    Column("client", "Client", max_width=20),
    Column("ended", "Ended (market)", max_width=19),
    Column("reason", "Reason", max_width=10),
    Column("ccy", "Ccy", max_width=3),
    Column("call_amount", "Call amount", align="right", sort_key=_amount, max_width=16),
    Column("cash_in", "Cash in", align="right", sort_key=_amount, max_width=16),
    Column("how", "How it was met", max_width=26),
    Column("triggered", "Triggered (market)", max_width=19),
    Column("took", "Took", align="right", max_width=11),
    Column("note", "Note / remark", max_width=40),
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
    return RowData(
        (
            data_text(call.account_id),
            data_text(call.client_name),
            Text(_market_time(call.ended_at, call, now)),
            Text(REASON_WORDS.get(reason, reason)),
            Text(ccy),
            Text(format_money(call.trigger_call_amount, ccy), style="bold"),
            Text(_signed(outcome.cash_in, ccy)),
            Text(outcome.how),
            Text(_market_time(call.triggered_at, call, now)),
            Text(took),
            data_text(note),
        )
    )


def history_row(
    call: MarginCall, trigger: StoredSnapshot | None, end: StoredSnapshot | None
) -> HistoryRow:
    return HistoryRow(
        call,
        call_outcome(
            call,
            trigger.payload if trigger is not None and isinstance(trigger.payload, dict) else None,
            end.payload if end is not None and isinstance(end.payload, dict) else None,
        ),
    )


async def read_rows(store: Store, calls: Sequence[MarginCall]) -> list[HistoryRow]:
    """The page's calls with their trigger/end figures: one snapshot query for the page."""
    ends = await store.history.end_snapshots([call.call_id for call in calls])
    return [history_row(call, ends[call.call_id].trigger, ends[call.call_id].end) for call in calls]


# --- the tab ---------------------------------------------------------------------------------


class HistoryPane(DeskPane):
    """Ended calls, newest first, a page at a time. Keys: enter details, x export."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("x", "export", "Export", id="history.export"),
    ]

    DEFAULT_CSS = """
    HistoryPane > #history-status { height: 1; padding: 0 1; text-style: bold; }
    HistoryPane > #history-legend { height: 1; padding: 0 1; color: $text-muted; }
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
        self._store: Store | None = None
        self._now: datetime | None = None  # rows of this year are shown without it

    def compose(self) -> ComposeResult:
        yield Static(Text("History: reading the database…"), id="history-status")
        yield Static(Text(CASH_IN_SHORT), id="history-legend")
        yield LiveTable(COLUMNS, fixed_columns=2, id=f"{self.id}-table")

    # --- what the app calls --------------------------------------------------------------

    def refresh_from(self, desk: Desk, view: DeskView, now: datetime) -> None:
        """Cheap unless calls ended: compares the open call ids, and starts a read at
        most once per `MIN_READ_SECONDS` (the read itself runs in a worker)."""
        if not self.is_mounted:
            return
        store = desk.store
        if not isinstance(store, Store):
            self._show_status(problem="this desk has no database to read history from")
            return
        self._store = store
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
        if self._reading or self._store is None:
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
            while self._store is not None:
                store = self._store
                generation = self._generation
                if self._want_reset:
                    self._want_reset = self._want_top = False
                    self._last_auto_read = time.monotonic()
                    await self._read_first_page(store, generation)
                elif self._want_more:
                    self._want_more = False
                    await self._read_next_page(store, generation)
                elif self._want_top and self._auto_read_allowed():
                    self._want_top = False
                    self._last_auto_read = time.monotonic()
                    await self._read_top(store, generation)
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

    async def _read_first_page(self, store: Store, generation: int) -> None:
        needle = self._needle or None
        total = await store.history.count_history(needle)
        calls = await store.history.history_page(PAGE_SIZE, needle=needle)
        rows = await read_rows(store, calls)
        if generation != self._generation:
            self._want_reset = True
            return
        self._total = total
        self._exhausted = len(calls) < PAGE_SIZE
        self._rows = {row.call.call_id: row for row in rows}
        self.table.set_rows(self._cells(self._rows))

    async def _read_next_page(self, store: Store, generation: int) -> None:
        if self._exhausted or not self._rows:
            return
        last = next(reversed(self._rows.values()))
        calls = await store.history.history_page(
            PAGE_SIZE, before=last.key, needle=self._needle or None
        )
        rows = await read_rows(store, calls)
        if generation != self._generation:
            return
        self._exhausted = len(calls) < PAGE_SIZE
        fresh = {row.call.call_id: row for row in rows if row.call.call_id not in self._rows}
        self._rows.update(fresh)
        if fresh:  # older than every row held: appended, in order, at the bottom
            self.table.apply_diff(self._cells(fresh))

    async def _read_top(self, store: Store, generation: int) -> None:
        if not self._rows:
            self._want_reset = True  # nothing held yet: the first page is the top
            return
        newest = next(iter(self._rows.values()))
        since = aware(newest.key[0]) - TOP_OVERLAP
        calls = await store.history.history_page(
            PAGE_SIZE, since=since, needle=self._needle or None
        )
        if len(calls) >= PAGE_SIZE:  # a burst of endings: start again from the top
            self._want_reset = True
            return
        new_calls = [call for call in calls if call.call_id not in self._rows]
        if not new_calls or generation != self._generation:
            return
        rows = await read_rows(store, new_calls)
        if generation != self._generation:
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
        store = self._store
        if store is None:
            return
        try:
            snapshots = await store.history.snapshots_for(call.call_id)
            remarks = await store.history.remarks_for(call.call_id)
            orders = await store.orders.page(call_id=call.call_id)
        except (SQLAlchemyError, OSError, ValueError) as problem:
            log.exception("reading call %s failed", call.call_id)
            self.app.notify(
                sanitize(f"cannot read call {call.call_id}: {problem}", max_length=300),
                severity="error",
                timeout=10,
            )
            return
        await self.app.push_screen_wait(HistoryDetailsScreen(call, snapshots, remarks, orders))

    def action_export(self) -> None:
        self.export()

    @work(exclusive=True, group="history-export", exit_on_error=False)
    async def export(self) -> None:
        store = self._store
        app = cast("RiskApp", self.app)
        if store is None:
            app.notify("export: the desk's database is not open yet", severity="warning")
            return
        today = aware(app.clock()).astimezone(UTC).date()
        request = await app.push_screen_wait(ExportDialog(today, Path.cwd()))
        if request is None:
            return
        url = store.engine.url.render_as_string(hide_password=False)
        now = aware(app.clock())

        async def write() -> str:
            counts = await asyncio.to_thread(export_file, url, request, now)
            return (
                f"export written: {request.path} ({counts.get('call', 0)} calls, "
                f"{counts.get('snapshot', 0)} snapshots, {counts.get('audit', 0)} audit records)"
            )

        await app._act(write, "export")


# --- export ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExportRequest:
    period: Period
    fmt: str  # one of risk_tui.export.FORMATS
    path: Path


class ExportFailed(Exception):
    """One line saying why the export file was not written."""


def export_file(url: str, request: ExportRequest, now: datetime) -> dict[str, int]:
    """Write the export on a thread of its own (its own event loop and engine), so a long
    period never stalls the terminal; the file appears only once complete."""
    return asyncio.run(_export_file(url, request, now))


async def _export_file(url: str, request: ExportRequest, now: datetime) -> dict[str, int]:
    path = request.path
    partial = path.with_name(f".{path.name}.partial")
    engine = await create_engine(url)
    try:
        try:
            with partial.open("w", encoding="utf-8", newline="") as stream:
                counts = await write_export(engine, request.period, request.fmt, stream, now=now)
            if path.exists():  # checked in the dialog; someone may have been quicker
                raise ExportFailed(f"{path} already exists: nothing overwritten")
            partial.replace(path)
        except OSError as problem:
            raise ExportFailed(f"cannot write {path}: {problem.strerror or problem}") from None
        except SQLAlchemyError as problem:
            first = str(getattr(problem, "orig", None) or problem).strip().splitlines()
            raise ExportFailed(f"database: {first[0] if first else problem}") from None
        except ValueError as unreadable:  # a stored row edited beyond reading
            raise ExportFailed(f"{unreadable} (run `risk-tui audit verify`)") from None
    finally:
        partial.unlink(missing_ok=True)  # gone already once it became the file
        await engine.dispose()
    return counts


def default_export_path(folder: Path, period: Period, fmt: str) -> Path:
    """`risk-tui-export-<from>..<to>.<fmt>` in `folder`, numbered if that name is taken."""
    stem = f"risk-tui-export-{period.first.isoformat()}..{period.last.isoformat()}"
    candidate = folder / f"{stem}.{fmt}"
    number = 1
    while candidate.exists():
        number += 1
        candidate = folder / f"{stem}-{number}.{fmt}"
    return candidate


class ExportDialog(DialogScreen[ExportRequest]):
    """Answer an `ExportRequest` (period in UTC dates, format, a new file), or None."""

    DEFAULT_CSS = """
    ExportDialog Input.date { width: 14; }
    ExportDialog RadioSet { width: 1fr; height: auto; }
    ExportDialog RadioSet > MarkRadioButton { width: auto; margin-right: 2; }
    ExportDialog RadioSet { layout: horizontal; }
    ExportDialog .zone { width: auto; padding-left: 1; }
    """

    def __init__(self, today: date, folder: Path) -> None:
        super().__init__()
        self.today = today
        self.folder = folder
        self._default_path = default_export_path(folder, Period(today, today), FORMATS[0])

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog") as frame:
            frame.border_title = "Compliance export"
            with VerticalScroll(classes="dialog-body"):
                yield Static(
                    Text(
                        "Every call triggered or ended in the period, with all its snapshots, "
                        "and the period's audit records: the file `risk-tui export` writes, "
                        "verifiable offline with `risk-tui audit verify --export PATH`."
                    )
                )
                day = self.today.isoformat()
                yield field_row(
                    "From",
                    compact_input(day, "YYYY-MM-DD", id="first", classes="date"),
                    Static(Text("UTC date, inclusive"), classes="zone"),
                )
                yield field_row(
                    "To",
                    compact_input(day, "YYYY-MM-DD", id="last", classes="date"),
                    Static(Text("UTC date, inclusive"), classes="zone"),
                )
                yield field_row(
                    "Format",
                    RadioSet(
                        *(
                            MarkRadioButton(fmt, value=index == 0, id=f"fmt-{fmt}")
                            for index, fmt in enumerate(FORMATS)
                        ),
                        id="format",
                        compact=True,
                    ),
                )
                yield field_row(
                    "Output file",
                    compact_input(str(self._default_path), "a new file", id="path"),
                )
            with Vertical(classes="dialog-foot"):
                yield Problems(id="problems")
                with Horizontal(classes="dialog-buttons"):
                    yield Button("Export  ctrl+s", id="export", variant="primary")
                    yield Button("Cancel  esc", id="cancel")

    def on_mount(self) -> None:
        self.first_control().focus()

    def first_control(self) -> Widget:
        return self.query_one("#first", Input)

    # --- reading the form --------------------------------------------------------------

    def _text(self, field_id: str) -> str:
        return self.query_one(f"#{field_id}", Input).value.strip()

    @property
    def fmt(self) -> str:
        pressed = self.query_one("#format", RadioSet).pressed_button
        if pressed is not None and pressed.id and pressed.id.startswith("fmt-"):
            return pressed.id.removeprefix("fmt-")
        return FORMATS[0]

    def _dates(self) -> tuple[Period | None, list[str]]:
        problems: list[str] = []
        parsed: list[date] = []
        for field_id, label in (("first", "From"), ("last", "To")):
            raw = self._text(field_id)
            try:
                parsed.append(date.fromisoformat(raw))
            except ValueError:
                problems.append(f"{label}: {raw!r} is not a date as YYYY-MM-DD")
        if problems:
            return None, problems
        try:
            return Period(parsed[0], parsed[1]), []
        except ValueError as bad:
            return None, [str(bad).replace("--to", "To").replace("--from", "From")]

    def _path(self) -> tuple[Path | None, list[str]]:
        raw = self._text("path")
        if not raw:
            return None, ["Output file: give a file name"]
        path = Path(raw).expanduser()
        if not path.is_absolute():
            path = self.folder / path
        if path.exists():
            return None, [f"Output file: {path} already exists (nothing is overwritten)"]
        if not path.parent.is_dir():
            return None, [f"Output file: no folder {path.parent}"]
        return path, []

    def problems(self) -> list[str]:
        return self._dates()[1] + self._path()[1]

    def request(self) -> ExportRequest:
        period, _ = self._dates()
        path, _ = self._path()
        if period is None or path is None:
            raise ValueError("the entries are not valid")
        return ExportRequest(period, self.fmt, path)

    # --- keeping the suggested name in step --------------------------------------------

    @on(Input.Changed, "#first, #last")
    @on(RadioSet.Changed, "#format")
    def _suggest_path(self) -> None:
        field = self.query_one("#path", Input)
        if field.value.strip() != str(self._default_path):
            return  # the operator typed a name: theirs stands
        period, _ = self._dates()
        if period is None:
            return
        self._default_path = default_export_path(self.folder, period, self.fmt)
        field.value = str(self._default_path)

    # --- answering -----------------------------------------------------------------------

    def action_confirm(self) -> None:
        problems = self.problems()
        self.query_one("#problems", Problems).show(problems)
        if not problems:
            self.answer(self.request())

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_confirm()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "export":
            self.action_confirm()
        elif event.button.id == "cancel":
            self.action_cancel()


# --- details ---------------------------------------------------------------------------------


def _change_text(change: Decimal | None, currency: str) -> Text:
    text = _signed(change, currency)
    return Text(text, justify="right", style="bold" if change else "")


def _level_text(payload: dict[str, Any] | None) -> Text:
    raw = str((payload or {}).get("risk_level") or "")
    try:
        level = RiskLevel(raw)
    except ValueError:
        return data_text(raw or "—", style="")
    return Text(RISK_LABEL[level], justify="right", style=RISK_STYLE.get(level, ""))


def _feed_time(snap: StoredSnapshot | None, market: Market) -> str:
    if snap is None or snap.feed_as_of is None:
        return "—"
    return f"{aware(snap.feed_as_of).astimezone(MARKET_TZ[market]):%m-%d %H:%M:%S}"


# What each snapshot is called in the comparison's headings.
SIDE_NAMES = {
    SnapshotScenario.TRIGGER: "trigger",
    SnapshotScenario.FORCE_CALL: "force call",
    SnapshotScenario.NOTIFICATION: "notice",
    SnapshotScenario.DAILY: "daily",
    SnapshotScenario.END: "end",
}


class HistoryDetailsScreen(Screen[None]):
    """An ended call in full: outcome, trigger vs end side by side, every snapshot.

    Enter on a timeline row compares the trigger with that snapshot instead of the end
    one; `e` goes back to comparing with the end. Escape returns to the History tab.
    Risk levels here use the warnings tab's labels (short, so the figures fit 80 columns).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="history_details.back"),
        Binding("e", "compare_end", "Compare with end", id="history_details.compare_end"),
    ]

    DEFAULT_CSS = """
    HistoryDetailsScreen #history-details-title {
        dock: top;
        height: auto;
        padding: 0 1;
        text-style: bold;
        background: $panel;
    }
    HistoryDetailsScreen #history-details-body { height: 1fr; padding: 0 1; }
    HistoryDetailsScreen .section-title { margin-top: 1; text-style: bold underline; }
    HistoryDetailsScreen #outcome { height: auto; }
    HistoryDetailsScreen .legend { height: auto; color: $text-muted; }
    HistoryDetailsScreen DataTable { height: auto; max-height: 16; }
    HistoryDetailsScreen #remarks { height: auto; }
    """

    def __init__(
        self,
        call: MarginCall,
        snapshots: Sequence[StoredSnapshot],
        remarks: Sequence[StoredRemark] = (),
        orders: Sequence[StoredOrder] = (),
    ) -> None:
        super().__init__()
        self.call = call
        self.snapshots = tuple(sorted(snapshots, key=lambda s: s.seq))
        self.remarks = tuple(remarks)
        self.orders = tuple(orders)
        self.trigger = next(
            (s for s in self.snapshots if s.scenario is SnapshotScenario.TRIGGER), None
        )
        self.end = next(
            (s for s in reversed(self.snapshots) if s.scenario is SnapshotScenario.END), None
        )
        self.compared: StoredSnapshot | None = self.end  # the right-hand side

    # --- layout ------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(self._title(), id="history-details-title")
        with VerticalScroll(id="history-details-body"):
            yield Static(Text("Outcome"), classes="section-title")
            yield Static(id="outcome")
            yield Static(
                Text(
                    f"{CASH_IN_MEANING}. Price effect = price and fx moves on the quantity "
                    "held from trigger to end."
                ),
                classes="legend",
            )
            yield Static(id="compare-title", classes="section-title")
            yield DataTable(id="compare", cursor_type="row", show_row_labels=False)
            yield Static(id="positions-title", classes="section-title")
            yield DataTable(id="positions", cursor_type="row", show_row_labels=False)
            yield Static(
                Text("Lifecycle timeline: every snapshot (enter compares it with the trigger)"),
                classes="section-title",
            )
            yield DataTable(id="timeline", cursor_type="row", show_row_labels=False)
            yield Static(Text("Liquidation orders"), classes="section-title")
            yield DataTable(id="orders", cursor_type="row", show_row_labels=False)
            yield Static(Text("Remarks (newest first)"), classes="section-title")
            yield Static(remark_history(self.remarks, self.call), id="remarks")
        yield Footer()

    def on_mount(self) -> None:
        market, ccy = self.call.market, self.call.currency
        timeline = self._table("timeline")
        timeline.add_columns(*timeline_labels(market, ccy))
        for snap in self.snapshots:
            timeline.add_row(*timeline_cells(snap, market, ccy), key=str(snap.seq))
        orders = self._table("orders")
        orders.add_columns(*order_labels(market))
        for order in sorted(self.orders, key=lambda o: o.created_at):
            orders.add_row(*order_cells(order, market))
        self.query_one("#outcome", Static).update(self.outcome_table())
        self._render_comparison()
        self.query_one("#history-details-body", VerticalScroll).focus()

    def _table(self, table_id: str) -> DataTable[Any]:
        return self.query_one(f"#{table_id}", DataTable)

    def _title(self) -> Text:
        call = self.call
        text = Text("Ended margin call · ")
        text.append_text(data_text(call.account_id))
        text.append(" · ")
        text.append_text(data_text(call.client_name))
        text.append(f" · {call.kind.value} · {call.market.value} · {call.currency} · ")
        text.append_text(data_text(call.call_id))
        return text

    # --- outcome -----------------------------------------------------------------------

    @staticmethod
    def _payload(snap: StoredSnapshot | None) -> dict[str, Any] | None:
        return snap.payload if snap is not None and isinstance(snap.payload, dict) else None

    def outcome_table(self) -> Table:
        call, ccy = self.call, self.call.currency
        outcome = call_outcome(call, self._payload(self.trigger), self._payload(self.end))
        end_amount = payload_decimal(self._payload(self.end), "call_amount")
        took = (
            format_elapsed(aware(call.ended_at) - aware(call.triggered_at))
            if call.ended_at is not None
            else "—"
        )
        grid = Table.grid(padding=(0, 2), expand=True)
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column(no_wrap=True)
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column(ratio=1)
        reason = call.end_reason.value if call.end_reason is not None else "—"
        note = data_text(call.end_note) if call.end_note else Text("—")
        rows: list[tuple[str, Text | str, str, Text | str]] = [
            ("Triggered", _market_time(call.triggered_at, call), "End reason", reason),
            ("Ended", _market_time(call.ended_at, call), "How it was met", outcome.how),
            ("Took", took, "Closing note", note),
            ("Call at trigger", format_money(call.trigger_call_amount, ccy, code=True),
             "at notice", format_money(call.notified_call_amount, ccy, code=True)),
            ("Call at end", format_money(end_amount, ccy, code=True),
             "Cash in", _signed(outcome.cash_in, ccy)),
            ("Equity change", _signed(outcome.equity_change, ccy),
             "Price effect", _signed(outcome.price_effect, ccy)),
        ]  # fmt: skip
        for row in rows:
            grid.add_row(*row)
        return grid

    # --- trigger vs the compared snapshot ------------------------------------------------

    def _side(self, snap: StoredSnapshot | None) -> str:
        """`trigger 11-20 10:05`: which snapshot, when (market time); `none` if missing."""
        if snap is None:
            return "none"
        name = SIDE_NAMES.get(snap.scenario, snap.scenario.value)
        local = aware(snap.taken_at).astimezone(MARKET_TZ[self.call.market])
        return f"{name} {local:%Y-%m-%d %H:%M}"

    def _render_comparison(self) -> None:
        ccy, market = self.call.currency, self.call.market
        before, after = self._payload(self.trigger), self._payload(self.compared)
        right = SIDE_NAMES.get(self.compared.scenario, "?") if self.compared else "end"
        self.query_one("#compare-title", Static).update(
            Text(
                f"Account figures in {ccy}: {self._side(self.trigger)} vs "
                f"{self._side(self.compared)} ({market.value} time)"
            )
        )
        compare = self._table("compare")
        compare.clear(columns=True)
        compare.add_columns("Figure", "At trigger", f"At {right}", "Change")
        for change in figure_changes(before, after):
            compare.add_row(*self._figure_cells(change, ccy))
        compare.add_row(
            Text("Net asset ratio"),
            Text(format_ratio(payload_decimal(before, "net_asset_ratio")), justify="right"),
            Text(format_ratio(payload_decimal(after, "net_asset_ratio")), justify="right"),
            Text(""),
        )
        compare.add_row(Text("Risk level"), _level_text(before), _level_text(after), Text(""))
        compare.add_row(
            Text("Feed as of"),
            Text(_feed_time(self.trigger, market), justify="right"),
            Text(_feed_time(self.compared, market), justify="right"),
            Text(""),
        )
        self.query_one("#positions-title", Static).update(
            Text(f"Positions: trigger vs {right} (MV in {ccy})")
        )
        positions = self._table("positions")
        positions.clear(columns=True)
        positions.add_columns(
            "Symbol", "Qty trigger", f"Qty {right}", "Qty chg", "MV chg",
            "Px trigger", f"Px {right}", "FX", "MV trigger", f"MV {right}",
        )  # fmt: skip
        for moved in position_changes(before, after):
            positions.add_row(*self._position_cells(moved, ccy))

    @staticmethod
    def _figure_cells(change: FigureChange, base: str) -> tuple[Text, ...]:
        ccy = change.currency or base
        return (
            Text(change.label),
            Text(format_money(change.before, ccy), justify="right"),
            Text(format_money(change.after, ccy), justify="right"),
            _change_text(change.change, ccy),
        )

    @staticmethod
    def _position_cells(change: PositionChange, base: str) -> tuple[Text, ...]:
        before, after = change.before, change.after

        def quantity(value: Decimal | None) -> Text:
            return Text("—" if value is None else format_quantity(value), justify="right")

        def price(value: Decimal | None) -> Text:
            return Text("—" if value is None else format_price(value), justify="right")

        latest = after if after is not None else before
        fx = latest.fx if latest is not None else None
        qty_change = change.quantity_change
        return (
            data_text(change.symbol),
            quantity(before.quantity if before else None),
            quantity(after.quantity if after else None),
            Text(
                ("+" if qty_change > 0 else "") + format_quantity(qty_change),
                justify="right",
                style="bold" if qty_change else "",
            ),
            _change_text(change.value_change, base),
            price(before.price if before else None),
            price(after.price if after else None),
            Text("—" if fx is None else format_fx(fx), justify="right"),
            Text(format_money(before.market_value if before else None, base), justify="right"),
            Text(format_money(after.market_value if after else None, base), justify="right"),
        )

    @on(DataTable.RowSelected, "#timeline")
    def _compare_snapshot(self, event: DataTable.RowSelected) -> None:
        event.stop()
        seq = event.row_key.value
        chosen = next((s for s in self.snapshots if str(s.seq) == seq), None)
        if chosen is not None and chosen is not self.compared:
            self.compared = chosen
            self._render_comparison()

    def action_compare_end(self) -> None:
        if self.compared is not self.end:
            self.compared = self.end
            self._render_comparison()

    def action_back(self) -> None:
        self.dismiss(None)


__all__ = [
    "COLUMNS",
    "PAGE_SIZE",
    "ExportDialog",
    "ExportRequest",
    "HistoryDetailsScreen",
    "HistoryPane",
    "HistoryRow",
    "default_export_path",
    "export_file",
    "history_cells",
    "read_rows",
]
