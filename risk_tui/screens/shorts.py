"""The Short positions tab (融券持倉概覽) and the details of one shorted stock.

The tab has one row per stock clients are short: shortfall and its worth in the reporting
currency, total client short, the firm's borrow available, recall quantity and due date,
number of clients, borrow rate; `o` steps through orderings (worth of the shortfall
first). It is computed from the book's short index (never a scan of every position),
again only when the feed's cursor moved and at most once a second.

Enter opens the stock's details: the clients short it, in the allocation rule's order,
each with its margin state, deficit and suggested buy-to-cover. There `l` buys to cover
for the client under the cursor (a client not in margin call only on an override with a
reason), `m` sends the margin-call message to the marked clients (or the one under the
cursor) exactly as on the Real-time warnings tab, and enter opens the client's margin
call details. The details refresh themselves while open (the app does not repaint under
a screen).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Static

from risk_tui.core.actions import MESSAGING_ROLES, TRADING_ROLES, Actor
from risk_tui.core.calendar import MARKET_TZ
from risk_tui.core.four_eyes import ApprovalRequest, awaiting_line
from risk_tui.core.model import Side
from risk_tui.core.money import ZERO, format_money, format_ratio
from risk_tui.core.shorts import (
    RULE_WORDS,
    Allocation,
    AllocationRule,
    ShortDetail,
    ShortLine,
    short_detail,
    short_overview,
    summarize,
)
from risk_tui.render import data_text
from risk_tui.screens.warnings import RISK_LABEL, RISK_STYLE
from risk_tui.widgets.desk_pane import DeskPane
from risk_tui.widgets.dialogs.cover import BuyToCoverDialog, cover_problem
from risk_tui.widgets.dialogs.formatting import format_quantity
from risk_tui.widgets.dialogs.holdings import open_quantity
from risk_tui.widgets.live_table import Column, LiveTable, RowData

if TYPE_CHECKING:
    from risk_tui.app import RiskApp
    from risk_tui.config import Settings
    from risk_tui.core.view import DeskView
    from risk_tui.engine import Desk

MIN_INTERVAL = 1.0  # seconds: the overview is recomputed at most this often
ORDERS_INTERVAL = 5.0  # seconds: the details re-read working buy orders this often


def _number(cell: Text) -> tuple[int, Decimal]:
    """Sort a quantity or amount by value; words ('unknown', '—') sort below any number."""
    try:
        return (1, Decimal(cell.plain.replace(",", "").split()[0].rstrip("%")))
    except (InvalidOperation, ValueError, IndexError):
        return (0, ZERO)


def _shortfall(cell: Text) -> tuple[int, Decimal]:
    """A shortfall sorts descending as: real shortfalls by size, then unknown, then none."""
    plain = cell.plain.replace(",", "")
    try:
        value = Decimal(plain)
    except InvalidOperation:
        return (1, ZERO)  # unknown: no borrow record
    return (2, value) if value > 0 else (0, ZERO)


def _worth(cell: Text) -> tuple[int, Decimal]:
    """Shortfall value, descending: valued shortfalls by value, then shortfalls without a
    price or fx, then unknown shortfalls (no borrow record), then none."""
    plain = cell.plain.replace(",", "")
    try:
        value = Decimal(plain)
    except InvalidOperation:
        return (2, ZERO) if plain == NO_VALUE else (1, ZERO)
    return (3, value) if value > 0 else (0, ZERO)


NO_VALUE = "no price/fx"


def overview_columns(currency: str) -> tuple[Column, ...]:
    # What an 80-column terminal shows first: the shortfall, its worth, the borrow, the recall.
    return (
        Column("symbol", "Symbol", max_width=12),
        Column("shortfall", "Shortfall", align="right", sort_key=_shortfall, max_width=12),
        Column("value", f"Shortfall {currency}", align="right", sort_key=_worth, max_width=18),
        Column("short", "Short qty", align="right", sort_key=_number, max_width=14),
        Column("available", "Available", align="right", sort_key=_number, max_width=14),
        Column("recalled", "Recalled", align="right", sort_key=_number, max_width=14),
        Column("due", "Recall due", max_width=16),
        Column("clients", "Clients", align="right", sort_key=_number, max_width=7),
        Column("rate", "Rate", align="right", sort_key=_number, max_width=7),
        Column("name", "Name", max_width=24),
        Column("market", "Mkt", max_width=3),
    )


# `o` steps through these orders (column, descending). First: what the shortfall is worth
# (share counts of different stocks do not compare).
SORT_CYCLE: tuple[tuple[str, bool], ...] = (
    ("value", True),
    ("shortfall", True),
    ("short", True),
    ("due", False),
    ("symbol", False),
)


def market_date(line: ShortLine, now: datetime) -> date:
    """Today as the stock's market reads its calendar (UTC for an unknown stock)."""
    zone = MARKET_TZ[line.instrument.market] if line.instrument is not None else UTC
    moment = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    return moment.astimezone(zone).date()


def due_text(line: ShortLine, today: date) -> Text:
    borrow = line.borrow
    if borrow is None or borrow.recall_due is None:
        return Text("—")
    text = Text(f"{borrow.recall_due:%Y-%m-%d}")
    if borrow.recall_due < today:
        text.append(" PAST", style="bold")
    elif borrow.recall_due == today:
        text.append(" TODAY", style="bold")
    return text


def shortfall_text(line: ShortLine) -> Text:
    shortfall = line.shortfall
    if shortfall is None:
        return Text("unknown", style="bold")
    return Text(format_quantity(shortfall), style="bold" if shortfall > 0 else "")


def line_cells(line: ShortLine, today: date, reporting_currency: str) -> RowData:
    borrow = line.borrow
    instrument = line.instrument
    value = line.shortfall_value
    return RowData(
        (
            data_text(line.symbol),
            shortfall_text(line),
            Text(
                format_money(value, reporting_currency)
                if value is not None
                else ("—" if line.shortfall is None else NO_VALUE)
            ),
            Text(format_quantity(line.short_quantity)),
            Text(format_quantity(borrow.available)) if borrow else Text("no record", "bold"),
            Text(format_quantity(borrow.recall_quantity)) if borrow else Text("—"),
            due_text(line, today),
            Text(str(line.clients)),
            Text(format_ratio(borrow.rate) if borrow else "—"),
            data_text(instrument.name) if instrument else Text("not described by the feed"),
            Text(instrument.market.value if instrument else "—"),
        )
    )


def rule_of(settings: Settings) -> AllocationRule:
    return settings.shorts.allocation


class ShortsPane(DeskPane):
    """Tab 3: one row per shorted stock; enter opens its clients and the allocation."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("o", "cycle_order", "Order by", id="shorts.order"),
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
        currency = self.risk_app.settings.desk.reporting_currency
        yield LiveTable(overview_columns(currency), fixed_columns=1, id=f"{self.id}-table")

    def on_mount(self) -> None:
        column, reverse = SORT_CYCLE[0]
        self.table.sort_by(column, reverse)

    @property
    def risk_app(self) -> RiskApp:
        return cast("RiskApp", self.app)

    def refresh_from(self, desk: Desk, view: DeskView, now: datetime) -> None:
        """Recompute when the feed moved (or the minute turned), at most once a second."""
        if not self.query(LiveTable):
            return  # not composed yet: the next view shows it
        seen = (view.cursor, int(now.timestamp() // 60))
        at = self.monotonic()
        if seen == self._seen or at - self._last_at < self.min_interval:
            return
        self._seen = seen
        self._last_at = at
        settings = self.risk_app.settings
        self.show(desk, now, settings.desk.reporting_currency, rule_of(settings))

    def show(self, desk: Desk, now: datetime, currency: str, rule: AllocationRule) -> None:
        book = desk.engine.book
        lines = short_overview(book, currency)
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
            summary.update(self._summary(lines, currency, rule, fed=book.cursor is not None))

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
        app = self.risk_app
        if app.desk is None:
            return
        settings = app.settings
        app.push_screen(
            ShortDetailsScreen(
                app.desk,
                event.key,
                app.actor,
                rule=rule_of(settings),
                reporting_currency=settings.desk.reporting_currency,
                clock=app.clock,
            )
        )


# --- details of one stock -----------------------------------------------------------------


def client_columns(currency: str) -> tuple[Column, ...]:
    return (
        Column("rank", "#", align="right", sort_key=_number, max_width=5),
        Column("account", "Account", max_width=12),
        Column("client", "Client", max_width=16),
        Column("risk", "Risk", max_width=11),
        Column("short", "Short qty", align="right", sort_key=_number, max_width=12),
        Column("suggested", "To buy", align="right", sort_key=_number, max_width=12),
        Column("deficit", f"Deficit {currency}", align="right", sort_key=_number, max_width=16),
        Column("working", "Working", align="right", sort_key=_number, max_width=10),
        Column("call", "Call", max_width=12),
        Column("note", "Note", max_width=48),
    )


def allocation_cells(rank: int, allocation: Allocation, working: Decimal, currency: str) -> RowData:
    holder = allocation.holder
    level = holder.risk_level
    risk = (
        Text(RISK_LABEL[level], style=RISK_STYLE.get(level, ""))
        if level is not None
        else Text("no figures", style="bold")
    )
    if holder.call is not None:
        call = Text(holder.call.state.value.replace("_", " "))  # triggered, notified, …
        note = Text("")
    else:
        call = Text("—")
        note = Text("not in call: override with a reason")
    if holder.unknown is not None:
        note = data_text(holder.unknown)
    deficit = (
        Text(format_money(holder.deficit_reporting, currency))
        if holder.deficit_reporting is not None
        else Text("unknown", style="bold")
    )
    suggested = allocation.suggested
    return RowData(
        (
            Text(str(rank)),
            data_text(holder.account_id),
            data_text(holder.client_name or "—"),
            risk,
            Text(format_quantity(holder.short_quantity)),
            Text(format_quantity(suggested), style="bold") if suggested > 0 else Text("—"),
            deficit,
            Text(format_quantity(working)) if working > 0 else Text(""),
            call,
            note,
        )
    )


class ShortDetailsScreen(Screen[None]):
    """The clients short one stock, in the allocation rule's order, with their buy-to-cover."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="shorts.back"),
        Binding("l", "cover", "Buy to cover", id="shorts.cover"),
        Binding("m", "message", "Message", id="shorts.message"),
    ]

    DEFAULT_CSS = """
    ShortDetailsScreen #short-title {
        dock: top;
        height: auto;
        padding: 0 1;
        text-style: bold;
        background: $panel;
    }
    ShortDetailsScreen #short-summary { height: auto; padding: 0 1; }
    ShortDetailsScreen #short-clients { height: 1fr; }
    """

    def __init__(
        self,
        desk: Desk,
        symbol: str,
        actor: Actor,
        *,
        rule: AllocationRule,
        reporting_currency: str,
        clock: Callable[[], datetime],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.desk = desk
        self.symbol = symbol
        self.actor = actor
        self.rule = rule
        self.currency = reporting_currency
        self.clock = clock
        self.monotonic = monotonic
        self.detail: ShortDetail | None = None
        self.working: dict[str, Decimal] = {}  # account → open buy quantity in this stock
        self._cursor: object = object()  # the book cursor last shown
        self._orders_at = -float("inf")
        self._shown: dict[str, tuple[int, Allocation, Decimal]] = {}

    def compose(self) -> ComposeResult:
        yield Static(self._title(), id="short-title")
        yield Static(id="short-summary")
        yield LiveTable(client_columns(self.currency), fixed_columns=2, id="short-clients")
        yield Footer()

    @property
    def table(self) -> LiveTable:
        return self.query_one("#short-clients", LiveTable)

    @property
    def risk_app(self) -> RiskApp:
        return cast("RiskApp", self.app)

    def on_mount(self) -> None:
        self.refresh_figures(force=True)  # and the first read of working orders
        self.set_interval(1.0, self.refresh_figures)
        self.table.focus()

    # --- figures -----------------------------------------------------------------------

    def refresh_figures(self, *, force: bool = False) -> None:
        """Recompute from the desk when the book moved; re-read working orders now and then."""
        if self.monotonic() - self._orders_at >= ORDERS_INTERVAL:
            self.load_orders()
        book = self.desk.engine.book
        if not force and book.cursor == self._cursor:
            return
        self._cursor = book.cursor
        engine = self.desk.engine
        self.detail = short_detail(
            book, engine.results, engine.open_calls, self.symbol, self.rule, self.currency
        )
        self._show()

    @work(exclusive=True, group="short-orders", exit_on_error=False)
    async def load_orders(self) -> None:
        """The open buy quantity in this stock per account, from the desk's working orders."""
        self._orders_at = self.monotonic()
        working: dict[str, Decimal] = {}
        for order in await self.desk.store.orders.working_orders():
            if order.symbol == self.symbol and order.side is Side.BUY:
                working[order.account_id] = working.get(order.account_id, ZERO) + open_quantity(
                    order
                )
        if working != self.working:
            self.working = working
            self._show()

    def _show(self) -> None:
        if not self.query("#short-clients"):
            return  # not composed yet, or already closed
        detail = self.detail
        allocations = detail.allocations if detail is not None else ()
        upserts: dict[str, RowData] = {}
        seen: set[str] = set()
        for rank, allocation in enumerate(allocations, start=1):
            key = allocation.holder.account_id
            seen.add(key)
            working = self.working.get(key, ZERO)
            identity = (rank, allocation, working)
            if self._shown.get(key) != identity:
                self._shown[key] = identity
                upserts[key] = allocation_cells(rank, allocation, working, self.currency)
        removals = [key for key in self._shown if key not in seen]
        for key in removals:
            del self._shown[key]
        table = self.table
        if upserts or removals:
            table.apply_diff(upserts, removals)
            if table.sort_column is None:
                table.sort_by("rank")
        self.query_one("#short-summary", Static).update(self._summary())

    def _title(self) -> Text:
        text = Text("Short position details · ")
        text.append_text(data_text(self.symbol))
        instrument = self.desk.engine.book.instruments.get(self.symbol)
        if instrument is not None:
            text.append(" · ")
            text.append_text(data_text(instrument.name))
            text.append(f" · {instrument.market.value} · {instrument.currency}")
        return text

    def _summary(self) -> Table | Text:
        detail = self.detail
        if detail is None:
            return Text(f"No client is short {self.symbol} any more.", style="bold")
        line = detail.line
        borrow = line.borrow
        grid = Table.grid(padding=(0, 1))
        for _ in range(3):
            grid.add_column(style="bold", no_wrap=True)
            grid.add_column(justify="right", no_wrap=True)
        today = market_date(line, self.clock())
        price = (
            f"{line.price:,f} {line.currency}" if line.price is not None and line.currency else "—"
        )
        grid.add_row(
            "Clients short",
            str(line.clients),
            "Total short",
            format_quantity(line.short_quantity),
            "Available",
            format_quantity(borrow.available) if borrow else Text("no borrow record", "bold"),
        )
        grid.add_row(
            "Recalled",
            format_quantity(borrow.recall_quantity) if borrow else "—",
            "Recall due",
            due_text(line, today),
            "Shortfall",
            shortfall_text(line),
        )
        value = line.shortfall_value
        grid.add_row(
            "Borrow rate",
            format_ratio(borrow.rate) if borrow else "—",
            "Last price",
            price,
            "Shortfall value",
            format_money(value, self.currency, code=True) if value is not None else "—",
        )
        text = Text(f"Allocation: {RULE_WORDS[detail.rule]}. ")
        shortfall = line.shortfall
        if shortfall is None:
            text.append(
                "No borrow record for this stock: the shortfall is unknown, nothing is suggested.",
                style="bold",
            )
        elif shortfall <= 0:
            text.append("No shortfall: no buy-in needed.")
        else:
            total = detail.suggested_total
            text.append(f"Suggested {format_quantity(total)} to buy back", style="bold")
            text.append(
                " (meets the shortfall)."
                if detail.covered
                else f", short of the shortfall by {format_quantity(shortfall - total)}."
            )
        outer = Table.grid()
        outer.add_column()
        outer.add_row(grid)
        outer.add_row(text)
        outer.add_row(Text("l buy to cover · m message · space marks · esc back", "dim"))
        return outer

    def allocation_for(self, account_id: str | None) -> Allocation | None:
        if self.detail is None or account_id is None:
            return None
        return next((a for a in self.detail.allocations if a.holder.account_id == account_id), None)

    # --- actions -----------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cover":
            return self.actor.role in TRADING_ROLES
        if action == "message":
            return self.actor.role in MESSAGING_ROLES
        return True

    def action_back(self) -> None:
        self.dismiss(None)

    @on(LiveTable.RowSelected, "#short-clients")
    def _open_call(self, event: LiveTable.RowSelected) -> None:
        """Enter: the client's margin call in full (the Real-time warnings details)."""
        event.stop()
        allocation = self.allocation_for(event.key)
        if allocation is None:
            return
        if allocation.holder.call is None:
            self.risk_app.notify(
                f"{allocation.holder.account_id} is not in margin call: no call details",
                severity="warning",
            )
            return
        self.risk_app.open_details(allocation.holder.account_id)

    def action_cover(self) -> None:
        allocation = self.allocation_for(self.table.cursor_key)
        if allocation is not None:
            self.cover(allocation.holder.account_id)

    @work(exclusive=True, group="short-action")
    async def cover(self, account_id: str) -> None:
        """Buy to cover for one client: the dialog, then `Desk.submit_order` via the app."""
        app = self.risk_app
        allocation = self.allocation_for(account_id)
        if allocation is None or self.detail is None:
            return
        if self.actor.role not in TRADING_ROLES:
            app.notify(
                f"buy to cover: not allowed for role {self.actor.role.value}", severity="error"
            )
            return
        holder = allocation.holder
        problem = cover_problem(holder, self.symbol)
        if problem is not None:
            app.notify(f"buy to cover {holder.account_id}: {problem}", severity="warning")
            return
        answer = await app.push_screen_wait(
            BuyToCoverDialog(
                self.detail.line,
                holder,
                allocation.suggested,
                self.working.get(account_id, ZERO),
                self.rule,
                self.actor,
            )
        )
        if answer is None:
            return
        desk, actor = self.desk, self.actor

        async def send() -> str:
            outcome = await desk.submit_order(
                answer.intent, actor, override_reason=answer.override_reason
            )
            intent = answer.intent
            state = (
                awaiting_line(outcome)
                if isinstance(outcome, ApprovalRequest)
                else outcome.send_state.value
            )
            return (
                f"buy to cover {format_quantity(intent.quantity)} {intent.symbol} for "
                f"{intent.account_id}: {state}"
            )

        await app._act(send, "buy to cover")
        self.load_orders()
        self.refresh_figures(force=True)

    def action_message(self) -> None:
        """Margin-call messages to the marked clients (or the one under the cursor)."""
        table = self.table
        visible = set(table.visible_keys())
        marked = sorted(key for key in table.marked_keys if key in visible)
        targets = marked or ([table.cursor_key] if table.cursor_key else [])
        allocations = [a for key in targets if (a := self.allocation_for(key)) is not None]
        if not allocations:
            return
        in_call = [a.holder.account_id for a in allocations if a.holder.call is not None]
        others = [a.holder.account_id for a in allocations if a.holder.call is None]
        if others:
            names = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if others[5:] else "")
            self.risk_app.notify(
                f"no margin-call message for {names}: not in margin call "
                "(a recall buy-in needs no message; use l with an override reason)",
                severity="warning",
                timeout=8,
            )
        if in_call:
            self.risk_app.message(in_call)  # the Real-time warnings path, unchanged
            table.clear_marks()


__all__ = [
    "ShortDetailsScreen",
    "ShortsPane",
    "allocation_cells",
    "line_cells",
    "overview_columns",
]
