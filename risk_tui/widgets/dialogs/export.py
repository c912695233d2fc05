"""The compliance export's dialog (History tab, `x`): a period, a format, a new file."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import Button, Input, RadioSet, Static

from risk_tui.core.export import FORMATS, Period
from risk_tui.desk.api import ExportRequest
from risk_tui.widgets.dialogs.base import (
    DialogScreen,
    MarkRadioButton,
    Problems,
    compact_input,
    field_row,
)


def default_export_path(folder: Path, period: Period, fmt: str) -> Path:
    """`risk-tui-export-<from>..<to>.<fmt>` in `folder`, numbered if that name is taken."""
    stem = f"risk-tui-export-{period.first.isoformat()}..{period.last.isoformat()}"
    candidate = folder / f"{stem}.{fmt}"
    number = 1
    while candidate.exists():
        number += 1
        candidate = folder / f"{stem}-{number}.{fmt}"
    return candidate


class ExportDialog(DialogScreen[ExportRequest]):
    """Answer an `ExportRequest` (period in UTC dates, format, a new file), or None."""

    DEFAULT_CSS = """
    ExportDialog Input.date { width: 14; }
    ExportDialog RadioSet { width: 1fr; height: auto; }
    ExportDialog RadioSet > MarkRadioButton { width: auto; margin-right: 2; }
    ExportDialog RadioSet { layout: horizontal; }
    ExportDialog .zone { width: auto; padding-left: 1; }
    """

    def __init__(self, today: date, folder: Path) -> None:
        super().__init__()
        self.today = today
        self.folder = folder
        self._default_path = default_export_path(folder, Period(today, today), FORMATS[0])

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog") as frame:
            frame.border_title = "Compliance export"
            with VerticalScroll(classes="dialog-body"):
                yield Static(
                    Text(
                        "Every call triggered or ended in the period, with all its snapshots, "
                        "and the period's audit records: the file `risk-tui export` writes, "
                        "verifiable offline with `risk-tui audit verify --export PATH`."
                    )
                )
                day = self.today.isoformat()
                yield field_row(
                    "From",
                    compact_input(day, "YYYY-MM-DD", id="first", classes="date"),
                    Static(Text("UTC date, inclusive"), classes="zone"),
                )
                yield field_row(
                    "To",
                    compact_input(day, "YYYY-MM-DD", id="last", classes="date"),
                    Static(Text("UTC date, inclusive"), classes="zone"),
                )
                yield field_row(
                    "Format",
                    RadioSet(
                        *(
                            MarkRadioButton(fmt, value=index == 0, id=f"fmt-{fmt}")
                            for index, fmt in enumerate(FORMATS)
                        ),
                        id="format",
                        compact=True,
                    ),
                )
                yield field_row(
                    "Output file",
                    compact_input(str(self._default_path), "a new file", id="path"),
                )
            with Vertical(classes="dialog-foot"):
                yield Problems(id="problems")
                with Horizontal(classes="dialog-buttons"):
                    yield Button("Export  ctrl+s", id="export", variant="primary")
                    yield Button("Cancel  esc", id="cancel")

    def on_mount(self) -> None:
        self.first_control().focus()

    def first_control(self) -> Widget:
        return self.query_one("#first", Input)

    # --- reading the form --------------------------------------------------------------

    def _text(self, field_id: str) -> str:
        return self.query_one(f"#{field_id}", Input).value.strip()

    @property
    def fmt(self) -> str:
        pressed = self.query_one("#format", RadioSet).pressed_button
        if pressed is not None and pressed.id and pressed.id.startswith("fmt-"):
            return pressed.id.removeprefix("fmt-")
        return FORMATS[0]

    def _dates(self) -> tuple[Period | None, list[str]]:
        problems: list[str] = []
        parsed: list[date] = []
        for field_id, label in (("first", "From"), ("last", "To")):
            raw = self._text(field_id)
            try:
                parsed.append(date.fromisoformat(raw))
            except ValueError:
                problems.append(f"{label}: {raw!r} is not a date as YYYY-MM-DD")
        if problems:
            return None, problems
        try:
            return Period(parsed[0], parsed[1]), []
        except ValueError as bad:
            return None, [str(bad).replace("--to", "To").replace("--from", "From")]

    def _path(self) -> tuple[Path | None, list[str]]:
        raw = self._text("path")
        if not raw:
            return None, ["Output file: give a file name"]
        path = Path(raw).expanduser()
        if not path.is_absolute():
            path = self.folder / path
        if path.exists():
            return None, [f"Output file: {path} already exists (nothing is overwritten)"]
        if not path.parent.is_dir():
            return None, [f"Output file: no folder {path.parent}"]
        return path, []

    def problems(self) -> list[str]:
        return self._dates()[1] + self._path()[1]

    def request(self) -> ExportRequest:
        period, _ = self._dates()
        path, _ = self._path()
        if period is None or path is None:
            raise ValueError("the entries are not valid")
        return ExportRequest(period, self.fmt, path)

    # --- keeping the suggested name in step --------------------------------------------

    @on(Input.Changed, "#first, #last")
    @on(RadioSet.Changed, "#format")
    def _suggest_path(self) -> None:
        field = self.query_one("#path", Input)
        if field.value.strip() != str(self._default_path):
            return  # the operator typed a name: theirs stands
        period, _ = self._dates()
        if period is None:
            return
        self._default_path = default_export_path(self.folder, period, self.fmt)
        field.value = str(self._default_path)

    # --- answering -----------------------------------------------------------------------

    PROBLEM_FIELDS: ClassVar[dict[str, str]] = {
        "From": "#first",
        "To": "#last",
        "Output file": "#path",
    }

    def action_confirm(self) -> None:
        problems = self.problems()
        self.query_one("#problems", Problems).show(problems)
        if problems:
            self.focus_problem(problems)
        else:
            self.answer(self.request())

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_confirm()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "export":
            self.action_confirm()
        elif event.button.id == "cancel":
            self.action_cancel()
