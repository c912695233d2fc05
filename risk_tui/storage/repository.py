"""The Store: margin calls, snapshot and audit chains, remarks and daily markers on one engine.

Every write is one transaction. Appends to a chain lock its row in `chain_heads` first
(`SELECT … FOR UPDATE` on PostgreSQL; SQLite's `BEGIN IMMEDIATE` already holds the
database write lock), so concurrent writers queue and seq numbers stay contiguous.
Reads run without the write lock (see `db.READ_ONLY`).

`remark` and `exception` on a call belong to `add_remark`: `commit` writes them when a
call is first inserted and never overwrites them afterwards, so an engine holding an
older copy of a call cannot erase an operator's remark.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, func, insert, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

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
from risk_tui.storage.chain import audit_fields, hash_text, record_json, snapshot_fields
from risk_tui.storage.db import READ_ONLY
from risk_tui.storage.tables import (
    CHAIN_AUDIT,
    CHAIN_SNAPSHOTS,
    audit_log,
    calls,
    chain_heads,
    daily_jobs,
    feed_cache,
    remarks,
    snapshots,
)
from risk_tui.storage.types import CanonicalText, canonical_json

DailyKey = tuple[str, str, date]  # (job, call_id, day): e.g. ("snapshot", "MC…", 2026-03-02)

_IN_CHUNK = 1_000

# Columns `commit` never overwrites on an existing call (see the module docstring).
_OPERATOR_OWNED = frozenset({"call_id", "remark", "exception"})


class StorageError(Exception):
    """A write the store refused; nothing of it was written."""


class UnknownCall(StorageError, LookupError):
    pass


class DailyAlreadyDone(StorageError):
    """A daily job for a call and day is already recorded: the batch would repeat it."""

    def __init__(self, keys: Sequence[DailyKey]) -> None:
        self.keys = list(keys)
        listed = ", ".join(f"{job} {call_id} {day.isoformat()}" for job, call_id, day in keys)
        super().__init__(f"daily job already done: {listed}")


@dataclass(frozen=True, slots=True)
class StoredSnapshot:
    seq: int
    call_id: str
    account_id: str
    scenario: SnapshotScenario
    taken_at: datetime
    feed_as_of: datetime | None
    feed_cursor: str | None
    payload: dict[str, Any]
    hash: str


@dataclass(frozen=True, slots=True)
class StoredRemark:
    id: int
    call_id: str
    at: datetime
    operator: str
    text: str
    exception: bool


@dataclass(frozen=True, slots=True)
class StoredAudit:
    seq: int
    at: datetime
    operator: str
    action: str
    call_id: str | None
    account_id: str | None
    details: dict[str, Any]
    hash: str


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


class Store:
    """Persistence for the lifecycle: one instance per process, over one AsyncEngine."""

    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self._engine = engine
        self._clock = clock

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    # --- writes ----------------------------------------------------------------------------

    async def commit(self, batch: LifecycleBatch, daily: Sequence[DailyKey] = ()) -> None:
        """Write a poll's (or an action's) changes in ONE transaction, or nothing at all.

        Calls are inserted or updated by call_id; snapshots and audit entries are
        appended to their chains in order; `daily` marks the daily jobs this batch
        performs (e.g. the daily snapshot), so the marker and the snapshot commit together.
        Raises `DailyAlreadyDone` when one of them is already marked.
        """
        if not batch and not daily:
            return
        now = self._clock()
        async with self._engine.begin() as conn:
            # Chain heads are locked first, snapshots before audit, in every writer: one
            # lock order for the whole desk, so PostgreSQL writers queue, never deadlock.
            snapshot_head = (
                await self._lock_head(conn, CHAIN_SNAPSHOTS) if batch.snapshots else None
            )
            audit_head = await self._lock_head(conn, CHAIN_AUDIT) if batch.audit else None
            if batch.calls:
                await self._upsert_calls(conn, batch.calls, now)
            if snapshot_head is not None:
                await self._append_snapshots(conn, snapshot_head, batch.snapshots)
            if audit_head is not None:
                await self._append_audit(conn, audit_head, batch.audit)
            if daily:
                await self._mark_daily(conn, daily, now)

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
            row = (
                (await conn.execute(select(calls).where(calls.c.call_id == call_id)))
                .mappings()
                .one_or_none()
            )
        return None if row is None else call_from_row(row)

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
        seq, prev_hash = head
        rows: list[dict[str, Any]] = []
        for record in records:
            seq += 1
            payload = CanonicalText(canonical_json(record.payload))  # encoded once
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
        await conn.execute(insert(snapshots), rows)
        await self._set_head(conn, CHAIN_SNAPSHOTS, seq, prev_hash)

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
    "DailyAlreadyDone",
    "DailyKey",
    "StorageError",
    "Store",
    "StoredAudit",
    "StoredRemark",
    "StoredSnapshot",
    "UnknownCall",
    "call_from_row",
    "call_to_row",
]
