"""LiveTable's incremental view and minimal repaints: the sorted view moved entry by entry
equals a full sort after any diffs (whatever the sort values' type), a changed cell
repaints only its column, and screen layouts elsewhere do not redraw the scrollbars."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.text import Text
from textual.geometry import Region

from risk_tui.widgets import Column, LiveTable, RowData
from tests.ui.test_live_table import WIDE_COLUMNS, TableApp, row, rows, screen_lines, wide_rows

SortKey = Callable[[Text], Any]


def _int_or_decimal(cell: Text) -> int | Decimal:
    """Ints until a value with a decimal point arrives: the table must change path."""
    plain = cell.plain
    return Decimal(plain) if "." in plain else int(plain)


SORT_KEYS: dict[str, SortKey | None] = {
    "int": lambda cell: int(cell.plain),  # packed integer entries
    "decimal": lambda cell: Decimal(cell.plain),  # tuple entries
    "text": None,  # the plain text: tuple entries
    "int_then_decimal": _int_or_decimal,
}


def _value_text(kind: str, value: int, decimal: bool) -> str:
    if kind == "int_then_decimal" and decimal:
        return f"{value}.5"
    if kind == "decimal":
        return f"{value}.{value % 3}0"
    return str(value)


def _cells(key: str, text: str) -> tuple[Text, ...]:
    return (Text(key), Text(text))


def _shown(key: str) -> bool:
    return not key.endswith("3")


values = st.integers(min_value=-5, max_value=5)  # small: many ties, negatives
keys = st.sampled_from([f"K{index:02d}" for index in range(40)])


@settings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from(sorted(SORT_KEYS)),
    reverse=st.booleans(),
    initial=st.dictionaries(keys, values, max_size=30),
    steps=st.lists(
        st.tuples(
            st.dictionaries(keys, st.tuples(values, st.booleans()), max_size=25),
            st.lists(keys, max_size=5),
            st.sampled_from(["none", "filter", "unfilter", "resort"]),
            st.booleans(),  # send version=None (the table compares cells)
        ),
        max_size=8,
    ),
)
def test_incremental_view_equals_a_full_sort(
    kind: str,
    reverse: bool,
    initial: dict[str, int],
    steps: list[tuple[dict[str, tuple[int, bool]], list[str], str, bool]],
) -> None:
    table = LiveTable([Column("key", "Key"), Column("value", "Value", sort_key=SORT_KEYS[kind])])
    sort_key = SORT_KEYS[kind] or (lambda cell: cell.plain)
    model = {key: _value_text(kind, value, False) for key, value in initial.items()}
    arrival = {key: position for position, key in enumerate(model)}
    table.set_rows({key: RowData(_cells(key, text), 1) for key, text in model.items()})
    table.sort_by("value", reverse=reverse)
    filtered = False
    for version, (upserts, removals, action, compare_cells) in enumerate(steps, start=2):
        if action == "filter":
            table.set_filter(lambda key, data: _shown(key))
            filtered = True
        elif action == "unfilter":
            table.set_filter(None)
            filtered = False
        elif action == "resort":
            reverse = not reverse
            table.sort_by("value", reverse=reverse)
        removed = [key for key in removals if key not in upserts]
        for key in removed:
            if model.pop(key, None) is not None:
                del arrival[key]
        sent = {}
        for key, (value, decimal) in upserts.items():
            model[key] = _value_text(kind, value, decimal)
            if key not in arrival:
                arrival[key] = len(arrival) + 10_000 * version
            sent[key] = RowData(_cells(key, model[key]), None if compare_cells else version)
        table.apply_diff(sent, removed)

        expected = sorted(
            (key for key in model if not filtered or _shown(key)),
            key=lambda key: (sort_key(Text(model[key])), arrival[key]),
            reverse=reverse,
        )
        assert table.visible_keys() == expected
        assert [table.key_at(index) for index in range(len(expected))] == expected
        assert table.total_row_count == len(model)
        if expected:
            assert table.cursor_key is not None
            assert table.key_at(table.cursor_index or 0) == table.cursor_key
        else:
            assert table.cursor_key is None


async def test_a_changed_cell_repaints_only_its_column() -> None:
    app = TableApp(rows(100))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.query_one(LiveTable)
        refreshed: list[tuple[Region, ...]] = []
        original = table.refresh

        def recording(*regions: Region, **options: Any) -> Any:
            refreshed.append(regions)
            return original(*regions, **options)

        table.refresh = recording  # type: ignore[method-assign]  # a spy, until `del`
        try:
            table.apply_diff({"A00003": row(3, Decimal("999.99"), version=2)})
            await pilot.pause()
        finally:
            del table.refresh
        # Gutter 2, then " Account(8)", " Client", " Call amount": the amount column only.
        widths = table.column_widths
        amount_x = 2 + (1 + widths[0]) + (1 + widths[1]) + 1
        assert refreshed[0] == (Region(amount_x, 4, widths[2], 1),)
        line = screen_lines(app)[4]
        assert line.startswith("   A00003   C3")
        assert "999.99" in line


async def test_a_moved_row_and_the_cursor_row_repaint_whole_lines() -> None:
    app = TableApp(rows(100))
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.query_one(LiveTable)
        table.sort_by("amount", reverse=True)
        await pilot.press("home")
        # A00050 jumps to the top: every line from the top shows another row.
        table.apply_diff({"A00050": row(50, Decimal("100000"), version=2)})
        await pilot.pause()
        lines = screen_lines(app)
        assert lines[1].startswith("   A00050")
        assert "100000.00" in lines[1]
        assert lines[2].startswith(">  A00099")  # the cursor row moved down a line
        assert all(line.startswith(f"   A000{98 - n}") for n, line in enumerate(lines[3:23]))


async def test_layouts_elsewhere_do_not_redraw_the_scrollbars() -> None:
    app = TableApp(wide_rows(100), WIDE_COLUMNS)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("w")  # the wide layout: a horizontal scrollbar
        table = app.query_one(LiveTable)
        scrollbar = table.horizontal_scrollbar
        redraws = 0
        original = scrollbar.refresh

        def counting(*regions: Region, **options: Any) -> Any:
            nonlocal redraws
            redraws += 1
            return original(*regions, **options)

        scrollbar.refresh = counting  # type: ignore[method-assign]  # a spy, until `del`
        try:
            for _ in range(3):  # what a Static.update elsewhere on the screen causes
                app.screen.refresh(layout=True)
                await pilot.pause()
            assert redraws == 0
            # A real change of the table's virtual size still reaches the scrollbars.
            table.apply_diff(
                {
                    f"B{index:05d}": RowData(
                        (Text(f"B{index:05d}"), *(Text("1") for _ in range(10))), 1
                    )
                    for index in range(50)
                }
            )
            await pilot.pause()
            assert table.vertical_scrollbar.window_virtual_size == 151
        finally:
            del scrollbar.refresh
