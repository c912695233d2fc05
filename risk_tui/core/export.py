"""What a compliance export covers and how it is written: the period and the formats.

The export itself (`risk-tui export`, the History tab's `x`) is `risk_tui.desk.export`;
its records are read by `risk_tui.storage.export`. Every export is itself audited
(`export_audit`): who wrote which period, in which format, to where, from where, and the
SHA-256 and size of the bytes written, in the audit chain like any other action.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from risk_tui.core.lifecycle import AuditEntry

FORMAT_NAME = "risk-tui-export"
FORMAT_VERSION = 1
FORMATS = ("jsonl", "csv")

HEADER, CALL, SNAPSHOT, AUDIT = "header", "call", "snapshot", "audit"
COUNTED = (CALL, SNAPSHOT, AUDIT)

EXPORT_ACTION = "export"  # the audit action of an export
STDOUT = "stdout"  # the destination of `risk-tui export` without --output


@dataclass(frozen=True, slots=True)
class Period:
    """Inclusive calendar dates in UTC."""

    first: date
    last: date

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError(f"--to {self.last} is before --from {self.first}")

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """Exclusive: the midnight after `last`."""
        return datetime.combine(self.last + timedelta(days=1), time(), tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Written:
    """What an export wrote: the header's counts, and the SHA-256 and size of its bytes."""

    counts: dict[str, int]
    sha256: str  # hex, of the bytes exactly as written (UTF-8)
    size: int  # bytes


def export_audit(
    *,
    at: datetime,
    operator: str,
    period: Period,
    fmt: str,
    destination: str,
    written: Written,
    source: str,
    role: str | None = None,
) -> AuditEntry:
    """The audit record of one export: who (`operator`, in `role`), which period, to where
    (`destination`: an absolute path, or `STDOUT`), from where (`source`: "cli" or
    "history tab"), and what was written (SHA-256, size, counts)."""
    counts: Mapping[str, int] = written.counts
    details: dict[str, object] = {
        "period": {"from": period.first.isoformat(), "to": period.last.isoformat()},
        "format": fmt,
        "destination": destination,
        "sha256": written.sha256,
        "bytes": written.size,
        "counts": {name: int(counts.get(name, 0)) for name in COUNTED},
        "source": source,
    }
    if role is not None:
        details["role"] = role
    return AuditEntry(at=at, operator=operator, action=EXPORT_ACTION, details=details)
