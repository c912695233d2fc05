"""LiveTable: a keyed, sorted, filterable blotter on the Line API that repaints only changed rows.

Textual's `DataTable` re-renders every visible line whenever any cell changes and
measures every cell of every added row, which is seconds of work for the 20,000-row
warnings table on a crash day. `LiveTable` follows toolong's `LogLines` instead: a
`ScrollView` whose `render_line(y)` returns a cached `Strip` per row, keyed by the row's
key and version, so a poll's diff costs a dictionary update plus re-rendering the few
changed rows that are actually on screen.

How repaints are kept small:

- A row's strip is cached under (row key, row version, layout generation, style
  generation, is cursor, is marked). A diff bumps the versions of changed rows only;
  column widths changing bump the layout generation; theme, CSS or focus changes bump
  the style generation; moving the cursor or a mark changes the flags of two rows.
  Cached strips hold the whole row unscrolled, so horizontal scrolling only re-crops.
- After a diff, the rows on screen before and after are compared and only the lines
  that show a changed row, or a different row, are refreshed; a row that stayed on its
  line refreshes only the columns whose cells changed, so Textual writes just those
  cells to the terminal (a live equity figure, not the whole 120-column line).
- Rows are rendered as few segments as their styles allow (adjacent cells of one style
  merged): Textual writes a full SGR sequence and a reset around every segment, so an
  unmerged row costs about three times the bytes on the wire.
- Screen layouts elsewhere (any `Static.update`, e.g. a clock) do not repaint the
  scrollbars: Textual's ScrollView would redraw both on every layout.
- The view is a sorted list of entries, one per shown row, ordered by (sort value,
  arrival sequence): a diff moves only the entries whose sort value changed (bisect, or
  one merge when many moved), never re-sorts the whole view. A descending sort reads
  the list backwards. When every sort value is an `int` (arrival order, and the
  warnings tab's money in minor units) an entry is the single integer
  `value * 2**40 + sequence`, so every comparison made while moving entries is one
  C-level integer comparison; other sort values (text, Decimal, tuples) use
  (value, sequence, key) tuples, whose comparisons go through the values' own
  (slower) rich comparisons.
- While repaints are suspended (hidden tab, open dialog) diffs update only the model;
  resuming repaints the visible region once.

Cells are `rich.text.Text` built by the caller from sanitized data; nothing here parses
markup.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from itertools import count
from operator import itemgetter
from typing import Any, ClassVar, Literal

from rich.cells import cell_len
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

__all__ = ["Column", "LiveTable", "RowData", "RowFilter"]

Align = Literal["left", "right"]

CURSOR_MARKER = ">"
"""Shown in the gutter of the cursor row, so the cursor is visible without colour."""
MARK_MARKER = "*"
"""Shown in the gutter of marked rows, so marks are visible without colour."""
SORT_ASCENDING = "▲"
SORT_DESCENDING = "▼"

_GUTTER_WIDTH = 2  # cursor marker + mark marker
_SEPARATOR = " "
_SEPARATOR_SEGMENT = Segment(_SEPARATOR)
_EMPTY_CELL = Text()
_AUTO_WIDTH_SAMPLE = 1000
"""Rows measured when auto-sizing columns on a full load; widths then only grow (up to
each column's cap) as wider rows come on screen, until the next full load."""
_RESORT_THRESHOLD = 256
"""Above this many entry moves, one merge of the view beats moving entries one by one.

Measured on 20,000 rows with Decimal sort values (tuple entries): per-entry bisect moves
cost about as much as one merge at ~1,000 moves, and grow with them (each is a list
memmove). With packed integer entries the crossover is lower (~64 moves, 0.25 ms) but
between 64 and 256 moves the per-entry path costs at most ~0.4 ms more than a merge.
"""
_STRIP_CACHE_SIZE = 2048
"""Rendered rows kept: several screens' worth, so scrolling back is also cheap."""
# A raw line break or tab inside a cell would break the row's cell geometry on screen.
# Callers sanitize data (risk_tui.core.text); this is only a same-length layout guard
# (so the cell's style spans stay aligned), taken when `str.isprintable` says so.
_LAYOUT_BREAKERS = str.maketrans({"\n": "\u240a", "\r": "\u240d", "\t": "\u2409"})


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a `LiveTable`.

    `width=None` sizes the column from its label and a sample of rows, between
    `min_width` and `max_width`; a fixed `width` is used as given. `sort_key` maps a
    cell to a comparable value (values must be mutually comparable across rows); without
    it the column sorts by the cell's plain text.
    """

    key: str
    label: str
    width: int | None = None
    align: Align = "left"
    sort_key: Callable[[Text], Any] | None = None
    min_width: int = 1
    max_width: int = 40


class RowData:
    """The cells of one row, in column order, and the row's version.

    Pass a new `version` whenever the cells change, and the same version to say
    "unchanged" (the cheap path for callers that resend whole snapshots). With
    `version=None` the table compares the cells itself and bumps its stored version
    when they differ. Cells are not copied: do not mutate a `Text` after passing it.

    `RowData.lazy(make, version)` defers making the cells until the table first needs
    them: to paint the row, to sort by a column or filter by text, to size a column
    from a sample. A crash poll changes thousands of rows of which forty are on the
    screen; the others are formatted only if they are ever shown. `make` must depend
    only on what it captured (it runs later, at most once).
    """

    __slots__ = ("_cells", "_make", "version")

    def __init__(self, cells: tuple[Text, ...], version: int | None = None) -> None:
        self._cells: tuple[Text, ...] | None = cells
        self._make: Callable[[], tuple[Text, ...]] | None = None
        self.version = version

    @classmethod
    def lazy(cls, make: Callable[[], tuple[Text, ...]], version: int) -> RowData:
        row = cls.__new__(cls)
        row._cells = None
        row._make = make
        row.version = version
        return row

    @property
    def cells(self) -> tuple[Text, ...]:
        cells = self._cells
        if cells is None:
            assert self._make is not None
            cells = self._cells = self._make()
            self._make = None
        return cells

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RowData):
            return NotImplemented
        return self.version == other.version and self.cells == other.cells

    __hash__ = None  # type: ignore[assignment]  # mutable cache inside: not hashable

    def __repr__(self) -> str:
        cells = "…" if self._cells is None else repr(self._cells)
        return f"RowData({cells}, version={self.version})"


RowFilter = Callable[[str, RowData], bool]
"""A filter predicate: given a row key and its data, True to show the row."""

# A view entry orders a row by (sort value, insertion sequence); the sequence breaks
# ties and is unique, so rows with equal sort values keep arrival order. Integer sort
# values pack both into one int (`value * _SEQ_SPAN + sequence`: exact, and in the same
# order, for any int value while the sequence is below _SEQ_SPAN); any other value
# makes a (sort value, insertion sequence, row key) tuple, whose comparisons never
# reach the key.
_Entry = int | tuple[Any, int, str]
_SEQ_SPAN = 1 << 40
_tuple_entry_key: Callable[[Any], str] = itemgetter(2)


@dataclass(frozen=True, slots=True)
class _RowStyles:
    """Rich styles resolved from the component classes, for one style generation."""

    base: Style
    marked: Style
    cursor: Style
    header: Style


def _natural_order(row: RowData) -> int:
    """Sort value when unsorted: all equal, so the insertion sequence decides."""
    return 0


def _cells_equal(old: tuple[Text, ...], new: tuple[Text, ...]) -> bool:
    """Whether two cell tuples would render identically (text, base style and spans)."""
    if len(old) != len(new):
        return False
    for a, b in zip(old, new, strict=True):
        if a is b:
            continue
        if a.plain != b.plain or a.style != b.style or a.spans != b.spans:
            return False
    return True


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


class LiveTable(ScrollView, can_focus=True, inherit_bindings=False):
    """A live blotter: keyed rows updated by diffs, sorted, filtered, with cursor and marks.

    Line 0 is the column header (fixed vertically, scrolled horizontally with the
    content); row `i` of the current view is virtual line `i + 1`. The left gutter shows
    `>` on the cursor row and `*` on marked rows, and stays put with the first
    `fixed_columns` columns when the table is scrolled sideways.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor_up", "Up", show=False, id="table.cursor_up"),
        Binding("down", "cursor_down", "Down", show=False, id="table.cursor_down"),
        Binding("pageup", "cursor_page_up", "Page up", show=False, id="table.page_up"),
        Binding("pagedown", "cursor_page_down", "Page down", show=False, id="table.page_down"),
        Binding("home", "cursor_home", "First row", show=False, id="table.home"),
        Binding("end", "cursor_end", "Last row", show=False, id="table.end"),
        Binding("left", "scroll_column_left", "Left", show=False, id="table.scroll_left"),
        Binding("right", "scroll_column_right", "Right", show=False, id="table.scroll_right"),
        Binding("space", "toggle_mark", "Mark", id="table.mark"),
        Binding("enter", "select_row", "Open", id="table.select"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "live-table--header",
        "live-table--cursor",
        "live-table--marked",
    }

    DEFAULT_CSS = """
    LiveTable {
        height: 1fr;
        background: $surface;
        color: $foreground;
        scrollbar-size-vertical: 1;
        & > .live-table--header {
            background: $panel;
            color: $foreground;
            text-style: bold;
        }
        /* ANSI themes may give the header no colour of its own: underline tells it
           apart from bold (marked) rows, with NO_COLOR too. */
        &:ansi > .live-table--header {
            text-style: bold underline;
        }
        & > .live-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        &:focus > .live-table--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
        & > .live-table--marked {
            background: $warning-muted;
            text-style: bold;
        }
    }
    """

    class RowSelected(Message):
        """The operator pressed enter on a row."""

        def __init__(self, live_table: LiveTable, key: str) -> None:
            self.live_table = live_table
            self.key = key
            super().__init__()

        @property
        def control(self) -> LiveTable:
            """The table that posted the message (for `@on(..., selector)`)."""
            return self.live_table

    class CursorMoved(Message):
        """The cursor is on a different row (`key` is None when the view is empty)."""

        def __init__(self, live_table: LiveTable, key: str | None) -> None:
            self.live_table = live_table
            self.key = key
            super().__init__()

        @property
        def control(self) -> LiveTable:
            """The table that posted the message."""
            return self.live_table

        def can_replace(self, message: Message) -> bool:
            """A burst of moves (key repeat) collapses to the latest one."""
            return (
                isinstance(message, LiveTable.CursorMoved) and message.live_table is self.live_table
            )

    class SortChanged(Message):
        """The table is now sorted by `column_key` (None: arrival order)."""

        def __init__(self, live_table: LiveTable, column_key: str | None, reverse: bool) -> None:
            self.live_table = live_table
            self.column_key = column_key
            self.reverse = reverse
            super().__init__()

        @property
        def control(self) -> LiveTable:
            """The table that posted the message."""
            return self.live_table

    class MarksChanged(Message):
        """The set of marked rows changed."""

        def __init__(self, live_table: LiveTable, marked_keys: frozenset[str]) -> None:
            self.live_table = live_table
            self.marked_keys = marked_keys
            super().__init__()

        @property
        def control(self) -> LiveTable:
            """The table that posted the message."""
            return self.live_table

    def __init__(
        self,
        columns: Iterable[Column],
        *,
        fixed_columns: int = 0,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        """Create an empty table with the given columns.

        `fixed_columns` leading columns stay in place (with the marker gutter) when the
        table scrolls horizontally, e.g. the account number on an 80-column terminal.
        """
        self._columns: tuple[Column, ...] = tuple(columns)
        if not self._columns:
            raise ValueError("LiveTable needs at least one column")
        keys = [column.key for column in self._columns]
        if len(set(keys)) != len(keys):
            raise ValueError(f"duplicate column keys: {keys}")
        self._column_index = {key: index for index, key in enumerate(keys)}
        self._fixed_columns = max(0, min(fixed_columns, len(self._columns)))
        # The model: every row, and the insertion sequence that orders unsorted rows.
        self._rows: dict[str, RowData] = {}
        self._seq: dict[str, int] = {}
        self._next_seq = count()
        # The view: rows that pass the filter, as entries sorted ascending; a descending
        # sort reads the same list backwards, so reversing never re-sorts.
        self._entries: list[_Entry] = []
        self._entry_of: dict[str, _Entry] = {}
        # Packed-integer entries (every sort value an int) need a way back to the key.
        self._int_entries = True
        self._key_of_code: dict[_Entry, str] = {}  # only ints in it
        self._entry_key: Callable[[_Entry], str] = self._key_of_code.__getitem__
        self._predicate: RowFilter | None = None
        self._sort_index: int | None = None
        self._sort_reverse = False
        self._cursor_key: str | None = None
        self._marked: set[str] = set()
        # Layout: column widths and the generation that keys the strip cache.
        self._widths: list[int] = [self._initial_width(column) for column in self._columns]
        self._layout_gen = 0
        self._style_gen = 0
        self._styles_cached: _RowStyles | None = None
        self._strip_cache: LRUCache[tuple[Any, ...], Strip] = LRUCache(_STRIP_CACHE_SIZE)
        self._header_cache: tuple[tuple[Any, ...], Strip] | None = None
        self._pause_depth = 0
        self._last_size_update: tuple[Size, Size, Size, Size] | None = None
        self.row_renders = 0
        """Rows rendered into strips (strip-cache misses); for tests and benchmarks."""
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self._sync_virtual_size()

    # ------------------------------------------------------------------ public state

    @property
    def columns(self) -> tuple[Column, ...]:
        """The columns, in display order."""
        return self._columns

    @property
    def column_widths(self) -> tuple[int, ...]:
        """Current width of each column in cells (auto widths only grow between full loads)."""
        return tuple(self._widths)

    @property
    def row_count(self) -> int:
        """Rows in the current view (those passing the filter)."""
        return len(self._entries)

    @property
    def total_row_count(self) -> int:
        """All rows in the model, filtered out or not."""
        return len(self._rows)

    @property
    def cursor_key(self) -> str | None:
        """Key of the row under the cursor, or None when the view is empty."""
        return self._cursor_key

    @property
    def cursor_index(self) -> int | None:
        """Position of the cursor row in the current view, or None."""
        return self._index_of(self._cursor_key)

    @property
    def marked_keys(self) -> frozenset[str]:
        """Keys of marked rows (including marked rows the filter currently hides)."""
        return frozenset(self._marked)

    @property
    def sort_column(self) -> str | None:
        """Key of the column the view is sorted by, or None for arrival order."""
        return None if self._sort_index is None else self._columns[self._sort_index].key

    @property
    def sort_reverse(self) -> bool:
        """Whether the sort is descending."""
        return self._sort_reverse

    @property
    def paused(self) -> bool:
        """True while repaints are suspended (diffs still update the model)."""
        return self._pause_depth > 0

    def get_row(self, key: str) -> RowData | None:
        """The stored data of row `key`, or None."""
        return self._rows.get(key)

    def key_at(self, index: int) -> str:
        """Key of the row at `index` in the current view."""
        return self._entry_key(self._entry_at(index))

    def visible_keys(self) -> list[str]:
        """All keys of the current view, in display order."""
        keys = list(map(self._entry_key, self._entries))
        if self._sort_reverse:
            keys.reverse()
        return keys

    # ------------------------------------------------------------------ loading and diffs

    def set_rows(self, rows: Mapping[str, RowData]) -> None:
        """Replace every row (a full load); keeps the cursor and marks on surviving keys."""
        cursor_before = self.cursor_index
        self._rows = {}
        self._seq = {}
        self._next_seq = count()  # every row gets a new sequence: restart from 0
        for key, row in rows.items():
            self._rows[key] = row if row.version is not None else RowData(row.cells, 0)
            self._seq[key] = next(self._next_seq)
        marked = {key for key in self._marked if key in self._rows}
        if marked != self._marked:
            self._marked = marked
            self.post_message(self.MarksChanged(self, frozenset(marked)))
        self._rebuild_entries()
        every_row = list(self._rows.values())
        # Spread over the whole load, not its head: feeds often send rows grouped.
        step = max(1, len(every_row) // _AUTO_WIDTH_SAMPLE)
        self._widths = self._measure_widths(row.cells for row in every_row[::step])
        self._invalidate_layout()
        self._restore_cursor(cursor_before)
        self._after_structural_change()

    def apply_diff(self, upserts: Mapping[str, RowData], removals: Iterable[str] = ()) -> None:
        """Apply one poll's changes: add or update `upserts`, delete `removals`.

        Only rows whose version changed (or, for `version=None`, whose cells changed)
        count as changed; only those, plus rows that moved on screen, are repainted.
        """
        window_before = self._window_keys()
        cursor_before = self.cursor_index
        drops: list[_Entry] = []
        adds: list[_Entry] = []
        changed: set[str] = set()
        previous: dict[str, RowData] = {}  # the replaced data of updated rows
        marks_changed = False
        # Locals: this loop runs for every changed row of every poll.
        rows = self._rows
        seq = self._seq
        entry_of = self._entry_of
        predicate = self._predicate
        sort_value = self._sort_value_function()
        sorted_view = self._sort_index is not None
        packed = self._int_entries
        key_of_code = self._key_of_code
        rebuild = False  # a non-int sort value arrived in a packed view: re-pack once

        for key in removals:
            if rows.pop(key, None) is None:
                continue
            del seq[key]
            entry = entry_of.pop(key, None)
            if entry is not None:
                drops.append(entry)
                if packed:
                    del key_of_code[entry]
            if key in self._marked:
                self._marked.discard(key)
                marks_changed = True

        for key, row in upserts.items():
            old = rows.get(key)
            version = row.version
            if old is None:
                seq[key] = next(self._next_seq)
                stored = row if version is not None else RowData(row.cells, 0)
            elif version is None:
                if _cells_equal(old.cells, row.cells):
                    continue
                stored = RowData(row.cells, (old.version or 0) + 1)
            elif version == old.version:
                continue
            else:
                stored = row
            rows[key] = stored
            changed.add(key)
            if old is not None:
                previous[key] = old
            if rebuild:
                continue  # the view is rebuilt from the model below
            old_entry = entry_of.get(key)
            new_entry: _Entry | None
            if predicate is None or predicate(key, stored):
                if old_entry is not None and not sorted_view:
                    continue  # arrival order: a shown row never moves
                value = sort_value(stored)
                if not packed:
                    new_entry = (value, seq[key], key)
                elif type(value) is int and seq[key] < _SEQ_SPAN:
                    new_entry = value * _SEQ_SPAN + seq[key]
                else:
                    rebuild = True
                    continue
                if new_entry == old_entry:
                    continue  # same place in the view
                entry_of[key] = new_entry
                adds.append(new_entry)
                if packed:
                    key_of_code[new_entry] = key
            elif old_entry is None:
                continue  # still filtered out
            else:
                del entry_of[key]
            if old_entry is not None:
                drops.append(old_entry)
                if packed:
                    del key_of_code[old_entry]

        if marks_changed:
            self.post_message(self.MarksChanged(self, frozenset(self._marked)))
        cursor_key_before = self._cursor_key
        if rebuild:
            self._rebuild_entries()
            self._restore_cursor(cursor_before)
        elif drops or adds:
            self._move_entries(drops, adds)
            self._restore_cursor(cursor_before)
        if self.paused:
            return  # the model is current; resume_repaints() repaints once
        if self._virtual_height() != self.virtual_size.height:
            # Calls opened or ended: a new virtual size (the scrollbar's thumb moves),
            # but only the lines now showing another row are repainted, as for any diff.
            # Setting the reactive would repaint the whole widget: on a crash day rows
            # come and go every poll, and every poll would rewrite the whole screen.
            self.set_reactive(
                LiveTable.virtual_size, Size(self._total_width(), self._virtual_height())
            )
            self.refresh(repaint=False, layout=True)
        restyled: set[str] = set()  # rows whose cursor marker changed: whole lines
        if cursor_key_before != self._cursor_key:
            for cursor_key in (cursor_key_before, self._cursor_key):
                if cursor_key is not None:
                    restyled.add(cursor_key)
        changed |= restyled
        self._scroll_cursor_into_view()
        window_after = self._window_keys()
        stale = [
            offset
            for offset, key in enumerate(window_after)
            if key in changed or offset >= len(window_before) or window_before[offset] != key
        ]
        # Widths are checked only for rows about to be painted, not for all 1,000
        # changed rows: measuring every cell of every diff would cost more than the rest
        # of the diff. Rows scrolled into view later are checked when rendered.
        if self._fit_widths_to(window_after[offset] for offset in stale):
            self._after_structural_change()
            return
        whole_lines: list[int] = []
        for offset in stale:
            key = window_after[offset]
            old = previous.get(key)
            if (
                old is None
                or key in restyled
                or offset >= len(window_before)
                or window_before[offset] != key
                or not self._refresh_changed_cells(offset, old.cells, rows[key].cells)
            ):
                whole_lines.append(offset)
        self._refresh_offsets(whole_lines, len(window_before) - len(window_after))

    # ------------------------------------------------------------------ sort and filter

    def sort_by(self, column_key: str | None, reverse: bool = False) -> None:
        """Sort the view by `column_key` (None: arrival order); the cursor keeps its row."""
        if column_key is None:
            index = None
        else:
            try:
                index = self._column_index[column_key]
            except KeyError:
                raise ValueError(f"no column {column_key!r}") from None
        if index == self._sort_index and reverse == self._sort_reverse:
            return
        rebuild = index != self._sort_index
        self._sort_index = index
        self._sort_reverse = reverse
        if rebuild:
            self._rebuild_entries()
        # Reversing only changes how the ascending entries are read: nothing to sort.
        self._header_cache = None
        self.post_message(self.SortChanged(self, column_key, reverse))
        self._after_structural_change()

    def cycle_sort(self, column_key: str) -> None:
        """Sort by `column_key` ascending, or flip its direction if already sorted by it."""
        if self.sort_column == column_key:
            self.sort_by(column_key, reverse=not self._sort_reverse)
        else:
            self.sort_by(column_key)

    def set_filter(self, predicate: RowFilter | None) -> None:
        """Show only rows for which `predicate(key, row)` is true (None: all rows).

        The cursor stays on its row if the row is still shown, else goes to the first row.
        """
        self._predicate = predicate
        self._rebuild_entries()
        if self._cursor_key not in self._entry_of:
            self._restore_cursor(0)
        self._after_structural_change()

    # ------------------------------------------------------------------ cursor and marks

    def move_cursor(self, key: str) -> bool:
        """Put the cursor on row `key`; False if that row is not in the current view."""
        if key not in self._entry_of:
            return False
        self._set_cursor(key)
        self._scroll_cursor_into_view()
        return True

    def toggle_mark(self, key: str) -> None:
        """Mark row `key`, or unmark it if marked."""
        if key not in self._rows:
            return
        if key in self._marked:
            self._marked.discard(key)
        else:
            self._marked.add(key)
        self._refresh_key(key)
        self.post_message(self.MarksChanged(self, frozenset(self._marked)))

    def clear_marks(self) -> None:
        """Unmark every row."""
        if not self._marked:
            return
        marked, self._marked = self._marked, set()
        for key in marked:
            self._refresh_key(key)
        self.post_message(self.MarksChanged(self, frozenset()))

    # ------------------------------------------------------------------ deferred repaint

    def suspend_repaints(self) -> None:
        """Stop repainting (tab hidden, dialog open); diffs still update the model.

        Calls nest: repaints resume when every suspend has been matched by a resume.
        """
        self._pause_depth += 1

    def resume_repaints(self) -> None:
        """Undo one `suspend_repaints`; the last one repaints the visible region once."""
        if self._pause_depth == 0:
            return
        self._pause_depth -= 1
        if self._pause_depth == 0:
            self._after_structural_change()

    # ------------------------------------------------------------------ actions

    def action_cursor_up(self) -> None:
        """Move the cursor up one row."""
        self._move_cursor_by(-1)

    def action_cursor_down(self) -> None:
        """Move the cursor down one row."""
        self._move_cursor_by(1)

    def action_cursor_page_up(self) -> None:
        """Move the cursor and the view up one page."""
        self._move_cursor_by(-self._page_rows(), scroll=True)

    def action_cursor_page_down(self) -> None:
        """Move the cursor and the view down one page."""
        self._move_cursor_by(self._page_rows(), scroll=True)

    def action_cursor_home(self) -> None:
        """Move the cursor to the first row."""
        if self._entries:
            self._set_cursor(self.key_at(0))
            self._scroll_cursor_into_view()

    def action_cursor_end(self) -> None:
        """Move the cursor to the last row."""
        if self._entries:
            self._set_cursor(self.key_at(len(self._entries) - 1))
            self._scroll_cursor_into_view()

    def action_scroll_column_left(self) -> None:
        """Scroll left to the previous column boundary."""
        x = round(self.scroll_x)
        starts = [start for start in self._scroll_column_starts() if start < x]
        self.scroll_to(x=starts[-1] if starts else 0, animate=False, force=True)

    def action_scroll_column_right(self) -> None:
        """Scroll right to the next column boundary."""
        x = round(self.scroll_x)
        starts = [start for start in self._scroll_column_starts() if start > x]
        target = min(starts[0], self.max_scroll_x) if starts else self.max_scroll_x
        self.scroll_to(x=target, animate=False, force=True)

    def action_toggle_mark(self) -> None:
        """Toggle the mark on the cursor row."""
        if self._cursor_key is not None:
            self.toggle_mark(self._cursor_key)

    def action_select_row(self) -> None:
        """Post `RowSelected` for the cursor row."""
        if self._cursor_key is not None:
            self.post_message(self.RowSelected(self, self._cursor_key))

    def action_cycle_sort(self, column_key: str) -> None:
        """Cycle the sort on `column_key` (for shift+letter bindings in the app)."""
        self.cycle_sort(column_key)

    # ------------------------------------------------------------------ Line API

    def render_line(self, y: int) -> Strip:
        """Render line `y` of the widget: the header on line 0, then rows from the scroll offset."""
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        styles = self._row_styles()
        if y == 0:
            return self._crop(self._header_strip(), scroll_x, width, styles.header)
        index = scroll_y + y - 1
        if index >= len(self._entries):
            return Strip.blank(width, styles.base)
        key = self.key_at(index)
        row = self._rows[key]
        is_cursor = key == self._cursor_key
        is_marked = key in self._marked
        cache_key = (
            key,
            row.version,
            self._layout_gen,
            self._style_gen,
            is_cursor,
            is_marked,
        )
        strip = self._strip_cache.get(cache_key)
        if strip is None:
            grow = self._growable_columns()
            if grow and self._grow_widths(grow, row.cells):
                # A row the load's sample missed is wider: widen now (never truncate a
                # figure that fits under the cap) and repaint the rest after this frame.
                self._invalidate_layout()
                cache_key = (key, row.version, self._layout_gen, *cache_key[3:])
                self.call_later(self._after_structural_change)
            strip = self._render_row(key, row, is_cursor, is_marked)
            self._strip_cache.set(cache_key, strip)
        pad_style = styles.cursor if is_cursor else styles.marked if is_marked else styles.base
        return self._crop(strip, scroll_x, width, pad_style)

    def _render_row(self, key: str, row: RowData, is_cursor: bool, is_marked: bool) -> Strip:
        """Render one whole row (all columns, unscrolled) into a strip: the cache-miss path."""
        self.row_renders += 1
        styles = self._row_styles()
        console = self.app.console
        segments = [
            Segment((CURSOR_MARKER if is_cursor else " ") + (MARK_MARKER if is_marked else " "))
        ]
        cells = row.cells
        for index, (column, width) in enumerate(zip(self._columns, self._widths, strict=True)):
            cell = cells[index] if index < len(cells) else _EMPTY_CELL
            _append_cell(segments, cell, width, column.align, console)
        # The cursor goes on top of the cells' own colours: the cursor row must read the
        # same in every theme, and at 16 colours a red cell on the cursor colour may not.
        styled = Segment.apply_style(
            segments,
            styles.marked if is_marked else styles.base,
            styles.cursor if is_cursor else None,
        )
        # One segment per run of equal style: each segment costs an SGR and a reset.
        return Strip(Segment.simplify(styled), self._total_width())

    def _header_strip(self) -> Strip:
        """The header row, cached per layout, style and sort state."""
        stamp = (self._layout_gen, self._style_gen, self._sort_index, self._sort_reverse)
        if self._header_cache is not None and self._header_cache[0] == stamp:
            return self._header_cache[1]
        console = self.app.console
        segments = [Segment(" " * _GUTTER_WIDTH)]
        for index, (column, width) in enumerate(zip(self._columns, self._widths, strict=True)):
            label = Text(column.label)
            if index == self._sort_index:
                indicator = SORT_DESCENDING if self._sort_reverse else SORT_ASCENDING
                label.truncate(max(width - 1, 0), overflow="ellipsis")
                label.append(indicator)
            _append_cell(segments, label, width, column.align, console)
        styled = Segment.apply_style(segments, self._row_styles().header)
        strip = Strip(Segment.simplify(styled), self._total_width())
        self._header_cache = (stamp, strip)
        return strip

    def _crop(self, strip: Strip, scroll_x: int, width: int, pad_style: Style) -> Strip:
        """Cut the viewport out of a whole-row strip, keeping the fixed columns in place."""
        if scroll_x == 0:
            return strip.crop_extend(0, width, pad_style)
        fixed = self._fixed_width()
        if fixed >= width:
            return strip.crop_extend(0, width, pad_style)
        start = fixed + scroll_x
        return Strip.join(
            [strip.crop(0, fixed), strip.crop_extend(start, start + width - fixed, pad_style)]
        )

    # ------------------------------------------------------------------ events

    def _size_updated(
        self, size: Size, virtual_size: Size, container_size: Size, layout: bool = True
    ) -> bool:
        # Textual calls this for every widget on every screen layout (a Static.update
        # anywhere: the clock, the banner). ScrollView compares the layout's virtual size
        # with the table's own, which always differ, and so redraws both scrollbars every
        # time: 3 KB on the wire for the horizontal one at 120 columns, twice a second.
        # Only a real change of size or of the table's virtual size reaches it here.
        stamp = (size, virtual_size, container_size, self.virtual_size)
        if stamp == self._last_size_update:
            return False
        self._last_size_update = stamp
        return super()._size_updated(size, virtual_size, container_size, layout)

    def _scroll_update(self, virtual_size: Size) -> None:
        # Widget._scroll_update redraws both scrollbars every time; their sizes are
        # reactive, so setting them redraws a scrollbar only when it changed: a new row
        # count moves the vertical thumb and leaves the horizontal bar (3 KB) alone.
        self._refresh_scrollbars()
        width, height = self.container_size
        if self.show_vertical_scrollbar and self.styles.scrollbar_size_vertical:
            self.vertical_scrollbar.window_virtual_size = virtual_size.height
            self.vertical_scrollbar.window_size = height - self.scrollbar_size_horizontal
        if self.show_horizontal_scrollbar and self.styles.scrollbar_size_horizontal:
            self.horizontal_scrollbar.window_virtual_size = virtual_size.width
            self.horizontal_scrollbar.window_size = width - self.scrollbar_size_vertical
        self.scroll_x = self.validate_scroll_x(self.scroll_x)
        self.scroll_y = self.validate_scroll_y(self.scroll_y)

    def notify_style_update(self) -> None:
        """Theme or CSS changed: resolved styles and every rendered strip are stale."""
        super().notify_style_update()
        self._invalidate_styles()

    # Textual calls each class's handler along the MRO, so these add to Widget's own
    # focus handling (which repaints the widget) rather than replace it.
    def _on_focus(self, event: events.Focus) -> None:
        # The cursor colour depends on focus (the :focus rule), so cached rows are stale.
        self._invalidate_styles()

    def _on_blur(self, event: events.Blur) -> None:
        self._invalidate_styles()

    def on_resize(self, event: events.Resize) -> None:
        """Keep the cursor row on screen when the terminal changes size."""
        self._scroll_cursor_into_view()

    def on_click(self, event: events.Click) -> None:
        """Put the cursor on the clicked row."""
        offset = event.get_content_offset(self)
        if offset is None or offset.y < 1:
            return
        index = self.scroll_offset.y + offset.y - 1
        if index < len(self._entries):
            self._set_cursor(self.key_at(index))

    # ------------------------------------------------------------------ internals: view

    def _entry_at(self, index: int) -> _Entry:
        """The entry at display position `index` (reading backwards for a descending sort)."""
        if self._sort_reverse:
            return self._entries[len(self._entries) - 1 - index]
        return self._entries[index]

    def _index_of(self, key: str | None) -> int | None:
        """Display position of row `key`, by bisecting its entry; None if not in view."""
        if key is None:
            return None
        entry = self._entry_of.get(key)
        if entry is None:
            return None
        position = bisect_left(self._entries, entry)
        return len(self._entries) - 1 - position if self._sort_reverse else position

    def _sort_value_function(self) -> Callable[[RowData], Any]:
        """A function giving the value a row sorts by under the current sort column."""
        index = self._sort_index
        if index is None:
            return _natural_order
        sort_key = self._columns[index].sort_key

        def sort_value(row: RowData) -> Any:
            cells = row.cells
            cell = cells[index] if index < len(cells) else _EMPTY_CELL
            return cell.plain if sort_key is None else sort_key(cell)

        return sort_value

    def _rebuild_entries(self) -> None:
        """Recompute the view from the model (filter and sort changes, full loads)."""
        predicate = self._predicate
        sort_value = self._sort_value_function()
        seq = self._seq
        values = {
            key: sort_value(row)
            for key, row in self._rows.items()
            if predicate is None or predicate(key, row)
        }
        entry_of: dict[str, _Entry]
        if all(type(value) is int for value in values.values()) and all(
            seq[key] < _SEQ_SPAN for key in values
        ):
            entry_of = {key: value * _SEQ_SPAN + seq[key] for key, value in values.items()}
            self._int_entries = True
            self._key_of_code = {code: key for key, code in entry_of.items()}
            self._entry_key = self._key_of_code.__getitem__
        else:
            entry_of = {key: (value, seq[key], key) for key, value in values.items()}
            self._int_entries = False
            self._key_of_code = {}
            self._entry_key = _tuple_entry_key
        self._entry_of = entry_of
        self._entries = sorted(entry_of.values())

    def _move_entries(self, drops: list[_Entry], adds: list[_Entry]) -> None:
        """Remove and insert view entries: by bisection when few, else by one merge."""
        entries = self._entries
        if len(drops) + len(adds) <= _RESORT_THRESHOLD:
            for entry in drops:
                del entries[bisect_left(entries, entry)]
            for entry in adds:
                insort(entries, entry)
            return
        # Copy the still-sorted stretches between dropped entries (found by bisection,
        # copied as C-level slices), then merge in the sorted newcomers: timsort merges
        # two sorted runs in linear time, where sorting 20,000 entries afresh (in
        # arbitrary order) costs ~20 ms.
        merged: list[_Entry] = []
        start = 0
        for position in sorted(bisect_left(entries, entry) for entry in drops):
            merged.extend(entries[start:position])
            start = position + 1
        merged.extend(entries[start:])
        merged.extend(sorted(adds))
        merged.sort()
        # In place: the view list stays an old object to the garbage collector, so young
        # collections during the poll do not traverse a fresh 20,000-entry list.
        entries[:] = merged

    def _page_rows(self) -> int:
        """Rows visible below the header."""
        return max(1, self.scrollable_content_region.height - 1)

    def _window_keys(self) -> list[str]:
        """Keys of the rows currently on screen, top to bottom."""
        height = self.scrollable_content_region.height - 1
        if height <= 0:
            return []
        top = self.scroll_offset.y
        bottom = min(top + height, len(self._entries))
        return [self.key_at(index) for index in range(top, bottom)]

    def _refresh_offsets(self, offsets: list[int], vacated: int) -> None:
        """Repaint the rows at these window offsets (ascending), in contiguous runs.

        `vacated` > 0 lines below the last row were showing rows that are gone: blank them.
        """
        top = self.scroll_offset.y
        run_start: int | None = None
        previous = -2
        for offset in offsets:
            if offset != previous + 1:
                if run_start is not None:
                    self.refresh_lines(top + run_start + 1, previous - run_start + 1)
                run_start = offset
            previous = offset
        if run_start is not None:
            self.refresh_lines(top + run_start + 1, previous - run_start + 1)
        if vacated > 0:
            rows_shown = min(self._page_rows(), len(self._entries) - top)
            self.refresh_lines(top + rows_shown + 1, vacated)

    def _refresh_changed_cells(
        self, offset: int, old: tuple[Text, ...], new: tuple[Text, ...]
    ) -> bool:
        """Repaint only the columns of window line `offset` whose cells differ.

        False when that cannot be worked out (scrolled sideways, cell count changed):
        the caller repaints the whole line.
        """
        if len(old) != len(new) or self.scroll_offset.x != 0:
            return False
        spans: list[tuple[int, int]] = []  # (first x, end x), adjacent columns merged
        x = _GUTTER_WIDTH
        for index, width in enumerate(self._widths):
            start = x + len(_SEPARATOR)
            x = start + width
            a, b = old[index] if index < len(old) else _EMPTY_CELL, new[index]
            if a is b or (a.plain == b.plain and a.style == b.style and a.spans == b.spans):
                continue
            if spans and spans[-1][1] + len(_SEPARATOR) == start:
                spans[-1] = (spans[-1][0], x)
            else:
                spans.append((start, x))
        y = offset + 1  # below the header
        for start, end in spans:
            self.refresh(Region(start, y, end - start, 1))
        return True

    def _refresh_key(self, key: str) -> None:
        """Repaint row `key` if it is on screen and repaints are not suspended."""
        if self.paused:
            return
        index = self._index_of(key)
        if index is None:
            return
        top = self.scroll_offset.y
        if top <= index < top + self._page_rows():
            self.refresh_lines(index + 1)

    def _after_structural_change(self) -> None:
        """After a load, re-sort, filter or resume: resize, keep the cursor in view, repaint."""
        if self.paused:
            return
        self._sync_virtual_size()
        self._scroll_cursor_into_view()
        if self._fit_widths_to(self._window_keys()):
            self._sync_virtual_size()
        self.refresh()

    def _virtual_height(self) -> int:
        return len(self._entries) + 1  # + the header line

    def _sync_virtual_size(self) -> None:
        size = Size(self._total_width(), self._virtual_height())
        if size != self.virtual_size:
            self.virtual_size = size

    # ------------------------------------------------------------------ internals: cursor

    def _set_cursor(self, key: str | None) -> None:
        """Move the cursor to `key`, repaint both rows and tell the app."""
        old = self._cursor_key
        if key == old:
            return
        self._cursor_key = key
        if old is not None:
            self._refresh_key(old)
        if key is not None:
            self._refresh_key(key)
        self.post_message(self.CursorMoved(self, key))

    def _restore_cursor(self, index_before: int | None) -> None:
        """After the view changed: keep the cursor's row, else take the row now at its place."""
        if self._cursor_key is not None and self._cursor_key in self._entry_of:
            return
        if not self._entries:
            self._set_cursor(None)
            return
        index = min(index_before or 0, len(self._entries) - 1)
        self._set_cursor(self.key_at(index))

    def _move_cursor_by(self, delta: int, scroll: bool = False) -> None:
        """Move the cursor `delta` rows; a page move scrolls the view by the same amount."""
        if not self._entries:
            return
        current = self.cursor_index
        start = 0 if current is None else current
        target = max(0, min(len(self._entries) - 1, start + delta))
        if scroll:
            self.scroll_to(y=self.scroll_offset.y + (target - start), animate=False, force=True)
        self._set_cursor(self.key_at(target))
        self._scroll_cursor_into_view()

    def _scroll_cursor_into_view(self) -> None:
        """Scroll the least needed to show the cursor row (never while paused or unlaid)."""
        if self.paused or self.scrollable_content_region.height <= 1:
            return
        index = self.cursor_index
        if index is None:
            return
        top = self.scroll_offset.y
        page = self._page_rows()
        if index < top:
            self.scroll_to(y=index, animate=False, force=True)
        elif index >= top + page:
            self.scroll_to(y=index - page + 1, animate=False, force=True)

    # ------------------------------------------------------------------ internals: layout

    @staticmethod
    def _initial_width(column: Column) -> int:
        if column.width is not None:
            return max(1, column.width)
        # Room for the label and a sort indicator.
        return max(column.min_width, min(column.max_width, cell_len(column.label) + 1))

    def _measure_widths(self, sample: Iterable[tuple[Text, ...]]) -> list[int]:
        """Column widths from the labels and a sample of rows, within each column's bounds."""
        widths = [self._initial_width(column) for column in self._columns]
        grow = self._growable_columns(widths)
        for cells in sample:
            self._grow_widths(grow, cells, widths)
        return widths

    def _growable_columns(self, widths: list[int] | None = None) -> list[tuple[int, int]]:
        """(index, cap) of auto-width columns still narrower than their cap."""
        widths = self._widths if widths is None else widths
        return [
            (index, max(column.min_width, column.max_width))
            for index, column in enumerate(self._columns)
            if column.width is None and widths[index] < max(column.min_width, column.max_width)
        ]

    def _grow_widths(
        self, grow: list[tuple[int, int]], cells: tuple[Text, ...], widths: list[int] | None = None
    ) -> bool:
        """Widen auto columns to fit `cells` (up to their caps); True if any grew.

        Widths only grow between full loads: a column that shrank and grew back every
        poll would invalidate every cached row each time.
        """
        widths = self._widths if widths is None else widths
        grew = False
        for index, cap in grow:
            if index >= len(cells):
                continue
            length = cells[index].cell_len
            if length > widths[index]:
                widths[index] = min(length, cap)
                grew = True
        return grew

    def _fit_widths_to(self, keys: Iterable[str]) -> bool:
        """Widen auto columns to fit rows `keys` (about to be painted); True if any grew."""
        grow = self._growable_columns()
        if not grow:
            return False
        grew = False
        for key in keys:
            row = self._rows.get(key)
            if row is not None and self._grow_widths(grow, row.cells):
                grew = True
        if grew:
            self._invalidate_layout()
        return grew

    def _total_width(self) -> int:
        return _GUTTER_WIDTH + sum(self._widths) + len(_SEPARATOR) * len(self._widths)

    def _fixed_width(self) -> int:
        """Cells that do not scroll sideways: the gutter and the fixed columns."""
        fixed = self._widths[: self._fixed_columns]
        return _GUTTER_WIDTH + sum(fixed) + len(_SEPARATOR) * len(fixed)

    def _scroll_column_starts(self) -> list[int]:
        """scroll_x values that put each scrolling column at the left edge."""
        starts: list[int] = []
        x = 0
        for width in self._widths[self._fixed_columns :]:
            starts.append(x)
            x += width + len(_SEPARATOR)
        return starts

    def _invalidate_layout(self) -> None:
        """Column widths changed: every rendered row and the header are stale."""
        self._layout_gen += 1
        self._strip_cache.clear()
        self._header_cache = None

    def _invalidate_styles(self) -> None:
        self._style_gen += 1
        self._styles_cached = None
        self._strip_cache.clear()
        self._header_cache = None

    def _row_styles(self) -> _RowStyles:
        """Rich styles for rows, resolved once per style generation."""
        if self._styles_cached is None:
            self._styles_cached = _RowStyles(
                base=self.rich_style,
                marked=self.get_component_rich_style("live-table--marked"),
                cursor=self.get_component_rich_style("live-table--cursor"),
                header=self.get_component_rich_style("live-table--header"),
            )
        return self._styles_cached
