"""Desk actions as pure data: orders and messages, their idempotency keys and pre-send checks.

An action is decided here and sent by `risk_tui.desk.outbox`. Its key (`client_order_id`,
`message_id`) is minted once, when the operator confirms, and is the action's identity
for ever after: a retry, a restart or a second key press re-uses it, so the broker sees
one order however often it is asked. The checks return every problem at once, in the
operator's words, so one refusal says everything that is wrong.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal, get_args

from risk_tui.core.calendar import DeadlineRule
from risk_tui.core.model import Side
from risk_tui.core.roles import Actor, Intent, allowed, refusal

OrderType = Literal["market", "limit"]
Channel = Literal["app", "email", "sms", "voice"]

ORDER_TYPES: tuple[str, ...] = get_args(OrderType)
ORDER_STATUSES = ("working", "filled", "partially_filled", "cancelled", "rejected")
CHANNELS: tuple[str, ...] = get_args(Channel)

CLIENT_ORDER_ID_PREFIX = "RT-O-"
MESSAGE_ID_PREFIX = "RT-M-"


class ActionError(Exception):
    """An action the desk could not carry out; str() is one line for the operator."""


class ActionRefused(ActionError):
    """The checks refused the action: nothing was recorded, nothing was sent."""

    def __init__(self, what: str, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__(f"{what} refused: " + "; ".join(problems))


class SendState(StrEnum):
    """Where an action stands between the desk and the broker (`orders/messages.send_state`).

    pending      recorded, not yet answered (perhaps never sent: the process may have died)
    in_doubt     sent, no usable answer (timeout, connection lost, 5xx): it may exist
    acknowledged the broker answered with it (201/200), or a status query found it
    failed       the broker refused it (422), or it was withdrawn before it ever existed
    """

    PENDING = "pending"
    IN_DOUBT = "in_doubt"
    ACKNOWLEDGED = "acknowledged"
    FAILED = "failed"

    @property
    def needs_send(self) -> bool:
        """Not settled: to be (re)sent with the same key, or reconciled by a status query."""
        return self in (SendState.PENDING, SendState.IN_DOUBT)


# The broker's word is final: once it has acknowledged an action nothing local (a late
# timeout from a concurrent retry) may move it back to doubt. `failed → acknowledged` is
# allowed because a status query that finds the order is the truth about it.
_MOVES: dict[SendState, frozenset[SendState]] = {
    SendState.PENDING: frozenset(SendState),
    SendState.IN_DOUBT: frozenset({SendState.IN_DOUBT, SendState.ACKNOWLEDGED, SendState.FAILED}),
    SendState.ACKNOWLEDGED: frozenset({SendState.ACKNOWLEDGED}),
    SendState.FAILED: frozenset({SendState.FAILED, SendState.ACKNOWLEDGED}),
}


def can_move(current: SendState, new: SendState) -> bool:
    return new in _MOVES[current]


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """A liquidation order as decided by an operator, before and independent of sending."""

    client_order_id: str
    account_id: str
    symbol: str
    side: Side
    quantity: Decimal
    order_type: OrderType
    limit_price: Decimal | None
    reason: str  # "margin_call", "recall", …
    reference: str | None  # the margin call id, when there is one
    operator: str

    def wire(self) -> dict[str, str | None]:
        """The FEED.md `POST /v1/orders` body: amounts as decimal strings."""
        return {
            "client_order_id": self.client_order_id,
            "account_id": self.account_id,
            "symbol": self.symbol,
            "side": self.side.value,
            "quantity": str(self.quantity),
            "order_type": self.order_type,
            "limit_price": None if self.limit_price is None else str(self.limit_price),
            "reason": self.reason,
            "reference": self.reference,
            "operator": self.operator,
        }


@dataclass(frozen=True, slots=True)
class MessageIntent:
    """A message to a client (margin-call notice, reminder), before and independent of sending."""

    message_id: str
    account_id: str
    channel: Channel
    subject: str | None
    body: str
    reference: str | None  # the margin call id, when there is one
    operator: str

    def wire(self) -> dict[str, str | None]:
        """The FEED.md `POST /v1/messages` body."""
        return {
            "message_id": self.message_id,
            "account_id": self.account_id,
            "channel": self.channel,
            "subject": self.subject,
            "body": self.body,
            "reference": self.reference,
            "operator": self.operator,
        }


@dataclass(frozen=True, slots=True)
class OrderReport:
    """The broker's word on one order (a POST answer or a `GET /v1/orders` row)."""

    client_order_id: str
    order_id: str
    status: str  # working, filled, partially_filled, cancelled, rejected
    filled_quantity: Decimal
    avg_price: Decimal | None
    reject_reason: str | None = None


def new_client_order_id() -> str:
    return f"{CLIENT_ORDER_ID_PREFIX}{uuid.uuid4().hex}"


def new_message_id() -> str:
    return f"{MESSAGE_ID_PREFIX}{uuid.uuid4().hex}"


def check_order(
    intent: OrderIntent,
    *,
    position_quantity: Decimal | None,
    call_open: bool,
    data_fresh: bool,
    actor: Actor,
    override_reason: str | None,
) -> list[str]:
    """Every reason not to send `intent`; empty means it may go.

    `position_quantity` is the account's signed holding of the symbol (shorts negative;
    None: no position). `call_open` says the account has an open margin call (for a
    recall buy-in, the caller passes whether the account is short a recalled symbol).
    Outside a call only a trader or supervisor may liquidate, and only with a reason —
    the outbox audits that override. Stale data have no override: nobody sends an
    order computed on figures the desk cannot vouch for.
    """
    problems: list[str] = []
    refused = refusal(actor, Intent.LIQUIDATE)
    if refused:
        problems.append(refused)
    if intent.operator != actor.name:
        problems.append(f"the order names operator {intent.operator!r}, not {actor.name!r}")
    if not data_fresh:
        problems.append("the account's figures are stale: wait for the feed to catch up")
    problems.extend(_order_shape_problems(intent))
    problems.extend(_position_problems(intent, position_quantity))
    if not call_open:
        if not (override_reason or "").strip():
            problems.append(
                f"account {intent.account_id} is not in margin call: an override "
                "by a trader or supervisor, with a reason, is needed"
            )
        elif not allowed(actor.role, Intent.LIQUIDATE):
            problems.append(
                f"account {intent.account_id} is not in margin call and {actor.name} "
                f"({actor.role}) may not override that"
            )
    return problems


def override_used(call_open: bool, override_reason: str | None) -> bool:
    """Whether a permitted order goes out on an override (and so must be audited as one)."""
    return not call_open and bool((override_reason or "").strip())


def check_message(intent: MessageIntent, actor: Actor) -> list[str]:
    """Every reason not to send `intent`; empty means it may go."""
    problems: list[str] = []
    refused = refusal(actor, Intent.MESSAGE)
    if refused:
        problems.append(refused)
    if intent.operator != actor.name:
        problems.append(f"the message names operator {intent.operator!r}, not {actor.name!r}")
    if intent.channel not in CHANNELS:
        problems.append(f"unknown channel {intent.channel!r}: use one of {', '.join(CHANNELS)}")
    if not intent.body.strip():
        problems.append("the message body is empty")
    if not intent.message_id.strip():
        problems.append("the message has no message_id")
    if not intent.account_id.strip():
        problems.append("the message names no account")
    return problems


def check_cancel(actor: Actor) -> list[str]:
    """Cancelling a working order is a trading action: the roles that may liquidate."""
    refused = refusal(actor, Intent.CANCEL_ORDER)
    return [refused] if refused else []


def deadline_problems(
    deadline: datetime | None,
    reason: str | None,
    now: datetime,
    *,
    rule: DeadlineRule | None,
    what: str = "the new deadline",
) -> list[str]:
    """Every reason a call's deadline may not be moved to `deadline` at `now`.

    `rule`: the call's market calendar and cut-off — a deadline on a day the market does
    not trade, or after the cut-off, is refused with the next valid one offered. None only
    when the call (hence its market) is unknown, which the caller refuses already.
    """
    problems: list[str] = []
    if not (reason or "").strip():
        problems.append("moving a deadline needs a reason")
    if deadline is None or deadline.tzinfo is None or deadline.utcoffset() is None:
        problems.append(f"{what} must carry its time zone")
    elif deadline <= now:
        problems.append(f"{what} {deadline.isoformat()} is not in the future")
    elif rule is not None and (outside := rule.problem(deadline)) is not None:
        problems.append(f"{what}: {outside}")
    return problems


def _order_shape_problems(intent: OrderIntent) -> list[str]:
    problems: list[str] = []
    if not intent.client_order_id.strip():
        problems.append("the order has no client_order_id")
    if not intent.account_id.strip() or not intent.symbol.strip():
        problems.append("the order must name an account and a symbol")
    if not intent.quantity.is_finite() or intent.quantity <= 0:
        problems.append(f"quantity must be more than zero (got {intent.quantity})")
    if intent.order_type not in ORDER_TYPES:
        problems.append(f"unknown order type {intent.order_type!r}: use market or limit")
    elif intent.order_type == "limit":
        if intent.limit_price is None:
            problems.append("a limit order needs a limit price")
        elif not intent.limit_price.is_finite() or intent.limit_price <= 0:
            problems.append(f"limit price must be more than zero (got {intent.limit_price})")
    elif intent.limit_price is not None:
        problems.append("a market order takes no limit price")
    return problems


def _position_problems(intent: OrderIntent, position_quantity: Decimal | None) -> list[str]:
    held = position_quantity if position_quantity is not None else Decimal(0)
    if not intent.quantity.is_finite():
        return []  # already reported
    if intent.side is Side.SELL:
        if held <= 0:
            return [f"account {intent.account_id} holds no long {intent.symbol} to sell"]
        if intent.quantity > held:
            return [f"sell {intent.quantity} {intent.symbol} is more than the {held} held"]
    elif intent.side is Side.BUY:
        if held >= 0:
            return [f"account {intent.account_id} has no short {intent.symbol} to cover"]
        if intent.quantity > -held:
            return [f"buy {intent.quantity} {intent.symbol} is more than the {-held} short"]
    return []


__all__ = [
    "CHANNELS",
    "CLIENT_ORDER_ID_PREFIX",
    "MESSAGE_ID_PREFIX",
    "ORDER_STATUSES",
    "ORDER_TYPES",
    "ActionError",
    "ActionRefused",
    "Channel",
    "MessageIntent",
    "OrderIntent",
    "OrderReport",
    "OrderType",
    "SendState",
    "can_move",
    "check_cancel",
    "check_message",
    "check_order",
    "deadline_problems",
    "new_client_order_id",
    "new_message_id",
    "override_used",
]


class AutoCondition(StrEnum):
    """When a scheduled auto-liquidation still fires at its time."""

    STILL_IN_CALL = "still_in_call"  # the call is still open
    BELOW_FM = "below_fm"  # the account is below force-liquidation margin


@dataclass(frozen=True, slots=True)
class PlanLine:
    symbol: str
    side: Side
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class AutoLiquidationPlan:
    """An operator's instruction: at `execute_at`, if `condition` holds, send these orders.

    Cancelled automatically when the call ends first. `moved_deadline` (with its reason)
    moves the call's deadline when the plan is scheduled.
    """

    plan_id: str
    call_id: str
    account_id: str
    execute_at: datetime  # timezone-aware
    condition: AutoCondition
    lines: tuple[PlanLine, ...]
    operator: str
    moved_deadline: datetime | None = None
    deadline_reason: str | None = None


def new_plan_id() -> str:
    return f"RT-A-{uuid.uuid4().hex}"


def plan_wire(plan: AutoLiquidationPlan) -> dict[str, Any]:
    """The plan as JSON-ready data (amounts as decimal strings): for the audit log."""
    return {
        "plan_id": plan.plan_id,
        "call_id": plan.call_id,
        "account_id": plan.account_id,
        "execute_at": plan.execute_at.isoformat(),
        "condition": plan.condition.value,
        "lines": lines_wire(plan.lines),
        "operator": plan.operator,
        "moved_deadline": None if plan.moved_deadline is None else plan.moved_deadline.isoformat(),
        "deadline_reason": plan.deadline_reason,
    }


def lines_wire(lines: tuple[PlanLine, ...]) -> list[dict[str, str]]:
    return [
        {"symbol": line.symbol, "side": line.side.value, "quantity": str(line.quantity)}
        for line in lines
    ]
