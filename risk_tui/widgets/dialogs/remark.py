"""Edit a call's remark and its exception flag (異常單), with the remark history below."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import Button, Input, Static

from risk_tui.core.lifecycle import MarginCall
from risk_tui.core.records import StoredRemark
from risk_tui.core.text import sanitize
from risk_tui.widgets.dialogs.base import (
    DialogScreen,
    MarkCheckbox,
    Problems,
    compact_input,
    field_row,
)
from risk_tui.widgets.dialogs.formatting import local_time
from risk_tui.widgets.dialogs.liquidate import account_line
from risk_tui.widgets.render import data_text

MAX_REMARK = 1000


def remark_history(remarks: Sequence[StoredRemark], call: MarginCall) -> Text:
    """Newest first: time on the market's clock, operator, EXCEPTION when flagged, text."""
    text = Text()
    if not remarks:
        text.append("No remarks yet.")
        return text
    for index, remark in enumerate(sorted(remarks, key=lambda r: (r.at, r.id), reverse=True)):
        if index:
            text.append("\n")
        text.append(f"{local_time(remark.at, call.market)}  ")
        text.append_text(data_text(f"{sanitize(remark.operator, max_length=12):<12}"))
        text.append("  EXCEPTION  " if remark.exception else "  " + " " * 9 + "  ")
        text.append_text(data_text(remark.text) if remark.text else Text("(cleared)"))
    return text


class RemarkDialog(DialogScreen[tuple[str, bool]]):
    """Answer (remark text, exception flag), or None when cancelled."""

    DEFAULT_CSS = """
    RemarkDialog .history-title { margin-top: 1; text-style: bold; }
    RemarkDialog .history { height: auto; max-height: 10; }
    """

    def __init__(
        self,
        call: MarginCall,
        history: Sequence[StoredRemark],
        *,
        exception: bool | None = None,
    ) -> None:
        super().__init__()
        self.call = call
        self.history = tuple(history)
        # The checkbox starts as the call stands, or ticked when the operator asked to mark.
        self.exception = call.exception if exception is None else exception

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog") as frame:
            frame.border_title = "Remark"
            with VerticalScroll(classes="dialog-body"):
                yield Static(account_line(self.call))
                yield field_row(
                    "Remark",
                    compact_input(
                        sanitize(self.call.remark),
                        "what the desk should know about this call",
                        max_length=MAX_REMARK,
                        id="remark",
                    ),
                )
                yield field_row(
                    "Exception",
                    MarkCheckbox(
                        "exception (異常單): no daily reminders",
                        value=self.exception,
                        id="exception",
                    ),
                )
                yield Static(Text("History (newest first, market time)"), classes="history-title")
                yield VerticalScroll(
                    Static(remark_history(self.history, self.call)), classes="history"
                )
            with Vertical(classes="dialog-foot"):
                yield Problems(id="problems")
                with Horizontal(classes="dialog-buttons"):
                    yield Button("Save  ctrl+s", id="save", variant="primary")
                    yield Button("Cancel  esc", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#remark", Input).focus()

    def entries(self) -> tuple[str, bool]:
        text = self.query_one("#remark", Input).value.strip()
        return text, self.query_one("#exception", MarkCheckbox).value

    def problems(self) -> list[str]:
        text, exception = self.entries()
        if exception and not text:
            return ["an exception needs a remark saying why"]
        return []

    def problem_control(self, problem: str) -> Widget | None:
        return self.query_one("#remark") if problem.startswith("an exception") else None

    def action_confirm(self) -> None:
        problems = self.problems()
        self.query_one("#problems", Problems).show(problems)
        if problems:
            self.focus_problem(problems)
        else:
            self.answer(self.entries())

    @on(Input.Submitted, "#remark")
    def _submitted(self) -> None:
        self.action_confirm()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "save":
            self.action_confirm()
        elif event.button.id == "cancel":
            self.action_cancel()


__all__ = ["MAX_REMARK", "RemarkDialog", "remark_history"]
