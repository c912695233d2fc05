"""Hearing the other processes of a shared desk (PostgreSQL): their calls taken in at once.

Every process listens (`storage.notify.ChangeListener`) for what the others commit: a
terminal's remark, claim, close or order; the engine's new, escalated and ended calls.
Changed calls are read and merged into this process's open calls (`Engine.take_stored`);
every change is also told to the terminal (`StoreChanged`), which re-reads the tabs that
show those tables. After each (re)connect every open call is read again in full:
notifications sent while disconnected are lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from risk_tui.desk.api import DeskEvent, StoreChanged
from risk_tui.desk.engine import Engine
from risk_tui.storage.notify import ChangeListener, Changes
from risk_tui.storage.store import Store

CallVersions = dict[str, int]  # call id → the version notified


def every_call(notified: CallVersions, _engine: Engine) -> CallVersions:
    """A terminal takes in every call another process changed."""
    return notified


def newer_calls(notified: CallVersions, engine: Engine) -> CallVersions:
    """The engine needs others' lifecycle changes only (a close, a moved deadline, a
    notification): its own writes come back with versions it already holds."""
    known = {c.call_id: c.version for c in engine.open_calls.values()}
    return {k: v for k, v in notified.items() if v > known.get(k, v - 1)}


class DeskListener:
    """Takes others' changes into this process's engine and tells the terminal."""

    def __init__(
        self,
        url: str,
        engine: Engine,
        store: Store,
        calls_lock: asyncio.Lock,
        publish: Callable[[DeskEvent], None],
        *,
        wanted: Callable[[CallVersions, Engine], CallVersions],
        on_state: Callable[[bool], None] | None = None,
    ) -> None:
        self._engine = engine
        self._store = store
        self._calls_lock = calls_lock
        self._publish = publish
        self._wanted = wanted
        self.listener = ChangeListener(url, self._changes, self._reread, on_state=on_state)
        # What else this process refreshes when others change tables (none named: all).
        self.after: list[Callable[[frozenset[str]], Awaitable[None]]] = []

    async def run(self) -> None:
        await self.listener.run()

    async def _reread(self) -> None:
        """After (re)connecting: every open call as stored; screens re-read the rest."""
        stored = await self._store.calls.open_calls()
        async with self._calls_lock:
            self._engine.replace_open_calls(stored)
        await self._told(frozenset())

    async def _changes(self, changes: Changes) -> None:
        notified = self._wanted(changes.get("calls", {}), self._engine)
        if notified:
            stored = await self._store.calls.calls_by_id(notified)
            async with self._calls_lock:
                self._engine.take_stored(stored)
        await self._told(frozenset(changes))

    async def _told(self, tables: frozenset[str]) -> None:
        for refresh in self.after:
            await refresh(tables)
        self._publish(StoreChanged(tables))
