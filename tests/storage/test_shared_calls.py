"""Calls written by several processes of one desk: versions, claims, re-pricing."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from risk_tui.core.lifecycle import (
    CallState,
    LifecycleBatch,
    SnapshotScenario,
    close_by_operator,
    move_deadline,
)
from risk_tui.core.margin import RiskLevel
from risk_tui.storage import CallChanged, ClaimTaken, Store
from tests.factories import T0, make_call, snapshot_of


async def test_a_lifecycle_write_over_a_newer_version_is_refused(store: Store) -> None:
    opened = replace(make_call("A1"), version=1)
    await store.calls.commit(LifecycleBatch(calls=[opened]))
    # A terminal closes the call; the engine, not having heard yet, escalates its copy.
    closed = close_by_operator(opened, T0 + timedelta(minutes=5), "client paid").call
    await store.calls.commit(LifecycleBatch(calls=[closed]))
    escalated = replace(
        opened, state=CallState.FORCE_CALL, force_call_at=T0, version=opened.version + 1
    )
    snapshot = snapshot_of(escalated, SnapshotScenario.FORCE_CALL)
    with pytest.raises(CallChanged) as refused:
        await store.calls.commit(LifecycleBatch(calls=[escalated], snapshots=[snapshot]))
    assert refused.value.call_ids == {opened.call_id}
    assert await store.calls.get_call(opened.call_id) == closed
    assert await store.history.snapshots_for(opened.call_id) == []  # nothing of it written


async def test_a_poll_skips_the_changed_call_and_writes_the_rest(store: Store) -> None:
    first = replace(make_call("A1"), version=1)
    second = replace(make_call("A2"), version=1)
    await store.calls.commit(LifecycleBatch(calls=[first, second]))
    moved = move_deadline(first, T0 + timedelta(days=5), "agreed with the client")
    await store.calls.commit(LifecycleBatch(calls=[moved]))
    stale_end = replace(first, state=CallState.ENDED, ended_at=T0, version=2)
    other_end = replace(second, state=CallState.ENDED, ended_at=T0, version=2)
    refused = await store.calls.commit(
        LifecycleBatch(
            calls=[stale_end, other_end],
            snapshots=[
                snapshot_of(first, SnapshotScenario.END),
                snapshot_of(second, SnapshotScenario.END),
            ],
        ),
        skip_changed=True,
    )
    assert refused == {first.call_id}
    assert await store.calls.get_call(first.call_id) == moved  # the operator's move stands
    assert (await store.calls.get_call(second.call_id)) == other_end
    assert [s.call_id for s in await store.history.snapshots_for(first.call_id)] == []
    assert [s.scenario for s in await store.history.snapshots_for(second.call_id)] == ["end"]


async def test_re_pricing_never_touches_an_ended_call(store: Store) -> None:
    opened = replace(make_call("A1"), version=1)
    await store.calls.commit(LifecycleBatch(calls=[opened]))
    closed = close_by_operator(opened, T0, "paid").call
    await store.calls.commit(LifecycleBatch(calls=[closed]))
    late = replace(opened, call_amount=Decimal("99.00"), risk_level=RiskLevel.FORCE_CALL)
    await store.calls.commit(LifecycleBatch(repriced=[late]))
    assert await store.calls.get_call(opened.call_id) == closed


async def test_a_claim_is_one_operator_at_a_time(store: Store) -> None:
    call = replace(make_call("A1"), version=1)
    await store.calls.commit(LifecycleBatch(calls=[call]))
    claimed = await store.calls.set_claim(call.call_id, "alice", T0, claim=True)
    assert (claimed.claimed_by, claimed.claimed_at) == ("alice", T0)
    assert claimed.version == call.version  # a claim is not a lifecycle change
    with pytest.raises(ClaimTaken, match="claimed by alice"):
        await store.calls.set_claim(call.call_id, "bob", T0, claim=True)
    with pytest.raises(ClaimTaken, match="claimed by alice"):
        await store.calls.set_claim(call.call_id, "bob", T0, claim=False)  # not bob's to give up
    again = await store.calls.set_claim(call.call_id, "alice", T0, claim=True)  # a double press
    assert again.claimed_by == "alice"
    # A supervisor takes it over, naming whose it was.
    taken = await store.calls.set_claim(call.call_id, "sue", T0, claim=True, over="alice")
    assert taken.claimed_by == "sue"
    released = await store.calls.set_claim(call.call_id, "sue", T0, claim=False)
    assert released.claimed_by is None
    assert released.claimed_at is None
    bob = await store.calls.set_claim(call.call_id, "bob", T0, claim=True)
    assert bob.claimed_by == "bob"
    actions = [a.action for a in await store.history.audit_for(call.call_id)]
    assert actions == [
        "call_claimed",
        "call_claimed",
        "call_claimed",
        "call_released",
        "call_claimed",
    ]
    taken_from = [a.details for a in await store.history.audit_for(call.call_id)][2]
    assert taken_from == {"taken_from": "alice"}


async def test_a_lifecycle_write_keeps_the_claim(store: Store) -> None:
    call = replace(make_call("A1"), version=1)
    await store.calls.commit(LifecycleBatch(calls=[call]))
    await store.calls.set_claim(call.call_id, "alice", T0, claim=True)
    escalated = replace(call, state=CallState.FORCE_CALL, version=2)  # the engine's copy
    await store.calls.commit(LifecycleBatch(calls=[escalated]))
    stored = await store.calls.get_call(call.call_id)
    assert stored is not None
    assert (stored.state, stored.claimed_by) == (CallState.FORCE_CALL, "alice")


async def test_an_ended_call_cannot_be_claimed(store: Store) -> None:
    call = replace(make_call("A1"), version=1)
    await store.calls.commit(LifecycleBatch(calls=[call]))
    await store.calls.commit(LifecycleBatch(calls=[close_by_operator(call, T0, "paid").call]))
    with pytest.raises(ClaimTaken, match="has ended"):
        await store.calls.set_claim(call.call_id, "alice", T0, claim=True)
