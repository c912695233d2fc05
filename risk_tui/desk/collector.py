"""The garbage collector on the desk's schedule, not at random moments of a key press.

A crash day keeps millions of long-lived objects (the book, 20,000 calls and their rows);
left automatic, each full collection walks them all and stops the event loop for seconds.
So, while the desk runs: automatic collection off; the young generations collected every
YOUNG_COLLECTION_INTERVAL (only what was made since, a few ms); a full collection every
FULL_COLLECTION_INTERVAL, after which the survivors are frozen (never walked again; still
freed by reference counting). Snapshots freeze their new book too (`BookState.recompute`).
"""

from __future__ import annotations

import asyncio
import gc
import time

YOUNG_COLLECTION_INTERVAL = 0.25  # seconds between collections of the young generations
FULL_COLLECTION_INTERVAL = 600.0  # seconds between full collections while the desk runs


def hold_collector() -> bool:
    """The desk's collector schedule, from now: what exists is frozen (never walked
    again) and automatic collection is off; returns whether it was on."""
    was_enabled = gc.isenabled()
    gc.freeze()
    gc.disable()
    return was_enabled


def collect_young() -> None:
    """The young generations only: what was made since the last collection."""
    gc.collect(1)


def collect_full() -> None:
    """Everything not frozen, then freeze the survivors."""
    gc.collect()
    gc.freeze()


async def collect_garbage() -> None:
    """Run the schedule until cancelled; automatic collection comes back as it was."""
    was_enabled = hold_collector()
    last_full = time.monotonic()
    try:
        while True:
            await asyncio.sleep(YOUNG_COLLECTION_INTERVAL)
            if time.monotonic() - last_full >= FULL_COLLECTION_INTERVAL:
                collect_full()
                last_full = time.monotonic()
            else:
                collect_young()
    finally:
        if was_enabled:
            gc.enable()
