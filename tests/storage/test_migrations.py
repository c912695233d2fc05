"""Migrations: shipped in the package, runnable from anywhere, and identical to tables.py."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, select, text

from risk_tui.storage import run_upgrade
from risk_tui.storage.chain import GENESIS_HASH
from risk_tui.storage.db import (
    DatabaseUnusable,
    alembic_config,
    create_engine,
    current_revision,
    upgrade,
)
from risk_tui.storage.tables import chain_heads, metadata


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


def _schema_facts(connection: Connection) -> dict[str, Any]:
    inspector = inspect(connection)
    facts: dict[str, Any] = {}
    for table in inspector.get_table_names():
        if table == "alembic_version":
            continue
        facts[table] = {
            "checks": sorted(c["name"] for c in inspector.get_check_constraints(table)),
            "fks": sorted(fk["name"] or "" for fk in inspector.get_foreign_keys(table)),
            "indexes": sorted(
                (ix["name"], tuple(ix["column_names"]), bool(ix["unique"]))
                for ix in inspector.get_indexes(table)
            ),
        }
    return facts


async def test_migration_matches_tables(db_url: str, tmp_path: Path) -> None:
    await upgrade(db_url)
    engine = await create_engine(db_url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_differences) == []
            migrated = await conn.run_sync(_schema_facts)
    finally:
        await engine.dispose()

    # Constraint and index names too (not part of compare_metadata): create_all from
    # tables.py into a second database and compare.
    if db_url.startswith("sqlite"):
        other_url = f"sqlite+aiosqlite:///{tmp_path / 'create_all.db'}"
        other = await create_engine(other_url)
        try:
            async with other.begin() as conn:
                await conn.run_sync(metadata.create_all)
            async with other.connect() as conn:
                created = await conn.run_sync(_schema_facts)
        finally:
            await other.dispose()
        assert migrated == created
    assert migrated["calls"]["checks"] == ["ck_calls_state"]
    assert ("uq_calls_open_account", ("account_id",), True) in migrated["calls"]["indexes"]


async def test_upgrade_is_idempotent_and_seeds_the_chain_heads(db_url: str) -> None:
    assert await current_revision(db_url) is None
    await run_upgrade(db_url)
    await run_upgrade(db_url)
    head = ScriptDirectory.from_config(alembic_config(db_url)).get_current_head()
    assert head is not None
    assert await current_revision(db_url) == head
    engine = await create_engine(db_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(chain_heads).order_by(chain_heads.c.name))).all()
    finally:
        await engine.dispose()
    assert [tuple(row) for row in rows] == [
        ("audit", 0, GENESIS_HASH),
        ("snapshots", 0, GENESIS_HASH),
    ]


async def test_upgrade_needs_no_alembic_ini(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert not (elsewhere / "alembic.ini").exists()
    url = f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}"
    await run_upgrade(url)
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert await current_revision(url) == head
    assert os.listdir(elsewhere) == []


async def test_a_missing_directory_is_an_error_and_none_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13 point 5: `sqlite+aiosqlite:///nonexistent/dir/x.db` created the folders."""
    monkeypatch.chdir(tmp_path)
    relative = "sqlite+aiosqlite:///nonexistent/dir/x.db"  # three slashes: relative
    with pytest.raises(DatabaseUnusable, match=r"directory nonexistent/dir does not exist") as e:
        await run_upgrade(relative)
    assert "an absolute path takes four slashes: sqlite+aiosqlite:////nonexistent/dir/x.db" in (
        str(e.value)
    )
    absolute = f"sqlite+aiosqlite:///{tmp_path / 'deep' / 'dir' / 'desk.db'}"
    with pytest.raises(DatabaseUnusable, match="does not exist"):
        await run_upgrade(absolute)
    with pytest.raises(DatabaseUnusable, match="does not exist"):
        await create_engine(absolute)
    assert os.listdir(tmp_path) == []


async def test_reading_the_revision_creates_and_changes_nothing(tmp_path: Path) -> None:
    """A missing file is no desk (not created); a file that is not a desk stays as it was."""
    missing = tmp_path / "missing.db"
    assert await current_revision(f"sqlite+aiosqlite:///{missing}") is None
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    assert await current_revision(f"sqlite+aiosqlite:///{empty}") is None
    assert sorted(os.listdir(tmp_path)) == ["empty.db"]
    assert empty.read_bytes() == b""


async def test_sqlite_engine_settings(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'pragmas.db'}"
    await upgrade(url)
    engine = await create_engine(url)
    try:
        async with engine.connect() as conn:
            pragmas = {
                name: (await conn.execute(text(f"PRAGMA {name}"))).scalar_one()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
    finally:
        await engine.dispose()
    assert pragmas == {
        "journal_mode": "wal",
        "synchronous": 2,
        "foreign_keys": 1,
        "busy_timeout": 10_000,
    }


@pytest.mark.parametrize("reading", [True, False])
async def test_a_file_that_is_no_database_is_refused_before_any_driver_thread_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reading: bool
) -> None:
    """After a failed connect, aiosqlite's worker thread could outlive the event loop and
    print a traceback under `run`'s one-line error: the file is probed first, without it."""
    import aiosqlite

    def no_driver(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the driver was asked to open an unusable file")

    monkeypatch.setattr(aiosqlite, "connect", no_driver)
    hello = tmp_path / "hello.db"
    hello.write_text("hello")
    urls = [f"sqlite+aiosqlite:///{hello}"]
    if not reading:  # reading a missing file finds no desk, and opens nothing
        urls.append("sqlite+aiosqlite:////proc/x.db")
    for url in urls:
        check = current_revision(url) if reading else upgrade(url)
        with pytest.raises(DatabaseUnusable, match=r"not a database|unable to open"):
            await check
    assert hello.read_text() == "hello"
