"""The desk's event hub: a slow terminal gets the latest state, never a backlog."""

from __future__ import annotations

import asyncio

from risk_tui.core.feed_health import FeedHealth
from risk_tui.core.view import DeskView, Totals
from risk_tui.desk.api import DeskEvent, HealthChanged, StoreChanged, ViewChanged
from risk_tui.desk.events import EventHub, Subscription


def view(cursor: str) -> DeskView:
    return DeskView(None, cursor, False, (), (), Totals("SGD", 0, 0, 0))  # type: ignore[arg-type]  # totals' figures are not read here


async def drain(subscription: Subscription, count: int) -> list[DeskEvent]:
    async with asyncio.timeout(1):
        return [await anext(subscription) for _ in range(count)]


async def test_views_collapse_to_the_latest_and_kinds_keep_their_order() -> None:
    hub = EventHub()
    events = hub.subscribe()
    hub.publish(ViewChanged(view("1")))
    hub.publish(HealthChanged(FeedHealth(stale_after=5, started_at=0)))
    hub.publish(ViewChanged(view("2")))
    hub.publish(ViewChanged(view("3")))
    first, second = await drain(events, 2)
    assert isinstance(first, ViewChanged)
    assert first.view.cursor == "3"
    assert isinstance(second, HealthChanged)


async def test_changed_tables_accumulate_and_everything_absorbs_them() -> None:
    hub = EventHub()
    events = hub.subscribe()
    hub.publish(StoreChanged(frozenset({"orders"})))
    hub.publish(StoreChanged(frozenset({"approvals"})))
    (changed,) = await drain(events, 1)
    assert changed == StoreChanged(frozenset({"orders", "approvals"}))
    hub.publish(StoreChanged(frozenset({"orders"})))
    hub.publish(StoreChanged(frozenset()))
    hub.publish(StoreChanged(frozenset({"calls"})))
    (changed,) = await drain(events, 1)
    assert changed == StoreChanged(frozenset())


async def test_a_subscription_starts_when_made_and_ends_when_closed() -> None:
    hub = EventHub()
    hub.publish(ViewChanged(view("before")))
    events = hub.subscribe()
    hub.publish(ViewChanged(view("after")))
    (seen,) = await drain(events, 1)
    assert isinstance(seen, ViewChanged)
    assert seen.view.cursor == "after"
    events.close()
    hub.publish(ViewChanged(view("closed")))
    waiting = asyncio.ensure_future(events.__anext__())
    await asyncio.sleep(0.05)
    assert not waiting.done()
    waiting.cancel()
