"""Met by deposit in the engine: each cash movement taken once, toward the call it counts for.

SPEC.md (settled): a call counts the `cash_movements` first received in a poll after the
poll that opened it, once each by `movement_id` (a snapshot after a 410 repeats them),
whatever their `ts`, each in the account's base currency at the fx of the poll that
brought it (`core.deposits`). Here, per poll, before the lifecycle decides:

- a movement already taken — by this process, or stored by an earlier run (asked of
  storage once, for the ids this process has not seen) — is a repeat and is ignored;
- a new one counts toward the account's open call if it has one: the calls held when a
  poll's movements are taken are those opened by earlier polls (a call this poll opens
  is added after the lifecycle ran), so a movement of the opening poll counts for none;
- every new movement is stored with the next commit (`LifecycleBatch.movements`), kept
  in `unsaved` until a commit took it, so a failed commit loses none;
- an open call whose net deposits reach its amount at trigger is `due`: the lifecycle
  sees it whole on every fresh poll until it ends (by deposit, once its data are fresh
  and complete; the columns' fast path never re-prices it past that).

At start the counted movements of the open calls are read back, so a restarted engine
neither forgets them nor counts them twice. Only the desk that runs the lifecycle takes
movements; a terminal of a shared desk leaves them to the engine.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from risk_tui.core.deposits import ReceivedMovement, net_deposits
from risk_tui.core.lifecycle import MarginCall
from risk_tui.core.margin import MissingData, fx_rate
from risk_tui.core.model import Book, CashMovement


class MovementStore(Protocol):
    """What deposits need of storage (`storage.calls.Calls`)."""

    async def known_movements(self, movement_ids: Iterable[str]) -> frozenset[str]: ...

    async def counted_movements(
        self, call_ids: Iterable[str]
    ) -> dict[str, list[ReceivedMovement]]: ...


class Deposits:
    """The cash movements this desk took, and the ones each open call counts."""

    def __init__(self, store: MovementStore) -> None:
        self._store = store
        self._seen: set[str] = set()  # movement ids taken (this run, or known stored)
        self.counted: dict[str, list[ReceivedMovement]] = {}  # open call id → movements
        self.unsaved: dict[str, ReceivedMovement] = {}  # taken, not yet committed
        self.due: dict[str, str] = {}  # account → its open call, met by deposit

    async def start(self, open_calls: Mapping[str, MarginCall]) -> None:
        """The open calls' counted movements as stored (a restart)."""
        stored = await self._store.counted_movements(c.call_id for c in open_calls.values())
        self.counted = stored
        self._seen.update(m.movement_id for movements in stored.values() for m in movements)
        self.due.clear()
        for call in open_calls.values():
            self._check(call)

    async def receive(
        self,
        movements: Sequence[CashMovement],
        open_calls: Mapping[str, MarginCall],
        book: Book,
        *,
        now: datetime,
    ) -> list[ReceivedMovement]:
        """Take one poll's movements (the book already holds the poll's fx); the new ones."""
        if not movements:
            return []
        fresh = {m.movement_id: m for m in movements if m.movement_id not in self._seen}
        if not fresh:
            return []
        stored = await self._store.known_movements(fresh)
        self._seen.update(stored)
        taken = []
        for movement_id, movement in fresh.items():
            if movement_id in stored:
                continue
            call = open_calls.get(movement.account_id)
            account = book.accounts.get(movement.account_id)
            base = account.base_currency if account is not None else None
            received = ReceivedMovement.of(
                movement,
                received_at=now,
                feed_cursor=book.cursor,
                call_id=call.call_id if call is not None and call.is_open else None,
                base_currency=base,
                fx=_rate(book, movement.currency, base),
            )
            self._seen.add(movement_id)
            self.unsaved[movement_id] = received
            taken.append(received)
            if received.call_id is not None and call is not None:
                self.counted.setdefault(received.call_id, []).append(received)
                self._check(call)
        return taken

    def net(self, call: MarginCall) -> Decimal | None:
        """The call's net deposits so far; None when it counts none or one is unknown."""
        counted = self.counted.get(call.call_id)
        return net_deposits(counted) if counted else None

    def movements_of(self, call: MarginCall | None) -> list[ReceivedMovement]:
        """The movements the call counts (what its snapshots record)."""
        if call is None:
            return []
        return list(self.counted.get(call.call_id, ()))

    def saved(self, movements: Iterable[ReceivedMovement]) -> None:
        """These movements were committed."""
        for movement in movements:
            self.unsaved.pop(movement.movement_id, None)

    def forget(self, calls: Iterable[MarginCall]) -> None:
        """These calls ended (or were replaced): no longer counting anything."""
        for call in calls:
            self.counted.pop(call.call_id, None)
            if self.due.get(call.account_id) == call.call_id:
                del self.due[call.account_id]

    def _check(self, call: MarginCall) -> None:
        net = self.net(call)
        if call.is_open and net is not None and net >= call.trigger_call_amount:
            self.due[call.account_id] = call.call_id


def _rate(book: Book, currency: str, base: str | None) -> Decimal | None:
    if base is None:
        return None
    try:
        return fx_rate(book, currency, base)
    except MissingData:
        return None


__all__ = ["Deposits", "MovementStore"]
