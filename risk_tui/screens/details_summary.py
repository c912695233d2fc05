"""The summary at the top of a call's details: the call (level, state, call amount now,
at trigger and at notice, deadline and time left, since when) and the account's
figures, as label/value pairs.

Its two groups stand side by side from 100 columns and one under the other below, the
call's first (`widgets.pairs`); every figure is the desk's, formatted by the desk's own
helpers, shown whole or `…`, never cut. Feed text only through the sanitising helper.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from rich.text import Text
from textual.app import ComposeResult

from risk_tui.core.lifecycle import MarginCall
from risk_tui.core.margin import AccountMargin, RiskLevel
from risk_tui.core.money import format_money, format_ratio
from risk_tui.widgets.dialogs.formatting import (
    aware,
    format_elapsed,
    local_time,
    risk_words,
    state_words,
)
from risk_tui.widgets.pairs import Figure, FigureLines, Pair, PairGroup, PairGroups, Words
from risk_tui.widgets.render import data_text

# The account's figures in the summary: label, and the `AccountMargin` field shown.
FUND_PAIRS: tuple[tuple[str, str], ...] = (
    ("Equity", "equity"),
    ("IM", "im"),
    ("MM", "mm"),
    ("FM", "fm"),
    ("Long MV", "long_mv"),
    ("Short MV", "short_mv"),
    ("Cash in base", "cash_base"),
)

# Emphasis only: every level is also written out in words (RISK_WORDS).
_RISK_STYLE: dict[RiskLevel, str] = {
    RiskLevel.SAFE: "",
    RiskLevel.WATCH: "bold",
    RiskLevel.MARGIN_CALL: "bold",
    RiskLevel.FORCE_CALL: "bold reverse",
    RiskLevel.INCOMPLETE: "bold reverse",
}


def summary_figures(
    call: MarginCall, margin: AccountMargin | None, now: datetime
) -> dict[str, str | tuple[str, ...]]:
    """What each figure of the summary shows, by the key of its cell (`#s-<key>`), as
    the desk formats it; a tuple gives the choices, longest first."""
    ccy = call.currency
    known = margin is not None and margin.incomplete is None

    def money(value: Decimal | None) -> str:
        return format_money(value if known else None, ccy)

    now_amount = margin.call_amount if known and margin is not None else call.call_amount
    shown: dict[str, str | tuple[str, ...]] = {
        key: money(getattr(margin, key) if margin is not None else None) for _, key in FUND_PAIRS
    }
    shown["nar"] = format_ratio(margin.net_asset_ratio if known and margin else None)
    shown["cash"] = (
        tuple(
            format_money(balance, currency, code=True)
            for currency, balance in sorted(margin.cash.items())
        )
        if margin is not None and margin.cash
        else ("—",)
    )
    shown["call-now"] = format_money(now_amount, ccy)
    shown["call-trigger"] = format_money(call.trigger_call_amount, ccy)
    shown["call-notice"] = format_money(call.notified_call_amount, ccy)
    shown["triggered"] = local_time(call.triggered_at, call.market)
    shown["since"] = format_elapsed(now - aware(call.triggered_at))
    shown["deadline"] = (
        local_time(call.deadline, call.market) if call.deadline is not None else "none"
    )
    shown["left"] = deadline_left(call, now)
    return shown


def deadline_left(call: MarginCall, now: datetime) -> tuple[str, ...]:
    """Time left to the deadline (the deadline itself says its market's clock)."""
    if call.deadline is None:
        return ()
    left = aware(call.deadline) - now
    if call.past_deadline(now):
        return (f"PASSED {format_elapsed(-left)} ago",)
    return (f"{format_elapsed(left)} left",)


class CallSummary(PairGroups):
    """The call and its account's figures; `show` redraws them."""

    def compose(self) -> ComposeResult:
        with PairGroup(id="summary-call"):
            yield Pair("Risk level", Words(id="s-level"))
            yield Pair("State", Words(id="s-state"))
            yield Pair("Call amount now", Figure(id="s-call-now"))
            yield Pair("at trigger", Figure(id="s-call-trigger"))
            yield Pair("at notice", Figure(id="s-call-notice"))
            yield Pair("Deadline", Figure(id="s-deadline"))
            yield Pair("", Figure(id="s-left"), id="p-left")
            yield Pair("why none", Words(id="s-no-deadline"), id="p-no-deadline")
            yield Pair("moved", Words(id="s-moved"), id="p-moved")
            yield Pair("Triggered", Figure(id="s-triggered"))
            yield Pair("since", Figure(id="s-since"))
            yield Pair("Exception", Words(id="s-exception"))
            yield Pair("Figures", Words(id="s-figures"), id="p-figures")
        with PairGroup(id="summary-fund"):
            for label, key in FUND_PAIRS:
                yield Pair(label, Figure(id=f"s-{key}"))
            yield Pair("Net asset ratio", Figure(id="s-nar"))
            yield Pair("Cash", FigureLines(id="s-cash"))

    def show(self, call: MarginCall, margin: AccountMargin | None, now: datetime) -> None:
        """Redraw for the call and the account's figures now."""
        for key, value in summary_figures(call, margin, now).items():
            if key == "cash":
                self.query_one("#s-cash", FigureLines).show(*value)
            else:
                choices = (value,) if isinstance(value, str) else value
                self.query_one(f"#s-{key}", Figure).show(*choices)
        level = margin.risk_level if margin is not None else call.risk_level
        self.query_one("#s-level", Words).update(Text(risk_words(level), style=_RISK_STYLE[level]))
        self.query_one("#s-state", Words).update(state_words(call))
        self.query_one("#s-exception", Words).update(
            "yes (no daily reminders)" if call.exception else "no"
        )
        self.query_one("#p-left").display = call.deadline is not None
        self.query_one("#p-no-deadline").display = call.deadline is None
        if call.deadline is None:
            self.query_one("#s-no-deadline", Words).update(
                data_text(call.deadline_error or "not computed")
            )
        self.query_one("#p-moved").display = bool(call.deadline_reason)
        if call.deadline_reason:
            self.query_one("#s-moved", Words).update(data_text(call.deadline_reason))
        note: Text | None = None
        if margin is None:
            note = Text("not computed yet", style="bold")
        elif margin.incomplete is not None:
            note = Text("incomplete, never shown as safe: ", style="bold")
            note.append_text(data_text(margin.incomplete))
        self.query_one("#p-figures").display = note is not None
        if note is not None:
            self.query_one("#s-figures", Words).update(note)


__all__ = ["FUND_PAIRS", "CallSummary", "deadline_left", "summary_figures"]
