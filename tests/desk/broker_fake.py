"""A fake broker serving FEED.md's order and message endpoints, with switches for bad days.

Built from FEED.md, not from `risk_tui.sim`: idempotent on `client_order_id` and
`message_id`, it counts every POST and every creation per key, so a test can say "the
broker created exactly one order". Switches make it answer late (after it has created
the order, so the client times out on an order that exists), hold replies until
released, answer 5xx, or 401. Served by uvicorn on a real loopback port (`serve_fake`).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from risk_tui.sim.server import serve_on_loopback

ORDER_STATUSES = ("working", "filled", "partially_filled", "cancelled", "rejected")


@dataclass
class FakeBroker:
    token: str = ""  # when set, `Authorization: Bearer <token>` is required
    unauthorized: bool = False  # every request answers 401
    fail_5xx: int = 0  # the next N POSTs answer 503 before doing anything
    fail_5xx_after_create: int = 0  # the next N POSTs do the work, then answer 500
    reply_delays: list[float] = field(default_factory=list)  # one per POST, after the work
    hold_replies: bool = False  # POST replies wait for `release` (after the work is done)
    reply_jitter: float = 0.0  # each POST reply waits up to this many seconds, at random
    reject_symbols: dict[str, str] = field(default_factory=dict)  # symbol → 422 message
    broker_rejects: dict[str, str] = field(default_factory=dict)  # symbol → status rejected
    reject_channels: dict[str, str] = field(default_factory=dict)  # message channel → 422
    orders_envelope: bool = True  # GET /v1/orders: {"orders": [...]}, else a bare list

    orders: dict[str, dict[str, Any]] = field(default_factory=dict)  # by client_order_id
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)  # by message_id
    posts: Counter[str] = field(default_factory=Counter)  # POSTs per key
    creations: Counter[str] = field(default_factory=Counter)  # creations per key
    cancels: Counter[str] = field(default_factory=Counter)  # cancel requests per order_id
    order_queries: int = 0
    bodies: list[dict[str, Any]] = field(default_factory=list)  # every POST body, in order
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def order_by_id(self, order_id: str) -> dict[str, Any] | None:
        return next((o for o in self.orders.values() if o["order_id"] == order_id), None)

    def fill(self, client_order_id: str, quantity: str, price: str) -> None:
        order = self.orders[client_order_id]
        filled = Decimal(order["filled_quantity"]) + Decimal(quantity)
        order["filled_quantity"] = str(filled)
        order["avg_price"] = price
        order["status"] = "filled" if filled >= Decimal(order["quantity"]) else "partially_filled"

    # --- the app ---------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/orders", self._post_order, methods=["POST"]),
                Route("/v1/orders", self._list_orders, methods=["GET"]),
                Route("/v1/orders/{order_id}/cancel", self._cancel, methods=["POST"]),
                Route("/v1/messages", self._post_message, methods=["POST"]),
            ]
        )

    def _denied(self, request: Request) -> Response | None:
        expected = f"Bearer {self.token}"
        if self.unauthorized or (self.token and request.headers.get("authorization") != expected):
            return JSONResponse({"message": "unauthorized"}, status_code=401)
        return None

    async def _post_order(self, request: Request) -> Response:
        body = await request.json()
        self.bodies.append(body)
        key = body.get("client_order_id") if isinstance(body, dict) else None
        if isinstance(key, str):
            self.posts[key] += 1
        if denied := self._denied(request):
            return denied
        if self.fail_5xx > 0:
            self.fail_5xx -= 1
            return JSONResponse({"message": "busy"}, status_code=503)
        problem = _order_problem(body)
        if problem is None and body["symbol"] in self.reject_symbols:
            problem = self.reject_symbols[body["symbol"]]
        if problem is not None:
            return JSONResponse({"message": problem}, status_code=422)
        key = str(body["client_order_id"])
        status_code = 200
        if key not in self.orders:
            status_code = 201
            self.creations[key] += 1
            rejected = self.broker_rejects.get(body["symbol"])
            self.orders[key] = {
                "order_id": f"BRK-{len(self.orders) + 1:06d}",
                "client_order_id": key,
                "account_id": body["account_id"],
                "symbol": body["symbol"],
                "side": body["side"],
                "quantity": body["quantity"],
                "order_type": body["order_type"],
                "limit_price": body["limit_price"],
                "status": "rejected" if rejected else "working",
                "filled_quantity": "0",
                "avg_price": None,
                "reject_reason": rejected,
                "reference": body.get("reference"),
                "operator": body.get("operator"),
            }
        return await self._reply(dict(self.orders[key]), status_code)

    async def _post_message(self, request: Request) -> Response:
        body = await request.json()
        self.bodies.append(body)
        key = body.get("message_id") if isinstance(body, dict) else None
        if isinstance(key, str):
            self.posts[key] += 1
        if denied := self._denied(request):
            return denied
        if self.fail_5xx > 0:
            self.fail_5xx -= 1
            return JSONResponse({"message": "busy"}, status_code=503)
        problem = _message_problem(body)
        if problem is None and body["channel"] in self.reject_channels:
            problem = self.reject_channels[body["channel"]]
        if problem is not None:
            return JSONResponse({"message": problem}, status_code=422)
        key = str(body["message_id"])
        status_code = 200
        if key not in self.messages:
            status_code = 201
            self.creations[key] += 1
            self.messages[key] = {"message_id": key, "status": "queued", **body}
        return await self._reply(
            {"message_id": key, "status": self.messages[key]["status"]}, status_code
        )

    async def _reply(self, body: dict[str, Any], status_code: int) -> Response:
        if self.fail_5xx_after_create > 0:
            self.fail_5xx_after_create -= 1
            return JSONResponse({"message": "internal error"}, status_code=500)
        if self.reply_delays:
            await asyncio.sleep(self.reply_delays.pop(0))
        if self.reply_jitter:
            await asyncio.sleep(random.uniform(0, self.reply_jitter))
        if self.hold_replies:
            await self.release.wait()
        return JSONResponse(body, status_code=status_code)

    async def _list_orders(self, request: Request) -> Response:
        if denied := self._denied(request):
            return denied
        self.order_queries += 1
        status = request.query_params.get("status")
        account_id = request.query_params.get("account_id")
        listed = [
            dict(order)
            for order in self.orders.values()
            if (status is None or order["status"] == status)
            and (account_id is None or order["account_id"] == account_id)
        ]
        return JSONResponse({"orders": listed} if self.orders_envelope else listed)

    async def _cancel(self, request: Request) -> Response:
        if denied := self._denied(request):
            return denied
        order_id = request.path_params["order_id"]
        self.cancels[order_id] += 1
        order = self.order_by_id(order_id)
        if order is None:
            return JSONResponse({"message": f"unknown order {order_id}"}, status_code=404)
        if order["status"] in ("working", "partially_filled"):
            order["status"] = "cancelled"
        return JSONResponse(dict(order))


def _decimal_string(value: Any) -> Decimal | None:
    if not isinstance(value, str):
        return None  # FEED.md: amounts are decimal strings, never JSON numbers
    try:
        amount = Decimal(value)
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def _order_problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "body must be a JSON object"
    for name in ("client_order_id", "account_id", "symbol", "operator", "reason"):
        if not isinstance(body.get(name), str) or not body[name]:
            return f"{name} is required"
    if body.get("side") not in ("sell", "buy"):
        return "side must be sell or buy"
    quantity = _decimal_string(body.get("quantity"))
    if quantity is None or quantity <= 0:
        return "quantity must be a positive decimal string"
    if body.get("order_type") == "limit":
        price = _decimal_string(body.get("limit_price"))
        if price is None or price <= 0:
            return "a limit order needs a positive limit_price decimal string"
    elif body.get("order_type") == "market":
        if body.get("limit_price") is not None:
            return "a market order takes no limit_price"
    else:
        return "order_type must be market or limit"
    return None


def _message_problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "body must be a JSON object"
    for name in ("message_id", "account_id", "body", "operator"):
        if not isinstance(body.get(name), str) or not body[name]:
            return f"{name} is required"
    if body.get("channel") not in ("app", "email", "sms", "voice"):
        return "channel must be app, email, sms or voice"
    return None


@contextlib.asynccontextmanager
async def serve_fake(broker: FakeBroker) -> AsyncIterator[str]:
    """The fake on an ephemeral loopback port for the life of the block; yields its URL."""
    # Held replies are released before the server stops, so shutdown does not wait on them.
    async with serve_on_loopback(
        broker.app(), lifespan="off", before_stop=broker.release.set
    ) as url:
        yield url
