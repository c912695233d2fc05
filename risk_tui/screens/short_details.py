"""One shorted stock in detail (Short positions tab, enter): its clients in the allocation
rule's order, each with margin state, deficit and suggested buy-to-cover.

`l` buys to cover for the client under the cursor (a client not in margin call only on
an override with a reason), `m` sends the marked clients (or the one under the cursor) a
recall notice when they are not in margin call and the margin-call message, exactly as on
the Real-time warnings tab, when they are; enter opens the client's margin call details.
The details refresh themselves while open (the app does not repaint under a screen).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Static

from risk_tui.core.four_eyes import ApprovalRequest, awaiting_line
from risk_tui.core.model import Market, Side
from risk_tui.core.money import ZERO, format_money, format_ratio
from risk_tui.core.roles import Actor, Intent, allowed
from risk_tui.core.shorts import (
    RULE_WORDS,
    Allocation,
    AllocationRule,
    ShortDetail,
)
from risk_tui.screens.short_cells import (
    allocation_cells,
    client_columns,
    due_text,
    market_date,
    shortfall_text,
)
from risk_tui.widgets.desk_footer import DeskFooter
from risk_tui.widgets.dialogs.cover import BuyToCoverDialog, cover_problem
from risk_tui.widgets.dialogs.formatting import format_quantity
from risk_tui.widgets.dialogs.holdings import open_quantity
from risk_tui.widgets.dialogs.kill_switch import liquidation_halt
from risk_tui.widgets.dialogs.recall_notice import RecallNoticeDialog
from risk_tui.widgets.host import DeskHost
from risk_tui.widgets.live_table import LiveTable, RowData
from risk_tui.widgets.pairs import PAIR_BREAKPOINTS, Figure, Pair, PairGroup, PairGroups
from risk_tui.widgets.render import data_text

if TYPE_CHECKING:
    from risk_tui.desk.api import DeskApi


ORDERS_INTERVAL = 5.0  # seconds: the details re-read working buy orders this often


class ShortDetailsScreen(Screen[None]):
    """The clients short one stock, in the allocation rule's order, with their buy-to-cover."""

    HORIZONTAL_BREAKPOINTS = PAIR_BREAKPOINTS  # the summary in one column below 100

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", tooltip="Back to the stocks", id="shorts.back"),
        Binding(
            "l",
            "cover",
            "Buy to cover",
            tooltip="Buy to cover: choose the order",
            id="shorts.cover",
        ),
        Binding("m", "message", "Message", tooltip="Message the client(s)", id="shorts.message"),
    ]

    DEFAULT_CSS = """
    ShortDetailsScreen #short-title {
        dock: top;
        height: auto;
        padding: 0 1;
        text-style: bold;
        background: $panel;
    }
    ShortDetailsScreen #short-summary { padding: 0 1; }
    ShortDetailsScreen #short-allocation { height: auto; padding: 0 1; }
    ShortDetailsScreen #short-clients { height: 1fr; }
    """

    def __init__(
        self,
        desk: DeskApi,
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
        stock = desk.short_stock(symbol, rule)
        self.instrument = stock.instrument
        self.detail: ShortDetail | None = stock.detail
        self.working: dict[str, Decimal] = {}  # account → open buy quantity in this stock
        self._cursor: object = object()  # the book cursor last shown
        self._orders_at = -float("inf")
        self._shown: dict[str, tuple[int, Allocation, Decimal]] = {}

    def compose(self) -> ComposeResult:
        yield Static(self._title(), id="short-title")
        yield from self.compose_summary()
        yield LiveTable(client_columns(self.currency), noun="clients", id="short-clients")
        yield DeskFooter()

    @property
    def table(self) -> LiveTable:
        return self.query_one("#short-clients", LiveTable)

    @property
    def host(self) -> DeskHost:
        return cast("DeskHost", self.app)

    def on_mount(self) -> None:
        self.refresh_figures(force=True)  # and the first read of working orders
        self.set_interval(1.0, self.refresh_figures)
        self.table.focus()

    # --- figures -----------------------------------------------------------------------

    def refresh_figures(self, *, force: bool = False) -> None:
        """Recompute from the desk when the book moved; re-read working orders now and then."""
        if self.monotonic() - self._orders_at >= ORDERS_INTERVAL:
            self.load_orders()
        cursor = self.desk.view().cursor
        if not force and cursor == self._cursor:
            return
        stock = self.desk.short_stock(self.symbol, self.rule)
        self._cursor = stock.cursor
        self.detail = stock.detail
        self._show()

    @work(exclusive=True, group="short-orders", exit_on_error=False)
    async def load_orders(self) -> None:
        """The open buy quantity in this stock per account, from the desk's working orders."""
        self._orders_at = self.monotonic()
        working: dict[str, Decimal] = {}
        for order in await self.desk.working_orders():
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
        self._render_summary()

    def _title(self) -> Text:
        text = Text("Short position details · ")
        text.append_text(data_text(self.symbol))
        instrument = self.instrument
        if instrument is not None:
            text.append(" · ")
            text.append_text(data_text(instrument.name))
            text.append(f" · {instrument.market.value} · {instrument.currency}")
        return text

    def compose_summary(self) -> ComposeResult:
        """The stock's figures as label/value pairs (one column below 100 columns), then
        the allocation in words."""
        with PairGroups(id="short-summary"):
            with PairGroup():
                yield Pair("Shortfall", Figure(id="s-shortfall"))
                yield Pair("Shortfall value", Figure(id="s-shortfall-value"))
                yield Pair("Total short", Figure(id="s-total"))
                yield Pair("Clients short", Figure(id="s-clients"))
                yield Pair("Last price", Figure(id="s-price"))
            with PairGroup():
                yield Pair("Available", Figure(id="s-available"))
                yield Pair("Recalled", Figure(id="s-recalled"))
                yield Pair("Recall due", Figure(id="s-due"))
                yield Pair("Borrow rate", Figure(id="s-rate"))
        yield Static(id="short-allocation")

    def summary_figures(self) -> dict[str, str]:
        """Each figure of the summary as the desk formats it, by id (`s-…`); empty when
        no client is short the stock any more."""
        detail = self.detail
        if detail is None:
            return {}
        line = detail.line
        borrow = line.borrow
        value = line.shortfall_value
        today = market_date(line, self.clock())
        return {
            "shortfall": shortfall_text(line).plain,
            "shortfall-value": (
                format_money(value, self.currency, code=True) if value is not None else "—"
            ),
            "total": format_quantity(line.short_quantity),
            "clients": str(line.clients),
            "price": (
                f"{line.price:,f} {line.currency}"
                if line.price is not None and line.currency
                else "—"
            ),
            "available": format_quantity(borrow.available) if borrow else "no borrow record",
            "recalled": format_quantity(borrow.recall_quantity) if borrow else "—",
            "due": due_text(line, today).plain,
            "rate": format_ratio(borrow.rate) if borrow else "—",
        }

    def _render_summary(self) -> None:
        figures = self.summary_figures()
        self.query_one("#short-summary", PairGroups).display = bool(figures)
        for key, shown in figures.items():
            self.query_one(f"#s-{key}", Figure).show(shown)
        self.query_one("#short-allocation", Static).update(self._allocation_text())

    def _allocation_text(self) -> Text:
        detail = self.detail
        if detail is None:
            return Text(f"No client is short {self.symbol} any more.", style="bold")
        line = detail.line
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
        text.append("\n")
        text.append("l buy to cover · m message · space marks · esc back", "dim")
        return text

    def allocation_for(self, account_id: str | None) -> Allocation | None:
        if self.detail is None or account_id is None:
            return None
        return next((a for a in self.detail.allocations if a.holder.account_id == account_id), None)

    # --- actions -----------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cover":
            return allowed(self.actor.role, Intent.LIQUIDATE)
        if action == "message":
            return allowed(self.actor.role, Intent.MESSAGE)
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
            self.app.notify(
                f"{allocation.holder.account_id} is not in margin call: no call details",
                severity="warning",
            )
            return
        self.host.open_details(allocation.holder.account_id)

    def action_cover(self) -> None:
        allocation = self.allocation_for(self.table.cursor_key)
        if allocation is not None:
            self.cover(allocation.holder.account_id)

    @work(exclusive=True, group="short-action")
    async def cover(self, account_id: str) -> None:
        """Buy to cover for one client: the dialog, then the desk's `submit_order`."""
        app = self.app
        allocation = self.allocation_for(account_id)
        if allocation is None or self.detail is None:
            return
        if not allowed(self.actor.role, Intent.LIQUIDATE):
            app.notify(
                f"buy to cover: not allowed for role {self.actor.role.value}", severity="error"
            )
            return
        holder = allocation.holder
        problem = cover_problem(holder, self.symbol)
        if problem is not None:
            app.notify(f"buy to cover {holder.account_id}: {problem}", severity="warning")
            return
        halted = await liquidation_halt(self.desk)
        answer = await app.push_screen_wait(
            BuyToCoverDialog(
                self.detail.line,
                holder,
                allocation.suggested,
                self.working.get(account_id, ZERO),
                self.rule,
                self.actor,
                figures=self.desk,
                halted=halted,
            )
        )
        if answer is None:
            return
        desk = self.desk

        async def send() -> str:
            outcome = await desk.submit_order(answer.intent, override_reason=answer.override_reason)
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

        await self.host.act(send, "buy to cover")
        self.load_orders()
        self.refresh_figures(force=True)

    def action_message(self) -> None:
        """Messages to the marked clients (or the one under the cursor): a recall notice to
        those not in margin call, the margin-call message (as on the Real-time warnings tab)
        to those in call."""
        table = self.table
        visible = set(table.visible_keys())
        marked = sorted(key for key in table.marked_keys if key in visible)
        targets = marked or ([table.cursor_key] if table.cursor_key else [])
        allocations = [a for key in targets if (a := self.allocation_for(key)) is not None]
        if not allocations:
            return
        in_call = [a.holder.account_id for a in allocations if a.holder.call is not None]
        others = [a for a in allocations if a.holder.call is None]
        if others:
            self.recall_notice(others, in_call)
        elif in_call:
            self.host.message(in_call)  # the Real-time warnings path, unchanged
            table.clear_marks()

    @work(exclusive=True, group="short-action")
    async def recall_notice(self, others: list[Allocation], in_call: list[str]) -> None:
        """The recall notice to clients not in call, then the call message to the others."""
        if self.detail is None or not allowed(self.actor.role, Intent.MESSAGE):
            self.host.refuse("message")
            return
        accounts = [a.holder.account_id for a in others]
        markets = {key: entry.market for key, entry in self.desk.accounts(accounts).items()}
        fallback = self.detail.line.instrument
        languages = self.desk.message_languages(
            (key, markets.get(key, fallback.market if fallback else Market.HK)) for key in accounts
        )
        intents = await self.app.push_screen_wait(
            RecallNoticeDialog(self.detail.line, others, self.actor, languages=languages)
        )
        if intents:
            desk = self.desk

            async def send() -> str:
                sent = 0
                for intent in intents:
                    outcome = await desk.send_message(intent)
                    sent += outcome.send_state.value == "acknowledged"
                return f"{sent} of {len(intents)} recall notices accepted by the broker"

            await self.host.act(send, "recall notice")
        if in_call:
            self.host.message(in_call)  # the Real-time warnings path, unchanged
        if intents or in_call:
            self.table.clear_marks()


__all__ = ["ShortDetailsScreen"]
