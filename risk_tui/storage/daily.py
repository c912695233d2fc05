"""Daily-job markers: which daily job (snapshot, reminder) was done for which call and day.

Why markers: a daily job must happen once per call and market day however many engines
run or restart; the marker's primary key says so, and `Calls.commit` writes it in the
same transaction as the job's snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from risk_tui.core.lifecycle import CallState
from risk_tui.core.records import DailyKey
from risk_tui.storage.base import Repository, chunks
from risk_tui.storage.errors import DailyAlreadyDone
from risk_tui.storage.tables import calls, daily_jobs


class DailyJobs(Repository):
    """The daily jobs' markers, one per job, call and market day."""

    async def mark_daily(self, keys: Sequence[DailyKey]) -> None:
        """Record daily jobs done outside `commit` (e.g. a reminder message went out)."""
        if not keys:
            return
        async with self._engine.begin() as conn:
            await insert_daily_marks(conn, keys, self._clock())

    async def daily_done(self, job: str, call_id: str, day: date) -> bool:
        async with self._reader() as conn:
            row = (
                await conn.execute(
                    select(daily_jobs.c.job).where(
                        daily_jobs.c.job == job,
                        daily_jobs.c.call_id == call_id,
                        daily_jobs.c.day == day,
                    )
                )
            ).first()
        return row is not None

    async def last_daily(self, job: str) -> dict[str, date]:
        """The latest day `job` was done for each open call (for `daily_snapshot_due`)."""
        async with self._reader() as conn:
            result = await conn.execute(
                select(daily_jobs.c.call_id, func.max(daily_jobs.c.day).label("day"))
                .join(calls, calls.c.call_id == daily_jobs.c.call_id)
                .where(daily_jobs.c.job == job, calls.c.state != CallState.ENDED.value)
                .group_by(daily_jobs.c.call_id)
            )
            return {row.call_id: _as_date(row.day) for row in result}


async def insert_daily_marks(
    conn: AsyncConnection, keys: Sequence[DailyKey], now: datetime
) -> None:
    """Mark `keys` done in this transaction; `DailyAlreadyDone` when one already is."""
    unique = list(dict.fromkeys(keys))
    key_columns = tuple_(daily_jobs.c.job, daily_jobs.c.call_id, daily_jobs.c.day)
    done: list[DailyKey] = []
    for chunk in chunks(unique):
        result = await conn.execute(
            select(daily_jobs.c.job, daily_jobs.c.call_id, daily_jobs.c.day).where(
                key_columns.in_(chunk)
            )
        )
        done.extend((row.job, row.call_id, _as_date(row.day)) for row in result)
    if done:
        raise DailyAlreadyDone(done)
    await conn.execute(
        insert(daily_jobs),
        [
            {"job": job, "call_id": call_id, "day": day, "done_at": now}
            for job, call_id, day in unique
        ],
    )


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


__all__ = ["DailyJobs", "insert_daily_marks"]
