"""Keys you can find (issue 14, point 2): the footer, the `?` help, the command palette, and
keys typed quickly after `/`."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

from textual import events
from textual.command import CommandPalette, Hit
from textual.keys import key_to_character
from textual.widgets import Input
from textual.widgets._footer import FooterKey

from risk_tui.app import RiskApp
from risk_tui.core.roles import Role
from risk_tui.screens.help import HelpScreen
from risk_tui.screens.palette import NOT_HERE, DeskCommands
from risk_tui.widgets.desk_footer import KEY_ORDER, DeskFooter
from risk_tui.widgets.dialogs.export import ExportDialog
from risk_tui.widgets.dialogs.liquidate import LiquidateDialog
from risk_tui.widgets.live_table import LiveTable
from tests.ui.test_app import Desk, make_app
from tests.ui.test_app import desk as desk  # the fixture: the simulator in the test's loop
from tests.ui.test_dialogs import screen_text
from tests.waiting import read_until, until

# Textual's names for keys, which people do not type or read.
RAW_KEY_NAMES = ("question_mark", "slash", "escape", "pageup", "pagedown", "full_stop")


async def _loaded(app: RiskApp) -> LiveTable:
    table = app.query_one("#warnings-pane-table", LiveTable)
    await until(lambda: table.row_count >= 4, what="the seed desk")
    return table


def footer_line(app: RiskApp) -> str:
    return screen_text(app).splitlines()[-1].rstrip()


def footer_keys(app: RiskApp) -> list[str]:
    """The footer's keys as shown, each "key label", left to right (help last)."""
    return [str(key.render()).strip() for key in app.screen.query_one(DeskFooter).query(FooterKey)]


# --- the footer -----------------------------------------------------------------------------


async def test_the_footer_at_80_columns_shows_the_first_keys_whole_and_ends_with_help(
    desk: Desk,
) -> None:
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await _loaded(app)
        await pilot.pause()
        line = footer_line(app)
        assert line.endswith("? help")
        assert line.startswith("l Liquidate a Auto-liq m Message r Remark ⏎ Open / Filter")
        keys = footer_keys(app)
        assert keys[-1] == "? help"
        for key in keys:  # each key and its label whole, none cut mid-word
            assert key in line
        assert len(line) <= 80
        # At 120 columns the next keys in order join (the call's less frequent ones).
        await pilot.resize_terminal(120, 30)
        await until(lambda: "c Close call" in footer_line(app), what="more keys at 120 columns")
        line = footer_line(app)
        assert line.endswith("? help")
        assert line.index("o Claim") < line.index("e Exception") < line.index("c Close call")
        # Back at 80 the footer drops them again, from the least important.
        await pilot.resize_terminal(80, 24)
        await until(lambda: "c Close call" not in footer_line(app), what="fewer keys at 80")
        assert footer_line(app).endswith("? help")


async def test_each_tab_leads_with_its_own_keys_and_a_filter_offers_esc(
    desk: Desk,
) -> None:
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await _loaded(app)
        await pilot.press("6")
        await until(lambda: footer_line(app).startswith("c Cancel order o Older"))
        assert footer_line(app).endswith("? help")
        assert "Liquidate" not in footer_line(app)  # no call to act on here
        await pilot.press("4")
        await until(lambda: footer_line(app).startswith("x Export"))
        await pilot.press("1", "slash", *"a1001", "enter")
        await until(lambda: "esc Clear filter" in footer_line(app))
        await pilot.press("escape")
        await until(lambda: "esc Clear filter" not in footer_line(app))


def test_the_footer_order_names_only_keys_that_exist() -> None:
    ids = RiskApp.binding_ids()
    assert set(KEY_ORDER) <= ids
    assert len(set(KEY_ORDER)) == len(KEY_ORDER)


# --- the `?` help ---------------------------------------------------------------------------


async def test_help_lists_every_binding_once_in_words_by_screen_and_scrolls_at_80x24(
    desk: Desk,
) -> None:
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await _loaded(app)
        await pilot.press("question_mark")
        await until(lambda: isinstance(app.screen, HelpScreen))
        await pilot.pause()
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        sections = help_screen.rows()
        rows = [row for section in sections.values() for row in section]
        ids = [binding_id for _, _, binding_id in rows if binding_id]
        assert sorted(ids) == sorted(RiskApp.binding_ids())  # every binding, each once
        keys = {binding_id: key for key, _, binding_id in rows}
        labels = {binding_id: label for _, label, binding_id in rows}
        assert keys["app.help"] == "?"
        assert keys["app.filter"] == "/"
        assert keys["app.back"] == "esc"
        assert keys["app.kill_switch"] == "ctrl+k"
        assert keys["sort.call_amount"] == "K"
        assert keys["help.close"] == "esc, q, ?"
        assert labels["sort.call_amount"] == "Sort by call amount"
        assert labels["sort.nar"] == "Sort by NAR"
        assert labels["tab.approvals"] == "Go to Approvals"
        for key, label, _ in rows:
            assert not any(raw in key for raw in RAW_KEY_NAMES), key
            assert "_" not in label, label  # "Sort call_amount"
        assert not any("Focus Next" in label or "Copy" in label for _, label, _ in rows)
        assert ("ctrl+p", "Command palette: commands by name", "") in rows
        assert list(sections)[:3] == [
            "Everywhere: tabs and the desk",
            "Every list",
            "Real-time warnings, Intraday margin, Exceptions",
        ]
        assert {"Details of a call", "History", "Liquidation orders", "Approvals"} <= set(sections)
        assert "Dialogs" in sections
        # On screen at 80×24: the words, no raw names, and the rest a scroll away.
        shown = screen_text(app)
        assert "Everywhere: tabs and the desk" in shown
        assert not any(raw in shown for raw in RAW_KEY_NAMES)
        scroll = help_screen.query_one("VerticalScroll")
        assert scroll.outer_size.width <= 80
        assert scroll.max_scroll_y > 0
        await pilot.press("end")
        await pilot.pause()
        assert scroll.scroll_y == scroll.max_scroll_y
        assert "Close this help" in screen_text(app)
        await pilot.press("escape")
        await until(lambda: app.screen is app.screen_stack[0])


async def test_help_shows_the_keys_as_the_config_remapped_them(
    desk: Desk,
) -> None:
    app = make_app(desk)
    app.settings = app.settings.model_copy(update={"keys": {"call.liquidate": "X"}})
    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(app)
        await pilot.press("question_mark")
        await until(lambda: isinstance(app.screen, HelpScreen))
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        rows = [row for section in help_screen.rows().values() for row in section]
        assert ("X", "Liquidate: choose the orders", "call.liquidate") in rows


# --- the command palette --------------------------------------------------------------------


async def _found(app: RiskApp, query: str) -> list[Hit]:
    provider = DeskCommands(app.screen)
    return [hit async for hit in provider.search(query) if isinstance(hit, Hit)]


async def _offered(app: RiskApp, query: str) -> list[Hit]:
    """The commands found that run here (the others are greyed, saying where they run)."""
    return [hit for hit in await _found(app, query) if not (hit.help or "").startswith(NOT_HERE)]


async def test_the_palette_finds_liquidate_by_name_and_runs_it(
    desk: Desk,
) -> None:
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        table = await _loaded(app)
        assert table.move_cursor("A1001")
        await pilot.press("ctrl+p")
        await until(lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"liquidate: choose")
        await until(lambda: "Liquidate: choose the orders" in screen_text(app))
        assert "key l" in screen_text(app)
        await pilot.press("enter")
        await until(lambda: isinstance(app.screen, LiquidateDialog), what="the liquidate dialog")
        await pilot.press("escape")
        await until(lambda: app.screen is app.screen_stack[0])


async def test_the_palette_offers_a_command_exactly_where_its_key_works(
    desk: Desk,
) -> None:
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await _loaded(app)
        names = [hit.text for hit in await _offered(app, "liquidate")]
        assert "Liquidate: choose the orders" in names
        assert "Auto-liquidate: schedule it" in names
        assert "Go to Approvals" in [hit.text for hit in await _offered(app, "go to approvals")]
        assert "Sort by call amount" in [hit.text for hit in await _offered(app, "sort by call")]
        assert not await _offered(app, "export history")  # its key is on the History tab
        (greyed,) = await _found(app, "export history")  # found, greyed, saying where
        assert greyed.help == "not available here · History"
        greyed.command()  # says so, does nothing
        await pilot.pause()
        assert app.screen is app.screen_stack[0]
        assert any("Export history" in n.message for n in app._notifications)
        await pilot.press("4")
        await pilot.pause()
        names = [hit.text for hit in await _offered(app, "liquidate")]
        assert names == ["Go to Liquidation orders"]  # no call to act on here
        (export,) = await _offered(app, "export history")
        assert export.help == "key x"
        await export.command()  # run_action: a coroutine
        await until(lambda: isinstance(app.screen, ExportDialog), what="the export dialog")
        # Over a dialog, the tabs' keys (and so their commands) do not work.
        assert not await _offered(app, "go to approvals")
        await pilot.press("escape")
        await until(lambda: app.screen is app.screen_stack[0])


async def test_a_viewer_is_not_offered_liquidate_and_textuals_keys_panel_is_gone(
    desk: Desk,
) -> None:
    app = make_app(desk, operator="viewer1")
    async with app.run_test(size=(80, 24)) as pilot:
        await _loaded(app)
        assert app.actor.role is Role.VIEWER
        names = [hit.text for hit in await _offered(app, "liquidate")]
        assert names == ["Go to Liquidation orders"]
        assert not await _offered(app, "message the client")
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert "Keys" not in titles
        assert "Quit" not in titles
        # The desk's help is there instead, by name.
        assert [hit.text for hit in await _offered(app, "every key")] == ["Every key, by screen"]
        await pilot.press("ctrl+p")
        await until(lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"keys")
        await pilot.pause(0.5)
        assert "Show help for the focused widget" not in screen_text(app)
        await pilot.press("escape")


# --- keys typed quickly after `/` -----------------------------------------------------------


async def test_keys_typed_in_one_burst_after_slash_all_land_in_the_filter_box(
    desk: Desk,
) -> None:
    """An operator types `/h2001⏎` in one go: every key is queued before the app has
    handled `/` (as a terminal delivers a burst), and every one reaches the box."""
    app = make_app(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        table = await _loaded(app)
        await pilot.pause()
        tab_before = app.query_one("TabbedContent").active  # type: ignore[attr-defined]
        for key in ("slash", *"h20q1", "enter"):  # q would quit, 2 and 1 switch tabs
            app.post_message(events.Key(key, key_to_character(key)))
        await until(lambda: table.row_count == 0, what="the filter applied")
        box = app.query_one("#filter", Input)
        assert box.value == "h20q1"
        assert app.is_running
        assert app.query_one("TabbedContent").active == tab_before  # type: ignore[attr-defined]
        for key in ("escape", "slash", *"H2001", "enter"):
            app.post_message(events.Key(key, key_to_character(key)))
        await until(lambda: table.row_count == 1, what="the second filter applied")
        assert box.value == "H2001"
        assert table.cursor_key == "H2001"


def test_a_burst_after_slash_on_a_real_terminal_lands_in_the_box(
    seed_feed: str, tmp_path: Path
) -> None:
    """The same through a pty, written in one `write` as tmux send-keys does: had `q`
    reached the table, the desk would have quit."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RISK_TUI_", "TEXTUAL"))}
    env.update(TERM="xterm-256color", XDG_STATE_HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "risk_tui",
            "run",
            "--feed-url",
            seed_feed,
            "--db",
            f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}",
            "--operator",
            "someone",
        ],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        close_fds=True,
    )
    os.close(follower)
    try:
        read_until(leader, lambda out: b"H2001" in out, seconds=20, what="the seed desk")
        time.sleep(0.5)
        os.write(leader, b"/qzq\r")  # one burst
        read_until(leader, lambda out: b"qzq" in out, seconds=10, what="the text in the box")
        time.sleep(1.0)
        assert process.poll() is None, "a key after / reached the table and quit the desk"
        os.write(leader, b"\x1b")  # escape clears the filter, then q quits
        time.sleep(0.5)
        os.write(leader, b"q")
        read_until(leader, seconds=10, what="the app quitting and closing its terminal")
    finally:
        if process.poll() is None:
            process.kill()
        os.close(leader)
    assert process.wait(5) == 0
