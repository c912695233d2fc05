"""How dialogs and the details screen write times, quantities, prices and risk in words.

Money is never formatted here: that is `risk_tui.core.money.format_money`. Times are
written by `risk_tui.core.clock`, as the account's market reads its clock and labelled
with it, so a Singapore deadline reads `15:00 SG` whichever desk looks at it.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from risk_tui.core.calendar import MARKET_TZ
from risk_tui.core.clock import aware as aware  # re-exported: the screens import it from here
from risk_tui.core.clock import format_span, market_time
from risk_tui.core.lifecycle import CallState, EndReason, MarginCall
from risk_tui.core.margin import RiskLevel
from risk_tui.core.model import Market
from risk_tui.core.money import format_money

# The level in one word, the same everywhere on screen (rows, details, dialogs, the
# summary, `report --format table`); csv and json keep the machine names (SPEC).
RISK_LABEL: dict[RiskLevel, str] = {
    RiskLevel.FORCE_CALL: "FORCE",
    RiskLevel.MARGIN_CALL: "CALL",
    RiskLevel.WATCH: "WATCH",
    RiskLevel.SAFE: "SAFE",
    RiskLevel.INCOMPLETE: "INCOMPLETE",
}

# The level's word and what it means, so a level never depends on colour (NO_COLOR
# terminals, 16 colours).
RISK_WORDS: dict[RiskLevel, str] = {
    level: f"{RISK_LABEL[level]} ({meaning})"
    for level, meaning in (
        (RiskLevel.SAFE, "equity at or above IM"),
        (RiskLevel.WATCH, "equity below IM"),
        (RiskLevel.MARGIN_CALL, "equity below MM"),
        (RiskLevel.FORCE_CALL, "equity below FM"),
        (RiskLevel.INCOMPLETE, "data incomplete: not safe"),
    )
}

# The call's state in words, short (rows, the summary); `STATE_WORDS` says more.
STATE_LABEL: dict[CallState, str] = {
    CallState.TRIGGERED: "triggered",
    CallState.NOTIFIED: "notified",
    CallState.FORCE_CALL: "force call",
    CallState.ENDED: "ended",
}

STATE_WORDS: dict[CallState, str] = {
    CallState.TRIGGERED: "triggered, not yet notified",
    CallState.NOTIFIED: "notified",
    CallState.FORCE_CALL: "force call",
    CallState.ENDED: "ended",
}

# How an ended call's reason reads (the History tab's narrow column has its own words).
END_WORDS: dict[EndReason, str] = {
    EndReason.MET_BY_DEPOSIT: "met by deposit",
    EndReason.MET: "met",
    EndReason.LIQUIDATED: "liquidated",
    EndReason.CLOSED: "closed",
}

_FX_PLACES = Decimal("0.000001")


def local_time(at: datetime | None, market: Market, *, zone: bool = True) -> str:
    """`2024-05-06 15:00 SG` on the market's clock, labelled with it (`core.clock`); `—`
    if None. zone=False: unlabelled, only as the text of an input whose label says the
    market (the dialogs' `HH:MM or YYYY-MM-DD HH:MM` fields parse it back)."""
    if not zone:
        return "—" if at is None else f"{aware(at).astimezone(MARKET_TZ[market]):%Y-%m-%d %H:%M}"
    return market_time(at, market, full=True)


def format_elapsed(span: timedelta) -> str:
    """`2d 03h 15m`, `3h 05m`, `12m`: time since a trigger, to the minute."""
    return format_span(span)


def plural(count: int, one: str, many: str | None = None) -> str:
    """`1 call`, `2 calls`, `1,234 calls` (`many` when not `one` + "s")."""
    return f"{count:,} {one if count == 1 else (many or one + 's')}"


def format_quantity(quantity: Decimal) -> str:
    """Shares with thousands separators: `1,000`, `-500`, `0.5` for a fraction."""
    if quantity == quantity.to_integral_value():
        return f"{quantity.to_integral_value():,}"
    return f"{quantity.normalize():,f}"


def format_price(price: Decimal) -> str:
    """A price as quoted (its own precision), grouped: `19.50`, `1,234.5`."""
    return f"{price:,f}"


def format_fx(rate: Decimal) -> str:
    """An fx rate to six decimal places at most: inverse rates carry 40 digits."""
    if rate == 1:
        return "1"
    text = f"{rate.quantize(_FX_PLACES):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def risk_words(level: RiskLevel) -> str:
    return RISK_WORDS[level]


def state_words(call: MarginCall) -> str:
    words = STATE_WORDS[call.state]
    if call.state is CallState.ENDED and call.end_reason is not None:
        words = f"ended ({END_WORDS[call.end_reason]})"
    return words


def parse_quantity(raw: str) -> Decimal | None:
    """What the operator typed as a number of shares (`1,000` allowed); None if not a number."""
    cleaned = raw.strip().replace(",", "").replace("_", "").replace(" ", "")
    if not cleaned:
        return None
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def parse_local_datetime(raw: str, market: Market, now: datetime) -> datetime | str:
    """`HH:MM` (today on the market's clock) or `YYYY-MM-DD HH:MM`; an error text otherwise."""
    zone = MARKET_TZ[market]
    text = raw.strip().replace("T", " ")
    if not text:
        return "enter a time as HH:MM or a date and time as YYYY-MM-DD HH:MM"
    parts = text.split()
    try:
        if len(parts) == 1:
            day: date = aware(now).astimezone(zone).date()
            clock = time.fromisoformat(parts[0])
        elif len(parts) == 2:
            day = date.fromisoformat(parts[0])
            clock = time.fromisoformat(parts[1])
        else:
            raise ValueError(text)
    except ValueError:
        return f"{raw.strip()!r} is not HH:MM or YYYY-MM-DD HH:MM"
    return datetime.combine(day, clock.replace(second=0, microsecond=0), tzinfo=zone)


def signed_money(amount: Decimal | None, currency: str) -> str:
    """`+1,015.00` / `-525.00`; `—` when unknown."""
    text = format_money(amount, currency)
    return f"+{text}" if amount is not None and amount > 0 else text


def market_stamp(at: datetime | None, call: MarginCall, now: datetime | None = None) -> str:
    """`11-21 10:30 SG` in the current year, `2025-12-30 10:00 SG` before (as `ls -l`
    does), on the call's market clock."""
    return market_time(at, call.market, now=now)
