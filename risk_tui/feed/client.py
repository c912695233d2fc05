"""HTTP access to the FEED.md server: one GET with a total deadline and clear errors.

httpx's read timeout is per chunk, so a server that trickles bytes never trips it:
every request here also runs under `asyncio.timeout` for the whole exchange.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

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
    """GET a JSON body within `deadline` seconds in total, or raise FeedUnavailable."""
    where = f"{str(client.base_url).rstrip('/')}/{path.lstrip('/')}"
    try:
        async with asyncio.timeout(deadline):
            response = await client.get(path, params=params or None)
            body = await response.aread()
    except TimeoutError:
        raise FeedUnavailable(f"feed {where}: no complete answer within {deadline:g}s") from None
    except httpx.HTTPError as problem:
        raise FeedUnavailable(f"feed {where}: {_describe(problem)}") from None
    status = response.status_code
    if status in (401, 403):
        raise FeedAuthError(f"feed {where}: HTTP {status}: check feed.token (RISK_TUI_FEED_TOKEN)")
    if status == 410:
        raise CursorGone(f"feed {where}: HTTP 410: cursor too old")
    if status != 200:
        detail = sanitize(body[:200].decode("utf-8", "replace"))
        raise FeedUnavailable(f"feed {where}: HTTP {status}: {detail}")
    try:
        return json.loads(body)
    except ValueError:
        raise FeedUnavailable(f"feed {where}: answer is not JSON") from None


def _describe(problem: httpx.HTTPError) -> str:
    text = str(problem) or type(problem).__name__
    if isinstance(problem, httpx.ConnectError):
        text = f"cannot connect ({text})"
    return sanitize(text, max_length=200)
