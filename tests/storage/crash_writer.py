"""Crash-safety writer, run by test_crash.py: commits batches until it is killed.

Each batch opens one or more new calls, each with its trigger snapshot and an audit
entry; every call_id is printed (and flushed) right AFTER `commit` returned, so a
printed call_id is one the store promised to keep.

    python -m tests.storage.crash_writer URL PREFIX
"""

from __future__ import annotations

import asyncio
import random
import sys

from risk_tui.core.lifecycle import LifecycleBatch
from risk_tui.storage.db import create_engine
from risk_tui.storage.store import Store
from tests.factories import account_state, audit_of, make_call, snapshot_of


async def write_until_killed(url: str, prefix: str) -> None:
    engine = await create_engine(url)
    store = Store(engine)
    rng = random.Random()
    print("ready", flush=True)
    opened = 0
    while True:
        size = rng.choice([1, 1, 1, 2, 3, 8, 40])  # now and then a big batch: a long commit
        calls = [make_call(f"{prefix}-{opened + i}") for i in range(size)]
        opened += size
        await store.calls.commit(
            LifecycleBatch(
                calls=calls,
                snapshots=[snapshot_of(c, payload=account_state(c.account_id, 20)) for c in calls],
                audit=[audit_of(c) for c in calls],
            )
        )
        sys.stdout.write("".join(f"{call.call_id}\n" for call in calls))
        sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(write_until_killed(sys.argv[1], sys.argv[2]))
