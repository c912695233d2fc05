"""The summary at the top of a warnings tab: totals in the reporting currency and counts.

Incomplete counts every row whose figures cannot be computed: open calls at that level
and the accounts without a call shown beside them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from rich.text import Text
from textual.widgets import Static

from risk_tui.core.margin import RiskLevel
from risk_tui.core.money import format_money
from risk_tui.core.view import Totals, WarningRow


class SummaryBar(Static):
    DEFAULT_CSS = """
    SummaryBar { height: auto; padding: 0 1; background: $boost; }
    """

    def show(self, rows: Sequence[WarningRow], totals: Totals, *, incomplete: int = 0) -> None:
        """`rows` are the tab's calls; `incomplete` its accounts without a call whose
        figures cannot be computed."""
        levels = Counter(row.risk_level for row in rows)
        levels[RiskLevel.INCOMPLETE] += incomplete
        states = Counter(row.call.state for row in rows)
        ccy = totals.currency
        line = Text()
        line.append(f"{len(rows)} calls  ", style="bold")
        line.append(f"Call amount {format_money(totals.call_amount, ccy, code=True)}  ")
        line.append(
            f"Long outstanding {format_money(totals.long_outstanding_amount, ccy, code=True)}"
        )
        if totals.unconverted:
            line.append(f"  ({len(totals.unconverted)} not converted: no fx into {ccy})")
        line.append("\n")
        line.append(
            "  ".join(
                f"{label} {levels.get(level, 0)}"
                for level, label in (
                    (RiskLevel.FORCE_CALL, "Force call"),
                    (RiskLevel.MARGIN_CALL, "Margin call"),
                    (RiskLevel.WATCH, "Watch"),
                    (RiskLevel.SAFE, "Safe"),
                    (RiskLevel.INCOMPLETE, "Incomplete"),
                )
            )
        )
        line.append("  |  ")
        line.append("  ".join(f"{state.value} {count}" for state, count in sorted(states.items())))
        self.update(line)
