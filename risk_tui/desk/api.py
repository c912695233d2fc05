"""The Desk API: the one surface between the terminal and the desk — queries, commands, events.

The terminal (`risk_tui.app`, `screens`, `widgets`) imports this module and `risk_tui.core`,
nothing else of the desk: it never reads the store, the engine or the feed. What crosses
is plain, versioned data — frozen records of `risk_tui.core` and the few defined here —
never a live object or a callback into the desk, so that the same API can later be served
from the engine to thin terminals over the network (`API_VERSION` names its shape).

- **Queries** read the desk as it is now: the latest view and feed health, an account's
  full figures, the account after a set of trades and its least-value cure (the engine's
  own computation: the terminal holds no margin formula), a call's snapshots, remarks
  and orders, a page of history, the orders window, the four-eyes requests, the kill
  switch, the short positions, the account directory.
- **Commands** are the operator's intents: orders, cancels, messages, remarks, claims,
  exception flags, deadline moves, closes, auto-liquidation plans, approvals and
  rejections, the kill switch, the compliance export. They run as the operator the API
  was opened for (`operator`), are checked by the desk against the one role table
  (`core.roles`), and raise `core.actions.ActionRefused` (every problem at once, audited)
  or another `ActionError` with a one-line reason.
- **Events** (`events()`): the view, the feed's health, the shared desk's engine status,
  and tables other processes changed. A slow reader never falls behind: undelivered
  views, health and status collapse to the latest, changed tables to their union.

Implemented by `risk_tui.desk.service.DeskService`; the command line builds it for the
desk's role (`risk_tui.cli`) and hands it to the terminal.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from risk_tui.core.actions import AutoLiquidationPlan, MessageIntent, OrderIntent
from risk_tui.core.close_reasons import CloseReason
from risk_tui.core.cure import CureProposal, PostTrade, TradeLine
from risk_tui.core.export import Period
from risk_tui.core.feed_health import FeedHealth
from risk_tui.core.four_eyes import ApprovalRequest, KillSwitch
from risk_tui.core.lifecycle import MarginCall
from risk_tui.core.margin import AccountMargin
from risk_tui.core.messages import LanguageChoice
from risk_tui.core.model import Instrument, Market
from risk_tui.core.records import (
    CallEnds,
    EngineBeat,
    HistoryKey,
    MessageOutcome,
    OrderOutcome,
    OrderStamp,
    StoredAutoLiquidation,
    StoredMessage,
    StoredOrder,
    StoredRemark,
    StoredSnapshot,
)
from risk_tui.core.roles import Actor
from risk_tui.core.shorts import AllocationRule, ShortDetail, ShortLine
from risk_tui.core.view import DeskView

# 2 (issue 13): after_trades and cure (the post-trade figures and the least-value cure),
# decided_approvals, close_call's close_reason, cancel_auto_liquidation answering a
# four-eyes request for a plan that needs one.
# 3 (issue 14): message_languages (the language each client is written in, and why).
API_VERSION = 3


class DeskRole(StrEnum):
    """What a desk process does (see `risk_tui.desk.compose`)."""

    EMBEDDED = "embedded"  # one process does everything (SQLite, the default)
    ENGINE = "engine"  # `risk-tui engine`: the lifecycle of a desk on PostgreSQL
    TERMINAL = "terminal"  # `risk-tui run` on PostgreSQL: an operator's screen


# --- records the terminal shows ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EngineStatus:
    """What a terminal knows of its shared desk's engine."""

    active: EngineBeat | None  # the active engine, if its heartbeat is recent
    standby: int  # standby engines with a recent heartbeat
    last: EngineBeat | None  # when none is active: the engine heard from last, if any
    listening: bool  # this terminal hears the others' changes

    @property
    def ok(self) -> bool:
        return self.active is not None and self.listening

    def describe(self) -> str:
        if not self.listening:
            return "UPDATES CUT OFF — other terminals' and the engine's changes are not arriving"
        if self.active is None:
            last = self.last
            if last is None:
                why = "no engine has run on this desk"
            elif last.role == "stopped":
                why = f"the engine on {last.host}:{last.pid} stopped {last.beat_age:.0f}s ago"
            else:
                why = f"last heartbeat from {last.host}:{last.pid} {last.beat_age:.0f}s ago"
            return f"NO ENGINE — calls are not being opened or ended ({why})"
        active = self.active
        polled = "" if active.poll_age is None else f", polled {active.poll_age:.0f}s ago"
        return f"engine {active.host}:{active.pid}{polled}, {self.standby} standby"


@dataclass(frozen=True, slots=True)
class CancelOutcome:
    """What engaging the kill switch did to one desk order."""

    client_order_id: str
    # "cancelled"; "withdrawn" (never reached the broker); "finished" (filled or rejected
    # before the cancel); "failed" (still working, or the broker could not be asked)
    result: str
    detail: str

    def wire(self) -> dict[str, str]:
        return {
            "client_order_id": self.client_order_id,
            "result": self.result,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class Engagement:
    """The kill switch as engaged, and the fate of every order it tried to stop."""

    switch: KillSwitch
    orders: tuple[CancelOutcome, ...]

    @property
    def failed(self) -> tuple[CancelOutcome, ...]:
        return tuple(o for o in self.orders if o.result == "failed")

    def summary(self) -> str:
        """One line for the operator: what was stopped and what was not."""
        stopped = len(self.orders) - len(self.failed)
        text = f"{self.switch.describe()}; {stopped} of {len(self.orders)} working orders stopped"
        if self.failed:
            text += "; NOT STOPPED: " + "; ".join(
                f"{o.client_order_id}: {o.detail}" for o in self.failed
            )
        return text


@dataclass(frozen=True, slots=True)
class CallDetails:
    """One call's record as stored: its snapshots, remarks, desk orders, the messages
    sent about it and its auto-liquidation plans."""

    snapshots: tuple[StoredSnapshot, ...]
    remarks: tuple[StoredRemark, ...]
    orders: tuple[StoredOrder, ...]
    messages: tuple[StoredMessage, ...] = ()
    plans: tuple[StoredAutoLiquidation, ...] = ()


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One ended call with its first trigger and last end snapshot."""

    call: MarginCall
    ends: CallEnds

    @property
    def key(self) -> HistoryKey:
        assert self.call.ended_at is not None  # only ended calls are in history
        return (self.call.ended_at, self.call.call_id)


@dataclass(frozen=True, slots=True)
class AccountEntry:
    """What the directory says of one account: who, where, which symbols it holds."""

    account_id: str
    client_name: str
    market: Market
    symbols: frozenset[str]


@dataclass(frozen=True, slots=True)
class ShortsOverview:
    """Every stock clients are short, as of the book's cursor (`fed`: a book exists yet)."""

    lines: tuple[ShortLine, ...]
    cursor: str | None
    fed: bool


@dataclass(frozen=True, slots=True)
class ShortStock:
    """One shorted stock: its clients and suggested buy-to-cover (None: nobody is short)."""

    symbol: str
    instrument: Instrument | None
    detail: ShortDetail | None
    cursor: str | None


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """A compliance export of a period, in a format, to a new file."""

    period: Period
    fmt: str  # one of `core.export.FORMATS`
    path: Path


# --- events -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ViewChanged:
    view: DeskView


@dataclass(frozen=True, slots=True)
class HealthChanged:
    health: FeedHealth


@dataclass(frozen=True, slots=True)
class EngineChanged:
    status: EngineStatus


@dataclass(frozen=True, slots=True)
class StoreChanged:
    """Another process committed changes to these tables (empty: re-read everything)."""

    tables: frozenset[str]


DeskEvent = ViewChanged | HealthChanged | EngineChanged | StoreChanged


# --- the API ----------------------------------------------------------------------------------


class TradeFigures(Protocol):
    """What a liquidation dialog asks of the desk: the account after trades, and its cure.

    Both are the engine's reference computation on the desk's book now
    (`core.cure`): equity, margin and the call amount after the trades exactly as the
    lifecycle recomputes it for the open call. None when the account is unknown, not
    monitored, or its figures are incomplete.
    """

    def after_trades(self, account_id: str, lines: Sequence[TradeLine]) -> PostTrade | None:
        """The account before and after `lines` (sales at the last price or their limit,
        buys to cover likewise), each line's effect on its own. Raises
        `core.cure.TradeError` for a line that cannot trade (more than held, wrong side)."""
        ...

    def cure(self, account_id: str, pending: Sequence[TradeLine] = ()) -> CureProposal | None:
        """The least-value cure in whole board lots, counting `pending` (working orders)
        as traded; nothing proposed when the account is not in call."""
        ...


class DeskApi(TradeFigures, Protocol):
    """The desk as the terminal of one operator sees and drives it (see the module doc)."""

    @property
    def version(self) -> int: ...

    @property
    def operator(self) -> Actor: ...

    @property
    def role(self) -> DeskRole: ...

    # -- the session --------------------------------------------------------------------------

    async def run(self) -> None:
        """Run the desk for this terminal until cancelled (on the embedded desk: the whole
        desk; a terminal of a shared desk: its own poller and listener)."""
        ...

    def painted(self) -> None:
        """The terminal painted the first view: the desk goes on with its slower start."""
        ...

    def events(self) -> AsyncIterator[DeskEvent]:
        """Every event from now on, coalesced for a slow reader (see the module doc)."""
        ...

    # -- queries ------------------------------------------------------------------------------

    def view(self) -> DeskView: ...

    def health(self) -> FeedHealth: ...

    def account(self, account_id: str) -> AccountMargin | None:
        """The account's full figures now (positions, ratios); None if unknown or incomplete."""
        ...

    def accounts(self, account_ids: Iterable[str]) -> dict[str, AccountEntry]:
        """The directory entries of those accounts the book knows."""
        ...

    def message_languages(self, clients: Iterable[tuple[str, Market]]) -> dict[str, LanguageChoice]:
        """The language of each client's messages, and why: account id → choice, for
        every (account id, the call's or holding's market) asked."""
        ...

    def short_overview(self) -> ShortsOverview: ...

    def short_stock(self, symbol: str, rule: AllocationRule) -> ShortStock: ...

    async def call_details(self, call_id: str) -> CallDetails: ...

    async def remarks(self, call_id: str) -> list[StoredRemark]: ...

    async def orders_for_call(self, call_id: str) -> list[StoredOrder]: ...

    async def working_orders(self) -> list[StoredOrder]: ...

    async def history_page(
        self,
        limit: int,
        *,
        before: HistoryKey | None = None,
        since: datetime | None = None,
        needle: str | None = None,
    ) -> list[HistoryEntry]:
        """Ended calls newest first: after `before`, or ended since `since`, matching."""
        ...

    async def history_count(self, needle: str | None = None) -> int: ...

    async def orders_window(
        self, limit: int, *, also: Iterable[str] = (), scan: bool = True
    ) -> list[OrderStamp]: ...

    async def orders_by_key(self, keys: Iterable[str]) -> list[StoredOrder]: ...

    async def order(self, client_order_id: str) -> StoredOrder | None: ...

    async def approvals(self) -> list[ApprovalRequest]:
        """Requests waiting for a decision (and approved ones being executed), oldest first."""
        ...

    async def decided_approvals(self, limit: int = 500) -> list[ApprovalRequest]:
        """The `limit` requests decided last (executed, failed, rejected or withdrawn,
        voided), the latest decision first, each with who decided and when."""
        ...

    async def approval(self, approval_id: str) -> ApprovalRequest | None: ...

    async def pending_approvals(self) -> int: ...

    async def kill_switch(self) -> KillSwitch: ...

    async def live_orders(self) -> int:
        """How many desk orders the kill switch would try to stop now."""
        ...

    # -- commands -----------------------------------------------------------------------------

    async def submit_order(
        self,
        intent: OrderIntent,
        *,
        override_reason: str | None = None,
        replaces: str | None = None,
    ) -> OrderOutcome | ApprovalRequest: ...

    async def cancel_order(self, client_order_id: str) -> StoredOrder: ...

    async def send_message(self, intent: MessageIntent) -> MessageOutcome: ...

    async def add_remark(self, call_id: str, text: str, *, exception: bool) -> MarginCall: ...

    async def set_exception(self, call_id: str, flag: bool) -> MarginCall: ...

    async def claim(self, call_id: str, *, release: bool = False) -> MarginCall: ...

    async def move_deadline(
        self, call_id: str, deadline: datetime, reason: str, *, replaces: str | None = None
    ) -> ApprovalRequest: ...

    async def close_call(
        self,
        call_id: str,
        reason: str,
        *,
        close_reason: CloseReason | None,
        replaces: str | None = None,
    ) -> ApprovalRequest:
        """Ask to close the call: an end reason from the list (None is refused) and a note."""
        ...

    async def schedule_auto_liquidation(
        self, plan: AutoLiquidationPlan, *, replaces: str | None = None
    ) -> StoredAutoLiquidation | ApprovalRequest: ...

    async def cancel_auto_liquidation(
        self, plan_id: str, reason: str
    ) -> StoredAutoLiquidation | ApprovalRequest:
        """Cancel a scheduled plan — or, for a plan that needs a second person to be
        scheduled, the pending request to cancel it."""
        ...

    async def approve(self, approval_id: str, seen_hash: str) -> ApprovalRequest: ...

    async def reject(self, approval_id: str, seen_hash: str, note: str) -> ApprovalRequest: ...

    async def engage_kill_switch(self, reason: str) -> Engagement: ...

    async def release_kill_switch(self, reason: str) -> KillSwitch: ...

    async def export(self, request: ExportRequest) -> dict[str, int]:
        """Write the export; the counts of calls, snapshots and audit records written."""
        ...


__all__ = [
    "API_VERSION",
    "AccountEntry",
    "CallDetails",
    "CancelOutcome",
    "DeskApi",
    "DeskEvent",
    "DeskRole",
    "Engagement",
    "EngineChanged",
    "EngineStatus",
    "ExportRequest",
    "HealthChanged",
    "HistoryEntry",
    "ShortStock",
    "ShortsOverview",
    "StoreChanged",
    "TradeFigures",
    "ViewChanged",
]
