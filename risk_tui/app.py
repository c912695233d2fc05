"""The Textual app: wiring only — desk events in, operator intents out through the Desk API.

The app computes no margin and writes no SQL: it shows the desk's immutable views and
hands every action to the desk through `risk_tui.desk.api` (the only desk module the
terminal imports), which records it before it is sent.

Past 600 lines (about 610): the wiring of seven tabs, the feed and engine banners, the
palette's commands and the role checks of every key; its keys already live in
`screens.desk_keys` and its dialogs in `screens.call_dialogs`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import BindingType
from textual.screen import Screen
from textual.widgets import Input, Static, TabbedContent, TabPane
from textual.worker import Worker, WorkerError, get_current_worker

from risk_tui.config import Settings
from risk_tui.core.calendar import TradingCalendars
from risk_tui.core.clock import times_in, utc_now
from risk_tui.core.feed_health import FeedHealth
from risk_tui.core.four_eyes import KillSwitch
from risk_tui.core.roles import Actor, Intent, Role, allowed
from risk_tui.core.text import sanitize
from risk_tui.core.view import DeskView, WarningRow
from risk_tui.desk.api import (
    DeskApi,
    DeskEvent,
)
from risk_tui.screens.approvals import ApprovalsPane
from risk_tui.screens.call_dialogs import CallDialogs
from risk_tui.screens.desk_keys import desk_bindings
from risk_tui.screens.history import HistoryPane
from risk_tui.screens.keymap import binding_ids
from risk_tui.screens.orders import OrdersPane
from risk_tui.screens.palette import DeskCommands
from risk_tui.screens.shorts import ShortsPane
from risk_tui.screens.warnings import WarningsPane
from risk_tui.widgets.desk_footer import DeskFooter
from risk_tui.widgets.desk_messages import (
    DeskChanged,
    EngineUpdated,
    HealthUpdated,
    ViewUpdated,
    message_of,
)
from risk_tui.widgets.desk_pane import DeskPane
from risk_tui.widgets.desk_tabs import DeskTabs
from risk_tui.widgets.feed_banner import EngineBanner, FeedBanner
from risk_tui.widgets.kill_switch_banner import KillSwitchBanner
from risk_tui.widgets.live_table import LiveTable
from risk_tui.widgets.top_line import top_line

log = logging.getLogger(__name__)

# Opens the desk for an operator: the command line's composition root (`risk_tui.cli`).
DeskConnector = Callable[[Actor], AbstractAsyncContextManager[DeskApi]]

# The app's actions on a call's row, and the intent each one asks the desk for.
CALL_ACTIONS: dict[str, Intent] = {
    "liquidate": Intent.LIQUIDATE,
    "auto_liquidate": Intent.AUTO_LIQUIDATE,
    "close_call": Intent.CLOSE_CALL,
    "move_deadline": Intent.MOVE_DEADLINE,
    "message": Intent.MESSAGE,
    "remark": Intent.REMARK,
    "toggle_exception": Intent.REMARK,
    "claim": Intent.CLAIM,
}
READERS_STOP_WAIT = 5.0  # seconds the exit waits for the tabs' database reads to stop
KILL_SWITCH_INTERVAL = 1.0  # seconds between reads of the kill switch (shared by the desk)

TABS = (
    ("warnings", "1 Real-time warnings"),
    ("intraday", "2 Intraday margin"),
    ("shorts", "3 Short positions"),
    ("history", "4 History"),
    ("exceptions", "5 Exceptions"),
    ("orders", "6 Liquidation orders"),
    ("approvals", "7 Approvals"),
)


class RiskApp(App[int]):
    """The risk desk's terminal."""

    TITLE = "risk-tui"
    ENABLE_COMMAND_PALETTE = True
    COMMANDS = App.COMMANDS | {DeskCommands}
    CSS = """
    #top { height: 1; padding: 0 1; background: $panel; }
    TabbedContent { height: 1fr; }
    #filter { dock: bottom; display: none; }
    #filter.-shown { display: block; }
    .placeholder { padding: 1 2; }
    """

    # The desk's keys (`screens.desk_keys`); `check_action` decides where each works.
    BINDINGS: ClassVar[list[BindingType]] = desk_bindings(TABS)

    @classmethod
    def binding_ids(cls) -> frozenset[str]:
        """Every binding id `[keys]` may remap: the app's, its screens' and widgets'."""
        return binding_ids(cls)

    def __init__(
        self,
        settings: Settings,
        operator: str,
        connect: DeskConnector,
        *,
        calendars: TradingCalendars | None = None,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        notice: str | None = None,
    ) -> None:
        super().__init__()
        self.notice = notice  # said once the screen is up (the demo: a fresh start)
        self.settings = settings
        self.actor = Actor(operator, settings.role_of(operator))
        self.connect = connect
        self.calendars = calendars
        self.clock = clock
        self.monotonic = monotonic
        self.desk: DeskApi | None = None
        self.desk_error: Exception | None = None  # why the desk stopped, when it failed
        self.view: DeskView | None = None
        self.health: FeedHealth | None = None
        self._changed_rows = 0
        self._deferred = False
        self._desk_closing = False  # the desk is closing: no new reads of its database
        self._desk_worker: Worker[None] | None = None
        self.calls = CallDialogs(self)  # the dialogs and commands behind a call's keys
        self.kill_switch: KillSwitch | None = None  # as last read from the database
        self.pending_approvals = 0
        self.desk_zone = settings.desk.zone  # the header clock's zone (`desk.timezone`)
        self.clock_utc = False  # `z`: the header clock in UTC instead

    # --- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(self._top_line(), id="top")
        yield FeedBanner(id="banner")
        yield EngineBanner(id="engine-banner")
        yield KillSwitchBanner(id="kill-switch")
        with DeskTabs(TABS, id="tabs", initial="warnings"):
            with TabPane(TABS[0][1], id="warnings"):
                yield WarningsPane(id="warnings-pane")
            with TabPane(TABS[1][1], id="intraday"):
                yield WarningsPane(mode="intraday", calendars=self.calendars, id="intraday-pane")
            with TabPane(TABS[2][1], id="shorts"):
                yield ShortsPane(id="shorts-pane")
            with TabPane(TABS[3][1], id="history"):
                yield HistoryPane(id="history-pane")
            with TabPane(TABS[4][1], id="exceptions"):
                yield WarningsPane(mode="exceptions", id="exceptions-pane")
            with TabPane(TABS[5][1], id="orders"):
                yield OrdersPane(id="orders-pane")
            with TabPane(TABS[6][1], id="approvals"):
                yield ApprovalsPane(id="approvals-pane")
        yield Input(
            placeholder="filter: account, client or symbol — enter to apply, escape to clear",
            id="filter",
        )
        yield DeskFooter()

    def _top_line(self) -> Text:
        return top_line(self.actor, self.clock(), UTC if self.clock_utc else self.desk_zone)

    def action_toggle_utc(self) -> None:
        """The header clock in UTC, or back in the desk's zone."""
        self.clock_utc = not self.clock_utc
        self.query_one("#top", Static).update(self._top_line())

    def on_mount(self) -> None:
        if self.settings.keys:
            self.set_keymap(dict(self.settings.keys))
        if self.notice:
            self.notify(sanitize(self.notice), timeout=15)
        self._render_banner()
        self.set_interval(1.0, self._tick)
        self._desk_worker = self.run_desk()
        self.query_one("#warnings-pane", WarningsPane).table.focus()

    async def on_unmount(self) -> None:
        """Textual cancels the workers at exit without waiting for them: the desk's close
        (its feed, its database) is waited for here, or it would still be running when
        the event loop closes, and the loop's close can then wait for ever."""
        with contextlib.suppress(WorkerError, TimeoutError):
            async with asyncio.timeout(READERS_STOP_WAIT):
                if self._desk_worker is not None:
                    await self._desk_worker.wait()

    # --- the desk -------------------------------------------------------------------------

    @work(exclusive=True, exit_on_error=False, group="desk")
    async def run_desk(self) -> None:
        try:
            async with self.connect(self.actor) as desk:
                self.desk = desk
                events = desk.events()  # subscribed now: the first view is not missed
                self.run_worker(self._hear(events), group="events", exit_on_error=False)
                try:
                    await desk.run()
                finally:
                    await self._stop_readers()
        except Exception as problem:  # no desk, no screen: leave, and the caller says why
            log.exception("the desk stopped")
            self.desk_error = problem
            self.exit(return_code=1)

    async def _hear(self, events: AsyncIterator[DeskEvent]) -> None:
        """The desk's events, posted as the app's messages (a backlog collapses)."""
        async for event in events:
            self.post_message(message_of(event))

    async def _stop_readers(self) -> None:
        """Before the desk's database closes, every other worker (the tabs' and the kill
        switch's reads) is stopped and waited for: a read cancelled after the close would
        wait for ever on a connection that is gone, and hang the exit."""
        self._desk_closing = True  # no new reads start
        me = get_current_worker()
        others = [worker for worker in self.workers if worker is not me]
        for worker in others:
            worker.cancel()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(READERS_STOP_WAIT):
                await asyncio.gather(*(w.wait() for w in others), return_exceptions=True)

    def on_view_updated(self, message: ViewUpdated) -> None:
        self.view = message.view
        self._changed_rows = self._render_view()
        self._render_banner()
        if self.desk is not None:
            self.call_after_refresh(self.desk.painted)  # painted: the desk goes on

    def on_engine_updated(self, message: EngineUpdated) -> None:
        for banner in self.query(EngineBanner):
            banner.show(message.status)

    def on_desk_changed(self, message: DeskChanged) -> None:
        """Others' orders, requests or kill switch (everything, after a reconnect): read
        them again now rather than at the next periodic read."""
        tables = message.tables
        if not tables or "orders" in tables:
            for pane in self.query(OrdersPane):
                pane.changed_elsewhere()
        if not tables or "approvals" in tables:
            for approvals in self.query(ApprovalsPane):
                approvals.read_now()
        if (
            (not tables or "kill_switch" in tables)
            and self.desk is not None
            and not self._desk_closing
        ):
            self.read_kill_switch(self.desk)

    def on_health_updated(self, message: HealthUpdated) -> None:
        self.health = message.health
        self._render_banner()

    def _render_view(self, *, force: bool = False) -> int:
        """Show the latest view in every pane; how many rows it changed."""
        if self.view is None or not self.screen_stack:  # none: the app is closing
            return 0
        if self.screen is not self.screen_stack[0]:
            self._deferred = True  # a dialog or details is open: repaint when it closes
            return 0
        now = self.clock()
        # Every tab of calls stays current (hidden ones do not repaint); a tab whose view
        # is unchanged returns at once (`WarningsPane.show`).
        changed = [pane.show(self.view, now, force=force) for pane in self.query(WarningsPane)]
        self._refresh_desk_pane()
        # Every open call is on the Real-time or the Exceptions tab; intraday is a subset.
        return changed[0] + changed[2] if len(changed) == 3 else sum(changed)

    def _refresh_desk_pane(self) -> None:
        """The shown tab, when it reads the desk (shorts, history, orders), catches up."""
        pane = self._active_widget()
        if self._desk_closing or self.desk is None or self.view is None:
            return
        if isinstance(pane, DeskPane):
            pane.refresh_from(self.desk, self.view, self.clock())

    def _render_banner(self) -> None:
        for screen in self.screen_stack:  # none while the app is closing
            for banner in screen.query(FeedBanner):
                banner.show(self.health, self.monotonic(), changed_rows=self._changed_rows)

    def _tick(self) -> None:
        for top in self.query("#top").results(Static):
            top.update(self._top_line())
        self._render_banner()
        if self.desk is not None and not self._desk_closing:
            self.read_kill_switch(self.desk)
        if not self.screen_stack:  # the app is closing
            return
        if self._deferred and self.screen is self.screen_stack[0]:
            self._deferred = False
            self._render_view()
        elif self.view is not None and self.screen is self.screen_stack[0]:
            self._render_view()  # elapsed times and market clocks move on

    @work(exclusive=True, group="kill-switch", exit_on_error=False)
    async def read_kill_switch(self, desk: DeskApi) -> None:
        """The kill switch and the requests waiting, as the shared database has them now."""
        try:
            switch = await desk.kill_switch()
            pending = await desk.pending_approvals()
        except Exception as problem:  # fail closed: shown as blocking until read again
            log.exception("reading the kill switch failed")
            switch, pending = KillSwitch.unreadable(str(problem)), self.pending_approvals
        if switch != self.kill_switch:
            self.kill_switch = switch
            for banner in self.query(KillSwitchBanner):
                banner.show(switch)
            self.refresh_bindings()
        if pending != self.pending_approvals:
            self.pending_approvals = pending
            for tabs in self.query(DeskTabs):  # none while the app closes
                tabs.set_count("approvals", pending)

    # --- helpers --------------------------------------------------------------------------

    def _active_widget(self) -> WarningsPane | DeskPane | None:
        """The pane of the shown tab."""
        with contextlib.suppress(Exception):  # none while the app starts or closes
            active = self.query_one(TabbedContent).active
            pane = self.query_one(f"#{active}-pane")
            if isinstance(pane, WarningsPane | DeskPane):
                return pane
        return None

    def _pane(self) -> WarningsPane | None:
        """The shown tab's pane when it lists calls (the call actions work there only)."""
        pane = self._active_widget()
        return pane if isinstance(pane, WarningsPane) else None

    def _current_row(self) -> WarningRow | None:
        """The call under the cursor (a row without a call says why there is none)."""
        pane = self._pane()
        if pane is None:
            return None
        row = self._row(key := pane.table.cursor_key)
        if row is None and (why := pane.no_call(key)) is not None:
            self.notify(sanitize(why, max_length=300), severity="warning")
        return row

    def refuse(self, what: str) -> None:
        self.notify(f"{what}: not allowed for role {self.actor.role.value}", severity="error")

    def now(self) -> datetime:
        return self.clock()

    def times(self, text: str) -> str:
        """`text` with its raw ISO times (a toast's) on the desk's clock, labelled."""
        return times_in(text, self.desk_zone, now=self.clock())

    def repaint(self) -> None:
        self._render_view(force=True)

    # --- actions --------------------------------------------------------------------------

    @on(TabbedContent.TabActivated)
    def _tab_shown(self, event: TabbedContent.TabActivated) -> None:
        """Hidden tabs keep their data current but do not repaint (dolphie's habit)."""
        active = event.tabbed_content.active
        for pane in self.query(WarningsPane):
            table = pane.table
            hidden = pane.id != f"{active}-pane"
            if hidden and not table.paused:
                table.suspend_repaints()
            elif not hidden and table.paused:
                table.resume_repaints()
        self._refresh_desk_pane()
        self.refresh_bindings()  # the call actions are offered on the call tabs only

    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        self._focus_table()

    def _focus_table(self) -> None:
        """Focus the shown tab's table now: `focus()` would move it on a later callback,
        after the keys typed next (a `/` among them) had moved it elsewhere."""
        pane = self._active_widget()
        if pane is not None:
            self.screen.set_focus(pane.table)

    def action_sort(self, column: str) -> None:
        pane = self._pane()
        if pane is not None:
            pane.sort(column)

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("-shown")
        box.display = True  # at once: keys typed right after `/` must land in the box,
        self.screen.set_focus(box)  # so focus now, not on a later callback as focus() does
        self.refresh_bindings()  # esc clears the filter from now on

    @on(Input.Submitted, "#filter")
    def _apply_filter(self, event: Input.Submitted) -> None:
        self._set_filter(event.value)
        self._focus_table()

    def _set_filter(self, text: str) -> None:
        def symbols_of(account_id: str) -> set[str]:
            entry = None if self.desk is None else self.desk.accounts([account_id]).get(account_id)
            return set() if entry is None else set(entry.symbols)

        for pane in self.query(WarningsPane):
            pane.set_text_filter(text, symbols_of)
        for desk_pane in self.query(DeskPane):
            desk_pane.set_text_filter(text)

    def action_leave(self) -> None:
        box = self.query_one("#filter", Input)
        if box.has_class("-shown"):
            box.value = ""
            box.remove_class("-shown")
            box.display = False
            self._set_filter("")
            self._focus_table()
            self.refresh_bindings()

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """Textual's commands but two: its "Keys" panel (it squeezes the desk to 50 columns
        and escape does not close it) gives way to our `?` help, and its "Quit" to ours,
        both offered by `DeskCommands` with the desk's keys. The rest are found by name
        only: the palette opens on the desk's commands."""
        for command in super().get_system_commands(screen):
            if command.title not in ("Keys", "Quit"):
                yield command._replace(discover=False)

    def action_help(self) -> None:
        from risk_tui.screens.help import HelpScreen

        self.push_screen(HelpScreen(self, dict(self.settings.keys)))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Destructive actions are not even offered to a role that may not take them."""
        intent = CALL_ACTIONS.get(action)
        if intent is not None:
            if self._pane() is None:
                return False  # not on a tab of calls: nothing to act on
            return allowed(self.actor.role, intent)
        if action == "kill_switch":
            return allowed(self.actor.role, Intent.KILL_SWITCH)
        if action in ("filter", "leave", "show_tab"):
            # The tabs' keys work where the tabs are, not over a details screen or a
            # dialog. `children` is the screen on top, under the command palette if open.
            if not self.screen_stack or tuple(self.children) != (self.screen_stack[0],):
                return False
            if action == "leave":  # while there is a filter to clear, and no palette open
                shown = self.query_one("#filter", Input).has_class("-shown")
                return shown and self.screen is self.screen_stack[0]
        return True

    @on(LiveTable.RowSelected)
    def _open_details(self, event: LiveTable.RowSelected) -> None:
        tables = [pane.table for pane in self.query(WarningsPane)]
        if event.control in tables and self._current_row() is not None:
            self.open_details(event.key)

    @work(exclusive=True, group="dialog")
    async def open_details(self, account_id: str) -> None:
        """The call's details, live, until the operator leaves; the dialogs its keys open
        sit over the details, and closing one lands back on them."""
        await self.calls.details(account_id, act=lambda choice: self._act_on(account_id, choice))

    async def _act_on(self, account_id: str, choice: str) -> None:
        """The dialog the details' key asked for, on the call of `account_id`."""
        calls = self.calls
        if choice.startswith("cancel_plan:"):
            await calls.cancel_plan(account_id, choice.removeprefix("cancel_plan:"))
        elif choice == "liquidate":
            await calls.liquidate(account_id)
        elif choice == "message":
            await calls.message([account_id])
        elif choice == "remark":
            await calls.remark(account_id)
        elif choice == "auto_liquidate":
            await calls.auto_liquidate(account_id)

    def _row(self, account_id: str | None) -> WarningRow | None:
        if self.view is None or account_id is None:
            return None
        return next((r for r in self.view.warnings if r.account_id == account_id), None)

    def _on_call(self, act: Callable[[str], object]) -> None:
        """A call key: `act` on the call under the cursor (a row without one says why)."""
        row = self._current_row()
        if row is not None:
            act(row.account_id)

    def action_liquidate(self) -> None:
        self._on_call(self.liquidate)

    def action_auto_liquidate(self) -> None:
        self._on_call(self.auto_liquidate)

    def action_message(self) -> None:
        pane = self._pane()
        if pane is None:
            return
        # A marked row without a call (an incomplete account) has no call to write about.
        calls = {row.account_id for row in self.view.warnings} if self.view else set()
        marked = calls.intersection(pane.table.marked_keys, pane.table.visible_keys())
        targets = sorted(marked) or ([row.account_id] if (row := self._current_row()) else [])
        if targets:
            self.message(targets)

    def action_remark(self) -> None:
        self._on_call(self.remark)

    def action_toggle_exception(self) -> None:
        self._on_call(self.toggle_exception)

    def action_claim(self) -> None:
        """Claim the call ("I'm on it"), or give up one's own claim (a supervisor: anyone's)."""
        row = self._current_row()
        if row is None or self.desk is None:
            return
        desk, call = self.desk, row.call
        release = call.claimed_by is not None and (
            call.claimed_by == self.actor.name or self.actor.role is Role.SUPERVISOR
        )

        async def claim() -> str:
            stored = await desk.claim(call.call_id, release=release)
            if release:
                return f"{call.account_id}: claim released"
            return f"{call.account_id}: claimed by {stored.claimed_by}"

        self.run_worker(self.act(claim, "claim"), group="claim")

    # The keys' dialogs and commands are `screens.call_dialogs`; each runs in a worker of
    # its own group, one dialog at a time.

    @work(exclusive=True, group="dialog")
    async def liquidate(self, account_id: str) -> None:
        await self.calls.liquidate(account_id)

    @work(exclusive=True, group="dialog")
    async def auto_liquidate(self, account_id: str) -> None:
        await self.calls.auto_liquidate(account_id)

    def action_close_call(self) -> None:
        self._on_call(self.close_call)

    def action_move_deadline(self) -> None:
        self._on_call(self.move_deadline)

    @work(exclusive=True, group="dialog")
    async def close_call(self, account_id: str) -> None:
        await self.calls.close_call(account_id)

    @work(exclusive=True, group="dialog")
    async def move_deadline(self, account_id: str) -> None:
        await self.calls.move_deadline(account_id)

    def action_kill_switch(self) -> None:
        if not allowed(self.actor.role, Intent.KILL_SWITCH):
            self.refuse("kill switch")
            return
        self.use_kill_switch()

    @work(exclusive=True, group="dialog")
    async def use_kill_switch(self) -> None:
        desk = self.desk
        if desk is not None and await self.calls.use_kill_switch(desk):
            self.read_kill_switch(desk)

    @work(exclusive=True, group="dialog")
    async def message(self, account_ids: list[str]) -> None:
        if await self.calls.message(account_ids):
            pane = self._pane()
            if pane is not None:
                pane.table.clear_marks()

    @work(exclusive=True, group="dialog")
    async def remark(self, account_id: str, *, mark_exception: bool = False) -> None:
        await self.calls.remark(account_id, mark_exception=mark_exception)

    @work(exclusive=True, group="dialog")
    async def toggle_exception(self, account_id: str) -> None:
        await self.calls.toggle_exception(account_id)

    @work(exclusive=True, group="dialog")
    async def cancel_plan(self, account_id: str, plan_id: str) -> None:
        await self.calls.cancel_plan(account_id, plan_id)

    async def act(self, action: Callable[[], Awaitable[str]], what: str) -> None:
        """Run one desk action and tell the operator how it went, in one line."""
        try:
            summary = await action()
        except Exception as problem:  # the operator must see every refusal or failure
            log.exception("%s failed", what)
            detail = getattr(problem, "problems", None)
            text = "; ".join(detail) if detail else str(problem)
            self.notify(
                f"{what} refused or failed: {sanitize(self.times(text), max_length=300)}",
                severity="error",
                timeout=10,
            )
            return
        self.notify(sanitize(self.times(str(summary)), max_length=300))
        self._render_view(force=True)
