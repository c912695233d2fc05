"""The audit trail on its own: entries that go with no other write, and where each chain ends.

Why apart: most audit entries are written by the repository whose change they record,
in that change's transaction; these are the desk's others (an export, a kill switch's
stopped orders, a refused action), and the heads a verifier or test compares with.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from risk_tui.core.lifecycle import AuditEntry
from risk_tui.storage.audited import audited
from risk_tui.storage.base import Repository
from risk_tui.storage.tables import chain_heads


class AuditTrail(Repository):
    """Appends to the audit chain, and reads of the chains' heads."""

    async def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        if not entries:
            return
        async with audited(self._engine) as tx:
            await tx.append_audit(entries)

    async def chain_head(self, chain: str) -> tuple[int, str]:
        """(seq, hash) of the last record of `chain` ("snapshots" or "audit")."""
        async with self._reader() as conn:
            row = (
                await conn.execute(
                    select(chain_heads.c.seq, chain_heads.c.hash).where(chain_heads.c.name == chain)
                )
            ).one()
        return int(row.seq), str(row.hash)


__all__ = ["AuditTrail"]
