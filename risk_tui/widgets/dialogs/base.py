"""What every desk dialog shares: escape cancels, ctrl+s confirms, one answer, role checks.

Each dialog is a `ModalScreen[Result]` (frogmouth's pattern): it receives data, never
touches the database or the network, and answers once with `dismiss(value)` — `None`
when the operator cancels. Toggles show their state as a character (`[X]`, `(•)`), not
only as a colour, so they read the same under NO_COLOR.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, Generic, TypeVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Checkbox, ContentSwitcher, Input, RadioButton, Static

from risk_tui.core.roles import Actor, Intent, refusal
from risk_tui.widgets.render import data_text

ResultT = TypeVar("ResultT")

HALTED_PROBLEM = "halted (see above): no liquidation can be reviewed or sent"


class NotPermitted(PermissionError):
    """The operator's role may not take this action; the dialog refuses to open."""


def require_role(actor: Actor, intent: Intent, doing: str | None = None) -> None:
    """Refuse to open a dialog for a role the desk's role table does not allow."""
    refused = refusal(actor, intent, doing)
    if refused:
        raise NotPermitted(refused)


class MarkCheckbox(Checkbox):
    """A checkbox that shows `[X]` or `[ ]`: its state is readable without colour."""

    @property
    def _button(self) -> Content:
        style = self.get_visual_style("toggle--button")
        return Content.assemble("[", ("X" if self.value else " ", style), "] ")


class MarkRadioButton(RadioButton):
    """A radio button that shows `(•)` or `( )`: its state is readable without colour."""

    @property
    def _button(self) -> Content:
        style = self.get_visual_style("toggle--button")
        return Content.assemble("(", ("•" if self.value else " ", style), ") ")


class Problems(Static):
    """The reasons a dialog cannot be confirmed, in words, each line starting `Error:`."""

    DEFAULT_CSS = """
    Problems {
        height: auto;
        color: $text-error;
        text-style: bold;
        display: none;
    }
    Problems.-shown { display: block; }
    """

    def show(self, problems: Iterable[str]) -> None:
        lines = list(problems)
        text = Text()
        for index, problem in enumerate(lines):
            if index:
                text.append("\n")
            text.append(f"Error: {problem}")  # appended as Text: never parsed as markup
        self.update(text)
        self.set_class(bool(lines), "-shown")


# Terminal rows: a shorter screen (an 80×24 SSH window) gets the compact dialog layout —
# no blank line between fields, one-line buttons — so every field of a dialog and its
# buttons fit at 24 rows; its body scrolls when a long list still does not, the buttons
# staying docked below it.
COMPACT_BELOW = 32
DIALOG_BREAKPOINTS: list[tuple[int, str]] = [(0, "-compact"), (COMPACT_BELOW, "-roomy")]


class DialogScreen(ModalScreen[ResultT], Generic[ResultT]):
    """A modal that answers once: `confirm` (ctrl+s) with a value, `cancel` (escape) with None.

    Below `COMPACT_BELOW` rows the screen has the class `-compact` (Textual's vertical
    breakpoints) and the dialog drops its blank lines and button borders."""

    VERTICAL_BREAKPOINTS = DIALOG_BREAKPOINTS

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape", "cancel", "Cancel", tooltip="Cancel: close, nothing sent", id="dialog.cancel"
        ),
        Binding("ctrl+s", "confirm", "Confirm", tooltip="Confirm: send", id="dialog.confirm"),
    ]

    DEFAULT_CSS = """
    DialogScreen {
        align: center middle;
    }
    DialogScreen > .dialog {
        width: 100;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: thick $primary;
        border-title-style: bold;
        background: $surface;
        padding: 0 1;
    }
    DialogScreen .dialog-body {
        height: auto;
        max-height: 100%;
        scrollbar-size-vertical: 1;
    }
    DialogScreen .dialog-foot {
        dock: bottom;
        height: auto;
    }
    DialogScreen .dialog-buttons {
        height: auto;
        width: 100%;
        align-horizontal: left;
    }
    DialogScreen .dialog-buttons Button {
        margin-right: 1;
    }
    DialogScreen .field-label {
        margin-top: 1;
        text-style: bold;
    }
    DialogScreen .hint {
        color: $text-muted;
    }
    DialogScreen .field-row {
        height: auto;
        width: 100%;
        margin-top: 1;
    }
    DialogScreen .field-name {
        width: 16;
        text-style: bold;
    }
    DialogScreen Input.-textual-compact {
        width: 1fr;
        background: $boost;
    }
    DialogScreen.-compact .field-label,
    DialogScreen.-compact .field-row {
        margin-top: 0;
    }
    DialogScreen.-compact .dialog-buttons Button {
        border: none;
        height: 1;
        min-width: 0;
        margin-right: 2;
    }
    DialogScreen MarkCheckbox, DialogScreen RadioSet {
        border: none;
        padding: 0;
        background: transparent;
    }
    DialogScreen MarkCheckbox:focus > .toggle--label,
    DialogScreen RadioSet:focus > MarkRadioButton.-selected > .toggle--label {
        text-style: bold reverse;
    }
    """

    # A problem's field: the words before its first ':' (`Reason: …`) → the selector of
    # the control to fix it in (`focus_problem`).
    PROBLEM_FIELDS: ClassVar[dict[str, str]] = {}

    def __init__(self) -> None:
        super().__init__()
        self._answered = False

    def problem_control(self, problem: str) -> Widget | None:
        """The control to fix `problem` in (`PROBLEM_FIELDS`), None when it names none."""
        selector = self.PROBLEM_FIELDS.get(problem.partition(":")[0].strip())
        if selector is None:
            return None
        return self.query(selector).first() if self.query(selector) else None

    def focus_problem(self, problems: Iterable[str]) -> None:
        """Focus the control of the first problem that names one (the form's order), so
        the operator can fix it at once, and keep it in view once the problems shown
        have shortened the dialog's body; the focus stays put when none names one."""
        for problem in problems:
            control = self.problem_control(problem)
            if control is not None and control.focusable:
                control.focus()
                self.call_after_refresh(control.scroll_visible, animate=False)
                return

    def answer(self, result: ResultT | None) -> bool:
        """Dismiss with `result` the first time only; a second press answers nothing."""
        if self._answered:
            return False
        self._answered = True
        self.dismiss(result)
        return True

    @property
    def answered(self) -> bool:
        return self._answered

    def action_cancel(self) -> None:
        self.answer(None)

    def action_confirm(self) -> None:  # pragma: no cover - every dialog overrides it
        raise NotImplementedError


class ReviewedDialog(DialogScreen[ResultT], Generic[ResultT]):
    """A dialog that sends something: edit, then a review step that states it, then send.

    Review (ctrl+r) and send (ctrl+s) are different keys, and the review step starts on
    its Back button, so a doubled key press can never skip reading what will be sent.
    Escape cancels from either step.

    `halted`: why the desk takes no liquidation now (an engaged kill switch, or one whose
    state cannot be read), as it stood when the dialog opened: shown at the top, and the
    review refused while it stands (`halt_problems`).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "review", "Review", tooltip="Review before sending", id="dialog.review"),
    ]

    DEFAULT_CSS = """
    ReviewedDialog ContentSwitcher {
        height: auto;
        max-height: 100%;
    }
    ReviewedDialog .step {
        height: auto;
        max-height: 100%;
    }
    ReviewedDialog .review-text {
        height: auto;
        margin-bottom: 1;
    }
    ReviewedDialog .halted {
        height: auto;
        color: $text-error;
        text-style: bold reverse;
    }
    """

    TITLE_TEXT = "Dialog"
    SEND_HINT = "Review with ctrl+r first; then ctrl+s sends."

    def __init__(self, *, halted: str | None = None) -> None:
        super().__init__()
        self.halted = halted

    def halt_problems(self) -> list[str]:
        """The halt as a reason the entries cannot be reviewed (none when not halted): one
        short line, the halt itself being shown in full at the top of the dialog."""
        if self.halted is None:
            return []
        return [HALTED_PROBLEM]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog") as frame:
            frame.border_title = self.TITLE_TEXT
            with ContentSwitcher(initial="edit-step"):
                with Vertical(id="edit-step", classes="step"):
                    if self.halted is not None:
                        yield Static(data_text(self.halted), classes="halted", id="halted")
                    with VerticalScroll(classes="dialog-body"):
                        yield from self.compose_edit()
                    with Vertical(classes="dialog-foot"):
                        yield Problems(id="problems")
                        with Horizontal(classes="dialog-buttons"):
                            yield Button("Review  ctrl+r", id="review", variant="primary")
                            yield Button("Cancel  esc", id="cancel")
                with Vertical(id="review-step", classes="step"):
                    with VerticalScroll(classes="dialog-body"):
                        yield Static(classes="review-text", id="review-text")
                    with Horizontal(classes="dialog-buttons dialog-foot"):
                        yield Button("Back to edit", id="back")
                        yield Button("Send  ctrl+s", id="send", variant="warning")
                        yield Button("Cancel  esc", id="cancel-review")

    # --- what each dialog supplies ---------------------------------------------------

    def compose_edit(self) -> ComposeResult:  # pragma: no cover - overridden
        yield from ()

    def first_control(self) -> Widget | None:
        """The widget focused when the dialog opens and on going back to edit."""
        return None

    def problems(self) -> list[str]:
        """Every reason the current entries cannot be sent; empty means reviewable."""
        return []

    def review_text(self) -> Text:  # pragma: no cover - overridden
        return Text()

    def send_label(self) -> str:
        return "Send  ctrl+s"

    def result(self) -> ResultT:  # pragma: no cover - overridden
        raise NotImplementedError

    # --- the two steps ---------------------------------------------------------------

    def on_mount(self) -> None:
        first = self.first_control()
        if first is not None:
            first.focus()

    @property
    def reviewing(self) -> bool:
        return self.query_one(ContentSwitcher).current == "review-step"

    def action_review(self) -> None:
        if self.reviewing or self.answered:
            return
        problems = self.problems()
        self.query_one("#problems", Problems).show(problems)
        if problems:
            self.focus_problem(problems)
            return
        self.query_one("#review-text", Static).update(self.review_text())
        self.query_one("#send", Button).label = self.send_label()
        self.query_one(ContentSwitcher).current = "review-step"
        self.query_one("#back", Button).focus()

    def action_back(self) -> None:
        if not self.reviewing:
            return
        self.query_one(ContentSwitcher).current = "edit-step"
        first = self.first_control()
        if first is not None:
            first.focus()

    def action_confirm(self) -> None:
        if not self.reviewing:  # sending needs the review step; keep the errors in view
            problems = self.problems()
            self.query_one("#problems", Problems).show([*problems, self.SEND_HINT])
            self.focus_problem(problems)
            return
        problems = self.problems()
        if problems:  # entries cannot change while reviewing; checked again all the same
            self.action_back()
            self.query_one("#problems", Problems).show(problems)
            self.focus_problem(problems)
            return
        self.answer(self.result())

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        actions = {
            "review": self.action_review,
            "send": self.action_confirm,
            "back": self.action_back,
            "cancel": self.action_cancel,
            "cancel-review": self.action_cancel,
        }
        action = actions.get(event.button.id or "")
        if action is not None:
            action()


def field_row(label: str, *widgets: Widget) -> Horizontal:
    """A one-line form field: a fixed-width name, then its control(s)."""
    return Horizontal(Static(Text(label), classes="field-name"), *widgets, classes="field-row")


def compact_input(value: str = "", placeholder: str = "", **kwargs: Any) -> Input:
    """A one-line input without a blinking cursor (steady screens, deterministic snapshots)."""
    field = Input(value, placeholder, compact=True, **kwargs)
    field.cursor_blink = False
    return field
