"""The messages a `LiveTable` posts (`LiveTable.RowSelected` and so on), and the
ScrollView it is built on, which redraws its scrollbars only when they change.

Kept apart from `live_table` to keep that module one widget's repaint path; the table
subclasses each message as `LiveTable.RowSelected` and so on, whose handlers are
`on_live_table_row_selected`. The table is typed as its base here (no import cycle).
"""

from __future__ import annotations

from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView


class RowSelected(Message, namespace="live_table"):
    """The operator pressed enter on a row."""

    def __init__(self, live_table: QuietScrollView, key: str) -> None:
        self.live_table = live_table
        self.key = key
        super().__init__()

    @property
    def control(self) -> QuietScrollView:
        """The table that posted the message (for `@on(..., selector)`)."""
        return self.live_table


class CursorMoved(Message, namespace="live_table"):
    """The cursor is on a different row (`key` is None when the view is empty)."""

    def __init__(self, live_table: QuietScrollView, key: str | None) -> None:
        self.live_table = live_table
        self.key = key
        super().__init__()

    @property
    def control(self) -> QuietScrollView:
        """The table that posted the message."""
        return self.live_table

    def can_replace(self, message: Message) -> bool:
        """A burst of moves (key repeat) collapses to the latest one."""
        return isinstance(message, CursorMoved) and message.live_table is self.live_table


class SortChanged(Message, namespace="live_table"):
    """The table is now sorted by `column_key` (None: arrival order)."""

    def __init__(self, live_table: QuietScrollView, column_key: str | None, reverse: bool) -> None:
        self.live_table = live_table
        self.column_key = column_key
        self.reverse = reverse
        super().__init__()

    @property
    def control(self) -> QuietScrollView:
        """The table that posted the message."""
        return self.live_table


class MarksChanged(Message, namespace="live_table"):
    """The set of marked rows changed."""

    def __init__(self, live_table: QuietScrollView, marked_keys: frozenset[str]) -> None:
        self.live_table = live_table
        self.marked_keys = marked_keys
        super().__init__()

    @property
    def control(self) -> QuietScrollView:
        """The table that posted the message."""
        return self.live_table


class QuietScrollView(ScrollView):
    """A ScrollView that redraws its scrollbars only when their sizes change."""

    _last_size_update: tuple[Size, Size, Size, Size] | None = None

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
