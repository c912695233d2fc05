"""The dialogs and commands behind the keys on a call's row: liquidate, auto-liquidate,
close, move the deadline, message, remark, exception flag, and the kill switch.

Each opens its dialog (a role the table does not allow is refused before it opens), and
hands what the operator confirmed to the desk through its API, saying in one line how
it went (`DeskHost.act`). The app runs each in a worker of the "dialog" group, so one
dialog is open at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

from risk_tui.core.actions import OrderIntent
from risk_tui.core.calendar import DeadlineRule
from risk_tui.core.clock import market_time
from risk_tui.core.four_eyes import ApprovalRequest, awaiting_line
from risk_tui.core.margin import AccountMargin
from risk_tui.core.model import Market
from risk_tui.core.money import format_money
from risk_tui.core.roles import Intent, allowed
from risk_tui.core.text import sanitize
from risk_tui.core.view import WarningRow
from risk_tui.screens.details import DetailsScreen
from risk_tui.widgets.dialogs import (
    AutoLiquidationDialog,
    LiquidateDialog,
    MessageDialog,
    RemarkDialog,
)
from risk_tui.widgets.dialogs.call_change import CloseCallDialog, MoveDeadlineDialog
from risk_tui.widgets.dialogs.cancel_plan import CancelPlanDialog
from risk_tui.widgets.dialogs.holdings import worked
from risk_tui.widgets.dialogs.kill_switch import KillSwitchDialog, liquidation_halt
from risk_tui.widgets.host import DeskHost

if TYPE_CHECKING:
    from textual.app import App

    from risk_tui.desk.api import DeskApi

log = logging.getLogger(__name__)


class CallDialogs:
    """The dialogs of the operator's actions on calls, for the app that hosts them."""

    def __init__(self, app: App[Any]) -> None:
        self.app = app

    @property
    def host(self) -> DeskHost:
        return cast("DeskHost", self.app)

    def _row(self, account_id: str) -> WarningRow | None:
        view = self.host.view
        if view is None:
            return None
        return next((r for r in view.warnings if r.account_id == account_id), None)

    async def details(
        self, account_id: str, act: Callable[[str], Awaitable[object]] | None = None
    ) -> str | None:
        """Show the call's details, following the desk, until the operator leaves; what
        they chose to do next (`DetailsScreen`'s answer), None when there is no call.
        With `act`, what they choose is done over the details (`DetailsScreen.act`)."""
        row = self._row(account_id)
        desk = self.host.desk
        if row is None or desk is None:
            return None
        call = row.call
        # The call and its figures at once; its snapshots, remarks and orders (read from
        # the database) fill in as they come, so the key is answered within a frame.
        role = self.host.actor.role
        screen = DetailsScreen(
            call,
            desk.account(account_id),
            (),
            (),
            (),
            self.host.now(),
            can_trade=allowed(role, Intent.LIQUIDATE),
            can_message=allowed(role, Intent.MESSAGE),
            can_remark=allowed(role, Intent.REMARK),
            figures=desk,
            act=act,
        )
        dismissed = self.app.push_screen(screen, wait_for_dismiss=True)
        screen.follow_desk()
        details = await desk.call_details(call.call_id)
        screen.update_history(details.snapshots, details.remarks)
        screen.update_records(details.orders, details.messages, details.plans)
        return await dismissed

    def _margin(self, account_id: str) -> AccountMargin | None:
        """The account's full figures now (positions, ratios): what a dialog works
        from; None when unknown or incomplete."""
        desk = self.host.desk
        result = None if desk is None else desk.account(account_id)
        return result if result is not None and result.incomplete is None else None

    def _deadline_rule(self, market: Market) -> DeadlineRule | None:
        """Where a deadline in `market` may be moved to: the desk's own rule (its calendars
        and cut-off), which the desk checks again; None when the app has no calendars."""
        calendars = self.host.calendars
        if calendars is None:
            return None
        return self.host.settings.margin_call.deadline_rule(calendars, market)

    async def liquidate(self, account_id: str) -> None:
        row = self._row(account_id)
        margin = self._margin(account_id)
        if row is None or margin is None or self.host.desk is None:
            self.app.notify("no figures for this account yet", severity="warning")
            return
        if not allowed(self.host.actor.role, Intent.LIQUIDATE):
            self.host.refuse("liquidate")
            return
        working = worked(await self.host.desk.orders_for_call(row.call.call_id))
        desk = self.host.desk
        halted = await liquidation_halt(desk)
        margin = self._margin(account_id) or margin  # the figures now, after the awaits
        intents = await self.app.push_screen_wait(
            LiquidateDialog(row.call, margin, self.host.actor, working, figures=desk, halted=halted)
        )
        if not intents:
            return
        await self.host.act(lambda: self._submit_all(intents), "liquidation")

    async def _submit_all(self, intents: list[OrderIntent]) -> str:
        assert self.host.desk is not None
        states = []
        for intent in intents:
            outcome = await self.host.desk.submit_order(intent)
            if isinstance(outcome, ApprovalRequest):
                states.append(f"{intent.symbol} {awaiting_line(outcome)}")
            else:
                states.append(f"{intent.symbol} {outcome.send_state.value}")
        return "orders: " + ", ".join(states)

    async def auto_liquidate(self, account_id: str) -> None:
        row = self._row(account_id)
        margin = self._margin(account_id)
        if row is None or margin is None or self.host.desk is None:
            return
        if not allowed(self.host.actor.role, Intent.AUTO_LIQUIDATE):
            self.host.refuse("auto-liquidation")
            return
        desk = self.host.desk
        halted = await liquidation_halt(desk)
        margin = self._margin(account_id) or margin  # the figures now, after the await
        plan = await self.app.push_screen_wait(
            AutoLiquidationDialog(
                row.call,
                margin,
                self.host.actor,
                self.host.now(),
                figures=desk,
                halted=halted,
                rule=self._deadline_rule(row.call.market),
            )
        )
        if plan is None:
            return

        async def schedule() -> str:
            outcome = await desk.schedule_auto_liquidation(plan)
            if isinstance(outcome, ApprovalRequest):
                return awaiting_line(outcome)
            when = market_time(plan.execute_at, row.call.market, full=True)
            return f"auto-liquidation scheduled for {when}"

        await self.host.act(schedule, "auto-liquidation")

    async def close_call(self, account_id: str) -> None:
        row = self._row(account_id)
        if row is None or self.host.desk is None:
            return
        if not allowed(self.host.actor.role, Intent.CLOSE_CALL):
            self.host.refuse("close call")
            return
        answer = await self.app.push_screen_wait(CloseCallDialog(row.call, self.host.actor))
        if answer is None:
            return
        end_reason, note = answer
        desk, call_id = self.host.desk, row.call.call_id

        async def ask() -> str:
            return awaiting_line(await desk.close_call(call_id, note, close_reason=end_reason))

        await self.host.act(ask, "close call")

    async def move_deadline(self, account_id: str) -> None:
        row = self._row(account_id)
        if row is None or self.host.desk is None:
            return
        if not allowed(self.host.actor.role, Intent.MOVE_DEADLINE):
            self.host.refuse("move deadline")
            return
        rule = self._deadline_rule(row.call.market)
        answer = await self.app.push_screen_wait(
            MoveDeadlineDialog(row.call, self.host.actor, self.host.now(), rule)
        )
        if answer is None:
            return
        deadline, reason = answer
        desk, call_id = self.host.desk, row.call.call_id

        async def ask() -> str:
            return awaiting_line(await desk.move_deadline(call_id, deadline, reason))

        await self.host.act(ask, "deadline move")

    async def use_kill_switch(self, desk: DeskApi) -> bool:
        """Engage or release the kill switch; whether it was asked to move."""
        switch = await desk.kill_switch()  # as stored now, not as last shown
        working = await desk.live_orders()
        reason = await self.app.push_screen_wait(
            KillSwitchDialog(switch, self.host.actor, working_orders=working)
        )
        if reason is None:
            return False
        try:
            if switch.engaged:
                line = (await desk.release_kill_switch(reason)).describe()
                failed = False
            else:
                engagement = await desk.engage_kill_switch(reason)
                line, failed = engagement.summary(), bool(engagement.failed)
        except Exception as problem:  # the supervisor must see every refusal or failure
            log.exception("kill switch failed")
            detail = getattr(problem, "problems", None)
            line, failed = "; ".join(detail) if detail else str(problem), True
        # Orders the switch could not stop are named, loudly: someone must act on them.
        self.app.notify(
            sanitize(line, max_length=600),
            severity="error" if failed else "warning",
            timeout=20 if failed else 10,
        )
        return True

    async def message(self, account_ids: list[str]) -> bool:
        """Compose and send margin-call messages; whether any were sent."""
        rows = [row for key in account_ids if (row := self._row(key)) is not None]
        if not rows or self.host.desk is None:
            return False
        if not allowed(self.host.actor.role, Intent.MESSAGE):
            self.host.refuse("message")
            return False
        languages = self.host.desk.message_languages(
            (row.call.account_id, row.call.market) for row in rows
        )
        intents = await self.app.push_screen_wait(
            MessageDialog(
                [(row.call, self._margin(row.account_id)) for row in rows],
                self.host.actor,
                self.host.now(),
                languages=languages,
            )
        )
        if not intents:
            return False
        desk = self.host.desk

        async def send() -> str:
            sent = 0
            for intent in intents:
                outcome = await desk.send_message(intent)
                sent += outcome.send_state.value == "acknowledged"
            return f"{sent} of {len(intents)} messages accepted by the broker"

        await self.host.act(send, "message")
        return True

    async def remark(self, account_id: str, *, mark_exception: bool = False) -> None:
        row = self._row(account_id)
        if row is None or self.host.desk is None:
            return
        if not allowed(self.host.actor.role, Intent.REMARK):
            self.host.refuse("remark")
            return
        history = await self.host.desk.remarks(row.call.call_id)
        answer = await self.app.push_screen_wait(
            RemarkDialog(row.call, history, exception=True if mark_exception else None)
        )
        if answer is None:
            return
        text, exception = answer
        desk = self.host.desk

        async def save() -> str:
            await desk.add_remark(row.call.call_id, text, exception=exception)
            return "remark saved"

        await self.host.act(save, "remark")

    async def toggle_exception(self, account_id: str) -> None:
        row = self._row(account_id)
        if row is None or self.host.desk is None:
            return
        desk = self.host.desk
        flag = not row.call.exception
        if flag and not row.call.remark.strip():
            # An exception must say why: ask for the remark, the box already ticked.
            await self.remark(account_id, mark_exception=True)
            return

        async def flip() -> str:
            await desk.set_exception(row.call.call_id, flag)
            return f"{'marked as' if flag else 'cleared as'} exception"

        await self.host.act(flip, "exception flag")

    async def cancel_plan(self, account_id: str, plan_id: str) -> None:
        """Withdraw a scheduled plan of the account's call, with a reason."""
        row = self._row(account_id)
        desk = self.host.desk
        if row is None or desk is None:
            return
        if not allowed(self.host.actor.role, Intent.CANCEL_PLAN):
            self.host.refuse("cancel plan")
            return
        details = await desk.call_details(row.call.call_id)
        plan = next((p for p in details.plans if p.plan_id == plan_id), None)
        if plan is None:
            self.app.notify(f"plan {sanitize(plan_id)} is not this call's", severity="warning")
            return
        settings = self.host.settings
        threshold = format_money(
            settings.four_eyes.liquidation_notional, settings.desk.reporting_currency, code=True
        )
        reason = await self.app.push_screen_wait(
            CancelPlanDialog(plan, row.call, self.host.actor, threshold)
        )
        if reason is None:
            return

        async def cancel() -> str:
            done = await desk.cancel_auto_liquidation(plan_id, reason)
            if isinstance(done, ApprovalRequest):
                return awaiting_line(done)
            return f"auto-liquidation {done.plan_id} {done.state.value}"

        await self.host.act(cancel, "cancel plan")
