"""Shared helpers for the simulator tests: a fixed clock, the book as the desk sees it."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx

from risk_tui.core.book import book_from_snapshot
from risk_tui.core.margin import AccountMargin, CallPolicy, compute_account, is_monitored
from risk_tui.core.model import Book
from risk_tui.feed.models import parse_payload
from risk_tui.sim.app import SIM_TZ, SimState, create_app

NOW = datetime(2026, 11, 23, 10, 15, tzinfo=SIM_TZ)  # a Monday


def fixed_clock() -> datetime:
    return NOW


def desk_book(state: SimState) -> Book:
    """The book exactly as the desk would build it from /v1/snapshot."""
    parsed = parse_payload(state.snapshot())
    assert parsed.rejected == []
    return book_from_snapshot(parsed.changes)


def margins(book: Book) -> dict[str, AccountMargin]:
    return {
        account_id: compute_account(book, account_id, CallPolicy())
        for account_id, account in book.accounts.items()
        if is_monitored(account)
    }


def risk_levels(book: Book) -> Counter[str]:
    return Counter(str(m.risk_level) for m in margins(book).values())


def in_call(book: Book) -> int:
    return sum(1 for m in margins(book).values() if m.in_call)


def shortfalls(book: Book) -> dict[str, Decimal]:
    """FEED.md: the firm's shortfall per symbol, max(0, total client short − available)."""
    short: dict[str, Decimal] = {}
    for holdings in book.positions.values():
        for position in holdings.values():
            if position.quantity < 0:
                short[position.symbol] = short.get(position.symbol, Decimal(0)) - position.quantity
    return {
        symbol: total - book.borrow[symbol].available
        for symbol, total in short.items()
        if symbol in book.borrow and total > book.borrow[symbol].available
    }


@asynccontextmanager
async def client_for(state: SimState, token: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the app in-process (no lifespan: no ticker; tests tick)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sim", headers=headers
    ) as client:
        yield client


def order(**fields: Any) -> dict[str, Any]:
    """A FEED.md order body: A1001 sells 300 B.SG at market, unless told otherwise."""
    body: dict[str, Any] = {
        "client_order_id": "RT-O-1",
        "account_id": "A1001",
        "symbol": "B.SG",
        "side": "sell",
        "quantity": "300",
        "order_type": "market",
        "limit_price": None,
        "reason": "margin_call",
        "reference": "call-1",
        "operator": "jdoe",
    }
    body.update(fields)
    return body
