"""The desk's clocks: the wall clock it reads, and the one way every time is written.

Stored times are UTC. Every time the terminal, a dialog, a toast or a document shows
carries its zone: a market's own clock says its market (`12-07 14:16 HK`,
`12-07 01:15 NY`), the desk's clock (`desk.timezone`) its label, UTC says UTC. The
screens, widgets and the report call these functions and format no time themselves.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from risk_tui.core.calendar import MARKET_CLOCK, MARKET_TZ, MarketPhase, Phase
from risk_tui.core.model import Market

# A desk's home zone by default: its reporting currency's market (else UTC).
_HOME_MARKET: Mapping[str, Market] = MappingProxyType(
    {"HKD": Market.HK, "SGD": Market.SG, "USD": Market.US}
)

NONE = "—"  # a time that is not known


def utc_now() -> datetime:
    return datetime.now(UTC)


def aware(at: datetime) -> datetime:
    """A naive time is taken as UTC: storage always hands back UTC."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def zone_named(name: str) -> ZoneInfo:
    """The IANA zone `name` ("Asia/Singapore", "UTC"); ValueError naming it if unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (an IANA name, e.g. \"Asia/Singapore\" or \"UTC\")"
        ) from None


def home_zone_name(reporting_currency: str) -> str:
    """The default `desk.timezone`: the reporting currency's market's zone, else UTC."""
    market = _HOME_MARKET.get(reporting_currency)
    return "UTC" if market is None else MARKET_TZ[market].key


def zone_label(zone: tzinfo, at: datetime | None = None) -> str:
    """How a time in `zone` is labelled: a market's own label for a market's zone (`SG`,
    `HK`, `NY`), `UTC`, the zone's abbreviation where it has a word (`GMT`, `CET`), else
    its offset (`UTC+05:30`)."""
    key = getattr(zone, "key", None)
    if zone is UTC or key in ("UTC", "Etc/UTC", "Etc/UCT", "UCT", "Zulu", "Etc/Zulu"):
        return "UTC"
    for market, market_zone in MARKET_TZ.items():
        if key == market_zone.key:
            return MARKET_CLOCK[market]
    moment = aware(at or utc_now()).astimezone(zone)
    name = moment.tzname() or ""
    if name.isalpha():
        return name
    offset = moment.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def stamp(
    at: datetime | None,
    zone: tzinfo,
    *,
    now: datetime | None = None,
    seconds: bool = False,
    full: bool = False,
) -> str:
    """`12-07 14:16 SG`: `at` on `zone`'s clock with its label; the year too when it is
    not `now`'s year (as `ls -l` does) or `full`; `—` when unknown."""
    if at is None:
        return NONE
    local = aware(at).astimezone(zone)
    this_year = now is not None and aware(now).astimezone(zone).year == local.year
    day = "%m-%d" if this_year and not full else "%Y-%m-%d"
    clock = "%H:%M:%S" if seconds else "%H:%M"
    return f"{local.strftime(f'{day} {clock}')} {zone_label(zone, local)}"


def market_time(
    at: datetime | None,
    market: Market,
    *,
    now: datetime | None = None,
    seconds: bool = False,
    full: bool = False,
) -> str:
    """`12-07 14:16 HK`, `12-07 01:15 NY`: on the market's own clock."""
    return stamp(at, MARKET_TZ[market], now=now, seconds=seconds, full=full)


def clock_name(market: Market) -> str:
    """`NY time`: what a field or a heading on a market's clock says it is in."""
    return f"{MARKET_CLOCK[market]} time"


def utc_time(
    at: datetime | None, *, now: datetime | None = None, seconds: bool = False, full: bool = False
) -> str:
    """`12-07 06:16 UTC`."""
    return stamp(at, UTC, now=now, seconds=seconds, full=full)


def clock_only(at: datetime, zone: tzinfo) -> str:
    """`14:16 SG`: the time of day alone, for a line that already says the day."""
    local = aware(at).astimezone(zone)
    return f"{local:%H:%M} {zone_label(zone, local)}"


def format_span(span: timedelta) -> str:
    """`2d 03h 15m`, `3h 05m`, `12m`: a length of time, to the minute (never negative)."""
    minutes = max(0, int(span.total_seconds()) // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days}d {hours:02d}h {minutes:02d}m"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m"


def phase_words(phase: MarketPhase) -> str:
    """`US opens in 8h 14m`, `HK closes in 2h 05m`, `HK lunch, opens in 35m`,
    `SG closed (holiday)`, `US closed (weekend)`: a market's session in a few words."""
    market, left = phase.market.value, phase.change_in
    if phase.phase is Phase.OPEN and left is not None:
        return f"{market} closes in {format_span(left)}"
    if phase.phase is Phase.BREAK and left is not None:
        return f"{market} lunch, opens in {format_span(left)}"
    if phase.phase in (Phase.BEFORE_OPEN, Phase.AFTER_CLOSE) and left is not None:
        return f"{market} opens in {format_span(left)}"
    if phase.phase in (Phase.WEEKEND, Phase.HOLIDAY):
        return f"{market} closed ({phase.phase.value})"
    if phase.phase is Phase.UNKNOWN:
        return f"{market} hours unknown (no calendar)"
    return f"{market} closed"


def times_in(text: str, zone: tzinfo, *, now: datetime | None = None, full: bool = False) -> str:
    """`text` with every ISO-8601 time in it (`2026-12-07T06:16:00+00:00`) written in
    `zone` with its label: for texts made elsewhere (a desk's note, a document) that carry
    raw ISO times. Anything else in `text` is kept as it is."""
    return _ISO_TIME.sub(lambda found: _one(found.group(0), zone, now, full), text)


def _one(raw: str, zone: tzinfo, now: datetime | None, full: bool) -> str:
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return raw
    if moment.tzinfo is None:
        return raw  # a naive time says no zone: it cannot be placed on a clock
    return stamp(moment, zone, now=now, seconds=moment.second != 0, full=full)


_ISO_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:\d{2})"
)
