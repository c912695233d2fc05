"""Operator actions on calls through the Desk, and auto-liquidation, against the simulator.

Remarks and the exception flag, moving a deadline, closing a call, and plans that send
their orders at their time — once per line, however often the desk restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from risk_tui.core.actions import (
    ActionRefused,
    AutoCondition,
    AutoLiquidationPlan,
    OrderIntent,
    PlanLine,
    new_plan_id,
)
from risk_tui.core.calendar import MARKET_TZ, MarketOverrides, TradingCalendars
from risk_tui.core.close_reasons import CloseReason
from risk_tui.core.four_eyes import ApprovalRequest, ApprovalState, describe
from risk_tui.core.lifecycle import CallState, EndReason
from risk_tui.core.model import Market, Side
from risk_tui.core.records import AutoLiquidationState, OrderOutcome
from risk_tui.core.roles import Actor, Role
from risk_tui.desk.plans import AUTO_LIQUIDATION_ACTOR, plan_order
from risk_tui.desk.runtime import Desk
from risk_tui.storage import Store, run_verify
from tests.clocks import SGT
from tests.desk_rig import NOW, Rig, desk_rig, seed_call_id
from tests.factories import OPERATOR, SUPERVISOR, TRADER, VIEWER, naive
from tests.waiting import until


@pytest.fixture
async def rig(db_url: str) -> AsyncIterator[Rig]:
    async with desk_rig(db_url) as desk:
        yield desk


def plan_of(
    desk: Desk,
    *lines: PlanLine,
    account_id: str = "A1001",
    after: timedelta = timedelta(hours=1),
    condition: AutoCondition = AutoCondition.STILL_IN_CALL,
    **changes: Any,
) -> AutoLiquidationPlan:
    return AutoLiquidationPlan(
        plan_id=new_plan_id(),
        call_id=seed_call_id(desk, account_id),
        account_id=account_id,
        execute_at=(desk.engine.clock() + after).astimezone(SGT),
        condition=condition,
        lines=lines or (PlanLine("B.SG", Side.SELL, Decimal("200")),),
        operator="jdoe",
        **changes,
    )


TWO_LINES = (
    PlanLine("B.SG", Side.SELL, Decimal("200")),
    PlanLine("A.SG", Side.SELL, Decimal("100")),
)


async def audit_actions(store: Store, call_id: str) -> list[str]:
    return [entry.action for entry in await store.history.audit_for(call_id)]


# --- remarks and the exception flag ---------------------------------------------------------


async def test_remark_and_exception_flag_round_trip_with_history_and_audit(rig: Rig) -> None:
    call_id = seed_call_id(rig.desk)
    text = "client promised funds by Wed \x1b[31m(see email)"  # stored as typed
    shown = await rig.desk.call_actions.add_remark(call_id, text, exception=True, actor=OPERATOR)
    assert shown.remark == text
    assert shown.exception
    # Shown at once: the engine's open call and a republished view.
    assert rig.desk.engine.open_calls["A1001"].remark == text
    assert rig.views[-1].warnings[0].call.exception
    stored = await rig.store.calls.get_call(call_id)
    assert stored is not None
    assert stored.remark == text
    assert stored.exception

    rig.clock.advance(minutes=5)
    flipped = await rig.desk.call_actions.set_exception(call_id, False, TRADER)
    assert flipped.remark == text
    assert not flipped.exception
    assert (
        await rig.desk.call_actions.set_exception(call_id, False, TRADER) == flipped
    )  # no change: no row
    history = await rig.store.history.remarks_for(call_id)
    assert [(r.operator, r.text, r.exception, r.at) for r in history] == [
        ("amy", text, True, NOW),
        ("jdoe", text, False, NOW + timedelta(minutes=5)),
    ]
    assert await audit_actions(rig.store, call_id) == ["remark", "remark"]

    # A poll after the remark keeps it on the screen.
    rig.sim.publish({"quotes": [{"symbol": "B.SG", "price": "19.40"}]})
    await rig.desk.poller.poll()
    call = rig.desk.engine.open_calls["A1001"]
    assert call.remark == text
    assert not call.exception
    assert call.call_amount > Decimal("1015")


async def test_a_viewer_may_not_edit_remarks_and_the_attempt_is_audited(rig: Rig) -> None:
    call_id = seed_call_id(rig.desk)
    with pytest.raises(ActionRefused, match="may not edit remarks"):
        await rig.desk.call_actions.add_remark(call_id, "hello", exception=False, actor=VIEWER)
    with pytest.raises(ActionRefused, match="may not edit remarks"):
        await rig.desk.call_actions.set_exception(call_id, True, VIEWER)
    assert await rig.store.history.remarks_for(call_id) == []
    assert not rig.desk.engine.open_calls["A1001"].exception
    entries = await rig.store.history.audit_for(call_id)
    assert [e.action for e in entries] == ["remark_refused", "remark_refused"]
    assert entries[0].operator == "vic"
    assert entries[0].details["role"] == "viewer"
    with pytest.raises(ActionRefused, match="no margin call"):
        await rig.desk.call_actions.add_remark("MC-nope", "x", exception=False, actor=OPERATOR)


async def test_an_exception_needs_a_remark_saying_why(rig: Rig) -> None:
    call_id = seed_call_id(rig.desk)
    with pytest.raises(ActionRefused, match="an exception needs a remark saying why"):
        await rig.desk.call_actions.set_exception(call_id, True, OPERATOR)
    with pytest.raises(ActionRefused, match="an exception needs a remark saying why"):
        await rig.desk.call_actions.add_remark(call_id, "   ", exception=True, actor=OPERATOR)
    assert not rig.desk.engine.open_calls["A1001"].exception
    assert await rig.store.history.remarks_for(call_id) == []
    assert await audit_actions(rig.store, call_id) == ["remark_refused", "remark_refused"]


# --- moving a deadline ------------------------------------------------------------------


async def test_moving_a_deadline_needs_approval_then_is_audited_and_shown_at_once(
    rig: Rig,
) -> None:
    call_id = seed_call_id(rig.desk)
    old = rig.desk.engine.open_calls["A1001"].deadline
    assert old == datetime(2026, 11, 25, 7, 0, tzinfo=UTC)  # T+2, 15:00 in Singapore
    new = datetime(2026, 11, 27, 15, 0, tzinfo=SGT)
    request = await rig.desk.intents.move_deadline(call_id, new, "client in hospital", TRADER)
    assert request.state is ApprovalState.PENDING
    assert request.requested_by == "jdoe"
    assert rig.desk.engine.open_calls["A1001"].deadline == old  # not yet
    stored = await rig.store.calls.get_call(call_id)
    assert stored is not None
    assert stored.deadline == old
    executed = await rig.desk.approvals.approve(
        request.approval_id, request.details_hash, SUPERVISOR
    )
    assert executed.state is ApprovalState.EXECUTED
    assert executed.decided_by == "sue"
    moved = rig.desk.engine.open_calls["A1001"]
    assert moved.deadline == new
    assert moved.deadline_reason == "client in hospital"
    assert rig.views[-1].warnings[0].call.deadline == new
    stored = await rig.store.calls.get_call(call_id)
    assert stored is not None
    assert stored.deadline == new
    entries = await rig.store.history.audit_for(call_id)
    assert [e.action for e in entries] == [
        "approval_requested",
        "approval_approved",
        "deadline_moved",
        "approval_executed",
    ]
    entry = entries[2]
    assert entry.operator == "jdoe"  # the requester's decision, with the approver beside it
    assert entry.details["approved_by"] == "sue"
    assert entry.details["approval_id"] == request.approval_id
    assert entry.details["old_deadline"] == old.isoformat()
    assert entry.details["new_deadline"] == new.isoformat()
    assert entry.details["reason"] == "client in hospital"
    assert entry.details["role"] == "trader"
    assert entry.details["feed_status"] == "live"
    assert entry.details["account_state"]["call_amount"] == "1015.00"
    assert (await run_verify(rig.url)).ok


@pytest.mark.parametrize(
    ("actor", "deadline", "reason", "problem"),
    [
        (OPERATOR, datetime(2026, 11, 27, 7, tzinfo=UTC), "ok", "may not move deadlines"),
        (TRADER, datetime(2026, 11, 27, 7, tzinfo=UTC), "  ", "needs a reason"),
        (TRADER, naive(2026, 11, 27, 7), "naive", "time zone"),
        (SUPERVISOR, datetime(2026, 11, 23, 2, tzinfo=UTC), "past", "not in the future"),
        (
            TRADER,
            datetime(2026, 11, 29, 15, tzinfo=SGT),
            "a Sunday",
            "Sun 2026-11-29 15:00 SG time is not a trading day in SG; the next valid "
            "deadline is Mon 2026-11-30 15:00 SG time",
        ),
        (
            TRADER,
            datetime(2026, 11, 27, 17, tzinfo=SGT),
            "after hours",
            "Fri 2026-11-27 17:00 SG time is after the 15:00 cut-off in SG; the next valid "
            "deadline is Mon 2026-11-30 15:00 SG time",
        ),
    ],
)
async def test_a_deadline_move_is_refused_with_the_reason(
    rig: Rig, actor: Actor, deadline: datetime, reason: str, problem: str
) -> None:
    call_id = seed_call_id(rig.desk)
    before = rig.desk.engine.open_calls["A1001"]
    with pytest.raises(ActionRefused, match=problem):
        await rig.desk.intents.move_deadline(call_id, deadline, reason, actor)
    assert rig.desk.engine.open_calls["A1001"] == before
    assert await rig.store.calls.get_call(call_id) == before
    assert await audit_actions(rig.store, call_id) == ["deadline_move_refused"]


async def test_a_sunday_deadline_on_an_hk_call_is_refused_by_the_desk_itself(rig: Rig) -> None:
    # Issue 13 §7: 2026-12-13 15:00 on an HK call was approved and applied. The desk refuses
    # it whatever client asks (no dialog here), and offers the next valid deadline.
    call_id = seed_call_id(rig.desk, "H2001")
    before = rig.desk.engine.open_calls["H2001"]
    sunday = datetime(2026, 12, 13, 15, 0, tzinfo=MARKET_TZ[Market.HK])
    with pytest.raises(ActionRefused, match="the next valid deadline is Mon 2026-12-14 15:00"):
        await rig.desk.intents.move_deadline(call_id, sunday, "client abroad", TRADER)
    assert rig.desk.engine.open_calls["H2001"] == before
    assert await rig.store.approvals.approvals_for(call_id) == []
    entries = await rig.store.history.audit_for(call_id)
    assert [e.action for e in entries] == ["deadline_move_refused"]
    assert "Sun 2026-12-13 15:00 HK time is not a trading day in HK" in str(entries[0].details)


async def test_a_deadline_move_is_checked_again_when_approved(rig: Rig) -> None:
    # Valid when asked; a typhoon closure added to the calendar before the approval makes
    # the day no session: the approval is refused, the deadline stays.
    call_id = seed_call_id(rig.desk)
    old = rig.desk.engine.open_calls["A1001"].deadline
    friday = datetime(2026, 11, 27, 15, 0, tzinfo=SGT)
    request = await rig.desk.intents.move_deadline(call_id, friday, "client abroad", TRADER)
    closed = MarketOverrides(
        covered_years=frozenset(), closed=frozenset({date(2026, 11, 27)}), opened=frozenset()
    )
    rig.desk.engine.calendars = TradingCalendars({Market.SG: closed})
    with pytest.raises(ActionRefused, match="Fri 2026-11-27 15:00 SG time is not a trading day"):
        await rig.desk.approvals.approve(request.approval_id, request.details_hash, SUPERVISOR)
    assert rig.desk.engine.open_calls["A1001"].deadline == old
    stored = await rig.store.calls.get_call(call_id)
    assert stored is not None
    assert stored.deadline == old


# --- closing a call ----------------------------------------------------------------------

WRITTEN_OFF = CloseReason.WRITTEN_OFF


async def test_a_close_without_an_end_reason_from_the_list_is_refused(rig: Rig) -> None:
    # Issue 13 §9: closing asks for an end reason from a list; a client that skips the
    # dialog's list is refused by the desk, and the refusal is audited.
    call_id = seed_call_id(rig.desk)
    with pytest.raises(ActionRefused, match="needs an end reason: one of met by deposit, met by"):
        await rig.desk.intents.close_call(call_id, "paid", SUPERVISOR, close_reason=None)
    assert "A1001" in rig.desk.engine.open_calls
    assert await rig.store.approvals.approvals_for(call_id) == []
    assert await audit_actions(rig.store, call_id) == ["close_refused"]


async def test_the_end_reason_travels_in_the_request_and_is_shown_with_the_ended_call(
    rig: Rig,
) -> None:
    call_id = seed_call_id(rig.desk)
    request = await rig.desk.intents.close_call(
        call_id, "duplicate of a call on D4001", TRADER, close_reason=CloseReason.ENTERED_IN_ERROR
    )
    assert request.details["close_reason"] == "entered_in_error"
    assert "entered in error: duplicate of a call on D4001" in describe(request)
    await rig.desk.approvals.approve(request.approval_id, request.details_hash, SUPERVISOR)
    ended = await rig.store.calls.get_call(call_id)
    assert ended is not None
    assert ended.end_note == "entered in error: duplicate of a call on D4001"
    entries = await rig.store.history.audit_for(call_id)
    closed = next(e for e in entries if e.action == "call_closed")
    assert (closed.operator, closed.details["approved_by"]) == ("jdoe", "sue")
    assert closed.details["close_reason"] == "entered_in_error"
    assert closed.details["reason"] == "duplicate of a call on D4001"
    assert (await run_verify(rig.url)).ok


async def test_closing_a_call_writes_the_end_snapshot_and_leaves_the_warnings(rig: Rig) -> None:
    call_id = seed_call_id(rig.desk)
    with pytest.raises(ActionRefused, match="may not close"):
        await rig.desk.intents.close_call(call_id, "bankrupt", OPERATOR, close_reason=WRITTEN_OFF)
    with pytest.raises(ActionRefused, match="needs a note saying what happened"):
        await rig.desk.intents.close_call(call_id, "", SUPERVISOR, close_reason=WRITTEN_OFF)
    plan = plan_of(rig.desk)
    await rig.desk.intents.schedule_plan(plan, TRADER)
    rig.clock.advance(minutes=1)
    request = await rig.desk.intents.close_call(
        call_id, "deposit confirmed by phone", SUPERVISOR, close_reason=CloseReason.MET_BY_DEPOSIT
    )
    assert request.state is ApprovalState.PENDING
    assert "A1001" in rig.desk.engine.open_calls
    executed = await rig.desk.approvals.approve(request.approval_id, request.details_hash, TRADER)
    assert executed.state is ApprovalState.EXECUTED
    ended = await rig.store.calls.get_call(call_id)
    assert ended is not None
    assert ended.state is CallState.ENDED
    assert ended.end_reason is EndReason.CLOSED
    assert "A1001" not in rig.desk.engine.open_calls
    assert "A1001" not in [row.account_id for row in rig.views[-1].warnings]
    assert ended.end_note == "met by deposit: deposit confirmed by phone"
    snapshots = await rig.store.history.snapshots_for(call_id)
    assert [s.scenario for s in snapshots] == ["trigger", "end"]
    assert snapshots[-1].payload["call_state"] == "ended"
    assert snapshots[-1].payload["equity"] == "9500.00"
    entries = await rig.store.history.audit_for(call_id)
    closed = next(e for e in entries if e.action == "call_closed")
    assert closed.operator == "sue"
    assert closed.details["reason"] == "deposit confirmed by phone"
    assert closed.details["close_reason"] == "met_by_deposit"
    assert closed.details["approved_by"] == "jdoe"
    # Its plan is cancelled with it, and never sends anything.
    (cancelled,) = await rig.store.plans.auto_liquidations_for(call_id)
    assert cancelled.state is AutoLiquidationState.CANCELLED
    rig.clock.advance(hours=2)
    await rig.desk.plans.run_due()
    assert sum(rig.sim.order_posts.values()) == 0
    with pytest.raises(ActionRefused, match="no open margin call"):
        await rig.desk.intents.close_call(call_id, "again", SUPERVISOR, close_reason=WRITTEN_OFF)
    # Still below MM: the next fresh poll that moves the account opens a new call.
    rig.sim.publish({"quotes": [{"symbol": "B.SG", "price": "19.40"}]})
    await rig.desk.poller.poll()
    reopened = rig.desk.engine.open_calls["A1001"]
    assert reopened.call_id != call_id
    assert reopened.call_amount > ended.call_amount
    assert (await run_verify(rig.url)).ok


# --- auto-liquidation -------------------------------------------------------------------


async def test_a_plan_sends_one_order_per_line_at_its_time(rig: Rig) -> None:
    call_id = seed_call_id(rig.desk)
    plan = plan_of(rig.desk, *TWO_LINES)
    stored = await rig.desk.intents.schedule_plan(plan, TRADER)
    assert await rig.desk.intents.schedule_plan(plan, TRADER) == stored  # a double press
    assert stored.state is AutoLiquidationState.SCHEDULED
    assert await rig.desk.plans.run_due() == []  # not yet
    rig.clock.advance(minutes=59)
    assert await rig.desk.plans.run_due() == []
    rig.clock.advance(minutes=1)
    (executed,) = await rig.desk.plans.run_due()
    assert executed.state is AutoLiquidationState.EXECUTED
    assert rig.sim.order_posts == {f"{plan.plan_id}-0": 1, f"{plan.plan_id}-1": 1}
    orders = {o.client_order_id: o for o in await rig.store.orders.page(call_id=call_id)}
    first = orders[f"{plan.plan_id}-0"]
    assert first.operator == AUTO_LIQUIDATION_ACTOR.name
    assert first.reason == "auto_liquidation"
    assert (first.symbol, first.quantity, first.order_type) == ("B.SG", Decimal("200"), "market")
    assert await rig.desk.plans.run_due() == []  # executed once
    assert sum(rig.sim.order_posts.values()) == 2
    actions = await audit_actions(rig.store, call_id)
    assert actions[0] == "auto_liquidation_scheduled"
    assert actions.count("order_created") == 2
    assert actions[-1] == "auto_liquidation_executed"
    entry = (await rig.store.history.audit_for(call_id))[-1]
    assert entry.details["detail"] == "2 of 2 orders sent"
    assert [line["status"] for line in entry.details["lines"]] == ["working", "working"]
    assert (await run_verify(rig.url)).ok


async def test_the_scheduler_runs_inside_desk_run(rig: Rig) -> None:
    plan = plan_of(rig.desk, after=timedelta(seconds=30))
    await rig.desk.intents.schedule_plan(plan, TRADER)
    rig.clock.advance(seconds=30)
    rig.desk.plans.interval = 0.02

    async def executed() -> bool:
        stored = await rig.store.plans.get_auto_liquidation(plan.plan_id)
        return stored is not None and stored.state is AutoLiquidationState.EXECUTED

    task = asyncio.create_task(rig.desk.run())
    try:
        await until(executed, what="the plan executed by desk.run()")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert rig.sim.order_posts == {f"{plan.plan_id}-0": 1}


async def test_a_plan_whose_call_is_met_first_is_cancelled_and_sends_nothing(rig: Rig) -> None:
    call_id = seed_call_id(rig.desk)
    plan = plan_of(rig.desk, *TWO_LINES)
    await rig.desk.intents.schedule_plan(plan, TRADER)
    rig.sim.publish({"cash": [{"account_id": "A1001", "currency": "SGD", "balance": "-13000"}]})
    await rig.desk.poller.poll()  # the deposit meets the call
    assert "A1001" not in rig.desk.engine.open_calls
    (cancelled,) = await rig.store.plans.auto_liquidations_for(call_id)
    assert cancelled.state is AutoLiquidationState.CANCELLED  # at once, not at its time
    entry = (await rig.store.history.audit_for(call_id))[-1]
    assert entry.action == "auto_liquidation_cancelled"
    assert entry.details["detail"] == "call ended before execution"
    rig.clock.advance(hours=2)
    assert await rig.desk.plans.run_due() == []
    assert sum(rig.sim.order_posts.values()) == 0


async def test_plans_of_a_call_that_ended_while_the_desk_was_down_are_cancelled(rig: Rig) -> None:
    """The call's end commits first; a crash before the plan is settled loses nothing."""
    call_id = seed_call_id(rig.desk)
    plan = plan_of(rig.desk)
    await rig.desk.intents.schedule_plan(plan, TRADER)

    async def crash_before_settling(call_ids: list[str]) -> None:
        return None

    # The crash, on this desk only (a restarted desk settles for real).
    rig.desk.plans.settle_for_ended_calls = crash_before_settling  # type: ignore[method-assign]
    rig.sim.publish({"cash": [{"account_id": "A1001", "currency": "SGD", "balance": "-13000"}]})
    await rig.desk.poller.poll()
    stored = await rig.store.calls.get_call(call_id)
    assert stored is not None
    assert not stored.is_open
    assert (await rig.store.plans.stranded_auto_liquidations())[0].plan_id == plan.plan_id
    restarted = await rig.new_desk()
    (settled,) = await restarted.plans.run_due()  # its time has not even come
    assert settled.state is AutoLiquidationState.CANCELLED
    assert sum(rig.sim.order_posts.values()) == 0


async def test_a_below_fm_plan_is_not_executed_when_the_account_is_only_in_margin_call(
    rig: Rig,
) -> None:
    assert rig.desk.engine.results["A1001"].risk_level == "margin_call"
    plan = plan_of(rig.desk, condition=AutoCondition.BELOW_FM)
    await rig.desk.intents.schedule_plan(plan, TRADER)
    rig.clock.advance(hours=1)
    (cancelled,) = await rig.desk.plans.run_due()
    assert cancelled.state is AutoLiquidationState.CANCELLED
    entry = (await rig.store.history.audit_for(plan.call_id))[-1]
    assert "below_fm no longer holds" in entry.details["detail"]
    assert "margin_call" in entry.details["detail"]
    assert sum(rig.sim.order_posts.values()) == 0
    assert "A1001" in rig.desk.engine.open_calls  # the call itself goes on


async def test_a_below_fm_plan_executes_on_an_account_in_force_call(rig: Rig) -> None:
    assert rig.desk.engine.results["U3001"].risk_level == "force_call"
    plan = plan_of(
        rig.desk,
        PlanLine("TSLA.US", Side.BUY, Decimal("40")),
        account_id="U3001",
        condition=AutoCondition.BELOW_FM,
    )
    await rig.desk.intents.schedule_plan(plan, Actor("jdoe", Role.SUPERVISOR))
    rig.clock.advance(hours=1)
    (executed,) = await rig.desk.plans.run_due()
    assert executed.state is AutoLiquidationState.EXECUTED
    assert rig.sim.order_posts == {f"{plan.plan_id}-0": 1}
    (order,) = [o for o in rig.sim.orders.values() if o.client_order_id == f"{plan.plan_id}-0"]
    assert (order.side, order.quantity, order.account_id) == ("buy", Decimal("40"), "U3001")


async def test_a_due_plan_waits_for_a_live_feed(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    plan = plan_of(rig.desk)
    await rig.desk.intents.schedule_plan(plan, TRADER)
    rig.clock.advance(hours=1)
    rig.monotonic.now += 31  # no successful poll for longer than stale_after: STALE
    with caplog.at_level(logging.WARNING, logger="risk_tui.desk"):
        assert await rig.desk.plans.run_due() == []
        assert await rig.desk.plans.run_due() == []
    waiting = [r for r in caplog.records if "not live" in r.getMessage()]
    assert len(waiting) == 1  # said once, not every second
    assert sum(rig.sim.order_posts.values()) == 0
    stored = await rig.store.plans.get_auto_liquidation(plan.plan_id)
    assert stored is not None
    assert stored.state is AutoLiquidationState.SCHEDULED
    await rig.desk.poller.poll()  # the feed is back
    (executed,) = await rig.desk.plans.run_due()
    assert executed.state is AutoLiquidationState.EXECUTED
    assert rig.sim.order_posts == {f"{plan.plan_id}-0": 1}


class Crash(BaseException):
    """The process dies: nothing after this point runs."""


async def test_a_restart_mid_execution_never_sends_a_line_twice(rig: Rig) -> None:
    plan = plan_of(rig.desk, *TWO_LINES)
    await rig.desk.intents.schedule_plan(plan, TRADER)
    rig.clock.advance(hours=1)
    first = rig.desk
    real_submit = first.trading.place_order
    submitted: list[str] = []

    async def dies_after_the_first_line(
        intent: OrderIntent, actor: Actor, **options: Any
    ) -> OrderOutcome:
        if submitted:
            raise Crash
        submitted.append(intent.client_order_id)
        return await real_submit(intent, actor, **options)

    first.trading.place_order = dies_after_the_first_line  # type: ignore[method-assign]  # this desk only
    with pytest.raises(Crash):
        await first.plans.run_due()
    assert rig.sim.order_posts == {f"{plan.plan_id}-0": 1}
    stored = await rig.store.plans.get_auto_liquidation(plan.plan_id)
    assert stored is not None
    assert stored.state is AutoLiquidationState.SCHEDULED

    restarted = await rig.new_desk()
    (executed,) = await restarted.plans.run_due()
    assert executed.state is AutoLiquidationState.EXECUTED
    assert rig.sim.order_posts == {f"{plan.plan_id}-0": 1, f"{plan.plan_id}-1": 1}
    assert len(await rig.store.orders.page(call_id=plan.call_id)) == 2
    again = await rig.new_desk()
    assert await again.plans.run_due() == []
    assert sum(rig.sim.order_posts.values()) == 2


async def test_a_part_sent_plan_is_finished_even_if_its_condition_has_lapsed(rig: Rig) -> None:
    """Judged once: a plan a crash interrupted is completed, not judged again."""
    plan = plan_of(rig.desk, *TWO_LINES, condition=AutoCondition.BELOW_FM)
    # As if a run had judged it (the account below FM) and died after the first line.
    await rig.desk.intents.schedule_plan(plan, TRADER)
    rig.clock.advance(hours=1)
    intent = plan_order(plan, 0, AUTO_LIQUIDATION_ACTOR.name)
    await rig.desk.intents.submit_order(intent, AUTO_LIQUIDATION_ACTOR)
    (executed,) = await rig.desk.plans.run_due()
    assert executed.state is AutoLiquidationState.EXECUTED
    assert rig.sim.order_posts == {f"{plan.plan_id}-0": 1, f"{plan.plan_id}-1": 1}


@pytest.mark.parametrize(
    ("changes", "actor", "problem"),
    [
        ({}, OPERATOR, "may not schedule liquidations"),
        ({}, Actor("bob", Role.TRADER), "names operator 'jdoe'"),
        ({"after": timedelta(minutes=-1)}, TRADER, "not in the future"),
        (
            {"lines": (PlanLine("B.SG", Side.SELL, Decimal("5000")),)},
            TRADER,
            "more than the 1000 held",
        ),
        (
            {"lines": (PlanLine("TSLA.US", Side.SELL, Decimal("1")),)},
            TRADER,
            "holds no long TSLA.US",
        ),
        ({"lines": TWO_LINES + TWO_LINES[:1]}, TRADER, "names a symbol twice"),
        (
            {"moved_deadline": datetime(2026, 11, 27, 7, tzinfo=UTC)},
            TRADER,
            "moving a deadline needs a reason",
        ),
        ({"deadline_reason": "why"}, TRADER, "no new deadline"),
        (
            {"moved_deadline": datetime(2026, 11, 29, 15, tzinfo=SGT), "deadline_reason": "why"},
            TRADER,
            "Sun 2026-11-29 15:00 SG time is not a trading day",
        ),
    ],
)
async def test_a_plan_is_refused_with_every_reason(
    rig: Rig, changes: dict[str, Any], actor: Actor, problem: str
) -> None:
    changes = dict(changes)  # the parameters are shared by both databases
    lines = changes.pop("lines", ())
    plan = plan_of(rig.desk, *lines, **changes)
    with pytest.raises(ActionRefused, match=problem):
        await rig.desk.intents.schedule_plan(plan, actor)
    assert await rig.store.plans.auto_liquidations_for(plan.call_id) == []
    assert await audit_actions(rig.store, plan.call_id) == ["auto_liquidation_refused"]


async def test_a_plan_on_a_stale_feed_or_a_call_not_open_is_refused(rig: Rig) -> None:
    plan = plan_of(rig.desk)
    with pytest.raises(ActionRefused, match="is not open"):
        await rig.desk.intents.schedule_plan(
            replace(plan, account_id="S5001", plan_id=new_plan_id()), TRADER
        )
    rig.monotonic.now += 31
    with pytest.raises(ActionRefused, match="stale"):
        await rig.desk.intents.schedule_plan(plan, TRADER)


async def test_a_plan_that_moves_the_deadline_needs_approval_then_does_both_in_one_step(
    rig: Rig,
) -> None:
    new = datetime(2026, 11, 27, 15, 0, tzinfo=SGT)
    plan = plan_of(rig.desk, moved_deadline=new, deadline_reason="typhoon signal 8")
    request = await rig.desk.intents.schedule_plan(plan, TRADER)
    assert isinstance(request, ApprovalRequest)
    assert request.state is ApprovalState.PENDING
    assert await rig.store.plans.auto_liquidations_for(plan.call_id) == []
    assert rig.desk.engine.open_calls["A1001"].deadline != new
    executed = await rig.desk.approvals.approve(
        request.approval_id, request.details_hash, SUPERVISOR
    )
    assert executed.state is ApprovalState.EXECUTED, executed.note
    (stored,) = await rig.store.plans.auto_liquidations_for(plan.call_id)
    assert stored.plan() == plan  # exactly as requested
    assert stored.moved_deadline == new
    assert stored.deadline_reason == "typhoon signal 8"
    assert rig.desk.engine.open_calls["A1001"].deadline == new
    assert rig.views[-1].warnings[0].call.deadline_reason == "typhoon signal 8"
    call = await rig.store.calls.get_call(plan.call_id)
    assert call is not None
    assert call.deadline == new
    entries = await rig.store.history.audit_for(plan.call_id)
    assert [e.action for e in entries] == [
        "approval_requested",
        "approval_approved",
        "auto_liquidation_scheduled",
        "deadline_moved",
        "approval_executed",
    ]
    scheduled, moved = entries[2], entries[3]
    assert scheduled.operator == "jdoe"
    assert scheduled.details["approved_by"] == "sue"
    assert moved.details["plan_id"] == plan.plan_id
    assert moved.details["approved_by"] == "sue"
    assert moved.details["reason"] == "typhoon signal 8"


async def test_an_operator_can_withdraw_a_scheduled_plan(rig: Rig) -> None:
    plan = plan_of(rig.desk)
    await rig.desk.intents.schedule_plan(plan, TRADER)
    with pytest.raises(ActionRefused, match="may not cancel"):
        await rig.desk.plans.cancel(plan.plan_id, "client paid", OPERATOR)
    withdrawn = await rig.desk.plans.cancel(plan.plan_id, "client paid", SUPERVISOR)
    assert withdrawn.state is AutoLiquidationState.CANCELLED
    with pytest.raises(ActionRefused, match="already cancelled"):
        await rig.desk.plans.cancel(plan.plan_id, "again", SUPERVISOR)
    rig.clock.advance(hours=2)
    assert await rig.desk.plans.run_due() == []
    assert sum(rig.sim.order_posts.values()) == 0
    entry = next(
        e
        for e in await rig.store.history.audit_for(plan.call_id)
        if e.action == "auto_liquidation_cancelled"
    )
    assert entry.operator == "sue"
    assert entry.details["detail"] == "client paid"
