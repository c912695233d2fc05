"""What the tabs and screens may ask of the app that hosts them (the `RiskApp`).

Screens never import the app (that would be a cycle: the app composes the screens); they
read `self.app` through this protocol: the desk's API, the operator, the settings and
clock, the latest view, and what the app does for any tab — run an action and say how it
went, refuse an action the role may not take, repaint the tabs, open a call's details,
compose messages to clients.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

from risk_tui.config import Settings
from risk_tui.core.calendar import TradingCalendars
from risk_tui.core.roles import Actor
from risk_tui.core.view import DeskView
from risk_tui.desk.api import DeskApi


class DeskHost(Protocol):
    @property
    def desk(self) -> DeskApi | None: ...

    @property
    def actor(self) -> Actor: ...

    @property
    def settings(self) -> Settings: ...

    @property
    def view(self) -> DeskView | None: ...

    @property
    def calendars(self) -> TradingCalendars | None:
        """The markets' trading calendars (the desk's own), when the app was given them."""
        ...

    def now(self) -> datetime:
        """The app's clock (a fixed one in tests)."""
        ...

    async def act(self, action: Callable[[], Awaitable[str]], what: str) -> None:
        """Run one desk command and tell the operator how it went, in one line."""
        ...

    def refuse(self, what: str) -> None:
        """Say the operator's role may not do `what`."""
        ...

    def repaint(self) -> None:
        """Show the latest view in every tab now (after an action changed it)."""
        ...

    def open_details(self, account_id: str) -> None:
        """Open the details of the account's open call."""
        ...

    def message(self, account_ids: list[str]) -> None:
        """Compose margin-call messages to these accounts' clients (as `m` on a call)."""
        ...
