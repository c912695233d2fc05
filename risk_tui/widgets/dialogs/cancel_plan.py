"""Withdraw a scheduled auto-liquidation plan, with a reason (traders and supervisors)."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Input, Static

from risk_tui.core.lifecycle import MarginCall
from risk_tui.core.records import StoredAutoLiquidation
from risk_tui.core.roles import Actor, Intent
from risk_tui.widgets.dialogs.base import ReviewedDialog, compact_input, field_row, require_role
from risk_tui.widgets.dialogs.formatting import format_quantity, local_time
from risk_tui.widgets.dialogs.liquidate import account_line
from risk_tui.widgets.render import data_text

MAX_REASON = 500


def approval_note(threshold: str) -> str:
    """When the cancel goes to a second person: the rule for scheduling the plan."""
    return (
        f"A plan worth more than {threshold} at today's prices, or one that moved the "
        "deadline, is cancelled only once a second trader or supervisor approves "
        "(Approvals tab, 7); until then it stays scheduled."
    )


def plan_text(plan: StoredAutoLiquidation, call: MarginCall) -> Text:
    """`at 11-24 10:00 HK, below_fm: sell 300 B.SG; sell 700 A.SG (by jdoe)`."""
    text = Text(f"at {local_time(plan.execute_at, call.market, zone=True)}, {plan.condition}: ")
    text.append_text(
        data_text(
            "; ".join(
                f"{line.side.value} {format_quantity(line.quantity)} {line.symbol}"
                for line in plan.lines
            )
        )
    )
    text.append(" (by ")
    text.append_text(data_text(plan.operator))
    text.append(")")
    return text


class CancelPlanDialog(ReviewedDialog[str]):
    """Answer the reason to withdraw the plan for, or None when cancelled."""

    TITLE_TEXT = "Cancel auto-liquidation plan"
    PROBLEM_FIELDS: ClassVar[dict[str, str]] = {"Reason": "#reason"}

    def __init__(
        self, plan: StoredAutoLiquidation, call: MarginCall, actor: Actor, threshold: str
    ) -> None:
        require_role(actor, Intent.CANCEL_PLAN)
        super().__init__()
        self.plan = plan
        self.call = call
        self.actor = actor
        self.threshold = threshold  # the four-eyes threshold, as money text

    def compose_edit(self) -> ComposeResult:
        yield Static(account_line(self.call))
        yield Static(plan_text(self.plan, self.call))
        yield field_row(
            "Reason",
            compact_input("", "why the plan is withdrawn", max_length=MAX_REASON, id="reason"),
        )
        yield Static(Text(approval_note(self.threshold)), classes="hint")

    def first_control(self) -> Widget | None:
        return self.query_one("#reason", Input)

    def _reason(self) -> str:
        return self.query_one("#reason", Input).value.strip()

    def problems(self) -> list[str]:
        return [] if self._reason() else ["Reason: cancelling a plan needs a reason"]

    def send_label(self) -> str:
        return "Cancel the plan  ctrl+s"

    def review_text(self) -> Text:
        text = Text("Cancel this auto-liquidation plan?\n\n", style="bold")
        text.append_text(account_line(self.call))
        text.append("\n")
        text.append_text(plan_text(self.plan, self.call))
        text.append("\nReason: ")
        text.append_text(data_text(self._reason()))
        text.append(f"\n\n{approval_note(self.threshold)}")
        return text

    def result(self) -> str:
        return self._reason()
