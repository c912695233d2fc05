"""Scenarios: what happens to the simulated market on each tick, and `build_state`.

- `seed`: the static seed desk; ticks only fill orders and send messages (heartbeats
  otherwise).
- `calm`: each tick about a fifth of the symbols move a small random step, mean
  reverting, on the exchange's tick grid; only the quotes that changed are published.
- `selloff`: a market-wide fall building to −15…−25 % (per market, then per symbol
  through a beta and some idiosyncratic noise) over `ramp_ticks` (300: five minutes at
  one tick a second), then calm at the lower level. At the bottom about a tenth of the
  accounts are in call (the generator's leverage is calibrated on it: issue 6's crash day).
- `recall`: calm prices, and within `recall_ticks` the prime broker recalls stock in
  about a third of the shorted symbols: `recall_quantity` rises, `available` falls (below
  the clients' total short in most of them) and `recall_due` is two weekdays out.
- `crash`: the sell-off, and the recalls of `recall` meanwhile (what `risk-tui demo` runs);
  and clients moving money (`ClientMoney`): H2001, in call for HKD 22,000 from the
  start, deposits it in two parts (ticks 15 and 30: its call is met by deposit), and
  S5001, safe, withdraws SGD 5,000 (tick 10).
- `faults`: calm prices, plus request-level faults (5xx, trickled answers, decided per
  request by `SimState.request_rng`), malformed records in some change sets (re-sent
  valid on the next tick) and, now and then, every cursor invalidated (410 Gone).

The seed desk's symbols never move: A1001 stays the worked example in every scenario.
"""

from __future__ import annotations

import json
import math
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from risk_tui.sim.changes import ChangeSet
from risk_tui.sim.generator import generate_book
from risk_tui.sim.seed import seed_book

# Scenario (the hooks), SeedScenario and FaultRates live with SimState, which calls the
# hooks and whose app reads the rates; they stay importable from here.
from risk_tui.sim.state import FaultRates, Scenario, SeedScenario, SimState, sim_now
from risk_tui.sim.store import Key, SimBook
from risk_tui.sim.ticks import milli_text, round_to_tick

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

SEED_SYMBOLS = frozenset(i["symbol"] for i in seed_book()["instruments"])
SEED_ACCOUNTS = frozenset(a["account_id"] for a in seed_book()["accounts"])
DEFAULT_ACCOUNTS = 10_000


class PriceModel:
    """The movable symbols' prices: a float 'fair' value, published on the tick grid."""

    def __init__(self, state: SimState) -> None:
        store = state.store
        self.symbols: list[str] = []
        self.markets: list[str] = []
        self.anchor: list[float] = []
        self.milli: list[int] = []
        for (symbol,) in store.tables["instruments"]:
            if symbol in SEED_SYMBOLS:
                continue
            instrument = store.get("instruments", (symbol,)) or {}
            quote = store.get("quotes", (symbol,))
            if instrument.get("suspended") or instrument.get("delisted") or quote is None:
                continue
            milli = _milli(quote.get("price"))
            market = instrument.get("market")
            if milli is None or milli <= 0 or market not in ("HK", "SG", "US"):
                continue
            self.symbols.append(symbol)
            self.markets.append(str(market))
            self.anchor.append(milli / 1000.0)
            self.milli.append(milli)
        self.fair = list(self.anchor)

    def __len__(self) -> int:
        return len(self.symbols)

    def move(self, index: int, fair: float, changes: ChangeSet) -> None:
        """Set the fair value; publish a quote if the price on the grid changed."""
        self.fair[index] = fair
        milli = round_to_tick(self.markets[index], fair)
        if milli != self.milli[index]:
            self.milli[index] = milli
            changes.put(
                "quotes",
                {"symbol": self.symbols[index], "price": milli_text(milli), "ts": changes.ts},
            )


def _milli(price: Any) -> int | None:
    if not isinstance(price, str):
        return None
    try:
        value = Decimal(price) * 1000
    except InvalidOperation:
        return None
    return int(value) if value.is_finite() and value == value.to_integral_value() else None


class CalmScenario(Scenario):
    """Small mean-reverting random walks."""

    name: ClassVar[str] = "calm"

    def __init__(
        self, *, move_share: float = 0.2, volatility: float = 0.002, reversion: float = 0.01
    ) -> None:
        self.move_share = move_share  # symbols that move on a tick
        self.volatility = volatility  # one move's standard deviation (log)
        self.reversion = reversion  # pull back toward the anchor per move
        self.prices: PriceModel | None = None

    def setup(self, state: SimState) -> None:
        self.prices = PriceModel(state)

    def advance(self, state: SimState, changes: ChangeSet) -> None:
        prices = self.prices
        assert prices is not None
        rng = state.rng
        for index in range(len(prices)):
            if rng.random() >= self.move_share:
                continue
            fair = prices.fair[index]
            pull = self.reversion * math.log(fair / prices.anchor[index])
            prices.move(index, fair * math.exp(self.volatility * rng.gauss(0, 1) - pull), changes)


class SelloffScenario(CalmScenario):
    """A market-wide fall over `ramp_ticks`, dispersed by market and by symbol."""

    name: ClassVar[str] = "selloff"

    def __init__(
        self,
        *,
        ramp_ticks: int = 300,
        drop_range: tuple[float, float] = (0.15, 0.25),
        noise: float = 0.004,
    ) -> None:
        super().__init__()
        self.ramp_ticks = max(1, ramp_ticks)
        self.drop_range = drop_range
        self.noise = noise
        self.drop: list[float] = []
        self.wobble: list[float] = []
        self.market_drop: dict[str, float] = {}

    def setup(self, state: SimState) -> None:
        super().setup(state)
        prices = self.prices
        assert prices is not None
        rng = state.rng
        self.market_drop = {m: rng.uniform(*self.drop_range) for m in ("HK", "SG", "US")}
        self.drop = []
        for market in prices.markets:
            beta = min(1.8, max(0.4, rng.gauss(1.0, 0.25)))
            drop = self.market_drop[market] * beta + rng.gauss(0.0, 0.03)
            self.drop.append(min(0.6, max(0.02, drop)))
        self.wobble = [0.0] * len(prices)

    def advance(self, state: SimState, changes: ChangeSet) -> None:
        prices = self.prices
        assert prices is not None
        rng = state.rng
        progress = min(1.0, state.ticks / self.ramp_ticks)
        ease = progress * progress * (3.0 - 2.0 * progress)  # slow start, steepest midway
        for index in range(len(prices)):
            self.wobble[index] = 0.97 * self.wobble[index] + self.noise * rng.gauss(0, 1)
            level = 1.0 - self.drop[index] * ease
            fair = prices.anchor[index] * level * math.exp(self.wobble[index])
            prices.move(index, fair, changes)


class Recalls:
    """Recall events: within `recall_ticks` the prime broker recalls stock in `share` of
    the shorted symbols (the `recall` scenario's, and the `crash` day's on top of its
    sell-off)."""

    def __init__(self, *, recall_ticks: int = 60, share: float = 0.35) -> None:
        self.recall_ticks = max(1, recall_ticks)
        self.share = share
        self.short_totals: dict[str, int] = {}
        self.events: dict[int, list[tuple[str, bool]]] = {}

    def setup(self, state: SimState) -> None:
        self.short_totals = short_totals(state.store)
        lendable = sorted(
            symbol
            for symbol, total in self.short_totals.items()
            if total > 0
            and symbol not in SEED_SYMBOLS
            and state.store.raw("borrow", (symbol,)) is not None
        )
        if not lendable:
            return
        rng = state.rng
        victims = rng.sample(lendable, max(1, round(len(lendable) * self.share)))
        for rank, symbol in enumerate(victims):
            severe = rank == 0 or rng.random() < 0.75  # at least one real shortfall
            when = rng.randint(1, self.recall_ticks)
            self.events.setdefault(when, []).append((symbol, severe))

    def advance(self, state: SimState, changes: ChangeSet) -> None:
        for symbol, severe in self.events.get(state.ticks, []):
            self._recall(state, changes, symbol, severe)

    def _recall(self, state: SimState, changes: ChangeSet, symbol: str, severe: bool) -> None:
        borrow = state.store.get("borrow", (symbol,))
        instrument = state.store.get("instruments", (symbol,)) or {}
        if borrow is None:
            return
        lot = max(1, int(Decimal(str(instrument.get("lot_size", "1")))))
        total = self.short_totals[symbol]
        old_available = int(Decimal(borrow["available"]))
        old_recall = int(Decimal(borrow.get("recall_quantity") or "0"))
        rng = state.rng
        if severe:  # the firm can keep less than its clients are short
            available = math.floor(total * rng.uniform(0.3, 0.85) / lot) * lot
        else:  # a recall the headroom absorbs
            available = max(total, math.ceil(total * rng.uniform(1.0, 1.2) / lot) * lot)
        available = min(available, old_available)
        recalled = old_available - available
        changes.put(
            "borrow",
            {
                **borrow,
                "available": str(available),
                "recall_quantity": str(old_recall + recalled),
                "recall_due": weekdays_after(changes.now.date(), 2).isoformat(),
            },
        )


class RecallScenario(CalmScenario):
    """The prime broker recalls lent stock in some shorted symbols."""

    name: ClassVar[str] = "recall"

    def __init__(self, *, recall_ticks: int = 60, share: float = 0.35) -> None:
        super().__init__()
        self.recalls = Recalls(recall_ticks=recall_ticks, share=share)

    @property
    def recall_ticks(self) -> int:
        return self.recalls.recall_ticks

    @property
    def short_totals(self) -> dict[str, int]:
        return self.recalls.short_totals

    @property
    def events(self) -> dict[int, list[tuple[str, bool]]]:
        return self.recalls.events

    def setup(self, state: SimState) -> None:
        super().setup(state)
        self.recalls.setup(state)

    def advance(self, state: SimState, changes: ChangeSet) -> None:
        super().advance(state, changes)
        self.recalls.advance(state, changes)


MovementEvent = tuple[str, str, Decimal, Literal["deposit", "withdrawal"]]

# tick → (account, currency, amount, kind): the seed desk's clients moving money on a
# crash day. H2001 is called for HKD 22,000 (back to IM) from the first poll: its two
# deposits reach that amount, so its call is met by deposit at tick 30.
CLIENT_MONEY: dict[int, list[MovementEvent]] = {
    10: [("S5001", "SGD", Decimal("5000.00"), "withdrawal")],
    15: [("H2001", "HKD", Decimal("12000.00"), "deposit")],
    30: [("H2001", "HKD", Decimal("10000.00"), "deposit")],
}


class ClientMoney:
    """Deposits and withdrawals at set ticks (`CLIENT_MONEY`), each published once. A
    movement's id carries the tick and the clock, so a simulator started again (the demo
    restarted on the same database) sends new movements, not repeats."""

    def __init__(self, events: dict[int, list[MovementEvent]] | None = None) -> None:
        self.events = CLIENT_MONEY if events is None else events

    def advance(self, state: SimState, changes: ChangeSet) -> None:
        for index, (account_id, currency, amount, kind) in enumerate(
            self.events.get(state.ticks, [])
        ):
            if state.store.raw("accounts", (account_id,)) is None:
                continue
            movement_id = f"CM-{changes.now:%Y%m%d%H%M%S}-{state.ticks}-{index}-{account_id}"
            changes.move_cash(movement_id, account_id, currency, amount, kind)


class CrashScenario(SelloffScenario):
    """A crash day: the sell-off, the prime broker recalling stock, clients moving money."""

    name: ClassVar[str] = "crash"

    def __init__(self, *, recall_ticks: int = 60, share: float = 0.35) -> None:
        super().__init__()
        self.recalls = Recalls(recall_ticks=recall_ticks, share=share)
        self.money = ClientMoney()

    def setup(self, state: SimState) -> None:
        super().setup(state)
        self.recalls.setup(state)

    def advance(self, state: SimState, changes: ChangeSet) -> None:
        super().advance(state, changes)
        self.recalls.advance(state, changes)
        self.money.advance(state, changes)


def short_totals(book: SimBook) -> dict[str, int]:
    """Total client short quantity per symbol. Shorts are a few percent of positions:
    a byte test skips decoding all the others."""
    totals: dict[str, int] = {}
    for (_, symbol), data in book.tables["positions"].items():
        if b'"quantity":"-' not in data:
            continue
        quantity = json.loads(data).get("quantity")
        try:
            value = Decimal(quantity)
        except (InvalidOperation, TypeError):
            continue
        if value < 0:
            totals[symbol] = totals.get(symbol, 0) + int(-value)
    return totals


def weekdays_after(start: date, days: int) -> date:
    """`days` weekdays after `start` (the exchange calendar is the desk's business)."""
    current = start
    while days:
        current += timedelta(days=1)
        if current.weekday() < 5:
            days -= 1
    return current


MALFORMED_KINDS = ("price_number", "missing_balance", "negative_lot", "unknown_kind")


class FaultsScenario(CalmScenario):
    """Calm prices over an unreliable feed."""

    name: ClassVar[str] = "faults"

    def __init__(self, rates: FaultRates | None = None) -> None:
        super().__init__()
        self.faults = rates or FaultRates()
        self.pending: list[tuple[str, Key]] = []
        self.account_ids: list[str] = []

    def setup(self, state: SimState) -> None:
        super().setup(state)
        # Generated accounts only: the seed desk stays the worked example.
        self.account_ids = [
            account_id
            for (account_id,) in state.store.tables["accounts"]
            if account_id not in SEED_ACCOUNTS
        ]

    def after(self, state: SimState, changes: ChangeSet) -> None:
        rates = self.faults
        assert rates is not None
        for name, key in self.pending:  # the back office re-sends what it garbled
            changes.resend(name, key)
        self.pending = []
        rng = state.rng
        if self.prices and self.account_ids and rng.random() < rates.malformed:
            for _ in range(rng.randint(1, 3)):
                self._garble(state, changes, rng.choice(MALFORMED_KINDS))
        if rng.random() < rates.invalidate:
            state.request_invalidation()

    def _garble(self, state: SimState, changes: ChangeSet, kind: str) -> None:
        prices = self.prices
        assert prices is not None
        rng = state.rng
        store = state.store
        key: Key
        if kind in ("price_number", "negative_lot"):
            index = rng.randrange(len(prices))
            symbol = prices.symbols[index]
            if kind == "price_number":
                record: dict[str, Any] = {
                    "symbol": symbol,
                    "price": prices.milli[index] / 1000.0,  # a JSON number: refused
                    "ts": changes.ts,
                }
                name, key = "quotes", (symbol,)
            else:
                record = dict(store.get("instruments", (symbol,)) or {"symbol": symbol})
                record["lot_size"] = f"-{record.get('lot_size', '100')}"
                name, key = "instruments", (symbol,)
        else:
            account_id = rng.choice(self.account_ids)
            account = store.get("accounts", (account_id,)) or {"account_id": account_id}
            if kind == "missing_balance":
                currency = str(account.get("base_currency", "USD"))
                record = {"account_id": account_id, "currency": currency}  # no balance
                name, key = "cash", (account_id, currency)
            else:
                record = {**account, "kind": "vip"}  # not an account kind FEED.md knows
                name, key = "accounts", (account_id,)
        changes.add_malformed(name, record)
        self.pending.append((name, key))
        state.fault_counts["malformed"] += 1
        state.fault_counts[f"malformed_{kind}"] += 1


SCENARIOS: dict[str, Callable[[], Scenario]] = {
    "seed": SeedScenario,
    "calm": CalmScenario,
    "selloff": SelloffScenario,
    "recall": RecallScenario,
    "crash": CrashScenario,
    "faults": FaultsScenario,
}


def build_state(
    scenario: str | Scenario = "seed",
    *,
    accounts: int | None = None,
    seed: int = 0,
    token: str = "",
    clock: Callable[[], datetime] = sim_now,
    tick_interval: float | None = 1.0,
    **options: Any,
) -> SimState:
    """A SimState for a named scenario: the seed desk alone for `seed` (unless `accounts`
    is given), else the seed desk plus `accounts` generated accounts (default 10,000).
    `options` go to SimState (e.g. `retain`, `lots_per_tick`)."""
    if isinstance(scenario, str):
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}: one of {', '.join(SCENARIOS)}")
        chosen = SCENARIOS[scenario]()
    else:
        chosen = scenario
    if accounts is None:
        accounts = 0 if chosen.name == "seed" else DEFAULT_ACCOUNTS
    book = generate_book(accounts, seed, as_of=clock())
    return SimState(
        book,
        clock,
        token,
        scenario=chosen,
        seed=seed,
        tick_interval=tick_interval,
        **options,
    )
