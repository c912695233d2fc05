"""The crash-day benchmark: every measurement of issue 6, one command.

    .venv/bin/python -m benchmarks [--accounts 200000] [--only NAME ...]

Runs each benchmark module in its own process (each builds its own book: the
simulator's generator at `--accounts`, the sell-off's bottom; separate processes keep
their memory apart), each writing `benchmarks/results/<name>.json` with its baseline
measured in the same run, then prints one table of target, figure and baseline and
writes `benchmarks/results/summary.json`. Wall clock on this machine; about 15 minutes
and up to ~5 GB at 200,000 accounts.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


@dataclass(frozen=True)
class Target:
    what: str
    source: str  # the benchmark module / results file
    limit: float
    unit: str
    figure: Callable[[dict[str, Any]], float | None]
    baseline: Callable[[dict[str, Any]], str]


def _get(data: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


TARGETS = (
    Target(
        "full recompute of the whole book",
        "recompute",
        1000,
        "ms",
        lambda d: _get(d, "full_recompute_ms", "median"),
        lambda d: f"Decimal loop {_get(d, 'baseline', 'full_loop_ms')} ms",
    ),
    Target(
        "10 % poll: apply, recompute, lifecycle, publish (median)",
        "engine_poll",
        100,
        "ms",
        lambda d: _get(d, "poll", "ms", "median"),
        lambda d: f"Decimal loop {_get(d, 'baseline', 'poll_ms', 'median')} ms",
    ),
    Target(
        "10 % poll (p99)",
        "engine_poll",
        250,
        "ms",
        lambda d: _get(d, "poll", "ms", "p99"),
        lambda d: f"Decimal loop {_get(d, 'baseline', 'poll_ms', 'p99')} ms",
    ),
    Target(
        "the poll in which the calls open, snapshots committed",
        "engine_poll",
        3000,
        "ms",
        lambda d: _get(d, "storm", "total_ms"),
        lambda d: (
            f"{_get(d, 'storm', 'calls_opened')} calls, "
            f"{_get(d, 'storm', 'snapshots')} snapshots; loop late ≤ "
            f"{_get(d, 'storm', 'loop_lag_ms', 'max')} ms"
        ),
    ),
    Target(
        "warnings table 20k rows, 1k changing: diff + frame (p99)",
        "live_table",
        20,
        "ms",
        lambda d: _get(d, "scenarios", "live_table", "total_ms", "p99"),
        lambda d: f"DataTable {_get(d, 'scenarios', 'data_table', 'total_ms', 'p99')} ms",
    ),
    Target(
        "the same, sorted by call amount (p99)",
        "live_table",
        20,
        "ms",
        lambda d: _get(d, "scenarios", "live_table_sorted", "total_ms", "p99"),
        lambda d: f"DataTable {_get(d, 'scenarios', 'data_table_sorted', 'total_ms', 'p99')} ms",
    ),
    Target(
        "key press to screen during the storm (p99)",
        "keypress",
        50,
        "ms",
        lambda d: _get(d, "storm_p99_ms"),
        lambda d: f"no storm: p99 {_get(d, 'scenarios', 'idle', 'latency_ms', 'p99')} ms",
    ),
    Target(
        "start-up to first paint of the last known state",
        "startup",
        1500,
        "ms",
        lambda d: _get(d, "first_paint_ms"),
        lambda d: f"an empty desk's first screen {_get(d, 'baseline_empty_desk_ms')} ms",
    ),
    Target(
        "resident memory at full size (the desk, settled)",
        "startup",
        1536,
        "MiB",
        lambda d: _get(d, "rss_mib"),
        lambda d: f"peak {_get(d, 'peak_rss_mib')} MiB",
    ),
    Target(
        "bytes to the terminal per second, 120×40, warnings live",
        "terminal_bytes",
        5120,
        "B/s",
        lambda d: _get(d, "crash_day_bytes_per_s"),
        lambda d: _htop(d),
    ),
)


def _htop(data: dict[str, Any]) -> str:
    htop = _get(data, "results", "htop")
    if not isinstance(htop, dict) or htop.get("bytes_per_s") is None:
        return "htop not installed"
    return f"htop {htop['bytes_per_s']:,.0f} B/s"


MODULES = ("recompute", "engine_poll", "startup", "live_table", "keypress", "terminal_bytes")
SIZED = {"recompute", "engine_poll", "startup"}  # take --accounts


def _run(name: str, accounts: int) -> float:
    args = [sys.executable, "-m", f"benchmarks.{name}"]
    if name in SIZED:
        args += ["--accounts", str(accounts)]
    desk = RESULTS / f"desk-{accounts}.db"  # engine_poll leaves it, startup reads it
    if name == "engine_poll":
        args += ["--keep-db", str(desk)]
    if name == "startup":
        args += ["--db", str(desk)]
    started = time.perf_counter()
    print(f"\n=== {name} ===", flush=True)
    subprocess.run(args, check=True, cwd=Path(__file__).parent.parent)
    return time.perf_counter() - started


def summary(extra: list[Target] | None = None) -> list[dict[str, Any]]:
    rows = []
    for target in (*TARGETS, *(extra or [])):
        path = RESULTS / f"{target.source}.json"
        data = json.loads(path.read_text()) if path.exists() else {}
        figure = target.figure(data) if data else None
        rows.append(
            {
                "target": target.what,
                "limit": target.limit,
                "unit": target.unit,
                "figure": figure,
                "met": None if figure is None else figure <= target.limit,
                "baseline": target.baseline(data) if data else "not run",
                "source": target.source,
            }
        )
    return rows


def _print(rows: list[dict[str, Any]]) -> None:
    print()
    print(f"{'target':58} {'limit':>9} {'figure':>10}  {'met':4} baseline (same run)")
    for row in rows:
        figure = "—" if row["figure"] is None else f"{row['figure']:,}"
        met = {True: "yes", False: "NO", None: "—"}[row["met"]]
        limit = f"{row['limit']:,} {row['unit']}"
        print(f"{row['target']:58} {limit:>9} {figure:>10}  {met:4} {row['baseline']}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1] if __doc__ else None)
    parser.add_argument("--accounts", type=int, default=200_000)
    parser.add_argument("--only", nargs="*", choices=MODULES, default=list(MODULES))
    parser.add_argument("--summary-only", action="store_true", help="tabulate existing results")
    args = parser.parse_args(argv)
    durations = {}
    if not args.summary_only:
        for name in args.only:
            durations[name] = round(_run(name, args.accounts), 1)
    rows = summary(EXTRA_TARGETS)
    _print(rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "summary.json"
    out.write_text(json.dumps({"targets": rows, "durations_s": durations}, indent=2) + "\n")
    print(f"\nwritten {out}")


EXTRA_TARGETS: list[Target] = []

if __name__ == "__main__":
    main()
