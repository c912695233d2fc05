"""Auto-liquidation plans: checked and stored, run at their time, settled when their call ends.

A plan is stored `scheduled`. At its time the runner sends one market order per line,
each under the key `{plan_id}-{line}`: a crash and restart in the middle re-submits the
same keys, which the outbox and the broker answer with the orders already made, so no
line is ever sent twice. A plan is judged (call still open, condition still true) once,
on live data; one found part-sent after a crash is finished, not judged again. Its call's
end cancels it: right after a poll or an operator ends the call, or — should the process
die in between — on the runner's next look, which settles every scheduled plan whose call
has ended. While the kill switch is engaged, due plans wait, scheduled, for its release.

Whether a plan needs a second person first is `desk.intents`' decision; this service
checks a plan (`problems`) and stores one that may go (`store`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, NoReturn

from risk_tui.core.actions import (
    ActionRefused,
    AutoCondition,
    AutoLiquidationPlan,
    OrderIntent,
    check_order,
    deadline_problems,
)
from risk_tui.core.lifecycle import LifecycleBatch, MarginCall
from risk_tui.core.margin import RiskLevel
from risk_tui.core.records import AutoLiquidationState, StoredAutoLiquidation, plan_line_key
from risk_tui.core.roles import Actor, Intent, Role, refusal
from risk_tui.desk.action_log import ActionLog
from risk_tui.desk.engine import Engine
from risk_tui.desk.kill_switch import KillSwitchService
from risk_tui.desk.trading import Trading
from risk_tui.feed.broker import GatewayError
from risk_tui.storage.errors import KeyConflict, UnknownCall
from risk_tui.storage.store import Store

log = logging.getLogger(__name__)

AUTO_LIQUIDATION_INTERVAL = 1.0  # seconds between the runner's looks for due plans
# Who sends a plan's orders when its time comes. Not the scheduling operator: they were
# not at the terminal then, and the audit must say truthfully what acted. Their decision
# is the plan's `auto_liquidation_scheduled` entry; each order's key names the plan.
AUTO_LIQUIDATION_ACTOR = Actor("engine:auto-liquidation", Role.TRADER)
AUTO_LIQUIDATION_REASON = "auto_liquidation"  # the orders' FEED.md `reason`


class AutoLiquidations:
    """The desk's auto-liquidation plans."""

    def __init__(
        self,
        engine: Engine,
        store: Store,
        trading: Trading,
        kill_switch: KillSwitchService,
        actions: ActionLog,
        *,
        interval: float = AUTO_LIQUIDATION_INTERVAL,
    ) -> None:
        self._engine = engine
        self._store = store
        self._trading = trading
        self._kill_switch = kill_switch
        self._actions = actions
        self.interval = interval
        # One runner of plans at a time in this process (the loop, a test, the end hook).
        self._lock = asyncio.Lock()
        self._waiting: set[str] = set()  # plans already logged as waiting for data

    # --- checking and storing -----------------------------------------------------------------

    def problems(self, plan: AutoLiquidationPlan, actor: Actor) -> list[str]:
        """Every reason the plan could not be scheduled now by `actor`: the role, the call
        open, the time in the future, a moved deadline with its reason, and each line
        checked against the positions as an order would be."""
        engine = self._engine
        problems: list[str] = []
        refused = refusal(actor, Intent.AUTO_LIQUIDATE)
        if refused:
            problems.append(refused)
        if plan.operator != actor.name:
            problems.append(f"the plan names operator {plan.operator!r}, not {actor.name!r}")
        if not plan.plan_id.strip():
            problems.append("the plan has no plan_id")
        call = engine.open_calls.get(plan.account_id)
        if call is None or call.call_id != plan.call_id:
            problems.append(f"call {plan.call_id} of account {plan.account_id} is not open")
        if plan.condition not in tuple(AutoCondition):
            problems.append(f"unknown condition {plan.condition!r}")
        now = engine.clock()
        at = plan.execute_at
        if at.tzinfo is None or at.utcoffset() is None:
            problems.append("the execution time must carry its time zone")
        elif at <= now:
            problems.append(f"the execution time {at.isoformat()} is not in the future")
        if plan.moved_deadline is not None:
            same = call if call is not None and call.call_id == plan.call_id else None
            problems.extend(
                deadline_problems(
                    plan.moved_deadline, plan.deadline_reason, now, rule=engine.deadline_rule(same)
                )
            )
        elif plan.deadline_reason:
            problems.append("a deadline reason is given but no new deadline")
        if not plan.lines:
            problems.append("the plan has no lines")
        symbols = [line.symbol for line in plan.lines]
        if len(set(symbols)) != len(symbols):
            problems.append("one line per symbol: the plan names a symbol twice")
        fresh = self._trading.data_fresh(plan.account_id)
        for index, line in enumerate(plan.lines):
            problems.extend(
                check_order(
                    plan_order(plan, index, actor.name),
                    position_quantity=engine.state.holding(plan.account_id, line.symbol),
                    call_open=True,  # checked above, for the plan as a whole
                    data_fresh=fresh,
                    actor=actor,
                    override_reason=None,
                )
            )
        return list(dict.fromkeys(problems))  # role and freshness repeat per line

    async def store(
        self,
        plan: AutoLiquidationPlan,
        actor: Actor,
        approval: Mapping[str, Any] | None = None,
    ) -> StoredAutoLiquidation:
        """Store a checked plan (and its deadline move) in one commit; `approval`: who
        approved it, for the audit entries."""
        engine = self._engine

        def build() -> tuple[MarginCall | None, LifecycleBatch]:
            if plan.moved_deadline is None:
                return None, LifecycleBatch()
            moved, entry = engine.deadline_move(
                plan.call_id,
                plan.moved_deadline,
                plan.deadline_reason or "",
                operator=actor.name,
                details={"role": actor.role.value, "plan_id": plan.plan_id, **dict(approval or {})},
            )
            return moved, LifecycleBatch(calls=[moved], audit=[entry])

        async def write(also: LifecycleBatch) -> StoredAutoLiquidation:
            details = {**self._actions.details(actor, plan.account_id), **dict(approval or {})}
            try:
                stored, _ = await self._store.plans.schedule_auto_liquidation(
                    plan, at=engine.clock(), details=details, also=also
                )
            except (KeyConflict, UnknownCall) as problem:
                raise ActionRefused("auto-liquidation", [str(problem)]) from None
            return stored

        stored = await self._actions.change_call("auto-liquidation", build, write)
        await self.note_planned()
        return stored

    async def note_planned(self) -> None:
        """Tell the engine which calls have a plan scheduled (their rows say so)."""
        scheduled = await self._store.plans.scheduled_auto_liquidations()
        self._engine.note_planned(frozenset(plan.call_id for plan in scheduled))

    async def get(self, plan_id: str) -> StoredAutoLiquidation | None:
        return await self._store.plans.get_auto_liquidation(plan_id)

    @staticmethod
    def cancel_problems(
        plan_id: str, plan: StoredAutoLiquidation | None, reason: str, actor: Actor
    ) -> list[str]:
        """Every reason `actor` may not cancel `plan` (stored as `plan_id`) now."""
        problems: list[str] = []
        refused = refusal(actor, Intent.CANCEL_PLAN)
        if refused:
            problems.append(refused)
        if not reason.strip():
            problems.append("cancelling a plan needs a reason")
        if plan is None:
            problems.append(f"no auto-liquidation {plan_id}")
        elif plan.state is not AutoLiquidationState.SCHEDULED:
            problems.append(f"auto-liquidation {plan_id} is already {plan.state}")
        return problems

    async def refuse_cancel(
        self,
        plan_id: str,
        plan: StoredAutoLiquidation | None,
        reason: str,
        actor: Actor,
        problems: list[str],
    ) -> NoReturn:
        """Audit a refused cancel, then raise ActionRefused."""
        await self._actions.refuse(
            "auto_liquidation_cancel_refused",
            "cancel",
            actor,
            plan.call_id if plan else None,
            problems,
            {"plan_id": plan_id, "reason": reason},
        )

    async def cancel(
        self,
        plan_id: str,
        reason: str,
        actor: Actor,
        approval: Mapping[str, Any] | None = None,
    ) -> StoredAutoLiquidation:
        """Withdraw a scheduled plan, with a reason (traders and supervisors), audited;
        `approval`: who approved it, when it needed a second person (`desk.intents`)."""
        store = self._store
        plan = await store.plans.get_auto_liquidation(plan_id)
        problems = self.cancel_problems(plan_id, plan, reason, actor)
        if problems:
            await self.refuse_cancel(plan_id, plan, reason, actor, problems)
        async with self._lock:  # not while the runner is sending it
            cancelled = await store.plans.mark_auto_liquidation(
                plan_id,
                AutoLiquidationState.CANCELLED,
                detail=reason,
                operator=actor.name,
                at=self._engine.clock(),
                details={"role": actor.role.value, **dict(approval or {})},
            )
        await self.note_planned()
        return cancelled

    # --- running --------------------------------------------------------------------------------

    async def run(self) -> None:
        """The runner: settle plans a crash stranded, then run due plans every interval."""
        while True:
            try:
                await self.run_due()
            except Exception:  # a database or gateway failure: log, look again next tick
                log.exception("auto-liquidation runner tick failed")
            await asyncio.sleep(self.interval)

    async def run_due(self) -> list[StoredAutoLiquidation]:
        """One look: settle plans whose call ended, run the due ones; the plans moved."""
        store = self._store
        moved: list[StoredAutoLiquidation] = []
        async with self._lock:
            stranded = await store.plans.stranded_auto_liquidations()
            moved.extend([await self._settle_ended(plan) for plan in stranded])
            if await self._kill_switch.holds_plans():
                return moved  # the kill switch: due plans wait, scheduled, for its release
            for plan in await store.plans.due_auto_liquidations(self._engine.clock()):
                outcome = await self._run_plan(plan)
                if outcome is not None:
                    moved.append(outcome)
        if moved:
            await self.note_planned()
        return moved

    async def settle_for_ended_calls(self, call_ids: list[str]) -> None:
        """Right after calls ended, settle their scheduled plans (the runner catches a miss)."""
        if self._lock.locked():
            return  # busy running plans: its next look settles these (stranded)
        try:
            async with self._lock:
                for call_id in call_ids:
                    for plan in await self._store.plans.auto_liquidations_for(call_id):
                        if plan.state is AutoLiquidationState.SCHEDULED:
                            await self._settle_ended(plan)
        except Exception:  # never fail the poll for it: the runner settles them later
            log.exception("cancelling the plans of ended calls failed")

    async def _recorded_lines(self, plan: StoredAutoLiquidation) -> list[int]:
        return [
            index
            for index in range(len(plan.lines))
            if await self._store.orders.get(plan.client_order_id(index)) is not None
        ]

    async def _settle_ended(self, plan: StoredAutoLiquidation) -> StoredAutoLiquidation:
        """A plan whose call has ended: cancelled, or executed if a crash left it part-sent."""
        started = await self._recorded_lines(plan)
        now = self._engine.clock()
        self._waiting.discard(plan.plan_id)
        if started:
            return await self._store.plans.mark_auto_liquidation(
                plan.plan_id,
                AutoLiquidationState.EXECUTED,
                detail=f"the call ended during execution; lines sent: {started}",
                operator=AUTO_LIQUIDATION_ACTOR.name,
                at=now,
                details={"orders": [plan.client_order_id(i) for i in started]},
            )
        return await self._store.plans.mark_auto_liquidation(
            plan.plan_id,
            AutoLiquidationState.CANCELLED,
            detail="call ended before execution",
            operator=AUTO_LIQUIDATION_ACTOR.name,
            at=now,
        )

    def _condition_problem(self, plan: StoredAutoLiquidation) -> str | None:
        """Why the plan's condition no longer holds (the call is known open); None if it does."""
        if plan.condition is AutoCondition.BELOW_FM:
            result = self._engine.results.get(plan.account_id)
            level = "unknown" if result is None else result.risk_level.value
            if result is None or result.risk_level is not RiskLevel.FORCE_CALL:
                return f"condition below_fm no longer holds: the account is {level}"
        return None

    async def _run_plan(self, plan: StoredAutoLiquidation) -> StoredAutoLiquidation | None:
        """Judge and send one due plan; None when it must wait for live data."""
        store = self._store
        call = await store.calls.get_call(plan.call_id)
        if call is None or not call.is_open:
            return await self._settle_ended(plan)
        started = await self._recorded_lines(plan)
        unsent = len(started) < len(plan.lines)
        if unsent and not self._trading.data_fresh(plan.account_id):
            # Never act on data the desk cannot vouch for; say so once, look again later.
            if plan.plan_id not in self._waiting:
                self._waiting.add(plan.plan_id)
                log.warning(
                    "auto-liquidation %s is due but %s's figures are not live: waiting",
                    plan.plan_id,
                    plan.account_id,
                )
            return None
        self._waiting.discard(plan.plan_id)
        now = self._engine.clock()
        problem = None if started else self._condition_problem(plan)
        if problem is not None:
            return await store.plans.mark_auto_liquidation(
                plan.plan_id,
                AutoLiquidationState.CANCELLED,
                detail=problem,
                operator=AUTO_LIQUIDATION_ACTOR.name,
                at=now,
            )
        lines = [await self._send_line(plan, index) for index in range(len(plan.lines))]
        if any("refused" in line for line in lines) and await self._kill_switch.holds_plans():
            return None  # the kill switch came on meanwhile: the rest waits for its release
        sent = [line for line in lines if line.get("send_state") not in (None, "failed")]
        if sent:
            state = AutoLiquidationState.EXECUTED
            detail = f"{len(sent)} of {len(lines)} orders sent"
        else:
            state = AutoLiquidationState.CANCELLED
            detail = "no order could be sent"
        return await store.plans.mark_auto_liquidation(
            plan.plan_id,
            state,
            detail=detail,
            operator=AUTO_LIQUIDATION_ACTOR.name,
            at=self._engine.clock(),
            details={"lines": lines},
        )

    async def _send_line(self, plan: StoredAutoLiquidation, index: int) -> dict[str, Any]:
        """Submit one line's order under its fixed key; what became of it, JSON-ready."""
        intent = plan_order(plan.plan(), index, AUTO_LIQUIDATION_ACTOR.name)
        outcome: dict[str, Any] = {"line": index, "client_order_id": intent.client_order_id}
        try:
            # Judged, with four-eyes if it needed it, when the plan was scheduled.
            sent = await self._trading.place_order(intent, AUTO_LIQUIDATION_ACTOR)
        except ActionRefused as refused:
            outcome["refused"] = refused.problems
            return outcome
        except GatewayError as problem:  # credentials: the gateway marked it failed if unsent
            order = await self._store.orders.get(intent.client_order_id)
            outcome["send_state"] = None if order is None else order.send_state.value
            outcome["error"] = str(problem)
            return outcome
        outcome["send_state"] = sent.send_state.value
        outcome["status"] = sent.order.status
        if sent.error is not None:
            outcome["error"] = sent.error  # in doubt: recover() settles it with the same key
        return outcome


def plan_order(plan: AutoLiquidationPlan, index: int, operator: str) -> OrderIntent:
    """The market order of one line of a plan, under the line's fixed key."""
    line = plan.lines[index]
    return OrderIntent(
        client_order_id=plan_line_key(plan.plan_id, index),
        account_id=plan.account_id,
        symbol=line.symbol,
        side=line.side,
        quantity=line.quantity,
        order_type="market",
        limit_price=None,
        reason=AUTO_LIQUIDATION_REASON,
        reference=plan.call_id,
        operator=operator,
    )
