"""How `LiveTable` lays out and paints a row: column widths, cells fitted to them, strips.

A row is painted whole and unscrolled (the gutter, then every column) into one `Strip`,
which the widget caches; horizontal scrolling only crops it, keeping the gutter and the
fixed columns in place. Rows are rendered as few segments as their styles allow
(adjacent cells of one style merged): Textual writes a full SGR sequence and a reset
around every segment, so an unmerged row costs about three times the bytes on the wire.

Auto-width columns are sized from their label and a sample of rows on a full load, and
after that only grow (up to each column's cap; figure columns have none) as wider rows
come on screen: a column that shrank and grew back every poll would invalidate every
cached row each time.

Which columns are shown (`arrange`): in the normal layout, the columns that fit the
table's width whole, chosen by `Column.priority` and shown in declared order, plus the
sorted column (it displaces the least important ones); in the wide layout, every column,
the `frozen` ones first and in place, the rest scrolled sideways by whole columns. A
column is drawn whole or not at all: `crop` never shows part of one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.strip import Strip

from risk_tui.widgets.table_model import EMPTY_CELL, Align, Column
from risk_tui.widgets.whole import TOO_WIDE, fitting

CURSOR_MARKER = ">"
"""Shown in the gutter of the cursor row, so the cursor is visible without colour."""
MARK_MARKER = "*"
"""Shown in the gutter of marked rows, so marks are visible without colour."""
SORT_ASCENDING = "▲"
SORT_DESCENDING = "▼"

GUTTER_WIDTH = 2  # cursor marker + mark marker
TOO_LONG = "…"
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
        # An ellipsis, not a silent crop: a cut-off amount must look cut off. Words are
        # cut at a space where one is near, so a figure in them is shown whole or not at
        # all ("sell 1000 0700.HK market, worth…", not "… worth SGD 12,3…").
        cut = cell.copy()
        cut.truncate(width, overflow="ellipsis")
        kept = cut.plain[:-1]
        space = kept.rfind(" ")
        if space >= width // 2 and not plain[len(kept)].isspace():
            cut = cell[:space]
            cut.append(TOO_LONG, style=cell.style)
        cell = cut
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
    return max(column.min_width, min(_cap(column), cell_len(column.label) + 1))


def _cap(column: Column) -> int:
    """The widest an auto column grows: figures (`whole`) as wide as they need."""
    if column.whole:
        return _NO_CAP
    return max(column.min_width, column.max_width)


_NO_CAP = 1 << 30


def _spills(cell: Text) -> bool:
    """A cell that may run on over the empty cells to its right (rich's "ignore"
    overflow: text past its bounds), e.g. an incomplete account's reason."""
    return cell.overflow == "ignore"


class TableLayout:
    """The columns' current widths, which are shown, and painting rows and the header."""

    def __init__(self, columns: tuple[Column, ...]) -> None:
        self.columns = columns
        self.widths: list[int] = [_initial_width(column) for column in columns]
        self.wide = False
        """The wide layout: every column, scrolled sideways; else only those that fit."""
        self.width = -1
        """The width (cells) the shown columns were chosen for."""
        self.pinned: int | None = None
        """A column shown in the normal layout whatever its priority (the sorted one)."""
        self.shown: tuple[int, ...] = tuple(range(len(columns)))
        """Indexes of the columns drawn, in display order."""
        self.fixed_columns = 0
        """Leading shown columns that stay in place (with the gutter) when scrolled."""
        self._by_priority = sorted(range(len(columns)), key=lambda i: (columns[i].priority, i))
        self._frozen = tuple(i for i, column in enumerate(columns) if column.frozen)
        self._wide_order = self._frozen + tuple(
            i for i, column in enumerate(columns) if not column.frozen
        )
        self._window: tuple[int, int, tuple[int, int, int]] | None = None  # crop's cache
        self.reserve = 0
        """Cells kept blank at the right end of the wide layout for the sort's name."""
        self._tag: tuple[tuple[Any, ...], str] | None = None  # sort_tag's cache

    # ------------------------------------------------------------------ which columns

    def arrange(self, width: int | None = None) -> bool:
        """Choose the shown columns for `width` cells (None: the last width), in the
        current layout; True when the shown columns changed (every row is stale)."""
        if width is not None:
            self.width = width
        self._window = None
        self._tag = None
        if self.wide:
            shown, fixed = self._wide_order, len(self._frozen)
        else:
            shown, fixed = self._fitting(self.width), 0
        if (shown, fixed) == (self.shown, self.fixed_columns):
            return False
        self.shown, self.fixed_columns = shown, fixed
        return True

    def _fitting(self, width: int) -> tuple[int, ...]:
        """The longest run of columns in priority order that fits `width` whole, plus the
        pinned column in place of the least important; in declared order."""
        room = width - GUTTER_WIDTH
        sep = len(SEPARATOR)
        chosen: list[int] = []
        for index in self._by_priority:
            need = self.widths[index] + sep
            if chosen and need > room:
                break
            chosen.append(index)
            room -= need
        pinned = self.pinned
        if pinned is not None and pinned not in chosen:
            room -= self.widths[pinned] + sep
            while room < 0 and len(chosen) > 1:
                dropped = chosen.pop()
                room += self.widths[dropped] + sep
            chosen.append(pinned)
        return tuple(sorted(chosen))

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
            (index, _cap(column))
            for index, column in enumerate(self.columns)
            if column.width is None and widths[index] < _cap(column)
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
            cell = cells[index]
            length = cell.cell_len
            if length > widths[index] and not _spills(cell):
                widths[index] = min(length, cap)
                grew = True
        return grew

    def total_width(self) -> int:
        """Cells of a whole row: the gutter and the shown columns."""
        widths = self.widths
        return GUTTER_WIDTH + sum(widths[i] for i in self.shown) + len(SEPARATOR) * len(self.shown)

    def fixed_width(self) -> int:
        """Cells that do not scroll sideways: the gutter and the fixed columns."""
        fixed = [self.widths[i] for i in self.shown[: self.fixed_columns]]
        return GUTTER_WIDTH + sum(fixed) + len(SEPARATOR) * len(fixed)

    def scroll_column_starts(self) -> list[int]:
        """scroll_x values that put each scrolling column at the left edge."""
        starts: list[int] = []
        x = 0
        for index in self.shown[self.fixed_columns :]:
            starts.append(x)
            x += self.widths[index] + len(SEPARATOR)
        return starts

    def window(self, scroll_x: int, width: int) -> tuple[int, int, int]:
        """(fixed cells, first x, end x) of the scrolling part shown at `scroll_x` in
        `width` cells: from the first column starting at or after `scroll_x` (the wide
        layout scrolls by whole columns, whatever the scrollbar says) to the end of the
        last column that fits whole. Cached per scroll offset and width."""
        cached = self._window
        if cached is not None and cached[0] == scroll_x and cached[1] == width:
            return cached[2]
        fixed = self.fixed_width()
        room = width - fixed - self.reserve
        first = end = None
        x = 0
        for index in self.shown[self.fixed_columns :]:
            step = self.widths[index] + len(SEPARATOR)
            if first is None and x >= scroll_x:
                first = x
            if first is not None:
                if x + step - first > room:
                    break
                end = x + step
            x += step
        if first is None:
            first = x
        window = (fixed, first, first if end is None else end)
        self._window = (scroll_x, width, window)
        return window

    def free_width(self, scroll_x: int, width: int) -> int:
        """Blank cells at the right end of the header and rows, after the last column."""
        fixed, first, end = self.window(scroll_x, width)
        return max(0, width - fixed - (end - first))

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
        widths = self.widths
        for index in self.shown:
            start = x + len(SEPARATOR)
            x = start + widths[index]
            a, b = old[index] if index < len(old) else EMPTY_CELL, new[index]
            if a is b or (a.plain == b.plain and a.style == b.style and a.spans == b.spans):
                continue
            if _spills(a) or _spills(b):
                return None  # it may run on over other columns: the whole line
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
        columns, widths, shown = self.columns, self.widths, self.shown
        position = 0
        while position < len(shown):
            index = shown[position]
            cell = cells[index] if index < len(cells) else EMPTY_CELL
            width = widths[index]
            align = columns[index].align
            position += 1
            if _spills(cell) and cell.cell_len > width:
                # Run on over the empty cells to the right (not out of the fixed columns).
                align = "left"
                stop = len(shown) if position > self.fixed_columns else self.fixed_columns
                while position < stop and cell.cell_len > width:
                    after = shown[position]
                    if after < len(cells) and cells[after].plain:
                        break
                    width += len(SEPARATOR) + widths[after]
                    position += 1
            _append_cell(segments, cell, width, align, console)
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
        for index in self.shown:
            column, width = self.columns[index], self.widths[index]
            label = Text(column.label)
            if index == sort_index:
                indicator = SORT_DESCENDING if reverse else SORT_ASCENDING
                label.truncate(max(width - 1, 0), overflow="ellipsis")
                label.append(indicator)
            _append_cell(segments, label, width, column.align, console)
        styled = Segment.apply_style(segments, style)
        return Strip(Segment.simplify(styled), self.total_width())

    def column_visible(self, index: int, scroll_x: int, width: int) -> bool:
        """Whether column `index` is on screen, scrolled by `scroll_x` in `width` cells."""
        if index not in self.shown:
            return False
        position = self.shown.index(index)
        if position < self.fixed_columns:
            return self.fixed_width() <= width
        _fixed, first, end = self.window(scroll_x, width)
        scrolled = self.shown[self.fixed_columns : position]
        start = sum(self.widths[i] + len(SEPARATOR) for i in scrolled)
        return first <= start and start + self.widths[index] + len(SEPARATOR) <= end

    def sort_names(
        self,
        sort_index: int | None,
        reverse: bool,
        default_label: str,
        note: tuple[str, bool],
        scroll_x: int,
        width: int,
    ) -> tuple[str, ...]:
        """What the header's right end says of the order, longest first (the first that
        fits the blank end of the header is shown), when the sorted column's own label
        cannot say it: it is off screen, or `note` (words, shown always?) must be seen;
        the default order (`default_label`; "" for arrival order) has no column at all."""
        if sort_index is None:
            if not default_label:
                return ()
            return (f" sorted by {default_label} ", f" by {default_label} ")
        words, always = note
        visible = self.column_visible(sort_index, scroll_x, width)
        if visible and not always:
            return ()
        arrow = SORT_DESCENDING if reverse else SORT_ASCENDING
        name = self.columns[sort_index].label
        label = " ".join(part for part in (name, words) if part)
        if visible:  # its label has the arrow: only the words are news
            return (f" sorted by {label} {arrow} ",)
        return (f" sorted by {label} {arrow} ", f" by {name} {arrow} ", f" {name}{arrow}")

    def sort_tag(
        self,
        sort_index: int | None,
        reverse: bool,
        default_label: str,
        note: tuple[str, bool],
        scroll_x: int,
        width: int,
    ) -> str:
        """The words for the header's blank right end (see `sort_names`): the longest that
        fits. When the sorted column is scrolled out of the wide layout and no name fits,
        whole columns make room for the shortest (`reserve`): the header never covers a
        label. Cached per state; call before cropping any line of a frame."""
        stamp = (sort_index, reverse, default_label, note, scroll_x, width, self.wide)
        if self._tag is not None and self._tag[0] == stamp:
            return self._tag[1]
        if self.reserve:
            self.reserve, self._window = 0, None
        names = self.sort_names(sort_index, reverse, default_label, note, scroll_x, width)
        tag = fitting(names, self.free_width(scroll_x, width)) if names else ""
        if tag == TOO_WIDE:
            tag = ""
            if sort_index is not None and not self.column_visible(sort_index, scroll_x, width):
                tag = names[-1]
                self.reserve, self._window = cell_len(tag), None
        self._tag = (stamp, tag)
        return tag

    @staticmethod
    def tag_right(header: Strip, tag: str, width: int, style: Style) -> Strip:
        """The header line with `tag` at its right end, reversed to stand apart from the
        labels (the sort's name, when its column cannot show it)."""
        if not tag or width <= 0:
            return header
        text = Text(tag)
        text.truncate(width, overflow="ellipsis")
        size = text.cell_len
        tagged = Strip([Segment(text.plain, style + Style(reverse=True))], size)
        return Strip.join([header.crop(0, width - size), tagged])

    def crop(self, strip: Strip, scroll_x: int, width: int, pad_style: Style) -> Strip:
        """Cut the viewport out of a whole-row strip: the fixed columns in place, then
        the scrolling columns that fit whole from `scroll_x` (see `window`), then blank."""
        if not self.wide:
            return strip.crop_extend(0, width, pad_style)
        fixed, first, end = self.window(scroll_x, width)
        if fixed >= width:
            return strip.crop_extend(0, width, pad_style)
        parts = [strip.crop(0, fixed), strip.crop(fixed + first, fixed + end)]
        return Strip.join(parts).crop_extend(0, width, pad_style)
