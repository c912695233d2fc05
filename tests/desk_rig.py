"""A desk on the simulator with hand-moved clocks: a real Store (SQLite or PostgreSQL, as
the `db_url` fixture gives), the broker client, and `new_desk()` for "another process on the
same database" (restarts, racing engines)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import httpx

from risk_tui.cli.commands import serve_simulator
from risk_tui.config import FeedSettings, Settings, load_settings
from risk_tui.core.calendar import TradingCalendars, default_overrides_path, load_overrides
from risk_tui.core.view import DeskView
from risk_tui.desk.api import DeskRole
from risk_tui.desk.compose import compose_desk
from risk_tui.desk.runtime import Desk
from risk_tui.feed.broker import Broker
from risk_tui.feed.client import make_client
from risk_tui.sim.app import SimState
from risk_tui.storage import Store, create_engine, upgrade
from tests.clocks import Clock, Monotonic

NOW = datetime(2026, 11, 23, 2, 15, tzinfo=UTC)  # Monday, 10:15 in Singapore


@dataclass
class Rig:
    desk: Desk
    sim: SimState
    store: Store
    url: str
    clock: Clock
    monotonic: Monotonic
    settings: Settings
    calendars: TradingCalendars
    client: httpx.AsyncClient
    views: list[DeskView] = field(default_factory=list)

    async def new_desk(self, daily_interval: float = 30.0) -> Desk:
        """Another process on the same database and broker: started and polled once."""
        desk = compose_desk(
            DeskRole.EMBEDDED,
            self.settings,
            self.store,
            self.calendars,
            self.client,
            broker=Broker(self.client, deadline=5),
            clock=self.clock,
            monotonic=self.monotonic,
            daily_interval=daily_interval,
        )
        await desk.start()
        await desk.poller.poll()
        return desk

    async def daily_snapshots(self, call_id: str) -> list[datetime]:
        return [
            s.taken_at
            for s in await self.store.history.snapshots_for(call_id)
            if s.scenario == "daily"
        ]


@contextlib.asynccontextmanager
async def desk_rig(url: str, **sections: Any) -> AsyncIterator[Rig]:
    """The rig on a fresh database at `url`; `sections` replace whole sections of the
    default settings (e.g. `four_eyes=FourEyesSettings(…)`)."""
    await upgrade(url)
    engine = await create_engine(url)
    store = Store(engine)
    sim = SimState(tick_interval=None)  # ticks only when the test says so
    calendars = TradingCalendars(load_overrides(default_overrides_path()), today=date(2026, 11, 22))
    clock = Clock(NOW)
    monotonic = Monotonic()
    async with serve_simulator(sim) as feed_url:
        feed = FeedSettings(url=feed_url, stale_after=30)
        settings = load_settings(None, env={}, discover=False).model_copy(
            update={"feed": feed, **sections}
        )
        async with make_client(feed) as client:
            rig = Rig(
                None,  # type: ignore[arg-type]  # set just below
                sim,
                store,
                url,
                clock,
                monotonic,
                settings,
                calendars,
                client,
            )
            rig.desk = await rig.new_desk()
            publish = rig.desk.engine.on_view

            def seen(view: DeskView) -> None:
                rig.views.append(view)
                if publish is not None:
                    publish(view)

            rig.desk.engine.on_view = seen
            yield rig
    await engine.dispose()


def seed_call_id(desk: Desk, account_id: str = "A1001") -> str:
    return desk.engine.open_calls[account_id].call_id
