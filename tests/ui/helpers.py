"""What UI tests share: the desk process behind an app's Desk API, and its trader."""

from __future__ import annotations

from risk_tui.app import RiskApp
from risk_tui.core.roles import Actor, Role
from risk_tui.desk.runtime import Desk
from risk_tui.desk.service import DeskService

# Not `tests.factories.TRADER`: the UI tests' settings map the login `trader1`, and the
# apps they start log in as it.
TRADER1 = Actor("trader1", Role.TRADER)


def desk_of(app: RiskApp) -> Desk:
    """The desk process behind the app's Desk API: tests look inside it; the app cannot."""
    desk = app.desk
    assert isinstance(desk, DeskService), "the desk has not opened yet"
    return desk.process
