"""Serving an ASGI app with uvicorn on a socket we bind ourselves (so port 0 works)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

import uvicorn

Lifespan = Literal["auto", "on", "off"]


def listen(host: str, port: int) -> socket.socket:
    """A bound TCP socket; port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@contextlib.asynccontextmanager
async def serving(
    app: Any,
    sock: socket.socket,
    *,
    lifespan: Lifespan = "on",
    before_stop: Callable[[], None] | None = None,
) -> AsyncIterator[asyncio.Task[None]]:
    """The app served on `sock` for the life of the block; yields the server's task.

    Start-up failures raise here rather than hang; leaving the block stops the server
    (after `before_stop`) and closes the socket.
    """
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="warning",
            lifespan=lifespan,
            access_log=False,
            timeout_graceful_shutdown=2,  # a held connection must not hold shutdown for ever
        )
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()  # raises why it could not start
                raise RuntimeError("the server stopped before it started")
            await asyncio.sleep(0.01)
        yield task
    finally:
        if before_stop is not None:
            before_stop()
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sock.close()


@contextlib.asynccontextmanager
async def serve_on_loopback(
    app: Any,
    port: int = 0,
    *,
    lifespan: Lifespan = "on",
    before_stop: Callable[[], None] | None = None,
) -> AsyncIterator[str]:
    """The app on 127.0.0.1 (a free port unless given); yields its base URL."""
    sock = listen("127.0.0.1", port)
    async with serving(app, sock, lifespan=lifespan, before_stop=before_stop):
        yield url_of(sock)
