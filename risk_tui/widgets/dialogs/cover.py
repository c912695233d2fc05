"""Buy to cover one client's short after a recall: quantity preset from the allocation.

Opened from the Short positions details. The quantity is preset to the client's
suggested buy-to-cover less what working buy orders already cover; the operator may
change it (whole board lots, or the whole short). A client not in margin call can only
be bought in on an override by a trader or supervisor, with a reason: the reason field
is prefilled with the recall's facts and must not be empty. As the quantity changes,
the desk computes the account after the order (`DeskApi.after_trades`): equity, MM,
level and the call amount left. An engaged kill switch is shown when the dialog opens,
and the review is refused while it is. The client order id is minted once, when the
dialog opens, so a double confirmation never sends two orders.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Input, Static

from risk_tui.core.actions import OrderIntent, new_client_order_id
from risk_tui.core.cure import TradeLine
from risk_tui.core.margin import PositionMargin
from risk_tui.core.model import Side
from risk_tui.core.money import ZERO, format_money
from risk_tui.core.roles import Actor, Intent
from risk_tui.core.shorts import RULE_WORDS, AllocationRule, ShortHolder, ShortLine
from risk_tui.core.text import sanitize
from risk_tui.desk.api import TradeFigures
from risk_tui.widgets.dialogs.base import ReviewedDialog, compact_input, field_row, require_role
from risk_tui.widgets.dialogs.formatting import format_price, format_quantity, risk_words
from risk_tui.widgets.dialogs.holdings import (
    Holding,
    after_text,
    ask_after,
    quantity_problems,
    verdict_text,
)
from risk_tui.widgets.render import data_text

ORDER_REASON = "recall"


@dataclass(frozen=True, slots=True)
class CoverOrder:
    """The dialog's answer: the order, and the override reason when not in margin call."""

    intent: OrderIntent
    override_reason: str | None


def short_position(holder: ShortHolder, symbol: str) -> PositionMargin | None:
    """The client's short in `symbol` as its margin figures value it, if they do."""
    margin = holder.margin
    if margin is None or margin.incomplete is not None:
        return None
    return next((p for p in margin.positions if p.symbol == symbol and p.quantity < 0), None)


def cover_problem(holder: ShortHolder, symbol: str) -> str | None:
    """Why no buy-to-cover can be prepared for this client now; None when it can."""
    margin = holder.margin
    if margin is None:
        return "no margin figures for this account: no order can be sent on them"
    if margin.incomplete is not None:
        return f"figures incomplete ({sanitize(margin.incomplete)}): no order can be sent on them"
    if short_position(holder, symbol) is None:
        return f"the account's figures show no short {sanitize(symbol)}"
    return None


def recall_facts(line: ShortLine) -> str:
    """`lender recalled 2,000 TSLA.US due 2026-11-25; firm short 40 against 10 available
    → shortfall 30`: the facts a buy-in is taken on, in one line."""
    symbol = sanitize(line.symbol)
    borrow = line.borrow
    if borrow is None:
        return f"no borrow record for {symbol}: shortfall unknown"
    parts: list[str] = []
    if borrow.recall_quantity > 0:
        due = f" due {borrow.recall_due:%Y-%m-%d}" if borrow.recall_due is not None else ""
        parts.append(f"lender recalled {format_quantity(borrow.recall_quantity)} {symbol}{due}")
    shortfall = line.shortfall or ZERO
    parts.append(
        f"clients short {format_quantity(line.short_quantity)} against "
        f"{format_quantity(borrow.available)} available → firm shortfall "
        f"{format_quantity(shortfall)}"
    )
    return "; ".join(parts)


class BuyToCoverDialog(ReviewedDialog[CoverOrder]):
    """One market buy order covering (part of) one client's short; None when cancelled."""

    TITLE_TEXT = "Buy to cover (recall)"

    DEFAULT_CSS = """
    BuyToCoverDialog .facts { height: auto; margin-top: 1; }
    BuyToCoverDialog .figures { height: auto; margin-top: 1; }
    BuyToCoverDialog .field-name { width: 18; }
    """

    def __init__(
        self,
        line: ShortLine,
        holder: ShortHolder,
        suggested: Decimal,
        working: Decimal,
        rule: AllocationRule,
        actor: Actor,
        *,
        figures: TradeFigures,
        halted: str | None = None,
        new_order_id: Callable[[], str] = new_client_order_id,
    ) -> None:
        require_role(actor, Intent.LIQUIDATE, "place buy-to-cover orders")
        problem = cover_problem(holder, line.symbol)
        if problem is not None:
            raise ValueError(f"{holder.account_id}: {problem}")
        position = short_position(holder, line.symbol)
        assert position is not None
        assert holder.margin is not None
        super().__init__(halted=halted)
        self.line = line
        self.holder = holder
        self.margin = holder.margin
        self.suggested = suggested
        self.rule = rule
        self.actor = actor
        self.figures = figures
        self.holding = Holding(position, None, None, working)
        self.preset = min(max(ZERO, suggested - working), self.holding.available)
        # Minted now, once: however often the operator confirms, it is the same order.
        self.client_order_id = new_order_id()

    @property
    def in_call(self) -> bool:
        return self.holder.call is not None

    # --- the form --------------------------------------------------------------------

    def compose_edit(self) -> ComposeResult:
        yield Static(self._account_line())
        yield Static(self._status_line())
        yield Static(self._facts(), classes="facts")
        yield Static(self._position_line(), classes="figures")
        yield field_row(
            "Buy to cover",
            compact_input(
                format_quantity(self.preset) if self.preset > 0 else "",
                placeholder="shares",
                restrict=r"[0-9,]*",
                select_on_focus=True,
                id="quantity",
            ),
        )
        if not self.in_call:
            yield field_row(
                "Override reason",
                compact_input(self._default_reason(), placeholder="why", id="reason"),
            )
            yield Static(
                Text(
                    f"{sanitize(self.holder.account_id)} is not in margin call: buying in "
                    "is an override by a trader or supervisor, audited with this reason."
                ),
                classes="hint",
            )
        yield Static(id="estimate", classes="figures")

    def _account_line(self) -> Text:
        holder = self.holder
        text = Text("Account ")
        text.append_text(data_text(holder.account_id))
        text.append(" · client ")
        text.append_text(data_text(holder.client_name or "—"))
        kind = holder.kind.value if holder.kind is not None else "—"
        text.append(f" · {self.margin.currency} · {kind}")
        return text

    def _status_line(self) -> Text:
        text = Text(risk_words(self.margin.risk_level), style="bold")
        call = self.holder.call
        if call is not None:
            text.append(" · margin call ")
            text.append_text(data_text(call.call_id))
            amount = format_money(self.margin.call_amount, call.currency, code=True)
            text.append(f" open, call amount {amount}")
        else:
            text.append(" · not in margin call")
        return text

    def _facts(self) -> Text:
        text = Text("Recall: ", style="bold")
        text.append(recall_facts(self.line))
        text.append(f".\nAllocation ({RULE_WORDS[self.rule]}): suggested buy ")
        text.append(f"{format_quantity(self.suggested)} from this client", style="bold")
        text.append(".")
        return text

    def _position_line(self) -> Text:
        holding = self.holding
        position = holding.position
        text = Text("Short ")
        text.append_text(data_text(self.line.symbol))
        text.append(
            f" {format_quantity(holding.held)} · lot {format_quantity(holding.lot)} · "
            f"last {format_price(position.price)} {sanitize(position.currency)}"
        )
        if holding.working:
            text.append(f" · {format_quantity(holding.working)} already working to buy")
        return text

    def _default_reason(self) -> str:
        return (
            f"Recall buy-in: {recall_facts(self.line)}; allocated "
            f"{format_quantity(self.suggested)} to {sanitize(self.holder.account_id)} "
            f"({RULE_WORDS[self.rule]})"
        )

    def first_control(self) -> Widget | None:
        return self.query_one("#quantity", Input)

    def problem_control(self, problem: str) -> Widget | None:
        if problem.startswith(f"{self.holding.symbol}:"):  # `quantity_problems`
            return self.query_one("#quantity", Input)
        if problem.startswith("a reason"):
            return self.query_one("#reason", Input)
        return None

    def on_mount(self) -> None:
        super().on_mount()
        self._show_estimate()

    @on(Input.Changed, "#quantity")
    def _quantity_changed(self) -> None:
        self._show_estimate()

    # --- reading it ------------------------------------------------------------------

    def quantity(self) -> tuple[Decimal | None, list[str]]:
        raw = self.query_one("#quantity", Input).value
        return quantity_problems(self.holding, raw)

    def override_reason(self) -> str | None:
        if self.in_call:
            return None
        return self.query_one("#reason", Input).value.strip()

    def problems(self) -> list[str]:
        problems = self.halt_problems()
        problems.extend(self.quantity()[1])
        if not self.in_call and not self.override_reason():
            problems.append(
                "a reason is needed: the client is not in margin call, so the buy-in is an override"
            )
        return problems

    def _estimate(self, quantity: Decimal) -> Text:
        """The order's value and the account after it (working buys counted as bought),
        as the desk computes them."""
        holding = self.holding
        working = min(holding.working, holding.held - quantity)
        pending = [TradeLine(self.line.symbol, Side.BUY, working)] if working > 0 else []
        after = ask_after(self.figures, self.holder.account_id, [*pending, holding.line(quantity)])
        ccy = self.margin.currency
        value = after.lines[-1].value if after is not None else None
        text = Text(
            f"Est. {format_money(value, ccy, code=True)} at the last price (market order: "
            "fills may differ).\n"
        )
        text.append_text(after_text(after, pending=bool(pending)))
        text.append("\n")
        in_call = self.in_call or self.margin.in_call
        text.append_text(verdict_text(after, in_call=in_call, value=None))
        return text

    def _show_estimate(self) -> None:
        quantity, problems = self.quantity()
        shown = (
            self._estimate(quantity)
            if quantity is not None and quantity > 0 and not problems
            else Text("")
        )
        self.query_one("#estimate", Static).update(shown)

    def intent(self, quantity: Decimal) -> OrderIntent:
        return OrderIntent(
            client_order_id=self.client_order_id,
            account_id=self.holder.account_id,
            symbol=self.line.symbol,
            side=Side.BUY,
            quantity=quantity,
            order_type="market",
            limit_price=None,
            reason=ORDER_REASON,
            reference=self.holder.call.call_id if self.holder.call is not None else None,
            operator=self.actor.name,
        )

    def send_label(self) -> str:
        return "Send buy order  ctrl+s"

    def review_text(self) -> Text:
        quantity, _ = self.quantity()
        assert quantity is not None
        text = Text("Send this market order now?\n\n", style="bold")
        text.append_text(self._account_line())
        text.append("\n\n  BUY to cover ")
        text.append_text(data_text(self.line.symbol))
        text.append(f" {format_quantity(quantity)} shares", style="bold")
        text.append("\n  ")
        text.append_text(self._estimate(quantity))
        text.append(f"\n\nReason {ORDER_REASON} · ")
        call = self.holder.call
        if call is not None:
            text.append("reference margin call ")
            text.append_text(data_text(call.call_id))
        else:
            text.append("no margin call: override, reason ")
            text.append_text(data_text(self.override_reason()))
        text.append(" · operator ")
        text.append_text(data_text(self.actor.name))
        return text

    def result(self) -> CoverOrder:
        quantity, _ = self.quantity()
        assert quantity is not None
        return CoverOrder(self.intent(quantity), self.override_reason())


__all__ = [
    "ORDER_REASON",
    "BuyToCoverDialog",
    "CoverOrder",
    "cover_problem",
    "recall_facts",
    "short_position",
]
