"""Scenarios advance by ticks, reproducibly, and do to the desk what they say they do."""

from __future__ import annotations

import json
import math
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from risk_tui.feed.models import parse_payload
from risk_tui.sim.app import SimState
from risk_tui.sim.scenarios import (
    SCENARIOS,
    SEED_ACCOUNTS,
    SEED_SYMBOLS,
    CrashScenario,
    FaultsScenario,
    RecallScenario,
    SelloffScenario,
    build_state,
)
from risk_tui.sim.seed import seed_book
from risk_tui.sim.state import FaultRates
from tests.sim.helpers import NOW, client_for, desk_book, fixed_clock, in_call, margins, shortfalls

ACCOUNTS = 2_000


def state_for(scenario: str, seed: int = 11, **options: Any) -> SimState:
    return build_state(
        scenario,
        accounts=ACCOUNTS,
        seed=seed,
        clock=fixed_clock,
        tick_interval=None,
        **options,
    )


def test_the_seed_desk_ticks_heartbeats_only() -> None:
    state = SimState()
    before = state.snapshot()
    entry = state.tick()
    assert len(entry) == 0
    assert state.cursor() == "000000000000001"
    heartbeat = state.changes_since(0)
    assert heartbeat is not None
    assert set(heartbeat) == {"cursor", "as_of"}
    after = state.snapshot()
    assert {k: v for k, v in after.items() if k not in ("cursor", "as_of")} == {
        k: v for k, v in before.items() if k not in ("cursor", "as_of")
    }
    assert {k: v for k, v in after.items() if k not in ("cursor", "as_of")} == seed_book()


def test_calm_publishes_only_the_quotes_that_moved_a_little() -> None:
    state = state_for("calm")
    start = {q["symbol"]: Decimal(q["price"]) for q in state.snapshot()["quotes"]}
    prices = dict(start)
    for _ in range(20):
        entry = state.tick().decoded()
        assert set(entry) <= {"quotes"}
        for quote in entry.get("quotes", []):
            assert quote["symbol"] not in SEED_SYMBOLS
            assert Decimal(quote["price"]) != prices[quote["symbol"]]  # only what changed
            assert quote["ts"] == NOW.isoformat()
            prices[quote["symbol"]] = Decimal(quote["price"])
    moved = [abs(math.log(prices[s] / start[s])) for s in start if start[s] > 0]
    assert max(moved) < 0.08  # calm: a few ticks of the spread table at most
    assert sum(1 for m in moved if m > 0) >= len(moved) // 2


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_same_seed_same_ticks_same_change_sets(scenario: str) -> None:
    first, second = state_for(scenario), state_for(scenario)
    runs = [[first.tick().lists() for _ in range(40)], [second.tick().lists() for _ in range(40)]]
    assert runs[0] == runs[1]
    assert first.fault_counts == second.fault_counts
    if scenario != "seed":
        assert any(runs[0])
        other = state_for(scenario, seed=12)
        assert [other.tick().lists() for _ in range(40)] != runs[0]


def test_a_selloff_puts_hundreds_into_call_some_below_fm() -> None:
    state = state_for("selloff")
    assert isinstance(state.scenario, SelloffScenario)
    start = desk_book(state)
    start_prices = {s: q.price for s, q in start.quotes.items()}
    start_in_call = in_call(start)
    for _ in range(state.scenario.ramp_ticks):
        state.tick()
    end = desk_book(state)
    drops = sorted(
        float(1 - end.quotes[s].price / p)
        for s, p in start_prices.items()
        if s not in SEED_SYMBOLS and p > 0 and not end.instruments[s].suspended
    )
    median = drops[len(drops) // 2]
    assert 0.12 <= median <= 0.28, median
    assert in_call(end) >= 3 * start_in_call
    assert in_call(end) >= ACCOUNTS * 0.03
    forced = [m for m in margins(end).values() if str(m.risk_level) == "force_call"]
    assert len(forced) > sum(
        1 for m in margins(start).values() if str(m.risk_level) == "force_call"
    )
    # The worked example does not move.
    assert margins(end)["A1001"].call_amount == Decimal("1015.00")


def generated_in_call(state: SimState) -> int:
    return sum(
        1
        for account_id, figures in margins(desk_book(state)).items()
        if figures.in_call and account_id not in SEED_ACCOUNTS
    )


@pytest.mark.parametrize(
    ("scenario", "at_start", "at_end"),
    [
        # Issue 6's crash day: the sell-off's bottom calls about a tenth of the desk
        # (19,919 of 200,000 at seed 0); here 44 at the start and 494 at the bottom (347
        # before the calibration). Calm: 44 and 44.
        ("selloff", (0.005, 0.02), (0.09, 0.11)),
        ("calm", (0.005, 0.02), (0.005, 0.02)),
    ],
)
def test_the_selloff_bottom_calls_a_tenth_of_the_desk_and_calm_stays_calm(
    scenario: str, at_start: tuple[float, float], at_end: tuple[float, float]
) -> None:
    accounts = 5_000
    state = build_state(scenario, accounts=accounts, seed=0, clock=fixed_clock, tick_interval=None)
    start = generated_in_call(state)
    assert at_start[0] * accounts <= start <= at_start[1] * accounts, start
    for _ in range(SelloffScenario().ramp_ticks):  # the bottom; calm runs as long
        state.tick()
    end = generated_in_call(state)
    assert at_end[0] * accounts <= end <= at_end[1] * accounts, end
    if scenario == "calm":
        assert end <= start + accounts // 500, (start, end)


def test_a_recall_opens_a_shortfall_due_in_two_weekdays() -> None:
    state = state_for("recall")
    assert isinstance(state.scenario, RecallScenario)
    before = desk_book(state)
    assert shortfalls(before) == {}
    changed: list[dict[str, object]] = []
    for _ in range(state.scenario.recall_ticks):
        changed += state.tick().decoded().get("borrow", [])
    after = desk_book(state)
    short = shortfalls(after)
    assert short
    assert all(amount > 0 for amount in short.values())
    assert changed
    for record in changed:
        symbol = str(record["symbol"])
        assert after.borrow[symbol].recall_quantity > before.borrow[symbol].recall_quantity
        assert after.borrow[symbol].available < before.borrow[symbol].available
        assert after.borrow[symbol].recall_due == date(2026, 11, 25)  # Monday + 2 weekdays


def test_a_crash_day_falls_and_recalls_at_once() -> None:
    state = state_for("crash")
    assert isinstance(state.scenario, CrashScenario)
    before = desk_book(state)
    recalled: list[dict[str, object]] = []
    for _ in range(state.scenario.recalls.recall_ticks):
        recalled += state.tick().decoded().get("borrow", [])
    after = desk_book(state)
    assert recalled
    assert shortfalls(after)
    fallen = [
        symbol
        for symbol, quote in after.quotes.items()
        if symbol not in SEED_SYMBOLS and quote.price < before.quotes[symbol].price
    ]
    assert len(fallen) > len(after.quotes) // 2  # the sell-off is under way


def test_on_a_crash_day_a_client_in_call_deposits_the_amount_called_in_two_parts() -> None:
    state = build_state("crash", accounts=50, seed=11, clock=fixed_clock, tick_interval=None)
    start = state.cursor()
    sent: dict[int, list[dict[str, Any]]] = {}
    for _ in range(30):
        entry = state.tick()
        if movements := entry.decoded().get("cash_movements"):
            sent[state.ticks] = movements
    moved = {
        tick: [(m["account_id"], m["kind"], m["amount"]) for m in movements]
        for tick, movements in sent.items()
    }
    assert moved == {
        10: [("S5001", "withdrawal", "5000.00")],
        15: [("H2001", "deposit", "12000.00")],
        30: [("H2001", "deposit", "10000.00")],
    }
    # The balance includes them (H2001 was called for HKD 22,000 back to IM); each is
    # sent once: in the changes, and in the day's snapshot.
    assert state.store.get("cash", ("H2001", "HKD")) == {
        "account_id": "H2001",
        "currency": "HKD",
        "balance": "-228000.00",
    }
    changes = state.changes_since(int(start))
    assert changes is not None
    assert len(changes["cash_movements"]) == 3
    parsed = parse_payload(state.snapshot())
    assert parsed.rejected == []
    assert sorted(m.movement_id for m in parsed.changes.cash_movements) == sorted(
        m["movement_id"] for ms in sent.values() for m in ms
    )


def test_faults_malformed_records_are_rejected_alone() -> None:
    state = build_state(
        FaultsScenario(FaultRates(malformed=1.0, invalidate=0.0)),
        accounts=ACCOUNTS,
        seed=11,
        clock=fixed_clock,
        tick_interval=None,
    )
    kinds: set[str] = set()
    garbled: set[tuple[str, tuple[str, ...]]] = set()
    for _ in range(12):
        entry = state.tick()
        # Every record garbled on the previous tick is re-sent valid on this one.
        resent = {(name, key) for name, records in entry.valid.items() for key, _ in records}
        assert garbled <= resent
        wire = json.loads(json.dumps({"cursor": "1", "as_of": NOW.isoformat(), **entry.decoded()}))
        parsed = parse_payload(wire)
        malformed = sum(len(records) for records in entry.malformed.values())
        valid = sum(len(records) for records in entry.valid.values())
        assert malformed >= 1
        assert len(parsed.rejected) == malformed
        assert parsed.changes.record_count == valid  # the valid ones in the same set apply
        kinds |= {r.reason.split(":")[0] for r in parsed.rejected}
        garbled = {(r.kind, tuple(r.key.split("/"))) for r in parsed.rejected}
    assert {"price", "lot_size", "kind", "balance"} <= kinds
    # The simulated back office's own book never took the garbled records.
    desk_book(state)


async def test_faults_invalidate_cursors_so_clients_get_410() -> None:
    state = build_state(
        FaultsScenario(FaultRates(error=0.0, slow=0.0, malformed=0.0, invalidate=1.0)),
        accounts=200,
        seed=3,
        clock=fixed_clock,
        tick_interval=None,
    )
    async with client_for(state) as client:
        cursor = (await client.get("/v1/snapshot")).json()["cursor"]
        assert (await client.get("/v1/changes", params={"cursor": cursor})).status_code == 200
        state.tick()
        gone = await client.get("/v1/changes", params={"cursor": cursor})
        assert gone.status_code == 410
        fresh = (await client.get("/v1/snapshot")).json()["cursor"]
        assert (await client.get("/v1/changes", params={"cursor": fresh})).status_code == 200
    assert state.fault_counts["invalidated"] == 1


async def test_faults_5xx_and_slow_answers_at_a_seeded_rate() -> None:
    rates = FaultRates(error=0.10, slow=0.05, trickle_seconds=0.02, malformed=0.0, invalidate=0.0)

    async def statuses(seed: int) -> tuple[list[int], SimState]:
        state = build_state(
            FaultsScenario(rates), accounts=100, seed=seed, clock=fixed_clock, tick_interval=None
        )
        seen: list[int] = []
        async with client_for(state) as client:
            for _ in range(400):
                answer = await client.get("/v1/changes", params={"cursor": state.cursor()})
                seen.append(answer.status_code)
                if answer.status_code == 200:
                    assert answer.json()["cursor"] == state.cursor()
        return seen, state

    seen, state = await statuses(5)
    errors = [s for s in seen if s >= 500]
    assert set(errors) <= {500, 502, 503}
    assert 20 <= len(errors) <= 65, len(errors)
    assert 8 <= state.fault_counts["slow"] <= 40, state.fault_counts
    assert seen.count(200) == 400 - len(errors)  # slow answers are still whole answers
    again, _ = await statuses(5)
    assert again == seen


def test_the_change_log_keeps_within_its_budget() -> None:
    state = build_state(
        "selloff", accounts=200, seed=1, clock=fixed_clock, tick_interval=None, retain=5
    )
    for _ in range(20):
        state.tick()
    assert len(state.log) == 5
    assert state.changes_since(14) is None
    merged = state.changes_since(15)
    assert merged is not None
    symbols = [q["symbol"] for q in merged["quotes"]]
    assert len(symbols) == len(set(symbols))  # merged by key: the latest quote per symbol
