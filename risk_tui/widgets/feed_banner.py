"""The live indicator: green 'LIVE' text, or an unmissable STALE / DOWN banner (in words).

Each is one line: what matters first (the verdict, then why), and a line too long for
the window ends in "…" (`STATUS_LINE_CSS`), never cut silently mid-word.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from risk_tui.core.feed_health import FeedHealth, FeedStatus
from risk_tui.core.text import sanitize
from risk_tui.widgets.dialogs.formatting import plural

if TYPE_CHECKING:
    from risk_tui.desk.api import EngineStatus


# One line, cut with "…" when the window is narrower (Textual's text-overflow).
STATUS_LINE_CSS = "height: 1; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis;"


class FeedBanner(Static):
    """One line that says, in text, whether the figures on screen are live."""

    DEFAULT_CSS = f"""
    FeedBanner {{ {STATUS_LINE_CSS} }}
    FeedBanner.-live {{ color: $success; }}
    FeedBanner.-connecting {{ color: $warning; }}
    FeedBanner.-stale {{ background: $warning; color: $background; text-style: bold; }}
    FeedBanner.-down {{ background: $error; color: $background; text-style: bold; }}
    """

    status: reactive[FeedStatus] = reactive(FeedStatus.CONNECTING)

    def show(self, health: FeedHealth | None, now: float, *, changed_rows: int) -> None:
        if health is None:
            self.status = FeedStatus.CONNECTING
            self.update(Text("CONNECTING — waiting for the first poll of the feed"))
            return
        self.status = health.status(now)
        age = health.age(now)
        if self.status is FeedStatus.LIVE:
            # What is wrong first: rejected records are the operator's concern.
            rejected = f", {health.rejected:,} REJECTED" if health.rejected else ""
            text = (
                f"● LIVE{rejected} — recalculated {age:.0f}s ago · "
                f"{plural(changed_rows, 'row')} changed · "
                f"{plural(health.applied, 'record')} applied"
            )
        else:
            # The verdict first (a narrow terminal cuts the end), then why; sanitize:
            # the last error quotes the server, which is outside text.
            described = sanitize(health.describe(now), max_length=300)
            if self.status is FeedStatus.CONNECTING:
                text = "… " + described
            else:
                verdict, _, why = described.partition(" — ")
                text = f"▲ {verdict} — FIGURES NOT LIVE — {why}"
        self.update(Text(text))

    def watch_status(self, old: FeedStatus, new: FeedStatus) -> None:
        self.remove_class(f"-{old.value}")
        self.add_class(f"-{new.value}")


class EngineBanner(Static):
    """On a shared desk: whether an engine runs the calls' lifecycle, and whether this
    terminal hears the other terminals' changes. Hidden on a desk of one process."""

    DEFAULT_CSS = f"""
    EngineBanner {{ {STATUS_LINE_CSS} display: none; }}
    EngineBanner.-shown {{ display: block; }}
    EngineBanner.-ok {{ color: $success; }}
    EngineBanner.-down {{ background: $error; color: $background; text-style: bold; }}
    """

    def show(self, status: EngineStatus) -> None:
        self.add_class("-shown")
        self.set_class(status.ok, "-ok")
        self.set_class(not status.ok, "-down")
        # Host names come from the database: outside text.
        described = sanitize(status.describe(), max_length=200)
        self.update(Text(("● " if status.ok else "▲ ") + described))
