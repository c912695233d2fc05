"""The desk's kill switch: one row, engaged and released with an audit entry each.

Why read under the audit-head lock: `Orders.record_intent` reads the switch under the
same lock that engaging takes, so an order is either recorded before the switch (and
the engaging supervisor's sweep cancels it) or refused; never recorded unseen.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from risk_tui.core.four_eyes import KillSwitch
from risk_tui.core.lifecycle import AuditEntry
from risk_tui.core.roles import Actor
from risk_tui.storage.audited import audited
from risk_tui.storage.base import Repository
from risk_tui.storage.errors import KillSwitchConflict, StorageError
from risk_tui.storage.rows import KILL_SWITCH_ROWS
from risk_tui.storage.tables import kill_switch
from risk_tui.storage.types import iso_utc


class KillSwitchControl(Repository):
    """The one kill-switch row: read, engage, release."""

    async def get(self) -> KillSwitch:
        """The desk's kill switch as stored now (read each time: every terminal shares it)."""
        async with self._reader() as conn:
            return await read_kill_switch(conn)

    async def engage(self, actor: Actor, reason: str, *, at: datetime) -> KillSwitch:
        """Engage the kill switch, audited; `KillSwitchConflict` when it already is."""
        async with audited(self._engine) as tx:
            current = await read_kill_switch(tx.conn)
            if current.engaged:
                raise KillSwitchConflict(
                    f"the kill switch is already engaged (by {current.engaged_by})"
                )
            engaged = KillSwitch(True, actor.name, at, reason)
            await tx.conn.execute(
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
            await tx.append_audit([entry])
        return engaged

    async def release(self, actor: Actor, reason: str, *, at: datetime) -> KillSwitch:
        """Release the kill switch, audited; `KillSwitchConflict` when it is not engaged."""
        async with audited(self._engine) as tx:
            current = await read_kill_switch(tx.conn)
            if not current.engaged:
                raise KillSwitchConflict("the kill switch is not engaged")
            released = replace(current, engaged=False, released_by=actor.name, released_at=at)
            await tx.conn.execute(
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
            await tx.append_audit([entry])
        return released


async def read_kill_switch(conn: AsyncConnection) -> KillSwitch:
    row = (
        (await conn.execute(select(kill_switch).where(kill_switch.c.id == 1)))
        .mappings()
        .one_or_none()
    )
    if row is None:
        raise StorageError("kill switch row missing: run `risk-tui db upgrade`")
    return KILL_SWITCH_ROWS.from_row(row)


__all__ = ["KillSwitchControl", "read_kill_switch"]
