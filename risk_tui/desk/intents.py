"""What an operator asks that may need a second person: done now, or stored as a request.

A liquidation order (or auto-liquidation plan) worth more than the four-eyes threshold,
a plan that moves the deadline, every deadline move, every close of a call, and the
cancel of a plan that needed (or would now need) a second person to be scheduled are
checked exactly as if they were to be done now (the same checks, every problem at once,
the refusal audited), then stored as a pending four-eyes request, audited, instead of
done; the caller gets the request back. A double press (the same details, still pending)
returns the same request. An edit names the request it `replaces`: that one is voided
in the same transaction as the new one is stored (or, when the edit no longer needs a
second person, voided and the edit done now). Deciding requests is `desk.approvals`.
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal

from risk_tui.config import Settings
from risk_tui.core.actions import (
    ActionRefused,
    AutoLiquidationPlan,
    OrderIntent,
    deadline_problems,
    override_used,
    plan_wire,
)
from risk_tui.core.close_reasons import CloseReason, close_problems
from risk_tui.core.four_eyes import (
    KIND_WORDS,
    ApprovalKind,
    ApprovalRequest,
    close_request,
    deadline_request,
    liquidation_request,
    plan_cancel_request,
    plan_request,
)
from risk_tui.core.notional import order_notional, plan_needs_approval, plan_notional
from risk_tui.core.records import OrderOutcome, StoredAutoLiquidation
from risk_tui.core.roles import Actor, Intent, refusal
from risk_tui.desk.action_log import ActionLog
from risk_tui.desk.engine import Engine
from risk_tui.desk.kill_switch import KillSwitchService
from risk_tui.desk.plans import AutoLiquidations
from risk_tui.desk.trading import Trading
from risk_tui.storage.errors import ApprovalConflict, KeyConflict, UnknownApproval, UnknownCall
from risk_tui.storage.store import Store

log = logging.getLogger(__name__)


class Intents:
    """The four-eyes gate in front of orders, plans, deadline moves and closes."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        store: Store,
        trading: Trading,
        plans: AutoLiquidations,
        kill_switch: KillSwitchService,
        actions: ActionLog,
    ) -> None:
        self._currency = settings.desk.reporting_currency
        self.threshold: Decimal = settings.four_eyes.liquidation_notional
        self._engine = engine
        self._store = store
        self._trading = trading
        self._plans = plans
        self._kill_switch = kill_switch
        self._actions = actions

    # --- the intents --------------------------------------------------------------------------

    async def submit_order(
        self,
        intent: OrderIntent,
        actor: Actor,
        *,
        override_reason: str | None = None,
        replaces: str | None = None,
    ) -> OrderOutcome | ApprovalRequest:
        """Send a liquidation order, or, when it needs four-eyes approval, store it as a
        request and return that (pending). `replaces`: the request this one edits."""
        held = await self._hold_order(intent, actor, override_reason, replaces)
        if held is not None:
            return held
        return await self._trading.place_order(intent, actor, override_reason=override_reason)

    async def schedule_plan(
        self, plan: AutoLiquidationPlan, actor: Actor, *, replaces: str | None = None
    ) -> StoredAutoLiquidation | ApprovalRequest:
        """Check and store a plan (and move the call's deadline if it says so), audited.

        Traders and supervisors, on an open call, on live figures, not while the kill
        switch is engaged; each line is checked against the positions as an order would
        be. A moved deadline needs a reason and is committed in the same transaction as
        the plan. A plan that moves the deadline or is worth more than the four-eyes
        threshold becomes a pending request instead (`replaces`: the request it edits).
        The same plan again (a double press) returns the stored one.
        """
        existing = await self._plans.get(plan.plan_id)
        if existing is not None and existing.plan() == plan:
            return existing
        problems = self._plans.problems(plan, actor)
        if existing is not None:
            problems.append(f"plan_id {plan.plan_id} already names another plan")
        switch = await self._kill_switch.state()
        if switch.engaged:
            problems.append(switch.refusal())
        if problems:
            await self._actions.refuse(
                "auto_liquidation_refused",
                "auto-liquidation",
                actor,
                plan.call_id,
                problems,
                {"plan": plan_wire(plan)},
            )
        held = await self._hold_plan(plan, actor, replaces)
        if held is not None:
            return held
        return await self._plans.store(plan, actor)

    async def cancel_plan(
        self, plan_id: str, reason: str, actor: Actor
    ) -> StoredAutoLiquidation | ApprovalRequest:
        """Cancel a scheduled plan, with a reason, audited — or, when the plan is one that
        needs a second person to be scheduled (worth more than the four-eyes threshold at
        today's prices, or moving the deadline), store the cancel as a pending request."""
        plans = self._plans
        plan = await plans.get(plan_id)
        problems = plans.cancel_problems(plan_id, plan, reason, actor)
        if problems or plan is None:
            await plans.refuse_cancel(plan_id, plan, reason, actor, problems)
        scheduled = plan.plan()
        notional = plan_notional(scheduled, self._engine.book, self._currency)
        if not plan_needs_approval(scheduled, notional, self.threshold):
            return await plans.cancel(plan_id, reason, actor)
        request = plan_cancel_request(scheduled, reason, notional, actor, self._engine.clock())
        return await self._record(request, actor, "cancel")

    async def move_deadline(
        self,
        call_id: str,
        new_deadline: datetime,
        reason: str,
        actor: Actor,
        *,
        replaces: str | None = None,
    ) -> ApprovalRequest:
        """Ask to move an open call's deadline, with a reason: a four-eyes request, pending.

        Traders and supervisors. A second one approves it (`Approvals.approve`), which moves
        the deadline and audits both names in one commit.
        """
        problems: list[str] = []
        refused = refusal(actor, Intent.MOVE_DEADLINE)
        if refused:
            problems.append(refused)
        call = self._engine.open_call(call_id)
        if call is None:
            problems.append(f"no open margin call {call_id}")
        problems.extend(
            deadline_problems(
                new_deadline, reason, self._engine.clock(), rule=self._engine.deadline_rule(call)
            )
        )
        if problems or call is None:
            await self._actions.refuse(
                "deadline_move_refused",
                "deadline move",
                actor,
                call_id,
                problems,
                {"new_deadline": str(new_deadline), "reason": reason},
            )
        request = deadline_request(
            call, new_deadline, reason, actor, self._engine.clock(), replaces=replaces
        )
        return await self._record(request, actor, "deadline move")

    async def close_call(
        self,
        call_id: str,
        reason: str,
        actor: Actor,
        *,
        close_reason: CloseReason | None,
        replaces: str | None = None,
    ) -> ApprovalRequest:
        """Ask to end an open call, with an end reason from the list and a note saying what
        happened (`reason`): a four-eyes request, pending.

        Traders and supervisors. The approval writes the END snapshot and audit in one
        commit and cancels the call's scheduled auto-liquidations after it. An account
        still below MM opens a new call on the next fresh poll.
        """
        problems: list[str] = []
        refused = refusal(actor, Intent.CLOSE_CALL)
        if refused:
            problems.append(refused)
        problems.extend(close_problems(close_reason, reason))
        call = self._engine.open_call(call_id)
        if call is None:
            problems.append(f"no open margin call {call_id}")
        if problems or call is None or close_reason is None:
            await self._actions.refuse(
                "close_refused",
                "close",
                actor,
                call_id,
                problems,
                {"reason": reason, "close_reason": close_reason},
            )
        request = close_request(
            call,
            reason,
            actor,
            self._engine.clock(),
            close_reason=close_reason,
            replaces=replaces,
        )
        return await self._record(request, actor, "close")

    # --- holding for a second person ----------------------------------------------------------

    async def _hold_order(
        self,
        intent: OrderIntent,
        actor: Actor,
        override_reason: str | None,
        replaces: str | None,
    ) -> ApprovalRequest | None:
        """The pending request a liquidation order becomes; None when it goes now."""
        notional = order_notional(intent, self._engine.book, self._currency)
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
        problems = self._trading.order_problems(intent, actor, override_reason)
        switch = await self._kill_switch.state()
        if switch.engaged:
            problems.append(switch.refusal())
        if problems:
            await self._actions.refuse(
                "order_refused",
                "order",
                actor,
                intent.reference,
                problems,
                {"order": intent.wire()},
            )
        call_open = intent.account_id in self._engine.open_calls
        override = override_reason if override_used(call_open, override_reason) else None
        request = liquidation_request(
            intent, override, notional, actor, self._engine.clock(), replaces=replaces
        )
        return await self._record(request, actor, "order")

    async def _hold_plan(
        self, plan: AutoLiquidationPlan, actor: Actor, replaces: str | None
    ) -> ApprovalRequest | None:
        """The pending request a checked plan becomes; None when it is stored now."""
        notional = plan_notional(plan, self._engine.book, self._currency)
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
        call = self._engine.open_call(plan.call_id)
        request = plan_request(
            plan,
            notional,
            actor,
            self._engine.clock(),
            old_deadline=call.deadline if call else None,
            replaces=replaces,
        )
        return await self._record(request, actor, "auto-liquidation")

    async def _record(self, request: ApprovalRequest, actor: Actor, what: str) -> ApprovalRequest:
        store = self._store
        if request.replaces is None:
            for same in await store.approvals.pending_with_hash(request.details_hash):
                return same  # a double press: the request already waiting
        else:
            await self._check_edit(request.replaces, request.kind, request.account_id)
        details = self._actions.details(actor, request.account_id)
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
        old = await self._store.approvals.get_approval(approval_id)
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
        store = self._store
        voided = await store.approvals.void_requests(
            approval_ids=[approval_id],
            reason=f"edited: replaced by {instead}, which needs no approval",
            operator=actor.name,
            at=self._engine.clock(),
        )
        if not voided:
            request = await store.approvals.get_approval(approval_id)
            state = "unknown" if request is None else request.state.value
            raise ActionRefused(
                "edit", [f"request {approval_id} is {state}: only a pending request can be edited"]
            )
