"""Ask to close a call (an end reason from the list, and a note) or move its deadline
(with a reason): both go to four-eyes approval.

The dialog says so before anything is sent: the request waits in the Approvals tab
until a second trader or supervisor approves it.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Input, RadioSet, Static

from risk_tui.core.calendar import DeadlineRule
from risk_tui.core.clock import clock_name
from risk_tui.core.close_reasons import CLOSE_REASON_WORDS, CloseReason
from risk_tui.core.lifecycle import MarginCall
from risk_tui.core.money import format_money
from risk_tui.core.roles import Actor, Intent
from risk_tui.widgets.dialogs.base import (
    MarkRadioButton,
    ReviewedDialog,
    compact_input,
    field_row,
    require_role,
)
from risk_tui.widgets.dialogs.formatting import aware, local_time, parse_local_datetime
from risk_tui.widgets.dialogs.liquidate import account_line
from risk_tui.widgets.render import data_text

MAX_REASON = 500
NEXT_TRADING_DAYS = 5  # the market's trading days the deadline dialog lists
APPROVAL_NOTE = (
    "A second trader or supervisor must approve this before it takes effect "
    "(Approvals tab, 7); you cannot approve it yourself."
)


class CloseCallDialog(ReviewedDialog[tuple[CloseReason, str]]):
    """Answer the end reason from the list and the note saying what happened, or None
    when cancelled. No reason is preselected: the operator chooses one."""

    TITLE_TEXT = "Close margin call (needs approval)"
    PROBLEM_FIELDS: ClassVar[dict[str, str]] = {"End reason": "#end-reason", "Note": "#reason"}
    REASON_IDS: ClassVar[dict[CloseReason, str]] = {
        reason: f"end-{reason.value.replace('_', '-')}" for reason in CloseReason
    }

    DEFAULT_CSS = """
    CloseCallDialog RadioSet { width: 1fr; height: auto; }
    """

    def __init__(self, call: MarginCall, actor: Actor) -> None:
        require_role(actor, Intent.CLOSE_CALL)
        super().__init__()
        self.call = call
        self.actor = actor

    def compose_edit(self) -> ComposeResult:
        yield Static(account_line(self.call))
        amount = format_money(self.call.call_amount, self.call.currency, code=True)
        yield Static(Text(f"Call amount {amount}; closing ends the call without collecting it."))
        yield field_row(
            "End reason",
            RadioSet(
                *(
                    MarkRadioButton(words, id=self.REASON_IDS[reason])
                    for reason, words in CLOSE_REASON_WORDS.items()
                ),
                id="end-reason",
                compact=True,
            ),
        )
        yield field_row(
            "Note",
            compact_input("", "what happened", max_length=MAX_REASON, id="reason"),
        )
        yield Static(Text(APPROVAL_NOTE), classes="hint")

    def first_control(self) -> Widget | None:
        return self.query_one("#end-reason", RadioSet)

    def _reason(self) -> str:
        return self.query_one("#reason", Input).value.strip()

    @property
    def end_reason(self) -> CloseReason | None:
        pressed = self.query_one("#end-reason", RadioSet).pressed_button
        for reason, widget_id in self.REASON_IDS.items():
            if pressed is not None and pressed.id == widget_id:
                return reason
        return None

    def problems(self) -> list[str]:
        problems: list[str] = []
        if self.end_reason is None:
            problems.append("End reason: choose one from the list")
        if not self._reason():
            problems.append("Note: say what happened")
        return problems

    def send_label(self) -> str:
        return "Ask for approval  ctrl+s"

    def review_text(self) -> Text:
        text = Text("Ask to close this call?\n\n", style="bold")
        text.append_text(account_line(self.call))
        text.append("\nMargin call ")
        text.append_text(data_text(self.call.call_id))
        text.append(f" · {format_money(self.call.call_amount, self.call.currency, code=True)}")
        reason = self.end_reason
        text.append(f"\nEnd reason: {CLOSE_REASON_WORDS[reason] if reason else '—'}")
        text.append("\nNote: ")
        text.append_text(data_text(self._reason()))
        text.append(f"\n\n{APPROVAL_NOTE}")
        return text

    def result(self) -> tuple[CloseReason, str]:
        reason = self.end_reason
        if reason is None or not self._reason():
            raise ValueError("the entries are not valid")
        return reason, self._reason()


class MoveDeadlineDialog(ReviewedDialog[tuple[datetime, str]]):
    """Answer (new deadline, reason), or None when cancelled. Times on the market's clock."""

    TITLE_TEXT = "Move deadline (needs approval)"
    PROBLEM_FIELDS: ClassVar[dict[str, str]] = {
        "New deadline": "#new-deadline",
        "Reason": "#reason",
    }

    DEFAULT_CSS = """
    MoveDeadlineDialog Input.when { width: 26; }
    MoveDeadlineDialog .zone { width: auto; padding-left: 1; }
    """

    def __init__(
        self, call: MarginCall, actor: Actor, now: datetime, rule: DeadlineRule | None = None
    ) -> None:
        require_role(actor, Intent.MOVE_DEADLINE)
        super().__init__()
        self.call = call
        self.actor = actor
        self.now = aware(now)
        self.rule = rule  # the market's sessions and cut-off: where a deadline may fall

    def compose_edit(self) -> ComposeResult:
        yield Static(account_line(self.call))
        yield Static(
            Text(f"Deadline now {local_time(self.call.deadline, self.call.market, zone=True)}")
        )
        if self.rule is not None:
            yield Static(self._trading_days(self.rule), id="trading-days")
        yield field_row(
            "New deadline",
            compact_input("", "YYYY-MM-DD HH:MM", id="new-deadline", classes="when"),
            Static(Text(clock_name(self.call.market)), classes="zone"),
        )
        yield field_row(
            "Reason",
            compact_input("", "why the client gets more time", max_length=MAX_REASON, id="reason"),
        )
        yield Static(Text(APPROVAL_NOTE), classes="hint")

    def _trading_days(self, rule: DeadlineRule) -> Text:
        """The market's next trading days and the cut-off: where a deadline may go."""
        market = self.call.market.value
        days = rule.sessions_from(self.now, NEXT_TRADING_DAYS)
        if not days:
            return Text(f"No {market} calendar covers the coming days.", style="bold")
        listed = ", ".join(f"{day:%a %d %b}" for day in days)
        clock = clock_name(self.call.market)
        return Text(f"{market} trading days: {listed}, … (by {rule.cutoff:%H:%M} {clock})")

    def first_control(self) -> Widget | None:
        return self.query_one("#new-deadline", Input)

    def _entries(self) -> tuple[datetime | None, str, list[str]]:
        raw = self.query_one("#new-deadline", Input).value
        reason = self.query_one("#reason", Input).value.strip()
        problems: list[str] = []
        parsed = parse_local_datetime(raw, self.call.market, self.now)
        deadline: datetime | None = None
        if isinstance(parsed, str):
            problems.append(f"New deadline: {parsed}")
        elif parsed <= self.now:
            problems.append(
                f"New deadline: {local_time(parsed, self.call.market, zone=True)} is not in "
                "the future"
            )
        elif self.rule is not None and (outside := self.rule.problem(parsed)) is not None:
            problems.append(f"New deadline: {outside}")
        else:
            deadline = parsed
        if not reason:
            problems.append("Reason: moving a deadline needs a reason")
        return deadline, reason, problems

    def problems(self) -> list[str]:
        return self._entries()[2]

    def send_label(self) -> str:
        return "Ask for approval  ctrl+s"

    def review_text(self) -> Text:
        deadline, reason, _ = self._entries()
        market = self.call.market
        text = Text("Ask to move this deadline?\n\n", style="bold")
        text.append_text(account_line(self.call))
        text.append("\nMargin call ")
        text.append_text(data_text(self.call.call_id))
        text.append(
            f"\nDeadline from {local_time(self.call.deadline, market, zone=True)} to "
            f"{local_time(deadline, market, zone=True)}\nReason: "
        )
        text.append_text(data_text(reason))
        text.append(f"\n\n{APPROVAL_NOTE}")
        return text

    def result(self) -> tuple[datetime, str]:
        deadline, reason, problems = self._entries()
        if deadline is None or problems:
            raise ValueError("the entries are not valid")
        return deadline, reason


__all__ = ["CloseCallDialog", "MoveDeadlineDialog"]
