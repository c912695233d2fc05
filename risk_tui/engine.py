"""The one loop: feed payload → book → margin → lifecycle → storage → published view.

`Engine.apply` is one poll's work; `Desk` wires the poller (`risk_tui.feed.poller`) to
it, restores the cached book at start-up and publishes each view. A view is immutable:
the UI and `risk-tui report` only read it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

from risk_tui.config import Settings
from risk_tui.core.actions import Actor, MessageIntent, OrderIntent, SendState
from risk_tui.core.book import BookChanges, apply_changes, book_from_snapshot, exposed_to
from risk_tui.core.calendar import TradingCalendars
from risk_tui.core.feed_health import FeedHealth, FeedStatus
from risk_tui.core.lifecycle import (
    LifecycleBatch,
    MarginCall,
    SnapshotRecord,
    SnapshotScenario,
    Transition,
    evaluate,
    record_notification,
)
from risk_tui.core.margin import AccountMargin, RiskLevel, compute_account, is_monitored
from risk_tui.core.model import Book, Market
from risk_tui.core.snapshot import snapshot_payload
from risk_tui.core.view import DeskView, IncompleteRow, WarningRow, compute_totals
from risk_tui.feed.gateway import (
    ActionRefused,
    Gateway,
    GatewayError,
    MessageOutcome,
    OrderOutcome,
)
from risk_tui.feed.models import FeedError, ParsedPayload, Rejection, book_to_payload, parse_payload
from risk_tui.feed.poller import Poller
from risk_tui.storage.actions import StoredMessage, StoredOrder

log = logging.getLogger(__name__)


class CallStore(Protocol):
    async def open_calls(self) -> dict[str, MarginCall]: ...

    async def commit(self, batch: LifecycleBatch) -> None: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class PollOutcome:
    view: DeskView
    transitions: list[Transition] = field(default_factory=list)
    recomputed: int = 0


class Engine:
    """Owns the book, the latest margin results and the open calls of one desk."""

    def __init__(
        self,
        settings: Settings,
        store: CallStore,
        calendars: TradingCalendars,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self.store = store
        self.calendars = calendars
        self.clock = clock
        self.book = Book()
        self.results: dict[str, AccountMargin] = {}
        self.open_calls: dict[str, MarginCall] = {}
        # Records the feed sent but we refused, by (list, key): the accounts they touch
        # are partial until a valid record replaces them.
        self.tainted: dict[tuple[str, str], str] = {}
        # Calls on which a desk liquidation order filled: cured, they end "liquidated".
        self.filled_calls: set[str] = set()
        self.view = DeskView(None, None, True, (), (), compute_totals((), self.book, "SGD"))

    async def start(self) -> None:
        self.open_calls = await self.store.open_calls()

    def _deadline(self, market: Market, notice_at: datetime) -> datetime:
        rule = self.settings.margin_call.rule_for(market)
        return self.calendars.deadline(market, notice_at, rule.due_trading_days, rule.cutoff_time)

    async def apply(
        self,
        changes: BookChanges,
        *,
        full: bool,
        rejected: Iterable[Rejection] = (),
        fresh: bool = True,
    ) -> PollOutcome:
        """Apply one payload: recompute touched accounts, run the lifecycle, commit.

        `fresh=False` (a book restored from the cache) computes and shows figures but
        runs no lifecycle: nothing opens or ends on data that are not live.
        """
        now = self.clock()
        if full:
            self.book = book_from_snapshot(changes)
            self.results.clear()
            self.tainted.clear()
            touched = set(self.book.accounts)
        else:
            touched = apply_changes(self.book, changes)
            for kind, records in _valid_keys(changes):
                for key in records:
                    self.tainted.pop((kind, key), None)
        for rejection in rejected:
            self.tainted[(rejection.kind, rejection.key)] = (
                f"feed record rejected ({rejection.kind} {rejection.key}): {rejection.reason}"
            )
        partial = self._partial_accounts()
        touched |= set(partial)
        batch = LifecycleBatch()
        transitions: list[Transition] = []
        for account_id in sorted(touched):
            account = self.book.accounts.get(account_id)
            if account is None or not is_monitored(account):
                self.results.pop(account_id, None)
                continue
            rule = self.settings.margin_call.rule_for(account.market)
            result = compute_account(self.book, account_id, rule.policy)
            if account_id in partial and result.incomplete is None:
                result = _as_incomplete(result, partial[account_id])
            self.results[account_id] = result
            transition = evaluate(
                self.open_calls.get(account_id),
                result,
                fresh=fresh,
                now=now,
                market=account.market,
                client_name=account.client_name,
                deadline_for=self._deadline,
                liquidated_since_trigger=(
                    account_id in self.open_calls
                    and self.open_calls[account_id].call_id in self.filled_calls
                ),
            )
            if transition is None:
                continue
            transitions.append(transition)
            batch.calls.append(transition.call)
            payload = (
                snapshot_payload(
                    result,
                    transition.call,
                    feed_as_of=self.book.as_of,
                    feed_cursor=self.book.cursor,
                )
                if transition.snapshots
                else None
            )
            for scenario in transition.snapshots:
                assert payload is not None
                batch.snapshots.append(
                    SnapshotRecord(
                        call_id=transition.call.call_id,
                        account_id=account_id,
                        scenario=scenario,
                        taken_at=now,
                        feed_as_of=self.book.as_of,
                        feed_cursor=self.book.cursor,
                        payload=payload,
                    )
                )
        if batch:
            await self.store.commit(batch)
        for transition in transitions:
            call = transition.call
            if call.is_open:
                self.open_calls[call.account_id] = call
            else:
                self.open_calls.pop(call.account_id, None)
        self.view = self._publish(now, stale=not fresh, rejected=len(self.tainted))
        return PollOutcome(self.view, transitions, recomputed=len(touched))

    def account_state(self, account_id: str) -> dict[str, Any]:
        """The account as the desk sees it now: recorded with every action taken on it."""
        result = self.results.get(account_id)
        if result is None:
            return {"account_id": account_id, "unavailable": "no figures for this account"}
        return snapshot_payload(
            result,
            self.open_calls.get(account_id),
            feed_as_of=self.book.as_of,
            feed_cursor=self.book.cursor,
        )

    async def record_notification(self, call_id: str, at: datetime) -> MarginCall | None:
        """A message about an open call went out: notified, with its snapshot."""
        call = next((c for c in self.open_calls.values() if c.call_id == call_id), None)
        if call is None:
            return None
        transition = record_notification(call, at)
        payload = self.account_state(call.account_id)
        snapshot = SnapshotRecord(
            call_id=call.call_id,
            account_id=call.account_id,
            scenario=SnapshotScenario.NOTIFICATION,
            taken_at=at,
            feed_as_of=self.book.as_of,
            feed_cursor=self.book.cursor,
            payload=payload,
        )
        await self.store.commit(LifecycleBatch(calls=[transition.call], snapshots=[snapshot]))
        self.open_calls[call.account_id] = transition.call
        self.view = replace(self.view, warnings=self._rows(at))
        return transition.call

    def _partial_accounts(self) -> dict[str, str]:
        partial: dict[str, str] = {}
        for (kind, key), reason in self.tainted.items():
            if kind in ("accounts", "cash", "positions"):
                affected = {key.split("/", 1)[0]}
            elif kind in ("quotes", "instruments"):
                affected = self.book.holders_of([key.split("/", 1)[0]])
            elif kind == "fx":
                affected = exposed_to(self.book, set(key.split("/")))
            else:
                continue
            for account_id in affected:
                partial.setdefault(account_id, reason)
        return partial

    def mark_stale(self) -> DeskView:
        """The feed failed: keep the last good figures, say they are stale."""
        self.view = self._publish(self.clock(), stale=True, rejected=len(self.tainted))
        return self.view

    def _rows(self, now: datetime) -> tuple[WarningRow, ...]:
        days = self.settings.desk.long_outstanding_days
        return tuple(
            WarningRow(call, self.results.get(account_id), call.long_outstanding(now, days))
            for account_id, call in sorted(
                self.open_calls.items(), key=lambda item: item[1].triggered_at
            )
        )

    def _publish(self, now: datetime, *, stale: bool, rejected: int) -> DeskView:
        rows = self._rows(now)
        incomplete = tuple(
            IncompleteRow(
                account_id,
                self.book.accounts[account_id].client_name,
                result.incomplete or "",
            )
            for account_id, result in sorted(self.results.items())
            if result.incomplete is not None and account_id in self.book.accounts
        )
        totals = compute_totals(rows, self.book, self.settings.desk.reporting_currency)
        return DeskView(
            as_of=self.book.as_of,
            cursor=self.book.cursor,
            stale=stale,
            warnings=rows,
            incomplete=incomplete,
            totals=totals,
            rejected_records=rejected,
        )


def _valid_keys(changes: BookChanges) -> list[tuple[str, list[str]]]:
    return [
        ("instruments", [i.symbol for i in changes.instruments]),
        ("quotes", [q.symbol for q in changes.quotes]),
        ("fx", [f"{f.from_ccy}/{f.to_ccy}" for f in changes.fx]),
        ("accounts", [a.account_id for a in changes.accounts]),
        ("cash", [f"{c.account_id}/{c.currency}" for c in changes.cash]),
        ("positions", [f"{p.account_id}/{p.symbol}" for p in changes.positions]),
        ("borrow", [b.symbol for b in changes.borrow]),
    ]


def _as_incomplete(result: AccountMargin, reason: str) -> AccountMargin:
    return replace(result, risk_level=RiskLevel.INCOMPLETE, incomplete=reason)


BOOK_CACHE_KEY = "book"
CACHE_INTERVAL = 30.0  # seconds between book-cache writes while changes keep coming
ORDER_REFRESH_INTERVAL = 2.0  # seconds between status queries while desk orders work


class DeskStore(CallStore, Protocol):
    async def get_cache(self, key: str) -> str | None: ...

    async def put_cache(self, key: str, value: str) -> None: ...

    async def calls_with_fills(self) -> set[str]: ...

    async def working_orders(self) -> list[StoredOrder]: ...


class Desk:
    """The running desk: the poller feeding the engine, the book cache, and publication.

    `on_view` receives every new DeskView, `on_health` every change of feed health; the
    UI and `report` consume those and nothing else.
    """

    def __init__(
        self,
        settings: Settings,
        store: DeskStore,
        calendars: TradingCalendars,
        client: httpx.AsyncClient,
        *,
        on_view: Callable[[DeskView], None] | None = None,
        on_health: Callable[[FeedHealth], None] | None = None,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        gateway: Gateway | None = None,
    ) -> None:
        self.store = store
        self.gateway = gateway
        self.engine = Engine(settings, store, calendars, clock=clock)
        self.on_view = on_view
        self.monotonic = monotonic
        self.poller = Poller(
            client, settings.feed, self._apply, on_health=on_health, clock=monotonic
        )
        self._last_cache = -math.inf

    @property
    def view(self) -> DeskView:
        return self.engine.view

    @property
    def health(self) -> FeedHealth:
        return self.poller.health

    def _publish(self, view: DeskView) -> None:
        if self.on_view is not None:
            self.on_view(view)

    async def start(self) -> DeskView:
        """Open calls from storage, and the last cached book shown as stale until a poll."""
        await self.engine.start()
        self.engine.filled_calls = await self.store.calls_with_fills()
        cached = await self.store.get_cache(BOOK_CACHE_KEY)
        if cached:
            try:
                parsed = parse_payload(json.loads(cached))
            except (ValueError, FeedError):
                log.warning("the cached book is unreadable; waiting for the feed")
            else:
                await self.engine.apply(parsed.changes, full=True, fresh=False)
                self.poller.cursor = parsed.changes.cursor
        else:
            self.engine.view = replace(self.engine.view, stale=True)
        self._publish(self.engine.view)
        return self.engine.view

    async def _apply(self, parsed: ParsedPayload, *, full: bool) -> int:
        outcome = await self.engine.apply(parsed.changes, full=full, rejected=parsed.rejected)
        now = self.monotonic()
        if full or now - self._last_cache >= CACHE_INTERVAL:
            await self.store.put_cache(
                BOOK_CACHE_KEY, json.dumps(book_to_payload(self.engine.book))
            )
            self._last_cache = now
        self._publish(outcome.view)
        return outcome.recomputed

    # --- actions: every one recorded before it is sent, on the state it was taken on ---

    def _gateway(self) -> Gateway:
        if self.gateway is None:
            raise ActionRefused("action", ["this desk has no gateway to the broker"])
        return self.gateway

    def data_fresh(self, account_id: str) -> bool:
        """Live feed and complete figures for the account: the only basis for an order."""
        result = self.engine.results.get(account_id)
        live = self.health.status(self.monotonic()) is FeedStatus.LIVE
        return live and result is not None and result.incomplete is None

    async def submit_order(
        self, intent: OrderIntent, actor: Actor, *, override_reason: str | None = None
    ) -> OrderOutcome:
        engine = self.engine
        holding = engine.book.positions.get(intent.account_id, {}).get(intent.symbol)
        outcome = await self._gateway().submit_order(
            intent,
            account_state=engine.account_state(intent.account_id),
            actor=actor,
            position_quantity=holding.quantity if holding else None,
            call_open=intent.account_id in engine.open_calls,
            data_fresh=self.data_fresh(intent.account_id),
            override_reason=override_reason,
        )
        self._note_fills([outcome.order])
        return outcome

    async def cancel_order(self, client_order_id: str, actor: Actor) -> StoredOrder:
        order = await self._gateway().cancel_order(client_order_id, actor)
        self._note_fills([order])
        return order

    async def send_message(self, intent: MessageIntent, actor: Actor) -> MessageOutcome:
        outcome = await self._gateway().send_message(
            intent, account_state=self.engine.account_state(intent.account_id), actor=actor
        )
        # Only the send that delivered it notifies: a double press (posts == 0) does not.
        if outcome.posts and outcome.send_state is SendState.ACKNOWLEDGED:
            await self._notified(outcome.message)
        return outcome

    async def _notified(self, message: StoredMessage) -> None:
        if message.call_id:
            await self.engine.record_notification(message.call_id, self.engine.clock())
            self._publish(self.engine.view)

    async def refresh_orders(self) -> list[StoredOrder]:
        """The broker's latest status and fills of the desk's orders."""
        changed = await self._gateway().refresh_orders()
        self._note_fills(changed)
        return changed

    def _note_fills(self, orders: Iterable[StoredOrder]) -> None:
        for order in orders:
            if order.call_id and order.filled_quantity > 0:
                self.engine.filled_calls.add(order.call_id)

    async def save_cache(self) -> None:
        if self.engine.book.cursor is not None:
            await self.store.put_cache(
                BOOK_CACHE_KEY, json.dumps(book_to_payload(self.engine.book))
            )

    async def run(self) -> None:
        """Poll the feed and, with a gateway, follow the desk's working orders."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.poller.run())
            if self.gateway is not None:
                tasks.create_task(self._follow_orders())

    async def recover_actions(self) -> None:
        """Settle orders and messages a previous run left unsent or in doubt (same keys)."""
        if self.gateway is None:
            return
        try:
            recovery = await self.gateway.recover()
        except GatewayError as problem:
            log.error("recovering unsettled actions failed: %s", problem)
            return
        self._note_fills(recovery.orders)
        for message in recovery.messages:
            if message.send_state is SendState.ACKNOWLEDGED:
                await self._notified(message)
        if recovery.unsettled:
            log.warning("%d actions still in doubt after recovery", recovery.unsettled)

    async def _follow_orders(self) -> None:
        while True:
            await asyncio.sleep(ORDER_REFRESH_INTERVAL)
            try:
                if await self.store.working_orders():
                    await self.refresh_orders()
            except GatewayError as problem:
                log.warning("order status refresh failed: %s", problem)
