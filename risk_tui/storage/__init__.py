"""Persistence: SQLAlchemy tables, the Store and its repositories, the hash chains, migrations.

The CLI calls `run_upgrade(url)` for `risk-tui db upgrade` and `run_verify(url)` for
`risk-tui audit verify`.
"""

from __future__ import annotations

from risk_tui.storage.chain import VerifyResult, verify
from risk_tui.storage.db import create_engine, upgrade
from risk_tui.storage.errors import (
    CallChanged,
    ClaimTaken,
    DailyAlreadyDone,
    StorageError,
    UnknownCall,
)
from risk_tui.storage.store import Store


async def run_upgrade(url: str) -> None:
    """`risk-tui db upgrade`: apply every migration not yet applied."""
    await upgrade(url)


async def run_verify(url: str) -> VerifyResult:
    """`risk-tui audit verify`: check both hash chains; `.ok`, and `.message` to print."""
    engine = await create_engine(url)
    try:
        return await verify(engine)
    finally:
        await engine.dispose()


__all__ = [
    "CallChanged",
    "ClaimTaken",
    "DailyAlreadyDone",
    "StorageError",
    "Store",
    "UnknownCall",
    "VerifyResult",
    "create_engine",
    "run_upgrade",
    "run_verify",
    "upgrade",
]
