"""`risk-tui report`: the current warnings printed as table, csv or json.

Money is printed rounded to the currency's minor unit by `core.money` (the same figures
the screen shows). Text from the feed or the database goes through the one sanitiser:
`table` and `csv` via `sanitize`/`data_text`; `json` is ASCII-escaped, so no raw
control byte can reach a terminal and the data stay exact.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from risk_tui.core.calendar import MARKET_TZ
from risk_tui.core.clock import market_time, utc_time
from risk_tui.core.money import format_money, format_ratio, money_str
from risk_tui.core.text import sanitize
from risk_tui.core.view import DeskView, WarningRow
from risk_tui.widgets.dialogs.formatting import RISK_LABEL, STATE_WORDS, plural
from risk_tui.widgets.render import data_text

FORMATS = ("table", "csv", "json")

CSV_FIELDS = (
    "call_id",
    "account_id",
    "client_name",
    "kind",
    "market",
    "risk_level",
    "state",
    "currency",
    "equity",
    "im",
    "mm",
    "fm",
    "call_amount",
    "trigger_call_amount",
    "net_asset_ratio",
    "triggered_at",
    "deadline",
    "deadline_error",
    "long_outstanding",
    "exception",
    "remark",
)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def warning_record(row: WarningRow) -> dict[str, Any]:
    """One warning as SPEC.md's report record: money as rounded decimal strings."""
    call, margin = row.call, row.margin
    ccy = call.currency

    def money(value: Decimal | None) -> str | None:
        return None if value is None else money_str(value, ccy)

    return {
        "call_id": call.call_id,
        "account_id": call.account_id,
        "client_name": call.client_name,
        "kind": str(call.kind),
        "market": str(call.market),
        "risk_level": str(margin.risk_level if margin else call.risk_level),
        "state": str(call.state),
        "currency": ccy,
        "equity": money(margin.equity) if margin else None,
        "im": money(margin.im) if margin else None,
        "mm": money(margin.mm) if margin else None,
        "fm": money(margin.fm) if margin else None,
        "call_amount": money(call.call_amount),
        "trigger_call_amount": money(call.trigger_call_amount),
        "net_asset_ratio": (
            str(round(margin.net_asset_ratio, 6))
            if margin and margin.net_asset_ratio is not None
            else None
        ),
        "triggered_at": _iso(call.triggered_at),
        # In the market's zone whichever way the call was loaded: storage keeps instants.
        "deadline": _iso(
            call.deadline.astimezone(MARKET_TZ[call.market]) if call.deadline else None
        ),
        "deadline_error": call.deadline_error,
        "long_outstanding": row.long_outstanding,
        "exception": call.exception,
        "remark": call.remark,
    }


def report_object(view: DeskView) -> dict[str, Any]:
    totals = view.totals
    return {
        "as_of": _iso(view.as_of),
        "stale": view.stale,
        "totals": {
            "currency": totals.currency,
            "call_amount": money_str(totals.call_amount, totals.currency),
            "long_outstanding_amount": money_str(totals.long_outstanding_amount, totals.currency),
            "count": totals.count,
            "unconverted_call_ids": list(totals.unconverted),
        },
        "warnings": [warning_record(row) for row in view.warnings],
        "incomplete": [
            {"account_id": row.account_id, "client_name": row.client_name, "reason": row.reason}
            for row in view.incomplete
        ],
        "rejected_records": view.rejected_records,
    }


def render_json(view: DeskView) -> str:
    return json.dumps(report_object(view), indent=2, ensure_ascii=True) + "\n"


def render_csv(view: DeskView) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in view.warnings:
        record = warning_record(row)
        writer.writerow(
            {
                key: sanitize(value) if isinstance(value, str) else value
                for key, value in record.items()
                if key in CSV_FIELDS
            }
        )
    return out.getvalue()


# The table's columns, most important first: at a narrow width the last ones are left
# out (as on screen); a cell is shown whole or its column not at all.
_COLUMNS: tuple[tuple[str, Literal["left", "right"]], ...] = (
    ("Account", "left"),
    ("Level", "left"),
    ("Call amount", "right"),
    ("Deadline", "left"),
    ("Client", "left"),
    ("State", "left"),
    ("Triggered", "left"),
    ("Equity", "right"),
    ("MM", "right"),
    ("IM", "right"),
    ("FM", "right"),
    ("NAR", "right"),
    ("Kind", "left"),
    ("Exc", "left"),
    ("Remark", "left"),
)
MIN_COLUMNS = 4  # account, level, call amount, deadline: shown at any width
DEFAULT_WIDTH = 240  # piped, with no COLUMNS: every column


def _cells(row: WarningRow) -> tuple[Text, ...]:
    """One warning's cells in `_COLUMNS` order: words, not enums; money with its currency;
    times on the account's market clock, naming the market."""
    call, margin = row.call, row.margin
    ccy = call.currency
    level = margin.risk_level if margin else call.risk_level
    state = STATE_WORDS[call.state] + (" (long outstanding)" if row.long_outstanding else "")
    deadline = (
        Text(market_time(call.deadline, call.market, full=True))
        if call.deadline
        else Text(f"none: {sanitize(call.deadline_error or '')}")
    )
    return (
        data_text(call.account_id),
        Text(RISK_LABEL[level]),
        Text(format_money(call.call_amount, ccy, code=True)),
        deadline,
        data_text(call.client_name),
        Text(state),
        Text(market_time(call.triggered_at, call.market, full=True)),
        Text(format_money(margin.equity if margin else None, ccy)),
        Text(format_money(margin.mm if margin else None, ccy)),
        Text(format_money(margin.im if margin else None, ccy)),
        Text(format_money(margin.fm if margin else None, ccy)),
        Text(format_ratio(margin.net_asset_ratio if margin else None)),
        Text(call.kind.value),
        Text("yes" if call.exception else ""),
        data_text(call.remark),
    )


def _table(rows: list[tuple[Text, ...]], count: int) -> Table:
    table = Table(title=None, show_lines=False, header_style="bold")
    for name, justify in _COLUMNS[:count]:
        table.add_column(name, justify=justify, no_wrap=True)
    for cells in rows:
        table.add_row(*cells[:count])
    return table


def _fitting_table(rows: list[tuple[Text, ...]], width: int) -> Table:
    """The table with as many columns, in priority order, as fit in `width` whole.

    Each column's natural width is measured once (its widest cell or header); the table
    is that plus one space each side of a cell and a rule between and around columns.
    """
    natural = [
        max([cell_len(name), *(cells[index].cell_len for cells in rows)])
        for index, (name, _) in enumerate(_COLUMNS)
    ]
    count = len(_COLUMNS)
    while count > MIN_COLUMNS and sum(natural[:count]) + 3 * count + 1 > width:
        count -= 1
    return _table(rows, count)


def render_table(view: DeskView, *, width: int | None = None, color: bool = False) -> str:
    """A human-readable report `width` columns wide (else `DEFAULT_WIDTH`): the warnings
    with the most important columns that fit whole, then the incomplete accounts."""
    width = width or DEFAULT_WIDTH
    rows = [_cells(row) for row in view.warnings]
    out = io.StringIO()
    console = Console(
        file=out,
        width=width,
        force_terminal=color,
        color_system="standard" if color else None,
        no_color=not color,
        highlight=False,
        markup=False,
        emoji=False,
    )
    totals = view.totals
    state = "STALE" if view.stale else "live"
    as_of = utc_time(view.as_of, full=True, seconds=True) if view.as_of else "never"
    console.print(
        Text(
            f"Feed {state}, as of {as_of}. {plural(totals.count, 'open call')}, total "
            f"{format_money(totals.call_amount, totals.currency, code=True)}, long outstanding "
            f"{format_money(totals.long_outstanding_amount, totals.currency, code=True)}."
        )
    )
    if totals.unconverted:
        console.print(
            Text(f"Not in the totals (no fx into {totals.currency}): {len(totals.unconverted)}")
        )
    console.print(_fitting_table(rows, width))
    if view.incomplete:
        console.print(Text("Incomplete (figures cannot be computed, never shown as safe):"))
        for gap in view.incomplete:
            line = Text("  ")
            line.append_text(data_text(gap.account_id))
            line.append(" ")
            line.append_text(data_text(gap.client_name))
            line.append(": ")
            line.append_text(data_text(gap.reason))
            console.print(line)
    if view.rejected_records:
        console.print(Text(f"Feed records rejected: {view.rejected_records}"))
    return out.getvalue()


def render(view: DeskView, fmt: str, *, width: int | None = None) -> str:
    """The report in `fmt`; a table fits `width` columns (csv and json are not cut)."""
    if fmt == "json":
        return render_json(view)
    if fmt == "csv":
        return render_csv(view)
    return render_table(view, width=width)
