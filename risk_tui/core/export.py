"""What a compliance export covers and how it is written: the period and the formats.

The export itself (`risk-tui export`, the History tab's `x`) is `risk_tui.desk.export`;
its records are read by `risk_tui.storage.export`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

FORMAT_NAME = "risk-tui-export"
FORMAT_VERSION = 1
FORMATS = ("jsonl", "csv")

HEADER, CALL, SNAPSHOT, AUDIT = "header", "call", "snapshot", "audit"
COUNTED = (CALL, SNAPSHOT, AUDIT)


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
