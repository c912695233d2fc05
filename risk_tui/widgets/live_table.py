"""LiveTable: a keyed, sorted, filterable blotter on the Line API that repaints only changed rows.

Textual's `DataTable` re-renders every visible line whenever any cell changes and
measures every cell of every added row, which is seconds of work for the 20,000-row
warnings table on a crash day. `LiveTable` follows toolong's `LogLines` instead: a
`ScrollView` whose `render_line(y)` returns a cached `Strip` per row, keyed by the row's
key and version, so a poll's diff costs a dictionary update plus re-rendering the few
changed rows that are actually on screen.

The rows, their sorted and filtered view, the cursor and the marks are a
`TableModel` (`table_model`): this widget hands it every operation and repaints what
the returned `TableChange` names. Column widths and painting a row into a strip are
`TableLayout` (`table_layout`).

Which columns are shown (by priority, or all in the wide layout) is `TableLayout.arrange`;
the messages the table posts and its quieter ScrollView base are `table_messages`.

This module passes ~600 lines and stays one file because all of it is the one widget
class, sharing its state (scroll offset, strip and header caches, repaint suspension):
Textual's declarations (bindings, CSS: ~70 lines), the public methods
the screens call, each handing the operation to the model and repainting what changed,
the Line API, and the ScrollView overrides. Splitting it further would put two halves
of one repaint path in two files.

How repaints are kept small:

- A row's strip is cached under (row key, row version, layout generation, style
  generation, is cursor, is marked). A diff bumps the versions of changed rows only;
  column widths or the shown columns changing bump the layout generation; theme, CSS
  or focus changes bump the style generation; moving the cursor or a mark changes the
  flags of two rows.
  Cached strips hold the whole row unscrolled, so horizontal scrolling only re-crops.
- After a diff, the rows on screen before and after are compared and only the lines
  that show a changed row, or a different row, are refreshed; a row that stayed on its
  line refreshes only the columns whose cells changed, so Textual writes just those
  cells to the terminal (a live equity figure, not the whole 120-column line).
- Screen layouts elsewhere (any `Static.update`, e.g. a clock) do not repaint the
  scrollbars: Textual's ScrollView would redraw both on every layout.
- While repaints are suspended (hidden tab, open dialog) diffs update only the model;
  resuming repaints the visible region once.

Cells are `rich.text.Text` built by the caller from sanitized data; nothing here parses
markup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.strip import Strip

from risk_tui.widgets import table_messages as messages
from risk_tui.widgets.render import data_text
from risk_tui.widgets.table_layout import AUTO_WIDTH_SAMPLE, RowStyles, TableLayout
from risk_tui.widgets.table_messages import QuietScrollView
from risk_tui.widgets.table_model import (
    Column,
    CursorMove,
    RowData,
    RowFilter,
    TableChange,
    TableModel,
)

__all__ = ["Column", "LiveTable", "RowData", "RowFilter"]

_STRIP_CACHE_SIZE = 2048
"""Rendered rows kept: several screens' worth, so scrolling back is also cheap."""


class LiveTable(QuietScrollView, can_focus=True, inherit_bindings=False):
    """A live blotter: keyed rows updated by diffs, sorted, filtered, with cursor and marks.

    Line 0 is the column header (fixed vertically, scrolled horizontally with the
    content); row `i` of the current view is virtual line `i + 1`. The left gutter shows
    `>` on the cursor row and `*` on marked rows. The table shows the columns that fit
    its width whole, by priority (`Column.priority`), and the sorted one; `w` switches
    every table of the screen to the wide layout, all columns, the `frozen` ones staying
    put with the gutter while the rest scroll sideways by whole columns. The header's
    blank right end names the order when no shown label can ("sorted by urgency"); a
    filter that matches nothing says so in words on the first line.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor_up", "Previous row", show=False, id="table.cursor_up"),
        Binding("down", "cursor_down", "Next row", show=False, id="table.cursor_down"),
        Binding("pageup", "cursor_page_up", "Page up", show=False, id="table.page_up"),
        Binding("pagedown", "cursor_page_down", "Page down", show=False, id="table.page_down"),
        Binding("home", "cursor_home", "First row", show=False, id="table.home"),
        Binding("end", "cursor_end", "Last row", show=False, id="table.end"),
        Binding(
            "left", "scroll_column_left", "Scroll columns left", show=False, id="table.scroll_left"
        ),
        Binding(
            "right",
            "scroll_column_right",
            "Scroll columns right",
            show=False,
            id="table.scroll_right",
        ),
        Binding("space", "toggle_mark", "Mark", tooltip="Mark or unmark the row", id="table.mark"),
        Binding("enter", "select_row", "Open", tooltip="Open the row's details", id="table.select"),
        Binding(
            "w",
            "toggle_wide",
            "Wide",
            tooltip="Wide layout: every column, scrolled sideways",
            id="table.wide",
        ),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "live-table--header",
        "live-table--cursor",
        "live-table--marked",
        "live-table--empty",
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
        & > .live-table--empty {
            color: $text-muted;
            text-style: italic;
        }
    }
    """

    # The messages (see `table_messages`), named as Textual expects: `LiveTable.RowSelected`
    # is handled by `on_live_table_row_selected`.
    class RowSelected(messages.RowSelected):
        """The operator pressed enter on a row."""

    class CursorMoved(messages.CursorMoved):
        """The cursor is on a different row (`key` is None when the view is empty)."""

    class SortChanged(messages.SortChanged):
        """The table is now sorted by `column_key` (None: arrival order)."""

    class MarksChanged(messages.MarksChanged):
        """The set of marked rows changed."""

    def __init__(
        self,
        columns: Iterable[Column],
        *,
        noun: str = "rows",
        default_order: Callable[[Any], Any] | None = None,
        default_order_label: str = "",
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        """Create an empty table with the given columns.

        `noun` names the rows for the words shown when a filter matches none ("no open
        calls matching 'X'"). `default_order` orders rows by their records while no
        column is chosen (else they keep arrival order); the header names it
        `default_order_label`.
        """
        self._model = TableModel(columns, default_order)
        self._default_order_label = default_order_label if default_order is not None else ""
        self._sort_note = ("", False)  # words added to the sort's name; shown always
        self._layout = TableLayout(self._model.columns)
        self._noun = noun
        self._needle = ""  # the filter's words, as the operator typed them
        # The generations that key the strip cache: column widths, resolved styles.
        self._layout_gen = 0
        self._style_gen = 0
        self._styles_cached: RowStyles | None = None
        self._strip_cache: LRUCache[tuple[Any, ...], Strip] = LRUCache(_STRIP_CACHE_SIZE)
        self._header_cache: tuple[tuple[Any, ...], Strip] | None = None
        self._pause_depth = 0
        self.row_renders = 0
        """Rows rendered into strips (strip-cache misses); for tests and benchmarks."""
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self._sync_virtual_size()

    # ------------------------------------------------------------------ public state

    @property
    def columns(self) -> tuple[Column, ...]:
        """The columns, in display order."""
        return self._model.columns

    @property
    def column_widths(self) -> tuple[int, ...]:
        """Current width of each column in cells (auto widths only grow between full loads)."""
        return tuple(self._layout.widths)

    @property
    def shown_columns(self) -> tuple[str, ...]:
        """Keys of the columns drawn now, in display order (the wide layout: all)."""
        return tuple(self._model.columns[index].key for index in self._layout.shown)

    @property
    def wide(self) -> bool:
        """Whether the table is in the wide layout (all columns, scrolled sideways)."""
        return self._layout.wide

    @wide.setter
    def wide(self, wide: bool) -> None:
        if wide == self._layout.wide:
            return
        self._layout.wide = wide
        self.scroll_to(x=0, animate=False, force=True)
        if self._layout.arrange():
            self._invalidate_layout()
        self._after_structural_change()

    @property
    def row_count(self) -> int:
        """Rows in the current view (those passing the filter)."""
        return self._model.row_count

    @property
    def total_row_count(self) -> int:
        """All rows in the model, filtered out or not."""
        return self._model.total_row_count

    @property
    def cursor_key(self) -> str | None:
        """Key of the row under the cursor, or None when the view is empty."""
        return self._model.cursor_key

    @property
    def cursor_index(self) -> int | None:
        """Position of the cursor row in the current view, or None."""
        return self._model.cursor_index

    @property
    def marked_keys(self) -> frozenset[str]:
        """Keys of marked rows (including marked rows the filter currently hides)."""
        return self._model.marked_keys

    @property
    def sort_column(self) -> str | None:
        """Key of the column the view is sorted by, or None for arrival order."""
        return self._model.sort_column

    @property
    def sort_reverse(self) -> bool:
        """Whether the sort is descending."""
        return self._model.sort_reverse

    @property
    def paused(self) -> bool:
        """True while repaints are suspended (diffs still update the model)."""
        return self._pause_depth > 0

    def get_row(self, key: str) -> RowData | None:
        """The stored data of row `key`, or None."""
        return self._model.get_row(key)

    def key_at(self, index: int) -> str:
        """Key of the row at `index` in the current view."""
        return self._model.key_at(index)

    def visible_keys(self) -> list[str]:
        """All keys of the current view, in display order."""
        return self._model.visible_keys()

    # ------------------------------------------------------------------ loading and diffs

    def set_rows(self, rows: Mapping[str, RowData]) -> None:
        """Replace every row (a full load); keeps the cursor and marks on surviving keys."""
        change = self._model.set_rows(rows)
        self._show_marks(change)
        every_row = list(self._model.rows.values())
        # Spread over the whole load, not its head: feeds often send rows grouped.
        step = max(1, len(every_row) // AUTO_WIDTH_SAMPLE)
        self._layout.measure(row.cells for row in every_row[::step])
        self._invalidate_layout()
        self._show_cursor_move(change.cursor)
        self._after_structural_change()

    def apply_diff(self, upserts: Mapping[str, RowData], removals: Iterable[str] = ()) -> None:
        """Apply one poll's changes: add or update `upserts`, delete `removals`.

        Only rows whose version changed (or, for `version=None`, whose cells changed)
        count as changed; only those, plus rows that moved on screen, are repainted.
        """
        window_before = self._window_keys()
        change = self._model.apply_diff(upserts, removals)
        self._show_marks(change)
        self._show_cursor_move(change.cursor)
        if self.paused:
            return  # the model is current; resume_repaints() repaints once
        if self._virtual_height() != self.virtual_size.height:
            # Calls opened or ended: a new virtual size (the scrollbar's thumb moves),
            # but only the lines now showing another row are repainted, as for any diff.
            # Setting the reactive would repaint the whole widget: on a crash day rows
            # come and go every poll, and every poll would rewrite the whole screen.
            self.set_reactive(
                LiveTable.virtual_size, Size(self._layout.total_width(), self._virtual_height())
            )
            self.refresh(repaint=False, layout=True)
        changed = change.changed
        restyled: set[str] = set()  # rows whose cursor marker changed: whole lines
        if change.cursor is not None:
            for cursor_key in (change.cursor.before, change.cursor.after):
                if cursor_key is not None:
                    restyled.add(cursor_key)
            changed = changed | restyled
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
        rows = self._model.rows
        whole_lines: list[int] = []
        for offset in stale:
            key = window_after[offset]
            old = change.previous.get(key)
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
        self._show_sort(self._model.sort_by(column_key, reverse))

    def cycle_sort(self, column_key: str) -> None:
        """Sort by `column_key` (largest first if the column says so), or flip its
        direction if already sorted by it."""
        self._show_sort(self._model.cycle_sort(column_key))

    def set_sort_note(self, note: str, *, show: bool = False) -> None:
        """Words the header adds to the sort's name (e.g. "in SGD"); `show` names the
        sort in the header even while its column is on screen (rows sorted apart)."""
        if (note, show) != self._sort_note:
            self._sort_note = (note, show)
            if not self.paused:
                self.refresh_lines(self.scroll_offset.y)  # the header line

    def set_filter(self, predicate: RowFilter | None, *, needle: str = "") -> None:
        """Show only rows for which `predicate(key, row)` is true (None: all rows).

        `needle` is what the operator typed: when no row is shown the table says "no
        {noun} matching {needle!r}" (a table filtered at its source, as History is in the
        database, passes only the needle). The cursor stays on its row if the row is
        still shown, else goes to the first row.
        """
        self._needle = needle
        self._show_cursor_move(self._model.set_filter(predicate).cursor)
        self._after_structural_change()

    # ------------------------------------------------------------------ cursor and marks

    def move_cursor(self, key: str) -> bool:
        """Put the cursor on row `key`; False if that row is not in the current view."""
        if not self._model.is_shown(key):
            return False
        self._set_cursor(key)
        self._scroll_cursor_into_view()
        return True

    def toggle_mark(self, key: str) -> None:
        """Mark row `key`, or unmark it if marked."""
        self._show_marks(self._model.toggle_mark(key))

    def clear_marks(self) -> None:
        """Unmark every row."""
        self._show_marks(self._model.clear_marks())

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
        if self._model.row_count:
            self._set_cursor(self._model.key_at(0))
            self._scroll_cursor_into_view()

    def action_cursor_end(self) -> None:
        """Move the cursor to the last row."""
        if self._model.row_count:
            self._set_cursor(self._model.key_at(self._model.row_count - 1))
            self._scroll_cursor_into_view()

    def action_scroll_column_left(self) -> None:
        """Scroll left to the previous column boundary."""
        x = round(self.scroll_x)
        starts = [start for start in self._layout.scroll_column_starts() if start < x]
        self.scroll_to(x=starts[-1] if starts else 0, animate=False, force=True)

    def action_scroll_column_right(self) -> None:
        """Scroll right to the next column boundary."""
        x = round(self.scroll_x)
        starts = [start for start in self._layout.scroll_column_starts() if start > x]
        target = min(starts[0], self.max_scroll_x) if starts else self.max_scroll_x
        self.scroll_to(x=target, animate=False, force=True)

    def action_toggle_mark(self) -> None:
        """Toggle the mark on the cursor row."""
        if self._model.cursor_key is not None:
            self.toggle_mark(self._model.cursor_key)

    def action_select_row(self) -> None:
        """Post `RowSelected` for the cursor row."""
        if self._model.cursor_key is not None:
            self.post_message(self.RowSelected(self, self._model.cursor_key))

    def action_toggle_wide(self) -> None:
        """Switch every table of this screen between the normal and the wide layout."""
        wide = not self.wide
        for table in self.screen.query(LiveTable):
            table.wide = wide

    def action_cycle_sort(self, column_key: str) -> None:
        """Cycle the sort on `column_key` (for shift+letter bindings in the app)."""
        self.cycle_sort(column_key)

    # ------------------------------------------------------------------ Line API

    def render_line(self, y: int) -> Strip:
        """Render line `y` of the widget: the header on line 0, then rows from the scroll offset."""
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        styles = self._row_styles()
        model = self._model
        if width != self._layout.width and self._layout.arrange(width):
            # A new width shows other columns: repaint all after this frame.
            self._invalidate_layout()
            self.call_later(self._after_structural_change)
        self._sort_tag(scroll_x, width)  # it may keep room in every line: first
        if y == 0:
            return self._header_line(scroll_x, width, styles)
        index = scroll_y + y - 1
        if index >= model.row_count:
            if index == 0 and (self._needle or model.total_row_count):
                return self._empty_line(width, styles)
            return Strip.blank(width, styles.base)
        key = model.key_at(index)
        row = model.rows[key]
        is_cursor = key == model.cursor_key
        is_marked = model.is_marked(key)
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
            if self._layout.fit((row.cells,)):
                # A row the load's sample missed is wider: widen now (never truncate a
                # figure that fits under the cap) and repaint the rest after this frame.
                self._invalidate_layout()
                cache_key = (key, row.version, self._layout_gen, *cache_key[3:])
                self.call_later(self._after_structural_change)
            strip = self._render_row(key, row, is_cursor, is_marked)
            self._strip_cache.set(cache_key, strip)
        pad_style = styles.cursor if is_cursor else styles.marked if is_marked else styles.base
        return self._layout.crop(strip, scroll_x, width, pad_style)

    def _header_line(self, scroll_x: int, width: int, styles: RowStyles) -> Strip:
        """The labels, and at the blank right end the order when no label says it."""
        header = self._layout.crop(self._header_strip(), scroll_x, width, styles.header)
        return self._layout.tag_right(header, self._sort_tag(scroll_x, width), width, styles.header)

    def _sort_tag(self, scroll_x: int, width: int) -> str:
        model = self._model
        order = (model.sort_index, model.sort_reverse, self._default_order_label)
        return self._layout.sort_tag(*order, self._sort_note, scroll_x, width)

    def _empty_line(self, width: int, styles: RowStyles) -> Strip:
        """A filter matched no row: say so, in words."""
        words = Text(f" no {self._noun}")
        if self._needle:
            words.append(" matching ").append_text(data_text(repr(self._needle)))
        words.truncate(width, overflow="ellipsis")
        style = styles.base + self.get_component_rich_style("live-table--empty")
        return Strip(words.render(self.app.console), words.cell_len).crop_extend(0, width, style)

    def _render_row(self, key: str, row: RowData, is_cursor: bool, is_marked: bool) -> Strip:
        """Render one whole row (all columns, unscrolled) into a strip: the cache-miss path."""
        self.row_renders += 1
        return self._layout.render_row(
            row.cells, self.app.console, self._row_styles(), is_cursor, is_marked
        )

    def _header_strip(self) -> Strip:
        """The header row, cached per layout, style and sort state."""
        sort_index, reverse = self._model.sort_index, self._model.sort_reverse
        stamp = (self._layout_gen, self._style_gen, sort_index, reverse)
        if self._header_cache is not None and self._header_cache[0] == stamp:
            return self._header_cache[1]
        header_style = self._row_styles().header
        strip = self._layout.render_header(self.app.console, header_style, sort_index, reverse)
        self._header_cache = (stamp, strip)
        return strip

    # ------------------------------------------------------------------ events

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
        if index < self._model.row_count:
            self._set_cursor(self._model.key_at(index))

    # ------------------------------------------------------------------ internals: repaint

    def _show_cursor_move(self, move: CursorMove | None) -> None:
        """The cursor moved in the model: repaint both rows and tell the app."""
        if move is None:
            return
        if move.before is not None:
            self._refresh_key(move.before)
        if move.after is not None:
            self._refresh_key(move.after)
        self.post_message(self.CursorMoved(self, move.after))

    def _show_marks(self, change: TableChange) -> None:
        """Marks flipped in the model: repaint those rows (if still there), tell the app."""
        if not change.marks:
            return
        for key in change.marks:
            self._refresh_key(key)
        self.post_message(self.MarksChanged(self, self._model.marked_keys))

    def _show_sort(self, change: TableChange) -> None:
        """The sort changed in the model: new header, tell the app, repaint."""
        if not change.reordered:
            return
        self._header_cache = None
        self._layout.pinned = self._model.sort_index  # the sorted column is shown
        if self._layout.arrange():
            self._invalidate_layout()
        self.post_message(self.SortChanged(self, self._model.sort_column, self._model.sort_reverse))
        self._after_structural_change()

    def _page_rows(self) -> int:
        """Rows visible below the header."""
        return max(1, self.scrollable_content_region.height - 1)

    def _window_keys(self) -> list[str]:
        """Keys of the rows currently on screen, top to bottom."""
        height = self.scrollable_content_region.height - 1
        if height <= 0:
            return []
        top = self.scroll_offset.y
        return self._model.keys_between(top, top + height)

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
            rows_shown = min(self._page_rows(), self._model.row_count - top)
            self.refresh_lines(top + rows_shown + 1, vacated)

    def _refresh_changed_cells(
        self, offset: int, old: tuple[Text, ...], new: tuple[Text, ...]
    ) -> bool:
        """Repaint only the columns of window line `offset` whose cells differ.

        False when that cannot be worked out (scrolled sideways, cell count changed):
        the caller repaints the whole line.
        """
        if self.scroll_offset.x != 0:
            return False
        spans = self._layout.changed_spans(old, new)
        if spans is None:
            return False
        y = offset + 1  # below the header
        for start, end in spans:
            self.refresh(Region(start, y, end - start, 1))
        return True

    def _refresh_key(self, key: str) -> None:
        """Repaint row `key` if it is on screen and repaints are not suspended."""
        if self.paused:
            return
        index = self._model.index_of(key)
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
        return self._model.row_count + 1  # + the header line

    def _sync_virtual_size(self) -> None:
        size = Size(self._layout.total_width(), self._virtual_height())
        if size != self.virtual_size:
            self.virtual_size = size

    # ------------------------------------------------------------------ internals: cursor

    def _set_cursor(self, key: str | None) -> None:
        """Move the cursor to `key`, repaint both rows and tell the app."""
        self._show_cursor_move(self._model.set_cursor(key).cursor)

    def _move_cursor_by(self, delta: int, scroll: bool = False) -> None:
        """Move the cursor `delta` rows; a page move scrolls the view by the same amount."""
        target = self._model.cursor_target(delta)
        if target is None:
            return
        start, index = target
        if scroll:
            self.scroll_to(y=self.scroll_offset.y + (index - start), animate=False, force=True)
        self._set_cursor(self._model.key_at(index))
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

    def _fit_widths_to(self, keys: Iterable[str]) -> bool:
        """Widen auto columns to fit rows `keys` (about to be painted); True if any grew."""
        rows = self._model.rows
        if self._layout.fit(row.cells for row in map(rows.get, keys) if row is not None):
            self._invalidate_layout()
            return True
        return False

    def _invalidate_layout(self) -> None:
        """Column widths or the shown columns changed: every rendered row and the header
        are stale (a changed width may change which columns fit)."""
        self._layout.arrange()
        self._layout_gen += 1
        self._strip_cache.clear()
        self._header_cache = None

    def _invalidate_styles(self) -> None:
        self._style_gen += 1
        self._styles_cached = None
        self._strip_cache.clear()
        self._header_cache = None

    def _row_styles(self) -> RowStyles:
        """Rich styles for rows, resolved once per style generation."""
        if self._styles_cached is None:
            self._styles_cached = RowStyles(
                base=self.rich_style,
                marked=self.get_component_rich_style("live-table--marked"),
                cursor=self.get_component_rich_style("live-table--cursor"),
                header=self.get_component_rich_style("live-table--header"),
            )
        return self._styles_cached
