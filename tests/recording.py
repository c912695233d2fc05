"""The real calls repository on a temporary SQLite file, keeping each batch it committed.

The engine's tests read what a poll wrote (`batches`) and what the database now holds
(`stored`); everything else is the real storage, refusals included.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from sqlalchemy import func, select

from risk_tui.core.lifecycle import LifecycleBatch, MarginCall
from risk_tui.core.records import DailyKey
from risk_tui.storage import Store, create_engine, upgrade
from risk_tui.storage.calls import Calls
from risk_tui.storage.tables import calls as calls_table


class RecordingCalls(Calls):
    """`storage.calls.Calls`, with every committed batch kept in `batches`."""

    batches: list[LifecycleBatch]

    async def commit(
        self,
        batch: LifecycleBatch,
        daily: Sequence[DailyKey] = (),
        *,
        skip_changed: bool = False,
    ) -> frozenset[str]:
        refused = await super().commit(batch, daily, skip_changed=skip_changed)
        self.batches.append(batch)
        return refused

    async def stored(self, call_id: str) -> MarginCall:
        call = await self.get_call(call_id)
        assert call is not None, f"call {call_id} is not stored"
        return call

    async def count(self) -> int:
        """Calls stored, open or ended."""
        async with self._reader() as conn:
            query = select(func.count()).select_from(calls_table)
            return int((await conn.execute(query)).scalar_one())


@contextlib.asynccontextmanager
async def recording_store(folder: Path) -> AsyncIterator[Store]:
    """A fresh desk database in `folder`, its calls repository a `RecordingCalls`."""
    url = f"sqlite+aiosqlite:///{folder / 'desk.db'}"
    await upgrade(url)
    engine = await create_engine(url)
    store = Store(engine)
    store.calls = RecordingCalls(engine)
    store.calls.batches = []
    try:
        yield store
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def recording_calls(folder: Path) -> AsyncIterator[RecordingCalls]:
    """A fresh desk database in `folder` and its calls repository."""
    async with recording_store(folder) as store:
        assert isinstance(store.calls, RecordingCalls)
        yield store.calls
