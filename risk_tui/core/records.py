"""The records the desk stores and its screens show: orders, messages and plans as
stored, snapshots, remarks, audit entries, order stamps, engine heartbeats.

Plain frozen data. Storage makes them from rows (`risk_tui.storage`), the desk hands them
to the terminal through its API (`risk_tui.desk.api`); neither the terminal nor the core
needs SQL to read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, cast

from risk_tui.core.actions import (
    AutoCondition,
    AutoLiquidationPlan,
    Channel,
    MessageIntent,
    OrderIntent,
    OrderType,
    PlanLine,
    SendState,
)
from risk_tui.core.lifecycle import SnapshotScenario
from risk_tui.core.model import Side

DailyKey = tuple[str, str, date]  # (job, call_id, day): e.g. ("snapshot", "MC…", 2026-03-02)


@dataclass(frozen=True, slots=True)
class StoredOrder:
    client_order_id: str
    call_id: str | None
    account_id: str
    symbol: str
    side: Side
    quantity: Decimal
    order_type: str
    limit_price: Decimal | None
    reason: str
    operator: str
    created_at: datetime
    send_state: SendState
    order_id: str | None  # the broker's id, once acknowledged
    status: str | None  # the broker's status, once acknowledged
    filled_quantity: Decimal
    avg_price: Decimal | None
    reject_reason: str | None
    updated_at: datetime
    account_state: dict[str, Any]  # what the operator saw when deciding

    def intent(self) -> OrderIntent:
        """The order as first decided: what a re-send posts, byte for byte the same key."""
        return OrderIntent(
            client_order_id=self.client_order_id,
            account_id=self.account_id,
            symbol=self.symbol,
            side=self.side,
            quantity=self.quantity,
            order_type=cast(OrderType, self.order_type),
            limit_price=self.limit_price,
            reason=self.reason,
            reference=self.call_id,
            operator=self.operator,
        )


@dataclass(frozen=True, slots=True)
class StoredMessage:
    message_id: str
    call_id: str | None
    account_id: str
    channel: str
    subject: str | None
    body: str
    operator: str
    created_at: datetime
    send_state: SendState
    status: str | None  # queued, sent, failed: the broker's word, once acknowledged
    updated_at: datetime

    def intent(self) -> MessageIntent:
        return MessageIntent(
            message_id=self.message_id,
            account_id=self.account_id,
            channel=cast(Channel, self.channel),
            subject=self.subject,
            body=self.body,
            reference=self.call_id,
            operator=self.operator,
        )


@dataclass(frozen=True, slots=True)
class OrderOutcome:
    """Where an order stands after `submit_order`.

    `created`: this call recorded it (False: the key was known, e.g. a double key press).
    `posts`: requests this call sent. `error`: the last problem when still in doubt.
    """

    order: StoredOrder
    created: bool
    posts: int = 0
    error: str | None = None

    @property
    def send_state(self) -> SendState:
        return self.order.send_state


@dataclass(frozen=True, slots=True)
class MessageOutcome:
    message: StoredMessage
    created: bool
    posts: int = 0
    error: str | None = None

    @property
    def send_state(self) -> SendState:
        return self.message.send_state


def same_order(stored: StoredOrder, intent: OrderIntent) -> bool:
    """Whether `intent` is the order already stored under its key (a double press)."""
    return stored.intent() == intent


def same_message(stored: StoredMessage, intent: MessageIntent) -> bool:
    return stored.intent() == intent


class AutoLiquidationState(StrEnum):
    """Where a scheduled auto-liquidation stands (`auto_liquidations.state`).

    scheduled  waiting for its time (or for live data at its time)
    executed   its orders were submitted (each line's outcome is in the audit entry)
    cancelled  it never sent anything: the call ended first, its condition no longer
               held at its time, or an operator withdrew it
    """

    SCHEDULED = "scheduled"
    EXECUTED = "executed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class StoredAutoLiquidation:
    """One row of `auto_liquidations`: the plan as decided, and where it stands."""

    plan_id: str
    call_id: str
    account_id: str
    execute_at: datetime
    condition: AutoCondition
    lines: tuple[PlanLine, ...]
    operator: str
    moved_deadline: datetime | None
    deadline_reason: str | None
    created_at: datetime
    state: AutoLiquidationState
    updated_at: datetime

    def plan(self) -> AutoLiquidationPlan:
        """The plan as the operator scheduled it."""
        return AutoLiquidationPlan(
            plan_id=self.plan_id,
            call_id=self.call_id,
            account_id=self.account_id,
            execute_at=self.execute_at,
            condition=self.condition,
            lines=self.lines,
            operator=self.operator,
            moved_deadline=self.moved_deadline,
            deadline_reason=self.deadline_reason,
        )

    def client_order_id(self, line_index: int) -> str:
        """The key of the order for one line: the same in every run, so a line goes once."""
        return plan_line_key(self.plan_id, line_index)


def plan_line_key(plan_id: str, line_index: int) -> str:
    return f"{plan_id}-{line_index}"


def same_plan(stored: StoredAutoLiquidation, plan: AutoLiquidationPlan) -> bool:
    """Whether `plan` is the one already stored under its id (a double press)."""
    return stored.plan() == plan


@dataclass(frozen=True, slots=True)
class EngineBeat:
    """One engine process of the desk as its heartbeat row says (ages in seconds)."""

    engine_id: str
    host: str
    pid: int
    role: str
    started_at: datetime
    beat_age: float
    poll_age: float | None


@dataclass(frozen=True, slots=True)
class StoredSnapshot:
    seq: int
    call_id: str
    account_id: str
    scenario: SnapshotScenario
    taken_at: datetime
    feed_as_of: datetime | None
    feed_cursor: str | None
    payload: dict[str, Any]
    hash: str


HistoryKey = tuple[datetime, str]  # (ended_at, call_id): a place in history, newest first


@dataclass(frozen=True, slots=True)
class CallEnds:
    """An ended call's first trigger snapshot and last end snapshot (None when missing)."""

    trigger: StoredSnapshot | None
    end: StoredSnapshot | None


@dataclass(frozen=True, slots=True)
class StoredRemark:
    id: int
    call_id: str
    at: datetime
    operator: str
    text: str
    exception: bool


@dataclass(frozen=True, slots=True)
class StoredAudit:
    seq: int
    at: datetime
    operator: str
    action: str
    call_id: str | None
    account_id: str | None
    details: dict[str, Any]
    hash: str


@dataclass(frozen=True, slots=True)
class OrderStamp:
    """Where one order stands: its key, when it was recorded, and every column that moves.

    Two equal stamps are the same order in the same state (the clock plays no part, so
    a change within one clock tick still shows), which lets a blotter re-read its window
    every second and fetch whole rows (`orders_by_key`) only for the orders that moved.
    """

    client_order_id: str
    created_at: datetime
    send_state: SendState
    order_id: str | None
    status: str | None
    filled_quantity: Decimal
    avg_price: Decimal | None
    reject_reason: str | None
    updated_at: datetime
