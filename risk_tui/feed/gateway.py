"""The order and message gateway: each action is recorded before it is sent, and sent once per key.

The sequence for every action is: pre-send checks (`core.actions`), write the intent with
its idempotency key (send_state `pending`) and commit, then POST. The answer moves it on:

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

Every request runs under `asyncio.timeout` for the whole exchange (httpx's own timeouts
are per chunk, so a server that trickles bytes would never trip them). 401/403 raise
`GatewayAuthError` at once: retrying cannot fix a credential.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from risk_tui.core.actions import (
    ActionError,
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
from risk_tui.core.text import sanitize
from risk_tui.feed.models import Code, NonNegative
from risk_tui.storage.errors import KillSwitchEngaged, UnknownCall
from risk_tui.storage.store import Store

log = logging.getLogger(__name__)

ORDERS_PATH = "/v1/orders"
MESSAGES_PATH = "/v1/messages"

# Answers after which the broker may or may not have the action: retry with the same key.
_IN_DOUBT_STATUSES = frozenset({408, 425, 429})
_AUTH_STATUSES = frozenset({401, 403})


class GatewayError(ActionError):
    """An action the gateway could not carry out; str() is one line for the operator."""


class GatewayAuthError(GatewayError):
    """401/403 from the broker: a credentials problem, never retried in a loop."""


class GatewayUnavailable(GatewayError):
    """No usable answer (timeout, connection, 5xx) to a request that changes nothing by itself."""


class OrderNotFound(GatewayError, LookupError):
    """The order is unknown here or at the broker (cancel's 404)."""


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


# --- the broker's answers (FEED.md) ---------------------------------------------------------


class _OrderWire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    order_id: Code
    client_order_id: Code
    status: Literal["working", "filled", "partially_filled", "cancelled", "rejected"]
    filled_quantity: NonNegative = Decimal(0)
    avg_price: NonNegative | None = None
    reject_reason: str | None = None

    def report(self) -> OrderReport:
        return OrderReport(
            client_order_id=self.client_order_id,
            order_id=self.order_id,
            status=self.status,
            filled_quantity=self.filled_quantity,
            avg_price=self.avg_price,
            reject_reason=None if self.reject_reason is None else sanitize(self.reject_reason),
        )


class _MessageWire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    message_id: Code
    status: Literal["queued", "sent", "failed"]


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def message(self) -> str:
        """The broker's explanation (422's message), terminal-safe and one line."""
        text = self.body[:500].decode("utf-8", "replace")
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            for key in ("message", "detail", "error", "reason"):
                if isinstance(parsed.get(key), str):
                    text = parsed[key]
                    break
        return sanitize(f"HTTP {self.status}: {text}".strip(), max_length=300)


class _NoAnswer(Exception):
    """Timeout, connection error, or an answer that says nothing definite: in doubt."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Gateway:
    """Sends the desk's orders and messages to FEED.md's broker endpoints, exactly once per key.

    `deadline`: seconds for one whole request. A failed attempt is retried up to
    `attempts` times in all, after a capped exponential backoff with jitter. An order
    still unsettled after `resend_window` (from when it was recorded) is no longer
    re-posted, because the figures it was decided on are out of date: it is reconciled
    by a status query, and withdrawn (failed) if the broker never had it.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        store: Store,
        *,
        deadline: float,
        clock: Callable[[], datetime] = _utcnow,
        attempts: int = 4,
        backoff: float = 0.25,
        backoff_cap: float = 4.0,
        resend_window: timedelta = timedelta(minutes=2),
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self._client = client
        self._store = store
        self._deadline = deadline
        self._clock = clock
        self._attempts = attempts
        self._backoff = backoff
        self._backoff_cap = backoff_cap
        self._resend_window = resend_window
        self._rng = rng or random.Random()
        self._sleep = sleep
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
                await self._audit_refusal(
                    "order_refused",
                    actor,
                    intent.reference,
                    intent.account_id,
                    {"order": intent.wire(), "problems": problems},
                )
                raise ActionRefused("order", problems)
            override = override_reason if override_used(call_open, override_reason) else None
            try:
                _, created = await self._store.orders.record_intent(
                    intent, account_state, actor, override, at=self._clock()
                )
            except UnknownCall as unknown:
                raise ActionRefused("order", [str(unknown)]) from None
            except KillSwitchEngaged as blocked:
                await self._audit_refusal(
                    "order_refused",
                    actor,
                    intent.reference,
                    intent.account_id,
                    {"order": intent.wire(), "problems": [str(blocked)]},
                )
                raise ActionRefused("order", [str(blocked)]) from None
        async with self._exclusive(intent.client_order_id):
            order = await self._order(intent.client_order_id)
            if not order.send_state.needs_send:
                return OrderOutcome(order, created)
            order, posts, error = await self._settle_order(order)
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
            order = await self._order(client_order_id)
            await self._store.orders.record_cancel_request(client_order_id, actor, at=self._clock())
            if order.send_state.needs_send:
                # Raises GatewayUnavailable when the broker cannot say: the order stays as is.
                order = await self._reconcile_by_query(
                    order, withdraw_reason=f"withdrawn by {actor.name} before the broker had it"
                )
            if order.send_state is SendState.FAILED or order.order_id is None:
                raise OrderNotFound(f"order {client_order_id} never reached the broker")
            answer = await self._with_retries(
                f"{ORDERS_PATH}/{order.order_id}/cancel", {}, what="cancel"
            )
            if answer.status == 404:
                raise OrderNotFound(f"the broker does not know order {order.order_id}")
            if answer.status not in (200, 201):
                raise GatewayError(f"cancel {order.order_id} refused: {answer.message()}")
            try:
                report = _OrderWire.model_validate(answer.json()).report()
            except (ValueError, ValidationError):
                raise GatewayUnavailable(
                    f"cancel {order.order_id}: the broker's answer is unreadable"
                ) from None
            return await self._acknowledge(order, report, detail=f"cancel by {actor.name}")

    async def refresh_orders(
        self, account_id: str | None = None, status: str | None = None
    ) -> list[StoredOrder]:
        """GET /v1/orders and bring the stored status and fills up to date; the rows changed.

        A listed order this desk had in doubt is thereby acknowledged. Orders this desk
        did not record are ignored; a record that fails validation is skipped alone.
        """
        params = {
            name: value
            for name, value in (("account_id", account_id), ("status", status))
            if value is not None
        }
        reports = await self._list_orders(params)
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
                await self._audit_refusal(
                    "message_refused",
                    actor,
                    intent.reference,
                    intent.account_id,
                    {"message": intent.wire(), "problems": problems},
                )
                raise ActionRefused("message", problems)
            try:
                _, created = await self._store.messages.record_intent(
                    intent, account_state, actor, at=self._clock()
                )
            except UnknownCall as unknown:
                raise ActionRefused("message", [str(unknown)]) from None
        async with self._exclusive(intent.message_id):
            message = await self._message(intent.message_id)
            if not message.send_state.needs_send:
                return MessageOutcome(message, created)
            message, posts, error = await self._send_message(message)
        return MessageOutcome(message, created, posts, error)

    # --- start-up --------------------------------------------------------------------------

    async def recover(self) -> Recovery:
        """Settle every order and message left pending or in doubt, each with its own key.

        Orders recorded within `resend_window` are re-posted (the broker returns the
        existing order or creates it once); older ones are reconciled by a status query.
        Messages are always re-posted: FEED.md has no query for them, and the key keeps
        a re-post from sending a second one. Raises `GatewayAuthError` at the first 401/403.
        """
        recovery = Recovery()
        for order in await self._store.orders.needing_send():
            async with self._exclusive(order.client_order_id):
                current = await self._order(order.client_order_id)
                if current.send_state.needs_send:
                    current, _, error = await self._settle_order(current)
                    if error is not None:
                        log.warning("order %s still in doubt: %s", order.client_order_id, error)
                recovery.orders.append(current)
        for message in await self._store.messages.needing_send():
            async with self._exclusive(message.message_id):
                current_message = await self._message(message.message_id)
                if current_message.send_state.needs_send:
                    current_message, _, error = await self._send_message(current_message)
                    if error is not None:
                        log.warning("message %s still in doubt: %s", message.message_id, error)
                recovery.messages.append(current_message)
        return recovery

    # --- sending ---------------------------------------------------------------------------

    async def _settle_order(self, order: StoredOrder) -> tuple[StoredOrder, int, str | None]:
        switch = await self._store.kill_switch.get()
        if switch.engaged:
            # Recorded before the switch (a restart's recovery, a race with engaging it):
            # never posted now; reconciled, and withdrawn if the broker does not have it.
            reason = f"not sent: {switch.describe()}"
        elif self._clock() - order.created_at <= self._resend_window:
            return await self._send_order(order)
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

    async def _send_order(self, order: StoredOrder) -> tuple[StoredOrder, int, str | None]:
        """POST with the order's own key until the broker answers definitely or tries run out."""
        key = order.client_order_id
        body = order.intent().wire()
        error: str | None = None
        for attempt in range(1, self._attempts + 1):
            if attempt > 1:
                await self._pause(attempt)
            try:
                answer = await self._request(ORDERS_PATH, body)
                if answer.status in _AUTH_STATUSES:
                    await self._auth_refused_order(order, answer)
                if answer.status in (200, 201):
                    report = _order_report(answer, key)
                    return await self._acknowledge(order, report, detail=None), attempt, None
                if answer.status >= 500 or answer.status in _IN_DOUBT_STATUSES:
                    raise _NoAnswer(answer.message())
            except _NoAnswer as problem:
                error = f"attempt {attempt}: {problem}"
                order = await self._store.orders.mark(
                    key, SendState.IN_DOUBT, detail=error, at=self._clock()
                )
                if not order.send_state.needs_send:  # settled meanwhile (a status query)
                    return order, attempt, None
                continue
            # Any other 4xx: the broker looked at it and refused it; it does not exist there.
            failed = await self._store.orders.mark(
                key,
                SendState.FAILED,
                reject_reason=answer.message(),
                detail=answer.message(),
                at=self._clock(),
            )
            return failed, attempt, None
        return order, self._attempts, error

    async def _acknowledge(
        self, order: StoredOrder, report: OrderReport, *, detail: str | None
    ) -> StoredOrder:
        return await self._store.orders.mark(
            order.client_order_id,
            SendState.ACKNOWLEDGED,
            status=report.status,
            order_id=report.order_id,
            filled_quantity=report.filled_quantity,
            avg_price=report.avg_price,
            reject_reason=report.reject_reason,
            detail=detail,
            at=self._clock(),
        )

    async def _auth_refused_order(self, order: StoredOrder, answer: _Answer) -> None:
        # The broker checks credentials before it looks at an order: one that was never
        # sent before is definitely not there. One in doubt from an earlier attempt may
        # be, so it stays in doubt for recover().
        text = f"{answer.message()}: check feed.token (RISK_TUI_FEED_TOKEN)"
        if order.send_state is SendState.PENDING:
            await self._store.orders.mark(
                order.client_order_id,
                SendState.FAILED,
                reject_reason=f"not authorised ({text})",
                detail=text,
                at=self._clock(),
            )
        raise GatewayAuthError(f"broker refused the credentials: {text}")

    async def _reconcile_by_query(self, order: StoredOrder, *, withdraw_reason: str) -> StoredOrder:
        """Ask the broker whether it has `order`; acknowledge it, or withdraw it if absent."""
        reports = await self._list_orders({"account_id": order.account_id})
        for report in reports:
            if report.client_order_id == order.client_order_id:
                return await self._acknowledge(order, report, detail="status query")
        return await self._store.orders.mark(
            order.client_order_id,
            SendState.FAILED,
            reject_reason=withdraw_reason,
            detail=withdraw_reason,
            at=self._clock(),
        )

    async def _list_orders(self, params: Mapping[str, str]) -> list[OrderReport]:
        answer = await self._with_retries(ORDERS_PATH, None, what="order status", params=params)
        if answer.status != 200:
            raise GatewayUnavailable(f"order status query: {answer.message()}")
        try:
            body = answer.json()
        except ValueError:
            raise GatewayUnavailable("order status query: the answer is not JSON") from None
        # FEED.md does not fix the envelope: accept a bare list or {"orders": [...]}.
        records = body.get("orders") if isinstance(body, dict) else body
        if not isinstance(records, list):
            raise GatewayUnavailable("order status query: no list of orders in the answer")
        reports: list[OrderReport] = []
        for index, record in enumerate(records):
            try:
                reports.append(_OrderWire.model_validate(record).report())
            except ValidationError as bad:
                log.warning("order status record %d rejected: %s", index, _first_error(bad))
        return reports

    async def _send_message(self, message: StoredMessage) -> tuple[StoredMessage, int, str | None]:
        key = message.message_id
        body = message.intent().wire()
        error: str | None = None
        for attempt in range(1, self._attempts + 1):
            if attempt > 1:
                await self._pause(attempt)
            try:
                answer = await self._request(MESSAGES_PATH, body)
                if answer.status in _AUTH_STATUSES:
                    text = f"{answer.message()}: check feed.token (RISK_TUI_FEED_TOKEN)"
                    if message.send_state is SendState.PENDING:
                        await self._store.messages.mark(
                            key, SendState.FAILED, detail=text, at=self._clock()
                        )
                    raise GatewayAuthError(f"broker refused the credentials: {text}")
                if answer.status in (200, 201):
                    status = _message_status(answer, key)
                    sent = await self._store.messages.mark(
                        key, SendState.ACKNOWLEDGED, status=status, at=self._clock()
                    )
                    return sent, attempt, None
                if answer.status >= 500 or answer.status in _IN_DOUBT_STATUSES:
                    raise _NoAnswer(answer.message())
            except _NoAnswer as problem:
                error = f"attempt {attempt}: {problem}"
                message = await self._store.messages.mark(
                    key, SendState.IN_DOUBT, detail=error, at=self._clock()
                )
                if not message.send_state.needs_send:
                    return message, attempt, None
                continue
            failed = await self._store.messages.mark(
                key, SendState.FAILED, detail=answer.message(), at=self._clock()
            )
            return failed, attempt, None
        return message, self._attempts, error

    # --- HTTP ------------------------------------------------------------------------------

    async def _request(
        self,
        path: str,
        body: Mapping[str, Any] | None,
        params: Mapping[str, str] | None = None,
    ) -> _Answer:
        """One request within the total deadline: POST when there is a body, else GET."""
        try:
            async with asyncio.timeout(self._deadline):
                if body is None:
                    response = await self._client.get(path, params=dict(params or {}))
                else:
                    response = await self._client.post(path, json=dict(body))
                content = await response.aread()
        except TimeoutError:
            raise _NoAnswer(f"no complete answer within {self._deadline:g}s") from None
        except httpx.HTTPError as problem:
            text = str(problem) or type(problem).__name__
            if isinstance(problem, httpx.ConnectError):
                text = f"cannot connect ({text})"
            raise _NoAnswer(sanitize(text, max_length=200)) from None
        return _Answer(response.status_code, content)

    async def _with_retries(
        self,
        path: str,
        body: Mapping[str, Any] | None,
        *,
        what: str,
        params: Mapping[str, str] | None = None,
    ) -> _Answer:
        """For requests safe to repeat (queries, cancel): retried on no answer or 5xx."""
        problem = ""
        for attempt in range(1, self._attempts + 1):
            if attempt > 1:
                await self._pause(attempt)
            try:
                answer = await self._request(path, body, params)
            except _NoAnswer as no_answer:
                problem = str(no_answer)
                continue
            if answer.status in _AUTH_STATUSES:
                raise GatewayAuthError(
                    f"broker refused the credentials: {answer.message()}: "
                    "check feed.token (RISK_TUI_FEED_TOKEN)"
                )
            if answer.status >= 500 or answer.status in _IN_DOUBT_STATUSES:
                problem = answer.message()
                continue
            return answer
        raise GatewayUnavailable(
            f"{what}: no usable answer after {self._attempts} tries: {problem}"
        )

    async def _pause(self, attempt: int) -> None:
        # Capped exponential backoff with jitter, so many terminals retrying after the
        # same outage do not hit the broker in step.
        ceiling = min(self._backoff_cap, self._backoff * 2 ** (attempt - 2))
        await self._sleep(ceiling * (0.5 + self._rng.random() / 2))

    # --- helpers ---------------------------------------------------------------------------

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

    async def _order(self, client_order_id: str) -> StoredOrder:
        order = await self._store.orders.get(client_order_id)
        if order is None:
            raise OrderNotFound(f"no order {client_order_id}")
        return order

    async def _message(self, message_id: str) -> StoredMessage:
        message = await self._store.messages.get(message_id)
        if message is None:
            raise GatewayError(f"no message {message_id}")
        return message

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


def _order_report(answer: _Answer, client_order_id: str) -> OrderReport:
    try:
        report = _OrderWire.model_validate(answer.json()).report()
    except ValueError as bad:  # ValidationError is a ValueError
        detail = _first_error(bad) if isinstance(bad, ValidationError) else "not JSON"
        raise _NoAnswer(f"HTTP {answer.status} with an unreadable order ({detail})") from None
    if report.client_order_id != client_order_id:
        raise _NoAnswer(
            f"HTTP {answer.status} answered for {report.client_order_id}, not {client_order_id}"
        )
    return report


def _message_status(answer: _Answer, message_id: str) -> str:
    try:
        wire = _MessageWire.model_validate(answer.json())
    except ValueError as bad:
        detail = _first_error(bad) if isinstance(bad, ValidationError) else "not JSON"
        raise _NoAnswer(f"HTTP {answer.status} with an unreadable message ({detail})") from None
    if wire.message_id != message_id:
        raise _NoAnswer(f"HTTP {answer.status} answered for {wire.message_id}, not {message_id}")
    return wire.status


def _first_error(bad: ValidationError) -> str:
    error = bad.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "record"
    return sanitize(f"{where}: {error['msg']}", max_length=200)


__all__ = [
    "Gateway",
    "GatewayAuthError",
    "GatewayError",
    "GatewayUnavailable",
    "OrderNotFound",
    "Recovery",
]
