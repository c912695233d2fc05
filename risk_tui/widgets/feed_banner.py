"""The live indicator: green 'LIVE' text, or an unmissable STALE / DOWN banner (in words)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from risk_tui.core.feed_health import FeedHealth, FeedStatus
from risk_tui.core.text import sanitize

if TYPE_CHECKING:
    from risk_tui.desk.api import EngineStatus


class FeedBanner(Static):
    """One line that says, in text, whether the figures on screen are live."""

    DEFAULT_CSS = """
    FeedBanner { height: 1; padding: 0 1; }
    FeedBanner.-live { color: $success; }
    FeedBanner.-connecting { color: $warning; }
    FeedBanner.-stale { background: $warning; color: $background; text-style: bold; }
    FeedBanner.-down { background: $error; color: $background; text-style: bold; }
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
            text = (
                f"● LIVE — recalculated {age:.0f}s ago, {changed_rows} rows changed in the "
                f"last update, {health.applied} records applied"
            )
            if health.rejected:
                text += f", {health.rejected} REJECTED"
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

    DEFAULT_CSS = """
    EngineBanner { height: 1; padding: 0 1; display: none; }
    EngineBanner.-shown { display: block; }
    EngineBanner.-ok { color: $success; }
    EngineBanner.-down { background: $error; color: $background; text-style: bold; }
    """

    def show(self, status: EngineStatus) -> None:
        self.add_class("-shown")
        self.set_class(status.ok, "-ok")
        self.set_class(not status.ok, "-down")
        # Host names come from the database: outside text.
        described = sanitize(status.describe(), max_length=200)
        self.update(Text(("● " if status.ok else "▲ ") + described))
