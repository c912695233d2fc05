"""The desk's open calls, one per account, and what a poll needs to find the moved ones.

Beside the calls themselves, per row of the margin columns: the open call's risk level
code and amount in minor units (-1: none) and whether it is a force call, so a poll finds
the calls that changed without visiting the rest. Also here: the merge of calls as
another process stored them (`merge`: a terminal takes the engine's lifecycle, the engine
takes an operator's close), the calls re-priced but not yet written, and the calls with
working or filled desk orders.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from risk_tui.core.columnar import LEVELS
from risk_tui.core.lifecycle import CallState, MarginCall, Transition
from risk_tui.core.margin import MarginVerdict
from risk_tui.core.money import minor_units
from risk_tui.desk.book import BookState


@dataclass(frozen=True, slots=True)
class Merged:
    """What a merge of stored calls changed: accounts whose call ended here, and
    accounts whose call is new here (their rows' figures are made afresh)."""

    ended: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)


class OpenCalls:
    """The open calls by account, in trigger order, and their per-row marks."""

    def __init__(self, state: BookState) -> None:
        self._state = state
        self.calls: dict[str, MarginCall] = {}
        self.level = np.zeros(0, dtype=np.int8)
        self.minor = np.zeros(0, dtype=np.int64)
        self.force = np.zeros(0, dtype=np.bool_)  # the open call is a force call
        # Open calls whose amount or level moved and is not written yet (call → account),
        # oldest first: each poll writes up to REPRICED_PER_POLL of them (all of them on
        # a calm day; on a crash day, when 13,000 move every poll, each call's row is
        # behind by a few polls at most). Openings, escalations, ends and operator
        # actions are written when they happen, with the whole call.
        self.unsaved: dict[str, str] = {}
        # Accounts the next poll decides whether or not their figures moved: a call
        # another process changed under this engine's write, or ended elsewhere.
        self.recheck: set[str] = set()
        # Calls on which a desk liquidation order filled: cured, they end "liquidated".
        self.filled: set[str] = set()
        # Calls with desk orders still working (the desk's trading service keeps it): a
        # poll may bring an order's fill, as positions and cash, before the order's own
        # status says so. Such a call is not ended "met" on that poll: it asks for the
        # orders' status (`fills_wanted`) and is decided again on the next poll, once.
        self.working: set[str] = set()
        self.fills_wanted = False
        self.end_deferred: set[str] = set()
        # Calls with an auto-liquidation scheduled (their rows say so), as stored.
        self.planned: frozenset[str] = frozenset()

    def reset_rows(self) -> None:
        """New columns (a snapshot): every open call marked on its new row."""
        count = len(self._state.columns.account_ids)
        self.level = np.full(count, -1, dtype=np.int8)
        self.minor = np.zeros(count, dtype=np.int64)
        self.force = np.zeros(count, dtype=np.bool_)
        for call in self.calls.values():
            self.note(call)

    def note(self, call: MarginCall) -> None:
        """Mark the call's row with its level and amount (or as having none)."""
        row = self._state.columns.row_of(call.account_id)
        if row is None:
            return
        self.force[row] = call.state is CallState.FORCE_CALL
        if call.is_open:
            self.level[row] = LEVELS.index(call.risk_level)
            minor = call.call_amount.scaleb(minor_units(call.currency))
            self.minor[row] = min(int(minor), 2**63 - 1)
        else:
            self.level[row] = -1

    def by_id(self, call_id: str) -> MarginCall | None:
        """The open call with this id; None when it has ended or this desk never had it."""
        return next((c for c in self.calls.values() if c.call_id == call_id), None)

    def put(self, call: MarginCall) -> None:
        """A call as it is now: kept while open, dropped (if it is the one held) when ended."""
        if call.is_open:
            self.calls[call.account_id] = call
            self.note(call)
            return
        current = self.calls.get(call.account_id)
        if current is not None and current.call_id == call.call_id:
            del self.calls[call.account_id]
            self.note(call)

    def in_trigger_order(self) -> Iterator[tuple[str, MarginCall]]:
        """The open calls, oldest first. Calls open in time order and keep their place
        in `calls` when re-priced, so it is in that order already; it is put back in
        order (once) when it is not, e.g. as read from storage."""
        items = list(self.calls.items())
        if any(
            later[1].triggered_at < earlier[1].triggered_at
            for earlier, later in itertools.pairwise(items)
        ):
            items.sort(key=lambda item: item[1].triggered_at)
            self.calls = dict(items)
        return iter(items)

    def take_unsaved(self, latest: Iterable[MarginCall], *, limit: int | None) -> list[MarginCall]:
        """The calls re-priced longest ago and not written since (at most `limit`), as
        they are now (`latest` first), noted as written (the caller commits them)."""
        newest = {call.call_id: call for call in latest}
        calls = []
        for call_id, account_id in list(itertools.islice(self.unsaved.items(), limit)):
            del self.unsaved[call_id]
            call = newest.get(call_id) or self.calls.get(account_id)
            if call is not None and call.call_id == call_id and call.is_open:
                calls.append(call)
        return calls

    def absorb(self, transitions: Iterable[Transition]) -> list[str]:
        """The poll's committed transitions taken in; the accounts whose call ended."""
        ended = []
        for transition in transitions:
            call = transition.call
            if call.is_open:
                self.calls[call.account_id] = call
            else:
                self.calls.pop(call.account_id, None)
                ended.append(call.account_id)
            self.note(call)
        return ended

    def merge(
        self, stored: Iterable[MarginCall], verdict: Callable[[str], MarginVerdict]
    ) -> Merged:
        """Merge calls as another process stored them. A call's lifecycle as stored,
        unless this desk holds a later version (its own write, not heard back yet);
        remark, flag and claim always as stored; amount and level as this desk computes
        them from the feed (stored ones lag by a few polls on a crash day)."""
        merged = Merged()
        accounts = self._state.book.accounts
        for call in sorted(stored, key=lambda c: c.is_open):  # ends first
            account_id = call.account_id
            current = self.calls.get(account_id)
            same = current is not None and current.call_id == call.call_id
            if not call.is_open:
                if same:
                    del self.calls[account_id]
                    self.unsaved.pop(call.call_id, None)
                    self.note(call)
                    self.recheck.add(account_id)  # still in call: a new call opens
                    merged.ended.append(account_id)
                continue
            if current is not None and same and current.version > call.version:
                taken = replace(
                    current,
                    remark=call.remark,
                    exception=call.exception,
                    claimed_by=call.claimed_by,
                    claimed_at=call.claimed_at,
                )
            elif current is not None and not same and current.triggered_at > call.triggered_at:
                continue  # news of an older call than the one open here
            else:
                taken = call
                if account_id in accounts:
                    decided = verdict(account_id)
                    if decided.incomplete is None and decided.call_amount > 0:
                        taken = replace(
                            call, call_amount=decided.call_amount, risk_level=decided.risk_level
                        )
                if not same:
                    merged.new.append(account_id)
            self.calls[account_id] = taken
            self.note(taken)
        return merged
