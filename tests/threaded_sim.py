"""The simulator served from a thread of its own, for tests whose code under test runs in
another event loop (subprocesses, pytest-textual-snapshot's app loop)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

from risk_tui.cli.commands import serve_simulator
from risk_tui.sim.app import SimState


def serve_in_thread(state: SimState) -> Iterator[str]:
    """Yield the simulator's base URL while it serves; stop it afterwards."""
    ready = threading.Event()
    url: list[str] = []
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def serve() -> None:
        async with serve_simulator(state) as base:
            url.append(base)
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=lambda: loop.run_until_complete(serve()), daemon=True)
    thread.start()
    assert ready.wait(10), "simulator did not start"
    yield url[0]
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)
    loop.close()
