"""Moving a call's deadline and closing a call: the dialogs that ask for four-eyes approval.

Closing asks for an end reason from a fixed list plus a note (issue 13 §9). A deadline may
only fall on one of the market's trading sessions by the cut-off (issue 13 §7: a Sunday on
an HK call was accepted); the dialog lists the next trading days and offers the next valid
time when refusing one.
"""

from __future__ import annotations

from datetime import datetime, time

import pytest
from textual.widgets import Input, RadioButton, RadioSet

from risk_tui.core.calendar import (
    MARKET_TZ,
    DeadlineRule,
    TradingCalendars,
    default_overrides_path,
    load_overrides,
)
from risk_tui.core.close_reasons import CloseReason
from risk_tui.core.lifecycle import MarginCall
from risk_tui.core.model import Market
from risk_tui.widgets.dialogs import AutoLiquidationDialog
from risk_tui.widgets.dialogs.call_change import CloseCallDialog, MoveDeadlineDialog
from tests.factories import BookFigures, make_call
from tests.ui.test_dialogs import (
    TRADER,
    Host,
    problems_text,
    seed_book,
    seed_margin,
    static_text,
    type_into,
)

HKT = MARKET_TZ[Market.HK]
NOW = datetime(2026, 12, 10, 10, 30, tzinfo=HKT)  # a Thursday morning in Hong Kong
SUNDAY = "2026-12-13 15:00"
SUNDAY_REFUSED = (
    "Error: New deadline: Sun 2026-12-13 15:00 HK time is not a trading day in HK; the next "
    "valid deadline is Mon 2026-12-14 15:00 HK time"
)


@pytest.fixture(scope="module")
def rule() -> DeadlineRule:
    calendars = TradingCalendars(load_overrides(default_overrides_path()))
    return DeadlineRule(calendars, Market.HK, time(15, 0))


def hk_call() -> MarginCall:
    return make_call(
        "H2001",
        call_id="MC20261209-H2001-0001",
        market=Market.HK,
        currency="HKD",
        triggered_at=datetime(2026, 12, 9, 9, 5, tzinfo=HKT),
        deadline=datetime(2026, 12, 11, 15, 0, tzinfo=HKT),
    )


async def test_the_deadline_dialog_lists_the_markets_next_trading_days(rule: DeadlineRule) -> None:
    dialog = MoveDeadlineDialog(hk_call(), TRADER, NOW, rule)
    async with Host(dialog).run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert static_text(dialog, "#trading-days") == (
            "HK trading days: Thu 10 Dec, Fri 11 Dec, Mon 14 Dec, Tue 15 Dec, Wed 16 Dec, … "
            "(by 15:00 HK time)"
        )


async def test_a_sunday_deadline_is_refused_with_the_next_valid_time(rule: DeadlineRule) -> None:
    dialog = MoveDeadlineDialog(hk_call(), TRADER, NOW, rule)
    app = Host(dialog)
    async with app.run_test(size=(80, 24)) as pilot:
        await type_into(pilot, dialog.query_one("#new-deadline", Input), SUNDAY)
        await type_into(pilot, dialog.query_one("#reason", Input), "client abroad")
        await pilot.press("ctrl+r", "ctrl+s")
        await pilot.pause()
        assert not dialog.reviewing
        assert SUNDAY_REFUSED in problems_text(dialog)
        # The offered time is accepted.
        await type_into(pilot, dialog.query_one("#new-deadline", Input), "2026-12-14 15:00")
        await pilot.press("ctrl+r", "ctrl+s")
        await pilot.pause()
    assert app.results == [(datetime(2026, 12, 14, 15, 0, tzinfo=HKT), "client abroad")]


async def test_a_deadline_after_the_cutoff_is_refused(rule: DeadlineRule) -> None:
    dialog = MoveDeadlineDialog(hk_call(), TRADER, NOW, rule)
    app = Host(dialog)
    async with app.run_test(size=(80, 24)) as pilot:
        await type_into(pilot, dialog.query_one("#new-deadline", Input), "2026-12-11 16:30")
        await type_into(pilot, dialog.query_one("#reason", Input), "client abroad")
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert not dialog.reviewing
        assert "Fri 2026-12-11 16:30 HK time is after the 15:00 cut-off in HK" in problems_text(
            dialog
        )
    assert app.results == []


async def test_the_auto_liquidation_dialog_refuses_a_sunday_deadline_too(
    rule: DeadlineRule,
) -> None:
    book = seed_book()
    call = make_call("A1001", deadline=datetime(2026, 12, 11, 15, 0, tzinfo=MARKET_TZ[Market.SG]))
    sg_rule = DeadlineRule(rule.calendars, Market.SG, time(15, 0))
    dialog = AutoLiquidationDialog(
        call, seed_margin(book), TRADER, NOW, figures=BookFigures(book), rule=sg_rule
    )
    app = Host(dialog)
    async with app.run_test(size=(100, 40)) as pilot:
        await type_into(pilot, dialog.query_one("#new-deadline", Input), SUNDAY)
        await type_into(pilot, dialog.query_one("#deadline-reason", Input), "client abroad")
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert not dialog.reviewing
        assert (
            "Error: Move deadline: Sun 2026-12-13 15:00 SG time is not a trading day in SG; "
            "the next valid deadline is Mon 2026-12-14 15:00 SG time"
        ) in problems_text(dialog)
    assert app.results == []


# --- closing a call: an end reason from the list, and a note ---------------------------------


async def test_closing_asks_for_an_end_reason_from_the_list_and_a_note() -> None:
    dialog = CloseCallDialog(hk_call(), TRADER)
    app = Host(dialog)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        labels = [str(button.label) for button in dialog.query(RadioButton)]
        assert labels == [
            "met by deposit",
            "met by sale",
            "client paid elsewhere",
            "written off",
            "entered in error",
        ]
        assert dialog.query_one("#end-reason", RadioSet).pressed_button is None  # none chosen
        await type_into(pilot, dialog.query_one("#reason", Input), "client bankrupt")
        await pilot.press("ctrl+r", "ctrl+s")
        await pilot.pause()
        assert not dialog.reviewing
        assert "Error: End reason: choose one from the list" in problems_text(dialog)
        dialog.query_one("#end-reason", RadioSet).focus()
        await pilot.press("down", "down", "down", "space")  # the fourth: written off
        await pilot.press("ctrl+r")
        await pilot.pause()
        review = static_text(dialog, "#review-text")
        assert "End reason: written off\nNote: client bankrupt" in review
        await pilot.press("ctrl+s")
        await pilot.pause()
    assert app.results == [(CloseReason.WRITTEN_OFF, "client bankrupt")]


async def test_closing_without_a_note_is_refused() -> None:
    dialog = CloseCallDialog(hk_call(), TRADER)
    app = Host(dialog)
    async with app.run_test(size=(80, 24)) as pilot:
        dialog.query_one("#end-reason", RadioSet).focus()
        await pilot.press("down", "space")
        await pilot.press("ctrl+r", "ctrl+s")
        await pilot.pause()
        assert not dialog.reviewing
        assert "Error: Note: say what happened" in problems_text(dialog)
    assert app.results == []
