"""Auto-liquidation plans: recorded `scheduled`, then moved once to `executed` or `cancelled`.

Why each move is audited under the audit-head lock: two schedulers (two processes of one
desk) may race for one plan; the lock every audit writer takes first queues them, and
the second finds the plan already moved and writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from risk_tui.core.actions import AutoLiquidationPlan, plan_wire
from risk_tui.core.lifecycle import AuditEntry, CallState, LifecycleBatch
from risk_tui.core.records import AutoLiquidationState, StoredAutoLiquidation, same_plan
from risk_tui.storage.audited import AuditedTransaction, audited
from risk_tui.storage.base import Repository, by_key
from risk_tui.storage.calls import changed_calls, require_call, upsert_calls
from risk_tui.storage.errors import CallChanged, KeyConflict, UnknownAutoLiquidation
from risk_tui.storage.rows import PLAN_ROWS
from risk_tui.storage.tables import auto_liquidations, calls


def scheduled_plan(plan: AutoLiquidationPlan, at: datetime) -> StoredAutoLiquidation:
    """The plan as first recorded: scheduled, waiting for its time."""
    return StoredAutoLiquidation(
        plan_id=plan.plan_id,
        call_id=plan.call_id,
        account_id=plan.account_id,
        execute_at=plan.execute_at,
        condition=plan.condition,
        lines=plan.lines,
        operator=plan.operator,
        moved_deadline=plan.moved_deadline,
        deadline_reason=plan.deadline_reason,
        created_at=at,
        state=AutoLiquidationState.SCHEDULED,
        updated_at=at,
    )


class Plans(Repository):
    """Scheduled auto-liquidations and where each stands."""

    async def schedule_auto_liquidation(
        self,
        plan: AutoLiquidationPlan,
        *,
        at: datetime,
        details: Mapping[str, Any] | None = None,
        also: LifecycleBatch | None = None,
    ) -> tuple[StoredAutoLiquidation, bool]:
        """Record a plan `scheduled`, with its audit entry; (row, created). Idempotent on id.

        `details` (JSON-ready: the operator's role, the account state) go into the audit
        entry. `also` is the rest of the same operator action — the call with the deadline
        the plan moves, and that move's audit entry — written in the same transaction. A
        plan_id already recorded returns its row and writes nothing (`also` included), or
        raises `KeyConflict` when it names another plan. Raises `UnknownCall` when the
        plan's call is not stored.
        """
        extra = also or LifecycleBatch()
        async with audited(self._engine, snapshots=bool(extra.snapshots)) as tx:
            existing = await _read_plan(tx.conn, plan.plan_id)
            if existing is not None:
                if not same_plan(existing, plan):
                    raise KeyConflict(f"plan_id {plan.plan_id} already names another plan")
                return existing, False
            await require_call(tx.conn, plan.call_id)
            if extra.calls:
                changed = await changed_calls(tx.conn, extra.calls)
                if changed:
                    raise CallChanged(changed)
                await upsert_calls(tx.conn, extra.calls, self._clock())
            await tx.append_snapshots(extra.snapshots)
            await tx.conn.execute(
                insert(auto_liquidations).values(**PLAN_ROWS.to_row(scheduled_plan(plan, at)))
            )
            entry = AuditEntry(
                at=at,
                operator=plan.operator,
                action="auto_liquidation_scheduled",
                call_id=plan.call_id,
                account_id=plan.account_id,
                details={**dict(details or {}), "plan": plan_wire(plan)},
            )
            await tx.append_audit([entry, *extra.audit])
            stored = await _read_plan(tx.conn, plan.plan_id)
        assert stored is not None
        return stored, True

    async def mark_auto_liquidation(
        self,
        plan_id: str,
        state: AutoLiquidationState,
        *,
        detail: str | None,
        at: datetime | None = None,
        operator: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> StoredAutoLiquidation:
        """Move a scheduled plan to `executed` or `cancelled`, audited; the row as it stands.

        Only a `scheduled` plan moves, and only once: one already executed or cancelled
        (by another scheduler, or an operator) comes back unchanged and nothing is written.
        `detail` says why (the audit entry's `detail`); `details` (JSON-ready, e.g. each
        line's order) go with it, under `operator` or else the plan's own operator.
        """
        if state is AutoLiquidationState.SCHEDULED:
            raise ValueError("a plan is scheduled only when it is recorded")
        at = at or self._clock()
        async with audited(self._engine) as tx:
            current = await _read_plan(tx.conn, plan_id)
            if current is None:
                raise UnknownAutoLiquidation(f"no auto-liquidation {plan_id}")
            if current.state is not AutoLiquidationState.SCHEDULED:
                return current
            (moved,) = await _move_plans(
                tx, [current], state, detail=detail, operator=operator, at=at, details=details
            )
        return moved

    async def get_auto_liquidation(self, plan_id: str) -> StoredAutoLiquidation | None:
        async with self._reader() as conn:
            return await _read_plan(conn, plan_id)

    async def due_auto_liquidations(self, now: datetime) -> list[StoredAutoLiquidation]:
        """Scheduled plans whose time has come (`execute_at` ≤ now), the earliest first."""
        return await self._plans_where(
            auto_liquidations.c.state == AutoLiquidationState.SCHEDULED.value,
            auto_liquidations.c.execute_at <= now,
        )

    async def scheduled_auto_liquidations(self) -> list[StoredAutoLiquidation]:
        """Every plan still waiting for its time, the earliest first."""
        return await self._plans_where(
            auto_liquidations.c.state == AutoLiquidationState.SCHEDULED.value
        )

    async def stranded_auto_liquidations(self) -> list[StoredAutoLiquidation]:
        """Scheduled plans whose call has already ended: left by a crash between the two."""
        return await self._plans_where(
            auto_liquidations.c.state == AutoLiquidationState.SCHEDULED.value,
            auto_liquidations.c.call_id.in_(
                select(calls.c.call_id).where(calls.c.state == CallState.ENDED.value)
            ),
        )

    async def auto_liquidations_for(self, call_id: str) -> list[StoredAutoLiquidation]:
        """Every plan of a call, in any state, in the order they were scheduled."""
        async with self._reader() as conn:
            result = await conn.execute(
                select(auto_liquidations)
                .where(auto_liquidations.c.call_id == call_id)
                .order_by(auto_liquidations.c.created_at, auto_liquidations.c.id)
            )
            return [PLAN_ROWS.from_row(row) for row in result.mappings()]

    async def _plans_where(self, *conditions: Any) -> list[StoredAutoLiquidation]:
        async with self._reader() as conn:
            result = await conn.execute(
                select(auto_liquidations)
                .where(*conditions)
                .order_by(auto_liquidations.c.execute_at, auto_liquidations.c.id)
            )
            return [PLAN_ROWS.from_row(row) for row in result.mappings()]


async def _read_plan(conn: AsyncConnection, plan_id: str) -> StoredAutoLiquidation | None:
    return await by_key(conn, auto_liquidations.c.id, plan_id, PLAN_ROWS)


async def _move_plans(
    tx: AuditedTransaction,
    plans: Sequence[StoredAutoLiquidation],
    state: AutoLiquidationState,
    *,
    detail: str | None,
    operator: str | None,
    at: datetime,
    details: Mapping[str, Any] | None,
) -> list[StoredAutoLiquidation]:
    """Move scheduled plans (read under the audit-head lock) to `state`, with audit."""
    entries: list[AuditEntry] = []
    moved: list[StoredAutoLiquidation] = []
    for plan in plans:
        await tx.conn.execute(
            update(auto_liquidations)
            .where(auto_liquidations.c.id == plan.plan_id)
            .values(state=state.value, updated_at=at)
        )
        moved.append(replace(plan, state=state, updated_at=at))
        entries.append(
            AuditEntry(
                at=at,
                operator=operator or plan.operator,
                action=f"auto_liquidation_{state.value}",
                call_id=plan.call_id,
                account_id=plan.account_id,
                details={
                    **dict(details or {}),
                    "plan_id": plan.plan_id,
                    "state": state.value,
                    "detail": detail,
                },
            )
        )
    await tx.append_audit(entries)
    return moved


__all__ = ["Plans", "scheduled_plan"]
