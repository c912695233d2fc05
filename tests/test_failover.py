"""Failover: `kill -9` of the active `risk-tui engine`, the standby takes over, nothing twice.

Real processes on a real PostgreSQL and the simulator (a crash day: calls keep opening
and escalating throughout). Before the engines start, a desk in this process opens the
calls of the first poll, dates them a day back (so each is owed today's reminder) and
schedules an auto-liquidation due at once. Engine A (active) sends the reminders and
runs the plan; engine B waits as standby; A is SIGKILLed; B takes over, goes on with
the crash, and runs a second plan a terminal schedules after the kill. Then, counted at
the broker (the simulator): one message per reminder, one order per plan line; and in
the database: one trigger/force-call/end snapshot per call, and intact hash chains.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from risk_tui.cli.compose import calendars_for, desk_process
from risk_tui.config import FeedSettings, Settings, load_settings
from risk_tui.core.actions import AutoCondition, AutoLiquidationPlan, PlanLine, new_plan_id
from risk_tui.core.model import Side
from risk_tui.core.records import AutoLiquidationState, EngineBeat, StoredAutoLiquidation
from risk_tui.desk.api import DeskRole
from risk_tui.desk.daily import reminder_message_id
from risk_tui.desk.heartbeat import DESK
from risk_tui.desk.runtime import Desk
from risk_tui.sim.app import SimState
from risk_tui.sim.scenarios import build_state
from risk_tui.storage import Store, create_engine, run_verify, upgrade
from tests.factories import TRADER
from tests.threaded_sim import serve_in_thread
from tests.waiting import until

STARTUP_LIMIT = 30.0  # seconds for an engine to start (import, first poll) on a slow machine
# Seconds from kill -9 of the active engine to the standby's first active heartbeat: the
# server drops the dead session's lock at once, the standby asks for it every second, then
# starts the desk. Measured on the 2-core machine: 1.5-2.4 s, and 3.5-5.3 s with both
# cores kept busy by other processes; the bound leaves three times that.
TAKEOVER_LIMIT = 15.0


@pytest.fixture
def crash_sim() -> Iterator[tuple[SimState, str]]:
    state = build_state("crash", accounts=2_000, seed=7, tick_interval=0.5)
    for url in serve_in_thread(state):
        yield state, url


class Engines:
    """`risk-tui engine` processes, each logging to its own file."""

    def __init__(self, tmp_path: Path, feed_url: str, db_url: str) -> None:
        self.tmp_path = tmp_path
        config = tmp_path / "empty.toml"
        config.write_text("")
        self.args = ["engine", "--db", db_url, "--feed-url", feed_url]
        self.env = {
            **os.environ,
            "RISK_TUI_CONFIG": str(config),
            "RISK_TUI_DAILY__REMINDER_TIME": "00:00",  # every call opened before today is due
        }
        self.procs: list[asyncio.subprocess.Process] = []

    async def start(self, name: str) -> asyncio.subprocess.Process:
        log = (self.tmp_path / f"engine-{name}.log").open("w")
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "risk_tui",
            *self.args,
            env=self.env,
            cwd=self.tmp_path,
            stdout=log,
            stderr=log,
        )
        self.procs.append(proc)
        return proc

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.tmp_path.glob("*.log"))
        )

    async def stop_all(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def beats(store: Store) -> list[EngineBeat]:
    return await store.engines.desk_engines(DESK)


async def active_pid(store: Store) -> int | None:
    return next((b.pid for b in await beats(store) if b.role == "active" and b.beat_age < 3), None)


def plan_for(desk: Desk, account_id: str, quantity: str) -> AutoLiquidationPlan:
    return AutoLiquidationPlan(
        plan_id=new_plan_id(),
        call_id=desk.engine.open_calls[account_id].call_id,
        account_id=account_id,
        execute_at=datetime.now(UTC) + timedelta(seconds=1),
        condition=AutoCondition.STILL_IN_CALL,
        lines=(PlanLine("B.SG", Side.SELL, Decimal(quantity)),),
        operator=TRADER.name,
    )


@contextlib.asynccontextmanager
async def a_desk(settings: Settings, role: DeskRole) -> AsyncIterator[Desk]:
    """A desk process's Desk in this process, polled once."""
    async with desk_process(settings, calendars_for(settings), role=role) as desk:
        await desk.start()
        await desk.poller.poll()
        yield desk


@pytest.mark.slow
async def test_kill_9_of_the_active_engine_loses_nothing_and_repeats_nothing(
    crash_sim: tuple[SimState, str], pg_db_url: str, tmp_path: Path
) -> None:
    sim, feed_url = crash_sim
    await upgrade(pg_db_url)
    defaults = load_settings(None, env={}, discover=False)
    settings = defaults.model_copy(
        update={
            "feed": FeedSettings(url=feed_url),
            "db": defaults.db.model_copy(update={"url": pg_db_url}),
            "operators": {TRADER.name: TRADER.role},
        }
    )
    engine = await create_engine(pg_db_url)
    store = Store(engine)
    engines = Engines(tmp_path, feed_url, pg_db_url)
    try:
        # The desk before the engines: the first poll's calls, a day old; plan 1 due now.
        async with a_desk(settings, DeskRole.EMBEDDED) as desk:
            seeded = {c.call_id for c in desk.engine.open_calls.values()}
            assert "A1001" in desk.engine.open_calls
            assert len(seeded) >= 3
            plan_a = await desk.intents.schedule_plan(plan_for(desk, "A1001", "100"), TRADER)
            assert isinstance(plan_a, StoredAutoLiquidation)  # under the four-eyes threshold
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE calls SET triggered_at = triggered_at - interval '1 day'")
            )

        first = await engines.start("a")
        a_exited = exited(first)
        await until(
            lambda: _is(active_pid(store), first.pid),
            what="engine A active",
            seconds=STARTUP_LIMIT,
            give_up_if=a_exited,
        )
        second = await engines.start("b")
        b_exited = exited(second)
        await until(
            lambda: _standby_count(store),
            what="engine B registered as standby",
            seconds=STARTUP_LIMIT,
            give_up_if=b_exited,
        )
        # A sends today's reminders (A1001's call, on a stable price, stays open; others
        # may end first) and runs plan 1; then it is killed.
        a1001 = next(c for c in seeded if "-A1001-" in c)
        await until(
            lambda: _reminders_sent(sim, {a1001}),
            what="engine A sent reminders",
            seconds=60,
            give_up_if=a_exited,
        )
        await until(
            lambda: _plan_done(store, plan_a.plan_id),
            what="engine A ran plan 1",
            seconds=60,
            give_up_if=a_exited,
        )
        at_kill = await _count(store, "SELECT count(*) FROM snapshots")
        first.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        assert await first.wait() == -signal.SIGKILL
        await until(
            lambda: _is(active_pid(store), second.pid),
            what="engine B active after kill -9 of A",
            seconds=STARTUP_LIMIT,
            give_up_if=b_exited,
        )
        takeover = time.monotonic() - killed_at
        print(f"standby active {takeover:.2f}s after kill -9")
        assert takeover < TAKEOVER_LIMIT, f"takeover took {takeover:.1f}s"

        # A terminal schedules plan 2 after the kill: the new engine runs it.
        async with a_desk(settings, DeskRole.TERMINAL) as terminal:
            plan_b = await terminal.intents.schedule_plan(
                plan_for(terminal, "A1001", "100"), TRADER
            )
            assert isinstance(plan_b, StoredAutoLiquidation)
        await until(
            lambda: _plan_done(store, plan_b.plan_id),
            what="engine B ran plan 2",
            seconds=60,
            give_up_if=b_exited,
        )
        await asyncio.sleep(3)  # B goes on with the crash for a few polls
        after = await _count(store, "SELECT count(*) FROM snapshots") - at_kill
        print(f"{at_kill} snapshots before the kill, {after} after it")
        assert after > 0, "the new engine wrote nothing"
        second.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.wait(), 30) == 0
    except BaseException:
        print(engines.logs())
        raise
    finally:
        await engines.stop_all()

    try:
        # At the broker: one message per reminder, one order per plan line.
        today = {reminder_message_id(c, d) for c in seeded for d in _days()}
        reminders = [m for m in sim.desk.messages.values() if m.message_id.startswith("RT-R-")]
        per_call = Counter(m.message_id.rsplit("-", 1)[0] for m in reminders)
        assert f"RT-R-{a1001}" in per_call
        assert set(per_call) <= {f"RT-R-{c}" for c in seeded}, "a reminder on a new call"
        assert max(per_call.values()) == 1, f"a reminder sent twice: {per_call}"
        assert {m.message_id for m in reminders} <= today
        for plan in (plan_a, plan_b):
            keys = [k for k in sim.desk.by_client_id if k.startswith(plan.plan_id)]
            assert len(keys) == 1, f"plan {plan.plan_id}: orders {keys}"
        # In the database: one snapshot per call and scenario that happens once.
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT call_id, scenario, count(*) FROM snapshots "
                        "WHERE scenario IN ('trigger', 'force_call', 'end') "
                        "GROUP BY call_id, scenario HAVING count(*) > 1"
                    )
                )
            ).all()
            assert rows == [], f"duplicate snapshots: {rows}"
            calls_opened = (await conn.execute(text("SELECT count(*) FROM calls"))).scalar_one()
            daily = (
                await conn.execute(
                    text(
                        "SELECT call_id, day, count(*) FROM daily_jobs "
                        "GROUP BY job, call_id, day HAVING count(*) > 1"
                    )
                )
            ).all()
            assert daily == []
        print(
            f"{calls_opened} calls, {len(reminders)} reminders, "
            f"{sum(sim.desk.message_posts.values())} message POSTs, "
            f"{sum(sim.desk.order_posts.values())} order POSTs"
        )
        verified = await run_verify(pg_db_url)
        assert verified.ok, verified.message
    finally:
        await engine.dispose()


def exited(proc: asyncio.subprocess.Process) -> Callable[[], bool]:
    """Whether `proc` has exited: waiting for what it should do is then hopeless."""
    return lambda: proc.returncode is not None


def _days() -> list[Any]:
    """Today in the calls' markets (SGT/HKT), and either side of midnight UTC."""
    now = datetime.now(UTC) + timedelta(hours=8)
    return [now.date() + timedelta(days=d) for d in (-1, 0, 1)]


async def _is(pid: Awaitable[int | None], expected: int) -> bool:
    return (await pid) == expected


async def _count(store: Store, query: str) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(text(query))).scalar_one())


async def _standby_count(store: Store) -> bool:
    return any(b.role == "standby" and b.beat_age < 3 for b in await beats(store))


async def _reminders_sent(sim: SimState, calls: set[str]) -> bool:
    sent = {m.message_id.rsplit("-", 1)[0] for m in list(sim.desk.messages.values())}
    return {f"RT-R-{c}" for c in calls} <= sent


async def _plan_done(store: Store, plan_id: str) -> bool:
    plan = await store.plans.get_auto_liquidation(plan_id)
    return plan is not None and plan.state is AutoLiquidationState.EXECUTED
