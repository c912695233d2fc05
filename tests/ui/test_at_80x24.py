"""Issue 14 at 80×24: the details show the call whole in one column, the dialogs fit the
screen, a dialog opened from the details closes back onto them, and a failed review
takes the operator to the field to fix."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from textual.geometry import Region
from textual.widget import Widget
from textual.widgets import Button, Input

from risk_tui.app import RiskApp
from risk_tui.core.calendar import MARKET_CLOCK
from risk_tui.core.lifecycle import MarginCall
from risk_tui.core.money import format_money
from risk_tui.screens.details import DetailsScreen
from risk_tui.widgets.dialogs.auto_liquidation import AutoLiquidationDialog
from risk_tui.widgets.dialogs.formatting import local_time
from risk_tui.widgets.dialogs.holdings import HoldingsEditor
from risk_tui.widgets.live_table import LiveTable
from risk_tui.widgets.pairs import Figure, PairGroup
from tests.ui.helpers import desk_of, screen_lines
from tests.ui.test_dialogs import Host, auto, liquidate, type_into
from tests.waiting import until


def biggest_call(app: RiskApp) -> MarginCall:
    """The open call with the largest amount: the longest figure to show."""
    calls = desk_of(app).engine.open_calls.values()
    return max(calls, key=lambda call: call.call_amount)


async def open_details(app: RiskApp, account_id: str) -> DetailsScreen:
    await until(lambda: app.desk is not None and app.view is not None and bool(app.view.warnings))
    app.open_details(account_id)
    await until(lambda: isinstance(app.screen, DetailsScreen), what="the details")
    screen = app.screen
    assert isinstance(screen, DetailsScreen)
    return screen


def inside(outer: Region, widget: Widget) -> bool:
    """The widget is drawn, and wholly within `outer`."""
    region = widget.region
    return region.area > 0 and outer.contains_region(region)


async def test_the_details_show_the_call_whole_on_the_first_screen_at_80x24(
    fixed_app: Callable[..., RiskApp],
) -> None:
    app = fixed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await until(lambda: app.desk is not None and bool(desk_of(app).engine.open_calls))
        call = biggest_call(app)
        screen = await open_details(app, call.account_id)
        await pilot.pause()
        assert app.desk is not None
        margin = app.desk.account(call.account_id)
        assert margin is not None
        assert margin.call_amount is not None
        assert call.deadline is not None
        expected = {
            "#s-call-now": format_money(margin.call_amount, call.currency),
            "#s-call-trigger": format_money(call.trigger_call_amount, call.currency),
            "#s-deadline": local_time(call.deadline, call.market),
        }
        assert screen.has_class("-one-column")
        for selector, figure in expected.items():
            cell = screen.query_one(selector, Figure)
            assert cell.shown == figure, selector
            assert inside(screen.region, cell), selector  # on the first screen
        left = screen.query_one("#s-left", Figure)
        assert left.shown == left.choices[0]  # "2d 00h 29m left": the deadline says its clock
        assert left.shown.endswith(" left")
        assert expected["#s-deadline"].endswith(f" {MARKET_CLOCK[call.market]}")
        assert inside(screen.region, left)
        # One column: the call's pairs above the account's, not beside them.
        call_group, fund_group = screen.query(PairGroup)
        assert fund_group.region.y > call_group.region.bottom - 1
        assert fund_group.region.x == call_group.region.x
        # Every figure of the summary is whole: none had to give way to "…".
        for cell in screen.query("#summary Figure").results(Figure):
            assert cell.shown == (cell.choices[0] if cell.choices else ""), cell.id


async def test_the_details_set_the_pairs_side_by_side_from_100_columns(
    fixed_app: Callable[..., RiskApp],
) -> None:
    app = fixed_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await until(lambda: app.desk is not None and bool(desk_of(app).engine.open_calls))
        screen = await open_details(app, biggest_call(app).account_id)
        await pilot.pause()
        assert screen.has_class("-two-columns")
        call_group, fund_group = screen.query(PairGroup)
        assert fund_group.region.y == call_group.region.y
        assert fund_group.region.x > call_group.region.right - 1


async def test_the_auto_liquidation_dialog_fits_at_80x24(
    fixed_app: Callable[..., RiskApp],
) -> None:
    app = fixed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await until(lambda: app.desk is not None and bool(desk_of(app).engine.open_calls))
        await open_details(app, "A1001")
        await pilot.press("a")
        await until(lambda: isinstance(app.screen, AutoLiquidationDialog), what="the dialog")
        await pilot.pause()
        dialog = app.screen
        body = dialog.query_one("#edit-step .dialog-body")
        editor = dialog.query_one(HoldingsEditor)
        fields: list[Widget] = [
            dialog.query_one("#execute-at"),
            dialog.query_one("#condition"),
            *editor.query(Input),
            dialog.query_one("#new-deadline"),
            dialog.query_one("#deadline-reason"),
        ]
        for field in fields:
            assert inside(body.region, field), field  # not below the fold of the body
        for button in (dialog.query_one("#review", Button), dialog.query_one("#cancel", Button)):
            assert inside(dialog.region, button), button
        assert inside(app.screen.region, body)


@pytest.mark.parametrize(
    ("key", "dialog"),
    [
        ("l", "LiquidateDialog"),
        ("a", "AutoLiquidationDialog"),
        ("m", "MessageDialog"),
        ("r", "RemarkDialog"),
    ],
)
async def test_a_dialog_opened_from_the_details_closes_back_onto_them(
    fixed_app: Callable[..., RiskApp], key: str, dialog: str
) -> None:
    app = fixed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await until(lambda: app.desk is not None and bool(desk_of(app).engine.open_calls))
        details = await open_details(app, "A1001")
        await pilot.press(key)
        await until(lambda: type(app.screen).__name__ == dialog, what=dialog)
        await pilot.press("escape")
        await until(lambda: not type(app.screen).__name__.endswith("Dialog"), what="closed")
        await pilot.pause()
        assert app.screen is details
        await pilot.press(key)  # and the details' keys still work
        await until(lambda: type(app.screen).__name__ == dialog, what=f"{dialog} again")


async def test_a_remark_saved_from_the_details_lands_on_the_details(
    fixed_app: Callable[..., RiskApp],
) -> None:
    app = fixed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await until(lambda: app.desk is not None and bool(desk_of(app).engine.open_calls))
        details = await open_details(app, "A1001")
        await pilot.press("r")
        await until(lambda: type(app.screen).__name__ == "RemarkDialog", what="the dialog")
        await pilot.press("ctrl+u", *"client will pay today", "ctrl+s")
        await until(lambda: app.screen is details, what="back on the details")
        assert app.desk is not None
        call_id = desk_of(app).engine.open_calls["A1001"].call_id
        remarks = await app.desk.remarks(call_id)
        assert "client will pay today" in [remark.text for remark in remarks]


async def test_a_failed_review_focuses_the_field_to_fix() -> None:
    dialog = auto()
    app = Host(dialog)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await type_into(pilot, dialog.query_one("#new-deadline", Input), "2026-03-13 15:00")
        review = dialog.query_one("#review", Button)
        review.focus()
        await pilot.press("enter")  # the Review button, the reason left blank
        await pilot.pause()
        assert not dialog.reviewing
        assert app.focused is dialog.query_one("#deadline-reason", Input)
        # The execution time first, being first on the form, when both are wrong.
        await type_into(pilot, dialog.query_one("#execute-at", Input), "soon")
        review.focus()
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert app.focused is dialog.query_one("#execute-at", Input)


async def test_a_failed_review_focuses_the_quantity_to_fix() -> None:
    dialog = liquidate()
    app = Host(dialog)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        editor = dialog.query_one(HoldingsEditor)
        quantities = list(editor.query(Input))
        await type_into(pilot, quantities[1], "150")  # not whole lots of 100
        dialog.query_one("#review", Button).focus()
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert not dialog.reviewing
        assert app.focused is quantities[1]


async def test_the_details_tables_show_the_key_figures_whole_at_80x24(
    fixed_app: Callable[..., RiskApp],
) -> None:
    """Positions at 80 columns: every holding's symbol, quantity, value and cure whole,
    no column cut; the timeline in words; `w` shows every column, scrolled sideways."""
    app = fixed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await until(lambda: app.desk is not None and bool(desk_of(app).engine.open_calls))
        call = biggest_call(app)
        screen = await open_details(app, call.account_id)
        positions = screen.query_one("#positions", LiveTable)
        assert app.desk is not None
        margin = app.desk.account(call.account_id)
        assert margin is not None
        assert margin.positions
        await until(lambda: positions.row_count == len(margin.positions), what="positions")
        positions.scroll_visible(top=True, animate=False)
        await pilot.pause()
        lines = screen_lines(app)
        header = next(line for line in lines if " Symbol " in line)
        for label in ("Qty", f"MV {call.currency}", "Cure"):
            assert f" {label}" in header, label
        for key in positions.visible_keys():
            row = positions.get_row(key)
            assert row is not None
            cells = dict(zip((c.key for c in positions.columns), row.cells, strict=True))
            line = next(line for line in lines if f" {cells['symbol'].plain} " in line)
            # Every shown column's cell is on the line whole, in order: none cut.
            shown = [cells[column].plain.strip() for column in positions.shown_columns]
            assert re.search(r"\s+".join(map(re.escape, shown)), line), (shown, line)
            for column in ("qty", "mv", "cure"):
                assert cells[column].plain in line, (column, line)
        assert "…" not in "".join(lines)
        assert not positions.wide
        hidden = set(c.key for c in positions.columns) - set(positions.shown_columns)
        await pilot.press("w")  # the wide layout: every column, scrolled sideways
        assert positions.wide
        assert set(positions.shown_columns) >= hidden
        assert all(table.wide for table in screen.query(LiveTable))
