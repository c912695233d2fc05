"""Four-eyes requests: recorded `pending`, decided once (of two approvers exactly one wins).

Why a decision is one conditional UPDATE (`WHERE state = 'pending' AND details_hash =
<the hash the decider saw>`) made under the audit-head lock every writer takes first:
two approvers (two terminals, two processes) queue, the second finds the request
decided, and its UPDATE, should it get that far, matches no row. Either way it writes
nothing and gets `ApprovalConflict`. A deadline move or close is executed in the
approving transaction itself (`execute`); an order or plan is sent after it, and the
request then moves once more, to `executed` or `failed` (`finish_request`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from risk_tui.core.four_eyes import (
    DECIDED_STATES,
    ApprovalRequest,
    ApprovalState,
    details_hash,
)
from risk_tui.core.lifecycle import AuditEntry, CallState, LifecycleBatch
from risk_tui.core.roles import Actor
from risk_tui.storage.audited import audited
from risk_tui.storage.base import Repository, by_key
from risk_tui.storage.calls import changed_calls, require_call, upsert_calls
from risk_tui.storage.errors import ApprovalConflict, CallChanged, KeyConflict, UnknownApproval
from risk_tui.storage.rows import APPROVAL_ROWS
from risk_tui.storage.tables import approvals, calls

_OLDEST_FIRST = (approvals.c.requested_at, approvals.c.id)
# Decided requests, the latest decision first (`updated_at` is when it last moved).
_LATEST_DECIDED_FIRST = (approvals.c.updated_at.desc(), approvals.c.id.desc())


class ApprovalRequests(Repository):
    """Four-eyes requests and their decisions."""

    async def request_approval(
        self, request: ApprovalRequest, *, details: Mapping[str, Any] | None = None
    ) -> ApprovalRequest:
        """Record a pending request with its audit entry; the stored request.

        `details` (JSON-ready: the requester's role, the account state they saw) go into
        the audit entry. When the request `replaces` another (an edit), that one must still
        be pending: it is voided in the same transaction, else `ApprovalConflict`. Raises
        `UnknownCall` when the request names a call not stored, `KeyConflict` on an id
        already used.
        """
        if request.state is not ApprovalState.PENDING:
            raise ValueError("a request is recorded pending")
        if details_hash(request.details) != request.details_hash:
            raise ValueError(f"request {request.approval_id}: details and hash disagree")
        at = request.requested_at
        async with audited(self._engine) as tx:
            if await _read(tx.conn, request.approval_id) is not None:
                raise KeyConflict(f"approval id {request.approval_id} is already used")
            await require_call(tx.conn, request.call_id)
            entries: list[AuditEntry] = []
            if request.replaces is not None:
                old = await _read(tx.conn, request.replaces)
                if old is None:
                    raise UnknownApproval(f"no request {request.replaces}")
                if old.state is not ApprovalState.PENDING:
                    raise ApprovalConflict(
                        f"request {old.approval_id} is already {old.state.value}: "
                        "only a pending request can be edited"
                    )
                voided = await _move_approval(
                    tx.conn,
                    old,
                    ApprovalState.VOIDED,
                    by=request.requested_by,
                    at=at,
                    note=f"edited: replaced by {request.approval_id}",
                )
                entries.append(voided)
            await tx.conn.execute(
                insert(approvals).values(
                    **APPROVAL_ROWS.to_row(
                        request, updated_at=request.decided_at or request.requested_at
                    )
                )
            )
            entries.insert(
                0,
                AuditEntry(
                    at=at,
                    operator=request.requested_by,
                    action="approval_requested",
                    call_id=request.call_id,
                    account_id=request.account_id,
                    details={
                        **dict(details or {}),
                        "approval_id": request.approval_id,
                        "kind": request.kind.value,
                        "details": request.details,
                        "details_hash": request.details_hash,
                        "replaces": request.replaces,
                    },
                ),
            )
            await tx.append_audit(entries)
        return request

    async def approve_request(
        self,
        approval_id: str,
        seen_hash: str,
        approver: Actor,
        *,
        at: datetime,
        execute: LifecycleBatch | None = None,
        outcome: Mapping[str, Any] | None = None,
        note: str | None = None,
    ) -> ApprovalRequest:
        """Approve a pending request whose details hash is `seen_hash`; the request now.

        With `execute` (the approved action's calls, snapshots and audit entries: a deadline
        move, a close) the action is written in the same transaction and the request is
        `executed` at once, `note` saying what was done and `outcome` (JSON-ready) going
        into its audit entry; without it the
        request is `approved`, to be finished by `finish_request`. Raises
        `ApprovalConflict` when the request is not pending or its hash is not `seen_hash`.
        """
        batch = execute or LifecycleBatch()
        async with audited(self._engine, snapshots=bool(batch.snapshots)) as tx:
            request = await _decidable(tx.conn, approval_id, seen_hash)
            if batch.calls:  # the call as the approver's desk holds it: still the stored one?
                changed = await changed_calls(tx.conn, batch.calls)
                if changed:
                    raise CallChanged(changed)
            state = ApprovalState.EXECUTED if execute is not None else ApprovalState.APPROVED
            decided = await _decide(
                tx.conn,
                request,
                seen_hash,
                state,
                by=approver.name,
                at=at,
                note=note if execute is not None else None,
            )
            entries = [
                _approval_entry(
                    decided,
                    "approval_approved",
                    approver.name,
                    at,
                    {"role": approver.role.value, "requested_by": request.requested_by},
                ),
                *batch.audit,
            ]
            if execute is not None:
                entries.append(
                    _approval_entry(
                        decided,
                        "approval_executed",
                        approver.name,
                        at,
                        {
                            **dict(outcome or {}),
                            "requested_by": request.requested_by,
                            "approved_by": approver.name,
                            "note": note,
                        },
                    )
                )
            if batch.calls:
                await upsert_calls(tx.conn, batch.calls, self._clock())
            await tx.append_snapshots(batch.snapshots)
            await tx.append_audit(entries)
        return decided

    async def finish_request(
        self,
        approval_id: str,
        state: ApprovalState,
        *,
        operator: str,
        note: str,
        at: datetime,
        details: Mapping[str, Any] | None = None,
    ) -> ApprovalRequest:
        """Move an `approved` request to `executed` or `failed`, audited; the request now.

        Only an approved request moves, and only once: one already finished comes back
        unchanged and nothing is written. `note` says what was done or why it failed;
        `details` (JSON-ready, e.g. the order's outcome) go into the audit entry.
        """
        if state not in (ApprovalState.EXECUTED, ApprovalState.FAILED):
            raise ValueError("an approved request finishes executed or failed")
        async with audited(self._engine) as tx:
            current = await _read(tx.conn, approval_id)
            if current is None:
                raise UnknownApproval(f"no request {approval_id}")
            if current.state is not ApprovalState.APPROVED:
                return current
            await tx.conn.execute(
                update(approvals)
                .where(approvals.c.id == approval_id)
                .values(state=state.value, note=note, updated_at=at)
            )
            finished = replace(current, state=state, note=note)
            entry = _approval_entry(
                finished,
                f"approval_{state.value}",
                operator,
                at,
                {
                    **dict(details or {}),
                    "requested_by": current.requested_by,
                    "approved_by": current.decided_by,
                    "note": note,
                },
            )
            await tx.append_audit([entry])
        return finished

    async def reject_request(
        self, approval_id: str, seen_hash: str, actor: Actor, note: str, *, at: datetime
    ) -> ApprovalRequest:
        """Reject (or, by its requester, withdraw) a pending request, with a reason, audited.

        Raises `ApprovalConflict` when it is not pending or its hash is not `seen_hash`.
        """
        async with audited(self._engine) as tx:
            request = await _decidable(tx.conn, approval_id, seen_hash)
            rejected = await _decide(
                tx.conn, request, seen_hash, ApprovalState.REJECTED, by=actor.name, at=at, note=note
            )
            entry = _approval_entry(
                rejected,
                "approval_rejected",
                actor.name,
                at,
                {"role": actor.role.value, "requested_by": request.requested_by, "reason": note},
            )
            await tx.append_audit([entry])
        return rejected

    async def void_requests(
        self,
        *,
        approval_ids: Sequence[str] = (),
        call_ids: Sequence[str] = (),
        reason: str,
        operator: str,
        at: datetime,
    ) -> list[ApprovalRequest]:
        """Void the pending requests named, or of the calls named, each audited; those voided.

        Requests no longer pending are left as they are (voiding twice writes nothing).
        """
        if not approval_ids and not call_ids:
            return []
        async with audited(self._engine) as tx:
            chosen = []
            if approval_ids:
                chosen.append(approvals.c.id.in_(sorted(set(approval_ids))))
            if call_ids:
                chosen.append(approvals.c.call_id.in_(sorted(set(call_ids))))
            result = await tx.conn.execute(
                select(approvals)
                .where(approvals.c.state == ApprovalState.PENDING.value, or_(*chosen))
                .order_by(*_OLDEST_FIRST)
            )
            pending = [APPROVAL_ROWS.from_row(row) for row in result.mappings()]
            entries = [
                await _move_approval(
                    tx.conn, request, ApprovalState.VOIDED, by=operator, at=at, note=reason
                )
                for request in pending
            ]
            await tx.append_audit(entries)
        return [
            replace(r, state=ApprovalState.VOIDED, decided_by=operator, decided_at=at, note=reason)
            for r in pending
        ]

    async def get_approval(self, approval_id: str) -> ApprovalRequest | None:
        async with self._reader() as conn:
            return await _read(conn, approval_id)

    async def approvals_in(
        self, states: Sequence[ApprovalState], *, limit: int = 500
    ) -> list[ApprovalRequest]:
        """Requests in any of `states`, oldest first (the approvals tab: pending ones)."""
        return await self._where(
            approvals.c.state.in_([state.value for state in states]), limit=limit
        )

    async def decided_approvals(self, *, limit: int = 500) -> list[ApprovalRequest]:
        """The `limit` requests decided last (executed, failed, rejected or withdrawn,
        voided), the latest first: the approvals tab's record of what was decided."""
        decided = [state.value for state in ApprovalState if state in DECIDED_STATES]
        return await self._where(
            approvals.c.state.in_(decided), limit=limit, order=_LATEST_DECIDED_FIRST
        )

    async def approvals_for(self, call_id: str) -> list[ApprovalRequest]:
        """Every request about a call, in any state, oldest first."""
        return await self._where(approvals.c.call_id == call_id)

    async def count_pending_approvals(self) -> int:
        """How many requests wait for a second person (the Approvals tab's label)."""
        async with self._reader() as conn:
            query = (
                select(func.count())
                .select_from(approvals)
                .where(approvals.c.state == ApprovalState.PENDING.value)
            )
            return int((await conn.execute(query)).scalar_one())

    async def pending_with_hash(self, details_hash: str) -> list[ApprovalRequest]:
        """Pending requests with exactly these details (a double press finds its first)."""
        return await self._where(
            approvals.c.state == ApprovalState.PENDING.value,
            approvals.c.details_hash == details_hash,
        )

    async def pending_requests_of_ended_calls(self) -> list[ApprovalRequest]:
        """Pending requests whose call has ended (another process ended it, or a crash)."""
        async with self._reader() as conn:
            result = await conn.execute(
                select(approvals).where(
                    approvals.c.state == ApprovalState.PENDING.value,
                    approvals.c.call_id.in_(
                        select(calls.c.call_id).where(calls.c.state == CallState.ENDED.value)
                    ),
                )
            )
            return [APPROVAL_ROWS.from_row(row) for row in result.mappings()]

    async def _where(
        self,
        *conditions: Any,
        limit: int | None = None,
        order: Sequence[Any] = _OLDEST_FIRST,
    ) -> list[ApprovalRequest]:
        """The requests meeting `conditions`, oldest first (or in `order`)."""
        query = select(approvals).where(*conditions).order_by(*order)
        if limit is not None:
            query = query.limit(limit)
        async with self._reader() as conn:
            result = await conn.execute(query)
            return [APPROVAL_ROWS.from_row(row) for row in result.mappings()]


async def _read(conn: AsyncConnection, approval_id: str) -> ApprovalRequest | None:
    return await by_key(conn, approvals.c.id, approval_id, APPROVAL_ROWS)


async def _decidable(conn: AsyncConnection, approval_id: str, seen_hash: str) -> ApprovalRequest:
    """The request, read under the audit-head lock, if it can still be decided."""
    request = await _read(conn, approval_id)
    if request is None:
        raise UnknownApproval(f"no request {approval_id}")
    if request.state is not ApprovalState.PENDING:
        by = f" by {request.decided_by}" if request.decided_by else ""
        raise ApprovalConflict(f"request {approval_id} is already {request.state.value}{by}")
    if request.details_hash != seen_hash:
        raise ApprovalConflict(f"the details of request {approval_id} are not those shown")
    return request


async def _decide(
    conn: AsyncConnection,
    request: ApprovalRequest,
    seen_hash: str,
    state: ApprovalState,
    *,
    by: str,
    at: datetime,
    note: str | None,
) -> ApprovalRequest:
    """The one conditional UPDATE that decides a pending request; the request decided."""
    result = await conn.execute(
        update(approvals)
        .where(
            approvals.c.id == request.approval_id,
            approvals.c.state == ApprovalState.PENDING.value,
            approvals.c.details_hash == seen_hash,
        )
        .values(state=state.value, decided_by=by, decided_at=at, note=note, updated_at=at)
    )
    if result.rowcount != 1:  # never reached under the lock; the guard stays
        raise ApprovalConflict(f"request {request.approval_id} was decided meanwhile")
    return replace(request, state=state, decided_by=by, decided_at=at, note=note)


async def _move_approval(
    conn: AsyncConnection,
    request: ApprovalRequest,
    state: ApprovalState,
    *,
    by: str,
    at: datetime,
    note: str,
) -> AuditEntry:
    """Move a pending request (read under the audit-head lock); its audit entry."""
    await conn.execute(
        update(approvals)
        .where(approvals.c.id == request.approval_id)
        .values(state=state.value, decided_by=by, decided_at=at, note=note, updated_at=at)
    )
    moved = replace(request, state=state, decided_by=by, decided_at=at, note=note)
    return _approval_entry(moved, f"approval_{state.value}", by, at, {"reason": note})


def _approval_entry(
    request: ApprovalRequest,
    action: str,
    operator: str,
    at: datetime,
    details: Mapping[str, Any],
) -> AuditEntry:
    return AuditEntry(
        at=at,
        operator=operator,
        action=action,
        call_id=request.call_id,
        account_id=request.account_id,
        details={
            **dict(details),
            "approval_id": request.approval_id,
            "kind": request.kind.value,
            "details_hash": request.details_hash,
        },
    )


__all__ = ["ApprovalRequests"]
