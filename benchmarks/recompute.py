"""Benchmark: whole-book margin recompute, the columnar book against the Decimal loop.

Run as `.venv/bin/python -m benchmarks.recompute` (about a minute and 3 GB at the
default 200,000 accounts; `--accounts 20000` for a quick look). Prints a table and
writes `benchmarks/results/recompute.json`.

The book (not timed): `build_state("selloff", accounts=200_000, seed=0)`, the state
`risk-tui sim --scenario selloff --accounts 200000` serves, taken to the bottom of its
sell-off in one tick (the scenario's own price model at full progress), then read the
way the desk reads it: every record through `parse_payload` and `book_from_snapshot`.
Call policies are the default configuration's (HK calls back to IM, the other markets
`mm_buffer` at 2 %).

Measured, in this one process:

1. `columns`: `ColumnarBook.from_book` (reading 2 million positions; a start-up cost).
2. `full`: `recompute_all()`: every quote and fx rate re-read, every sum from scratch,
   every account decided; `FULL_RUNS` runs.
3. `poll`: `POLLS` polls (after `WARMUP`), each moving 10 % of the symbols (the moving
   ones, drawn afresh each poll) one to three exchange ticks up or down: the quotes are
   written into the Book (not timed), then `recompute(symbols)` is timed: read those
   quotes, move the sums, decide every account holding them. This is the
   "apply + recompute affected accounts" part of the issue's poll target; the lifecycle
   and the publish that follow it are not in this module.
4. `baseline`: the plain per-account loop over `compute_account` (what the engine does
   today), over every account of the final book, timed. The same pass compares every
   account's risk level, call amount and incompleteness with the columns: the
   benchmark fails loudly on any difference. The baseline per poll is the loop's
   measured time per account times the accounts the poll moved, plus
   `Book.holders_of` (how the engine finds them), timed on every poll.
5. memory: resident set size (VmRSS) before and after building the columns, the
   columns' NumPy bytes, and the process peak. The Book itself (about 2 million
   Position objects) dominates the process; it is what `compute_account` and the
   columns' fallback read.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import random
import resource
import statistics
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from risk_tui.config import MarginCallSettings
from risk_tui.core.book import book_from_snapshot
from risk_tui.core.columnar import LEVELS, ColumnarBook
from risk_tui.core.margin import CallPolicy, compute_account
from risk_tui.core.model import Book, Market, Quote
from risk_tui.feed.models import parse_payload
from risk_tui.sim.scenarios import SEED_SYMBOLS, SelloffScenario, build_state
from risk_tui.sim.ticks import milli_text, tick_milli

ACCOUNTS = 200_000
SEED = 0
SHARE = 0.10  # of the symbols moving in one poll
POLLS = 30
WARMUP = 3
FULL_RUNS = 5
RESULTS = Path(__file__).parent / "results" / "recompute.json"
MIB = 2**20


def _rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


def _stats(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 2),
        "p99": round(_p99(values), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
    }


class _Stopwatch:
    """Wall clock and process CPU time together."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def ms(self) -> tuple[float, float]:
        return (
            (time.perf_counter() - self.wall) * 1000,
            (time.process_time() - self.cpu) * 1000,
        )


def build_book(accounts: int, seed: int) -> tuple[Book, dict[str, Any]]:
    """The sell-off's bottom, as the desk's Book (see the module doc)."""
    started = time.perf_counter()
    state = build_state("selloff", accounts=accounts, seed=seed, tick_interval=None)
    scenario = state.scenario
    assert isinstance(scenario, SelloffScenario)
    state.ticks = scenario.ramp_ticks - 1  # the next tick is the end of the ramp
    state.tick()
    generated = time.perf_counter() - started
    started = time.perf_counter()
    lists = {
        name: [json.loads(data) for data in table.values()]
        for name, table in state.store.tables.items()
    }
    del state
    parsed = parse_payload({"cursor": "1", "as_of": "2026-11-23T10:15:00+08:00", **lists})
    del lists
    if parsed.rejected:
        raise RuntimeError(f"{len(parsed.rejected)} records rejected: {parsed.rejected[:3]}")
    book = book_from_snapshot(parsed.changes)
    del parsed
    gc.collect()
    return book, {
        "generate_s": round(generated, 1),
        "parse_s": round(time.perf_counter() - started, 1),
    }


def policies() -> dict[Market, CallPolicy]:
    rules = MarginCallSettings()
    return {market: rules.rule_for(market).policy for market in Market}


class Polls:
    """Quote moves of a tenth of the movable symbols, on each market's tick grid."""

    def __init__(self, book: Book, seed: int) -> None:
        self.book = book
        self.rng = random.Random(seed)
        self.symbols = sorted(
            symbol
            for symbol, instrument in book.instruments.items()
            if symbol not in SEED_SYMBOLS
            and symbol in book.quotes
            and not (instrument.suspended or instrument.delisted)
        )
        self.size = max(1, round(len(book.instruments) * SHARE))

    def next(self) -> list[str]:
        chosen = self.rng.sample(self.symbols, min(self.size, len(self.symbols)))
        for symbol in chosen:
            market = str(self.book.instruments[symbol].market)
            milli = int(self.book.quotes[symbol].price * 1000)
            step = tick_milli(market, milli) * self.rng.choice((-3, -2, -1, -1, 1, 1, 2))
            moved = max(tick_milli(market, 0), milli + step)
            if moved != milli:
                self.book.quotes[symbol] = Quote(symbol, Decimal(milli_text(moved)))
        return chosen


def run(accounts: int, seed: int) -> dict[str, Any]:
    print(f"building the {accounts:,}-account sell-off book (not timed)…", flush=True)
    book, build = build_book(accounts, seed)
    rules = policies()
    positions = sum(len(h) for h in book.positions.values())
    print(f"  {len(book.accounts):,} accounts, {positions:,} positions", flush=True)

    gc.collect()
    rss_book = _rss()
    watch = _Stopwatch()
    columns = ColumnarBook.from_book(book, rules)
    columns_ms, _ = watch.ms()
    gc.collect()
    rss_columns = _rss()
    stats = columns.stats()
    print(f"  columns built in {columns_ms / 1000:.1f}s: {stats}", flush=True)

    full: list[float] = []
    full_cpu: list[float] = []
    for _ in range(FULL_RUNS):
        watch = _Stopwatch()
        columns.recompute_all()
        wall, cpu = watch.ms()
        full.append(wall)
        full_cpu.append(cpu)
    in_call_start = len(columns.rows_in_call())
    print(f"  full recompute: median {statistics.median(full):.0f} ms", flush=True)

    polls = Polls(book, seed)
    poll_ms: list[float] = []
    poll_cpu: list[float] = []
    affected: list[int] = []
    holders_ms: list[float] = []
    for index in range(WARMUP + POLLS):
        symbols = polls.next()
        watch = _Stopwatch()
        done = columns.recompute(symbols)
        wall, cpu = watch.ms()
        watch = _Stopwatch()
        holders = book.holders_of(symbols)  # how the engine finds the accounts today
        holders_wall, _ = watch.ms()
        assert set(done.account_ids) <= holders
        if index >= WARMUP:
            poll_ms.append(wall)
            poll_cpu.append(cpu)
            affected.append(len(done.rows))
            holders_ms.append(holders_wall)
    print(f"  polls: median {statistics.median(poll_ms):.1f} ms", flush=True)

    print("  baseline: compute_account over every account, checking each…", flush=True)
    mismatches: list[str] = []
    watch = _Stopwatch()
    for account_id, account in book.accounts.items():
        expected = compute_account(book, account_id, rules[account.market])
        if (
            columns.risk_level(account_id) is not expected.risk_level
            or columns.call_amount(account_id) != expected.call_amount
        ):
            mismatches.append(account_id)
    baseline_ms, baseline_cpu = watch.ms()
    if mismatches:
        raise AssertionError(f"{len(mismatches)} accounts differ, e.g. {mismatches[:5]}")
    per_account_ms = baseline_ms / len(book.accounts)
    # The check itself (two dict lookups and a Decimal) is in the loop's time; it is a
    # few percent of one compute_account, so the baseline is slightly flattered.
    baseline_poll = [
        per_account_ms * count + holders
        for count, holders in zip(affected, holders_ms, strict=True)
    ]

    levels = dict.fromkeys((str(level) for level in LEVELS), 0)
    for code, count in zip(*np.unique(columns.level_codes, return_counts=True), strict=True):
        levels[str(LEVELS[int(code)])] = int(count)
    final = columns.stats()
    return {
        "accounts": len(book.accounts),
        "positions": positions,
        "symbols": len(book.instruments),
        "groups": final.groups,
        "seed": seed,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
        "cpus": _cpus(),
        "scales": {
            "quantity": columns.scales.quantity,
            "price": columns.scales.price,
            "ratio": columns.scales.ratio,
            "cash": columns.scales.cash,
            "fx": columns.scales.fx,
            "base": columns.scales.base,
        },
        "build": {**build, "columns_s": round(columns_ms / 1000, 1)},
        "in_call": {"after_selloff": in_call_start, "after_polls": len(columns.rows_in_call())},
        "levels": levels,
        "full_recompute_ms": {**_stats(full), "cpu_median": round(statistics.median(full_cpu), 1)},
        "poll": {
            "symbols_changed": polls.size,
            "affected_accounts_median": int(statistics.median(affected)),
            "ms": _stats(poll_ms),
            "cpu_ms": _stats(poll_cpu),
            "polls": POLLS,
            "warmup": WARMUP,
        },
        "baseline": {
            "full_loop_ms": round(baseline_ms, 0),
            "full_loop_cpu_ms": round(baseline_cpu, 0),
            "per_account_us": round(per_account_ms * 1000, 1),
            "poll_ms": _stats(baseline_poll),
            "holders_of_ms": _stats(holders_ms),
            "method": (
                "full: measured over every account; poll: measured per-account time × "
                "accounts the poll moved + Book.holders_of timed on each poll"
            ),
        },
        "exactness": {
            "accounts_compared": len(book.accounts),
            "mismatches": len(mismatches),
            "by_reference": final.by_reference,
            "inverse_fx_accounts": final.inverse_fx_accounts,
            "incomplete": final.incomplete,
        },
        "memory_mib": {
            "rss_with_book": round(rss_book / MIB),
            "rss_with_book_and_columns": round(rss_columns / MIB),
            "columns_rss_delta": round((rss_columns - rss_book) / MIB),
            "columns_arrays": round(final.array_bytes / MIB),
            "peak": round(_peak() / MIB),
        },
        "targets": {"full_recompute_ms": 1000, "poll_median_ms": 100, "poll_p99_ms": 250},
    }


def _cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _print(figures: dict[str, Any]) -> None:
    full, poll, base = figures["full_recompute_ms"], figures["poll"], figures["baseline"]
    memory, exact = figures["memory_mib"], figures["exactness"]
    book_rss, both_rss = memory["rss_with_book"], memory["rss_with_book_and_columns"]
    rows = [
        ("full recompute, columnar (ms)", f"{full['median']:,.0f}", f"{full['max']:,.0f}",
         "≤ 1,000"),
        ("full recompute, Decimal loop (ms)", f"{base['full_loop_ms']:,.0f}", "", ""),
        ("poll, 10 % of symbols, columnar (ms)", f"{poll['ms']['median']:,.1f}",
         f"p99 {poll['ms']['p99']:,.1f}", "≤ 100, p99 ≤ 250 (whole poll)"),
        ("poll, Decimal loop (ms)", f"{base['poll_ms']['median']:,.0f}",
         f"p99 {base['poll_ms']['p99']:,.0f}", ""),
        ("columns built from the Book (s)", f"{figures['build']['columns_s']:,.1f}", "", ""),
        ("RSS: Book / Book + columns (MiB)", f"{book_rss:,} / {both_rss:,}",
         f"peak {memory['peak']:,}", "≤ 1,536 (whole process)"),
        ("columns: RSS delta / arrays (MiB)",
         f"{memory['columns_rss_delta']:,} / {memory['columns_arrays']:,}", "", ""),
    ]  # fmt: skip
    print()
    print(
        f"{figures['accounts']:,} accounts, {figures['positions']:,} positions, "
        f"{figures['symbols']:,} symbols; {figures['in_call']['after_selloff']:,} in call after "
        f"the sell-off; {poll['symbols_changed']:,} symbols per poll moving "
        f"{poll['affected_accounts_median']:,} accounts (median); {figures['cpus']} CPUs"
    )
    header = f"{'':40} {'median':>14} {'worst':>12}  target"
    print(header)
    print("-" * len(header))
    for name, median, worst, target in rows:
        print(f"{name:40} {median:>14} {worst:>12}  {target}")
    print()
    print(
        f"speed-up: full {base['full_loop_ms'] / full['median']:,.0f}x, poll "
        f"{base['poll_ms']['median'] / poll['ms']['median']:,.0f}x (medians)"
    )
    print(
        f"exactness: {exact['accounts_compared']:,} accounts compared with compute_account, "
        f"{exact['mismatches']} differ; {exact['by_reference']} decided by the reference; "
        f"{exact['inverse_fx_accounts']:,} through an inverse fx rate"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--accounts", type=int, default=ACCOUNTS)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    figures = run(args.accounts, args.seed)
    _print(figures)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
