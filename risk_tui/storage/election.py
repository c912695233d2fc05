"""Which engine is the desk's active one: a PostgreSQL advisory lock on its own connection.

Only one engine may own a desk's lifecycle (one trigger snapshot per call, one reminder
a day, one execution of each auto-liquidation). Every engine of a desk asks for the
same session-level advisory lock; PostgreSQL grants it to one session at a time and
releases it when that session ends — a clean exit, a `kill -9`, a lost machine (once
the server notices the dead connection) or `pg_terminate_backend`. The others wait as
hot standby, asking again every `retry` seconds.

The lock lives on a dedicated connection, never a pooled one: a pool hands connections
around and closes idle ones, and a session lock goes with its session. The holder
checks that connection every `check` seconds (`watch`): when it is gone, so is the
lock, and the engine must stop acting as the desk's engine at once
(`LeadershipLost`), before another engine takes over.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging

import asyncpg

log = logging.getLogger(__name__)


# What a connection whose session ended can raise: the server's error, the driver's own
# (asyncpg says InternalClientError when the session is cut in the middle of a query).
CONNECTION_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)


class LeadershipLost(Exception):
    """The connection holding the desk's lock is gone: another engine may own it now."""


def desk_lock_key(desk: str) -> int:
    """The advisory lock key of a desk: stable across processes and machines (a signed
    64-bit integer from SHA-256, not Python's per-process salted `hash`)."""
    digest = hashlib.sha256(f"risk-tui desk {desk}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def asyncpg_dsn(url: str) -> str:
    """A SQLAlchemy URL (`postgresql+asyncpg://…`) as the DSN asyncpg itself takes."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.startswith("postgresql"):
        raise ValueError(f"not a PostgreSQL URL: {scheme or url}")
    return f"postgresql://{rest}"


class Leadership:
    """The desk's lock for one engine: `acquire` waits until it holds it, `watch`
    raises `LeadershipLost` when it no longer does, `release` gives it up."""

    def __init__(self, url: str, desk: str, *, retry: float = 1.0, check: float = 1.0) -> None:
        self.dsn = asyncpg_dsn(url)
        self.key = desk_lock_key(desk)
        self.retry = retry
        self.check = check
        self._conn: asyncpg.Connection | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    @property
    def backend_pid(self) -> int | None:
        """The server process of the lock's session (what `pg_terminate_backend` takes)."""
        return None if self._conn is None else self._conn.get_server_pid()

    async def acquire(self) -> None:
        """Wait, as standby, until this engine holds the desk's lock."""
        waiting_logged = False
        while True:
            try:
                if self._conn is None or self._conn.is_closed():
                    self._conn = await asyncpg.connect(self.dsn)
                if await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", self.key):
                    log.info("active: holding the desk's lock %d", self.key)
                    return
            except CONNECTION_ERRORS as failure:
                log.warning("the desk's lock cannot be asked for now: %s", failure)
                await self._drop()
            if not waiting_logged:
                log.info("standby: another engine holds the desk's lock %d", self.key)
                waiting_logged = True
            await asyncio.sleep(self.retry)

    async def watch(self) -> None:
        """Return never while the lock is held; raise `LeadershipLost` when its
        connection is gone (checked every `check` seconds)."""
        while True:
            conn = self._conn
            if conn is None or conn.is_closed():
                raise LeadershipLost("the connection holding the desk's lock is closed")
            try:
                async with asyncio.timeout(max(self.check, 1.0) * 5):
                    await conn.fetchval("SELECT 1")
            except CONNECTION_ERRORS as gone:
                await self._drop()
                raise LeadershipLost(
                    f"the connection holding the desk's lock failed: {gone}"
                ) from gone
            await asyncio.sleep(self.check)

    async def release(self) -> None:
        """Give the lock up (closing its session releases it in any case)."""
        conn = self._conn
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(*CONNECTION_ERRORS):
                await conn.fetchval("SELECT pg_advisory_unlock($1)", self.key)
        await self._drop()

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)
