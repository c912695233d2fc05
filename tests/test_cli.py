"""The command line as a script or the desk's checks use it: real processes, real HTTP."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from risk_tui.sim.app import SimState
from tests.threaded_sim import serve_in_thread

RISK_TUI = [sys.executable, "-m", "risk_tui"]


@pytest.fixture(scope="module")
def feed_url() -> Iterator[str]:
    """The simulator on an ephemeral loopback port, in a thread of its own."""
    yield from serve_in_thread(SimState())


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RISK_TUI_")}
    clean.update(env or {})
    return subprocess.run(
        [*RISK_TUI, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean,
        cwd=Path(__file__).parent,
    )


def test_report_json_matches_spec_to_the_cent(feed_url: str, tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}"
    result = run("report", "--format", "json", "--feed-url", feed_url, "--db", db)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    seed = next(w for w in report["warnings"] if w["account_id"] == "A1001")
    assert seed["call_amount"] == "1015.00"
    assert (seed["equity"], seed["im"], seed["mm"]) == ("9500.00", "11250.00", "10025.00")
    assert report["stale"] is False
    assert report["totals"]["count"] == 4
    # The calls and their trigger snapshots are in the database, and the chains verify.
    with sqlite3.connect(tmp_path / "desk.db") as conn:
        assert conn.execute("select count(*) from calls").fetchone()[0] == 4
        assert conn.execute("select count(*) from snapshots").fetchone()[0] == 5
    verify = run("audit", "verify", "--db", db)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    # A second report finds the same calls open: no duplicate call, no new trigger snapshot,
    # and the same deadline, written the same way, after the round trip through storage.
    again = run("report", "--format", "json", "--feed-url", feed_url, "--db", db)
    assert again.returncode == 0, again.stderr
    reloaded = next(w for w in json.loads(again.stdout)["warnings"] if w["account_id"] == "A1001")
    assert reloaded["deadline"] == seed["deadline"]
    assert seed["deadline"].endswith("+08:00")
    assert reloaded["call_id"] == seed["call_id"]
    with sqlite3.connect(tmp_path / "desk.db") as conn:
        assert conn.execute("select count(*) from calls").fetchone()[0] == 4
        assert conn.execute("select count(*) from snapshots").fetchone()[0] == 5


def test_report_with_im_formula_everywhere(feed_url: str, tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}"
    result = run(
        "report",
        "--format",
        "json",
        "--feed-url",
        feed_url,
        "--db",
        db,
        env={"RISK_TUI_MARGIN_CALL__FORMULA": "im"},
    )
    assert result.returncode == 0, result.stderr
    seed = next(w for w in json.loads(result.stdout)["warnings"] if w["account_id"] == "A1001")
    assert seed["call_amount"] == "1750.00"


def test_unreachable_feed_gives_up_after_stale_after_with_one_line(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run(
        "report",
        "--feed-url",
        "http://127.0.0.1:9",
        "--db",
        f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
        env={"RISK_TUI_FEED__STALE_AFTER": "2"},
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert "no successful feed poll within 2s" in result.stderr
    assert "cannot connect" in result.stderr
    # It retried (about stale_after) and then gave up: the upper bound only says it does
    # not hang — a tight one failed at 8 s on a loaded machine (interpreter start-up).
    assert 1 <= elapsed < 60


def test_broken_config_is_one_line_and_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "risk-tui.toml"
    config.write_text('[margin_call]\nformula = "median"\n')
    result = run("report", "--config", str(config))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert str(config) in result.stderr
    assert "margin_call.formula" in result.stderr
    assert "Traceback" not in result.stderr


def test_unusable_database_is_one_line_and_exit_4(feed_url: str, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run(
        "report", "--feed-url", feed_url, "--db", f"sqlite+aiosqlite:///{blocker}/sub/desk.db"
    )
    assert result.returncode == 4, result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("risk-tui: database")


def test_tampered_snapshot_fails_verify_naming_the_record(feed_url: str, tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}"
    assert run("report", "--feed-url", feed_url, "--db", db).returncode == 0
    with sqlite3.connect(tmp_path / "desk.db") as conn:
        conn.execute(
            "update snapshots set payload = replace(payload, '1015', '1016') where seq = 1"
        )
    verify = run("audit", "verify", "--db", db)
    assert verify.returncode == 1
    assert "seq 1" in verify.stdout + verify.stderr


def test_db_upgrade_reports_revision(tmp_path: Path) -> None:
    result = run("db", "upgrade", "--db", f"sqlite+aiosqlite:///{tmp_path / 'u.db'}")
    assert result.returncode == 0, result.stderr
    assert "is at revision" in result.stdout
