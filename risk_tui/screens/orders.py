"""The Liquidation orders tab: every order sent from the desk, its state and fills, and cancel.

The tab re-reads a bounded window of the desk's orders — the newest `window` and every
unfinished one (pending, in doubt, still worked at the broker) — at most once a second,
in a worker, and only while it is shown. Each read is of stamps (`store.orders.order_window`:
no account state); whole rows are fetched only for orders that are new or moved, and
only their rows are repainted. Finding every unfinished order reads the whole orders
table, so that scan runs every `SCAN_INTERVAL` seconds; the reads between look up the
unfinished orders already shown by key. New orders come in at the top, inside the
newest `window`; only an older one that becomes unfinished again (or a burst of more
than `window` orders within a second) waits for the next scan. Unfinished orders come
first, newest first within each group; `o` widens the window to older orders.

`c` cancels the working order under the cursor (traders and supervisors only: the key
is not even offered to other roles): the order is read afresh, shown in a confirmation
dialog that answers once, read afresh again, and the cancel goes through
`Desk.cancel_order`, which audits the request before it is sent. One cancel per order
is in flight at a time, however often the key is pressed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, ClassVar, Protocol, cast, runtime_checkable

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Static

from risk_tui.core.actions import TRADING_ROLES, SendState
from risk_tui.core.calendar import MARKET_TZ
from risk_tui.core.model import Market
from risk_tui.core.records import OrderStamp, StoredOrder
from risk_tui.core.text import sanitize
from risk_tui.render import data_text
from risk_tui.widgets.desk_pane import DeskPane
from risk_tui.widgets.dialogs.base import DialogScreen
from risk_tui.widgets.dialogs.formatting import aware, format_price, format_quantity, local_time
from risk_tui.widgets.live_table import Column, LiveTable, RowData

if TYPE_CHECKING:
    from risk_tui.app import RiskApp
    from risk_tui.core.view import DeskView
    from risk_tui.engine import Desk

log = logging.getLogger(__name__)

WINDOW = 200  # newest orders read on each refresh (plus every unfinished one)
READ_INTERVAL = 1.0  # seconds between reads of the window while the tab is shown
SCAN_INTERVAL = 10.0  # seconds between scans of the whole table for unfinished orders
CANCELLABLE = frozenset({"working", "partially_filled"})

# Unfinished orders are written in capitals (and bold), so they stand out without colour.
STATUS_WORDS = {
    "working": ("WORKING", "bold"),
    "partially_filled": ("PART FILLED", "bold"),
    "filled": ("filled", ""),
    "cancelled": ("cancelled", ""),
    "rejected": ("rejected", ""),
}
SEND_STATE_WORDS = {
    SendState.PENDING: ("PENDING", "bold"),
    SendState.IN_DOUBT: ("IN DOUBT", "bold red"),
    SendState.FAILED: ("failed", ""),
}
# What an unsettled or failed order means, for the Note column and refusals.
SEND_STATE_NOTES = {
    SendState.PENDING: "recorded; the broker has not answered yet",
    SendState.IN_DOUBT: "sent, no answer yet: re-sent with the same key until the broker says",
    SendState.FAILED: "never reached the broker",
}

COLUMNS = (
    Column("account", "Account", max_width=12),
    Column("symbol", "Symbol", max_width=12),
    Column("side", "Side", max_width=4),
    Column("quantity", "Qty", align="right", max_width=12),
    Column("filled", "Filled", align="right", max_width=12),
    Column("status", "Status", max_width=11),
    Column("avg_price", "Avg price", align="right", max_width=12),
    Column("sent", "Sent (market)", max_width=15),
    Column("client", "Client", max_width=20),
    Column("call", "Call", max_width=28),
    Column("operator", "By", max_width=16),
    Column("order_id", "Broker id", max_width=14),
    Column("note", "Note", max_width=60),
    Column("type", "Type", max_width=18),
    Column("reason", "Reason", max_width=16),
)


class OrderReads(Protocol):
    """What the tab reads of the store's orders (`risk_tui.storage.orders.Orders`)."""

    async def order_window(
        self, limit: int = ..., *, also: Sequence[str] = ..., scan: bool = ...
    ) -> list[OrderStamp]: ...

    async def orders_by_key(self, keys: Sequence[str]) -> list[StoredOrder]: ...

    async def get(self, key: str) -> StoredOrder | None: ...


@runtime_checkable
class OrdersStore(Protocol):
    """What the tab reads of the desk's store (`risk_tui.storage.store.Store`)."""

    @property
    def orders(self) -> OrderReads: ...


# --- words ------------------------------------------------------------------------------


def status_text(order: StoredOrder | OrderStamp) -> Text:
    """The order's state in one word or two: the broker's status once acknowledged."""
    if order.send_state is SendState.ACKNOWLEDGED:
        word, style = STATUS_WORDS.get(order.status or "", (order.status or "?", "bold"))
        return data_text(word, style)
    word, style = SEND_STATE_WORDS[order.send_state]
    return Text(word, style=style)


def worked(order: StoredOrder) -> bool:
    """Acknowledged and still worked at the broker: the orders a cancel can stop."""
    return order.send_state is SendState.ACKNOWLEDGED and order.status in CANCELLABLE


def rank(order: StoredOrder) -> int:
    """Unsettled orders first (someone must look), then worked ones, then final ones."""
    if order.send_state.needs_send:
        return 0
    return 1 if worked(order) else 2


def average_price(price: Decimal | None) -> str:
    """The broker's average to its own precision, trailing zeros cut to two places."""
    if price is None:
        return "—"
    trimmed = price.normalize()
    exponent = trimmed.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        trimmed = trimmed.quantize(Decimal("0.01"))
    return format_price(trimmed)


def order_what(order: StoredOrder) -> str:
    """`sell 200 B.SG for A1001 (broker SO00000001)`: the order in the operator's words."""
    what = (
        f"{order.side.value} {format_quantity(order.quantity)} {sanitize(order.symbol)} "
        f"for {sanitize(order.account_id)}"
    )
    if order.order_id:
        what += f" (broker {sanitize(order.order_id)})"
    return what


def cancel_refusal(order: StoredOrder | None) -> str | None:
    """Why `order` cannot be cancelled now, in one line; None when it can."""
    if order is None:
        return "cancel refused: no such order on record"
    if worked(order):
        return None
    what = order_what(order)
    if order.send_state.needs_send:
        state = "pending" if order.send_state is SendState.PENDING else "in doubt"
        return (
            f"cancel refused: {what} is {state} — the broker has not confirmed it yet; "
            "cancel once it shows WORKING"
        )
    if order.send_state is SendState.FAILED:
        return f"cancel refused: {what} never reached the broker (failed): nothing to cancel"
    return (
        f"cancel refused: {what} is already {sanitize(order.status or 'final')} "
        f"({format_quantity(order.filled_quantity)} of {format_quantity(order.quantity)} "
        "filled): nothing left to cancel"
    )


def cancel_summary(order: StoredOrder) -> str:
    """The one line the operator reads after the broker answered the cancel."""
    filled = f"{format_quantity(order.filled_quantity)} of {format_quantity(order.quantity)}"
    if order.status == "cancelled":
        return f"cancelled {order_what(order)}: {filled} had filled"
    return (
        f"cancel sent, but the broker reports {order_what(order)} "
        f"{sanitize(order.status or order.send_state.value)} ({filled} filled)"
    )


def sent_time(at: datetime, market: Market | None) -> str:
    """`11-23 10:15:02` on the account's market clock; UTC (with a Z) when unknown."""
    if market is None:
        return f"{aware(at).astimezone(UTC):%m-%d %H:%M:%S}Z"
    return f"{aware(at).astimezone(MARKET_TZ[market]):%m-%d %H:%M:%S}"


def order_cells(order: StoredOrder, market: Market | None, client_name: str) -> RowData:
    if order.reject_reason:
        note = data_text(order.reject_reason)
    else:
        note = Text(SEND_STATE_NOTES.get(order.send_state, ""))
    kind = order.order_type
    if order.limit_price is not None:
        kind = f"{kind} {format_price(order.limit_price)}"
    return RowData(
        (
            data_text(order.account_id),
            data_text(order.symbol),
            Text(order.side.value),
            Text(format_quantity(order.quantity)),
            Text(format_quantity(order.filled_quantity)),
            status_text(order),
            Text(average_price(order.avg_price)),
            Text(sent_time(order.created_at, market)),
            data_text(client_name),
            data_text(order.call_id or "—"),
            data_text(order.operator),
            data_text(order.order_id or "—"),
            note,
            data_text(kind),
            data_text(order.reason),
        )
    )


# --- the confirmation -------------------------------------------------------------------


def order_facts(order: StoredOrder, *, client_name: str = "", market: Market | None = None) -> Text:
    """What is about to be cancelled, one fact a line; outside text as inert data."""
    text = Text()

    def line(label: str, *parts: Text) -> None:
        if text:
            text.append("\n")
        text.append(f"{label:<10}", style="bold")
        for part in parts:
            text.append_text(part)

    account = data_text(order.account_id)
    if client_name:
        account.append("  ")
        account.append_text(data_text(client_name))
    line("Account", account)
    kind = order.order_type
    if order.limit_price is not None:
        kind = f"{kind} at {format_price(order.limit_price)}"
    side = Text(f"{order.side.value.upper()} {format_quantity(order.quantity)} ", style="bold")
    line("Order", side, data_text(order.symbol, "bold"), Text(f"  {kind}"))
    remaining = order.quantity - order.filled_quantity
    line(
        "Filled",
        Text(
            f"{format_quantity(order.filled_quantity)} of {format_quantity(order.quantity)}"
            f" (avg {average_price(order.avg_price)})  —  {format_quantity(remaining)} "
            "left to cancel"
        ),
    )
    status = status_text(order)
    status.append(" at the broker")
    if order.order_id:
        status.append(", order ")
        status.append_text(data_text(order.order_id))
    line("Status", status)
    line("Call", data_text(order.call_id or "none (not tied to a margin call)"))
    if market is not None:
        sent = local_time(order.created_at, market, zone=True)
    else:
        sent = sent_time(order.created_at, None)
    line("Sent", Text(f"{sent} by "), data_text(order.operator))
    line("Key", data_text(order.client_order_id))
    return text


class CancelOrderDialog(DialogScreen[bool]):
    """Ask before cancelling one working order: True to send the cancel, None to keep it.

    Focus starts on "Keep the order", so enter (or a doubled key) keeps it; only ctrl+s
    or the "Send cancel" button sends, and the dialog answers once.
    """

    DEFAULT_CSS = """
    CancelOrderDialog > .dialog { width: 78; }
    CancelOrderDialog .order-facts { height: auto; margin-top: 1; }
    CancelOrderDialog .consequence { height: auto; margin-top: 1; margin-bottom: 1; }
    """

    def __init__(
        self,
        order: StoredOrder,
        operator: str,
        *,
        client_name: str = "",
        market: Market | None = None,
    ) -> None:
        super().__init__()
        self.order = order
        self.operator = operator
        self.client_name = client_name
        self.market = market

    def compose(self) -> ComposeResult:
        order = self.order
        remaining = format_quantity(order.quantity - order.filled_quantity)
        consequence = Text(
            f"The broker is asked to stop the {remaining} not yet filled; what has filled "
            "stays done. The request is recorded in the audit log under "
        )
        consequence.append_text(data_text(self.operator))
        consequence.append(".")
        with Vertical(classes="dialog") as frame:
            frame.border_title = "Cancel liquidation order"
            with VerticalScroll(classes="dialog-body"):
                yield Static(
                    order_facts(order, client_name=self.client_name, market=self.market),
                    classes="order-facts",
                )
                yield Static(consequence, classes="consequence")
            with Horizontal(classes="dialog-buttons dialog-foot"):
                yield Button("Keep the order  esc", id="keep", variant="primary")
                yield Button("Send cancel  ctrl+s", id="send-cancel", variant="error")

    def on_mount(self) -> None:
        self.query_one("#keep", Button).focus()

    def action_confirm(self) -> None:
        self.answer(True)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "send-cancel":
            self.action_confirm()
        elif event.button.id == "keep":
            self.action_cancel()


# --- the tab ----------------------------------------------------------------------------


class OrdersPane(DeskPane):
    """Tab 6: the desk's liquidation orders, unfinished first, newest first."""

    DEFAULT_CSS = """
    OrdersPane > .orders-summary { height: 1; padding: 0 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "cancel_order", "Cancel order", id="orders.cancel"),
        Binding("o", "older", "Older orders", id="orders.older"),
    ]

    def __init__(
        self,
        *,
        window: int = WINDOW,
        read_interval: float = READ_INTERVAL,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.window = window
        self.limit = window
        self.read_interval = read_interval
        self.reads = 0  # reads of the window done (for tests: the throttle holds)
        self.rows_fetched = 0  # whole order rows fetched (for tests: only what moved)
        self.scans = 0  # reads that scanned the whole table (for tests)
        self._desk: Desk | None = None
        self._stamps: dict[str, OrderStamp] = {}
        self._orders: dict[str, StoredOrder] = {}
        self._shown_order: list[str] = []
        self._next_read = 0.0
        self._next_scan = 0.0
        self._reading = False
        self._dirty = False
        self._problem: str | None = None
        self._cancelling: set[str] = set()

    def compose(self) -> ComposeResult:
        yield Static(Text("Reading the desk's orders…"), classes="orders-summary")
        yield LiveTable(COLUMNS, fixed_columns=2, id=f"{self.id}-table")

    @property
    def risk_app(self) -> RiskApp:
        return cast("RiskApp", self.app)

    def order(self, client_order_id: str) -> StoredOrder | None:
        """The order as last read (None when it is not in the window)."""
        return self._orders.get(client_order_id)

    # --- reading ------------------------------------------------------------------------

    def refresh_from(self, desk: Desk, view: DeskView, now: datetime) -> None:
        self._desk = desk
        if self._reading or (not self._dirty and time.monotonic() < self._next_read):
            return  # cheap when nothing is due: the window is re-read once a second
        self._start_read()

    def changed_elsewhere(self) -> None:
        """Another terminal or the engine changed orders: read them at the next refresh."""
        self._dirty = True
        self._next_scan = 0.0

    def _start_read(self) -> None:
        if self._desk is None:
            return
        if self._reading:
            self._dirty = True  # read again as soon as this read is done
            return
        self._reading = True
        self._dirty = False
        self._read(self._desk)

    @work(exclusive=True, group="orders-read", exit_on_error=False)
    async def _read(self, desk: Desk) -> None:
        try:
            store = desk.store
            if not isinstance(store, OrdersStore):
                self._problem = "this desk's store cannot list orders"
                self._show_summary()
                return
            scan = time.monotonic() >= self._next_scan
            unfinished = [key for key, order in self._orders.items() if rank(order) < 2]
            stamps = await store.orders.order_window(self.limit, also=unfinished, scan=scan)
            if scan:
                self.scans += 1
                self._next_scan = time.monotonic() + SCAN_INTERVAL
            moved = [s.client_order_id for s in stamps if self._stamps.get(s.client_order_id) != s]
            fresh = await store.orders.orders_by_key(moved) if moved else []
            self.rows_fetched += len(fresh)
            self.reads += 1
            self._problem = None
            self._apply(desk, stamps, fresh)
        except Exception as problem:  # shown on the tab; the next read tries again
            log.exception("reading the liquidation orders failed")
            self._problem = f"orders could not be read: {problem}"
            self._show_summary()
        finally:
            self._reading = False
            self._next_read = time.monotonic() + self.read_interval

    def _apply(self, desk: Desk, stamps: list[OrderStamp], fresh: list[StoredOrder]) -> None:
        if not self.is_mounted:
            return
        accounts = desk.engine.book.accounts
        upserts: dict[str, RowData] = {}
        for order in fresh:
            key = order.client_order_id
            self._orders[key] = order
            account = accounts.get(order.account_id)
            upserts[key] = order_cells(
                order,
                account.market if account else None,
                account.client_name if account else "",
            )
        window = {
            stamp.client_order_id: stamp
            for stamp in stamps
            if stamp.client_order_id in self._orders
        }
        removals = [key for key in self._orders if key not in window]
        for key in removals:
            del self._orders[key]
        # The stamp of a row fetched is its row's own state (a fill between the two
        # reads shows on the next read, whose stamp then differs).
        self._stamps = {
            key: _stamp_of(self._orders[key]) if key in upserts else stamp
            for key, stamp in window.items()
        }
        # Newest first, then (a stable sort) unsettled, worked, final.
        ordering = sorted(
            self._orders.values(), key=lambda o: (o.created_at, o.client_order_id), reverse=True
        )
        ordering.sort(key=rank)
        keys = [order.client_order_id for order in ordering]
        table = self.table
        if keys != self._shown_order:
            # New orders, or an order changed group: a full load in the new order (rare;
            # the window is a few hundred rows). Otherwise only the rows that moved.
            rows = {key: upserts.get(key) or table.get_row(key) for key in keys}
            table.set_rows({key: row for key, row in rows.items() if row is not None})
            self._shown_order = keys
        elif upserts or removals:
            table.apply_diff(upserts, removals)
        self._show_summary()

    def _show_summary(self) -> None:
        for summary in self.query(".orders-summary").results(Static):
            summary.update(self._summary())

    def _summary(self) -> Text:
        if self._problem is not None:
            return Text(sanitize(self._problem, max_length=200), style="bold red")
        orders = self._orders.values()
        if not self._orders:
            return Text(
                "No liquidation orders yet: orders placed with l show here with their fills."
            )
        working = sum(map(worked, orders))
        doubt = sum(o.send_state is SendState.IN_DOUBT for o in orders)
        pending = sum(o.send_state is SendState.PENDING for o in orders)
        text = Text(f"{working} working", style="bold" if working else "")
        if doubt:
            text.append(f" · {doubt} IN DOUBT", style="bold red")
        if pending:
            text.append(f" · {pending} PENDING", style="bold")
        text.append(
            f" · {len(self._orders)} shown: the newest {self.limit} and every unfinished one"
            " · o: older"
        )
        return text

    def action_older(self) -> None:
        self.limit += self.window
        self._next_scan = 0.0
        self._start_read()

    # --- acting on a row ----------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Cancel is a trading action: not offered at all to other roles."""
        if action == "cancel_order":
            return self.risk_app.actor.role in TRADING_ROLES
        return True

    def action_cancel_order(self) -> None:
        app = self.risk_app
        if app.actor.role not in TRADING_ROLES:
            app._refuse("cancel order")
            return
        key = self.table.cursor_key
        order = self._orders.get(key) if key is not None else None
        if key is None or order is None:
            app.notify("cancel: no order under the cursor", severity="warning")
            return
        if key in self._cancelling:
            app.notify(f"a cancel of {order_what(order)} is already under way", severity="warning")
            return
        refusal = cancel_refusal(order)
        if refusal is not None:
            app.notify(refusal, severity="error", timeout=8)
            return
        self._cancelling.add(key)  # before the worker starts: a second press is refused
        self._cancel(key)

    @work(group="orders-cancel", exit_on_error=False)
    async def _cancel(self, key: str) -> None:
        app = self.risk_app
        try:
            desk = app.desk
            if desk is None:
                return
            order = await self._fresh(desk, key)
            refusal = cancel_refusal(order)
            if refusal is not None or order is None:
                app.notify(refusal or "cancel refused", severity="error", timeout=8)
                return
            account = desk.engine.book.accounts.get(order.account_id)
            confirmed = await app.push_screen_wait(
                CancelOrderDialog(
                    order,
                    app.actor.name,
                    client_name=account.client_name if account else "",
                    market=account.market if account else None,
                )
            )
            if not confirmed:
                return
            # It may have filled while the dialog was open.
            refusal = cancel_refusal(await self._fresh(desk, key))
            if refusal is not None:
                app.notify(refusal, severity="error", timeout=8)
                return
            actor = app.actor

            async def send() -> str:
                return cancel_summary(await desk.cancel_order(key, actor))

            await app._act(send, "cancel")
            self._start_read()  # show the broker's answer now, not at the next tick
        except Exception as problem:  # the operator must see it; _act covers the send
            log.exception("cancel of %s failed", key)
            app.notify(
                f"cancel failed: {sanitize(str(problem), max_length=300)}",
                severity="error",
                timeout=10,
            )
        finally:
            self._cancelling.discard(key)

    async def _fresh(self, desk: Desk, key: str) -> StoredOrder | None:
        store = desk.store
        if isinstance(store, OrdersStore):
            return await store.orders.get(key)
        return self._orders.get(key)

    @on(LiveTable.RowSelected)
    def _selected(self, event: LiveTable.RowSelected) -> None:
        """Enter: the call's details while it is open; otherwise the order in one line."""
        event.stop()
        order = self._orders.get(event.key)
        if order is None:
            return
        app = self.risk_app
        open_calls = {row.call.call_id for row in app.view.warnings} if app.view else set()
        if order.call_id in open_calls:
            app.open_details(order.account_id)
            return
        line = f"{order_what(order)}: {status_text(order).plain}, "
        line += f"{format_quantity(order.filled_quantity)} filled"
        line += f", call {sanitize(order.call_id)} (ended)" if order.call_id else ", no call"
        if order.reject_reason:
            line += f"; {sanitize(order.reject_reason)}"
        app.notify(sanitize(line, max_length=400), timeout=10)


def _stamp_of(order: StoredOrder) -> OrderStamp:
    return OrderStamp(
        client_order_id=order.client_order_id,
        created_at=order.created_at,
        send_state=order.send_state,
        order_id=order.order_id,
        status=order.status,
        filled_quantity=order.filled_quantity,
        avg_price=order.avg_price,
        reject_reason=order.reject_reason,
        updated_at=order.updated_at,
    )


__all__ = [
    "CANCELLABLE",
    "COLUMNS",
    "CancelOrderDialog",
    "OrdersPane",
    "OrdersStore",
    "cancel_refusal",
    "cancel_summary",
    "order_cells",
    "order_facts",
    "status_text",
]
