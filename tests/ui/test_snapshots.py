"""Screen snapshots of every tab at 80×24 and 160×50, on the seed desk with a fixed clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from risk_tui.app import TABS, RiskApp
from risk_tui.widgets.live_table import LiveTable
from tests.ui.helpers import desk_of
from tests.waiting import until

SIZES = [(80, 24), (160, 50)]


async def _loaded(pilot: Any) -> None:
    table = pilot.app.query_one("#warnings-pane-table", LiveTable)
    await until(lambda: table.row_count >= 4, what="the seed desk")
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("tab", range(1, len(TABS) + 1), ids=[t for t, _ in TABS])
def test_tab(
    snap_compare: Any, fixed_app: Callable[..., RiskApp], tab: int, size: tuple[int, int]
) -> None:
    async def run_before(pilot: Any) -> None:
        await _loaded(pilot)
        await pilot.press(str(tab))
        await pilot.pause()

    assert snap_compare(fixed_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_help(snap_compare: Any, fixed_app: Callable[..., RiskApp], size: tuple[int, int]) -> None:
    async def run_before(pilot: Any) -> None:
        await _loaded(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(fixed_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_exceptions_tab_with_a_marked_call(
    snap_compare: Any, fixed_app: Callable[..., RiskApp], size: tuple[int, int]
) -> None:
    async def run_before(pilot: Any) -> None:
        await _loaded(pilot)
        app = pilot.app
        call = desk_of(app).engine.open_calls["A1001"]
        await desk_of(app).call_actions.add_remark(
            call.call_id, "debt only, no positions left", exception=True, actor=app.actor
        )
        await pilot.press("5")
        table = app.query_one("#exceptions-pane-table", LiveTable)
        await until(lambda: table.row_count >= 1, what="the marked call on the Exceptions tab")
        await pilot.pause()

    assert snap_compare(fixed_app(), terminal_size=size, run_before=run_before)
