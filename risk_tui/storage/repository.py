"""The Store: margin calls, snapshot and audit chains, remarks and daily markers on one engine.

Every write is one transaction. Appends to a chain lock its row in `chain_heads` first
(`SELECT … FOR UPDATE` on PostgreSQL; SQLite's `BEGIN IMMEDIATE` already holds the
database write lock), so concurrent writers queue and seq numbers stay contiguous.
Reads run without the write lock (see `db.READ_ONLY`).

`remark` and `exception` on a call belong to `add_remark`: `commit` writes them when a
call is first inserted and never overwrites them afterwards, so an engine holding an
older copy of a call cannot erase an operator's remark.

Orders and messages (the gateway's outbox) are recorded here before they are sent,
idempotent on their keys; each change of send state commits with its audit entry.
Auto-liquidation plans likewise: recorded `scheduled` with their audit entry, and moved
once, audited, to `executed` or `cancelled`. Four-eyes requests are recorded `pending` and
decided once (see that section); the kill switch is one row, and while it is engaged no
new order is recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Table, bindparam, func, insert, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from risk_tui.core.actions import (
    AutoLiquidationPlan,
    MessageIntent,
    OrderIntent,
    OrderReport,
    SendState,
    can_move,
)
from risk_tui.core.four_eyes import (
    ApprovalRequest,
    ApprovalState,
    KillSwitch,
    details_hash,
)
from risk_tui.core.lifecycle import (
    AuditEntry,
    CallState,
    EndReason,
    LifecycleBatch,
    MarginCall,
    SnapshotRecord,
    SnapshotScenario,
)
from risk_tui.core.margin import RiskLevel
from risk_tui.core.model import AccountKind, Market
from risk_tui.core.records import (
    AutoLiquidationState,
    CallEnds,
    DailyKey,
    EngineBeat,
    HistoryKey,
    OrderStamp,
    StoredAudit,
    StoredAutoLiquidation,
    StoredMessage,
    StoredOrder,
    StoredRemark,
    StoredSnapshot,
    same_message,
    same_order,
    same_plan,
)
from risk_tui.core.roles import Actor
from risk_tui.storage.actions import (
    approval_from_row,
    approval_to_row,
    auto_liquidation_from_row,
    auto_liquidation_to_row,
    kill_switch_from_row,
    message_from_row,
    message_to_row,
    order_from_row,
    order_to_row,
    plan_wire,
)
from risk_tui.storage.chain import audit_fields, hash_text, record_json, snapshot_fields
from risk_tui.storage.db import READ_ONLY
from risk_tui.storage.tables import (
    CHAIN_AUDIT,
    CHAIN_SNAPSHOTS,
    approvals,
    audit_log,
    auto_liquidations,
    calls,
    chain_heads,
    daily_jobs,
    engines,
    feed_cache,
    kill_switch,
    messages,
    orders,
    remarks,
    snapshots,
)
from risk_tui.storage.types import CanonicalText, canonical_json, iso_utc

_Row = TypeVar("_Row")


_IN_CHUNK = 1_000

_UNSETTLED = (SendState.PENDING.value, SendState.IN_DOUBT.value)
_WORKED = ("working", "partially_filled")  # broker statuses of an order still worked
_ORDER_ACTIONS = {
    SendState.PENDING: "order_pending",
    SendState.IN_DOUBT: "order_in_doubt",
    SendState.ACKNOWLEDGED: "order_acknowledged",
    SendState.FAILED: "order_failed",
}
_MESSAGE_ACTIONS = {
    SendState.PENDING: "message_pending",
    SendState.IN_DOUBT: "message_in_doubt",
    SendState.ACKNOWLEDGED: "message_sent",
    SendState.FAILED: "message_failed",
}

# Columns `commit` never overwrites on an existing call (see the module docstring).
_OPERATOR_OWNED = frozenset({"call_id", "remark", "exception", "claimed_by", "claimed_at"})


class StorageError(Exception):
    """A write the store refused; nothing of it was written."""


class UnknownCall(StorageError, LookupError):
    pass


class UnknownOrder(StorageError, LookupError):
    pass


class UnknownMessage(StorageError, LookupError):
    pass


class UnknownAutoLiquidation(StorageError, LookupError):
    pass


class KeyConflict(StorageError):
    """An idempotency key already names a different action: the two are never conflated."""


class CallChanged(StorageError):
    """A lifecycle write of calls someone else changed first (their stored version is not
    the written one minus one): nothing of the write was stored."""

    def __init__(self, call_ids: Iterable[str]) -> None:
        self.call_ids = frozenset(call_ids)
        shown = ", ".join(sorted(self.call_ids)[:3])
        more = f" and {len(self.call_ids) - 3} more" if len(self.call_ids) > 3 else ""
        super().__init__(f"changed meanwhile by another terminal or the engine: {shown}{more}")


class ClaimTaken(StorageError):
    """A claim (or release) the call's current claim does not allow."""


class UnknownApproval(StorageError, LookupError):
    pass


class ApprovalConflict(StorageError):
    """A decision on a request that is no longer pending, or whose details changed."""


class KillSwitchEngaged(StorageError):
    """The desk's kill switch is engaged: no liquidation order may be recorded."""

    def __init__(self, switch: KillSwitch) -> None:
        self.switch = switch
        super().__init__(switch.refusal())


class KillSwitchConflict(StorageError):
    """Engaging an engaged kill switch, or releasing a released one."""


class DailyAlreadyDone(StorageError):
    """A daily job for a call and day is already recorded: the batch would repeat it."""

    def __init__(self, keys: Sequence[DailyKey]) -> None:
        self.keys = list(keys)
        listed = ", ".join(f"{job} {call_id} {day.isoformat()}" for job, call_id, day in keys)
        super().__init__(f"daily job already done: {listed}")


# --- MarginCall <-> row: the one place -----------------------------------------------------


def call_to_row(call: MarginCall, updated_at: datetime) -> dict[str, Any]:
    return {
        "call_id": call.call_id,
        "account_id": call.account_id,
        "client_name": call.client_name,
        "kind": call.kind.value,
        "market": call.market.value,
        "currency": call.currency,
        "state": call.state.value,
        "risk_level": call.risk_level.value,
        "triggered_at": call.triggered_at,
        "trigger_call_amount": call.trigger_call_amount,
        "call_amount": call.call_amount,
        "deadline": call.deadline,
        "deadline_error": call.deadline_error,
        "deadline_reason": call.deadline_reason,
        "notified_at": call.notified_at,
        "notified_call_amount": call.notified_call_amount,
        "force_call_at": call.force_call_at,
        "ended_at": call.ended_at,
        "end_reason": None if call.end_reason is None else call.end_reason.value,
        "end_note": call.end_note,
        "exception": call.exception,
        "remark": call.remark,
        "updated_at": updated_at,
        "version": call.version,
        "claimed_by": call.claimed_by,
        "claimed_at": call.claimed_at,
    }


def call_from_row(row: Mapping[Any, Any]) -> MarginCall:
    end_reason = row["end_reason"]
    return MarginCall(
        call_id=row["call_id"],
        account_id=row["account_id"],
        client_name=row["client_name"],
        kind=AccountKind(row["kind"]),
        market=Market(row["market"]),
        currency=row["currency"],
        state=CallState(row["state"]),
        risk_level=RiskLevel(row["risk_level"]),
        triggered_at=row["triggered_at"],
        trigger_call_amount=Decimal(row["trigger_call_amount"]),
        call_amount=Decimal(row["call_amount"]),
        deadline=row["deadline"],
        deadline_error=row["deadline_error"],
        deadline_reason=row["deadline_reason"],
        notified_at=row["notified_at"],
        notified_call_amount=row["notified_call_amount"],
        force_call_at=row["force_call_at"],
        ended_at=row["ended_at"],
        end_reason=None if end_reason is None else EndReason(end_reason),
        end_note=row["end_note"],
        exception=bool(row["exception"]),
        remark=row["remark"],
        version=row["version"],
        claimed_by=row["claimed_by"],
        claimed_at=row["claimed_at"],
    )


def _snapshot_from_row(row: Mapping[Any, Any]) -> StoredSnapshot:
    return StoredSnapshot(
        seq=row["seq"],
        call_id=row["call_id"],
        account_id=row["account_id"],
        scenario=SnapshotScenario(row["scenario"]),
        taken_at=row["taken_at"],
        feed_as_of=row["feed_as_of"],
        feed_cursor=row["feed_cursor"],
        payload=row["payload"],
        hash=row["hash"],
    )


def _utcnow() -> datetime:
    return datetime.now(UTC)


THREADED_ROWS = 64  # snapshots in one commit from which rows are built in a thread


class Store:
    """Persistence for the lifecycle: one instance per process, over one AsyncEngine."""

    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self._engine = engine
        self._clock = clock

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    # --- writes ----------------------------------------------------------------------------

    async def commit(
        self,
        batch: LifecycleBatch,
        daily: Sequence[DailyKey] = (),
        *,
        skip_changed: bool = False,
    ) -> frozenset[str]:
        """Write a poll's (or an action's) changes in ONE transaction, or nothing at all.

        Calls are inserted or updated by call_id, each only over the version it was made
        from (`MarginCall.version`): a call another process changed first is refused.
        Then `CallChanged` is raised and nothing is written; with `skip_changed` (a poll:
        its other calls must not wait) the refused calls and their snapshots and audit
        entries are left out, the rest is written, and the refused ids are returned.
        Snapshots and audit entries are appended to their chains in order; `daily` marks
        the daily jobs this batch performs (e.g. the daily snapshot), so the marker and
        the snapshot commit together. Raises `DailyAlreadyDone` when one is already marked.
        """
        if not batch and not daily:
            return frozenset()
        now = self._clock()
        async with self._engine.begin() as conn:
            # Chain heads are locked first, snapshots before audit, then call rows in
            # call_id order, in every writer: one lock order for the whole desk, so
            # PostgreSQL writers queue, never deadlock.
            snapshot_head = (
                await self._lock_head(conn, CHAIN_SNAPSHOTS) if batch.snapshots else None
            )
            audit_head = await self._lock_head(conn, CHAIN_AUDIT) if batch.audit else None
            refused = await self._changed_calls(conn, batch.calls) if batch.calls else frozenset()
            if refused:
                if not skip_changed:
                    raise CallChanged(refused)
                batch = _without_calls(batch, refused)
            if batch.calls:
                await self._upsert_calls(conn, batch.calls, now)
            if batch.repriced:
                await self._reprice_calls(conn, batch.repriced, now)
            if snapshot_head is not None and batch.snapshots:
                await self._append_snapshots(conn, snapshot_head, batch.snapshots)
            if audit_head is not None and batch.audit:
                await self._append_audit(conn, audit_head, batch.audit)
            if daily:
                await self._mark_daily(conn, daily, now)
        return refused

    async def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        if not entries:
            return
        async with self._engine.begin() as conn:
            await self._append_audit(conn, await self._lock_head(conn, CHAIN_AUDIT), entries)

    async def add_remark(
        self, call_id: str, operator: str, text: str, exception: bool, at: datetime
    ) -> None:
        """Set a call's remark and exception flag, keep the history, audit it: one transaction."""
        async with self._engine.begin() as conn:
            audit_head = await self._lock_head(conn, CHAIN_AUDIT)
            account_id = (
                await conn.execute(select(calls.c.account_id).where(calls.c.call_id == call_id))
            ).scalar_one_or_none()
            if account_id is None:
                raise UnknownCall(f"no margin call {call_id}")
            await conn.execute(
                update(calls)
                .where(calls.c.call_id == call_id)
                .values(remark=text, exception=exception, updated_at=self._clock())
            )
            await conn.execute(
                insert(remarks).values(
                    call_id=call_id, at=at, operator=operator, text=text, exception=exception
                )
            )
            entry = AuditEntry(
                at=at,
                operator=operator,
                action="remark",
                call_id=call_id,
                account_id=account_id,
                details={"text": text, "exception": exception},
            )
            await self._append_audit(conn, audit_head, [entry])

    async def set_claim(
        self, call_id: str, operator: str, at: datetime, *, claim: bool, over: str | None = None
    ) -> MarginCall:
        """Claim an open call for `operator` ("I'm on it"), or give their claim up; audited.

        One operator at a time: claiming a call someone else holds raises `ClaimTaken`
        (one UPDATE decides, so two terminals claiming at once cannot both win). `over`
        names the holder a supervisor takes the claim from (or releases), said in the
        audit entry; the caller checks the role.
        """
        holder = calls.c.claimed_by
        mine = holder == operator
        allowed = (holder.is_(None) | mine) if over is None else (holder == over)
        if not claim and over is None:
            allowed = mine
        async with self._engine.begin() as conn:
            audit_head = await self._lock_head(conn, CHAIN_AUDIT)
            done = await conn.execute(
                update(calls)
                .where(calls.c.call_id == call_id, calls.c.state != "ended", allowed)
                .values(
                    claimed_by=operator if claim else None,
                    claimed_at=at if claim else None,
                    updated_at=self._clock(),
                )
                .returning(*calls.columns)
            )
            row = done.mappings().one_or_none()
            if row is None:
                current = await self._call(conn, call_id)
                if current is None:
                    raise UnknownCall(f"no margin call {call_id}")
                if not current.is_open:
                    raise ClaimTaken(f"call {call_id} has ended")
                if current.claimed_by is None:
                    raise ClaimTaken(f"call {call_id} is not claimed")
                raise ClaimTaken(
                    f"call {call_id} is claimed by {current.claimed_by}"
                    + ("" if over is None else f", not {over}")
                )
            stored = call_from_row(row)
            entry = AuditEntry(
                at=at,
                operator=operator,
                action="call_claimed" if claim else "call_released",
                call_id=call_id,
                account_id=stored.account_id,
                details={} if over is None else {"taken_from": over},
            )
            await self._append_audit(conn, audit_head, [entry])
        return stored

    async def calls_by_id(self, call_ids: Iterable[str]) -> list[MarginCall]:
        """These calls as stored (open or ended; unknown ids are left out)."""
        ids = sorted(set(call_ids))
        found: list[MarginCall] = []
        async with self._reader() as conn:
            for start in range(0, len(ids), _IN_CHUNK):
                query = select(calls).where(calls.c.call_id.in_(ids[start : start + _IN_CHUNK]))
                found.extend(call_from_row(row) for row in (await conn.execute(query)).mappings())
        return found

    async def beat_engine(
        self, engine_id: str, desk: str, *, host: str, pid: int, role: str, polled: bool
    ) -> None:
        """An engine process says it is alive (and, with `polled`, that it just polled),
        on the database server's clock: terminals compare it with the same clock."""
        values: dict[str, Any] = {
            "desk": desk,
            "host": host,
            "pid": pid,
            "role": role,
            "beat_at": func.now(),
        }
        if polled:
            values["polled_at"] = func.now()
        async with self._engine.begin() as conn:
            _require_postgresql(conn, "engine heartbeats")
            stmt = _insert_for(conn, engines).values(
                engine_id=engine_id, started_at=func.now(), **values
            )
            await conn.execute(
                stmt.on_conflict_do_update(index_elements=[engines.c.engine_id], set_=values)
            )

    async def desk_engines(self, desk: str) -> list[EngineBeat]:
        """The desk's engine processes, latest heartbeat first, with each heartbeat's age
        (and the last poll's) in seconds on the database server's clock."""
        now = func.now()
        async with self._reader() as conn:
            _require_postgresql(conn, "engine heartbeats")
            rows = await conn.execute(
                select(engines, now.label("server_now"))
                .where(engines.c.desk == desk)
                .order_by(engines.c.beat_at.desc())
            )
            return [
                EngineBeat(
                    engine_id=row.engine_id,
                    host=row.host,
                    pid=row.pid,
                    role=row.role,
                    started_at=row.started_at,
                    beat_age=(row.server_now - row.beat_at).total_seconds(),
                    poll_age=(
                        None
                        if row.polled_at is None
                        else (row.server_now - row.polled_at).total_seconds()
                    ),
                )
                for row in rows
            ]

    async def mark_daily(self, keys: Sequence[DailyKey]) -> None:
        """Record daily jobs done outside `commit` (e.g. a reminder message went out)."""
        if not keys:
            return
        async with self._engine.begin() as conn:
            await self._mark_daily(conn, keys, self._clock())

    async def put_cache(self, key: str, value: str) -> None:
        now = self._clock()
        async with self._engine.begin() as conn:
            stmt = _insert_for(conn, feed_cache).values(key=key, value=value, updated_at=now)
            await conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[feed_cache.c.key],
                    set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
                )
            )

    # --- reads -----------------------------------------------------------------------------

    async def open_calls(self) -> dict[str, MarginCall]:
        """Every open call, keyed by account_id (the database allows one per account)."""
        async with self._reader() as conn:
            result = await conn.execute(select(calls).where(calls.c.state != CallState.ENDED.value))
            return {row["account_id"]: call_from_row(row) for row in result.mappings()}

    async def get_call(self, call_id: str) -> MarginCall | None:
        async with self._reader() as conn:
            return await self._call(conn, call_id)

    async def ended_calls(self, limit: int = 100, offset: int = 0) -> list[MarginCall]:
        """A page of history, the most recently ended first."""
        async with self._reader() as conn:
            result = await conn.execute(
                select(calls)
                .where(calls.c.state == CallState.ENDED.value)
                .order_by(calls.c.ended_at.desc(), calls.c.call_id.desc())
                .limit(limit)
                .offset(offset)
            )
            return [call_from_row(row) for row in result.mappings()]

    async def count_ended_calls(self) -> int:
        async with self._reader() as conn:
            query = (
                select(func.count())
                .select_from(calls)
                .where(calls.c.state == CallState.ENDED.value)
            )
            return int((await conn.execute(query)).scalar_one())

    # --- history: ended calls, paged by key (the History tab) ------------------------------

    async def history_page(
        self,
        limit: int,
        *,
        before: HistoryKey | None = None,
        since: datetime | None = None,
        needle: str | None = None,
    ) -> list[MarginCall]:
        """Up to `limit` ended calls, newest first (ended_at desc, then call_id desc).

        Keyset paging, so a page deep in a long history costs what the first one does:
        `before` gives the (ended_at, call_id) of the last row already shown and returns
        the calls after it; `since` keeps only calls ended at or after that instant (the
        top of the list, re-read when calls end); `needle` keeps calls whose account,
        client name or call id contains it (case-insensitive for ASCII on SQLite).
        """
        conditions = [calls.c.state == CallState.ENDED.value, *_history_match(needle)]
        if before is not None:
            ended_at, call_id = before
            conditions.append(calls.c.ended_at <= ended_at)
            conditions.append(or_(calls.c.ended_at < ended_at, calls.c.call_id < call_id))
        if since is not None:
            conditions.append(calls.c.ended_at >= since)
        async with self._reader() as conn:
            result = await conn.execute(
                select(calls)
                .where(*conditions)
                .order_by(calls.c.ended_at.desc(), calls.c.call_id.desc())
                .limit(limit)
            )
            return [call_from_row(row) for row in result.mappings()]

    async def count_history(self, needle: str | None = None) -> int:
        """How many ended calls `history_page` would page through with this `needle`."""
        async with self._reader() as conn:
            query = (
                select(func.count())
                .select_from(calls)
                .where(calls.c.state == CallState.ENDED.value, *_history_match(needle))
            )
            return int((await conn.execute(query)).scalar_one())

    async def end_snapshots(self, call_ids: Sequence[str]) -> dict[str, CallEnds]:
        """For each call, its first trigger and its last end snapshot: one query per
        1,000 calls, whatever the number of snapshots in between."""
        wanted = list(dict.fromkeys(call_ids))
        found: dict[str, CallEnds] = {call_id: CallEnds(None, None) for call_id in wanted}
        scenarios = (SnapshotScenario.TRIGGER.value, SnapshotScenario.END.value)
        async with self._reader() as conn:
            for start in range(0, len(wanted), _IN_CHUNK):  # SQLite caps bound parameters
                result = await conn.execute(
                    select(snapshots)
                    .where(
                        snapshots.c.call_id.in_(wanted[start : start + _IN_CHUNK]),
                        snapshots.c.scenario.in_(scenarios),
                    )
                    .order_by(snapshots.c.seq)
                )
                for row in result.mappings():
                    snap = _snapshot_from_row(row)
                    ends = found[snap.call_id]
                    if snap.scenario is SnapshotScenario.END:
                        found[snap.call_id] = replace(ends, end=snap)  # the last one wins
                    elif ends.trigger is None:
                        found[snap.call_id] = replace(ends, trigger=snap)
        return found

    async def snapshots_for(self, call_id: str) -> list[StoredSnapshot]:
        """Every snapshot of a call, in the order taken (trigger first, end last)."""
        async with self._reader() as conn:
            result = await conn.execute(
                select(snapshots).where(snapshots.c.call_id == call_id).order_by(snapshots.c.seq)
            )
            return [_snapshot_from_row(row) for row in result.mappings()]

    async def remarks_for(self, call_id: str) -> list[StoredRemark]:
        """The remark and exception-flag history of a call, oldest first."""
        async with self._reader() as conn:
            result = await conn.execute(
                select(remarks).where(remarks.c.call_id == call_id).order_by(remarks.c.id)
            )
            return [StoredRemark(**row) for row in result.mappings()]

    async def audit_for(self, call_id: str) -> list[StoredAudit]:
        """The audit entries about a call, oldest first (the details timeline)."""
        async with self._reader() as conn:
            result = await conn.execute(
                select(
                    audit_log.c.seq,
                    audit_log.c.at,
                    audit_log.c.operator,
                    audit_log.c.action,
                    audit_log.c.call_id,
                    audit_log.c.account_id,
                    audit_log.c.details,
                    audit_log.c.hash,
                )
                .where(audit_log.c.call_id == call_id)
                .order_by(audit_log.c.seq)
            )
            return [StoredAudit(**row) for row in result.mappings()]

    async def daily_done(self, job: str, call_id: str, day: date) -> bool:
        async with self._reader() as conn:
            row = (
                await conn.execute(
                    select(daily_jobs.c.job).where(
                        daily_jobs.c.job == job,
                        daily_jobs.c.call_id == call_id,
                        daily_jobs.c.day == day,
                    )
                )
            ).first()
        return row is not None

    async def last_daily(self, job: str) -> dict[str, date]:
        """The latest day `job` was done for each open call (for `daily_snapshot_due`)."""
        async with self._reader() as conn:
            result = await conn.execute(
                select(daily_jobs.c.call_id, func.max(daily_jobs.c.day).label("day"))
                .join(calls, calls.c.call_id == daily_jobs.c.call_id)
                .where(daily_jobs.c.job == job, calls.c.state != CallState.ENDED.value)
                .group_by(daily_jobs.c.call_id)
            )
            return {row.call_id: _as_date(row.day) for row in result}

    async def get_cache(self, key: str) -> str | None:
        async with self._reader() as conn:
            return (
                await conn.execute(select(feed_cache.c.value).where(feed_cache.c.key == key))
            ).scalar_one_or_none()

    async def chain_head(self, chain: str) -> tuple[int, str]:
        """(seq, hash) of the last record of `chain` ("snapshots" or "audit")."""
        async with self._reader() as conn:
            row = (
                await conn.execute(
                    select(chain_heads.c.seq, chain_heads.c.hash).where(chain_heads.c.name == chain)
                )
            ).one()
        return int(row.seq), str(row.hash)

    # --- orders and messages: the gateway's outbox ------------------------------------------
    #
    # An action is written (send_state `pending`) before it is sent, and each change of its
    # send state commits together with its audit entry. Every method here locks the audit
    # head first, as every audit writer does; that also queues two writers of the same key,
    # so the second one finds the first one's row instead of failing on the primary key.

    async def record_order_intent(
        self,
        intent: OrderIntent,
        account_state: Mapping[str, Any],
        actor: Actor,
        override_reason: str | None = None,
        *,
        at: datetime | None = None,
    ) -> tuple[StoredOrder, bool]:
        """Record an order before it is sent; (row, created).

        Idempotent on `client_order_id`: a key already recorded returns its row and
        `created=False` (a double key press is one order), or raises `KeyConflict` when
        the key names a different order. `account_state` (JSON-ready) is what the operator
        decided on; it goes into the row and the audit entry. `override_reason` is given
        only when the order goes out on an override of "not in call"; it is audited as
        its own entry. Raises `UnknownCall` when `intent.reference` names no stored call.
        """
        at = at or self._clock()
        async with self._engine.begin() as conn:
            head = await self._lock_head(conn, CHAIN_AUDIT)
            existing = await self._order(conn, intent.client_order_id)
            if existing is not None:
                if not same_order(existing, intent):
                    raise KeyConflict(
                        f"client_order_id {intent.client_order_id} already names another order"
                    )
                return existing, False
            # Read under the audit-head lock that engaging the switch takes too: an order
            # is either recorded before the switch (and its sweep cancels it) or refused.
            switch = await self._kill_switch(conn)
            if switch.engaged:
                raise KillSwitchEngaged(switch)
            await self._require_call(conn, intent.reference)
            row = order_to_row(intent, account_state, at)
            await conn.execute(insert(orders).values(**row))
            entries = [
                AuditEntry(
                    at=at,
                    operator=actor.name,
                    action="order_created",
                    call_id=intent.reference,
                    account_id=intent.account_id,
                    details={
                        "order": intent.wire(),
                        "role": actor.role.value,
                        "account_state": dict(account_state),
                    },
                )
            ]
            if override_reason is not None and override_reason.strip():
                entries.append(
                    AuditEntry(
                        at=at,
                        operator=actor.name,
                        action="order_override",
                        call_id=intent.reference,
                        account_id=intent.account_id,
                        details={
                            "client_order_id": intent.client_order_id,
                            "override": "not_in_call",
                            "reason": override_reason,
                            "role": actor.role.value,
                        },
                    )
                )
            await self._append_audit(conn, head, entries)
        return order_from_row(row), True

    async def mark_order(
        self,
        client_order_id: str,
        send_state: SendState,
        *,
        status: str | None = None,
        order_id: str | None = None,
        filled_quantity: Decimal | None = None,
        avg_price: Decimal | None = None,
        reject_reason: str | None = None,
        detail: str | None = None,
        operator: str | None = None,
        at: datetime | None = None,
    ) -> StoredOrder:
        """Move an order to `send_state`, setting the fields given; the row as it now stands.

        A move `SendState` forbids (acknowledged back to in_doubt, say, from a concurrent
        retry that timed out) changes nothing: the returned row shows the state that holds.
        A change of send state, each in-doubt attempt, and a change of broker status or
        fills after acknowledgement are audited (`detail`, e.g. the error, goes with it),
        under `operator` or else the order's own operator.
        """
        at = at or self._clock()
        changes = {
            "status": status,
            "order_id": order_id,
            "filled_quantity": filled_quantity,
            "avg_price": avg_price,
            "reject_reason": reject_reason,
        }
        async with self._engine.begin() as conn:
            head = await self._lock_head(conn, CHAIN_AUDIT)
            current = await self._order(conn, client_order_id)
            if current is None:
                raise UnknownOrder(f"no order {client_order_id}")
            stored, entry = await self._move_order(
                conn, current, send_state, changes, detail=detail, operator=operator, at=at
            )
            if entry is not None:
                await self._append_audit(conn, head, [entry])
        return stored

    async def apply_order_reports(
        self, reports: Sequence[OrderReport], *, at: datetime | None = None
    ) -> list[StoredOrder]:
        """The broker's word on many orders, in one transaction; the rows that changed.

        Each report acknowledges its order (an in-doubt one is thereby reconciled) and
        sets status and fills. Reports of orders this desk did not record are ignored.
        """
        at = at or self._clock()
        by_key = {report.client_order_id: report for report in reports}
        changed: list[StoredOrder] = []
        if not by_key:
            return changed
        async with self._engine.begin() as conn:
            head = await self._lock_head(conn, CHAIN_AUDIT)
            keys = sorted(by_key)
            current: list[StoredOrder] = []
            for start in range(0, len(keys), _IN_CHUNK):  # SQLite caps bound parameters
                result = await conn.execute(
                    select(orders).where(
                        orders.c.client_order_id.in_(keys[start : start + _IN_CHUNK])
                    )
                )
                current.extend(order_from_row(row) for row in result.mappings())
            entries: list[AuditEntry] = []
            for order in sorted(current, key=lambda o: o.client_order_id):
                report = by_key[order.client_order_id]
                stored, entry = await self._move_order(
                    conn,
                    order,
                    SendState.ACKNOWLEDGED,
                    _report_changes(report),
                    detail="status query",
                    operator=None,
                    at=at,
                )
                if entry is not None:
                    entries.append(entry)
                    changed.append(stored)
            if entries:
                await self._append_audit(conn, head, entries)
        return changed

    async def record_cancel_request(
        self, client_order_id: str, actor: Actor, *, at: datetime | None = None
    ) -> StoredOrder:
        """Audit that `actor` asked the broker to cancel an order (before the request goes)."""
        at = at or self._clock()
        async with self._engine.begin() as conn:
            head = await self._lock_head(conn, CHAIN_AUDIT)
            order = await self._order(conn, client_order_id)
            if order is None:
                raise UnknownOrder(f"no order {client_order_id}")
            entry = AuditEntry(
                at=at,
                operator=actor.name,
                action="order_cancel_requested",
                call_id=order.call_id,
                account_id=order.account_id,
                details={
                    "client_order_id": client_order_id,
                    "order_id": order.order_id,
                    "status": order.status,
                    "send_state": order.send_state.value,
                    "role": actor.role.value,
                },
            )
            await self._append_audit(conn, head, [entry])
        return order

    async def get_order(self, client_order_id: str) -> StoredOrder | None:
        async with self._reader() as conn:
            return await self._order(conn, client_order_id)

    async def list_orders(
        self,
        account_id: str | None = None,
        call_id: str | None = None,
        *,
        limit: int = 100,
        offset: int = 0,
    ) -> list[StoredOrder]:
        """A page of orders, newest first, optionally of one account or one call."""
        query = select(orders)
        if account_id is not None:
            query = query.where(orders.c.account_id == account_id)
        if call_id is not None:
            query = query.where(orders.c.call_id == call_id)
        query = query.order_by(orders.c.created_at.desc(), orders.c.client_order_id.desc())
        async with self._reader() as conn:
            result = await conn.execute(query.limit(limit).offset(offset))
            return [order_from_row(row) for row in result.mappings()]

    async def calls_with_fills(self) -> set[str]:
        """Calls on which a desk liquidation order has filled (wholly or partly)."""
        # Compared in Python: on SQLite the exact decimal is TEXT, which SQL would
        # compare with a number by type, not by value.
        query = select(orders.c.call_id, orders.c.filled_quantity).where(
            orders.c.call_id.is_not(None)
        )
        async with self._reader() as conn:
            return {call_id for call_id, filled in await conn.execute(query) if filled > 0}

    async def working_orders(self) -> list[StoredOrder]:
        """Acknowledged orders the broker still works: their fills are still to come."""
        async with self._reader() as conn:
            result = await conn.execute(
                select(orders).where(
                    orders.c.send_state == SendState.ACKNOWLEDGED.value,
                    orders.c.status.in_(("working", "partially_filled")),
                )
            )
            return [order_from_row(row) for row in result.mappings()]

    async def order_window(
        self, limit: int = 200, *, also: Sequence[str] = (), scan: bool = True
    ) -> list[OrderStamp]:
        """The latest `limit` orders and the unfinished ones, newest first, as stamps.

        Unfinished: pending or in doubt, or acknowledged and still working. With `scan`
        every unfinished order is included, which reads the whole table (no index
        covers the states); without it only those of `also` (keys the caller already
        knows unfinished, looked up by key) that still are. Reads no account state.
        """
        columns = select(
            orders.c.client_order_id,
            orders.c.created_at,
            orders.c.send_state,
            orders.c.order_id,
            orders.c.status,
            orders.c.filled_quantity,
            orders.c.avg_price,
            orders.c.reject_reason,
            orders.c.updated_at,
        )
        latest = columns.order_by(
            orders.c.created_at.desc(), orders.c.client_order_id.desc()
        ).limit(max(0, limit))
        worked = (orders.c.send_state == SendState.ACKNOWLEDGED.value) & orders.c.status.in_(
            _WORKED
        )
        still = orders.c.send_state.in_(_UNSETTLED) | worked
        queries = [latest]
        if scan:
            queries.append(columns.where(still))
        else:
            known = sorted(set(also))
            queries.extend(
                columns.where(orders.c.client_order_id.in_(known[start : start + _IN_CHUNK]), still)
                for start in range(0, len(known), _IN_CHUNK)
            )
        stamps: dict[str, OrderStamp] = {}
        async with self._reader() as conn:
            for query in queries:
                for row in (await conn.execute(query)).mappings():
                    stamps[row["client_order_id"]] = OrderStamp(
                        client_order_id=row["client_order_id"],
                        created_at=row["created_at"],
                        send_state=SendState(row["send_state"]),
                        order_id=row["order_id"],
                        status=row["status"],
                        filled_quantity=Decimal(row["filled_quantity"]),
                        avg_price=row["avg_price"],
                        reject_reason=row["reject_reason"],
                        updated_at=row["updated_at"],
                    )
        return sorted(
            stamps.values(), key=lambda s: (s.created_at, s.client_order_id), reverse=True
        )

    async def orders_by_key(self, keys: Sequence[str]) -> list[StoredOrder]:
        """The orders named by `keys` (unknown keys are left out), in no particular order."""
        found: list[StoredOrder] = []
        wanted = sorted(set(keys))
        async with self._reader() as conn:
            for start in range(0, len(wanted), _IN_CHUNK):  # SQLite caps bound parameters
                result = await conn.execute(
                    select(orders).where(
                        orders.c.client_order_id.in_(wanted[start : start + _IN_CHUNK])
                    )
                )
                found.extend(order_from_row(row) for row in result.mappings())
        return found

    async def orders_needing_send(self) -> list[StoredOrder]:
        """Orders pending or in doubt (to re-send with their key or reconcile), oldest first."""
        async with self._reader() as conn:
            result = await conn.execute(
                select(orders)
                .where(orders.c.send_state.in_(_UNSETTLED))
                .order_by(orders.c.created_at, orders.c.client_order_id)
            )
            return [order_from_row(row) for row in result.mappings()]

    async def record_message_intent(
        self,
        intent: MessageIntent,
        account_state: Mapping[str, Any],
        actor: Actor,
        *,
        at: datetime | None = None,
    ) -> tuple[StoredMessage, bool]:
        """Record a message before it is sent; (row, created). Idempotent on `message_id`.

        The messages table has no column for the account state, so it is kept in the
        audit entry (which is where compliance reads it anyway).
        """
        at = at or self._clock()
        async with self._engine.begin() as conn:
            head = await self._lock_head(conn, CHAIN_AUDIT)
            existing = await self._message(conn, intent.message_id)
            if existing is not None:
                if not same_message(existing, intent):
                    raise KeyConflict(f"message_id {intent.message_id} already names another")
                return existing, False
            await self._require_call(conn, intent.reference)
            row = message_to_row(intent, at)
            await conn.execute(insert(messages).values(**row))
            entry = AuditEntry(
                at=at,
                operator=actor.name,
                action="message_created",
                call_id=intent.reference,
                account_id=intent.account_id,
                details={
                    "message": intent.wire(),
                    "role": actor.role.value,
                    "account_state": dict(account_state),
                },
            )
            await self._append_audit(conn, head, [entry])
        return message_from_row(row), True

    async def mark_message(
        self,
        message_id: str,
        send_state: SendState,
        *,
        status: str | None = None,
        detail: str | None = None,
        operator: str | None = None,
        at: datetime | None = None,
    ) -> StoredMessage:
        """Move a message to `send_state` (same rules and audit as `mark_order`)."""
        at = at or self._clock()
        async with self._engine.begin() as conn:
            head = await self._lock_head(conn, CHAIN_AUDIT)
            current = await self._message(conn, message_id)
            if current is None:
                raise UnknownMessage(f"no message {message_id}")
            if not can_move(current.send_state, send_state):
                return current
            state_changed = send_state is not current.send_state
            status_changed = status is not None and status != current.status
            if not (state_changed or status_changed or send_state is SendState.IN_DOUBT):
                return current
            values: dict[str, Any] = {"send_state": send_state.value, "updated_at": at}
            if status_changed:
                values["status"] = status
            await conn.execute(
                update(messages).where(messages.c.message_id == message_id).values(**values)
            )
            stored = replace(
                current,
                send_state=send_state,
                status=status if status_changed else current.status,
                updated_at=at,
            )
            action = (
                _MESSAGE_ACTIONS[send_state]
                if state_changed or send_state is SendState.IN_DOUBT
                else "message_status"
            )
            entry = AuditEntry(
                at=at,
                operator=operator or current.operator,
                action=action,
                call_id=current.call_id,
                account_id=current.account_id,
                details={
                    "message_id": message_id,
                    "send_state": send_state.value,
                    "status": stored.status,
                    "detail": detail,
                },
            )
            await self._append_audit(conn, head, [entry])
        return stored

    async def get_message(self, message_id: str) -> StoredMessage | None:
        async with self._reader() as conn:
            return await self._message(conn, message_id)

    async def list_messages(
        self,
        account_id: str | None = None,
        call_id: str | None = None,
        *,
        limit: int = 100,
        offset: int = 0,
    ) -> list[StoredMessage]:
        """A page of messages, newest first, optionally of one account or one call."""
        query = select(messages)
        if account_id is not None:
            query = query.where(messages.c.account_id == account_id)
        if call_id is not None:
            query = query.where(messages.c.call_id == call_id)
        query = query.order_by(messages.c.created_at.desc(), messages.c.message_id.desc())
        async with self._reader() as conn:
            result = await conn.execute(query.limit(limit).offset(offset))
            return [message_from_row(row) for row in result.mappings()]

    async def messages_needing_send(self) -> list[StoredMessage]:
        """Messages pending or in doubt, oldest first."""
        async with self._reader() as conn:
            result = await conn.execute(
                select(messages)
                .where(messages.c.send_state.in_(_UNSETTLED))
                .order_by(messages.c.created_at, messages.c.message_id)
            )
            return [message_from_row(row) for row in result.mappings()]

    # --- auto-liquidation plans --------------------------------------------------------------
    #
    # A plan is written `scheduled` with its audit entry and leaves that state once, to
    # `executed` or `cancelled`, with its own. Every writer locks the audit head first, as
    # everywhere: that also queues two schedulers (two processes of one desk) racing for
    # one plan, so the second finds it already moved and writes nothing.

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
        async with self._engine.begin() as conn:
            # One lock order for every writer: snapshots before audit (see `commit`).
            snapshot_head = (
                await self._lock_head(conn, CHAIN_SNAPSHOTS) if extra.snapshots else None
            )
            audit_head = await self._lock_head(conn, CHAIN_AUDIT)
            existing = await self._auto_liquidation(conn, plan.plan_id)
            if existing is not None:
                if not same_plan(existing, plan):
                    raise KeyConflict(f"plan_id {plan.plan_id} already names another plan")
                return existing, False
            await self._require_call(conn, plan.call_id)
            if extra.calls:
                changed = await self._changed_calls(conn, extra.calls)
                if changed:
                    raise CallChanged(changed)
                await self._upsert_calls(conn, extra.calls, self._clock())
            if snapshot_head is not None:
                await self._append_snapshots(conn, snapshot_head, extra.snapshots)
            await conn.execute(
                insert(auto_liquidations).values(**auto_liquidation_to_row(plan, at))
            )
            entry = AuditEntry(
                at=at,
                operator=plan.operator,
                action="auto_liquidation_scheduled",
                call_id=plan.call_id,
                account_id=plan.account_id,
                details={**dict(details or {}), "plan": plan_wire(plan)},
            )
            await self._append_audit(conn, audit_head, [entry, *extra.audit])
            stored = await self._auto_liquidation(conn, plan.plan_id)
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
        async with self._engine.begin() as conn:
            head = await self._lock_head(conn, CHAIN_AUDIT)
            current = await self._auto_liquidation(conn, plan_id)
            if current is None:
                raise UnknownAutoLiquidation(f"no auto-liquidation {plan_id}")
            if current.state is not AutoLiquidationState.SCHEDULED:
                return current
            (moved,) = await self._move_plans(
                conn,
                head,
                [current],
                state,
                detail=detail,
                operator=operator,
                at=at,
                details=details,
            )
        return moved

    async def get_auto_liquidation(self, plan_id: str) -> StoredAutoLiquidation | None:
        async with self._reader() as conn:
            return await self._auto_liquidation(conn, plan_id)

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
            return [auto_liquidation_from_row(row) for row in result.mappings()]

    async def _plans_where(self, *conditions: Any) -> list[StoredAutoLiquidation]:
        async with self._reader() as conn:
            result = await conn.execute(
                select(auto_liquidations)
                .where(*conditions)
                .order_by(auto_liquidations.c.execute_at, auto_liquidations.c.id)
            )
            return [auto_liquidation_from_row(row) for row in result.mappings()]

    async def _auto_liquidation(
        self, conn: AsyncConnection, plan_id: str
    ) -> StoredAutoLiquidation | None:
        return await _by_key(conn, auto_liquidations.c.id, plan_id, auto_liquidation_from_row)

    async def _move_plans(
        self,
        conn: AsyncConnection,
        head: tuple[int, str],
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
            await conn.execute(
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
        await self._append_audit(conn, head, entries)
        return moved

    async def _call(self, conn: AsyncConnection, call_id: str) -> MarginCall | None:
        return await _by_key(conn, calls.c.call_id, call_id, call_from_row)

    # --- four-eyes approvals and the kill switch ---------------------------------------------
    #
    # A request is written `pending` with its audit entry. A decision is one conditional
    # UPDATE (`WHERE state = 'pending' AND details_hash = <the hash the decider saw>`),
    # made under the audit-head lock every writer takes first: two approvers (two
    # terminals, two processes) queue, the second finds the request decided, and its
    # UPDATE, should it get that far, matches no row. Either way it writes nothing and
    # gets `ApprovalConflict`. A deadline move or close is executed in the approving
    # transaction itself (`execute`); an order or plan is sent after it, and the request
    # then moves once more, to `executed` or `failed` (`finish_request`).

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
        async with self._engine.begin() as conn:
            head = await self._lock_head(conn, CHAIN_AUDIT)
            if await self._approval(conn, request.approval_id) is not None:
                raise KeyConflict(f"approval id {request.approval_id} is already used")
            await self._require_call(conn, request.call_id)
            entries: list[AuditEntry] = []
            if request.replaces is not None:
                old = await self._approval(conn, request.replaces)
                if old is None:
                    raise UnknownApproval(f"no request {request.replaces}")
                if old.state is not ApprovalState.PENDING:
                    raise ApprovalConflict(
                        f"request {old.approval_id} is already {old.state.value}: "
                        "only a pending request can be edited"
                    )
                voided = await self._move_approval(
                    conn,
                    old,
                    ApprovalState.VOIDED,
                    by=request.requested_by,
                    at=at,
                    note=f"edited: replaced by {request.approval_id}",
                )
                entries.append(voided)
            await conn.execute(insert(approvals).values(**approval_to_row(request)))
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
            await self._append_audit(conn, head, entries)
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
        async with self._engine.begin() as conn:
            # One lock order for every writer: snapshots before audit (see `commit`).
            snapshot_head = (
                await self._lock_head(conn, CHAIN_SNAPSHOTS) if batch.snapshots else None
            )
            audit_head = await self._lock_head(conn, CHAIN_AUDIT)
            request = await self._decidable(conn, approval_id, seen_hash)
            if batch.calls:  # the call as the approver's desk holds it: still the stored one?
                changed = await self._changed_calls(conn, batch.calls)
                if changed:
                    raise CallChanged(changed)
            state = ApprovalState.EXECUTED if execute is not None else ApprovalState.APPROVED
            result = await conn.execute(
                update(approvals)
                .where(
                    approvals.c.id == approval_id,
                    approvals.c.state == ApprovalState.PENDING.value,
                    approvals.c.details_hash == seen_hash,
                )
                .values(
                    state=state.value,
                    decided_by=approver.name,
                    decided_at=at,
                    note=note if execute is not None else None,
                    updated_at=at,
                )
            )
            if result.rowcount != 1:  # never reached under the lock; the guard stays
                raise ApprovalConflict(f"request {approval_id} was decided meanwhile")
            decided = replace(
                request,
                state=state,
                decided_by=approver.name,
                decided_at=at,
                note=note if execute is not None else None,
            )
            entries = [
                self._approval_entry(
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
                    self._approval_entry(
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
                await self._upsert_calls(conn, batch.calls, self._clock())
            if snapshot_head is not None:
                await self._append_snapshots(conn, snapshot_head, batch.snapshots)
            await self._append_audit(conn, audit_head, entries)
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
        async with self._engine.begin() as conn:
            head = await self._lock_head(conn, CHAIN_AUDIT)
            current = await self._approval(conn, approval_id)
            if current is None:
                raise UnknownApproval(f"no request {approval_id}")
            if current.state is not ApprovalState.APPROVED:
                return current
            await conn.execute(
                update(approvals)
                .where(approvals.c.id == approval_id)
                .values(state=state.value, note=note, updated_at=at)
            )
            finished = replace(current, state=state, note=note)
            entry = self._approval_entry(
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
            await self._append_audit(conn, head, [entry])
        return finished

    async def reject_request(
        self, approval_id: str, seen_hash: str, actor: Actor, note: str, *, at: datetime
    ) -> ApprovalRequest:
        """Reject (or, by its requester, withdraw) a pending request, with a reason, audited.

        Raises `ApprovalConflict` when it is not pending or its hash is not `seen_hash`.
        """
        async with self._engine.begin() as conn:
            head = await self._lock_head(conn, CHAIN_AUDIT)
            request = await self._decidable(conn, approval_id, seen_hash)
            result = await conn.execute(
                update(approvals)
                .where(
                    approvals.c.id == approval_id,
                    approvals.c.state == ApprovalState.PENDING.value,
                    approvals.c.details_hash == seen_hash,
                )
                .values(
                    state=ApprovalState.REJECTED.value,
                    decided_by=actor.name,
                    decided_at=at,
                    note=note,
                    updated_at=at,
                )
            )
            if result.rowcount != 1:
                raise ApprovalConflict(f"request {approval_id} was decided meanwhile")
            rejected = replace(
                request,
                state=ApprovalState.REJECTED,
                decided_by=actor.name,
                decided_at=at,
                note=note,
            )
            entry = self._approval_entry(
                rejected,
                "approval_rejected",
                actor.name,
                at,
                {"role": actor.role.value, "requested_by": request.requested_by, "reason": note},
            )
            await self._append_audit(conn, head, [entry])
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
        async with self._engine.begin() as conn:
            head = await self._lock_head(conn, CHAIN_AUDIT)
            chosen = []
            if approval_ids:
                chosen.append(approvals.c.id.in_(sorted(set(approval_ids))))
            if call_ids:
                chosen.append(approvals.c.call_id.in_(sorted(set(call_ids))))
            result = await conn.execute(
                select(approvals)
                .where(approvals.c.state == ApprovalState.PENDING.value, or_(*chosen))
                .order_by(approvals.c.requested_at, approvals.c.id)
            )
            pending = [approval_from_row(row) for row in result.mappings()]
            entries = [
                await self._move_approval(
                    conn, request, ApprovalState.VOIDED, by=operator, at=at, note=reason
                )
                for request in pending
            ]
            if entries:
                await self._append_audit(conn, head, entries)
        return [
            replace(r, state=ApprovalState.VOIDED, decided_by=operator, decided_at=at, note=reason)
            for r in pending
        ]

    async def get_approval(self, approval_id: str) -> ApprovalRequest | None:
        async with self._reader() as conn:
            return await self._approval(conn, approval_id)

    async def approvals_in(
        self, states: Sequence[ApprovalState], *, limit: int = 500
    ) -> list[ApprovalRequest]:
        """Requests in any of `states`, oldest first (the approvals tab: pending ones)."""
        async with self._reader() as conn:
            result = await conn.execute(
                select(approvals)
                .where(approvals.c.state.in_([state.value for state in states]))
                .order_by(approvals.c.requested_at, approvals.c.id)
                .limit(limit)
            )
            return [approval_from_row(row) for row in result.mappings()]

    async def approvals_for(self, call_id: str) -> list[ApprovalRequest]:
        """Every request about a call, in any state, oldest first."""
        async with self._reader() as conn:
            result = await conn.execute(
                select(approvals)
                .where(approvals.c.call_id == call_id)
                .order_by(approvals.c.requested_at, approvals.c.id)
            )
            return [approval_from_row(row) for row in result.mappings()]

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
        async with self._reader() as conn:
            result = await conn.execute(
                select(approvals)
                .where(
                    approvals.c.state == ApprovalState.PENDING.value,
                    approvals.c.details_hash == details_hash,
                )
                .order_by(approvals.c.requested_at, approvals.c.id)
            )
            return [approval_from_row(row) for row in result.mappings()]

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
            return [approval_from_row(row) for row in result.mappings()]

    async def kill_switch(self) -> KillSwitch:
        """The desk's kill switch as stored now (read each time: every terminal shares it)."""
        async with self._reader() as conn:
            return await self._kill_switch(conn)

    async def engage_kill_switch(self, actor: Actor, reason: str, *, at: datetime) -> KillSwitch:
        """Engage the kill switch, audited; `KillSwitchConflict` when it already is."""
        async with self._engine.begin() as conn:
            head = await self._lock_head(conn, CHAIN_AUDIT)
            current = await self._kill_switch(conn)
            if current.engaged:
                raise KillSwitchConflict(
                    f"the kill switch is already engaged (by {current.engaged_by})"
                )
            engaged = KillSwitch(True, actor.name, at, reason)
            await conn.execute(
                update(kill_switch)
                .where(kill_switch.c.id == 1)
                .values(
                    engaged=True,
                    engaged_by=actor.name,
                    engaged_at=at,
                    reason=reason,
                    released_by=None,
                    released_at=None,
                )
            )
            entry = AuditEntry(
                at=at,
                operator=actor.name,
                action="kill_switch_engaged",
                details={"reason": reason, "role": actor.role.value},
            )
            await self._append_audit(conn, head, [entry])
        return engaged

    async def release_kill_switch(self, actor: Actor, reason: str, *, at: datetime) -> KillSwitch:
        """Release the kill switch, audited; `KillSwitchConflict` when it is not engaged."""
        async with self._engine.begin() as conn:
            head = await self._lock_head(conn, CHAIN_AUDIT)
            current = await self._kill_switch(conn)
            if not current.engaged:
                raise KillSwitchConflict("the kill switch is not engaged")
            released = replace(current, engaged=False, released_by=actor.name, released_at=at)
            await conn.execute(
                update(kill_switch)
                .where(kill_switch.c.id == 1)
                .values(engaged=False, released_by=actor.name, released_at=at)
            )
            entry = AuditEntry(
                at=at,
                operator=actor.name,
                action="kill_switch_released",
                details={
                    "reason": reason,
                    "role": actor.role.value,
                    "engaged_by": current.engaged_by,
                    "engaged_at": None
                    if current.engaged_at is None
                    else iso_utc(current.engaged_at),
                    "engage_reason": current.reason,
                },
            )
            await self._append_audit(conn, head, [entry])
        return released

    async def _approval(self, conn: AsyncConnection, approval_id: str) -> ApprovalRequest | None:
        return await _by_key(conn, approvals.c.id, approval_id, approval_from_row)

    async def _decidable(
        self, conn: AsyncConnection, approval_id: str, seen_hash: str
    ) -> ApprovalRequest:
        """The request, read under the audit-head lock, if it can still be decided."""
        request = await self._approval(conn, approval_id)
        if request is None:
            raise UnknownApproval(f"no request {approval_id}")
        if request.state is not ApprovalState.PENDING:
            by = f" by {request.decided_by}" if request.decided_by else ""
            raise ApprovalConflict(f"request {approval_id} is already {request.state.value}{by}")
        if request.details_hash != seen_hash:
            raise ApprovalConflict(f"the details of request {approval_id} are not those shown")
        return request

    async def _move_approval(
        self,
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
        return self._approval_entry(moved, f"approval_{state.value}", by, at, {"reason": note})

    @staticmethod
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

    async def _kill_switch(self, conn: AsyncConnection) -> KillSwitch:
        row = (
            (await conn.execute(select(kill_switch).where(kill_switch.c.id == 1)))
            .mappings()
            .one_or_none()
        )
        if row is None:
            raise StorageError("kill switch row missing: run `risk-tui db upgrade`")
        return kill_switch_from_row(row)

    async def _order(self, conn: AsyncConnection, client_order_id: str) -> StoredOrder | None:
        return await _by_key(conn, orders.c.client_order_id, client_order_id, order_from_row)

    async def _message(self, conn: AsyncConnection, message_id: str) -> StoredMessage | None:
        return await _by_key(conn, messages.c.message_id, message_id, message_from_row)

    async def _require_call(self, conn: AsyncConnection, call_id: str | None) -> None:
        # Checked here for a clear error rather than a foreign-key violation at INSERT.
        if call_id is None:
            return
        found = (
            await conn.execute(select(calls.c.call_id).where(calls.c.call_id == call_id))
        ).scalar_one_or_none()
        if found is None:
            raise UnknownCall(f"no margin call {call_id}")

    async def _move_order(
        self,
        conn: AsyncConnection,
        current: StoredOrder,
        send_state: SendState,
        changes: Mapping[str, Any],
        *,
        detail: str | None,
        operator: str | None,
        at: datetime,
    ) -> tuple[StoredOrder, AuditEntry | None]:
        if not can_move(current.send_state, send_state):
            return current, None
        changed = {
            name: value
            for name, value in changes.items()
            if value is not None and getattr(current, name) != value
        }
        state_changed = send_state is not current.send_state
        attempt = send_state is SendState.IN_DOUBT  # each failed attempt is evidence
        if not (state_changed or changed or attempt):
            return current, None
        await conn.execute(
            update(orders)
            .where(orders.c.client_order_id == current.client_order_id)
            .values(send_state=send_state.value, updated_at=at, **changed)
        )
        stored = replace(current, send_state=send_state, updated_at=at, **changed)
        action = _ORDER_ACTIONS[send_state] if state_changed or attempt else "order_status"
        entry = AuditEntry(
            at=at,
            operator=operator or current.operator,
            action=action,
            call_id=current.call_id,
            account_id=current.account_id,
            details={
                "client_order_id": current.client_order_id,
                "send_state": send_state.value,
                "order_id": stored.order_id,
                "status": stored.status,
                "filled_quantity": str(stored.filled_quantity),
                "avg_price": None if stored.avg_price is None else str(stored.avg_price),
                "reject_reason": stored.reject_reason,
                "detail": detail,
            },
        )
        return stored, entry

    # --- inside a transaction --------------------------------------------------------------

    @asynccontextmanager
    async def _reader(self) -> AsyncIterator[AsyncConnection]:
        async with self._engine.connect() as conn:
            yield await conn.execution_options(**READ_ONLY)

    async def _upsert_calls(
        self, conn: AsyncConnection, batch_calls: Sequence[MarginCall], now: datetime
    ) -> None:
        latest: dict[str, MarginCall] = {}
        for call in batch_calls:  # the last version of each call wins
            latest[call.call_id] = call
        # Ended calls first: a batch that ends an account's call and opens its next one
        # must not trip the one-open-call-per-account index in between.
        ordered = sorted(latest.values(), key=lambda call: call.is_open)
        rows = [call_to_row(call, now) for call in ordered]
        stmt = _insert_for(conn, calls)
        stmt = stmt.on_conflict_do_update(
            index_elements=[calls.c.call_id],
            set_={
                column.name: stmt.excluded[column.name]
                for column in calls.columns
                if column.name not in _OPERATOR_OWNED
            },
        )
        await conn.execute(stmt, rows)

    async def _changed_calls(
        self, conn: AsyncConnection, batch_calls: Sequence[MarginCall]
    ) -> frozenset[str]:
        """The calls of the batch another writer got to first, their rows locked (call_id
        order) until the transaction ends: a stored call whose version is not the one the
        batch's was made from; a new call for an account that has an open call already
        (named with that call, so the writer reads it)."""
        made_from: dict[str, int] = {}
        for call in batch_calls:  # a call written twice in one batch: its first version
            made_from.setdefault(call.call_id, call.version - 1)
        stored: dict[str, int] = {}
        ids = sorted(made_from)
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            query = (
                select(calls.c.call_id, calls.c.version)
                .where(calls.c.call_id.in_(chunk))
                .order_by(calls.c.call_id)
                .with_for_update()
            )
            stored.update({row.call_id: row.version for row in await conn.execute(query)})
        changed = {c for c, version in stored.items() if version != made_from[c]}
        # Openings come with their trigger snapshot, so they hold the snapshot chain's
        # head: two writers' openings are serialised, and this sees the other's.
        opening = {c.account_id: c.call_id for c in batch_calls if c.call_id not in stored}
        accounts = sorted(opening)
        for start in range(0, len(accounts), _IN_CHUNK):
            query = select(calls.c.account_id, calls.c.call_id).where(
                calls.c.account_id.in_(accounts[start : start + _IN_CHUNK]),
                calls.c.state != "ended",
            )
            for row in await conn.execute(query):
                if row.call_id not in made_from or row.call_id in changed:  # not ended here
                    changed.update((opening[row.account_id], row.call_id))
        return frozenset(changed)

    async def _reprice_calls(
        self, conn: AsyncConnection, batch_calls: Sequence[MarginCall], now: datetime
    ) -> None:
        """The amount and level of calls already stored (a crash poll moves thousands)."""
        stmt = (
            update(calls)
            .where(calls.c.call_id == bindparam("b_call_id"), calls.c.state != "ended")
            .values(
                call_amount=bindparam("b_call_amount"),
                risk_level=bindparam("b_risk_level"),
                updated_at=bindparam("b_updated_at"),
            )
        )
        await conn.execute(
            stmt,
            [
                {
                    "b_call_id": call.call_id,
                    "b_call_amount": call.call_amount,
                    "b_risk_level": call.risk_level.value,
                    "b_updated_at": now,
                }
                for call in sorted(batch_calls, key=lambda call: call.call_id)
            ],
        )

    async def _lock_head(self, conn: AsyncConnection, chain: str) -> tuple[int, str]:
        row = (
            await conn.execute(
                select(chain_heads.c.seq, chain_heads.c.hash)
                .where(chain_heads.c.name == chain)
                .with_for_update()
            )
        ).one_or_none()
        if row is None:
            raise StorageError(f"chain head {chain!r} missing: run `risk-tui db upgrade`")
        return int(row.seq), str(row.hash)

    async def _set_head(self, conn: AsyncConnection, chain: str, seq: int, hash_: str) -> None:
        await conn.execute(
            update(chain_heads).where(chain_heads.c.name == chain).values(seq=seq, hash=hash_)
        )

    async def _append_snapshots(
        self, conn: AsyncConnection, head: tuple[int, str], records: Sequence[SnapshotRecord]
    ) -> None:
        if len(records) >= THREADED_ROWS:
            # A crash poll's thousands of snapshots: encoded and hashed in a worker
            # thread, so the event loop (the screen) keeps answering meanwhile.
            rows, seq, prev_hash = await asyncio.to_thread(self._snapshot_rows, head, records)
        else:
            rows, seq, prev_hash = self._snapshot_rows(head, records)
        await conn.execute(insert(snapshots), rows)
        await self._set_head(conn, CHAIN_SNAPSHOTS, seq, prev_hash)

    @staticmethod
    def _snapshot_rows(
        head: tuple[int, str], records: Sequence[SnapshotRecord]
    ) -> tuple[list[dict[str, Any]], int, str]:
        seq, prev_hash = head
        rows: list[dict[str, Any]] = []
        encoded: dict[int, CanonicalText] = {}  # a call opening as a force call: one payload
        for record in records:
            seq += 1
            payload = encoded.get(id(record.payload))
            if payload is None:
                payload = CanonicalText(canonical_json(record.payload))  # encoded once
                encoded[id(record.payload)] = payload
            fields = snapshot_fields(
                seq,
                call_id=record.call_id,
                account_id=record.account_id,
                scenario=record.scenario.value,
                taken_at=record.taken_at,
                feed_as_of=record.feed_as_of,
                feed_cursor=record.feed_cursor,
                payload=None,
            )
            hash_ = hash_text(prev_hash, record_json(fields, "payload", payload))
            rows.append(
                {
                    "seq": seq,
                    "call_id": record.call_id,
                    "account_id": record.account_id,
                    "scenario": record.scenario.value,
                    "taken_at": record.taken_at,
                    "feed_as_of": record.feed_as_of,
                    "feed_cursor": record.feed_cursor,
                    "payload": payload,
                    "prev_hash": prev_hash,
                    "hash": hash_,
                }
            )
            prev_hash = hash_
        return rows, seq, prev_hash

    async def _append_audit(
        self, conn: AsyncConnection, head: tuple[int, str], entries: Sequence[AuditEntry]
    ) -> None:
        seq, prev_hash = head
        rows: list[dict[str, Any]] = []
        for entry in entries:
            seq += 1
            details = CanonicalText(canonical_json(entry.details))
            fields = audit_fields(
                seq,
                at=entry.at,
                operator=entry.operator,
                action=entry.action,
                call_id=entry.call_id,
                account_id=entry.account_id,
                details=None,
            )
            hash_ = hash_text(prev_hash, record_json(fields, "details", details))
            rows.append(
                {
                    "seq": seq,
                    "at": entry.at,
                    "operator": entry.operator,
                    "action": entry.action,
                    "call_id": entry.call_id,
                    "account_id": entry.account_id,
                    "details": details,
                    "prev_hash": prev_hash,
                    "hash": hash_,
                }
            )
            prev_hash = hash_
        await conn.execute(insert(audit_log), rows)
        await self._set_head(conn, CHAIN_AUDIT, seq, prev_hash)

    async def _mark_daily(
        self, conn: AsyncConnection, keys: Sequence[DailyKey], now: datetime
    ) -> None:
        unique = list(dict.fromkeys(keys))
        key_columns = tuple_(daily_jobs.c.job, daily_jobs.c.call_id, daily_jobs.c.day)
        done: list[DailyKey] = []
        for start in range(0, len(unique), _IN_CHUNK):  # SQLite caps bound parameters
            chunk = unique[start : start + _IN_CHUNK]
            result = await conn.execute(
                select(daily_jobs.c.job, daily_jobs.c.call_id, daily_jobs.c.day).where(
                    key_columns.in_(chunk)
                )
            )
            done.extend((row.job, row.call_id, _as_date(row.day)) for row in result)
        if done:
            raise DailyAlreadyDone(done)
        await conn.execute(
            insert(daily_jobs),
            [
                {"job": job, "call_id": call_id, "day": day, "done_at": now}
                for job, call_id, day in unique
            ],
        )


def _report_changes(report: OrderReport) -> dict[str, Any]:
    return {
        "order_id": report.order_id,
        "status": report.status,
        "filled_quantity": report.filled_quantity,
        "avg_price": report.avg_price,
        "reject_reason": report.reject_reason,
    }


def _history_match(needle: str | None) -> list[Any]:
    """`history_page`'s text filter: account, client or call id contains `needle`."""
    text = (needle or "").strip().lower()
    if not text:
        return []
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    return [
        or_(
            *(
                func.lower(column).like(pattern, escape="\\")
                for column in (calls.c.account_id, calls.c.client_name, calls.c.call_id)
            )
        )
    ]


async def _by_key(
    conn: AsyncConnection, key: Any, value: str, from_row: Callable[[Mapping[Any, Any]], _Row]
) -> _Row | None:
    """The one row whose primary-key column `key` is `value`, as a record; None if none."""
    query = select(key.table).where(key == value)
    row = (await conn.execute(query)).mappings().one_or_none()
    return None if row is None else from_row(row)


def _require_postgresql(conn: AsyncConnection, what: str) -> None:
    if conn.dialect.name != "postgresql":
        raise StorageError(f"{what} need PostgreSQL (a desk shared by several processes)")


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _insert_for(conn: AsyncConnection, table: Table) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT (SQLite and PostgreSQL spell it alike)."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise StorageError(f"unsupported database {conn.dialect.name!r}")


__all__ = [
    "ApprovalConflict",
    "DailyAlreadyDone",
    "KeyConflict",
    "KillSwitchConflict",
    "KillSwitchEngaged",
    "StorageError",
    "Store",
    "UnknownApproval",
    "UnknownAutoLiquidation",
    "UnknownCall",
    "UnknownMessage",
    "UnknownOrder",
    "call_from_row",
    "call_to_row",
]


def _without_calls(batch: LifecycleBatch, call_ids: frozenset[str]) -> LifecycleBatch:
    """The batch without these calls' writes, snapshots and audit entries."""
    return LifecycleBatch(
        calls=[c for c in batch.calls if c.call_id not in call_ids],
        snapshots=[s for s in batch.snapshots if s.call_id not in call_ids],
        audit=[a for a in batch.audit if a.call_id not in call_ids],
        repriced=[c for c in batch.repriced if c.call_id not in call_ids],
    )
