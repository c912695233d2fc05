"""Stored orders, messages, plans, four-eyes requests, the kill switch: rows as records.

The Store's methods (`record_order_intent`, `mark_order`, `schedule_auto_liquidation`, …)
and their errors live in `repository.py`; this module is the one place a row becomes a
record and an intent a row.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from risk_tui.core.actions import (
    AutoCondition,
    AutoLiquidationPlan,
    MessageIntent,
    OrderIntent,
    PlanLine,
    SendState,
    lines_wire,
    plan_wire,
)
from risk_tui.core.four_eyes import ApprovalKind, ApprovalRequest, ApprovalState, KillSwitch
from risk_tui.core.model import Side
from risk_tui.core.records import (
    AutoLiquidationState,
    StoredAutoLiquidation,
    StoredMessage,
    StoredOrder,
)


def order_to_row(
    intent: OrderIntent, account_state: Mapping[str, Any], at: datetime
) -> dict[str, Any]:
    return {
        "client_order_id": intent.client_order_id,
        "call_id": intent.reference,
        "account_id": intent.account_id,
        "symbol": intent.symbol,
        "side": intent.side.value,
        "quantity": intent.quantity,
        "order_type": intent.order_type,
        "limit_price": intent.limit_price,
        "reason": intent.reason,
        "operator": intent.operator,
        "created_at": at,
        "send_state": SendState.PENDING.value,
        "order_id": None,
        "status": None,
        "filled_quantity": Decimal(0),
        "avg_price": None,
        "reject_reason": None,
        "updated_at": at,
        "account_state": dict(account_state),
    }


def order_from_row(row: Mapping[Any, Any]) -> StoredOrder:
    return StoredOrder(
        client_order_id=row["client_order_id"],
        call_id=row["call_id"],
        account_id=row["account_id"],
        symbol=row["symbol"],
        side=Side(row["side"]),
        quantity=Decimal(row["quantity"]),
        order_type=row["order_type"],
        limit_price=row["limit_price"],
        reason=row["reason"],
        operator=row["operator"],
        created_at=row["created_at"],
        send_state=SendState(row["send_state"]),
        order_id=row["order_id"],
        status=row["status"],
        filled_quantity=Decimal(row["filled_quantity"]),
        avg_price=row["avg_price"],
        reject_reason=row["reject_reason"],
        updated_at=row["updated_at"],
        account_state=row["account_state"],
    )


def message_to_row(intent: MessageIntent, at: datetime) -> dict[str, Any]:
    return {
        "message_id": intent.message_id,
        "call_id": intent.reference,
        "account_id": intent.account_id,
        "channel": intent.channel,
        "subject": intent.subject,
        "body": intent.body,
        "operator": intent.operator,
        "created_at": at,
        "send_state": SendState.PENDING.value,
        "status": None,
        "updated_at": at,
    }


def message_from_row(row: Mapping[Any, Any]) -> StoredMessage:
    return StoredMessage(
        message_id=row["message_id"],
        call_id=row["call_id"],
        account_id=row["account_id"],
        channel=row["channel"],
        subject=row["subject"],
        body=row["body"],
        operator=row["operator"],
        created_at=row["created_at"],
        send_state=SendState(row["send_state"]),
        status=row["status"],
        updated_at=row["updated_at"],
    )


def auto_liquidation_to_row(plan: AutoLiquidationPlan, at: datetime) -> dict[str, Any]:
    # The table has no account or lines columns: they live in the `plan` document.
    return {
        "id": plan.plan_id,
        "call_id": plan.call_id,
        "execute_at": plan.execute_at,
        "condition": plan.condition.value,
        "plan": {"account_id": plan.account_id, "lines": lines_wire(plan.lines)},
        "moved_deadline": plan.moved_deadline,
        "reason": plan.deadline_reason,
        "operator": plan.operator,
        "created_at": at,
        "state": AutoLiquidationState.SCHEDULED.value,
        "updated_at": at,
    }


def auto_liquidation_from_row(row: Mapping[Any, Any]) -> StoredAutoLiquidation:
    document = row["plan"]
    return StoredAutoLiquidation(
        plan_id=row["id"],
        call_id=row["call_id"],
        account_id=document["account_id"],
        execute_at=row["execute_at"],
        condition=AutoCondition(row["condition"]),
        lines=tuple(
            PlanLine(line["symbol"], Side(line["side"]), Decimal(line["quantity"]))
            for line in document["lines"]
        ),
        operator=row["operator"],
        moved_deadline=row["moved_deadline"],
        deadline_reason=row["reason"],
        created_at=row["created_at"],
        state=AutoLiquidationState(row["state"]),
        updated_at=row["updated_at"],
    )


def approval_to_row(request: ApprovalRequest) -> dict[str, Any]:
    return {
        "id": request.approval_id,
        "kind": request.kind.value,
        "call_id": request.call_id,
        "account_id": request.account_id,
        "details": request.details,
        "details_hash": request.details_hash,
        "requested_by": request.requested_by,
        "requested_at": request.requested_at,
        "state": request.state.value,
        "decided_by": request.decided_by,
        "decided_at": request.decided_at,
        "note": request.note,
        "replaces": request.replaces,
        "updated_at": request.decided_at or request.requested_at,
    }


def approval_from_row(row: Mapping[Any, Any]) -> ApprovalRequest:
    return ApprovalRequest(
        approval_id=row["id"],
        kind=ApprovalKind(row["kind"]),
        call_id=row["call_id"],
        account_id=row["account_id"],
        details=row["details"],
        details_hash=row["details_hash"],
        requested_by=row["requested_by"],
        requested_at=row["requested_at"],
        state=ApprovalState(row["state"]),
        decided_by=row["decided_by"],
        decided_at=row["decided_at"],
        note=row["note"],
        replaces=row["replaces"],
    )


def kill_switch_from_row(row: Mapping[Any, Any]) -> KillSwitch:
    return KillSwitch(
        engaged=bool(row["engaged"]),
        engaged_by=row["engaged_by"],
        engaged_at=row["engaged_at"],
        reason=row["reason"],
        released_by=row["released_by"],
        released_at=row["released_at"],
    )


__all__ = [
    "approval_from_row",
    "approval_to_row",
    "auto_liquidation_from_row",
    "auto_liquidation_to_row",
    "kill_switch_from_row",
    "message_from_row",
    "message_to_row",
    "order_from_row",
    "order_to_row",
    "plan_wire",
]
