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


# --- issue 13 point 5: a bad database is one line and exit 4, and creates nothing ----------


@pytest.mark.parametrize("command", ["run", "report", "demo"])
def test_a_database_that_cannot_be_opened_is_refused_before_the_screen(
    feed_url: str, tmp_path: Path, command: str
) -> None:
    """`run` stayed on "CONNECTING" for ever on /proc/x.db or a file holding "hello"."""
    hello = tmp_path / "hello.db"
    hello.write_text("hello")
    for url in ("sqlite+aiosqlite:////proc/x.db", f"sqlite+aiosqlite:///{hello}"):
        result = run(command, "--feed-url", feed_url, "--db", url, timeout=30)
        assert result.returncode == 4, (url, result.stdout, result.stderr)
        assert result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith(f"risk-tui: database {url}: "), result.stderr
    assert hello.read_text() == "hello"


def test_the_engine_refuses_an_unusable_database_in_one_line_without_its_password() -> None:
    url = "postgresql+asyncpg://risk:s3cret@127.0.0.1:9/desk"  # nothing listens on port 9
    result = run("engine", "--feed-url", "http://127.0.0.1:9", "--db", url, timeout=30)
    assert result.returncode == 4, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("risk-tui: database postgresql+asyncpg://risk:***@127.0.0.1")
    assert "s3cret" not in result.stderr + result.stdout


def test_a_missing_directory_is_an_error_and_none_is_created(feed_url: str, tmp_path: Path) -> None:
    """`--db sqlite+aiosqlite:///nonexistent/dir/x.db` created ./nonexistent/dir/x.db."""
    work = tmp_path / "work"
    work.mkdir()
    for command in ("report", "run", "audit", "db"):
        args = {"audit": ["audit", "verify"], "db": ["db", "upgrade"]}.get(command, [command])
        result = subprocess.run(
            [*RISK_TUI, *args, "--feed-url", feed_url, "--db",
             "sqlite+aiosqlite:///nonexistent/dir/x.db"],
            capture_output=True, text=True, timeout=30, cwd=work,
            env={k: v for k, v in os.environ.items() if not k.startswith("RISK_TUI_")},
        )  # fmt: skip
        assert result.returncode == 4, (command, result.stderr)
        assert result.stderr.count("\n") == 1, result.stderr
        assert "directory nonexistent/dir does not exist" in result.stderr
        assert "sqlite+aiosqlite:////nonexistent/dir/x.db" in result.stderr  # the hint
    assert os.listdir(work) == []


@pytest.mark.parametrize(
    "args",
    [
        ["audit", "verify"],
        ["export", "--from", "2026-03-03", "--to", "2026-03-03"],
    ],
)
def test_reading_commands_refuse_a_database_without_a_desk_and_create_nothing(
    tmp_path: Path, args: list[str]
) -> None:
    """`audit verify` in an empty folder said "no such table: snapshots" and left an empty
    ./risk-tui.db behind."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISK_TUI_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "no-config")  # no user config is found
    result = subprocess.run(
        [*RISK_TUI, *args], capture_output=True, text=True, timeout=30, cwd=tmp_path, env=env
    )
    assert result.returncode == 4, result.stderr
    assert result.stderr == (
        "risk-tui: no risk-tui desk at sqlite+aiosqlite:///risk-tui.db (create it with "
        "`risk-tui db upgrade`, or pass --db)\n"
    )
    assert os.listdir(tmp_path) == []
    # An existing SQLite file that holds no desk: the same, and the file is left as it was.
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("create table notes (text)")
    before = other.read_bytes()
    result = run(*args, "--db", f"sqlite+aiosqlite:///{other}")
    assert result.returncode == 4, result.stderr
    assert "no risk-tui desk at" in result.stderr
    assert other.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["other.db"]


def test_an_unknown_key_binding_id_stops_the_terminal_before_it_draws(tmp_path: Path) -> None:
    """Issue 13 point 8: `[keys]` with an unknown binding id was accepted silently."""
    config = tmp_path / "risk-tui.toml"
    config.write_text('[keys]\n"call.liquidat" = "x"\n"details.liquidate" = "x"\n')
    db = f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}"
    for command in ("run", "demo"):
        result = run(command, "--config", str(config), "--db", db, timeout=30)
        assert result.returncode == 2, result.stderr
        assert result.stderr == (
            f"risk-tui: config: {config}: keys.call.liquidat: unknown binding id "
            "'call.liquidat' (did you mean 'call.liquidate'? `?` in the terminal lists every "
            "id)\n"
        )
    assert not (tmp_path / "desk.db").exists()


# --- issue 13 point 9: a demo restart ends no call on a market that was reset -------------


def demo_calls(data_home: Path) -> list[tuple[str, str | None]]:
    with sqlite3.connect(data_home / "risk-tui" / "demo.db") as conn:
        return conn.execute("select call_id, end_reason from calls").fetchall()


def test_restarting_the_demo_starts_a_fresh_database_and_ends_no_call(tmp_path: Path) -> None:
    """Restarting the demo reset its simulated market and ended 166 crash-day calls as
    "met / prices up": every run starts on a fresh database instead (and says so)."""
    env = {"XDG_DATA_HOME": str(tmp_path)}  # the demo's own data directory, under tmp_path
    first = run("demo", "--format", "json", env=env)
    assert first.returncode == 0, first.stderr
    opened = demo_calls(tmp_path)
    assert opened
    assert all(reason is None for _, reason in opened)
    second = run("demo", "--format", "json", env=env)
    assert second.returncode == 0, second.stderr
    again = demo_calls(tmp_path)
    assert again
    assert all(reason is None for _, reason in again)  # nothing ended on the reset market
    assert not {call_id for call_id, _ in opened} & {call_id for call_id, _ in again}


def test_the_demo_refuses_a_given_database_that_already_holds_a_desk(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}"
    assert run("db", "upgrade", "--db", db).returncode == 0
    result = run("demo", "--format", "json", "--db", db, timeout=30)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1
    assert "already holds a desk" in result.stderr


def test_a_bad_option_is_named_as_typed_and_an_unknown_key_gets_a_suggestion() -> None:
    """Issue 14 point 8: `--db mysql://x/y` was reported as "--db-url"; an unknown key in
    the environment got no "did you mean"."""
    result = run("report", "--db", "mysql://x/y")
    assert result.returncode == 2
    assert result.stderr.startswith("risk-tui: config: --db: db.url: unsupported database URL")
    result = run("report", env={"RISK_TUI_FEED__POL_INTERVAL": "3"})
    assert result.returncode == 2
    assert "RISK_TUI_FEED__POL_INTERVAL: feed.pol_interval: unknown key" in result.stderr
    assert "did you mean 'poll_interval'?" in result.stderr
