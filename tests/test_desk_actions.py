"""The desk acting on the simulator: a notice notifies the call; a liquidation cures it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from risk_tui.core.actions import (
    ActionRefused,
    MessageIntent,
    OrderIntent,
    SendState,
    new_client_order_id,
    new_message_id,
)
from risk_tui.core.lifecycle import CallState, EndReason
from risk_tui.core.records import OrderOutcome
from risk_tui.core.roles import Actor, Role
from risk_tui.storage import run_verify
from tests.desk_rig import Rig, desk_rig, seed_call_id
from tests.factories import TRADER, sell_order


@pytest.fixture
async def rig(db_url: str) -> AsyncIterator[Rig]:
    async with desk_rig(db_url) as desk:
        yield desk


async def test_message_notifies_the_call_with_a_snapshot(rig: Rig) -> None:
    call_id = seed_call_id(rig.desk)
    intent = MessageIntent(
        new_message_id(),
        "A1001",
        "email",
        "Margin call",
        "Please deposit SGD 1,015.00 by 25 Nov 15:00.",
        call_id,
        "jdoe",
    )
    outcome = await rig.desk.trading.send_message(intent, TRADER)
    again = await rig.desk.trading.send_message(intent, TRADER)  # a double key press
    assert outcome.send_state is SendState.ACKNOWLEDGED
    assert not again.created
    assert rig.sim.message_posts[intent.message_id] == 1
    call = rig.desk.engine.open_calls["A1001"]
    assert call.state is CallState.NOTIFIED
    assert call.notified_call_amount == Decimal("1015.00")
    scenarios = [s.scenario for s in await rig.store.history.snapshots_for(call_id)]
    assert scenarios == ["trigger", "notification"]
    assert rig.desk.engine.view.warnings[0].call.state is CallState.NOTIFIED


async def test_liquidation_fills_through_the_feed_and_ends_the_call_liquidated(rig: Rig) -> None:
    call_id = seed_call_id(rig.desk)
    intent = sell_order("200", client_order_id=new_client_order_id(), reference=call_id)
    first = await rig.desk.intents.submit_order(intent, TRADER)
    second = await rig.desk.intents.submit_order(intent, TRADER)  # a double key press
    assert isinstance(first, OrderOutcome)
    assert isinstance(second, OrderOutcome)
    assert first.send_state is SendState.ACKNOWLEDGED
    assert not second.created
    assert rig.sim.order_posts[intent.client_order_id] == 1
    rig.sim.tick()  # the market order fills at 19.50
    await rig.desk.trading.refresh_orders()
    await rig.desk.poller.poll()  # the fill arrives as position and cash changes
    assert "A1001" not in rig.desk.engine.open_calls
    ended = await rig.store.calls.get_call(call_id)
    assert ended is not None
    assert ended.end_reason is EndReason.LIQUIDATED
    assert [s.scenario for s in await rig.store.history.snapshots_for(call_id)] == [
        "trigger",
        "end",
    ]
    assert len(await rig.store.orders.page()) == 1
    assert (await run_verify(rig.url)).ok


async def test_a_fill_seen_in_the_positions_first_still_ends_the_call_liquidated(
    rig: Rig,
) -> None:
    """The poll can bring the fill (positions, cash) before the order's status refresh
    does: the call is not ended "met" then; the desk asks for the orders' status and the
    next poll ends it "liquidated"."""
    call_id = seed_call_id(rig.desk)
    intent = sell_order("200", client_order_id=new_client_order_id(), reference=call_id)
    await rig.desk.intents.submit_order(intent, TRADER)
    rig.sim.tick()  # the market order fills at 19.50
    await rig.desk.poller.poll()  # positions and cash first; no order refresh yet
    assert "A1001" in rig.desk.engine.open_calls  # not ended "met" on that poll
    assert call_id in rig.desk.engine.calls.filled  # the desk asked for the order's status
    await rig.desk.poller.poll()
    ended = await rig.store.calls.get_call(call_id)
    assert ended is not None
    assert ended.end_reason is EndReason.LIQUIDATED
    assert [s.scenario for s in await rig.store.history.snapshots_for(call_id)] == [
        "trigger",
        "end",
    ]


async def test_refusals_viewer_oversize_and_not_in_call(rig: Rig) -> None:
    call_id = seed_call_id(rig.desk)

    def order(quantity: str) -> OrderIntent:
        return sell_order(quantity, client_order_id=new_client_order_id(), reference=call_id)

    with pytest.raises(ActionRefused):
        await rig.desk.intents.submit_order(order("100"), Actor("jdoe", Role.VIEWER))
    with pytest.raises(ActionRefused, match=r"larger|exceeds|more than"):
        await rig.desk.intents.submit_order(order("5000"), TRADER)
    safe = sell_order(
        "100",
        client_order_id=new_client_order_id(),
        account_id="S5001",
        symbol="A.SG",
        reference=None,
    )
    with pytest.raises(ActionRefused, match=r"not in (margin )?call"):
        await rig.desk.intents.submit_order(safe, TRADER)
    overridden = await rig.desk.intents.submit_order(
        safe, TRADER, override_reason="client asked, RO ok"
    )
    assert isinstance(overridden, OrderOutcome)
    assert overridden.send_state is SendState.ACKNOWLEDGED
    assert sum(rig.sim.order_posts.values()) == 1
