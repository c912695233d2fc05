"""Issue 14 point 3: the tab bar, the status lines and the summary fit an 80-column
window, and the screen speaks one vocabulary (FORCE / CALL / …; triggered, force call)."""

from __future__ import annotations

import re
from pathlib import Path

from rich.text import Text

from risk_tui.app import TABS, RiskApp
from risk_tui.core.feed_health import FeedStatus
from risk_tui.sim.app import SimState
from risk_tui.widgets.desk_tabs import DeskTabs, fit_labels
from risk_tui.widgets.dialogs.formatting import plural
from risk_tui.widgets.feed_banner import FeedBanner
from risk_tui.widgets.summary_bar import SummaryBar, pack
from tests.ui.test_app import Desk, desk, make_app, row_text  # noqa: F401 (desk: a fixture)
from tests.ui.test_approvals import LOW, OPERATORS, requested
from tests.ui.test_dialogs import screen_text
from tests.ui.test_orders import desk_ready, running
from tests.waiting import until

FULL = dict(TABS)
SHORT_BAR = "1 Warn  2 Intra  3 Short  4 Hist  5 Exc  6 Orders  7 Approve"
ENUMS = re.compile(r"force_call|margin_call|FORCE CALL|Force call \d|Margin call \d")


def screen_lines(app: RiskApp) -> list[str]:
    return screen_text(app).splitlines()


def tab_bar(app: RiskApp) -> str:
    """The row of the screen the tabs' labels are on."""
    return next(line for line in screen_lines(app) if re.match(r"\s*1\b.*\b7\b", line))


# --- the tab bar ---------------------------------------------------------------------------


def test_tab_labels_are_full_when_they_fit_short_at_80_and_digits_below() -> None:
    assert fit_labels(FULL, "warnings", 200) == FULL
    assert fit_labels(FULL, "warnings", 0) == FULL  # not laid out yet
    short = fit_labels(FULL, "approvals", 80)
    assert "  ".join(short.values()) == SHORT_BAR
    narrow = fit_labels(FULL, "orders", 40)
    assert list(narrow.values()) == ["1", "2", "3", "4", "5", "6 Orders", "7"]
    counted = fit_labels(FULL, "warnings", 80, {"approvals": 2, "orders": 0})
    assert counted["approvals"] == "7 Approve (2)"
    assert counted["orders"] == "6 Orders"  # no "(0)"
    assert fit_labels(FULL, "warnings", 40, {"approvals": 2})["approvals"] == "7 (2)"


async def test_the_tab_bar_at_80_columns_shows_every_tab_and_keeps_the_current_one(
    desk: Desk,  # noqa: F811 (the fixture, by name)
) -> None:
    """Seen before: at 80 columns the bar ended "5 Except", and on tabs 3–7 it started
    mid-word with tab 1 scrolled out of view."""
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(lambda: "1,015.00" in row_text(app, "A1001"))
        await until(lambda: SHORT_BAR in tab_bar(app), what="the short labels")
        for key, label in (("7", "7 Approve"), ("3", "3 Short"), ("6", "6 Orders")):
            await pilot.press(key)
            await pilot.pause()
            bar = tab_bar(app)
            assert bar.strip().startswith("1 Warn"), bar  # nothing scrolled out
            assert label in bar, bar
        await pilot.press("7")
        await until(lambda: "No requests waiting" in screen_text(app), what="the Approvals")
        summary = next(line for line in screen_lines(app) if "No requests waiting" in line)
        assert summary.rstrip().endswith("…"), summary  # cut, and said so
        app.query_one(DeskTabs).set_count("approvals", 2)
        await until(lambda: "7 Approve (2)" in tab_bar(app), what="the requests waiting")
        await pilot.resize_terminal(140, 30)
        await until(lambda: "1 Real-time warnings" in tab_bar(app), what="full labels")
        assert "7 Approvals (2)" in tab_bar(app)
        await pilot.resize_terminal(40, 24)
        await until(lambda: "7 Approve (2)" in tab_bar(app), what="the current tab, named")
        assert tab_bar(app).split() == ["1", "2", "3", "4", "5", "6", "7", "Approve", "(2)"]


# --- the status lines ----------------------------------------------------------------------


async def test_the_down_banner_keeps_its_reason_and_cuts_with_an_ellipsis(
    desk: Desk,  # noqa: F811 (the fixture, by name)
) -> None:
    """Seen before: "… no successful poll yet: feed" — the reason, "cannot connect",
    was past the edge of an 80-column window, and the line was cut without a sign."""
    nothing_there = desk.settings.feed.model_copy(
        update={"url": "http://127.0.0.1:9", "stale_after": 0.2, "timeout": 0.2}
    )
    desk.settings = desk.settings.model_copy(update={"feed": nothing_there})
    app = make_app(desk)
    async with app.run_test(size=(80, 24)):
        banner = app.query_one(FeedBanner)
        await until(lambda: banner.status is FeedStatus.DOWN, seconds=10)
        await until(lambda: "cannot connect" in screen_text(app), what="the reason on screen")
        line = next(line for line in screen_lines(app) if "DOWN" in line)
        assert "FIGURES NOT LIVE" in line
        assert line.rstrip().endswith("…"), line  # the URL and the rest: cut, and said so
        assert "no successful poll yet" not in line


def test_the_summary_parts_are_whole_or_left_out_with_an_ellipsis() -> None:
    parts = [Text(word) for word in ("FORCE 15", "CALL 11", "WATCH 0", "SAFE 0")]
    assert pack(parts, 0).plain == "FORCE 15  CALL 11  WATCH 0  SAFE 0"
    assert pack(parts, 34).plain == "FORCE 15  CALL 11  WATCH 0  SAFE 0"
    assert pack(parts, 33).plain == "FORCE 15  CALL 11  WATCH 0  …"
    assert pack(parts, 11).plain == "FORCE 15  …"
    assert pack(parts, 10).plain == "…"
    words = [Text("triggered 11"), Text("force call 15")]
    line = SummaryBar._counts_line(parts, words, 78).plain
    assert line == "FORCE 15  CALL 11  WATCH 0  SAFE 0  |  triggered 11  force call 15"
    assert SummaryBar._counts_line(parts, [], 78).plain == "FORCE 15  CALL 11  WATCH 0  SAFE 0"
    # Too wide: the zeros go first, then the states that do not fit.
    line = SummaryBar._counts_line(parts, words, 50).plain
    assert line == "FORCE 15  CALL 11  |  triggered 11  force call 15"
    assert (
        SummaryBar._counts_line(parts, words, 40).plain == "FORCE 15  CALL 11  |  triggered 11  …"
    )


def test_one_call_is_a_call() -> None:
    assert plural(1, "call") == "1 call"
    assert plural(0, "call") == "0 calls"
    assert plural(1234, "record") == "1,234 records"


async def test_the_summary_is_two_lines_at_80_columns_in_the_screens_words(
    desk: Desk,  # noqa: F811 (the fixture, by name)
) -> None:
    """Seen before: a third line at 80 columns (the table moved as counts grew), "Force
    call 15 … | force_call 16", "1 calls" and a "|" with nothing after it."""
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(lambda: "1,015.00" in row_text(app, "A1001"))
        await until(lambda: "FORCE" in str(app.query_one(SummaryBar).render()))
        for key, pane in (("1", "warnings"), ("2", "intraday"), ("5", "exceptions")):
            await pilot.press(key)
            await pilot.pause()
            bar = app.query_one(f"#{pane}-pane").query_one(SummaryBar)
            text = str(bar.render())
            assert bar.region.height == 2
            assert len(text.splitlines()) <= 2, text
            assert all(len(line) <= 78 for line in text.splitlines()), text
            assert not text.rstrip().endswith("|"), text
            assert not re.search(r"\b1 calls\b", text), text
        await pilot.press("1")
        await pilot.pause()
        text = str(app.query_one("#warnings-pane").query_one(SummaryBar).render())
        assert re.search(r"^\d+ calls? ", text), text
        assert "FORCE 1" in text, text
        assert "force call 1" in text, text


async def test_no_machine_name_of_a_level_or_state_on_screen(
    desk: Desk,  # noqa: F811 (the fixture, by name)
) -> None:
    """One word per level (FORCE / CALL / WATCH / SAFE / INCOMPLETE) and the states in
    words, on the rows, the summary and the details; seen before: "Alert watch · State
    force_call" and "Force call 15 … | force_call 16"."""
    app = make_app(desk)
    async with app.run_test(size=(240, 50)) as pilot:
        await until(lambda: "force call" in row_text(app, "U3001"))
        assert "FORCE" in row_text(app, "U3001")
        for key in ("1", "2", "5"):
            await pilot.press(key)
            await pilot.pause()
            assert not ENUMS.search(screen_text(app)), screen_text(app)
        await pilot.press("1")
        await pilot.pause()
        app.query_one("#warnings-pane-table").focus()
        app.open_details("U3001")
        await until(lambda: "Risk level" in screen_text(app), what="the details")
        text = screen_text(app)
        assert "FORCE (equity below FM)" in text
        assert not ENUMS.search(text), text


async def test_the_requests_waiting_follow_the_short_label_at_80_columns(tmp_path: Path) -> None:
    """The count the desk reads (a request asked on another terminal), after the short
    label: "7 Approve (1)", and the bar still starts at tab 1."""
    async with running(
        SimState(tick_interval=None),
        tmp_path,
        operator="sup1",
        size=(80, 24),
        operators=OPERATORS,
        four_eyes=LOW,
    ) as (app, pilot):
        await desk_ready(app)
        await requested(app)
        await until(lambda: "7 Approve (1)" in tab_bar(app), what="the request waiting")
        await pilot.press("7")
        await pilot.pause()
        bar = tab_bar(app)
        assert bar.strip().startswith("1 Warn"), bar
        assert "7 Approve (1)" in bar, bar
