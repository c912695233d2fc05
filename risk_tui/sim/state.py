"""The simulated back office: the book, the numbered change log, ticks, orders and messages.

Everything a scenario decides comes from `SimState.rng`, a `random.Random` seeded from
the state's seed, and everything a request-level fault decides from `request_rng`: the
same seed and the same calls give the same change sets. The clock (injectable) only
stamps `as_of`, quote `ts` and order times; it never takes part in a decision.
"""

from __future__ import annotations

import json
import random
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

from risk_tui.sim.changes import ChangeSet, LogEntry
from risk_tui.sim.orders import MarketHours, Message, Order, OrderDesk
from risk_tui.sim.seed import seed_book
from risk_tui.sim.store import KEY_FIELDS, RECORD_LISTS, Envelope, SimBook, render_body

SIM_TZ = timezone(timedelta(hours=8))
DEFAULT_RETAIN_BYTES = 64 << 20  # the change log's budget: a lagging client beyond it gets 410


def sim_now() -> datetime:
    return datetime.now(SIM_TZ).replace(microsecond=0)


@dataclass(frozen=True, slots=True)
class FaultRates:
    """How often the `faults` scenario misbehaves."""

    error: float = 0.05  # /v1 requests answered 500/502/503 (a POST may be processed first)
    slow: float = 0.05  # /v1 answers trickled out over `trickle_seconds`
    trickle_seconds: float = 3.0
    malformed: float = 0.25  # ticks whose change set carries 1–3 malformed records
    invalidate: float = 0.01  # ticks after which every cursor is gone (410)


class Scenario:
    """A scenario's hooks; the base class is the static `seed` desk.

    Defined here, next to the `SimState` that calls the hooks, so that the state needs
    nothing from `scenarios.py`: the scenarios there build on this class.
    """

    name: ClassVar[str] = "seed"
    faults: FaultRates | None = None

    def setup(self, state: SimState) -> None:
        """Called once, when the state is created."""

    def advance(self, state: SimState, changes: ChangeSet) -> None:
        """Move the market one tick, before orders fill."""

    def after(self, state: SimState, changes: ChangeSet) -> None:
        """After orders filled, before the change set is published."""


class SeedScenario(Scenario):
    name: ClassVar[str] = "seed"


class SimState:
    """The simulated back office: the book, a numbered change log, a clock, a scenario.

    `SimState()` is the static seed desk (the demo's and the seed tests' book). Use
    `risk_tui.sim.scenarios.build_state` for a generated desk under a scenario.
    `tick()` advances the scenario by one step and publishes one change set; the HTTP
    app runs it every `tick_interval` seconds (None: only when called).
    """

    def __init__(
        self,
        book: SimBook | Mapping[str, Iterable[Mapping[str, Any]]] | None = None,
        clock: Callable[[], datetime] = sim_now,
        token: str = "",
        retain: int = 10_000,  # change sets kept; an older cursor gets 410 Gone
        *,
        scenario: Scenario | None = None,
        seed: int = 0,
        tick_interval: float | None = 1.0,
        retain_bytes: int = DEFAULT_RETAIN_BYTES,
        lots_per_tick: int = 100,
        market_hours: MarketHours | None = None,
    ) -> None:
        if book is None:
            book = seed_book()
        self.store = book if isinstance(book, SimBook) else SimBook.from_records(book)
        self.clock = clock
        self.token = token
        self.retain = retain
        self.retain_bytes = retain_bytes
        self.tick_interval = tick_interval
        self.seed = seed
        # Separate streams: how many requests arrive must not change what a tick does.
        self.rng = random.Random(f"risk-tui sim ticks {seed}")
        self.request_rng = random.Random(f"risk-tui sim requests {seed}")
        self.sequence = 0
        self.floor = 0  # the oldest cursor the log can still answer
        self.log: deque[LogEntry] = deque()
        self.log_bytes = 0
        self.ticks = 0
        self.fault_counts: Counter[str] = Counter()
        # None: a 24-hour test market; else orders fill only in their market's session.
        self.desk = OrderDesk(self.store, lots_per_tick=lots_per_tick, market_hours=market_hours)
        self._invalidate_pending = False
        self.scenario: Scenario = scenario if scenario is not None else SeedScenario()
        self.scenario.setup(self)

    # -- what tests and the /sim/ endpoints look at -------------------------------------

    @property
    def orders(self) -> dict[str, Order]:
        return self.desk.orders

    @property
    def messages(self) -> dict[str, Message]:
        return self.desk.messages

    @property
    def order_posts(self) -> Counter[str]:
        """POSTs received per client_order_id (a retried order counts each time)."""
        return self.desk.order_posts

    @property
    def message_posts(self) -> Counter[str]:
        return self.desk.message_posts

    @property
    def cancel_posts(self) -> Counter[str]:
        """Cancel POSTs received per broker order_id (unknown ids too)."""
        return self.desk.cancel_posts

    @property
    def book(self) -> dict[str, list[dict[str, Any]]]:
        """The whole book as decoded record lists (a copy: for small books and tests)."""
        return self.store.as_lists()

    # -- the feed -----------------------------------------------------------------------

    def cursor(self, value: int | None = None) -> str:
        return f"{self.sequence if value is None else value:015d}"

    def envelope(self) -> Envelope:
        return Envelope(self.cursor(), self.clock().isoformat())

    def open_snapshot(self) -> tuple[Envelope, dict[str, list[bytes]]]:
        """The cursor and every record at this instant; stream it at leisure."""
        return self.envelope(), self.store.capture()

    def snapshot(self) -> dict[str, Any]:
        """The /v1/snapshot body decoded (for tests and small books)."""
        envelope, lists = self.open_snapshot()
        result: dict[str, Any] = json.loads(b"".join(render_body(envelope, lists)))
        return result

    def publish(
        self,
        changes: Mapping[str, Iterable[Mapping[str, Any]]],
        *,
        malformed: Mapping[str, Iterable[Any]] | None = None,
    ) -> LogEntry:
        """Apply a change set to the book and append it to the log under a new cursor.

        `malformed` records go on the wire without touching the book.
        """
        change_set = ChangeSet(self.store, self.clock())
        for name, records in changes.items():
            if name not in KEY_FIELDS:
                raise ValueError(f"unknown record list {name}")
            for record in records:
                change_set.put(name, record)
        for name, records in (malformed or {}).items():
            if name not in KEY_FIELDS:
                raise ValueError(f"unknown record list {name}")
            for record in records:
                change_set.add_malformed(name, record)
        return self.commit(change_set)

    def commit(self, changes: ChangeSet) -> LogEntry:
        self.sequence += 1
        entry = LogEntry.of(self.sequence, changes)
        self.log.append(entry)
        self.log_bytes += entry.size
        while len(self.log) > 1 and (
            len(self.log) > self.retain or self.log_bytes > self.retain_bytes
        ):
            dropped = self.log.popleft()
            self.log_bytes -= dropped.size
            self.floor = dropped.sequence
        return entry

    def invalidate_cursors(self) -> None:
        """Forget the log: every client's next /v1/changes gets 410 and re-snapshots."""
        self.log.clear()
        self.log_bytes = 0
        self.floor = self.sequence

    def request_invalidation(self) -> None:
        """Invalidate after the current tick's change set is published."""
        self._invalidate_pending = True

    def render_changes(self, cursor: int) -> bytes | None:
        """The /v1/changes body after `cursor`; None when the cursor is too old or unknown.

        Change sets are merged key by key (the latest record for a key wins and comes
        last), so a client that fell behind gets each key once, not every intermediate.
        """
        if not self.floor <= cursor <= self.sequence:
            return None
        merged: dict[str, dict[Any, bytes]] = {}
        for entry in self.log:
            if entry.sequence <= cursor:
                continue
            for name, records in entry.valid.items():
                target = merged.setdefault(name, {})
                for key, data in records:
                    target.pop(key, None)
                    target[key] = data
            for name, bad in entry.malformed.items():
                target = merged.setdefault(name, {})
                for index, data in enumerate(bad):
                    target[("malformed", entry.sequence, index)] = data
        lists = {name: list(records.values()) for name, records in merged.items()}
        return b"".join(render_body(self.envelope(), lists))

    def changes_since(self, cursor: int) -> dict[str, Any] | None:
        """Everything after `cursor`, merged; None when the cursor is too old or unknown."""
        body = self.render_changes(cursor)
        return None if body is None else json.loads(body)

    # -- time passing -------------------------------------------------------------------

    def tick(self) -> LogEntry:
        """One step: the scenario moves, orders fill, messages go out; one change set."""
        self.ticks += 1
        changes = ChangeSet(self.store, self.clock())
        self.scenario.advance(self, changes)
        self.desk.advance(changes)
        self.scenario.after(self, changes)
        entry = self.commit(changes)
        if self._invalidate_pending:
            self._invalidate_pending = False
            self.fault_counts["invalidated"] += 1
            self.invalidate_cursors()
        return entry

    def status(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario.name,
            "seed": self.seed,
            "tick": self.ticks,
            "cursor": self.cursor(),
            "oldest_cursor": self.cursor(self.floor),
            "tick_interval": self.tick_interval,
            "records": {name: self.store.count(name) for name in RECORD_LISTS},
            "faults": dict(self.fault_counts),
        }
