"""The simulator's HTTP app (Starlette): serves FEED.md's read endpoints from a SimState.

Runs under uvicorn on loopback (`risk-tui sim`, and in-process for `risk-tui demo`).
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from risk_tui.sim.seed import seed_book

SIM_TZ = timezone(timedelta(hours=8))
RECORD_LISTS = ("instruments", "quotes", "fx", "accounts", "cash", "positions", "borrow")


def sim_now() -> datetime:
    return datetime.now(SIM_TZ).replace(microsecond=0)


@dataclass
class SimState:
    """The simulated back office: the book, a numbered change log, and a clock."""

    book: dict[str, list[dict[str, Any]]] = field(default_factory=seed_book)
    clock: Callable[[], datetime] = sim_now
    token: str = ""
    retain: int = 10_000  # change sets kept; an older cursor gets 410 Gone
    sequence: int = 0
    log: list[tuple[int, dict[str, list[dict[str, Any]]]]] = field(default_factory=list)

    def cursor(self, value: int | None = None) -> str:
        return f"{self.sequence if value is None else value:015d}"

    def snapshot(self) -> dict[str, Any]:
        body: dict[str, Any] = {"cursor": self.cursor(), "as_of": self.clock().isoformat()}
        body.update(copy.deepcopy(self.book))
        return body

    def publish(self, changes: dict[str, list[dict[str, Any]]]) -> None:
        """Apply a change set to the book and append it to the log under a new cursor."""
        for name, records in changes.items():
            if name not in RECORD_LISTS:
                raise ValueError(f"unknown record list {name}")
            current = self.book.setdefault(name, [])
            for record in records:
                key = _key(name, record)
                current[:] = [r for r in current if _key(name, r) != key]
                if not (name == "positions" and record.get("quantity") == "0"):
                    current.append(record)
        self.sequence += 1
        self.log.append((self.sequence, copy.deepcopy(changes)))
        del self.log[: max(0, len(self.log) - self.retain)]

    def changes_since(self, cursor: int) -> dict[str, Any] | None:
        """Everything after `cursor`, merged; None when the cursor is too old or unknown."""
        oldest = self.log[0][0] - 1 if self.log else self.sequence
        if cursor < oldest or cursor > self.sequence:
            return None
        body: dict[str, Any] = {"cursor": self.cursor(), "as_of": self.clock().isoformat()}
        for sequence, changes in self.log:
            if sequence > cursor:
                for name, records in changes.items():
                    body.setdefault(name, []).extend(records)
        return body


def _key(name: str, record: dict[str, Any]) -> tuple[Any, ...]:
    if name == "fx":
        return (record.get("from"), record.get("to"))
    if name == "cash":
        return (record.get("account_id"), record.get("currency"))
    if name == "positions":
        return (record.get("account_id"), record.get("symbol"))
    if name == "accounts":
        return (record.get("account_id"),)
    return (record.get("symbol"),)


def create_app(state: SimState) -> Starlette:
    def authorized(request: Request) -> Response | None:
        if not state.token:
            return None
        header = request.headers.get("authorization", "")
        if not secrets.compare_digest(header, f"Bearer {state.token}"):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        return None

    async def snapshot(request: Request) -> Response:
        return authorized(request) or JSONResponse(state.snapshot())

    async def changes(request: Request) -> Response:
        if (denied := authorized(request)) is not None:
            return denied
        raw = request.query_params.get("cursor", "")
        if not raw.isdigit():
            return JSONResponse({"error": "cursor must be a decimal string"}, status_code=400)
        body = state.changes_since(int(raw))
        if body is None:
            return JSONResponse({"error": "cursor too old: fetch /v1/snapshot"}, status_code=410)
        return JSONResponse(body)

    return Starlette(
        routes=[
            Route("/v1/snapshot", snapshot, methods=["GET"]),
            Route("/v1/changes", changes, methods=["GET"]),
        ]
    )
