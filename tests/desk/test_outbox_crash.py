"""kill -9 in the middle of sending an order: after `recover()` the broker has it exactly once.

A child process (this module run with `python -m`, see `child`) submits orders through
a real Outbox to the fake broker served by the test, on a SQLite file; the test
SIGKILLs it at a chosen moment, then a fresh Outbox in the test process runs
`recover()` on the same file:

- killed after the broker created the order but before its answer arrived: the row is
  left `pending`; recover re-posts the same key and the broker answers 200 with it;
- killed after the row was committed but before the request left (the child's
  transport never sends): recover sends it, once;
- killed at a random moment in a stream of orders: every recorded order ends at the
  broker exactly once, and the broker has nothing the desk did not record first.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from itertools import count
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from risk_tui.config import FeedSettings
from risk_tui.core.actions import OrderIntent, SendState
from risk_tui.core.model import Side
from risk_tui.core.roles import Actor, Role
from risk_tui.desk.outbox import Outbox
from risk_tui.feed.broker import Broker
from risk_tui.feed.client import make_client
from risk_tui.feed.retry import RetryPolicy
from risk_tui.storage.db import create_engine, upgrade
from risk_tui.storage.store import Store
from risk_tui.storage.tables import orders
from tests.desk.broker_fake import FakeBroker, serve_fake
from tests.waiting import until

ROOT = Path(__file__).resolve().parents[2]
TRADER = Actor("jdoe", Role.TRADER)
RUNS = 3
STREAM_RUNS = 5


def intent_for(key: str) -> OrderIntent:
    return OrderIntent(
        client_order_id=key,
        account_id="A1",
        symbol="B.SG",
        side=Side.SELL,
        quantity=Decimal("100"),
        order_type="market",
        limit_price=None,
        reason="margin_call",
        reference=None,
        operator=TRADER.name,
    )


async def submit(outbox: Outbox, key: str) -> None:
    await outbox.submit_order(
        intent_for(key),
        account_state={"account_id": "A1", "equity": "9500.00"},
        actor=TRADER,
        position_quantity=Decimal("1000000"),
        call_open=True,
        data_fresh=True,
    )


# --- the child -----------------------------------------------------------------------------


async def child(mode: str, db_url: str, feed_url: str, key: str) -> None:
    engine = await create_engine(db_url)
    store = Store(engine)
    if mode == "unsent":
        # A transport that never sends: the process dies between commit and request.
        async def never(request: httpx.Request) -> httpx.Response:
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

        client = httpx.AsyncClient(base_url=feed_url, transport=httpx.MockTransport(never))
    else:
        client = make_client(FeedSettings(url=feed_url, timeout=60))
    async with client:
        outbox = Outbox(Broker(client, deadline=60), store)
        print("ready", flush=True)
        if mode == "stream":
            for n in count():
                await submit(outbox, f"{key}-{n}")
        else:
            await submit(outbox, key)
    print("finished", flush=True)  # not reached: the test kills us first


# --- the test side -------------------------------------------------------------------------


async def spawn(mode: str, db_url: str, feed_url: str, key: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.desk.test_outbox_crash",
        mode,
        db_url,
        feed_url,
        key,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def kill(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.kill()  # SIGKILL: no cleanup, no finally, no atexit
    await process.wait()
    assert process.returncode == -9, f"child ended on its own ({process.returncode})"


async def wait_until(
    condition: Callable[[], Awaitable[bool]], process: asyncio.subprocess.Process, what: str
) -> None:
    """Wait for `condition`; fail with the child's stderr if it died or stalled."""

    async def stderr() -> str:
        if process.returncode is None:
            process.kill()
        await process.wait()
        assert process.stderr is not None
        error = (await process.stderr.read()).decode()
        return f"child exit {process.returncode}, stderr:\n{error}"

    await until(
        condition,
        seconds=30,
        what=f"the child got to {what}",
        context=stderr,
        give_up_if=lambda: process.returncode is not None,
    )


async def fresh_outbox_recover(db_url: str, feed_url: str) -> Store:
    engine = await create_engine(db_url)
    store = Store(engine)
    async with make_client(FeedSettings(url=feed_url)) as client:
        broker = Broker(client, deadline=5, retry=RetryPolicy(backoff=0.01))
        await Outbox(broker, store).recover()
    return store


@pytest.mark.slow
@pytest.mark.parametrize("run", range(RUNS))
async def test_killed_after_the_broker_created_it(tmp_path: Path, run: int) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}"
    await upgrade(db_url)
    key = f"RT-O-crash-held-{run}"
    broker = FakeBroker(hold_replies=True)
    async with serve_fake(broker) as feed_url:
        process = await spawn("hold", db_url, feed_url, key)

        async def created() -> bool:
            return broker.creations[key] == 1

        await wait_until(created, process, "the broker")
        await kill(process)
        broker.hold_replies = False  # the broker is well again; the desk restarts

        store = await fresh_outbox_recover(db_url, feed_url)
        try:
            order = await store.orders.get(key)
        finally:
            await store.engine.dispose()
    assert order is not None
    assert order.send_state is SendState.ACKNOWLEDGED
    assert order.order_id == broker.orders[key]["order_id"]
    assert broker.creations[key] == 1
    assert broker.posts[key] == 2  # the killed child's, and recover's with the same key
    assert list(broker.orders) == [key]


@pytest.mark.slow
@pytest.mark.parametrize("run", range(RUNS))
async def test_killed_after_recording_before_sending(tmp_path: Path, run: int) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}"
    await upgrade(db_url)
    key = f"RT-O-crash-unsent-{run}"
    broker = FakeBroker()
    watcher = Store(await create_engine(db_url))
    try:
        async with serve_fake(broker) as feed_url:
            process = await spawn("unsent", db_url, feed_url, key)

            async def recorded() -> bool:
                return await watcher.orders.get(key) is not None

            await wait_until(recorded, process, "the database")
            await kill(process)
            assert broker.bodies == []  # nothing reached the broker
            assert (await watcher.orders.get(key)).send_state is SendState.PENDING  # type: ignore[union-attr]

            store = await fresh_outbox_recover(db_url, feed_url)
            try:
                order = await store.orders.get(key)
            finally:
                await store.engine.dispose()
    finally:
        await watcher.engine.dispose()
    assert order is not None
    assert order.send_state is SendState.ACKNOWLEDGED
    assert order.order_id == broker.orders[key]["order_id"]
    assert broker.creations[key] == 1
    assert broker.posts[key] == 1


@pytest.mark.slow
async def test_killed_at_random_in_a_stream_of_orders(tmp_path: Path) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}"
    await upgrade(db_url)
    broker = FakeBroker(reply_jitter=0.03)
    started = time.monotonic()
    async with serve_fake(broker) as feed_url:
        for run in range(STREAM_RUNS):
            process = await spawn("stream", db_url, feed_url, f"RT-O-stream-{run}")
            assert process.stdout is not None
            ready = await asyncio.wait_for(process.stdout.readline(), timeout=30)
            assert ready == b"ready\n", ready
            await asyncio.sleep(rng.uniform(0.05, 0.6))
            await kill(process)
        # Before recovery the broker may hold fewer orders than the desk recorded, never more.
        engine = await create_engine(db_url)
        try:
            async with engine.connect() as conn:
                rows = (
                    await conn.execute(select(orders.c.client_order_id, orders.c.send_state))
                ).all()
            recorded = {row.client_order_id for row in rows}
            unsettled = sum(row.send_state != SendState.ACKNOWLEDGED.value for row in rows)
        finally:
            await engine.dispose()
        assert set(broker.orders) <= recorded, f"seed {seed}"
        before = len(broker.orders)

        store = await fresh_outbox_recover(db_url, feed_url)
        try:
            final = {o.client_order_id: o for o in await store.orders.page(limit=100_000)}
        finally:
            await store.engine.dispose()
    assert set(final) == recorded == set(broker.orders), f"seed {seed}"
    assert all(o.send_state is SendState.ACKNOWLEDGED for o in final.values()), f"seed {seed}"
    assert all(o.order_id == broker.orders[k]["order_id"] for k, o in final.items())
    assert set(broker.creations.values()) == {1}, f"seed {seed}"
    print(
        f"\n{STREAM_RUNS} kills in {time.monotonic() - started:.1f} s: {len(recorded)} orders "
        f"recorded, {unsettled} of them unsettled at the kills, {before} at the broker "
        f"before recover, {len(broker.orders)} after (seed {seed})"
    )


if __name__ == "__main__":
    asyncio.run(child(*sys.argv[1:5]))
