"""The broker client: FEED.md's orders, messages and cancels over HTTP, each answer classified.

Why it keeps nothing: recording an action before it is sent, and what an answer means
for that record, are the desk's outbox's (`risk_tui.desk.outbox`); this module only
builds the request, sends it under the process's deadline and retry policy, and says
what came back:

    201/200 with the action          acknowledged: the broker's record (an `OrderReport`,
                                     a message's status)
    401/403                          `GatewayAuthError` at once: retrying cannot fix a
                                     credential
    timeout, connection lost, 5xx,   `NoAnswer`: in doubt, the broker may or may not have
    408/425/429, an unreadable or    it; the same key again settles it
    someone else's answer
    any other 4xx (422)              `Refused`, with the broker's one-line, sanitised reason

Every request runs under `asyncio.timeout` for the whole exchange (`client.request`):
httpx's own timeouts are per chunk, so a server that trickles bytes would never trip
them. A POST that creates an action is sent one attempt at a time (`post`), because the
outbox records each attempt; a cancel and the order status query are safe to repeat and
are retried here, with the same `RetryPolicy` the outbox's sends use.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, Literal, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from risk_tui.core.actions import ActionError, OrderReport
from risk_tui.core.text import sanitize
from risk_tui.feed.client import Answer, NoAnswer, request
from risk_tui.feed.models import Code, NonNegative
from risk_tui.feed.retry import RetryPolicy

log = logging.getLogger(__name__)

ORDERS_PATH = "/v1/orders"
MESSAGES_PATH = "/v1/messages"

# Answers after which the broker may or may not have the action: retry with the same key.
_IN_DOUBT_STATUSES = frozenset({408, 425, 429})
_AUTH_STATUSES = frozenset({401, 403})

Acknowledged = TypeVar("Acknowledged")


class GatewayError(ActionError):
    """An action the broker could not carry out; str() is one line for the operator."""


class GatewayAuthError(GatewayError):
    """401/403 from the broker: a credentials problem, never retried in a loop.

    `reason` is the broker's answer with the hint to check the token.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"broker refused the credentials: {reason}")


class GatewayUnavailable(GatewayError):
    """No usable answer (timeout, connection, 5xx) to a request that changes nothing by itself."""


class OrderNotFound(GatewayError, LookupError):
    """The order is unknown here or at the broker (cancel's 404)."""


@dataclass(frozen=True, slots=True)
class Refused:
    """The broker looked at the action and refused it (422): it does not exist there."""

    reason: str  # the broker's explanation, one line, terminal-safe


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


def _order_answer(body: Any) -> tuple[str, OrderReport]:
    report = _OrderWire.model_validate(body).report()
    return report.client_order_id, report


def _message_answer(body: Any) -> tuple[str, str]:
    wire = _MessageWire.model_validate(body)
    return wire.message_id, wire.status


@dataclass(frozen=True, slots=True)
class Endpoint(Generic[Acknowledged]):
    """A FEED.md POST that creates an action, idempotent on its key: where it goes, and
    how the broker's acknowledgement reads."""

    path: str
    noun: str  # in "an unreadable order"
    read: Callable[[Any], tuple[str, Acknowledged]]  # the answer's JSON → (its key, the record)


ORDERS = Endpoint(ORDERS_PATH, "order", _order_answer)
MESSAGES = Endpoint(MESSAGES_PATH, "message", _message_answer)


def _explain(answer: Answer) -> str:
    """The broker's explanation of an answer (422's message), terminal-safe and one line."""
    text = answer.body[:500].decode("utf-8", "replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        for key in ("message", "detail", "error", "reason"):
            if isinstance(parsed.get(key), str):
                text = parsed[key]
                break
    return sanitize(f"HTTP {answer.status}: {text}".strip(), max_length=300)


class Broker:
    """FEED.md's order, message and cancel endpoints, one classified answer at a time.

    `deadline`: seconds for one whole request. `retry`: the process's retry policy, for
    the requests retried here (cancel, status query) and the outbox's sends.
    """

    def __init__(
        self, client: httpx.AsyncClient, *, deadline: float, retry: RetryPolicy | None = None
    ) -> None:
        self._client = client
        self.deadline = deadline
        self.retry = retry or RetryPolicy()

    async def post(
        self, endpoint: Endpoint[Acknowledged], key: str, body: Mapping[str, Any]
    ) -> Acknowledged | Refused:
        """One POST of an action under its key: the broker's record of it, or its refusal.

        Raises `NoAnswer` when in doubt (send it again with the same key) and
        `GatewayAuthError` on 401/403.
        """
        answer = self._definite(await self._request("POST", endpoint.path, body))
        if answer.status not in (200, 201):
            return Refused(_explain(answer))
        try:
            answered_for, record = endpoint.read(answer.json())
        except ValueError as bad:  # ValidationError is a ValueError
            detail = _first_error(bad) if isinstance(bad, ValidationError) else "not JSON"
            raise NoAnswer(
                f"HTTP {answer.status} with an unreadable {endpoint.noun} ({detail})"
            ) from None
        if answered_for != key:
            raise NoAnswer(f"HTTP {answer.status} answered for {answered_for}, not {key}")
        return record

    async def cancel(self, order_id: str) -> OrderReport:
        """Ask the broker to cancel `order_id`; the order as it then reports it.

        Raises `OrderNotFound` (404), `GatewayError` (refused), `GatewayUnavailable` (no
        usable answer after the retries) or `GatewayAuthError`.
        """
        answer = await self._repeatable(f"{ORDERS_PATH}/{order_id}/cancel", {}, what="cancel")
        if answer.status == 404:
            raise OrderNotFound(f"the broker does not know order {order_id}")
        if answer.status not in (200, 201):
            raise GatewayError(f"cancel {order_id} refused: {_explain(answer)}")
        try:
            return _OrderWire.model_validate(answer.json()).report()
        except ValueError:  # ValidationError is a ValueError
            raise GatewayUnavailable(
                f"cancel {order_id}: the broker's answer is unreadable"
            ) from None

    async def list_orders(
        self, account_id: str | None = None, status: str | None = None
    ) -> list[OrderReport]:
        """GET /v1/orders: the broker's word on its orders, optionally of one account or
        in one status. A record that fails validation is skipped alone (logged)."""
        params = {
            name: value
            for name, value in (("account_id", account_id), ("status", status))
            if value is not None
        }
        answer = await self._repeatable(ORDERS_PATH, None, what="order status", params=params)
        if answer.status != 200:
            raise GatewayUnavailable(f"order status query: {_explain(answer)}")
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

    # --- HTTP ------------------------------------------------------------------------------

    async def _request(
        self,
        method: Literal["GET", "POST"],
        path: str,
        body: Mapping[str, Any] | None,
        params: Mapping[str, str] | None = None,
    ) -> Answer:
        return await request(
            self._client, method, path, deadline=self.deadline, body=body, params=params
        )

    def _definite(self, answer: Answer) -> Answer:
        """`answer` if it says something definite; `GatewayAuthError` or `NoAnswer` if not."""
        if answer.status in _AUTH_STATUSES:
            raise GatewayAuthError(f"{_explain(answer)}: check feed.token (RISK_TUI_FEED_TOKEN)")
        if answer.status >= 500 or answer.status in _IN_DOUBT_STATUSES:
            raise NoAnswer(_explain(answer))
        return answer

    async def _repeatable(
        self,
        path: str,
        body: Mapping[str, Any] | None,
        *,
        what: str,
        params: Mapping[str, str] | None = None,
    ) -> Answer:
        """For requests safe to repeat (queries, cancel): retried on no answer or 5xx;
        POSTed when there is a body, else a GET."""

        async def attempt() -> Answer:
            method: Literal["GET", "POST"] = "GET" if body is None else "POST"
            return self._definite(await self._request(method, path, body, params))

        try:
            answer: Answer = await self.retry.retrying(NoAnswer)(attempt)
        except NoAnswer as problem:
            raise GatewayUnavailable(
                f"{what}: no usable answer after {self.retry.attempts} tries: {problem}"
            ) from None
        return answer


def _first_error(bad: ValidationError) -> str:
    error = bad.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "record"
    return sanitize(f"{where}: {error['msg']}", max_length=200)


__all__ = [
    "MESSAGES",
    "ORDERS",
    "Broker",
    "Endpoint",
    "GatewayAuthError",
    "GatewayError",
    "GatewayUnavailable",
    "NoAnswer",
    "OrderNotFound",
    "Refused",
]
