"""The Desk API's trade figures (`after_trades`, `cure`) on the simulator's seed desk, and the
lifecycle agreeing with them: what the dialog says meets the call ends it once filled;
what it says leaves an amount to collect leaves the call open for that amount."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from risk_tui.core.actions import OrderIntent, new_client_order_id
from risk_tui.core.cure import CureMethod, TradeError, TradeLine
from risk_tui.core.lifecycle import EndReason
from risk_tui.core.model import Side
from risk_tui.desk.service import DeskService
from tests.brute_cure import brute_force
from tests.desk_rig import Rig, desk_rig, seed_call_id
from tests.factories import TRADER


@pytest.fixture
async def rig(db_url: str) -> AsyncIterator[Rig]:
    async with desk_rig(db_url) as desk:
        yield desk


async def _fill(rig: Rig, account_id: str, lines: list[TradeLine]) -> None:
    """Send the lines as market orders on the account's call and let them fill."""
    call_id = seed_call_id(rig.desk, account_id)
    for line in lines:
        intent = OrderIntent(
            client_order_id=new_client_order_id(),
            account_id=account_id,
            symbol=line.symbol,
            side=line.side,
            quantity=line.quantity,
            order_type="market",
            limit_price=None,
            reason="margin_call",
            reference=call_id,
            operator=TRADER.name,
        )
        await rig.desk.intents.submit_order(intent, TRADER)
    rig.sim.tick()  # market orders fill at the last price
    await rig.desk.trading.refresh_orders()
    await rig.desk.poller.poll()


async def test_the_desks_cure_of_a1001_is_least_and_ends_the_call(rig: Rig) -> None:
    api = DeskService(rig.desk, TRADER)
    cure = api.cure("A1001")
    assert cure is not None
    assert (cure.in_call, cure.call_amount, cure.method) == (
        True,
        Decimal("1015.00"),
        CureMethod.EXACT,
    )
    assert [(x.symbol, x.side, x.quantity) for x in cure.lines] == [
        ("A.SG", Side.SELL, Decimal("100")),
        ("B.SG", Side.SELL, Decimal("100")),
    ]
    engine = rig.desk.engine
    policy = engine.state.policies[engine.book.accounts["A1001"].market]
    assert brute_force(engine.book, "A1001", policy).least_value == cure.value
    call_id = seed_call_id(rig.desk)
    await _fill(rig, "A1001", [TradeLine(x.symbol, x.side, x.quantity) for x in cure.lines])
    assert "A1001" not in engine.open_calls  # the lifecycle agrees: met
    ended = await rig.store.calls.get_call(call_id)
    assert ended is not None
    assert ended.end_reason is EndReason.LIQUIDATED


async def test_leaves_70_says_so_and_the_call_stays_open_for_70(rig: Rig) -> None:
    api = DeskService(rig.desk, TRADER)
    seven_hundred_a = [TradeLine("A.SG", Side.SELL, Decimal("700"))]
    after = api.after_trades("A1001", seven_hundred_a)
    assert after is not None
    assert not after.meets_call
    assert after.left_to_collect == Decimal("70.00")
    await _fill(rig, "A1001", seven_hundred_a)
    call = rig.desk.engine.open_calls["A1001"]
    assert call.call_amount == Decimal("70.00")  # what the dialog said, to the cent


async def test_d4001_intraday_the_old_covers_figure_was_not_a_cure(rig: Rig) -> None:
    """The issue's D4001: "B.SG sell 300 … Meets the call" filled and left 3.00 called."""
    api = DeskService(rig.desk, TRADER)
    sold = [TradeLine("B.SG", Side.SELL, Decimal("300"))]
    after = api.after_trades("D4001", sold)
    assert after is not None
    assert not after.meets_call
    left = after.left_to_collect
    assert left > 0
    cure = api.cure("D4001")
    assert cure is not None
    assert cure.meets_call
    await _fill(rig, "D4001", sold)
    assert rig.desk.engine.open_calls["D4001"].call_amount == left


async def test_queries_for_accounts_without_figures_or_not_in_call(rig: Rig) -> None:
    api = DeskService(rig.desk, TRADER)
    assert api.cure("NOPE") is None
    assert api.after_trades("NOPE", []) is None
    assert api.cure("I7001") is None  # incomplete: no price for NOQ.SG
    assert api.cure("C6001") is None  # a cash account is not monitored
    safe = api.cure("S5001")
    assert safe is not None
    assert (safe.in_call, safe.lines, safe.meets_call) == (False, (), True)
    with pytest.raises(TradeError, match="more than the 1000 held"):
        api.after_trades("A1001", [TradeLine("A.SG", Side.SELL, Decimal("1100"))])
