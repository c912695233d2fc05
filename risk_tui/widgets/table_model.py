"""The live table's rows without a screen: keyed diffs, incremental sort, filter, marks, cursor.

`TableModel` is what `LiveTable` shows, kept apart from how it is shown (as toolong's
`LogFile` from its `LogLines` widget): every row by key and the *view*, the rows that
pass the filter in sort order, with a cursor and marks. Every operation returns a
`TableChange` saying what changed (rows whose data changed and the data they replaced,
whether the view's rows changed, marks flipped, where the cursor went), and the widget
repaints from that. It imports nothing from textual: it is tested without an app.

How the view stays cheap to keep sorted:

- The view is a sorted list of entries, one per shown row, ordered by (sort value,
  arrival sequence): a diff moves only the entries whose sort value changed (bisect, or
  one merge when many moved), never re-sorts the whole view. A descending sort reads
  the list backwards.
- A figure column sorts by the figure (`Column.sort_value` reads the row's `record`), as
  does the default order (`default_order`), never by its text.
- When every sort value is an `int` (arrival order, the warnings tab's figures: see
  `screens.warning_order`) an entry is the single integer `value * 2**40 + sequence`:
  every comparison made while moving entries is one C-level integer comparison; other
  sort values (text, Decimal, tuples) use (value, sequence, key) tuples, whose
  comparisons go through the values' own (slower) rich comparisons.
- A diff skips rows whose version did not change (or, for `version=None`, whose cells
  compare equal), and in arrival order a shown row never moves, so its sort value is
  never computed. Lazy rows (`RowData.lazy`) are formatted only when something reads
  their cells: a sort by a cell, a filter, the widget painting them.

Cells are `rich.text.Text` built from sanitized data; the model parses no markup.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from itertools import count
from operator import itemgetter
from typing import Any, Literal

from rich.text import Text

__all__ = ["Column", "CursorMove", "RowData", "RowFilter", "TableChange", "TableModel"]

Align = Literal["left", "right"]

EMPTY_CELL = Text()
"""What a row shorter than the columns has in its missing cells."""
_RESORT_THRESHOLD = 256
"""Above this many entry moves, one merge of the view beats moving entries one by one:
measured on 20,000 rows with Decimal sort values (tuple entries): per-entry bisect moves
cost about as much as one merge at ~1,000 moves, and grow with them (each is a list
memmove). With packed integer entries the crossover is lower (~64 moves, 0.25 ms) but
between 64 and 256 moves the per-entry path costs at most ~0.4 ms more than a merge.
"""


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a `LiveTable`.

    `width=None` sizes the column from its label and rows, between `min_width` and
    `max_width` (no cap if `whole`: figures, never cut); else `width` as given. It sorts by
    `sort_value(row.record)` (a figure, never its text), else `sort_key(cell)`, else the
    cell's text; `descending_first`: largest first on the first sort (money). The table
    shows the columns that fit whole, taken by `priority` (1 first), in declared order;
    `frozen` ones (the row's key) stay in place while the wide layout scrolls the rest.
    """

    key: str
    label: str
    width: int | None = None
    align: Align = "left"
    sort_key: Callable[[Text], Any] | None = None
    min_width: int = 1
    max_width: int = 40
    sort_value: Callable[[Any], Any] | None = None
    descending_first: bool = False
    priority: int = 100
    frozen: bool = False
    whole: bool = False


class RowData:
    """The cells of one row, in column order, the row's version, and its record.

    Pass a new `version` whenever the cells change, and the same version to say
    "unchanged" (the cheap path for callers that resend whole snapshots). With
    `version=None` the table compares the cells itself and bumps its stored version
    when they differ. Cells are not copied: do not mutate a `Text` after passing it.
    `record` (immutable) is what the cells were made from: sort values are read from it.

    `RowData.lazy(make, version)` defers making the cells until the table first needs
    them: to paint the row, to sort by a column or filter by text, to size a column
    from a sample. A crash poll changes thousands of rows of which forty are on the
    screen; the others are formatted only if they are ever shown. `make` must depend
    only on what it captured (it runs later, at most once).
    """

    __slots__ = ("_cells", "_make", "record", "version")

    def __init__(
        self, cells: tuple[Text, ...], version: int | None = None, record: Any = None
    ) -> None:
        self._cells: tuple[Text, ...] | None = cells
        self._make: Callable[[], tuple[Text, ...]] | None = None
        self.version = version
        self.record = record

    @classmethod
    def lazy(
        cls, make: Callable[[], tuple[Text, ...]], version: int, record: Any = None
    ) -> RowData:
        row = cls.__new__(cls)
        row._cells = None
        row._make = make
        row.version = version
        row.record = record
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


@dataclass(frozen=True, slots=True)
class CursorMove:
    """The cursor left row `before` for row `after` (None: no row, the view is empty)."""

    before: str | None
    after: str | None


@dataclass(frozen=True, slots=True)
class TableChange:
    """What one model operation changed: what the widget repaints and reports."""

    changed: AbstractSet[str] = frozenset()
    """Rows whose data changed (they have a new version)."""
    previous: Mapping[str, RowData] = field(default_factory=dict)
    """The data each changed row replaced (rows new to the table are not in it)."""
    reordered: bool = False
    """Rows entered or left the view, or moved in it: lines may now show other rows."""
    marks: AbstractSet[str] = frozenset()
    """Rows whose mark flipped (a removed row loses its mark)."""
    cursor: CursorMove | None = None
    """Where the cursor went, when it moved."""


NO_CHANGE = TableChange()

# A view entry orders a row by (sort value, insertion sequence); the sequence breaks
# ties and is unique, so rows with equal sort values keep arrival order. Integer sort
# values pack both into one int (`value * _SEQ_SPAN + sequence`: exact, and in the same
# order, for any int value while the sequence is below _SEQ_SPAN); any other value
# makes a (sort value, insertion sequence, row key) tuple, whose comparisons never
# reach the key.
_Entry = int | tuple[Any, int, str]
_SEQ_SPAN = 1 << 40
_tuple_entry_key: Callable[[Any], str] = itemgetter(2)


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


class TableModel:
    """Keyed rows and their view: sorted, filtered, with a cursor and marked rows.

    Display positions count from the top of the view as shown (a descending sort counts
    from the largest value). The cursor is on a shown row whenever the view has rows,
    and None when it is empty. With no column chosen the view is in `default_order`
    (ascending, read from each row's record), or in arrival order without one.
    """

    def __init__(
        self, columns: Iterable[Column], default_order: Callable[[Any], Any] | None = None
    ) -> None:
        self._columns: tuple[Column, ...] = tuple(columns)
        if not self._columns:
            raise ValueError("LiveTable needs at least one column")
        keys = [column.key for column in self._columns]
        if len(set(keys)) != len(keys):
            raise ValueError(f"duplicate column keys: {keys}")
        self._column_index = {key: index for index, key in enumerate(keys)}
        # Every row, and the insertion sequence that orders unsorted rows.
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
        self._default_order = default_order
        self._sort_index: int | None = None
        self._sort_reverse = False
        self._cursor_key: str | None = None
        self._marked: set[str] = set()

    # ------------------------------------------------------------------ state

    @property
    def columns(self) -> tuple[Column, ...]:
        """The columns, in display order."""
        return self._columns

    @property
    def rows(self) -> Mapping[str, RowData]:
        """Every row by key, in arrival order, filtered out or not (do not mutate)."""
        return self._rows

    @property
    def row_count(self) -> int:
        """Rows in the view (those passing the filter)."""
        return len(self._entries)

    @property
    def total_row_count(self) -> int:
        """All rows, filtered out or not."""
        return len(self._rows)

    @property
    def cursor_key(self) -> str | None:
        """Key of the row under the cursor, or None when the view is empty."""
        return self._cursor_key

    @property
    def cursor_index(self) -> int | None:
        """Display position of the cursor row, or None."""
        return self.index_of(self._cursor_key)

    @property
    def marked_keys(self) -> frozenset[str]:
        """Keys of marked rows (including marked rows the filter currently hides)."""
        return frozenset(self._marked)

    def is_marked(self, key: str) -> bool:
        """Whether row `key` is marked."""
        return key in self._marked

    @property
    def sort_index(self) -> int | None:
        """Position of the column the view is sorted by, or None (default or arrival order)."""
        return self._sort_index

    @property
    def sort_column(self) -> str | None:
        """Key of the column the view is sorted by, or None (default or arrival order)."""
        return None if self._sort_index is None else self._columns[self._sort_index].key

    @property
    def sort_reverse(self) -> bool:
        """Whether the sort is descending."""
        return self._sort_reverse

    def get_row(self, key: str) -> RowData | None:
        """The stored data of row `key`, or None."""
        return self._rows.get(key)

    def is_shown(self, key: str | None) -> bool:
        """Whether row `key` is in the view (it exists and passes the filter)."""
        return key in self._entry_of

    def key_at(self, index: int) -> str:
        """Key of the row at display position `index`."""
        return self._entry_key(self._entry_at(index))

    def keys_between(self, start: int, stop: int) -> list[str]:
        """Keys at display positions `start` to `stop` (excluded), e.g. a screen's rows."""
        return [self.key_at(index) for index in range(start, min(stop, len(self._entries)))]

    def index_of(self, key: str | None) -> int | None:
        """Display position of row `key`, by bisecting its entry; None if not in view."""
        if key is None:
            return None
        entry = self._entry_of.get(key)
        if entry is None:
            return None
        position = bisect_left(self._entries, entry)
        return len(self._entries) - 1 - position if self._sort_reverse else position

    def visible_keys(self) -> list[str]:
        """All keys of the view, in display order."""
        keys = list(map(self._entry_key, self._entries))
        if self._sort_reverse:
            keys.reverse()
        return keys

    # ------------------------------------------------------------------ loading and diffs

    def set_rows(self, rows: Mapping[str, RowData]) -> TableChange:
        """Replace every row (a full load); keeps the cursor and marks on surviving keys."""
        cursor_before = self.cursor_index
        self._rows = {}
        self._seq = {}
        self._next_seq = count()  # every row gets a new sequence: restart from 0
        for key, row in rows.items():
            self._rows[key] = row if row.version is not None else RowData(row.cells, 0, row.record)
            self._seq[key] = next(self._next_seq)
        marked = {key for key in self._marked if key in self._rows}
        unmarked = self._marked - marked
        self._marked = marked
        self._rebuild_entries()
        cursor = self._restore_cursor(cursor_before)
        return TableChange(reordered=True, marks=unmarked, cursor=cursor)

    def apply_diff(
        self, upserts: Mapping[str, RowData], removals: Iterable[str] = ()
    ) -> TableChange:
        """Apply one poll's changes: add or update `upserts`, delete `removals`. Only rows
        whose version (or, for `version=None`, whose cells) changed count as changed."""
        cursor_before = self.cursor_index
        drops: list[_Entry] = []
        adds: list[_Entry] = []
        changed: set[str] = set()
        previous: dict[str, RowData] = {}  # the replaced data of updated rows
        unmarked: set[str] = set()
        # Locals: this loop runs for every changed row of every poll.
        rows = self._rows
        seq = self._seq
        entry_of = self._entry_of
        predicate = self._predicate
        sort_value = self._sort_value_function()
        sorted_view = self._sort_index is not None or self._default_order is not None
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
                unmarked.add(key)

        for key, row in upserts.items():
            old = rows.get(key)
            version = row.version
            if old is None:
                seq[key] = next(self._next_seq)
                stored = row if version is not None else RowData(row.cells, 0, row.record)
            elif version is None:
                if _cells_equal(old.cells, row.cells):
                    continue
                stored = RowData(row.cells, (old.version or 0) + 1, row.record)
            elif version == old.version:
                continue
            else:
                stored = row
            rows[key] = stored
            changed.add(key)
            if old is not None:
                previous[key] = old
            if rebuild:
                continue  # the view is rebuilt from the rows below
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

        cursor: CursorMove | None = None
        reordered = rebuild or bool(drops or adds)
        if rebuild:
            self._rebuild_entries()
        elif reordered:
            self._move_entries(drops, adds)
        if reordered:
            cursor = self._restore_cursor(cursor_before)
        return TableChange(changed, previous, reordered, unmarked, cursor)

    # ------------------------------------------------------------------ sort and filter

    def sort_by(self, column_key: str | None, reverse: bool = False) -> TableChange:
        """Sort the view by `column_key` (None: default or arrival order); the cursor stays."""
        index = None if column_key is None else self._column_index.get(column_key, -1)
        if index == -1:
            raise ValueError(f"no column {column_key!r}")
        if index == self._sort_index and reverse == self._sort_reverse:
            return NO_CHANGE
        rebuild = index != self._sort_index
        self._sort_index = index
        self._sort_reverse = reverse
        if rebuild:
            self._rebuild_entries()
        # Reversing only changes how the ascending entries are read: nothing to sort.
        return TableChange(reordered=True)

    def cycle_sort(self, column_key: str) -> TableChange:
        """Sort by `column_key` (first way round as the column says), or flip its direction."""
        if self.sort_column == column_key:
            return self.sort_by(column_key, reverse=not self._sort_reverse)
        column = next((c for c in self._columns if c.key == column_key), None)
        return self.sort_by(column_key, reverse=column is not None and column.descending_first)

    def set_filter(self, predicate: RowFilter | None) -> TableChange:
        """Show only rows for which `predicate(key, row)` is true (None: all rows).

        The cursor stays on its row if the row is still shown, else goes to the first row.
        """
        self._predicate = predicate
        self._rebuild_entries()
        cursor = None
        if self._cursor_key not in self._entry_of:
            cursor = self._restore_cursor(0)
        return TableChange(reordered=True, cursor=cursor)

    # ------------------------------------------------------------------ cursor and marks

    def set_cursor(self, key: str | None) -> TableChange:
        """Put the cursor on row `key`, which must be shown (None only for an empty view)."""
        move = self._set_cursor(key)
        return NO_CHANGE if move is None else TableChange(cursor=move)

    def cursor_target(self, delta: int) -> tuple[int, int] | None:
        """(from, to): the cursor's position and the one `delta` rows away, within the view.

        None when the view is empty. Without a cursor, `from` is the first row.
        """
        if not self._entries:
            return None
        current = self.cursor_index
        start = 0 if current is None else current
        return start, max(0, min(len(self._entries) - 1, start + delta))

    def toggle_mark(self, key: str) -> TableChange:
        """Mark row `key`, or unmark it if marked; no change if there is no such row."""
        if key not in self._rows:
            return NO_CHANGE
        if key in self._marked:
            self._marked.discard(key)
        else:
            self._marked.add(key)
        return TableChange(marks=frozenset((key,)))

    def clear_marks(self) -> TableChange:
        """Unmark every row."""
        if not self._marked:
            return NO_CHANGE
        marked, self._marked = self._marked, set()
        return TableChange(marks=marked)

    # ------------------------------------------------------------------ internals

    def _set_cursor(self, key: str | None) -> CursorMove | None:
        old = self._cursor_key
        if key == old:
            return None
        self._cursor_key = key
        return CursorMove(old, key)

    def _restore_cursor(self, index_before: int | None) -> CursorMove | None:
        """After the view changed: keep the cursor's row, else take the row now at its place."""
        if self._cursor_key is not None and self._cursor_key in self._entry_of:
            return None
        if not self._entries:
            return self._set_cursor(None)
        index = min(index_before or 0, len(self._entries) - 1)
        return self._set_cursor(self.key_at(index))

    def _entry_at(self, index: int) -> _Entry:
        """The entry at display position `index` (reading backwards for a descending sort)."""
        if self._sort_reverse:
            return self._entries[len(self._entries) - 1 - index]
        return self._entries[index]

    def _sort_value_function(self) -> Callable[[RowData], Any]:
        """A function giving the value a row sorts by under the current sort column."""
        index = self._sort_index
        column = None if index is None else self._columns[index]
        read = self._default_order if column is None else column.sort_value
        if read is not None:
            return lambda row: read(row.record)  # the figures, not the text: cells stay lazy
        if column is None or index is None:
            return _natural_order
        sort_key = column.sort_key

        def sort_value(row: RowData) -> Any:
            cells = row.cells
            cell = cells[index] if index < len(cells) else EMPTY_CELL
            return cell.plain if sort_key is None else sort_key(cell)

        return sort_value

    def _rebuild_entries(self) -> None:
        """Recompute the view from the rows (filter and sort changes, full loads)."""
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
