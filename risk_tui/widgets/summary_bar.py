"""The summary at the top of a warnings tab: totals in the reporting currency and counts.

Two lines at most, at any width (the table below never moves as counts grow): the
money on the first, the counts on the second, each made of whole parts in order of
importance. A part that does not fit is left out whole, and "…" says something was.
The risk levels read as everywhere on screen (`RISK_LABEL`: FORCE, CALL, …), the calls'
states in words ("force call"), never the machine names.

Incomplete counts every row whose figures cannot be computed: open calls at that level
and the accounts without a call shown beside them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.widgets import Static

from risk_tui.core.margin import RiskLevel
from risk_tui.core.money import format_money
from risk_tui.core.view import Totals, WarningRow
from risk_tui.widgets.dialogs.formatting import RISK_LABEL, STATE_LABEL, plural

# Most urgent first: the order the counts are read in.
LEVELS = (
    RiskLevel.FORCE_CALL,
    RiskLevel.MARGIN_CALL,
    RiskLevel.WATCH,
    RiskLevel.SAFE,
    RiskLevel.INCOMPLETE,
)
LEVEL_STYLE = {RiskLevel.FORCE_CALL: "bold", RiskLevel.INCOMPLETE: "bold"}
GAP = "  "
BAR = "  |  "  # between the levels' counts and the states'
MORE = "…"


def pack(parts: Sequence[Text], width: int, *, sep: str = GAP) -> Text:
    """`parts` joined by `sep` on one line of `width` cells: as many as fit, whole, in
    order, and "…" when any was left out (width 0: not laid out yet, all of them)."""

    def length(count: int) -> int:
        return cell_len(sep.join(part.plain for part in parts[:count]))

    count = len(parts)
    if width:
        while count and length(count) > width:
            count -= 1
        while count and count < len(parts) and length(count) + cell_len(sep + MORE) > width:
            count -= 1
    line = Text(sep).join(parts[:count])
    if count < len(parts):
        line.append(sep + MORE if count else MORE)
    return line


class SummaryBar(Static):
    DEFAULT_CSS = """
    SummaryBar { height: 2; padding: 0 1; background: $boost; }
    """

    _shown: tuple[list[Text], list[Text], list[Text]] | None = None

    def show(self, rows: Sequence[WarningRow], totals: Totals, *, incomplete: int = 0) -> None:
        """`rows` are the tab's calls; `incomplete` its accounts without a call whose
        figures cannot be computed."""
        levels = Counter(row.risk_level for row in rows)
        levels[RiskLevel.INCOMPLETE] += incomplete
        states = Counter(row.call.state for row in rows)
        ccy = totals.currency
        money = [
            Text(plural(len(rows), "call"), style="bold"),
            Text(f"Call amount {format_money(totals.call_amount, ccy, code=True)}"),
            Text(
                "Long outstanding " + format_money(totals.long_outstanding_amount, ccy, code=True)
            ),
        ]
        if totals.unconverted:
            money.append(Text(f"({len(totals.unconverted)} not converted: no fx into {ccy})"))
        counts = [
            Text(f"{RISK_LABEL[level]} {levels.get(level, 0):,}", style=LEVEL_STYLE.get(level, ""))
            for level in LEVELS
        ]
        words = [  # in the lifecycle's order
            Text(f"{label} {states[state]:,}")
            for state, label in STATE_LABEL.items()
            if states[state]
        ]
        self._shown = (money, counts, words)
        self._paint()

    def on_resize(self, event: events.Resize) -> None:
        self._paint()

    def _paint(self) -> None:
        if self._shown is None:
            return
        money, counts, words = self._shown
        width = self.content_size.width
        line = pack(money, width)
        line.append("\n")
        line.append_text(self._counts_line(counts, words, width))
        self.update(line)

    @staticmethod
    def _counts_line(counts: list[Text], words: list[Text], width: int) -> Text:
        """Every level's count, then the states' (no "|" without any); when that is too
        wide, the levels at zero go first, then the states that do not fit (with "…")."""
        nonzero = [part for part in counts if part.plain.split()[-1] != "0"]
        for levels in (counts, nonzero):
            line = pack(levels, 0)
            if words:
                line.append(BAR).append_text(pack(words, 0))
            if not width or cell_len(line.plain) <= width:
                return line
        line = pack(nonzero, width)
        room = width - cell_len(line.plain) - cell_len(BAR)
        if words and MORE not in line.plain:
            if room >= cell_len(MORE):
                return line.append(BAR).append_text(pack(words, room))
            line.append(GAP + MORE)
        return line
