"""The warnings tabs show a call's deadline as the time left, to the minute."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from risk_tui.screens.warnings import time_left

NOW = datetime(2026, 11, 23, 2, 15, tzinfo=UTC)


def test_time_left_in_days_and_hours_then_hours_and_minutes_red_under_a_day() -> None:
    assert time_left(NOW + timedelta(days=1, hours=3, minutes=59), NOW).plain == "1d 3h"
    assert str(time_left(NOW + timedelta(days=1), NOW).style) == ""
    under = time_left(NOW + timedelta(hours=23, minutes=5), NOW)
    assert under.plain == "23h 05m"
    assert "red" in str(under.style)
    assert time_left(NOW + timedelta(minutes=12, seconds=59), NOW).plain == "12m"


def test_a_deadline_passed_is_overdue_and_none_says_so() -> None:
    overdue = time_left(NOW - timedelta(seconds=1), NOW)
    assert overdue.plain == "OVERDUE"
    assert "bold" in str(overdue.style)
    assert time_left(None, NOW).plain == "none"


def test_the_time_left_moves_as_time_passes() -> None:
    deadline = NOW + timedelta(hours=2)
    assert time_left(deadline, NOW).plain == "2h 00m"
    assert time_left(deadline, NOW + timedelta(minutes=61)).plain == "59m"
