"""The daily jobs: every open call's daily snapshot and reminder, once per market day.

Every open call, once per day of its market's wall clock, from the day after its
trigger: a DAILY snapshot at or after `daily.snapshot_time`, and a reminder message at or
after `daily.reminder_time` until the deadline (never to an exception). Both only while
the feed is LIVE: a job that finds the feed stale waits, says so in the log, and runs as
soon as the feed is live again that day. A `daily_jobs` marker per (job, call, day) —
committed with the snapshots, or after the broker acknowledged the reminder — and the
reminder's fixed message_id keep a restart, or a second engine on the same database,
from doing either twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import date, datetime
from datetime import time as clock_time

from risk_tui.core.actions import ActionError, MessageIntent, SendState
from risk_tui.core.calendar import MARKET_TZ
from risk_tui.core.lifecycle import (
    LifecycleBatch,
    MarginCall,
    SnapshotScenario,
    daily_snapshot_due,
)
from risk_tui.core.messages import REMINDER, Language, MessageText, call_message
from risk_tui.core.records import DailyKey
from risk_tui.core.roles import Actor, Role
from risk_tui.desk.engine import Engine
from risk_tui.desk.languages import MessageLanguages
from risk_tui.desk.trading import Trading
from risk_tui.storage.errors import DailyAlreadyDone
from risk_tui.storage.store import Store

log = logging.getLogger(__name__)

DAILY_INTERVAL = 30.0  # seconds between the daily jobs' looks for due snapshots/reminders
DAILY_SNAPSHOT_JOB = "snapshot"
DAILY_REMINDER_JOB = "reminder"
# Who sends the daily reminders: the engine, in the messaging role of an operator.
DAILY_REMINDER_ACTOR = Actor("engine:daily-reminder", Role.OPERATOR)


def reminder_message_id(call_id: str, day: date) -> str:
    """The one key of a call's reminder for a market-local day: never sent twice."""
    return f"RT-R-{call_id}-{day:%Y%m%d}"


def market_now(call: MarginCall, now: datetime) -> datetime:
    """`now` on the wall clock of the call's market."""
    return now.astimezone(MARKET_TZ[call.market])


def reminder_text(call: MarginCall, language: Language) -> MessageText:
    """The daily reminder: the operator's reminder template, in the client's language."""
    return call_message(REMINDER, call, language)


class DailyJobs:
    """The daily snapshots and reminders of the desk's open calls."""

    def __init__(
        self,
        engine: Engine,
        store: Store,
        trading: Trading,
        calls_lock: asyncio.Lock,
        *,
        feed_live: Callable[[], bool],
        first_poll: asyncio.Event,
        reminders: bool,
        languages: MessageLanguages | None = None,
        interval: float = DAILY_INTERVAL,
    ) -> None:
        self._engine = engine
        self._store = store
        self._trading = trading
        self._calls_lock = calls_lock
        self._feed_live = feed_live
        self._first_poll = first_poll
        self._reminders = reminders  # an outbox to send them through
        self._languages = languages or MessageLanguages(engine)
        self.interval = interval
        self._lock = asyncio.Lock()  # one pass of the daily jobs at a time
        self._settled: set[DailyKey] = set()  # done (or settled) here: not looked up again
        self._waiting: set[DailyKey] = set()  # logged as waiting for live data

    async def run(self) -> None:
        """The daily jobs' loop: one pass every `interval` seconds, the first as soon
        as a poll applied live data (a standby just taken over sends what is due at once)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.interval):
                await self._first_poll.wait()
        while True:
            try:
                await self.run_once()
            except Exception:  # a database or gateway failure: log, look again next tick
                log.exception("daily jobs tick failed")
            await asyncio.sleep(self.interval)

    async def run_once(self) -> tuple[list[str], list[str]]:
        """One pass: the call ids given a daily snapshot, and those this pass sent a reminder."""
        async with self._lock:
            snapshots = await self._snapshots()
            reminders = await self._send_reminders()
        return snapshots, reminders

    def _wait_for_live(self, job: str, keys: list[DailyKey]) -> None:
        """Say once per call and day that a due job waits for the feed to be live."""
        new = [key for key in keys if key not in self._waiting]
        if new:
            self._waiting.update(new)
            log.warning(
                "%d daily %s(s) due but the feed is not live: waiting for live data (calls %s)",
                len(new),
                job,
                ", ".join(call_id for _, call_id, _ in new[:10]) + (" …" if len(new) > 10 else ""),
            )

    def _late(self, job: str, keys: Iterable[DailyKey]) -> None:
        late = [key for key in keys if key in self._waiting]
        if late:
            self._waiting.difference_update(late)
            log.warning(
                "%d daily %s(s) done late, once the feed was live again (calls %s)",
                len(late),
                job,
                ", ".join(call_id for _, call_id, _ in late[:10])
                + (" …" if len(late) > 10 else ""),
            )

    def _due_today(self, at: clock_time, job: str) -> list[tuple[MarginCall, DailyKey]]:
        """Open calls past `at` in their market today, not opened today, not done here yet."""
        now = self._engine.clock()
        due: list[tuple[MarginCall, DailyKey]] = []
        for call in self._engine.open_calls.values():
            local = market_now(call, now)
            key = (job, call.call_id, local.date())
            if local.time() < at or key in self._settled:
                continue
            if daily_snapshot_due(call, None, local.date(), MARKET_TZ[call.market]):
                due.append((call, key))
        return due

    async def _snapshots(self) -> list[str]:
        engine, store = self._engine, self._store
        candidates = self._due_today(engine.settings.daily.snapshot_time, DAILY_SNAPSHOT_JOB)
        if not candidates:
            return []
        last = await store.daily.last_daily(DAILY_SNAPSHOT_JOB)
        due: list[tuple[MarginCall, DailyKey]] = []
        for call, key in candidates:
            if daily_snapshot_due(call, last.get(call.call_id), key[2], MARKET_TZ[call.market]):
                due.append((call, key))
            else:
                self._settled.add(key)
        if not due:
            return []
        if not self._feed_live():
            self._wait_for_live(DAILY_SNAPSHOT_JOB, [key for _, key in due])
            return []
        async with self._calls_lock:
            now = engine.clock()
            # Only calls still open after any poll since the candidates were gathered.
            open_ids = {c.call_id for c in engine.open_calls.values()}
            due = [(call, key) for call, key in due if call.call_id in open_ids]
            while due:
                batch = LifecycleBatch(
                    snapshots=[
                        engine.state.snapshot(
                            call,
                            SnapshotScenario.DAILY,
                            now,
                            engine.account_state(call.account_id),
                        )
                        for call, _ in due
                    ]
                )
                try:
                    await store.calls.commit(batch, daily=[key for _, key in due])
                except DailyAlreadyDone as done:  # another engine took some: not again
                    taken = set(done.keys)
                    self._settled.update(taken)
                    self._waiting.difference_update(taken)
                    due = [(call, key) for call, key in due if key not in taken]
                    continue
                break
        keys = [key for _, key in due]
        self._settled.update(keys)
        self._late(DAILY_SNAPSHOT_JOB, keys)
        if due:
            log.info("took %d daily snapshots", len(due))
        return [call.call_id for call, _ in due]

    async def _send_reminders(self) -> list[str]:
        daily = self._engine.settings.daily
        if not daily.reminders or not self._reminders:
            return []
        store = self._store
        sent: list[str] = []
        waiting: list[DailyKey] = []
        for call, key in self._due_today(daily.reminder_time, DAILY_REMINDER_JOB):
            if await store.daily.daily_done(*key):
                self._settled.add(key)
                continue
            # The stored call: another terminal may have flagged it, moved or ended it.
            stored = await store.calls.get_call(call.call_id)
            now = self._engine.clock()
            if stored is None or not stored.is_open or stored.exception:
                continue  # looked at again next pass: a flag may be lifted today
            if stored.past_deadline(now):
                self._settled.add(key)
                continue
            if not self._trading.data_fresh(call.account_id):
                waiting.append(key)
                continue
            if await self._send_reminder(replace(call, deadline=stored.deadline), key):
                sent.append(call.call_id)
        if waiting:
            self._wait_for_live(DAILY_REMINDER_JOB, waiting)
        return sent

    async def _send_reminder(self, call: MarginCall, key: DailyKey) -> bool:
        """Send (or re-send, same key) one call's reminder for the day.

        True when this pass delivered it (acknowledged on a post of ours); False when it
        failed, is in doubt, or was already delivered (another engine, before a crash).
        """
        store = self._store
        message_id = reminder_message_id(call.call_id, key[2])
        existing = await store.messages.get(message_id)
        text = reminder_text(call, self._languages.choose(call.account_id, call.market).language)
        intent = (
            existing.intent()  # recorded before a crash: the same message, whatever changed
            if existing is not None
            else MessageIntent(
                message_id=message_id,
                account_id=call.account_id,
                channel=self._engine.settings.daily.reminder_channel,
                subject=text.subject,
                body=text.body,
                reference=call.call_id,
                operator=DAILY_REMINDER_ACTOR.name,
            )
        )
        try:
            outcome = await self._trading.send_message(intent, DAILY_REMINDER_ACTOR)
        except ActionError as problem:
            log.error("daily reminder %s for %s failed: %s", message_id, call.call_id, problem)
            return False
        if outcome.send_state is SendState.FAILED:
            # The broker refused it: no retry today (the messages table says why).
            log.error("daily reminder %s refused by the broker", message_id)
        elif outcome.send_state is not SendState.ACKNOWLEDGED:
            log.warning("daily reminder %s in doubt: %s", message_id, outcome.error)
            return False  # re-sent with the same key on the next pass
        # Another engine may have marked it: the outbox's key kept it to one message.
        with contextlib.suppress(DailyAlreadyDone):
            await store.daily.mark_daily([key])
        self._settled.add(key)
        self._late(DAILY_REMINDER_JOB, [key])
        return outcome.send_state is SendState.ACKNOWLEDGED and outcome.posts > 0
