"""The Desk API (`desk.api.DeskApi`) served by a desk process to one operator's terminal.

Queries read the process's engine and store; commands run the desk's services as the
operator this service was opened for; events come from the desk's hub. Nothing the
terminal receives is a live object of the desk.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime

from risk_tui.core.actions import AutoLiquidationPlan, MessageIntent, OrderIntent
from risk_tui.core.close_reasons import CloseReason
from risk_tui.core.cure import CureProposal, PostTrade, TradeLine
from risk_tui.core.feed_health import FeedHealth
from risk_tui.core.four_eyes import ApprovalRequest, KillSwitch
from risk_tui.core.lifecycle import MarginCall
from risk_tui.core.margin import AccountMargin
from risk_tui.core.messages import LanguageChoice
from risk_tui.core.model import Market
from risk_tui.core.records import (
    HistoryKey,
    MessageOutcome,
    OrderOutcome,
    OrderStamp,
    StoredAutoLiquidation,
    StoredOrder,
    StoredRemark,
)
from risk_tui.core.roles import Actor
from risk_tui.core.shorts import AllocationRule, short_detail, short_overview
from risk_tui.core.view import DeskView
from risk_tui.desk.api import (
    API_VERSION,
    AccountEntry,
    CallDetails,
    DeskEvent,
    DeskRole,
    Engagement,
    ExportRequest,
    HistoryEntry,
    ShortsOverview,
    ShortStock,
)
from risk_tui.desk.export import Exporter, export_file
from risk_tui.desk.runtime import Desk


class DeskService:
    """The desk of one process, as `operator` sees and drives it."""

    def __init__(self, desk: Desk, operator: Actor) -> None:
        self._desk = desk
        self._operator = operator

    @property
    def process(self) -> Desk:
        """The desk process behind this API: for the composition root and tests. The
        terminal, typed against `DeskApi`, never reaches it."""
        return self._desk

    @property
    def version(self) -> int:
        return API_VERSION

    @property
    def operator(self) -> Actor:
        return self._operator

    @property
    def role(self) -> DeskRole:
        return self._desk.role

    # --- the session ----------------------------------------------------------------------

    async def run(self) -> None:
        desk = self._desk
        desk.shown = asyncio.Event()
        await desk.start()
        await desk.recover()
        await desk.run()

    def painted(self) -> None:
        shown = self._desk.shown
        if shown is not None and not shown.is_set():
            shown.set()

    def events(self) -> AsyncIterator[DeskEvent]:
        return self._desk.events.subscribe()

    # --- queries ----------------------------------------------------------------------------

    def view(self) -> DeskView:
        return self._desk.engine.view

    def health(self) -> FeedHealth:
        return self._desk.poller.health

    def account(self, account_id: str) -> AccountMargin | None:
        return self._desk.engine.state.complete_result(account_id)

    def after_trades(self, account_id: str, lines: Sequence[TradeLine]) -> PostTrade | None:
        return self._desk.engine.state.after_trades(account_id, lines)

    def cure(self, account_id: str, pending: Sequence[TradeLine] = ()) -> CureProposal | None:
        engine = self._desk.engine
        return engine.state.cure(
            account_id, open_call=account_id in engine.open_calls, pending=pending
        )

    def accounts(self, account_ids: Iterable[str]) -> dict[str, AccountEntry]:
        book = self._desk.engine.book
        entries: dict[str, AccountEntry] = {}
        for account_id in account_ids:
            account = book.accounts.get(account_id)
            if account is not None:
                entries[account_id] = AccountEntry(
                    account_id,
                    account.client_name,
                    account.market,
                    frozenset(book.positions.get(account_id, {})),
                )
        return entries

    def message_languages(self, clients: Iterable[tuple[str, Market]]) -> dict[str, LanguageChoice]:
        languages = self._desk.languages
        return {account_id: languages.choose(account_id, market) for account_id, market in clients}

    def short_overview(self) -> ShortsOverview:
        desk = self._desk
        book = desk.engine.book
        lines = short_overview(book, desk.settings.desk.reporting_currency)
        return ShortsOverview(lines, book.cursor, fed=book.cursor is not None)

    def short_stock(self, symbol: str, rule: AllocationRule) -> ShortStock:
        desk = self._desk
        engine = desk.engine
        book = engine.book
        detail = short_detail(
            book,
            engine.results,
            engine.open_calls,
            symbol,
            rule,
            desk.settings.desk.reporting_currency,
        )
        return ShortStock(symbol, book.instruments.get(symbol), detail, book.cursor)

    async def call_details(self, call_id: str) -> CallDetails:
        store = self._desk.store
        return CallDetails(
            tuple(await store.history.snapshots_for(call_id)),
            tuple(await store.history.remarks_for(call_id)),
            tuple(await store.orders.page(call_id=call_id)),
            tuple(await store.messages.page(call_id=call_id)),
            tuple(await store.plans.auto_liquidations_for(call_id)),
        )

    async def remarks(self, call_id: str) -> list[StoredRemark]:
        return await self._desk.store.history.remarks_for(call_id)

    async def orders_for_call(self, call_id: str) -> list[StoredOrder]:
        return await self._desk.store.orders.page(call_id=call_id)

    async def working_orders(self) -> list[StoredOrder]:
        return await self._desk.store.orders.working_orders()

    async def history_page(
        self,
        limit: int,
        *,
        before: HistoryKey | None = None,
        since: datetime | None = None,
        needle: str | None = None,
    ) -> list[HistoryEntry]:
        store = self._desk.store
        calls = await store.history.history_page(limit, before=before, since=since, needle=needle)
        ends = await store.history.end_snapshots([call.call_id for call in calls])
        return [HistoryEntry(call, ends[call.call_id]) for call in calls]

    async def history_count(self, needle: str | None = None) -> int:
        return await self._desk.store.history.count_history(needle)

    async def orders_window(
        self, limit: int, *, also: Iterable[str] = (), scan: bool = True
    ) -> list[OrderStamp]:
        return await self._desk.store.orders.order_window(limit, also=list(also), scan=scan)

    async def orders_by_key(self, keys: Iterable[str]) -> list[StoredOrder]:
        return await self._desk.store.orders.orders_by_key(list(keys))

    async def order(self, client_order_id: str) -> StoredOrder | None:
        return await self._desk.store.orders.get(client_order_id)

    async def approvals(self) -> list[ApprovalRequest]:
        return await self._desk.approvals.open_requests()

    async def decided_approvals(self, limit: int = 500) -> list[ApprovalRequest]:
        return await self._desk.approvals.decided_requests(limit)

    async def approval(self, approval_id: str) -> ApprovalRequest | None:
        return await self._desk.approvals.request(approval_id)

    async def pending_approvals(self) -> int:
        return await self._desk.approvals.pending_count()

    async def kill_switch(self) -> KillSwitch:
        return await self._desk.kill_switch.state()

    async def live_orders(self) -> int:
        return len(await self._desk.kill_switch.live_orders())

    # --- commands ---------------------------------------------------------------------------

    async def submit_order(
        self,
        intent: OrderIntent,
        *,
        override_reason: str | None = None,
        replaces: str | None = None,
    ) -> OrderOutcome | ApprovalRequest:
        return await self._desk.intents.submit_order(
            intent, self._operator, override_reason=override_reason, replaces=replaces
        )

    async def cancel_order(self, client_order_id: str) -> StoredOrder:
        return await self._desk.trading.cancel_order(client_order_id, self._operator)

    async def send_message(self, intent: MessageIntent) -> MessageOutcome:
        return await self._desk.trading.send_message(intent, self._operator)

    async def add_remark(self, call_id: str, text: str, *, exception: bool) -> MarginCall:
        return await self._desk.call_actions.add_remark(
            call_id, text, exception=exception, actor=self._operator
        )

    async def set_exception(self, call_id: str, flag: bool) -> MarginCall:
        return await self._desk.call_actions.set_exception(call_id, flag, self._operator)

    async def claim(self, call_id: str, *, release: bool = False) -> MarginCall:
        return await self._desk.call_actions.claim(call_id, self._operator, release=release)

    async def move_deadline(
        self, call_id: str, deadline: datetime, reason: str, *, replaces: str | None = None
    ) -> ApprovalRequest:
        return await self._desk.intents.move_deadline(
            call_id, deadline, reason, self._operator, replaces=replaces
        )

    async def close_call(
        self,
        call_id: str,
        reason: str,
        *,
        close_reason: CloseReason | None,
        replaces: str | None = None,
    ) -> ApprovalRequest:
        return await self._desk.intents.close_call(
            call_id, reason, self._operator, close_reason=close_reason, replaces=replaces
        )

    async def schedule_auto_liquidation(
        self, plan: AutoLiquidationPlan, *, replaces: str | None = None
    ) -> StoredAutoLiquidation | ApprovalRequest:
        return await self._desk.intents.schedule_plan(plan, self._operator, replaces=replaces)

    async def cancel_auto_liquidation(
        self, plan_id: str, reason: str
    ) -> StoredAutoLiquidation | ApprovalRequest:
        return await self._desk.intents.cancel_plan(plan_id, reason, self._operator)

    async def approve(self, approval_id: str, seen_hash: str) -> ApprovalRequest:
        return await self._desk.approvals.approve(approval_id, seen_hash, self._operator)

    async def reject(self, approval_id: str, seen_hash: str, note: str) -> ApprovalRequest:
        return await self._desk.approvals.reject(approval_id, seen_hash, note, self._operator)

    async def engage_kill_switch(self, reason: str) -> Engagement:
        return await self._desk.kill_switch.engage(reason, self._operator)

    async def release_kill_switch(self, reason: str) -> KillSwitch:
        return await self._desk.kill_switch.release(reason, self._operator)

    async def export(self, request: ExportRequest) -> dict[str, int]:
        desk = self._desk
        operator = self._operator
        exporter = Exporter(operator.name, "history tab", operator.role.value)
        return await asyncio.to_thread(
            export_file, desk.store.engine.url, request, desk.engine.clock(), exporter
        )
