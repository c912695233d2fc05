"""TableLayout: which columns a table shows at a width, by priority, whole or not at all;
the wide layout with its frozen key columns, scrolled by whole columns."""

from __future__ import annotations

from rich.console import Console
from rich.style import Style
from rich.text import Text

from risk_tui.widgets.table_layout import RowStyles, TableLayout
from risk_tui.widgets.table_model import Column

# Declared order = display order; priorities say which come first. Widths are fixed so
# the arithmetic is plain: gutter 2, then each column its width plus one separator.
COLUMNS = (
    Column("account", "Account", width=8, priority=1, frozen=True),  # 2 + 9 = 11
    Column("client", "Client", width=10, priority=2),  # 22
    Column("level", "Level", width=6, priority=3),  # 29
    Column("amount", "Amount", width=12, align="right", priority=4, frozen=True),  # 42
    Column("left", "Left", width=6, priority=5),  # 49
    Column("state", "State", width=9, priority=6),  # 59
    Column("equity", "Equity", width=12, align="right", priority=7),  # 72
    Column("remark", "Remark", width=20, priority=8),  # 93
)
CELLS = tuple(
    Text(text)
    for text in (
        "A1001",
        "Tan Mei",
        "CALL",
        "SGD 1,015.00",
        "1d 3h",
        "triggered",
        "9,500.00",
        "topped up",
    )
)
STYLES = RowStyles(Style(), Style(), Style(), Style())
CONSOLE = Console(width=200, color_system=None)


def keys(layout: TableLayout) -> list[str]:
    return [layout.columns[index].key for index in layout.shown]


def narrow(width: int) -> TableLayout:
    layout = TableLayout(COLUMNS)
    layout.arrange(width)
    return layout


def text(layout: TableLayout, scroll_x: int, width: int, cells: tuple[Text, ...] = CELLS) -> str:
    strip = layout.render_row(cells, CONSOLE, STYLES, False, False)
    return layout.crop(strip, scroll_x, width, Style()).text


def test_a_narrow_table_shows_the_columns_that_fit_whole_by_priority() -> None:
    assert keys(narrow(49)) == ["account", "client", "level", "amount", "left"]
    assert keys(narrow(58)) == ["account", "client", "level", "amount", "left"]  # state: 10
    assert keys(narrow(59)) == ["account", "client", "level", "amount", "left", "state"]
    assert keys(narrow(80)) == [column.key for column in COLUMNS[:7]]
    assert keys(narrow(93)) == [column.key for column in COLUMNS]


def test_columns_keep_declared_order_whatever_their_priority() -> None:
    columns = (
        Column("a", "A", width=10, priority=3),
        Column("b", "B", width=10, priority=1),
        Column("c", "C", width=10, priority=2),
    )
    layout = TableLayout(columns)
    layout.arrange(2 + 11 + 11)
    assert keys(layout) == ["b", "c"]
    layout.arrange(2 + 33)
    assert keys(layout) == ["a", "b", "c"]


def test_wider_windows_add_columns_in_priority_order_and_stop_at_the_first_that_does_not_fit() -> (
    None
):
    # A narrow low-priority column does not jump ahead of a wider, more important one.
    columns = (
        Column("a", "A", width=10, priority=1),
        Column("wide", "Wide", width=30, priority=2),
        Column("tiny", "T", width=2, priority=3),
    )
    layout = TableLayout(columns)
    layout.arrange(2 + 11 + 10)
    assert keys(layout) == ["a"]


def test_a_column_is_drawn_whole_or_not_at_all() -> None:
    for width in range(40, 100):
        layout = narrow(width)
        line = text(layout, 0, width)
        assert len(line) == width
        for column, cell in zip(COLUMNS, CELLS, strict=True):
            shown = column.key in keys(layout)
            assert (cell.plain in line) == shown, (width, column.key)
        assert "…" not in line


def test_the_sorted_column_is_shown_in_place_of_the_least_important() -> None:
    layout = narrow(59)
    layout.pinned = COLUMNS.index(next(c for c in COLUMNS if c.key == "equity"))
    assert layout.arrange()
    assert keys(layout) == ["account", "client", "level", "amount", "equity"]


def test_figures_grow_without_a_cap_labels_and_text_are_capped() -> None:
    columns = (
        Column("name", "Name", max_width=8),
        Column("money", "Money", align="right", max_width=8, whole=True),
    )
    layout = TableLayout(columns)
    layout.measure([(Text("A very long client name"), Text("HKD 1,234,567,890.00"))])
    assert layout.widths == [8, len("HKD 1,234,567,890.00")]


def test_the_wide_layout_shows_every_column_key_columns_first_and_frozen() -> None:
    layout = narrow(60)
    layout.wide = True
    assert layout.arrange()
    assert keys(layout) == [
        "account", "amount", "client", "level", "left", "state", "equity", "remark",
    ]  # fmt: skip
    assert layout.fixed_columns == 2
    assert layout.fixed_width() == 2 + 9 + 13
    layout.wide = False
    assert layout.arrange()
    assert keys(layout) == ["account", "client", "level", "amount", "left", "state"]


FROZEN = "   A1001    SGD 1,015.00"


def test_the_wide_layout_scrolls_by_whole_columns_beside_the_frozen_ones() -> None:
    layout = narrow(50)
    layout.wide = True
    layout.arrange()
    starts = layout.scroll_column_starts()
    assert starts == [0, 11, 18, 25, 35, 48]  # client, level, left, state, equity, remark
    for scroll_x in range(0, 60):
        line = text(layout, scroll_x, 50)
        assert len(line) == 50
        assert line.startswith(FROZEN)  # the key columns stay
        whole = [cell.plain for cell in CELLS if cell.plain in line]
        # Every cell is whole or absent: no tail of a figure beside the frozen ones.
        rest = line[len(FROZEN) :].split()
        for word in rest:
            assert any(word in cell for cell in whole), (scroll_x, word, line)
    # A scroll offset between two column starts shows from the next whole column on.
    assert text(layout, 1, 50).split()[3] == "CALL"
    assert "Tan Mei" not in text(layout, 1, 50)


def test_the_header_has_room_for_the_sort_name_only_in_its_blank_end() -> None:
    layout = narrow(60)
    assert layout.free_width(0, 60) == 1
    layout.arrange(70)
    assert layout.free_width(0, 70) == 11
    names = layout.sort_names(None, False, "urgency", ("", False), 0, 70)
    assert names == (" sorted by urgency ", " by urgency ")


def test_an_overflowing_cell_runs_on_over_empty_cells_only() -> None:
    reason = Text("no price for NOQ.SG", overflow="ignore")
    cells = (Text("I7001"), Text("No Quote"), Text("INCOMPLETE"), reason, Text(), Text("no call"))
    layout = narrow(59)
    line = text(layout, 0, 59, cells)
    assert "no price for NOQ.SG" in line  # over the empty Left column
    assert "no call" in line
    cut = (*cells[:4], Text("2d"), cells[5])
    assert "no price… " in text(layout, 0, 59, cut)  # a neighbour with text: cut
    # It does not widen its column (the figures decide the width).
    layout.measure([cells])
    assert layout.widths[3] == 12


def test_words_are_cut_at_a_space_so_a_figure_in_them_is_never_half_shown() -> None:
    layout = TableLayout((Column("what", "What", width=34),))
    layout.arrange(80)
    words = Text("sell 1000 0700.HK market, worth SGD 12,345.00")
    line = text(layout, 0, 80, (words,)).rstrip()
    assert line == "   sell 1000 0700.HK market, worth…"
    assert "12,3" not in line


def test_the_sort_name_never_covers_a_label() -> None:
    equity = next(i for i, column in enumerate(COLUMNS) if column.key == "equity")
    layout = narrow(50)
    layout.wide = True
    layout.arrange()
    # Equity is scrolled out of view: a whole column makes room for its name.
    tag = layout.sort_tag(equity, True, "urgency", ("in SGD", False), 0, 50)
    assert tag == " Equity▼"
    header = layout.render_header(CONSOLE, Style(), equity, True)
    line = layout.tag_right(layout.crop(header, 0, 50, Style()), tag, 50, Style()).text
    assert line.split() == ["Account", "Amount", "Client", "Level", "Equity▼"]
    assert "A1001" in text(layout, 0, 50)
    assert "1d 3h" not in text(layout, 0, 50)
    # Shown in the normal layout (the sorted column is): its label has the arrow, and
    # words that must be seen go in the blank end only if they fit.
    layout.wide = False
    layout.pinned = equity
    layout.arrange(80)
    assert layout.sort_tag(equity, True, "urgency", ("in SGD, 2 apart", True), 0, 80) == ""
    assert layout.reserve == 0
