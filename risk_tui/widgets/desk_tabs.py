"""The desk's tab bar: labels that fit the window, and the current tab always in view.

Full labels ("1 Real-time warnings") when the window is wide enough for all of them,
short ones ("1 Warn … 7 Approve") when not (80 columns), and in a window narrower still
the keys' digits with the current tab's short label. A count (the requests waiting on
Approvals) follows its tab's label at every width: "7 Approve (2)".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.cells import cell_len
from textual import events
from textual.css.query import NoMatches
from textual.widgets import TabbedContent

SHORT_LABELS: dict[str, str] = {
    "warnings": "1 Warn",
    "intraday": "2 Intra",
    "shorts": "3 Short",
    "history": "4 Hist",
    "exceptions": "5 Exc",
    "orders": "6 Orders",
    "approvals": "7 Approve",
}
TAB_PADDING = 2  # a Tab's padding: one cell either side of its label


def fit_labels(
    full: Mapping[str, str],
    active: str,
    width: int,
    counts: Mapping[str, int] | None = None,
) -> dict[str, str]:
    """Each tab's label for a bar `width` cells wide (0: not laid out yet, full labels):
    the longest set that fits, in the order full, short, digits (the current tab short)."""
    counts = counts or {}

    def counted(tab: str, label: str) -> str:
        return f"{label} ({counts[tab]})" if counts.get(tab) else label

    short = {tab: SHORT_LABELS.get(tab, label) for tab, label in full.items()}
    digits = {
        tab: label if tab == active else label.split(" ", 1)[0] for tab, label in short.items()
    }
    choices = [full, short, digits]
    for labels in choices:
        shown = {tab: counted(tab, label) for tab, label in labels.items()}
        if not width or sum(cell_len(label) + TAB_PADDING for label in shown.values()) <= width:
            return shown
    return shown  # narrower than the digits: the bar scrolls to the current tab


class DeskTabs(TabbedContent):
    """The desk's tabs, labelled to fit (`fit_labels`) as the window is resized."""

    def __init__(
        self, labels: Sequence[tuple[str, str]], *, initial: str, id: str | None = None
    ) -> None:
        super().__init__(initial=initial, id=id)
        self.full_labels = dict(labels)  # tab id → full label
        self.counts: dict[str, int] = {}

    def set_count(self, tab: str, count: int) -> None:
        """A figure after the tab's label ("7 Approve (2)"); none when zero."""
        self.counts[tab] = count
        self.fit()

    def on_resize(self, event: events.Resize) -> None:
        self.fit()

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self.fit()  # the narrowest labels name the current tab only

    def fit(self) -> None:
        """Label the tabs for the bar's width, and keep the current tab in view."""
        labels = fit_labels(self.full_labels, self.active, self.size.width, self.counts)
        changed = False
        for tab, label in labels.items():
            try:
                shown = self.get_tab(tab)
            except NoMatches:  # not composed yet: the first resize labels it
                continue
            if shown.label_text != label:
                shown.label = label
                changed = True
        if changed:
            self.call_after_refresh(self._show_active)

    def _show_active(self) -> None:
        if self.active:
            self.get_tab(self.active).scroll_visible(animate=False)
