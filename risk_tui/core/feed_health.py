"""Feed health as the operator sees it: live (with its age), stale, or down (with why).

Pure data plus one rule, `FeedHealth.status(now)`, evaluated against a monotonic clock so
that a feed which simply stops answering turns STALE and then DOWN by itself, without a
poll having to complete.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum


class FeedStatus(StrEnum):
    CONNECTING = "connecting"  # no answer yet, still within stale_after of starting
    LIVE = "live"
    STALE = "stale"  # no successful poll for stale_after
    DOWN = "down"  # no successful poll for down_after, or refused credentials


# A feed that has been stale this many times stale_after is reported down.
DOWN_FACTOR = 3


@dataclass(frozen=True, slots=True)
class FeedHealth:
    stale_after: float
    started_at: float  # monotonic seconds
    last_success_at: float | None = None  # monotonic
    as_of: datetime | None = None  # the feed's own as_of at the last success
    last_error: str | None = None
    auth_failed: bool = False
    consecutive_failures: int = 0
    polls: int = 0
    applied: int = 0  # records applied by the last successful poll
    rejected: int = 0  # records rejected by the last successful poll
    rejected_total: int = 0
    changed_accounts: int = 0  # accounts recomputed by the last successful poll

    @property
    def down_after(self) -> float:
        return self.stale_after * DOWN_FACTOR

    def age(self, now: float) -> float:
        """Seconds since the last successful poll (or since start when there was none)."""
        return now - (self.last_success_at if self.last_success_at is not None else self.started_at)

    def status(self, now: float) -> FeedStatus:
        if self.auth_failed:
            return FeedStatus.DOWN
        age = self.age(now)
        if self.last_success_at is None:
            if self.consecutive_failures == 0 and age <= self.stale_after:
                return FeedStatus.CONNECTING
            return FeedStatus.DOWN if age > self.stale_after else FeedStatus.STALE
        if age <= self.stale_after:
            return FeedStatus.LIVE
        if age <= self.down_after:
            return FeedStatus.STALE
        return FeedStatus.DOWN

    def succeeded(
        self, now: float, as_of: datetime, *, applied: int, rejected: int, changed: int
    ) -> FeedHealth:
        return replace(
            self,
            last_success_at=now,
            as_of=as_of,
            last_error=None,
            auth_failed=False,
            consecutive_failures=0,
            polls=self.polls + 1,
            applied=applied,
            rejected=rejected,
            rejected_total=self.rejected_total + rejected,
            changed_accounts=changed,
        )

    def failed(self, error: str, *, auth: bool = False) -> FeedHealth:
        return replace(
            self,
            last_error=error,
            auth_failed=auth,
            consecutive_failures=self.consecutive_failures + 1,
            polls=self.polls + 1,
        )

    def describe(self, now: float) -> str:
        """One line for a banner or a log: what the operator must know about the feed."""
        status = self.status(now)
        age = self.age(now)
        if status is FeedStatus.LIVE:
            return f"LIVE as of {age:.0f}s ago, {self.changed_accounts} accounts updated"
        if status is FeedStatus.CONNECTING:
            return "CONNECTING to the feed"
        since = (
            "no successful poll yet"
            if self.last_success_at is None
            else (f"no successful poll for {age:.0f}s")
        )
        # Why first (the banner is cut at the window's edge), then for how long.
        why = f"{self.last_error}; {since}" if self.last_error else since
        return f"{status.value.upper()} — {why}"
