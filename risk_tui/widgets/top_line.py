"""The header line: who is at the desk, and the clock with its zone (issue 14 point 4)."""

from __future__ import annotations

from datetime import datetime, tzinfo

from rich.text import Text

from risk_tui.core.clock import stamp
from risk_tui.core.roles import Actor, Role
from risk_tui.core.text import sanitize


def top_line(actor: Actor, now: datetime, zone: tzinfo) -> Text:
    """`risk-tui  operator alice (trader)  2026-12-07 14:16:00 SG`: the clock on `zone`
    (the desk's, `desk.timezone`, or UTC on `z`), labelled, so every unlabelled time on
    the screen has a zone to be read in."""
    text = Text("risk-tui  ", style="bold")
    text.append(f"operator {sanitize(actor.name)} ({actor.role.value})")
    if actor.role is Role.VIEWER:
        text.append("  READ-ONLY", style="bold")
    text.append(f"  {stamp(now, zone, full=True, seconds=True)}")
    return text
