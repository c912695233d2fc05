"""What every repository shares: engine and clock, lock-free reads, a row by key, key chunks.

Why apart: `Store` builds all its repositories over one engine and one clock; each of
them reads without the write lock the same way (`db.READ_ONLY`), and cuts long key lists
to SQLite's cap on bound parameters the same way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from risk_tui.storage.db import READ_ONLY
from risk_tui.storage.errors import StorageError
from risk_tui.storage.rows import Rows

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

R = TypeVar("R", bound="DataclassInstance")
T = TypeVar("T")

IN_CHUNK = 1_000  # keys in one `IN (…)`: SQLite caps bound parameters


def utcnow() -> datetime:
    return datetime.now(UTC)


def chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    """`items` in slices of at most `IN_CHUNK`, in order."""
    for start in range(0, len(items), IN_CHUNK):
        yield items[start : start + IN_CHUNK]


class Repository:
    """One aggregate's reads and writes over the store's engine."""

    def __init__(self, engine: AsyncEngine, clock: Callable[[], datetime] = utcnow) -> None:
        self._engine = engine
        self._clock = clock

    @asynccontextmanager
    async def _reader(self) -> AsyncIterator[AsyncConnection]:
        async with self._engine.connect() as conn:
            yield await conn.execution_options(**READ_ONLY)


async def by_key(conn: AsyncConnection, key: Any, value: str, rows: Rows[R]) -> R | None:
    """The one row whose primary-key column `key` is `value`, as a record; None if none."""
    query = select(key.table).where(key == value)
    row = (await conn.execute(query)).mappings().one_or_none()
    return None if row is None else rows.from_row(row)


def insert_for(conn: AsyncConnection, table: Table) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT (SQLite and PostgreSQL spell it alike)."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise StorageError(f"unsupported database {conn.dialect.name!r}")


__all__ = ["IN_CHUNK", "Repository", "by_key", "chunks", "insert_for", "utcnow"]
