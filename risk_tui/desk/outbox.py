"""The desk's outbox: each order and message recorded before it is sent, and sent once per key.

The sequence for every action is: pre-send checks (`core.actions`), write the intent with
its idempotency key (send_state `pending`) and commit, then POST (`feed.broker`). The
answer moves it on:

    pending ──201/200──▶ acknowledged ──(status query / cancel: status and fills change)
       │  └──422/4xx──▶ failed
       └─timeout, connection lost, 5xx──▶ in_doubt ──same key again──▶ acknowledged | failed
                                                    └─(retries used up: left for recover())

A process killed at any point leaves `pending` or `in_doubt` rows; `recover()` settles
them with the SAME key: the broker is idempotent on it, so a re-POST returns the order if
it had been created and creates it once if it had not. A key is never replaced.

While the desk's kill switch is engaged (read from the database for every order) no new
order is recorded, and one recorded before is not posted: it is reconciled by a status
query instead, and withdrawn if the broker never had it.

Orders and messages are sent the one way, under the process's retry policy (the broker
client's); what differs — the endpoint, the repository, what an answer writes on the
record — is data (`_Sends`). 401/403 raise `GatewayAuthError` at once: retrying cannot
fix a credential.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, Generic, Protocol, TypeVar

from risk_tui.core.actions import (
    ActionRefused,
    MessageIntent,
    OrderIntent,
    OrderReport,
    SendState,
    check_cancel,
    check_message,
    check_order,
    override_used,
)
from risk_tui.core.clock import utc_now
from risk_tui.core.four_eyes import KillSwitch
from risk_tui.core.lifecycle import AuditEntry
from risk_tui.core.records import (
    MessageOutcome,
    OrderOutcome,
    StoredMessage,
    StoredOrder,
    same_message,
    same_order,
)
from risk_tui.core.roles import Actor
from risk_tui.feed.broker import (
    MESSAGES,
    ORDERS,
    Broker,
    Endpoint,
    GatewayAuthError,
    GatewayError,
    GatewayUnavailable,
    NoAnswer,
    OrderNotFound,
    Refused,
)
from risk_tui.storage.errors import KillSwitchEngaged, StorageError, UnknownCall
from risk_tui.storage.orders import report_changes
from risk_tui.storage.store import Store

log = logging.getLogger(__name__)

Stored = TypeVar("Stored", StoredOrder, StoredMessage)
Acknowledged = TypeVar("Acknowledged", OrderReport, str)

# Where a send left an action: the record, the requests sent, the last problem if in doubt.
Sent = tuple[Stored, int, str | None]


@dataclass(frozen=True, slots=True)
class Recovery:
    """What `recover()` found unsettled and where each now stands."""

    orders: list[StoredOrder] = field(default_factory=list)
    messages: list[StoredMessage] = field(default_factory=list)

    @property
    def unsettled(self) -> int:
        return sum(o.send_state.needs_send for o in self.orders) + sum(
            m.send_state.needs_send for m in self.messages
        )


class _Records(Protocol[Stored]):
    """The store's repository of orders or of messages (`storage.outbox`), as used here."""

    async def get(self, key: str) -> Stored | None: ...

    async def needing_send(self) -> list[Stored]: ...

    @property
    def mark(self) -> Callable[..., Awaitable[Stored]]:
        """Move an action to a send state, setting the repository's own fields."""
        ...


@dataclass(frozen=True, slots=True)
class _Sends(Generic[Stored, Acknowledged]):
    """What makes a send an order's or a message's; the way it goes is the same."""

    endpoint: Endpoint[Acknowledged]  # where it is POSTed, and how the answer reads
    records: _Records[Stored]
    key: Callable[[Stored], str]  # its idempotency key
    acknowledged: Callable[[Acknowledged], dict[str, Any]]  # fields the broker's record sets
    failed: Callable[[str], dict[str, Any]]  # fields a refusal sets, from its reason
    missing: type[GatewayError]  # raised for a key never recorded


def _order_failed(reason: str) -> dict[str, Any]:
    return {"reject_reason": reason}


def _message_failed(_reason: str) -> dict[str, Any]:
    return {}  # no column for it: the reason is in the audit entry's detail


def _message_acknowledged(status: str) -> dict[str, Any]:
    return {"status": status}


class Outbox:
    """Sends the desk's orders and messages to the broker, exactly once per key.

    A failed send is retried under the broker client's `RetryPolicy`, each attempt
    recorded. An order still unsettled after `resend_window` (from when it was recorded)
    is no longer re-posted, because the figures it was decided on are out of date: it is
    reconciled by a status query, and withdrawn (failed) if the broker never had it.
    """

    def __init__(
        self,
        broker: Broker,
        store: Store,
        *,
        clock: Callable[[], datetime] = utc_now,
        resend_window: timedelta = timedelta(minutes=2),
    ) -> None:
        self._broker = broker
        self._store = store
        self._clock = clock
        self._resend_window = resend_window
        self._orders: _Sends[StoredOrder, OrderReport] = _Sends(
            endpoint=ORDERS,
            records=store.orders,
            key=lambda order: order.client_order_id,
            acknowledged=report_changes,
            failed=_order_failed,
            missing=OrderNotFound,
        )
        self._messages: _Sends[StoredMessage, str] = _Sends(
            endpoint=MESSAGES,
            records=store.messages,
            key=lambda message: message.message_id,
            acknowledged=_message_acknowledged,
            failed=_message_failed,
            missing=GatewayError,
        )
        # One sender per key in this process: a double press waits for the first send.
        self._locks: dict[str, asyncio.Lock] = {}
        self._lock_users: dict[str, int] = {}

    # --- orders ----------------------------------------------------------------------------

    async def submit_order(
        self,
        intent: OrderIntent,
        *,
        account_state: Mapping[str, Any],
        actor: Actor,
        position_quantity: Decimal | None,
        call_open: bool,
        data_fresh: bool,
        override_reason: str | None = None,
    ) -> OrderOutcome:
        """Check, record, then send `intent`; raises `ActionRefused` or `GatewayAuthError`.

        A key already recorded (a double press, a retry by the caller) is not checked or
        recorded again — it was when first submitted — and is only sent if still
        unsettled. A 422 comes back as an outcome in `failed`; retries used up leave it
        `in_doubt`, for `recover()` or the next submit of the same intent.
        """
        existing = await self._store.orders.get(intent.client_order_id)
        created = False
        if existing is not None:
            if not same_order(existing, intent):
                raise ActionRefused(
                    "order",
                    [f"client_order_id {intent.client_order_id} already names another order"],
                )
        else:
            problems = check_order(
                intent,
                position_quantity=position_quantity,
                call_open=call_open,
                data_fresh=data_fresh,
                actor=actor,
                override_reason=override_reason,
            )
            if problems:
                raise await self._refused("order", intent, actor, problems)
            override = override_reason if override_used(call_open, override_reason) else None
            try:
                _, created = await self._store.orders.record_intent(
                    intent, account_state, actor, override, at=self._clock()
                )
            except UnknownCall as unknown:
                raise ActionRefused("order", [str(unknown)]) from None
            except KillSwitchEngaged as blocked:
                raise await self._refused("order", intent, actor, [str(blocked)]) from None
        order, posts, error = await self._settle(
            self._orders, intent.client_order_id, self._settle_order
        )
        return OrderOutcome(order, created, posts, error)

    async def cancel_order(self, client_order_id: str, actor: Actor) -> StoredOrder:
        """Ask the broker to cancel a working order; the order as the broker then reports it.

        An order not yet settled is reconciled first by a status query (never re-posted
        just to be cancelled): found, it is cancelled; never received by the broker, it
        is withdrawn here (failed), so no retry or restart sends it later.
        """
        problems = check_cancel(actor)
        if problems:
            await self._audit_refusal(
                "cancel_refused", actor, None, None, {"client_order_id": client_order_id}
            )
            raise ActionRefused("cancel", problems)
        async with self._exclusive(client_order_id):
            order = await self._get(self._orders, client_order_id)
            await self._store.orders.record_cancel_request(client_order_id, actor, at=self._clock())
            if order.send_state.needs_send:
                # Raises GatewayUnavailable when the broker cannot say: the order stays as is.
                order = await self._reconcile_by_query(
                    order, withdraw_reason=f"withdrawn by {actor.name} before the broker had it"
                )
            if order.send_state is SendState.FAILED or order.order_id is None:
                raise OrderNotFound(f"order {client_order_id} never reached the broker")
            report = await self._broker.cancel(order.order_id)
            return await self._acknowledge(order, report, detail=f"cancel by {actor.name}")

    async def refresh_orders(
        self, account_id: str | None = None, status: str | None = None
    ) -> list[StoredOrder]:
        """GET /v1/orders and bring the stored status and fills up to date; the rows changed.

        A listed order this desk had in doubt is thereby acknowledged. Orders this desk
        did not record are ignored; a record that fails validation is skipped alone.
        """
        reports = await self._broker.list_orders(account_id=account_id, status=status)
        return await self._store.orders.apply_order_reports(reports, at=self._clock())

    # --- messages --------------------------------------------------------------------------

    async def send_message(
        self, intent: MessageIntent, *, account_state: Mapping[str, Any], actor: Actor
    ) -> MessageOutcome:
        """Check, record, then send `intent` (same pattern and errors as `submit_order`)."""
        existing = await self._store.messages.get(intent.message_id)
        created = False
        if existing is not None:
            if not same_message(existing, intent):
                raise ActionRefused(
                    "message", [f"message_id {intent.message_id} already names another message"]
                )
        else:
            problems = check_message(intent, actor)
            if problems:
                raise await self._refused("message", intent, actor, problems)
            try:
                _, created = await self._store.messages.record_intent(
                    intent, account_state, actor, at=self._clock()
                )
            except UnknownCall as unknown:
                raise ActionRefused("message", [str(unknown)]) from None
        message, posts, error = await self._settle(
            self._messages, intent.message_id, partial(self._send, self._messages)
        )
        return MessageOutcome(message, created, posts, error)

    # --- start-up --------------------------------------------------------------------------

    async def recover(self) -> Recovery:
        """Settle every order and message left pending or in doubt, each with its own key.

        Orders recorded within `resend_window` are re-posted (the broker returns the
        existing order or creates it once); older ones are reconciled by a status query.
        Messages are always re-posted: FEED.md has no query for them, and the key keeps
        a re-post from sending a second one. Raises `GatewayAuthError` at the first 401/403.
        """
        orders = await self._recover(self._orders, self._settle_order)
        messages = await self._recover(self._messages, partial(self._send, self._messages))
        return Recovery(orders, messages)

    async def _recover(
        self, sends: _Sends[Stored, Any], settle: Callable[[Stored], Awaitable[Sent[Stored]]]
    ) -> list[Stored]:
        settled: list[Stored] = []
        for unsettled in await sends.records.needing_send():
            key = sends.key(unsettled)
            current, _, error = await self._settle(sends, key, settle)
            if error is not None:
                log.warning("%s %s still in doubt: %s", sends.endpoint.noun, key, error)
            settled.append(current)
        return settled

    # --- sending ---------------------------------------------------------------------------

    async def _settle(
        self,
        sends: _Sends[Stored, Any],
        key: str,
        settle: Callable[[Stored], Awaitable[Sent[Stored]]],
    ) -> Sent[Stored]:
        """`settle` the action under `key` unless it is settled already; under the key's
        lock, so a double press waits for the first send and then finds it settled."""
        async with self._exclusive(key):
            current = await self._get(sends, key)
            if not current.send_state.needs_send:
                return current, 0, None
            return await settle(current)

    async def _settle_order(self, order: StoredOrder) -> Sent[StoredOrder]:
        try:
            switch = await self._store.kill_switch.get()
        except (StorageError, ValueError, TypeError) as unreadable:  # fail closed: not sent
            switch = KillSwitch.unreadable(str(unreadable))
        if switch.engaged:
            # Recorded before the switch (a restart's recovery, a race with engaging it):
            # never posted now; reconciled, and withdrawn if the broker does not have it.
            reason = f"not sent: {switch.describe()}"
        elif self._clock() - order.created_at <= self._resend_window:
            return await self._send(self._orders, order)
        else:
            reason = (
                f"not sent: recorded more than {self._resend_window} ago, on figures now out "
                "of date; decide again"
            )
        try:
            order = await self._reconcile_by_query(order, withdraw_reason=reason)
        except GatewayUnavailable as down:
            return order, 0, str(down)
        return order, 0, None

    async def _send(self, sends: _Sends[Stored, Acknowledged], record: Stored) -> Sent[Stored]:
        """POST with the action's own key until the broker answers definitely or tries run out."""
        key = sends.key(record)
        body = record.intent().wire()
        posts = 0
        error: str | None = None

        async def attempt() -> Acknowledged | Refused | None:
            """One POST; None when the action was settled meanwhile (a status query)."""
            nonlocal record, posts, error
            posts += 1
            try:
                return await self._broker.post(sends.endpoint, key, body)
            except GatewayAuthError as denied:
                # The broker checks credentials before it looks at an action: one never
                # sent before is definitely not there. One in doubt from an earlier attempt
                # may be, so it stays in doubt for recover().
                if record.send_state is SendState.PENDING:
                    refusal = sends.failed(f"not authorised ({denied.reason})")
                    await self._mark(sends, key, SendState.FAILED, denied.reason, refusal)
                raise
            except NoAnswer as problem:
                error = f"attempt {posts}: {problem}"
                record = await self._mark(sends, key, SendState.IN_DOUBT, error)
                if not record.send_state.needs_send:
                    return None
                raise

        retrying = self._broker.retry.retrying(NoAnswer)
        try:
            answer: Acknowledged | Refused | None = await retrying(attempt)
        except NoAnswer:
            return record, posts, error  # retries used up: in doubt, for recover()
        if answer is None:
            return record, posts, None
        if isinstance(answer, Refused):
            # The broker looked at it and refused it; it does not exist there.
            refusal = sends.failed(answer.reason)
            failed = await self._mark(sends, key, SendState.FAILED, answer.reason, refusal)
            return failed, posts, None
        fields = sends.acknowledged(answer)
        return await self._mark(sends, key, SendState.ACKNOWLEDGED, None, fields), posts, None

    async def _acknowledge(
        self, order: StoredOrder, report: OrderReport, *, detail: str | None
    ) -> StoredOrder:
        return await self._mark(
            self._orders,
            order.client_order_id,
            SendState.ACKNOWLEDGED,
            detail,
            report_changes(report),
        )

    async def _reconcile_by_query(self, order: StoredOrder, *, withdraw_reason: str) -> StoredOrder:
        """Ask the broker whether it has `order`; acknowledge it, or withdraw it if absent."""
        for report in await self._broker.list_orders(account_id=order.account_id):
            if report.client_order_id == order.client_order_id:
                return await self._acknowledge(order, report, detail="status query")
        return await self._mark(
            self._orders,
            order.client_order_id,
            SendState.FAILED,
            withdraw_reason,
            _order_failed(withdraw_reason),
        )

    # --- helpers ---------------------------------------------------------------------------

    async def _mark(
        self,
        sends: _Sends[Stored, Any],
        key: str,
        send_state: SendState,
        detail: str | None,
        changes: Mapping[str, Any] | None = None,
    ) -> Stored:
        """Move the action to `send_state` with its audit entry (`detail` goes with it)."""
        mark = sends.records.mark
        return await mark(key, send_state, detail=detail, at=self._clock(), **(changes or {}))

    @asynccontextmanager
    async def _exclusive(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._lock_users[key] = self._lock_users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._lock_users[key] -= 1
            if not self._lock_users[key]:
                del self._lock_users[key], self._locks[key]

    async def _get(self, sends: _Sends[Stored, Any], key: str) -> Stored:
        record = await sends.records.get(key)
        if record is None:
            raise sends.missing(f"no {sends.endpoint.noun} {key}")
        return record

    async def _refused(
        self, noun: str, intent: OrderIntent | MessageIntent, actor: Actor, problems: list[str]
    ) -> ActionRefused:
        """Audit the refusal of an order or a message (`{noun}_refused`); the error to raise."""
        details = {noun: intent.wire(), "problems": problems}
        await self._audit_refusal(
            f"{noun}_refused", actor, intent.reference, intent.account_id, details
        )
        return ActionRefused(noun, problems)

    async def _audit_refusal(
        self,
        action: str,
        actor: Actor,
        call_id: str | None,
        account_id: str | None,
        details: dict[str, Any],
    ) -> None:
        entry = AuditEntry(
            at=self._clock(),
            operator=actor.name,
            action=action,
            call_id=call_id,
            account_id=account_id,
            details={**details, "role": actor.role.value},
        )
        await self._store.audit.append_audit([entry])


__all__ = ["Outbox", "Recovery"]
