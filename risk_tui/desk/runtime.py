"""One desk process at run time: its poller feeding the engine, the tasks its role runs,
and its start from what is stored.

`compose.compose_desk` builds a `Desk` for its role from the services; this module is the
part every role shares: the poll sink (a payload applied under the calls lock, then the
role's after-poll work), the book cache, the start (stored calls painted first, marked
stale, then the cached book), and running the role's tasks until cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from risk_tui.config import Settings
from risk_tui.core.lifecycle import LifecycleBatch
from risk_tui.desk.api import DeskRole
from risk_tui.desk.approvals import Approvals
from risk_tui.desk.call_actions import CallActions
from risk_tui.desk.daily import DailyJobs
from risk_tui.desk.engine import Engine, PollOutcome
from risk_tui.desk.events import EventHub
from risk_tui.desk.heartbeat import EngineWatch, Heartbeat
from risk_tui.desk.intents import Intents
from risk_tui.desk.kill_switch import KillSwitchService
from risk_tui.desk.languages import MessageLanguages
from risk_tui.desk.listener import DeskListener
from risk_tui.desk.plans import AutoLiquidations
from risk_tui.desk.trading import Trading
from risk_tui.feed.models import FeedError, ParsedPayload, book_to_payload, parse_payload
from risk_tui.feed.poller import Poller
from risk_tui.storage.store import Store

log = logging.getLogger(__name__)

BOOK_CACHE_KEY = "book"
CACHE_INTERVAL = 30.0  # seconds between book-cache writes while changes keep coming
FIRST_PAINT_WAIT = 2.0  # seconds `Desk.start` waits for a screen to paint the stored calls

AfterPoll = Callable[[PollOutcome, bool], Awaitable[None]]  # (outcome, full)
Runner = Callable[[], Coroutine[Any, Any, None]]
Recovery = Callable[[], Awaitable[object]]


class PollSink:
    """The poller's sink: one payload applied under the calls lock, then the role's
    after-poll work, in order."""

    def __init__(self, engine: Engine, calls_lock: asyncio.Lock) -> None:
        self._engine = engine
        self._calls_lock = calls_lock
        self.after: list[AfterPoll] = []
        self.applied = asyncio.Event()  # set by the first poll applied

    async def __call__(self, parsed: ParsedPayload, *, full: bool) -> int:
        async with self._calls_lock:
            outcome = await self._engine.apply(parsed.changes, full=full, rejected=parsed.rejected)
        self.applied.set()
        for work in self.after:
            await work(outcome, full)
        return outcome.recomputed


class BookCache:
    """The book written to the database for the next start, and read back at start."""

    def __init__(
        self,
        engine: Engine,
        store: Store,
        calls_lock: asyncio.Lock,
        monotonic: Callable[[], float],
    ) -> None:
        self._engine = engine
        self._store = store
        self._calls_lock = calls_lock
        self._monotonic = monotonic
        self._last = -math.inf

    async def after_poll(self, _outcome: PollOutcome, full: bool) -> None:
        now = self._monotonic()
        if full or now - self._last >= CACHE_INTERVAL:
            await self.save()
            self._last = now

    async def save(self) -> None:
        """Write the book for the next start. Written out in a worker thread (seconds at
        crash-day size) while holding the calls lock, so no poll changes it meanwhile
        and the screen keeps answering."""
        async with self._calls_lock:
            book = self._engine.book
            if book.cursor is None:
                return
            text = await asyncio.to_thread(lambda: json.dumps(book_to_payload(book)))
            await self._store.cache.put_cache(BOOK_CACHE_KEY, text)

    async def restore(self) -> str | None:
        """The cached book applied (figures shown, no lifecycle: not live); its cursor."""
        cached = await self._store.cache.get_cache(BOOK_CACHE_KEY)
        if not cached:
            return None
        try:
            parsed = await asyncio.to_thread(lambda: parse_payload(json.loads(cached)))
        except (ValueError, FeedError):
            log.warning("the cached book is unreadable; waiting for the feed")
            return None
        await self._engine.apply(parsed.changes, full=True, fresh=False)
        return parsed.changes.cursor


@dataclass(eq=False)
class Desk:
    """One desk process: its engine, poller and services, and what its role runs."""

    role: DeskRole
    settings: Settings
    store: Store
    engine: Engine
    poller: Poller
    events: EventHub
    calls_lock: asyncio.Lock
    cache: BookCache
    trading: Trading
    kill_switch: KillSwitchService
    plans: AutoLiquidations
    intents: Intents
    approvals: Approvals
    call_actions: CallActions
    daily: DailyJobs
    languages: MessageLanguages
    listener: DeskListener | None = None
    heartbeat: Heartbeat | None = None  # an engine's
    watch: EngineWatch | None = None  # a terminal's
    runners: list[Runner] = field(default_factory=list)
    recoveries: list[Recovery] = field(default_factory=list)
    # Set by a screen once it painted the first view (`start` waits for it, briefly).
    shown: asyncio.Event | None = None

    async def start(self) -> None:
        """Open calls from storage, and the last cached book shown as stale until a poll."""
        engine = self.engine
        await engine.start()
        await self.trading.note_filled()
        await self.trading.note_working()
        await self.plans.note_planned()
        # First paint: the open calls as last stored, marked stale, before the cached
        # book (seconds to read at crash-day size, in a worker thread) gives figures.
        engine.mark_stale()
        if self.shown is not None:
            # A screen is showing it: let it paint before the cached book (seconds of
            # work in a thread, sharing the interpreter) slows everything down.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FIRST_PAINT_WAIT):
                    await self.shown.wait()
        engine.prepare_calendars()
        # The cached book's figures are published by the engine as it applies them; with
        # no cache, the stale view above stands until the first poll.
        cursor = await self.cache.restore()
        if cursor is not None:
            self.poller.cursor = cursor

    async def recover(self) -> None:
        """Settle what a previous run of this role left unfinished (orders and messages
        in doubt, approved requests not executed)."""
        for recovery in self.recoveries:
            await recovery()

    async def run(self) -> None:
        """Run the role's tasks (the poller first) until cancelled."""
        try:
            async with asyncio.TaskGroup() as tasks:
                for runner in self.runners:
                    tasks.create_task(runner())
        finally:
            # Stopping (quit, cancel): the call amounts not written yet are written now.
            with contextlib.suppress(Exception):
                await asyncio.shield(self.flush_updates())

    async def flush_updates(self) -> None:
        """Write the open calls' amounts and levels that moved since the last write."""
        async with self.calls_lock:
            calls = self.engine.unsaved_calls()
            if calls:
                await self.store.calls.commit(LifecycleBatch(repriced=calls))
