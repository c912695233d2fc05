"""Four-eyes decisions: a second person approves or rejects a stored request, and an
approved one is executed exactly as stored.

The rules (what needs a second person, the bound details, who may decide) are pure, in
`risk_tui.core.four_eyes`; requests are made by `desk.intents`.

A second person approves with the hash of the details they were shown; nobody approves
their own request, and only a role the table allows (`Intent.DECIDE`) may approve. The
action is checked again as it would be done now: if it could not be done, the approval
is refused (audited) and the request stays pending. Then it is executed exactly as
stored — the order, the plan, the deadline, the reason are read from the request's
document, never re-derived — in the requester's name (their decision), with the
approver's name beside it in the audit:

- a deadline move or a close is written in the approving transaction itself;
- an order or a plan: the request is approved (one transaction, so of two approvers
  one wins), then the order is sent through the outbox (its key is in the request, so
  it is one order however often this runs) or the plan stored (idempotent on its id),
  and the request moves to executed or failed, with what happened. A process that
  stops in between leaves it approved: `recover` settles it at the next start.

A rejection (a trader or supervisor, or the requester withdrawing) needs a reason.
Requests of a call that ends are voided (after a poll or a close here; and any another
process left are voided when the requests are next listed).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, NoReturn

from risk_tui.core.actions import ActionRefused, SendState, deadline_problems
from risk_tui.core.four_eyes import (
    KIND_WORDS,
    ApprovalKind,
    ApprovalRequest,
    ApprovalState,
    check_approval,
    check_rejection,
    close_category_of,
    close_reason_of,
    deadline_of,
    old_deadline_of,
    order_of,
    plan_of,
)
from risk_tui.core.lifecycle import LifecycleBatch, MarginCall
from risk_tui.core.records import AutoLiquidationState
from risk_tui.core.roles import Actor, Role
from risk_tui.desk.action_log import ActionLog
from risk_tui.desk.engine import Engine
from risk_tui.desk.kill_switch import KillSwitchService
from risk_tui.desk.plans import AutoLiquidations
from risk_tui.desk.trading import Trading
from risk_tui.feed.broker import GatewayError
from risk_tui.storage.errors import ApprovalConflict
from risk_tui.storage.store import Store

log = logging.getLogger(__name__)

# Voids a request whose call ended: the desk, not a person.
FOUR_EYES_ACTOR = Actor("engine:four-eyes", Role.TRADER)
# An approved order or plan not finished after this long was left by a process that
# stopped (a live one finishes within the outbox's retries): `recover` settles it.
UNFINISHED_AFTER = timedelta(minutes=5)


class Approvals:
    """Listing, deciding, executing and settling the desk's four-eyes requests."""

    def __init__(
        self,
        engine: Engine,
        store: Store,
        trading: Trading,
        plans: AutoLiquidations,
        kill_switch: KillSwitchService,
        actions: ActionLog,
    ) -> None:
        self._engine = engine
        self._store = store
        self._trading = trading
        self._plans = plans
        self._kill_switch = kill_switch
        self._actions = actions

    # --- listing, voiding, recovering ------------------------------------------------------

    async def open_requests(self) -> list[ApprovalRequest]:
        """Requests waiting for a decision (and approved ones being executed), oldest first.

        Requests whose call another process ended are voided first.
        """
        store = self._store
        ended = {
            r.call_id for r in await store.approvals.pending_requests_of_ended_calls() if r.call_id
        }
        if ended:
            await self.void_for_ended_calls(sorted(ended))
        return await store.approvals.approvals_in([ApprovalState.PENDING, ApprovalState.APPROVED])

    async def decided_requests(self, limit: int) -> list[ApprovalRequest]:
        """The `limit` requests decided last, the latest first."""
        return await self._store.approvals.decided_approvals(limit=limit)

    async def request(self, approval_id: str) -> ApprovalRequest | None:
        """The request as stored now (a decision reads it afresh before it is shown)."""
        return await self._store.approvals.get_approval(approval_id)

    async def pending_count(self) -> int:
        """How many requests wait for a second person now."""
        return await self._store.approvals.count_pending_approvals()

    async def void_for_ended_calls(self, call_ids: Sequence[str]) -> list[ApprovalRequest]:
        """Void the pending requests of calls that ended (never fails the caller's poll)."""
        if not call_ids:
            return []
        try:
            return await self._store.approvals.void_requests(
                call_ids=call_ids,
                reason="the call ended",
                operator=FOUR_EYES_ACTOR.name,
                at=self._engine.clock(),
            )
        except Exception:  # the next listing voids them instead
            log.exception("voiding the requests of ended calls failed")
            return []

    async def recover(self) -> list[ApprovalRequest]:
        """Settle approved orders and plans a stopped process left unfinished; those settled.

        Executed when what they name was recorded (the outbox's own recovery settles the
        order; the runner, the plan), failed when nothing was: never sent late, on figures
        from before the stop.
        """
        store = self._store
        settled: list[ApprovalRequest] = []
        cutoff = self._engine.clock() - UNFINISHED_AFTER
        for request in await store.approvals.approvals_in([ApprovalState.APPROVED]):
            if request.decided_at is None or request.decided_at > cutoff:
                continue  # perhaps being executed by another terminal right now
            if request.kind is ApprovalKind.LIQUIDATION:
                key = order_of(request)[0].client_order_id
                found = await store.orders.get(key) is not None
                what = f"order {key}"
            elif request.kind is ApprovalKind.PLAN_CANCEL:
                plan_id = plan_of(request).plan_id
                plan = await store.plans.get_auto_liquidation(plan_id)
                found = plan is not None and plan.state is AutoLiquidationState.CANCELLED
                what = f"the cancel of plan {plan_id}"
            else:
                plan_id = plan_of(request).plan_id
                found = await store.plans.get_auto_liquidation(plan_id) is not None
                what = f"plan {plan_id}"
            note = (
                f"{what} was recorded before the desk stopped; settled on restart"
                if found
                else f"the desk stopped before {what} was recorded: nothing was sent; ask again"
            )
            settled.append(
                await store.approvals.finish_request(
                    request.approval_id,
                    ApprovalState.EXECUTED if found else ApprovalState.FAILED,
                    operator=FOUR_EYES_ACTOR.name,
                    note=note,
                    at=self._engine.clock(),
                )
            )
        return settled

    # --- decisions -----------------------------------------------------------------------

    async def reject(
        self, approval_id: str, seen_hash: str, note: str, actor: Actor
    ) -> ApprovalRequest:
        """Reject a pending request (or withdraw one's own), with a reason, audited."""
        store = self._store
        request = await store.approvals.get_approval(approval_id)
        if request is None:
            await self._refuse(actor, approval_id, None, [f"no request {approval_id}"], "rejection")
        problems = check_rejection(request, actor, seen_hash, note)
        if problems:
            await self._refuse(actor, approval_id, request, problems, "rejection")
        try:
            return await store.approvals.reject_request(
                approval_id, seen_hash, actor, note.strip(), at=self._engine.clock()
            )
        except ApprovalConflict as conflict:
            raise ActionRefused("rejection", [str(conflict)]) from None

    async def approve(self, approval_id: str, seen_hash: str, actor: Actor) -> ApprovalRequest:
        """Approve a pending request whose details hash is `seen_hash`, and execute it.

        Returns the request as it ends: executed, or failed with the reason in its note.
        Raises `ActionRefused` (audited) when it may not be approved, or not now.
        """
        store = self._store
        request = await store.approvals.get_approval(approval_id)
        if request is None:
            await self._refuse(actor, approval_id, None, [f"no request {approval_id}"])
        problems = check_approval(request, actor, seen_hash)
        if problems:
            await self._refuse(actor, approval_id, request, problems)
        gone = await self._call_gone(request)
        if gone is not None:
            await store.approvals.void_requests(
                approval_ids=[approval_id],
                reason=gone,
                operator=actor.name,
                at=self._engine.clock(),
            )
            raise ActionRefused("approval", [f"{gone}: request {approval_id} is void"])
        problems = await self._action_problems(request)
        if problems:
            await self._refuse(actor, approval_id, request, problems)
        try:
            if request.kind is ApprovalKind.DEADLINE_MOVE:
                return await self._execute_deadline_move(request, actor)
            if request.kind is ApprovalKind.CALL_CLOSE:
                return await self._execute_close(request, actor)
            decided = await store.approvals.approve_request(
                approval_id, seen_hash, actor, at=self._engine.clock()
            )
        except ApprovalConflict as conflict:
            raise ActionRefused("approval", [str(conflict)]) from None
        if decided.kind is ApprovalKind.LIQUIDATION:
            return await self._execute_order(decided, actor)
        if decided.kind is ApprovalKind.PLAN_CANCEL:
            return await self._execute_plan_cancel(decided, actor)
        return await self._execute_plan(decided, actor)

    async def _refuse(
        self,
        actor: Actor,
        approval_id: str,
        request: ApprovalRequest | None,
        problems: list[str],
        what: str = "approval",
    ) -> NoReturn:
        await self._actions.refuse(
            f"{what}_refused",
            what,
            actor,
            request.call_id if request else None,
            problems,
            {
                "approval_id": approval_id,
                "kind": None if request is None else request.kind.value,
                "requested_by": None if request is None else request.requested_by,
            },
        )

    async def _call_gone(self, request: ApprovalRequest) -> str | None:
        """Why the request can never be approved now its call (or, for a cancel, its plan)
        changed; None if it still can."""
        if request.kind is ApprovalKind.PLAN_CANCEL:
            plan_id = plan_of(request).plan_id
            plan = await self._store.plans.get_auto_liquidation(plan_id)
            if plan is None or plan.state is not AutoLiquidationState.SCHEDULED:
                return f"plan {plan_id} is {'gone' if plan is None else plan.state}"
        if request.call_id is None:
            return None
        stored = await self._store.calls.get_call(request.call_id)
        if stored is None or not stored.is_open:
            return f"call {request.call_id} has ended"
        if request.kind in (ApprovalKind.DEADLINE_MOVE, ApprovalKind.AUTO_LIQUIDATION):
            moves = request.kind is ApprovalKind.DEADLINE_MOVE or (
                plan_of(request).moved_deadline is not None
            )
            old = old_deadline_of(request)
            if moves and stored.deadline != old:
                now = "none" if stored.deadline is None else stored.deadline.isoformat()
                return (
                    f"the deadline of call {request.call_id} changed since the request (now {now})"
                )
        return None

    async def _action_problems(self, request: ApprovalRequest) -> list[str]:
        """Every reason the request's action could not be done now, as its requester."""
        requester = request.requester
        problems: list[str] = []
        if request.kind in (ApprovalKind.DEADLINE_MOVE, ApprovalKind.CALL_CLOSE):
            call = None if request.call_id is None else self._engine.open_call(request.call_id)
            if call is None:
                problems.append(f"call {request.call_id} is not open on this desk yet: try again")
            if request.kind is ApprovalKind.DEADLINE_MOVE:
                new_deadline, reason = deadline_of(request)
                rule = self._engine.deadline_rule(call)
                problems.extend(
                    deadline_problems(new_deadline, reason, self._engine.clock(), rule=rule)
                )
            return problems
        if request.kind is ApprovalKind.PLAN_CANCEL:  # stopping a liquidation: no kill switch
            plan_id = plan_of(request).plan_id
            plan = await self._plans.get(plan_id)
            return self._plans.cancel_problems(plan_id, plan, close_reason_of(request), requester)
        switch = await self._kill_switch.state()
        if switch.engaged:
            problems.append(switch.refusal())
        if request.kind is ApprovalKind.LIQUIDATION:
            intent, override = order_of(request)
            problems.extend(self._trading.order_problems(intent, requester, override))
        else:
            problems.extend(self._plans.problems(plan_of(request), requester))
        return list(dict.fromkeys(problems))

    @staticmethod
    def _approval_details(request: ApprovalRequest, approver: Actor) -> dict[str, Any]:
        return {
            "approval_id": request.approval_id,
            "approved_by": approver.name,
            "approver_role": approver.role.value,
        }

    def _executed_details(self, request: ApprovalRequest, approver: Actor) -> dict[str, Any]:
        """What an approved change records: the requester's action, the approver beside."""
        return {
            **self._actions.details(request.requester, request.account_id),
            **self._approval_details(request, approver),
        }

    async def _execute_deadline_move(
        self, request: ApprovalRequest, approver: Actor
    ) -> ApprovalRequest:
        engine = self._engine
        new_deadline, reason = deadline_of(request)
        requester = request.requester

        def build() -> tuple[MarginCall, LifecycleBatch]:
            moved, entry = engine.deadline_move(
                request.call_id or "",
                new_deadline,
                reason,
                operator=requester.name,
                details=self._executed_details(request, approver),
            )
            return moved, LifecycleBatch(calls=[moved], audit=[entry])

        async def write(batch: LifecycleBatch) -> ApprovalRequest:
            return await self._store.approvals.approve_request(
                request.approval_id,
                request.details_hash,
                approver,
                at=engine.clock(),
                execute=batch,
                outcome={"new_deadline": new_deadline.isoformat()},
                note=f"deadline of call {request.call_id} moved to {new_deadline.isoformat()}",
            )

        return await self._actions.change_call("approval", build, write)

    async def _execute_close(self, request: ApprovalRequest, approver: Actor) -> ApprovalRequest:
        engine = self._engine
        call_id = request.call_id or ""
        requester = request.requester

        def build() -> tuple[MarginCall, LifecycleBatch]:
            return engine.closing(
                call_id,
                close_reason_of(request),
                close_reason=close_category_of(request),
                operator=requester.name,
                details=self._executed_details(request, approver),
            )

        async def write(batch: LifecycleBatch) -> ApprovalRequest:
            ended_at = batch.calls[0].ended_at
            return await self._store.approvals.approve_request(
                request.approval_id,
                request.details_hash,
                approver,
                at=engine.clock(),
                execute=batch,
                outcome={"ended_at": None if ended_at is None else ended_at.isoformat()},
                note=f"call {call_id} closed",
            )

        executed = await self._actions.change_call("approval", build, write)
        await self._plans.settle_for_ended_calls([call_id])
        await self.void_for_ended_calls([call_id])
        return executed

    async def _execute_order(self, request: ApprovalRequest, approver: Actor) -> ApprovalRequest:
        """Send the approved order exactly as stored, in the requester's name."""
        intent, override = order_of(request)
        key = intent.client_order_id
        outcome: dict[str, Any] = {"client_order_id": key}
        try:
            sent = await self._trading.place_order(
                intent, request.requester, override_reason=override
            )
        except ActionRefused as refused:  # refused at the last moment (a race): nothing sent
            return await self._finish(
                request, ApprovalState.FAILED, "; ".join(refused.problems), approver, outcome
            )
        except GatewayError as problem:
            order = await self._store.orders.get(key)
            unsent = order is None or order.send_state is SendState.FAILED
            state = ApprovalState.FAILED if unsent else ApprovalState.EXECUTED
            return await self._finish(request, state, f"order {key}: {problem}", approver, outcome)
        order = sent.order
        outcome.update({"send_state": order.send_state.value, "status": order.status})
        if order.send_state is SendState.FAILED:
            note = f"order {key} refused by the broker: {order.reject_reason or 'no reason given'}"
            return await self._finish(request, ApprovalState.FAILED, note, approver, outcome)
        note = f"order {key} sent: {order.status or order.send_state.value}"
        if sent.error is not None:
            note += f" (in doubt: {sent.error}; re-sent with the same key)"
        return await self._finish(request, ApprovalState.EXECUTED, note, approver, outcome)

    async def _execute_plan(self, request: ApprovalRequest, approver: Actor) -> ApprovalRequest:
        """Store the approved plan exactly as requested (and move the deadline it names)."""
        plan = plan_of(request)
        outcome = {"plan_id": plan.plan_id}
        try:
            stored = await self._plans.store(
                plan, request.requester, self._approval_details(request, approver)
            )
        except ActionRefused as refused:
            return await self._finish(
                request, ApprovalState.FAILED, "; ".join(refused.problems), approver, outcome
            )
        note = f"plan {plan.plan_id} scheduled for {stored.execute_at.isoformat()}"
        return await self._finish(request, ApprovalState.EXECUTED, note, approver, outcome)

    async def _execute_plan_cancel(
        self, request: ApprovalRequest, approver: Actor
    ) -> ApprovalRequest:
        """Cancel the approved plan, in the requester's name, with their reason."""
        plan_id = plan_of(request).plan_id
        outcome = {"plan_id": plan_id}
        try:
            await self._plans.cancel(
                plan_id,
                close_reason_of(request),
                request.requester,
                self._approval_details(request, approver),
            )
        except ActionRefused as refused:  # the runner got there first: nothing cancelled
            return await self._finish(
                request, ApprovalState.FAILED, "; ".join(refused.problems), approver, outcome
            )
        note = f"plan {plan_id} cancelled"
        return await self._finish(request, ApprovalState.EXECUTED, note, approver, outcome)

    async def _finish(
        self,
        request: ApprovalRequest,
        state: ApprovalState,
        note: str,
        approver: Actor,
        outcome: Mapping[str, Any],
    ) -> ApprovalRequest:
        if state is ApprovalState.FAILED:
            log.error(
                "approved %s %s failed: %s", KIND_WORDS[request.kind], request.approval_id, note
            )
        return await self._store.approvals.finish_request(
            request.approval_id,
            state,
            operator=approver.name,
            note=note,
            at=self._engine.clock(),
            details=outcome,
        )
