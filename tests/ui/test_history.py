"""The History tab: calls that end reach it, its details compare trigger and end, it reads
the database a page at a time, and the compliance export from it verifies offline."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy import make_url
from sqlalchemy.exc import OperationalError
from textual.binding import Binding
from textual.widgets import DataTable, Input, Static

from risk_tui.app import RiskApp
from risk_tui.core.export import Period
from risk_tui.core.lifecycle import (
    CallState,
    EndReason,
    LifecycleBatch,
    MarginCall,
    SnapshotRecord,
    SnapshotScenario,
)
from risk_tui.core.model import CashBalance, Quote
from risk_tui.core.records import StoredSnapshot
from risk_tui.core.snapshot import snapshot_payload
from risk_tui.desk.api import ExportRequest
from risk_tui.desk.export import Exporter, ExportFailed, export_file, read_export
from risk_tui.screens import history as history_module
from risk_tui.screens.history import PAGE_SIZE, PREFETCH_ROWS, HistoryPane
from risk_tui.screens.history_details import HistoryDetailsScreen
from risk_tui.sim.changes import ChangeSet
from risk_tui.storage import Store, create_engine, upgrade
from risk_tui.storage.chain import CHAIN_AUDIT, export_records
from risk_tui.widgets.dialogs.base import MarkRadioButton
from risk_tui.widgets.dialogs.export import ExportDialog
from risk_tui.widgets.live_table import LiveTable
from tests.factories import account_state, make_call, snapshot_of
from tests.ui import test_app as app_tests
from tests.ui.helpers import desk_of
from tests.ui.test_app import make_app, row_text
from tests.ui.test_dialogs import (
    HOSTILE,
    RAW_CONTROLS,
    SG,
    Host,
    problems_text,
    remark,
    screen_text,
    seed_book,
    seed_call,
    seed_margin,
    segments,
    working_order,
)
from tests.waiting import until

desk = app_tests.desk  # the simulator desk of the app tests: a real feed and SQLite file

RISK_TUI = [sys.executable, "-m", "risk_tui"]
DEPOSIT_ID = "DEP-20261208-0930-A1001-0001-BRANCH-7"  # long, as a bank reference can be
WHO = Exporter("trader1", "history tab", "trader")


def history_of(app: RiskApp) -> tuple[HistoryPane, LiveTable]:
    return (
        app.query_one("#history-pane", HistoryPane),
        app.query_one("#history-pane-table", LiveTable),
    )


def cells_text(table: LiveTable, key: str) -> str:
    row = table.get_row(key)
    return " ".join(cell.plain for cell in row.cells) if row else ""


def has_row(text: str, *cells: str) -> bool:
    """A line of `text` shows these cells in this order, separated by spaces only."""
    return re.search("[ ]+".join(re.escape(cell) for cell in cells), text) is not None


def notified(app: RiskApp, words: str) -> Callable[[], bool]:
    return lambda: any(words in note.message for note in app._notifications)


async def export_audits(url: str) -> list[dict[str, Any]]:
    """The audit chain's export records, oldest first."""
    engine = await create_engine(url)
    try:
        return [r async for r in export_records(engine, CHAIN_AUDIT) if r["action"] == "export"]
    finally:
        await engine.dispose()


def verify_db_cli(url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISK_TUI_")}
    return subprocess.run(
        [*RISK_TUI, "audit", "verify", "--db", url],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def verify_cli(path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISK_TUI_")}
    return subprocess.run(
        [*RISK_TUI, "audit", "verify", "--export", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=path.parent,
    )


# --- a call ends, live ------------------------------------------------------------------------


async def test_a_call_ended_by_a_price_recovery_appears_in_history_with_both_snapshots(
    desk: app_tests.Desk,
) -> None:
    app = make_app(desk)
    async with app.run_test(size=(160, 50)) as pilot:
        await until(lambda: "1,015.00" in row_text(app, "A1001"))
        assert app.desk is not None
        call_id = desk_of(app).engine.open_calls["A1001"].call_id
        await pilot.press("4")
        pane, table = history_of(app)
        await until(lambda: pane.total == 0)
        assert table.get_row(call_id) is None

        # B recovers: equity 15,000 ≥ MM 12,500 + 2 % × 30,000: the call is met.
        desk.sim.publish({"quotes": [{"symbol": "B.SG", "price": "25.00"}]})
        await until(lambda: table.get_row(call_id) is not None, seconds=8)
        assert row_text(app, "A1001") == ""  # off the live list
        shown = cells_text(table, call_id)
        for words in ("A1001", "Tan Mei Ling", " met ", "SGD", "1,015.00", "prices up", " SG"):
            assert words in shown, (words, shown)
        await until(lambda: pane.total == table.row_count)  # every call B.SG cured
        assert table.move_cursor(call_id)

        store = desk_of(app).store
        assert isinstance(store, Store)
        snapshots = await store.history.snapshots_for(call_id)
        assert [s.scenario for s in snapshots] == [SnapshotScenario.TRIGGER, SnapshotScenario.END]
        assert snapshots[0].payload["equity"] == "9500.00"
        assert D(snapshots[1].payload["call_amount"]) == 0

        await pilot.press("enter")
        await until(lambda: isinstance(app.screen, HistoryDetailsScreen))
        await pilot.pause()
        text = screen_text(app)
        for words in (
            f"Ended margin call · A1001 · Tan Mei Ling · margin · SG · SGD · {call_id}",
            "Account figures in SGD: trigger ",
        ):
            assert words in text, (words, text)
        assert has_row(text, "End reason", "met")
        assert has_row(text, "How it was met", "prices up")
        assert has_row(text, "Equity", "9,500.00", "15,000.00", "+5,500.00")
        assert has_row(text, "Call amount", "1,015.00", "0.00", "-1,015.00")
        assert has_row(text, "B.SG", "1,000", "1,000", "0", "+5,500.00", "19.50", "25.00")
        assert " vs end " in text
        timeline = app.screen.query_one("#timeline", DataTable)
        assert [timeline.get_row_at(i)[1].plain for i in range(timeline.row_count)] == [
            "trigger",
            "end",
        ]
        await pilot.press("escape")
        await until(lambda: app.screen is app.screen_stack[0])


async def test_a_call_met_by_deposit_shows_how_and_the_deposits_in_history(
    desk: app_tests.Desk,
) -> None:
    app = make_app(desk)
    async with app.run_test(size=(160, 50)) as pilot:
        await until(lambda: "1,015.00" in row_text(app, "A1001"))
        call_id = desk_of(app).engine.open_calls["A1001"].call_id
        await pilot.press("4")
        pane, table = history_of(app)
        await until(lambda: pane.total == 0)

        # The client pays in the amount called while B.SG falls a little.
        changes = ChangeSet(desk.sim.store, desk.sim.clock())
        changes.move_cash(DEPOSIT_ID, "A1001", "SGD", D("1015.00"), "deposit")
        changes.put("quotes", {"symbol": "B.SG", "price": "19.00"})
        desk.sim.commit(changes)
        await until(lambda: table.get_row(call_id) is not None, seconds=8)
        shown = cells_text(table, call_id)
        for words in (" deposit ", "1,015.00", "+1,015.00", "met by deposit"):
            assert words in shown, (words, shown)
        assert table.move_cursor(call_id)
        await pilot.press("enter")
        await until(lambda: isinstance(app.screen, HistoryDetailsScreen))
        await pilot.pause()
        text = screen_text(app)
        assert has_row(text, "End reason", "met by deposit"), text
        assert has_row(text, "How it was met", "met by deposit"), text
        assert "Deposits and withdrawals counted toward met by deposit" in text
        assert has_row(text, "deposit", "SGD 1,015.00", "1", "+1,015.00", DEPOSIT_ID)
        assert has_row(text, "net", "+1,015.00")
        assert has_row(text, "Net deposits", "+1,015.00")

        # At 80 columns the figures stay whole: the time and the id wrap instead.
        details = app.screen
        assert isinstance(details, HistoryDetailsScreen)
        console = Console(width=76, record=True, color_system=None)
        console.print(details.movements_table())
        narrow = console.export_text()
        assert "…" not in narrow, narrow
        assert has_row(narrow, "deposit", "SGD 1,015.00", "1", "+1,015.00"), narrow
        assert has_row(narrow, "net", "+1,015.00"), narrow
        column = narrow.index("Movement")
        folded = "".join(line[column:].strip() for line in narrow.splitlines()[1:])
        assert folded == DEPOSIT_ID, narrow  # whole, folded over its lines


# --- export from the tab ----------------------------------------------------------------------


async def test_export_from_the_tab_writes_files_that_verify_offline(
    desk: app_tests.Desk, tmp_path: Path
) -> None:
    app = make_app(desk)
    async with app.run_test(size=(160, 50)) as pilot:
        await until(lambda: "1,015.00" in row_text(app, "A1001"))
        await pilot.press("4")
        for fmt in ("jsonl", "csv"):
            await pilot.press("x")
            await until(lambda: isinstance(app.screen, ExportDialog))
            dialog = app.screen
            assert isinstance(dialog, ExportDialog)
            today = app.clock().date().isoformat()  # the desk's clock, in UTC
            assert dialog.query_one("#first", Input).value == today
            assert dialog.query_one("#last", Input).value == today
            if fmt == "csv":
                dialog.query_one("#fmt-csv", MarkRadioButton).value = True
                await pilot.pause()
            assert dialog.query_one("#path", Input).value.endswith(f"..{today}.{fmt}")
            written = tmp_path / f"day.{fmt}"
            dialog.query_one("#path", Input).value = str(written)
            await pilot.press("ctrl+s")
            await until(lambda: app.screen is app.screen_stack[0])
            await until(written.exists, seconds=10)
            await until(notified(app, f"export written: {written}"))
        assert app.desk is not None
        store = desk_of(app).store
        assert isinstance(store, Store)
        calls = list(desk_of(app).engine.open_calls.values())
        snapshots = sum([len(await store.history.snapshots_for(call.call_id)) for call in calls])
    assert not await asyncio.to_thread(lambda: list(tmp_path.glob(".*.partial")))
    for fmt in ("jsonl", "csv"):
        verified = verify_cli(tmp_path / f"day.{fmt}")
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert verified.stdout.startswith(
            f"ok: export of {today}..{today}: {len(calls)} calls, {snapshots} snapshots"
        )
    assert len(calls) == 4
    assert snapshots >= 4

    # Each export is in the audit chain: who, which period, to where, the SHA-256 written.
    audits = await export_audits(desk.settings.db.url)
    assert [record["operator"] for record in audits] == ["trader1", "trader1"]
    for record, fmt in zip(audits, ("jsonl", "csv"), strict=True):
        written = tmp_path / f"day.{fmt}"
        data = await asyncio.to_thread(written.read_bytes)
        _, header = next(read_export(data.decode("utf-8")))
        assert header["record"] == "header"
        assert record["details"] == {
            "period": {"from": today, "to": today},
            "format": fmt,
            "destination": str(written),
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
            "counts": header["counts"],
            "source": "history tab",
            "role": "trader",
        }
    chains = await asyncio.to_thread(verify_db_cli, desk.settings.db.url)
    assert chains.returncode == 0, chains.stdout + chains.stderr


async def test_the_export_dialog_checks_entries_and_follows_the_format(tmp_path: Path) -> None:
    (tmp_path / "taken.jsonl").write_text("keep me", encoding="utf-8")
    day = date(2026, 11, 23)
    host = Host(ExportDialog(day, tmp_path))
    async with host.run_test(size=(120, 40)) as pilot:
        dialog = host.dialog
        path = dialog.query_one("#path", Input)
        assert path.value == str(tmp_path / "risk-tui-export-2026-11-23..2026-11-23.jsonl")
        dialog.query_one("#first", Input).value = "2026-11-20"
        dialog.query_one("#fmt-csv", MarkRadioButton).value = True
        await pilot.pause()
        assert path.value == str(tmp_path / "risk-tui-export-2026-11-20..2026-11-23.csv")

        dialog.query_one("#first", Input).value = "23/11/2026"
        dialog.query_one("#last", Input).value = "2026-11-19"
        path.value = "taken.jsonl"
        await pilot.press("ctrl+s")
        taken = tmp_path / "taken.jsonl"
        assert problems_text(dialog) == (
            "Error: From: '23/11/2026' is not a date as YYYY-MM-DD\n"
            f"Error: Output file: {taken} already exists (nothing is overwritten)"
        )
        dialog.query_one("#first", Input).value = "2026-11-20"
        path.value = str(tmp_path / "no-such-dir" / "x.csv")
        await pilot.press("ctrl+s")
        assert problems_text(dialog) == (
            "Error: To 2026-11-19 is before From 2026-11-20\n"
            f"Error: Output file: no folder {tmp_path / 'no-such-dir'}"
        )
        assert host.results == []
        dialog.query_one("#last", Input).value = "2026-11-21"
        path.value = "mine.csv"  # relative: in the folder the dialog was opened in
        await pilot.press("ctrl+s")
        await pilot.pause()
    (request,) = host.results
    assert request == ExportRequest(
        Period(date(2026, 11, 20), date(2026, 11, 21)),
        "csv",
        tmp_path / "mine.csv",
    )
    assert (tmp_path / "taken.jsonl").read_text(encoding="utf-8") == "keep me"


async def test_escape_cancels_the_export() -> None:
    host = Host(ExportDialog(date(2026, 11, 23), Path("/desk/exports")))
    async with host.run_test(size=(80, 24)) as pilot:
        await pilot.press("escape")
        await pilot.pause()
    assert host.results == [None]


async def test_a_failed_export_is_one_line_and_leaves_no_file(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}"
    await upgrade(url)
    day = date(2026, 11, 23)
    now = datetime(2026, 11, 23, 10, 0, tzinfo=SG)
    missing = tmp_path / "gone" / "x.jsonl"
    with pytest.raises(ExportFailed) as failed:
        await asyncio.to_thread(
            export_file, make_url(url), ExportRequest(Period(day, day), "jsonl", missing), now, WHO
        )
    assert str(failed.value).startswith(f"cannot write {missing}: ")
    assert "\n" not in str(failed.value)
    taken = tmp_path / "taken.csv"
    taken.write_text("keep me", encoding="utf-8")
    with pytest.raises(ExportFailed, match="already exists: nothing overwritten"):
        await asyncio.to_thread(
            export_file, make_url(url), ExportRequest(Period(day, day), "csv", taken), now, WHO
        )
    assert taken.read_text(encoding="utf-8") == "keep me"
    assert not await asyncio.to_thread(lambda: list(tmp_path.glob(".*")))
    assert await export_audits(url) == []  # nothing delivered, nothing audited


# --- a long history: read a page at a time -----------------------------------------------------


T_HISTORY = datetime(2026, 1, 5, 9, 0, tzinfo=SG)


async def fill_history(db_path: Path, count: int) -> list[MarginCall]:
    """`count` ended calls (one second apart), each with a trigger and an end snapshot."""
    url = f"sqlite+aiosqlite:///{db_path}"
    await upgrade(url)
    engine = await create_engine(url)
    calls = [
        make_call(
            f"X{i:05d}",
            state=CallState.ENDED,
            triggered_at=T_HISTORY + timedelta(seconds=i) - timedelta(hours=2),
            ended_at=T_HISTORY + timedelta(seconds=i),
            end_reason=EndReason.MET,
        )
        for i in range(count)
    ]
    end_state = dict(account_state(), cash={"SGD": "-13985.00"}, cash_base="-13985.00")
    records = [
        snapshot
        for call in calls
        for snapshot in (
            snapshot_of(call, SnapshotScenario.TRIGGER, call.triggered_at, {
                **account_state(call.account_id), "cash_base": "-15000.00"}),
            snapshot_of(call, SnapshotScenario.END, call.ended_at or T_HISTORY, end_state),
        )
    ]  # fmt: skip
    try:
        await Store(engine).calls.commit(LifecycleBatch(calls=calls, snapshots=records))
    finally:
        await engine.dispose()
    return sorted(calls, key=lambda c: (c.ended_at, c.call_id), reverse=True)


async def test_a_long_history_is_read_a_page_at_a_time(
    fixed_app: Callable[..., RiskApp], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    newest_first = await fill_history(tmp_path / "desk.db", 5_000)
    monkeypatch.setattr(history_module, "PROBE_SECONDS", 0.5)
    app = fixed_app()
    async with app.run_test(size=(160, 50)) as pilot:
        await until(lambda: app.desk is not None and app.view is not None)
        assert app.desk is not None
        store = desk_of(app).store
        assert isinstance(store, Store)
        reads: list[dict[str, Any]] = []
        page = store.history.history_page

        async def spy(limit: int, **given: Any) -> list[MarginCall]:
            kw = {k: v for k, v in given.items() if v is not None or k == "needle"}
            if "before" in kw:  # where the cursor was when the next page was asked for
                kw["cursor"] = app.query_one("#history-pane-table", LiveTable).cursor_index
            found = await page(limit, **{k: v for k, v in kw.items() if k != "cursor"})
            reads.append({"limit": limit, "rows": len(found), **kw})
            return found

        store.history.history_page = spy  # type: ignore[method-assign]  # a spy, this store only
        await pilot.press("4")
        pane, table = history_of(app)
        await until(lambda: table.total_row_count > 0)
        await pilot.pause(0.3)
        # One page held, not 5,000; every read asks for one page.
        assert pane.total == 5_000
        assert table.total_row_count == PAGE_SIZE
        assert reads[0] == {"limit": PAGE_SIZE, "rows": PAGE_SIZE, "needle": None}
        assert all(read["limit"] == PAGE_SIZE and "before" not in read for read in reads)
        assert table.visible_keys() == [c.call_id for c in newest_first[:PAGE_SIZE]]
        assert "cash in" in cells_text(table, newest_first[0].call_id)
        assert "+1,015.00" in cells_text(table, newest_first[0].call_id)

        # Paging down reads the next page once the cursor nears the last row held.
        await pilot.press("home")
        for _ in range(20):
            if any("before" in read for read in reads):
                break
            await pilot.press("pagedown")
            await pilot.pause(0.05)
        await until(lambda: table.total_row_count == 2 * PAGE_SIZE)
        (next_page,) = [read for read in reads if "before" in read]
        assert next_page.pop("cursor") >= PAGE_SIZE - PREFETCH_ROWS
        last_of_first = newest_first[PAGE_SIZE - 1]
        assert next_page == {
            "limit": PAGE_SIZE,
            "rows": PAGE_SIZE,
            "before": (last_of_first.ended_at, last_of_first.call_id),
            "needle": None,
        }
        assert table.visible_keys() == [c.call_id for c in newest_first[: 2 * PAGE_SIZE]]

        # The filter runs in the database: it finds the oldest call, far beyond the pages read.
        oldest = newest_first[-1]
        await pilot.press("slash", *oldest.account_id.lower(), "enter")
        await until(lambda: table.visible_keys() == [oldest.call_id])
        assert pane.total == 1
        assert pane.exhausted
        await pilot.press("escape")
        await until(lambda: pane.total == 5_000 and table.total_row_count == PAGE_SIZE)

        # A call ended by another engine on the same database comes in at the top.
        last_ended = newest_first[0].ended_at
        assert last_ended is not None
        later = replace(
            make_call("LATE1"),
            state=CallState.ENDED,
            ended_at=last_ended + timedelta(minutes=1),
            end_reason=EndReason.CLOSED,
            end_note="written off",
        )
        await store.calls.commit(LifecycleBatch(calls=[later]))
        await until(lambda: table.visible_keys()[:1] == [later.call_id], seconds=5)
        assert pane.total == 5_001
        assert table.total_row_count == PAGE_SIZE + 1
        assert "closed by operator" in cells_text(table, later.call_id)


async def test_a_database_error_is_one_line_and_history_recovers(
    fixed_app: Callable[..., RiskApp], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await fill_history(tmp_path / "desk.db", 3)
    monkeypatch.setattr(history_module, "PROBE_SECONDS", 0.3)
    app = fixed_app()
    async with app.run_test(size=(160, 50)) as pilot:
        await until(lambda: app.desk is not None)
        assert app.desk is not None
        store = desk_of(app).store
        assert isinstance(store, Store)

        async def locked(needle: str | None = None) -> int:
            raise OperationalError("SELECT count(*)", {}, Exception("database is locked"))

        store.history.count_history = locked  # type: ignore[method-assign]  # until `del` below
        await pilot.press("4")
        pane, table = history_of(app)
        status = app.query_one("#history-status", Static)
        await until(lambda: "cannot read history" in str(status.render()))
        assert str(status.render()) == "History: cannot read history: database is locked"
        await until(notified(app, "cannot read history: database is locked"))
        assert table.row_count == 0
        del store.history.count_history  # the database answers again: the next probe reads it
        await until(lambda: table.row_count == 3, seconds=5)
        assert pane.total == 3
        assert str(status.render()).startswith("History: 3 ended calls, newest first")


# --- what is shown ---------------------------------------------------------------------------


def seed_history() -> tuple[list[MarginCall], list[SnapshotRecord]]:
    """Three ended calls on the SPEC example: met by a recovery, liquidated, closed."""
    trigger = snapshot_payload(seed_margin(), seed_call(), feed_as_of=None, feed_cursor="c1")
    recovered = seed_book()
    recovered.quotes["B.SG"] = Quote("B.SG", D("25.00"))
    liquidated = seed_book(b_quantity="800")
    liquidated.set_cash(CashBalance("A1001", "SGD", D("-11100.00")))
    at = datetime(2026, 11, 20, 9, 5, tzinfo=SG)
    calls: list[MarginCall] = []
    records: list[SnapshotRecord] = []
    for n, (account, client, reason, note, book) in enumerate(
        [
            ("A1001", "Tan Mei Ling", EndReason.MET, None, recovered),
            ("S2002", "Lim Wei Jie", EndReason.LIQUIDATED, None, liquidated),
            ("H3003", "陳大文", EndReason.CLOSED, "debt written off, client bankrupt", seed_book()),
        ]
    ):
        ended_at = at + timedelta(days=1, hours=n, minutes=25)
        call = replace(
            seed_call(client),
            call_id=f"MC20261120-{account}-000{n}",
            account_id=account,
            state=CallState.ENDED,
            triggered_at=at + timedelta(hours=n),
            ended_at=ended_at,
            end_reason=reason,
            end_note=note,
        )
        end = snapshot_payload(seed_margin(book), call, feed_as_of=None, feed_cursor="c2")
        calls.append(call)
        for scenario, taken, payload in (
            (SnapshotScenario.TRIGGER, call.triggered_at, dict(trigger, account_id=account)),
            (SnapshotScenario.END, ended_at, dict(end, account_id=account)),
        ):
            records.append(
                SnapshotRecord(call.call_id, account, scenario, taken, taken, "c", payload)
            )
    return calls, records


@pytest.fixture
def history_app(fixed_app: Callable[..., RiskApp], tmp_path: Path) -> Callable[[], RiskApp]:
    calls, records = seed_history()

    def build() -> RiskApp:
        async def fill() -> None:
            url = f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}"
            await upgrade(url)
            engine = await create_engine(url)
            try:
                await Store(engine).calls.commit(LifecycleBatch(calls=calls, snapshots=records))
            finally:
                await engine.dispose()

        asyncio.run(fill())  # before the app starts: no event loop runs yet
        return fixed_app()

    return build


async def _history_shown(pilot: Any) -> None:
    app = pilot.app
    table = app.query_one("#warnings-pane-table", LiveTable)
    await until(lambda: table.row_count >= 4, what="the seed desk")
    await pilot.press("4")
    history = app.query_one("#history-pane-table", LiveTable)
    await until(lambda: history.row_count >= 3, what="the history")
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
def test_snapshot_history_tab(
    snap_compare: Any, history_app: Callable[[], RiskApp], size: tuple[int, int]
) -> None:
    assert snap_compare(history_app(), terminal_size=size, run_before=_history_shown)


def details_screen() -> HistoryDetailsScreen:
    calls, records = seed_history()
    call = calls[1]  # liquidated: positions and cash moved
    snapshots = [
        StoredSnapshot(n, r.call_id, r.account_id, r.scenario, r.taken_at, r.feed_as_of,
                       r.feed_cursor, r.payload, f"h{n}")
        for n, r in enumerate((rec for rec in records if rec.call_id == call.call_id), start=1)
    ]  # fmt: skip
    notice = dict(snapshots[0].payload, call_amount="990.50")
    snapshots.insert(
        1,
        replace(snapshots[0], seq=9, scenario=SnapshotScenario.NOTIFICATION, payload=notice,
                taken_at=call.triggered_at + timedelta(minutes=20)),
    )  # fmt: skip
    snapshots[2] = replace(snapshots[2], seq=10)
    orders = [replace(working_order("B.SG", "200", filled="200"), status="filled")]
    return HistoryDetailsScreen(
        replace(call, notified_call_amount=D("990.50")),
        snapshots,
        [remark(1, "client unreachable")],
        orders,
    )


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
def test_snapshot_history_details(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(Host(details_screen()), terminal_size=size)


def test_snapshot_export_dialog(snap_compare: Any) -> None:
    dialog = ExportDialog(date(2026, 11, 23), Path("/desk/exports"))
    assert snap_compare(Host(dialog), terminal_size=(80, 24))


async def test_details_compare_the_trigger_with_any_snapshot_on_the_timeline() -> None:
    host = Host(details_screen())
    async with host.run_test(size=(160, 60)) as pilot:
        await pilot.pause()
        text = screen_text(host)
        assert (
            "Account figures in SGD: trigger 2026-11-20 10:05 SG vs end 2026-11-21 10:30 SG"
            in text
        )
        assert has_row(text, "Cash SGD", "-15,000.00", "-11,100.00", "+3,900.00")
        assert has_row(text, "B.SG", "1,000", "800", "-200", "-3,900.00", "19.50", "19.50")
        assert has_row(text, "How it was met", "liquidation")
        assert has_row(text, "at notice", "SGD 990.50")
        timeline = host.screen.query_one("#timeline", DataTable)
        timeline.focus()
        await pilot.press("down", "enter")  # the notification snapshot
        await pilot.pause()
        text = screen_text(host)
        assert "trigger 2026-11-20 10:05 SG vs notice 2026-11-20 10:25 SG" in text
        assert has_row(text, "Call amount", "1,015.00", "990.50", "-24.50")
        await pilot.press("e")
        await pilot.pause()
        assert "trigger 2026-11-20 10:05 SG vs end 2026-11-21 10:30 SG" in screen_text(host)
        await pilot.press("escape")
        await pilot.pause()
    assert host.results == [None]


async def test_outside_text_in_history_is_inert(
    fixed_app: Callable[..., RiskApp], tmp_path: Path
) -> None:
    calls, records = seed_history()
    hostile = replace(calls[2], client_name=HOSTILE, end_note=HOSTILE, account_id="H\x1b[2J3")
    url = f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}"
    await upgrade(url)
    engine = await create_engine(url)
    try:
        await Store(engine).calls.commit(LifecycleBatch(calls=[hostile], snapshots=records[4:]))
    finally:
        await engine.dispose()
    app = fixed_app()
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.press("4")
        _, table = history_of(app)
        await until(lambda: table.row_count == 1)
        await pilot.pause()
        for seg in segments(app):
            assert not any(raw in seg.text for raw in RAW_CONTROLS)
        assert "[b]bold[/b]" in cells_text(table, hostile.call_id)
        await pilot.press("enter")
        await until(lambda: isinstance(app.screen, HistoryDetailsScreen))
        await pilot.pause()
        for seg in segments(app):
            assert not any(raw in seg.text for raw in RAW_CONTROLS)
        assert "[b]bold[/b]" in screen_text(app)


async def test_the_export_key_has_an_id_shows_in_help_and_clashes_with_nothing(
    fixed_app: Callable[..., RiskApp],
) -> None:
    (export,) = HistoryPane.BINDINGS
    assert isinstance(export, Binding)
    assert export.id == "history.export"
    app_keys = {b.key for b in RiskApp.BINDINGS if isinstance(b, Binding)}
    assert export.key not in app_keys
    app = fixed_app()
    async with app.run_test(size=(160, 120)) as pilot:  # tall: every key on one screen
        await pilot.press("4")
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        assert "history.export" in screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("l", "m", "r", "e")  # call actions: not offered on History
        await pilot.pause()
        assert app.screen is app.screen_stack[0]
