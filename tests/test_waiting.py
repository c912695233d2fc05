"""The suite's wait helpers keep their word: deadlines hold, failures say why."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator

import pytest

from tests.waiting import read_until, until


async def test_until_takes_a_sync_or_async_condition_and_says_how_long_it_waited() -> None:
    ready_at = time.monotonic() + 0.1

    async def ready() -> bool:
        return time.monotonic() >= ready_at

    assert 0.05 <= await until(ready, seconds=5) < 5
    assert await until(lambda: True) < 0.05


async def test_until_fails_with_what_it_waited_for_and_the_context() -> None:
    with pytest.raises(
        pytest.fail.Exception, match=r"(?s)the engine active: not within 0\.1s.*\nlog$"
    ):
        await until(lambda: False, seconds=0.1, what="the engine active", context=lambda: "log")
    with pytest.raises(pytest.fail.Exception, match=r"timed out after 0\.\ds\)\nlast lines"):
        await until(lambda: False, seconds=0.1, context=lambda: "last lines")


async def test_until_gives_up_at_once_when_waiting_cannot_help() -> None:
    started = time.monotonic()
    with pytest.raises(pytest.fail.Exception, match="gave up after"):
        await until(lambda: False, seconds=30, give_up_if=lambda: True)
    assert time.monotonic() - started < 1


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    reader, writer = os.pipe()
    yield reader, writer
    for fd in (reader, writer):
        with contextlib.suppress(OSError):  # closed by the test: the end of file it needed
            os.close(fd)


def test_read_until_honours_its_deadline_when_nothing_comes(pipe: tuple[int, int]) -> None:
    reader, writer = pipe
    os.write(writer, b"half a line")
    started = time.monotonic()
    with pytest.raises(pytest.fail.Exception, match=r"(?s)not within 0\.2s.*half a line"):
        read_until(reader, lambda out: b"\n" in out, seconds=0.2, what="a whole line")
    assert time.monotonic() - started < 2


def test_read_until_stops_at_what_it_waits_for_or_at_the_end(pipe: tuple[int, int]) -> None:
    reader, writer = pipe
    os.write(writer, b"first line\n")
    assert read_until(reader, lambda out: b"\n" in out, seconds=5, what="a line") == b"first line\n"
    os.write(writer, b"the rest")
    os.close(writer)
    assert read_until(reader, seconds=5, what="the end") == b"the rest"
    with pytest.raises(pytest.fail.Exception, match="the output ended first"):
        read_until(reader, lambda out: False, seconds=5, what="more")
