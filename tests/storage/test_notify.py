"""Change notifications on a real PostgreSQL: what notifies, and catching up after a cut."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import asyncpg

from risk_tui.core.lifecycle import LifecycleBatch, move_deadline
from risk_tui.storage import Store, create_engine, upgrade
from risk_tui.storage.election import asyncpg_dsn
from risk_tui.storage.notify import ChangeListener, Changes, parse_notification
from tests.factories import T0, make_call


def test_notifications_are_parsed_strictly() -> None:
    assert parse_notification("calls:3:MC1-A:1-x") == ("calls", 3, "MC1-A:1-x")
    assert parse_notification("orders:0:K-1") == ("orders", 0, "K-1")
    for bad in ("calls", "calls:3", "calls:x:MC1", ":1:x", "calls:1:"):
        assert parse_notification(bad) is None


class Heard:
    def __init__(self) -> None:
        self.changes: list[Changes] = []
        self.connects = 0
        self.arrived = asyncio.Event()
        self.connected = asyncio.Event()

    async def on_changes(self, changes: Changes) -> None:
        self.changes.append(changes)
        self.arrived.set()

    async def on_connect(self) -> None:
        self.connects += 1
        self.connected.set()

    async def next(self) -> Changes:
        await asyncio.wait_for(self.arrived.wait(), 2.0)
        self.arrived.clear()
        merged: Changes = {}
        for changes in self.changes:
            for table, keys in changes.items():
                merged.setdefault(table, {}).update(keys)
        self.changes.clear()
        return merged


async def test_what_notifies_and_what_does_not(pg_db_url: str) -> None:
    await upgrade(pg_db_url)
    engine = await create_engine(pg_db_url)
    store = Store(engine)
    heard = Heard()
    listener = ChangeListener(pg_db_url, heard.on_changes, heard.on_connect, check=0.2)
    task = asyncio.create_task(listener.run())
    try:
        await asyncio.wait_for(heard.connected.wait(), 5)
        call = replace(make_call("A1"), version=1)
        await store.calls.commit(LifecycleBatch(calls=[call]))
        assert await heard.next() == {"calls": {call.call_id: 1}}
        # Re-pricing alone is each terminal's own business: no notification.
        await store.calls.commit(
            LifecycleBatch(repriced=[replace(call, call_amount=call.call_amount + 1)])
        )
        await store.calls.add_remark(call.call_id, "alice", "called the client", False, T0)
        assert await heard.next() == {"calls": {call.call_id: 1}}  # the remark, not the price
        await store.calls.set_claim(call.call_id, "alice", T0, claim=True)
        assert await heard.next() == {"calls": {call.call_id: 1}}
        moved = move_deadline(call, T0 + timedelta(days=3), "agreed")
        await store.calls.commit(LifecycleBatch(calls=[moved]))
        assert await heard.next() == {"calls": {call.call_id: 2}}
    finally:
        task.cancel()
        await engine.dispose()


async def test_a_cut_connection_reconnects_and_re_reads(pg_db_url: str) -> None:
    await upgrade(pg_db_url)
    engine = await create_engine(pg_db_url)
    store = Store(engine)
    heard = Heard()
    states: list[bool] = []
    listener = ChangeListener(
        pg_db_url, heard.on_changes, heard.on_connect, retry=0.2, check=0.2, on_state=states.append
    )
    task = asyncio.create_task(listener.run())
    try:
        await asyncio.wait_for(heard.connected.wait(), 5)
        heard.connected.clear()
        admin = await asyncpg.connect(asyncpg_dsn(pg_db_url))
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", listener.backend_pid)
        finally:
            await admin.close()
        # While it is cut off, another terminal writes: that notification is lost ...
        call = replace(make_call("A1"), version=1)
        await store.calls.commit(LifecycleBatch(calls=[call]))
        # ... and the listener says so, reconnects and has everything re-read.
        await asyncio.wait_for(heard.connected.wait(), 5)
        assert heard.connects == 2
        assert listener.reconnects == 1
        assert states[:2] == [True, False]
        assert listener.connected
        await store.calls.add_remark(call.call_id, "bob", "after the cut", False, T0)
        assert await heard.next() == {"calls": {call.call_id: 1}}
    finally:
        task.cancel()
        await engine.dispose()
