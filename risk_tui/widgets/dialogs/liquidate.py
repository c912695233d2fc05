"""Liquidate chosen holdings of an account in call: pick, review, then market orders.

The dialog opens on the desk's least-value cure, counting working orders as traded, and
shows the account after the selection as the desk computes it (`holdings`). An engaged
kill switch is shown when the dialog opens, and the review is refused while it is.

The client order ids are minted once, when the dialog opens (one per holding), so
however often the operator confirms — or goes back, edits and confirms again — an order
for a holding always carries the same idempotency key.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal

from rich.text import Text
from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Static

from risk_tui.core.actions import OrderIntent, new_client_order_id
from risk_tui.core.lifecycle import MarginCall
from risk_tui.core.margin import AccountMargin
from risk_tui.core.model import Side
from risk_tui.core.money import ZERO, format_money
from risk_tui.core.records import StoredOrder
from risk_tui.core.roles import Actor, Intent
from risk_tui.desk.api import TradeFigures
from risk_tui.widgets.dialogs.base import ReviewedDialog, require_role
from risk_tui.widgets.dialogs.formatting import format_quantity, local_time, risk_words
from risk_tui.widgets.dialogs.holdings import (
    Holding,
    HoldingsEditor,
    after_text,
    holdings_for,
    open_quantity,
    pending_lines,
)
from risk_tui.widgets.render import data_text

ORDER_REASON = "margin_call"


def account_line(call: MarginCall) -> Text:
    """`Account A1001 · client <name> · SGD · margin`, the name as inert data."""
    line = Text("Account ")
    line.append_text(data_text(call.account_id))
    line.append(" · client ")
    line.append_text(data_text(call.client_name))
    line.append(f" · {call.currency} · {call.kind.value} · {call.market.value}")
    return line


def call_line(call: MarginCall, margin: AccountMargin | None) -> Text:
    amount = margin.call_amount if margin is not None else call.call_amount
    level = margin.risk_level if margin is not None else call.risk_level
    deadline = (
        local_time(call.deadline, call.market, zone=True) if call.deadline is not None else "none"
    )
    text = Text(
        f"Call amount {format_money(amount, call.currency, code=True)} · {risk_words(level)}"
    )
    text.append(f"\nDeadline {deadline}")
    if call.deadline is None and call.deadline_error:
        text.append(" (")
        text.append_text(data_text(call.deadline_error))
        text.append(")")
    return text


def working_lines(working: Sequence[StoredOrder]) -> Text:
    text = Text()
    live = [order for order in working if open_quantity(order) > 0]
    if not live:
        return text
    text.append("Already working:")
    for order in live:
        status = order.status or order.send_state.value
        text.append("\n  ")
        text.append(f"{order.side.value} ")
        text.append_text(data_text(order.symbol))
        text.append(
            f" {format_quantity(order.quantity)}, {format_quantity(order.filled_quantity)} filled, "
        )
        text.append_text(data_text(status))
    return text


class LiquidateDialog(ReviewedDialog[list[OrderIntent]]):
    """Choose holdings and quantities, review, then answer the market orders (None: cancel)."""

    TITLE_TEXT = "Liquidate"

    DEFAULT_CSS = """
    LiquidateDialog .working { height: auto; margin-top: 1; }
    """

    def __init__(
        self,
        call: MarginCall,
        margin: AccountMargin,
        actor: Actor,
        working: Sequence[StoredOrder] = (),
        *,
        figures: TradeFigures,
        halted: str | None = None,
        new_order_id: Callable[[], str] = new_client_order_id,
    ) -> None:
        require_role(actor, Intent.LIQUIDATE)
        if margin.account_id != call.account_id:
            raise ValueError(f"figures of {margin.account_id} given for call on {call.account_id}")
        super().__init__(halted=halted)
        self.call = call
        self.margin = margin
        self.actor = actor
        self.working = tuple(working)
        self.figures = figures
        self.pending = pending_lines(margin, self.working)
        self.proposal = (
            figures.cure(call.account_id, self.pending) if margin.incomplete is None else None
        )
        self.holdings = holdings_for(margin, self.proposal, self.working)
        # Minted now, once: every confirmation of this dialog names the same orders.
        self.order_ids: dict[str, str] = {
            holding.symbol: new_order_id() for holding in self.holdings if holding.tradable
        }

    def compose_edit(self) -> ComposeResult:
        yield Static(account_line(self.call))
        yield Static(call_line(self.call, self.margin))
        yield Static(
            Text("Tick with space, type quantities; market orders. Long → sell, short → buy."),
            classes="hint",
        )
        yield HoldingsEditor(
            self.margin, self.holdings, self.figures, self.proposal, self.pending, id="holdings"
        )
        working = working_lines(self.working)
        if working:
            yield Static(working, classes="working")

    @property
    def editor(self) -> HoldingsEditor:
        return self.query_one(HoldingsEditor)

    def first_control(self) -> Widget | None:
        return self.editor.first_control()

    def problem_control(self, problem: str) -> Widget | None:
        return self.editor.control_for(problem)

    def problems(self) -> list[str]:
        return [*self.halt_problems(), *self.editor.selection()[1]]

    def intents(self) -> list[OrderIntent]:
        """The orders the current entries describe (valid entries only), keys as minted."""
        chosen, _ = self.editor.selection()
        return [self._intent(holding, quantity) for holding, quantity in chosen]

    def _intent(self, holding: Holding, quantity: Decimal) -> OrderIntent:
        return OrderIntent(
            client_order_id=self.order_ids[holding.symbol],
            account_id=self.call.account_id,
            symbol=holding.symbol,
            side=holding.side,
            quantity=quantity,
            order_type="market",
            limit_price=None,
            reason=ORDER_REASON,
            reference=self.call.call_id,
            operator=self.actor.name,
        )

    def send_label(self) -> str:
        count = len(self.editor.selection()[0])
        return f"Send {count} order{'s' if count != 1 else ''}  ctrl+s"

    def review_text(self) -> Text:
        chosen, _ = self.editor.selection()
        ccy = self.margin.currency
        text = Text("Send these market orders now?\n\n", style="bold")
        text.append_text(account_line(self.call))
        text.append("\nMargin call ")
        text.append_text(data_text(self.call.call_id))
        text.append(" · operator ")
        text.append_text(data_text(self.actor.name))
        text.append("\n\n")
        total = ZERO
        for holding, quantity in chosen:
            effect = self.editor.effect_for(holding.symbol)
            value = effect.value if effect is not None else None
            total += value or ZERO
            side = "SELL" if holding.side is Side.SELL else "BUY to cover"
            text.append(f"  {side:<12} ")
            text.append_text(data_text(f"{holding.symbol:<10}"))
            text.append(f" {format_quantity(quantity):>10} shares")
            text.append(f"   est. {format_money(value, ccy, code=True)}\n")
        text.append(
            f"\nTotal estimated value {format_money(total, ccy, code=True)} at last prices "
            "(market orders: fills may differ).\n"
        )
        editor = self.editor
        text.append_text(after_text(editor.after, pending=bool(self.pending)))
        text.append("\n")
        text.append_text(editor.verdict(with_value=False))
        return text

    def result(self) -> list[OrderIntent]:
        return self.intents()
