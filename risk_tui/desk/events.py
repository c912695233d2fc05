"""The desk's events to its terminals: one hub, a coalescing queue per subscriber.

Views, feed health and engine status are states: a subscriber that has not read the last
one yet gets only the newest. Changed tables accumulate (their union), an empty set
(everything) absorbing the rest. So a terminal that falls behind during a crash poll
catches up in one read, never in a backlog.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from risk_tui.desk.api import (
    DeskEvent,
    EngineChanged,
    HealthChanged,
    StoreChanged,
    ViewChanged,
)


class Subscription:
    """One subscriber's pending events, in the order their kinds first arrived; an async
    iterator of them until `close`."""

    def __init__(self, hub: EventHub) -> None:
        self._hub = hub
        self._pending: dict[type, DeskEvent] = {}
        self._ready = asyncio.Event()

    def put(self, event: DeskEvent) -> None:
        if isinstance(event, StoreChanged):
            held = self._pending.get(StoreChanged)
            if isinstance(held, StoreChanged):
                everything = not held.tables or not event.tables
                event = StoreChanged(frozenset() if everything else held.tables | event.tables)
        self._pending[type(event)] = event
        self._ready.set()

    def __aiter__(self) -> AsyncIterator[DeskEvent]:
        return self

    async def __anext__(self) -> DeskEvent:
        while not self._pending:
            self._ready.clear()
            await self._ready.wait()
        kind = next(iter(self._pending))
        return self._pending.pop(kind)

    def close(self) -> None:
        """Stop receiving events."""
        self._hub.unsubscribe(self)


class EventHub:
    """Where the desk's services publish, and the terminal subscribes."""

    def __init__(self) -> None:
        self._subscriptions: list[Subscription] = []

    def publish(self, event: DeskEvent) -> None:
        for subscription in self._subscriptions:
            subscription.put(event)

    def subscribe(self) -> Subscription:
        """Every event published from now on (the subscription starts at once)."""
        subscription = Subscription(self)
        self._subscriptions.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)


__all__ = [
    "EngineChanged",
    "EventHub",
    "HealthChanged",
    "StoreChanged",
    "Subscription",
    "ViewChanged",
]
