"""The records of a compliance export, read from the database in one consistent view."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from risk_tui import __version__
from risk_tui.core.export import AUDIT, CALL, FORMAT_NAME, FORMAT_VERSION, HEADER, SNAPSHOT, Period
from risk_tui.storage.chain import (
    CHAIN_AUDIT,
    CHAIN_SNAPSHOTS,
    consistent_reader,
    export_where,
    read_head,
)
from risk_tui.storage.tables import CHAINS, audit_log, calls, snapshots
from risk_tui.storage.types import iso_utc


def _plain(value: Any) -> Any:
    """A column value as JSON: decimals as strings (exact), instants as `iso_utc`."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return iso_utc(value)
    return value


async def _count(conn: AsyncConnection, table: Any, condition: Any) -> int:
    query = select(func.count()).select_from(table).where(condition)
    return int((await conn.execute(query)).scalar_one())


async def period_records(
    engine: AsyncEngine, period: Period, *, now: datetime
) -> AsyncIterator[dict[str, Any]]:
    """The export, record by record: the header, then calls, snapshots, audit records.

    Everything, counts and heads included, is read in one consistent view, so the header
    describes exactly the records that follow even while an engine keeps writing.
    """
    start, end = period.start, period.end
    call_in_period = or_(
        and_(calls.c.triggered_at >= start, calls.c.triggered_at < end),
        and_(calls.c.ended_at >= start, calls.c.ended_at < end),
    )
    snapshot_of_call = snapshots.c.call_id.in_(select(calls.c.call_id).where(call_in_period))
    audit_in_period = and_(audit_log.c.at >= start, audit_log.c.at < end)
    async with consistent_reader(engine) as conn:
        counts = {
            CALL: await _count(conn, calls, call_in_period),
            SNAPSHOT: await _count(conn, snapshots, snapshot_of_call),
            AUDIT: await _count(conn, audit_log, audit_in_period),
        }
        heads: dict[str, dict[str, Any] | None] = {}
        for chain in CHAINS:
            head = await read_head(conn, chain)
            heads[chain] = None if head is None else {"seq": head[0], "hash": head[1]}
        yield {
            "record": HEADER,
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "tool_version": __version__,
            "generated_at": iso_utc(now),
            "period": {"from": period.first.isoformat(), "to": period.last.isoformat()},
            "counts": counts,
            "heads": heads,
        }
        result = await conn.stream(
            select(calls).where(call_in_period).order_by(calls.c.triggered_at, calls.c.call_id)
        )
        async for row in result.mappings():
            yield {"record": CALL, **{key: _plain(value) for key, value in row.items()}}
        async for record in export_where(conn, CHAIN_SNAPSHOTS, [snapshot_of_call]):
            yield {"record": SNAPSHOT, **record}
        async for record in export_where(conn, CHAIN_AUDIT, [audit_in_period]):
            yield {"record": AUDIT, **record}
