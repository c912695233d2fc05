"""The details of a call stay current while shown: figures, amount and level with every
poll, the feed's banner, the messages sent, the auto-liquidation plans (cancellable);
a call with a plan says so in its row."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from textual.widgets import Static

from risk_tui.app import RiskApp
from risk_tui.config import FourEyesSettings
from risk_tui.core.actions import (
    AutoCondition,
    AutoLiquidationPlan,
    MessageIntent,
    PlanLine,
    new_message_id,
)
from risk_tui.core.four_eyes import ApprovalRequest
from risk_tui.core.model import Side
from risk_tui.core.records import AutoLiquidationState
from risk_tui.core.roles import Actor, Role
from risk_tui.screens.details import DetailsScreen
from risk_tui.sim.app import SimState
from risk_tui.widgets.feed_banner import FeedBanner
from risk_tui.widgets.live_table import LiveTable
from tests.ui.helpers import TRADER1, desk_of
from tests.ui.test_orders import desk_ready, notes, running
from tests.waiting import until


def details_of(app: RiskApp) -> DetailsScreen:
    screen = app.screen
    assert isinstance(screen, DetailsScreen)
    return screen


def plain_summary(app: RiskApp) -> str:
    """The summary's figures as shown (whole, or `…` when too narrow)."""
    shown = details_of(app).query("#summary Figure, #summary FigureLines")
    return "\n".join(str(widget.render()) for widget in shown)


async def open_a1001(app: RiskApp, pilot: object) -> DetailsScreen:
    await desk_ready(app)
    app.open_details("A1001")
    await until(lambda: isinstance(app.screen, DetailsScreen), what="the details screen")
    return details_of(app)


async def test_the_details_follow_the_polls_and_carry_the_feed_banner(tmp_path: Path) -> None:
    state = SimState(tick_interval=None)
    async with running(state, tmp_path) as (app, pilot):
        screen = await open_a1001(app, pilot)
        await until(lambda: "1,015.00" in plain_summary(app), what="the call amount shown")
        banner = screen.query_one("#details-banner", FeedBanner)
        await until(lambda: "LIVE" in str(banner.render()), what="the banner says LIVE")
        # B.SG falls to 19.00: equity 9,000; MM 1,250 + 8,550 = 9,800; call 1,280.
        state.publish({"quotes": [{"symbol": "B.SG", "price": "19.00"}]})
        await until(lambda: "1,280.00" in plain_summary(app), what="the new call amount")
        assert "9,000.00" in plain_summary(app)


async def test_the_details_say_when_the_call_is_no_longer_open(tmp_path: Path) -> None:
    state = SimState(tick_interval=None)
    async with running(state, tmp_path) as (app, pilot):
        screen = await open_a1001(app, pilot)
        state.publish({"quotes": [{"symbol": "B.SG", "price": "22.00"}]})  # the call is met
        title = screen.query_one("#details-title", Static)
        await until(lambda: "NO LONGER OPEN" in str(title.render()), what="the ended call said")


async def test_the_details_list_the_messages_sent_about_the_call(tmp_path: Path) -> None:
    state = SimState(tick_interval=None)
    async with running(state, tmp_path) as (app, pilot):
        screen = await open_a1001(app, pilot)
        desk = desk_of(app)
        call = desk.engine.open_calls["A1001"]
        intent = MessageIntent(
            new_message_id(), "A1001", "sms", "Margin call", "Please deposit", call.call_id,
            TRADER1.name,
        )  # fmt: skip
        await desk.trading.send_message(intent, TRADER1)
        table = screen.query_one("#messages", LiveTable)
        await until(lambda: table.row_count == 1, seconds=8, what="the message listed")
        cells = row_words(table, 0)
        assert {"sms", "Margin call", TRADER1.name} <= set(cells)


def row_words(table: LiveTable, index: int) -> list[str]:
    """The cells of the table's row at `index`, as text."""
    row = table.get_row(table.key_at(index))
    return [] if row is None else [cell.plain for cell in row.cells]


def plan_for(app: RiskApp) -> AutoLiquidationPlan:
    desk = desk_of(app)
    call = desk.engine.open_calls["A1001"]
    return AutoLiquidationPlan(
        plan_id=f"RT-P-{call.call_id}",
        call_id=call.call_id,
        account_id="A1001",
        execute_at=desk.engine.clock() + timedelta(hours=2),
        condition=AutoCondition.STILL_IN_CALL,
        lines=(PlanLine("B.SG", Side.SELL, Decimal("200")),),
        operator=TRADER1.name,
    )


async def test_a_scheduled_plan_shows_in_the_row_and_the_details_and_x_cancels_it(
    tmp_path: Path,
) -> None:
    state = SimState(tick_interval=None)
    async with running(state, tmp_path) as (app, pilot):
        await desk_ready(app)
        desk = desk_of(app)
        plan = plan_for(app)
        stored = await desk.intents.schedule_plan(plan, TRADER1)
        assert getattr(stored, "state", None) is AutoLiquidationState.SCHEDULED
        table = app.query_one("#warnings-pane-table", LiveTable)

        def flag() -> str:
            row = table.get_row("A1001")
            return " ".join(cell.plain for cell in row.cells) if row else ""

        await until(lambda: "AUTO-LIQ" in flag(), what="the row's plan flag")
        screen = await open_a1001(app, pilot)
        plans = screen.query_one("#plans", LiveTable)
        await until(lambda: plans.row_count == 1, what="the plan listed")
        assert "scheduled" in row_words(plans, 0)
        await pilot.press("x")
        await until(lambda: app.screen.__class__.__name__ == "CancelPlanDialog", what="dialog")
        await pilot.press(*"client deposited")
        await pilot.press("ctrl+r")
        await pilot.press("ctrl+s")
        stored_plan = desk.store.plans

        async def cancelled() -> bool:
            now = await stored_plan.get_auto_liquidation(plan.plan_id)
            return now is not None and now.state is AutoLiquidationState.CANCELLED

        await until(cancelled, what="the plan cancelled")
        # The dialog closes back onto the details, which read the plan again at once.
        await until(lambda: app.screen is screen, what="back on the details")
        await until(
            lambda: "cancelled" in row_words(plans, 0),
            seconds=2,
            what="the plan shown cancelled",
        )
        await pilot.press("escape")
        await until(lambda: "AUTO-LIQ" not in flag(), what="the row's flag gone")


async def test_cancelling_a_plan_that_needed_approval_goes_to_approval(tmp_path: Path) -> None:
    state = SimState(tick_interval=None)
    four_eyes = FourEyesSettings(liquidation_notional=Decimal("5000"))
    async with running(state, tmp_path, four_eyes=four_eyes) as (app, pilot):
        await desk_ready(app)
        desk = desk_of(app)
        plan = replace(plan_for(app), lines=(PlanLine("B.SG", Side.SELL, Decimal("300")),))
        request = await desk.intents.schedule_plan(plan, TRADER1)  # SGD 5,850: four eyes
        assert isinstance(request, ApprovalRequest)
        supervisor = Actor("sup1", Role.SUPERVISOR)
        await desk.approvals.approve(request.approval_id, request.details_hash, supervisor)
        screen = await open_a1001(app, pilot)
        plans = screen.query_one("#plans", LiveTable)
        await until(lambda: plans.row_count == 1, what="the plan listed")
        await pilot.press("x")
        await until(lambda: app.screen.__class__.__name__ == "CancelPlanDialog", what="dialog")
        hints = " ".join(str(hint.render()) for hint in app.screen.query(".hint"))
        assert "worth more than SGD 5,000.00" in hints
        await pilot.press(*"client deposited", "ctrl+r", "ctrl+s")
        await until(
            lambda: any("cancel auto-liq awaiting approval RT-AP-" in n for n in notes(app)),
            what="told it awaits approval",
        )
        stored = await desk.store.plans.get_auto_liquidation(plan.plan_id)
        assert stored is not None
        assert stored.state is AutoLiquidationState.SCHEDULED  # until a second person approves
