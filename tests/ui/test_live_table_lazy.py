"""Lazy rows: a crash poll's thousands of changed rows are formatted only when needed."""

from __future__ import annotations

from decimal import Decimal

from rich.text import Text

from risk_tui.widgets import LiveTable, RowData
from tests.ui.test_live_table import TableApp, screen_lines

ROWS = 5_000


class Maker:
    """Cells of row `index` at `amount`, counting the rows it was asked to format."""

    def __init__(self) -> None:
        self.made: list[int] = []

    def row(self, index: int, amount: int, version: int) -> RowData:
        def make() -> tuple[Text, ...]:
            self.made.append(index)
            return (Text(f"A{index:05d}"), Text(f"C{index}"), Text(f"{Decimal(amount):.2f}"))

        return RowData.lazy(make, version)


async def test_only_rows_on_screen_or_sampled_are_formatted() -> None:
    maker = Maker()
    initial = {f"A{i:05d}": maker.row(i, i * 10, 1) for i in range(ROWS)}
    app = TableApp(initial)
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        table = app.query_one(LiveTable)
        # Sized from a sample of the load (at most 1,000 rows) and painted: no more.
        loaded = len(set(maker.made))
        assert loaded <= 1_000 + 20
        assert "A00000" in "\n".join(screen_lines(app))

        # A poll changing 2,000 rows, the first ten on screen: only those are formatted.
        maker.made.clear()
        table.apply_diff(
            {f"A{i:05d}": maker.row(i, i * 10 + 7, 2) for i in range(0, ROWS, 2) if i < 4_000}
        )
        await pilot.pause()
        assert set(maker.made) <= set(range(0, 20))
        assert "20.00" not in "\n".join(screen_lines(app))  # A00002 now shows 27.00
        assert "27.00" in "\n".join(screen_lines(app))

        # Scrolling to a changed row formats it then, with the figures it was sent with.
        maker.made.clear()
        assert table.move_cursor("A03000")
        await pilot.pause()
        assert 3_000 in maker.made
        assert "30007.00" in "\n".join(screen_lines(app))


def test_a_lazy_row_is_formatted_once_and_compares_by_its_cells() -> None:
    calls: list[int] = []

    def make() -> tuple[Text, ...]:
        calls.append(1)
        return (Text("x"),)

    row = RowData.lazy(make, 3)
    assert calls == []
    assert row.cells == (Text("x"),)
    assert row.cells == (Text("x"),)
    assert calls == [1]
    assert row == RowData((Text("x"),), 3)
    assert row != RowData((Text("x"),), 4)
