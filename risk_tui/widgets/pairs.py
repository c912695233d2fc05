"""Label/value pairs that read in one column on a narrow screen and side by side on a
wide one, each figure shown whole or not at all.

A screen that shows pairs sets `PAIR_BREAKPOINTS` as its `HORIZONTAL_BREAKPOINTS`:
Textual then gives the screen the class `-one-column` below 100 columns and
`-two-columns` from 100, and the CSS here stacks the groups of pairs (`PairGroups`)
or sets them side by side. Nothing is measured by hand: a figure is a `WholeCell`, which
draws its text whole or `…`; words (states, reasons, notes) wrap.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Static

from risk_tui.widgets.whole import WholeCell, fitting

ONE_COLUMN_BELOW = 100  # terminal columns: narrower screens show one column of pairs
PAIR_BREAKPOINTS: list[tuple[int, str]] = [
    (0, "-one-column"),
    (ONE_COLUMN_BELOW, "-two-columns"),
]


class Figure(WholeCell):
    """A figure (money, quantity, time) right-aligned in its own width, whole or `…`."""

    DEFAULT_CSS = """
    Figure { width: 1fr; max-width: 26; text-align: right; }
    """

    def __init__(self, *choices: str, id: str | None = None) -> None:
        super().__init__(*choices, id=id, justify="right")


class FigureLines(Widget):
    """Figures one under the other (a balance per currency), each whole or `…`."""

    DEFAULT_CSS = """
    FigureLines { width: 1fr; max-width: 26; height: auto; text-align: right; }
    """

    def __init__(self, *lines: str, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lines: tuple[str, ...] = lines

    def show(self, *lines: str) -> None:
        if lines != self.lines:
            self.lines = lines
            self.refresh(layout=True)

    @property
    def shown(self) -> list[str]:
        """What each line draws at the width now."""
        width = self.content_size.width
        return [fitting((line,), width) for line in self.lines]

    def render(self) -> Text:
        return Text("\n".join(self.shown), no_wrap=True, justify="right")


class Words(Static):
    """Words beside a label (a level, a state, a reason): they may wrap, never cut."""

    DEFAULT_CSS = """
    Words { width: 1fr; height: auto; }
    """


class Pair(Horizontal):
    """One label and its value on a line (a value in words may wrap under itself)."""

    DEFAULT_CSS = """
    Pair { height: auto; width: 1fr; }
    Pair > .pair-label { width: 17; height: auto; text-style: bold; padding-right: 1; }
    """

    def __init__(self, label: str, value: Widget, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.label = label
        self.value = value

    def compose(self) -> ComposeResult:
        yield Static(Text(self.label), classes="pair-label")
        yield self.value


class PairGroup(Vertical):
    """Pairs that belong together, one under the other."""

    DEFAULT_CSS = """
    PairGroup { height: auto; width: 1fr; }
    """


class PairGroups(Horizontal):
    """Groups of pairs: side by side on a wide screen, one under the other below
    `ONE_COLUMN_BELOW` columns (the screen's `-one-column` class)."""

    SCOPED_CSS = False  # its rules name the screen's breakpoint class

    DEFAULT_CSS = """
    PairGroups { height: auto; width: 100%; }
    PairGroups > PairGroup { margin-right: 2; }
    PairGroups > PairGroup:last-of-type { margin-right: 0; }
    Screen.-one-column PairGroups { layout: vertical; }
    Screen.-one-column PairGroups > PairGroup { width: 100%; margin-right: 0; }
    """


__all__ = [
    "ONE_COLUMN_BELOW",
    "PAIR_BREAKPOINTS",
    "Figure",
    "FigureLines",
    "Pair",
    "PairGroup",
    "PairGroups",
    "Words",
]
