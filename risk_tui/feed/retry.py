"""The one retry policy of every request to the broker: capped exponential backoff with jitter.

Why one: the poller and the broker client each had their own backoff (tenacity in one, a
hand-written loop in the other), and the two drifted. Both now retry through
`RetryPolicy.retrying`, a tenacity `AsyncRetrying`: the wait before retry n is
`backoff * 2**(n-1)` plus up to `jitter` seconds at random, never more than
`backoff_cap` — the jitter so that many terminals retrying after the same outage do not
hit the broker in step, the cap so that a desk back from an outage notices soon.
What is retried, and when to stop besides the number of attempts, is the caller's:
a poll retries until it succeeds or its time is up, an order's POST only on an answer
that leaves it in doubt. `sleep` is injectable, so a test can record the waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    retry_if_exception_type,
    wait_exponential_jitter,
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often a request is tried, and how long to wait between tries."""

    attempts: int | None = 4  # tries in all; None: until the caller's `stop` says so
    backoff: float = 0.25  # seconds before the first retry (then doubling), plus jitter
    backoff_cap: float = 4.0  # never wait longer than this between tries
    jitter: float = 0.25  # up to this many seconds added at random to each wait
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def __post_init__(self) -> None:
        if self.attempts is not None and self.attempts < 1:
            raise ValueError("attempts must be at least 1")

    def retrying(
        self,
        retry_on: type[BaseException] | Callable[[BaseException], bool],
        *,
        stop: Callable[[RetryCallState], bool] | None = None,
        before_sleep: Callable[[RetryCallState], None] | None = None,
    ) -> AsyncRetrying:
        """Retry what raises a `retry_on` (an exception type, or a test of the exception);
        anything else, and the last failure once the attempts (or `stop`) run out, is
        raised as it is."""

        def stop_now(state: RetryCallState) -> bool:
            used_up = self.attempts is not None and state.attempt_number >= self.attempts
            return used_up or (stop is not None and stop(state))

        return AsyncRetrying(
            retry=(
                retry_if_exception_type(retry_on)
                if isinstance(retry_on, type)
                else retry_if_exception(retry_on)
            ),
            wait=wait_exponential_jitter(
                multiplier=self.backoff, max=self.backoff_cap, jitter=self.jitter
            ),
            stop=stop_now,
            before_sleep=before_sleep,
            sleep=self.sleep,
            reraise=True,
        )


__all__ = ["RetryPolicy"]
