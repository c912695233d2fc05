"""Margin calls: the lifecycle commit, re-priced amounts, remarks, claims, and reads of calls.

Why these together: they are the writes of the `calls` table, and each must respect the
others. `commit` writes a call only over the version it was made from (`CallChanged`
otherwise), and never the operator's own columns (`OPERATOR_OWNED`): `remark` and
`exception` belong to `add_remark`, the claim to `set_claim`, so an engine holding an
older copy of a call cannot erase an operator's remark. The version checks here
(`changed_calls`, `upsert_calls`) also serve the plans and four-eyes repositories, whose
writes carry calls too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from risk_tui.core.deposits import ReceivedMovement
from risk_tui.core.lifecycle import AuditEntry, CallState, LifecycleBatch, MarginCall
from risk_tui.core.records import DailyKey
from risk_tui.storage.audited import audited
from risk_tui.storage.base import Repository, by_key, chunks, insert_for
from risk_tui.storage.daily import insert_daily_marks
from risk_tui.storage.errors import CallChanged, ClaimTaken, UnknownCall
from risk_tui.storage.rows import CALL_ROWS, MOVEMENT_ROWS
from risk_tui.storage.tables import calls, cash_movements, remarks

# Columns `commit` never overwrites on an existing call (see the module docstring).
OPERATOR_OWNED = frozenset({"call_id", "remark", "exception", "claimed_by", "claimed_at"})


class Calls(Repository):
    """Margin calls as the lifecycle and the operators write them."""

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
        Cash movements are stored once each by id (one already stored is left as it is),
        whichever calls were refused. Snapshots and audit entries are appended to their
        chains in order; `daily` marks
        the daily jobs this batch performs (e.g. the daily snapshot), so the marker and
        the snapshot commit together. Raises `DailyAlreadyDone` when one is already marked.
        """
        if not batch and not daily:
            return frozenset()
        now = self._clock()
        async with audited(
            self._engine, snapshots=bool(batch.snapshots), audit=bool(batch.audit)
        ) as tx:
            refused = await changed_calls(tx.conn, batch.calls) if batch.calls else frozenset()
            if refused:
                if not skip_changed:
                    raise CallChanged(refused)
                batch = _without_calls(batch, refused)
            if batch.calls:
                await upsert_calls(tx.conn, batch.calls, now)
            if batch.repriced:
                await _reprice_calls(tx.conn, batch.repriced, now)
            if batch.movements:
                await _insert_movements(tx.conn, batch.movements)
            await tx.append_snapshots(batch.snapshots)
            await tx.append_audit(batch.audit)
            if daily:
                await insert_daily_marks(tx.conn, daily, now)
        return refused

    async def add_remark(
        self, call_id: str, operator: str, text: str, exception: bool, at: datetime
    ) -> None:
        """Set a call's remark and exception flag, keep the history, audit it: one transaction."""
        async with audited(self._engine) as tx:
            account_id = (
                await tx.conn.execute(select(calls.c.account_id).where(calls.c.call_id == call_id))
            ).scalar_one_or_none()
            if account_id is None:
                raise UnknownCall(f"no margin call {call_id}")
            await tx.conn.execute(
                update(calls)
                .where(calls.c.call_id == call_id)
                .values(remark=text, exception=exception, updated_at=self._clock())
            )
            await tx.conn.execute(
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
            await tx.append_audit([entry])

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
        async with audited(self._engine) as tx:
            done = await tx.conn.execute(
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
                current = await read_call(tx.conn, call_id)
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
            stored = CALL_ROWS.from_row(row)
            entry = AuditEntry(
                at=at,
                operator=operator,
                action="call_claimed" if claim else "call_released",
                call_id=call_id,
                account_id=stored.account_id,
                details={} if over is None else {"taken_from": over},
            )
            await tx.append_audit([entry])
        return stored

    async def calls_by_id(self, call_ids: Iterable[str]) -> list[MarginCall]:
        """These calls as stored (open or ended; unknown ids are left out)."""
        found: list[MarginCall] = []
        async with self._reader() as conn:
            for chunk in chunks(sorted(set(call_ids))):
                result = await conn.execute(select(calls).where(calls.c.call_id.in_(chunk)))
                found.extend(CALL_ROWS.from_row(row) for row in result.mappings())
        return found

    async def open_calls(self) -> dict[str, MarginCall]:
        """Every open call, keyed by account_id (the database allows one per account)."""
        async with self._reader() as conn:
            result = await conn.execute(select(calls).where(calls.c.state != CallState.ENDED.value))
            return {row["account_id"]: CALL_ROWS.from_row(row) for row in result.mappings()}

    async def get_call(self, call_id: str) -> MarginCall | None:
        async with self._reader() as conn:
            return await read_call(conn, call_id)

    async def known_movements(self, movement_ids: Iterable[str]) -> frozenset[str]:
        """Which of these cash movements are stored already (received before)."""
        known: set[str] = set()
        async with self._reader() as conn:
            for chunk in chunks(sorted(set(movement_ids))):
                query = select(cash_movements.c.movement_id).where(
                    cash_movements.c.movement_id.in_(chunk)
                )
                known.update((await conn.execute(query)).scalars())
        return frozenset(known)

    async def counted_movements(
        self, call_ids: Iterable[str]
    ) -> dict[str, list[ReceivedMovement]]:
        """The cash movements each of these calls counts, in the order received."""
        counted: dict[str, list[ReceivedMovement]] = {}
        async with self._reader() as conn:
            for chunk in chunks(sorted(set(call_ids))):
                query = (
                    select(cash_movements)
                    .where(cash_movements.c.call_id.in_(chunk))
                    .order_by(cash_movements.c.received_at, cash_movements.c.movement_id)
                )
                for row in (await conn.execute(query)).mappings():
                    movement = MOVEMENT_ROWS.from_row(row)
                    counted.setdefault(row["call_id"], []).append(movement)
        return counted


async def read_call(conn: AsyncConnection, call_id: str) -> MarginCall | None:
    return await by_key(conn, calls.c.call_id, call_id, CALL_ROWS)


async def require_call(conn: AsyncConnection, call_id: str | None) -> None:
    """`UnknownCall` unless `call_id` (when given) names a stored call."""
    # Checked here for a clear error rather than a foreign-key violation at INSERT.
    if call_id is None:
        return
    found = (
        await conn.execute(select(calls.c.call_id).where(calls.c.call_id == call_id))
    ).scalar_one_or_none()
    if found is None:
        raise UnknownCall(f"no margin call {call_id}")


async def upsert_calls(
    conn: AsyncConnection, batch_calls: Sequence[MarginCall], now: datetime
) -> None:
    """Insert or update calls by call_id, leaving the `OPERATOR_OWNED` columns alone."""
    latest: dict[str, MarginCall] = {}
    for call in batch_calls:  # the last version of each call wins
        latest[call.call_id] = call
    # Ended calls first: a batch that ends an account's call and opens its next one
    # must not trip the one-open-call-per-account index in between.
    ordered = sorted(latest.values(), key=lambda call: call.is_open)
    rows = [CALL_ROWS.to_row(call, updated_at=now) for call in ordered]
    stmt = insert_for(conn, calls)
    stmt = stmt.on_conflict_do_update(
        index_elements=[calls.c.call_id],
        set_={
            column.name: stmt.excluded[column.name]
            for column in calls.columns
            if column.name not in OPERATOR_OWNED
        },
    )
    await conn.execute(stmt, rows)


async def changed_calls(conn: AsyncConnection, batch_calls: Sequence[MarginCall]) -> frozenset[str]:
    """The calls of the batch another writer got to first, their rows locked (call_id
    order) until the transaction ends: a stored call whose version is not the one the
    batch's was made from; a new call for an account that has an open call already
    (named with that call, so the writer reads it)."""
    made_from: dict[str, int] = {}
    for call in batch_calls:  # a call written twice in one batch: its first version
        made_from.setdefault(call.call_id, call.version - 1)
    stored: dict[str, int] = {}
    for chunk in chunks(sorted(made_from)):
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
    for chunk in chunks(sorted(opening)):
        query = select(calls.c.account_id, calls.c.call_id).where(
            calls.c.account_id.in_(chunk), calls.c.state != "ended"
        )
        for row in await conn.execute(query):
            if row.call_id not in made_from or row.call_id in changed:  # not ended here
                changed.update((opening[row.account_id], row.call_id))
    return frozenset(changed)


async def _reprice_calls(
    conn: AsyncConnection, batch_calls: Sequence[MarginCall], now: datetime
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


async def _insert_movements(conn: AsyncConnection, movements: Sequence[ReceivedMovement]) -> None:
    """Store cash movements once each by id: a repeat leaves the first as it was."""
    stmt = insert_for(conn, cash_movements).on_conflict_do_nothing(
        index_elements=[cash_movements.c.movement_id]
    )
    await conn.execute(stmt, [MOVEMENT_ROWS.to_row(movement) for movement in movements])


def _without_calls(batch: LifecycleBatch, call_ids: frozenset[str]) -> LifecycleBatch:
    """The batch without these calls' writes, snapshots and audit entries (the cash
    movements stay: they were received whatever became of the calls)."""
    return LifecycleBatch(
        calls=[c for c in batch.calls if c.call_id not in call_ids],
        snapshots=[s for s in batch.snapshots if s.call_id not in call_ids],
        audit=[a for a in batch.audit if a.call_id not in call_ids],
        repriced=[c for c in batch.repriced if c.call_id not in call_ids],
        movements=batch.movements,
    )


__all__ = [
    "OPERATOR_OWNED",
    "Calls",
    "changed_calls",
    "read_call",
    "require_call",
    "upsert_calls",
]
