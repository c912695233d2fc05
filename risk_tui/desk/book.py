"""The desk's book and its margin columns: what each payload moves, what is partial, and
each account's verdict (the columns') and full result (the reference's, on demand).

The first phase of a poll (`recompute`): the payload's records go into the Decimal book
(the reference) and the columns, which recompute only the accounts the payload moved.
Records the feed sent but this desk refused leave the accounts they touch partial until
a valid record replaces them; such accounts, and those the columns do not hold, are
decided by the reference.

The reference's whole result (`core.margin.compute_account`) is needed only for a
snapshot, a dialog, a row of an incomplete account or the data-fresh check of an order,
so `MarginResults` makes it on demand and keeps it until its account next moves.
"""

from __future__ import annotations

import asyncio
import gc
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np

from risk_tui.core.book import BookChanges, apply_records, book_from_snapshot, exposed_to
from risk_tui.core.columnar import INCOMPLETE, LEVELS, ColumnarBook
from risk_tui.core.cure import CureProposal, PostTrade, TradeLine, post_trade, propose_cure
from risk_tui.core.deposits import ReceivedMovement
from risk_tui.core.lifecycle import MarginCall, SnapshotRecord, SnapshotScenario
from risk_tui.core.margin import (
    AccountMargin,
    CallPolicy,
    MarginFigures,
    MarginVerdict,
    MissingData,
    RiskLevel,
    compute_account,
    is_monitored,
)
from risk_tui.core.model import AccountKind, Book, Market
from risk_tui.core.snapshot import snapshot_payload
from risk_tui.feed.models import Rejection

KEEP_RESULTS = 4_096  # full results kept, most recently asked first


class MarginResults(Mapping[str, AccountMargin]):
    """Every monitored account's full result (`compute_account`, the reference), made
    when asked and kept until the account next moves."""

    def __init__(self, state: BookState, *, keep: int = KEEP_RESULTS) -> None:
        self._state = state
        # The most recently asked, at most `keep` (a crash poll's 20,000 snapshots would
        # otherwise hold 20,000 full results, hundreds of MB, that nobody reads again).
        self._kept: OrderedDict[str, tuple[int, AccountMargin]] = OrderedDict()
        self._keep = keep

    def clear(self) -> None:
        self._kept.clear()

    def __getitem__(self, account_id: str) -> AccountMargin:
        state = self._state
        account = state.book.accounts.get(account_id)
        if account is None or not is_monitored(account):
            raise KeyError(account_id)
        moved = state.moved_at(account_id)
        kept = self._kept.get(account_id)
        if kept is not None and kept[0] == moved:
            self._kept.move_to_end(account_id)
            return kept[1]
        result = compute_account(state.book, account_id, state.policies[account.market])
        reason = state.partial.get(account_id)
        if reason is not None and result.incomplete is None:
            result = as_incomplete(result, reason)
        self._kept[account_id] = (moved, result)
        self._kept.move_to_end(account_id)
        if len(self._kept) > self._keep:
            self._kept.popitem(last=False)
        return result

    def __iter__(self) -> Iterator[str]:
        return (a.account_id for a in self._state.book.accounts.values() if is_monitored(a))

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass(frozen=True, slots=True)
class Verdict:
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


def as_incomplete(result: AccountMargin, reason: str) -> AccountMargin:
    return replace(result, risk_level=RiskLevel.INCOMPLETE, incomplete=reason)


class BookState:
    """The book, its columns, which poll last moved each account, and what is partial."""

    def __init__(self, policies: dict[Market, CallPolicy]) -> None:
        self.policies = policies
        self.book = Book()
        self.columns = ColumnarBook.from_book(self.book, policies)
        self.results = MarginResults(self)
        # Records the feed sent but we refused, by (list, key): the accounts they touch
        # are partial until a valid record replaces them.
        self.tainted: dict[tuple[str, str], str] = {}
        self.partial: dict[str, str] = {}  # account → why its figures are partial
        self.incomplete: dict[str, str] = {}  # monitored accounts without figures: why
        # Accounts whose own records (account, cash, positions) changed since the columns
        # were built, or that the columns do not hold: decided by the reference.
        self._own_records: set[str] = set()
        # Which poll last moved each account (columns' rows; others by id): `results`
        # keeps a full result until its account moves again.
        self.polls = 0
        self._moved = np.zeros(0, dtype=np.int64)
        self._moved_outside: dict[str, int] = {}

    def moved_at(self, account_id: str) -> int:
        row = self.columns.row_of(account_id)
        if row is None:
            return self._moved_outside.get(account_id, -1)
        return int(self._moved[row])

    def note_rejections(
        self, changes: BookChanges, *, full: bool, rejected: Iterable[Rejection]
    ) -> None:
        """Forget refusals the payload replaced with valid records; remember new ones."""
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

    async def recompute(self, changes: BookChanges, *, full: bool) -> tuple[np.ndarray, list[str]]:
        """Apply the payload to the book and the columns: the moved rows, and moved
        accounts the columns do not hold. A snapshot's book and columns are built in a
        worker thread (seconds at crash-day size), so the screen keeps answering."""
        self.polls += 1
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
            self._moved[:] = self.polls
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
        self._moved[done.rows] = self.polls
        for account_id in done.outside:
            self._moved_outside[account_id] = self.polls
        return done.rows, list(done.outside)

    def _rebuild(self, book: Book, columns: ColumnarBook) -> None:
        """A snapshot: new book, new columns, every account decided afresh."""
        self.book = book
        self.columns = columns
        self.results.clear()
        self._own_records.clear()
        self._moved_outside.clear()
        self._moved = np.zeros(len(columns.account_ids), dtype=np.int64)
        self.incomplete.clear()

    def refresh_partial(self) -> set[str]:
        """Which accounts are partial now; returns those whose partial mark came or went
        (they move too: their results change)."""
        previous = self.partial
        self.partial = self._partial_accounts()
        flipped = set(self.partial).symmetric_difference(previous)
        for account_id in flipped:
            row = self.columns.row_of(account_id)
            if row is None:
                self._moved_outside[account_id] = self.polls
            else:
                self._moved[row] = self.polls
        return flipped

    def _partial_accounts(self) -> dict[str, str]:
        partial: dict[str, str] = {}
        for (kind, key), reason in self.tainted.items():
            if kind in ("accounts", "cash", "positions"):
                affected = {key.split("/", 1)[0]}
            elif kind in ("quotes", "instruments"):
                affected = self.book.holders_of([key.split("/", 1)[0]])
            elif kind == "fx":
                affected = exposed_to(self.book, set(key.split("/")))
            else:  # borrow; a refused cash movement leaves the figures whole (the
                continue  # balance includes it) but stops an end by deposit (`doubted`)
            for account_id in affected:
                partial.setdefault(account_id, reason)
        return partial

    def doubted_movements(self) -> set[str]:
        """Accounts with a cash movement the feed sent but this desk refused: their net
        deposits are not known (it may have been a withdrawal)."""
        return {
            key.split("/", 1)[0] for kind, key in self.tainted if kind == "cash_movements"
        }

    def note_incomplete(self, rows: np.ndarray, others: list[str]) -> None:
        """Keep the list of monitored accounts without figures, and why."""
        for account_id in list(self.incomplete):
            if account_id not in self.book.accounts or self.moved_at(account_id) == self.polls:
                del self.incomplete[account_id]
        ids = self.columns.account_ids
        suspects = [ids[row] for row in rows[self.columns.level_codes[rows] == INCOMPLETE].tolist()]
        for account_id in [*suspects, *others, *self.partial]:
            result = self.results.get(account_id)  # monitored accounts only
            if result is not None and result.incomplete is not None:
                self.incomplete[account_id] = result.incomplete

    def verdict(self, account_id: str) -> MarginVerdict:
        """The columns' decision, or the reference's for what the columns do not hold
        and for partial accounts."""
        row = self.columns.row_of(account_id)
        if row is None or account_id in self.partial:
            return self.results[account_id]
        account = self.book.accounts[account_id]
        level = LEVELS[int(self.columns.level_codes[row])]
        if level is RiskLevel.INCOMPLETE:
            return self.results[account_id]
        return Verdict(
            account_id=account_id,
            kind=account.kind,
            currency=account.base_currency,
            risk_level=level,
            call_amount=self.columns.call_amount(account_id),
            incomplete=None,
        )

    def reference_figures(self, account_id: str) -> MarginFigures | None:
        result = self.results.get(account_id)
        return None if result is None else MarginFigures.of(result)

    def complete_result(self, account_id: str) -> AccountMargin | None:
        """The account's full figures now, or None when unknown or incomplete."""
        result = self.results.get(account_id)
        return result if result is not None and result.incomplete is None else None

    def after_trades(self, account_id: str, lines: Sequence[TradeLine]) -> PostTrade | None:
        """The account after `lines`, by the reference on the book now (`core.cure`);
        None when unknown, not monitored or incomplete."""
        if self.complete_result(account_id) is None:
            return None
        policy = self.policies[self.book.accounts[account_id].market]
        return post_trade(self.book, account_id, policy, lines)

    def cure(
        self, account_id: str, *, open_call: bool, pending: Sequence[TradeLine] = ()
    ) -> CureProposal | None:
        """The account's least-value cure (`core.cure.propose_cure`); None when unknown,
        not monitored or incomplete."""
        if self.complete_result(account_id) is None:
            return None
        policy = self.policies[self.book.accounts[account_id].market]
        try:
            return propose_cure(self.book, account_id, policy, open_call=open_call, pending=pending)
        except MissingData:  # a working order's symbol lost its price meanwhile
            return None

    def account_state(
        self,
        account_id: str,
        call: MarginCall | None,
        movements: Sequence[ReceivedMovement] = (),
    ) -> dict[str, Any]:
        """The account as the desk sees it now: recorded with every action taken on it
        (with the cash movements its call counts)."""
        result = self.results.get(account_id)
        if result is None:
            return {"account_id": account_id, "unavailable": "no figures for this account"}
        return snapshot_payload(
            result,
            call,
            feed_as_of=self.book.as_of,
            feed_cursor=self.book.cursor,
            movements=movements,
        )

    def snapshot(
        self,
        call: MarginCall,
        scenario: SnapshotScenario,
        at: datetime,
        payload: dict[str, Any],
    ) -> SnapshotRecord:
        """A snapshot of `call` taken `at`, on the feed data the book holds now."""
        return SnapshotRecord(
            call_id=call.call_id,
            account_id=call.account_id,
            scenario=scenario,
            taken_at=at,
            feed_as_of=self.book.as_of,
            feed_cursor=self.book.cursor,
            payload=payload,
        )

    def holding(self, account_id: str, symbol: str) -> Decimal | None:
        """The quantity the account holds of the symbol (None: no position)."""
        position = self.book.positions.get(account_id, {}).get(symbol)
        return position.quantity if position else None


def _valid_keys(changes: BookChanges) -> list[tuple[str, list[str]]]:
    return [
        ("instruments", [i.symbol for i in changes.instruments]),
        ("quotes", [q.symbol for q in changes.quotes]),
        ("fx", [f"{f.from_ccy}/{f.to_ccy}" for f in changes.fx]),
        ("accounts", [a.account_id for a in changes.accounts]),
        ("cash", [f"{c.account_id}/{c.currency}" for c in changes.cash]),
        ("positions", [f"{p.account_id}/{p.symbol}" for p in changes.positions]),
        ("borrow", [b.symbol for b in changes.borrow]),
        ("cash_movements", [f"{m.account_id}/{m.movement_id}" for m in changes.cash_movements]),
    ]
