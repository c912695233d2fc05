"""The simulator's HTTP app (Starlette): FEED.md on a SimState, plus test hooks under /sim/.

Runs under uvicorn on loopback (`risk-tui sim`, and in-process for `risk-tui demo`). The
lifespan runs the ticker: `state.tick()` every `state.tick_interval` seconds.

Non-contract endpoints, for tests and demos (bearer token required like /v1 when set):
`GET /sim/status`, `GET /sim/orders`, `GET /sim/messages` (records plus POST counts per
idempotency key, and cancel POSTs per order id) and `POST /sim/tick` (advance one tick now).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from risk_tui.sim.changes import ChangeSet, LogEntry
from risk_tui.sim.orders import ORDER_STATUSES, Invalid, idempotency_key
from risk_tui.sim.state import SIM_TZ, SimState, sim_now
from risk_tui.sim.store import RECORD_LISTS, stream_body

__all__ = [
    "RECORD_LISTS",
    "SIM_TZ",
    "ChangeSet",
    "LogEntry",
    "SimState",
    "create_app",
    "run_ticker",
    "sim_now",
]

log = logging.getLogger("risk_tui.sim")
JSON = "application/json"
Handler = Callable[[Request], Awaitable[Response]]


async def run_ticker(state: SimState) -> None:
    """Tick forever at the state's interval; a failing tick is logged, not fatal."""
    interval = state.tick_interval
    if not interval or interval <= 0:
        return
    loop = asyncio.get_running_loop()
    next_at = loop.time() + interval
    while True:
        # Sleep to a schedule, not a fixed delay, so a slow tick does not stretch time.
        await asyncio.sleep(max(0.0, next_at - loop.time()))
        next_at = max(next_at + interval, loop.time())
        try:
            state.tick()
        except Exception:
            log.exception("simulator tick %d failed", state.ticks)


def create_app(state: SimState) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        ticker = asyncio.create_task(run_ticker(state))
        try:
            yield
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker

    def guarded(handler: Handler, *, faulty: bool = True) -> Handler:
        """Auth on every endpoint; the faults scenario's request faults on /v1 ones."""

        async def endpoint(request: Request) -> Response:
            if state.token:
                header = request.headers.get("authorization", "")
                if not secrets.compare_digest(header.encode(), f"Bearer {state.token}".encode()):
                    return JSONResponse(
                        {"error": "unauthorized"},
                        status_code=401,
                        headers={"WWW-Authenticate": "Bearer"},
                    )
            fault = _decide_fault(state) if faulty else None
            if fault == "error" and request.method == "GET":
                return _error_response(state)
            if fault == "error":
                return await _faulty_post(state, request, handler)
            response = await handler(request)
            if fault == "slow":
                return _trickled(state, response)
            return response

        return endpoint

    async def snapshot(request: Request) -> Response:
        envelope, lists = state.open_snapshot()  # taken now, streamed at leisure
        return StreamingResponse(stream_body(envelope, lists), media_type=JSON)

    async def changes(request: Request) -> Response:
        raw = request.query_params.get("cursor", "")
        if not (raw.isascii() and raw.isdigit()):
            return JSONResponse({"error": "cursor must be a decimal string"}, status_code=400)
        body = state.render_changes(int(raw))
        if body is None:
            return JSONResponse({"error": "cursor too old: fetch /v1/snapshot"}, status_code=410)
        return Response(body, media_type=JSON)

    async def post_order(request: Request) -> Response:
        body = await _json_body(request)
        try:
            status, order = state.desk.post_order(body, state.clock())
        except Invalid as invalid:
            return JSONResponse({"error": str(invalid)}, status_code=422)
        return JSONResponse(order, status_code=status)

    async def cancel_order(request: Request) -> Response:
        order = state.desk.cancel(request.path_params["order_id"], state.clock())
        if order is None:
            return JSONResponse({"error": "unknown order"}, status_code=404)
        return JSONResponse(order)

    async def list_orders(request: Request) -> Response:
        status = request.query_params.get("status") or None
        if status is not None and status not in ORDER_STATUSES:
            return JSONResponse(
                {"error": f"status must be one of {', '.join(ORDER_STATUSES)}"}, status_code=422
            )
        account_id = request.query_params.get("account_id") or None
        return JSONResponse({"orders": state.desk.list_orders(status, account_id)})

    async def post_message(request: Request) -> Response:
        body = await _json_body(request)
        try:
            status, message = state.desk.post_message(body, state.clock())
        except Invalid as invalid:
            return JSONResponse({"error": str(invalid)}, status_code=422)
        return JSONResponse(message, status_code=status)

    async def sim_status(request: Request) -> Response:
        return JSONResponse(state.status())

    async def sim_orders(request: Request) -> Response:
        orders = [order.to_json() for order in state.orders.values()]
        return JSONResponse(
            {
                "orders": orders,
                "posts": dict(state.order_posts),
                "cancel_posts": dict(state.cancel_posts),
            }
        )

    async def sim_messages(request: Request) -> Response:
        messages = [message.to_json() for message in state.messages.values()]
        return JSONResponse({"messages": messages, "posts": dict(state.message_posts)})

    async def sim_tick(request: Request) -> Response:
        entry = state.tick()
        return JSONResponse({"tick": state.ticks, "cursor": state.cursor(entry.sequence)})

    def route(path: str, handler: Handler, method: str, *, faulty: bool = True) -> Route:
        return Route(path, guarded(handler, faulty=faulty), methods=[method])

    return Starlette(
        routes=[
            route("/v1/snapshot", snapshot, "GET"),
            route("/v1/changes", changes, "GET"),
            route("/v1/orders", post_order, "POST"),
            route("/v1/orders", list_orders, "GET"),
            route("/v1/orders/{order_id}/cancel", cancel_order, "POST"),
            route("/v1/messages", post_message, "POST"),
            route("/sim/status", sim_status, "GET", faulty=False),
            route("/sim/orders", sim_orders, "GET", faulty=False),
            route("/sim/messages", sim_messages, "GET", faulty=False),
            route("/sim/tick", sim_tick, "POST", faulty=False),
        ],
        lifespan=lifespan,
    )


async def _json_body(request: Request) -> Any:
    """The decoded body, or None when it is not JSON (the desk then answers 422)."""
    try:
        return json.loads(await request.body())
    except ValueError:
        return None


def _decide_fault(state: SimState) -> str | None:
    rates = state.scenario.faults
    if rates is None:
        return None
    draw = state.request_rng.random()
    if draw < rates.error:
        return "error"
    if draw < rates.error + rates.slow:
        return "slow"
    return None


def _error_response(state: SimState) -> Response:
    status = state.request_rng.choice((500, 502, 503))
    state.fault_counts["error"] += 1
    state.fault_counts[f"error_{status}"] += 1
    return JSONResponse({"error": f"simulated fault (HTTP {status})"}, status_code=status)


async def _faulty_post(state: SimState, request: Request, handler: Handler) -> Response:
    """Half the failed POSTs were never processed; the other half were, and the answer
    was lost on the way back — the case an idempotency key exists for."""
    if state.request_rng.random() < 0.5:
        body = await _json_body(request)
        # Received, though never processed: it still counts as a POST for that key.
        key = idempotency_key(body, "client_order_id") or idempotency_key(body, "message_id")
        if key is not None:
            posts = state.order_posts if "client_order_id" in body else state.message_posts
            posts[key] += 1
        elif "order_id" in request.path_params:  # a cancel
            state.cancel_posts[request.path_params["order_id"]] += 1
        state.fault_counts["refused"] += 1
        return _error_response(state)
    await handler(request)
    state.fault_counts["lost"] += 1
    return _error_response(state)


def _trickled(state: SimState, response: Response) -> Response:
    """The same answer, its first bytes dribbled out over `trickle_seconds`."""
    rates = state.scenario.faults
    assert rates is not None
    state.fault_counts["slow"] += 1
    if isinstance(response, StreamingResponse):
        source = response.body_iterator
    else:
        source = _once(bytes(response.body))
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    return StreamingResponse(
        _trickle(source, rates.trickle_seconds),  # type: ignore[arg-type]  # bytes chunks
        status_code=response.status_code,
        headers=headers,
        media_type=response.media_type,
    )


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _trickle(source: AsyncIterator[bytes | str], seconds: float) -> AsyncIterator[bytes]:
    steps = 20
    pause = seconds / steps
    async for chunk in source:
        data = chunk.encode() if isinstance(chunk, str) else bytes(chunk)
        while steps and data:
            piece = max(1, min(64, len(data) // steps))
            yield data[:piece]
            data = data[piece:]
            steps -= 1
            await asyncio.sleep(pause)
        if data:
            yield data
