"""Four-eyes approval and the kill switch on a desk acting on the simulator.

Liquidations above the threshold (here SGD 5,000), deadline moves and closes wait for a
second person; the approved action is executed exactly as stored, once. The kill switch
stops every working order and blocks new liquidations, manual and scheduled, until it
is released. Every step is in the audit chain.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from risk_tui.config import FourEyesSettings
from risk_tui.core.actions import (
    ActionRefused,
    AutoCondition,
    AutoLiquidationPlan,
    OrderIntent,
    PlanLine,
    SendState,
    new_client_order_id,
    new_plan_id,
)
from risk_tui.core.close_reasons import CloseReason
from risk_tui.core.four_eyes import ApprovalKind, ApprovalRequest, ApprovalState
from risk_tui.core.model import Side
from risk_tui.core.records import AutoLiquidationState, OrderOutcome, StoredOrder
from risk_tui.core.roles import Actor
from risk_tui.feed.broker import GatewayUnavailable
from risk_tui.storage import Store, run_verify
from risk_tui.storage.tables import audit_log, kill_switch
from tests.clocks import SGT
from tests.desk_rig import Rig, desk_rig, seed_call_id
from tests.factories import BOB, OPERATOR, SUPERVISOR, TRADER, VIEWER, sell_order


@pytest.fixture
async def rig(db_url: str) -> AsyncIterator[Rig]:
    four_eyes = FourEyesSettings(liquidation_notional=Decimal("5000"))
    async with desk_rig(db_url, four_eyes=four_eyes) as desk:
        yield desk


def sell(rig: Rig, quantity: str, symbol: str = "B.SG", **changes: Any) -> OrderIntent:
    return sell_order(
        quantity,
        client_order_id=new_client_order_id(),
        symbol=symbol,
        reference=seed_call_id(rig.desk),
        **changes,
    )


async def actions(store: Store, call_id: str | None = None) -> list[str]:
    if call_id is not None:
        return [entry.action for entry in await store.history.audit_for(call_id)]
    return [action for action, _ in await audit_trail(store)]


async def audit_trail(store: Store) -> list[tuple[str, dict[str, Any]]]:
    """Every audit entry of the desk, call or none, in order: (action, details)."""
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            select(audit_log.c.action, audit_log.c.details).order_by(audit_log.c.seq)
        )
        return [(action, details) for action, details in rows]


async def requested(rig: Rig, intent: OrderIntent, actor: Actor = TRADER) -> ApprovalRequest:
    outcome = await rig.desk.intents.submit_order(intent, actor)
    assert isinstance(outcome, ApprovalRequest), outcome
    return outcome


# --- liquidations ---------------------------------------------------------------------------


async def test_a_liquidation_below_the_threshold_goes_straight_through(rig: Rig) -> None:
    intent = sell(rig, "200")  # 200 × 19.50 = SGD 3,900
    outcome = await rig.desk.intents.submit_order(intent, TRADER)
    assert isinstance(outcome, OrderOutcome)
    assert outcome.send_state is SendState.ACKNOWLEDGED
    at_limit = sell(rig, "200", order_type="limit", limit_price=Decimal("25"))  # exactly 5,000
    assert isinstance(await rig.desk.intents.submit_order(at_limit, TRADER), OrderOutcome)
    assert sum(rig.sim.order_posts.values()) == 2
    assert await rig.store.approvals.approvals_in(list(ApprovalState)) == []


async def test_a_liquidation_above_the_threshold_waits_for_a_second_person_and_goes_once(
    rig: Rig,
) -> None:
    call_id = seed_call_id(rig.desk)
    intent = sell(rig, "300")  # 300 × 19.50 = SGD 5,850
    request = await requested(rig, intent)
    assert request.kind is ApprovalKind.LIQUIDATION
    assert request.state is ApprovalState.PENDING
    assert request.details["notional"] == {"amount": "5850.00", "currency": "SGD", "problem": None}
    assert (
        await rig.desk.intents.submit_order(intent, TRADER) == request
    )  # a double press: one request
    assert rig.sim.order_posts == {}
    assert await rig.store.orders.get(intent.client_order_id) is None
    seen = request.details_hash

    # Nobody approves their own; only traders and supervisors approve.
    for who, problem in (
        (TRADER, "nobody approves their own request"),
        (OPERATOR, "may not approve"),
        (VIEWER, "may not approve"),
    ):
        with pytest.raises(ActionRefused, match=problem):
            await rig.desk.approvals.approve(request.approval_id, seen, who)
    assert rig.sim.order_posts == {}

    executed = await rig.desk.approvals.approve(request.approval_id, seen, SUPERVISOR)
    assert executed.state is ApprovalState.EXECUTED, executed.note
    assert executed.decided_by == "sue"
    assert rig.sim.order_posts == {intent.client_order_id: 1}
    (sent,) = [o for o in rig.sim.orders.values() if o.client_order_id == intent.client_order_id]
    assert (sent.account_id, sent.symbol, sent.side, sent.quantity, sent.order_type) == (
        "A1001",
        "B.SG",
        "sell",
        Decimal("300"),
        "market",
    )
    assert sent.operator == "jdoe"  # the requester's order
    stored = await rig.store.orders.get(intent.client_order_id)
    assert stored is not None
    assert stored.intent() == intent

    with pytest.raises(ActionRefused, match="already executed by sue"):
        await rig.desk.approvals.approve(request.approval_id, seen, BOB)
    assert rig.sim.order_posts == {intent.client_order_id: 1}

    trail = await actions(rig.store, call_id)
    assert trail[0] == "approval_requested"
    assert trail.count("approval_refused") == 4  # three before, one after
    assert trail.index("approval_approved") < trail.index("order_created")
    assert trail[-2:] == ["approval_executed", "approval_refused"]
    last = (await rig.store.history.audit_for(call_id))[-2]
    assert last.details["requested_by"] == "jdoe"
    assert last.details["approved_by"] == "sue"
    assert (await run_verify(rig.url)).ok


async def test_an_edit_voids_the_request_and_an_approval_with_the_old_hash_is_refused(
    rig: Rig,
) -> None:
    first = await requested(rig, sell(rig, "300"))
    edited_intent = sell(rig, "400")
    edited = await rig.desk.intents.submit_order(edited_intent, TRADER, replaces=first.approval_id)
    assert isinstance(edited, ApprovalRequest)
    assert edited.replaces == first.approval_id
    old = await rig.store.approvals.get_approval(first.approval_id)
    assert old is not None
    assert old.state is ApprovalState.VOIDED
    with pytest.raises(ActionRefused, match="already voided"):
        await rig.desk.approvals.approve(first.approval_id, first.details_hash, SUPERVISOR)
    with pytest.raises(ActionRefused, match="details shown are not those"):
        await rig.desk.approvals.approve(edited.approval_id, first.details_hash, SUPERVISOR)
    assert rig.sim.order_posts == {}
    done = await rig.desk.approvals.approve(edited.approval_id, edited.details_hash, SUPERVISOR)
    assert done.state is ApprovalState.EXECUTED
    assert rig.sim.order_posts == {edited_intent.client_order_id: 1}
    (sent,) = rig.sim.orders.values()
    assert sent.quantity == Decimal("400")


async def test_an_edit_below_the_threshold_voids_the_request_and_goes_now(rig: Rig) -> None:
    first = await requested(rig, sell(rig, "300"))
    smaller = sell(rig, "200")
    outcome = await rig.desk.intents.submit_order(smaller, TRADER, replaces=first.approval_id)
    assert isinstance(outcome, OrderOutcome)
    old = await rig.store.approvals.get_approval(first.approval_id)
    assert old is not None
    assert old.state is ApprovalState.VOIDED
    assert "needs no approval" in (old.note or "")
    assert rig.sim.order_posts == {smaller.client_order_id: 1}
    with pytest.raises(ActionRefused, match="is a liquidation on A1001, not a close"):
        await rig.desk.intents.close_call(
            seed_call_id(rig.desk),
            "x",
            TRADER,
            close_reason=CloseReason.WRITTEN_OFF,
            replaces=first.approval_id,
        )


async def test_a_refused_order_is_not_even_requested(rig: Rig) -> None:
    with pytest.raises(ActionRefused, match="more than the 1000 held"):
        await rig.desk.intents.submit_order(sell(rig, "5000"), TRADER)
    with pytest.raises(ActionRefused, match="may not place liquidation orders"):
        await rig.desk.intents.submit_order(sell(rig, "300"), OPERATOR)
    assert await rig.store.approvals.approvals_in(list(ApprovalState)) == []


async def test_an_approval_that_cannot_be_done_now_is_refused_and_the_request_waits(
    rig: Rig,
) -> None:
    request = await requested(rig, sell(rig, "300"))
    rig.monotonic.now += 31  # the feed goes stale
    with pytest.raises(ActionRefused, match="stale"):
        await rig.desk.approvals.approve(request.approval_id, request.details_hash, SUPERVISOR)
    stored = await rig.store.approvals.get_approval(request.approval_id)
    assert stored is not None
    assert stored.state is ApprovalState.PENDING
    await rig.desk.poller.poll()  # live again
    done = await rig.desk.approvals.approve(request.approval_id, request.details_hash, SUPERVISOR)
    assert done.state is ApprovalState.EXECUTED
    assert sum(rig.sim.order_posts.values()) == 1


async def test_a_rejected_request_is_never_executed(rig: Rig) -> None:
    request = await requested(rig, sell(rig, "300"))
    seen = request.details_hash
    with pytest.raises(ActionRefused, match="rejecting needs a reason"):
        await rig.desk.approvals.reject(request.approval_id, seen, " ", SUPERVISOR)
    with pytest.raises(ActionRefused, match="may not reject"):
        await rig.desk.approvals.reject(request.approval_id, seen, "no", VIEWER)
    rejected = await rig.desk.approvals.reject(request.approval_id, seen, "too big", SUPERVISOR)
    assert rejected.state is ApprovalState.REJECTED
    assert rejected.note == "too big"
    with pytest.raises(ActionRefused, match="already rejected by sue"):
        await rig.desk.approvals.approve(request.approval_id, seen, BOB)
    assert rig.sim.order_posts == {}


# --- deadline moves and closes ----------------------------------------------------------------


async def test_a_deadline_move_is_never_approved_by_its_requester(rig: Rig) -> None:
    call_id = seed_call_id(rig.desk)
    new = datetime(2026, 11, 27, 15, 0, tzinfo=SGT)
    request = await rig.desk.intents.move_deadline(call_id, new, "client in hospital", SUPERVISOR)
    with pytest.raises(ActionRefused, match="nobody approves their own"):
        await rig.desk.approvals.approve(request.approval_id, request.details_hash, SUPERVISOR)
    assert rig.desk.engine.open_calls["A1001"].deadline != new
    done = await rig.desk.approvals.approve(request.approval_id, request.details_hash, TRADER)
    assert done.state is ApprovalState.EXECUTED
    assert rig.desk.engine.open_calls["A1001"].deadline == new


async def test_requests_of_a_call_that_ended_are_voided(rig: Rig) -> None:
    call_id = seed_call_id(rig.desk)
    close = await rig.desk.intents.close_call(
        call_id, "client bankrupt", TRADER, close_reason=CloseReason.WRITTEN_OFF
    )
    order = await requested(rig, sell(rig, "300"))
    rig.sim.publish({"cash": [{"account_id": "A1001", "currency": "SGD", "balance": "-13000"}]})
    await rig.desk.poller.poll()  # the deposit meets the call
    assert "A1001" not in rig.desk.engine.open_calls
    for request in (close, order):
        stored = await rig.store.approvals.get_approval(request.approval_id)
        assert stored is not None
        assert stored.state is ApprovalState.VOIDED
        assert stored.note == "the call ended"
        with pytest.raises(ActionRefused, match="already voided"):
            await rig.desk.approvals.approve(request.approval_id, request.details_hash, SUPERVISOR)
    assert rig.sim.order_posts == {}
    assert (await actions(rig.store, call_id)).count("approval_voided") == 2


async def test_a_deadline_request_is_void_once_the_deadline_moved_otherwise(rig: Rig) -> None:
    call_id = seed_call_id(rig.desk)
    first = await rig.desk.intents.move_deadline(
        call_id, datetime(2026, 11, 27, 15, tzinfo=SGT), "one", TRADER
    )
    second = await rig.desk.intents.move_deadline(
        call_id, datetime(2026, 11, 30, 15, tzinfo=SGT), "two", BOB
    )
    await rig.desk.approvals.approve(first.approval_id, first.details_hash, SUPERVISOR)
    with pytest.raises(ActionRefused, match=r"deadline of call .* changed since the request"):
        await rig.desk.approvals.approve(second.approval_id, second.details_hash, SUPERVISOR)
    stored = await rig.store.approvals.get_approval(second.approval_id)
    assert stored is not None
    assert stored.state is ApprovalState.VOIDED


# --- a process stopping between approval and execution -----------------------------------------


class Crash(BaseException):
    """The process dies: nothing after this point runs."""


async def test_an_approved_order_left_unsent_by_a_crash_is_failed_not_sent_late(
    rig: Rig,
) -> None:
    request = await requested(rig, sell(rig, "300"))

    async def dies(*args: Any, **kwargs: Any) -> OrderOutcome:
        raise Crash

    rig.desk.trading.place_order = dies  # type: ignore[method-assign]  # the crash, this desk only
    with pytest.raises(Crash):
        await rig.desk.approvals.approve(request.approval_id, request.details_hash, SUPERVISOR)
    stored = await rig.store.approvals.get_approval(request.approval_id)
    assert stored is not None
    assert stored.state is ApprovalState.APPROVED
    restarted = await rig.new_desk()
    assert await restarted.approvals.recover() == []  # too recent: perhaps still running
    rig.clock.advance(minutes=6)
    (settled,) = await restarted.approvals.recover()
    assert settled.state is ApprovalState.FAILED
    assert "nothing was sent" in (settled.note or "")
    await restarted.recover()
    assert rig.sim.order_posts == {}


# --- the kill switch --------------------------------------------------------------------------


def plan_for(rig: Rig) -> AutoLiquidationPlan:
    return AutoLiquidationPlan(
        plan_id=new_plan_id(),
        call_id=seed_call_id(rig.desk),
        account_id="A1001",
        execute_at=(rig.clock() + timedelta(minutes=30)).astimezone(SGT),
        condition=AutoCondition.STILL_IN_CALL,
        lines=(PlanLine("A.SG", Side.SELL, Decimal("100")),),
        operator="jdoe",
    )


async def test_the_kill_switch_cancels_working_orders_and_blocks_new_ones(rig: Rig) -> None:
    desk = rig.desk
    working = [sell(rig, "200"), sell(rig, "100", symbol="A.SG")]
    for intent in working:
        await desk.intents.submit_order(intent, TRADER)
    plan = plan_for(rig)
    await desk.intents.schedule_plan(plan, TRADER)
    waiting = await requested(rig, sell(rig, "300"))

    with pytest.raises(ActionRefused, match="supervisors only"):
        await desk.kill_switch.engage("panic", TRADER)
    with pytest.raises(ActionRefused, match="needs a reason"):
        await desk.kill_switch.engage("  ", SUPERVISOR)
    engagement = await desk.kill_switch.engage("runaway orders", SUPERVISOR)
    assert engagement.switch.engaged
    assert engagement.failed == ()
    assert sorted(o.client_order_id for o in engagement.orders) == sorted(
        i.client_order_id for i in working
    )
    assert {o.status for o in rig.sim.orders.values()} == {"cancelled"}
    for intent in working:
        stored = await rig.store.orders.get(intent.client_order_id)
        assert stored is not None
        assert stored.status == "cancelled"
    assert "KILL SWITCH engaged by sue" in engagement.summary()

    # New liquidations are blocked everywhere: manual, requested, approved, scheduled.
    with pytest.raises(ActionRefused, match="KILL SWITCH engaged by sue"):
        await desk.intents.submit_order(sell(rig, "100"), TRADER)
    with pytest.raises(ActionRefused, match="KILL SWITCH"):
        await desk.intents.submit_order(
            sell(rig, "300"), TRADER
        )  # would need approval: not even that
    with pytest.raises(ActionRefused, match="KILL SWITCH"):
        await desk.approvals.approve(waiting.approval_id, waiting.details_hash, SUPERVISOR)
    with pytest.raises(ActionRefused, match="KILL SWITCH"):
        await desk.intents.schedule_plan(replace(plan, plan_id=new_plan_id()), TRADER)
    rig.clock.advance(minutes=31)
    assert await desk.plans.run_due() == []  # held, not lost
    held = await rig.store.plans.get_auto_liquidation(plan.plan_id)
    assert held is not None
    assert held.state is AutoLiquidationState.SCHEDULED
    # Read from the database, not remembered: another terminal is blocked too.
    other = await rig.new_desk()
    with pytest.raises(ActionRefused, match="KILL SWITCH"):
        await other.intents.submit_order(sell(rig, "100", operator="bob"), BOB)
    assert sum(rig.sim.order_posts.values()) == 2

    with pytest.raises(ActionRefused, match="supervisors only"):
        await desk.kill_switch.release("all clear", TRADER)
    released = await other.kill_switch.release("all clear", SUPERVISOR)
    assert not released.engaged
    assert released.released_by == "sue"

    # Released: the held plan runs (still due, call still open), new orders go again.
    (executed,) = await desk.plans.run_due()
    assert executed.state is AutoLiquidationState.EXECUTED
    assert rig.sim.order_posts[f"{plan.plan_id}-0"] == 1
    assert isinstance(await desk.intents.submit_order(sell(rig, "100"), TRADER), OrderOutcome)
    done = await desk.approvals.approve(waiting.approval_id, waiting.details_hash, SUPERVISOR)
    assert done.state is ApprovalState.EXECUTED, done.note

    trail = await actions(rig.store)
    assert trail.count("kill_switch_refused") == 3
    engaged_at = trail.index("kill_switch_engaged")
    assert trail[engaged_at + 1 : engaged_at + 7].count("order_cancel_requested") == 2
    assert "kill_switch_orders_stopped" in trail
    assert "kill_switch_released" in trail
    assert trail.count("order_refused") == 3  # two here (one would have been a request), one there
    assert (await run_verify(rig.url)).ok


async def test_a_kill_switch_that_cannot_be_read_blocks_every_liquidation(rig: Rig) -> None:
    """Issue 13 point 8: a switch whose state cannot be read must block orders (fail closed),
    each refusal audited, never pass as "not engaged"."""
    desk = rig.desk
    plan = plan_for(rig)
    await desk.intents.schedule_plan(plan, TRADER)
    waiting = await requested(rig, sell(rig, "300"))
    async with rig.store.engine.begin() as conn:  # the switch's row is gone
        await conn.execute(kill_switch.delete())

    state = await desk.kill_switch.state()
    assert state.engaged
    assert state.is_unreadable
    assert "kill switch row missing" in (state.reason or "")
    unreadable = "KILL SWITCH state cannot be read"
    with pytest.raises(ActionRefused, match=unreadable):
        await desk.intents.submit_order(sell(rig, "100"), TRADER)  # straight through
    with pytest.raises(ActionRefused, match=unreadable):
        await desk.intents.submit_order(sell(rig, "300"), TRADER)  # would need approval
    with pytest.raises(ActionRefused, match=unreadable):
        await desk.approvals.approve(waiting.approval_id, waiting.details_hash, SUPERVISOR)
    with pytest.raises(ActionRefused, match=unreadable):
        await desk.intents.schedule_plan(replace(plan, plan_id=new_plan_id()), TRADER)
    with pytest.raises(ActionRefused, match=unreadable):
        await desk.kill_switch.engage("engage it then", SUPERVISOR)
    rig.clock.advance(minutes=31)
    assert await desk.plans.run_due() == []  # held, not run
    held = await rig.store.plans.get_auto_liquidation(plan.plan_id)
    assert held is not None
    assert held.state is AutoLiquidationState.SCHEDULED
    assert rig.sim.order_posts == {}
    trail = await actions(rig.store)
    assert trail.count("order_refused") == 2
    assert "auto_liquidation_refused" in trail
    assert "kill_switch_refused" in trail


async def test_an_order_the_kill_switch_could_not_cancel_is_reported(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = sell(rig, "200"), sell(rig, "100", symbol="A.SG")
    for intent in (first, second):
        await rig.desk.intents.submit_order(intent, TRADER)
    real_cancel = rig.desk.trading.cancel_order

    async def broker_down_for_one(client_order_id: str, actor: Actor) -> StoredOrder:
        if client_order_id == second.client_order_id:
            raise GatewayUnavailable("cancel: no usable answer after 4 tries")
        return await real_cancel(client_order_id, actor)

    monkeypatch.setattr(rig.desk.trading, "cancel_order", broker_down_for_one)
    engagement = await rig.desk.kill_switch.engage("drill", SUPERVISOR)
    (failed,) = engagement.failed
    assert failed.client_order_id == second.client_order_id
    assert f"NOT STOPPED: {second.client_order_id}" in engagement.summary()
    (stopped,) = [d for a, d in await audit_trail(rig.store) if a == "kill_switch_orders_stopped"]
    assert stopped["failed"] == 1
    results = {o["client_order_id"]: o["result"] for o in stopped["orders"]}
    assert results == {first.client_order_id: "cancelled", second.client_order_id: "failed"}


async def test_an_order_recorded_before_the_switch_is_never_posted_after_it(rig: Rig) -> None:
    """A crash left an order recorded, unsent; the switch withdraws it, recovery sends nothing."""
    intent = sell(rig, "200")
    await rig.store.orders.record_intent(intent, {}, TRADER)  # recorded, never posted
    engagement = await rig.desk.kill_switch.engage("drill", SUPERVISOR)
    (outcome,) = engagement.orders
    assert outcome.result == "withdrawn"
    await rig.desk.recover()
    assert rig.sim.order_posts == {}
    stored = await rig.store.orders.get(intent.client_order_id)
    assert stored is not None
    assert stored.send_state is SendState.FAILED


# --- cancelling a plan ------------------------------------------------------------------------


async def scheduled_plan(rig: Rig, quantity: str) -> AutoLiquidationPlan:
    """A plan scheduled by jdoe: approved by sue first when it needs a second person."""
    plan = replace(plan_for(rig), lines=(PlanLine("B.SG", Side.SELL, Decimal(quantity)),))
    outcome = await rig.desk.intents.schedule_plan(plan, TRADER)
    if isinstance(outcome, ApprovalRequest):
        done = await rig.desk.approvals.approve(
            outcome.approval_id, outcome.details_hash, SUPERVISOR
        )
        assert done.state is ApprovalState.EXECUTED, done.note
    return plan


async def plan_state(rig: Rig, plan: AutoLiquidationPlan) -> AutoLiquidationState:
    stored = await rig.store.plans.get_auto_liquidation(plan.plan_id)
    assert stored is not None
    return stored.state


async def test_cancelling_a_plan_below_the_threshold_is_done_at_once(rig: Rig) -> None:
    plan = await scheduled_plan(rig, "200")  # 200 × 19.50 = SGD 3,900: no second person
    done = await rig.desk.intents.cancel_plan(plan.plan_id, "client sold elsewhere", TRADER)
    assert not isinstance(done, ApprovalRequest)
    assert done.state is AutoLiquidationState.CANCELLED
    assert await rig.store.approvals.approvals_in([ApprovalState.PENDING]) == []


async def test_cancelling_a_plan_that_needed_approval_needs_it_too(rig: Rig) -> None:
    plan = await scheduled_plan(rig, "300")  # SGD 5,850: above the threshold
    request = await rig.desk.intents.cancel_plan(plan.plan_id, "client wired the cash", TRADER)
    assert isinstance(request, ApprovalRequest)
    assert request.kind is ApprovalKind.PLAN_CANCEL
    assert request.details["reason"] == "client wired the cash"
    assert request.details["notional"]["amount"] == "5850.00"
    assert await plan_state(rig, plan) is AutoLiquidationState.SCHEDULED  # not yet
    again = await rig.desk.intents.cancel_plan(plan.plan_id, "client wired the cash", TRADER)
    assert again == request  # a double press: one request
    with pytest.raises(ActionRefused, match="nobody approves their own"):
        await rig.desk.approvals.approve(request.approval_id, request.details_hash, TRADER)
    done = await rig.desk.approvals.approve(request.approval_id, request.details_hash, SUPERVISOR)
    assert done.state is ApprovalState.EXECUTED, done.note
    assert done.note == f"plan {plan.plan_id} cancelled"
    stored = await rig.store.plans.get_auto_liquidation(plan.plan_id)
    assert stored is not None
    assert stored.state is AutoLiquidationState.CANCELLED
    trail = await audit_trail(rig.store)
    (cancelled,) = [details for action, details in trail if action.endswith("_cancelled")]
    assert cancelled["approved_by"] == "sue"
    assert "client wired the cash" in str(cancelled)
    assert cancelled["approval_id"] == request.approval_id
    rig.clock.advance(minutes=31)
    assert await rig.desk.plans.run_due() == []  # nothing sent
    assert rig.sim.order_posts == {}


async def test_a_cancel_request_for_a_plan_that_already_ran_is_void(rig: Rig) -> None:
    plan = await scheduled_plan(rig, "300")
    request = await rig.desk.intents.cancel_plan(plan.plan_id, "too late?", TRADER)
    assert isinstance(request, ApprovalRequest)
    rig.clock.advance(minutes=31)
    (ran,) = await rig.desk.plans.run_due()
    assert ran.state is AutoLiquidationState.EXECUTED
    with pytest.raises(ActionRefused, match=f"plan {plan.plan_id} is executed"):
        await rig.desk.approvals.approve(request.approval_id, request.details_hash, SUPERVISOR)
    voided = await rig.store.approvals.get_approval(request.approval_id)
    assert voided is not None
    assert voided.state is ApprovalState.VOIDED
