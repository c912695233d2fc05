"""Engine heartbeats: each engine process of a shared desk says it is alive, and when it polled.

Why on the database server's clock: terminals on other hosts judge an engine's beat by
its age, and only one clock is shared by every host of the desk (PostgreSQL only: an
SQLite desk has one process, which needs no heartbeat).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from risk_tui.core.records import EngineBeat
from risk_tui.storage.base import Repository, insert_for
from risk_tui.storage.errors import StorageError
from risk_tui.storage.tables import engines


class EngineBeats(Repository):
    """The `engines` table: one heartbeat row per engine process."""

    async def beat_engine(
        self, engine_id: str, desk: str, *, host: str, pid: int, role: str, polled: bool
    ) -> None:
        """An engine process says it is alive (and, with `polled`, that it just polled),
        on the database server's clock: terminals compare it with the same clock."""
        values: dict[str, Any] = {
            "desk": desk,
            "host": host,
            "pid": pid,
            "role": role,
            "beat_at": func.now(),
        }
        if polled:
            values["polled_at"] = func.now()
        async with self._engine.begin() as conn:
            _require_postgresql(conn, "engine heartbeats")
            stmt = insert_for(conn, engines).values(
                engine_id=engine_id, started_at=func.now(), **values
            )
            await conn.execute(
                stmt.on_conflict_do_update(index_elements=[engines.c.engine_id], set_=values)
            )

    async def desk_engines(self, desk: str) -> list[EngineBeat]:
        """The desk's engine processes, latest heartbeat first, with each heartbeat's age
        (and the last poll's) in seconds on the database server's clock."""
        now = func.now()
        async with self._reader() as conn:
            _require_postgresql(conn, "engine heartbeats")
            rows = await conn.execute(
                select(engines, now.label("server_now"))
                .where(engines.c.desk == desk)
                .order_by(engines.c.beat_at.desc())
            )
            return [
                EngineBeat(
                    engine_id=row.engine_id,
                    host=row.host,
                    pid=row.pid,
                    role=row.role,
                    started_at=row.started_at,
                    beat_age=(row.server_now - row.beat_at).total_seconds(),
                    poll_age=(
                        None
                        if row.polled_at is None
                        else (row.server_now - row.polled_at).total_seconds()
                    ),
                )
                for row in rows
            ]


def _require_postgresql(conn: AsyncConnection, what: str) -> None:
    if conn.dialect.name != "postgresql":
        raise StorageError(f"{what} need PostgreSQL (a desk shared by several processes)")


__all__ = ["EngineBeats"]
