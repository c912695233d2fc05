"""The margin-call lifecycle as pure logic: triggered → notified → force_call → ended(reason).

A call opens when equity < MM on fresh, complete data, escalates below FM, and ends only
on fresh, complete data: met by deposit (the net deposits first received after the poll
that opened it reach the amount called at trigger, whatever prices did meanwhile), met,
liquidated, or closed by an operator with a reason. It is
never ended because an account vanished from a poll, a price was missing or the feed
went stale. Each transition names the snapshots (快照) it requires.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal
from enum import StrEnum
from operator import attrgetter
from typing import Any

from risk_tui.core.calendar import CalendarNotCovered
from risk_tui.core.deposits import ReceivedMovement
from risk_tui.core.margin import MarginVerdict, RiskLevel
from risk_tui.core.model import AccountKind, Market


class CallState(StrEnum):
    TRIGGERED = "triggered"
    NOTIFIED = "notified"
    FORCE_CALL = "force_call"
    ENDED = "ended"


class EndReason(StrEnum):
    MET_BY_DEPOSIT = "met_by_deposit"  # net deposits since the trigger ≥ amount at trigger
    MET = "met"  # recomputed call amount ≤ 0 with no liquidation since the trigger
    LIQUIDATED = "liquidated"  # cured after desk liquidation orders filled
    CLOSED = "closed"  # closed by an operator, with a reason


class SnapshotScenario(StrEnum):
    """The five moments SPEC.md requires a snapshot: 觸發/force call/通知/每日/結束."""

    TRIGGER = "trigger"
    FORCE_CALL = "force_call"
    NOTIFICATION = "notification"
    DAILY = "daily"
    END = "end"


@dataclass(frozen=True, slots=True)
class MarginCall:
    call_id: str
    account_id: str
    client_name: str
    kind: AccountKind
    market: Market
    currency: str
    state: CallState
    risk_level: RiskLevel
    triggered_at: datetime
    trigger_call_amount: Decimal
    call_amount: Decimal  # current: recomputed on every fresh poll
    deadline: datetime | None
    deadline_error: str | None = None  # why no deadline could be computed (calendar gap)
    deadline_reason: str | None = None  # set when an operator moved the deadline
    notified_at: datetime | None = None
    notified_call_amount: Decimal | None = None
    force_call_at: datetime | None = None
    ended_at: datetime | None = None
    end_reason: EndReason | None = None
    end_note: str | None = None
    exception: bool = False
    remark: str = ""
    # Counts the call's lifecycle changes (open = 1; escalation, notification, deadline
    # move, end: +1 each; re-pricing leaves it). A write states it: storage refuses a
    # write whose version is not the stored one plus one, so two processes sharing a
    # desk never overwrite each other's change (a close and an escalation, say).
    version: int = 0
    claimed_by: str | None = None  # "I'm on it": the operator working the call
    claimed_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.state is not CallState.ENDED

    def long_outstanding(self, now: datetime, days: int) -> bool:
        """長期未結清: triggered more than `days` ago and still open."""
        return self.is_open and now - self.triggered_at > timedelta(days=days)

    def past_deadline(self, now: datetime) -> bool:
        return self.deadline is not None and now > self.deadline


@dataclass(frozen=True, slots=True)
class Transition:
    """The call's new state and the snapshots it requires, in order."""

    call: MarginCall
    snapshots: tuple[SnapshotScenario, ...] = ()
    opened: bool = False

    @property
    def ended(self) -> bool:
        return self.call.state is CallState.ENDED


DeadlineFn = Callable[[Market, datetime], datetime]

_CALL_FIELDS = tuple(f.name for f in fields(MarginCall))
_call_values = attrgetter(*_CALL_FIELDS)
_AMOUNT_AT = _CALL_FIELDS.index("call_amount")
_LEVEL_AT = _CALL_FIELDS.index("risk_level")


def repriced(call: MarginCall, risk_level: RiskLevel, call_amount: Decimal) -> Transition:
    """`evaluate`'s verdict on an open call whose amount (> 0) or level moved, when the
    caller has established it neither ends nor escalates: the same transition, made
    without the rest of `evaluate` (a crash poll re-prices thousands of calls)."""
    values = list(_call_values(call))
    values[_AMOUNT_AT] = call_amount
    values[_LEVEL_AT] = risk_level
    return Transition(MarginCall(*values))


def new_call_id(account_id: str, at: datetime) -> str:
    return f"MC{at:%Y%m%d}-{account_id}-{uuid.uuid4().hex[:8]}"


def evaluate(
    call: MarginCall | None,
    result: MarginVerdict | None,
    *,
    fresh: bool,
    now: datetime,
    market: Market,
    client_name: str,
    deadline_for: DeadlineFn,
    liquidated_since_trigger: bool = False,
    deposits: Decimal | None = None,
    call_id_factory: Callable[[str, datetime], str] = new_call_id,
) -> Transition | None:
    """One poll's verdict for one account; None when nothing about the call changes.

    `deposits`: the open call's net deposits (deposits − withdrawals, in its base
    currency) first received after the poll that opened it (`core.deposits`); None when
    there are none or they are not known (a movement refused or not convertible).
    """
    if not fresh or result is None or result.incomplete is not None:
        return None  # never open or end a call on stale, missing or partial data
    if result.kind is AccountKind.CASH:
        return None
    if call is None or not call.is_open:
        return _maybe_open(result, now, market, client_name, deadline_for, call_id_factory)
    met_by_deposit = deposits is not None and deposits >= call.trigger_call_amount
    if met_by_deposit or result.call_amount <= 0:
        if met_by_deposit:  # SPEC.md: it ends so even if prices fell meanwhile
            reason = EndReason.MET_BY_DEPOSIT
        elif liquidated_since_trigger:
            reason = EndReason.LIQUIDATED
        else:
            reason = EndReason.MET
        ended = replace(
            call,
            state=CallState.ENDED,
            risk_level=result.risk_level,
            call_amount=result.call_amount,
            ended_at=now,
            end_reason=reason,
            version=call.version + 1,
        )
        return Transition(ended, (SnapshotScenario.END,))
    if result.risk_level is RiskLevel.FORCE_CALL and call.state is not CallState.FORCE_CALL:
        escalated = replace(
            call,
            state=CallState.FORCE_CALL,
            risk_level=result.risk_level,
            call_amount=result.call_amount,
            force_call_at=now,
            version=call.version + 1,
        )
        return Transition(escalated, (SnapshotScenario.FORCE_CALL,))
    if result.call_amount != call.call_amount or result.risk_level is not call.risk_level:
        updated = replace(call, call_amount=result.call_amount, risk_level=result.risk_level)
        return Transition(updated)
    return None


def _maybe_open(
    result: MarginVerdict,
    now: datetime,
    market: Market,
    client_name: str,
    deadline_for: DeadlineFn,
    call_id_factory: Callable[[str, datetime], str],
) -> Transition | None:
    if not result.in_call:  # equity ≥ MM
        return None
    deadline: datetime | None = None
    deadline_error: str | None = None
    try:
        deadline = deadline_for(market, now)
    except CalendarNotCovered as gap:  # the call still opens; the operator sees why
        deadline_error = str(gap)
    force = result.risk_level is RiskLevel.FORCE_CALL
    call = MarginCall(
        call_id=call_id_factory(result.account_id, now),
        account_id=result.account_id,
        client_name=client_name,
        kind=result.kind,
        market=market,
        currency=result.currency,
        state=CallState.FORCE_CALL if force else CallState.TRIGGERED,
        risk_level=result.risk_level,
        triggered_at=now,
        trigger_call_amount=result.call_amount,
        call_amount=result.call_amount,
        deadline=deadline,
        deadline_error=deadline_error,
        force_call_at=now if force else None,
        version=1,
    )
    scenarios = (SnapshotScenario.TRIGGER,) + ((SnapshotScenario.FORCE_CALL,) if force else ())
    return Transition(call, scenarios, opened=True)


def record_notification(call: MarginCall, now: datetime) -> Transition:
    """A message to the client went out: the call is notified (a force call stays one)."""
    if not call.is_open:
        raise ValueError(f"call {call.call_id} has ended")
    state = CallState.NOTIFIED if call.state is CallState.TRIGGERED else call.state
    updated = replace(
        call,
        state=state,
        notified_at=now,
        notified_call_amount=call.call_amount,
        version=call.version + 1,
    )
    return Transition(updated, (SnapshotScenario.NOTIFICATION,))


def close_by_operator(call: MarginCall, now: datetime, reason: str) -> Transition:
    if not call.is_open:
        raise ValueError(f"call {call.call_id} has already ended")
    if not reason.strip():
        raise ValueError("closing a call needs a reason")
    ended = replace(
        call,
        state=CallState.ENDED,
        ended_at=now,
        end_reason=EndReason.CLOSED,
        end_note=reason,
        version=call.version + 1,
    )
    return Transition(ended, (SnapshotScenario.END,))


def move_deadline(call: MarginCall, deadline: datetime, reason: str) -> MarginCall:
    if not call.is_open:
        raise ValueError(f"call {call.call_id} has ended")
    if not reason.strip():
        raise ValueError("moving a deadline needs a reason")
    if deadline.tzinfo is None:
        raise ValueError("a deadline must carry its time zone")
    return replace(
        call,
        deadline=deadline,
        deadline_error=None,
        deadline_reason=reason,
        version=call.version + 1,
    )


def daily_snapshot_due(
    call: MarginCall, last_daily: date | None, today: date, zone: tzinfo | None = None
) -> bool:
    """One daily snapshot per open call per day, never on the day the call opened.

    `today` is a day in `zone` (the call's market), where the trigger day is judged too.
    """
    if not call.is_open:
        return False
    triggered = call.triggered_at if zone is None else call.triggered_at.astimezone(zone)
    if triggered.date() >= today:
        return False
    return last_daily is None or last_daily < today


@dataclass(frozen=True, slots=True)
class SnapshotRecord:
    """One snapshot to append: the complete account state at one lifecycle moment."""

    call_id: str
    account_id: str
    scenario: SnapshotScenario
    taken_at: datetime
    feed_as_of: datetime | None
    feed_cursor: str | None
    payload: dict[str, Any]  # JSON-ready: money as decimal strings (see core.snapshot)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One operator (or engine) action, for compliance: who, when, what, on which state."""

    at: datetime
    operator: str
    action: str
    call_id: str | None = None
    account_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class LifecycleBatch:
    """Everything one poll (or one operator action) changed, written in one transaction."""

    calls: list[MarginCall] = field(default_factory=list)  # inserted or updated by call_id
    snapshots: list[SnapshotRecord] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)
    # Open calls already stored whose amount or level moved (`repriced`): only those two
    # figures are written.
    repriced: list[MarginCall] = field(default_factory=list)
    # Cash movements received and not yet stored (`desk.deposits`): each once by id.
    movements: list[ReceivedMovement] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            self.calls or self.snapshots or self.audit or self.repriced or self.movements
        )
