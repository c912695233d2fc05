"""Which engine runs a shared desk: its heartbeat, and a terminal's watch on it.

An engine process writes a heartbeat row every HEARTBEAT_INTERVAL (`standby` while it
waits for the desk's lock, `active` while it holds it, with whether it polled since the
last beat; `stopped` when it stops cleanly). A terminal reads the heartbeats every
ENGINE_WATCH_INTERVAL and shows the engine status (`desk.api.EngineStatus`): which engine
runs the desk, or that none does, or that this terminal no longer hears the others.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import replace

from sqlalchemy.exc import SQLAlchemyError

from risk_tui.core.records import EngineBeat
from risk_tui.desk.api import EngineStatus
from risk_tui.storage.store import Store

log = logging.getLogger(__name__)

DESK = "main"  # one desk per database: the lock key and the heartbeat rows name it
HEARTBEAT_INTERVAL = 1.0  # seconds between an engine's heartbeats
ENGINE_SILENT_AFTER = 5.0  # a terminal says "no engine" when the last beat is this old
ENGINE_WATCH_INTERVAL = 2.0  # seconds between a terminal's looks at the heartbeats


def engine_id() -> str:
    """This engine process's name in the heartbeat table: host, pid and a nonce."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def engine_status(beats: list[EngineBeat], *, listening: bool) -> EngineStatus:
    """From the desk's heartbeat rows, latest first (`Store.desk_engines`)."""
    recent = [b for b in beats if b.beat_age <= ENGINE_SILENT_AFTER]
    active = next((b for b in recent if b.role == "active"), None)
    last = next((b for b in beats if b.role != "standby"), None)
    return EngineStatus(
        active=active,
        standby=sum(b.role == "standby" for b in recent),
        last=None if active is not None else last,
        listening=listening,
    )


class Heartbeat:
    """An engine process's heartbeat row."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.engine_id = engine_id()
        self._polled = False  # a poll applied since the last beat

    def polled(self) -> None:
        """A poll was applied (said in the next active beat)."""
        self._polled = True

    async def beat(self, role: str, *, polled: bool = False) -> None:
        """Write this engine process's heartbeat row (`engines`) once."""
        await self._store.engines.beat_engine(
            self.engine_id,
            DESK,
            host=socket.gethostname(),
            pid=os.getpid(),
            role=role,
            polled=polled,
        )

    async def beats(self, role: str) -> None:
        """A heartbeat every HEARTBEAT_INTERVAL until cancelled; an active engine says
        whether it polled since the last one."""
        while True:
            polled, self._polled = self._polled, False
            try:
                await self.beat(role, polled=polled and role == "active")
            except (SQLAlchemyError, OSError) as problem:
                log.warning("heartbeat not written: %s", problem)
            await asyncio.sleep(HEARTBEAT_INTERVAL)


class EngineWatch:
    """A terminal's view of its desk's engine, told to `show` whenever it changes."""

    def __init__(self, store: Store, show: Callable[[EngineStatus], None]) -> None:
        self._store = store
        self._show = show
        self.status: EngineStatus | None = None
        self.listening = False

    def listener_state(self, connected: bool) -> None:
        """The change listener connected or lost its connection."""
        self.listening = connected
        if self.status is not None:
            self._set(replace(self.status, listening=connected))

    def _set(self, status: EngineStatus) -> None:
        self.status = status
        self._show(status)

    async def watch(self) -> None:
        """Read the heartbeats every ENGINE_WATCH_INTERVAL until cancelled."""
        while True:
            try:
                beats = await self._store.engines.desk_engines(DESK)
            except (SQLAlchemyError, OSError) as problem:
                log.warning("engine heartbeats unreadable: %s", problem)
                beats = []
            self._set(engine_status(beats, listening=self.listening))
            await asyncio.sleep(ENGINE_WATCH_INTERVAL)
