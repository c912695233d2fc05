"""Trading calendars for margin-call deadlines: exchange_calendars plus the broker's overrides.

A deadline is T, T+1, ... in the account's market calendar up to a cut-off time. The
maintained library knows each exchange's holidays for a bounded range of years; the
override table (``risk_tui/data/calendar_overrides.toml``) adds ad-hoc closures such as
typhoon days, extra sessions, and whole years the library does not cover yet. A date
that neither covers raises ``CalendarNotCovered``: a wrong due date on a margin call is
worse than an error the operator sees.

Coverage is decided per day: inside the library's instantiated range the library's
sessions count, with ``closed``/``opened`` applied on top; outside it, a day is covered
only when its year is in the market's ``covered_years`` (weekdays are sessions, minus
``closed``, plus ``opened``).
"""

from __future__ import annotations

import re
import threading
import tomllib
import warnings
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from risk_tui.core.model import Market

MARKET_TZ: Mapping[Market, ZoneInfo] = MappingProxyType(
    {
        Market.HK: ZoneInfo("Asia/Hong_Kong"),
        Market.SG: ZoneInfo("Asia/Singapore"),
        Market.US: ZoneInfo("America/New_York"),
    }
)

# How a time on a market's clock is labelled (`14:16 HK`, `01:15 NY`). The US market's
# clock is New York's (the country has several zones; its exchanges keep New York time).
MARKET_CLOCK: Mapping[Market, str] = MappingProxyType(
    {Market.HK: "HK", Market.SG: "SG", Market.US: "NY"}
)

# Past calls are recomputed (history, snapshots), so the library is built a few years back.
DEFAULT_LIBRARY_START = date(2020, 1, 1)
# For calendars the library does not bound (XNYS), how far ahead its rules are trusted.
DEFAULT_UNBOUNDED_YEARS = 10

_ONE_DAY = timedelta(days=1)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_OVERRIDE_KEYS = frozenset({"source", "covered_years", "closed", "opened"})
_MIN_YEAR, _MAX_YEAR = 1900, 2999

_Fail = Callable[[str, str], "CalendarConfigError"]


# Regular closing times; half days (Lunar New Year's eve, Christmas eve) are not modelled.
MARKET_CLOSE: Mapping[Market, time] = MappingProxyType(
    {Market.HK: time(16, 0), Market.SG: time(17, 0), Market.US: time(16, 0)}
)


# Regular opening times and midday breaks (exchange_calendars' XHKG, XSES, XNYS hours).
MARKET_OPEN: Mapping[Market, time] = MappingProxyType(
    {Market.HK: time(9, 30), Market.SG: time(9, 0), Market.US: time(9, 30)}
)
MARKET_BREAK: Mapping[Market, tuple[time, time]] = MappingProxyType(
    {Market.HK: (time(12, 0), time(13, 0))}
)


class Phase(StrEnum):
    """Where a market's trading day stands at one moment."""

    OPEN = "open"
    BREAK = "break"  # the midday break (HK's lunch)
    BEFORE_OPEN = "before_open"  # a session day, before the open
    AFTER_CLOSE = "after_close"  # a session day, after the close
    WEEKEND = "weekend"
    HOLIDAY = "holiday"  # a weekday that is not a session
    UNKNOWN = "unknown"  # no calendar covers the day


@dataclass(frozen=True, slots=True)
class MarketPhase:
    """A market's phase now and how long until it changes: to the close (open), to the
    reopening (break), to the next open (before open, after close, weekend, holiday);
    None when no calendar covers the way there."""

    market: Market
    phase: Phase
    change_in: timedelta | None


class CalendarNotCovered(Exception):
    """No calendar (library or override table) vouches for this market and day."""

    def __init__(self, market: Market, day: date) -> None:
        self.market = market
        self.day = day
        super().__init__(
            f"{market.value} calendar does not cover {day.isoformat()}: "
            "add the year to the calendar overrides"
        )

    def __reduce__(self) -> tuple[type[CalendarNotCovered], tuple[Market, date]]:
        # Default pickling would pass the message back as `market`; an error raised in a
        # worker process must arrive with its real fields.
        return (CalendarNotCovered, (self.market, self.day))


class CalendarConfigError(Exception):
    """The override file is unreadable or malformed; the message is one line."""


@dataclass(frozen=True)
class MarketOverrides:
    """One market's entries in the override table."""

    covered_years: frozenset[int]
    closed: frozenset[date]
    opened: frozenset[date]
    source: str = ""


EMPTY_OVERRIDES = MarketOverrides(covered_years=frozenset(), closed=frozenset(), opened=frozenset())


def default_overrides_path() -> Path:
    """The override table shipped with the package (the broker edits or replaces it)."""
    return Path(__file__).resolve().parent.parent / "data" / "calendar_overrides.toml"


def load_overrides(path: Path) -> dict[Market, MarketOverrides]:
    """Read and validate an override table; every market gets an entry (empty if absent)."""
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except OSError as exc:
        raise CalendarConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CalendarConfigError(f"{path}: not valid TOML: {exc}") from exc

    result = {market: EMPTY_OVERRIDES for market in Market}
    for key, table in document.items():
        try:
            market = Market(key)
        except ValueError:
            known = ", ".join(m.value for m in Market)
            raise CalendarConfigError(
                f"{path}: {key}: unknown market (expected one of {known})"
            ) from None
        if not isinstance(table, dict):
            raise CalendarConfigError(f"{path}: {key}: expected a table like [{key}]")
        result[market] = _market_overrides(path, key, table)
    return result


def _market_overrides(path: Path, market_key: str, table: dict[str, Any]) -> MarketOverrides:
    def fail(key: str, problem: str) -> CalendarConfigError:
        return CalendarConfigError(f"{path}: {market_key}.{key}: {problem}")

    for key in table:
        if key not in _OVERRIDE_KEYS:
            expected = ", ".join(sorted(_OVERRIDE_KEYS))
            raise fail(key, f"unknown key (expected one of {expected})")

    source = table.get("source", "")
    if not isinstance(source, str):
        raise fail("source", f"expected a string, got {source!r}")

    years: set[int] = set()
    for index, year in enumerate(_list_of(table, "covered_years", fail)):
        # bool is an int subclass; `covered_years = [true]` is a typo, not year 1.
        if isinstance(year, bool) or not isinstance(year, int):
            raise fail(f"covered_years[{index}]", f"not a year {year!r}")
        if not _MIN_YEAR <= year <= _MAX_YEAR:
            raise fail(f"covered_years[{index}]", f"year out of range {year!r}")
        years.add(year)

    closed = _dates(table, "closed", fail)
    opened = _dates(table, "opened", fail)
    both = sorted(closed & opened)
    if both:
        raise fail("opened", f"{both[0].isoformat()} is also listed under closed")
    return MarketOverrides(
        covered_years=frozenset(years),
        closed=frozenset(closed),
        opened=frozenset(opened),
        source=source,
    )


def _list_of(table: dict[str, Any], key: str, fail: _Fail) -> list[Any]:
    value = table.get(key, [])
    if not isinstance(value, list):
        raise fail(key, f"expected a list, got {value!r}")
    return value


def _dates(table: dict[str, Any], key: str, fail: _Fail) -> set[date]:
    days: set[date] = set()
    for index, raw in enumerate(_list_of(table, key, fail)):
        day = _as_date(raw)
        if day is None:
            raise fail(f"{key}[{index}]", f"not a date {raw!r} (expected YYYY-MM-DD)")
        days.add(day)
    return days


def _as_date(raw: object) -> date | None:
    # A TOML datetime is a date subclass; a closure with a time of day is not a date.
    if isinstance(raw, datetime):
        return None
    if isinstance(raw, date):
        return raw
    if isinstance(raw, str) and _ISO_DATE.fullmatch(raw):
        try:
            return date.fromisoformat(raw)
        except ValueError:
            return None
    return None


@dataclass(frozen=True, slots=True)
class _MarketSessions:
    """One market's calendar as plain dates, so lookups never touch pandas."""

    sessions: list[date]  # sorted
    session_set: frozenset[date]
    coverage: list[tuple[date, date]]  # sorted, merged, inclusive
    coverage_starts: list[date]


class TradingCalendars:
    """Session lookups and margin-call deadlines for every market.

    Each market's calendar is built once, on first use (exchange_calendars takes about
    0.1 s per exchange); afterwards every call is a bisect over a list of dates.
    """

    def __init__(
        self,
        overrides: Mapping[Market, MarketOverrides],
        *,
        library_start: date = DEFAULT_LIBRARY_START,
        unbounded_years: int = DEFAULT_UNBOUNDED_YEARS,
        today: date | None = None,
    ) -> None:
        self._overrides = dict(overrides)
        self._library_start = library_start
        self._unbounded_years = unbounded_years
        self._today = today
        self._built: dict[Market, _MarketSessions] = {}
        # Textual thread workers and the engine may ask for the same market at once.
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: Path | None = None) -> TradingCalendars:
        """Calendars with the override table at `path` (default: the packaged one)."""
        return cls(load_overrides(path or default_overrides_path()))

    def is_session(self, market: Market, day: date) -> bool:
        cal = self._market(market)
        self._coverage_of(market, cal, day)
        return day in cal.session_set

    def session_on_or_after(self, market: Market, day: date) -> date:
        cal = self._market(market)
        _, covered_to = self._coverage_of(market, cal, day)
        index = bisect_left(cal.sessions, day)
        if index < len(cal.sessions) and cal.sessions[index] <= covered_to:
            return cal.sessions[index]
        raise CalendarNotCovered(market, covered_to + _ONE_DAY)

    def add_sessions(self, market: Market, day: date, n: int) -> date:
        """The n-th session after `day`, which must itself be a session (n = 0 gives `day`)."""
        if n < 0:
            raise ValueError(f"n must be zero or more, got {n}")
        cal = self._market(market)
        _, covered_to = self._coverage_of(market, cal, day)
        if day not in cal.session_set:
            raise ValueError(f"{day.isoformat()} is not a {market.value} session")
        index = bisect_left(cal.sessions, day) + n
        if index < len(cal.sessions) and cal.sessions[index] <= covered_to:
            return cal.sessions[index]
        raise CalendarNotCovered(market, covered_to + _ONE_DAY)

    def covered_until(self, market: Market, day: date) -> date:
        """The last day of the unbroken covered stretch containing `day`.

        Lets start-up warn that a market's calendar runs out soon, before any deadline
        needs it.
        """
        cal = self._market(market)
        return self._coverage_of(market, cal, day)[1]

    def deadline(
        self, market: Market, notice_at: datetime, trading_days: int, cutoff: time
    ) -> datetime:
        """When a call noticed at `notice_at` falls due, in the market's time zone.

        T is the notice's local date if it is a session, else the next session; the
        deadline is `cutoff` on the (trading_days - 1)-th session after T.
        """
        if notice_at.tzinfo is None or notice_at.utcoffset() is None:
            raise ValueError(f"notice_at must be timezone-aware, got {notice_at!r}")
        if trading_days < 1:
            raise ValueError(f"trading_days must be at least 1, got {trading_days}")
        if cutoff.tzinfo is not None:
            raise ValueError(f"cutoff is market local time and takes no tzinfo, got {cutoff!r}")
        zone = MARKET_TZ[market]
        notice_day = self.session_on_or_after(market, notice_at.astimezone(zone).date())
        last_day = self.add_sessions(market, notice_day, trading_days - 1)
        return datetime.combine(last_day, cutoff, tzinfo=zone)

    def time_to_close(self, market: Market, now: datetime) -> timedelta | None:
        """Time left to the regular close while the market is trading, else None (before
        the open, in the midday break, after the close, on a holiday or weekend, or on a
        day no calendar covers)."""
        phase = self.phase(market, now)
        return phase.change_in if phase.phase is Phase.OPEN else None

    def phase(self, market: Market, now: datetime) -> MarketPhase:
        """Where `market`'s trading day stands at `now`, from its calendar and hours."""
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError(f"now must be timezone-aware, got {now!r}")
        zone = MARKET_TZ[market]
        local = now.astimezone(zone)
        day = local.date()

        def at(clock: time, on: date = day) -> datetime:
            return datetime.combine(on, clock, tzinfo=zone)

        def until_open(after: date) -> timedelta | None:
            try:
                session = self.session_on_or_after(market, after)
            except CalendarNotCovered:
                return None
            return at(MARKET_OPEN[market], session) - local

        try:
            session_today = self.is_session(market, day)
        except CalendarNotCovered:
            return MarketPhase(market, Phase.UNKNOWN, None)
        if not session_today:
            kind = Phase.WEEKEND if day.weekday() >= 5 else Phase.HOLIDAY
            return MarketPhase(market, kind, until_open(day))
        if local < at(MARKET_OPEN[market]):
            return MarketPhase(market, Phase.BEFORE_OPEN, at(MARKET_OPEN[market]) - local)
        close = at(MARKET_CLOSE[market])
        if local >= close:
            return MarketPhase(market, Phase.AFTER_CLOSE, until_open(day + _ONE_DAY))
        lunch = MARKET_BREAK.get(market)
        if lunch is not None and at(lunch[0]) <= local < at(lunch[1]):
            return MarketPhase(market, Phase.BREAK, at(lunch[1]) - local)
        return MarketPhase(market, Phase.OPEN, close - local)

    def is_trading(self, market: Market, now: datetime) -> bool:
        """The market is in its regular session at `now` (not in its midday break)."""
        return self.phase(market, now).phase is Phase.OPEN

    def _coverage_of(self, market: Market, cal: _MarketSessions, day: date) -> tuple[date, date]:
        index = bisect_right(cal.coverage_starts, day) - 1
        if index >= 0:
            start, end = cal.coverage[index]
            if day <= end:
                return start, end
        raise CalendarNotCovered(market, day)

    @property
    def ready(self) -> bool:
        """Every market's sessions are built: no call here will stop for the library."""
        return all(market in self._built for market in Market)

    def prepare(self) -> None:
        """Build every market's sessions now (about 2 s of the calendar library), e.g.
        in a worker thread at start-up, rather than on the first call of a crash poll."""
        for market in Market:
            self._market(market)

    def _market(self, market: Market) -> _MarketSessions:
        cal = self._built.get(market)
        if cal is None:
            with self._lock:
                cal = self._built.get(market)
                if cal is None:
                    cal = self._build(market)
                    self._built[market] = cal
        return cal

    def _build(self, market: Market) -> _MarketSessions:
        overrides = self._overrides.get(market, EMPTY_OVERRIDES)
        library_range, library_sessions = self._library_sessions(market)

        intervals: list[tuple[date, date]] = []
        if library_range is not None:
            intervals.append(library_range)
        intervals.extend((date(y, 1, 1), date(y, 12, 31)) for y in overrides.covered_years)
        coverage = _merge(intervals)

        def covered_by_library(day: date) -> bool:
            return library_range is not None and library_range[0] <= day <= library_range[1]

        def covered(day: date) -> bool:
            return covered_by_library(day) or day.year in overrides.covered_years

        sessions = set(library_sessions)
        for year in overrides.covered_years:
            day = date(year, 1, 1)
            while day.year == year:
                if day.weekday() < 5 and not covered_by_library(day):
                    sessions.add(day)
                day += _ONE_DAY
        # Closures and extra sessions in years nobody covers are kept as data but cannot
        # make those years covered: one known holiday says nothing about the others.
        sessions.difference_update(d for d in overrides.closed if covered(d))
        sessions.update(d for d in overrides.opened if covered(d))

        return _MarketSessions(
            sessions=sorted(sessions),
            session_set=frozenset(sessions),
            coverage=coverage,
            coverage_starts=[start for start, _ in coverage],
        )

    def _library_sessions(self, market: Market) -> tuple[tuple[date, date] | None, list[date]]:
        # exchange_calendars 4.13 on pandas 3 emits pandas deprecation warnings on every
        # build; on an operator's terminal they would be printed over the TUI, and they
        # say nothing about the sessions, so they are silenced for the build only.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            return self._read_library(market)

    def _read_library(self, market: Market) -> tuple[tuple[date, date] | None, list[date]]:
        # Imported here: pandas and exchange_calendars take a while to import, and only
        # the first build of each market needs them.
        from exchange_calendars.exchange_calendar_xhkg import XHKGExchangeCalendar
        from exchange_calendars.exchange_calendar_xnys import XNYSExchangeCalendar
        from exchange_calendars.exchange_calendar_xses import XSESExchangeCalendar

        # The classes, not get_calendar(code): their bounds are needed before building.
        calendar_class = {
            Market.HK: XHKGExchangeCalendar,
            Market.SG: XSESExchangeCalendar,
            Market.US: XNYSExchangeCalendar,
        }[market]
        bound_min = calendar_class.bound_min()
        bound_max = calendar_class.bound_max()
        start = self._library_start
        if bound_min is not None:
            start = max(start, _to_date(bound_min))
        if bound_max is not None:
            end = _to_date(bound_max)
        else:
            today = self._today or datetime.now(UTC).date()
            end = date(today.year + self._unbounded_years, 12, 31)
        if start > end:
            return None, []
        calendar = calendar_class(start=start.isoformat(), end=end.isoformat())
        sessions: list[date] = [_to_date(ts) for ts in calendar.sessions]
        return (start, end), sessions


@dataclass(frozen=True, slots=True)
class DeadlineRule:
    """Where a margin call's deadline may fall in one market: on one of its trading
    sessions, at or before the call's cut-off time (`margin_call.cutoff_time`), on the
    market's clock — the same rule the desk's computed deadlines follow."""

    calendars: TradingCalendars
    market: Market
    cutoff: time

    @property
    def zone(self) -> ZoneInfo:
        return MARKET_TZ[self.market]

    def problem(self, deadline: datetime) -> str | None:
        """Why `deadline` is no valid deadline, offering the next valid one; None if it is."""
        local = deadline.astimezone(self.zone)
        market, clock = self.market.value, MARKET_CLOCK[self.market]
        try:
            session = self.calendars.is_session(self.market, local.date())
            if session and local.time() <= self.cutoff:
                return None
            offer = self.next_valid(deadline)
        except CalendarNotCovered as gap:
            return str(gap)
        why = f"is after the {self.cutoff:%H:%M} cut-off" if session else "is not a trading day"
        return (
            f"{local:%a %Y-%m-%d %H:%M} {clock} time {why} in {market}; the next valid "
            f"deadline is {offer:%a %Y-%m-%d %H:%M} {clock} time"
        )

    def next_valid(self, deadline: datetime) -> datetime:
        """The cut-off on the first session on or after `deadline`'s day (the next one, when
        `deadline` is past that day's cut-off)."""
        local = deadline.astimezone(self.zone)
        day = local.date()
        if self.calendars.is_session(self.market, day) and local.time() > self.cutoff:
            day += _ONE_DAY
        session = self.calendars.session_on_or_after(self.market, day)
        return datetime.combine(session, self.cutoff, tzinfo=self.zone)

    def sessions_from(self, moment: datetime, count: int) -> list[date]:
        """The market's next `count` sessions from `moment`'s day on (fewer where no
        calendar covers the days): what a deadline may be moved to."""
        days: list[date] = []
        start = moment.astimezone(self.zone).date()
        try:
            day = self.calendars.session_on_or_after(self.market, start)
            while len(days) < count:
                days.append(day)
                day = self.calendars.add_sessions(self.market, day, 1)
        except CalendarNotCovered:
            pass
        return days


def _to_date(timestamp: Any) -> date:
    """A pandas Timestamp (untyped here) as a plain date."""
    value = timestamp.date()
    if not isinstance(value, date):
        raise TypeError(f"expected a date from exchange_calendars, got {value!r}")
    return value


def _merge(intervals: list[tuple[date, date]]) -> list[tuple[date, date]]:
    merged: list[tuple[date, date]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1] + _ONE_DAY:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
