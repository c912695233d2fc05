"""What the other processes of a shared desk changed: PostgreSQL LISTEN on its own connection.

Migration 0002's triggers send `pg_notify('risk_tui', '<table>:<version>:<key>')` (the
call's version; 0 for other tables) for every change
a terminal must see, delivered when the writing transaction commits. A `ChangeListener`
listens on a dedicated asyncpg connection — never a pooled one: a pool closes idle
connections and resets sessions, and the listener goes with its session — and hands the
keys, batched, to `on_changes`.

Notifications sent while no listener is connected are lost. So after every connect (the
first one too) the listener calls `on_connect`, which re-reads everything in full, and it
does so after LISTEN is in place: nothing committed after the re-read can be missed. A
dead connection is found by the termination callback or, at the latest, by a check
every `check` seconds; the listener then says so (`connected` is False, so the screen
can say its calls may be behind) and reconnects every `retry` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable

import asyncpg

from risk_tui.storage.election import CONNECTION_ERRORS, asyncpg_dsn

log = logging.getLogger(__name__)

CHANNEL = "risk_tui"  # the triggers' channel (migration 0002)

# table → key changed (call ids, client order ids, …) → the highest version notified
Changes = dict[str, dict[str, int]]


def parse_notification(payload: str) -> tuple[str, int, str] | None:
    """`calls:3:MC…` → ("calls", 3, "MC…"); None for anything else."""
    table, sep, rest = payload.partition(":")
    version, sep2, key = rest.partition(":")
    if not sep or not sep2 or not table or not key or not version.isdigit():
        return None
    return table, int(version), key


class ChangeListener:
    """LISTEN for the desk's changes; `run` forever, reconnecting, until cancelled."""

    def __init__(
        self,
        url: str,
        on_changes: Callable[[Changes], Awaitable[None]],
        on_connect: Callable[[], Awaitable[None]],
        *,
        retry: float = 1.0,
        check: float = 2.0,
        settle: float = 0.02,
        on_state: Callable[[bool], None] | None = None,
    ) -> None:
        self.dsn = asyncpg_dsn(url)
        self.on_changes = on_changes
        self.on_connect = on_connect
        self.on_state = on_state
        self.retry = retry
        self.check = check
        self.settle = settle  # gather a burst (a crash poll's thousands of calls) first
        self.connected = False
        self.reconnects = 0  # connections made after the first
        self.backend_pid: int | None = None  # the session's server process
        self._pending: Changes = defaultdict(dict)
        self._arrived = asyncio.Event()
        self._lost = asyncio.Event()

    def _heard(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        parsed = parse_notification(str(payload))
        if parsed is None:
            log.warning("ignored a notification not of the form table:version:key")
            return
        table, version, key = parsed
        keys = self._pending[table]
        keys[key] = max(version, keys.get(key, 0))
        self._arrived.set()

    def _closed(self, _conn: object) -> None:
        self._lost.set()
        self._arrived.set()

    def _set_state(self, connected: bool) -> None:
        if connected != self.connected:
            self.connected = connected
            if self.on_state is not None:
                self.on_state(connected)

    async def run(self) -> None:
        first = True
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.dsn)
                self._lost.clear()
                conn.add_termination_listener(self._closed)
                await conn.add_listener(CHANNEL, self._heard)
                self.backend_pid = conn.get_server_pid()
                if not first:
                    self.reconnects += 1
                first = False
                self._pending.clear()  # the full re-read below covers them
                await self.on_connect()
                self._set_state(True)
                log.info("listening for the desk's changes (server pid %d)", self.backend_pid)
                await self._deliver(conn)
            except CONNECTION_ERRORS as gone:
                log.warning("the desk's change notifications are cut off: %s", gone)
            finally:
                self._set_state(False)
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=2)
            await asyncio.sleep(self.retry)

    async def _deliver(self, conn: asyncpg.Connection) -> None:
        """Hand batches of changes on until the connection is lost."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.check):
                    await self._arrived.wait()
            if self._lost.is_set() or conn.is_closed():
                raise asyncpg.InterfaceError("the listening connection closed")
            if not self._arrived.is_set():  # quiet: is the connection still there?
                async with asyncio.timeout(max(self.check, 1.0) * 5):
                    await conn.fetchval("SELECT 1")
                continue
            await asyncio.sleep(self.settle)
            self._arrived.clear()
            batch, self._pending = self._pending, defaultdict(dict)
            if batch:
                await self.on_changes(dict(batch))
