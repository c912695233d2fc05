"""What UI tests share: the desk process behind an app's Desk API, and its trader."""

from __future__ import annotations

from typing import Any

from textual._compositor import LayoutUpdate  # private: Textual has no public frame API
from textual.app import App

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


def screen_lines(app: App[Any]) -> list[str]:
    """The plain text of the app's screen as the terminal shows it now: one string per row,
    `app.size` rows of exactly `app.size.width` cells (a wide character counts two cells
    and is followed by no filler), modal screens drawn over the screens below them.

    It reads the compositor's full frame, the one `App.export_screenshot` draws, so what
    it finds is what the operator sees — not what a widget holds off screen.
    """
    update = app.screen._compositor.render_update(
        full=True, screen_stack=app._background_screens
    )
    assert isinstance(update, LayoutUpdate), update
    return ["".join(strip.text for strip in row) for row in update.strips]


def screen_text(app: App[Any]) -> str:
    """`screen_lines` joined with newlines."""
    return "\n".join(screen_lines(app))
