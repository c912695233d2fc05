"""Met by deposit: the cash movements an open call counts, their net, and how they are recorded.

SPEC.md (settled): a call is met by deposit when the `cash_movements` first received in a
poll after the poll that opened it — counted once each by `movement_id`, whatever their
`ts` — net (deposits − withdrawals, each in the account's base currency at the fx of the
poll that brought it) reach the amount called at trigger. A movement received in the
opening poll, or before, is already in the cash the trigger amount was computed on, so
it counts toward no call.

Pure: the desk decides which call a movement counts toward (`desk.deposits`), storage
keeps them (`cash_movements`), the snapshots carry them (`movements_payload`) and the
History tab reads them back (`movement_lines`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any

from risk_tui.core.model import CashMovement, MovementKind
from risk_tui.core.money import ZERO, context


@dataclass(frozen=True, slots=True)
class ReceivedMovement:
    """A cash movement as the desk received it: when, in which poll, toward which call."""

    movement_id: str
    account_id: str
    currency: str
    amount: Decimal  # positive, in `currency`
    kind: MovementKind
    ts: datetime  # the feed's
    received_at: datetime  # the poll that brought it
    feed_cursor: str | None  # that poll's cursor
    call_id: str | None  # the open call it counts toward; None: toward none
    base_currency: str | None  # the account's, when the book knew the account
    fx: Decimal | None  # movement currency → base at that poll; None: no rate then
    base_amount: Decimal | None  # signed (withdrawals negative), in the base currency

    @classmethod
    def of(
        cls,
        movement: CashMovement,
        *,
        received_at: datetime,
        feed_cursor: str | None,
        call_id: str | None,
        base_currency: str | None,
        fx: Decimal | None,
    ) -> ReceivedMovement:
        return cls(
            movement.movement_id,
            movement.account_id,
            movement.currency,
            movement.amount,
            movement.kind,
            movement.ts,
            received_at,
            feed_cursor,
            call_id,
            base_currency,
            fx,
            converted(movement, base_currency, fx),
        )


def converted(
    movement: CashMovement, base_currency: str | None, fx: Decimal | None
) -> Decimal | None:
    """The movement signed, in the base currency at `fx`; None without a rate."""
    if base_currency is None or fx is None:
        return None
    with localcontext(context()):
        return movement.signed_amount * fx


def net_deposits(movements: Iterable[ReceivedMovement]) -> Decimal | None:
    """Deposits − withdrawals in the base currency; None when there are none, or when
    one could not be converted (the net is then not known: never guessed)."""
    total = ZERO
    counted = False
    with localcontext(context()):
        for received in movements:
            if received.base_amount is None:
                return None
            total += received.base_amount
            counted = True
    return total if counted else None


def movement_json(received: ReceivedMovement) -> dict[str, Any]:
    """One movement as a snapshot records it (decimal strings, ISO times)."""
    return {
        "movement_id": received.movement_id,
        "kind": received.kind.value,
        "currency": received.currency,
        "amount": str(received.amount),
        "ts": received.ts.isoformat(),
        "received_at": received.received_at.isoformat(),
        "feed_cursor": received.feed_cursor,
        "fx": None if received.fx is None else str(received.fx),
        "base_amount": None if received.base_amount is None else str(received.base_amount),
    }


def movements_payload(movements: Sequence[ReceivedMovement]) -> dict[str, Any]:
    """What a snapshot of a call with counted movements adds: them, and their net."""
    net = net_deposits(movements)
    return {
        "cash_movements": [movement_json(m) for m in movements],
        "net_deposits": None if net is None else str(net),
    }


@dataclass(frozen=True, slots=True)
class MovementLine:
    """One counted movement as a stored snapshot recorded it (None: missing or unreadable)."""

    movement_id: str
    kind: str
    currency: str
    amount: Decimal | None
    ts: str
    received_at: str
    fx: Decimal | None
    base_amount: Decimal | None

    @property
    def deposit(self) -> bool:
        return self.kind == MovementKind.DEPOSIT.value


def _decimal(raw: Any) -> Decimal | None:
    if not isinstance(raw, str):
        return None  # a float in a payload is not an exact amount
    try:
        value = Decimal(raw)
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() else None


def movement_lines(payload: Mapping[str, Any] | None) -> list[MovementLine]:
    """The counted movements a snapshot recorded, in the order received."""
    raw = payload.get("cash_movements") if payload is not None else None
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        return []
    lines = []
    for entry in raw:
        if not isinstance(entry, Mapping):
            continue
        lines.append(
            MovementLine(
                movement_id=str(entry.get("movement_id") or ""),
                kind=str(entry.get("kind") or ""),
                currency=str(entry.get("currency") or ""),
                amount=_decimal(entry.get("amount")),
                ts=str(entry.get("ts") or ""),
                received_at=str(entry.get("received_at") or ""),
                fx=_decimal(entry.get("fx")),
                base_amount=_decimal(entry.get("base_amount")),
            )
        )
    return lines


__all__ = [
    "MovementLine",
    "ReceivedMovement",
    "converted",
    "movement_json",
    "movement_lines",
    "movements_payload",
    "net_deposits",
]
