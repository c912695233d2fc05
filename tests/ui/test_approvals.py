"""The Approvals tab and the kill switch in the terminal, on the real simulator.

A supervisor approves (or rejects) a trader's request from tab 7 after reading it in
full; the requester cannot approve their own; a close asked with `c` says it went to
approval; the kill switch (ctrl+k, supervisors only) needs a reason, stops the working
orders and shows a banner on every tab until it is released.
"""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

from textual.widgets import Button, TabbedContent

from risk_tui.app import RiskApp
from risk_tui.config import FourEyesSettings
from risk_tui.core.close_reasons import CloseReason
from risk_tui.core.four_eyes import ApprovalRequest, ApprovalState
from risk_tui.core.roles import Actor, Role
from risk_tui.screens.approvals import ApprovalsPane, request_cells
from risk_tui.sim.app import SimState
from risk_tui.storage.tables import kill_switch
from risk_tui.widgets.dialogs.approval import DecideDialog, RequestDialog, request_facts
from risk_tui.widgets.dialogs.call_change import CloseCallDialog
from risk_tui.widgets.dialogs.kill_switch import KillSwitchDialog
from risk_tui.widgets.kill_switch_banner import KillSwitchBanner
from risk_tui.widgets.live_table import LiveTable
from tests.factories import make_call, sell_order
from tests.ui.conftest import NOW
from tests.ui.helpers import TRADER1, desk_of
from tests.ui.test_orders import HOSTILE, desk_ready, notes, running
from tests.waiting import until

OPERATORS = {"trader1": Role.TRADER, "sup1": Role.SUPERVISOR, "viewer1": Role.VIEWER}
LOW = FourEyesSettings(liquidation_notional=D("5000"))


def table_of(app: RiskApp) -> LiveTable:
    return app.query_one("#approvals-pane-table", LiveTable)


def row_text(app: RiskApp, key: str) -> str:
    row = table_of(app).get_row(key)
    return " ".join(cell.plain for cell in row.cells) if row else ""


async def requested(app: RiskApp, quantity: str = "300") -> ApprovalRequest:
    """A liquidation above the threshold, asked by trader1 on another terminal."""
    desk = desk_of(app)
    assert desk is not None
    intent = sell_order(
        quantity,
        client_order_id=f"RT-O-{quantity}",
        reference=desk.engine.open_calls["A1001"].call_id,
        operator=TRADER1.name,
    )
    outcome = await desk.intents.submit_order(intent, TRADER1)
    assert isinstance(outcome, ApprovalRequest)
    return outcome


async def test_a_supervisor_approves_a_request_after_reading_it_in_full(tmp_path: Path) -> None:
    state = SimState(tick_interval=None)
    async with running(state, tmp_path, operator="sup1", operators=OPERATORS, four_eyes=LOW) as (
        app,
        pilot,
    ):
        await desk_ready(app)
        request = await requested(app)
        await pilot.press("7")
        await until(lambda: "PENDING" in row_text(app, request.approval_id))
        row = row_text(app, request.approval_id)
        for shown in ("liquidation", "A1001", "sell 300 B.SG market", "SGD 5,850.00", "trader1"):
            assert shown in row
        await until(
            lambda: "Approvals (1)" in str(app.query_one(TabbedContent).get_tab("approvals").label)
        )
        await pilot.press("y")
        await until(lambda: isinstance(app.screen, DecideDialog))
        facts = str(app.screen.query_one(".facts").render())
        for shown in (request.approval_id, request.details_hash, "order.quantity: 300", "trader1"):
            assert shown in facts
        assert state.order_posts == {}  # nothing goes before the confirmation
        await pilot.press("ctrl+s")
        await until(lambda: state.order_posts == {"RT-O-300": 1})
        await until(lambda: any(f"request {request.approval_id} executed" in n for n in notes(app)))
        assert app.desk is not None
        stored = await desk_of(app).approvals.request(request.approval_id)
        assert stored is not None
        assert stored.state is ApprovalState.EXECUTED
        assert stored.decided_by == "sup1"
        await until(lambda: table_of(app).get_row(request.approval_id) is None)


async def test_the_requester_cannot_approve_and_a_rejection_needs_a_reason(
    tmp_path: Path,
) -> None:
    state = SimState(tick_interval=None)
    async with running(state, tmp_path, operator="trader1", operators=OPERATORS, four_eyes=LOW) as (
        app,
        pilot,
    ):
        await desk_ready(app)
        request = await requested(app)
        await pilot.press("7")
        await until(lambda: "PENDING" in row_text(app, request.approval_id))
        await pilot.press("y")
        await until(lambda: any("nobody approves their own request" in n for n in notes(app)))
        assert app.screen is app.screen_stack[0]  # no confirmation offered
        await pilot.press("n")  # the requester may withdraw it, with a reason
        await until(lambda: isinstance(app.screen, DecideDialog))
        await pilot.press("ctrl+s")
        await pilot.pause(0.2)
        assert isinstance(app.screen, DecideDialog)  # no reason: nothing sent
        await pilot.click("#note")
        await pilot.press(*"changed my mind", "ctrl+s")
        await until(lambda: any(f"request {request.approval_id} rejected" in n for n in notes(app)))
    assert state.order_posts == {}


async def test_enter_opens_the_request_and_its_requester_withdraws_it_from_there(
    tmp_path: Path,
) -> None:
    state = SimState(tick_interval=None)
    async with running(state, tmp_path, operator="trader1", operators=OPERATORS, four_eyes=LOW) as (
        app,
        pilot,
    ):
        await desk_ready(app)
        request = await requested(app)
        await pilot.press("7")
        await until(lambda: "PENDING" in row_text(app, request.approval_id))
        await pilot.press("enter")
        await until(lambda: isinstance(app.screen, RequestDialog))
        dialog = app.screen
        status = str(dialog.query_one(".status").render())
        facts = str(dialog.query_one(".facts").render())
        for shown in ("PENDING", "asked", "trader1"):
            assert shown in status
        for shown in (request.approval_id, request.details_hash, "order.quantity: 300"):
            assert shown in facts
        labels = {str(button.label) for button in dialog.query(Button)}
        assert "Withdraw…  n" in labels
        assert not any("Approve" in label for label in labels)  # never one's own
        await pilot.press("y")  # not offered: nothing happens
        await pilot.pause(0.2)
        assert app.screen is dialog
        await pilot.press("n")
        await until(lambda: isinstance(app.screen, DecideDialog))
        await pilot.press(*"sent the wrong size", "ctrl+s")
        await until(lambda: any(f"request {request.approval_id} rejected" in n for n in notes(app)))
        await until(lambda: table_of(app).get_row(request.approval_id) is None)
        await pilot.press("h")  # the decided requests: the withdrawal, by whom and why
        await until(lambda: "withdrawn" in row_text(app, request.approval_id))
        row = row_text(app, request.approval_id)
        assert "sent the wrong size" in row
        assert row.count("trader1") == 2  # asked by and decided by
        await pilot.press("enter")
        await until(lambda: isinstance(app.screen, RequestDialog))
        status = str(app.screen.query_one(".status").render())
        assert "withdrawn" in status
        assert "Decided by   trader1" in status
        assert "sent the wrong size" in status
        labels = {str(button.label) for button in app.screen.query(Button)}
        assert labels == {"Back  esc"}  # decided: nothing more to do with it
        await pilot.press("escape")
        await pilot.press("h")
        await until(lambda: table_of(app).get_row(request.approval_id) is None)
    assert state.order_posts == {}


async def test_a_supervisor_opens_a_request_and_approves_it_from_there(tmp_path: Path) -> None:
    state = SimState(tick_interval=None)
    async with running(state, tmp_path, operator="sup1", operators=OPERATORS, four_eyes=LOW) as (
        app,
        pilot,
    ):
        await desk_ready(app)
        request = await requested(app)
        await pilot.press("7")
        await until(lambda: "PENDING" in row_text(app, request.approval_id))
        await pilot.press("enter")
        await until(lambda: isinstance(app.screen, RequestDialog))
        labels = {str(button.label) for button in app.screen.query(Button)}
        assert {"Approve…  y", "Reject…  n"} <= labels
        await pilot.press("y")
        await until(lambda: isinstance(app.screen, DecideDialog))
        await pilot.press("ctrl+s")
        await until(lambda: state.order_posts == {"RT-O-300": 1})
        await pilot.press("h")
        await until(lambda: "executed" in row_text(app, request.approval_id))
        assert "sup1" in row_text(app, request.approval_id)
        assert app.query_one(ApprovalsPane).check_action("approve", ()) is False


async def test_a_close_asked_with_c_goes_to_approval_and_says_so(tmp_path: Path) -> None:
    state = SimState(tick_interval=None)
    async with running(state, tmp_path, operators=OPERATORS) as (app, pilot):
        await desk_ready(app)
        await until(lambda: app._current_row() is not None)
        row = app._current_row()
        assert row is not None
        await pilot.press("c")
        await until(lambda: isinstance(app.screen, CloseCallDialog))
        await pilot.press("space")  # the first end reason: met by deposit
        await pilot.click("#reason")
        await pilot.press(*"deposit seen at the bank", "ctrl+r")
        await pilot.press("ctrl+s")
        await until(lambda: any("close call awaiting approval RT-AP-" in n for n in notes(app)))
        assert app.desk is not None
        open_calls = desk_of(app).engine.open_calls
        assert open_calls[row.account_id].call_id == row.call.call_id  # not closed until approved
        (request,) = await desk_of(app).store.approvals.approvals_for(row.call.call_id)
        assert request.details["close_reason"] == "met_by_deposit"
        assert request.details["reason"] == "deposit seen at the bank"


async def test_the_kill_switch_needs_a_reason_stops_orders_and_shows_a_banner(
    tmp_path: Path,
) -> None:
    state = SimState(tick_interval=None)
    async with running(state, tmp_path, operator="sup1", operators=OPERATORS) as (app, pilot):
        await desk_ready(app)
        banner = app.query_one(KillSwitchBanner)
        assert not banner.display or not banner.has_class("-engaged")
        assert app.desk is not None
        intent = sell_order(
            "200",
            reference=desk_of(app).engine.open_calls["A1001"].call_id,
            operator=TRADER1.name,
        )
        await desk_of(app).intents.submit_order(intent, TRADER1)
        await pilot.press("ctrl+k")
        await until(lambda: isinstance(app.screen, KillSwitchDialog))
        await pilot.press("ctrl+s")  # no reason yet: refused in the dialog
        await pilot.pause(0.2)
        assert isinstance(app.screen, KillSwitchDialog)
        await pilot.click("#reason")
        await pilot.press(*"runaway algo", "ctrl+s")
        await until(lambda: banner.has_class("-engaged"))
        shown = str(banner.render())
        assert "KILL SWITCH engaged by sup1" in shown
        assert "liquidations blocked" in shown
        assert "runaway algo" in shown
        assert {o.status for o in state.orders.values()} == {"cancelled"}
        await until(lambda: any("1 of 1 working orders stopped" in n for n in notes(app)))
        await pilot.press("6")  # on every tab
        assert banner.has_class("-engaged")
        await pilot.press("ctrl+k")  # release
        await until(lambda: isinstance(app.screen, KillSwitchDialog))
        await pilot.click("#reason")
        await pilot.press(*"all clear", "ctrl+s")
        await until(lambda: not banner.has_class("-engaged"))


async def test_a_kill_switch_that_cannot_be_read_shows_as_blocking(tmp_path: Path) -> None:
    """Issue 13 point 8: fail closed — an unreadable switch is shown blocking, never released."""
    state = SimState(tick_interval=None)
    async with running(state, tmp_path, operator="sup1", operators=OPERATORS) as (app, _pilot):
        await desk_ready(app)
        banner = app.query_one(KillSwitchBanner)
        async with desk_of(app).store.engine.begin() as conn:
            await conn.execute(kill_switch.delete())
        await until(lambda: banner.has_class("-engaged"), seconds=5)
        shown = str(banner.render())
        assert "KILL SWITCH state cannot be read: liquidations blocked" in shown
        assert "kill switch row missing" in shown


async def test_only_a_supervisor_is_offered_the_kill_switch(tmp_path: Path) -> None:
    state = SimState(tick_interval=None)
    async with running(state, tmp_path, operators=OPERATORS) as (app, pilot):
        await desk_ready(app)
        assert app.check_action("kill_switch", ()) is False
        await pilot.press("ctrl+k")
        await pilot.pause(0.3)
        assert app.screen is app.screen_stack[0]
        assert app.desk is not None
        assert not (await desk_of(app).kill_switch.state()).engaged
    async with running(state, tmp_path, operator="viewer1", operators=OPERATORS) as (app, pilot):
        await desk_ready(app)
        await pilot.press("7")
        pane = app.query_one(ApprovalsPane)
        assert pane.check_action("approve", ()) is False
        assert pane.check_action("reject", ()) is False


def test_rows_and_confirmation_show_outside_text_as_inert_data() -> None:
    from risk_tui.core.four_eyes import close_request

    call = make_call("A1001", client_name=HOSTILE)
    request = close_request(
        call, HOSTILE, Actor(HOSTILE, Role.TRADER), NOW, close_reason=CloseReason.WRITTEN_OFF
    )
    cells = request_cells(request, HOSTILE, NOW).cells
    facts = request_facts(request, client_name=HOSTILE)
    for text in (*cells, facts):
        assert not any(raw in text.plain for raw in ("\x1b", "\u202e"))
        assert not text.spans or all("link" not in str(span.style) for span in text.spans)
    assert "[b]bold[/b]" in cells[2].plain  # shown literally, never parsed as markup
