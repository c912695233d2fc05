"""The book cache: the last feed state, kept so a restarted desk shows it at once (marked stale).

Why a table: it is a key-value row the desk overwrites every few seconds; it is not
evidence, so it has no audit entry and takes no chain lock.
"""

from __future__ import annotations

from sqlalchemy import select

from risk_tui.storage.base import Repository, insert_for
from risk_tui.storage.tables import feed_cache


class FeedCache(Repository):
    """Text values by key (the book cache)."""

    async def put_cache(self, key: str, value: str) -> None:
        now = self._clock()
        async with self._engine.begin() as conn:
            stmt = insert_for(conn, feed_cache).values(key=key, value=value, updated_at=now)
            await conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[feed_cache.c.key],
                    set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
                )
            )

    async def get_cache(self, key: str) -> str | None:
        async with self._reader() as conn:
            return (
                await conn.execute(select(feed_cache.c.value).where(feed_cache.c.key == key))
            ).scalar_one_or_none()


__all__ = ["FeedCache"]
