"""The desk's active engine, elected by an advisory lock on a real PostgreSQL."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from risk_tui.storage.election import (
    Leadership,
    LeadershipLost,
    asyncpg_dsn,
    desk_lock_key,
)


def test_the_desk_key_is_stable_and_per_desk() -> None:
    assert desk_lock_key("hk-desk") == desk_lock_key("hk-desk")
    assert desk_lock_key("hk-desk") != desk_lock_key("sg-desk")
    assert -(2**63) <= desk_lock_key("hk-desk") < 2**63
    assert asyncpg_dsn("postgresql+asyncpg://u@h:5/d") == "postgresql://u@h:5/d"
    with pytest.raises(ValueError, match="not a PostgreSQL URL"):
        asyncpg_dsn("sqlite+aiosqlite:///x.db")


async def test_one_engine_holds_the_desk_the_other_waits_then_takes_over(pg_db_url: str) -> None:
    first = Leadership(pg_db_url, "desk-a", retry=0.1, check=0.1)
    second = Leadership(pg_db_url, "desk-a", retry=0.1, check=0.1)
    other_desk = Leadership(pg_db_url, "desk-b", retry=0.1, check=0.1)
    try:
        await first.acquire()
        standby = asyncio.create_task(second.acquire())
        await asyncio.sleep(0.5)
        assert not standby.done()  # waiting: the lock is held
        await asyncio.wait_for(other_desk.acquire(), 2)  # another desk is not blocked
        await first.release()
        await asyncio.wait_for(standby, 2)  # takes over within its retry interval
        assert second.held
    finally:
        for leadership in (first, second, other_desk):
            await leadership.release()


async def test_a_killed_session_loses_the_desk_and_the_standby_takes_it(pg_db_url: str) -> None:
    first = Leadership(pg_db_url, "desk-kill", retry=0.1, check=0.1)
    second = Leadership(pg_db_url, "desk-kill", retry=0.1, check=0.1)
    try:
        await first.acquire()
        watching = asyncio.create_task(first.watch())
        standby = asyncio.create_task(second.acquire())
        await asyncio.sleep(0.3)
        assert not watching.done()
        assert not standby.done()
        # What PostgreSQL does when the engine's process dies: its session ends.
        admin = await asyncpg.connect(asyncpg_dsn(pg_db_url))
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", first.backend_pid)
        finally:
            await admin.close()
        with pytest.raises(LeadershipLost):
            await asyncio.wait_for(watching, 5)
        assert not first.held
        await asyncio.wait_for(standby, 5)
        assert second.held
    finally:
        await first.release()
        await second.release()


class _CutConnection:
    """A lock connection whose session was cut in the middle of a query: asyncpg then
    raises its own InternalClientError ("another operation is in progress")."""

    def __init__(self) -> None:
        self.closed = False

    def is_closed(self) -> bool:
        return self.closed

    async def fetchval(self, query: str, *args: object) -> object:
        raise asyncpg.InternalClientError("cannot switch to state 12; another operation (2)")

    async def close(self, **_options: object) -> None:
        self.closed = True


async def test_any_failure_of_the_lock_connection_is_the_lock_lost() -> None:
    leadership = Leadership("postgresql+asyncpg://u@127.0.0.1:1/d", "desk-cut", check=0.01)
    leadership._conn = _CutConnection()  # type: ignore[assignment]  # asyncpg's, cut mid-query
    with pytest.raises(LeadershipLost, match="another operation"):
        await asyncio.wait_for(leadership.watch(), 2)
    assert not leadership.held
