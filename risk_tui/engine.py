"""The one loop: feed payload → book → margin → lifecycle → storage → published view.

`Engine.apply` is one poll's work; `Desk` wires the poller (`risk_tui.feed.poller`) to
it, restores the cached book at start-up and publishes each view. A view is immutable:
the UI and `risk-tui report` only read it.

The Desk also carries the operators' actions on calls (remarks and the exception flag,
moving a deadline, closing a call, scheduling an auto-liquidation), the scheduler
that runs auto-liquidations at their time, and the daily jobs (snapshot and reminder
of every open call): see those sections of `Desk`. Four-eyes approval of liquidations,
deadline moves and closes, and the kill switch, are `Desk.approvals` (`risk_tui.approvals`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import json
import logging
import math
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from typing import Any, NoReturn, Protocol, runtime_checkable

import httpx
import numpy as np

from risk_tui.approvals import Approvals
from risk_tui.config import Settings
from risk_tui.core.actions import (
    TRADING_ROLES,
    Actor,
    AutoCondition,
    AutoLiquidationPlan,
    MessageIntent,
    OrderIntent,
    Role,
    SendState,
    check_order,
    plan_wire,
)
from risk_tui.core.book import BookChanges, apply_records, book_from_snapshot, exposed_to
from risk_tui.core.calendar import MARKET_TZ, TradingCalendars
from risk_tui.core.columnar import FORCE_CALL, INCOMPLETE, LEVELS, MARGIN_CALL, ColumnarBook
from risk_tui.core.feed_health import FeedHealth, FeedStatus
from risk_tui.core.four_eyes import ApprovalRequest
from risk_tui.core.lifecycle import (
    AuditEntry,
    CallState,
    EndReason,
    LifecycleBatch,
    MarginCall,
    SnapshotRecord,
    SnapshotScenario,
    Transition,
    close_by_operator,
    daily_snapshot_due,
    evaluate,
    record_notification,
    repriced,
)
from risk_tui.core.lifecycle import move_deadline as with_deadline_moved
from risk_tui.core.margin import (
    AccountMargin,
    MarginFigures,
    MarginVerdict,
    RiskLevel,
    compute_account,
    is_monitored,
)
from risk_tui.core.model import AccountKind, Book, Market
from risk_tui.core.money import format_money, minor_units, round_call_amount
from risk_tui.core.records import (
    AutoLiquidationState,
    DailyKey,
    StoredAutoLiquidation,
    StoredMessage,
    StoredOrder,
    plan_line_key,
)
from risk_tui.core.snapshot import snapshot_payload
from risk_tui.core.text import sanitize
from risk_tui.core.view import (
    DeskView,
    IncompleteRow,
    WarningRow,
    compute_desk_totals,
    compute_totals,
)
from risk_tui.feed.gateway import (
    ActionRefused,
    Gateway,
    GatewayError,
    MessageOutcome,
    OrderOutcome,
)
from risk_tui.feed.models import FeedError, ParsedPayload, Rejection, book_to_payload, parse_payload
from risk_tui.feed.poller import Poller
from risk_tui.shared import DeskRole, SharedDesk
from risk_tui.storage.audit import AuditTrail
from risk_tui.storage.cache import FeedCache
from risk_tui.storage.calls import Calls
from risk_tui.storage.daily import DailyJobs
from risk_tui.storage.errors import (
    CallChanged,
    ClaimTaken,
    DailyAlreadyDone,
    KeyConflict,
    UnknownCall,
)
from risk_tui.storage.orders import Orders
from risk_tui.storage.outbox import Messages
from risk_tui.storage.plans import Plans
from risk_tui.storage.store import Store

log = logging.getLogger(__name__)


class CallStore(Protocol):
    calls: Calls  # open_calls, calls_by_id, commit


def utc_now() -> datetime:
    return datetime.now(UTC)


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


class MarginResults(Mapping[str, AccountMargin]):
    """Every monitored account's full result (`compute_account`, the reference), made
    when asked and kept until the account next moves: the columns decide every poll;
    the reference's whole result is needed only for a snapshot, a dialog, a row of
    an incomplete account, the data-fresh check of an order."""

    def __init__(self, engine: Engine, *, keep: int = 4_096) -> None:
        self._engine = engine
        # The most recently asked, at most `keep` (a crash poll's 20,000 snapshots would
        # otherwise hold 20,000 full results, hundreds of MB, that nobody reads again).
        self._kept: OrderedDict[str, tuple[int, AccountMargin]] = OrderedDict()
        self._keep = keep

    def clear(self) -> None:
        self._kept.clear()

    def __getitem__(self, account_id: str) -> AccountMargin:
        engine = self._engine
        account = engine.book.accounts.get(account_id)
        if account is None or not is_monitored(account):
            raise KeyError(account_id)
        moved = engine.moved_at(account_id)
        kept = self._kept.get(account_id)
        if kept is not None and kept[0] == moved:
            self._kept.move_to_end(account_id)
            return kept[1]
        rule = engine.settings.margin_call.rule_for(account.market)
        result = compute_account(engine.book, account_id, rule.policy)
        reason = engine.partial.get(account_id)
        if reason is not None and result.incomplete is None:
            result = _as_incomplete(result, reason)
        self._kept[account_id] = (moved, result)
        self._kept.move_to_end(account_id)
        if len(self._kept) > self._keep:
            self._kept.popitem(last=False)
        return result

    def __iter__(self) -> Iterator[str]:
        return (a.account_id for a in self._engine.book.accounts.values() if is_monitored(a))

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass(frozen=True, slots=True)
class _Verdict:
    """The columns' exact decision on one account, as the lifecycle reads it."""

    account_id: str
    kind: AccountKind
    currency: str
    risk_level: RiskLevel
    call_amount: Decimal
    incomplete: str | None

    @property
    def in_call(self) -> bool:
        return self.risk_level in (RiskLevel.MARGIN_CALL, RiskLevel.FORCE_CALL)


_IN_CALL_CODES = (MARGIN_CALL, FORCE_CALL)
REPRICED_PER_POLL = 2_000  # re-priced calls' amounts written per poll, oldest first
YIELD_EVERY = 200  # lifecycle verdicts between yields to the event loop (≈ 10-20 ms)


class Engine:
    """Owns the book, its margin columns and the open calls of one desk.

    Each poll the columns (`core.columnar`) decide every account the payload moved,
    exactly as `compute_account` would; the lifecycle runs only on accounts that are
    in call or have an open call; the reference's full result is made for the
    accounts a snapshot records (`results`), and the warning rows' figures come from
    the columns for the open calls that moved.
    """

    def __init__(
        self,
        settings: Settings,
        store: CallStore,
        calendars: TradingCalendars,
        *,
        clock: Callable[[], datetime] = utc_now,
        lifecycle: bool = True,
    ) -> None:
        self.settings = settings
        self.store = store
        self.calendars = calendars
        self.clock = clock
        # False in a terminal of a shared desk: the engine process runs the lifecycle and
        # writes it; this one computes figures from the feed and takes the calls as
        # stored (`take_stored`), re-pricing them in memory only.
        self.lifecycle = lifecycle
        self.book = Book()
        self.policies = {m: settings.margin_call.rule_for(m).policy for m in Market}
        self.columns = ColumnarBook.from_book(self.book, self.policies)
        self.results = MarginResults(self)
        self.open_calls: dict[str, MarginCall] = {}
        # Records the feed sent but we refused, by (list, key): the accounts they touch
        # are partial until a valid record replaces them.
        self.tainted: dict[tuple[str, str], str] = {}
        self.partial: dict[str, str] = {}  # account → why its figures are partial
        # Accounts whose own records (account, cash, positions) changed since the columns
        # were built, or that the columns do not hold: decided by the reference.
        self._own_records: set[str] = set()
        # Which poll last moved each account (columns' rows; others by id): `results`
        # keeps a full result until its account moves again.
        self._polls = 0
        self._moved = np.zeros(0, dtype=np.int64)
        self._moved_outside: dict[str, int] = {}
        # The open call's risk level code and amount in minor units per row (-1: none),
        # so a poll finds the calls that changed without visiting the rest.
        self._open_level = np.zeros(0, dtype=np.int8)
        self._open_minor = np.zeros(0, dtype=np.int64)
        self._open_force = np.zeros(0, dtype=np.bool_)  # the open call is a force call
        self.figures: dict[str, MarginFigures | None] = {}  # per open call: its row shows
        self._shown_rows: dict[str, WarningRow] = {}
        # Open calls whose amount or level moved and is not written yet (call → account),
        # oldest first: each poll writes up to REPRICED_PER_POLL of them (all of them on
        # a calm day; on a crash day, when 13,000 move every poll, each call's row is
        # behind by a few polls at most). Openings, escalations, ends and operator
        # actions are written when they happen, with the whole call.
        self._unsaved: dict[str, str] = {}
        # Accounts the next poll decides whether or not their figures moved: a call
        # another process changed under this engine's write, or ended elsewhere.
        self._recheck: set[str] = set()
        self._calendars_ready: asyncio.Future[None] | None = None  # `prepare_calendars`
        self.incomplete: dict[str, str] = {}  # monitored accounts without figures: why
        # Calls on which a desk liquidation order filled: cured, they end "liquidated".
        self.filled_calls: set[str] = set()
        # Calls with desk orders still working (the Desk keeps it): a poll may bring an
        # order's fill, as positions and cash, before the order's own status says so.
        # Such a call is not ended "met" on that poll: it asks for the orders' status
        # (`fills_wanted`) and is decided again on the next poll, once.
        self.working_calls: set[str] = set()
        self.fills_wanted = False
        self._end_deferred: set[str] = set()
        self.view = DeskView(None, None, True, (), (), compute_totals((), self.book, "SGD"))

    async def start(self) -> None:
        self.open_calls = await self.store.calls.open_calls()

    def prepare_calendars(self) -> None:
        """Build the trading calendars in a worker thread now (about 2 s of the calendar
        library) rather than inside the first poll that opens a call."""
        self._calendars_ready = asyncio.get_running_loop().run_in_executor(
            None, self.calendars.prepare
        )

    def moved_at(self, account_id: str) -> int:
        row = self.columns.row_of(account_id)
        if row is None:
            return self._moved_outside.get(account_id, -1)
        return int(self._moved[row])

    def _deadline(self, market: Market, notice_at: datetime) -> datetime:
        rule = self.settings.margin_call.rule_for(market)
        return self.calendars.deadline(market, notice_at, rule.due_trading_days, rule.cutoff_time)

    def _rebuild(self, book: Book, columns: ColumnarBook) -> None:
        """A snapshot: new book, new columns, every account decided afresh."""
        self.book = book
        self.columns = columns
        self.results.clear()
        self._own_records.clear()
        self._moved_outside.clear()
        count = len(self.columns.account_ids)
        self._moved = np.zeros(count, dtype=np.int64)
        self._open_level = np.full(count, -1, dtype=np.int8)
        self._open_minor = np.zeros(count, dtype=np.int64)
        self._open_force = np.zeros(count, dtype=np.bool_)
        for call in self.open_calls.values():
            self._note_open(call)
        self.incomplete.clear()
        self.figures.clear()

    def _note_open(self, call: MarginCall) -> None:
        row = self.columns.row_of(call.account_id)
        if row is None:
            return
        self._open_force[row] = call.state is CallState.FORCE_CALL
        if call.is_open:
            self._open_level[row] = LEVELS.index(call.risk_level)
            minor = call.call_amount.scaleb(minor_units(call.currency))
            self._open_minor[row] = min(int(minor), 2**63 - 1)
        else:
            self._open_level[row] = -1

    async def _recompute(self, changes: BookChanges, *, full: bool) -> tuple[np.ndarray, list[str]]:
        """Apply the payload to the book and the columns: the moved rows, and moved
        accounts the columns do not hold. A snapshot's book and columns are built in a
        worker thread (seconds at crash-day size), so the screen keeps answering."""
        self._polls += 1
        if full:
            policies = self.policies

            def build() -> tuple[Book, ColumnarBook]:
                book = book_from_snapshot(changes)
                return book, ColumnarBook.from_book(book, policies)

            self._rebuild(*await asyncio.to_thread(build))
            # The book is millions of long-lived objects: left to the cyclic collector,
            # each full collection walks them all (seconds at crash-day size, at random
            # moments of a poll or a key press). Frozen, they are never walked; they are
            # still freed by reference counting when a later snapshot replaces them.
            gc.freeze()
            done = await asyncio.to_thread(self.columns.recompute_all)
            self._moved[:] = self._polls
            return done.rows, []
        applied = apply_records(self.book, changes)
        self._own_records |= applied.accounts
        own = set(applied.accounts)
        if applied.currencies:
            own |= self._own_records
        elif applied.symbols:
            positions = self.book.positions
            own |= {
                a for a in self._own_records if not applied.symbols.isdisjoint(positions.get(a, ()))
            }
        own &= set(self.book.accounts)
        # In a worker thread: a crash poll moves every account (a few hundred ms of NumPy,
        # which lets go of the GIL), and the screen keeps answering meanwhile. Only the
        # engine touches the columns, and the calls lock keeps polls apart.
        done = await asyncio.to_thread(
            self.columns.recompute, applied.symbols, fx=bool(applied.currencies), accounts=own
        )
        self._moved[done.rows] = self._polls
        for account_id in done.outside:
            self._moved_outside[account_id] = self._polls
        return done.rows, list(done.outside)

    async def apply(
        self,
        changes: BookChanges,
        *,
        full: bool,
        rejected: Iterable[Rejection] = (),
        fresh: bool = True,
    ) -> PollOutcome:
        """Apply one payload: recompute moved accounts, run the lifecycle, commit.

        `fresh=False` (a book restored from the cache) computes and shows figures but
        runs no lifecycle: nothing opens or ends on data that are not live.
        """
        now = self.clock()
        if full:
            self.tainted.clear()
        else:
            for kind, records in _valid_keys(changes):
                for key in records:
                    self.tainted.pop((kind, key), None)
        for rejection in rejected:
            self.tainted[(rejection.kind, rejection.key)] = (
                f"feed record rejected ({rejection.kind} {rejection.key}): {rejection.reason}"
            )
        clock = _Phases()
        rows, outside = await self._recompute(changes, full=full)
        clock.done("recompute")
        previous_partial = self.partial
        self.partial = self._partial_accounts()
        # Accounts whose partial mark came or went move too (their results change).
        flipped = set(self.partial).symmetric_difference(previous_partial)
        for account_id in flipped:
            row = self.columns.row_of(account_id)
            if row is None:
                self._moved_outside[account_id] = self._polls
            else:
                self._moved[row] = self._polls
        fast, candidates = self._candidates(rows, outside, flipped, fresh=fresh)
        self._note_incomplete(rows, outside)

        batch = LifecycleBatch()
        transitions = self._reprice(fast)
        if self.lifecycle:
            for moved in transitions:
                # Only its amount or level moved: written with the next flush.
                self._unsaved[moved.call.call_id] = moved.call.account_id
        else:
            transitions.extend(self._reprice_shown(candidates))
            candidates = []
        repriced_count = len(transitions)
        for done, account_id in enumerate(candidates, 1):
            if done % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # a crash poll is seconds of work: let keys through
            account = self.book.accounts[account_id]
            verdict = self._verdict(account_id)
            transition = evaluate(
                self.open_calls.get(account_id),
                verdict,
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
            call = transition.call
            if (
                call.end_reason is EndReason.MET
                and call.call_id in self.working_calls
                and call.call_id not in self._end_deferred
            ):
                self._end_deferred.add(call.call_id)
                self._recheck.add(account_id)
                self.fills_wanted = True
                continue
            transitions.append(transition)
            if not transition.snapshots and call.is_open:
                # Only its amount or level moved: written with the next flush.
                self._unsaved[call.call_id] = account_id
                continue
            batch.calls.append(call)
            self._unsaved.pop(call.call_id, None)
            if not transition.snapshots:
                continue
            # What the snapshot records is the reference's own result, and the row
            # shows the same figures.
            result = self.results[account_id]
            payload = snapshot_payload(
                result, transition.call, feed_as_of=self.book.as_of, feed_cursor=self.book.cursor
            )
            self.figures[account_id] = MarginFigures.of(result)
            for scenario in transition.snapshots:
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
        if self._unsaved:
            batch.repriced.extend(self._updated_calls(transitions, limit=REPRICED_PER_POLL))
        clock.done("lifecycle")
        refused: frozenset[str] = frozenset()
        if batch:
            # A call another process changed since this engine read it (an operator's
            # close in a terminal, say) is left out, with its snapshots, and read again.
            refused = await self.store.calls.commit(batch, skip_changed=True)
        if refused:
            transitions = [t for t in transitions if t.call.call_id not in refused]
        clock.done("commit")
        for moved in transitions[:repriced_count]:  # their columns are already set
            self.open_calls[moved.call.account_id] = moved.call
        for transition in transitions[repriced_count:]:
            call = transition.call
            if call.is_open:
                self.open_calls[call.account_id] = call
            else:
                self.open_calls.pop(call.account_id, None)
                self.figures.pop(call.account_id, None)
            self._note_open(call)
        if refused:
            log.warning("%d calls changed meanwhile elsewhere; read again", len(refused))
            stored = await self.store.calls.calls_by_id(refused)
            self._take(stored)
            self._recheck.update(c.account_id for c in stored)
        recorded = {t.call.account_id for t in transitions if t.snapshots and t.call.is_open}
        self._refresh_figures(rows, outside, recorded)
        clock.done("figures")
        self.view = self._publish(now, stale=not fresh, rejected=len(self.tainted))
        clock.done("publish")
        return PollOutcome(
            self.view, transitions, recomputed=len(rows) + len(outside), phases=clock.phases
        )

    def _reprice_shown(self, accounts: list[str]) -> list[Transition]:
        """A terminal's lifecycle: the open calls of these accounts re-priced in memory,
        when their figures are complete and still due; opening, escalating and ending
        are the engine's, and come back as stored (`take_stored`)."""
        transitions = []
        for account_id in accounts:
            call = self.open_calls.get(account_id)
            if call is None:
                continue
            verdict = self._verdict(account_id)
            if verdict.incomplete is not None or verdict.call_amount <= 0:
                continue
            if verdict.call_amount != call.call_amount or verdict.risk_level is not call.risk_level:
                transitions.append(repriced(call, verdict.risk_level, verdict.call_amount))
                self._note_open(transitions[-1].call)
        return transitions

    def take_stored(self, stored: Iterable[MarginCall]) -> None:
        """Calls as another process stored them (a terminal's remark, claim or close; the
        engine's opening, escalation or end), taken into the view and republished."""
        self._take(stored)
        self.view = self._publish(self.clock(), stale=self.view.stale, rejected=len(self.tainted))

    def replace_open_calls(self, stored: dict[str, MarginCall]) -> None:
        """Every open call as stored now (after a reconnect: notifications may be lost)."""
        gone = [c for a, c in self.open_calls.items() if a not in stored]
        self._take([*(replace(c, state=CallState.ENDED) for c in gone), *stored.values()])
        self.view = self._publish(self.clock(), stale=self.view.stale, rejected=len(self.tainted))

    def _take(self, stored: Iterable[MarginCall]) -> None:
        """Merge stored calls into the open ones. A call's lifecycle as stored, unless
        this engine holds a later version (its own write, not heard back yet); remark,
        flag and claim always as stored; amount and level as this engine computes them
        from the feed (stored ones lag by a few polls on a crash day)."""
        shown: list[int] = []  # column rows of calls new here: figures made in bulk
        for call in sorted(stored, key=lambda c: c.is_open):  # ends first
            account_id = call.account_id
            current = self.open_calls.get(account_id)
            same = current is not None and current.call_id == call.call_id
            if not call.is_open:
                if same:
                    del self.open_calls[account_id]
                    self.figures.pop(account_id, None)
                    self._unsaved.pop(call.call_id, None)
                    self._note_open(call)
                    self._recheck.add(account_id)  # still in call: a new call opens
                continue
            if current is not None and same and current.version > call.version:
                merged = replace(
                    current,
                    remark=call.remark,
                    exception=call.exception,
                    claimed_by=call.claimed_by,
                    claimed_at=call.claimed_at,
                )
            elif current is not None and not same and current.triggered_at > call.triggered_at:
                continue  # news of an older call than the one open here
            else:
                merged = call
                if account_id in self.book.accounts:
                    verdict = self._verdict(account_id)
                    if verdict.incomplete is None and verdict.call_amount > 0:
                        merged = replace(
                            call, call_amount=verdict.call_amount, risk_level=verdict.risk_level
                        )
                if not same:
                    self.figures.pop(account_id, None)
                    row = self.columns.row_of(account_id)
                    if row is not None and account_id not in self.partial:
                        shown.append(row)
            self.open_calls[account_id] = merged
            self._note_open(merged)
        ids = self.columns.account_ids
        made = self.columns.display(np.array(shown, dtype=np.int64))
        for row, figures in zip(shown, made, strict=True):
            self.figures[ids[row]] = figures

    def unsaved_calls(self) -> list[MarginCall]:
        """Every open call whose amount or level moved since last written (now noted as
        written: the caller commits them as `LifecycleBatch.repriced`)."""
        return self._updated_calls([], limit=None)

    def _updated_calls(
        self, transitions: list[Transition], *, limit: int | None
    ) -> list[MarginCall]:
        """The calls re-priced longest ago and not written since (at most `limit`), as
        they are now, noted as written (the caller commits them)."""
        latest = {t.call.call_id: t.call for t in transitions}
        calls = []
        taken = list(itertools.islice(self._unsaved.items(), limit))
        for call_id, account_id in taken:
            del self._unsaved[call_id]
            call = latest.get(call_id) or self.open_calls.get(account_id)
            if call is not None and call.call_id == call_id and call.is_open:
                calls.append(call)
        return calls

    def _candidates(
        self, rows: np.ndarray, others: list[str], flipped: set[str], *, fresh: bool
    ) -> tuple[np.ndarray, list[str]]:
        """Moved accounts the lifecycle must see: in call, or with an open call whose
        level or amount changed, or whose partial mark came or went. Returns the rows
        of open calls that are only re-priced (amount still due, no escalation, decided
        by the columns: `lifecycle.repriced`), and every other account (sorted) for
        the whole of `evaluate`."""
        columns = self.columns
        codes = columns.level_codes[rows]
        minor = columns.call_minor[rows]
        open_level = self._open_level[rows]
        has_open = open_level >= 0
        changed = has_open & ((codes != open_level) | (minor != self._open_minor[rows]))
        opening = ~has_open & np.isin(codes, _IN_CALL_CODES)
        repriced = (
            changed
            & (codes != INCOMPLETE)
            & (minor > 0)
            & ~((codes == FORCE_CALL) & ~self._open_force[rows])
            & ~columns.by_reference[rows]
        )
        ids = columns.account_ids
        if not fresh:
            repriced[:] = False  # nothing moves on data that are not live
        elif self.partial:  # a partial account's verdict is the reference's
            repriced[repriced] = [ids[row] not in self.partial for row in rows[repriced].tolist()]
        chosen = {ids[row] for row in rows[(changed | opening) & ~repriced].tolist()}
        chosen.update(others)
        chosen.update(flipped)
        if fresh and self._recheck:
            chosen.update(self._recheck)
            self._recheck.clear()
        slow = sorted(
            a
            for a in chosen
            if (account := self.book.accounts.get(a)) is not None and is_monitored(account)
        )
        return rows[repriced], slow

    def _reprice(self, rows: np.ndarray) -> list[Transition]:
        """The open calls of these rows, re-priced from the columns (see `_candidates`)."""
        if rows.size == 0:
            return []
        columns = self.columns
        ids = columns.account_ids
        amounts = columns.call_amounts(rows)
        codes = columns.level_codes[rows].tolist()
        transitions = [
            repriced(self.open_calls[ids[row]], LEVELS[code], amount)
            for row, code, amount in zip(rows.tolist(), codes, amounts, strict=True)
        ]
        self._open_level[rows] = columns.level_codes[rows]
        self._open_minor[rows] = columns.call_minor[rows]
        return transitions

    def _verdict(self, account_id: str) -> MarginVerdict:
        """The columns' decision, or the reference's for what the columns do not hold
        and for partial accounts."""
        row = self.columns.row_of(account_id)
        if row is None or account_id in self.partial:
            return self.results[account_id]
        account = self.book.accounts[account_id]
        level = LEVELS[int(self.columns.level_codes[row])]
        if level is RiskLevel.INCOMPLETE:
            return self.results[account_id]
        return _Verdict(
            account_id=account_id,
            kind=account.kind,
            currency=account.base_currency,
            risk_level=level,
            call_amount=self.columns.call_amount(account_id),
            incomplete=None,
        )

    def _note_incomplete(self, rows: np.ndarray, others: list[str]) -> None:
        """Keep the list of monitored accounts without figures, and why."""
        for account_id in list(self.incomplete):
            if account_id not in self.book.accounts or self.moved_at(account_id) == self._polls:
                del self.incomplete[account_id]
        ids = self.columns.account_ids
        suspects = [ids[row] for row in rows[self.columns.level_codes[rows] == INCOMPLETE].tolist()]
        for account_id in [*suspects, *others, *self.partial]:
            result = self.results.get(account_id)  # monitored accounts only
            if result is not None and result.incomplete is not None:
                self.incomplete[account_id] = result.incomplete

    def _refresh_figures(self, rows: np.ndarray, others: list[str], recorded: set[str]) -> None:
        """The figures the open calls' rows show, for the calls whose account moved
        (`recorded`: already set from the result a snapshot recorded)."""
        columns = self.columns
        ids = columns.account_ids
        wanted = [
            row
            for row in rows[self._open_level[rows] >= 0].tolist()
            if ids[row] not in recorded and ids[row] not in self.partial
        ]
        shown = columns.display(np.array(wanted, dtype=np.int64))
        for row, figures in zip(wanted, shown, strict=True):
            self.figures[ids[row]] = figures
        for account_id in self.open_calls:
            if account_id in recorded:
                continue
            if account_id not in self.figures or account_id in self.partial or account_id in others:
                self.figures[account_id] = self._reference_figures(account_id)

    def _reference_figures(self, account_id: str) -> MarginFigures | None:
        result = self.results.get(account_id)
        return None if result is None else MarginFigures.of(result)

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
        await self.store.calls.commit(LifecycleBatch(calls=[transition.call], snapshots=[snapshot]))
        self.open_calls[call.account_id] = transition.call
        self._note_open(transition.call)
        self.view = replace(self.view, warnings=self._rows(at))
        return transition.call

    # --- operator changes to calls: committed first, then shown ---------------------------

    def open_call(self, call_id: str) -> MarginCall | None:
        """The open call with this id; None when it has ended or this engine never had it."""
        return next((c for c in self.open_calls.values() if c.call_id == call_id), None)

    def note_remark(self, call_id: str, text: str, exception: bool) -> MarginCall | None:
        """Show a remark and exception flag already stored (`store.calls.add_remark`) at once."""
        call = self.open_call(call_id)
        if call is None:
            return None
        updated = replace(call, remark=text, exception=exception)
        self.adopt(updated)
        return updated

    def adopt(self, call: MarginCall) -> None:
        """Take a call an operator action changed, already committed, into the view."""
        if call.is_open:
            self.open_calls[call.account_id] = call
            self._note_open(call)
        else:
            current = self.open_calls.get(call.account_id)
            if current is not None and current.call_id == call.call_id:
                del self.open_calls[call.account_id]
                self.figures.pop(call.account_id, None)
                self._note_open(call)
        self.view = self._publish(self.clock(), stale=self.view.stale, rejected=len(self.tainted))

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
        self, call_id: str, reason: str, *, operator: str, details: Mapping[str, Any]
    ) -> tuple[MarginCall, LifecycleBatch]:
        """The open call ended by an operator, with its END snapshot and audit entry: unwritten.

        Written by whoever approves the close (`risk_tui.approvals`), then `adopt`ed.
        Raises LookupError for a call not open here.
        """
        call = self.open_call(call_id)
        if call is None:
            raise LookupError(f"no open margin call {call_id}")
        now = self.clock()
        ended = close_by_operator(call, now, reason).call
        result = self.results.get(call.account_id)
        # The END snapshot shows the ended call, like the ones `apply` writes.
        payload = (
            snapshot_payload(
                result, ended, feed_as_of=self.book.as_of, feed_cursor=self.book.cursor
            )
            if result is not None
            else self.account_state(call.account_id)
        )
        snapshot = SnapshotRecord(
            call_id=call.call_id,
            account_id=call.account_id,
            scenario=SnapshotScenario.END,
            taken_at=now,
            feed_as_of=self.book.as_of,
            feed_cursor=self.book.cursor,
            payload=payload,
        )
        entry = AuditEntry(
            at=now,
            operator=operator,
            action="call_closed",
            call_id=call.call_id,
            account_id=call.account_id,
            details={**dict(details), "reason": reason, "call_amount": str(call.call_amount)},
        )
        return ended, LifecycleBatch(calls=[ended], snapshots=[snapshot], audit=[entry])

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
        """One row per open call, oldest first; a row is the same object as last
        publish when nothing it shows changed (the table's diff compares identity)."""
        # 長期未結清: triggered more than the configured days ago (`long_outstanding`).
        cutoff = now - timedelta(days=self.settings.desk.long_outstanding_days)
        kept = self._shown_rows
        rows: list[WarningRow] = []
        for account_id, call in self._in_trigger_order():
            figures = self.figures.get(account_id)
            if figures is None and account_id not in self.figures:
                figures = self.figures[account_id] = self._reference_figures(account_id)
            long_outstanding = call.triggered_at < cutoff
            row = kept.get(account_id)
            if (
                row is None
                or row.call is not call
                or row.margin is not figures
                or row.long_outstanding != long_outstanding
            ):
                row = WarningRow(call, figures, long_outstanding)
            rows.append(row)
        self._shown_rows = {row.account_id: row for row in rows}
        return tuple(rows)

    def _in_trigger_order(self) -> Iterable[tuple[str, MarginCall]]:
        """The open calls, oldest first. Calls open in time order and keep their place
        in `open_calls` when re-priced, so it is in that order already; it is put back
        in order (once) when it is not, e.g. as read from storage."""
        items = list(self.open_calls.items())
        if any(
            later[1].triggered_at < earlier[1].triggered_at
            for earlier, later in itertools.pairwise(items)
        ):
            items.sort(key=lambda item: item[1].triggered_at)
            self.open_calls = dict(items)
        return items

    def _publish(self, now: datetime, *, stale: bool, rejected: int) -> DeskView:
        rows = self._rows(now)
        incomplete = tuple(
            IncompleteRow(account_id, self.book.accounts[account_id].client_name, reason)
            for account_id, reason in sorted(self.incomplete.items())
            if account_id in self.book.accounts
        )
        totals = compute_desk_totals(rows, self.book, self.settings.desk.reporting_currency)
        return DeskView(
            as_of=self.book.as_of,
            cursor=self.book.cursor,
            stale=stale,
            warnings=rows,
            incomplete=incomplete,
            totals=totals.every,
            rejected_records=rejected,
            intraday_totals=totals.intraday,
            live_totals=totals.live,
            exception_totals=totals.exceptions,
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


def hold_collector() -> bool:
    """The desk's collector schedule, from now: what exists is frozen (never walked
    again) and automatic collection is off; returns whether it was on."""
    was_enabled = gc.isenabled()
    gc.freeze()
    gc.disable()
    return was_enabled


def collect_young() -> None:
    """The young generations only: what was made since the last collection."""
    gc.collect(1)


def collect_full() -> None:
    """Everything not frozen, then freeze the survivors."""
    gc.collect()
    gc.freeze()


YOUNG_COLLECTION_INTERVAL = 0.25  # seconds between collections of the young generations
FULL_COLLECTION_INTERVAL = 600.0  # seconds between full collections while the desk runs
FIRST_PAINT_WAIT = 2.0  # seconds `Desk.start` waits for a screen to paint the stored calls
NOTIFY_ATTEMPTS = 3  # a sent message's call changed elsewhere: read again and record, this often
ORDER_REFRESH_INTERVAL = 2.0  # seconds between status queries while desk orders work


class DeskStore(CallStore, Protocol):
    cache: FeedCache  # get_cache, put_cache
    orders: Orders  # calls_with_fills, working_orders


AUTO_LIQUIDATION_INTERVAL = 1.0  # seconds between the scheduler's looks for due plans
# Who sends a plan's orders when its time comes. Not the scheduling operator: they were
# not at the terminal then, and the audit must say truthfully what acted. Their decision
# is the plan's `auto_liquidation_scheduled` entry; each order's key names the plan.
AUTO_LIQUIDATION_ACTOR = Actor("engine:auto-liquidation", Role.TRADER)
AUTO_LIQUIDATION_REASON = "auto_liquidation"  # the orders' FEED.md `reason`
REMARK_ROLES = frozenset({Role.OPERATOR, Role.TRADER, Role.SUPERVISOR})


@runtime_checkable
class ActionStore(DeskStore, Protocol):
    """What operator actions and the auto-liquidation scheduler need of the store."""

    # Of `calls` also set_claim, add_remark and get_call; of `orders` also get.
    audit: AuditTrail  # append_audit
    plans: Plans  # every auto-liquidation read and write


DAILY_INTERVAL = 30.0  # seconds between the daily jobs' looks for due snapshots/reminders
DAILY_SNAPSHOT_JOB = "snapshot"
DAILY_REMINDER_JOB = "reminder"
# Who sends the daily reminders: the engine, in the messaging role of an operator.
DAILY_REMINDER_ACTOR = Actor("engine:daily-reminder", Role.OPERATOR)


def reminder_message_id(call_id: str, day: date) -> str:
    """The one key of a call's reminder for a market-local day: never sent twice."""
    return f"RT-R-{call_id}-{day:%Y%m%d}"


def market_now(call: MarginCall, now: datetime) -> datetime:
    """`now` on the wall clock of the call's market."""
    return now.astimezone(MARKET_TZ[call.market])


def reminder_body(call: MarginCall) -> str:
    """The daily reminder: client name (inert), amount, currency, deadline in market time."""
    name = sanitize(call.client_name, max_length=80)
    amount = format_money(round_call_amount(call.call_amount, call.currency), call.currency)
    if call.deadline is None:
        due = "as soon as possible"
    else:
        local = call.deadline.astimezone(MARKET_TZ[call.market])
        due = f"by {local:%d %b %Y %H:%M} ({call.market} time)"
    return (
        f"Dear {name}, your account {call.account_id} is still in margin call. "
        f"Please deposit {call.currency} {amount} {due}, or reduce your positions."
    )


@runtime_checkable
class DailyStore(ActionStore, Protocol):
    """What the daily jobs need of the store: markers, one per job, call and market day."""

    daily: DailyJobs  # last_daily, daily_done, mark_daily
    messages: Messages  # get


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
        daily_interval: float = DAILY_INTERVAL,
        role: DeskRole = DeskRole.EMBEDDED,
    ) -> None:
        self.store = store
        self.gateway = gateway
        self.role = role
        self.engine = Engine(
            settings, store, calendars, clock=clock, lifecycle=role is not DeskRole.TERMINAL
        )
        # On a desk shared by several processes (PostgreSQL): hearing the others.
        self.shared: SharedDesk | None = None
        if role is not DeskRole.EMBEDDED:
            if not isinstance(store, Store):
                raise TypeError("a shared desk needs the database store")
            self.shared = SharedDesk(self, store, settings.db.url, role)
        self.polled = False  # a poll applied since the engine's last heartbeat
        self.on_view = on_view
        self.monotonic = monotonic
        self.poller = Poller(
            client, settings.feed, self._apply, on_health=on_health, clock=monotonic
        )
        self._last_cache = -math.inf
        self.auto_liquidation_interval = AUTO_LIQUIDATION_INTERVAL
        # Serializes a poll's lifecycle work with operator changes to calls: a poll that
        # read a call before a remark was stored must not put its older copy back.
        self._calls_lock = asyncio.Lock()
        # One runner of plans at a time in this process (the loop, a test, the end hook).
        self._plans_lock = asyncio.Lock()
        self._waiting_plans: set[str] = set()  # plans already logged as waiting for data
        self.daily_interval = daily_interval
        # Set by a screen once it painted the first view (`start` waits for it, briefly).
        self.shown: asyncio.Event | None = None
        self._daily_lock = asyncio.Lock()  # one pass of the daily jobs at a time
        self._daily_settled: set[DailyKey] = set()  # done (or settled) here: not looked up again
        self._daily_waiting: set[DailyKey] = set()  # logged as waiting for live data
        self.approvals = Approvals(self)  # four-eyes requests and the kill switch

    @property
    def view(self) -> DeskView:
        return self.engine.view

    @property
    def health(self) -> FeedHealth:
        return self.poller.health

    def _publish(self, view: DeskView) -> None:
        if self.on_view is not None:
            self.on_view(view)

    def publish_view(self) -> None:
        self._publish(self.engine.view)

    @property
    def calls_lock(self) -> asyncio.Lock:
        """Held by whatever changes the engine's calls: a poll, an action, a notice."""
        return self._calls_lock

    async def start(self) -> DeskView:
        """Open calls from storage, and the last cached book shown as stale until a poll."""
        await self.engine.start()
        self.engine.filled_calls = await self.store.orders.calls_with_fills()
        await self._note_working()
        # First paint: the open calls as last stored, marked stale, before the cached
        # book (seconds to read at crash-day size, in a worker thread) gives figures.
        self._publish(self.engine.mark_stale())
        if self.shown is not None:
            # A screen is showing it: let it paint before the cached book (seconds of
            # work in a thread, sharing the interpreter) slows everything down.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FIRST_PAINT_WAIT):
                    await self.shown.wait()
        self.engine.prepare_calendars()
        cached = await self.store.cache.get_cache(BOOK_CACHE_KEY)
        if cached:
            try:
                parsed = await asyncio.to_thread(lambda: parse_payload(json.loads(cached)))
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
        async with self._calls_lock:
            outcome = await self.engine.apply(parsed.changes, full=full, rejected=parsed.rejected)
        self.polled = True
        self._publish(outcome.view)
        if self.engine.fills_wanted and self.gateway is not None:
            # A call with working orders looked met: were they filled? (decided next poll)
            self.engine.fills_wanted = False
            try:
                await self.refresh_orders()
            except GatewayError as problem:
                log.warning("order status refresh failed: %s", problem)
        now = self.monotonic()
        if full or now - self._last_cache >= CACHE_INTERVAL:
            await self.save_cache()
            self._last_cache = now
        ended = [t.call.call_id for t in outcome.transitions if t.ended]
        if ended:
            await self._settle_plans_of_ended_calls(ended)
            await self.approvals.void_for_ended_calls(ended)
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
        self,
        intent: OrderIntent,
        actor: Actor,
        *,
        override_reason: str | None = None,
        replaces: str | None = None,
    ) -> OrderOutcome | ApprovalRequest:
        """Send a liquidation order, or, when it needs four-eyes approval (`risk_tui.approvals`),
        store it as a request and return that (pending). `replaces`: the request this one
        edits, voided in the same step.
        """
        held = await self.approvals.hold_order(intent, actor, override_reason, replaces)
        if held is not None:
            return held
        return await self._place_order(intent, actor, override_reason=override_reason)

    async def _place_order(
        self, intent: OrderIntent, actor: Actor, *, override_reason: str | None = None
    ) -> OrderOutcome:
        """Check, record and send through the gateway (refused while the kill switch is on)."""
        engine = self.engine
        outcome = await self._gateway().submit_order(
            intent,
            account_state=engine.account_state(intent.account_id),
            actor=actor,
            position_quantity=self._holding(intent),
            call_open=intent.account_id in engine.open_calls,
            data_fresh=self.data_fresh(intent.account_id),
            override_reason=override_reason,
        )
        self._note_fills([outcome.order])
        await self._note_working()
        return outcome

    def _holding(self, intent: OrderIntent) -> Decimal | None:
        holding = self.engine.book.positions.get(intent.account_id, {}).get(intent.symbol)
        return holding.quantity if holding else None

    def order_problems(
        self, intent: OrderIntent, actor: Actor, override_reason: str | None
    ) -> list[str]:
        """Every reason the gateway would refuse `intent` now (`check_order` on this desk)."""
        return check_order(
            intent,
            position_quantity=self._holding(intent),
            call_open=intent.account_id in self.engine.open_calls,
            data_fresh=self.data_fresh(intent.account_id),
            actor=actor,
            override_reason=override_reason,
        )

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
        """The message went out: its call is notified. A call changed elsewhere meanwhile
        (escalated by the engine, say) is read again and the notification recorded on it."""
        if not message.call_id:
            return
        for _attempt in range(NOTIFY_ATTEMPTS):
            try:
                await self.engine.record_notification(message.call_id, self.engine.clock())
            except CallChanged as changed:
                self.engine.take_stored(await self.store.calls.calls_by_id(changed.call_ids))
                continue
            self._publish(self.engine.view)
            return
        log.error(
            "message %s sent, but its call kept changing: notification not recorded",
            message.message_id,
        )

    async def refresh_orders(self) -> list[StoredOrder]:
        """The broker's latest status and fills of the desk's orders."""
        changed = await self._gateway().refresh_orders()
        self._note_fills(changed)
        await self._note_working()
        return changed

    async def _note_working(self) -> None:
        """Which calls have desk orders the broker still works (`Engine.working_calls`)."""
        working = await self.store.orders.working_orders()
        self.engine.working_calls = {o.call_id for o in working if o.call_id}

    def _note_fills(self, orders: Iterable[StoredOrder]) -> None:
        for order in orders:
            if order.call_id and order.filled_quantity > 0:
                self.engine.filled_calls.add(order.call_id)

    async def save_cache(self) -> None:
        """Write the book for the next start. Written out in a worker thread (seconds at
        crash-day size) while holding the calls lock, so no poll changes it meanwhile
        and the screen keeps answering."""
        if self.role is DeskRole.TERMINAL:
            return  # the engine keeps the desk's cached book
        async with self._calls_lock:
            book = self.engine.book
            if book.cursor is None:
                return
            text = await asyncio.to_thread(lambda: json.dumps(book_to_payload(book)))
            await self.store.cache.put_cache(BOOK_CACHE_KEY, text)

    async def run(self) -> None:
        """Poll the feed, take the daily snapshots and, with a gateway, follow working orders,
        run auto-liquidations and send the daily reminders."""
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._collect_garbage())
                tasks.create_task(self.poller.run())
                if self.shared is not None:
                    for runner in self.shared.runners():
                        tasks.create_task(runner)
                if self.role is DeskRole.TERMINAL:
                    return  # the rest is the engine's
                if self.gateway is not None:
                    tasks.create_task(self._follow_orders())
                    if isinstance(self.store, ActionStore):
                        tasks.create_task(self.run_auto_liquidations())
                if isinstance(self.store, DailyStore):
                    tasks.create_task(self.run_daily())
        finally:
            # Stopping (quit, cancel): the call amounts not written yet are written now.
            with contextlib.suppress(Exception):
                await asyncio.shield(self.flush_updates())

    async def _collect_garbage(self) -> None:
        """The collector on the desk's schedule, not at random moments of a key press.

        A crash day keeps millions of long-lived objects (the book, 20,000 calls and
        their rows); left automatic, each full collection walks them all and stops the
        event loop for seconds. So, while the desk runs: automatic collection off; the
        young generations collected every YOUNG_COLLECTION_INTERVAL (only what was made
        since, a few ms); a full collection every FULL_COLLECTION_INTERVAL, after which the
        survivors are frozen (never walked again; still freed by reference counting).
        Snapshots freeze their new book too (`Engine._recompute`).
        """
        was_enabled = hold_collector()
        last_full = time.monotonic()
        try:
            while True:
                await asyncio.sleep(YOUNG_COLLECTION_INTERVAL)
                if time.monotonic() - last_full >= FULL_COLLECTION_INTERVAL:
                    collect_full()
                    last_full = time.monotonic()
                else:
                    collect_young()
        finally:
            if was_enabled:
                gc.enable()

    async def flush_updates(self) -> None:
        """Write the open calls' amounts and levels that moved since the last write."""
        async with self._calls_lock:
            calls = self.engine.unsaved_calls()
            if calls:
                await self.store.calls.commit(LifecycleBatch(repriced=calls))

    async def recover_actions(self) -> None:
        """Settle orders and messages a previous run left unsent or in doubt (same keys),
        and approved requests it left unfinished."""
        await self.approvals.recover()
        if self.gateway is None or self.role is DeskRole.TERMINAL:
            return  # on a shared desk, the engine settles them
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
                if await self.store.orders.working_orders():
                    await self.refresh_orders()
            except GatewayError as problem:
                log.warning("order status refresh failed: %s", problem)

    # --- operator actions on calls -------------------------------------------------------
    #
    # Each is checked (every problem at once, as `ActionRefused`; a refusal is audited),
    # committed with its audit entry, then shown: the engine's open call is updated and
    # the view republished, so the operator sees the change at once. A deadline move and
    # a close are four-eyes requests: committed and shown when approved (`Approvals`).

    @contextlib.asynccontextmanager
    async def _changed_elsewhere(self, what: str) -> AsyncIterator[None]:
        """An action on a call another terminal or the engine changed first is refused,
        and the call is shown as stored now, so the operator decides again on it."""
        try:
            yield
        except CallChanged as changed:
            self.engine.take_stored(await self.store.calls.calls_by_id(changed.call_ids))
            self._publish(self.engine.view)
            raise ActionRefused(what, [f"{changed}; it now shows as stored: look again"]) from None

    def _action_store(self) -> ActionStore:
        if not isinstance(self.store, ActionStore):
            raise ActionRefused("action", ["this desk's store cannot record operator actions"])
        return self.store

    def _action_details(self, actor: Actor, account_id: str) -> dict[str, Any]:
        """Who acted, in which role, on what state of the account and the feed."""
        return {
            "role": actor.role.value,
            "feed_status": self.health.status(self.monotonic()).value,
            "account_state": self.engine.account_state(account_id),
        }

    async def _refuse(
        self,
        action: str,
        what: str,
        actor: Actor,
        call_id: str | None,
        problems: list[str],
        details: Mapping[str, Any],
    ) -> NoReturn:
        """Audit a refused action (compliance reads attempts too), then raise ActionRefused."""
        call = self.engine.open_call(call_id) if call_id else None
        entry = AuditEntry(
            at=self.engine.clock(),
            operator=actor.name,
            action=action,
            call_id=call_id,
            account_id=call.account_id if call else None,
            details={**dict(details), "problems": problems, "role": actor.role.value},
        )
        await self._action_store().audit.append_audit([entry])
        raise ActionRefused(what, problems)

    async def add_remark(
        self, call_id: str, text: str, *, exception: bool, actor: Actor
    ) -> MarginCall:
        """Set a call's remark and exception flag: history and audit in one commit, shown at once.

        Operators, traders and supervisors; open or ended calls (history rows take remarks
        too). The text is stored as typed: the screens sanitize it when they show it.
        """
        store = self._action_store()
        if actor.role not in REMARK_ROLES:
            await self._refuse(
                "remark_refused",
                "remark",
                actor,
                call_id,
                [f"{actor.name} ({actor.role}) may not edit remarks"],
                {"text": text, "exception": exception},
            )
        if exception and not text.strip():  # the Exceptions tab must say why each is there
            await self._refuse(
                "remark_refused",
                "remark",
                actor,
                call_id,
                ["an exception needs a remark saying why"],
                {"text": text, "exception": exception},
            )
        async with self._calls_lock:
            try:
                await store.calls.add_remark(
                    call_id, actor.name, text, exception, self.engine.clock()
                )
            except UnknownCall as unknown:
                raise ActionRefused("remark", [str(unknown)]) from None
            shown = self.engine.note_remark(call_id, text, exception)
        if shown is None:  # an ended call: not on the live screens
            stored = await store.calls.get_call(call_id)
            assert stored is not None  # add_remark just found it
            return stored
        self._publish(self.engine.view)
        return shown

    async def claim(self, call_id: str, actor: Actor, *, release: bool = False) -> MarginCall:
        """Claim an open call ("I'm on it", shown to every terminal) or give the claim up.

        Operators, traders and supervisors. A call someone else holds is refused, except
        to a supervisor, who may take the claim over or release it (audited as such).
        """
        store = self._action_store()
        what = "release" if release else "claim"
        if actor.role not in REMARK_ROLES:
            await self._refuse(
                f"{what}_refused",
                what,
                actor,
                call_id,
                [f"{actor.name} ({actor.role}) may not {what} calls"],
                {},
            )
        current = await store.calls.get_call(call_id)
        holder = None if current is None else current.claimed_by
        over = (
            holder if holder not in (None, actor.name) and actor.role is Role.SUPERVISOR else None
        )
        if release and over is None and holder != actor.name and current is not None:
            await self._refuse(
                f"{what}_refused",
                what,
                actor,
                call_id,
                [
                    f"call {call_id} is "
                    + ("not claimed" if holder is None else f"claimed by {holder}")
                ],
                {},
            )
        try:
            stored = await store.calls.set_claim(
                call_id, actor.name, self.engine.clock(), claim=not release, over=over
            )
        except (ClaimTaken, UnknownCall) as taken:
            raise ActionRefused(what, [str(taken)]) from None
        async with self._calls_lock:
            self.engine.take_stored([stored])
        self._publish(self.engine.view)
        return stored

    async def set_exception(self, call_id: str, flag: bool, actor: Actor) -> MarginCall:
        """Mark or unmark a call as an exception, keeping its current remark text.

        Recorded like a remark edit (same text, new flag), so the remark history shows
        who flipped the flag and when. Setting the flag it already has writes nothing.
        """
        store = self._action_store()
        call = await store.calls.get_call(call_id)
        if actor.role in REMARK_ROLES and call is not None and call.exception == flag:
            return call
        # The stored remark, not the engine's copy: another terminal may have edited it.
        remark = call.remark if call is not None else ""
        return await self.add_remark(call_id, remark, exception=flag, actor=actor)

    def _deadline_problems(
        self, deadline: datetime | None, reason: str | None, *, what: str = "the new deadline"
    ) -> list[str]:
        problems: list[str] = []
        if not (reason or "").strip():
            problems.append("moving a deadline needs a reason")
        if deadline is None or deadline.tzinfo is None or deadline.utcoffset() is None:
            problems.append(f"{what} must carry its time zone")
        elif deadline <= self.engine.clock():
            problems.append(f"{what} {deadline.isoformat()} is not in the future")
        return problems

    async def move_deadline(
        self,
        call_id: str,
        new_deadline: datetime,
        reason: str,
        actor: Actor,
        *,
        replaces: str | None = None,
    ) -> ApprovalRequest:
        """Ask to move an open call's deadline, with a reason: a four-eyes request, pending.

        Traders and supervisors. A second one approves it (`Approvals.approve`), which moves
        the deadline and audits both names in one commit; `replaces` voids the request
        this one edits.
        """
        problems: list[str] = []
        if actor.role not in TRADING_ROLES:
            problems.append(f"{actor.name} ({actor.role}) may not move deadlines")
        if self.engine.open_call(call_id) is None:
            problems.append(f"no open margin call {call_id}")
        problems.extend(self._deadline_problems(new_deadline, reason))
        if problems:
            await self._refuse(
                "deadline_move_refused",
                "deadline move",
                actor,
                call_id,
                problems,
                {"new_deadline": str(new_deadline), "reason": reason},
            )
        return await self.approvals.request_deadline_move(
            call_id, new_deadline, reason, actor, replaces=replaces
        )

    async def close_call(
        self, call_id: str, reason: str, actor: Actor, *, replaces: str | None = None
    ) -> ApprovalRequest:
        """Ask to end an open call, with a reason: a four-eyes request, pending.

        Traders and supervisors. The approval writes the END snapshot and audit in one
        commit and cancels the call's scheduled auto-liquidations after it. An account
        still below MM opens a new call on the next fresh poll.
        """
        problems: list[str] = []
        if actor.role not in TRADING_ROLES:
            problems.append(f"{actor.name} ({actor.role}) may not close margin calls")
        if not reason.strip():
            problems.append("closing a call needs a reason")
        if self.engine.open_call(call_id) is None:
            problems.append(f"no open margin call {call_id}")
        if problems:
            await self._refuse(
                "close_refused", "close", actor, call_id, problems, {"reason": reason}
            )
        return await self.approvals.request_close(call_id, reason, actor, replaces=replaces)

    # --- auto-liquidation ------------------------------------------------------------------
    #
    # A plan is stored `scheduled`. At its time the scheduler sends one market order per
    # line, each under the key `{plan_id}-{line}`: a crash and restart in the middle
    # re-submits the same keys, which the gateway and the broker answer with the orders
    # already made, so no line is ever sent twice. A plan is judged (call still open,
    # condition still true) once, on live data; one found part-sent after a crash is
    # finished, not judged again. Its call's end cancels it: right after a poll or an
    # operator ends the call, or — should the process die in between — on the scheduler's
    # next look, which settles every scheduled plan whose call has ended.

    async def schedule_auto_liquidation(
        self, plan: AutoLiquidationPlan, actor: Actor, *, replaces: str | None = None
    ) -> StoredAutoLiquidation | ApprovalRequest:
        """Check and store a plan (and move the call's deadline if it says so), audited.

        Traders and supervisors, on an open call, on live figures, not while the kill
        switch is engaged; each line is checked against the positions as an order would
        be. A moved deadline needs a reason and is committed in the same transaction as
        the plan. A plan that moves the deadline or is worth more than the four-eyes
        threshold becomes a pending request instead (`replaces`: the request it edits).
        The same plan again (a double press) returns the stored one.
        """
        store = self._action_store()
        existing = await store.plans.get_auto_liquidation(plan.plan_id)
        if existing is not None and existing.plan() == plan:
            return existing
        problems = self._plan_problems(plan, actor)
        if existing is not None:
            problems.append(f"plan_id {plan.plan_id} already names another plan")
        switch = await self.approvals.kill_switch()
        if switch.engaged:
            problems.append(switch.refusal())
        if problems:
            await self._refuse(
                "auto_liquidation_refused",
                "auto-liquidation",
                actor,
                plan.call_id,
                problems,
                {"plan": plan_wire(plan)},
            )
        held = await self.approvals.hold_plan(plan, actor, replaces)
        if held is not None:
            return held
        return await self._store_plan(plan, actor)

    async def _store_plan(
        self,
        plan: AutoLiquidationPlan,
        actor: Actor,
        approval: Mapping[str, Any] | None = None,
    ) -> StoredAutoLiquidation:
        """Store a checked plan (and its deadline move) in one commit; `approval`: who
        approved it, for the audit entries."""
        store = self._action_store()
        async with self._calls_lock:
            details = {**self._action_details(actor, plan.account_id), **dict(approval or {})}
            also = LifecycleBatch()
            moved: MarginCall | None = None
            if plan.moved_deadline is not None:
                moved, entry = self.engine.deadline_move(
                    plan.call_id,
                    plan.moved_deadline,
                    plan.deadline_reason or "",
                    operator=actor.name,
                    details={
                        "role": actor.role.value,
                        "plan_id": plan.plan_id,
                        **dict(approval or {}),
                    },
                )
                also = LifecycleBatch(calls=[moved], audit=[entry])
            try:
                async with self._changed_elsewhere("auto-liquidation"):
                    stored, _ = await store.plans.schedule_auto_liquidation(
                        plan, at=self.engine.clock(), details=details, also=also
                    )
            except (KeyConflict, UnknownCall) as problem:
                raise ActionRefused("auto-liquidation", [str(problem)]) from None
            if moved is not None:
                self.engine.adopt(moved)
        if moved is not None:
            self._publish(self.engine.view)
        return stored

    def _plan_problems(self, plan: AutoLiquidationPlan, actor: Actor) -> list[str]:
        problems: list[str] = []
        if actor.role not in TRADING_ROLES:
            problems.append(f"{actor.name} ({actor.role}) may not schedule liquidations")
        if plan.operator != actor.name:
            problems.append(f"the plan names operator {plan.operator!r}, not {actor.name!r}")
        if not plan.plan_id.strip():
            problems.append("the plan has no plan_id")
        call = self.engine.open_calls.get(plan.account_id)
        if call is None or call.call_id != plan.call_id:
            problems.append(f"call {plan.call_id} of account {plan.account_id} is not open")
        if plan.condition not in tuple(AutoCondition):
            problems.append(f"unknown condition {plan.condition!r}")
        at = plan.execute_at
        if at.tzinfo is None or at.utcoffset() is None:
            problems.append("the execution time must carry its time zone")
        elif at <= self.engine.clock():
            problems.append(f"the execution time {at.isoformat()} is not in the future")
        if plan.moved_deadline is not None:
            problems.extend(self._deadline_problems(plan.moved_deadline, plan.deadline_reason))
        elif plan.deadline_reason:
            problems.append("a deadline reason is given but no new deadline")
        if not plan.lines:
            problems.append("the plan has no lines")
        symbols = [line.symbol for line in plan.lines]
        if len(set(symbols)) != len(symbols):
            problems.append("one line per symbol: the plan names a symbol twice")
        positions = self.engine.book.positions.get(plan.account_id, {})
        for index, line in enumerate(plan.lines):
            holding = positions.get(line.symbol)
            problems.extend(
                check_order(
                    self._plan_order(plan, index, actor.name),
                    position_quantity=holding.quantity if holding else None,
                    call_open=True,  # checked above, for the plan as a whole
                    data_fresh=self.data_fresh(plan.account_id),
                    actor=actor,
                    override_reason=None,
                )
            )
        return list(dict.fromkeys(problems))  # role and freshness repeat per line

    @staticmethod
    def _plan_order(plan: AutoLiquidationPlan, index: int, operator: str) -> OrderIntent:
        line = plan.lines[index]
        return OrderIntent(
            client_order_id=plan_line_key(plan.plan_id, index),
            account_id=plan.account_id,
            symbol=line.symbol,
            side=line.side,
            quantity=line.quantity,
            order_type="market",
            limit_price=None,
            reason=AUTO_LIQUIDATION_REASON,
            reference=plan.call_id,
            operator=operator,
        )

    async def cancel_auto_liquidation(
        self, plan_id: str, reason: str, actor: Actor
    ) -> StoredAutoLiquidation:
        """Withdraw a scheduled plan, with a reason (traders and supervisors), audited."""
        store = self._action_store()
        plan = await store.plans.get_auto_liquidation(plan_id)
        problems: list[str] = []
        if actor.role not in TRADING_ROLES:
            problems.append(f"{actor.name} ({actor.role}) may not cancel liquidations")
        if not reason.strip():
            problems.append("cancelling a plan needs a reason")
        if plan is None:
            problems.append(f"no auto-liquidation {plan_id}")
        elif plan.state is not AutoLiquidationState.SCHEDULED:
            problems.append(f"auto-liquidation {plan_id} is already {plan.state}")
        if problems:
            await self._refuse(
                "auto_liquidation_cancel_refused",
                "cancel",
                actor,
                plan.call_id if plan else None,
                problems,
                {"plan_id": plan_id, "reason": reason},
            )
        async with self._plans_lock:  # not while the scheduler is sending it
            return await store.plans.mark_auto_liquidation(
                plan_id,
                AutoLiquidationState.CANCELLED,
                detail=reason,
                operator=actor.name,
                at=self.engine.clock(),
                details={"role": actor.role.value},
            )

    async def run_auto_liquidations(self) -> None:
        """The scheduler: settle plans a crash stranded, then run due plans every interval."""
        while True:
            try:
                await self.run_due_auto_liquidations()
            except Exception:  # a database or gateway failure: log, look again next tick
                log.exception("auto-liquidation scheduler tick failed")
            await asyncio.sleep(self.auto_liquidation_interval)

    async def run_due_auto_liquidations(self) -> list[StoredAutoLiquidation]:
        """One look: settle plans whose call ended, run the due ones; the plans moved."""
        store = self._action_store()
        moved: list[StoredAutoLiquidation] = []
        async with self._plans_lock:
            for plan in await store.plans.stranded_auto_liquidations():
                moved.append(await self._settle_ended(plan))
            if await self.approvals.liquidations_held():
                return moved  # the kill switch: due plans wait, scheduled, for its release
            for plan in await store.plans.due_auto_liquidations(self.engine.clock()):
                outcome = await self._run_plan(plan)
                if outcome is not None:
                    moved.append(outcome)
        return moved

    async def _settle_plans_of_ended_calls(self, call_ids: list[str]) -> None:
        """Right after calls ended, settle their scheduled plans (the scheduler catches a miss)."""
        if not isinstance(self.store, ActionStore) or self._plans_lock.locked():
            return  # busy running plans: its next look settles these (stranded)
        try:
            async with self._plans_lock:
                for call_id in call_ids:
                    for plan in await self.store.plans.auto_liquidations_for(call_id):
                        if plan.state is AutoLiquidationState.SCHEDULED:
                            await self._settle_ended(plan)
        except Exception:  # never fail the poll for it: the scheduler settles them later
            log.exception("cancelling the plans of ended calls failed")

    async def _recorded_lines(self, plan: StoredAutoLiquidation) -> list[int]:
        store = self._action_store()
        return [
            index
            for index in range(len(plan.lines))
            if await store.orders.get(plan.client_order_id(index)) is not None
        ]

    async def _settle_ended(self, plan: StoredAutoLiquidation) -> StoredAutoLiquidation:
        """A plan whose call has ended: cancelled, or executed if a crash left it part-sent."""
        store = self._action_store()
        started = await self._recorded_lines(plan)
        now = self.engine.clock()
        self._waiting_plans.discard(plan.plan_id)
        if started:
            return await store.plans.mark_auto_liquidation(
                plan.plan_id,
                AutoLiquidationState.EXECUTED,
                detail=f"the call ended during execution; lines sent: {started}",
                operator=AUTO_LIQUIDATION_ACTOR.name,
                at=now,
                details={"orders": [plan.client_order_id(i) for i in started]},
            )
        return await store.plans.mark_auto_liquidation(
            plan.plan_id,
            AutoLiquidationState.CANCELLED,
            detail="call ended before execution",
            operator=AUTO_LIQUIDATION_ACTOR.name,
            at=now,
        )

    def _condition_problem(self, plan: StoredAutoLiquidation) -> str | None:
        """Why the plan's condition no longer holds (the call is known open); None if it does."""
        if plan.condition is AutoCondition.BELOW_FM:
            result = self.engine.results.get(plan.account_id)
            level = "unknown" if result is None else result.risk_level.value
            if result is None or result.risk_level is not RiskLevel.FORCE_CALL:
                return f"condition below_fm no longer holds: the account is {level}"
        return None

    async def _run_plan(self, plan: StoredAutoLiquidation) -> StoredAutoLiquidation | None:
        """Judge and send one due plan; None when it must wait for live data."""
        store = self._action_store()
        call = await store.calls.get_call(plan.call_id)
        if call is None or not call.is_open:
            return await self._settle_ended(plan)
        started = await self._recorded_lines(plan)
        unsent = len(started) < len(plan.lines)
        if unsent and not self.data_fresh(plan.account_id):
            # Never act on data the desk cannot vouch for; say so once, look again later.
            if plan.plan_id not in self._waiting_plans:
                self._waiting_plans.add(plan.plan_id)
                log.warning(
                    "auto-liquidation %s is due but %s's figures are not live: waiting",
                    plan.plan_id,
                    plan.account_id,
                )
            return None
        self._waiting_plans.discard(plan.plan_id)
        now = self.engine.clock()
        problem = None if started else self._condition_problem(plan)
        if problem is not None:
            return await store.plans.mark_auto_liquidation(
                plan.plan_id,
                AutoLiquidationState.CANCELLED,
                detail=problem,
                operator=AUTO_LIQUIDATION_ACTOR.name,
                at=now,
            )
        lines = [await self._send_line(plan, index) for index in range(len(plan.lines))]
        if any("refused" in line for line in lines) and await self.approvals.liquidations_held():
            return None  # the kill switch came on meanwhile: the rest waits for its release
        sent = [line for line in lines if line.get("send_state") not in (None, "failed")]
        if sent:
            state = AutoLiquidationState.EXECUTED
            detail = f"{len(sent)} of {len(lines)} orders sent"
        else:
            state = AutoLiquidationState.CANCELLED
            detail = "no order could be sent"
        return await store.plans.mark_auto_liquidation(
            plan.plan_id,
            state,
            detail=detail,
            operator=AUTO_LIQUIDATION_ACTOR.name,
            at=self.engine.clock(),
            details={"lines": lines},
        )

    async def _send_line(self, plan: StoredAutoLiquidation, index: int) -> dict[str, Any]:
        """Submit one line's order under its fixed key; what became of it, JSON-ready."""
        intent = self._plan_order(plan.plan(), index, AUTO_LIQUIDATION_ACTOR.name)
        outcome: dict[str, Any] = {"line": index, "client_order_id": intent.client_order_id}
        try:
            # Judged, with four-eyes if it needed it, when the plan was scheduled.
            sent = await self._place_order(intent, AUTO_LIQUIDATION_ACTOR)
        except ActionRefused as refused:
            outcome["refused"] = refused.problems
            return outcome
        except GatewayError as problem:  # credentials: the gateway marked it failed if unsent
            order = await self._action_store().orders.get(intent.client_order_id)
            outcome["send_state"] = None if order is None else order.send_state.value
            outcome["error"] = str(problem)
            return outcome
        outcome["send_state"] = sent.send_state.value
        outcome["status"] = sent.order.status
        if sent.error is not None:
            outcome["error"] = sent.error  # in doubt: recover() settles it with the same key
        return outcome

    # --- daily jobs ------------------------------------------------------------------------
    #
    # Every open call, once per day of its market's wall clock, from the day after its
    # trigger: a DAILY snapshot at or after `daily.snapshot_time`, and a reminder message
    # at or after `daily.reminder_time` until the deadline (never to an exception). Both
    # only while the feed is LIVE: a job that finds the feed stale waits, says so in the
    # log, and runs as soon as the feed is live again that day. A `daily_jobs` marker per
    # (job, call, day) — committed with the snapshots, or after the broker acknowledged
    # the reminder — and the reminder's fixed message_id keep a restart, or a second
    # engine on the same database, from doing either twice.

    async def run_daily(self) -> None:
        """The daily jobs' loop: one pass every `daily_interval` seconds, the first as soon
        as a poll applied live data (a standby just taken over sends what is due at once)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.daily_interval):
                await self.poller.succeeded.wait()
        while True:
            try:
                await self.run_daily_jobs()
            except Exception:  # a database or gateway failure: log, look again next tick
                log.exception("daily jobs tick failed")
            await asyncio.sleep(self.daily_interval)

    async def run_daily_jobs(self) -> tuple[list[str], list[str]]:
        """One pass: the call ids given a daily snapshot, and those this pass sent a reminder."""
        if not isinstance(self.store, DailyStore):
            return [], []
        async with self._daily_lock:
            snapshots = await self._daily_snapshots(self.store)
            reminders = await self._daily_reminders(self.store)
        return snapshots, reminders

    def _feed_live(self) -> bool:
        return self.health.status(self.monotonic()) is FeedStatus.LIVE

    def _wait_for_live(self, job: str, keys: list[DailyKey]) -> None:
        """Say once per call and day that a due job waits for the feed to be live."""
        new = [key for key in keys if key not in self._daily_waiting]
        if new:
            self._daily_waiting.update(new)
            log.warning(
                "%d daily %s(s) due but the feed is not live: waiting for live data (calls %s)",
                len(new),
                job,
                ", ".join(call_id for _, call_id, _ in new[:10]) + (" …" if len(new) > 10 else ""),
            )

    def _late(self, job: str, keys: Iterable[DailyKey]) -> None:
        late = [key for key in keys if key in self._daily_waiting]
        if late:
            self._daily_waiting.difference_update(late)
            log.warning(
                "%d daily %s(s) done late, once the feed was live again (calls %s)",
                len(late),
                job,
                ", ".join(call_id for _, call_id, _ in late[:10])
                + (" …" if len(late) > 10 else ""),
            )

    def _due_today(self, at: clock_time, job: str) -> list[tuple[MarginCall, DailyKey]]:
        """Open calls past `at` in their market today, not opened today, not done here yet."""
        now = self.engine.clock()
        due: list[tuple[MarginCall, DailyKey]] = []
        for call in self.engine.open_calls.values():
            local = market_now(call, now)
            key = (job, call.call_id, local.date())
            if local.time() < at or key in self._daily_settled:
                continue
            if daily_snapshot_due(call, None, local.date(), MARKET_TZ[call.market]):
                due.append((call, key))
        return due

    async def _daily_snapshots(self, store: DailyStore) -> list[str]:
        candidates = self._due_today(self.engine.settings.daily.snapshot_time, DAILY_SNAPSHOT_JOB)
        if not candidates:
            return []
        last = await store.daily.last_daily(DAILY_SNAPSHOT_JOB)
        due: list[tuple[MarginCall, DailyKey]] = []
        for call, key in candidates:
            if daily_snapshot_due(call, last.get(call.call_id), key[2], MARKET_TZ[call.market]):
                due.append((call, key))
            else:
                self._daily_settled.add(key)
        if not due:
            return []
        if not self._feed_live():
            self._wait_for_live(DAILY_SNAPSHOT_JOB, [key for _, key in due])
            return []
        async with self._calls_lock:
            engine = self.engine
            now = engine.clock()
            # Only calls still open after any poll since the candidates were gathered.
            open_ids = {c.call_id for c in engine.open_calls.values()}
            due = [(call, key) for call, key in due if call.call_id in open_ids]
            while due:
                batch = LifecycleBatch(
                    snapshots=[
                        SnapshotRecord(
                            call_id=call.call_id,
                            account_id=call.account_id,
                            scenario=SnapshotScenario.DAILY,
                            taken_at=now,
                            feed_as_of=engine.book.as_of,
                            feed_cursor=engine.book.cursor,
                            payload=engine.account_state(call.account_id),
                        )
                        for call, _ in due
                    ]
                )
                try:
                    await store.calls.commit(batch, daily=[key for _, key in due])
                except DailyAlreadyDone as done:  # another engine took some: not again
                    taken = set(done.keys)
                    self._daily_settled.update(taken)
                    self._daily_waiting.difference_update(taken)
                    due = [(call, key) for call, key in due if key not in taken]
                    continue
                break
        keys = [key for _, key in due]
        self._daily_settled.update(keys)
        self._late(DAILY_SNAPSHOT_JOB, keys)
        if due:
            log.info("took %d daily snapshots", len(due))
        return [call.call_id for call, _ in due]

    async def _daily_reminders(self, store: DailyStore) -> list[str]:
        daily = self.engine.settings.daily
        if not daily.reminders or self.gateway is None:
            return []
        sent: list[str] = []
        waiting: list[DailyKey] = []
        for call, key in self._due_today(daily.reminder_time, DAILY_REMINDER_JOB):
            if await store.daily.daily_done(*key):
                self._daily_settled.add(key)
                continue
            # The stored call: another terminal may have flagged it, moved or ended it.
            stored = await store.calls.get_call(call.call_id)
            now = self.engine.clock()
            if stored is None or not stored.is_open or stored.exception:
                continue  # looked at again next pass: a flag may be lifted today
            if stored.past_deadline(now):
                self._daily_settled.add(key)
                continue
            if not self.data_fresh(call.account_id):
                waiting.append(key)
                continue
            if await self._send_reminder(store, replace(call, deadline=stored.deadline), key):
                sent.append(call.call_id)
        if waiting:
            self._wait_for_live(DAILY_REMINDER_JOB, waiting)
        return sent

    async def _send_reminder(self, store: DailyStore, call: MarginCall, key: DailyKey) -> bool:
        """Send (or re-send, same key) one call's reminder for the day.

        True when this pass delivered it (acknowledged on a post of ours); False when it
        failed, is in doubt, or was already delivered (another engine, before a crash).
        """
        message_id = reminder_message_id(call.call_id, key[2])
        existing = await store.messages.get(message_id)
        intent = (
            existing.intent()  # recorded before a crash: the same message, whatever changed
            if existing is not None
            else MessageIntent(
                message_id=message_id,
                account_id=call.account_id,
                channel=self.engine.settings.daily.reminder_channel,
                subject="Margin call reminder",
                body=reminder_body(call),
                reference=call.call_id,
                operator=DAILY_REMINDER_ACTOR.name,
            )
        )
        try:
            outcome = await self.send_message(intent, DAILY_REMINDER_ACTOR)
        except (ActionRefused, GatewayError) as problem:
            log.error("daily reminder %s for %s failed: %s", message_id, call.call_id, problem)
            return False
        if outcome.send_state is SendState.FAILED:
            # The broker refused it: no retry today (the messages table says why).
            log.error("daily reminder %s refused by the broker", message_id)
        elif outcome.send_state is not SendState.ACKNOWLEDGED:
            log.warning("daily reminder %s in doubt: %s", message_id, outcome.error)
            return False  # re-sent with the same key on the next pass
        # Another engine may have marked it: the gateway's key kept it to one message.
        with contextlib.suppress(DailyAlreadyDone):
            await store.daily.mark_daily([key])
        self._daily_settled.add(key)
        self._late(DAILY_REMINDER_JOB, [key])
        return outcome.send_state is SendState.ACKNOWLEDGED and outcome.posts > 0
