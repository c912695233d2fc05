"""The Real-time warnings, Intraday margin and Exceptions tabs: a summary, one live row per call.

The live list holds every open call an operator has not marked as an exception; the
Exceptions tab holds the marked ones (still recomputed live), and un-marking a call
moves it back. Intraday is the live list's intraday-financing accounts.

An account whose figures cannot be computed (FEED.md: shown as incomplete, never as
safe) is a row too, keyed by its account as a call's row is: an open call keeps its row,
at level INCOMPLETE, its last figures marked as not current ("?"), "NOT CURRENT" in its
flag and the reason before its remark; an account without a call gets a row of its own
(state "no call", the reason as its remark), on the live list (and, if intraday, the
Intraday tab). The call keys have nothing to act on there: they say why (`no_call`).

Rows are ordered by urgency until the operator sorts by a column (`warning_order`:
every figure sorts by the desk's own figure, money in the reporting currency).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from itertools import count
from typing import Literal

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from risk_tui.core.calendar import Phase, TradingCalendars
from risk_tui.core.clock import market_time, phase_words
from risk_tui.core.margin import RiskLevel
from risk_tui.core.model import AccountKind, Market
from risk_tui.core.money import format_money, format_ratio
from risk_tui.core.view import DeskView, IncompleteRow, WarningRow
from risk_tui.screens import warning_order as order
from risk_tui.widgets.dialogs.formatting import RISK_LABEL, STATE_LABEL, format_elapsed
from risk_tui.widgets.live_table import Column, LiveTable, RowData
from risk_tui.widgets.render import data_text
from risk_tui.widgets.summary_bar import SummaryBar

FLATTEN_WINDOW = timedelta(minutes=20)  # intraday financing must be flat by the close


# Urgency by weight and words, not colour alone (issue 14: 6): under NO_COLOR a colour
# becomes a shade of grey (red or magenta: dark grey, dimmer than an ordinary row), so
# FORCE is reverse video and INCOMPLETE underlined, which read the same in every theme,
# at 16 colours and with none.
RISK_STYLE = {
    RiskLevel.FORCE_CALL: "bold reverse",
    RiskLevel.MARGIN_CALL: "bold yellow",
    RiskLevel.INCOMPLETE: "bold underline",
}

NOT_CURRENT = "?"
"""After a figure the desk could not recompute this poll: the last known, not now."""


def _money_column(key: str, label: str, priority: int, *, frozen: bool = False) -> Column:
    # Money sorts by its value in the reporting currency, largest first on the first press;
    # a figure is never cut (`whole`): the column is as wide as its widest figure.
    return Column(
        key,
        label,
        align="right",
        sort_value=order.SORT_VALUES[key],
        descending_first=True,
        priority=priority,
        frozen=frozen,
        whole=True,
    )


# Declared in the order shown; `priority` says which an 80-column window shows (1 to 5:
# who, how bad, how much in which currency, how long is left) and which a wider one adds.
# The wide layout (`w`) keeps the account and the call amount, with its currency, in
# place: every figure scrolled beside them is in that currency.
COLUMNS = (
    Column("account", "Account", max_width=12, priority=1, frozen=True),
    Column("client", "Client", max_width=24, priority=2),
    Column("alert", "Level", max_width=11, priority=3),
    _money_column("call_amount", "Call amount", 4, frozen=True),
    Column("deadline", "Time left", max_width=9, sort_value=order.deadline, priority=5),
    Column("state", "State", max_width=10, priority=6),
    Column("triggered", "Triggered", max_width=19, sort_value=order.triggered, priority=7),
    Column("elapsed", "Elapsed", align="right", max_width=11, sort_value=order.elapsed, priority=8),
    _money_column("equity", "Equity", 9),
    _money_column("mm", "MM", 10),
    _money_column("im", "IM", 11),
    _money_column("fm", "FM", 12),
    Column("nar", "NAR", align="right", max_width=8, sort_value=order.net_asset_ratio, priority=13),
    Column("claim", "On it", max_width=10, priority=14),  # who claimed the call ("I'm on it")
    Column("flag", "Flag", max_width=20, priority=15),  # FLATTEN NOW (intraday), AUTO-LIQ
    Column("exception", "Exc", max_width=3, priority=16),
    Column("kind", "Kind", max_width=8, priority=17),
    Column("remark", "Remark", max_width=30, priority=18),
)
# The Exceptions tab is read for why each call is there: the remark comes right after
# the figures an 80-column window shows, and first among those a wider one adds; the
# EXC and FLATTEN columns say nothing there (all are exceptions).
EXCEPTION_ORDER = (
    "account", "client", "alert", "call_amount", "deadline", "remark", "state", "claim",
    "triggered", "elapsed", "equity", "mm", "im", "fm", "nar", "kind",
)  # fmt: skip
_POSITION = {column.key: index for index, column in enumerate(COLUMNS)}
_CLIENT = 1  # the client's cell, in both orders
EXCEPTION_COLUMNS = tuple(
    replace(COLUMNS[_POSITION[key]], priority=priority)
    for priority, key in enumerate(EXCEPTION_ORDER, start=1)
)

# Intraday financing must be flat by the close: its FLATTEN NOW flag comes right after
# the time left, before the columns a wider window adds.
INTRADAY_COLUMNS = tuple(
    replace(column, priority=6) if column.key == "flag" else column for column in COLUMNS
)


def time_left(deadline: datetime | None, now: datetime) -> Text:
    """The deadline as time left: `1d 3h`, `5h 07m`, `12m`; red under a day; `OVERDUE`."""
    if deadline is None:
        return Text("none", style="bold")  # the calendar gave no deadline
    left = deadline - now
    if left < timedelta(0):
        return Text("OVERDUE", style="bold red")
    minutes = int(left.total_seconds()) // 60
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return Text(f"{days}d {hours}h")
    return Text(f"{hours}h {minutes:02d}m" if hours else f"{minutes}m", style="red")


def _why(reason: str, *, before: Text | None = None, then: str = "") -> Text:
    """An incomplete account's reason, where its call amount would be (after the last
    known amount, if a call has one): it runs on over the empty cells to its right
    (`overflow="ignore"`), so an 80-column window shows it."""
    text = before.copy().append(" ") if before is not None else Text()
    text.append_text(data_text(reason, style=RISK_STYLE[RiskLevel.INCOMPLETE]))
    if then:
        text.append(f" · {then}")
    text.overflow = "ignore"
    return text


# shift+letter sorts (k9s habit): the letter of each sortable column.
SORT_KEYS = {
    "A": "account",
    "C": "client",
    "L": "alert",
    "S": "state",
    "T": "triggered",
    "E": "elapsed",
    "D": "deadline",
    "Q": "equity",
    "M": "mm",
    "F": "fm",
    "K": "call_amount",
    "N": "nar",
    "R": "remark",
    "U": order.URGENCY_LABEL,  # back to the default order
}


def sort_label(column: str) -> str:
    """A sort key's label in words, by the column's heading: "Sort by call amount"."""
    headings = {c.key: c.label for c in COLUMNS}
    if column == order.URGENCY_LABEL:
        return f"Sort by {column} (the default order)"
    heading = headings.get(column, column.replace("_", " "))
    if heading[1:2].islower():  # "Call amount" reads "call amount"; "NAR" stays NAR
        heading = heading[0].lower() + heading[1:]
    return f"Sort by {heading}"


def row_cells(row: WarningRow, now: datetime, flag: str = "") -> RowData:
    call = row.call
    ccy = call.currency
    level = row.risk_level
    current = row.figures_current
    margin = row.shown_figures  # the last complete figures while these are not current
    state = STATE_LABEL[call.state] + (" LONG" if row.long_outstanding else "")
    left = time_left(call.deadline, now)

    def money(value: Decimal | None, style: str = "", code: bool = False) -> Text:
        text = format_money(value, ccy, code=code and value is not None)
        if current or value is None:
            return Text(text, style=style)
        return Text(text + NOT_CURRENT, style="dim")

    remark = data_text(call.remark)
    amount = money(call.call_amount, "bold", code=True)
    if not current:
        flag = flag or "NOT CURRENT"
        if row.incomplete is not None:
            # Why the figures are not current, after the last call amount; the time left
            # follows it (its own cell stays empty for the reason to run on over).
            amount, left = _why(row.incomplete, before=amount, then=left.plain), Text()
            reason = data_text(row.incomplete)
            reason.stylize(RISK_STYLE[RiskLevel.INCOMPLETE])
            remark = reason.append(" — " if call.remark else "").append_text(remark)

    return RowData(
        (
            data_text(call.account_id),
            data_text(call.client_name),
            Text(RISK_LABEL[level], style=RISK_STYLE.get(level, "")),
            amount,
            left,
            Text(state),
            Text(market_time(call.triggered_at, call.market, now=now)),
            Text(format_elapsed(now - call.triggered_at)),
            money(margin.equity if margin else None),
            money(margin.mm if margin else None),
            money(margin.im if margin else None),
            money(margin.fm if margin else None),
            Text(
                format_ratio(margin.net_asset_ratio if margin else None)
                + ("" if current or margin is None else NOT_CURRENT),
                style="" if current else "dim",
            ),
            data_text(call.claimed_by or ""),
            Text(
                ", ".join(word for word in (flag, "AUTO-LIQ" if row.planned else "") if word),
                style="bold",
            ),
            Text("EXC" if call.exception else ""),
            Text(call.kind.value),
            remark,
        )
    )


def incomplete_cells(row: IncompleteRow) -> RowData:
    """An account without a call whose figures cannot be computed: level, reason, no figure."""
    unknown = Text(format_money(None, row.currency))
    reason = data_text(row.reason)
    reason.stylize(RISK_STYLE[RiskLevel.INCOMPLETE])
    return RowData(
        (
            data_text(row.account_id),
            data_text(row.client_name),
            Text(RISK_LABEL[RiskLevel.INCOMPLETE], style=RISK_STYLE[RiskLevel.INCOMPLETE]),
            _why(row.reason),
            Text(),
            Text("no call"),
            Text(),
            Text(),
            unknown,
            unknown,
            unknown,
            unknown,
            Text(format_ratio(None)),
            Text(),
            Text(),
            Text(),
            Text(row.kind.value),
            reason,
        )
    )


PaneMode = Literal["live", "intraday", "exceptions"]
Shown = WarningRow | IncompleteRow


class WarningsPane(Vertical):
    """One tab of open calls, fed one DeskView at a time, repainting only what changed."""

    DEFAULT_CSS = """
    WarningsPane { height: 1fr; }
    WarningsPane > .market-clock {
        height: 1; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis;
    }
    WarningsPane > LiveTable { height: 1fr; }
    """

    def __init__(
        self,
        *,
        mode: PaneMode = "live",
        calendars: TradingCalendars | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.mode = mode
        self.intraday_only = mode == "intraday"
        self.calendars = calendars
        self._shown: dict[str, tuple[Shown, str]] = {}  # account → row and flag shown
        self._versions = count(1)  # each row sent to the table gets a new version
        self._minute = -1
        self._last_view: DeskView | None = None  # the view last shown
        self._calendars_ready = False
        self.changed_last = 0

    def compose(self) -> ComposeResult:
        yield SummaryBar()
        if self.intraday_only:
            yield Static(classes="market-clock")
        columns = {
            "live": COLUMNS,
            "intraday": INTRADAY_COLUMNS,
            "exceptions": EXCEPTION_COLUMNS,
        }[self.mode]
        yield LiveTable(
            columns,
            noun="open calls" if self.mode != "exceptions" else "exceptions",
            default_order=order.urgency,
            default_order_label=order.URGENCY_LABEL,
            id=f"{self.id}-table",
        )

    def _cell_tuple(self, row: Shown, now: datetime, flag: str) -> tuple[Text, ...]:
        return self._cells(row, now, flag).cells

    def _cells(self, row: Shown, now: datetime, flag: str) -> RowData:
        if isinstance(row, IncompleteRow):
            cells = incomplete_cells(row)
        else:
            cells = row_cells(row, now, flag)
        if self.mode != "exceptions":
            return cells
        return RowData(tuple(cells.cells[_POSITION[key]] for key in EXCEPTION_ORDER))

    @property
    def table(self) -> LiveTable:
        return self.query_one(LiveTable)

    def sort(self, column: str) -> None:
        """A shift+letter: sort by the column (again: flip it), or back to urgency."""
        if column == order.URGENCY_LABEL:
            self.table.sort_by(None)
        else:
            self.table.cycle_sort(column)

    def _rows(self, view: DeskView) -> list[WarningRow]:
        if self.mode == "exceptions":
            return [row for row in view.warnings if row.call.exception]
        live = (row for row in view.warnings if not row.call.exception)
        if self.intraday_only:
            return [row for row in live if row.intraday]
        return list(live)

    def _incomplete(self, view: DeskView) -> list[IncompleteRow]:
        """Incomplete accounts without a call (one with a call is the call's row)."""
        if self.mode == "exceptions":
            return []  # only a call can be marked as an exception
        return [
            row
            for row in view.incomplete
            if not row.open_call and (not self.intraday_only or row.kind is AccountKind.INTRADAY)
        ]

    def no_call(self, account_id: str | None) -> str | None:
        """Why the call keys have nothing to act on for this row (None: it is a call's)."""
        shown = self._shown.get(account_id) if account_id is not None else None
        if shown is None or not isinstance(shown[0], IncompleteRow):
            return None
        return f"{account_id} has no open call: its figures cannot be computed ({shown[0].reason})"

    def _flags(self, rows: list[WarningRow], now: datetime) -> dict[str, str]:
        if not self.intraday_only or self.calendars is None or not self.calendars.ready:
            # Not before the calendars are built (the desk builds them in a worker thread
            # after the first paint): the next tick shows the flags.
            return {}
        closing = {
            market: left
            for market in Market
            if (left := self.calendars.time_to_close(market, now)) is not None
            and left <= FLATTEN_WINDOW
        }
        return {
            row.account_id: "FLATTEN NOW"
            for row in rows
            if row.call.market in closing and row.margin is not None and row.margin.holds_positions
        }

    def show(self, view: DeskView, now: datetime, *, force: bool = False) -> int:
        """Apply the view as one diff; returns how many rows changed."""
        if not self.query(LiveTable):
            return 0  # not composed yet: the app's next tick shows this view
        minute = int(now.timestamp() // 60)
        new_minute = minute != self._minute  # elapsed and PAST move once a minute
        calendars_ready = self.calendars is None or self.calendars.ready
        if (
            view is self._last_view
            and not new_minute
            and not force
            and calendars_ready == self._calendars_ready
        ):
            # The app's tick with no new view: only the market clocks move.
            if self.intraday_only:
                for clock in self.query(".market-clock").results(Static):
                    clock.update(self._clock_line(now))
            return 0
        self._last_view = view
        self._calendars_ready = calendars_ready  # the flags need them
        rows = self._rows(view)
        incomplete = self._incomplete(view)
        flags = self._flags(rows, now)
        self._minute = minute
        upserts: dict[str, RowData] = {}
        previous = self._shown
        shown: dict[str, tuple[Shown, str]] = {}
        changed = 0  # rows whose figures changed (a clock-only refresh does not count)
        refresh_all = force or new_minute
        every: list[Shown] = [*rows, *incomplete]
        for row in every:
            key = row.account_id
            flag = flags.get(key, "") if flags else ""
            before = previous.get(key)
            # The engine hands the same row object while nothing it shows changed.
            moved = before is None or before[0] is not row or before[1] != flag
            shown[key] = (row, flag)
            if moved or refresh_all:
                # Formatted only if the table ever needs the cells (on screen, sorted by
                # text, filtered): a crash poll changes thousands of rows at once. The
                # row itself is the record the figure columns and the urgency sort read.
                upserts[key] = RowData.lazy(
                    partial(self._cell_tuple, row, now, flag), next(self._versions), row
                )
            changed += moved
        removals = [key for key in previous if key not in shown]
        self._shown = shown
        changed += len(removals)
        table = self.table
        if upserts or removals:
            table.apply_diff(upserts, removals)
        totals = {
            "live": view.live_totals,
            "intraday": view.intraday_totals,
            "exceptions": view.exception_totals,
        }[self.mode]
        # query, not query_one: while the app closes, children go one by one.
        if totals is not None:
            for bar in self.query(SummaryBar):
                bar.show(rows, totals, incomplete=len(incomplete))
            self._name_sort(every, totals.currency)
        if self.intraday_only:
            for clock in self.query(".market-clock").results(Static):
                clock.update(self._clock_line(now))
        self.changed_last = changed
        return changed

    def _name_sort(self, rows: list[Shown], currency: str) -> None:
        """What the table's header says of a money sort: its currency, and how many rows
        have no value in it (no fx rate, no figures), sorted apart."""
        table = self.table
        column = table.sort_column
        if column not in order.MONEY_COLUMNS:
            table.set_sort_note("")
            return
        apart = order.apart(rows, column)
        where = "first" if not table.sort_reverse else "last"
        note = f"in {currency}" + (f", {apart} without a value {where}" if apart else "")
        table.set_sort_note(note, show=bool(apart))

    def on_live_table_sort_changed(self, event: LiveTable.SortChanged) -> None:
        if self._last_view is not None and self._last_view.totals is not None:
            self._name_sort(
                [shown for shown, _ in self._shown.values()], self._last_view.totals.currency
            )

    def _clock_line(self, now: datetime) -> Text:
        if self.calendars is not None and not self.calendars.ready:
            return Text("market hours: reading the trading calendars…")
        if self.calendars is None:
            return Text("market hours: no trading calendars")
        parts = []
        for market in Market:
            phase = self.calendars.phase(market, now)
            text = phase_words(phase)
            left = phase.change_in
            if phase.phase is Phase.OPEN and left is not None and left <= FLATTEN_WINDOW:
                text += " — FLATTEN INTRADAY"
            parts.append(text)
        return Text("   ".join(parts))

    def set_text_filter(self, needle: str, symbols_of: Callable[[str], set[str]]) -> None:
        """The `/` filter: account, client or a held symbol contains the text."""
        typed = needle.strip()
        needle = typed.lower()
        if not needle:
            self.table.set_filter(None)
            return

        def keep(key: str, row: RowData) -> bool:
            if needle in key.lower() or needle in row.cells[_CLIENT].plain.lower():
                return True
            return any(needle in symbol.lower() for symbol in symbols_of(key))

        self.table.set_filter(keep, needle=typed)
