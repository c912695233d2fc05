"""The words, cells and cancel confirmation of desk orders (Liquidation orders tab)."""


from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Static

from risk_tui.core.actions import SendState
from risk_tui.core.clock import market_time, utc_time
from risk_tui.core.model import Market
from risk_tui.core.records import OrderStamp, StoredOrder
from risk_tui.core.text import sanitize
from risk_tui.widgets.dialogs.base import DialogScreen
from risk_tui.widgets.dialogs.formatting import format_price, format_quantity, local_time
from risk_tui.widgets.live_table import Column, RowData
from risk_tui.widgets.render import data_text

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


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
    # In declared order by priority; an order is its account and symbol (kept in place in
    # the wide layout); figures are never cut (`whole`).
    Column("account", "Account", max_width=12, frozen=True),
    Column("symbol", "Symbol", max_width=12, frozen=True),
    Column("side", "Side", max_width=4),
    Column("quantity", "Qty", align="right", whole=True),
    Column("filled", "Filled", align="right", whole=True),
    Column("status", "Status", max_width=11),
    Column("avg_price", "Avg price", align="right", whole=True),
    Column("sent", "Sent", max_width=18),
    Column("client", "Client", max_width=20),
    Column("call", "Call", max_width=28),
    Column("operator", "By", max_width=16),
    Column("order_id", "Broker id", max_width=14),
    Column("note", "Note", max_width=60),
    Column("type", "Type", max_width=18),
    Column("reason", "Reason", max_width=16),
)


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
    """`11-23 10:15:02 HK` on the account's market clock; UTC (`… UTC`) when unknown. The
    month and day alone, as before (the desk's orders are recent)."""
    if market is None:
        return utc_time(at, now=at, seconds=True)
    return market_time(at, market, now=at, seconds=True)


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
