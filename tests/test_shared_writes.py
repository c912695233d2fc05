"""Two processes writing one desk's calls: a write over the other's change is refused and
the call read again, never overwritten (SQLite here; PostgreSQL in tests/ui/test_shared_desk.py).

`rig.desk` plays the engine; `rig.new_desk()` another process on the same database and
broker (a terminal), each with its own copy of the calls.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from risk_tui.core.actions import Actor, Role
from risk_tui.core.lifecycle import CallState, EndReason
from risk_tui.feed.gateway import ActionRefused
from tests.desk_rig import SGT, Rig, desk_rig, seed_call_id

TRADER = Actor("jdoe", Role.TRADER)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with desk_rig(tmp_path) as desk:
        yield desk


async def test_the_engine_does_not_end_a_call_a_terminal_changed_meanwhile(rig: Rig) -> None:
    engine = rig.desk
    terminal = await rig.new_desk()
    call_id = seed_call_id(engine)
    moved_to = (rig.clock() + timedelta(days=3)).astimezone(SGT)
    moved = await terminal.move_deadline(call_id, moved_to, "client travelling", TRADER)
    assert moved.version == 2
    # The engine has not heard: its copy is version 1. The client pays; its poll ends
    # the call on that copy, which the store refuses (and its END snapshot with it).
    rig.sim.publish({"cash": [{"account_id": "A1001", "currency": "SGD", "balance": "0"}]})
    await engine.poller.poll()
    assert [s.scenario for s in await rig.store.snapshots_for(call_id)] == ["trigger"]
    reread = engine.engine.open_calls["A1001"]
    assert (reread.version, reread.deadline) == (2, moved_to)  # read again, as stored
    # The next poll decides again on the call as stored, though nothing moved.
    await engine.poller.poll()
    stored = await rig.store.get_call(call_id)
    assert stored is not None
    assert (stored.state, stored.end_reason, stored.deadline) == (
        CallState.ENDED,
        EndReason.MET,
        moved_to,
    )
    assert [s.scenario for s in await rig.store.snapshots_for(call_id)] == ["trigger", "end"]


async def test_an_action_on_a_call_changed_elsewhere_is_refused_and_shown_anew(
    rig: Rig,
) -> None:
    engine = rig.desk
    terminal = await rig.new_desk()
    call_id = seed_call_id(engine)
    await engine.close_call(call_id, "client paid at the counter", TRADER)
    # The terminal still shows the call open; moving its deadline is refused, not written.
    later = (rig.clock() + timedelta(days=3)).astimezone(SGT)
    with pytest.raises(ActionRefused, match="changed meanwhile"):
        await terminal.move_deadline(call_id, later, "client travelling", TRADER)
    stored = await rig.store.get_call(call_id)
    assert stored is not None and stored.state is CallState.ENDED and stored.deadline != later
    assert terminal.engine.open_call(call_id) is None  # it shows the call as it is now
    actions = [a.action for a in await rig.store.audit_for(call_id)]
    assert actions == ["call_closed"]
