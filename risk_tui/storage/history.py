"""History: ended calls paged by key, their end snapshots, each call's snapshots, remarks, audit.

Why apart from `calls.py`: these are reads only, of what the lifecycle has finished
with, for the History tab, the details view and exports; none of them takes a lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select

from risk_tui.core.lifecycle import CallState, MarginCall, SnapshotScenario
from risk_tui.core.records import CallEnds, HistoryKey, StoredAudit, StoredRemark, StoredSnapshot
from risk_tui.storage.base import Repository, chunks
from risk_tui.storage.rows import AUDIT_ROWS, CALL_ROWS, REMARK_ROWS, SNAPSHOT_ROWS
from risk_tui.storage.tables import audit_log, calls, remarks, snapshots


class History(Repository):
    """What the desk keeps of calls: ended calls, and each call's evidence."""

    async def ended_calls(self, limit: int = 100, offset: int = 0) -> list[MarginCall]:
        """A page of history, the most recently ended first."""
        async with self._reader() as conn:
            result = await conn.execute(
                select(calls)
                .where(calls.c.state == CallState.ENDED.value)
                .order_by(calls.c.ended_at.desc(), calls.c.call_id.desc())
                .limit(limit)
                .offset(offset)
            )
            return [CALL_ROWS.from_row(row) for row in result.mappings()]

    async def count_ended_calls(self) -> int:
        async with self._reader() as conn:
            query = (
                select(func.count())
                .select_from(calls)
                .where(calls.c.state == CallState.ENDED.value)
            )
            return int((await conn.execute(query)).scalar_one())

    async def history_page(
        self,
        limit: int,
        *,
        before: HistoryKey | None = None,
        since: datetime | None = None,
        needle: str | None = None,
    ) -> list[MarginCall]:
        """Up to `limit` ended calls, newest first (ended_at desc, then call_id desc).

        Keyset paging, so a page deep in a long history costs what the first one does:
        `before` gives the (ended_at, call_id) of the last row already shown and returns
        the calls after it; `since` keeps only calls ended at or after that instant (the
        top of the list, re-read when calls end); `needle` keeps calls whose account,
        client name or call id contains it (case-insensitive for ASCII on SQLite).
        """
        conditions = [calls.c.state == CallState.ENDED.value, *_history_match(needle)]
        if before is not None:
            ended_at, call_id = before
            conditions.append(calls.c.ended_at <= ended_at)
            conditions.append(or_(calls.c.ended_at < ended_at, calls.c.call_id < call_id))
        if since is not None:
            conditions.append(calls.c.ended_at >= since)
        async with self._reader() as conn:
            result = await conn.execute(
                select(calls)
                .where(*conditions)
                .order_by(calls.c.ended_at.desc(), calls.c.call_id.desc())
                .limit(limit)
            )
            return [CALL_ROWS.from_row(row) for row in result.mappings()]

    async def count_history(self, needle: str | None = None) -> int:
        """How many ended calls `history_page` would page through with this `needle`."""
        async with self._reader() as conn:
            query = (
                select(func.count())
                .select_from(calls)
                .where(calls.c.state == CallState.ENDED.value, *_history_match(needle))
            )
            return int((await conn.execute(query)).scalar_one())

    async def end_snapshots(self, call_ids: Sequence[str]) -> dict[str, CallEnds]:
        """For each call, its first trigger and its last end snapshot: one query per
        1,000 calls, whatever the number of snapshots in between."""
        wanted = list(dict.fromkeys(call_ids))
        found: dict[str, CallEnds] = {call_id: CallEnds(None, None) for call_id in wanted}
        scenarios = (SnapshotScenario.TRIGGER.value, SnapshotScenario.END.value)
        async with self._reader() as conn:
            for chunk in chunks(wanted):
                result = await conn.execute(
                    select(snapshots)
                    .where(snapshots.c.call_id.in_(chunk), snapshots.c.scenario.in_(scenarios))
                    .order_by(snapshots.c.seq)
                )
                for row in result.mappings():
                    snap = SNAPSHOT_ROWS.from_row(row)
                    ends = found[snap.call_id]
                    if snap.scenario is SnapshotScenario.END:
                        found[snap.call_id] = replace(ends, end=snap)  # the last one wins
                    elif ends.trigger is None:
                        found[snap.call_id] = replace(ends, trigger=snap)
        return found

    async def snapshots_for(self, call_id: str) -> list[StoredSnapshot]:
        """Every snapshot of a call, in the order taken (trigger first, end last)."""
        async with self._reader() as conn:
            result = await conn.execute(
                select(snapshots).where(snapshots.c.call_id == call_id).order_by(snapshots.c.seq)
            )
            return [SNAPSHOT_ROWS.from_row(row) for row in result.mappings()]

    async def remarks_for(self, call_id: str) -> list[StoredRemark]:
        """The remark and exception-flag history of a call, oldest first."""
        async with self._reader() as conn:
            result = await conn.execute(
                select(remarks).where(remarks.c.call_id == call_id).order_by(remarks.c.id)
            )
            return [REMARK_ROWS.from_row(row) for row in result.mappings()]

    async def audit_for(self, call_id: str) -> list[StoredAudit]:
        """The audit entries about a call, oldest first (the details timeline)."""
        async with self._reader() as conn:
            result = await conn.execute(
                select(*AUDIT_ROWS.columns_of(audit_log))
                .where(audit_log.c.call_id == call_id)
                .order_by(audit_log.c.seq)
            )
            return [AUDIT_ROWS.from_row(row) for row in result.mappings()]


def _history_match(needle: str | None) -> list[Any]:
    """`history_page`'s text filter: account, client or call id contains `needle`."""
    text = (needle or "").strip().lower()
    if not text:
        return []
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    return [
        or_(
            *(
                func.lower(column).like(pattern, escape="\\")
                for column in (calls.c.account_id, calls.c.client_name, calls.c.call_id)
            )
        )
    ]


__all__ = ["History"]
