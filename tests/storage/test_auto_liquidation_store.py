"""Auto-liquidation plans in the Store: scheduled once per id, moved once, always audited."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from risk_tui.core.actions import AutoCondition, AutoLiquidationPlan, PlanLine
from risk_tui.core.lifecycle import AuditEntry, CallState, EndReason, LifecycleBatch
from risk_tui.core.model import Side
from risk_tui.core.records import AutoLiquidationState
from risk_tui.storage.chain import verify
from risk_tui.storage.errors import KeyConflict, UnknownAutoLiquidation, UnknownCall
from risk_tui.storage.store import Store
from risk_tui.storage.tables import audit_log, auto_liquidations
from tests.factories import T0, make_call

SGT = timezone(timedelta(hours=8))


def plan_for(call_id: str, plan_id: str = "RT-A-1", **changes: Any) -> AutoLiquidationPlan:
    plan = AutoLiquidationPlan(
        plan_id=plan_id,
        call_id=call_id,
        account_id="A1",
        execute_at=(T0 + timedelta(hours=2)).astimezone(SGT),
        condition=AutoCondition.STILL_IN_CALL,
        lines=(
            PlanLine("B.SG", Side.SELL, Decimal("200")),
            PlanLine("TSLA.US", Side.BUY, Decimal("40.5")),
        ),
        operator="jdoe",
    )
    return replace(plan, **changes)


async def actions_of(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        result = await conn.execute(select(audit_log.c.action).order_by(audit_log.c.seq))
        return list(result.scalars())


async def plan_rows(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        query = select(func.count()).select_from(auto_liquidations)
        return int((await conn.execute(query)).scalar_one())


async def stored_call(store: Store, account_id: str = "A1") -> str:
    call = make_call(account_id)
    await store.calls.commit(LifecycleBatch(calls=[call]))
    return call.call_id


async def test_a_plan_round_trips_and_is_scheduled_once_per_id(store: Store) -> None:
    call_id = await stored_call(store)
    plan = plan_for(
        call_id,
        condition=AutoCondition.BELOW_FM,
        moved_deadline=T0 + timedelta(days=4),
        deadline_reason="client abroad; RO approved",
    )
    stored, created = await store.plans.schedule_auto_liquidation(
        plan, at=T0, details={"role": "trader", "account_state": {"equity": "9500.00"}}
    )
    assert created
    assert stored.state is AutoLiquidationState.SCHEDULED
    assert stored.plan() == plan
    assert stored.lines[1].quantity == Decimal("40.5")
    assert stored.lines[1].side is Side.BUY
    assert stored.execute_at.tzinfo is not None
    assert stored.created_at == T0
    assert stored.client_order_id(1) == "RT-A-1-1"
    assert await store.plans.get_auto_liquidation("RT-A-1") == stored
    again, created = await store.plans.schedule_auto_liquidation(plan, at=T0 + timedelta(seconds=1))
    assert not created
    assert again == stored
    assert await plan_rows(store.engine) == 1
    (entry,) = await store.history.audit_for(call_id)
    assert entry.action == "auto_liquidation_scheduled"
    assert entry.operator == "jdoe"
    assert entry.details["plan"]["lines"][1] == {
        "symbol": "TSLA.US",
        "side": "buy",
        "quantity": "40.5",
    }
    assert entry.details["role"] == "trader"
    assert entry.details["account_state"] == {"equity": "9500.00"}


async def test_an_id_never_names_two_plans_and_the_call_must_exist(store: Store) -> None:
    call_id = await stored_call(store)
    await store.plans.schedule_auto_liquidation(plan_for(call_id), at=T0)
    with pytest.raises(KeyConflict):
        await store.plans.schedule_auto_liquidation(
            plan_for(call_id, condition=AutoCondition.BELOW_FM), at=T0
        )
    with pytest.raises(UnknownCall):
        await store.plans.schedule_auto_liquidation(plan_for("MC-nope", "RT-A-2"), at=T0)
    assert await plan_rows(store.engine) == 1
    assert await actions_of(store.engine) == ["auto_liquidation_scheduled"]


async def test_a_moved_deadline_commits_with_the_plan_and_keeps_the_remark(store: Store) -> None:
    call = make_call("A1")
    await store.calls.commit(LifecycleBatch(calls=[call]))
    await store.calls.add_remark(call.call_id, "amy", "promised funds", True, T0)
    new_deadline = T0 + timedelta(days=5)
    moved = replace(
        call, deadline=new_deadline, deadline_reason="typhoon", remark="", version=call.version + 1
    )
    entry = AuditEntry(T0, "jdoe", "deadline_moved", call.call_id, "A1", {"reason": "typhoon"})
    await store.plans.schedule_auto_liquidation(
        plan_for(call.call_id, moved_deadline=new_deadline, deadline_reason="typhoon"),
        at=T0,
        also=LifecycleBatch(calls=[moved], audit=[entry]),
    )
    loaded = await store.calls.get_call(call.call_id)
    assert loaded is not None
    assert loaded.deadline == new_deadline
    assert loaded.deadline_reason == "typhoon"
    assert loaded.remark == "promised funds"
    assert loaded.exception
    assert await actions_of(store.engine) == [
        "remark",
        "auto_liquidation_scheduled",
        "deadline_moved",
    ]


async def test_a_failed_schedule_writes_nothing_of_the_action(store: Store) -> None:
    call = make_call("A1")
    await store.calls.commit(LifecycleBatch(calls=[call]))
    moved = replace(
        call, deadline=T0 + timedelta(days=5), deadline_reason="typhoon", version=call.version + 1
    )
    entry = AuditEntry(T0, "jdoe", "deadline_moved", call.call_id, "A1", {})
    with pytest.raises(UnknownCall):
        await store.plans.schedule_auto_liquidation(
            plan_for("MC-nope"), at=T0, also=LifecycleBatch(calls=[moved], audit=[entry])
        )
    assert await store.calls.get_call(call.call_id) == call
    assert await actions_of(store.engine) == []


async def test_due_plans_are_the_scheduled_ones_whose_time_has_come(store: Store) -> None:
    call_id = await stored_call(store)
    early = plan_for(call_id, "RT-A-early", execute_at=T0 + timedelta(minutes=30))
    late = plan_for(call_id, "RT-A-late", execute_at=T0 + timedelta(hours=3))
    done = plan_for(call_id, "RT-A-done", execute_at=T0 + timedelta(minutes=10))
    for plan in (late, done, early):
        await store.plans.schedule_auto_liquidation(plan, at=T0)
    await store.plans.mark_auto_liquidation(
        "RT-A-done", AutoLiquidationState.EXECUTED, detail="sent"
    )
    assert await store.plans.due_auto_liquidations(T0) == []
    due = await store.plans.due_auto_liquidations((T0 + timedelta(hours=1)).astimezone(SGT))
    assert [p.plan_id for p in due] == ["RT-A-early"]
    due = await store.plans.due_auto_liquidations(T0 + timedelta(hours=3))
    assert [p.plan_id for p in due] == ["RT-A-early", "RT-A-late"]  # the exact instant is due
    scheduled = await store.plans.scheduled_auto_liquidations()
    assert [p.plan_id for p in scheduled] == ["RT-A-early", "RT-A-late"]
    every = await store.plans.auto_liquidations_for(call_id)
    assert {p.plan_id: p.state for p in every} == {
        "RT-A-late": AutoLiquidationState.SCHEDULED,
        "RT-A-done": AutoLiquidationState.EXECUTED,
        "RT-A-early": AutoLiquidationState.SCHEDULED,
    }
    assert await store.plans.auto_liquidations_for("MC-other") == []


async def test_a_plan_moves_once_and_each_move_is_audited(store: Store) -> None:
    call_id = await stored_call(store)
    await store.plans.schedule_auto_liquidation(plan_for(call_id), at=T0)
    at = T0 + timedelta(hours=2)
    executed = await store.plans.mark_auto_liquidation(
        "RT-A-1",
        AutoLiquidationState.EXECUTED,
        detail="2 of 2 orders sent",
        at=at,
        operator="engine:auto-liquidation",
        details={"lines": [{"line": 0, "client_order_id": "RT-A-1-0"}]},
    )
    assert executed.state is AutoLiquidationState.EXECUTED
    assert executed.updated_at == at
    # A second scheduler (or an operator) arriving late changes nothing, writes nothing.
    late = await store.plans.mark_auto_liquidation(
        "RT-A-1", AutoLiquidationState.CANCELLED, detail="too late", at=at
    )
    assert late == executed == await store.plans.get_auto_liquidation("RT-A-1")
    entries = await store.history.audit_for(call_id)
    assert [e.action for e in entries] == [
        "auto_liquidation_scheduled",
        "auto_liquidation_executed",
    ]
    assert entries[1].operator == "engine:auto-liquidation"
    assert entries[1].details["detail"] == "2 of 2 orders sent"
    assert entries[1].details["lines"][0]["client_order_id"] == "RT-A-1-0"
    with pytest.raises(ValueError, match="scheduled"):
        await store.plans.mark_auto_liquidation(
            "RT-A-1", AutoLiquidationState.SCHEDULED, detail=None
        )
    with pytest.raises(UnknownAutoLiquidation):
        await store.plans.mark_auto_liquidation("nope", AutoLiquidationState.CANCELLED, detail=None)
    assert (await verify(store.engine)).ok


async def test_racing_schedulers_move_a_plan_once(store: Store) -> None:
    call_id = await stored_call(store)
    await store.plans.schedule_auto_liquidation(plan_for(call_id), at=T0)
    results = await asyncio.gather(
        *(
            store.plans.mark_auto_liquidation(
                "RT-A-1", AutoLiquidationState.CANCELLED, detail=f"runner {i}", operator="engine"
            )
            for i in range(6)
        )
    )
    assert {r.state for r in results} == {AutoLiquidationState.CANCELLED}
    assert (await actions_of(store.engine)).count("auto_liquidation_cancelled") == 1


async def test_stranded_plans_are_the_scheduled_ones_of_ended_calls(store: Store) -> None:
    open_id = await stored_call(store, "A1")
    ended = make_call(
        "B2",
        state=CallState.ENDED,
        ended_at=T0 + timedelta(hours=1),
        end_reason=EndReason.MET,
    )
    await store.calls.commit(LifecycleBatch(calls=[ended]))
    await store.plans.schedule_auto_liquidation(plan_for(open_id, "RT-A-open"), at=T0)
    await store.plans.schedule_auto_liquidation(
        plan_for(ended.call_id, "RT-A-stranded", account_id="B2"), at=T0
    )
    await store.plans.schedule_auto_liquidation(
        plan_for(ended.call_id, "RT-A-settled", account_id="B2"), at=T0
    )
    await store.plans.mark_auto_liquidation(
        "RT-A-settled", AutoLiquidationState.CANCELLED, detail="call ended before execution"
    )
    assert [p.plan_id for p in await store.plans.stranded_auto_liquidations()] == ["RT-A-stranded"]
