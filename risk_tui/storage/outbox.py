"""The outbox of actions sent to the broker: recorded before sending, moved with an audit entry.

Why one generic outbox: orders and messages keep the same promises, and two copies of
them drifted. An action is written `pending` before it is sent, idempotent on its key (a
double key press is one action; a key naming a different action is `KeyConflict`); each
change of its send state, each in-doubt attempt, and each change of the broker's status
after acknowledgement commits with its audit entry. Every write locks the audit head
first, as every audit writer does; that also queues two writers of the same key, so the
second finds the first's row instead of failing on the primary key. `OutboxKind` says
what differs: the table, the record, the key, the audit actions. Orders keep their
extras in `orders.py`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from risk_tui.core.actions import MessageIntent, OrderIntent, SendState, can_move
from risk_tui.core.lifecycle import AuditEntry
from risk_tui.core.records import StoredMessage, StoredOrder, same_message
from risk_tui.core.roles import Actor
from risk_tui.storage.audited import audited
from risk_tui.storage.base import Repository, by_key
from risk_tui.storage.calls import require_call
from risk_tui.storage.errors import KeyConflict, StorageError, UnknownMessage
from risk_tui.storage.rows import MESSAGE_ROWS, Rows
from risk_tui.storage.tables import messages

Stored = TypeVar("Stored", StoredOrder, StoredMessage)
Intent = TypeVar("Intent", OrderIntent, MessageIntent)

# Send states still to be settled with the broker: to re-send with their key, or reconcile.
UNSETTLED = (SendState.PENDING.value, SendState.IN_DOUBT.value)


@dataclass(frozen=True, slots=True)
class OutboxKind(Generic[Stored, Intent]):
    """What makes an outbox the orders' or the messages'."""

    table: Table
    rows: Rows[Stored]
    key: str  # the idempotency key: its column, and the record's field
    noun: str  # in "no order …"
    unknown: type[StorageError]  # raised for a key never recorded
    conflict: str  # `KeyConflict` text for a key naming another action; `{key}` is the key
    same: Callable[[Stored, Intent], bool]  # the intent is the action stored under its key
    created: str  # audit action of recording
    moved: Mapping[SendState, str]  # audit action of a move to each send state
    status_moved: str  # audit action of a new broker status (or fills) after acknowledgement
    move_details: Callable[[Stored], dict[str, Any]]  # the record's part of a move's audit


class Outbox(Repository, Generic[Stored, Intent]):
    """Actions recorded before they are sent; their send state, moved once per change."""

    kind: OutboxKind[Stored, Intent]

    async def get(self, key: str) -> Stored | None:
        async with self._reader() as conn:
            return await self._get(conn, key)

    async def page(
        self,
        account_id: str | None = None,
        call_id: str | None = None,
        *,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Stored]:
        """A page of actions, newest first, optionally of one account or one call."""
        table = self.kind.table
        query = select(table)
        if account_id is not None:
            query = query.where(table.c.account_id == account_id)
        if call_id is not None:
            query = query.where(table.c.call_id == call_id)
        query = query.order_by(table.c.created_at.desc(), table.c[self.kind.key].desc())
        async with self._reader() as conn:
            result = await conn.execute(query.limit(limit).offset(offset))
            return [self.kind.rows.from_row(row) for row in result.mappings()]

    async def needing_send(self) -> list[Stored]:
        """Actions pending or in doubt (to re-send with their key or reconcile), oldest first."""
        table = self.kind.table
        async with self._reader() as conn:
            result = await conn.execute(
                select(table)
                .where(table.c.send_state.in_(UNSETTLED))
                .order_by(table.c.created_at, table.c[self.kind.key])
            )
            return [self.kind.rows.from_row(row) for row in result.mappings()]

    async def _get(self, conn: AsyncConnection, key: str) -> Stored | None:
        return await by_key(conn, self.kind.table.c[self.kind.key], key, self.kind.rows)

    async def _record(
        self,
        intent: Intent,
        fresh: Stored,
        account_state: Mapping[str, Any],
        actor: Actor,
        *,
        at: datetime,
        also: Sequence[AuditEntry] = (),
        check: Callable[[AsyncConnection], Awaitable[None]] | None = None,
    ) -> tuple[Stored, bool]:
        """Record `fresh` (the intent as first stored), audited; (row, created).

        Its audit entry holds the intent, the actor's role and `account_state` (what they
        decided on), followed by `also`. `check` runs under the audit-head lock before
        anything is written, and may refuse. Raises `UnknownCall` when the action names a
        call not stored.
        """
        key = getattr(fresh, self.kind.key)
        entry = AuditEntry(
            at=at,
            operator=actor.name,
            action=self.kind.created,
            call_id=intent.reference,
            account_id=intent.account_id,
            details={
                self.kind.noun: intent.wire(),
                "role": actor.role.value,
                "account_state": dict(account_state),
            },
        )
        async with audited(self._engine) as tx:
            existing = await self._get(tx.conn, key)
            if existing is not None:
                if not self.kind.same(existing, intent):
                    raise KeyConflict(self.kind.conflict.format(key=key))
                return existing, False
            if check is not None:
                await check(tx.conn)
            await require_call(tx.conn, fresh.call_id)
            await tx.conn.execute(insert(self.kind.table).values(**self.kind.rows.to_row(fresh)))
            await tx.append_audit([entry, *also])
        return fresh, True

    async def _mark(
        self,
        key: str,
        send_state: SendState,
        changes: Mapping[str, Any],
        *,
        detail: str | None,
        operator: str | None,
        at: datetime | None,
    ) -> Stored:
        """Move an action to `send_state`, setting the `changes` given (None: unchanged);
        the row as it now stands.

        A move `SendState` forbids (acknowledged back to in_doubt, say, from a concurrent
        retry that timed out) changes nothing: the returned row shows the state that holds.
        A change of send state, each in-doubt attempt, and a change of broker status or
        fills after acknowledgement are audited (`detail`, e.g. the error, goes with it),
        under `operator` or else the action's own operator.
        """
        at = at or self._clock()
        async with audited(self._engine) as tx:
            current = await self._get(tx.conn, key)
            if current is None:
                raise self.kind.unknown(f"no {self.kind.noun} {key}")
            stored, entry = await self._move(
                tx.conn, current, send_state, changes, detail=detail, operator=operator, at=at
            )
            if entry is not None:
                await tx.append_audit([entry])
        return stored

    async def _move(
        self,
        conn: AsyncConnection,
        current: Stored,
        send_state: SendState,
        changes: Mapping[str, Any],
        *,
        detail: str | None,
        operator: str | None,
        at: datetime,
    ) -> tuple[Stored, AuditEntry | None]:
        """`_mark` on an action read under the audit-head lock; its audit entry, if moved."""
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
        table = self.kind.table
        key = getattr(current, self.kind.key)
        await conn.execute(
            update(table)
            .where(table.c[self.kind.key] == key)
            .values(send_state=send_state.value, updated_at=at, **changed)
        )
        stored = replace(current, send_state=send_state, updated_at=at, **changed)
        action = self.kind.moved[send_state] if state_changed or attempt else self.kind.status_moved
        entry = AuditEntry(
            at=at,
            operator=operator or current.operator,
            action=action,
            call_id=current.call_id,
            account_id=current.account_id,
            details={
                **self.kind.move_details(stored),
                "send_state": send_state.value,
                "detail": detail,
            },
        )
        return stored, entry


def pending_message(intent: MessageIntent, at: datetime) -> StoredMessage:
    """The message as first recorded, before it is sent."""
    return StoredMessage(
        message_id=intent.message_id,
        call_id=intent.reference,
        account_id=intent.account_id,
        channel=intent.channel,
        subject=intent.subject,
        body=intent.body,
        operator=intent.operator,
        created_at=at,
        send_state=SendState.PENDING,
        status=None,
        updated_at=at,
    )


class Messages(Outbox[StoredMessage, MessageIntent]):
    """Messages to clients, recorded before the broker is asked to send them."""

    kind = OutboxKind(
        table=messages,
        rows=MESSAGE_ROWS,
        key="message_id",
        noun="message",
        unknown=UnknownMessage,
        conflict="message_id {key} already names another",
        same=same_message,
        created="message_created",
        moved={
            SendState.PENDING: "message_pending",
            SendState.IN_DOUBT: "message_in_doubt",
            SendState.ACKNOWLEDGED: "message_sent",
            SendState.FAILED: "message_failed",
        },
        status_moved="message_status",
        move_details=lambda message: {"message_id": message.message_id, "status": message.status},
    )

    async def record_intent(
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
        return await self._record(intent, pending_message(intent, at), account_state, actor, at=at)

    async def mark(
        self,
        message_id: str,
        send_state: SendState,
        *,
        status: str | None = None,
        detail: str | None = None,
        operator: str | None = None,
        at: datetime | None = None,
    ) -> StoredMessage:
        """Move a message to `send_state` (same rules and audit as `Orders.mark`)."""
        return await self._mark(
            message_id, send_state, {"status": status}, detail=detail, operator=operator, at=at
        )


__all__ = ["UNSETTLED", "Messages", "Outbox", "OutboxKind", "pending_message"]
