"""HTTP access to the FEED.md server: one request with a total deadline, and clear errors.

httpx's read timeout is per chunk, so a server that trickles bytes never trips it:
every request to the server (the poller's GETs, the broker client's orders, messages
and cancels) goes through `request`, under `asyncio.timeout` for the whole exchange.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from risk_tui import __version__
from risk_tui.config import FeedSettings
from risk_tui.core.text import sanitize


class FeedUnavailable(Exception):
    """The feed could not be read; str() is one line for the operator."""


class FeedAuthError(FeedUnavailable):
    """401/403: a credentials problem, not to be retried in a tight loop."""


class CursorGone(FeedUnavailable):
    """410: the cursor is too old; fetch a fresh snapshot."""


class NoAnswer(Exception):
    """No complete answer in time, no connection, or an answer that says nothing definite.

    str() is one line for the operator. For a request that changes something (an
    order's POST) it means "in doubt": the server may or may not have acted on it.
    """


@dataclass(frozen=True, slots=True)
class Answer:
    """The server's whole answer: its status and body."""

    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def make_client(feed: FeedSettings) -> httpx.AsyncClient:
    headers = {"User-Agent": f"risk-tui/{__version__}", "Accept": "application/json"}
    token = feed.token.get_secret_value()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.AsyncClient(
        base_url=feed.url,
        headers=headers,
        timeout=httpx.Timeout(feed.timeout),
        follow_redirects=False,
    )


async def get_json(client: httpx.AsyncClient, path: str, *, deadline: float, **params: str) -> Any:
    """GET a JSON body within `deadline` seconds in total, or raise FeedUnavailable (its
    text says what went wrong first, then where: a narrow banner keeps the reason)."""
    where = f"{str(client.base_url).rstrip('/')}/{path.lstrip('/')}"
    try:
        answer = await request(client, "GET", path, deadline=deadline, params=params or None)
    except NoAnswer as problem:
        raise FeedUnavailable(f"{problem}; feed {where}") from None
    status, body = answer.status, answer.body
    if status in (401, 403):
        raise FeedAuthError(f"HTTP {status}: check feed.token (RISK_TUI_FEED_TOKEN); feed {where}")
    if status == 410:
        raise CursorGone(f"HTTP 410: cursor too old; feed {where}")
    if status != 200:
        detail = sanitize(body[:200].decode("utf-8", "replace"))
        raise FeedUnavailable(f"HTTP {status}: {detail}; feed {where}")
    try:
        return json.loads(body)
    except ValueError:
        raise FeedUnavailable(f"answer is not JSON; feed {where}") from None


async def request(
    client: httpx.AsyncClient,
    method: Literal["GET", "POST"],
    path: str,
    *,
    deadline: float,
    body: Mapping[str, Any] | None = None,
    params: Mapping[str, str] | None = None,
) -> Answer:
    """One request (`body` as JSON) and its whole answer within `deadline` seconds in
    total, or NoAnswer."""
    try:
        async with asyncio.timeout(deadline):
            response = await client.request(
                method,
                path,
                json=None if body is None else dict(body),
                params=None if params is None else dict(params),
            )
            content = await response.aread()
    except TimeoutError:
        raise NoAnswer(f"no complete answer within {deadline:g}s") from None
    except httpx.HTTPError as problem:
        raise NoAnswer(_describe(problem)) from None
    return Answer(response.status_code, content)


def _describe(problem: httpx.HTTPError) -> str:
    text = str(problem) or type(problem).__name__
    if isinstance(problem, httpx.ConnectError):
        text = f"cannot connect ({text})"
    return sanitize(text, max_length=200)
