"""Benchmark: the engine's poll on a crash day, with the real store on a SQLite file.

Run as `.venv/bin/python -m benchmarks.engine_poll` (a few minutes and ~4 GB at the
default 200,000 accounts; `--accounts 20000` for a quick look). Prints a table and
writes `benchmarks/results/engine_poll.json`.

The desk (not timed): `build_state("selloff", accounts=N)` before the fall, read through
`parse_payload` as the feed's snapshot; an `Engine` with the default configuration and a
`Store` on a fresh SQLite file (WAL, synchronous=FULL, as the desk runs it).

Measured, in this one process:

1. `snapshot`: `Engine.apply(snapshot, full=True)`: the book and its columns built (in a
   worker thread), every account decided, the calls of the calm market opened.
2. `storm`: the one poll that takes every quote to the bottom of the sell-off (a change
   set of every quote): apply, recompute every account, open the new calls with their
   TRIGGER (and FORCE_CALL) snapshots and commit them in one transaction, publish.
   Timed as a whole and its commit alone; meanwhile a 5 ms ticker on the same event
   loop measures how late it runs (`loop_lag`): the longest the screen would wait to
   handle a key press during that poll.
3. `poll`: `POLLS` polls after the storm, each moving 10 % of the symbols one to three
   ticks (a change set of those quotes): apply, recompute the accounts holding them,
   the lifecycle of the calls that moved (their amounts are written), publish. With
   the open calls of the storm on the desk.
4. `baseline`: what the same polls cost on the per-account Decimal loop (the engine
   before the columns): `compute_account` timed over a sample of accounts, times the
   accounts each poll moved, plus `Book.holders_of` to find them, timed on every poll.
5. memory: resident set size with the desk at full size and the process peak.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from benchmarks.recompute import MIB, Polls, _cpus, _peak, _rss, _stats
from risk_tui.config import load_settings
from risk_tui.core.book import BookChanges
from risk_tui.core.calendar import TradingCalendars, default_overrides_path, load_overrides
from risk_tui.core.lifecycle import LifecycleBatch
from risk_tui.core.margin import compute_account
from risk_tui.desk.collector import collect_young, hold_collector
from risk_tui.desk.engine import Engine
from risk_tui.feed.models import book_to_payload, parse_payload
from risk_tui.sim.scenarios import SelloffScenario, build_state
from risk_tui.storage.calls import Calls
from risk_tui.storage.db import create_engine, upgrade
from risk_tui.storage.store import Store

ACCOUNTS = 200_000
SEED = 0
POLLS = 20
SAMPLE = 2_000  # accounts timed on the Decimal loop for the baseline
RESULTS = Path(__file__).parent / "results" / "engine_poll.json"
NOW = datetime(2026, 11, 23, 2, 15, tzinfo=UTC)  # a Monday, 10:15 in Hong Kong


class _TimedCalls(Calls):
    """The real calls repository, with the time of each commit kept."""

    commits: list[float]

    async def commit(
        self, batch: LifecycleBatch, daily: Any = (), *, skip_changed: bool = False
    ) -> frozenset[str]:
        started = time.perf_counter()
        refused = await super().commit(batch, daily, skip_changed=skip_changed)
        self.commits.append((time.perf_counter() - started) * 1000)
        return refused


def _payloads(accounts: int, seed: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The calm snapshot's lists, and every quote at the bottom of the sell-off."""
    state = build_state("selloff", accounts=accounts, seed=seed, tick_interval=None)
    scenario = state.scenario
    assert isinstance(scenario, SelloffScenario)
    lists = {
        name: [json.loads(data) for data in table.values()]
        for name, table in state.store.tables.items()
    }
    state.ticks = scenario.ramp_ticks - 1
    state.tick()
    bottom = [json.loads(data) for data in state.store.tables["quotes"].values()]
    return lists, bottom


async def _lagging(during: Callable[[], Any]) -> tuple[Any, list[float]]:
    """Run `during()` with a 5 ms ticker on the loop; how late each tick ran (ms)."""
    lags: list[float] = []
    running = True

    async def ticker() -> None:
        while running:
            started = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append(max(0.0, (time.perf_counter() - started) * 1000 - 5.0))

    task = asyncio.create_task(ticker())
    try:
        result = await during()
    finally:
        running = False
        await task
    return result, lags


async def run(
    accounts: int, seed: int, *, polls: int = POLLS, keep_db: Path | None = None
) -> dict[str, Any]:
    print(f"building the {accounts:,}-account desk (not timed)…", flush=True)
    lists, bottom = _payloads(accounts, seed)
    snapshot = parse_payload({"cursor": "1", "as_of": NOW.isoformat(), **lists})
    del lists
    storm = parse_payload({"cursor": "2", "as_of": NOW.isoformat(), "quotes": bottom}).changes
    gc.collect()
    with tempfile.TemporaryDirectory() as folder:
        db_path = keep_db or Path(folder) / "desk.db"
        db_path.unlink(missing_ok=True)
        url = f"sqlite+aiosqlite:///{db_path}"
        await upgrade(url)
        database = await create_engine(url)
        store = Store(database)
        store.calls = timed = _TimedCalls(database)
        timed.commits = []
        calendars = TradingCalendars(
            load_overrides(default_overrides_path()), today=date(2026, 11, 22)
        )
        clock = [NOW]
        engine = Engine(
            load_settings(None, env={}, discover=False),
            store.calls,
            calendars,
            clock=lambda: clock[0],
        )
        await engine.start()
        engine.prepare_calendars()  # as the desk does after its first paint

        print("snapshot…", flush=True)
        started = time.perf_counter()
        await engine.apply(snapshot.changes, full=True)
        snapshot_ms = (time.perf_counter() - started) * 1000
        calm_calls = len(engine.open_calls)
        del snapshot
        gc.collect()

        # The desk's collector schedule (`Desk._collect_garbage`): frozen, automatic
        # collection off, the young generations collected once a second between polls
        # (timed apart: `young_gc_ms`, a pause the event loop takes each second).
        was_enabled = hold_collector()
        young_gc_ms: list[float] = []

        def collect() -> None:
            started = time.perf_counter()
            collect_young()
            young_gc_ms.append((time.perf_counter() - started) * 1000)

        print("the storm poll…", flush=True)
        timed.commits.clear()
        started = time.perf_counter()
        outcome, lags = await _lagging(functools.partial(engine.apply, storm, full=False))
        storm_ms = (time.perf_counter() - started) * 1000
        outcome_phases = outcome.phases
        opened = sum(1 for t in outcome.transitions if t.opened)
        snapshots = sum(len(t.snapshots) for t in outcome.transitions)
        storm_commit_ms = sum(timed.commits)
        collect()

        print(f"{polls} polls of 10 % of the symbols…", flush=True)
        mover = Polls(engine.book, seed)
        saved = dict(engine.book.quotes)
        poll_ms: list[float] = []
        phases: list[dict[str, float]] = []
        commit_ms: list[float] = []
        moved_accounts: list[int] = []
        holders_ms: list[float] = []
        updates: list[int] = []
        poll_lags: list[float] = []
        for number in range(polls):
            chosen = mover.next()  # writes the moved quotes into the book: take them back
            quotes = [engine.book.quotes[s] for s in chosen]
            for symbol in chosen:
                engine.book.quotes[symbol] = saved[symbol]
            changes = BookChanges(cursor=str(3 + number), as_of=NOW, quotes=quotes)
            clock[0] = NOW.replace(second=number % 60)
            timed.commits.clear()
            started = time.perf_counter()
            outcome, lags_now = await _lagging(functools.partial(engine.apply, changes, full=False))
            poll_ms.append((time.perf_counter() - started) * 1000)
            poll_lags.extend(lags_now)
            commit_ms.append(sum(timed.commits))
            moved_accounts.append(outcome.recomputed)
            phases.append(outcome.phases)
            updates.append(len(outcome.transitions))
            saved.update({q.symbol: q for q in quotes})
            collect()
            started = time.perf_counter()
            engine.book.holders_of(chosen)
            holders_ms.append((time.perf_counter() - started) * 1000)

        print("baseline: the per-account Decimal loop on a sample…", flush=True)
        rng = random.Random(seed)
        ids = rng.sample(list(engine.book.accounts), min(SAMPLE, len(engine.book.accounts)))
        started = time.perf_counter()
        for account_id in ids:
            account = engine.book.accounts[account_id]
            compute_account(engine.book, account_id, engine.policies[account.market])
        per_account_ms = (time.perf_counter() - started) * 1000 / len(ids)
        baseline = [
            per_account_ms * moved + holders
            for moved, holders in zip(moved_accounts, holders_ms, strict=True)
        ]
        rss = _rss()
        if was_enabled:
            gc.enable()

        print("restart: first paint and figures from the stored state…", flush=True)
        await store.calls.commit(LifecycleBatch(calls=engine.unsaved_calls()))
        started = time.perf_counter()
        cache_text = json.dumps(book_to_payload(engine.book))
        cache_write_ms = (time.perf_counter() - started) * 1000
        await store.cache.put_cache("book", cache_text)
        open_before = len(engine.open_calls)
        del engine, mover, saved, cache_text
        gc.collect()
        restarted = Engine(
            load_settings(None, env={}, discover=False),
            store.calls,
            calendars,
            clock=lambda: clock[0],
        )
        started = time.perf_counter()
        await restarted.start()
        first = restarted.mark_stale()  # what Desk.start publishes before the book
        first_paint_ms = (time.perf_counter() - started) * 1000
        assert len(first.warnings) == open_before
        cached = await store.cache.get_cache("book")
        assert cached is not None
        parsed = parse_payload(json.loads(cached))
        await restarted.apply(parsed.changes, full=True, fresh=False)
        figures_ms = (time.perf_counter() - started) * 1000
        await database.dispose()

    def ratio(base: float, ours: float) -> float:
        return round(base / ours, 1) if ours else 0.0

    figures = {
        "benchmark": "engine_poll",
        "accounts": accounts,
        "cpus": _cpus(),
        "calm_calls": calm_calls,
        "snapshot_ms": round(snapshot_ms),
        "storm": {
            "calls_opened": opened,
            "open_calls": open_before,
            "snapshots": snapshots,
            "total_ms": round(storm_ms),
            "commit_ms": round(storm_commit_ms),
            "phases_ms": outcome_phases,
            "loop_lag_ms": _stats(lags) if lags else None,
        },
        "poll": {
            "ms": _stats(poll_ms),
            "commit_ms": _stats(commit_ms),
            "accounts_moved_median": sorted(moved_accounts)[len(moved_accounts) // 2],
            "call_changes_median": sorted(updates)[len(updates) // 2],
            "loop_lag_ms": _stats(poll_lags) if poll_lags else None,
            "young_gc_ms": _stats(young_gc_ms),
            "phases_median_ms": {
                name: round(statistics.median(p.get(name, 0.0) for p in phases), 1)
                for name in phases[0]
            },
        },
        "baseline": {
            "what": "per-account Decimal loop (compute_account) over the moved accounts "
            "+ Book.holders_of",
            "per_account_ms": round(per_account_ms, 4),
            "poll_ms": _stats(baseline),
            "ratio_median": ratio(
                sorted(baseline)[len(baseline) // 2], sorted(poll_ms)[len(poll_ms) // 2]
            ),
        },
        "restart": {
            "open_calls": open_before,
            "first_paint_ms": round(first_paint_ms),
            "figures_ms": round(figures_ms),
            "cache_write_ms": round(cache_write_ms),
        },
        "rss_mib": round(rss / MIB),
        "peak_rss_mib": round(_peak() / MIB),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return figures


def _print(figures: dict[str, Any]) -> None:
    storm, poll, base = figures["storm"], figures["poll"], figures["baseline"]
    print()
    print(f"engine poll, {figures['accounts']:,} accounts, {figures['cpus']} CPUs")
    print(f"  snapshot apply (book + columns + calm calls)   {figures['snapshot_ms']:>8} ms")
    print(
        f"  storm poll: {storm['calls_opened']:,} calls opened, {storm['snapshots']:,} "
        f"snapshots: {storm['total_ms']:,} ms (commit {storm['commit_ms']:,} ms)"
    )
    print(
        "    where its time goes (ms): "
        + ", ".join(f"{name} {ms:,.0f}" for name, ms in storm["phases_ms"].items())
    )
    if storm["loop_lag_ms"]:
        lag = storm["loop_lag_ms"]
        print(f"    event loop late by: median {lag['median']} ms, max {lag['max']} ms")
    ms = poll["ms"]
    print(
        f"  10 % poll: median {ms['median']} ms, p99 {ms['p99']} ms "
        f"({poll['accounts_moved_median']:,} accounts, {poll['call_changes_median']:,} "
        f"call changes, commit median {poll['commit_ms']['median']} ms)"
    )
    print(
        "    where a poll's time goes (median ms): "
        + ", ".join(f"{name} {ms}" for name, ms in poll["phases_median_ms"].items())
    )
    young = poll["young_gc_ms"]
    print(
        f"    young-generation collection each second: median {young['median']} ms, "
        f"max {young['max']} ms"
    )
    bms = base["poll_ms"]
    print(f"  baseline (Decimal loop): median {bms['median']} ms → ×{base['ratio_median']}")
    restart = figures["restart"]
    print(
        f"  restart with {restart['open_calls']:,} open calls: first paint (stored calls, "
        f"stale) {restart['first_paint_ms']:,} ms; figures from the cached book "
        f"{restart['figures_ms']:,} ms (cache written in {restart['cache_write_ms']:,} ms)"
    )
    print(f"  RSS {figures['rss_mib']:,} MiB, peak {figures['peak_rss_mib']:,} MiB")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--accounts", type=int, default=ACCOUNTS)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--polls", type=int, default=POLLS)
    parser.add_argument(
        "--keep-db", type=Path, help="leave the desk's SQLite file here (for benchmarks.startup)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    figures = asyncio.run(run(args.accounts, args.seed, polls=args.polls, keep_db=args.keep_db))
    _print(figures)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\nwritten {args.out}")


if __name__ == "__main__":
    main()
