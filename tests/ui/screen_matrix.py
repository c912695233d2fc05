"""Issue 14's screen matrix: every tab, the details and each dialog, at 80×24, 120×40 and
200×50, in 256 colours and under NO_COLOR — the desk's screens as an operator's terminal
draws them, for the snapshots and the layout assertions of tests/ui/test_snapshots.py.

Colour modes are the two terminals the issue was tried in:

- `256`: TERM=xterm-256color. Textual's driver hands every frame to a Rich console whose
  colour system is detected from the terminal, and Rich downgrades each segment's
  truecolor to the nearest of the 256 (`Color.downgrade`). `App.export_screenshot`
  always records truecolor, so `screen_svg` draws the frame the same way it does and
  downgrades each segment first, as the terminal's console would.
- `nocolor`: TERM=xterm with NO_COLOR=1. Textual reads NO_COLOR from the environment
  when the app is constructed (`App.__init__` adds its `Monochrome` line filter, or
  `NoColor` under an ANSI theme), so the app is built with the variable set; the frame
  is then downgraded to the 16 colours of TERM=xterm. Such an SVG holds greys only:
  `test_nocolor_screens_are_grey` checks it.

Booting the desk and preparing it costs seconds, so one app run visits a whole group of
screens (`GROUPS`: the tabs as a trader, then the details and dialogs as a supervisor)
and takes every shot of the group at one size in one colour mode; the runs are cached
for the session (`shots`), and each test reads the shot it names. The desk is
the seed (plus the RECALL change, for the Short positions tab) with a stopped clock,
deterministic ids and: a scheduled auto-liquidation on A1001, a working limit order of
A1001, an exception on D4001, a liquidation waiting for approval, and three ended calls
in History.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import io
import itertools
import re
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import pytest
from rich.color import ColorSystem
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style
from rich.terminal_theme import TerminalTheme
from textual.pilot import Pilot
from textual.screen import Screen

from risk_tui.app import TABS, RiskApp
from risk_tui.config import FourEyesSettings
from risk_tui.core import actions, four_eyes, lifecycle
from risk_tui.core.actions import AutoCondition, AutoLiquidationPlan, PlanLine
from risk_tui.core.lifecycle import LifecycleBatch
from risk_tui.core.model import Side
from risk_tui.core.money import format_money
from risk_tui.core.roles import Role
from risk_tui.screens.details import DetailsScreen
from risk_tui.screens.help import HelpScreen
from risk_tui.screens.history_details import HistoryDetailsScreen
from risk_tui.screens.short_details import ShortDetailsScreen
from risk_tui.storage import Store, create_engine, upgrade
from risk_tui.widgets.live_table import LiveTable
from tests.ui.helpers import TRADER1, desk_of, screen_lines
from tests.ui.test_approvals import requested
from tests.ui.test_history import seed_history
from tests.ui.test_orders import desk_ready, place
from tests.waiting import until

SIZES = ((80, 24), (120, 40), (200, 50))
COLOURS = {"256": ColorSystem.EIGHT_BIT, "nocolor": ColorSystem.STANDARD}
OPERATORS = {"trader1": Role.TRADER, "sup1": Role.SUPERVISOR}
# Low enough that a 300-share liquidation of A1001 (SGD 5,850) waits for approval.
FOUR_EYES = FourEyesSettings(liquidation_notional=Decimal("5000"))


def size_id(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


# --- drawing a frame ---------------------------------------------------------------------


class _Downgraded:
    """A renderable: the screen's full frame with every colour downgraded to `system`."""

    def __init__(self, app: RiskApp, system: ColorSystem) -> None:
        self.frame = app.screen._compositor.render_update(
            full=True, screen_stack=app._background_screens, simplify=True
        )
        self.system = system

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        assert self.frame is not None
        for text, style, control in console.render(self.frame, options):
            if control or style is None:
                yield Segment(text, style, control)
                continue
            color = style.color.downgrade(self.system) if style.color else None
            bgcolor = style.bgcolor.downgrade(self.system) if style.bgcolor else None
            yield Segment(text, style + Style.from_color(color, bgcolor))


# xterm's own palette (its 16 colours as TERM=xterm shows them; 16–255 are Rich's table),
# on black: the NO_COLOR shots' greys stay grey, where Rich's default SVG theme tints them.
XTERM = TerminalTheme(
    (0, 0, 0),
    (229, 229, 229),
    [
        (0, 0, 0),
        (205, 0, 0),
        (0, 205, 0),
        (205, 205, 0),
        (0, 0, 238),
        (205, 0, 205),
        (0, 205, 205),
        (229, 229, 229),
    ],
    [
        (127, 127, 127),
        (255, 0, 0),
        (0, 255, 0),
        (255, 255, 0),
        (92, 92, 255),
        (255, 0, 255),
        (0, 255, 255),
        (255, 255, 255),
    ],
)


def screen_svg(app: RiskApp, colours: str) -> str:
    """The screen as `App.export_screenshot` draws it, in the colour mode's colours."""
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system="truecolor",
        record=True,
        legacy_windows=False,
        safe_box=False,
    )
    console.print(_Downgraded(app, COLOURS[colours]))
    return console.export_svg(title=app.title, theme=XTERM)


def svg_lines(svg: str) -> list[str]:
    """The text of an SVG screenshot, row by row (for a readable diff when one changes)."""
    rows: dict[int, list[str]] = {}
    for row, text in re.findall(r'clip-path="url\(#terminal-(?:\d+-)?line-(\d+)\)">([^<]*)<', svg):
        text = html.unescape(text).replace("\xa0", " ").replace("\n", "")
        rows.setdefault(int(row), []).append(text)
    return ["".join(rows.get(n, [])) for n in range(max(rows, default=-1) + 1)]


# --- the shots -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Shot:
    lines: list[str]  # the screen's plain text, row by row (`screen_lines`)
    svg: str


@dataclass
class Run:
    """One app run's shots by screen name, and what the desk computed while it ran."""

    shots: dict[str, Shot]
    call_amounts: dict[str, tuple[str, str]]  # account → (call amount as formatted, currency)


Shoot = Callable[[str], Awaitable[None]]


async def settle(pilot: Pilot[Any]) -> None:
    """Until two looks 0.1 s apart see the same screen (the desk reads and redraws in
    workers: a shot waits for them to finish)."""
    app = pilot.app
    await pilot.wait_for_scheduled_animations()
    before = screen_lines(app)
    for _ in range(40):
        await pilot.pause(0.1)
        now = screen_lines(app)
        if now == before:
            return
        before = now
    pytest.fail("the screen never stopped changing")


async def back_to_the_list(pilot: Pilot[Any]) -> None:
    app = pilot.app
    while len(app.screen_stack) > 1:
        await pilot.press("escape")
        await pilot.pause()


def app_of(pilot: Pilot[Any]) -> RiskApp:
    assert isinstance(pilot.app, RiskApp)
    return pilot.app


def table(app: RiskApp, tab: str) -> LiveTable:
    return app.query_one(f"#{tab}-pane-table", LiveTable)


async def on_row(pilot: Pilot[Any], tab: str, key: str) -> None:
    """Tab `tab` shown, its cursor on the row `key`."""
    await pilot.press(str([t for t, _ in TABS].index(tab) + 1))
    rows = table(app_of(pilot), tab)
    await until(lambda: rows.get_row(key) is not None, what=f"{key} on the {tab} tab")
    assert rows.move_cursor(key)
    await pilot.pause()


async def opened(pilot: Pilot[Any], key: str, screen: str | type[Screen[Any]]) -> None:
    await pilot.press(key)
    if isinstance(screen, str):
        await until(lambda: type(pilot.app.screen).__name__ == screen, what=screen)
    else:
        await until(lambda: isinstance(pilot.app.screen, screen), what=screen.__name__)


ROWS_OF_TAB = {
    "warnings": 4,
    "shorts": 2,
    "history": 3,
    "exceptions": 1,
    "orders": 1,
    "approvals": 1,
}


async def rows_shown(app: RiskApp, tab: str) -> None:
    rows, least = table(app, tab), ROWS_OF_TAB.get(tab, 0)
    await until(lambda: rows.row_count >= least, what=f"{least} rows on the {tab} tab")


async def visit_tabs(pilot: Pilot[Any], shoot: Shoot) -> None:
    for n, (tab, _) in enumerate(TABS, start=1):
        await pilot.press(str(n))
        await rows_shown(app_of(pilot), tab)
        await shoot(f"tab-{tab}")
    await pilot.press("1")
    await opened(pilot, "question_mark", HelpScreen)
    await shoot("help")


async def details_shown(pilot: Pilot[Any], plans: int) -> None:
    """The call's details, with its stored plans read (they bring the `x` key with them)."""
    await opened(pilot, "enter", DetailsScreen)
    listed = pilot.app.screen.query_one("#plans", LiveTable)
    await until(lambda: listed.row_count >= plans, what=f"{plans} plans in the details")
    # The details do not refresh their footer when the plans arrive (`x` depends on
    # them): without this, `x Cancel plan` is shown or not depending on timing.
    pilot.app.refresh_bindings()
    await pilot.pause()


async def visit_calls(pilot: Pilot[Any], shoot: Shoot) -> None:
    for account, name, plans in (
        ("A1001", "details-margin-call", 1),
        ("U3001", "details-force-call", 0),
    ):
        await on_row(pilot, "warnings", account)
        await details_shown(pilot, plans)
        await shoot(name)
        await back_to_the_list(pilot)
    for key, dialog, name in (
        ("l", "LiquidateDialog", "liquidate"),
        ("a", "AutoLiquidationDialog", "auto-liquidation"),
        ("m", "MessageDialog", "message"),
        ("r", "RemarkDialog", "remark"),
        ("c", "CloseCallDialog", "close-call"),
        ("d", "MoveDeadlineDialog", "move-deadline"),
    ):
        await on_row(pilot, "warnings", "A1001")
        await opened(pilot, key, dialog)
        await shoot(name)
        await back_to_the_list(pilot)
    await on_row(pilot, "warnings", "A1001")
    await details_shown(pilot, plans=1)
    await opened(pilot, "x", "CancelPlanDialog")
    await shoot("cancel-plan")
    await back_to_the_list(pilot)


async def visit_shorts(pilot: Pilot[Any], shoot: Shoot) -> None:
    app = pilot.app
    await on_row(pilot, "shorts", "TSLA.US")
    await opened(pilot, "enter", ShortDetailsScreen)
    clients = app.screen.query_one("#short-clients", LiveTable)
    await until(lambda: clients.row_count >= 2, what="the short's clients")
    await shoot("short-details")
    assert clients.move_cursor("S5001")  # not in call: a recall notice, a buy-in override
    await opened(pilot, "l", "BuyToCoverDialog")
    await shoot("buy-to-cover")
    await pilot.press("escape")
    await until(lambda: isinstance(app.screen, ShortDetailsScreen), what="the short's details")
    await opened(pilot, "m", "RecallNoticeDialog")
    await shoot("recall-notice")
    await back_to_the_list(pilot)


async def visit_desk(pilot: Pilot[Any], shoot: Shoot) -> None:
    """History's details and export, a decision, the kill switch (a supervisor's)."""
    await on_row(pilot, "history", "MC20261120-S2002-0001")
    await opened(pilot, "enter", HistoryDetailsScreen)
    await shoot("history-details")
    await back_to_the_list(pilot)
    await pilot.press("4")
    with contextlib.chdir("/"):  # the dialog offers the working folder: the same everywhere
        await opened(pilot, "x", "ExportDialog")
        await shoot("export")
    await back_to_the_list(pilot)
    approvals = table(app_of(pilot), "approvals")
    await pilot.press("7")
    await until(lambda: approvals.row_count >= 1, what="the request to decide")
    await opened(pilot, "y", "DecideDialog")
    await shoot("approval-decision")
    await back_to_the_list(pilot)
    await pilot.press("1")
    await opened(pilot, "ctrl+k", "KillSwitchDialog")
    await shoot("kill-switch")
    await back_to_the_list(pilot)


@dataclass(frozen=True)
class Group:
    operator: str
    visit: Callable[[Pilot[Any], Shoot], Awaitable[None]]
    screens: tuple[str, ...]


async def visit_actions(pilot: Pilot[Any], shoot: Shoot) -> None:
    await visit_calls(pilot, shoot)
    await visit_shorts(pilot, shoot)
    await visit_desk(pilot, shoot)


# A trader's tabs; the details and dialogs as a supervisor (the kill switch is theirs).
GROUPS = {
    "tabs": Group("trader1", visit_tabs, (*(f"tab-{t}" for t, _ in TABS), "help")),
    "actions": Group(
        "sup1",
        visit_actions,
        (
            "details-margin-call",
            "details-force-call",
            "liquidate",
            "auto-liquidation",
            "message",
            "remark",
            "close-call",
            "move-deadline",
            "cancel-plan",
            "short-details",
            "buy-to-cover",
            "recall-notice",
            "history-details",
            "export",
            "approval-decision",
            "kill-switch",
        ),
    ),
}
GROUP_OF = {screen: name for name, group in GROUPS.items() for screen in group.screens}
SCREENS = tuple(GROUP_OF)


# --- the desk they show --------------------------------------------------------------------


def counted_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """Call, approval, order, message and plan ids end in a counter, not random hex."""
    for module in (lifecycle, actions, four_eyes):
        counter = itertools.count(1)
        fake = SimpleNamespace(uuid4=lambda c=counter: uuid.UUID(int=next(c) << 96))
        monkeypatch.setattr(module, "uuid", fake)


def fill_history(db: Path) -> None:
    """Three ended calls in the desk's database, before the app opens it."""
    calls, records = seed_history()

    async def fill() -> None:
        url = f"sqlite+aiosqlite:///{db}"
        await upgrade(url)
        engine = await create_engine(url)
        try:
            await Store(engine).calls.commit(LifecycleBatch(calls=calls, snapshots=records))
        finally:
            await engine.dispose()

    asyncio.run(fill())  # its own loop: called in a thread (`shots`), before the app starts


async def prepare(pilot: Pilot[Any]) -> dict[str, tuple[str, str]]:
    """The desk's state every screen shows; the call amounts as the desk formats them."""
    app = app_of(pilot)
    await desk_ready(app)
    desk = desk_of(app)
    await until(lambda: table(app, "warnings").row_count >= 4, what="the seed desk")
    call = desk.engine.open_calls["A1001"]
    plan = AutoLiquidationPlan(
        plan_id="RT-P-snapshots",
        call_id=call.call_id,
        account_id="A1001",
        execute_at=desk.engine.clock() + timedelta(hours=2),
        condition=AutoCondition.STILL_IN_CALL,
        lines=(PlanLine("B.SG", Side.SELL, Decimal("200")),),
        operator=TRADER1.name,
    )
    await desk.intents.schedule_plan(plan, TRADER1)
    await place(app, "A.SG", "100", key="RT-O-snapshots-1", limit="6.00")
    await requested(app)
    intraday = desk.engine.open_calls["D4001"]
    await desk.call_actions.add_remark(
        intraday.call_id, "client abroad until Friday", exception=True, actor=TRADER1
    )
    await until(lambda: table(app, "exceptions").row_count >= 1, what="the exception")
    await until(lambda: app.pending_approvals == 1, what="the request counted on its tab")
    return {
        account: (format_money(c.call_amount, c.currency), c.currency)
        for account, c in desk.engine.open_calls.items()
    }


# --- the session's runs --------------------------------------------------------------------

T = TypeVar("T")

_RUNS: dict[tuple[str, tuple[int, int], str], Run] = {}


def taken(group: str, size: tuple[int, int], colours: str) -> Run | None:
    """The run, if this session has taken it already."""
    return _RUNS.get((group, size, colours))


def in_own_loop(make: Callable[[], Awaitable[T]]) -> T:
    """Run `make()` on an event loop of its own (in the calling thread), then close that
    loop without waiting on what is left: now and then a database connection cancelled
    at the app's exit leaves a task waiting on a SQLite thread that has gone, and a loop
    close that gathers it (pytest-asyncio's) would wait for ever. Leftovers get 5 s."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(make())
    finally:
        left = asyncio.all_tasks(loop)
        for task in left:
            task.cancel()
        if left:
            loop.run_until_complete(asyncio.wait(left, timeout=5))
        asyncio.set_event_loop(None)
        loop.close()


async def shots(
    group: str,
    size: tuple[int, int],
    colours: str,
    fixed_app: Callable[..., RiskApp],
    db: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Run:
    """The group's shots at this size in this colour mode: taken once per session."""
    key = (group, size, colours)
    if key in _RUNS:
        return _RUNS[key]
    counted_ids(monkeypatch)
    if colours == "nocolor":
        monkeypatch.setenv("NO_COLOR", "1")
    else:
        monkeypatch.delenv("NO_COLOR", raising=False)
    await asyncio.to_thread(fill_history, db)

    async def take() -> tuple[dict[str, Shot], dict[str, tuple[str, str]]]:
        app = fixed_app(GROUPS[group].operator, operators=OPERATORS, four_eyes=FOUR_EYES)
        assert app.no_color is (colours == "nocolor")
        taken: dict[str, Shot] = {}
        async with app.run_test(size=size) as pilot:
            amounts = await prepare(pilot)

            async def shoot(name: str) -> None:
                await settle(pilot)
                taken[name] = Shot(screen_lines(app), screen_svg(app, colours))

            await GROUPS[group].visit(pilot, shoot)
        return taken, amounts

    taken, amounts = await asyncio.to_thread(in_own_loop, take)
    assert tuple(taken) == GROUPS[group].screens
    _RUNS[key] = Run(taken, amounts)
    return _RUNS[key]


def matrix() -> Iterator[tuple[str, tuple[int, int], str]]:
    """Every (screen, size, colours) of the matrix."""
    for screen in SCREENS:
        for size in SIZES:
            for colours in COLOURS:
                yield screen, size, colours
