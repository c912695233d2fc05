"""The Liquidation orders tab: every order sent from the desk, its state and fills, and cancel.

The tab re-reads a bounded window of the desk's orders — the newest `window` and every
unfinished one (pending, in doubt, still worked at the broker) — at most once a second,
in a worker, and only while it is shown. Each read is of stamps (`Store.order_window`:
no account state); whole rows are fetched only for orders that are new or moved, and
only their rows are repainted. Finding every unfinished order reads the whole orders
table, so that scan runs every `SCAN_INTERVAL` seconds; the reads between look up the
unfinished orders already shown by key. New orders come in at the top, inside the
newest `window`; only an older one that becomes unfinished again (or a burst of more
than `window` orders within a second) waits for the next scan. Unfinished orders come
first, newest first within each group; `o` widens the window to older orders.

`c` cancels the working order under the cursor (traders and supervisors only: the key
is not even offered to other roles): the order is read afresh, shown in a confirmation
dialog that answers once, read afresh again, and the cancel goes through the desk's
cancel command (`DeskApi.cancel_order`), which audits the request before it is sent.
One cancel per order is in flight at a time, however often the key is pressed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static

from risk_tui.core.actions import SendState
from risk_tui.core.records import OrderStamp, StoredOrder
from risk_tui.core.roles import Intent, allowed
from risk_tui.core.text import sanitize
from risk_tui.screens.order_words import (
    COLUMNS,
    CancelOrderDialog,
    cancel_refusal,
    cancel_summary,
    order_cells,
    order_what,
    rank,
    status_text,
    worked,
)
from risk_tui.widgets.desk_pane import DeskPane
from risk_tui.widgets.dialogs.formatting import format_quantity
from risk_tui.widgets.host import DeskHost
from risk_tui.widgets.live_table import LiveTable, RowData

if TYPE_CHECKING:
    from risk_tui.core.view import DeskView
    from risk_tui.desk.api import DeskApi

log = logging.getLogger(__name__)

WINDOW = 200  # newest orders read on each refresh (plus every unfinished one)
READ_INTERVAL = 1.0  # seconds between reads of the window while the tab is shown
SCAN_INTERVAL = 10.0  # seconds between scans of the whole table for unfinished orders
# --- the tab ----------------------------------------------------------------------------


class OrdersPane(DeskPane):
    """Tab 6: the desk's liquidation orders, unfinished first, newest first."""

    DEFAULT_CSS = """
    OrdersPane > .orders-summary {
        height: 1; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "c", "cancel_order", "Cancel order", tooltip="Cancel the order", id="orders.cancel"
        ),
        Binding("o", "older", "Older", tooltip="Show older orders", id="orders.older"),
    ]

    def __init__(
        self,
        *,
        window: int = WINDOW,
        read_interval: float = READ_INTERVAL,
        id: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(id=id)
        self.window = window
        self.limit = window
        self.read_interval = read_interval
        self.monotonic = monotonic  # when reads and scans are due (tests move it by hand)
        self.reads = 0  # reads of the window done (for tests: the throttle holds)
        self.rows_fetched = 0  # whole order rows fetched (for tests: only what moved)
        self.scans = 0  # reads that scanned the whole table (for tests)
        self._desk: DeskApi | None = None
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
        yield LiveTable(COLUMNS, noun="orders", id=f"{self.id}-table")

    @property
    def host(self) -> DeskHost:
        return cast("DeskHost", self.app)

    def order(self, client_order_id: str) -> StoredOrder | None:
        """The order as last read (None when it is not in the window)."""
        return self._orders.get(client_order_id)

    # --- reading ------------------------------------------------------------------------

    def refresh_from(self, desk: DeskApi, view: DeskView, now: datetime) -> None:
        self._desk = desk
        if self._reading or (not self._dirty and self.monotonic() < self._next_read):
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
    async def _read(self, desk: DeskApi) -> None:
        try:
            scan = self.monotonic() >= self._next_scan
            unfinished = [key for key, order in self._orders.items() if rank(order) < 2]
            stamps = await desk.orders_window(self.limit, also=unfinished, scan=scan)
            if scan:
                self.scans += 1
                self._next_scan = self.monotonic() + SCAN_INTERVAL
            moved = [s.client_order_id for s in stamps if self._stamps.get(s.client_order_id) != s]
            fresh = await desk.orders_by_key(moved) if moved else []
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
            self._next_read = self.monotonic() + self.read_interval

    def _apply(self, desk: DeskApi, stamps: list[OrderStamp], fresh: list[StoredOrder]) -> None:
        if not self.is_mounted:
            return
        accounts = desk.accounts({order.account_id for order in fresh})
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
            return allowed(self.host.actor.role, Intent.CANCEL_ORDER)
        return True

    def action_cancel_order(self) -> None:
        app = self.app
        if not allowed(self.host.actor.role, Intent.CANCEL_ORDER):
            self.host.refuse("cancel order")
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
        app = self.app
        host = self.host
        try:
            desk = host.desk
            if desk is None:
                return
            order = await desk.order(key)
            refusal = cancel_refusal(order)
            if refusal is not None or order is None:
                app.notify(refusal or "cancel refused", severity="error", timeout=8)
                return
            account = desk.accounts([order.account_id]).get(order.account_id)
            confirmed = await app.push_screen_wait(
                CancelOrderDialog(
                    order,
                    host.actor.name,
                    client_name=account.client_name if account else "",
                    market=account.market if account else None,
                )
            )
            if not confirmed:
                return
            # It may have filled while the dialog was open.
            refusal = cancel_refusal(await desk.order(key))
            if refusal is not None:
                app.notify(refusal, severity="error", timeout=8)
                return

            async def send() -> str:
                return cancel_summary(await desk.cancel_order(key))

            await host.act(send, "cancel")
            self._start_read()  # show the broker's answer now, not at the next tick
        except Exception as problem:  # the operator must see it; `act` covers the send
            log.exception("cancel of %s failed", key)
            app.notify(
                f"cancel failed: {sanitize(str(problem), max_length=300)}",
                severity="error",
                timeout=10,
            )
        finally:
            self._cancelling.discard(key)

    @on(LiveTable.RowSelected)
    def _selected(self, event: LiveTable.RowSelected) -> None:
        """Enter: the call's details while it is open; otherwise the order in one line."""
        event.stop()
        order = self._orders.get(event.key)
        if order is None:
            return
        host = self.host
        open_calls = {row.call.call_id for row in host.view.warnings} if host.view else set()
        if order.call_id in open_calls:
            host.open_details(order.account_id)
            return
        line = f"{order_what(order)}: {status_text(order).plain}, "
        line += f"{format_quantity(order.filled_quantity)} filled"
        line += f", call {sanitize(order.call_id)} (ended)" if order.call_id else ", no call"
        if order.reject_reason:
            line += f"; {sanitize(order.reject_reason)}"
        self.app.notify(sanitize(line, max_length=400), timeout=10)


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


__all__ = ["OrdersPane"]
