"""The Store's four-eyes requests and kill switch, on SQLite and PostgreSQL.

A decision is made once whoever races for it; an edit voids the request it replaces in
the same transaction; an approved deadline move is written with its approval; every
step is in the audit chain; on PostgreSQL every change notifies the terminals.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import asyncpg
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from risk_tui.core.actions import AutoCondition, AutoLiquidationPlan, OrderIntent, PlanLine
from risk_tui.core.four_eyes import (
    ApprovalRequest,
    ApprovalState,
    deadline_request,
    details_hash,
    plan_cancel_request,
)
from risk_tui.core.lifecycle import (
    AuditEntry,
    CallState,
    EndReason,
    LifecycleBatch,
    MarginCall,
)
from risk_tui.core.model import Side
from risk_tui.core.notional import Notional
from risk_tui.storage.chain import verify
from risk_tui.storage.db import alembic_config, create_engine, current_revision, upgrade
from risk_tui.storage.election import asyncpg_dsn
from risk_tui.storage.errors import (
    ApprovalConflict,
    KillSwitchConflict,
    KillSwitchEngaged,
    UnknownCall,
)
from risk_tui.storage.store import Store
from risk_tui.storage.tables import audit_log
from tests.factories import BOB, SUPERVISOR, T0, TRADER, make_call, sell_order


async def actions_of(store: Store) -> list[str]:
    async with store.engine.connect() as conn:
        return list(
            (await conn.execute(select(audit_log.c.action).order_by(audit_log.c.seq))).scalars()
        )


async def stored_call(store: Store, account_id: str = "A1") -> MarginCall:
    call = make_call(account_id)
    await store.calls.commit(LifecycleBatch(calls=[call]))
    return call


def move_request(call: MarginCall, days: int = 2, **options: str | None) -> ApprovalRequest:
    assert call.deadline is not None
    return deadline_request(
        call, call.deadline + timedelta(days=days), "client in hospital", TRADER, T0, **options
    )


async def test_a_request_is_stored_pending_and_audited(store: Store) -> None:
    call = await stored_call(store)
    request = move_request(call)
    stored = await store.approvals.request_approval(request, details={"role": "trader"})
    assert stored == request
    assert await store.approvals.get_approval(request.approval_id) == request
    # The document read back hashes to the same binding, byte for byte, on either database.
    read_back = await store.approvals.get_approval(request.approval_id)
    assert read_back is not None
    assert details_hash(read_back.details) == request.details_hash
    assert await store.approvals.approvals_in([ApprovalState.PENDING]) == [request]
    assert await store.approvals.approvals_for(call.call_id) == [request]
    (entry,) = await store.history.audit_for(call.call_id)
    assert entry.action == "approval_requested"
    assert entry.operator == "jdoe"
    assert entry.details["details"] == request.details
    assert entry.details["details_hash"] == request.details_hash
    with pytest.raises(UnknownCall):
        await store.approvals.request_approval(move_request(make_call("B2")))


async def test_approving_needs_the_hash_shown_and_happens_once(store: Store) -> None:
    call = await stored_call(store)
    request = await store.approvals.request_approval(move_request(call))
    with pytest.raises(ApprovalConflict, match="not those shown"):
        await store.approvals.approve_request(request.approval_id, "0" * 64, SUPERVISOR, at=T0)
    approved = await store.approvals.approve_request(
        request.approval_id, request.details_hash, SUPERVISOR, at=T0
    )
    assert approved.state is ApprovalState.APPROVED
    assert approved.decided_by == "sue"
    with pytest.raises(ApprovalConflict, match="already approved by sue"):
        await store.approvals.approve_request(request.approval_id, request.details_hash, BOB, at=T0)
    done = await store.approvals.finish_request(
        request.approval_id, ApprovalState.EXECUTED, operator="sue", note="sent", at=T0
    )
    assert done.state is ApprovalState.EXECUTED
    again = await store.approvals.finish_request(
        request.approval_id, ApprovalState.FAILED, operator="sue", note="late", at=T0
    )
    assert again.state is ApprovalState.EXECUTED  # finished once
    assert await actions_of(store) == [
        "approval_requested",
        "approval_approved",
        "approval_executed",
    ]
    assert (await verify(store.engine)).ok


async def test_two_approvers_at_once_one_wins(db_url: str, store: Store) -> None:
    """Two processes (two engines on one database) approve the same request together."""
    call = await stored_call(store)
    request = await store.approvals.request_approval(move_request(call))
    other_engine = await create_engine(db_url)
    try:
        other = Store(other_engine)
        results = await asyncio.gather(
            *(
                desk.approvals.approve_request(
                    request.approval_id, request.details_hash, who, at=T0
                )
                for desk, who in ((store, SUPERVISOR), (other, BOB)) * 3
            ),
            return_exceptions=True,
        )
    finally:
        await other_engine.dispose()
    won = [r for r in results if isinstance(r, ApprovalRequest)]
    lost = [r for r in results if isinstance(r, ApprovalConflict)]
    assert len(won) == 1, results
    assert len(lost) == 5, results
    stored = await store.approvals.get_approval(request.approval_id)
    assert stored is not None
    assert stored.decided_by == won[0].decided_by
    assert (await actions_of(store)).count("approval_approved") == 1
    assert (await verify(store.engine)).ok


async def test_an_edit_voids_the_request_it_replaces_in_the_same_step(store: Store) -> None:
    call = await stored_call(store)
    first = await store.approvals.request_approval(move_request(call))
    edited = await store.approvals.request_approval(
        move_request(call, 3, replaces=first.approval_id)
    )
    old = await store.approvals.get_approval(first.approval_id)
    assert old is not None
    assert old.state is ApprovalState.VOIDED
    assert old.note == f"edited: replaced by {edited.approval_id}"
    with pytest.raises(ApprovalConflict, match="already voided"):
        await store.approvals.approve_request(
            first.approval_id, first.details_hash, SUPERVISOR, at=T0
        )
    with pytest.raises(ApprovalConflict, match="only a pending request can be edited"):
        await store.approvals.request_approval(move_request(call, 4, replaces=first.approval_id))
    assert [r.approval_id for r in await store.approvals.approvals_in([ApprovalState.PENDING])] == [
        edited.approval_id
    ]
    assert await actions_of(store) == [
        "approval_requested",
        "approval_requested",
        "approval_voided",
    ]


async def test_an_approved_deadline_move_is_written_with_its_approval(store: Store) -> None:
    call = await stored_call(store)
    request = await store.approvals.request_approval(move_request(call))
    assert call.deadline is not None
    new_deadline = call.deadline + timedelta(days=2)
    moved_call = replace(
        call,
        deadline=new_deadline,
        deadline_reason="client in hospital",
        version=call.version + 1,
    )
    entry = AuditEntry(
        at=T0, operator="jdoe", action="deadline_moved", call_id=call.call_id, account_id="A1"
    )
    executed = await store.approvals.approve_request(
        request.approval_id,
        request.details_hash,
        SUPERVISOR,
        at=T0,
        execute=LifecycleBatch(calls=[moved_call], audit=[entry]),
        outcome={"new_deadline": new_deadline.isoformat()},
    )
    assert executed.state is ApprovalState.EXECUTED
    stored = await store.calls.get_call(call.call_id)
    assert stored is not None
    assert stored.deadline == new_deadline
    assert await actions_of(store) == [
        "approval_requested",
        "approval_approved",
        "deadline_moved",
        "approval_executed",
    ]
    last = (await store.history.audit_for(call.call_id))[-1]
    assert last.details["requested_by"] == "jdoe"
    assert last.details["approved_by"] == "sue"


async def test_rejecting_and_voiding_the_requests_of_an_ended_call(store: Store) -> None:
    call = await stored_call(store)
    other = await stored_call(store, "B2")
    rejected = await store.approvals.request_approval(move_request(call))
    result = await store.approvals.reject_request(
        rejected.approval_id, rejected.details_hash, SUPERVISOR, "no evidence", at=T0
    )
    assert result.state is ApprovalState.REJECTED
    assert result.note == "no evidence"
    with pytest.raises(ApprovalConflict, match="already rejected"):
        await store.approvals.reject_request(
            rejected.approval_id, rejected.details_hash, BOB, "x", at=T0
        )
    pending = await store.approvals.request_approval(move_request(call))
    kept = await store.approvals.request_approval(move_request(other))
    ended = replace_call(call)
    await store.calls.commit(LifecycleBatch(calls=[ended]))
    assert [r.approval_id for r in await store.approvals.pending_requests_of_ended_calls()] == [
        pending.approval_id
    ]
    voided = await store.approvals.void_requests(
        call_ids=[call.call_id], reason="call ended", operator="engine", at=T0
    )
    assert [r.approval_id for r in voided] == [pending.approval_id]
    assert (
        await store.approvals.void_requests(  # twice: nothing more
            call_ids=[call.call_id], reason="call ended", operator="engine", at=T0
        )
        == []
    )
    assert [r.approval_id for r in await store.approvals.approvals_in([ApprovalState.PENDING])] == [
        kept.approval_id
    ]
    assert (await actions_of(store)).count("approval_voided") == 1


async def test_the_decided_requests_latest_first_with_who_and_when(store: Store) -> None:
    call = await stored_call(store)
    minute = timedelta(minutes=1)
    rejected = await store.approvals.request_approval(move_request(call, days=1))
    voided = await store.approvals.request_approval(move_request(call, days=2))
    executed = await store.approvals.request_approval(move_request(call, days=3))
    waiting = await store.approvals.request_approval(move_request(call, days=4))
    await store.approvals.reject_request(
        rejected.approval_id, rejected.details_hash, TRADER, "wrong day", at=T0 + minute
    )
    await store.approvals.void_requests(
        approval_ids=[voided.approval_id], reason="edited", operator="jdoe", at=T0 + 2 * minute
    )
    await store.approvals.approve_request(
        executed.approval_id, executed.details_hash, SUPERVISOR, at=T0 + 3 * minute
    )
    assert [r.approval_id for r in await store.approvals.decided_approvals()] == [
        voided.approval_id,  # still being executed: not decided for good yet
        rejected.approval_id,
    ]
    await store.approvals.finish_request(
        executed.approval_id,
        ApprovalState.EXECUTED,
        operator="sue",
        note="moved",
        at=T0 + 4 * minute,
    )
    decided = await store.approvals.decided_approvals()
    assert [(r.approval_id, r.state, r.decided_by, r.decided_at, r.note) for r in decided] == [
        (executed.approval_id, ApprovalState.EXECUTED, "sue", T0 + 3 * minute, "moved"),
        (voided.approval_id, ApprovalState.VOIDED, "jdoe", T0 + 2 * minute, "edited"),
        (rejected.approval_id, ApprovalState.REJECTED, "jdoe", T0 + minute, "wrong day"),
    ]
    assert waiting.approval_id not in {r.approval_id for r in decided}
    assert [r.approval_id for r in await store.approvals.decided_approvals(limit=1)] == [
        executed.approval_id
    ]


def replace_call(call: MarginCall) -> MarginCall:
    return replace(
        call,
        state=CallState.ENDED,
        ended_at=T0 + timedelta(hours=1),
        end_reason=EndReason.MET,
        version=call.version + 1,
    )


def order(key: str = "RT-O-1") -> OrderIntent:
    return sell_order("300", client_order_id=key, account_id="A1", reference=None)


async def test_the_kill_switch_refuses_new_orders_until_released(store: Store) -> None:
    assert not (await store.kill_switch.get()).engaged
    await store.orders.record_intent(order("RT-O-before"), {}, TRADER)
    engaged = await store.kill_switch.engage(SUPERVISOR, "runaway orders", at=T0)
    assert engaged.engaged
    assert engaged.engaged_by == "sue"
    assert engaged.reason == "runaway orders"
    assert await store.kill_switch.get() == engaged
    with pytest.raises(KillSwitchConflict, match="already engaged"):
        await store.kill_switch.engage(SUPERVISOR, "again", at=T0)
    with pytest.raises(KillSwitchEngaged, match="KILL SWITCH engaged by sue"):
        await store.orders.record_intent(order("RT-O-during"), {}, TRADER)
    # A key recorded before is the same order, not a new one.
    _, created = await store.orders.record_intent(order("RT-O-before"), {}, TRADER)
    assert not created
    assert await store.orders.get("RT-O-during") is None
    released = await store.kill_switch.release(SUPERVISOR, "all clear", at=T0 + timedelta(hours=1))
    assert not released.engaged
    assert released.released_by == "sue"
    with pytest.raises(KillSwitchConflict, match="not engaged"):
        await store.kill_switch.release(SUPERVISOR, "again", at=T0)
    _, created = await store.orders.record_intent(order("RT-O-after"), {}, TRADER)
    assert created
    assert await actions_of(store) == [
        "order_created",
        "kill_switch_engaged",
        "kill_switch_released",
        "order_created",
    ]
    assert (await verify(store.engine)).ok


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_postgresql_notifies_requests_and_the_kill_switch(db_url: str, store: Store) -> None:
    heard: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        await listener.add_listener("risk_tui", lambda *args: heard.put_nowait(args[3]))
        call = await stored_call(store)
        request = await store.approvals.request_approval(move_request(call))
        await store.kill_switch.engage(SUPERVISOR, "drill", at=T0)
        received: set[str] = set()
        async with asyncio.timeout(5):
            while not {f"approvals:0:{request.approval_id}", "kill_switch:0:1"} <= received:
                received.add(await heard.get())
    finally:
        await listener.close()


async def downgrade(url: str, revision: str) -> None:
    engine = create_async_engine(url)
    try:

        def run(connection: Connection) -> None:
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.downgrade(config, revision)

        async with engine.begin() as conn:
            await conn.run_sync(run)
    finally:
        await engine.dispose()


async def test_0003_downgrades_and_upgrades_again(db_url: str) -> None:
    await upgrade(db_url)
    await downgrade(db_url, "0002")
    assert await current_revision(db_url) == "0002"
    await upgrade(db_url)
    head = ScriptDirectory.from_config(alembic_config(db_url)).get_current_head()
    assert await current_revision(db_url) == head
    engine = await create_engine(db_url)
    try:
        assert not (await Store(engine).kill_switch.get()).engaged
    finally:
        await engine.dispose()


async def test_0005_takes_plan_cancel_requests_and_downgrades_only_without_them(
    db_url: str,
) -> None:
    plan = AutoLiquidationPlan(
        plan_id="RT-AL-1",
        call_id="RT-C-1",
        account_id="A1",
        execute_at=T0 + timedelta(hours=1),
        condition=AutoCondition.STILL_IN_CALL,
        lines=(PlanLine("B.SG", Side.SELL, Decimal("300")),),
        operator="jdoe",
    )

    async def request_cancel(account_id: str) -> None:
        engine = await create_engine(db_url)
        try:
            store = Store(engine)
            call = await stored_call(store, account_id)
            stored_plan = replace(plan, call_id=call.call_id, account_id=account_id)
            cancel = plan_cancel_request(
                stored_plan, "paid", Notional(Decimal("5850.00"), "SGD"), TRADER, T0
            )
            await store.approvals.request_approval(cancel)
        finally:
            await engine.dispose()

    await upgrade(db_url)
    await downgrade(db_url, "0004")  # nothing recorded yet: goes down
    assert await current_revision(db_url) == "0004"
    with pytest.raises(IntegrityError):  # 0004's CHECK knows no plan_cancel
        await request_cancel("A1")
    await upgrade(db_url)
    assert await current_revision(db_url) == "0005"
    await request_cancel("B2")
    with pytest.raises(RuntimeError, match="1 plan-cancel request"):
        await downgrade(db_url, "0004")
    assert await current_revision(db_url) == "0005"
