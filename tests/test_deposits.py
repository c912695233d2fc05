"""Met by deposit, end to end on the simulator and a real store (SQLite and PostgreSQL).

SPEC.md (settled): the cash movements first received in a poll after the poll that opened
the call, once each by `movement_id` (a snapshot after a 410 repeats them), whatever
their `ts`, each in the account's base currency at the fx of its poll, reaching the
amount called at trigger, end the call as met by deposit — even if prices fell.

The seed desk's A1001 is called for SGD 1,015.00 at trigger (the worked example).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from decimal import Decimal as D
from typing import Any, Literal

import pytest

from risk_tui.core.deposits import net_deposits
from risk_tui.core.lifecycle import EndReason, MarginCall
from risk_tui.core.records import StoredSnapshot
from risk_tui.desk.runtime import Desk
from risk_tui.sim.changes import ChangeSet
from tests.desk_rig import Rig, desk_rig, seed_call_id


@pytest.fixture
async def rig(db_url: str) -> AsyncIterator[Rig]:
    async with desk_rig(db_url) as desk:
        yield desk


def move(
    rig: Rig,
    movement_id: str,
    amount: str,
    kind: Literal["deposit", "withdrawal"] = "deposit",
    *,
    account_id: str = "A1001",
    currency: str = "SGD",
    quotes: Sequence[dict[str, Any]] = (),
    malformed: Sequence[dict[str, Any]] = (),
) -> None:
    """One change set: the money moved (balance and movement), and any quotes."""
    changes = ChangeSet(rig.sim.store, rig.sim.clock())
    changes.move_cash(movement_id, account_id, currency, D(amount), kind)
    for quote in quotes:
        changes.put("quotes", quote)
    for record in malformed:
        changes.add_malformed("cash_movements", record)
    rig.sim.commit(changes)


def cursors_gone(rig: Rig) -> None:
    """Every client's next /v1/changes gets 410: it fetches the day's snapshot again."""
    rig.sim.publish({})
    rig.sim.invalidate_cursors()


async def poll(desk: Desk) -> None:
    await desk.poller.poll()


def open_call(desk: Desk, account_id: str = "A1001") -> MarginCall | None:
    return desk.engine.open_calls.get(account_id)


async def ended(rig: Rig, call_id: str) -> MarginCall:
    stored = await rig.store.calls.get_call(call_id)
    assert stored is not None
    return stored


async def end_snapshot(rig: Rig, call_id: str) -> StoredSnapshot:
    snapshots = await rig.store.history.snapshots_for(call_id)
    return next(s for s in snapshots if s.scenario == "end")


async def test_deposits_reaching_the_amount_at_trigger_end_the_call_even_as_prices_fall(
    rig: Rig,
) -> None:
    call_id = seed_call_id(rig.desk)
    # B.SG falls (the call grows: the columns' fast path would re-price it) while the
    # client pays 600 then 415: 1,015 in all, the amount called at trigger.
    move(rig, "DEP-1", "600.00", quotes=[{"symbol": "B.SG", "price": "19.00"}])
    await poll(rig.desk)
    call = open_call(rig.desk)
    assert call is not None
    assert call.call_id == call_id
    assert call.call_amount > D("415.00")  # 600 in, but 500 lost on B: still owed
    move(rig, "DEP-2", "415.00", quotes=[{"symbol": "B.SG", "price": "18.50"}])
    await poll(rig.desk)

    assert open_call(rig.desk) is None
    stored = await ended(rig, call_id)
    assert stored.end_reason is EndReason.MET_BY_DEPOSIT
    assert stored.call_amount > 0  # prices fell: recomputed, it is still positive
    end = (await end_snapshot(rig, call_id)).payload
    assert [m["movement_id"] for m in end["cash_movements"]] == ["DEP-1", "DEP-2"]
    assert [m["base_amount"] for m in end["cash_movements"]] == ["600.00", "415.00"]
    assert end["net_deposits"] == "1015.00"
    assert end["call_state"] == "ended"
    entry = (await rig.desk.store.history.history_page(10))[0]
    assert entry.call_id == call_id
    assert entry.end_reason is EndReason.MET_BY_DEPOSIT


async def test_withdrawals_count_against_and_a_foreign_deposit_at_its_polls_fx(rig: Rig) -> None:
    call_id = seed_call_id(rig.desk)
    move(rig, "DEP-1", "1015.00")
    move(rig, "WD-1", "100.00", "withdrawal")
    await poll(rig.desk)
    assert open_call(rig.desk) is not None  # 915 net: short of 1,015
    # HKD at 0.1723 this poll: 580.38 HKD is SGD 99.999474 — still short by a cent.
    move(rig, "DEP-HKD-1", "580.38", currency="HKD")
    await poll(rig.desk)
    assert open_call(rig.desk) is not None
    rig.sim.publish({"fx": [{"from": "HKD", "to": "SGD", "rate": "0.2000"}]})
    move(rig, "DEP-HKD-2", "0.01", currency="HKD")  # at 0.20: SGD 0.002, enough
    await poll(rig.desk)
    assert open_call(rig.desk) is None
    assert (await ended(rig, call_id)).end_reason is EndReason.MET_BY_DEPOSIT
    end = (await end_snapshot(rig, call_id)).payload
    fx = {m["movement_id"]: m["fx"] for m in end["cash_movements"]}
    assert fx == {"DEP-1": "1", "WD-1": "1", "DEP-HKD-1": "0.1723", "DEP-HKD-2": "0.2000"}


async def test_a_snapshot_after_a_410_repeats_movements_that_count_once(rig: Rig) -> None:
    call_id = seed_call_id(rig.desk)
    move(rig, "DEP-1", "600.00")
    await poll(rig.desk)
    cursors_gone(rig)  # the next poll gets 410, then the day's snapshot
    full = await rig.desk.poller.poll()
    assert full.full
    await poll(rig.desk)
    assert open_call(rig.desk) is not None  # 600, not 1,200
    move(rig, "DEP-2", "415.00")
    await poll(rig.desk)
    assert (await ended(rig, call_id)).end_reason is EndReason.MET_BY_DEPOSIT


async def test_a_restarted_engine_neither_forgets_nor_double_counts(rig: Rig) -> None:
    call_id = seed_call_id(rig.desk)
    move(rig, "DEP-1", "600.00")
    await poll(rig.desk)
    cursors_gone(rig)
    restarted = await rig.new_desk()  # another process: a snapshot repeating DEP-1
    await poll(restarted)
    call = open_call(restarted)
    assert call is not None
    assert restarted.engine.deposits is not None
    assert net_deposits(restarted.engine.deposits.movements_of(call)) == D("600.00")
    move(rig, "DEP-2", "415.00")
    await poll(restarted)
    assert open_call(restarted) is None
    assert (await ended(rig, call_id)).end_reason is EndReason.MET_BY_DEPOSIT


async def test_money_moved_in_the_poll_that_opens_a_call_counts_for_none(rig: Rig) -> None:
    rig.sim.publish({"quotes": [{"symbol": "B.SG", "price": "25.00"}]})
    await poll(rig.desk)
    assert open_call(rig.desk) is None  # met: prices up
    # One poll: B.SG back down, and SGD 100 in. The new call's amount at trigger is
    # what is owed after that 100 (915); it counts only what comes after.
    move(rig, "DEP-0", "100.00", quotes=[{"symbol": "B.SG", "price": "19.50"}])
    await poll(rig.desk)
    call = open_call(rig.desk)
    assert call is not None
    assert call.trigger_call_amount == D("915.00")
    move(rig, "DEP-1", "850.00")  # with DEP-0 it would be 950 ≥ 915
    await poll(rig.desk)
    assert open_call(rig.desk) is not None
    # Restarted on a snapshot repeating both: DEP-0 is known as received before.
    cursors_gone(rig)
    restarted = await rig.new_desk()
    await poll(restarted)
    assert open_call(restarted) is not None
    move(rig, "DEP-2", "65.00")
    await poll(restarted)
    assert (await ended(rig, call.call_id)).end_reason is EndReason.MET_BY_DEPOSIT


async def test_a_refused_movement_stops_an_end_by_deposit(rig: Rig) -> None:
    # The desk cannot know the net while a movement of the account was refused (it may
    # have been a withdrawal): no end by deposit until a snapshot brings it valid.
    move(
        rig,
        "DEP-1",
        "1015.00",
        quotes=[{"symbol": "B.SG", "price": "19.00"}],
        malformed=[{"movement_id": "WD-X", "account_id": "A1001", "amount": 900}],
    )
    await poll(rig.desk)
    assert open_call(rig.desk) is not None
    assert rig.desk.engine.view.rejected_records == 1  # counted, shown
    # The day's snapshot (after a 410) brings the movement valid: a withdrawal of 900,
    # so the net is 115 and the call stays open.
    rig.sim.store.put(
        "cash_movements",
        {
            "movement_id": "WD-X",
            "account_id": "A1001",
            "currency": "SGD",
            "amount": "900.00",
            "kind": "withdrawal",
            "ts": rig.sim.clock().isoformat(),
        },
    )
    cursors_gone(rig)
    await poll(rig.desk)
    assert rig.desk.engine.view.rejected_records == 0
    call = open_call(rig.desk)
    assert call is not None
    assert rig.desk.engine.deposits is not None
    assert net_deposits(rig.desk.engine.deposits.movements_of(call)) == D("115.00")


async def test_met_while_its_figures_were_incomplete_it_ends_on_the_next_complete_poll(
    rig: Rig,
) -> None:
    # The deposits arrive while A1001 holds a stock without a price: no call ends on
    # incomplete data. Then, on a fresh snapshot (its columns rebuilt), prices fall and
    # the figures are complete: the columns would only re-price the call (its amount
    # moved, still due); the lifecycle sees it whole and ends it by deposit.
    call_id = seed_call_id(rig.desk)
    rig.sim.publish(
        {"positions": [{"account_id": "A1001", "symbol": "NOQ.SG", "quantity": "100"}]}
    )
    move(rig, "DEP-1", "1015.00")
    await poll(rig.desk)
    assert "A1001" in rig.desk.engine.state.incomplete
    assert open_call(rig.desk) is not None
    rig.sim.publish(
        {
            "positions": [{"account_id": "A1001", "symbol": "NOQ.SG", "quantity": "0"}],
            "quotes": [{"symbol": "B.SG", "price": "19.00"}],
        }
    )
    cursors_gone(rig)
    await poll(rig.desk)
    assert open_call(rig.desk) is None
    stored = await ended(rig, call_id)
    assert stored.end_reason is EndReason.MET_BY_DEPOSIT
    assert stored.call_amount > 0
