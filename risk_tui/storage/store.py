"""The Store: the desk's repositories over one database engine, one per aggregate.

Why one object: a process opens one engine and hands the desk one thing to keep; each
repository is still reached by name (`store.calls.commit`, `store.orders.record_intent`),
so a reader of a call site knows which aggregate it writes. Every write is one
transaction; writes that leave evidence go through `audited.audited`, which locks the
chain heads in the desk's one order. Reads take no write lock (see `db.READ_ONLY`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from risk_tui.storage.approvals import ApprovalRequests
from risk_tui.storage.audit import AuditTrail
from risk_tui.storage.base import utcnow
from risk_tui.storage.cache import FeedCache
from risk_tui.storage.calls import Calls
from risk_tui.storage.daily import DailyJobs
from risk_tui.storage.engines import EngineBeats
from risk_tui.storage.history import History
from risk_tui.storage.kill_switch import KillSwitchControl
from risk_tui.storage.orders import Orders
from risk_tui.storage.outbox import Messages
from risk_tui.storage.plans import Plans


class Store:
    """Persistence for the desk: one instance per process, over one AsyncEngine."""

    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._engine = engine
        self.calls = Calls(engine, clock)  # lifecycle commits, remarks, claims, open calls
        self.history = History(engine, clock)  # ended calls, snapshots, remarks, audit reads
        self.audit = AuditTrail(engine, clock)  # audit entries on their own, chain heads
        self.orders = Orders(engine, clock)  # the outbox's liquidation orders
        self.messages = Messages(engine, clock)  # the outbox's client messages
        self.plans = Plans(engine, clock)  # auto-liquidation plans
        self.approvals = ApprovalRequests(engine, clock)  # four-eyes requests
        self.kill_switch = KillSwitchControl(engine, clock)
        self.daily = DailyJobs(engine, clock)  # daily-job markers
        self.cache = FeedCache(engine, clock)  # the book cache
        self.engines = EngineBeats(engine, clock)  # engine heartbeats (PostgreSQL)

    @property
    def engine(self) -> AsyncEngine:
        return self._engine


__all__ = ["Store"]
