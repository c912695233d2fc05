"""Engage or release the desk's kill switch (supervisors): says what it does, needs a reason.

Focus starts in the reason box, where enter does nothing; only ctrl+s or the red button
acts, only with a reason, and the dialog answers once, with the reason.

`liquidation_halt` is what a liquidation dialog shows when it opens: the engaged switch,
or — failing closed — a switch whose state cannot be read.
"""

from __future__ import annotations

import logging
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Input, Static

from risk_tui.core.four_eyes import KillSwitch
from risk_tui.core.roles import Actor, Intent
from risk_tui.desk.api import DeskApi
from risk_tui.widgets.dialogs.base import (
    DialogScreen,
    Problems,
    compact_input,
    field_row,
    require_role,
)
from risk_tui.widgets.render import data_text

MAX_REASON = 500

log = logging.getLogger(__name__)


async def liquidation_halt(desk: DeskApi) -> str | None:
    """Why the desk takes no liquidation now, asked of the desk as the dialog opens: the
    engaged kill switch, or its state unreadable (fail closed); None when it may."""
    try:
        switch = await desk.kill_switch()
    except Exception as problem:  # any failure to read it blocks, and is logged
        log.exception("kill switch state unreadable")
        return f"KILL SWITCH state cannot be read ({problem}): liquidations blocked"
    return switch.refusal() if switch.engaged else None


class KillSwitchDialog(DialogScreen[str]):
    """Answer the reason to engage (or release) the kill switch with, or None."""

    PROBLEM_FIELDS: ClassVar[dict[str, str]] = {"Reason": "#reason"}

    DEFAULT_CSS = """
    KillSwitchDialog > .dialog { width: 84; border: thick $error; }
    KillSwitchDialog .consequence { height: auto; margin-top: 1; }
    """

    def __init__(self, switch: KillSwitch, actor: Actor, *, working_orders: int) -> None:
        require_role(actor, Intent.KILL_SWITCH)
        super().__init__()
        self.switch = switch
        self.actor = actor
        self.working_orders = working_orders

    @property
    def engaging(self) -> bool:
        return not self.switch.engaged

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog") as frame:
            frame.border_title = "ENGAGE KILL SWITCH" if self.engaging else "Release kill switch"
            with VerticalScroll(classes="dialog-body"):
                yield Static(self._consequence(), classes="consequence")
                yield field_row(
                    "Reason",
                    compact_input(
                        "",
                        "required: recorded in the audit log",
                        max_length=MAX_REASON,
                        id="reason",
                    ),
                )
            with Vertical(classes="dialog-foot"):
                yield Problems(id="problems")
                with Horizontal(classes="dialog-buttons"):
                    yield Button("Back  esc", id="back", variant="primary")
                    label = "ENGAGE  ctrl+s" if self.engaging else "Release  ctrl+s"
                    yield Button(label, id="act", variant="error")

    def _consequence(self) -> Text:
        if self.engaging:
            text = Text("Engaging the kill switch, for the whole desk, at once:\n", style="bold")
            text.append(
                f"• cancels every working desk order ({self.working_orders} now) at the broker;\n"
                "• blocks every new liquidation — manual, approved or scheduled — on every\n"
                "  terminal until a supervisor releases it; scheduled auto-liquidations wait.\n"
            )
        else:
            text = Text("Release the kill switch engaged by ", style="bold")
            text.append_text(data_text(self.switch.engaged_by or "?", "bold"))
            text.append("?\nReason it was engaged: ")
            text.append_text(data_text(self.switch.reason or ""))
            text.append(
                "\nLiquidations are allowed again at once; held auto-liquidations run if their "
                "call is still open and their condition still holds."
            )
        text.append("\nRecorded in the audit log under ")
        text.append_text(data_text(self.actor.name))
        text.append(".")
        return text

    def on_mount(self) -> None:
        self.query_one("#reason", Input).focus()

    def action_confirm(self) -> None:
        reason = self.query_one("#reason", Input).value.strip()
        if not reason:
            problems = ["Reason: the kill switch needs a reason"]
            self.query_one("#problems", Problems).show(problems)
            self.focus_problem(problems)
            return
        self.answer(reason)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "act":
            self.action_confirm()
        elif event.button.id == "back":
            self.action_cancel()


__all__ = ["KillSwitchDialog"]
