"""Issue 14 points 4 and 5 on screen: the header clock says its zone (the desk's, or UTC
on `z`), and tab 2 says when each market opens or closes, at fixed clocks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from textual.widgets import Static

from risk_tui.app import RiskApp
from risk_tui.config import load_settings
from risk_tui.core.roles import Role
from risk_tui.screens.warnings import WarningsPane
from tests.ui.conftest import CALENDARS

ISSUE = datetime(2026, 12, 7, 6, 16, tzinfo=UTC)  # Monday 14:16 in HK and SG, 01:16 in NY


def app_at(now: datetime, **desk: Any) -> RiskApp:
    defaults = load_settings(None, env={}, discover=False)
    settings = defaults.model_copy(
        update={
            "desk": defaults.desk.model_validate({**defaults.desk.model_dump(), **desk}),
            "operators": {"alice": Role.TRADER},
        }
    )

    def no_desk(actor: Any) -> Any:
        raise AssertionError("the header needs no desk")

    return RiskApp(settings, "alice", no_desk, clock=lambda: now)


async def test_the_header_clock_is_the_desks_zone_labelled_and_utc_on_z(
    fixed_app: Callable[..., RiskApp],
) -> None:
    app = fixed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()

        def header() -> str:
            return str(app.query_one("#top", Static).render())

        assert header().endswith("2026-11-23 10:15:00 SG")  # desk.timezone's default
        await pilot.press("z")
        assert header().endswith("2026-11-23 02:15:00 UTC")
        await pilot.press("z")
        assert header().endswith("2026-11-23 10:15:00 SG")


def test_the_header_clock_follows_desk_timezone() -> None:
    assert app_at(ISSUE, timezone="America/New_York")._top_line().plain.endswith(
        "  2026-12-07 01:16:00 NY"
    )
    assert app_at(ISSUE, timezone="Europe/London")._top_line().plain.endswith(
        "  2026-12-07 06:16:00 GMT"
    )
    hk_desk = app_at(ISSUE, reporting_currency="HKD", timezone="Asia/Hong_Kong")
    assert hk_desk._top_line().plain.endswith("  2026-12-07 14:16:00 HK")


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # The issue's minute: New York has not opened (it said "US closes in 14h 43m").
        (ISSUE, "HK closes in 1h 44m   SG closes in 2h 44m   US opens in 8h 14m"),
        # 12:20 in Hong Kong: its lunch break; Singapore trades through; in New York it
        # is still Sunday.
        (
            datetime(2026, 12, 7, 4, 20, tzinfo=UTC),
            "HK lunch, opens in 40m   SG closes in 4h 40m   US closed (weekend)",
        ),
        # 15:45 in New York (04:45 on Tuesday in Asia): New York in its last 20 minutes.
        (
            datetime(2026, 12, 7, 20, 45, tzinfo=UTC),
            "HK opens in 4h 45m   SG opens in 4h 15m   US closes in 15m — FLATTEN INTRADAY",
        ),
        # Christmas Day, 23:00 in Asia and 10:00 in New York: every market's holiday.
        (
            datetime(2026, 12, 25, 15, 0, tzinfo=UTC),
            "HK closed (holiday)   SG closed (holiday)   US closed (holiday)",
        ),
        # A Saturday, 23:00 in Asia and 10:00 in New York.
        (
            datetime(2026, 12, 5, 15, 0, tzinfo=UTC),
            "HK closed (weekend)   SG closed (weekend)   US closed (weekend)",
        ),
    ],
)
def test_tab_2_says_when_each_market_opens_or_closes(now: datetime, expected: str) -> None:
    CALENDARS.prepare()
    pane = WarningsPane(mode="intraday", calendars=CALENDARS)
    assert pane._clock_line(now).plain == expected


def test_a_toast_writes_raw_iso_times_on_the_desks_clock() -> None:
    """Toasts printed the desk's answers with raw ISO strings."""
    app = app_at(ISSUE)
    assert app.times("plan P1 scheduled for 2026-12-07T07:00:00+00:00") == (
        "plan P1 scheduled for 12-07 15:00 SG"
    )
    assert app.times("the execution time 2026-12-07T14:00:00+08:00 is not in the future") == (
        "the execution time 12-07 14:00 SG is not in the future"
    )


def test_an_approval_document_is_shown_in_one_zone_and_stored_as_written() -> None:
    """A deadline request stores the old deadline as `+00:00` and the new one as the
    operator typed it (`+08:00`); shown, both read on the account's market clock. The
    stored text, and so its hash, is what it was."""
    from risk_tui.core.calendar import MARKET_TZ
    from risk_tui.core.four_eyes import deadline_request, describe
    from risk_tui.core.model import Market
    from risk_tui.widgets.dialogs.approval import request_facts
    from tests.factories import TRADER
    from tests.factories import make_call as call_of

    call = call_of()
    new = datetime(2026, 11, 27, 15, tzinfo=MARKET_TZ[Market.SG])
    request = deadline_request(call, new, "client in hospital", TRADER, ISSUE)
    stored = (request.details["old_deadline"], request.details["new_deadline"])
    assert stored[0].endswith("+00:00")
    assert stored[1].endswith("+08:00")
    sg = MARKET_TZ[Market.SG]
    text = request_facts(request, zone=sg).plain
    assert "old_deadline: 2026-03-04 15:30:15 SG" in text
    assert "new_deadline: 2026-11-27 15:00 SG" in text
    assert "+00:00" not in text
    assert "+08:00" not in text
    assert "at 2026-12-07 14:16:00 SG" in text  # requested at
    assert describe(request, sg).startswith("deadline 2026-03-04 15:30 SG to 2026-11-27 15:00 SG")
    assert (request.details["old_deadline"], request.details["new_deadline"]) == stored
