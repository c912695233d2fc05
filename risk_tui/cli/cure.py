"""`risk-tui cure ACCOUNT`: the desk's least-value cure of one account, as table or json.

The proposal is the desk's own (`DeskApi.cure`, `core.cure`): whole board lots, the least
market value, the account after it recomputed by the engine. Money is printed rounded to
the currency's minor unit by `core.money`; `json` is ASCII-escaped and `table` passes
feed text through the one sanitiser, so no raw control byte reaches a terminal.
"""

from __future__ import annotations

import io
import json
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from risk_tui.core.cure import (
    METHOD_WORDS,
    PUBLISHED_MINIMUM_LABEL,
    CureProposal,
    published_minimum_entries,
)
from risk_tui.core.model import Side
from risk_tui.core.money import format_money, money_str
from risk_tui.widgets.dialogs.formatting import RISK_LABEL
from risk_tui.widgets.render import data_text

FORMATS = ("table", "json")
WIDTH = 80  # the table fits an 80-column terminal
INDENT = "  "
SEPARATOR = " · "


def cure_object(proposal: CureProposal, as_of: datetime | None = None) -> dict[str, Any]:
    """The proposal as SPEC.md's `cure --format json` record: money as decimal strings,
    `value_sold` in the account's base currency (sales and buys to cover alike)."""
    ccy = proposal.currency
    after = proposal.after
    return {
        "account_id": proposal.account_id,
        "currency": ccy,
        "as_of": None if as_of is None else as_of.isoformat(),
        "in_call": proposal.in_call,
        "call_amount": money_str(proposal.call_amount, ccy),
        "lines": [
            {
                "symbol": line.symbol,
                "side": str(line.side),
                "quantity": str(line.quantity),
                "price": str(line.price),
                "value": money_str(line.value, ccy),
            }
            for line in proposal.lines
        ],
        "value_sold": money_str(proposal.value, ccy),
        "after": {
            "equity": money_str(after.equity, ccy),
            "im": money_str(after.im, ccy),
            "mm": money_str(after.mm, ccy),
            "call_amount": money_str(proposal.left_to_collect, ccy),
            "risk_level": str(after.risk_level),
        },
        "meets_call": proposal.meets_call,
        "method": str(proposal.method),
        "published_minimum": [
            {"symbol": floor.symbol, "value": money_str(floor.value, ccy)}
            for floor in proposal.published_minimum
        ],
    }


def render_json(proposal: CureProposal, as_of: datetime | None = None) -> str:
    return json.dumps(cure_object(proposal, as_of), indent=2, ensure_ascii=True) + "\n"


def render_table(proposal: CureProposal, client_name: str, as_of: datetime | None = None) -> str:
    """The proposal for a person, in 80 columns."""
    ccy = proposal.currency
    out = io.StringIO()
    console = Console(
        file=out,
        width=WIDTH,
        force_terminal=False,
        color_system=None,
        no_color=True,
        highlight=False,
        markup=False,
        emoji=False,
    )
    head = Text("Account ")
    head.append_text(data_text(proposal.account_id))
    head.append(" · ")
    head.append_text(data_text(client_name))
    head.append(f" · {ccy}")
    console.print(head)
    if as_of is not None:
        console.print(Text(f"Feed as of {as_of:%Y-%m-%d %H:%M:%S %z}"))
    before = proposal.before
    if not proposal.in_call:
        console.print(
            Text(
                f"not in call: equity {format_money(before.equity, ccy)} ≥ MM "
                f"{format_money(before.mm, ccy)} and no open call — nothing to propose."
            )
        )
        return out.getvalue()
    console.print(
        Text(
            f"Call amount {format_money(proposal.call_amount, ccy, code=True)} · equity "
            f"{format_money(before.equity, ccy)} · MM {format_money(before.mm, ccy)}"
        )
    )
    if proposal.lines:
        console.print(
            Text(f"Least-value cure in whole board lots ({METHOD_WORDS[proposal.method]}):")
        )
        table = Table(show_lines=False, header_style="bold", box=None, pad_edge=False)
        table.add_column("Side", no_wrap=True)
        table.add_column("Symbol", no_wrap=True, max_width=16)
        table.add_column("Quantity", justify="right", no_wrap=True)
        table.add_column("Price", justify="right", no_wrap=True)
        table.add_column(f"Value {ccy}", justify="right", no_wrap=True)
        for line in proposal.lines:
            table.add_row(
                Text("sell" if line.side is Side.SELL else "buy to cover"),
                data_text(line.symbol),
                Text(f"{line.quantity:,f}"),
                data_text(f"{line.price:,f} {line.currency}"),
                Text(format_money(line.value, ccy)),
            )
        table.add_row(
            Text("total"), Text(""), Text(""), Text(""), Text(format_money(proposal.value, ccy))
        )
        console.print(table)
    after = proposal.after
    console.print(
        Text(
            f"After: equity {format_money(after.equity, ccy)} · IM {format_money(after.im, ccy)}"
            f" · MM {format_money(after.mm, ccy)} · {RISK_LABEL[after.risk_level]}"
        )
    )
    left = format_money(proposal.left_to_collect, ccy, code=True)
    if not proposal.meets_call:
        verdict = f"Selling everything cannot cure: {left} short."
    elif proposal.lines:
        verdict = f"Meets the call: call amount after {left}."
    else:
        verdict = f"Nothing to sell: call amount {left}."
    console.print(Text(verdict))
    entries = published_minimum_entries(proposal)
    if entries:
        console.print(Text(f"{PUBLISHED_MINIMUM_LABEL}:"))
        for packed in _packed(entries, WIDTH - len(INDENT)):
            console.print(Text(f"{INDENT}{packed}"))
    return out.getvalue()


def _packed(entries: list[str], width: int) -> list[str]:
    """The entries joined by ` · `, as many to a line as fit in `width`; never split."""
    lines: list[str] = []
    for entry in entries:
        if lines and len(lines[-1]) + len(SEPARATOR) + len(entry) <= width:
            lines[-1] += SEPARATOR + entry
        else:
            lines.append(entry)
    return lines


def render(
    proposal: CureProposal, fmt: str, client_name: str, as_of: datetime | None = None
) -> str:
    if fmt == "json":
        return render_json(proposal, as_of)
    return render_table(proposal, client_name, as_of)
