"""One desk, several processes on one PostgreSQL: who does what, and how they hear each other.

- `DeskRole.EMBEDDED`: one process does everything (the default, on SQLite).
- `DeskRole.ENGINE` (`risk-tui engine`): the lifecycle — opening, escalating and ending
  calls with their snapshots — the daily jobs, auto-liquidation and following orders.
  One engine per desk is active (`storage.election.Leadership`); it writes a heartbeat.
- `DeskRole.TERMINAL` (`risk-tui run` on PostgreSQL): an operator's screen. It polls the
  feed and computes every figure itself (exactly as the engine does), takes the calls'
  lifecycle as the engine stored it, and writes only operators' actions.

Every process listens (`storage.notify.ChangeListener`) for what the others commit: a
terminal's remark, claim, close or order; the engine's new, escalated and ended calls.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from risk_tui.core.records import EngineBeat
from risk_tui.storage.notify import ChangeListener, Changes
from risk_tui.storage.store import Store

if TYPE_CHECKING:
    from risk_tui.engine import Desk

log = logging.getLogger(__name__)

DESK = "main"  # one desk per database: the lock key and the heartbeat rows name it
HEARTBEAT_INTERVAL = 1.0  # seconds between an engine's heartbeats
ENGINE_SILENT_AFTER = 5.0  # a terminal says "no engine" when the last beat is this old
ENGINE_WATCH_INTERVAL = 2.0  # seconds between a terminal's looks at the heartbeats


class DeskRole(StrEnum):
    EMBEDDED = "embedded"
    ENGINE = "engine"
    TERMINAL = "terminal"


def engine_id() -> str:
    """This engine process's name in the heartbeat table: host, pid and a nonce."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True, slots=True)
class EngineStatus:
    """What a terminal knows of the desk's engine."""

    active: EngineBeat | None  # the active engine, if its heartbeat is recent
    standby: int  # standby engines with a recent heartbeat
    last: EngineBeat | None  # when none is active: the engine heard from last, if any
    listening: bool  # this terminal hears the others' changes

    @property
    def ok(self) -> bool:
        return self.active is not None and self.listening

    def describe(self) -> str:
        if not self.listening:
            return "UPDATES CUT OFF — other terminals' and the engine's changes are not arriving"
        if self.active is None:
            last = self.last
            if last is None:
                why = "no engine has run on this desk"
            elif last.role == "stopped":
                why = f"the engine on {last.host}:{last.pid} stopped {last.beat_age:.0f}s ago"
            else:
                why = f"last heartbeat from {last.host}:{last.pid} {last.beat_age:.0f}s ago"
            return f"NO ENGINE — calls are not being opened or ended ({why})"
        active = self.active
        polled = "" if active.poll_age is None else f", polled {active.poll_age:.0f}s ago"
        return f"engine {active.host}:{active.pid}{polled}, {self.standby} standby"


def engine_status(beats: list[EngineBeat], *, listening: bool) -> EngineStatus:
    """From the desk's heartbeat rows, latest first (`store.engines.desk_engines`)."""
    recent = [b for b in beats if b.beat_age <= ENGINE_SILENT_AFTER]
    active = next((b for b in recent if b.role == "active"), None)
    last = next((b for b in beats if b.role != "standby"), None)
    return EngineStatus(
        active=active,
        standby=sum(b.role == "standby" for b in recent),
        last=None if active is not None else last,
        listening=listening,
    )


class SharedDesk:
    """The tasks a desk process runs besides its own work when it shares the desk."""

    def __init__(self, desk: Desk, store: Store, url: str, role: DeskRole) -> None:
        self.desk = desk
        self.store = store
        self.role = role
        self.engine_id = engine_id()
        self.listener = ChangeListener(url, self._changes, self._reread, on_state=self._state)
        self.status: EngineStatus | None = None
        self.on_status: Callable[[EngineStatus], None] | None = None
        self.on_change: Callable[[Changes], None] | None = None

    def runners(self) -> list[Coroutine[None, None, None]]:
        """What the desk's `run` runs besides its own loops, until cancelled."""
        watch = self.beats("active") if self.role is DeskRole.ENGINE else self._watch_engines()
        return [self.listener.run(), watch]

    async def _reread(self) -> None:
        """After (re)connecting: every open call as stored; screens re-read the rest."""
        desk = self.desk
        stored = await self.store.calls.open_calls()
        async with desk.calls_lock:
            desk.engine.replace_open_calls(stored)
        desk.publish_view()
        if self.on_change is not None:
            self.on_change({})

    async def _changes(self, changes: Changes) -> None:
        desk = self.desk
        notified = changes.get("calls", {})
        if self.role is DeskRole.ENGINE:
            # The engine needs others' lifecycle changes only (a close, a moved deadline,
            # a notification): its own writes come back with versions it already holds.
            known = {c.call_id: c.version for c in desk.engine.open_calls.values()}
            notified = {k: v for k, v in notified.items() if v > known.get(k, v - 1)}
        if notified:
            stored = await self.store.calls.calls_by_id(notified)
            async with desk.calls_lock:
                desk.engine.take_stored(stored)
            desk.publish_view()
        if self.on_change is not None:
            self.on_change(changes)

    def _state(self, connected: bool) -> None:
        if self.status is not None:
            self._show(replace(self.status, listening=connected))

    def _show(self, status: EngineStatus) -> None:
        self.status = status
        if self.on_status is not None:
            self.on_status(status)

    async def beat(self, role: str, *, polled: bool = False) -> None:
        """Write this engine process's heartbeat row (`engines`) once."""
        await self.store.engines.beat_engine(
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
        desk = self.desk
        while True:
            polled, desk.polled = desk.polled, False
            try:
                await self.beat(role, polled=polled and role == "active")
            except (SQLAlchemyError, OSError) as problem:
                log.warning("heartbeat not written: %s", problem)
            await asyncio.sleep(HEARTBEAT_INTERVAL)

    async def _watch_engines(self) -> None:
        while True:
            try:
                beats = await self.store.engines.desk_engines(DESK)
            except (SQLAlchemyError, OSError) as problem:
                log.warning("engine heartbeats unreadable: %s", problem)
                beats = []
            self._show(engine_status(beats, listening=self.listener.connected))
            await asyncio.sleep(ENGINE_WATCH_INTERVAL)
