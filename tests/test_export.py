"""`risk-tui export`: a period's slice of the chains, written as jsonl or csv, verifiable
offline; tampering is named; the period selects the right records; the CLI end to end."""

from __future__ import annotations

import csv
import getpass
import hashlib
import io
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from risk_tui.core.export import Period
from risk_tui.core.lifecycle import (
    AuditEntry,
    CallState,
    EndReason,
    LifecycleBatch,
    SnapshotScenario,
)
from risk_tui.desk.export import CSV_FIELDS, read_export, verify_export, write_export
from risk_tui.storage.chain import CHAIN_AUDIT, export_records, heads
from risk_tui.storage.db import create_engine, upgrade
from risk_tui.storage.store import Store
from tests.factories import T0, audit_of, make_call, snapshot_of

RISK_TUI = [sys.executable, "-m", "risk_tui"]
DAY0 = T0.date()  # 2026-03-02
DAY1 = DAY0 + timedelta(days=1)
DAY2 = DAY0 + timedelta(days=2)
NOW = datetime(2026, 3, 5, 9, 0, tzinfo=UTC)
NASTY = "陳\x1b]0;pwned\x07\u202eevil"  # escapes and a bidi override, stored as data


@dataclass(frozen=True)
class Desk:
    """What `filled` wrote: a call per situation, by the day it touches."""

    open_day0: str  # triggered day 0, still open, a daily snapshot on day 1
    ended_day1: str  # triggered day 0, ended day 1
    open_day2: str  # triggered day 2


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    await upgrade(db_url)
    engine = await create_engine(db_url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def fill(store: Store) -> Desk:
    """Three days of calls, snapshots and audit entries, committed in several batches."""
    day1 = T0 + timedelta(days=1)
    day2 = T0 + timedelta(days=2)
    a = make_call("A1", client_name=NASTY)
    b = make_call("A2")
    await store.calls.commit(
        LifecycleBatch(
            calls=[a, b],
            snapshots=[snapshot_of(a), snapshot_of(b)],
            audit=[audit_of(a), audit_of(b)],
        )
    )
    await store.audit.append_audit([AuditEntry(day1, "alice", "login", details={"host": NASTY})])
    ended = replace(
        b,
        state=CallState.ENDED,
        ended_at=day1,
        end_reason=EndReason.MET,
        call_amount=b.call_amount,
        version=b.version + 1,
    )
    await store.calls.commit(
        LifecycleBatch(
            calls=[ended],
            snapshots=[
                snapshot_of(a, SnapshotScenario.DAILY, day1),
                snapshot_of(b, SnapshotScenario.END, day1),
            ],
            audit=[audit_of(b, "call_ended", day1)],
        )
    )
    c = make_call("A3", triggered_at=day2)
    await store.calls.commit(
        LifecycleBatch(
            calls=[c],
            snapshots=[snapshot_of(c, taken_at=day2)],
            audit=[audit_of(c, at=day2), AuditEntry(day2, "bob", "login")],
        )
    )
    return Desk(a.call_id, b.call_id, c.call_id)


async def export_text(engine: AsyncEngine, first: date, last: date, fmt: str) -> str:
    out = io.StringIO(newline="")
    await write_export(engine, Period(first, last), fmt, out, now=NOW)
    return out.getvalue()


def jsonl_records(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


async def test_period_selects_calls_their_snapshots_and_the_days_audit(
    engine: AsyncEngine,
) -> None:
    desk = await fill(Store(engine))
    records = jsonl_records(await export_text(engine, DAY1, DAY1, "jsonl"))
    header, *rest = records
    by_type: dict[str, list[dict[str, Any]]] = {}
    for record in rest:
        by_type.setdefault(record["record"], []).append(record)
    # Day 1: only the call that ended that day (the others were triggered on days 0, 2).
    assert [c["call_id"] for c in by_type["call"]] == [desk.ended_day1]
    assert by_type["call"][0]["state"] == "ended"
    assert by_type["call"][0]["call_amount"] == "1015.00"  # decimals as exact strings
    # Its snapshots, whenever taken: the trigger on day 0 and the end on day 1.
    snaps = by_type["snapshot"]
    assert [(s["call_id"], s["scenario"]) for s in snaps] == [
        (desk.ended_day1, "trigger"),
        (desk.ended_day1, "end"),
    ]
    assert [s["seq"] for s in snaps] == [2, 4]  # a slice: gaps where other calls' are
    # Audit: exactly the records whose `at` is on day 1.
    assert [(a["seq"], a["action"]) for a in by_type["audit"]] == [
        (3, "login"),
        (4, "call_ended"),
    ]
    assert all(a["at"].startswith("2026-03-03T") for a in by_type["audit"])
    assert header["period"] == {"from": "2026-03-03", "to": "2026-03-03"}
    assert header["counts"] == {"call": 1, "snapshot": 2, "audit": 2}
    assert header["generated_at"] == "2026-03-05T09:00:00.000000Z"
    assert {chain: (h["seq"], h["hash"]) for chain, h in header["heads"].items()} == (
        await heads(engine)
    )
    # Days 0..1: the two calls triggered on day 0; day 2 alone: the third.
    two_days = jsonl_records(await export_text(engine, DAY0, DAY1, "jsonl"))
    assert {r["call_id"] for r in two_days if r["record"] == "call"} == {
        desk.open_day0,
        desk.ended_day1,
    }
    assert [r["seq"] for r in two_days if r["record"] == "audit"] == [1, 2, 3, 4]
    day2 = jsonl_records(await export_text(engine, DAY2, DAY2, "jsonl"))
    assert [r["call_id"] for r in day2 if r["record"] == "call"] == [desk.open_day2]
    assert [r["seq"] for r in day2 if r["record"] == "snapshot"] == [5]


async def test_exported_chain_records_are_the_stored_ones_exactly(engine: AsyncEngine) -> None:
    await fill(Store(engine))
    records = jsonl_records(await export_text(engine, DAY0, DAY2, "jsonl"))
    for chain, kind in (("snapshots", "snapshot"), ("audit", "audit")):
        stored = [r async for r in export_records(engine, chain)]
        exported = [
            {k: v for k, v in r.items() if k != "record"} for r in records if r["record"] == kind
        ]
        assert exported == stored


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
async def test_export_round_trip_verifies(engine: AsyncEngine, fmt: str) -> None:
    await fill(Store(engine))
    text = await export_text(engine, DAY1, DAY1, fmt)
    result = verify_export(read_export(text))
    assert result.ok, result.message
    assert result.counts == {"call": 1, "snapshot": 2, "audit": 2}
    assert result.message.startswith("ok: export of 2026-03-03..2026-03-03: 1 calls, 2 snapshots")
    whole = verify_export(read_export(await export_text(engine, DAY0, DAY2, fmt)))
    assert whole.ok, whole.message
    empty = verify_export(
        read_export(await export_text(engine, date(2020, 1, 1), date(2020, 1, 1), fmt))
    )
    assert empty.ok
    assert empty.counts == {"call": 0, "snapshot": 0, "audit": 0}


async def test_jsonl_is_ascii_and_csv_sanitizes_only_the_human_columns(
    engine: AsyncEngine,
) -> None:
    await fill(Store(engine))
    jsonl = await export_text(engine, DAY0, DAY2, "jsonl")
    assert jsonl.isascii()
    assert "\x1b" not in jsonl
    assert any(r.get("client_name") == NASTY for r in jsonl_records(jsonl))  # data intact
    text = await export_text(engine, DAY0, DAY2, "csv")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert tuple(rows[0]) == CSV_FIELDS
    assert "\x1b" not in text
    assert "\u202e" not in text
    login = next(r for r in rows if r["what"] == "login" and r["operator"] == "alice")
    assert json.loads(login["data"])["details"] == {"host": NASTY}  # exact, as hashed


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
async def test_tampered_snapshot_fails_naming_it(engine: AsyncEngine, fmt: str) -> None:
    await fill(Store(engine))
    text = await export_text(engine, DAY1, DAY1, fmt)
    lines = text.splitlines(keepends=True)
    # The end snapshot (seq 4): its equity in the payload, one character changed.
    index = next(i for i, line in enumerate(lines) if '"scenario":"end"' in line.replace('""', '"'))
    assert "9500.00" in lines[index]
    lines[index] = lines[index].replace("9500.00", "9900.00", 1)
    result = verify_export(read_export("".join(lines)))
    assert not result.ok
    assert result.line == index + 1
    assert f"line {index + 1}: snapshot snapshots seq 4: hash mismatch" in result.message


async def test_rehashed_tampering_and_removed_records_fail(engine: AsyncEngine) -> None:
    from risk_tui.storage.chain import chain_hash

    await fill(Store(engine))
    records = jsonl_records(await export_text(engine, DAY0, DAY2, "jsonl"))

    def verify(edited: list[dict[str, Any]]) -> str:
        text = "".join(json.dumps(r) + "\n" for r in edited)
        result = verify_export(read_export(text))
        assert not result.ok
        return result.message

    # Edit audit seq 2 and recompute its hash: seq 3's prev_hash no longer links.
    edited = [dict(r) for r in records]
    target = next(r for r in edited if r["record"] == "audit" and r["seq"] == 2)
    target["operator"] = "mallory"
    fields = {k: v for k, v in target.items() if k not in ("record", "prev_hash", "hash")}
    target["hash"] = chain_hash(target["prev_hash"], fields)
    assert "audit audit seq 3: prev_hash does not match the hash of seq 2" in verify(edited)
    # The last record rehashed: it no longer matches the chain head in the header.
    edited = [dict(r) for r in records]
    last = edited[-1]
    last["operator"] = "mallory"
    fields = {k: v for k, v in last.items() if k not in ("record", "prev_hash", "hash")}
    last["hash"] = chain_hash(last["prev_hash"], fields)
    assert "does not match the chain head at export time" in verify(edited)
    # A record cut out of the middle leaves a gap the slice allows, but not the count.
    without = [r for r in records if not (r["record"] == "snapshot" and r["seq"] == 3)]
    assert "the header counts 5 snapshot records, the file holds 4" in verify(without)
    # Two records swapped.
    swapped = list(records)
    i = next(i for i, r in enumerate(swapped) if r["record"] == "audit")
    swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
    assert "out of order after seq 2" in verify(swapped)
    # Not an export at all.
    assert "not a risk-tui export header" in verify(records[1:])


# --- the command line, as a subprocess -------------------------------------------------------


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISK_TUI_")}
    return subprocess.run(
        [*RISK_TUI, *args], capture_output=True, text=True, timeout=120, env=env, cwd=cwd
    )


async def test_cli_export_and_verify_end_to_end(
    engine: AsyncEngine, db_url: str, tmp_path: Path
) -> None:
    desk = await fill(Store(engine))
    cli_round_trip(db_url, tmp_path, desk)


def cli_round_trip(db_url: str, tmp_path: Path, desk: Desk) -> None:
    period = ["--from", "2026-03-03", "--to", "2026-03-03"]
    out = tmp_path / "day.jsonl"
    exported = run(
        "export", *period, "--format", "jsonl", "--output", str(out), "--db", db_url, cwd=tmp_path
    )
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout == ""
    assert not list(tmp_path.glob(".*.partial"))
    assert desk.ended_day1 in out.read_text(encoding="utf-8")
    verified = run("audit", "verify", "--export", str(out), cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("ok: export of 2026-03-03..2026-03-03: 1 calls, 2 snapshots")

    # csv to stdout, then verified from a file
    as_csv = run("export", *period, "--format", "csv", "--db", db_url, cwd=tmp_path)
    assert as_csv.returncode == 0, as_csv.stderr
    assert as_csv.stdout.startswith(",".join(CSV_FIELDS))
    (tmp_path / "day.csv").write_text(as_csv.stdout, encoding="utf-8", newline="")
    assert (
        run("audit", "verify", "--export", str(tmp_path / "day.csv"), cwd=tmp_path).returncode == 0
    )

    # tampered: exit 1, one line naming the record
    out.write_text(
        out.read_text(encoding="utf-8").replace("9500.00", "9400.00", 1), encoding="utf-8"
    )
    tampered = run("audit", "verify", "--export", str(out), cwd=tmp_path)
    assert tampered.returncode == 1
    assert tampered.stdout.count("\n") == 1
    assert "snapshot snapshots seq 2: hash mismatch" in tampered.stdout


def run_bytes(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """`run`, with stdout as bytes: exactly what went out (csv's CR LF and all)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISK_TUI_")}
    return subprocess.run(
        [*RISK_TUI, *args], capture_output=True, timeout=120, env=env, cwd=cwd, check=False
    )


async def export_audits(engine: AsyncEngine) -> list[dict[str, Any]]:
    return [r async for r in export_records(engine, CHAIN_AUDIT) if r["action"] == "export"]


async def test_cli_export_is_audited_with_who_period_where_and_sha256(
    engine: AsyncEngine, db_url: str, tmp_path: Path
) -> None:
    await fill(Store(engine))
    period = ["--from", "2026-03-03", "--to", "2026-03-04"]
    (tmp_path / "out").mkdir()
    exported = run("export", *period, "--output", "out/days.jsonl", "--db", db_url, cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    to_stdout = run_bytes("export", *period, "--format", "csv", "--db", db_url, cwd=tmp_path)
    assert to_stdout.returncode == 0, to_stdout.stderr

    # The person logged in: the database login on PostgreSQL, the OS login on SQLite.
    login = make_url(db_url).username if db_url.startswith("postgresql") else getpass.getuser()
    written = (tmp_path / "out" / "days.jsonl").read_bytes()
    audits = await export_audits(engine)
    assert [(a["operator"], a["details"]["destination"]) for a in audits] == [
        (login, str(tmp_path / "out" / "days.jsonl")),  # absolute, wherever it was run
        (login, "stdout"),
    ]
    first, second = (a["details"] for a in audits)
    assert first["sha256"] == hashlib.sha256(written).hexdigest()
    assert first["bytes"] == len(written)
    assert second["sha256"] == hashlib.sha256(to_stdout.stdout).hexdigest()
    assert second["bytes"] == len(to_stdout.stdout)
    for details, fmt in ((first, "jsonl"), (second, "csv")):
        assert details["period"] == {"from": "2026-03-03", "to": "2026-03-04"}
        assert details["format"] == fmt
        assert details["source"] == "cli"
        assert details["counts"] == {"call": 2, "snapshot": 3, "audit": 4}

    # in the audit chain: `audit verify` covers it, and the next export of the day shows it
    verified = run("audit", "verify", "--db", db_url, cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    today = audits[0]["at"][:10]
    again = run("export", "--from", today, "--to", today, "--db", db_url, cwd=tmp_path)
    actions = [r.get("action") for r in jsonl_records(again.stdout) if r["record"] == "audit"]
    assert actions[:2] == ["export", "export"]


def test_cli_usage_and_database_errors(tmp_path: Path) -> None:
    missing_db = f"sqlite+aiosqlite:///{tmp_path / 'nowhere.db'}"
    backwards = run(
        "export", "--from", "2026-03-03", "--to", "2026-03-02", "--db", missing_db, cwd=tmp_path
    )
    assert backwards.returncode == 2
    assert backwards.stderr == "risk-tui: export: --to 2026-03-02 is before --from 2026-03-03\n"
    bad_date = run("export", "--from", "03/03/2026", "--to", "2026-03-03", cwd=tmp_path)
    assert bad_date.returncode == 2
    assert "not a date YYYY-MM-DD" in bad_date.stderr
    no_db = run(
        "export", "--from", "2026-03-03", "--to", "2026-03-03", "--db", missing_db, cwd=tmp_path
    )
    assert no_db.returncode == 4
    assert no_db.stderr.count("\n") == 1
    assert "no risk-tui desk at" in no_db.stderr
    assert not (tmp_path / "nowhere.db").exists()  # an export creates no database
    unreadable = run("audit", "verify", "--export", str(tmp_path / "none.jsonl"), cwd=tmp_path)
    assert unreadable.returncode == 2
    assert unreadable.stderr.startswith("risk-tui: cannot read export")
    (tmp_path / "junk.jsonl").write_text("{not json\n", encoding="utf-8")
    junk = run("audit", "verify", "--export", str(tmp_path / "junk.jsonl"), cwd=tmp_path)
    assert junk.returncode == 1
    assert "line 1: not JSON" in junk.stdout
