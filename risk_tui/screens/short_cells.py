"""The cells of the Short positions tab and of one stock's details: words, sort keys, columns."""


from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from rich.text import Text

from risk_tui.core.calendar import MARKET_TZ
from risk_tui.core.money import ZERO, format_money, format_ratio
from risk_tui.core.shorts import (
    Allocation,
    AllocationRule,
    ShortLine,
)
from risk_tui.screens.warnings import RISK_STYLE
from risk_tui.widgets.dialogs.formatting import RISK_LABEL, STATE_LABEL, format_quantity
from risk_tui.widgets.live_table import Column, RowData
from risk_tui.widgets.render import data_text

if TYPE_CHECKING:
    from risk_tui.config import Settings




def _number(cell: Text) -> tuple[int, Decimal]:
    """Sort a quantity or amount by value; words ('unknown', '—') sort below any number."""
    try:
        return (1, Decimal(cell.plain.replace(",", "").split()[0].rstrip("%")))
    except (InvalidOperation, ValueError, IndexError):
        return (0, ZERO)


def _shortfall(cell: Text) -> tuple[int, Decimal]:
    """A shortfall sorts descending as: real shortfalls by size, then unknown, then none."""
    plain = cell.plain.replace(",", "")
    try:
        value = Decimal(plain)
    except InvalidOperation:
        return (1, ZERO)  # unknown: no borrow record
    return (2, value) if value > 0 else (0, ZERO)


def _worth(cell: Text) -> tuple[int, Decimal]:
    """Shortfall value, descending: valued shortfalls by value, then shortfalls without a
    price or fx, then unknown shortfalls (no borrow record), then none."""
    plain = cell.plain.replace(",", "")
    try:
        value = Decimal(plain)
    except InvalidOperation:
        return (2, ZERO) if plain == NO_VALUE else (1, ZERO)
    return (3, value) if value > 0 else (0, ZERO)


NO_VALUE = "no price/fx"


def overview_columns(currency: str) -> tuple[Column, ...]:
    # What an 80-column terminal shows first: the shortfall, its worth, the borrow, the recall.
    return (
        # In declared order by priority; figures are never cut (`whole`).
        Column("symbol", "Symbol", max_width=12, frozen=True),
        Column("shortfall", "Shortfall", align="right", sort_key=_shortfall, whole=True),
        Column("value", f"Shortfall {currency}", align="right", sort_key=_worth, whole=True),
        Column("short", "Short qty", align="right", sort_key=_number, whole=True),
        Column("available", "Available", align="right", sort_key=_number, whole=True),
        Column("recalled", "Recalled", align="right", sort_key=_number, whole=True),
        Column("due", "Recall due", max_width=16),
        Column("clients", "Clients", align="right", sort_key=_number, max_width=7),
        Column("rate", "Rate", align="right", sort_key=_number, max_width=7),
        Column("name", "Name", max_width=24),
        Column("market", "Mkt", max_width=3),
    )


def market_date(line: ShortLine, now: datetime) -> date:
    """Today as the stock's market reads its calendar (UTC for an unknown stock)."""
    zone = MARKET_TZ[line.instrument.market] if line.instrument is not None else UTC
    moment = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    return moment.astimezone(zone).date()


def due_text(line: ShortLine, today: date) -> Text:
    borrow = line.borrow
    if borrow is None or borrow.recall_due is None:
        return Text("—")
    text = Text(f"{borrow.recall_due:%Y-%m-%d}")
    if borrow.recall_due < today:
        text.append(" PAST", style="bold")
    elif borrow.recall_due == today:
        text.append(" TODAY", style="bold")
    return text


def shortfall_text(line: ShortLine) -> Text:
    shortfall = line.shortfall
    if shortfall is None:
        return Text("unknown", style="bold")
    return Text(format_quantity(shortfall), style="bold" if shortfall > 0 else "")


def line_cells(line: ShortLine, today: date, reporting_currency: str) -> RowData:
    borrow = line.borrow
    instrument = line.instrument
    value = line.shortfall_value
    return RowData(
        (
            data_text(line.symbol),
            shortfall_text(line),
            Text(
                format_money(value, reporting_currency)
                if value is not None
                else ("—" if line.shortfall is None else NO_VALUE)
            ),
            Text(format_quantity(line.short_quantity)),
            Text(format_quantity(borrow.available)) if borrow else Text("no record", "bold"),
            Text(format_quantity(borrow.recall_quantity)) if borrow else Text("—"),
            due_text(line, today),
            Text(str(line.clients)),
            Text(format_ratio(borrow.rate) if borrow else "—"),
            data_text(instrument.name) if instrument else Text("not described by the feed"),
            Text(instrument.market.value if instrument else "—"),
        )
    )


def rule_of(settings: Settings) -> AllocationRule:
    return settings.shorts.allocation


def client_columns(currency: str) -> tuple[Column, ...]:
    return (
        Column("rank", "#", align="right", sort_key=_number, max_width=5, frozen=True),
        Column("account", "Account", max_width=12, frozen=True),
        Column("client", "Client", max_width=16),
        Column("risk", "Risk", max_width=11),
        Column("short", "Short qty", align="right", sort_key=_number, whole=True),
        Column("suggested", "To buy", align="right", sort_key=_number, whole=True),
        Column("deficit", f"Deficit {currency}", align="right", sort_key=_number, whole=True),
        Column("working", "Working", align="right", sort_key=_number, max_width=10),
        Column("call", "Call", max_width=12),
        Column("note", "Note", max_width=48),
    )


def allocation_cells(rank: int, allocation: Allocation, working: Decimal, currency: str) -> RowData:
    holder = allocation.holder
    level = holder.risk_level
    risk = (
        Text(RISK_LABEL[level], style=RISK_STYLE.get(level, ""))
        if level is not None
        else Text("no figures", style="bold")
    )
    if holder.call is not None:
        call = Text(STATE_LABEL[holder.call.state])
        note = Text("")
    else:
        call = Text("—")
        note = Text("not in call: override with a reason")
    if holder.unknown is not None:
        note = data_text(holder.unknown)
    deficit = (
        Text(format_money(holder.deficit_reporting, currency))
        if holder.deficit_reporting is not None
        else Text("unknown", style="bold")
    )
    suggested = allocation.suggested
    return RowData(
        (
            Text(str(rank)),
            data_text(holder.account_id),
            data_text(holder.client_name or "—"),
            risk,
            Text(format_quantity(holder.short_quantity)),
            Text(format_quantity(suggested), style="bold") if suggested > 0 else Text("—"),
            deficit,
            Text(format_quantity(working)) if working > 0 else Text(""),
            call,
            note,
        )
    )


