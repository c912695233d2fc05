"""The Short positions tab, a stock's details and the buy-to-cover dialog, driven headless
against the simulator (`recall`, `selloff` and the seed desk) and snapshotted."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import date
from decimal import Decimal as D
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from sqlalchemy import select
from textual.pilot import Pilot
from textual.widgets import Input, Static, TextArea

from risk_tui.app import RiskApp
from risk_tui.cli.commands import serve_simulator
from risk_tui.config import FeedSettings, load_settings
from risk_tui.core.actions import SendState
from risk_tui.core.cure import TradeLine
from risk_tui.core.margin import CallPolicy, compute_account, fx_rate
from risk_tui.core.messages import Language
from risk_tui.core.model import Borrow, Side
from risk_tui.core.money import format_money
from risk_tui.core.roles import Actor, Role
from risk_tui.core.shorts import Allocation, AllocationRule, ShortHolder, ShortLine, short_line
from risk_tui.screens.details import DetailsScreen
from risk_tui.screens.short_details import ShortDetailsScreen
from risk_tui.screens.shorts import ShortsPane
from risk_tui.sim.app import SimState
from risk_tui.sim.scenarios import SEED_SYMBOLS, RecallScenario, SelloffScenario, build_state
from risk_tui.storage.tables import audit_log
from risk_tui.widgets.dialogs import MessageDialog
from risk_tui.widgets.dialogs.cover import BuyToCoverDialog
from risk_tui.widgets.dialogs.recall_notice import RecallNoticeDialog, fill_recall
from risk_tui.widgets.live_table import LiveTable
from tests.clocks import Monotonic
from tests.factories import BookFigures
from tests.sim.helpers import desk_book, fixed_clock, shortfalls
from tests.threaded_sim import serve_in_thread
from tests.ui.helpers import desk_of
from tests.ui.test_app import Desk, make_app
from tests.ui.test_dialogs import HOSTILE, RAW_CONTROLS, Host, problems_text, screen_text
from tests.waiting import until

SIZES = [(80, 24), (160, 50)]

# The seed desk plus a recall: the lender takes back every TSLA.US share it lent, so the
# clients' 50 short (U3001 40, in force call; S5001 10, safe) is all shortfall; S5001 is
# also short 200 0700.HK, for which the feed sends no borrow record.
RECALL = {
    "positions": [
        {"account_id": "S5001", "symbol": "TSLA.US", "quantity": "-10", "avg_cost": "240.00"},
        {"account_id": "S5001", "symbol": "0700.HK", "quantity": "-200", "avg_cost": "400.00"},
    ],
    "borrow": [
        {
            "symbol": "TSLA.US",
            "available": "0",
            "recall_quantity": "50000",
            "recall_due": "2026-11-25",
            "rate": "0.035",
        }
    ],
}


# --- helpers ------------------------------------------------------------------------------


def cells(table: LiveTable, key: str) -> dict[str, str]:
    row = table.get_row(key)
    assert row is not None, key
    return {column.key: cell.plain for column, cell in zip(table.columns, row.cells, strict=True)}


def number(text: str) -> D:
    return D(text.replace(",", "")) if text not in ("", "—") else D(0)


def shown_shortfalls(table: LiveTable) -> dict[str, D]:
    shown = {key: cells(table, key)["shortfall"] for key in table.visible_keys()}
    return {key: number(value) for key, value in shown.items() if value not in ("0", "unknown")}


async def open_shorts(app: RiskApp, pilot: Any, rows: int = 1) -> LiveTable:
    await until(lambda: app.desk is not None and desk_of(app).engine.book.cursor is not None)
    await pilot.press("3")
    table = app.query_one("#shorts-pane-table", LiveTable)
    await until(lambda: table.row_count >= rows)
    return table


async def open_details(app: RiskApp, pilot: Any, table: LiveTable, symbol: str) -> LiveTable:
    assert table.move_cursor(symbol)
    await pilot.press("enter")
    await until(lambda: isinstance(app.screen, ShortDetailsScreen))
    details = app.screen.query_one("#short-clients", LiveTable)
    await until(lambda: details.row_count > 0)
    return details


def allocation_rows(details: LiveTable) -> list[dict[str, str]]:
    return [cells(details, key) for key in details.visible_keys()]


def assert_allocated_by_deficit(rows: list[dict[str, str]], shortfall: D, lot: D) -> None:
    """What the operator reads obeys the default rule: deficit first, then position,
    whole lots, never beyond a client's short, at least the shortfall in all."""
    assert [int(r["rank"]) for r in rows] == list(range(1, len(rows) + 1))
    known = [r for r in rows if r["deficit"] != "unknown"]
    assert rows[: len(known)] == known  # unknown deficits come last
    keys = [(-number(r["deficit"]), -number(r["short"])) for r in known]
    assert keys == sorted(keys)
    suggested = [number(r["suggested"]) for r in rows]
    shorts = [number(r["short"]) for r in rows]
    for quantity, short in zip(suggested, shorts, strict=True):
        assert 0 <= quantity <= short
        assert quantity % lot == 0 or quantity == short
    last = max((i for i, q in enumerate(suggested) if q > 0), default=-1)
    assert all(suggested[i] == shorts[i] for i in range(last))  # the earlier ones give all
    total = sum(suggested, D(0))
    if shortfall <= sum(shorts, D(0)):
        assert shortfall <= total < shortfall + lot
    else:
        assert total == sum(shorts, D(0))


def ranked_by_the_engine(app: RiskApp, accounts: list[str], symbol: str) -> list[str]:
    """The default rule from the engine's own figures: MM − equity in SGD, largest first,
    then the largest short; accounts without figures last."""
    engine = desk_of(app).engine
    book = engine.book

    def key(account_id: str) -> tuple[bool, D, D, str]:
        margin = engine.results.get(account_id)
        short = -book.positions[account_id][symbol].quantity
        if margin is None or margin.incomplete is not None:
            return (True, D(0), -short, account_id)
        deficit = max(D(0), margin.mm - margin.equity) * fx_rate(book, margin.currency, "SGD")
        return (False, -deficit, -short, account_id)

    return sorted(accounts, key=key)


@pytest.fixture
async def scenario_desk(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Desk]:
    sim: SimState = request.param()
    async with serve_simulator(sim) as url:
        feed = FeedSettings(url=url, poll_interval=0.2, stale_after=5.0, timeout=5.0)
        defaults = load_settings(None, env={}, discover=False)
        settings = defaults.model_copy(
            update={
                "feed": feed,
                "db": defaults.db.model_copy(
                    update={"url": f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}"}
                ),
                "operators": {"trader1": Role.TRADER, "viewer1": Role.VIEWER},
            }
        )
        yield Desk(sim, url, settings)


def recall_sim() -> SimState:
    return build_state("recall", accounts=600, seed=11, clock=fixed_clock, tick_interval=None)


def selloff_sim() -> SimState:
    return build_state(
        SelloffScenario(ramp_ticks=8), accounts=600, seed=11, clock=fixed_clock, tick_interval=None
    )


def seed_recall_sim() -> SimState:
    sim = SimState(tick_interval=None)
    sim.publish(RECALL)
    return sim


# --- the recall scenario ------------------------------------------------------------------


@pytest.mark.parametrize("scenario_desk", [recall_sim], indirect=True)
async def test_recall_shortfalls_show_and_are_allocated_largest_deficit_first(
    scenario_desk: Desk,
) -> None:
    sim = scenario_desk.sim
    assert isinstance(sim.scenario, RecallScenario)
    app = make_app(scenario_desk)
    async with app.run_test(size=(160, 50)) as pilot:
        table = await open_shorts(app, pilot, rows=5)
        assert shown_shortfalls(table) == {}  # the lender has recalled nothing yet
        for _ in range(sim.scenario.recall_ticks):
            sim.tick()
        book = desk_book(sim)
        expected = shortfalls(book)
        assert len(expected) >= 2
        await until(lambda: shown_shortfalls(table) == expected, seconds=10)
        # every row against the simulator's own book: totals, clients, borrow, recall
        for symbol in table.visible_keys():
            row = cells(table, symbol)
            borrow = book.borrow[symbol]
            assert number(row["short"]) == book.short_totals[symbol]
            assert int(row["clients"]) == len(book.shorts[symbol])
            assert number(row["available"]) == borrow.available
            assert number(row["recalled"]) == borrow.recall_quantity
            if borrow.recall_due is not None:
                assert row["due"].startswith(f"{borrow.recall_due:%Y-%m-%d}")
        # the worst first: sorted by what the shortfall is worth in SGD
        worth: dict[str, D] = {}
        for symbol in expected:
            line = short_line(book, symbol, "SGD")
            assert line is not None
            assert line.shortfall_value is not None
            worth[symbol] = line.shortfall_value
        ranked_by_worth = sorted(expected, key=lambda s: -worth[s])
        assert table.visible_keys()[: len(expected)] == ranked_by_worth
        worst = max(expected, key=lambda s: expected[s])
        # its clients and the allocation
        details = await open_details(app, pilot, table, worst)
        line = short_line(book, worst, "SGD")
        assert line is not None
        rows = allocation_rows(details)
        assert len(rows) == len(book.shorts[worst])
        assert_allocated_by_deficit(rows, expected[worst], line.lot_size)
        # in the order the engine's own figures give
        ranked = [r["account"] for r in rows]
        assert ranked == ranked_by_the_engine(app, ranked, worst)
        engine = desk_of(app).engine
        first = ranked[0]
        assert f"Suggested {sum(number(r['suggested']) for r in rows):,}" in screen_text(app)

        # buy to cover for the first client: one order, as allocated, with the recall reason
        suggested = number(rows[0]["suggested"])
        in_call = first in engine.open_calls
        assert details.cursor_key == first
        await pilot.press("l")
        await until(lambda: isinstance(app.screen, BuyToCoverDialog))
        dialog = app.screen
        assert isinstance(dialog, BuyToCoverDialog)
        assert dialog.query_one("#quantity", Input).value == f"{suggested:,}"
        assert bool(dialog.query("#reason")) is not in_call
        await pilot.press("ctrl+r")
        await pilot.pause()
        await pilot.press("ctrl+s", "ctrl+s")  # twice: still one order
        await until(lambda: sum(sim.order_posts.values()) >= 1, seconds=5)
        await until(lambda: isinstance(app.screen, ShortDetailsScreen))
        await pilot.pause(0.3)
    assert sum(sim.order_posts.values()) == 1
    (order,) = sim.orders.values()
    assert (order.account_id, order.symbol, order.side) == (first, worst, "buy")
    assert order.quantity == suggested
    assert order.reason == "recall"
    assert order.operator == "trader1"
    assert order.reference == (engine.open_calls[first].call_id if in_call else None)


# --- the selloff scenario -----------------------------------------------------------------


@pytest.mark.parametrize("scenario_desk", [selloff_sim], indirect=True)
async def test_selloff_moves_the_deficits_live_and_a_borrow_cut_is_allocated_by_them(
    scenario_desk: Desk,
) -> None:
    sim = scenario_desk.sim
    app = make_app(scenario_desk)
    async with app.run_test(size=(160, 50)) as pilot:
        table = await open_shorts(app, pilot, rows=5)
        assert shown_shortfalls(table) == {}  # a selloff recalls nothing
        book = desk_book(sim)
        movable = [s for s in book.shorts if s not in SEED_SYMBOLS]
        symbol = max(movable, key=lambda s: (len(book.shorts[s]), s))
        details = await open_details(app, pilot, table, symbol)
        before = screen_text(app)
        for _ in range(10):  # the market falls: the stock's price and value move
            sim.tick()
        await until(lambda: screen_text(app) != before, seconds=10)
        # the lender cuts this stock's borrow to half the clients' short: a shortfall
        total = book.short_totals[symbol]
        lot = book.instruments[symbol].lot_size
        available = (total / 2 // lot) * lot
        borrow = book.borrow[symbol]
        sim.publish(
            {
                "borrow": [
                    {
                        "symbol": symbol,
                        "available": str(available),
                        "recall_quantity": str(borrow.available - available),
                        "recall_due": "2026-11-25",
                        "rate": str(borrow.rate),
                    }
                ]
            }
        )
        shortfall = total - available

        def allocated() -> bool:
            rows = allocation_rows(details)
            return sum((number(r["suggested"]) for r in rows), D(0)) >= shortfall

        await until(allocated, seconds=10)
        rows = allocation_rows(details)
        assert_allocated_by_deficit(rows, shortfall, lot)
        # in the order of the engine's current (fallen-market) figures
        ranked = [r["account"] for r in rows]
        assert ranked == ranked_by_the_engine(app, ranked, symbol)
        await pilot.press("escape")
        await until(lambda: not isinstance(app.screen, ShortDetailsScreen))
        await until(lambda: shown_shortfalls(table) == {symbol: shortfall}, seconds=5)


# --- the seed desk with a recall: overrides, messages, roles --------------------------------


@pytest.mark.parametrize("scenario_desk", [seed_recall_sim], indirect=True)
async def test_a_client_not_in_call_is_bought_in_only_with_a_reason_and_audited(
    scenario_desk: Desk,
) -> None:
    sim = scenario_desk.sim
    app = make_app(scenario_desk)
    async with app.run_test(size=(160, 50)) as pilot:
        table = await open_shorts(app, pilot, rows=2)
        assert cells(table, "0700.HK")["shortfall"] == "unknown"
        assert cells(table, "0700.HK")["available"] == "no record"
        assert cells(table, "TSLA.US")["shortfall"] == "50"
        details = await open_details(app, pilot, table, "TSLA.US")
        await until(lambda: details.row_count == 2)
        rows = allocation_rows(details)
        # U3001 is in force call (the largest deficit): all its 40; S5001 (safe) the last 10
        assert [(r["account"], r["suggested"]) for r in rows] == [("U3001", "40"), ("S5001", "10")]
        assert "override" in rows[1]["note"]
        assert details.move_cursor("S5001")
        await pilot.press("l")
        await until(lambda: isinstance(app.screen, BuyToCoverDialog))
        dialog = app.screen
        reason = dialog.query_one("#reason", Input)
        assert "recalled 50,000 TSLA.US due 2026-11-25" in reason.value
        assert "firm shortfall 50" in reason.value
        reason.value = ""
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert "a reason is needed" in problems_text(dialog)
        reason.value = "recall: lender wants all TSLA back by Wednesday"
        await pilot.press("ctrl+r")
        await pilot.pause()
        await pilot.press("ctrl+s")
        await until(lambda: sum(sim.order_posts.values()) == 1, seconds=5)
        await until(lambda: isinstance(app.screen, ShortDetailsScreen))
        await until(lambda: cells(details, "S5001")["working"] == "10", seconds=8)
        store = desk_of(app).store
        async with store._engine.connect() as conn:
            audits = (
                await conn.execute(
                    select(audit_log.c.details).where(audit_log.c.action == "order_override")
                )
            ).all()
    (order,) = sim.orders.values()
    assert (order.account_id, order.symbol, order.side, order.quantity) == (
        "S5001",
        "TSLA.US",
        "buy",
        D(10),
    )
    assert order.reference is None
    assert order.reason == "recall"
    assert [a.details["reason"] for a in audits] == [
        "recall: lender wants all TSLA back by Wednesday"
    ]


@pytest.mark.parametrize("scenario_desk", [seed_recall_sim], indirect=True)
async def test_a_client_not_in_call_gets_a_recall_notice_and_one_in_call_the_call_message(
    scenario_desk: Desk,
) -> None:
    # Issue 13 §9: `m` on S5001 (short TSLA.US, safe) said "not in margin call" and sent
    # nothing. It sends a recall notice through the same audited outbox.
    sim = scenario_desk.sim
    app = make_app(scenario_desk)
    async with app.run_test(size=(160, 50)) as pilot:
        table = await open_shorts(app, pilot, rows=2)
        details = await open_details(app, pilot, table, "TSLA.US")
        await until(lambda: details.row_count == 2)
        assert details.move_cursor("S5001")
        await pilot.press("m")
        await until(lambda: isinstance(app.screen, RecallNoticeDialog))
        body = app.screen.query_one("#body", TextArea).text
        language = str(app.screen.query_one("#language", Static).render())
        assert language == "Language: English (en), the desk's default"  # S5001: none in the feed
        assert "The lender has recalled TSLA.US" in body
        assert "Your account S5001 is short 10 TSLA.US." in body
        assert "Please buy back 10 TSLA.US by 2026-11-25." in body
        await pilot.press("ctrl+s")
        await until(lambda: sum(sim.message_posts.values()) == 1, seconds=5)
        await until(lambda: isinstance(app.screen, ShortDetailsScreen))
        (notice,) = sim.messages.values()
        assert (notice.account_id, notice.reference) == ("S5001", None)
        assert notice.body == body
        stored = await desk_of(app).store.messages.get(notice.message_id)
        assert stored is not None
        assert stored.call_id is None
        assert stored.send_state is SendState.ACKNOWLEDGED
        async with desk_of(app).store._engine.connect() as conn:
            audited = (
                (
                    await conn.execute(
                        select(audit_log.c.action).where(audit_log.c.account_id == "S5001")
                    )
                )
                .scalars()
                .all()
            )
        assert "message_sent" in audited
        assert details.move_cursor("U3001")
        await pilot.press("m")
        await until(lambda: isinstance(app.screen, MessageDialog))
        await pilot.press("ctrl+s")
        await until(lambda: sum(sim.message_posts.values()) == 2, seconds=5)
        await until(lambda: isinstance(app.screen, ShortDetailsScreen))
        # enter: the client's margin call in full, as on the Real-time warnings tab
        await pilot.press("enter")
        await until(lambda: isinstance(app.screen, DetailsScreen))
        details_screen = app.screen
        assert isinstance(details_screen, DetailsScreen)
        assert details_screen.call.account_id == "U3001"
        await pilot.press("escape")
        await until(lambda: isinstance(app.screen, ShortDetailsScreen))
    assert {m.account_id: m.reference for m in sim.messages.values()} == {
        "S5001": None,
        "U3001": details_screen.call.call_id,
    }


@pytest.mark.parametrize("scenario_desk", [seed_recall_sim], indirect=True)
async def test_a_viewer_sees_the_allocation_but_cannot_buy_in_or_message(
    scenario_desk: Desk,
) -> None:
    sim = scenario_desk.sim
    app = make_app(scenario_desk, operator="viewer1")
    async with app.run_test(size=(160, 50)) as pilot:
        table = await open_shorts(app, pilot, rows=2)
        details = await open_details(app, pilot, table, "TSLA.US")
        screen = app.screen
        assert screen.check_action("cover", ()) is False
        assert screen.check_action("message", ()) is False
        await pilot.press("l", "m")
        await pilot.pause()
        assert app.screen is screen
        assert cells(details, "U3001")["suggested"] == "40"
    assert sum(sim.order_posts.values()) == 0
    assert sum(sim.message_posts.values()) == 0


@pytest.mark.parametrize("scenario_desk", [seed_recall_sim], indirect=True)
async def test_the_tab_recomputes_only_when_the_feed_moved_and_at_most_once_a_second(
    scenario_desk: Desk,
) -> None:
    sim = scenario_desk.sim
    app = make_app(scenario_desk)
    async with app.run_test(size=(120, 80)) as pilot:  # tall: the help lists every key
        table = await open_shorts(app, pilot, rows=2)
        pane = app.query_one("#shorts-pane", ShortsPane)
        desk = desk_of(app)
        # The pane's rate limit on a clock moved by hand from here, on from the real one.
        clock = Monotonic(time.monotonic() + pane.min_interval)
        pane.monotonic = clock

        def summary() -> str:
            return str(pane.query_one("#shorts-summary").render())

        async def move_to(price: D) -> None:
            """TSLA.US moves, and the app hands the tab the view with the move."""
            sim.publish({"quotes": [{"symbol": "TSLA.US", "price": str(price)}]})
            await until(
                lambda: (
                    desk.engine.book.quotes["TSLA.US"].price == price
                    and app.view is not None
                    and app.view.cursor == desk.engine.view.cursor
                ),
                what=f"the move to {price} shown to the tab",
            )

        with patch.object(pane, "refresh_from", wraps=pane.refresh_from) as looks:
            # Idle: polls and repaints go on, the book does not move: nothing recomputed.
            idle = pane.computed
            await until(lambda: looks.call_count >= 2, what="two looks at the idle tab")
            assert pane.computed - idle <= 1  # (the minute may turn)
            # Busy: the feed moves at every poll, the clock stands: one recompute at most.
            busy = pane.computed
            for step in range(5):
                await move_to(D(f"{250 + step}.00"))

            assert pane.computed - busy <= 1
            value = f"SGD {50 * 254 * D('1.3450'):,.2f}"  # TSLA's 50 shortfall at the last price
            assert value not in summary()
            # A second later the next look recomputes, and shows the last price.
            clock.advance(pane.min_interval)
            await until(lambda: value in summary(), what="the last price in the summary")
            assert pane.computed - busy <= 2

        # `o` orders by the next column, the help lists it, the filter works here too
        assert (table.sort_column, table.sort_reverse) == ("value", True)
        assert table.visible_keys() == ["TSLA.US", "0700.HK"]  # worth, then unknown
        await pilot.press("o")
        assert (table.sort_column, table.sort_reverse) == ("shortfall", True)
        await pilot.press("question_mark")
        await until(lambda: type(app.screen).__name__ == "HelpScreen")
        await pilot.pause()
        assert "shorts.order" in screen_text(app)
        await pilot.press("escape")
        await pilot.press("slash", *"0700", "enter")
        await until(lambda: table.row_count == 1)
        assert table.cursor_key == "0700.HK"


# --- the buy-to-cover dialog alone ----------------------------------------------------------


def seed_line_and_holder(name: str = "Safe Holdings") -> tuple[Any, ShortHolder, BookFigures]:
    book = desk_book(seed_recall_sim())
    book.accounts["S5001"] = replace(book.accounts["S5001"], client_name=name)
    line = short_line(book, "TSLA.US", "SGD")
    margin = compute_account(book, "S5001", CallPolicy())
    holder = ShortHolder("S5001", D(10), client_name=name, margin=margin, currency="SGD")
    return line, holder, BookFigures(book)


async def test_the_dialog_mints_one_key_and_answers_once() -> None:
    line, holder, figures = seed_line_and_holder()
    keys = iter(["RT-O-first", "RT-O-second"])
    dialog = BuyToCoverDialog(
        line,
        holder,
        D(10),
        D(0),
        AllocationRule.LARGEST_DEFICIT,
        Actor("alice", Role.TRADER),
        figures=figures,
        new_order_id=lambda: next(keys),
    )
    app = Host(dialog)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+r")
        await pilot.pause()
        await pilot.press("ctrl+s", "ctrl+s")
        await pilot.pause()
    (answer,) = app.results
    assert answer.intent.client_order_id == "RT-O-first"
    assert answer.intent.side is Side.BUY
    assert answer.intent.quantity == D(10)
    assert answer.override_reason.startswith("Recall buy-in:")


async def test_the_dialog_checks_lots_and_the_short() -> None:
    line, holder, figures = seed_line_and_holder()
    dialog = BuyToCoverDialog(
        line,
        holder,
        D(10),
        D(4),
        AllocationRule.LARGEST_DEFICIT,
        Actor("alice", Role.TRADER),
        figures=figures,
    )
    app = Host(dialog)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        quantity = dialog.query_one("#quantity", Input)
        assert quantity.value == "6"  # the 10 suggested less the 4 already working
        quantity.value = "7"
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert "plus the 4 in working orders is more than the 10 short" in problems_text(dialog)


async def test_the_dialog_refuses_viewers_and_shows_hostile_names_inert() -> None:
    line, holder, figures = seed_line_and_holder(HOSTILE)
    with pytest.raises(PermissionError):
        BuyToCoverDialog(
            line,
            holder,
            D(10),
            D(0),
            AllocationRule.PRO_RATA,
            Actor("vic", Role.VIEWER),
            figures=figures,
        )
    app = Host(
        BuyToCoverDialog(
            line,
            holder,
            D(10),
            D(0),
            AllocationRule.PRO_RATA,
            Actor("alice", Role.TRADER),
            figures=figures,
        )
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        text = screen_text(app)
    assert "[b]bold[/b]" in text
    assert not any(control in text for control in RAW_CONTROLS)


async def test_the_dialog_shows_the_account_after_the_buy_as_the_desk_computes_it() -> None:
    line, holder, figures = seed_line_and_holder()
    dialog = BuyToCoverDialog(
        line,
        holder,
        D(10),
        D(0),
        AllocationRule.LARGEST_DEFICIT,
        Actor("alice", Role.TRADER),
        figures=figures,
    )
    app = Host(dialog)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        estimate = str(dialog.query_one("#estimate", Static).render())
    after = figures.after_trades("S5001", [TradeLine("TSLA.US", Side.BUY, D(10))])
    assert after is not None
    assert f"Est. SGD {format_money(after.lines[0].value, 'SGD')} at the last price" in estimate
    assert (
        f"After: equity SGD {format_money(after.after.equity, 'SGD')} · MM SGD "
        f"{format_money(after.after.mm, 'SGD')}"
    ) in estimate
    assert "Not in call: nothing to collect." in estimate  # S5001 is safe


async def test_the_dialog_shows_an_engaged_kill_switch_and_refuses_the_review() -> None:
    line, holder, figures = seed_line_and_holder()
    engaged = "KILL SWITCH engaged by sue at 2026-11-23 02:15 UTC: liquidations blocked"
    dialog = BuyToCoverDialog(
        line,
        holder,
        D(10),
        D(0),
        AllocationRule.LARGEST_DEFICIT,
        Actor("alice", Role.TRADER),
        figures=figures,
        halted=engaged,
    )
    app = Host(dialog)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert engaged in screen_text(app)
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert not dialog.reviewing
        assert "no liquidation can be reviewed or sent" in problems_text(dialog)
    assert app.results == []


# --- snapshots ----------------------------------------------------------------------------


@pytest.fixture
def seed_feed() -> Iterator[str]:
    """This module's desk for the snapshot app (`fixed_app`): the seed plus RECALL."""
    yield from serve_in_thread(seed_recall_sim())


async def _shorts_loaded(pilot: Pilot[Any]) -> LiveTable:
    app = pilot.app
    warnings = app.query_one("#warnings-pane-table", LiveTable)
    await until(lambda: warnings.row_count >= 4, what="the seed desk")
    await pilot.press("3")
    table = app.query_one("#shorts-pane-table", LiveTable)
    await until(lambda: table.row_count >= 2, what="the shorts")
    await pilot.pause()
    return table


async def _details_open(pilot: Pilot[Any]) -> LiveTable:
    table = await _shorts_loaded(pilot)
    table.move_cursor("TSLA.US")
    await pilot.press("enter")
    await until(lambda: isinstance(pilot.app.screen, ShortDetailsScreen), what="the details")
    details = pilot.app.screen.query_one("#short-clients", LiveTable)
    await until(lambda: details.row_count >= 2, what="the clients")
    await pilot.pause()
    return details


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_snapshot_tab_with_a_recall(
    snap_compare: Any, fixed_app: Any, size: tuple[int, int]
) -> None:
    assert snap_compare(fixed_app(), terminal_size=size, run_before=_shorts_loaded)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_snapshot_details(snap_compare: Any, fixed_app: Any, size: tuple[int, int]) -> None:
    assert snap_compare(fixed_app(), terminal_size=size, run_before=_details_open)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_snapshot_buy_to_cover(snap_compare: Any, fixed_app: Any, size: tuple[int, int]) -> None:
    async def run_before(pilot: Any) -> None:
        details = await _details_open(pilot)
        details.move_cursor("S5001")
        await pilot.press("l")
        await until(lambda: isinstance(pilot.app.screen, BuyToCoverDialog), what="the dialog")

        await pilot.pause()

    assert snap_compare(fixed_app(), terminal_size=size, run_before=run_before)


def test_the_recall_notice_is_filled_from_the_allocation_and_carries_no_raw_controls() -> None:
    line = ShortLine(
        symbol="TSLA.US",
        instrument=None,
        short_quantity=D(50),
        clients=2,
        borrow=Borrow("TSLA.US", D(0), D(2000), date(2026, 11, 25), D("0.035")),
        price=D(200),
        fx_to_reporting=D(1),
    )
    holder = ShortHolder("S5001", D(10), client_name=HOSTILE)
    notice = fill_recall(line, Allocation(holder, D(10)), Language.EN)
    assert notice.subject == "Recall of TSLA.US: your short position in account S5001"
    assert "Please buy back 10 TSLA.US by 2026-11-25." in notice.body
    assert not any(control in notice.body for control in RAW_CONTROLS)
    nothing_asked = fill_recall(line, Allocation(holder, D(0)), Language.EN).body
    assert "Please be ready to buy back your short position by 2026-11-25." in nothing_asked
    # In Traditional and Simplified Chinese: the same figures, the broker's words.
    hant = fill_recall(line, Allocation(holder, D(10)), Language.ZH_HANT)
    assert hant.subject == "TSLA.US 股票召回：帳戶 S5001 的沽空倉位"
    assert "現沽空 TSLA.US 共 10 股。請於 2026-11-25 前買回 10 股 TSLA.US。" in hant.body
    assert not any(control in hant.body for control in RAW_CONTROLS)
    hans = fill_recall(line, Allocation(holder, D(0)), Language.ZH_HANS).body
    assert "请做好准备，于 2026-11-25 前买回您的卖空持仓。" in hans


async def test_the_recall_notice_to_several_previews_the_very_text_each_language_sends() -> None:
    from risk_tui.core.messages import LanguageChoice, LanguageSource
    from risk_tui.core.model import Market
    from tests.ui.test_dialogs import Host, static_text

    line = ShortLine(
        symbol="TSLA.US",
        instrument=None,
        short_quantity=D(50),
        clients=2,
        borrow=Borrow("TSLA.US", D(0), D(2000), date(2026, 11, 25), D("0.035")),
        price=D(200),
        fx_to_reporting=D(1),
    )
    allocations = [
        Allocation(ShortHolder("H1", D(30), client_name="陳大文"), D(30)),
        Allocation(ShortHolder("S1", D(20), client_name="Lim Wei Jie"), D(0)),
    ]
    languages = {
        "H1": LanguageChoice(Language.ZH_HANT, LanguageSource.CLIENT, Market.HK),
        "S1": LanguageChoice(Language.ZH_HANS, LanguageSource.MARKET, Market.SG),
    }
    dialog = RecallNoticeDialog(line, allocations, Actor("alice", Role.TRADER), languages=languages)
    app = Host(dialog)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        assert "Languages: 繁體中文 1, 简体中文 1" in static_text(dialog, "#language")
        preview = static_text(dialog, "#preview")
        await pilot.press("ctrl+s")
        await pilot.pause()
    first, second = app.results[0]
    assert first.body is dialog.drafts["H1"].body  # what the preview was made from
    assert preview.endswith(first.body)
    assert "請於 2026-11-25 前買回 30 股 TSLA.US。" in first.body
    assert second.body.startswith("尊敬的客户 Lim Wei Jie：")
    assert "请做好准备，于 2026-11-25 前买回您的卖空持仓。" in second.body
