"""Trading calendars and margin-call deadlines: library sessions, overrides, coverage errors.

Every date asserted here was checked against exchange_calendars 4.13.2's sessions
(XHKG, XSES, XNYS) or the packaged override table.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from risk_tui.core.calendar import (
    MARKET_TZ,
    CalendarConfigError,
    CalendarNotCovered,
    DeadlineRule,
    MarketOverrides,
    TradingCalendars,
    default_overrides_path,
    load_overrides,
)
from risk_tui.core.model import Market
from tests.factories import naive

HK, SG, US = Market.HK, Market.SG, Market.US
CUTOFF = time(15, 0)


@pytest.fixture(scope="module")
def calendars() -> TradingCalendars:
    return TradingCalendars(load_overrides(default_overrides_path()))


def local(market: Market, year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=MARKET_TZ[market])


def due(calendars: TradingCalendars, market: Market, notice_at: datetime) -> datetime:
    return calendars.deadline(market, notice_at, 3, CUTOFF)


# --- Hong Kong ---------------------------------------------------------------------


def test_hk_lunar_new_year_2026_skips_the_holidays(calendars: TradingCalendars) -> None:
    # XHKG: sessions Fri 13 Feb, Mon 16 Feb (LNY eve), then Fri 20 Feb; 17-19 closed.
    assert not calendars.is_session(HK, date(2026, 2, 17))
    assert not calendars.is_session(HK, date(2026, 2, 19))
    assert due(calendars, HK, local(HK, 2026, 2, 16, 10, 0)) == local(HK, 2026, 2, 23, 15, 0)
    assert due(calendars, HK, local(HK, 2026, 2, 13, 10, 0)) == local(HK, 2026, 2, 20, 15, 0)


def test_hk_lunar_new_year_2027(calendars: TradingCalendars) -> None:
    # XHKG: Fri 5 Feb is the last session before LNY; Mon 8 and Tue 9 Feb are closed.
    assert due(calendars, HK, local(HK, 2027, 2, 5, 9, 30)) == local(HK, 2027, 2, 11, 15, 0)


def test_friday_notice_falls_due_on_tuesday(calendars: TradingCalendars) -> None:
    deadline = due(calendars, HK, local(HK, 2026, 7, 3, 11, 0))
    assert deadline == local(HK, 2026, 7, 7, 15, 0)
    assert deadline.date().weekday() == 1


def test_saturday_notice_counts_from_monday(calendars: TradingCalendars) -> None:
    assert calendars.session_on_or_after(HK, date(2026, 7, 4)) == date(2026, 7, 6)
    assert due(calendars, HK, local(HK, 2026, 7, 4, 10, 0)) == local(HK, 2026, 7, 8, 15, 0)


def test_notice_day_is_the_local_date_in_the_market(calendars: TradingCalendars) -> None:
    # Fri 23:30 UTC is already Saturday 07:30 in Hong Kong.
    notice = datetime(2026, 7, 3, 23, 30, tzinfo=UTC)
    assert due(calendars, HK, notice) == local(HK, 2026, 7, 8, 15, 0)


def test_deadline_is_at_the_cutoff_in_the_market_zone(calendars: TradingCalendars) -> None:
    deadline = calendars.deadline(HK, local(HK, 2026, 7, 3, 11, 0), 3, time(16, 30))
    assert deadline.tzinfo == MARKET_TZ[HK]
    assert deadline.time() == time(16, 30)
    assert deadline.utcoffset() == timedelta(hours=8)
    assert deadline.astimezone(UTC) == datetime(2026, 7, 7, 8, 30, tzinfo=UTC)


def test_one_trading_day_is_the_notice_day_itself(calendars: TradingCalendars) -> None:
    assert calendars.deadline(HK, local(HK, 2026, 7, 3, 11, 0), 1, CUTOFF) == local(
        HK, 2026, 7, 3, 15, 0
    )


def test_typhoon_closure_override_moves_the_deadline() -> None:
    typhoon = MarketOverrides(
        covered_years=frozenset(), closed=frozenset({date(2026, 7, 7)}), opened=frozenset()
    )
    with_typhoon = TradingCalendars({HK: typhoon})
    assert not with_typhoon.is_session(HK, date(2026, 7, 7))
    # Fri 3 Jul: T = Fri, T+1 = Mon 6, T+2 = Wed 8 instead of Tue 7.
    assert due(with_typhoon, HK, local(HK, 2026, 7, 3, 11, 0)) == local(HK, 2026, 7, 8, 15, 0)


def test_extra_session_override_counts() -> None:
    saturday = MarketOverrides(
        covered_years=frozenset(), closed=frozenset(), opened=frozenset({date(2026, 7, 4)})
    )
    cal = TradingCalendars({HK: saturday})
    assert cal.is_session(HK, date(2026, 7, 4))
    assert due(cal, HK, local(HK, 2026, 7, 3, 11, 0)) == local(HK, 2026, 7, 6, 15, 0)


# --- where a moved deadline may fall -------------------------------------------------


def test_a_sunday_deadline_is_refused_with_the_next_session_offered(
    calendars: TradingCalendars,
) -> None:
    rule = DeadlineRule(calendars, HK, CUTOFF)
    problem = rule.problem(local(HK, 2026, 12, 13, 15, 0))
    assert problem == (
        "Sun 2026-12-13 15:00 HK time is not a trading day in HK; the next valid deadline "
        "is Mon 2026-12-14 15:00 HK time"
    )
    assert rule.next_valid(local(HK, 2026, 12, 13, 15, 0)) == local(HK, 2026, 12, 14, 15, 0)


def test_a_deadline_after_the_cutoff_is_refused_with_the_next_session_offered(
    calendars: TradingCalendars,
) -> None:
    rule = DeadlineRule(calendars, HK, CUTOFF)
    problem = rule.problem(local(HK, 2026, 12, 11, 15, 1))  # a Friday, a minute late
    assert problem is not None
    assert "Fri 2026-12-11 15:01 HK time is after the 15:00 cut-off in HK" in problem
    assert problem.endswith("the next valid deadline is Mon 2026-12-14 15:00 HK time")


def test_a_deadline_on_a_session_by_the_cutoff_is_valid_in_any_zone(
    calendars: TradingCalendars,
) -> None:
    rule = DeadlineRule(calendars, HK, CUTOFF)
    assert rule.problem(local(HK, 2026, 12, 14, 15, 0)) is None
    assert rule.problem(local(HK, 2026, 12, 14, 9, 30)) is None
    assert rule.problem(datetime(2026, 12, 14, 7, 0, tzinfo=UTC)) is None  # 15:00 in HK
    # Sunday 23:00 in London is Monday 07:00 in Hong Kong: the market's clock decides.
    assert rule.problem(datetime(2026, 12, 13, 23, 0, tzinfo=UTC)) is None


def test_a_holiday_deadline_is_refused_and_the_trading_days_skip_it(
    calendars: TradingCalendars,
) -> None:
    rule = DeadlineRule(calendars, HK, CUTOFF)
    problem = rule.problem(local(HK, 2026, 12, 25, 12, 0))  # Christmas Day
    assert problem is not None
    assert "is not a trading day" in problem
    assert problem.endswith("Mon 2026-12-28 15:00 HK time")
    days = rule.sessions_from(local(HK, 2026, 12, 23, 10, 0), 4)
    assert days == [date(2026, 12, 23), date(2026, 12, 24), date(2026, 12, 28), date(2026, 12, 29)]


def test_a_deadline_no_calendar_covers_is_refused_not_accepted(
    calendars: TradingCalendars,
) -> None:
    rule = DeadlineRule(calendars, SG, CUTOFF)
    problem = rule.problem(local(SG, 2031, 3, 3, 15, 0))
    assert problem is not None
    assert "SG calendar does not cover 2031-03-03" in problem


# --- United States -----------------------------------------------------------------


def test_us_thanksgiving_2026(calendars: TradingCalendars) -> None:
    # XNYS: Thu 26 Nov 2026 closed; Wed 25, Fri 27, Mon 30 are sessions.
    assert not calendars.is_session(US, date(2026, 11, 26))
    deadline = due(calendars, US, local(US, 2026, 11, 25, 10, 0))
    assert deadline == local(US, 2026, 11, 30, 15, 0)
    assert deadline.utcoffset() == timedelta(hours=-5)  # EST in late November


def test_us_evening_notice_in_utc_is_still_wednesday_in_new_york(
    calendars: TradingCalendars,
) -> None:
    notice = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)  # Wed 25 Nov 21:00 in New York
    assert due(calendars, US, notice) == local(US, 2026, 11, 30, 15, 0)


def test_us_is_covered_ten_years_ahead() -> None:
    cal = TradingCalendars({}, today=date(2026, 1, 1))
    assert cal.covered_until(US, date(2026, 5, 1)) == date(2036, 12, 31)
    with pytest.raises(CalendarNotCovered):
        cal.is_session(US, date(2037, 1, 2))


# --- Singapore ---------------------------------------------------------------------


def test_sg_2026_comes_from_the_library(calendars: TradingCalendars) -> None:
    # XSES: Chinese New Year Tue 17 and Wed 18 Feb 2026 closed.
    assert not calendars.is_session(SG, date(2026, 2, 17))
    assert due(calendars, SG, local(SG, 2026, 2, 16, 10, 0)) == local(SG, 2026, 2, 20, 15, 0)
    assert TradingCalendars({}).is_session(SG, date(2026, 2, 19))


def test_sg_2027_is_covered_only_by_the_override_file(calendars: TradingCalendars) -> None:
    with pytest.raises(CalendarNotCovered):
        TradingCalendars({}).is_session(SG, date(2027, 2, 9))
    assert not calendars.is_session(SG, date(2027, 2, 8))  # in lieu of Sunday CNY
    assert calendars.is_session(SG, date(2027, 2, 9))
    # Fri 5 Feb: T+1 skips the weekend and Mon 8 Feb.
    assert due(calendars, SG, local(SG, 2027, 2, 5, 10, 0)) == local(SG, 2027, 2, 10, 15, 0)


def test_sg_packaged_2027_holidays(calendars: TradingCalendars) -> None:
    weekday_holidays = [
        date(2027, 1, 1),
        date(2027, 2, 8),
        date(2027, 3, 10),
        date(2027, 3, 26),
        date(2027, 5, 17),
        date(2027, 5, 20),
        date(2027, 8, 9),
        date(2027, 10, 29),
    ]
    for day in weekday_holidays:
        assert day.weekday() < 5
        assert not calendars.is_session(SG, day), day
    assert calendars.is_session(SG, date(2027, 12, 24))
    assert not calendars.is_session(SG, date(2027, 12, 25))


def test_deadline_crosses_from_library_into_override_year(calendars: TradingCalendars) -> None:
    # Thu 31 Dec 2026 (library), Fri 1 Jan 2027 New Year (override), Mon 4, Tue 5.
    assert due(calendars, SG, local(SG, 2026, 12, 31, 10, 0)) == local(SG, 2027, 1, 5, 15, 0)


def test_uncovered_year_raises_naming_market_and_date(calendars: TradingCalendars) -> None:
    with pytest.raises(CalendarNotCovered) as caught:
        calendars.is_session(SG, date(2028, 3, 10))
    assert caught.value.market is SG
    assert caught.value.day == date(2028, 3, 10)
    assert str(caught.value) == (
        "SG calendar does not cover 2028-03-10: add the year to the calendar overrides"
    )


def test_deadline_running_past_coverage_raises(calendars: TradingCalendars) -> None:
    # Thu 30 Dec 2027, Fri 31 Dec 2027, then 2028 which nobody covers.
    with pytest.raises(CalendarNotCovered) as caught:
        due(calendars, SG, local(SG, 2027, 12, 30, 10, 0))
    assert caught.value.day == date(2028, 1, 1)
    with pytest.raises(CalendarNotCovered):
        calendars.session_on_or_after(SG, date(2028, 1, 1))


def test_before_the_library_start_is_not_covered(calendars: TradingCalendars) -> None:
    with pytest.raises(CalendarNotCovered):
        calendars.is_session(HK, date(2019, 12, 31))


def test_closure_in_an_uncovered_year_does_not_cover_it() -> None:
    lone = MarketOverrides(
        covered_years=frozenset(), closed=frozenset({date(2028, 1, 3)}), opened=frozenset()
    )
    with pytest.raises(CalendarNotCovered):
        TradingCalendars({SG: lone}).is_session(SG, date(2028, 1, 4))


# --- argument checks ---------------------------------------------------------------


def test_naive_notice_is_rejected(calendars: TradingCalendars) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        calendars.deadline(HK, naive(2026, 7, 3, 11, 0), 3, CUTOFF)


def test_add_sessions_requires_a_session(calendars: TradingCalendars) -> None:
    assert calendars.add_sessions(HK, date(2026, 7, 3), 0) == date(2026, 7, 3)
    assert calendars.add_sessions(HK, date(2026, 7, 3), 2) == date(2026, 7, 7)
    with pytest.raises(ValueError, match="not a HK session"):
        calendars.add_sessions(HK, date(2026, 7, 4), 1)
    with pytest.raises(ValueError, match="n must be zero or more, got -1"):
        calendars.add_sessions(HK, date(2026, 7, 3), -1)


# --- override file -----------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "calendar_overrides.toml"
    path.write_text(text, encoding="utf-8")
    return path


def config_error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(CalendarConfigError) as caught:
        load_overrides(path)
    message = str(caught.value)
    assert str(path) in message
    assert "\n" not in message
    return message


def test_override_file_parses(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[HK]\nsource = "HKEX typhoon notice"\nclosed = ["2026-07-07", 2026-07-08]\n'
        "[SG]\ncovered_years = [2027]\nopened = []\n",
    )
    loaded = load_overrides(path)
    assert loaded[HK].closed == {date(2026, 7, 7), date(2026, 7, 8)}
    assert loaded[HK].source == "HKEX typhoon notice"
    assert loaded[SG].covered_years == {2027}
    assert loaded[US] == MarketOverrides(frozenset(), frozenset(), frozenset())


def test_bad_date_names_file_and_key(tmp_path: Path) -> None:
    message = config_error(
        tmp_path, '[SG]\nclosed = ["2027-01-01", "2027-02-08", "2027-03-10", "x"]\n'
    )
    assert "SG.closed[3]: not a date 'x'" in message


def test_impossible_date_is_rejected(tmp_path: Path) -> None:
    assert "HK.opened[0]: not a date '2026-02-30'" in config_error(
        tmp_path, '[HK]\nopened = ["2026-02-30"]\n'
    )


def test_datetime_is_not_a_date(tmp_path: Path) -> None:
    assert "HK.closed[0]: not a date" in config_error(
        tmp_path, "[HK]\nclosed = [2026-07-07T09:00:00]\n"
    )


def test_unknown_market(tmp_path: Path) -> None:
    assert "JP: unknown market" in config_error(tmp_path, "[JP]\nclosed = []\n")


def test_unknown_key(tmp_path: Path) -> None:
    assert "SG.holidays: unknown key" in config_error(tmp_path, "[SG]\nholidays = []\n")


def test_wrong_types(tmp_path: Path) -> None:
    assert "SG.closed: expected a list" in config_error(tmp_path, '[SG]\nclosed = "2027-01-01"\n')
    assert "SG.covered_years[0]: not a year '2027'" in config_error(
        tmp_path, '[SG]\ncovered_years = ["2027"]\n'
    )
    assert "SG.covered_years[0]: not a year True" in config_error(
        tmp_path, "[SG]\ncovered_years = [true]\n"
    )
    assert "SG.source: expected a string" in config_error(tmp_path, "[SG]\nsource = 1\n")
    assert "SG: expected a table" in config_error(tmp_path, "SG = 1\n")


def test_closed_and_opened_same_day(tmp_path: Path) -> None:
    assert "HK.opened: 2026-07-07 is also listed under closed" in config_error(
        tmp_path, '[HK]\nclosed = ["2026-07-07"]\nopened = ["2026-07-07"]\n'
    )


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    assert "not valid TOML" in config_error(tmp_path, "[SG\n")
    missing = tmp_path / "nope.toml"
    with pytest.raises(CalendarConfigError, match=r"nope\.toml: cannot read"):
        load_overrides(missing)


def test_packaged_file_says_it_must_be_confirmed() -> None:
    text = default_overrides_path().read_text(encoding="utf-8")
    assert "TENTATIVE" in text
    assert "SGX's trading calendar circular" in text


def test_lookups_after_the_first_build_are_fast(calendars: TradingCalendars) -> None:
    import time as clock

    notice = local(SG, 2026, 12, 31, 10, 0)
    due(calendars, SG, notice)
    started = clock.perf_counter()
    for _ in range(10_000):
        due(calendars, SG, notice)
    # ~4 µs each here; the bound only catches a rebuild or pandas in the hot path.
    assert clock.perf_counter() - started < 1.0
