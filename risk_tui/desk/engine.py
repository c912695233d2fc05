"""One poll in phases — recompute → decide → commit → absorb → publish — and the calls it holds.

`Engine.apply` is one payload's work: the book and its columns recompute the accounts it
moved (`desk.book`), its cash movements are taken toward the open calls (`desk.deposits`,
on the desk that runs the lifecycle), the decider chosen for the desk's role decides the
lifecycle of the moved calls (`desk.decide`), the batch is committed (a call another
process changed first is left out and read again), the outcome is taken into the open
calls (`desk.open_calls`) and a new immutable view is published (`desk.view`). It also
makes, unwritten, what an operator's change to a call commits (a moved deadline, a close,
a notification), and takes in calls as another process stored them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from risk_tui.config import Settings
from risk_tui.core.book import BookChanges
from risk_tui.core.calendar import DeadlineRule, TradingCalendars
from risk_tui.core.clock import utc_now
from risk_tui.core.close_reasons import CloseReason, close_note
from risk_tui.core.columnar import ColumnarBook
from risk_tui.core.deposits import ReceivedMovement
from risk_tui.core.lifecycle import (
    AuditEntry,
    CallState,
    LifecycleBatch,
    MarginCall,
    SnapshotScenario,
    Transition,
    close_by_operator,
    record_notification,
)
from risk_tui.core.lifecycle import move_deadline as with_deadline_moved
from risk_tui.core.model import Book, Market
from risk_tui.core.records import DailyKey
from risk_tui.core.snapshot import snapshot_payload
from risk_tui.core.view import DeskView
from risk_tui.desk.book import BookState, MarginResults
from risk_tui.desk.decide import Decider, Follower, Lifecycle, candidates
from risk_tui.desk.deposits import Deposits, MovementStore
from risk_tui.desk.open_calls import OpenCalls
from risk_tui.desk.view import ViewBuilder
from risk_tui.feed.models import Rejection

log = logging.getLogger(__name__)


class CallStore(MovementStore, Protocol):
    """What the engine needs of storage: the calls repository (`storage.calls.Calls`)."""

    async def open_calls(self) -> dict[str, MarginCall]: ...

    async def calls_by_id(self, call_ids: Iterable[str]) -> list[MarginCall]: ...

    async def commit(
        self,
        batch: LifecycleBatch,
        daily: Sequence[DailyKey] = (),
        *,
        skip_changed: bool = False,
    ) -> frozenset[str]: ...


@dataclass
class PollOutcome:
    view: DeskView
    transitions: list[Transition] = field(default_factory=list)
    recomputed: int = 0
    # Where the poll's wall time went (ms): recompute (records into the book and the
    # columns), lifecycle, commit, figures (the rows' figures), publish (the view).
    phases: dict[str, float] = field(default_factory=dict)


class _Phases:
    """Wall time between checkpoints, by name (ms)."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self._last = time.perf_counter()

    def done(self, name: str) -> None:
        now = time.perf_counter()
        self.phases[name] = round((now - self._last) * 1000, 2)
        self._last = now


class Engine:
    """Owns the book, its margin columns and the open calls of one desk process.

    `follow=True` (a terminal of a shared desk): the engine process runs the lifecycle and
    writes it; this one computes figures from the feed and takes the calls as stored
    (`take_stored`), re-pricing them in memory only.
    """

    def __init__(
        self,
        settings: Settings,
        store: CallStore,
        calendars: TradingCalendars,
        *,
        clock: Callable[[], datetime] = utc_now,
        follow: bool = False,
    ) -> None:
        self.settings = settings
        self.store = store
        self.calendars = calendars
        self.clock = clock
        self.policies = {m: settings.margin_call.rule_for(m).policy for m in Market}
        self.state = BookState(self.policies)
        self.calls = OpenCalls(self.state)
        # The cash movements toward calls met by deposit: taken by the desk that runs
        # the lifecycle; a terminal of a shared desk has the engine's ends as stored.
        self.deposits: Deposits | None = None if follow else Deposits(store)
        self.views = ViewBuilder(
            self.state,
            self.calls,
            reporting_currency=settings.desk.reporting_currency,
            long_outstanding_days=settings.desk.long_outstanding_days,
        )
        self.decider: Decider = (
            Follower(self.state, self.calls)
            if self.deposits is None
            else Lifecycle(self.state, self.calls, self._deadline, self.deposits)
        )
        # Told of every new view (the desk's event hub).
        self.on_view: Callable[[DeskView], None] | None = None
        self._calendars_ready: asyncio.Future[None] | None = None  # `prepare_calendars`

    # --- what others read ------------------------------------------------------------------

    @property
    def book(self) -> Book:
        return self.state.book

    @property
    def columns(self) -> ColumnarBook:
        return self.state.columns

    @property
    def results(self) -> MarginResults:
        return self.state.results

    @property
    def open_calls(self) -> dict[str, MarginCall]:
        return self.calls.calls

    @property
    def view(self) -> DeskView:
        return self.views.view

    def open_call(self, call_id: str) -> MarginCall | None:
        """The open call with this id; None when it has ended or this engine never had it."""
        return self.calls.by_id(call_id)

    def account_state(self, account_id: str) -> dict[str, Any]:
        """The account as the desk sees it now: recorded with every action taken on it."""
        call = self.calls.calls.get(account_id)
        return self.state.account_state(account_id, call, self._movements_of(call))

    def _movements_of(self, call: MarginCall | None) -> list[ReceivedMovement]:
        return [] if self.deposits is None else self.deposits.movements_of(call)

    # --- start ------------------------------------------------------------------------------

    async def start(self) -> None:
        self.calls.calls = await self.store.open_calls()
        if self.deposits is not None:
            await self.deposits.start(self.calls.calls)

    def prepare_calendars(self) -> None:
        """Build the trading calendars in a worker thread now (about 2 s of the calendar
        library) rather than inside the first poll that opens a call."""
        self._calendars_ready = asyncio.get_running_loop().run_in_executor(
            None, self.calendars.prepare
        )

    def _deadline(self, market: Market, notice_at: datetime) -> datetime:
        rule = self.settings.margin_call.rule_for(market)
        return self.calendars.deadline(market, notice_at, rule.due_trading_days, rule.cutoff_time)

    def deadline_rule(self, call: MarginCall | None) -> DeadlineRule | None:
        """Where the call's deadline may be moved to (its market's sessions and cut-off);
        None when there is no such call."""
        if call is None:
            return None
        return self.settings.margin_call.deadline_rule(self.calendars, call.market)

    # --- one poll ---------------------------------------------------------------------------

    async def apply(
        self,
        changes: BookChanges,
        *,
        full: bool,
        rejected: Iterable[Rejection] = (),
        fresh: bool = True,
    ) -> PollOutcome:
        """Apply one payload: recompute moved accounts, decide, commit, absorb, publish.

        `fresh=False` (a book restored from the cache) computes and shows figures but
        runs no lifecycle: nothing opens or ends on data that are not live.
        """
        now = self.clock()
        state, calls, views = self.state, self.calls, self.views
        state.note_rejections(changes, full=full, rejected=rejected)
        clock = _Phases()
        rows, outside = await state.recompute(changes, full=full)
        if full:
            calls.reset_rows()
            views.figures.clear()
        clock.done("recompute")
        flipped = state.refresh_partial()
        deposits = self.deposits
        whole: set[str] = set()  # accounts the lifecycle must see whole this poll
        if deposits is not None and fresh:
            await deposits.receive(changes.cash_movements, calls.calls, state.book, now=now)
            whole.update(deposits.due)
        fast, slow = candidates(state, calls, rows, outside, flipped, fresh=fresh, whole=whole)
        state.note_incomplete(rows, outside)
        decision = await self.decider.decide(fast, slow, now=now, fresh=fresh)
        views.figures.update(decision.recorded)
        clock.done("lifecycle")
        transitions = decision.transitions
        batch = decision.batch
        if deposits is not None and deposits.unsaved:
            batch.movements.extend(deposits.unsaved.values())
        refused: frozenset[str] = frozenset()
        if batch:
            # A call another process changed since this engine read it (an operator's
            # close in a terminal, say) is left out, with its snapshots, and read again.
            refused = await self.store.commit(batch, skip_changed=True)
            if deposits is not None:
                deposits.saved(batch.movements)
        if refused:
            transitions = [t for t in transitions if t.call.call_id not in refused]
        clock.done("commit")
        for moved in transitions[: decision.repriced]:  # their rows are already marked
            calls.calls[moved.call.account_id] = moved.call
        decided = transitions[decision.repriced :]
        views.forget(calls.absorb(decided))
        if deposits is not None:
            deposits.forget(t.call for t in decided if t.ended)
        if refused:
            log.warning("%d calls changed meanwhile elsewhere; read again", len(refused))
            stored = await self.store.calls_by_id(refused)
            self._merge(stored)
            calls.recheck.update(c.account_id for c in stored)
        recorded = {t.call.account_id for t in transitions if t.snapshots and t.call.is_open}
        views.refresh(rows, outside, recorded)
        clock.done("figures")
        view = self._publish(now, stale=not fresh)
        clock.done("publish")
        return PollOutcome(
            view, transitions, recomputed=len(rows) + len(outside), phases=clock.phases
        )

    def mark_stale(self) -> DeskView:
        """The feed failed: keep the last good figures, say they are stale."""
        return self._publish(self.clock(), stale=True)

    def _publish(self, now: datetime, *, stale: bool) -> DeskView:
        view = self.views.publish(now, stale=stale, rejected=len(self.state.tainted))
        self._tell(view)
        return view

    def _republish(self) -> None:
        self._publish(self.clock(), stale=self.view.stale)

    def _tell(self, view: DeskView) -> None:
        if self.on_view is not None:
            self.on_view(view)

    # --- calls as another process stored them -------------------------------------------------

    def take_stored(self, stored: Iterable[MarginCall]) -> None:
        """Calls as another process stored them (a terminal's remark, claim or close; the
        engine's opening, escalation or end), taken into the view and republished."""
        self._merge(stored)
        self._republish()

    def replace_open_calls(self, stored: dict[str, MarginCall]) -> None:
        """Every open call as stored now (after a reconnect: notifications may be lost)."""
        gone = [c for a, c in self.calls.calls.items() if a not in stored]
        self._merge([*(replace(c, state=CallState.ENDED) for c in gone), *stored.values()])
        self._republish()

    def _merge(self, stored: Iterable[MarginCall]) -> None:
        stored = list(stored)
        if self.deposits is not None:
            self.deposits.forget(c for c in stored if not c.is_open)
        merged = self.calls.merge(stored, self.state.verdict)
        self.views.forget([*merged.ended, *merged.new])
        self.views.show_from_columns(merged.new)

    def unsaved_calls(self) -> list[MarginCall]:
        """Every open call whose amount or level moved since last written (now noted as
        written: the caller commits them as `LifecycleBatch.repriced`)."""
        return self.calls.take_unsaved((), limit=None)

    # --- operator changes to calls: committed first, then shown ---------------------------

    def adopt(self, call: MarginCall) -> None:
        """Take a call an operator action changed, already committed, into the view."""
        before = self.calls.calls.get(call.account_id)
        self.calls.put(call)
        if not call.is_open and before is not None and before.call_id == call.call_id:
            self.views.forget([call.account_id])
            if self.deposits is not None:
                self.deposits.forget([call])
        self._republish()

    def note_planned(self, call_ids: frozenset[str]) -> None:
        """The calls with an auto-liquidation scheduled now; their rows say so."""
        if call_ids != self.calls.planned:
            self.calls.planned = call_ids
            self._republish()

    def note_remark(self, call_id: str, text: str, exception: bool) -> MarginCall | None:
        """Show a remark and exception flag already stored (`add_remark`) at once."""
        call = self.open_call(call_id)
        if call is None:
            return None
        updated = replace(call, remark=text, exception=exception)
        self.adopt(updated)
        return updated

    async def record_notification(self, call_id: str, at: datetime) -> MarginCall | None:
        """A message about an open call went out: notified, with its snapshot."""
        call = self.open_call(call_id)
        if call is None:
            return None
        transition = record_notification(call, at)
        snapshot = self.state.snapshot(
            call, SnapshotScenario.NOTIFICATION, at, self.account_state(call.account_id)
        )
        await self.store.commit(LifecycleBatch(calls=[transition.call], snapshots=[snapshot]))
        self.calls.calls[call.account_id] = transition.call
        self.calls.note(transition.call)
        self._tell(self.views.with_rows(at))
        return transition.call

    def deadline_move(
        self,
        call_id: str,
        deadline: datetime,
        reason: str,
        *,
        operator: str,
        details: Mapping[str, Any],
    ) -> tuple[MarginCall, AuditEntry]:
        """The open call with its deadline moved, and the audit entry saying so: unwritten.

        Raises LookupError for a call not open here, ValueError (from the lifecycle) for
        a missing reason or a deadline without a time zone.
        """
        call = self.open_call(call_id)
        if call is None:
            raise LookupError(f"no open margin call {call_id}")
        moved = with_deadline_moved(call, deadline, reason)
        entry = AuditEntry(
            at=self.clock(),
            operator=operator,
            action="deadline_moved",
            call_id=call.call_id,
            account_id=call.account_id,
            details={
                **dict(details),
                "old_deadline": None if call.deadline is None else call.deadline.isoformat(),
                "old_deadline_error": call.deadline_error,
                "new_deadline": deadline.isoformat(),
                "reason": reason,
            },
        )
        return moved, entry

    def closing(
        self,
        call_id: str,
        reason: str,
        *,
        close_reason: CloseReason | None,
        operator: str,
        details: Mapping[str, Any],
    ) -> tuple[MarginCall, LifecycleBatch]:
        """The open call ended by an operator, with its END snapshot and audit entry: unwritten.

        Written by whoever approves the close (`desk.approvals`), then `adopt`ed.
        Raises LookupError for a call not open here.
        """
        call = self.open_call(call_id)
        if call is None:
            raise LookupError(f"no open margin call {call_id}")
        now = self.clock()
        ended = close_by_operator(call, now, close_note(close_reason, reason)).call
        book = self.book
        # The END snapshot shows the ended call, like the ones `apply` writes.
        result = self.results.get(call.account_id)
        payload = (
            snapshot_payload(
                result,
                ended,
                feed_as_of=book.as_of,
                feed_cursor=book.cursor,
                movements=self._movements_of(call),
            )
            if result is not None
            else self.account_state(call.account_id)
        )
        snapshot = self.state.snapshot(call, SnapshotScenario.END, now, payload)
        entry = AuditEntry(
            at=now,
            operator=operator,
            action="call_closed",
            call_id=call.call_id,
            account_id=call.account_id,
            details={
                **dict(details),
                "close_reason": None if close_reason is None else close_reason.value,
                "reason": reason,
                "call_amount": str(call.call_amount),
            },
        )
        return ended, LifecycleBatch(calls=[ended], snapshots=[snapshot], audit=[entry])


__all__ = ["CallStore", "Engine", "PollOutcome"]
