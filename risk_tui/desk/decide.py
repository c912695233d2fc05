"""The decide phase of a poll: which moved accounts the lifecycle must see, and what it does.

Two deciders, chosen when the desk is composed for its role:

- `Lifecycle` (the embedded desk and the engine of a shared one) runs `core.lifecycle`
  on every account in call or with an open call that moved, or whose call's net deposits
  reach its amount at trigger (`desk.deposits`): opens, re-prices, escalates and ends
  calls, with their snapshots, into one batch to commit.
- `Follower` (a terminal of a shared desk) only re-prices the open calls in memory, when
  their figures are complete and still due; opening, escalating and ending are the
  engine's, and come back as stored (`Engine.take_stored`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import numpy as np

from risk_tui.core.columnar import FORCE_CALL, INCOMPLETE, LEVELS, MARGIN_CALL
from risk_tui.core.lifecycle import (
    EndReason,
    LifecycleBatch,
    Transition,
    evaluate,
    repriced,
)
from risk_tui.core.margin import MarginFigures, is_monitored
from risk_tui.core.model import Market
from risk_tui.core.snapshot import snapshot_payload
from risk_tui.desk.book import BookState
from risk_tui.desk.deposits import Deposits
from risk_tui.desk.open_calls import OpenCalls

_IN_CALL_CODES = (MARGIN_CALL, FORCE_CALL)
REPRICED_PER_POLL = 2_000  # re-priced calls' amounts written per poll, oldest first
YIELD_EVERY = 200  # lifecycle verdicts between yields to the event loop (≈ 10-20 ms)

DeadlineFor = Callable[[Market, datetime], datetime]


@dataclass
class Decision:
    """What a poll decided: the transitions (the first `repriced` of them re-pricings whose
    rows are already marked), the batch to commit, and the figures the snapshots recorded
    (the rows show the same)."""

    transitions: list[Transition]
    repriced: int
    batch: LifecycleBatch = field(default_factory=LifecycleBatch)
    recorded: dict[str, MarginFigures] = field(default_factory=dict)


class Decider(Protocol):
    async def decide(
        self, fast: np.ndarray, slow: list[str], *, now: datetime, fresh: bool
    ) -> Decision: ...


def candidates(
    state: BookState,
    calls: OpenCalls,
    rows: np.ndarray,
    others: list[str],
    flipped: set[str],
    *,
    fresh: bool,
    whole: set[str] | frozenset[str] = frozenset(),
) -> tuple[np.ndarray, list[str]]:
    """Moved accounts the lifecycle must see: in call, or with an open call whose
    level or amount changed, or whose partial mark came or went, and the `whole`
    accounts (moved or not: a call met by deposit). Returns the rows of open calls
    that are only re-priced (amount still due, no escalation, not `whole`, decided by
    the columns: `lifecycle.repriced`), and every other account (sorted) for the
    whole of `evaluate`."""
    columns = state.columns
    codes = columns.level_codes[rows]
    minor = columns.call_minor[rows]
    open_level = calls.level[rows]
    has_open = open_level >= 0
    changed = has_open & ((codes != open_level) | (minor != calls.minor[rows]))
    opening = ~has_open & np.isin(codes, _IN_CALL_CODES)
    fast = (
        changed
        & (codes != INCOMPLETE)
        & (minor > 0)
        & ~((codes == FORCE_CALL) & ~calls.force[rows])
        & ~columns.by_reference[rows]
    )
    ids = columns.account_ids
    if not fresh:
        fast[:] = False  # nothing moves on data that are not live
    else:
        # A partial account's verdict is the reference's; a call met by deposit ends
        # in `evaluate`, never re-priced past it.
        apart = state.partial.keys() | whole if whole else state.partial.keys()
        if apart:
            fast[fast] = [ids[row] not in apart for row in rows[fast].tolist()]
    chosen = {ids[row] for row in rows[(changed | opening) & ~fast].tolist()}
    chosen.update(others)
    chosen.update(flipped)
    chosen.update(whole)
    if fresh and calls.recheck:
        chosen.update(calls.recheck)
        calls.recheck.clear()
    slow = sorted(
        a
        for a in chosen
        if (account := state.book.accounts.get(a)) is not None and is_monitored(account)
    )
    return rows[fast], slow


def reprice(state: BookState, calls: OpenCalls, rows: np.ndarray) -> list[Transition]:
    """The open calls of these rows, re-priced from the columns (see `candidates`)."""
    if rows.size == 0:
        return []
    columns = state.columns
    ids = columns.account_ids
    amounts = columns.call_amounts(rows)
    codes = columns.level_codes[rows].tolist()
    transitions = [
        repriced(calls.calls[ids[row]], LEVELS[code], amount)
        for row, code, amount in zip(rows.tolist(), codes, amounts, strict=True)
    ]
    calls.level[rows] = columns.level_codes[rows]
    calls.minor[rows] = columns.call_minor[rows]
    return transitions


class Lifecycle:
    """The desk's lifecycle: every moved account in call, or with an open call, decided."""

    def __init__(
        self,
        state: BookState,
        calls: OpenCalls,
        deadline_for: DeadlineFor,
        deposits: Deposits,
    ) -> None:
        self._state = state
        self._calls = calls
        self._deadline_for = deadline_for
        self._deposits = deposits

    async def decide(
        self, fast: np.ndarray, slow: list[str], *, now: datetime, fresh: bool
    ) -> Decision:
        state, calls = self._state, self._calls
        transitions = reprice(state, calls, fast)
        for moved in transitions:
            # Only its amount or level moved: written with the next flush.
            calls.unsaved[moved.call.call_id] = moved.call.account_id
        decision = Decision(transitions, repriced=len(transitions))
        batch = decision.batch
        book = state.book
        deposits = self._deposits
        counting = bool(deposits.counted)
        # A movement the feed sent but this desk refused: the net is not known.
        doubted = state.doubted_movements() if counting and state.tainted else set()
        for done, account_id in enumerate(slow, 1):
            if done % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # a crash poll is seconds of work: let keys through
            account = book.accounts[account_id]
            current = calls.calls.get(account_id)
            net = (
                deposits.net(current)
                if counting and current is not None and account_id not in doubted
                else None
            )
            transition = evaluate(
                current,
                state.verdict(account_id),
                fresh=fresh,
                now=now,
                market=account.market,
                client_name=account.client_name,
                deadline_for=self._deadline_for,
                liquidated_since_trigger=current is not None and current.call_id in calls.filled,
                deposits=net,
            )
            if transition is None:
                continue
            call = transition.call
            if (
                call.end_reason is EndReason.MET
                and call.call_id in calls.working
                and call.call_id not in calls.end_deferred
            ):
                calls.end_deferred.add(call.call_id)
                calls.recheck.add(account_id)
                calls.fills_wanted = True
                continue
            transitions.append(transition)
            if not transition.snapshots and call.is_open:
                # Only its amount or level moved: written with the next flush.
                calls.unsaved[call.call_id] = account_id
                continue
            batch.calls.append(call)
            calls.unsaved.pop(call.call_id, None)
            if not transition.snapshots:
                continue
            # What the snapshot records is the reference's own result, and the row
            # shows the same figures.
            result = state.results[account_id]
            payload = snapshot_payload(
                result,
                call,
                feed_as_of=book.as_of,
                feed_cursor=book.cursor,
                movements=deposits.movements_of(call) if counting else (),
            )
            decision.recorded[account_id] = MarginFigures.of(result)
            batch.snapshots.extend(
                state.snapshot(call, scenario, now, payload) for scenario in transition.snapshots
            )
        if calls.unsaved:
            batch.repriced.extend(
                calls.take_unsaved((t.call for t in transitions), limit=REPRICED_PER_POLL)
            )
        return decision


class Follower:
    """A terminal's lifecycle: the open calls re-priced in memory only, when their
    figures are complete and still due."""

    def __init__(self, state: BookState, calls: OpenCalls) -> None:
        self._state = state
        self._calls = calls

    async def decide(
        self, fast: np.ndarray, slow: list[str], *, now: datetime, fresh: bool
    ) -> Decision:
        state, calls = self._state, self._calls
        transitions = reprice(state, calls, fast)
        for account_id in slow:
            call = calls.calls.get(account_id)
            if call is None:
                continue
            verdict = state.verdict(account_id)
            if verdict.incomplete is not None or verdict.call_amount <= 0:
                continue
            if verdict.call_amount != call.call_amount or verdict.risk_level is not call.risk_level:
                transitions.append(repriced(call, verdict.risk_level, verdict.call_amount))
                calls.note(transitions[-1].call)
        return Decision(transitions, repriced=len(transitions))
