"""The audited write transaction: lock the chain heads in one order, append, move the heads.

Why one helper: every write that leaves evidence takes the same locks, and a writer that
took them in another order could deadlock two PostgreSQL writers, or (had it appended
without its head locked) leave a gap or a fork in a hash chain. The order, for every
writer of the desk: the snapshot chain's head, then the audit chain's, then call rows
in call_id order (`calls.changed_calls`). On PostgreSQL the heads are locked with
`SELECT … FOR UPDATE`, so writers queue on them and seq numbers stay contiguous; on
SQLite the `BEGIN IMMEDIATE` of `engine.begin()` (see `db.py`) already holds the
database's write lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from risk_tui.core.lifecycle import AuditEntry, SnapshotRecord
from risk_tui.storage.chain import audit_fields, hash_text, record_json, snapshot_fields
from risk_tui.storage.errors import StorageError
from risk_tui.storage.tables import CHAIN_AUDIT, CHAIN_SNAPSHOTS, audit_log, chain_heads, snapshots
from risk_tui.storage.types import CanonicalText, canonical_json

THREADED_ROWS = 64  # snapshots in one commit from which rows are built in a thread

Head = tuple[int, str]  # (seq, hash) of a chain's last record


class AuditedTransaction:
    """One open write transaction and the chain heads it holds locked.

    `conn` runs the transaction's other statements. Each append moves the head it holds,
    so appending twice in one transaction continues the chain.
    """

    def __init__(self, conn: AsyncConnection, snapshot_head: Head | None, audit_head: Head | None):
        self.conn = conn
        self._snapshot_head = snapshot_head
        self._audit_head = audit_head

    async def append_snapshots(self, records: Sequence[SnapshotRecord]) -> None:
        if not records:
            return
        if self._snapshot_head is None:
            raise RuntimeError("appending snapshots without their chain head locked")
        if len(records) >= THREADED_ROWS:
            # A crash poll's thousands of snapshots: encoded and hashed in a worker
            # thread, so the event loop (the screen) keeps answering meanwhile.
            rows, seq, prev_hash = await asyncio.to_thread(
                _snapshot_rows, self._snapshot_head, records
            )
        else:
            rows, seq, prev_hash = _snapshot_rows(self._snapshot_head, records)
        await self.conn.execute(insert(snapshots), rows)
        await _set_head(self.conn, CHAIN_SNAPSHOTS, seq, prev_hash)
        self._snapshot_head = (seq, prev_hash)

    async def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        if not entries:
            return
        if self._audit_head is None:
            raise RuntimeError("appending audit entries without their chain head locked")
        seq, prev_hash = self._audit_head
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
        await self.conn.execute(insert(audit_log), rows)
        await _set_head(self.conn, CHAIN_AUDIT, seq, prev_hash)
        self._audit_head = (seq, prev_hash)


@asynccontextmanager
async def audited(
    engine: AsyncEngine, *, snapshots: bool = False, audit: bool = True
) -> AsyncIterator[AuditedTransaction]:
    """A write transaction holding the heads of the chains it will append to.

    Commits when the block ends, rolls everything back when it raises. `snapshots` and
    `audit` say which heads to lock; they are locked at once, in the one order.
    """
    async with engine.begin() as conn:
        snapshot_head = await _lock_head(conn, CHAIN_SNAPSHOTS) if snapshots else None
        audit_head = await _lock_head(conn, CHAIN_AUDIT) if audit else None
        yield AuditedTransaction(conn, snapshot_head, audit_head)


async def _lock_head(conn: AsyncConnection, chain: str) -> Head:
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


async def _set_head(conn: AsyncConnection, chain: str, seq: int, hash_: str) -> None:
    await conn.execute(
        update(chain_heads).where(chain_heads.c.name == chain).values(seq=seq, hash=hash_)
    )


def _snapshot_rows(
    head: Head, records: Sequence[SnapshotRecord]
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


__all__ = ["THREADED_ROWS", "AuditedTransaction", "Head", "audited"]
