"""Four-eyes approval and the kill switch as pure rules: what needs a second person, what
the approver signs off, who may decide. (Just past 600 lines: the rules and their words
for each kind of request belong together.)

Needs approval (a trader's or supervisor's action is then stored as a request, not done):

- a liquidation order whose notional exceeds `four_eyes.liquidation_notional`;
- an auto-liquidation plan whose orders together exceed it, or that moves the deadline;
- cancelling a scheduled plan that needed (or would now need) approval to be scheduled:
  the same rule, on the plan as stored and today's prices;
- every deadline move;
- every close of a call by an operator.

What an order or a plan is worth (exact, in the desk's reporting currency) is
`risk_tui.core.notional`; one that cannot be computed needs approval.

The binding: a request carries a details document — its kind, call, account, requester
and role, and every field of the action — and the SHA-256 of its canonical JSON. The
approver is shown the document and approves that hash. An edit voids the request and
makes a new one (new id, new hash), so an approval can only ever apply to the details
the approver saw, and the approved action is executed from the stored document, never
re-derived. Nobody approves their own request; the approver must hold a role that may
take the action themselves (`Intent.DECIDE` in `core.roles`).

The kill switch (supervisors only) blocks every new liquidation on the desk until a
supervisor releases it; see `risk_tui.desk.kill_switch` for what engaging it does.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from enum import StrEnum
from typing import Any, cast

from risk_tui.core.actions import (
    AutoCondition,
    AutoLiquidationPlan,
    OrderIntent,
    OrderType,
    PlanLine,
    plan_wire,
)
from risk_tui.core.canonical import canonical_json
from risk_tui.core.clock import stamp
from risk_tui.core.close_reasons import CloseReason, close_note, parse_close_reason
from risk_tui.core.lifecycle import MarginCall
from risk_tui.core.model import Side
from risk_tui.core.money import format_money
from risk_tui.core.notional import Notional
from risk_tui.core.roles import Actor, Intent, Role, allowed

APPROVAL_ID_PREFIX = "RT-AP-"


class ApprovalKind(StrEnum):
    LIQUIDATION = "liquidation"
    AUTO_LIQUIDATION = "auto_liquidation"
    DEADLINE_MOVE = "deadline_move"
    CALL_CLOSE = "call_close"
    PLAN_CANCEL = "plan_cancel"


class ApprovalState(StrEnum):
    """Where a request stands (`approvals.state`).

    pending   waiting for a second person
    approved  approved; its action is being executed (an order or a plan is sent next)
    executed  its action was carried out, as stored
    failed    approved, but its action could not be carried out (the reason is recorded)
    rejected  refused by a trader or supervisor (or withdrawn by its requester), with a reason
    voided    no longer valid: edited (replaced by a new request), or its call ended
    """

    PENDING = "pending"
    APPROVED = "approved"
    EXECUTED = "executed"
    FAILED = "failed"
    REJECTED = "rejected"
    VOIDED = "voided"


# Where a request no longer waits and is no longer being executed: its decision is final.
DECIDED_STATES = frozenset(
    {ApprovalState.EXECUTED, ApprovalState.FAILED, ApprovalState.REJECTED, ApprovalState.VOIDED}
)


KIND_WORDS = {
    ApprovalKind.LIQUIDATION: "liquidation",
    ApprovalKind.AUTO_LIQUIDATION: "auto-liquidation",
    ApprovalKind.DEADLINE_MOVE: "deadline move",
    ApprovalKind.CALL_CLOSE: "close call",
    ApprovalKind.PLAN_CANCEL: "cancel auto-liq",
}


def new_approval_id() -> str:
    return f"{APPROVAL_ID_PREFIX}{uuid.uuid4().hex[:16]}"


def details_hash(details: Mapping[str, Any]) -> str:
    """The binding: SHA-256 (hex) of the details document's canonical JSON."""
    return hashlib.sha256(canonical_json(details).encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """One request for a second person's approval, and where it stands."""

    approval_id: str
    kind: ApprovalKind
    call_id: str | None
    account_id: str
    details: dict[str, Any]  # the document approved; `details_hash` binds it
    details_hash: str
    requested_by: str
    requested_at: datetime
    state: ApprovalState
    decided_by: str | None = None
    decided_at: datetime | None = None
    note: str | None = None  # rejection reason, why voided or failed, what was executed
    replaces: str | None = None  # the request this one replaced (an edit)

    @property
    def requested_role(self) -> Role:
        return Role(self.details["requested_role"])

    @property
    def requester(self) -> Actor:
        """The requester as they were when they asked: the approved action is theirs."""
        return Actor(self.requested_by, self.requested_role)


def awaiting_line(request: ApprovalRequest) -> str:
    """What the requester is told: their action went to approval, under which id."""
    return (
        f"{KIND_WORDS[request.kind]} awaiting approval {request.approval_id}: a second trader "
        "or supervisor must approve it (Approvals tab)"
    )


# --- the details documents -----------------------------------------------------------------


def _request(
    kind: ApprovalKind,
    *,
    call_id: str | None,
    account_id: str,
    requester: Actor,
    at: datetime,
    action: Mapping[str, Any],
    replaces: str | None,
    approval_id: str | None,
) -> ApprovalRequest:
    details = {
        "kind": kind.value,
        "call_id": call_id,
        "account_id": account_id,
        "requested_by": requester.name,
        "requested_role": requester.role.value,
        **action,
    }
    return ApprovalRequest(
        approval_id=approval_id or new_approval_id(),
        kind=kind,
        call_id=call_id,
        account_id=account_id,
        details=details,
        details_hash=details_hash(details),
        requested_by=requester.name,
        requested_at=at,
        state=ApprovalState.PENDING,
        replaces=replaces,
    )


def liquidation_request(
    intent: OrderIntent,
    override_reason: str | None,
    notional: Notional,
    requester: Actor,
    at: datetime,
    *,
    replaces: str | None = None,
    approval_id: str | None = None,
) -> ApprovalRequest:
    return _request(
        ApprovalKind.LIQUIDATION,
        call_id=intent.reference,
        account_id=intent.account_id,
        requester=requester,
        at=at,
        action={
            "order": intent.wire(),
            "override_reason": override_reason or None,
            "notional": notional.wire(),
        },
        replaces=replaces,
        approval_id=approval_id,
    )


def plan_request(
    plan: AutoLiquidationPlan,
    notional: Notional,
    requester: Actor,
    at: datetime,
    *,
    old_deadline: datetime | None,
    replaces: str | None = None,
    approval_id: str | None = None,
) -> ApprovalRequest:
    return _request(
        ApprovalKind.AUTO_LIQUIDATION,
        call_id=plan.call_id,
        account_id=plan.account_id,
        requester=requester,
        at=at,
        action={
            "plan": plan_wire(plan),
            "notional": notional.wire(),
            "old_deadline": _instant(old_deadline),
        },
        replaces=replaces,
        approval_id=approval_id,
    )


def plan_cancel_request(
    plan: AutoLiquidationPlan,
    reason: str,
    notional: Notional,
    requester: Actor,
    at: datetime,
    *,
    replaces: str | None = None,
    approval_id: str | None = None,
) -> ApprovalRequest:
    """Cancelling the scheduled `plan` (as stored), with the requester's reason."""
    return _request(
        ApprovalKind.PLAN_CANCEL,
        call_id=plan.call_id,
        account_id=plan.account_id,
        requester=requester,
        at=at,
        action={"plan": plan_wire(plan), "reason": reason, "notional": notional.wire()},
        replaces=replaces,
        approval_id=approval_id,
    )


def deadline_request(
    call: MarginCall,
    new_deadline: datetime,
    reason: str,
    requester: Actor,
    at: datetime,
    *,
    replaces: str | None = None,
    approval_id: str | None = None,
) -> ApprovalRequest:
    return _request(
        ApprovalKind.DEADLINE_MOVE,
        call_id=call.call_id,
        account_id=call.account_id,
        requester=requester,
        at=at,
        action={
            "old_deadline": _instant(call.deadline),
            "new_deadline": new_deadline.isoformat(),
            "reason": reason,
        },
        replaces=replaces,
        approval_id=approval_id,
    )


def close_request(
    call: MarginCall,
    reason: str,
    requester: Actor,
    at: datetime,
    *,
    close_reason: CloseReason,
    replaces: str | None = None,
    approval_id: str | None = None,
) -> ApprovalRequest:
    return _request(
        ApprovalKind.CALL_CLOSE,
        call_id=call.call_id,
        account_id=call.account_id,
        requester=requester,
        at=at,
        action={
            "close_reason": close_reason.value,
            "reason": reason,
            "call_amount": str(call.call_amount),
            "currency": call.currency,
        },
        replaces=replaces,
        approval_id=approval_id,
    )


def _instant(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


# --- reading the stored document back: the action exactly as approved ----------------------


def order_of(request: ApprovalRequest) -> tuple[OrderIntent, str | None]:
    """The order (and its "not in call" override reason) a liquidation request names."""
    wire = request.details["order"]
    limit = wire["limit_price"]
    intent = OrderIntent(
        client_order_id=wire["client_order_id"],
        account_id=wire["account_id"],
        symbol=wire["symbol"],
        side=Side(wire["side"]),
        quantity=Decimal(wire["quantity"]),
        order_type=cast(OrderType, wire["order_type"]),
        limit_price=None if limit is None else Decimal(limit),
        reason=wire["reason"],
        reference=wire["reference"],
        operator=wire["operator"],
    )
    return intent, request.details.get("override_reason")


def plan_of(request: ApprovalRequest) -> AutoLiquidationPlan:
    """The auto-liquidation plan a request names."""
    wire = request.details["plan"]
    moved = wire["moved_deadline"]
    return AutoLiquidationPlan(
        plan_id=wire["plan_id"],
        call_id=wire["call_id"],
        account_id=wire["account_id"],
        execute_at=datetime.fromisoformat(wire["execute_at"]),
        condition=AutoCondition(wire["condition"]),
        lines=tuple(
            PlanLine(line["symbol"], Side(line["side"]), Decimal(line["quantity"]))
            for line in wire["lines"]
        ),
        operator=wire["operator"],
        moved_deadline=None if moved is None else datetime.fromisoformat(moved),
        deadline_reason=wire["deadline_reason"],
    )


def deadline_of(request: ApprovalRequest) -> tuple[datetime, str]:
    """The new deadline and the reason a deadline-move request names."""
    return datetime.fromisoformat(request.details["new_deadline"]), request.details["reason"]


def old_deadline_of(request: ApprovalRequest) -> datetime | None:
    """The call's deadline the requester saw (deadline moves and plans)."""
    old = request.details.get("old_deadline")
    return None if old is None else datetime.fromisoformat(old)


def close_reason_of(request: ApprovalRequest) -> str:
    """The free text a close (what happened) or a plan's cancel names."""
    return str(request.details["reason"])


def close_category_of(request: ApprovalRequest) -> CloseReason | None:
    """The end reason from the list a close request names; None for a request made before
    reasons were listed."""
    return parse_close_reason(request.details.get("close_reason"))


# --- in the desk's words ------------------------------------------------------------------


def describe(request: ApprovalRequest, zone: tzinfo = UTC) -> str:
    """The request's action in one line (outside text in it still to be sanitized), its
    times on `zone`'s clock (the account's market's, where the terminal knows it)."""
    details = request.details
    if request.kind is ApprovalKind.LIQUIDATION:
        intent, override = order_of(request)
        price = "market" if intent.limit_price is None else f"limit {intent.limit_price}"
        text = f"{intent.side.value} {intent.quantity} {intent.symbol} {price}, {_worth(details)}"
        return text + (f"; not in call, override: {override}" if override else "")
    if request.kind in (ApprovalKind.AUTO_LIQUIDATION, ApprovalKind.PLAN_CANCEL):
        plan = plan_of(request)
        lines = ", ".join(f"{line.side.value} {line.quantity} {line.symbol}" for line in plan.lines)
        when = _when(plan.execute_at, zone)
        text = f"at {when} if {plan.condition.value}: {lines}, {_worth(details)}"
        if request.kind is ApprovalKind.PLAN_CANCEL:
            return f"cancel plan {plan.plan_id} ({text}): {close_reason_of(request)}"
        if plan.moved_deadline is not None:
            text += f"; deadline to {_when(plan.moved_deadline, zone)}: {plan.deadline_reason}"
        return text
    if request.kind is ApprovalKind.DEADLINE_MOVE:
        new_deadline, reason = deadline_of(request)
        old = _when(old_deadline_of(request), zone)
        return f"deadline {old} to {_when(new_deadline, zone)}: {reason}"
    amount = _money(details.get("call_amount"), details.get("currency"))
    note = close_note(close_category_of(request), close_reason_of(request))
    return f"close the call ({amount} to collect): {note}"


def _utc(moment: datetime | None) -> str:
    return _when(moment, UTC)


def _when(moment: datetime | None, zone: tzinfo) -> str:
    return "none" if moment is None else stamp(moment, zone, full=True)


def _worth(details: Mapping[str, Any]) -> str:
    notional = details.get("notional") or {}
    if notional.get("amount") is None:
        return str(notional.get("problem") or "notional unknown")
    return f"worth {_money(notional['amount'], notional.get('currency'))}"


def _money(amount: str | None, currency: str | None) -> str:
    if amount is None:
        return "unknown"
    if currency is None:  # a stored request without its currency: the amount as written
        return amount
    return format_money(Decimal(amount), currency, code=True)


def document_lines(details: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Every field of a details document as (path, value), in canonical (sorted) order:
    what an approver reads before approving its hash."""
    lines: list[tuple[str, str]] = []
    for key in sorted(details):
        value = details[key]
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            lines.extend(document_lines(value, f"{path}."))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, Mapping):
                    lines.extend(document_lines(item, f"{path}[{index}]."))
                else:
                    lines.append((f"{path}[{index}]", str(item)))
        else:
            lines.append((path, "—" if value is None else str(value)))
    return lines


# --- who may decide ------------------------------------------------------------------------


def same_person(one: str, other: str) -> bool:
    """Operator names compared as people: `Alice` and `alice ` are one person."""
    return one.strip().casefold() == other.strip().casefold()


def check_approval(request: ApprovalRequest, approver: Actor, seen_hash: str) -> list[str]:
    """Every reason `approver` may not approve `request` having been shown `seen_hash`."""
    problems: list[str] = []
    if not allowed(approver.role, Intent.DECIDE):
        problems.append(
            f"{approver.name} ({approver.role}) may not approve: only a trader or supervisor"
        )
    if same_person(approver.name, request.requested_by):
        problems.append(
            f"nobody approves their own request: {request.approval_id} was requested by "
            f"{request.requested_by}"
        )
    problems.extend(_binding_problems(request, seen_hash))
    return problems


def check_rejection(
    request: ApprovalRequest, actor: Actor, seen_hash: str, note: str | None
) -> list[str]:
    """Every reason `actor` may not reject `request` (its requester may: a withdrawal)."""
    problems: list[str] = []
    if not allowed(actor.role, Intent.DECIDE) and not same_person(actor.name, request.requested_by):
        problems.append(f"{actor.name} ({actor.role}) may not reject: only a trader or supervisor")
    if not (note or "").strip():
        problems.append("rejecting needs a reason")
    problems.extend(_binding_problems(request, seen_hash))
    return problems


def _binding_problems(request: ApprovalRequest, seen_hash: str) -> list[str]:
    problems: list[str] = []
    if request.state is not ApprovalState.PENDING:
        by = f" by {request.decided_by}" if request.decided_by else ""
        problems.append(f"request {request.approval_id} is already {request.state.value}{by}")
    if details_hash(request.details) != request.details_hash:
        problems.append(
            f"the stored details of {request.approval_id} do not match their hash "
            "(run `risk-tui audit verify`)"
        )
    if seen_hash != request.details_hash:
        problems.append(
            f"the details shown are not those of request {request.approval_id}: look again"
        )
    return problems


# --- the kill switch -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KillSwitch:
    """The desk's kill switch as stored: engaged or not, by whom, when and why."""

    engaged: bool
    engaged_by: str | None = None
    engaged_at: datetime | None = None
    reason: str | None = None
    released_by: str | None = None
    released_at: datetime | None = None

    @classmethod
    def unreadable(cls, problem: str) -> KillSwitch:
        """The switch as the desk takes it when its state cannot be read: engaged, by nobody
        (fail closed: a switch nobody can read blocks every liquidation until it can be)."""
        return cls(engaged=True, reason=f"its state cannot be read: {problem}")

    @property
    def is_unreadable(self) -> bool:
        """Taken as engaged because it could not be read (every real engagement has a
        supervisor's name)."""
        return self.engaged and self.engaged_by is None

    def describe(self) -> str:
        """`KILL SWITCH engaged by sue at 2026-11-23 02:15 UTC: liquidations blocked`."""
        if self.is_unreadable:
            return "KILL SWITCH state cannot be read: liquidations blocked"
        if not self.engaged:
            if self.released_by is None:
                return "kill switch released: liquidations allowed"
            return (
                f"kill switch released by {self.released_by} at {_utc(self.released_at)}: "
                "liquidations allowed"
            )
        return (
            f"KILL SWITCH engaged by {self.engaged_by} at {_utc(self.engaged_at)}: "
            "liquidations blocked"
        )

    def refusal(self) -> str:
        """Why a liquidation cannot go now, in one line."""
        if self.is_unreadable:
            return f"{self.describe()} until it can be read ({self.reason})"
        return f"{self.describe()} until a supervisor releases it (reason: {self.reason})"


def check_kill_switch(actor: Actor, switch: KillSwitch, *, engage: bool, reason: str) -> list[str]:
    """Every reason `actor` may not engage (or release) the kill switch now."""
    problems: list[str] = []
    verb = "engage" if engage else "release"
    if not allowed(actor.role, Intent.KILL_SWITCH):
        problems.append(
            f"{actor.name} ({actor.role}) may not {verb} the kill switch: supervisors only"
        )
    if not reason.strip():
        problems.append(f"{'engaging' if engage else 'releasing'} the kill switch needs a reason")
    if switch.is_unreadable:
        problems.append(switch.refusal())
    elif engage and switch.engaged:
        problems.append(f"the kill switch is already engaged (by {switch.engaged_by})")
    elif not engage and not switch.engaged:
        problems.append("the kill switch is not engaged")
    return problems


__all__ = [
    "APPROVAL_ID_PREFIX",
    "KIND_WORDS",
    "ApprovalKind",
    "ApprovalRequest",
    "ApprovalState",
    "KillSwitch",
    "awaiting_line",
    "check_approval",
    "check_kill_switch",
    "check_rejection",
    "close_category_of",
    "close_reason_of",
    "close_request",
    "deadline_of",
    "deadline_request",
    "describe",
    "details_hash",
    "document_lines",
    "liquidation_request",
    "new_approval_id",
    "old_deadline_of",
    "order_of",
    "plan_cancel_request",
    "plan_of",
    "plan_request",
    "same_person",
]
