"""The desk's terminal driven headless against the simulator: what the operator sees."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from risk_tui.app import RiskApp
from risk_tui.cli import commands
from risk_tui.cli.commands import serve_simulator
from risk_tui.cli.compose import desk_api
from risk_tui.config import FeedSettings, Settings, load_settings
from risk_tui.core.calendar import TradingCalendars, default_overrides_path, load_overrides
from risk_tui.core.feed_health import FeedStatus
from risk_tui.core.roles import Role
from risk_tui.sim.app import SimState, create_app
from risk_tui.sim.server import serve_on_loopback
from risk_tui.widgets.feed_banner import FeedBanner
from risk_tui.widgets.live_table import LiveTable
from tests.factories import SUPERVISOR
from tests.ui.helpers import desk_of
from tests.ui.test_dialogs import screen_text
from tests.waiting import until

CALENDARS = TradingCalendars(load_overrides(default_overrides_path()), today=date(2026, 11, 22))


@dataclass
class Desk:
    sim: SimState
    url: str
    settings: Settings


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    sim = SimState(tick_interval=None)
    async with serve_simulator(sim) as url:
        feed = FeedSettings(url=url, poll_interval=0.2, stale_after=1.0, timeout=1.0)
        settings = load_settings(None, env={}, discover=False).model_copy(
            update={
                "feed": feed,
                "db": load_settings(None, env={}, discover=False).db.model_copy(
                    update={"url": f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}"}
                ),
                "operators": {"trader1": Role.TRADER, "viewer1": Role.VIEWER},
            }
        )
        yield Desk(sim, url, settings)


def make_app(desk: Desk, operator: str = "trader1") -> RiskApp:
    settings = desk.settings
    return RiskApp(
        settings, operator, lambda actor: desk_api(settings, CALENDARS, actor), calendars=CALENDARS
    )


def row_text(app: RiskApp, account: str, pane: str = "warnings") -> str:
    table = app.query_one(f"#{pane}-pane-table", LiveTable)
    row = table.get_row(account)
    return " ".join(cell.plain for cell in row.cells) if row else ""


async def test_seed_account_shows_1015_and_a_price_move_shows_within_a_poll(desk: Desk) -> None:
    app = make_app(desk)
    async with app.run_test(size=(160, 50)):
        await until(lambda: "1,015.00" in row_text(app, "A1001"))
        assert "Tan Mei Ling" in row_text(app, "A1001")
        summary_before = str(app.query_one("#warnings-pane").query_one("SummaryBar").render())
        desk.sim.publish({"quotes": [{"symbol": "B.SG", "price": "19.00"}]})
        # equity 9,000; MM 1,250 + 8,550 = 9,800; call 9,800 + 2 % × 24,000 − 9,000 = 1,280
        await until(lambda: "1,280.00" in row_text(app, "A1001"), seconds=3)
        summary_after = str(app.query_one("#warnings-pane").query_one("SummaryBar").render())
        assert summary_after != summary_before


@pytest.mark.slow
async def test_stale_banner_when_the_feed_stops_and_live_again_when_it_returns(
    desk: Desk,
) -> None:
    """The one real-time test of the feed going down and coming back, end to end: a real
    server stops and restarts, the real clocks run, the banner says STALE, DOWN, LIVE.
    `tests/feed/test_poller.py` drives the same on a hand-moved clock, in no time."""

    sim = SimState(tick_interval=None)
    server = AsyncExitStack()
    url = await server.enter_async_context(serve_on_loopback(create_app(sim)))
    port = int(url.rsplit(":", 1)[1])
    desk.settings = desk.settings.model_copy(
        update={"feed": desk.settings.feed.model_copy(update={"url": url})}
    )
    app = make_app(desk)
    async with app.run_test(size=(120, 40)) as pilot:
        banner = app.query_one(FeedBanner)
        await until(lambda: banner.status is FeedStatus.LIVE)
        assert "LIVE" in str(banner.render())
        await server.aclose()  # the feed goes away
        await until(lambda: banner.status is FeedStatus.STALE, seconds=4)
        text = str(banner.render())
        assert "STALE" in text
        assert "FIGURES NOT LIVE" in text
        assert "1,015.00" in row_text(app, "A1001")  # the last figures stay, marked stale
        await until(lambda: banner.status is FeedStatus.DOWN, seconds=6)
        assert "DOWN" in str(banner.render())
        async with serve_on_loopback(create_app(sim), port):  # and comes back
            await until(lambda: banner.status is FeedStatus.LIVE, seconds=8)
            assert "LIVE" in str(banner.render())
            await pilot.press("q")


async def test_viewer_cannot_liquidate_or_message(desk: Desk) -> None:
    app = make_app(desk, operator="viewer1")
    async with app.run_test(size=(120, 40)) as pilot:
        await until(lambda: "1,015.00" in row_text(app, "A1001"))
        assert app.actor.role is Role.VIEWER
        assert app.check_action("liquidate", ()) is False
        assert app.check_action("message", ()) is False
        await pilot.press("l")
        await pilot.press("m")
        await pilot.pause()
        assert app.screen is app.screen_stack[0]  # no dialog opened
        assert sum(desk.sim.order_posts.values()) == 0


async def test_filter_sort_and_mark_from_the_keyboard(desk: Desk) -> None:
    app = make_app(desk)
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.query_one("#warnings-pane-table", LiveTable)
        await until(lambda: table.row_count == 5)  # four calls and incomplete I7001
        await pilot.press("slash", *"h2001", "enter")
        await until(lambda: table.row_count == 1)
        assert table.cursor_key == "H2001"
        await pilot.press("escape")
        await until(lambda: table.row_count == 5)
        await pilot.press("K")  # shift+k: sort by call amount
        assert table.sort_column == "call_amount"
        await pilot.press("home", "space")
        assert len(table.marked_keys) == 1


async def _seed_row_selected(app: RiskApp, pilot: object) -> LiveTable:
    table = app.query_one("#warnings-pane-table", LiveTable)
    await until(lambda: "1,015.00" in row_text(app, "A1001"))
    assert table.move_cursor("A1001")
    return table


async def test_liquidate_from_the_keyboard_sends_the_desks_cure_once(desk: Desk) -> None:
    app = make_app(desk)
    async with app.run_test(size=(160, 50)) as pilot:
        await _seed_row_selected(app, pilot)
        await pilot.press("l")
        await until(lambda: app.screen is not app.screen_stack[0])
        # The desk's least-value cure, asked of the desk: a lot each of A and B (2,450.00).
        assert "Preselected: least-value cure in whole lots, SGD 2,450.00" in screen_text(app)
        await pilot.press("ctrl+r")  # review
        await pilot.pause()
        await pilot.press("ctrl+s", "ctrl+s")  # confirm (twice: still one order each)
        await until(lambda: sum(desk.sim.order_posts.values()) >= 2, seconds=5)
        await pilot.pause(0.3)
    assert sum(desk.sim.order_posts.values()) == 2
    orders = desk.sim.orders.values() if isinstance(desk.sim.orders, dict) else desk.sim.orders
    wires = [order if isinstance(order, dict) else vars(order) for order in orders]
    assert sorted((str(w.get("symbol")), str(w.get("quantity"))) for w in wires) == [
        ("A.SG", "100"),
        ("B.SG", "100"),
    ]
    assert all(str(w.get("side")).endswith("sell") for w in wires)
    assert {w.get("operator") for w in wires} == {"trader1"}


async def test_an_engaged_kill_switch_shows_in_the_dialogs_and_refuses_review(desk: Desk) -> None:
    from risk_tui.widgets.dialogs import AutoLiquidationDialog, LiquidateDialog, ReviewedDialog

    app = make_app(desk)
    async with app.run_test(size=(160, 50)) as pilot:
        await _seed_row_selected(app, pilot)
        await desk_of(app).kill_switch.engage("runaway algo", SUPERVISOR)
        for key, kind in (("l", LiquidateDialog), ("a", AutoLiquidationDialog)):
            await pilot.press(key)
            await until(lambda: isinstance(app.screen, ReviewedDialog))
            dialog = app.screen
            assert isinstance(dialog, kind)
            await pilot.pause()
            assert "KILL SWITCH engaged by sue" in screen_text(app)  # as the dialog opens
            await pilot.press("ctrl+r")
            await pilot.pause()
            assert not dialog.reviewing
            assert "no liquidation can be reviewed or sent" in screen_text(app)
            await pilot.press("escape")
            await until(lambda: app.screen is app.screen_stack[0])
    assert sum(desk.sim.order_posts.values()) == 0


async def test_message_remark_and_exception_from_the_keyboard(desk: Desk) -> None:
    app = make_app(desk)
    async with app.run_test(size=(160, 50)) as pilot:
        await _seed_row_selected(app, pilot)
        await pilot.press("m")
        await until(lambda: app.screen is not app.screen_stack[0])
        await pilot.press("ctrl+s")
        await until(lambda: sum(desk.sim.message_posts.values()) == 1, seconds=5)
        await until(lambda: app.screen is app.screen_stack[0])
        await pilot.press("r")
        await until(lambda: app.screen is not app.screen_stack[0])
        await pilot.press(*"client called back")
        await pilot.press("ctrl+s")
        await until(lambda: app.screen is app.screen_stack[0])
        await until(lambda: "client called back" in row_text(app, "A1001"))
        await pilot.press("e")  # marked: off the live list, onto the Exceptions tab
        await until(lambda: "client called back" in row_text(app, "A1001", "exceptions"))
        assert row_text(app, "A1001") == ""
        assert app.desk is not None
        remarks = await desk_of(app).store.history.remarks_for(
            desk_of(app).engine.open_calls["A1001"].call_id
        )
        assert any(r.exception for r in remarks)
        assert any("client called back" in r.text for r in remarks)
        await pilot.press("5")
        exceptions = app.query_one("#exceptions-pane-table", LiveTable)
        await until(lambda: exceptions.cursor_key == "A1001")
        await pilot.press("e")  # un-marked: back on the live list
        await until(lambda: "client called back" in row_text(app, "A1001"))
        assert row_text(app, "A1001", "exceptions") == ""
        assert "EXC" not in row_text(app, "A1001")
    assert sum(desk.sim.message_posts.values()) == 1


async def test_marking_an_unremarked_call_asks_why_first(desk: Desk) -> None:
    from risk_tui.widgets.dialogs import RemarkDialog
    from risk_tui.widgets.dialogs.base import MarkCheckbox

    app = make_app(desk)
    async with app.run_test(size=(160, 50)) as pilot:
        await _seed_row_selected(app, pilot)
        await pilot.press("e")
        await until(lambda: isinstance(app.screen, RemarkDialog))
        assert app.screen.query_one("#exception", MarkCheckbox).value is True
        await pilot.press("ctrl+s")  # no reason typed: the dialog says so and stays
        await pilot.pause()
        assert isinstance(app.screen, RemarkDialog)
        assert "an exception needs a remark saying why" in str(
            app.screen.query_one("#problems").render()
        )
        await pilot.press(*"debt only, no positions")
        await pilot.press("ctrl+s")
        await until(lambda: "debt only, no positions" in row_text(app, "A1001", "exceptions"))
        assert row_text(app, "A1001") == ""


async def test_details_and_auto_liquidation_from_the_keyboard(desk: Desk) -> None:
    from risk_tui.screens.details import DetailsScreen

    app = make_app(desk)
    async with app.run_test(size=(160, 50)) as pilot:
        await _seed_row_selected(app, pilot)
        await pilot.press("enter")
        await until(lambda: isinstance(app.screen, DetailsScreen))
        await pilot.press("escape")
        await until(lambda: app.screen is app.screen_stack[0])
        await pilot.press("a")
        await until(lambda: app.screen is not app.screen_stack[0])
        await pilot.press("ctrl+r")
        await pilot.pause()
        await pilot.press("ctrl+s")
        await until(lambda: app.screen is app.screen_stack[0])
        assert app.desk is not None
        call_id = desk_of(app).engine.open_calls["A1001"].call_id
        store = desk_of(app).store
        plans = await store.plans.auto_liquidations_for(call_id)
        assert len(plans) == 1
        assert str(plans[0].state).endswith("scheduled")
        audit = await store.history.audit_for(call_id)
        assert any("auto" in entry.action for entry in audit)


async def test_keys_are_remapped_by_binding_id_from_the_config(desk: Desk) -> None:
    desk.settings = desk.settings.model_copy(update={"keys": {"call.liquidate": "x"}})
    app = make_app(desk)
    async with app.run_test(size=(160, 50)) as pilot:
        await _seed_row_selected(app, pilot)
        await pilot.press("l")  # no longer bound
        await pilot.pause()
        assert app.screen is app.screen_stack[0]
        await pilot.press("x")
        await until(lambda: app.screen is not app.screen_stack[0])
        await pilot.press("escape")  # cancels: nothing sent
        await until(lambda: app.screen is app.screen_stack[0])
    assert sum(desk.sim.order_posts.values()) == 0


def test_the_binding_ids_are_every_screen_and_widget_of_the_terminal() -> None:
    """What `[keys]` may name: the app's own, and those of screens opened later."""
    ids = RiskApp.binding_ids()
    assert {"app.quit", "call.liquidate", "tab.approvals", "sort.call_amount"} <= ids
    assert {"details.liquidate", "history_details.compare_end", "help.close"} <= ids
    assert {"table.mark", "dialog.confirm", "shorts.cover", "approvals.approve"} <= ids


async def test_the_demo_says_it_starts_on_a_fresh_database(
    desk: Desk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13 §9: a restarted demo must not end calls on a reset market. It starts on a
    fresh database, replacing only its own file, and the operator is told so on screen."""
    demo_db = tmp_path / "data" / "demo.db"
    monkeypatch.setattr(commands, "demo_db_path", lambda: demo_db)
    demo_db.parent.mkdir()
    demo_db.write_text("the last run's desk")
    url, notice = await commands.fresh_demo_database(None)
    assert url == f"sqlite+aiosqlite:///{demo_db}"
    assert not demo_db.exists()
    assert notice.startswith(f"Demo: a new simulated crash day on a fresh database ({demo_db})")
    settings = desk.settings
    app = RiskApp(
        settings,
        "trader1",
        lambda actor: desk_api(settings, CALENDARS, actor),
        calendars=CALENDARS,
        notice=notice,
    )
    async with app.run_test(size=(80, 24)):
        await until(lambda: any(n.message == notice for n in app._notifications))


def summary_text(app: RiskApp, pane: str = "warnings") -> str:
    return str(app.query_one(f"#{pane}-pane").query_one("SummaryBar").render())


async def test_an_incomplete_account_is_a_row_counted_and_found(desk: Desk) -> None:
    # Issue 13 point 2: `report` lists I7001 "no price for NOQ.SG"; the terminal showed
    # "Incomplete 0" and `/I7001` found nothing.
    app = make_app(desk)
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.query_one("#warnings-pane-table", LiveTable)
        await until(lambda: "NOQ.SG" in row_text(app, "I7001"))
        assert "INCOMPLETE" in row_text(app, "I7001")
        assert "no price for NOQ.SG" in row_text(app, "I7001")
        assert "INCOMPLETE 1" in summary_text(app)
        await pilot.press("slash", *"I7001", "enter")
        await until(lambda: table.row_count == 1)
        assert table.cursor_key == "I7001"
        await pilot.press("l")  # no call to liquidate: says why, opens nothing
        await pilot.pause()
        assert app.screen is app.screen_stack[0]
        assert any("no open call" in str(n.message) for n in app._notifications)
        await pilot.press("space", "m")  # marked, it is still no call to write about
        await pilot.pause()
        assert app.screen is app.screen_stack[0]


async def test_an_open_call_keeps_its_row_when_its_account_becomes_incomplete(
    desk: Desk,
) -> None:
    app = make_app(desk)
    async with app.run_test(size=(160, 50)):
        await until(lambda: "1,015.00" in row_text(app, "A1001"))
        # A1001 now holds a stock the feed has no price for: its figures cannot be computed.
        desk.sim.publish(
            {
                "positions": [
                    {
                        "account_id": "A1001",
                        "symbol": "NOQ.SG",
                        "quantity": "100",
                        "avg_cost": "1.00",
                    }
                ]
            }
        )
        await until(lambda: "INCOMPLETE" in row_text(app, "A1001"), seconds=3)
        shown = row_text(app, "A1001")
        assert "no price for NOQ.SG" in shown
        assert "NOT CURRENT" in shown
        assert "1,015.00?" in shown  # the last call amount, marked as not current
        assert "INCOMPLETE 2" in summary_text(app)  # A1001 and I7001
