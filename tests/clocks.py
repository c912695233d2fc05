"""Clocks a test moves by hand, for code that takes `clock=`, `monotonic=` and `sleep=`.

`Monotonic.sleep` is a sleep on the hand-moved clock: the time passes at once, so a
30-second backoff or a minute of feed silence costs the test nothing, and what the code
did at each instant can be read back (`slept`).
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta, timezone

SGT = timezone(timedelta(hours=8))


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    def set_sgt(self, day: date, hour: int, minute: int) -> None:
        self.now = datetime(day.year, day.month, day.day, hour, minute, tzinfo=SGT)


class Monotonic:
    """A monotonic clock (feed health, rate limits, backoff) the test moves by hand, or
    the code under test moves by sleeping on it."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.slept: list[float] = []  # every sleep asked for, in order

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        """`asyncio.sleep` on this clock: the time passes at once; other tasks (the
        test) get their turn."""
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)
