"""A desk on one PostgreSQL: an engine and two operators' terminals (headless apps).

What one terminal does reaches the other through PostgreSQL LISTEN/NOTIFY; a claim is
one operator's; a terminal cut off from its notifications catches up when it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest

from risk_tui.app import RiskApp
from risk_tui.cli.commands import serve_simulator
from risk_tui.cli.compose import desk_api, desk_process
from risk_tui.config import FeedSettings, Settings, load_settings
from risk_tui.desk.api import DeskRole
from risk_tui.desk.decide import Follower
from risk_tui.desk.runtime import Desk
from risk_tui.sim.app import SimState
from risk_tui.storage import upgrade
from risk_tui.storage.election import asyncpg_dsn
from risk_tui.widgets.feed_banner import EngineBanner
from risk_tui.widgets.live_table import LiveTable
from tests.factories import BOB, OPERATOR
from tests.ui.helpers import desk_of
from tests.ui.test_app import CALENDARS
from tests.waiting import until


@dataclass
class SharedDesk:
    settings: Settings
    engine: Desk


@pytest.fixture
async def shared(pg_db_url: str) -> AsyncIterator[SharedDesk]:
    await upgrade(pg_db_url)
    sim = SimState(tick_interval=None)
    async with serve_simulator(sim) as url:
        defaults = load_settings(None, env={}, discover=False)
        settings = defaults.model_copy(
            update={
                "feed": FeedSettings(url=url, poll_interval=0.2, stale_after=5.0, timeout=1.0),
                "db": defaults.db.model_copy(update={"url": pg_db_url}),
                "operators": {OPERATOR.name: OPERATOR.role, BOB.name: BOB.role},
            }
        )
        async with desk_process(settings, CALENDARS, role=DeskRole.ENGINE) as engine:
            await engine.start()
            running = asyncio.create_task(engine.run())
            try:
                yield SharedDesk(settings, engine)
            finally:
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running


def terminal(shared: SharedDesk, operator: str) -> RiskApp:
    settings = shared.settings
    return RiskApp(
        settings, operator, lambda actor: desk_api(settings, CALENDARS, actor), calendars=CALENDARS
    )


def cells(app: RiskApp, account: str = "A1001") -> str:
    row = app.query_one("#warnings-pane-table", LiveTable).get_row(account)
    return " ".join(cell.plain for cell in row.cells) if row else ""


def call_of(app: RiskApp, account: str = "A1001") -> str:
    assert app.desk is not None
    return desk_of(app).engine.open_calls[account].call_id


async def test_two_terminals_see_each_other_and_the_engine(shared: SharedDesk) -> None:
    first, second = terminal(shared, OPERATOR.name), terminal(shared, BOB.name)
    async with first.run_test(size=(200, 40)) as one, second.run_test(size=(200, 40)) as two:
        # The engine opened the seed call; both terminals show it, with their own figures.
        await until(lambda: "1,015.00" in cells(first) and "1,015.00" in cells(second))
        assert first.desk is not None
        assert second.desk is not None
        assert first.desk.role is DeskRole.TERMINAL
        assert isinstance(desk_of(first).engine.decider, Follower)
        await until(lambda: "engine" in str(second.query_one(EngineBanner).render()))

        # A remark in one shows in the other within a second.
        call_id = call_of(first)
        await desk_of(first).call_actions.add_remark(
            call_id, "client calls back at 3pm", exception=False, actor=OPERATOR
        )
        took = await until(lambda: "client calls back at 3pm" in cells(second), seconds=1.0)
        print(f"remark seen by the other terminal after {took * 1000:.0f} ms")

        # A claim is one operator's, shown to everyone. (The rows are in urgency order:
        # force call U3001 comes first, so each terminal's cursor is put on A1001.)
        for app in (first, second):
            assert app.query_one("#warnings-pane-table", LiveTable).move_cursor("A1001")
        await one.press("o")
        await until(lambda: OPERATOR.name in cells(second), seconds=1.0)
        await two.press("o")
        await one.pause()
        refusal = f"claimed by {OPERATOR.name}"
        await until(lambda: any(refusal in str(n.message) for n in second._notifications))
        stored = await shared.engine.store.calls.get_call(call_id)
        assert stored is not None
        assert stored.claimed_by == OPERATOR.name

        await one.press("o")  # amy gives it up; bob may take it now
        await until(lambda: OPERATOR.name not in cells(second), seconds=1.0)
        await desk_of(second).call_actions.claim(call_id, BOB)
        await until(lambda: BOB.name in cells(first), seconds=1.0)


async def test_a_terminal_cut_off_from_notifications_catches_up(shared: SharedDesk) -> None:
    first, second = terminal(shared, OPERATOR.name), terminal(shared, BOB.name)
    async with first.run_test(size=(200, 40)), second.run_test(size=(200, 40)):
        await until(lambda: "1,015.00" in cells(first) and "1,015.00" in cells(second))
        assert first.desk is not None
        assert second.desk is not None
        shared_part = desk_of(second).listener
        assert shared_part is not None
        await until(lambda: shared_part.listener.connected)
        states: list[bool] = []
        shown = shared_part.listener.on_state
        assert shown is not None

        def record(connected: bool) -> None:
            states.append(connected)
            shown(connected)

        shared_part.listener.on_state = record
        admin = await asyncpg.connect(asyncpg_dsn(shared.settings.db.url))
        try:
            assert await admin.fetchval(
                "SELECT pg_terminate_backend($1)", shared_part.listener.backend_pid
            )
        finally:
            await admin.close()
        await until(lambda: not shared_part.listener.connected)
        # While bob's terminal hears nothing, amy remarks: that notification is lost.
        await desk_of(first).call_actions.add_remark(
            call_of(first), "written while bob was cut off", exception=False, actor=OPERATOR
        )
        await until(lambda: states[:1] == [False])  # said so (the banner: "UPDATES CUT OFF")
        # Reconnected, bob's terminal re-reads everything and shows it.
        await until(lambda: "written while bob was cut off" in cells(second))
        assert shared_part.listener.reconnects == 1
