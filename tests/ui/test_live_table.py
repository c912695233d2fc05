"""LiveTable: rendering, diffs repainting only changed visible rows, cursor, marks, sort, filter."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal

import pytest
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.message import Message

from risk_tui.widgets import Column, LiveTable, RowData

COLUMNS = (
    Column("account", "Account", width=8),
    Column("client", "Client"),
    Column("amount", "Call amount", align="right", sort_key=lambda cell: Decimal(cell.plain)),
)


def row(index: int, amount: Decimal | None = None, version: int | None = 1) -> RowData:
    """Row `index`: account A00000…, client C0…, call amount `index * 10` unless given."""
    value = Decimal(index * 10) if amount is None else amount
    return RowData(
        (Text(f"A{index:05d}"), Text(f"C{index}", style="red"), Text(f"{value:.2f}")),
        version,
    )


def rows(count: int) -> dict[str, RowData]:
    return {f"A{index:05d}": row(index) for index in range(count)}


class TableApp(App[None]):
    """One LiveTable filling the screen, loaded on mount; records the table's messages."""

    def __init__(
        self,
        initial: dict[str, RowData],
        columns: tuple[Column, ...] = COLUMNS,
    ) -> None:
        super().__init__()
        self.initial = initial
        self.columns = columns
        self.messages: list[Message] = []

    def compose(self) -> ComposeResult:
        yield LiveTable(self.columns)

    def on_mount(self) -> None:
        table = self.query_one(LiveTable)
        table.set_rows(self.initial)
        table.focus()

    def on_live_table_row_selected(self, message: LiveTable.RowSelected) -> None:
        self.messages.append(message)

    def on_live_table_cursor_moved(self, message: LiveTable.CursorMoved) -> None:
        self.messages.append(message)

    def on_live_table_sort_changed(self, message: LiveTable.SortChanged) -> None:
        self.messages.append(message)

    def on_live_table_marks_changed(self, message: LiveTable.MarksChanged) -> None:
        self.messages.append(message)


def screen_lines(app: App[None]) -> list[str]:
    """What the screen currently shows: lines not marked dirty come from Textual's cache."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


@contextmanager
def recorded_renders(table: LiveTable) -> Iterator[list[str]]:
    """Record the key of every row rendered into a strip (every strip-cache miss)."""
    keys: list[str] = []
    original: Callable[..., object] = table._render_row

    def recording(key: str, *args: object) -> object:
        keys.append(key)
        return original(key, *args)

    table._render_row = recording  # type: ignore[method-assign,assignment]  # a spy, until `del`
    try:
        yield keys
    finally:
        del table._render_row


async def test_loads_10000_rows_quickly() -> None:
    app = TableApp({})
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.query_one(LiveTable)
        started = time.perf_counter()
        table.set_rows(rows(10_000))
        await pilot.pause()
        elapsed = time.perf_counter() - started
        assert table.row_count == 10_000
        assert screen_lines(app)[39].startswith("   A00038")
        # DataTable needs seconds for this; a generous bound that still catches a regression.
        assert elapsed < 2.0, f"loading 10,000 rows took {elapsed:.2f}s"


async def test_header_and_rows_render_expected_text() -> None:
    app = TableApp(rows(50))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.query_one(LiveTable)
        header = table.render_line(0).text
        assert header.split() == ["Account", "Client", "Call", "amount"]
        # Gutter (cursor marker, mark marker), then columns separated by one space.
        assert table.render_line(1).text.startswith(">  A00000   C0      ")
        assert table.render_line(2).text.startswith("   A00001   C1      ")
        # Right-aligned amounts end in the same column as the header label.
        end = header.index("Call amount") + len("Call amount")
        assert table.render_line(3).text[:end].endswith(" 20.00")
        assert screen_lines(app)[1].startswith(">  A00000   C0      ")


async def test_diff_repaints_only_the_changed_visible_row() -> None:
    app = TableApp(rows(100))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.query_one(LiveTable)
        with recorded_renders(table) as rendered:
            table.apply_diff({"A00003": row(3, Decimal("999.99"), version=2)}, ())
            await pilot.pause()
        assert rendered == ["A00003"]
        assert "999.99" in screen_lines(app)[4]
        assert "20.00" in screen_lines(app)[3]


async def test_diff_to_an_off_screen_row_renders_nothing() -> None:
    app = TableApp(rows(100))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.query_one(LiveTable)
        with recorded_renders(table) as rendered:
            table.apply_diff({"A00090": row(90, Decimal("123.45"), version=2)}, ())
            await pilot.pause()
        assert rendered == []
        table.move_cursor("A00090")
        await pilot.pause()
        assert any("123.45" in line for line in screen_lines(app))


async def test_unchanged_version_and_equal_cells_are_not_changes() -> None:
    app = TableApp(rows(10))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.query_one(LiveTable)
        with recorded_renders(table) as rendered:
            # Same version: the caller says "unchanged", even though the cells differ.
            table.apply_diff({"A00001": row(1, Decimal("5.00"), version=1)})
            # No version: the table compares cells; equal cells are no change.
            table.apply_diff({"A00002": row(2, version=None)})
            await pilot.pause()
            assert rendered == []
            table.apply_diff({"A00002": row(2, Decimal("7.00"), version=None)})
            await pilot.pause()
        assert rendered == ["A00002"]
        changed = table.get_row("A00002")
        assert changed is not None
        assert changed.version == 2
        assert "7.00" in table.render_line(3).text


async def test_cursor_stays_on_its_key_across_a_resort() -> None:
    app = TableApp(rows(100))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.query_one(LiveTable)
        table.sort_by("amount", reverse=True)
        await pilot.pause()
        assert table.key_at(0) == "A00099"
        assert table.cursor_key == "A00000"  # the re-sort kept the cursor's row
        assert table.cursor_index == 99
        await pilot.press("home", "down", "down")
        assert table.cursor_key == "A00097"
        # A00097 drops to the smallest amount: it moves to the bottom of the view.
        table.apply_diff({"A00097": row(97, Decimal("-1"), version=2)})
        await pilot.pause()
        assert table.cursor_key == "A00097"
        assert table.cursor_index == 99
        lines = screen_lines(app)
        assert any(line.startswith(">  A00097") for line in lines)
        # Sorting by another column keeps the cursor row too.
        table.sort_by("client")
        await pilot.pause()
        assert table.cursor_key == "A00097"
        assert any(line.startswith(">  A00097") for line in screen_lines(app))
        sorts = [m for m in app.messages if isinstance(m, LiveTable.SortChanged)]
        assert [(m.column_key, m.reverse) for m in sorts] == [("amount", True), ("client", False)]


@pytest.mark.parametrize("changes", [20, 600])  # bisect moves, and one merge
async def test_sorted_view_matches_a_full_sort_after_every_diff(changes: int) -> None:
    rng = random.Random(changes)
    amounts = {f"A{index:05d}": Decimal(rng.randint(0, 500)) for index in range(2_000)}
    arrival = {key: position for position, key in enumerate(amounts)}
    next_index = len(amounts)
    app = TableApp({key: row(int(key[1:]), amount) for key, amount in amounts.items()})
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.query_one(LiveTable)
        table.sort_by("amount", reverse=True)
        table.set_filter(lambda key, data: not key.endswith("7"))
        for poll in range(2, 8):
            upserts = {}
            for key in rng.sample(sorted(amounts), changes):
                amounts[key] = Decimal(rng.randint(0, 500))
                upserts[key] = row(int(key[1:]), amounts[key], version=poll)
            for _ in range(changes // 10):
                key = f"A{next_index:05d}"
                next_index += 1
                amounts[key] = Decimal(rng.randint(0, 500))
                arrival[key] = next_index
                upserts[key] = row(int(key[1:]), amounts[key], version=poll)
            removed = rng.sample(sorted(set(amounts) - set(upserts)), changes // 10)
            for key in removed:
                del amounts[key]
            table.apply_diff(upserts, removed)
            await pilot.pause()
            expected = sorted(
                (key for key in amounts if not key.endswith("7")),
                key=lambda key: (amounts[key], arrival[key]),
                reverse=True,
            )
            assert table.visible_keys() == expected
            assert [table.key_at(index) for index in range(5)] == expected[:5]
            cursor = table.cursor_key
            assert cursor is not None
            assert table.key_at(table.cursor_index or 0) == cursor


async def test_header_shows_the_sort_direction_as_text() -> None:
    app = TableApp(rows(5))
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.query_one(LiveTable)
        table.cycle_sort("amount")
        await pilot.pause()
        assert "Call amount▲" in table.render_line(0).text
        table.cycle_sort("amount")
        await pilot.pause()
        assert "Call amount▼" in table.render_line(0).text
        assert table.key_at(0) == "A00004"


async def test_space_toggles_a_text_mark_on_the_cursor_row() -> None:
    app = TableApp(rows(10))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("down", "space")
        table = app.query_one(LiveTable)
        assert table.marked_keys == {"A00001"}
        assert screen_lines(app)[2].startswith(">* A00001")
        await pilot.press("down")
        assert screen_lines(app)[2].startswith(" * A00001")
        await pilot.press("up", "space")
        assert table.marked_keys == frozenset()
        assert screen_lines(app)[2].startswith(">  A00001")
        marks = [m for m in app.messages if isinstance(m, LiveTable.MarksChanged)]
        assert [set(m.marked_keys) for m in marks] == [{"A00001"}, set()]


async def test_enter_posts_row_selected_with_the_key() -> None:
    app = TableApp(rows(10))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("down", "down", "enter")
        selected = [m for m in app.messages if isinstance(m, LiveTable.RowSelected)]
        assert [m.key for m in selected] == ["A00002"]
        assert selected[0].control is app.query_one(LiveTable)
        moved = [m.key for m in app.messages if isinstance(m, LiveTable.CursorMoved)]
        assert moved[-1] == "A00002"


async def test_navigation_keys_move_the_cursor_and_keep_it_on_screen() -> None:
    app = TableApp(rows(200))
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.query_one(LiveTable)
        await pilot.press("end")
        assert table.cursor_key == "A00199"
        assert screen_lines(app)[-1].startswith(">  A00199")
        await pilot.press("home")
        assert table.cursor_key == "A00000"
        await pilot.press("pagedown")
        assert table.cursor_index == table._page_rows()
        assert any(line.startswith(">  ") for line in screen_lines(app))
        await pilot.press("pageup")
        assert table.cursor_key == "A00000"


async def test_click_puts_the_cursor_on_the_clicked_row() -> None:
    app = TableApp(rows(10))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.click(LiveTable, offset=(5, 3))  # line 3: the third row
        table = app.query_one(LiveTable)
        assert table.cursor_key == "A00002"
        await pilot.click(LiveTable, offset=(5, 0))  # the header: no row
        assert table.cursor_key == "A00002"


async def test_filter_hides_rows_and_keeps_the_cursor_key() -> None:
    app = TableApp(rows(100))
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.query_one(LiveTable)
        await pilot.press("down", "down", "down")  # A00003
        table.set_filter(lambda key, data: key.endswith("3"))
        await pilot.pause()
        assert table.row_count == 10
        assert table.total_row_count == 100
        assert table.cursor_key == "A00003"
        lines = screen_lines(app)
        assert lines[1].startswith(">  A00003")
        assert lines[2].startswith("   A00013")
        # A diff that makes a row match shows it; one that stops matching hides it.
        table.apply_diff({"A00050": RowData(row(50).cells, 2)}, ["A00013"])
        await pilot.pause()
        assert table.row_count == 9
        # Filtering out the cursor row puts the cursor on the first remaining row.
        table.set_filter(lambda key, data: key.endswith("7"))
        await pilot.pause()
        assert table.cursor_key == "A00007"
        table.set_filter(None)
        await pilot.pause()
        assert table.row_count == 99
        assert table.cursor_key == "A00007"


async def test_removing_the_cursor_row_moves_the_cursor_to_its_place() -> None:
    app = TableApp(rows(10))
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.query_one(LiveTable)
        await pilot.press("down", "down", "space")
        table.apply_diff({}, ["A00002"])
        await pilot.pause()
        assert table.cursor_key == "A00003"
        assert table.marked_keys == frozenset()
        lines = screen_lines(app)
        assert lines[3].startswith(">  A00003")
        assert lines[10].strip() == ""


async def test_paused_table_does_not_repaint_until_resumed() -> None:
    app = TableApp(rows(20))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.query_one(LiveTable)
        table.suspend_repaints()
        table.suspend_repaints()  # a dialog opened over a hidden tab: calls nest
        assert table.paused
        with recorded_renders(table) as rendered:
            table.apply_diff({"A00001": row(1, Decimal("111.11"), version=2)}, ["A00005"])
            table.apply_diff({"A00001": row(1, Decimal("222.22"), version=3)})
            table.apply_diff({"A00030": row(30)})
            await pilot.pause()
            assert rendered == []
            assert "10.00" in screen_lines(app)[2]
            assert table.row_count == 20  # the model is current while paused
            table.resume_repaints()
            await pilot.pause()
            assert rendered == []
            table.resume_repaints()
            await pilot.pause()
        assert not table.paused
        lines = screen_lines(app)
        assert "222.22" in lines[2]
        assert not any(line.startswith("   A00005") for line in lines)
        assert lines[20].startswith("   A00030")


async def test_unstyled_cells_get_the_table_background_and_cell_styles_survive() -> None:
    data = {"K": RowData((Text("plain"), Text("red", style="red"), Text("1")), 1), **rows(3)}
    app = TableApp(data)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.query_one(LiveTable)
        background = table.rich_style.bgcolor
        assert background is not None
        segments = list(table.render_line(2))  # not the cursor row
        assert all(segment.style and segment.style.bgcolor == background for segment in segments)
        red = [segment for segment in segments if segment.text.strip() == "C0"]
        assert red
        assert red[0].style is not None
        assert red[0].style.color is not None
        assert red[0].style.color.name == "red"


async def test_markup_in_a_cell_shows_literally() -> None:
    data = {"K": RowData((Text("[b]x[/b]"), Text("[link=http://evil]y"), Text("1")), 1)}
    app = TableApp(data)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        line = screen_lines(app)[1]
        assert "[b]x[/b]" in line
        assert "[link=http://evil]y" in line


async def test_cell_line_breaks_cannot_break_the_row() -> None:
    data = {"K": RowData((Text("a\nb"), Text("c\td"), Text("1")), 1)}
    app = TableApp(data)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.query_one(LiveTable)
        strip = table.render_line(1)
        assert "\n" not in strip.text
        assert "\t" not in strip.text
        assert strip.cell_length == table.scrollable_content_region.width


async def test_auto_width_grows_so_a_wider_amount_is_not_truncated() -> None:
    app = TableApp(rows(5))
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.query_one(LiveTable)
        await pilot.pause()
        table.apply_diff({"A00001": row(1, Decimal("12345678901.23"), version=2)})
        await pilot.pause()
        assert "12345678901.23" in screen_lines(app)[2]
        assert "…" not in screen_lines(app)[2]


WIDE_COLUMNS = (
    Column("account", "Account", width=8, frozen=True),
    *(Column(f"figure{index}", f"Figure {index}", align="right") for index in range(10)),
)


def wide_rows(count: int) -> dict[str, RowData]:
    return {
        f"A{index:05d}": RowData(
            (Text(f"A{index:05d}"), *(Text(f"{index * column:,}.00") for column in range(10))), 1
        )
        for index in range(count)
    }


async def test_works_at_80x24_with_horizontal_scroll_and_fixed_column() -> None:
    app = TableApp(wide_rows(100), WIDE_COLUMNS)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("w")  # the wide layout: every column, scrolled sideways
        table = app.query_one(LiveTable)
        assert table.virtual_size.width > 80
        lines = screen_lines(app)
        assert all(len(line) == 80 for line in lines)
        assert lines[0].split()[:3] == ["Account", "Figure", "0"]
        assert "Figure 9" not in lines[0]
        await pilot.press("down", *["right"] * 10)
        lines = screen_lines(app)
        # The account column and the cursor marker stay; the figures scrolled.
        assert lines[0].startswith("   Account")
        assert "Figure 9" in lines[0]
        assert "Figure 0" not in lines[0]
        assert lines[2].startswith(">  A00001")
        await pilot.press(*["left"] * 10)
        assert "Figure 0" in screen_lines(app)[0]
        # Rows below the header scroll vertically while the header stays on line 0.
        await pilot.press("pagedown", "pagedown")
        lines = screen_lines(app)
        assert lines[0].startswith("   Account")
        assert any(line.startswith(">  A000") for line in lines[1:])
        assert table.scroll_offset.y > 0


def test_every_binding_has_an_id() -> None:
    bindings = [binding for binding in LiveTable.BINDINGS if isinstance(binding, Binding)]
    assert len(bindings) == len(LiveTable.BINDINGS)
    ids = [binding.id for binding in bindings]
    assert all(ids)
    assert len(set(ids)) == len(ids)
    assert "table.mark" in ids
    assert "table.select" in ids


def test_columns_must_have_unique_keys() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        LiveTable([Column("a", "A"), Column("a", "B")])
