"""The kill switch, when engaged: one loud line on every tab, in words (not only colour)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from risk_tui.core.four_eyes import KillSwitch
from risk_tui.widgets.render import data_text


class KillSwitchBanner(Static):
    """Hidden while the kill switch is released; unmissable while it is engaged."""

    DEFAULT_CSS = """
    KillSwitchBanner {
        height: 1; padding: 0 1; display: none; text-wrap: nowrap; text-overflow: ellipsis;
    }
    KillSwitchBanner.-engaged {
        display: block; background: $error; color: $background; text-style: bold;
    }
    """

    def show(self, switch: KillSwitch | None) -> None:
        engaged = switch is not None and switch.engaged
        self.set_class(engaged, "-engaged")
        if switch is None or not engaged:
            self.update("")
            return
        # Who and why come from the database: inert data, sanitized.
        text = Text("■ ")
        text.append_text(data_text(switch.describe()))
        text.append(" — reason: ")
        text.append_text(data_text(switch.reason or ""))
        self.update(text)


__all__ = ["KillSwitchBanner"]
