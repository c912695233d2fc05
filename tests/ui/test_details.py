"""DetailsScreen: what it shows, which keys answer what (by role), live updates, inert data."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from decimal import Decimal as D
from typing import Any

import pytest

from risk_tui.core.actions import AutoCondition, PlanLine
from risk_tui.core.cure import TradeLine
from risk_tui.core.lifecycle import SnapshotScenario
from risk_tui.core.margin import AccountMargin
from risk_tui.core.model import Quote, Side
from risk_tui.core.money import format_money
from risk_tui.core.records import (
    AutoLiquidationState,
    StoredAutoLiquidation,
    StoredOrder,
    StoredRemark,
    StoredSnapshot,
)
from risk_tui.core.snapshot import snapshot_payload
from risk_tui.screens.details import DetailsScreen
from risk_tui.widgets.live_table import LiveTable
from tests.factories import BookFigures
from tests.ui.test_dialogs import (
    HOSTILE,
    NOW,
    RAW_CONTROLS,
    SG,
    Host,
    remark,
    screen_text,
    seed_book,
    seed_call,
    seed_margin,
    segments,
    working_order,
)


def snapshots(margin: AccountMargin | None = None) -> list[StoredSnapshot]:
    margin = margin or seed_margin()
    payload = snapshot_payload(margin, seed_call(), feed_as_of=NOW, feed_cursor="c1")
    at = datetime(2026, 3, 10, 9, 5, tzinfo=SG)
    return [
        StoredSnapshot(1, "MC20260310-A1001-0001", "A1001", SnapshotScenario.TRIGGER, at,
                       at, "c1", payload, "h1"),
        StoredSnapshot(2, "MC20260310-A1001-0001", "A1001", SnapshotScenario.NOTIFICATION,
                       at.replace(minute=20), at, "c2", dict(payload, call_amount="990.5"), "h2"),
    ]  # fmt: skip


def has_pair(text: str, label: str, value: str) -> bool:
    """`label` and its `value` on one line of the screen, with only spaces between."""
    return (
        re.search(rf"(^|  |\s){re.escape(label)} +{re.escape(value)}(\s|$)", text, re.M) is not None
    )


def orders() -> list[StoredOrder]:
    return [replace(working_order("B.SG", "200", filled="100"), status="partially_filled")]


def details(**kw: Any) -> DetailsScreen:
    return DetailsScreen(
        kw.pop("call", seed_call()),
        kw.pop("margin", seed_margin()),
        kw.pop("snapshots", snapshots()),
        kw.pop("remarks", [remark(1, "client promised to pay"), remark(2, "chased", True)]),
        kw.pop("orders", orders()),
        kw.pop("now", NOW),
        kw.pop("can_trade", True),
        kw.pop("can_message", True),
        figures=kw.pop("figures", BookFigures(seed_book())),
        **kw,
    )


async def test_details_shows_summary_positions_orders_timeline_and_remarks() -> None:
    app = Host(details())
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        text = screen_text(app)
    for label, value in (
        ("Equity", "9,500.00"),
        ("IM", "11,250.00"),
        ("MM", "10,025.00"),
        ("FM", "8,800.00"),
        ("Call amount now", "1,015.00"),
        ("Net asset ratio", "38.78%"),
        ("Risk level", "CALL (equity below MM)"),
        ("Cash", "SGD -15,000.00"),
        ("Triggered", "2026-03-10 09:05 SG"),
        ("since", "1h 25m"),
        ("Deadline", "2026-03-12 15:00 SG"),
    ):
        assert has_pair(text, label, value), (label, value)
    for words in (
        "Margin call details · A1001 · Tan Mei Ling · margin · SG · SGD",
        "2d 04h 30m left",
        # The least-value cure, the 100 B.SG still working counted as sold: a lot of A.
        "30%  25%  20% 1 lot = 100",
        "50%  45%  40% —",
        "Least-value cure in whole lots (exact search): SGD 500.00 → call amount after 0.00",
        "counting the working orders as filled.",
        "Broker's published minimum (call ÷ IM ratio), not a cure: B.SG 2,030.00 · A.SG 3,383.33",
        "partially_filled",
        "990.50",
        "EXCEPTION  chased",
    ):
        assert words in text, words
    # The level is one word, as on the warnings tab.
    assert re.search(r"trigger\s+9,500\.00\s+1,015\.00\s+CALL\s", text)


async def test_details_escape_goes_back_with_none() -> None:
    app = Host(details())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
    assert app.results == [None]


@pytest.mark.parametrize(
    ("key", "answer"),
    [("l", "liquidate"), ("a", "auto_liquidate"), ("m", "message"), ("r", "remark")],
)
async def test_details_keys_ask_the_app_to_open_a_dialog(key: str, answer: str) -> None:
    app = Host(details())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press(key)
        await pilot.pause()
    assert app.results == [answer]


async def test_details_without_trading_or_messaging_rights_offers_neither() -> None:
    app = Host(details(can_trade=False, can_message=False))
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        footer = screen_text(app).splitlines()[-1]
        assert "Liquidate" not in footer
        assert "Message" not in footer
        assert "Remark" in footer
        assert "Back" in footer
        await pilot.press("l", "a", "m")
        await pilot.pause()
        assert app.results == []
        await pilot.press("r")
        await pilot.pause()
    assert app.results == ["remark"]


async def test_details_update_margin_redraws_the_figures() -> None:
    screen = details()
    app = Host(screen)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        book = seed_book()
        book.quotes["B.SG"] = Quote("B.SG", D("19.00"))
        screen.update_margin(seed_margin(book), now=NOW.replace(hour=12, minute=5))
        await pilot.pause()
        text = screen_text(app)
    assert has_pair(text, "Equity", "9,000.00")
    assert "19,000.00" in text  # B's market value
    assert has_pair(text, "since", "3h 00m")


async def test_details_cure_without_working_orders_is_a_lot_of_each() -> None:
    app = Host(details(orders=[]))
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        text = screen_text(app)
    # A lot of each (2,450.00), not 2 lots of B (3,900.00).
    assert "30%  25%  20% 1 lot = 100" in text
    assert "50%  45%  40% 1 lot = 100" in text
    assert "Least-value cure in whole lots (exact search): SGD 2,450.00 → call amount after" in text


async def test_details_ask_the_desk_for_the_cure_again_with_new_figures_and_orders() -> None:
    book = seed_book()
    screen = details(orders=[], figures=BookFigures(book))
    app = Host(screen)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        assert "SGD 2,450.00 → call amount after 0.00" in screen_text(app)
        # B falls to 18.00 on the desk's book: the call grows, and so does the cure.
        book.quotes["B.SG"] = Quote("B.SG", D("18.00"))
        screen.update_margin(seed_margin(book))
        await pilot.pause()
        cure = BookFigures(book).cure("A1001")
        assert cure is not None
        assert cure.value > D("2450")
        assert f"SGD {format_money(cure.value, 'SGD')} → call amount after 0.00" in screen_text(app)
        # An order for 100 B.SG is now working: counted as sold, the cure is smaller.
        screen.update_orders(orders())
        await pilot.pause()
        counted = BookFigures(book).cure("A1001", [TradeLine("B.SG", Side.SELL, D("100"))])
        assert counted is not None
        assert counted.value < cure.value
        assert f"SGD {format_money(counted.value, 'SGD')} → call amount after 0.00" in (
            screen_text(app)
        )


async def test_details_without_figures_says_so() -> None:
    app = Host(details(margin=None))
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        text = screen_text(app)
    assert "not computed yet" in text
    assert has_pair(text, "Call amount now", "1,015.00")  # the call's own amount still shows


async def test_details_scrolls_at_80x24() -> None:
    app = Host(details())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert "Remarks (newest first)" not in screen_text(app)
        await pilot.press("end")
        await pilot.pause()
        assert "Remarks (newest first)" in screen_text(app)


async def test_details_hostile_data_renders_inert() -> None:
    call = seed_call(client_name=HOSTILE, deadline=None, deadline_error=HOSTILE)
    bad_order = replace(orders()[0], status="rejected", reject_reason=HOSTILE, operator=HOSTILE)
    bad_snapshot = replace(snapshots()[0], payload={"risk_level": HOSTILE, "equity": HOSTILE})
    screen = details(
        call=call,
        orders=[bad_order],
        snapshots=[bad_snapshot],
        remarks=[StoredRemark(1, call.call_id, NOW, HOSTILE, HOSTILE, True)],
    )
    app = Host(screen)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        text = screen_text(app)
        links = [s.text for s in segments(app) if s.style is not None and s.style.link]
    assert "[b]bold[/b]" in text
    assert has_pair(text, "Deadline", "none")
    assert re.search(r"why none +␛\]8;;http://evil", text)  # the deadline error, as data
    for control in RAW_CONTROLS:
        assert control not in text
    assert links == []


@pytest.mark.parametrize(
    "size", [(80, 24), (120, 40), (160, 50)], ids=["80x24", "120x40", "160x50"]
)
def test_snapshot_details(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(Host(details()), terminal_size=size)


def test_snapshot_details_scrolled_to_the_end(snap_compare: Any) -> None:
    assert snap_compare(Host(details()), press=["end"], terminal_size=(80, 24))


async def test_details_timeline_says_the_moment_in_words() -> None:
    force = replace(snapshots()[1], seq=3, scenario=SnapshotScenario.FORCE_CALL)
    app = Host(details(snapshots=[*snapshots(), force]))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("end")
        await pilot.pause()
        text = screen_text(app)
    assert re.search(r"force call\s+9,500\.00", text)
    assert "force_call" not in text


def stored_plan(plan_id: str, minute: int) -> StoredAutoLiquidation:
    at = datetime(2026, 3, 10, 11, minute, tzinfo=SG)
    return StoredAutoLiquidation(
        plan_id, "MC20260310-A1001-0001", "A1001", at, AutoCondition.STILL_IN_CALL,
        (PlanLine("B.SG", Side.SELL, D("200")),), "alice", None, None, at,
        AutoLiquidationState.SCHEDULED, at,
    )  # fmt: skip


async def test_details_x_cancels_the_plan_under_the_plans_cursor() -> None:
    plans = [stored_plan("P-1", 0), stored_plan("P-2", 30)]
    app = Host(details(plans=plans))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.screen.query_one("#plans", LiveTable)
        assert table.row_count == 2
        table.focus()
        await pilot.press("down")
        assert table.cursor_key == "P-2"
        await pilot.press("x")
        await pilot.pause()
    assert app.results == ["cancel_plan:P-2"]


def order_at(key: str, minute: int) -> StoredOrder:
    at = datetime(2026, 3, 10, 10, minute, tzinfo=SG)
    return replace(working_order("B.SG", "100"), client_order_id=key, created_at=at)


async def test_details_orders_are_listed_by_time_as_they_come() -> None:
    screen = details(orders=[order_at("late", 30), order_at("early", 10)])
    app = Host(screen)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        table = screen.query_one("#orders", LiveTable)
        assert table.visible_keys() == ["early", "late"]
        # Read again: a new order placed by its time, one gone, the others kept.
        screen.update_records([order_at("late", 30), order_at("first", 5)], [], [])
        await pilot.pause()
        assert table.visible_keys() == ["first", "late"]
