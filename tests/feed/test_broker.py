"""The broker client alone (no store): how each answer is classified, and the retry policy.

The outbox's promises, through this client to a fake broker on a real port, are pinned
in `tests/desk/test_outbox.py`; here an `httpx.MockTransport` plays the broker, so each answer
can be chosen exactly.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest
from tenacity import RetryCallState

from risk_tui.feed.broker import (
    MESSAGES,
    ORDERS,
    Broker,
    GatewayAuthError,
    GatewayError,
    GatewayUnavailable,
    NoAnswer,
    OrderNotFound,
    Refused,
)
from risk_tui.feed.retry import RetryPolicy

ORDER = {
    "order_id": "BRK-1",
    "client_order_id": "RT-O-1",
    "status": "working",
    "filled_quantity": "0",
}


class Recorded:
    """The waits a policy asked for, instead of sleeping them."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.waits.append(delay)


def broker_answering(
    *answers: httpx.Response, sleep: Recorded | None = None, deadline: float = 5
) -> tuple[Broker, list[httpx.Request]]:
    """A broker client whose server gives `answers` in turn (the last one from then on)."""
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return answers[min(len(requests), len(answers)) - 1]

    client = httpx.AsyncClient(base_url="http://broker", transport=httpx.MockTransport(handler))
    retry = RetryPolicy(
        attempts=3, backoff=0.1, backoff_cap=0.15, jitter=0, sleep=sleep or Recorded()
    )
    return Broker(client, deadline=deadline, retry=retry), requests


def answer(status: int, body: object = None) -> httpx.Response:
    return httpx.Response(status, json=body)


async def test_an_acknowledged_order_reads_as_its_report() -> None:
    broker, requests = broker_answering(answer(201, ORDER))
    report = await broker.post(ORDERS, "RT-O-1", {"client_order_id": "RT-O-1"})
    assert not isinstance(report, Refused)
    assert (report.order_id, report.status) == ("BRK-1", "working")
    assert json.loads(requests[0].content) == {"client_order_id": "RT-O-1"}


async def test_a_message_reads_as_its_status() -> None:
    broker, _ = broker_answering(answer(200, {"message_id": "M-1", "status": "queued"}))
    assert await broker.post(MESSAGES, "M-1", {"message_id": "M-1"}) == "queued"


async def test_a_422_is_a_refusal_with_the_brokers_one_line_reason() -> None:
    broker, requests = broker_answering(answer(422, {"message": "not a whole\nboard lot"}))
    refused = await broker.post(ORDERS, "RT-O-1", {})
    assert isinstance(refused, Refused)
    assert refused.reason.startswith("HTTP 422: not a whole")
    assert "\n" not in refused.reason
    assert len(requests) == 1


@pytest.mark.parametrize("status", [408, 425, 429, 500, 503])
async def test_answers_that_say_nothing_definite_leave_it_in_doubt(status: int) -> None:
    broker, requests = broker_answering(answer(status, {"message": "busy"}))
    with pytest.raises(NoAnswer, match=f"HTTP {status}"):
        await broker.post(ORDERS, "RT-O-1", {})
    assert len(requests) == 1  # a POST is tried once here: the outbox records each attempt


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({**ORDER, "client_order_id": "RT-O-2"}, "answered for RT-O-2, not RT-O-1"),
        ({**ORDER, "filled_quantity": 3}, "unreadable order"),
        ("not an order", "unreadable order"),
    ],
)
async def test_an_answer_not_about_this_order_is_in_doubt(body: object, expected: str) -> None:
    broker, _ = broker_answering(answer(200, body))
    with pytest.raises(NoAnswer, match=expected):
        await broker.post(ORDERS, "RT-O-1", {})


@pytest.mark.parametrize("status", [401, 403])
async def test_401_and_403_are_auth_errors_never_retried(status: int) -> None:
    broker, requests = broker_answering(answer(status, {"message": "bad token"}))
    with pytest.raises(GatewayAuthError, match=r"credentials.*feed\.token") as denied:
        await broker.post(ORDERS, "RT-O-1", {})
    assert "bad token" in denied.value.reason
    with pytest.raises(GatewayAuthError):
        await broker.list_orders()
    assert len(requests) == 2


async def test_a_request_is_bounded_by_its_whole_deadline() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return answer(200, ORDER)

    client = httpx.AsyncClient(base_url="http://broker", transport=httpx.MockTransport(slow))
    broker = Broker(client, deadline=0.05)
    with pytest.raises(NoAnswer, match=r"no complete answer within 0\.05s"):
        await broker.post(ORDERS, "RT-O-1", {})


async def test_a_cancel_is_retried_with_the_policys_capped_backoff() -> None:
    sleep = Recorded()
    broker, requests = broker_answering(
        answer(503), answer(429), answer(200, {**ORDER, "status": "cancelled"}), sleep=sleep
    )
    report = await broker.cancel("BRK-1")
    assert report.status == "cancelled"
    assert [r.url.path for r in requests] == ["/v1/orders/BRK-1/cancel"] * 3
    assert sleep.waits == [0.1, 0.15]  # doubling, capped (no jitter in this policy)


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (404, OrderNotFound, "does not know order BRK-1"),
        (409, GatewayError, "cancel BRK-1 refused: HTTP 409"),
    ],
)
async def test_a_cancel_refused(status: int, error: type[Exception], expected: str) -> None:
    broker, _ = broker_answering(answer(status, {"message": "no"}))
    with pytest.raises(error, match=expected):
        await broker.cancel("BRK-1")


async def test_a_status_query_gives_up_after_its_attempts() -> None:
    broker, requests = broker_answering(answer(503, {"message": "down"}))
    with pytest.raises(GatewayUnavailable, match="order status: no usable answer after 3 tries"):
        await broker.list_orders(account_id="A1")
    assert len(requests) == 3
    assert requests[0].url.params["account_id"] == "A1"


@pytest.mark.parametrize("wrap", [lambda orders: {"orders": orders}, lambda orders: orders])
async def test_a_status_query_skips_a_bad_record_alone(
    wrap: Callable[[list[object]], object],
) -> None:
    broker, _ = broker_answering(answer(200, wrap([ORDER, {"order_id": "BRK-2"}])))
    assert [r.order_id for r in await broker.list_orders()] == ["BRK-1"]


def test_the_policy_waits_double_up_to_the_cap_plus_jitter() -> None:
    retrying = RetryPolicy(backoff=0.5, backoff_cap=3.0, jitter=0.25).retrying(NoAnswer)
    state = RetryCallState(retrying, fn=None, args=(), kwargs={})
    for attempt, floor in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0), (9, 3.0)]:
        state.attempt_number = attempt
        assert floor <= retrying.wait(state) <= min(floor + 0.25, 3.0)


def test_a_policy_needs_an_attempt() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RetryPolicy(attempts=0)
