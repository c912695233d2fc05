"""Two processes writing one desk's calls: a write over the other's change is refused and
the call read again, never overwritten (SQLite here; PostgreSQL in tests/ui/test_shared_desk.py).

`rig.desk` plays the engine; `rig.new_desk()` another process on the same database and
broker (a terminal), each with its own copy of the calls.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from risk_tui.core.actions import ActionRefused
from risk_tui.core.lifecycle import CallState, EndReason
from tests.clocks import SGT
from tests.desk_rig import Rig, desk_rig, seed_call_id
from tests.factories import SUPERVISOR, TRADER


@pytest.fixture
async def rig(db_url: str) -> AsyncIterator[Rig]:
    async with desk_rig(db_url) as desk:
        yield desk


async def test_the_engine_does_not_end_a_call_a_terminal_changed_meanwhile(rig: Rig) -> None:
    engine = rig.desk
    terminal = await rig.new_desk()
    call_id = seed_call_id(engine)
    moved_to = (rig.clock() + timedelta(days=3)).astimezone(SGT)
    request = await terminal.intents.move_deadline(call_id, moved_to, "client travelling", TRADER)
    await terminal.approvals.approve(request.approval_id, request.details_hash, SUPERVISOR)
    moved = terminal.engine.open_calls["A1001"]
    assert (moved.version, moved.deadline) == (2, moved_to)
    # The engine has not heard: its copy is version 1. The client pays; its poll ends
    # the call on that copy, which the store refuses (and its END snapshot with it).
    rig.sim.publish({"cash": [{"account_id": "A1001", "currency": "SGD", "balance": "0"}]})
    await engine.poller.poll()
    assert [s.scenario for s in await rig.store.history.snapshots_for(call_id)] == ["trigger"]
    reread = engine.engine.open_calls["A1001"]
    assert (reread.version, reread.deadline) == (2, moved_to)  # read again, as stored
    # The next poll decides again on the call as stored, though nothing moved.
    await engine.poller.poll()
    stored = await rig.store.calls.get_call(call_id)
    assert stored is not None
    assert (stored.state, stored.end_reason, stored.deadline) == (
        CallState.ENDED,
        EndReason.MET,
        moved_to,
    )
    assert [s.scenario for s in await rig.store.history.snapshots_for(call_id)] == [
        "trigger",
        "end",
    ]


async def test_an_action_on_a_call_changed_elsewhere_is_refused_and_shown_anew(
    rig: Rig,
) -> None:
    engine = rig.desk
    terminal = await rig.new_desk()
    call_id = seed_call_id(engine)
    later = (rig.clock() + timedelta(days=3)).astimezone(SGT)
    moving = await terminal.intents.move_deadline(call_id, later, "client travelling", TRADER)
    # Meanwhile the engine's desk notifies the client: a lifecycle change (version 2).
    await engine.engine.record_notification(call_id, rig.clock())
    # The terminal still holds version 1: the approved move is refused, not written over it.
    with pytest.raises(ActionRefused, match="changed meanwhile"):
        await terminal.approvals.approve(moving.approval_id, moving.details_hash, SUPERVISOR)
    stored = await rig.store.calls.get_call(call_id)
    assert stored is not None
    assert stored.state is CallState.NOTIFIED
    assert stored.deadline != later
    shown = terminal.engine.open_call(call_id)  # the terminal shows the call as it is now
    assert shown is not None
    assert (shown.state, shown.version) == (CallState.NOTIFIED, 2)
    # Decided again on the call as it is: the request is still pending, and goes through.
    done = await terminal.approvals.approve(moving.approval_id, moving.details_hash, SUPERVISOR)
    assert done.state.value == "executed"
    stored = await rig.store.calls.get_call(call_id)
    assert stored is not None
    assert (stored.deadline, stored.version) == (later, 3)
