"""A one-line cell that shows a figure whole or not at all.

A fixed-width cell that cuts or wraps `1,026,000.00` shows `1,026,000.0`: a different,
plausible figure. `WholeCell` is given its text and shorter alternatives (longest first)
and draws the first that fits its width now, else `…`; it decides again at every
resize. Only the desk's own formatting reaches it (figures and fixed words): feed text
goes through `widgets.render` instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from rich.console import JustifyMethod
from rich.text import Text
from textual.widget import Widget

TOO_WIDE = "…"


def fitting(choices: Sequence[str], width: int) -> str:
    """The first choice no wider than `width` cells, else `…`; nothing when there is no
    choice or no width."""
    for choice in choices:
        if cell_len(choice) <= width:
            return choice
    return TOO_WIDE if choices and width > 0 else ""


class WholeCell(Widget):
    """One line: the first of its choices that fits, never a cut one."""

    DEFAULT_CSS = """
    WholeCell { height: 1; }
    """

    def __init__(
        self,
        *choices: str,
        classes: str | None = None,
        id: str | None = None,
        justify: JustifyMethod = "left",
    ) -> None:
        super().__init__(classes=classes, id=id)
        self.choices: tuple[str, ...] = choices
        self.justify: JustifyMethod = justify

    def show(self, *choices: str) -> None:
        if choices != self.choices:
            self.choices = choices
            self.refresh()

    @property
    def shown(self) -> str:
        """What the cell draws at its width now."""
        return fitting(self.choices, self.content_size.width)

    def render(self) -> Text:
        return Text(self.shown, no_wrap=True, justify=self.justify)


__all__ = ["TOO_WIDE", "WholeCell", "fitting"]
