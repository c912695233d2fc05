"""A FEED.md server written from the contract alone, with switches for every fault.

Used to prove the client works with a stranger's server, and to break it on purpose:
5xx for a while, 410 Gone, 401, malformed records, a server that trickles bytes, one
that accepts and never answers, and one whose connect never completes.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import socket
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from risk_tui.sim.server import serve_on_loopback

AS_OF = "2026-11-23T10:15:02+08:00"


def seed_snapshot() -> dict[str, Any]:
    """FEED.md's own example, completed into the worked example of SPEC.md."""
    return {
        "cursor": "000000000000000",
        "as_of": AS_OF,
        "instruments": [
            {
                "symbol": "A.SG",
                "name": "Stock A",
                "market": "SG",
                "currency": "SGD",
                "lot_size": "100",
                "im_ratio": "0.30",
                "mm_ratio": "0.25",
                "fm_ratio": "0.20",
                "suspended": False,
                "delisted": False,
            },
            {
                "symbol": "B.SG",
                "name": "Stock B",
                "market": "SG",
                "currency": "SGD",
                "lot_size": "100",
                "im_ratio": "0.50",
                "mm_ratio": "0.45",
                "fm_ratio": "0.40",
                "short_im_ratio": None,
                "short_mm_ratio": None,
                "short_fm_ratio": None,
                "intraday_im_ratio": "0.25",
                "intraday_mm_ratio": "0.20",
                "intraday_fm_ratio": "0.15",
                "suspended": False,
                "delisted": False,
            },
        ],
        "quotes": [
            {"symbol": "A.SG", "price": "5.00", "ts": AS_OF},
            {"symbol": "B.SG", "price": "19.50", "ts": AS_OF},
        ],
        "fx": [{"from": "HKD", "to": "SGD", "rate": "0.1723"}],
        "accounts": [
            {
                "account_id": "A1001",
                "client_name": "Tan Mei Ling",
                "kind": "margin",
                "base_currency": "SGD",
                "market": "SG",
                "contact": {"email": "t@example.com", "phone": "+65 0"},
            }
        ],
        "cash": [{"account_id": "A1001", "currency": "SGD", "balance": "-15000.00"}],
        "positions": [
            {"account_id": "A1001", "symbol": "A.SG", "quantity": "1000", "avg_cost": "5.00"},
            {"account_id": "A1001", "symbol": "B.SG", "quantity": "1000", "avg_cost": "25.00"},
        ],
        "borrow": [],
    }


@dataclass
class FakeFeed:
    snapshot_body: dict[str, Any] = field(default_factory=seed_snapshot)
    change_sets: list[dict[str, Any]] = field(default_factory=list)  # cursor n+1 = index n
    token: str = ""
    fail_next: int = 0  # answer 503 to this many requests
    gone_next: int = 0  # answer 410 to this many /v1/changes requests
    oldest_cursor: int = 0  # cursors below this get 410
    requests: Counter[str] = field(default_factory=Counter)
    delivered: Counter[int] = field(default_factory=Counter)  # change-set index → times sent

    def cursor(self) -> str:
        return f"{len(self.change_sets):015d}"

    def add_changes(self, **lists: list[dict[str, Any]]) -> None:
        self.change_sets.append(copy.deepcopy(lists))

    def snapshot(self) -> dict[str, Any]:
        body = copy.deepcopy(self.snapshot_body)
        for change in self.change_sets:  # the snapshot reflects every change
            for name, records in change.items():
                body.setdefault(name, []).extend(records)
        body["cursor"] = self.cursor()
        body["as_of"] = AS_OF
        return body

    def app(self) -> Starlette:
        def gate(request: Request, name: str) -> Response | None:
            self.requests[name] += 1
            if self.token and request.headers.get("authorization") != f"Bearer {self.token}":
                return JSONResponse({"error": "unauthorized"}, status_code=401)
            if self.fail_next > 0:
                self.fail_next -= 1
                return JSONResponse({"error": "overloaded"}, status_code=503)
            return None

        async def snapshot(request: Request) -> Response:
            return gate(request, "snapshot") or JSONResponse(self.snapshot())

        async def changes(request: Request) -> Response:
            if (refused := gate(request, "changes")) is not None:
                return refused
            cursor = int(request.query_params["cursor"])
            if self.gone_next > 0 or cursor < self.oldest_cursor:
                self.gone_next = max(0, self.gone_next - 1)
                return JSONResponse({"error": "gone"}, status_code=410)
            body: dict[str, Any] = {"cursor": self.cursor(), "as_of": AS_OF}
            for index, change in enumerate(self.change_sets[cursor:], start=cursor):
                self.delivered[index] += 1
                for name, records in change.items():
                    body.setdefault(name, []).extend(records)
            return JSONResponse(body)

        return Starlette(routes=[Route("/v1/snapshot", snapshot), Route("/v1/changes", changes)])


def serve(app: Any, port: int = 0) -> contextlib.AbstractAsyncContextManager[str]:
    """An ASGI app on a real loopback socket for the life of the block."""
    return serve_on_loopback(app, port, lifespan="off")


@contextlib.asynccontextmanager
async def trickling_server(interval: float = 0.2) -> AsyncIterator[str]:
    """Sends headers and then one byte of body every `interval` seconds, for ever."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: 1000000\r\n\r\n"
            )
            await writer.drain()
            while True:
                writer.write(b" ")
                await writer.drain()
                await asyncio.sleep(interval)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 1)


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[str]:
    """Accepts connections and never answers a byte."""
    held: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        for writer in held:
            writer.close()
        server.close()


@contextlib.contextmanager
def unconnectable_port() -> Any:
    """A listening socket whose accept queue is full: a new connect() never completes.

    Linux drops the SYN when the backlog is full, so the client waits in connect.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):  # fill the backlog (its effective size is backlog + 1)
        filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
