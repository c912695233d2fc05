"""Stored orders and messages: the rows of `orders`/`messages` as frozen records, and their errors.

The Store's methods (`record_order_intent`, `mark_order`, …) and their errors live in
`repository.py`; this module is the one place a row becomes a record and an intent a row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from risk_tui.core.actions import Channel, MessageIntent, OrderIntent, OrderType, SendState
from risk_tui.core.model import Side


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


def same_order(stored: StoredOrder, intent: OrderIntent) -> bool:
    """Whether `intent` is the order already stored under its key (a double press)."""
    return stored.intent() == intent


def same_message(stored: StoredMessage, intent: MessageIntent) -> bool:
    return stored.intent() == intent


__all__ = [
    "StoredMessage",
    "StoredOrder",
    "message_from_row",
    "message_to_row",
    "order_from_row",
    "order_to_row",
    "same_message",
    "same_order",
]
