"""Schedule an auto-liquidation: when, under what condition, which orders, and an optional
moved deadline (with its reason).

Times are typed on the account's market clock: `HH:MM` means today there. The orders
open on the desk's least-value cure, with the account after them as the desk computes it
(`holdings`). An engaged kill switch is shown when the dialog opens, and the review is
refused while it is. The plan id is minted once, when the dialog opens, so confirming
again names the same plan.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Input, RadioSet, Static

from risk_tui.core.actions import (
    AutoCondition,
    AutoLiquidationPlan,
    PlanLine,
    new_plan_id,
)
from risk_tui.core.calendar import DeadlineRule
from risk_tui.core.clock import clock_name
from risk_tui.core.lifecycle import MarginCall
from risk_tui.core.margin import AccountMargin
from risk_tui.core.model import Side
from risk_tui.core.roles import Actor, Intent
from risk_tui.desk.api import TradeFigures
from risk_tui.widgets.dialogs.base import (
    MarkRadioButton,
    ReviewedDialog,
    compact_input,
    field_row,
    require_role,
)
from risk_tui.widgets.dialogs.formatting import (
    aware,
    format_quantity,
    local_time,
    parse_local_datetime,
)
from risk_tui.widgets.dialogs.holdings import HoldingsEditor, holdings_for
from risk_tui.widgets.dialogs.liquidate import account_line, call_line
from risk_tui.widgets.render import data_text

CONDITION_WORDS: dict[AutoCondition, str] = {
    AutoCondition.STILL_IN_CALL: "the call is still open",
    AutoCondition.BELOW_FM: "the account is below force-liquidation margin (FM)",
}


class AutoLiquidationDialog(ReviewedDialog[AutoLiquidationPlan]):
    """Answer an `AutoLiquidationPlan` to schedule, or None when cancelled."""

    TITLE_TEXT = "Schedule auto-liquidation"

    DEFAULT_CSS = """
    AutoLiquidationDialog RadioSet { width: 1fr; height: auto; }
    AutoLiquidationDialog .zone { width: auto; padding-left: 1; }
    AutoLiquidationDialog Input.when { width: 26; }
    AutoLiquidationDialog HoldingsEditor { margin-top: 1; }
    """

    def __init__(
        self,
        call: MarginCall,
        margin: AccountMargin,
        actor: Actor,
        now: datetime,
        *,
        figures: TradeFigures,
        halted: str | None = None,
        rule: DeadlineRule | None = None,
        new_id: Callable[[], str] = new_plan_id,
    ) -> None:
        require_role(actor, Intent.AUTO_LIQUIDATE, "schedule liquidation orders")
        if margin.account_id != call.account_id:
            raise ValueError(f"figures of {margin.account_id} given for call on {call.account_id}")
        super().__init__(halted=halted)
        self.call = call
        self.margin = margin
        self.actor = actor
        self.now = aware(now)
        self.figures = figures
        self.proposal = figures.cure(call.account_id) if margin.incomplete is None else None
        self.holdings = holdings_for(margin, self.proposal)
        self.plan_id = new_id()  # once: a second confirm names the same plan
        self.rule = rule  # the market's sessions and cut-off: where a deadline may fall

    # --- form ------------------------------------------------------------------------

    def compose_edit(self) -> ComposeResult:
        yield Static(account_line(self.call))
        yield Static(call_line(self.call, self.margin))
        default_at = ""
        if self.call.deadline is not None and aware(self.call.deadline) > self.now:
            default_at = local_time(self.call.deadline, self.call.market, zone=False)
        yield field_row(
            "Execute at",
            compact_input(default_at, "HH:MM or YYYY-MM-DD HH:MM", id="execute-at", classes="when"),
            Static(Text(clock_name(self.call.market)), classes="zone"),
        )
        yield field_row(
            "Only if",
            RadioSet(
                MarkRadioButton(
                    "still in call (cancelled if the call is met first)",
                    value=True,
                    id="still-in-call",
                ),
                MarkRadioButton("below force-liquidation margin (FM)", id="below-fm"),
                id="condition",
                compact=True,
            ),
        )
        # The one-line fields before the holdings, whose list can be long: at 80×24 every
        # field is in view when the dialog opens, the list scrolling below them.
        yield field_row(
            "Move deadline",
            compact_input("", "YYYY-MM-DD HH:MM", id="new-deadline", classes="when"),
            Static(Text(f"{clock_name(self.call.market)} (blank: keep)"), classes="zone"),
        )
        yield field_row(
            "Reason",
            compact_input("", "required when the deadline moves", id="deadline-reason"),
        )
        yield HoldingsEditor(self.margin, self.holdings, self.figures, self.proposal, id="holdings")

    PROBLEM_FIELDS: ClassVar[dict[str, str]] = {
        "Execute at": "#execute-at",
        "Move deadline": "#new-deadline",
        "Reason": "#deadline-reason",
    }

    def first_control(self) -> Widget | None:
        return self.query_one("#execute-at", Input)

    def problem_control(self, problem: str) -> Widget | None:
        return super().problem_control(problem) or self.query_one(HoldingsEditor).control_for(
            problem
        )

    # --- reading the form --------------------------------------------------------------

    def _text(self, field_id: str) -> str:
        return self.query_one(f"#{field_id}", Input).value

    @property
    def condition(self) -> AutoCondition:
        pressed = self.query_one("#condition", RadioSet).pressed_button
        if pressed is not None and pressed.id == "below-fm":
            return AutoCondition.BELOW_FM
        return AutoCondition.STILL_IN_CALL

    def _future(self, label: str, raw: str) -> tuple[datetime | None, list[str]]:
        parsed = parse_local_datetime(raw, self.call.market, self.now)
        if isinstance(parsed, str):
            return None, [f"{label}: {parsed}"]
        if parsed <= self.now:
            return None, [
                f"{label}: {local_time(parsed, self.call.market, zone=True)} is not in the "
                f"future (now {local_time(self.now, self.call.market, zone=True)})"
            ]
        return parsed, []

    def _moved_deadline(self) -> tuple[datetime | None, str | None, list[str]]:
        raw, reason = self._text("new-deadline").strip(), self._text("deadline-reason").strip()
        if not raw:
            if reason:
                return None, None, ["Reason: given, but no new deadline (blank keeps it)"]
            return None, None, []
        moved, problems = self._future("Move deadline", raw)
        outside = None if moved is None or self.rule is None else self.rule.problem(moved)
        if outside is not None:
            problems.append(f"Move deadline: {outside}")
        if not reason:
            problems.append("Reason: moving a deadline needs a reason")
        return moved, reason or None, problems

    def problems(self) -> list[str]:
        """Every problem, in the form's order."""
        problems = self.halt_problems()
        problems.extend(self._future("Execute at", self._text("execute-at"))[1])
        problems.extend(self._moved_deadline()[2])
        problems.extend(self.query_one(HoldingsEditor).selection()[1])
        return problems

    def plan(self) -> AutoLiquidationPlan:
        """The plan the (valid) entries describe, under the id minted at open."""
        execute_at, _ = self._future("Execute at", self._text("execute-at"))
        moved, reason, _ = self._moved_deadline()
        if execute_at is None:
            raise ValueError("the execution time is not valid")
        chosen, _ = self.query_one(HoldingsEditor).selection()
        return AutoLiquidationPlan(
            plan_id=self.plan_id,
            call_id=self.call.call_id,
            account_id=self.call.account_id,
            execute_at=execute_at,
            condition=self.condition,
            lines=tuple(
                PlanLine(holding.symbol, holding.side, quantity) for holding, quantity in chosen
            ),
            operator=self.actor.name,
            moved_deadline=moved,
            deadline_reason=reason if moved is not None else None,
        )

    # --- review ------------------------------------------------------------------------

    def send_label(self) -> str:
        return "Schedule  ctrl+s"

    def review_text(self) -> Text:
        plan = self.plan()
        market = self.call.market
        text = Text("Schedule this auto-liquidation?\n\n", style="bold")
        text.append_text(account_line(self.call))
        text.append("\nMargin call ")
        text.append_text(data_text(self.call.call_id))
        text.append(" · operator ")
        text.append_text(data_text(self.actor.name))
        text.append(
            f"\n\nAt {local_time(plan.execute_at, market, zone=True)}, "
            f"if {CONDITION_WORDS[plan.condition]}, send market orders:\n"
        )
        for line in plan.lines:
            side = "SELL" if line.side is Side.SELL else "BUY to cover"
            text.append(f"  {side:<12} ")
            text.append_text(data_text(f"{line.symbol:<10}"))
            text.append(f" {format_quantity(line.quantity):>10} shares\n")
        editor = self.query_one(HoldingsEditor)
        text.append("At today's last prices: ")
        text.append_text(editor.verdict(with_value=False))
        text.append("\nCancelled automatically if the call is met first.\n")
        if plan.moved_deadline is not None:
            text.append(
                f"Deadline moves from {local_time(self.call.deadline, market, zone=True)} to "
                f"{local_time(plan.moved_deadline, market, zone=True)}; reason: "
            )
            text.append_text(data_text(plan.deadline_reason))
        else:
            text.append(f"Deadline stays {local_time(self.call.deadline, market, zone=True)}.")
        return text

    def result(self) -> AutoLiquidationPlan:
        return self.plan()


__all__ = ["CONDITION_WORDS", "AutoLiquidationDialog"]
