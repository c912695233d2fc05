"""Four-eyes approval and the kill switch on the running desk: requests, decisions, execution.

The rules (what needs a second person, the bound details, who may decide) are pure, in
`risk_tui.core.four_eyes`; this is the `Desk`'s side of them, one `Approvals` per desk.

Requests. A trader's action that needs approval is checked exactly as if it were to be
done now (the same checks, every problem at once, the refusal audited), then stored as
a pending request, audited, instead of done; the caller gets the request back. A double
press (the same details, still pending) returns the same request. An edit names the
request it `replaces`: that one is voided in the same transaction as the new one is
stored. Requests of a call that ends are voided (after a poll or a close here; and any
another process left are voided when the requests are next listed).

Decisions. A second person approves with the hash of the details they were shown;
nobody approves their own request, and only a trader or supervisor may approve. The
action is checked again as it would be done now: if it could not be done, the approval
is refused (audited) and the request stays pending. Then it is executed exactly as
stored — the order, the plan, the deadline, the reason are read from the request's
document, never re-derived — in the requester's name (their decision), with the
approver's name beside it in the audit:

- a deadline move or a close is written in the approving transaction itself;
- an order or a plan: the request is approved (one transaction, so of two approvers
  one wins), then the order is sent through the gateway (its key is in the request, so
  it is one order however often this runs) or the plan stored (idempotent on its id),
  and the request moves to executed or failed, with what happened. A process that
  stops in between leaves it approved: `recover` settles it at the next start.

A rejection (a trader or supervisor, or the requester withdrawing) needs a reason.

The kill switch (supervisors only). Engaging it is one audited step that blocks every
new liquidation on the desk: the store refuses to record a new order while it is
engaged (read in the same transaction, for every order, from the database every
terminal shares), the gateway posts no order recorded before it, new plans and
liquidation requests are refused, approvals of them wait. Then every working or
unsettled desk order is cancelled through the gateway, each cancel audited like an
operator's, and the outcome of each (failures too) is reported and audited. Scheduled
auto-liquidations are held, not lost: the runner sends nothing while it is engaged, and
after the release a held plan runs if its call is still open and its condition still
holds on live data — the same judgement as any plan at its time. Releasing it
(supervisors, with a reason) is audited too.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, runtime_checkable

from risk_tui.core.actions import (
    Actor,
    AutoLiquidationPlan,
    OrderIntent,
    Role,
    SendState,
    override_used,
)
from risk_tui.core.four_eyes import (
    KIND_WORDS,
    ApprovalKind,
    ApprovalRequest,
    ApprovalState,
    KillSwitch,
    check_approval,
    check_kill_switch,
    check_rejection,
    close_reason_of,
    close_request,
    deadline_of,
    deadline_request,
    liquidation_request,
    old_deadline_of,
    order_notional,
    order_of,
    plan_needs_approval,
    plan_notional,
    plan_of,
    plan_request,
)
from risk_tui.core.lifecycle import AuditEntry, LifecycleBatch
from risk_tui.core.records import StoredOrder
from risk_tui.feed.gateway import ActionRefused, GatewayError, OrderNotFound
from risk_tui.storage.approvals import ApprovalRequests
from risk_tui.storage.audit import AuditTrail
from risk_tui.storage.errors import (
    ApprovalConflict,
    KeyConflict,
    KillSwitchConflict,
    UnknownApproval,
    UnknownCall,
)
from risk_tui.storage.kill_switch import KillSwitchControl
from risk_tui.storage.orders import Orders
from risk_tui.storage.plans import Plans

if TYPE_CHECKING:
    from risk_tui.engine import Desk

log = logging.getLogger(__name__)

# Voids a request whose call ended: the desk, not a person.
FOUR_EYES_ACTOR = Actor("engine:four-eyes", Role.TRADER)
# An approved order or plan not finished after this long was left by a process that
# stopped (a live one finishes within the gateway's retries): `recover` settles it.
UNFINISHED_AFTER = timedelta(minutes=5)


@runtime_checkable
class ApprovalStore(Protocol):
    """What four-eyes and the kill switch need of the store (`storage.store.Store`)."""

    approvals: ApprovalRequests  # every four-eyes read and write
    kill_switch: KillSwitchControl  # get, engage, release
    audit: AuditTrail  # append_audit
    orders: Orders  # get, working_orders, needing_send
    plans: Plans  # get_auto_liquidation


@dataclass(frozen=True, slots=True)
class CancelOutcome:
    """What engaging the kill switch did to one desk order."""

    client_order_id: str
    # "cancelled"; "withdrawn" (never reached the broker); "finished" (filled or rejected
    # before the cancel); "failed" (still working, or the broker could not be asked)
    result: str
    detail: str

    def wire(self) -> dict[str, str]:
        return {
            "client_order_id": self.client_order_id,
            "result": self.result,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class Engagement:
    """The kill switch as engaged, and the fate of every order it tried to stop."""

    switch: KillSwitch
    orders: tuple[CancelOutcome, ...]

    @property
    def failed(self) -> tuple[CancelOutcome, ...]:
        return tuple(o for o in self.orders if o.result == "failed")

    def summary(self) -> str:
        """One line for the operator: what was stopped and what was not."""
        stopped = len(self.orders) - len(self.failed)
        text = f"{self.switch.describe()}; {stopped} of {len(self.orders)} working orders stopped"
        if self.failed:
            text += "; NOT STOPPED: " + "; ".join(
                f"{o.client_order_id}: {o.detail}" for o in self.failed
            )
        return text


class Approvals:
    """Four-eyes requests and decisions, and the kill switch, for one `Desk`."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self._held_said = False  # the runner said once that the kill switch holds its plans

    # --- the store and the settings ------------------------------------------------------

    def _store(self) -> ApprovalStore:
        store = self.desk.store
        if not isinstance(store, ApprovalStore):
            raise ActionRefused("four-eyes", ["this desk's store cannot record approvals"])
        return store

    def _now(self) -> datetime:
        return self.desk.engine.clock()

    @property
    def _currency(self) -> str:
        return self.desk.engine.settings.desk.reporting_currency

    @property
    def threshold(self) -> Decimal:
        """The four-eyes notional (`four_eyes.liquidation_notional`), reporting currency."""
        return self.desk.engine.settings.four_eyes.liquidation_notional

    # --- the kill switch -----------------------------------------------------------------

    async def kill_switch(self) -> KillSwitch:
        """As stored now: read every time, because every terminal of the desk shares it."""
        store = self.desk.store
        if not isinstance(store, ApprovalStore):
            return KillSwitch(engaged=False)  # a read-only desk (`report`) sends nothing
        return await store.kill_switch.get()

    async def liquidations_held(self) -> bool:
        """Whether the kill switch holds the auto-liquidation runner now (said once)."""
        switch = await self.kill_switch()
        if switch.engaged and not self._held_said:
            log.warning("auto-liquidation held: %s", switch.describe())
        elif not switch.engaged and self._held_said:
            log.warning("kill switch released: held auto-liquidations run if still valid")
        self._held_said = switch.engaged
        return switch.engaged

    async def _check_kill_switch(self, actor: Actor, reason: str, *, engage: bool) -> None:
        """Refuse (audited) a kill-switch move this actor may not make now."""
        current = await self._store().kill_switch.get()
        problems = check_kill_switch(actor, current, engage=engage, reason=reason)
        if problems:
            await self.desk._refuse(
                "kill_switch_refused",
                "kill switch",
                actor,
                None,
                problems,
                {"engage": engage, "reason": reason},
            )

    async def engage_kill_switch(self, reason: str, actor: Actor) -> Engagement:
        """Engage the kill switch (supervisors, with a reason), then stop every desk order."""
        store = self._store()
        await self._check_kill_switch(actor, reason, engage=True)
        try:
            switch = await store.kill_switch.engage(actor, reason.strip(), at=self._now())
        except KillSwitchConflict as conflict:
            raise ActionRefused("kill switch", [str(conflict)]) from None
        log.warning("%s (reason: %s)", switch.describe(), switch.reason)
        stopped = tuple([await self._stop(order, actor) for order in await self.live_orders()])
        engagement = Engagement(switch, stopped)
        await store.audit.append_audit(
            [
                AuditEntry(
                    at=self._now(),
                    operator=actor.name,
                    action="kill_switch_orders_stopped",
                    details={
                        "role": actor.role.value,
                        "orders": [outcome.wire() for outcome in stopped],
                        "failed": len(engagement.failed),
                    },
                )
            ]
        )
        return engagement

    async def release_kill_switch(self, reason: str, actor: Actor) -> KillSwitch:
        """Release the kill switch (supervisors, with a reason), audited."""
        store = self._store()
        await self._check_kill_switch(actor, reason, engage=False)
        try:
            released = await store.kill_switch.release(actor, reason.strip(), at=self._now())
        except KillSwitchConflict as conflict:
            raise ActionRefused("kill switch", [str(conflict)]) from None
        log.warning("kill switch released by %s (reason: %s)", actor.name, reason)
        return released

    async def live_orders(self) -> list[StoredOrder]:
        """Orders still worked at the broker, then those not settled (pending, in doubt)."""
        store = self._store()
        orders = {o.client_order_id: o for o in await store.orders.working_orders()}
        for order in await store.orders.needing_send():
            orders.setdefault(order.client_order_id, order)
        return list(orders.values())

    async def _stop(self, order: StoredOrder, actor: Actor) -> CancelOutcome:
        key = order.client_order_id
        try:
            cancelled = await self.desk.cancel_order(key, actor)
        except OrderNotFound as missing:
            current = await self._store().orders.get(key)
            if current is not None and current.send_state is SendState.FAILED:
                return CancelOutcome(key, "withdrawn", str(missing))
            return CancelOutcome(key, "failed", str(missing))
        except GatewayError as problem:  # ActionRefused included: no gateway, say
            return CancelOutcome(key, "failed", str(problem))
        if cancelled.status == "cancelled":
            return CancelOutcome(key, "cancelled", f"{cancelled.filled_quantity} had filled")
        if cancelled.status in ("working", "partially_filled"):
            return CancelOutcome(
                key, "failed", f"cancel sent, but the broker still works it ({cancelled.status})"
            )
        # Filled or rejected before the cancel arrived: nothing of it is working any more.
        return CancelOutcome(key, "finished", f"already {cancelled.status} at the broker")

    # --- requests ------------------------------------------------------------------------

    async def hold_order(
        self,
        intent: OrderIntent,
        actor: Actor,
        override_reason: str | None,
        replaces: str | None,
    ) -> ApprovalRequest | None:
        """The pending request a liquidation order becomes; None when it goes now."""
        desk = self.desk
        notional = order_notional(intent, desk.engine.book, self._currency)
        if not notional.exceeds(self.threshold):
            if replaces is not None:  # edited below the threshold: it goes without one
                await self._void_edited(
                    replaces,
                    ApprovalKind.LIQUIDATION,
                    intent.account_id,
                    actor,
                    f"order {intent.client_order_id}",
                )
            return None
        problems = desk.order_problems(intent, actor, override_reason)
        switch = await self.kill_switch()
        if switch.engaged:
            problems.append(switch.refusal())
        if problems:
            await desk._refuse(
                "order_refused",
                "order",
                actor,
                intent.reference,
                problems,
                {"order": intent.wire()},
            )
        call_open = intent.account_id in desk.engine.open_calls
        override = override_reason if override_used(call_open, override_reason) else None
        request = liquidation_request(
            intent, override, notional, actor, self._now(), replaces=replaces
        )
        return await self._record(request, actor, "order")

    async def hold_plan(
        self, plan: AutoLiquidationPlan, actor: Actor, replaces: str | None
    ) -> ApprovalRequest | None:
        """The pending request a checked plan becomes; None when it is stored now."""
        notional = plan_notional(plan, self.desk.engine.book, self._currency)
        if not plan_needs_approval(plan, notional, self.threshold):
            if replaces is not None:
                await self._void_edited(
                    replaces,
                    ApprovalKind.AUTO_LIQUIDATION,
                    plan.account_id,
                    actor,
                    f"plan {plan.plan_id}",
                )
            return None
        call = self.desk.engine.open_call(plan.call_id)
        request = plan_request(
            plan,
            notional,
            actor,
            self._now(),
            old_deadline=call.deadline if call else None,
            replaces=replaces,
        )
        return await self._record(request, actor, "auto-liquidation")

    async def request_deadline_move(
        self,
        call_id: str,
        new_deadline: datetime,
        reason: str,
        actor: Actor,
        *,
        replaces: str | None,
    ) -> ApprovalRequest:
        call = self.desk.engine.open_call(call_id)
        if call is None:
            raise ActionRefused("deadline move", [f"no open margin call {call_id}"])
        request = deadline_request(
            call, new_deadline, reason, actor, self._now(), replaces=replaces
        )
        return await self._record(request, actor, "deadline move")

    async def request_close(
        self, call_id: str, reason: str, actor: Actor, *, replaces: str | None
    ) -> ApprovalRequest:
        call = self.desk.engine.open_call(call_id)
        if call is None:
            raise ActionRefused("close", [f"no open margin call {call_id}"])
        request = close_request(call, reason, actor, self._now(), replaces=replaces)
        return await self._record(request, actor, "close")

    async def _record(self, request: ApprovalRequest, actor: Actor, what: str) -> ApprovalRequest:
        store = self._store()
        if request.replaces is None:
            for same in await store.approvals.pending_with_hash(request.details_hash):
                return same  # a double press: the request already waiting
        else:
            await self._check_edit(request.replaces, request.kind, request.account_id)
        details = self.desk._action_details(actor, request.account_id)
        try:
            stored = await store.approvals.request_approval(request, details=details)
        except (KeyConflict, UnknownCall, UnknownApproval, ApprovalConflict) as problem:
            raise ActionRefused(what, [str(problem)]) from None
        log.info(
            "%s %s by %s awaits approval (%s)",
            KIND_WORDS[request.kind],
            request.approval_id,
            actor.name,
            request.call_id or request.account_id,
        )
        return stored

    async def _check_edit(self, approval_id: str, kind: ApprovalKind, account_id: str) -> None:
        """An edit replaces a pending request of the same kind on the same account."""
        old = await self._store().approvals.get_approval(approval_id)
        if old is None:
            raise ActionRefused("edit", [f"no request {approval_id}"])
        if old.kind is not kind or old.account_id != account_id:
            raise ActionRefused(
                "edit",
                [
                    f"request {approval_id} is a {KIND_WORDS[old.kind]} on {old.account_id}, "
                    f"not a {KIND_WORDS[kind]} on {account_id}"
                ],
            )

    async def _void_edited(
        self, approval_id: str, kind: ApprovalKind, account_id: str, actor: Actor, instead: str
    ) -> None:
        await self._check_edit(approval_id, kind, account_id)
        store = self._store()
        voided = await store.approvals.void_requests(
            approval_ids=[approval_id],
            reason=f"edited: replaced by {instead}, which needs no approval",
            operator=actor.name,
            at=self._now(),
        )
        if not voided:
            request = await store.approvals.get_approval(approval_id)
            state = "unknown" if request is None else request.state.value
            raise ActionRefused(
                "edit", [f"request {approval_id} is {state}: only a pending request can be edited"]
            )

    # --- listing, voiding, recovering ------------------------------------------------------

    async def open_requests(self) -> list[ApprovalRequest]:
        """Requests waiting for a decision (and approved ones being executed), oldest first.

        Requests whose call another process ended are voided first.
        """
        store = self._store()
        ended = {
            r.call_id for r in await store.approvals.pending_requests_of_ended_calls() if r.call_id
        }
        if ended:
            await self.void_for_ended_calls(sorted(ended))
        return await store.approvals.approvals_in([ApprovalState.PENDING, ApprovalState.APPROVED])

    async def request(self, approval_id: str) -> ApprovalRequest | None:
        """The request as stored now (a decision reads it afresh before it is shown)."""
        return await self._store().approvals.get_approval(approval_id)

    async def pending_count(self) -> int:
        """How many requests wait for a second person now."""
        return await self._store().approvals.count_pending_approvals()

    async def void_for_ended_calls(self, call_ids: Sequence[str]) -> list[ApprovalRequest]:
        """Void the pending requests of calls that ended (never fails the caller's poll)."""
        store = self.desk.store
        if not isinstance(store, ApprovalStore) or not call_ids:
            return []
        try:
            return await store.approvals.void_requests(
                call_ids=call_ids,
                reason="the call ended",
                operator=FOUR_EYES_ACTOR.name,
                at=self._now(),
            )
        except Exception:  # the next listing voids them instead
            log.exception("voiding the requests of ended calls failed")
            return []

    async def recover(self) -> list[ApprovalRequest]:
        """Settle approved orders and plans a stopped process left unfinished; those settled.

        Executed when what they name was recorded (the gateway's own recovery settles the
        order; the runner, the plan), failed when nothing was: never sent late, on figures
        from before the stop.
        """
        store = self.desk.store
        if not isinstance(store, ApprovalStore):
            return []
        settled: list[ApprovalRequest] = []
        cutoff = self._now() - UNFINISHED_AFTER
        for request in await store.approvals.approvals_in([ApprovalState.APPROVED]):
            if request.decided_at is None or request.decided_at > cutoff:
                continue  # perhaps being executed by another terminal right now
            if request.kind is ApprovalKind.LIQUIDATION:
                key = order_of(request)[0].client_order_id
                found = await store.orders.get(key) is not None
                what = f"order {key}"
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
                    at=self._now(),
                )
            )
        return settled

    # --- decisions -----------------------------------------------------------------------

    async def reject(
        self, approval_id: str, seen_hash: str, note: str, actor: Actor
    ) -> ApprovalRequest:
        """Reject a pending request (or withdraw one's own), with a reason, audited."""
        store = self._store()
        request = await store.approvals.get_approval(approval_id)
        if request is None:
            await self._refuse_decision(
                actor, approval_id, None, [f"no request {approval_id}"], "rejection"
            )
        problems = check_rejection(request, actor, seen_hash, note)
        if problems:
            await self._refuse_decision(actor, approval_id, request, problems, "rejection")
        try:
            return await store.approvals.reject_request(
                approval_id, seen_hash, actor, note.strip(), at=self._now()
            )
        except ApprovalConflict as conflict:
            raise ActionRefused("rejection", [str(conflict)]) from None

    async def approve(self, approval_id: str, seen_hash: str, actor: Actor) -> ApprovalRequest:
        """Approve a pending request whose details hash is `seen_hash`, and execute it.

        Returns the request as it ends: executed, or failed with the reason in its note.
        Raises `ActionRefused` (audited) when it may not be approved, or not now.
        """
        store = self._store()
        request = await store.approvals.get_approval(approval_id)
        if request is None:
            await self._refuse_decision(actor, approval_id, None, [f"no request {approval_id}"])
        problems = check_approval(request, actor, seen_hash)
        if problems:
            await self._refuse_decision(actor, approval_id, request, problems)
        gone = await self._call_gone(request)
        if gone is not None:
            await store.approvals.void_requests(
                approval_ids=[approval_id], reason=gone, operator=actor.name, at=self._now()
            )
            raise ActionRefused("approval", [f"{gone}: request {approval_id} is void"])
        problems = await self._action_problems(request)
        if problems:
            await self._refuse_decision(actor, approval_id, request, problems)
        try:
            if request.kind is ApprovalKind.DEADLINE_MOVE:
                return await self._execute_deadline_move(request, actor)
            if request.kind is ApprovalKind.CALL_CLOSE:
                return await self._execute_close(request, actor)
            decided = await store.approvals.approve_request(
                approval_id, seen_hash, actor, at=self._now()
            )
        except ApprovalConflict as conflict:
            raise ActionRefused("approval", [str(conflict)]) from None
        if decided.kind is ApprovalKind.LIQUIDATION:
            return await self._execute_order(decided, actor)
        return await self._execute_plan(decided, actor)

    async def _refuse_decision(
        self,
        actor: Actor,
        approval_id: str,
        request: ApprovalRequest | None,
        problems: list[str],
        what: str = "approval",
    ) -> NoReturn:
        await self.desk._refuse(
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
        """Why the request can never be approved now its call changed; None if it still can."""
        if request.call_id is None:
            return None
        stored = await self.desk._action_store().calls.get_call(request.call_id)
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
        desk = self.desk
        requester = request.requester
        problems: list[str] = []
        if request.kind in (ApprovalKind.DEADLINE_MOVE, ApprovalKind.CALL_CLOSE):
            if request.call_id is None or desk.engine.open_call(request.call_id) is None:
                problems.append(f"call {request.call_id} is not open on this desk yet: try again")
            if request.kind is ApprovalKind.DEADLINE_MOVE:
                new_deadline, reason = deadline_of(request)
                problems.extend(desk._deadline_problems(new_deadline, reason))
            return problems
        switch = await self.kill_switch()
        if switch.engaged:
            problems.append(switch.refusal())
        if request.kind is ApprovalKind.LIQUIDATION:
            intent, override = order_of(request)
            problems.extend(desk.order_problems(intent, requester, override))
        else:
            problems.extend(desk._plan_problems(plan_of(request), requester))
        return list(dict.fromkeys(problems))

    def _approval_details(self, request: ApprovalRequest, approver: Actor) -> dict[str, Any]:
        return {
            "approval_id": request.approval_id,
            "approved_by": approver.name,
            "approver_role": approver.role.value,
        }

    async def _execute_deadline_move(
        self, request: ApprovalRequest, approver: Actor
    ) -> ApprovalRequest:
        desk = self.desk
        store = self._store()
        new_deadline, reason = deadline_of(request)
        requester = request.requester
        async with desk._calls_lock:
            try:
                moved, entry = desk.engine.deadline_move(
                    request.call_id or "",
                    new_deadline,
                    reason,
                    operator=requester.name,
                    details={
                        **desk._action_details(requester, request.account_id),
                        **self._approval_details(request, approver),
                    },
                )
            except (LookupError, ValueError) as problem:  # ended by a poll since the checks
                raise ActionRefused("approval", [str(problem)]) from None
            async with desk._changed_elsewhere("approval"):
                executed = await store.approvals.approve_request(
                    request.approval_id,
                    request.details_hash,
                    approver,
                    at=self._now(),
                    execute=LifecycleBatch(calls=[moved], audit=[entry]),
                    outcome={"new_deadline": new_deadline.isoformat()},
                    note=f"deadline of call {moved.call_id} moved to {new_deadline.isoformat()}",
                )
            desk.engine.adopt(moved)
        desk._publish(desk.view)
        return executed

    async def _execute_close(self, request: ApprovalRequest, approver: Actor) -> ApprovalRequest:
        desk = self.desk
        store = self._store()
        call_id = request.call_id or ""
        requester = request.requester
        async with desk._calls_lock:
            try:
                ended, batch = desk.engine.closing(
                    call_id,
                    close_reason_of(request),
                    operator=requester.name,
                    details={
                        **desk._action_details(requester, request.account_id),
                        **self._approval_details(request, approver),
                    },
                )
            except LookupError as problem:
                raise ActionRefused("approval", [str(problem)]) from None
            async with desk._changed_elsewhere("approval"):
                executed = await store.approvals.approve_request(
                    request.approval_id,
                    request.details_hash,
                    approver,
                    at=self._now(),
                    execute=batch,
                    outcome={
                        "ended_at": None if ended.ended_at is None else ended.ended_at.isoformat()
                    },
                    note=f"call {call_id} closed",
                )
            desk.engine.adopt(ended)
        desk._publish(desk.view)
        await desk._settle_plans_of_ended_calls([call_id])
        await self.void_for_ended_calls([call_id])
        return executed

    async def _execute_order(self, request: ApprovalRequest, approver: Actor) -> ApprovalRequest:
        """Send the approved order exactly as stored, in the requester's name."""
        store = self._store()
        intent, override = order_of(request)
        key = intent.client_order_id
        outcome: dict[str, Any] = {"client_order_id": key}
        try:
            sent = await self.desk._place_order(intent, request.requester, override_reason=override)
        except ActionRefused as refused:  # refused at the last moment (a race): nothing sent
            return await self._finish(
                request, ApprovalState.FAILED, "; ".join(refused.problems), approver, outcome
            )
        except GatewayError as problem:
            order = await store.orders.get(key)
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
            stored = await self.desk._store_plan(
                plan, request.requester, self._approval_details(request, approver)
            )
        except ActionRefused as refused:
            return await self._finish(
                request, ApprovalState.FAILED, "; ".join(refused.problems), approver, outcome
            )
        note = f"plan {plan.plan_id} scheduled for {stored.execute_at.isoformat()}"
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
        return await self._store().approvals.finish_request(
            request.approval_id,
            state,
            operator=approver.name,
            note=note,
            at=self._now(),
            details=outcome,
        )


__all__ = [
    "FOUR_EYES_ACTOR",
    "ApprovalStore",
    "Approvals",
    "CancelOutcome",
    "Engagement",
]
