"""The desk's own keys: the app's bindings (tabs, filter, the call keys, sorts, the kill
switch), each with an id `[keys]` may remap.

A binding's short label (description) is the footer's; its tooltip says it in words for
the `?` help and the command palette. The footer ranks them by `desk_footer.KEY_ORDER`.
Kept apart from the app, which is wiring: the app's `check_action` decides where each
one works, and so where the footer and the palette offer it.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.binding import Binding, BindingType

from risk_tui.screens.warnings import SORT_KEYS, sort_label

# Each tab in words, for the `?` help and the command palette ("Go to Approvals").
TAB_NAMES = {
    "warnings": "Real-time warnings",
    "intraday": "Intraday margin",
    "shorts": "Short positions",
    "history": "History",
    "exceptions": "Exceptions",
    "orders": "Liquidation orders",
    "approvals": "Approvals",
}


def desk_bindings(tabs: Sequence[tuple[str, str]]) -> list[BindingType]:
    """The app's bindings; `tabs` are its (tab id, label) pairs, keys 1 to 7."""
    return [
        Binding("q", "quit", "Quit", tooltip="Quit the desk", id="app.quit"),
        Binding("question_mark", "help", "help", tooltip="Every key, by screen", id="app.help"),
        # The keys that move the focus (`/`, esc, the tabs) are priority bindings: they
        # run as the key arrives, before the next key is read, so the keys typed right
        # after them (however fast: `/A1001⏎` in one burst) find the new focus. A
        # non-priority key reaches the app only after the focused table has handled it,
        # by when the keys behind it are already queued for the table, and a priority key
        # behind it would overtake it. `check_action` limits them to the tabs' screen;
        # where they do not act, a text box still gets them as typing.
        Binding(
            "slash",
            "filter",
            "Filter",
            tooltip="Filter by account, client or symbol",
            priority=True,
            id="app.filter",
        ),
        Binding("escape", "leave", "Clear filter", priority=True, id="app.back"),
        *(
            Binding(
                str(n),
                f"show_tab('{tab}')",
                label,
                show=False,
                tooltip=f"Go to {TAB_NAMES.get(tab, label)}",
                priority=True,
                id=f"tab.{tab}",
            )
            for n, (tab, label) in enumerate(tabs, start=1)
        ),
        Binding(
            "l",
            "liquidate",
            "Liquidate",
            tooltip="Liquidate: choose the orders",
            id="call.liquidate",
        ),
        Binding(
            "a",
            "auto_liquidate",
            "Auto-liq",
            tooltip="Auto-liquidate: schedule it",
            id="call.auto_liquidate",
        ),
        Binding("m", "message", "Message", tooltip="Message the client(s)", id="call.message"),
        Binding("r", "remark", "Remark", tooltip="Remark on the call", id="call.remark"),
        Binding(
            "e",
            "toggle_exception",
            "Exception",
            tooltip="Mark or unmark as an exception",
            id="call.exception",
        ),
        Binding(
            "o",
            "claim",
            "Claim",
            tooltip="I'm on it: claim or release the call",
            id="call.claim",
        ),
        Binding(
            "c",
            "close_call",
            "Close call",
            tooltip="Close the call (needs approval)",
            id="call.close",
        ),
        Binding(
            "d",
            "move_deadline",
            "Deadline",
            tooltip="Move the deadline (needs approval)",
            id="call.deadline",
        ),
        Binding(
            "ctrl+k",
            "kill_switch",
            "Kill switch",
            tooltip="Kill switch on/off (supervisors)",
            id="app.kill_switch",
        ),
        Binding(
            "z",
            "toggle_utc",
            "Clock",
            show=False,
            tooltip="Header clock in UTC / the desk's zone",
            id="app.clock_utc",
        ),
        *(
            Binding(
                letter, f"sort('{column}')", sort_label(column), show=False, id=f"sort.{column}"
            )
            for letter, column in SORT_KEYS.items()
        ),
    ]


__all__ = ["TAB_NAMES", "desk_bindings"]
