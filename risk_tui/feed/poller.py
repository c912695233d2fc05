"""The feed poller: /v1/snapshot, then /v1/changes?cursor=…, forever, honestly.

- One task, one poll at a time: a poll starts only after the previous one (and the
  engine's work on it) finished, so polls never overlap.
- Every poll runs under a total deadline (`asyncio.timeout`): httpx's read timeout is per
  chunk, and a server that trickles bytes would otherwise hold a poll for ever.
- Connect errors, timeouts, 5xx and unusable payloads are retried with capped exponential
  backoff and jitter (the process's `RetryPolicy`, until a poll succeeds); 401/403 are
  reported as a credentials problem and retried only at the cap, not in a tight loop;
  410 Gone fetches a fresh snapshot.
- The cursor advances only after the sink (the engine) has applied and stored a payload,
  so a storage failure re-fetches the same changes rather than losing them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import httpx
from tenacity import RetryCallState

from risk_tui.config import FeedSettings
from risk_tui.core.feed_health import FeedHealth
from risk_tui.core.text import sanitize
from risk_tui.feed.client import CursorGone, FeedAuthError, FeedUnavailable, get_json
from risk_tui.feed.models import FeedError, ParsedPayload, parse_payload
from risk_tui.feed.retry import RetryPolicy

log = logging.getLogger(__name__)

BACKOFF_INITIAL = 0.5  # seconds before the first retry
BACKOFF_CAP = 30.0  # never wait longer than this between attempts
BACKOFF_JITTER = 1.0  # up to this many seconds added at random to each wait
MIN_ATTEMPT = 0.25  # seconds an attempt needs to be worth starting before giving up


class SinkError(Exception):
    """The engine or storage could not take a payload; the poll counts as failed."""


class PollSink(Protocol):
    async def __call__(self, parsed: ParsedPayload, *, full: bool) -> int:
        """Apply one payload; return how many accounts were recomputed."""
        ...


@dataclass(frozen=True, slots=True)
class PollResult:
    full: bool
    cursor: str
    applied: int
    rejected: int
    changed: int


def _retryable(problem: BaseException) -> bool:
    return isinstance(problem, FeedUnavailable | SinkError) and not isinstance(
        problem, FeedAuthError
    )


class Poller:
    def __init__(
        self,
        client: httpx.AsyncClient,
        feed: FeedSettings,
        sink: PollSink,
        *,
        on_health: Callable[[FeedHealth], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        backoff_cap: float = BACKOFF_CAP,
        cursor: str | None = None,
    ) -> None:
        self.client = client
        self.feed = feed
        self.sink = sink
        self.on_health = on_health
        self.clock = clock
        self.sleep = sleep
        self.backoff_cap = backoff_cap
        self.cursor = cursor  # None: the next poll fetches a snapshot
        self.health = FeedHealth(stale_after=feed.stale_after, started_at=clock())
        self._lock = asyncio.Lock()
        self.succeeded = asyncio.Event()  # set once a poll was applied and health says so

    def _set_health(self, health: FeedHealth) -> None:
        self.health = health
        if self.on_health is not None:
            self.on_health(health)

    async def poll_once(self, deadline: float | None = None) -> PollResult:
        """One attempt, under the total deadline; raises FeedUnavailable or SinkError.

        `deadline` (seconds) shortens feed.timeout for this attempt's HTTP exchange; the
        engine's work on the payload is not under it.
        """
        async with self._lock:  # belt and braces: callers never overlap polls
            deadline = self.feed.timeout if deadline is None else min(deadline, self.feed.timeout)
            full = self.cursor is None
            if full:
                body = await get_json(self.client, "/v1/snapshot", deadline=deadline)
            else:
                try:
                    body = await get_json(
                        self.client, "/v1/changes", deadline=deadline, cursor=self.cursor or ""
                    )
                except CursorGone:
                    log.info("cursor %s too old: fetching a fresh snapshot", self.cursor)
                    full = True
                    body = await get_json(self.client, "/v1/snapshot", deadline=deadline)
            try:
                # A snapshot is millions of records at crash-day size: parsed in a worker
                # thread so the screen keeps answering keys meanwhile.
                parsed = (
                    await asyncio.to_thread(parse_payload, body) if full else parse_payload(body)
                )
            except FeedError as bad:
                raise FeedUnavailable(f"feed payload unusable: {bad}") from None
            for rejection in parsed.rejected:
                log.warning(
                    "rejected %s[%d] %s: %s",
                    rejection.kind,
                    rejection.index,
                    sanitize(rejection.key),
                    sanitize(rejection.reason),
                )
            try:
                changed = await self.sink(parsed, full=full)
            except (FeedUnavailable, SinkError):
                raise
            except Exception as problem:  # the engine or database failed: say so, retry
                log.exception("applying the feed payload failed")
                raise SinkError(f"storing the poll failed: {problem}") from problem
            self.cursor = parsed.changes.cursor
            applied = parsed.changes.record_count
            self._set_health(
                self.health.succeeded(
                    self.clock(),
                    parsed.changes.as_of,
                    applied=applied,
                    rejected=len(parsed.rejected),
                    changed=changed,
                )
            )
            self.succeeded.set()
            return PollResult(full, self.cursor, applied, len(parsed.rejected), changed)

    def _record_failure(self, state: RetryCallState) -> None:
        outcome = state.outcome
        problem = outcome.exception() if outcome is not None else None
        self._set_health(self.health.failed(str(problem) if problem else "unknown failure"))

    async def poll(self, give_up_after: float | None = None) -> PollResult:
        """Poll until one succeeds, backing off between failures; auth errors propagate.

        With `give_up_after` (seconds), the last failure is raised once that long has
        passed without success: no attempt's HTTP exchange runs past it.
        """
        give_up_at = None if give_up_after is None else self.clock() + give_up_after

        def remaining() -> float | None:
            return None if give_up_at is None else give_up_at - self.clock()

        def out_of_time(state: RetryCallState) -> bool:
            # Stop rather than start an attempt with no real time left: its timeout would
            # hide the failure that matters (refused, 503…) behind "no answer within 0s".
            left = remaining()
            return left is not None and left - state.upcoming_sleep < MIN_ATTEMPT

        policy = RetryPolicy(
            attempts=None,
            backoff=BACKOFF_INITIAL,
            backoff_cap=self.backoff_cap,
            jitter=BACKOFF_JITTER,
            sleep=self.sleep,
        )
        retrying = policy.retrying(
            _retryable,
            stop=out_of_time if give_up_at is not None else None,
            before_sleep=self._record_failure,
        )
        result: PollResult | None = None
        async for attempt in retrying:
            with attempt:
                result = await self.poll_once(remaining())
        assert result is not None
        return result

    async def run(self) -> None:
        """Poll for ever (until cancelled): poll_interval after a success."""
        while True:
            try:
                await self.poll()
            except FeedAuthError as denied:
                self._set_health(self.health.failed(str(denied), auth=True))
                await self.sleep(self.backoff_cap)
                continue
            await self.sleep(self.feed.poll_interval)
