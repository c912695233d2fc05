"""The Store's outbox: orders and messages recorded before sending, idempotent on their keys."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from risk_tui.core.actions import MessageIntent, OrderIntent, OrderReport, SendState
from risk_tui.core.lifecycle import LifecycleBatch
from risk_tui.core.roles import Actor, Role
from risk_tui.storage.chain import verify
from risk_tui.storage.errors import KeyConflict, UnknownCall, UnknownMessage, UnknownOrder
from risk_tui.storage.store import Store
from risk_tui.storage.tables import audit_log, orders
from tests.factories import T0, TRADER, account_state, make_call, sell_order


def order(key: str = "RT-O-1", **changes: Any) -> OrderIntent:
    """A limit order selling 300.50 B.SG on A1, on no call."""
    intent = sell_order(
        "300.50",
        client_order_id=key,
        account_id="A1",
        order_type="limit",
        limit_price=Decimal("19.40"),
        reference=None,
    )
    return replace(intent, **changes)


def message(key: str = "RT-M-1", **changes: Any) -> MessageIntent:
    intent = MessageIntent(
        message_id=key,
        account_id="A1",
        channel="sms",
        subject=None,
        body="請於 T+2 15:00 前補足 1,015.00 SGD",
        reference=None,
        operator="jdoe",
    )
    return replace(intent, **changes)


async def actions_of(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        result = await conn.execute(select(audit_log.c.action).order_by(audit_log.c.seq))
        return list(result.scalars())


async def order_rows(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(orders))).scalar_one())


async def test_an_order_is_recorded_pending_once_per_key(store: Store) -> None:
    state = account_state("A1")
    first, created = await store.orders.record_intent(order(), state, TRADER, at=T0)
    assert created
    assert first.send_state is SendState.PENDING
    assert first.quantity == Decimal("300.50")
    assert first.limit_price == Decimal("19.40")
    assert first.account_state == state
    assert first.created_at == T0
    again, created = await store.orders.record_intent(order(), state, TRADER)
    assert not created
    assert again == await store.orders.get("RT-O-1")
    assert again.intent() == order()
    assert await order_rows(store.engine) == 1
    assert await actions_of(store.engine) == ["order_created"]


async def test_concurrent_records_of_one_key_make_one_row(store: Store) -> None:
    results = await asyncio.gather(
        *(store.orders.record_intent(order(), {}, TRADER) for _ in range(8))
    )
    assert sorted(created for _, created in results) == [False] * 7 + [True]
    assert await order_rows(store.engine) == 1
    assert await actions_of(store.engine) == ["order_created"]


async def test_a_key_never_names_two_orders(store: Store) -> None:
    await store.orders.record_intent(order(), {}, TRADER)
    with pytest.raises(KeyConflict):
        await store.orders.record_intent(order(quantity=Decimal("400")), {}, TRADER)
    stored = await store.orders.get("RT-O-1")
    assert stored is not None
    assert stored.quantity == Decimal("300.50")


async def test_the_creation_audit_carries_the_account_state_and_any_override(
    store: Store,
) -> None:
    call = make_call("A1")
    await store.calls.commit(LifecycleBatch(calls=[call]))
    state = account_state("A1", 2)
    intent = order(reference=call.call_id)
    await store.orders.record_intent(intent, state, TRADER, "client asked to de-risk", at=T0)
    entries = await store.history.audit_for(call.call_id)
    assert [e.action for e in entries] == ["order_created", "order_override"]
    created, override = entries
    assert created.details["account_state"] == state
    assert created.details["order"]["quantity"] == "300.50"
    assert created.details["role"] == "trader"
    assert override.details["reason"] == "client asked to de-risk"
    assert override.operator == "jdoe"
    assert (await store.orders.page(call_id=call.call_id))[0].call_id == call.call_id


async def test_an_unknown_call_reference_is_refused(store: Store) -> None:
    with pytest.raises(UnknownCall):
        await store.orders.record_intent(order(reference="MC-nope"), {}, TRADER)
    with pytest.raises(UnknownCall):
        await store.messages.record_intent(message(reference="MC-nope"), {}, TRADER)
    assert await order_rows(store.engine) == 0
    assert await actions_of(store.engine) == []


async def test_send_state_moves_and_their_audit(store: Store) -> None:
    await store.orders.record_intent(order(), {}, TRADER)
    doubt = await store.orders.mark("RT-O-1", SendState.IN_DOUBT, detail="timeout")
    assert doubt.send_state is SendState.IN_DOUBT
    await store.orders.mark("RT-O-1", SendState.IN_DOUBT, detail="timeout again")
    ack = await store.orders.mark(
        "RT-O-1",
        SendState.ACKNOWLEDGED,
        status="working",
        order_id="BRK-1",
        filled_quantity=Decimal("0"),
    )
    assert (ack.send_state, ack.status, ack.order_id) == (
        SendState.ACKNOWLEDGED,
        "working",
        "BRK-1",
    )
    # A late timeout from a concurrent attempt cannot undo the broker's acknowledgement.
    late = await store.orders.mark("RT-O-1", SendState.IN_DOUBT, detail="late")
    assert late == ack
    # The same report again changes nothing and writes nothing.
    await store.orders.mark("RT-O-1", SendState.ACKNOWLEDGED, status="working")
    filled = await store.orders.mark(
        "RT-O-1",
        SendState.ACKNOWLEDGED,
        status="filled",
        filled_quantity=Decimal("300.50"),
        avg_price=Decimal("19.4100"),
    )
    assert filled.avg_price == Decimal("19.4100")
    assert await store.orders.get("RT-O-1") == filled
    assert await actions_of(store.engine) == [
        "order_created",
        "order_in_doubt",
        "order_in_doubt",
        "order_acknowledged",
        "order_status",
    ]
    assert (await verify(store.engine)).ok


async def test_failed_is_final_unless_the_broker_says_otherwise(store: Store) -> None:
    await store.orders.record_intent(order(), {}, TRADER)
    failed = await store.orders.mark("RT-O-1", SendState.FAILED, reject_reason="HTTP 422: lot")
    assert failed.reject_reason == "HTTP 422: lot"
    assert (await store.orders.mark("RT-O-1", SendState.IN_DOUBT)).send_state is SendState.FAILED
    assert (await store.orders.mark("RT-O-1", SendState.PENDING)).send_state is SendState.FAILED
    found = await store.orders.mark(
        "RT-O-1", SendState.ACKNOWLEDGED, order_id="B", status="working"
    )
    assert found.send_state is SendState.ACKNOWLEDGED


async def test_marking_an_unknown_order_or_message_raises(store: Store) -> None:
    with pytest.raises(UnknownOrder):
        await store.orders.mark("RT-O-x", SendState.FAILED)
    with pytest.raises(UnknownOrder):
        await store.orders.record_cancel_request("RT-O-x", TRADER)
    with pytest.raises(UnknownMessage):
        await store.messages.mark("RT-M-x", SendState.FAILED)
    assert await store.orders.get("RT-O-x") is None
    assert await store.messages.get("RT-M-x") is None


async def test_orders_needing_send_are_pending_or_in_doubt_oldest_first(store: Store) -> None:
    for index, key in enumerate(["c", "a", "b", "d"]):
        await store.orders.record_intent(order(key), {}, TRADER, at=T0 + timedelta(seconds=index))
    await store.orders.mark("a", SendState.IN_DOUBT)
    await store.orders.mark("b", SendState.ACKNOWLEDGED, order_id="B1", status="working")
    await store.orders.mark("d", SendState.FAILED)
    assert [o.client_order_id for o in await store.orders.needing_send()] == ["c", "a"]


async def test_list_orders_filters_and_pages_newest_first(store: Store) -> None:
    for index in range(5):
        await store.orders.record_intent(
            order(f"k{index}", account_id="A1" if index % 2 else "A2"),
            {},
            TRADER,
            at=T0 + timedelta(minutes=index),
        )
    assert [o.client_order_id for o in await store.orders.page()] == ["k4", "k3", "k2", "k1", "k0"]
    assert [o.client_order_id for o in await store.orders.page("A1")] == ["k3", "k1"]
    assert [o.client_order_id for o in await store.orders.page(limit=2, offset=1)] == ["k3", "k2"]


async def test_order_reports_apply_in_one_go(store: Store) -> None:
    for key in ("a", "b", "c"):
        await store.orders.record_intent(order(key), {}, TRADER)
    await store.orders.mark("a", SendState.IN_DOUBT)
    await store.orders.mark("b", SendState.ACKNOWLEDGED, order_id="B2", status="working")
    await store.orders.mark("c", SendState.ACKNOWLEDGED, order_id="B3", status="working")
    changed = await store.orders.apply_order_reports(
        [
            OrderReport("a", "B1", "working", Decimal(0), None),
            OrderReport("b", "B2", "filled", Decimal("300.50"), Decimal("19.40")),
            OrderReport("c", "B3", "working", Decimal(0), None),  # unchanged
            OrderReport("zz", "B9", "working", Decimal(0), None),  # not ours
        ]
    )
    assert {o.client_order_id: (o.send_state, o.status) for o in changed} == {
        "a": (SendState.ACKNOWLEDGED, "working"),
        "b": (SendState.ACKNOWLEDGED, "filled"),
    }
    stored = await store.orders.get("a")
    assert stored is not None
    assert stored.order_id == "B1"
    assert await store.orders.get("zz") is None
    assert (await actions_of(store.engine))[-2:] == ["order_acknowledged", "order_status"]
    assert await store.orders.apply_order_reports([]) == []


async def test_a_cancel_request_is_audited(store: Store) -> None:
    await store.orders.record_intent(order(), {}, TRADER)
    await store.orders.mark("RT-O-1", SendState.ACKNOWLEDGED, order_id="B1", status="working")
    supervisor = Actor("boss", Role.SUPERVISOR)
    await store.orders.record_cancel_request("RT-O-1", supervisor)
    async with store.engine.connect() as conn:
        row = (
            await conn.execute(select(audit_log).order_by(audit_log.c.seq.desc()).limit(1))
        ).one()
    assert (row.action, row.operator) == ("order_cancel_requested", "boss")
    assert row.details["order_id"] == "B1"


async def test_messages_are_recorded_once_and_keep_their_account_state(store: Store) -> None:
    state = account_state("A1", 1)
    first, created = await store.messages.record_intent(message(), state, TRADER, at=T0)
    assert created
    assert first.send_state is SendState.PENDING
    assert first.intent() == message()
    again, created = await store.messages.record_intent(message(), state, TRADER)
    assert not created
    assert again == first
    with pytest.raises(KeyConflict):
        await store.messages.record_intent(message(body="other"), state, TRADER)
    assert [m.message_id for m in await store.messages.needing_send()] == ["RT-M-1"]
    await store.messages.mark("RT-M-1", SendState.IN_DOUBT, detail="timeout")
    sent = await store.messages.mark("RT-M-1", SendState.ACKNOWLEDGED, status="queued")
    assert (sent.send_state, sent.status) == (SendState.ACKNOWLEDGED, "queued")
    assert await store.messages.mark("RT-M-1", SendState.IN_DOUBT) == sent
    delivered = await store.messages.mark("RT-M-1", SendState.ACKNOWLEDGED, status="sent")
    assert delivered.status == "sent"
    assert await store.messages.needing_send() == []
    assert await store.messages.get("RT-M-1") == delivered
    assert [m.message_id for m in await store.messages.page("A1")] == ["RT-M-1"]
    assert await store.messages.page("A2") == []
    assert await actions_of(store.engine) == [
        "message_created",
        "message_in_doubt",
        "message_sent",
        "message_status",
    ]
    async with store.engine.connect() as conn:
        details = (
            await conn.execute(select(audit_log.c.details).where(audit_log.c.seq == 1))
        ).scalar_one()
    assert details["account_state"] == state
    assert details["message"]["body"] == message().body
    assert (await verify(store.engine)).ok
