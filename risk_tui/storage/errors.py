"""The writes the store refuses, as exceptions: one module every repository and caller shares.

Why apart: each repository raises some of them and the desk catches them by type, so
they live where neither has to import the other's module to name one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from risk_tui.core.four_eyes import KillSwitch
from risk_tui.core.records import DailyKey


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


__all__ = [
    "ApprovalConflict",
    "CallChanged",
    "ClaimTaken",
    "DailyAlreadyDone",
    "KeyConflict",
    "KillSwitchConflict",
    "KillSwitchEngaged",
    "StorageError",
    "UnknownApproval",
    "UnknownAutoLiquidation",
    "UnknownCall",
    "UnknownMessage",
    "UnknownOrder",
]
