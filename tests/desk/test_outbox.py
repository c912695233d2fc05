"""The desk's outbox and the broker client against a fake broker on a real port: one order
per key, whatever goes wrong.

Every test runs on SQLite and on PostgreSQL (`db_url`), through real HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from risk_tui.config import FeedSettings
from risk_tui.core.actions import (
    ActionRefused,
    MessageIntent,
    OrderIntent,
    SendState,
    new_client_order_id,
    new_message_id,
)
from risk_tui.core.lifecycle import LifecycleBatch
from risk_tui.core.model import Side
from risk_tui.core.roles import Actor, Role
from risk_tui.desk.outbox import Outbox
from risk_tui.feed.broker import Broker, GatewayAuthError, GatewayUnavailable, OrderNotFound
from risk_tui.feed.client import make_client
from risk_tui.feed.retry import RetryPolicy
from risk_tui.storage.chain import verify
from risk_tui.storage.db import create_engine, upgrade
from risk_tui.storage.store import Store
from risk_tui.storage.tables import audit_log, orders
from tests.desk.broker_fake import FakeBroker, serve_fake
from tests.factories import account_state, make_call

TOKEN = "s3cret-token"
TRADER = Actor("jdoe", Role.TRADER)
DEADLINE = 0.5
SLOW_REPLY = DEADLINE + 0.3  # the broker has created the order; its answer comes too late


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    await upgrade(db_url)
    engine = await create_engine(db_url)
    try:
        yield Store(engine)
    finally:
        await engine.dispose()


@pytest.fixture
def broker() -> FakeBroker:
    return FakeBroker(token=TOKEN)


@pytest.fixture
async def feed_url(broker: FakeBroker) -> AsyncIterator[str]:
    async with serve_fake(broker) as url:
        yield url


@pytest.fixture
async def client(feed_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(FeedSettings(url=feed_url, token=SecretStr(TOKEN))) as client:
        yield client


def make_outbox(
    client: httpx.AsyncClient, store: Store, *, attempts: int = 4, **options: Any
) -> Outbox:
    retry = RetryPolicy(attempts=attempts, backoff=0.01, backoff_cap=0.05)
    return Outbox(Broker(client, deadline=DEADLINE, retry=retry), store, **options)


@pytest.fixture
def outbox(client: httpx.AsyncClient, store: Store) -> Outbox:
    return make_outbox(client, store)


def sell(quantity: str = "300", **changes: Any) -> OrderIntent:
    intent = OrderIntent(
        client_order_id=new_client_order_id(),
        account_id="A1",
        symbol="B.SG",
        side=Side.SELL,
        quantity=Decimal(quantity),
        order_type="market",
        limit_price=None,
        reason="margin_call",
        reference=None,
        operator="jdoe",
    )
    return replace(intent, **changes)


def notice(**changes: Any) -> MessageIntent:
    intent = MessageIntent(
        message_id=new_message_id(),
        account_id="A1",
        channel="app",
        subject="Margin call",
        body="Please deposit 1,015.00 SGD by 25 Nov 15:00.",
        reference=None,
        operator="jdoe",
    )
    return replace(intent, **changes)


async def submit(outbox: Outbox, intent: OrderIntent, **options: Any) -> Any:
    settings: dict[str, Any] = {
        "account_state": account_state("A1"),
        "actor": TRADER,
        "position_quantity": Decimal("1000"),
        "call_open": True,
        "data_fresh": True,
    }
    return await outbox.submit_order(intent, **(settings | options))


async def order_rows(store: Store) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(orders))).scalar_one())


async def audit_actions(store: Store) -> list[str]:
    async with store.engine.connect() as conn:
        result = await conn.execute(select(audit_log.c.action).order_by(audit_log.c.seq))
        return list(result.scalars())


# --- sending -------------------------------------------------------------------------------


async def test_an_order_is_recorded_then_sent_and_acknowledged(
    outbox: Outbox, broker: FakeBroker, store: Store
) -> None:
    intent = sell("300", order_type="limit", limit_price=Decimal("19.40"))
    outcome = await submit(outbox, intent)
    assert outcome.created
    assert outcome.posts == 1
    assert outcome.send_state is SendState.ACKNOWLEDGED
    order = outcome.order
    assert order.order_id == broker.orders[intent.client_order_id]["order_id"]
    assert order.status == "working"
    assert order.filled_quantity == 0
    assert broker.bodies[0]["quantity"] == "300"  # decimal strings on the wire
    assert broker.bodies[0]["limit_price"] == "19.40"
    assert broker.bodies[0]["operator"] == "jdoe"
    assert await audit_actions(store) == ["order_created", "order_acknowledged"]
    assert (await verify(store.engine)).ok


async def test_a_double_press_sends_one_order(
    outbox: Outbox, broker: FakeBroker, store: Store
) -> None:
    intent = sell()
    first, second = await asyncio.gather(submit(outbox, intent), submit(outbox, intent))
    assert broker.creations[intent.client_order_id] == 1
    assert broker.posts[intent.client_order_id] == 1  # the second press waited for the first
    assert await order_rows(store) == 1
    assert sorted([first.created, second.created]) == [False, True]
    assert first.order.order_id == second.order.order_id
    assert first.send_state is second.send_state is SendState.ACKNOWLEDGED


async def test_a_press_after_the_acknowledgement_sends_nothing(
    outbox: Outbox, broker: FakeBroker, store: Store
) -> None:
    intent = sell("1000")
    await submit(outbox, intent)
    # The position has since been sold: the checks would refuse a new order, but this is
    # the same order, already at the broker.
    again = await submit(outbox, intent, position_quantity=Decimal(0), data_fresh=False)
    assert not again.created
    assert again.posts == 0
    assert again.send_state is SendState.ACKNOWLEDGED
    assert broker.posts[intent.client_order_id] == 1
    assert await order_rows(store) == 1


async def test_two_terminals_pressing_together_make_one_order(
    client: httpx.AsyncClient, store: Store, broker: FakeBroker
) -> None:
    # Two outboxes (two terminals on one database) share no lock: the database and the
    # broker's idempotency keep it to one row and one order.
    intent = sell()
    one, two = make_outbox(client, store), make_outbox(client, store)
    outcomes = await asyncio.gather(submit(one, intent), submit(two, intent))
    assert broker.creations[intent.client_order_id] == 1
    assert await order_rows(store) == 1
    assert {o.order.order_id for o in outcomes} == {outcomes[0].order.order_id}


async def test_a_key_reused_for_another_order_is_refused(
    outbox: Outbox, broker: FakeBroker
) -> None:
    intent = sell("300")
    await submit(outbox, intent)
    with pytest.raises(ActionRefused, match="already names another order"):
        await submit(outbox, replace(intent, quantity=Decimal("400")))
    assert broker.posts[intent.client_order_id] == 1


async def test_a_timeout_after_the_broker_created_it_is_retried_with_the_same_key(
    outbox: Outbox, broker: FakeBroker, store: Store
) -> None:
    broker.reply_delays = [SLOW_REPLY]  # created at once, answered too late
    intent = sell()
    outcome = await submit(outbox, intent)
    assert outcome.send_state is SendState.ACKNOWLEDGED
    assert outcome.posts == 2
    assert broker.posts[intent.client_order_id] == 2
    assert broker.creations[intent.client_order_id] == 1
    assert outcome.order.order_id == broker.orders[intent.client_order_id]["order_id"]
    assert {body["client_order_id"] for body in broker.bodies} == {intent.client_order_id}
    assert await audit_actions(store) == ["order_created", "order_in_doubt", "order_acknowledged"]


async def test_5xx_is_retried_until_the_broker_answers(outbox: Outbox, broker: FakeBroker) -> None:
    broker.fail_5xx = 2
    intent = sell()
    outcome = await submit(outbox, intent)
    assert outcome.send_state is SendState.ACKNOWLEDGED
    assert outcome.posts == 3
    assert broker.creations[intent.client_order_id] == 1


async def test_a_5xx_after_the_broker_created_it_still_makes_one_order(
    outbox: Outbox, broker: FakeBroker
) -> None:
    broker.fail_5xx_after_create = 1
    intent = sell()
    outcome = await submit(outbox, intent)
    assert outcome.send_state is SendState.ACKNOWLEDGED
    assert outcome.posts == 2
    assert broker.creations[intent.client_order_id] == 1


async def test_retries_run_out_in_doubt_and_recover_settles_it(
    client: httpx.AsyncClient, broker: FakeBroker, store: Store
) -> None:
    outbox = make_outbox(client, store, attempts=3)
    broker.fail_5xx = 100
    intent = sell()
    outcome = await submit(outbox, intent)
    assert outcome.send_state is SendState.IN_DOUBT
    assert outcome.posts == 3
    assert broker.posts[intent.client_order_id] == 3
    assert outcome.error is not None
    assert "503" in outcome.error
    broker.fail_5xx = 0
    recovery = await make_outbox(client, store).recover()
    (order,) = recovery.orders
    assert order.send_state is SendState.ACKNOWLEDGED
    assert recovery.unsettled == 0
    assert broker.creations[intent.client_order_id] == 1
    assert await make_outbox(client, store).recover() == type(recovery)()  # nothing left


async def test_a_422_fails_the_order_without_retrying(
    outbox: Outbox, broker: FakeBroker, store: Store
) -> None:
    broker.reject_symbols["B.SG"] = "quantity is not a whole board lot"
    intent = sell("150")
    outcome = await submit(outbox, intent)
    assert outcome.send_state is SendState.FAILED
    assert outcome.posts == 1
    assert "not a whole board lot" in (outcome.order.reject_reason or "")
    assert broker.posts[intent.client_order_id] == 1
    assert await store.orders.needing_send() == []
    assert await audit_actions(store) == ["order_created", "order_failed"]


async def test_an_order_the_broker_rejects_is_acknowledged_as_rejected(
    outbox: Outbox, broker: FakeBroker
) -> None:
    broker.broker_rejects["B.SG"] = "symbol halted"
    outcome = await submit(outbox, sell())
    assert outcome.send_state is SendState.ACKNOWLEDGED
    assert (outcome.order.status, outcome.order.reject_reason) == ("rejected", "symbol halted")


async def test_401_is_an_auth_error_and_not_retried(
    outbox: Outbox, broker: FakeBroker, store: Store
) -> None:
    broker.unauthorized = True
    intent = sell()
    with pytest.raises(GatewayAuthError, match=r"feed\.token"):
        await submit(outbox, intent)
    assert broker.posts[intent.client_order_id] == 1
    order = await store.orders.get(intent.client_order_id)
    assert order is not None
    assert order.send_state is SendState.FAILED
    assert "not authorised" in (order.reject_reason or "")


async def test_a_wrong_token_is_an_auth_error(store: Store, feed_url: str) -> None:
    async with make_client(FeedSettings(url=feed_url, token=SecretStr("wrong"))) as client:
        with pytest.raises(GatewayAuthError):
            await submit(make_outbox(client, store), sell())
        with pytest.raises(GatewayAuthError):
            await make_outbox(client, store).refresh_orders()


async def test_an_unreachable_broker_leaves_the_order_in_doubt(store: Store) -> None:
    async with make_client(FeedSettings(url="http://127.0.0.1:9")) as client:
        outcome = await submit(make_outbox(client, store, attempts=2), sell())
    assert outcome.send_state is SendState.IN_DOUBT
    assert outcome.error is not None
    assert "cannot connect" in outcome.error


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"position_quantity": Decimal("200")}, "more than the 200 held"),
        ({"position_quantity": None}, "holds no long"),
        ({"call_open": False}, "not in margin call"),
        ({"data_fresh": False}, "stale"),
        (
            {"data_fresh": False, "call_open": False, "override_reason": "urgent"},
            "stale",
        ),
        ({"actor": Actor("jdoe", Role.VIEWER)}, "may not place liquidation orders"),
        ({"actor": Actor("jdoe", Role.OPERATOR)}, "may not place liquidation orders"),
        (
            {"actor": Actor("jdoe", Role.OPERATOR), "call_open": False, "override_reason": "x"},
            "may not override",
        ),
    ],
)
async def test_refused_orders_are_neither_recorded_nor_sent(
    outbox: Outbox,
    broker: FakeBroker,
    store: Store,
    options: dict[str, Any],
    expected: str,
) -> None:
    intent = sell("300")
    with pytest.raises(ActionRefused, match=expected) as refused:
        await submit(outbox, intent, **options)
    assert refused.value.problems
    assert broker.bodies == []
    assert await order_rows(store) == 0
    assert await audit_actions(store) == ["order_refused"]


async def test_an_override_by_a_trader_is_sent_and_audited(
    outbox: Outbox, broker: FakeBroker, store: Store
) -> None:
    call = make_call("A1")
    await store.calls.commit(LifecycleBatch(calls=[call]))
    intent = sell(reference=call.call_id)
    outcome = await submit(
        outbox, intent, call_open=False, override_reason="client agreed to reduce exposure"
    )
    assert outcome.send_state is SendState.ACKNOWLEDGED
    entries = await store.history.audit_for(call.call_id)
    assert [e.action for e in entries] == [
        "order_created",
        "order_override",
        "order_acknowledged",
    ]
    override = entries[1]
    assert override.details["reason"] == "client agreed to reduce exposure"
    assert (override.operator, override.details["role"]) == ("jdoe", "trader")
    assert broker.orders[intent.client_order_id]["reference"] == call.call_id


async def test_an_unknown_call_reference_is_refused(outbox: Outbox, broker: FakeBroker) -> None:
    with pytest.raises(ActionRefused, match="no margin call"):
        await submit(outbox, sell(reference="MC-missing"))
    assert broker.bodies == []


# --- cancel, refresh -----------------------------------------------------------------------


async def test_cancel_a_working_order(outbox: Outbox, broker: FakeBroker, store: Store) -> None:
    intent = sell()
    placed = (await submit(outbox, intent)).order
    cancelled = await outbox.cancel_order(intent.client_order_id, TRADER)
    assert cancelled.status == "cancelled"
    assert broker.cancels[placed.order_id or ""] == 1
    assert (await audit_actions(store))[-2:] == ["order_cancel_requested", "order_status"]


async def test_cancelling_a_filled_order_reports_the_fill(
    outbox: Outbox, broker: FakeBroker
) -> None:
    intent = sell("300")
    await submit(outbox, intent)
    broker.fill(intent.client_order_id, "300", "19.45")
    done = await outbox.cancel_order(intent.client_order_id, TRADER)
    assert (done.status, done.filled_quantity, done.avg_price) == (
        "filled",
        Decimal("300"),
        Decimal("19.45"),
    )


async def test_cancel_of_an_order_the_broker_does_not_know_is_a_clear_error(
    outbox: Outbox, broker: FakeBroker
) -> None:
    intent = sell()
    await submit(outbox, intent)
    broker.orders.clear()
    with pytest.raises(OrderNotFound, match="does not know order BRK-"):
        await outbox.cancel_order(intent.client_order_id, TRADER)
    with pytest.raises(OrderNotFound, match="no order"):
        await outbox.cancel_order("RT-O-nothing", TRADER)


async def test_cancel_needs_a_trading_role(outbox: Outbox, broker: FakeBroker) -> None:
    intent = sell()
    await submit(outbox, intent)
    with pytest.raises(ActionRefused, match="may not cancel"):
        await outbox.cancel_order(intent.client_order_id, Actor("ops", Role.OPERATOR))
    assert sum(broker.cancels.values()) == 0


async def test_cancel_of_an_order_in_doubt_that_exists_reconciles_then_cancels(
    client: httpx.AsyncClient, broker: FakeBroker, store: Store
) -> None:
    broker.reply_delays = [SLOW_REPLY]
    intent = sell()
    outcome = await submit(make_outbox(client, store, attempts=1), intent)
    assert outcome.send_state is SendState.IN_DOUBT
    cancelled = await make_outbox(client, store).cancel_order(intent.client_order_id, TRADER)
    assert (cancelled.send_state, cancelled.status) == (SendState.ACKNOWLEDGED, "cancelled")
    assert broker.posts[intent.client_order_id] == 1  # reconciled by query, not re-posted
    assert broker.order_queries == 1


async def test_cancel_of_an_order_that_never_arrived_withdraws_it(
    outbox: Outbox, broker: FakeBroker, store: Store
) -> None:
    intent = sell()
    await store.orders.record_intent(intent, {}, TRADER)
    await store.orders.mark(intent.client_order_id, SendState.IN_DOUBT, detail="timeout")
    with pytest.raises(OrderNotFound, match="never reached the broker"):
        await outbox.cancel_order(intent.client_order_id, TRADER)
    order = await store.orders.get(intent.client_order_id)
    assert order is not None
    assert order.send_state is SendState.FAILED
    assert "withdrawn by jdoe" in (order.reject_reason or "")
    await outbox.recover()  # and it stays withdrawn: nothing is sent later
    assert broker.bodies == []


async def test_cancel_when_the_broker_is_down_says_so(store: Store) -> None:
    async with make_client(FeedSettings(url="http://127.0.0.1:9")) as client:
        outbox = make_outbox(client, store, attempts=2)
        intent = sell()
        await store.orders.record_intent(intent, {}, TRADER)
        with pytest.raises(GatewayUnavailable):
            await outbox.cancel_order(intent.client_order_id, TRADER)
    order = await store.orders.get(intent.client_order_id)
    assert order is not None
    assert order.send_state is SendState.PENDING


@pytest.mark.parametrize("envelope", [True, False])
async def test_refresh_brings_status_and_fills_up_to_date(
    outbox: Outbox, broker: FakeBroker, store: Store, envelope: bool
) -> None:
    broker.orders_envelope = envelope
    first, second = sell("300"), sell("200", symbol="C.SG")
    await submit(outbox, first)
    await submit(outbox, second)
    broker.fill(first.client_order_id, "100", "19.50")
    broker.orders["RT-O-someone-else"] = {
        **broker.orders[second.client_order_id],
        "client_order_id": "RT-O-someone-else",
        "order_id": "BRK-X",
    }
    changed = await outbox.refresh_orders(account_id="A1")
    assert [o.client_order_id for o in changed] == [first.client_order_id]
    updated = changed[0]
    assert (updated.status, updated.filled_quantity, updated.avg_price) == (
        "partially_filled",
        Decimal("100"),
        Decimal("19.50"),
    )
    assert await outbox.refresh_orders() == []  # nothing new
    assert await store.orders.get("RT-O-someone-else") is None


async def test_refresh_acknowledges_an_order_in_doubt(
    client: httpx.AsyncClient, broker: FakeBroker, store: Store
) -> None:
    broker.reply_delays = [SLOW_REPLY]
    intent = sell()
    outcome = await submit(make_outbox(client, store, attempts=1), intent)
    assert outcome.send_state is SendState.IN_DOUBT
    (found,) = await make_outbox(client, store).refresh_orders(status="working")
    assert found.send_state is SendState.ACKNOWLEDGED
    assert found.order_id == broker.orders[intent.client_order_id]["order_id"]


async def test_refresh_skips_a_bad_record_alone(outbox: Outbox, broker: FakeBroker) -> None:
    good, bad = sell(), sell(symbol="C.SG")
    await submit(outbox, good)
    await submit(outbox, bad)
    broker.fill(good.client_order_id, "300", "19.50")
    broker.fill(bad.client_order_id, "300", "19.50")
    broker.orders[bad.client_order_id]["filled_quantity"] = 300  # a JSON number: invalid
    changed = await outbox.refresh_orders()
    assert [o.client_order_id for o in changed] == [good.client_order_id]


# --- recovery of old orders ----------------------------------------------------------------


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def test_an_old_unsent_order_is_withdrawn_not_sent(
    client: httpx.AsyncClient, broker: FakeBroker, store: Store
) -> None:
    clock = Clock(datetime.now(UTC))
    intent = sell()
    await store.orders.record_intent(intent, {}, TRADER, at=clock.now)
    clock.now += timedelta(minutes=30)  # the desk was down half an hour
    outbox = make_outbox(client, store, clock=clock, resend_window=timedelta(minutes=2))
    (order,) = (await outbox.recover()).orders
    assert order.send_state is SendState.FAILED
    assert "out of date" in (order.reject_reason or "")
    assert broker.bodies == []
    assert broker.order_queries == 1


async def test_an_old_order_in_doubt_found_at_the_broker_is_acknowledged(
    client: httpx.AsyncClient, broker: FakeBroker, store: Store
) -> None:
    clock = Clock(datetime.now(UTC))
    broker.reply_delays = [SLOW_REPLY]
    intent = sell()
    outcome = await submit(make_outbox(client, store, attempts=1, clock=clock), intent)
    assert outcome.send_state is SendState.IN_DOUBT
    clock.now += timedelta(hours=1)
    (order,) = (await make_outbox(client, store, clock=clock).recover()).orders
    assert order.send_state is SendState.ACKNOWLEDGED
    assert broker.posts[intent.client_order_id] == 1


# --- messages ------------------------------------------------------------------------------


async def send(outbox: Outbox, intent: MessageIntent, actor: Actor = TRADER) -> Any:
    return await outbox.send_message(intent, account_state=account_state("A1"), actor=actor)


async def test_a_message_is_sent_once_per_key(
    outbox: Outbox, broker: FakeBroker, store: Store
) -> None:
    intent = notice()
    first, second = await asyncio.gather(send(outbox, intent), send(outbox, intent))
    assert broker.creations[intent.message_id] == 1
    assert broker.posts[intent.message_id] == 1
    assert first.send_state is second.send_state is SendState.ACKNOWLEDGED
    assert first.message.status == "queued"
    again = await send(outbox, intent)
    assert again.posts == 0
    assert not again.created
    assert broker.posts[intent.message_id] == 1
    assert await audit_actions(store) == ["message_created", "message_sent"]


async def test_an_operator_may_message(outbox: Outbox) -> None:
    outcome = await send(outbox, notice(), Actor("jdoe", Role.OPERATOR))
    assert outcome.send_state is SendState.ACKNOWLEDGED


async def test_a_message_retried_after_a_timeout_is_delivered_once(
    outbox: Outbox, broker: FakeBroker
) -> None:
    broker.reply_delays = [SLOW_REPLY]
    intent = notice(channel="sms")
    outcome = await send(outbox, intent)
    assert outcome.send_state is SendState.ACKNOWLEDGED
    assert outcome.posts == 2
    assert broker.creations[intent.message_id] == 1


async def test_a_message_5xx_then_success(outbox: Outbox, broker: FakeBroker) -> None:
    broker.fail_5xx = 1
    outcome = await send(outbox, notice())
    assert outcome.send_state is SendState.ACKNOWLEDGED
    assert outcome.posts == 2


async def test_refused_messages(outbox: Outbox, broker: FakeBroker, store: Store) -> None:
    with pytest.raises(ActionRefused, match="may not send messages"):
        await send(outbox, notice(), Actor("jdoe", Role.VIEWER))
    with pytest.raises(ActionRefused, match="body is empty"):
        await send(outbox, notice(body=" "))
    assert broker.bodies == []
    assert await store.messages.page() == []


async def test_a_message_the_broker_refuses_fails(
    outbox: Outbox, broker: FakeBroker, store: Store
) -> None:
    broker.reject_channels["voice"] = "no phone number on file"
    intent = notice(channel="voice")
    outcome = await send(outbox, intent)
    assert outcome.send_state is SendState.FAILED
    assert outcome.posts == 1
    assert broker.posts[intent.message_id] == 1
    assert await store.messages.needing_send() == []
    assert (await audit_actions(store))[-1] == "message_failed"


async def test_a_pending_message_is_sent_by_recover(
    outbox: Outbox, broker: FakeBroker, store: Store
) -> None:
    intent = notice()
    await store.messages.record_intent(intent, {}, TRADER)
    (message,) = (await outbox.recover()).messages
    assert message.send_state is SendState.ACKNOWLEDGED
    assert broker.creations[intent.message_id] == 1


async def test_message_401_is_an_auth_error(outbox: Outbox, broker: FakeBroker) -> None:
    broker.unauthorized = True
    intent = notice()
    with pytest.raises(GatewayAuthError):
        await send(outbox, intent)
    assert broker.posts[intent.message_id] == 1
