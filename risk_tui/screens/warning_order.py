"""How the warnings tabs order their rows: sort values read from the desk's own figures.

A figure column sorts by the figure the desk computed, never by a number parsed back
from the text shown: money by its value in the desk's reporting currency (the row's
`reporting_rate`, the feed's fx, as the totals convert), times by the instant (a
deadline in New York and one in Hong Kong compare as instants, not as local text).
The default order is by urgency: force calls first (largest amount first: they are
due now), then margin calls by deadline, then by amount, largest first; then open calls
whose figures moved back above MM; incomplete accounts without a call come last.

Every value is an `int`, so the live table keeps its packed-integer view entries
(`widgets.table_model`): money is the exact Decimal scaled by 10**12 and truncated
(order-preserving; amounts closer than 10**-12 of a unit keep their arrival order). A
row without a value — no fx rate into the reporting currency, no figures — sorts as
`NO_VALUE`, below every figure: apart, at the end when the largest come first, never as
zero; the tab says how many (`apart`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from risk_tui.core.margin import MarginFigures, RiskLevel
from risk_tui.core.view import WarningRow

MONEY_PLACES = 12
"""Sort precision of a converted amount, in decimal places of the reporting currency."""
_BOUND = 1 << 200
NO_VALUE = -_BOUND
"""The sort value of a row without the figure: below every real one."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_TIME_BITS = 64  # microseconds since 1970, offset to be non-negative (to year ~294,000)
_TIME_OFFSET = 1 << 62
_AMOUNT_BITS = 202  # an amount key, offset to be non-negative: 0 ≤ _BOUND - value < 2**202

# Urgency tiers, most urgent first.
_TIER = {
    RiskLevel.FORCE_CALL: 0,
    RiskLevel.MARGIN_CALL: 1,
    RiskLevel.WATCH: 2,
    RiskLevel.SAFE: 2,
    RiskLevel.INCOMPLETE: 2,
}
_NO_CALL_TIER = 3


def amount_value(amount: Decimal | None) -> int:
    """An amount's sort value (already in the reporting currency); `NO_VALUE` for None."""
    if amount is None or not amount.is_finite():
        return NO_VALUE
    value = int(amount.scaleb(MONEY_PLACES))
    return max(NO_VALUE + 1, min(_BOUND, value))


def time_value(moment: datetime | None) -> int:
    """An instant's sort value, in microseconds; `NO_VALUE` for None."""
    if moment is None:
        return NO_VALUE
    return (moment - _EPOCH) // _MICROSECOND


def _figures(record: Any) -> MarginFigures | None:
    return record.shown_figures if isinstance(record, WarningRow) else None


def _money(read: Any) -> Any:
    """The sort value of one figure column, converted into the reporting currency."""

    def value(record: Any) -> int:
        figures = _figures(record)
        if figures is None:
            return NO_VALUE
        return amount_value(record.in_reporting(read(figures)))

    return value


equity = _money(lambda figures: figures.equity)
initial_margin = _money(lambda figures: figures.im)
maintenance_margin = _money(lambda figures: figures.mm)
force_margin = _money(lambda figures: figures.fm)


def call_amount(record: Any) -> int:
    """The call amount in the reporting currency (the desk converted it once, per row)."""
    if isinstance(record, WarningRow):
        return amount_value(record.call_amount_reporting)
    return NO_VALUE


def net_asset_ratio(record: Any) -> int:
    figures = _figures(record)
    return amount_value(None if figures is None else figures.net_asset_ratio)


def triggered(record: Any) -> int:
    return time_value(record.call.triggered_at) if isinstance(record, WarningRow) else NO_VALUE


def elapsed(record: Any) -> int:
    """Time since the trigger: the later the trigger, the shorter."""
    if not isinstance(record, WarningRow):
        return NO_VALUE
    return -time_value(record.call.triggered_at)


def deadline(record: Any) -> int:
    return time_value(record.call.deadline) if isinstance(record, WarningRow) else NO_VALUE


def urgency(record: Any) -> int:
    """The default order, ascending: (tier, deadline, amount largest first) in one int.

    A force call is due now: its deadline does not order it. A call without a deadline
    (the calendar did not cover it) comes first in its tier. An open call whose figures
    cannot be computed keeps the urgency of its level as last decided.
    """
    if not isinstance(record, WarningRow):
        return _NO_CALL_TIER << (_TIME_BITS + _AMOUNT_BITS)
    call = record.call
    level = record.risk_level if record.figures_current else call.risk_level
    tier = _TIER.get(level, 2)
    due = 0
    if tier != 0 and call.deadline is not None:
        due = time_value(call.deadline) + _TIME_OFFSET
    largest_first = _BOUND - amount_value(record.call_amount_reporting)
    return (((tier << _TIME_BITS) | due) << _AMOUNT_BITS) | largest_first


URGENCY_LABEL = "urgency"
"""How the header names the default order."""


def apart(records: Iterable[Any], column: str) -> int:
    """How many of `records` have no value in money column `column`: they sort apart.

    Read from what the desk published (no fx rate, no figures), without converting."""
    if column not in MONEY_COLUMNS:
        return 0
    figures = column != "call_amount"  # the other money columns need the figures too
    return sum(
        1
        for record in records
        if not isinstance(record, WarningRow)
        or record.reporting_rate is None
        or (figures and record.shown_figures is None)
    )


SORT_VALUES = {
    "triggered": triggered,
    "elapsed": elapsed,
    "deadline": deadline,
    "equity": equity,
    "im": initial_margin,
    "mm": maintenance_margin,
    "fm": force_margin,
    "call_amount": call_amount,
    "nar": net_asset_ratio,
}
MONEY_COLUMNS = frozenset({"equity", "im", "mm", "fm", "call_amount"})
