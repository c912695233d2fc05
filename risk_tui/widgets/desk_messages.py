"""The desk's events as the app's Textual messages: a backlog of states collapses."""

from __future__ import annotations

from textual.message import Message

from risk_tui.core.feed_health import FeedHealth
from risk_tui.core.view import DeskView
from risk_tui.desk.api import (
    DeskEvent,
    EngineChanged,
    EngineStatus,
    HealthChanged,
    ViewChanged,
)


class ViewUpdated(Message):
    """A new desk view; a backlog collapses to the latest."""

    def __init__(self, view: DeskView) -> None:
        super().__init__()
        self.view = view

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ViewUpdated)


class EngineUpdated(Message):
    """A shared desk's engine status, as this terminal last saw it."""

    def __init__(self, status: EngineStatus) -> None:
        super().__init__()
        self.status = status

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, EngineUpdated)


class DeskChanged(Message):
    """Another process of a shared desk committed changes (tables named; none: re-read all)."""

    def __init__(self, tables: frozenset[str]) -> None:
        super().__init__()
        self.tables = tables


class HealthUpdated(Message):
    """The feed's health changed (LIVE, STALE, DOWN)."""

    def __init__(self, health: FeedHealth) -> None:
        super().__init__()
        self.health = health

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, HealthUpdated)


def message_of(event: DeskEvent) -> Message:
    """The app's message for one of the desk's events."""
    if isinstance(event, ViewChanged):
        return ViewUpdated(event.view)
    if isinstance(event, HealthChanged):
        return HealthUpdated(event.health)
    if isinstance(event, EngineChanged):
        return EngineUpdated(event.status)
    return DeskChanged(event.tables)
