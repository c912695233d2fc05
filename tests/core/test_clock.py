"""The one time formatter (issue 14 point 4) and the market-session words (point 5).

Every moment here is fixed: nothing depends on the wall clock or on today's market hours.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from risk_tui.core.calendar import (
    MARKET_TZ,
    MarketPhase,
    Phase,
    TradingCalendars,
    default_overrides_path,
    load_overrides,
)
from risk_tui.core.clock import (
    format_span,
    home_zone_name,
    market_time,
    phase_words,
    stamp,
    times_in,
    utc_time,
    zone_label,
    zone_named,
)
from risk_tui.core.model import Market

HK, SG, US = Market.HK, Market.SG, Market.US
# The minute of the issue: 01:16 in New York is 14:16 in Hong Kong and Singapore.
ISSUE = datetime(2026, 12, 7, 6, 16, tzinfo=UTC)


@pytest.fixture(scope="module")
def calendars() -> TradingCalendars:
    return TradingCalendars(load_overrides(default_overrides_path()))


def utc(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def local(market: Market, year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=MARKET_TZ[market])


# --- the formatter ---------------------------------------------------------------------


def test_one_minute_reads_on_each_market_clock_with_its_market() -> None:
    assert market_time(ISSUE, HK, now=ISSUE) == "12-07 14:16 HK"
    assert market_time(ISSUE, SG, now=ISSUE) == "12-07 14:16 SG"
    assert market_time(ISSUE, US, now=ISSUE) == "12-07 01:16 NY"
    assert utc_time(ISSUE, now=ISSUE) == "12-07 06:16 UTC"


def test_new_york_follows_daylight_saving() -> None:
    summer = utc(2026, 7, 1, 14, 0)  # EDT, UTC-4
    winter = utc(2026, 1, 5, 14, 0)  # EST, UTC-5
    assert market_time(summer, US, now=summer) == "07-01 10:00 NY"
    assert market_time(winter, US, now=winter) == "01-05 09:00 NY"
    # The night the clocks go forward (8 March 2026, 02:00 EST → 03:00 EDT).
    assert market_time(utc(2026, 3, 8, 6, 59), US, now=ISSUE) == "03-08 01:59 NY"
    assert market_time(utc(2026, 3, 8, 7, 0), US, now=ISSUE) == "03-08 03:00 NY"
    assert zone_label(ZoneInfo("America/New_York")) == "NY"


def test_the_year_shows_when_it_is_not_this_year_or_asked_for() -> None:
    assert market_time(utc(2025, 12, 30, 2, 0), HK, now=ISSUE) == "2025-12-30 10:00 HK"
    assert market_time(ISSUE, HK) == "2026-12-07 14:16 HK"  # no `now`: whole
    assert market_time(ISSUE, HK, now=ISSUE, full=True) == "2026-12-07 14:16 HK"
    assert market_time(ISSUE, HK, now=ISSUE, seconds=True) == "12-07 14:16:00 HK"
    # "This year" is the market's: at 1 January 01:00 in Hong Kong (still 31 December
    # in New York), a time of 31 December in Hong Kong is last year's there.
    new_year = utc(2026, 12, 31, 17, 0)
    assert market_time(new_year, HK, now=new_year) == "01-01 01:00 HK"
    assert market_time(new_year, US, now=new_year) == "12-31 12:00 NY"
    assert market_time(utc(2026, 12, 31, 15, 0), HK, now=new_year) == "2026-12-31 23:00 HK"
    assert market_time(utc(2026, 12, 31, 15, 0), US, now=new_year) == "12-31 10:00 NY"


def test_a_naive_time_is_utc_and_none_is_a_dash() -> None:
    naive = ISSUE.replace(tzinfo=None)  # as storage may hand it back
    assert market_time(naive, HK, now=ISSUE) == "12-07 14:16 HK"
    assert market_time(None, HK) == "—"


def test_labels_of_zones_that_are_no_market() -> None:
    assert zone_label(UTC) == "UTC"
    assert zone_label(ZoneInfo("Etc/UTC")) == "UTC"
    assert zone_label(ZoneInfo("Europe/London"), utc(2026, 7, 1, 12, 0)) == "BST"
    assert zone_label(ZoneInfo("Europe/London"), ISSUE) == "GMT"
    assert zone_label(ZoneInfo("Asia/Kolkata"), ISSUE) == "IST"
    # A zone whose abbreviation is only a number says its offset.
    assert zone_label(ZoneInfo("Asia/Dubai"), ISSUE) == "UTC+04:00"
    assert zone_label(timezone(timedelta(hours=-3, minutes=-30))) == "UTC-03:30"
    assert stamp(ISSUE, ZoneInfo("Asia/Dubai"), now=ISSUE) == "12-07 10:16 UTC+04:00"


def test_zone_names_and_the_home_zone() -> None:
    assert zone_named("Asia/Hong_Kong").key == "Asia/Hong_Kong"
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        zone_named("Mars/Olympus")
    assert home_zone_name("SGD") == "Asia/Singapore"
    assert home_zone_name("USD") == "America/New_York"
    assert home_zone_name("EUR") == "UTC"


def test_raw_iso_times_in_a_text_are_written_in_one_zone() -> None:
    """An approval document mixes +00:00 and +08:00; shown, it reads in one zone."""
    text = "moved from 2026-12-09T07:00:00+00:00 to 2026-12-10T15:00:00+08:00 (2026-12-10)"
    assert times_in(text, MARKET_TZ[HK], now=ISSUE) == (
        "moved from 12-09 15:00 HK to 12-10 15:00 HK (2026-12-10)"
    )
    assert times_in("at 2026-12-07T06:16:30Z", UTC, now=ISSUE) == "at 12-07 06:16:30 UTC"
    assert times_in("naive 2026-12-07T06:16:00 stays", UTC) == "naive 2026-12-07T06:16:00 stays"


def test_spans() -> None:
    assert format_span(timedelta(days=2, minutes=29)) == "2d 00h 29m"
    assert format_span(timedelta(hours=14, minutes=43, seconds=59)) == "14h 43m"
    assert format_span(timedelta(minutes=5)) == "5m"
    assert format_span(timedelta(minutes=-5)) == "0m"


# --- market sessions -------------------------------------------------------------------


def words(calendars: TradingCalendars, market: Market, now: datetime) -> str:
    return phase_words(calendars.phase(market, now))


def test_the_issue_minute_new_york_has_not_opened(calendars: TradingCalendars) -> None:
    """Tab 2 said "US closes in 14h 43m" at 01:16 New York time."""
    assert words(calendars, US, ISSUE) == "US opens in 8h 14m"
    assert calendars.time_to_close(US, ISSUE) is None
    assert words(calendars, HK, ISSUE) == "HK closes in 1h 44m"
    assert words(calendars, SG, ISSUE) == "SG closes in 2h 44m"


@pytest.mark.parametrize(
    ("market", "moment", "expected", "phase"),
    [
        (HK, local(HK, 2026, 12, 7, 9, 0), "HK opens in 30m", Phase.BEFORE_OPEN),
        (HK, local(HK, 2026, 12, 7, 10, 0), "HK closes in 6h 00m", Phase.OPEN),
        (HK, local(HK, 2026, 12, 7, 12, 20), "HK lunch, opens in 40m", Phase.BREAK),
        (HK, local(HK, 2026, 12, 7, 13, 0), "HK closes in 3h 00m", Phase.OPEN),
        (HK, local(HK, 2026, 12, 7, 16, 0), "HK opens in 17h 30m", Phase.AFTER_CLOSE),
        (HK, local(HK, 2026, 12, 25, 10, 0), "HK closed (holiday)", Phase.HOLIDAY),
        (SG, local(SG, 2026, 12, 7, 12, 30), "SG closes in 4h 30m", Phase.OPEN),
        (US, local(US, 2026, 11, 26, 11, 0), "US closed (holiday)", Phase.HOLIDAY),
        (US, local(US, 2026, 12, 5, 11, 0), "US closed (weekend)", Phase.WEEKEND),
        (US, local(US, 2026, 12, 4, 16, 30), "US opens in 2d 17h 00m", Phase.AFTER_CLOSE),
        (US, local(US, 2026, 7, 1, 15, 59), "US closes in 1m", Phase.OPEN),
    ],
)
def test_session_words_at_fixed_clocks(
    calendars: TradingCalendars, market: Market, moment: datetime, expected: str, phase: Phase
) -> None:
    found = calendars.phase(market, moment)
    assert found.phase is phase
    assert phase_words(found) == expected
    assert calendars.is_trading(market, moment) is (phase is Phase.OPEN)


def test_a_day_no_calendar_covers_is_said(calendars: TradingCalendars) -> None:
    far = utc(2999, 6, 1, 3, 0)
    assert calendars.phase(HK, far).phase is Phase.UNKNOWN
    assert words(calendars, HK, far) == "HK hours unknown (no calendar)"
    assert phase_words(MarketPhase(HK, Phase.HOLIDAY, None)) == "HK closed (holiday)"


def test_a_client_message_writes_the_market_time_in_words() -> None:
    from risk_tui.core.messages import Language, deadline_words

    assert deadline_words(ISSUE, SG, Language.EN) == "by 2026-12-07 14:16 SG time"
    assert deadline_words(ISSUE, US, Language.EN) == "by 2026-12-07 01:16 NY time"


def test_a_us_deadline_rule_speaks_of_new_york_time(calendars: TradingCalendars) -> None:
    from datetime import time

    from risk_tui.core.calendar import DeadlineRule
    from risk_tui.core.clock import clock_name

    assert clock_name(US) == "NY time"
    problem = DeadlineRule(calendars, US, time(15, 0)).problem(local(US, 2026, 12, 5, 15, 0))
    assert problem == (
        "Sat 2026-12-05 15:00 NY time is not a trading day in US; the next valid deadline "
        "is Mon 2026-12-07 15:00 NY time"
    )
