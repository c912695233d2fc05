"""Liquidation orders: the outbox's orders, with the broker's reports, cancels and the order window.

Why beside the generic outbox: an order has more than a message — fills and the
broker's order id, cancel requests, the orders still worked, the window the orders tab
reads every second — and no order is recorded while the kill switch is engaged. The
switch is read under the audit-head lock that engaging it takes too, so an order is
either recorded before the switch (and the engaging sweep cancels it) or refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from risk_tui.core.actions import OrderIntent, OrderReport, SendState
from risk_tui.core.four_eyes import KillSwitch
from risk_tui.core.lifecycle import AuditEntry
from risk_tui.core.records import OrderStamp, StoredOrder, same_order
from risk_tui.core.roles import Actor
from risk_tui.storage.audited import audited
from risk_tui.storage.base import chunks
from risk_tui.storage.errors import KillSwitchEngaged, StorageError, UnknownOrder
from risk_tui.storage.kill_switch import read_kill_switch
from risk_tui.storage.outbox import UNSETTLED, Outbox, OutboxKind
from risk_tui.storage.rows import ORDER_ROWS, STAMP_ROWS
from risk_tui.storage.tables import orders

_WORKED = ("working", "partially_filled")  # broker statuses of an order still worked


def pending_order(
    intent: OrderIntent, account_state: Mapping[str, Any], at: datetime
) -> StoredOrder:
    """The order as first recorded, before it is sent: what the operator decided on."""
    return StoredOrder(
        client_order_id=intent.client_order_id,
        call_id=intent.reference,
        account_id=intent.account_id,
        symbol=intent.symbol,
        side=intent.side,
        quantity=intent.quantity,
        order_type=intent.order_type,
        limit_price=intent.limit_price,
        reason=intent.reason,
        operator=intent.operator,
        created_at=at,
        send_state=SendState.PENDING,
        order_id=None,
        status=None,
        filled_quantity=Decimal(0),
        avg_price=None,
        reject_reason=None,
        updated_at=at,
        account_state=dict(account_state),
    )


def _move_details(order: StoredOrder) -> dict[str, Any]:
    return {
        "client_order_id": order.client_order_id,
        "order_id": order.order_id,
        "status": order.status,
        "filled_quantity": str(order.filled_quantity),
        "avg_price": None if order.avg_price is None else str(order.avg_price),
        "reject_reason": order.reject_reason,
    }


async def _refuse_if_kill_switch_engaged(conn: AsyncConnection) -> None:
    """Refuse the order while the switch is engaged — or cannot be read (fail closed: its
    row gone or unreadable blocks orders like an engaged switch; a database error fails
    the whole transaction anyway)."""
    try:
        switch = await read_kill_switch(conn)
    except (StorageError, ValueError, TypeError) as unreadable:
        switch = KillSwitch.unreadable(str(unreadable))
    if switch.engaged:
        raise KillSwitchEngaged(switch)


class Orders(Outbox[StoredOrder, OrderIntent]):
    """Liquidation orders, recorded before they are sent to the broker."""

    kind = OutboxKind(
        table=orders,
        rows=ORDER_ROWS,
        key="client_order_id",
        noun="order",
        unknown=UnknownOrder,
        conflict="client_order_id {key} already names another order",
        same=same_order,
        created="order_created",
        moved={
            SendState.PENDING: "order_pending",
            SendState.IN_DOUBT: "order_in_doubt",
            SendState.ACKNOWLEDGED: "order_acknowledged",
            SendState.FAILED: "order_failed",
        },
        status_moved="order_status",
        move_details=_move_details,
    )

    async def record_intent(
        self,
        intent: OrderIntent,
        account_state: Mapping[str, Any],
        actor: Actor,
        override_reason: str | None = None,
        *,
        at: datetime | None = None,
    ) -> tuple[StoredOrder, bool]:
        """Record an order before it is sent; (row, created).

        Idempotent on `client_order_id`: a key already recorded returns its row and
        `created=False` (a double key press is one order), or raises `KeyConflict` when
        the key names a different order. `account_state` (JSON-ready) is what the operator
        decided on; it goes into the row and the audit entry. `override_reason` is given
        only when the order goes out on an override of "not in call"; it is audited as
        its own entry. Raises `KillSwitchEngaged` while the kill switch is engaged, and
        `UnknownCall` when `intent.reference` names no stored call.
        """
        at = at or self._clock()
        also: list[AuditEntry] = []
        if override_reason is not None and override_reason.strip():
            also.append(
                AuditEntry(
                    at=at,
                    operator=actor.name,
                    action="order_override",
                    call_id=intent.reference,
                    account_id=intent.account_id,
                    details={
                        "client_order_id": intent.client_order_id,
                        "override": "not_in_call",
                        "reason": override_reason,
                        "role": actor.role.value,
                    },
                )
            )
        return await self._record(
            intent,
            pending_order(intent, account_state, at),
            account_state,
            actor,
            at=at,
            also=also,
            # Read under the audit-head lock that engaging the switch takes too: an order
            # is either recorded before the switch (and its sweep cancels it) or refused.
            check=_refuse_if_kill_switch_engaged,
        )

    async def mark(
        self,
        client_order_id: str,
        send_state: SendState,
        *,
        status: str | None = None,
        order_id: str | None = None,
        filled_quantity: Decimal | None = None,
        avg_price: Decimal | None = None,
        reject_reason: str | None = None,
        detail: str | None = None,
        operator: str | None = None,
        at: datetime | None = None,
    ) -> StoredOrder:
        """Move an order to `send_state`, setting the fields given; the row as it now stands.

        The rules and the audit are the outbox's (`Outbox._mark`); a change of status or
        fills after acknowledgement is audited as `order_status`.
        """
        changes = {
            "status": status,
            "order_id": order_id,
            "filled_quantity": filled_quantity,
            "avg_price": avg_price,
            "reject_reason": reject_reason,
        }
        return await self._mark(
            client_order_id, send_state, changes, detail=detail, operator=operator, at=at
        )

    async def apply_order_reports(
        self, reports: Sequence[OrderReport], *, at: datetime | None = None
    ) -> list[StoredOrder]:
        """The broker's word on many orders, in one transaction; the rows that changed.

        Each report acknowledges its order (an in-doubt one is thereby reconciled) and
        sets status and fills. Reports of orders this desk did not record are ignored.
        """
        at = at or self._clock()
        by_key = {report.client_order_id: report for report in reports}
        changed: list[StoredOrder] = []
        if not by_key:
            return changed
        async with audited(self._engine) as tx:
            current: list[StoredOrder] = []
            for chunk in chunks(sorted(by_key)):
                result = await tx.conn.execute(
                    select(orders).where(orders.c.client_order_id.in_(chunk))
                )
                current.extend(ORDER_ROWS.from_row(row) for row in result.mappings())
            entries: list[AuditEntry] = []
            for order in sorted(current, key=lambda o: o.client_order_id):
                report = by_key[order.client_order_id]
                stored, entry = await self._move(
                    tx.conn,
                    order,
                    SendState.ACKNOWLEDGED,
                    report_changes(report),
                    detail="status query",
                    operator=None,
                    at=at,
                )
                if entry is not None:
                    entries.append(entry)
                    changed.append(stored)
            await tx.append_audit(entries)
        return changed

    async def record_cancel_request(
        self, client_order_id: str, actor: Actor, *, at: datetime | None = None
    ) -> StoredOrder:
        """Audit that `actor` asked the broker to cancel an order (before the request goes)."""
        at = at or self._clock()
        async with audited(self._engine) as tx:
            order = await self._get(tx.conn, client_order_id)
            if order is None:
                raise UnknownOrder(f"no order {client_order_id}")
            entry = AuditEntry(
                at=at,
                operator=actor.name,
                action="order_cancel_requested",
                call_id=order.call_id,
                account_id=order.account_id,
                details={
                    "client_order_id": client_order_id,
                    "order_id": order.order_id,
                    "status": order.status,
                    "send_state": order.send_state.value,
                    "role": actor.role.value,
                },
            )
            await tx.append_audit([entry])
        return order

    async def calls_with_fills(self) -> set[str]:
        """Calls on which a desk liquidation order has filled (wholly or partly)."""
        # Compared in Python: on SQLite the exact decimal is TEXT, which SQL would
        # compare with a number by type, not by value.
        query = select(orders.c.call_id, orders.c.filled_quantity).where(
            orders.c.call_id.is_not(None)
        )
        async with self._reader() as conn:
            return {call_id for call_id, filled in await conn.execute(query) if filled > 0}

    async def working_orders(self) -> list[StoredOrder]:
        """Acknowledged orders the broker still works: their fills are still to come."""
        async with self._reader() as conn:
            result = await conn.execute(
                select(orders).where(
                    orders.c.send_state == SendState.ACKNOWLEDGED.value,
                    orders.c.status.in_(_WORKED),
                )
            )
            return [ORDER_ROWS.from_row(row) for row in result.mappings()]

    async def order_window(
        self, limit: int = 200, *, also: Sequence[str] = (), scan: bool = True
    ) -> list[OrderStamp]:
        """The latest `limit` orders and the unfinished ones, newest first, as stamps.

        Unfinished: pending or in doubt, or acknowledged and still working. With `scan`
        every unfinished order is included, which reads the whole table (no index
        covers the states); without it only those of `also` (keys the caller already
        knows unfinished, looked up by key) that still are. Reads no account state.
        """
        columns = select(*STAMP_ROWS.columns_of(orders))
        latest = columns.order_by(
            orders.c.created_at.desc(), orders.c.client_order_id.desc()
        ).limit(max(0, limit))
        worked = (orders.c.send_state == SendState.ACKNOWLEDGED.value) & orders.c.status.in_(
            _WORKED
        )
        still = orders.c.send_state.in_(UNSETTLED) | worked
        queries = [latest]
        if scan:
            queries.append(columns.where(still))
        else:
            queries.extend(
                columns.where(orders.c.client_order_id.in_(chunk), still)
                for chunk in chunks(sorted(set(also)))
            )
        stamps: dict[str, OrderStamp] = {}
        async with self._reader() as conn:
            for query in queries:
                for row in (await conn.execute(query)).mappings():
                    stamps[row["client_order_id"]] = STAMP_ROWS.from_row(row)
        return sorted(
            stamps.values(), key=lambda s: (s.created_at, s.client_order_id), reverse=True
        )

    async def orders_by_key(self, keys: Sequence[str]) -> list[StoredOrder]:
        """The orders named by `keys` (unknown keys are left out), in no particular order."""
        found: list[StoredOrder] = []
        async with self._reader() as conn:
            for chunk in chunks(sorted(set(keys))):
                result = await conn.execute(
                    select(orders).where(orders.c.client_order_id.in_(chunk))
                )
                found.extend(ORDER_ROWS.from_row(row) for row in result.mappings())
        return found


def report_changes(report: OrderReport) -> dict[str, Any]:
    """The fields of an order the broker's report sets (`Orders.mark`'s keywords)."""
    return {
        "order_id": report.order_id,
        "status": report.status,
        "filled_quantity": report.filled_quantity,
        "avg_price": report.avg_price,
        "reject_reason": report.reject_reason,
    }


__all__ = ["Orders", "pending_order", "report_changes"]
