"""Crash safety: a writer killed with SIGKILL at random never loses what it reported committed.

SQLite in WAL mode with synchronous=FULL: after every kill, each call_id the writer
printed (after its commit returned) is there with its snapshot, the file passes
`PRAGMA integrity_check`, and both hash chains verify, the next writer having
carried on from where the killed one stopped.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select, text

from risk_tui.storage.chain import verify
from risk_tui.storage.db import create_engine, upgrade
from risk_tui.storage.tables import calls, snapshots

ROOT = Path(__file__).resolve().parents[2]
RUNS = 20


async def _run_and_kill(url: str, prefix: str, delay: float) -> list[str]:
    writer = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.storage.crash_writer",
        url,
        prefix,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    assert writer.stdout is not None
    try:
        ready = await asyncio.wait_for(writer.stdout.readline(), timeout=30)
        assert ready == b"ready\n", ready
        await asyncio.sleep(delay)
    finally:
        if writer.returncode is None:
            writer.kill()  # SIGKILL: no cleanup, no atexit, mid-transaction if it so happens
    output = await writer.stdout.read()
    await writer.wait()
    assert writer.returncode == -9, f"writer ended on its own ({writer.returncode})"
    # A line without its newline was being written when the kill landed: not reported.
    return output.decode().split("\n")[:-1]


@pytest.mark.slow
async def test_sigkill_never_loses_a_committed_snapshot(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crash.db'}"
    await upgrade(url)
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    reported: list[str] = []
    started = time.monotonic()
    for run in range(RUNS):
        reported += await _run_and_kill(url, f"r{run}", rng.uniform(0.2, 1.5))
    elapsed = time.monotonic() - started
    assert len(reported) > RUNS, f"writers reported only {len(reported)} commits (seed {seed})"

    engine = await create_engine(url)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA integrity_check"))).scalar_one() == "ok"
            stored_calls = set((await conn.execute(select(calls.c.call_id))).scalars())
            with_snapshot = set((await conn.execute(select(snapshots.c.call_id))).scalars())
        result = await verify(engine)
    finally:
        await engine.dispose()
    lost = [call_id for call_id in reported if call_id not in stored_calls]
    assert not lost, f"{len(lost)} reported calls lost, e.g. {lost[:3]} (seed {seed})"
    unsnapped = [call_id for call_id in reported if call_id not in with_snapshot]
    assert not unsnapped, f"calls without their snapshot: {unsnapped[:3]} (seed {seed})"
    assert with_snapshot == stored_calls  # nothing half-written either
    assert result.ok, f"{result.message} (seed {seed})"
    print(
        f"\n{RUNS} kills in {elapsed:.1f} s: {len(reported)} reported, "
        f"{len(stored_calls)} stored; {result.message}"
    )
