"""How `LiveTable` lays out and paints a row: column widths, cells fitted to them, strips.

A row is painted whole and unscrolled (the gutter, then every column) into one `Strip`,
which the widget caches; horizontal scrolling only crops it, keeping the gutter and the
fixed columns in place. Rows are rendered as few segments as their styles allow
(adjacent cells of one style merged): Textual writes a full SGR sequence and a reset
around every segment, so an unmerged row costs about three times the bytes on the wire.

Auto-width columns are sized from their label and a sample of rows on a full load, and
after that only grow (up to each column's cap) as wider rows come on screen: a column
that shrank and grew back every poll would invalidate every cached row each time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rich.cells import cell_len
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.strip import Strip

from risk_tui.widgets.table_model import EMPTY_CELL, Align, Column

CURSOR_MARKER = ">"
"""Shown in the gutter of the cursor row, so the cursor is visible without colour."""
MARK_MARKER = "*"
"""Shown in the gutter of marked rows, so marks are visible without colour."""
SORT_ASCENDING = "▲"
SORT_DESCENDING = "▼"

GUTTER_WIDTH = 2  # cursor marker + mark marker
SEPARATOR = " "
_SEPARATOR_SEGMENT = Segment(SEPARATOR)
AUTO_WIDTH_SAMPLE = 1000
"""Rows measured when auto-sizing columns on a full load; widths then only grow (up to
each column's cap) as wider rows come on screen, until the next full load."""
# A raw line break or tab inside a cell would break the row's cell geometry on screen.
# Callers sanitize data (risk_tui.core.text); this is only a same-length layout guard
# (so the cell's style spans stay aligned), taken when `str.isprintable` says so.
_LAYOUT_BREAKERS = str.maketrans({"\n": "\u240a", "\r": "\u240d", "\t": "\u2409"})


@dataclass(frozen=True, slots=True)
class RowStyles:
    """Rich styles resolved from the widget's component classes, for one style generation."""

    base: Style
    marked: Style
    cursor: Style
    header: Style


def _append_cell(
    segments: list[Segment], cell: Text, width: int, align: Align, console: Console
) -> None:
    """Append a separator and `cell`, truncated with an ellipsis or padded to exactly `width`."""
    plain = cell.plain
    if not plain.isprintable():
        cell = cell.copy()
        cell.plain = plain = plain.translate(_LAYOUT_BREAKERS)
    length = cell_len(plain)
    if length > width:
        # An ellipsis, not a silent crop: a cut-off amount must look cut off.
        cell = cell.copy()
        cell.truncate(width, overflow="ellipsis")
        plain = cell.plain
        length = cell_len(plain)
    pad = width - length
    if pad > 0 and align == "right":
        segments.append(Segment(" " * (pad + 1)))
    else:
        segments.append(_SEPARATOR_SEGMENT)
    if cell.spans:
        segments.extend(cell.render(console))
    elif plain:
        # Text.render drops the base style of a Text without spans: apply it here.
        style = cell.style
        segments.append(
            Segment(plain, console.get_style(style) if isinstance(style, str) else style)
        )
    if pad > 0 and align != "right":
        segments.append(Segment(" " * pad))


def _initial_width(column: Column) -> int:
    if column.width is not None:
        return max(1, column.width)
    # Room for the label and a sort indicator.
    return max(column.min_width, min(column.max_width, cell_len(column.label) + 1))


class TableLayout:
    """The columns' current widths, and painting rows and the header at those widths."""

    def __init__(self, columns: tuple[Column, ...], fixed_columns: int) -> None:
        self.columns = columns
        self.fixed_columns = max(0, min(fixed_columns, len(columns)))
        """Leading columns that stay in place (with the gutter) when scrolled sideways."""
        self.widths: list[int] = [_initial_width(column) for column in columns]

    # ------------------------------------------------------------------ widths

    def measure(self, sample: Iterable[tuple[Text, ...]]) -> None:
        """Size the columns afresh from the labels and a sample of rows (a full load)."""
        widths = [_initial_width(column) for column in self.columns]
        grow = self._growable_columns(widths)
        for cells in sample:
            self._grow_widths(grow, cells, widths)
        self.widths = widths

    def fit(self, rows: Iterable[tuple[Text, ...]]) -> bool:
        """Widen auto columns to fit the cells of `rows` (up to their caps); True if any grew.

        `rows` is not read at all when no column can grow (lazy rows stay unformatted).
        """
        grow = self._growable_columns(self.widths)
        if not grow:
            return False
        grew = False
        for cells in rows:
            if self._grow_widths(grow, cells, self.widths):
                grew = True
        return grew

    def _growable_columns(self, widths: list[int]) -> list[tuple[int, int]]:
        """(index, cap) of auto-width columns still narrower than their cap."""
        return [
            (index, max(column.min_width, column.max_width))
            for index, column in enumerate(self.columns)
            if column.width is None and widths[index] < max(column.min_width, column.max_width)
        ]

    @staticmethod
    def _grow_widths(
        grow: list[tuple[int, int]], cells: tuple[Text, ...], widths: list[int]
    ) -> bool:
        """Widen auto columns to fit `cells` (up to their caps); True if any grew."""
        grew = False
        for index, cap in grow:
            if index >= len(cells):
                continue
            length = cells[index].cell_len
            if length > widths[index]:
                widths[index] = min(length, cap)
                grew = True
        return grew

    def total_width(self) -> int:
        return GUTTER_WIDTH + sum(self.widths) + len(SEPARATOR) * len(self.widths)

    def fixed_width(self) -> int:
        """Cells that do not scroll sideways: the gutter and the fixed columns."""
        fixed = self.widths[: self.fixed_columns]
        return GUTTER_WIDTH + sum(fixed) + len(SEPARATOR) * len(fixed)

    def scroll_column_starts(self) -> list[int]:
        """scroll_x values that put each scrolling column at the left edge."""
        starts: list[int] = []
        x = 0
        for width in self.widths[self.fixed_columns :]:
            starts.append(x)
            x += width + len(SEPARATOR)
        return starts

    def changed_spans(
        self, old: tuple[Text, ...], new: tuple[Text, ...]
    ) -> list[tuple[int, int]] | None:
        """(first x, end x) of the unscrolled columns whose cells differ, adjacent ones merged.

        None when the cell count changed (the whole line must be repainted).
        """
        if len(old) != len(new):
            return None
        spans: list[tuple[int, int]] = []
        x = GUTTER_WIDTH
        for index, width in enumerate(self.widths):
            start = x + len(SEPARATOR)
            x = start + width
            a, b = old[index] if index < len(old) else EMPTY_CELL, new[index]
            if a is b or (a.plain == b.plain and a.style == b.style and a.spans == b.spans):
                continue
            if spans and spans[-1][1] + len(SEPARATOR) == start:
                spans[-1] = (spans[-1][0], x)
            else:
                spans.append((start, x))
        return spans

    # ------------------------------------------------------------------ painting

    def render_row(
        self,
        cells: tuple[Text, ...],
        console: Console,
        styles: RowStyles,
        is_cursor: bool,
        is_marked: bool,
    ) -> Strip:
        """One whole row (gutter and all columns, unscrolled) as a strip."""
        segments = [
            Segment((CURSOR_MARKER if is_cursor else " ") + (MARK_MARKER if is_marked else " "))
        ]
        for index, (column, width) in enumerate(zip(self.columns, self.widths, strict=True)):
            cell = cells[index] if index < len(cells) else EMPTY_CELL
            _append_cell(segments, cell, width, column.align, console)
        # The cursor goes on top of the cells' own colours: the cursor row must read the
        # same in every theme, and at 16 colours a red cell on the cursor colour may not.
        styled = Segment.apply_style(
            segments,
            styles.marked if is_marked else styles.base,
            styles.cursor if is_cursor else None,
        )
        # One segment per run of equal style: each segment costs an SGR and a reset.
        return Strip(Segment.simplify(styled), self.total_width())

    def render_header(
        self, console: Console, style: Style, sort_index: int | None, reverse: bool
    ) -> Strip:
        """The header row: labels, and the sort direction on the sorted column's label."""
        segments = [Segment(" " * GUTTER_WIDTH)]
        for index, (column, width) in enumerate(zip(self.columns, self.widths, strict=True)):
            label = Text(column.label)
            if index == sort_index:
                indicator = SORT_DESCENDING if reverse else SORT_ASCENDING
                label.truncate(max(width - 1, 0), overflow="ellipsis")
                label.append(indicator)
            _append_cell(segments, label, width, column.align, console)
        styled = Segment.apply_style(segments, style)
        return Strip(Segment.simplify(styled), self.total_width())

    def column_visible(self, index: int, scroll_x: int, width: int) -> bool:
        """Whether column `index` is on screen whole, scrolled by `scroll_x` in `width` cells."""
        start = GUTTER_WIDTH + sum(self.widths[:index]) + len(SEPARATOR) * (index + 1)
        end = start + self.widths[index]
        if index < self.fixed_columns or scroll_x == 0:
            return end <= width
        fixed = self.fixed_width()
        return start >= fixed + scroll_x and end <= scroll_x + width

    def sort_name(
        self,
        sort_index: int | None,
        reverse: bool,
        default_label: str,
        note: tuple[str, bool],
        scroll_x: int,
        width: int,
    ) -> str:
        """ "sorted by …" for the header's right end, when the sorted column's own label
        cannot say it: it is off screen, or `note` (words, shown always?) must be seen;
        the default order (`default_label`; "" for arrival order) has no column at all."""
        if sort_index is None:
            return f" sorted by {default_label} " if default_label else ""
        words, always = note
        if not always and self.column_visible(sort_index, scroll_x, width):
            return ""
        arrow = SORT_DESCENDING if reverse else SORT_ASCENDING
        label = " ".join(part for part in (self.columns[sort_index].label, words) if part)
        return f" sorted by {label} {arrow} "

    @staticmethod
    def tag_right(header: Strip, tag: str, width: int, style: Style) -> Strip:
        """The header line with `tag` over its right end, reversed to stand apart from
        the labels (the sort's name, when its column cannot show it)."""
        if not tag or width <= 0:
            return header
        text = Text(tag)
        text.truncate(width, overflow="ellipsis")
        size = text.cell_len
        tagged = Strip([Segment(text.plain, style + Style(reverse=True))], size)
        return Strip.join([header.crop(0, width - size), tagged])

    def crop(self, strip: Strip, scroll_x: int, width: int, pad_style: Style) -> Strip:
        """Cut the viewport out of a whole-row strip, keeping the fixed columns in place."""
        if scroll_x == 0:
            return strip.crop_extend(0, width, pad_style)
        fixed = self.fixed_width()
        if fixed >= width:
            return strip.crop_extend(0, width, pad_style)
        start = fixed + scroll_x
        return Strip.join(
            [strip.crop(0, fixed), strip.crop_extend(start, start + width - fixed, pad_style)]
        )
