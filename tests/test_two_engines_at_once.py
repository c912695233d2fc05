"""Fencing by the data: two engines writing one desk at once (an engine whose lock died
and has not noticed yet, beside the one that took over) never record a call's trigger,
escalation or end twice. The database refuses the second: the one-open-call index, the
call's version. (docs/scaling.md, "What is built".)"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from risk_tui.cli.commands import serve_simulator
from risk_tui.cli.compose import calendars_for, desk_process
from risk_tui.config import FeedSettings, Settings, load_settings
from risk_tui.desk.api import DeskRole
from risk_tui.desk.runtime import Desk
from risk_tui.sim.scenarios import build_state
from risk_tui.storage import Store, run_verify, upgrade

ROUNDS = 20


@contextlib.asynccontextmanager
async def engine_desk(settings: Settings) -> AsyncIterator[Desk]:
    async with desk_process(settings, calendars_for(settings), role=DeskRole.ENGINE) as desk:
        await desk.start()
        yield desk


async def test_two_engines_at_once_never_record_a_call_twice(
    pg_db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="risk_tui.desk")
    await upgrade(pg_db_url)
    sim = build_state("crash", accounts=1_000, seed=3, tick_interval=None)
    async with serve_simulator(sim) as url:
        defaults = load_settings(None, env={}, discover=False)
        settings = defaults.model_copy(
            update={
                "feed": FeedSettings(url=url),
                "db": defaults.db.model_copy(update={"url": pg_db_url}),
            }
        )
        async with engine_desk(settings) as one, engine_desk(settings) as two:
            refused = 0
            for _ in range(ROUNDS):
                for _ in range(3):
                    sim.tick()
                outcomes = await asyncio.gather(
                    one.poller.poll(give_up_after=10),
                    two.poller.poll(give_up_after=10),
                    return_exceptions=True,
                )
                refused += sum(isinstance(o, BaseException) for o in outcomes)
            store = one.store
            assert isinstance(store, Store)
            async with store.engine.connect() as conn:
                twice = (
                    await conn.execute(
                        text(
                            "SELECT call_id, scenario, count(*) FROM snapshots "
                            "WHERE scenario IN ('trigger', 'force_call', 'end') "
                            "GROUP BY call_id, scenario HAVING count(*) > 1"
                        )
                    )
                ).all()
                calls, ended = (
                    await conn.execute(
                        text("SELECT count(*), count(*) FILTER (WHERE state = 'ended') FROM calls")
                    )
                ).one()
    lost = sum(
        int(r.getMessage().split()[0]) for r in caplog.records if "changed meanwhile" in r.message
    )
    print(f"{calls} calls ({ended} ended); {lost} calls' writes refused, read again")
    assert refused == 0  # a lost race costs the loser those calls' writes, not its poll
    assert calls > 10
    assert lost > 0
    assert twice == []
    assert (await run_verify(pg_db_url)).ok
