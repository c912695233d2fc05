"""Waiting in tests: `until` a condition holds, and reads of a pty or a pipe that always
honour their deadline.

A wait fails with what it waited for, how long, and (when given) what explains it — a
child process's stderr, a server log — never with a bare "condition not met".
"""

from __future__ import annotations

import asyncio
import inspect
import os
import select
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

T = TypeVar("T")

Condition = Callable[[], bool | Awaitable[bool]]
Context = Callable[[], str | Awaitable[str]]

POLL = 0.02  # seconds between looks at a condition


async def until(
    condition: Condition,
    *,
    seconds: float = 10.0,
    what: str = "the condition",
    context: Context | None = None,
    give_up_if: Callable[[], bool] | None = None,
) -> float:
    """Wait until `condition()` (sync or async) is true; return how many seconds it took.

    Fails after `seconds`, or at once when `give_up_if()` says waiting cannot help any
    more (the child process that should make it true has exited). The failure says
    `what` was awaited and ends with `context()` (e.g. the child's stderr) when given.
    """
    started = time.monotonic()
    while True:
        if await _value(condition()):
            return time.monotonic() - started
        waited = time.monotonic() - started
        gave_up = give_up_if is not None and give_up_if()
        if gave_up or waited >= seconds:
            why = "gave up" if gave_up else "timed out"
            message = f"{what}: not within {seconds:g}s ({why} after {waited:.1f}s)"
            if context is not None:
                message += "\n" + await _value(context())
            pytest.fail(message)
        await asyncio.sleep(POLL)


async def _value(value: T | Awaitable[T]) -> T:
    if inspect.isawaitable(value):
        return await value
    return value


def read_until(
    fd: int,
    done: Callable[[bytes], bool] | None = None,
    *,
    seconds: float,
    what: str,
) -> bytes:
    """Read `fd` (a pty's leader or a pipe) until `done(everything read)` holds, or with
    `done=None` until end of file; return everything read.

    Each read waits in `select` for at most the time left, so the deadline holds even
    when the other side never writes again (a bare `os.read` would block for ever). A
    pty whose other side closed says EIO: that is its end of file. Fails after `seconds`,
    or at end of file before `done`, with the tail of what was read.
    """
    output = bytearray()
    deadline = time.monotonic() + seconds
    while done is None or not done(bytes(output)):
        left = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(left, 0))
        if not ready:
            pytest.fail(f"{what}: not within {seconds:g}s; the last output:\n{_tail(output)}")
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the pty's other side is closed
            chunk = b""
        if not chunk:
            if done is None:
                break
            pytest.fail(f"{what}: the output ended first; the last of it:\n{_tail(output)}")
        output.extend(chunk)
    return bytes(output)


def _tail(output: bytearray, size: int = 2000) -> str:
    return repr(bytes(output[-size:]))
