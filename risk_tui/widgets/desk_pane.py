"""The base of the tabs fed from the desk's tables rather than only from the live view.

Short positions, History, Liquidation orders and Approvals read the desk (through its
API, `risk_tui.desk.api`) when they are shown: the app calls `refresh_from` on the active
pane with every new view and when the tab is opened; each pane decides how much to
re-read (a page of history, the orders of the day) and keeps its table in a `LiveTable`,
so cursor, marks, sorting and the `/` filter behave exactly as on the warnings tabs.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from textual.containers import Vertical

from risk_tui.widgets.live_table import LiveTable, RowData

if TYPE_CHECKING:
    from risk_tui.core.view import DeskView
    from risk_tui.desk.api import DeskApi


class DeskPane(Vertical):
    """One tab whose rows come from the desk; subclasses implement `refresh_from`."""

    DEFAULT_CSS = """
    DeskPane { height: 1fr; }
    DeskPane > LiveTable { height: 1fr; }
    """

    @property
    def table(self) -> LiveTable:
        return self.query_one(LiveTable)

    def refresh_from(self, desk: DeskApi, view: DeskView, now: datetime) -> None:
        """Bring the pane up to date; called while shown, with every view and on opening."""
        raise NotImplementedError(f"{type(self).__name__} must say how it refreshes")

    def set_text_filter(self, needle: str) -> None:
        """The `/` filter: any cell contains the text (case-insensitive)."""
        typed = needle.strip()
        needle = typed.lower()
        if not needle:
            self.table.set_filter(None)
            return

        def keep(key: str, row: RowData) -> bool:
            return needle in key.lower() or any(needle in cell.plain.lower() for cell in row.cells)

        self.table.set_filter(keep, needle=typed)
