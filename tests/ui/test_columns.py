"""Columns by priority on the seed desk at 80×24 (issue 14): each tab's key figures are
on the first screen, whole; `w` shows every column with the key ones frozen."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from textual.app import App

from risk_tui.app import TABS, RiskApp
from risk_tui.widgets.live_table import LiveTable
from tests.waiting import until

MONEY_WITH_CURRENCY = re.compile(r"\b[A-Z]{3} -?[\d,]+(\.\d+)?\b")
TIME_LEFT = re.compile(r"^(\d+d \d+h|\d+h \d\dm|\d+m|OVERDUE|none)$")

# What each tab must show at 80 columns: the columns whose every cell is on screen whole.
KEY_COLUMNS = {
    "warnings": ("account", "client", "alert", "call_amount", "deadline"),
    "intraday": ("account", "client", "alert", "call_amount", "deadline", "flag"),
    "shorts": ("symbol", "shortfall", "value"),
    "history": ("account", "call_amount", "reason"),
    "exceptions": ("account", "client", "alert", "call_amount", "deadline"),
    "orders": ("account", "symbol", "side", "quantity", "filled", "status"),
    "approvals": ("kind", "account", "what", "waiting", "state"),
}


def screen_lines(app: App[Any]) -> list[str]:
    """What the screen shows now."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def _table(app: RiskApp, tab: str) -> LiveTable:
    return app.query_one(f"#{tab}-pane-table", LiveTable)


def _rows_on_screen(app: RiskApp, table: LiveTable) -> list[tuple[str, str]]:
    """(row key, screen line) for each row the table shows, top to bottom."""
    lines = screen_lines(app)
    top = table.region.y + 1  # below the header line
    shown = table.visible_keys()[table.scroll_offset.y :][: table.region.height - 1]
    return [(key, lines[top + offset]) for offset, key in enumerate(shown)]


async def _loaded(app: RiskApp) -> None:
    table = _table(app, "warnings")
    await until(lambda: table.row_count >= 4, what="the seed desk")


async def test_tab_1_shows_each_rows_call_amount_with_currency_and_time_left_at_80x24(
    fixed_app: Callable[..., RiskApp],
) -> None:
    app = fixed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await _loaded(app)
        await pilot.pause()
        table = _table(app, "warnings")
        assert table.shown_columns[:5] == KEY_COLUMNS["warnings"]
        header = screen_lines(app)[table.region.y]
        labels = ["Account", "Client", "Level", "Call", "amount", "Time", "left"]
        assert header.split()[:7] == labels
        rows = _rows_on_screen(app, table)
        assert len(rows) >= 4
        position = {column.key: index for index, column in enumerate(table.columns)}
        for key, line in rows:
            cells = table.get_row(key)
            assert cells is not None
            amount = cells.cells[position["call_amount"]].plain
            left = cells.cells[position["deadline"]].plain
            assert key in line
            if "INCOMPLETE" in line:
                # No figure to show: the reason where the amount would be, whole.
                assert amount in line, line
                continue
            assert MONEY_WITH_CURRENCY.fullmatch(amount), amount
            assert f" {amount} " in f"{line} ", line
            assert TIME_LEFT.match(left), left
            assert f" {left} " in f"{line} ", line
            assert "…" not in line.split("  ")[-1]  # no figure cut short


async def test_an_incomplete_accounts_reason_is_on_the_first_screen(
    fixed_app: Callable[..., RiskApp],
) -> None:
    app = fixed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await _loaded(app)
        table = _table(app, "warnings")
        await until(lambda: table.move_cursor("I7001"), what="the incomplete account I7001")
        await pilot.pause()
        line = dict(_rows_on_screen(app, table))["I7001"]
        assert "INCOMPLETE" in line
        assert "no price for NOQ.SG" in line


@pytest.mark.parametrize("tab", range(1, len(TABS) + 1), ids=[t for t, _ in TABS])
async def test_every_tab_shows_its_key_figures_whole_at_80x24(
    fixed_app: Callable[..., RiskApp], tab: int
) -> None:
    app = fixed_app()
    name = TABS[tab - 1][0]
    async with app.run_test(size=(80, 24)) as pilot:
        await _loaded(app)
        await pilot.press(str(tab))
        await pilot.pause()
        table = _table(app, name)
        wanted = KEY_COLUMNS[name]
        assert set(wanted) <= set(table.shown_columns), table.shown_columns
        header = screen_lines(app)[table.region.y]
        for column in table.columns:
            if column.key in table.shown_columns:
                assert column.label in header, (column.label, header)
        position = {column.key: index for index, column in enumerate(table.columns)}
        for key, line in _rows_on_screen(app, table):
            row = table.get_row(key)
            assert row is not None
            for key_column in wanted:
                cell = row.cells[position[key_column]].plain
                if table.columns[position[key_column]].whole:
                    assert cell in line, (key_column, cell, line)


async def test_w_shows_every_column_with_the_key_ones_frozen(
    fixed_app: Callable[..., RiskApp],
) -> None:
    app = fixed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await _loaded(app)
        await pilot.pause()
        table = _table(app, "warnings")
        narrow = table.shown_columns
        await pilot.press("w")
        assert table.wide
        assert set(table.shown_columns) == {column.key for column in table.columns}
        assert table.shown_columns[:2] == ("account", "call_amount")
        # Every table of the screen switched: the layout is one mode, not per tab.
        assert _table(app, "history").wide
        await pilot.press(*["right"] * 6)
        header = screen_lines(app)[table.region.y]
        assert header.split()[:3] == ["Account", "Call", "amount"]
        assert "Client" not in header
        await pilot.press("w")
        assert table.shown_columns == narrow
        assert table.scroll_offset.x == 0


async def test_a_filter_that_matches_nothing_says_so_on_every_tab(
    fixed_app: Callable[..., RiskApp],
) -> None:
    app = fixed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await _loaded(app)
        await pilot.press("slash", *"ZZNOPE", "enter")
        await pilot.pause()
        table = _table(app, "warnings")
        assert table.row_count == 0
        line = screen_lines(app)[table.region.y + 1]
        assert line.strip() == "no open calls matching 'ZZNOPE'"
        await pilot.press("3")
        await pilot.pause()
        shorts = _table(app, "shorts")
        line = screen_lines(app)[shorts.region.y + 1]
        assert line.strip() == "no short positions matching 'ZZNOPE'"
