"""Benchmark: LiveTable against Textual's DataTable on a crash-day warnings table.

Run as `.venv/bin/python -m benchmarks.live_table` (about two minutes). In one process
and headless (`App.run_test(size=(120, 40))`), each scenario loads 20,000 rows into a
fresh app, then applies polls of 1,000 changed rows (new equity, call amount and
net-asset ratio) and renders the next frame: 200 polls for LiveTable, 30 for the
DataTable baseline (a DataTable poll takes 0.1 to 1.5 s). Prints a table and writes
`benchmarks/results/live_table.json`.

Each row carries its record, a `WarningRow` as the warnings tab hands the table (a call
in SGD or HKD, converted into the reporting currency SGD by the desk): the warnings
tab's sorts read it, never the cells' text.

Scenarios: arrival order; sorted by call amount descending with the warnings tab's own
sort value (`risk_tui.screens.warning_order.call_amount`: the amount in the reporting
currency, an int); the same with the Decimal itself as the sort value (LiveTable's
generic path for non-integer sort values); the warnings tab's default order, by urgency
(`warning_order.urgency`: level, deadline, amount); arrival order with every row of the
first screen among the 1,000 changed (every visible row re-rendered every poll); and
DataTable unsorted and sorted (by the cell's text, all it can sort by) as the baseline.

Each poll's rows are generated just before it is applied (not timed), so they are young
objects to the garbage collector, as the warnings tab's freshly built rows are. Time
spent in garbage collections that ran inside a timed poll is recorded with
`gc.callbacks` (`gc_ms`, `polls_with_gc`), to tell collector pauses from the widget's
own work in the p99. The collector runs on the desk's schedule, as in the app
(`risk_tui.desk.collector.hold_collector`: automatic collection off, the young generations
collected between polls, where the app's one-second tick collects them), for both
widgets alike.

How a poll is timed, the same way for both widgets:

1. `apply`: the diff, timed alone (`LiveTable.apply_diff`; `DataTable.update_cell` for
   each changed cell, plus `DataTable.sort` in the sorted scenario).
2. The widgets' refresh requests are delivered with `await pilot.pause()` inside
   `App.batch_update()`, so nothing is painted yet (not timed: event-loop plumbing that
   is the same for both).
3. `frame`: the screen's update, `Screen._on_timer_update()` (what Textual's 60 Hz
   update timer and `Pilot.pause()` call): layout if needed, `render_lines` of every
   dirty region through the compositor, and, because a headless app skips it, the
   encoding of that update into the terminal byte string a real driver would write.

`total = apply + frame` is the "diff applied and next frame rendered" figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import platform
import random
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import textual
from rich.console import RenderableType
from rich.text import Text
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable

from benchmarks.gc_log import GcLog
from risk_tui.core.lifecycle import CallState, MarginCall
from risk_tui.core.margin import RiskLevel
from risk_tui.core.model import AccountKind, Market
from risk_tui.core.view import WarningRow, in_reporting
from risk_tui.desk.collector import collect_young, hold_collector
from risk_tui.screens import warning_order
from risk_tui.widgets.live_table import Column, LiveTable, RowData

ROWS = 20_000
CHANGES = 1_000
ITERATIONS = 200
BASELINE_ITERATIONS = 30
WARMUP = 5
SIZE = (120, 40)
SEED = 20_250_310
RESULTS = Path(__file__).parent / "results" / "live_table.json"

EQUITY, CALL_AMOUNT, RATIO = 6, 10, 11
"""Cell positions of the figures that change every poll."""
HKD_SGD = Decimal("0.1723")
"""The fx rate into the reporting currency (SGD) of the HKD rows."""
NOW = datetime(2025, 3, 10, 2, 15, tzinfo=UTC)


def _cell_amount(text: Text) -> Decimal:
    """DataTable's sort key: it can sort by nothing but the cell."""
    return Decimal(text.plain.replace(",", ""))


def _decimal_amount(record: WarningRow) -> Decimal | None:
    return record.call_amount_reporting


def _columns(money_value: Callable[[Any], Any]) -> tuple[Column, ...]:
    def money(key: str, label: str, value: Callable[[Any], Any] | None = None) -> Column:
        return Column(key, label, align="right", sort_value=value, sort_key=_cell_amount)

    return (
        Column("account", "Account", width=9),
        Column("client", "Client", max_width=20),
        Column("kind", "Type"),
        Column("level", "Level"),
        Column("triggered", "Triggered"),
        Column("deadline", "Deadline"),
        money("equity", "Equity", warning_order.equity),
        money("im", "IM", warning_order.initial_margin),
        money("mm", "MM", warning_order.maintenance_margin),
        money("fm", "FM", warning_order.force_margin),
        money("call_amount", "Call amount", money_value),
        Column("ratio", "Ratio", align="right"),
        Column("status", "Status"),
        Column("remark", "Remark", max_width=30),
    )


COLUMNS = _columns(warning_order.call_amount)
"""As the warnings tab sorts money: its value in the reporting currency, an int."""
DECIMAL_COLUMNS = _columns(_decimal_amount)
"""Sorting money by its Decimal value: LiveTable's generic (non-integer) entry path."""


def _amount(rng: random.Random) -> Decimal:
    return Decimal(rng.randint(0, 5_000_000_00)) / 100


def _money_cell(value: Decimal) -> Text:
    return Text(f"{value:,.2f}", style="bold red" if value > 1_000_000 else "")


def _record(rng: random.Random, index: int) -> WarningRow:
    """An open call in SGD or HKD, as the desk publishes it (figures are not read here)."""
    currency = "HKD" if index % 3 == 0 else "SGD"
    level = RiskLevel.FORCE_CALL if index % 4 == 0 else RiskLevel.MARGIN_CALL
    amount = _amount(rng)
    triggered = NOW - timedelta(minutes=rng.randint(0, 600))
    call = MarginCall(
        call_id=f"MC-bench-{index:09d}",
        account_id=f"{index:09d}",
        client_name=f"Client {index}",
        kind=AccountKind.MARGIN,
        market=Market.HK if currency == "HKD" else Market.SG,
        currency=currency,
        state=CallState.FORCE_CALL if level is RiskLevel.FORCE_CALL else CallState.TRIGGERED,
        risk_level=level,
        triggered_at=triggered,
        trigger_call_amount=amount,
        call_amount=amount,
        deadline=triggered + timedelta(days=rng.randint(0, 2)),
    )
    return _repriced(call, amount)


def _repriced(call: MarginCall, amount: Decimal) -> WarningRow:
    rate = HKD_SGD if call.currency == "HKD" else Decimal(1)
    call = replace(call, call_amount=amount)
    return WarningRow(call, None, False, rate, in_reporting(amount, rate))


def _row_cells(rng: random.Random, index: int, record: WarningRow) -> list[Text]:
    return [
        Text(f"{index:09d}"),
        Text(f"Client {rng.choice('ABCDEFGHJK')}{index} 陳大文"[: rng.randint(10, 24)]),
        Text(rng.choice(("margin", "intraday"))),
        Text(rng.choice(("LOW", "MEDIUM", "HIGH", "CRITICAL"))),
        Text(f"2025-03-10 {rng.randint(9, 15):02d}:{rng.randint(0, 59):02d}"),
        Text(f"2025-03-{rng.randint(11, 14)} 15:00"),
        _money_cell(_amount(rng)),
        _money_cell(_amount(rng)),
        _money_cell(_amount(rng)),
        _money_cell(_amount(rng)),
        _money_cell(record.call.call_amount),
        Text(f"{rng.randint(100, 2000) / 10:.1f}%"),
        Text(rng.choice(("OPEN", "MESSAGED", "LIQUIDATING"))),
        Text(rng.choice(("", "called client", "awaiting funds", "[b]not markup[/b]"))),
    ]


Row = tuple[list[Text], WarningRow]
"""A row's cells and its record."""


@dataclass
class Workload:
    """The initial rows and a deterministic stream of polls (the same for every scenario)."""

    keys: list[str]
    initial: dict[str, Row]
    visible_first: bool = False

    @classmethod
    def generate(cls, visible_first: bool = False) -> Workload:
        """Deterministic data; `visible_first` puts the first screen's rows in every poll."""
        rng = random.Random(SEED)
        keys = [f"{index:09d}" for index in range(ROWS)]
        initial = {}
        for index, key in enumerate(keys):
            record = _record(rng, index)
            initial[key] = (_row_cells(rng, index, record), record)
        return cls(keys, initial, visible_first)

    def polls(self, count: int) -> Iterator[dict[str, Row]]:
        """`count` polls of CHANGES rows each, generated one at a time (not timed)."""
        rng = random.Random(SEED + 1)
        current = dict(self.initial)
        for _ in range(count):
            chosen = rng.sample(self.keys, CHANGES)
            if self.visible_first:
                chosen = list(dict.fromkeys(self.keys[: SIZE[1]] + chosen))[:CHANGES]
            poll: dict[str, Row] = {}
            for key in chosen:
                cells, record = current[key]
                cells = list(cells)
                amount = _amount(rng)
                record = _repriced(record.call, amount)
                cells[EQUITY] = _money_cell(_amount(rng))
                cells[CALL_AMOUNT] = _money_cell(amount)
                cells[RATIO] = Text(f"{rng.randint(100, 2000) / 10:.1f}%")
                current[key] = poll[key] = (cells, record)
            yield poll


class BenchApp(App[None]):
    """An app holding just the widget under test."""

    def __init__(self, widget: Widget) -> None:
        super().__init__()
        self.widget = widget
        self.encoded_bytes = 0

    def compose(self) -> ComposeResult:
        yield self.widget

    def _display(self, screen: Screen[Any], renderable: RenderableType | None) -> None:
        # Headless apps skip encoding; do it here so the frame cost includes the bytes a
        # terminal (over SSH) would be sent, for both widgets alike.
        render_segments = getattr(renderable, "render_segments", None)
        if render_segments is not None:
            self.encoded_bytes += len(render_segments(self.console).encode())
        super()._display(screen, renderable)


@dataclass
class Sample:
    """One poll: wall-clock and CPU milliseconds for the diff and the frame."""

    apply_ms: float
    frame_ms: float
    apply_cpu_ms: float
    frame_cpu_ms: float
    encoded_bytes: int
    gc_ms: float = 0.0
    gc_generation: int = -1  # oldest generation collected during the poll, -1: none

    @property
    def total_ms(self) -> float:
        return self.apply_ms + self.frame_ms

    @property
    def total_cpu_ms(self) -> float:
        return self.apply_cpu_ms + self.frame_cpu_ms


class _Stopwatch:
    """Wall-clock and process CPU time together: CPU time is the steadier figure on a
    shared machine, where other processes steal wall-clock time."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def elapsed_ms(self) -> tuple[float, float]:
        return (
            (time.perf_counter() - self.wall) * 1000,
            (time.process_time() - self.cpu) * 1000,
        )


async def _timed_poll(
    app: BenchApp, pilot: Pilot[None], apply: Callable[[], None], gc_log: GcLog
) -> Sample:
    """Apply one diff, deliver the refresh requests unpainted, then time one frame."""
    with app.batch_update():
        mark = gc_log.mark()
        stopwatch = _Stopwatch()
        apply()
        apply_ms, apply_cpu_ms = stopwatch.elapsed_ms()
        gc_ms, generation = gc_log.since(mark)
        await pilot.pause()  # inside the batch: messages flow, nothing is painted
    app.encoded_bytes = 0
    mark = gc_log.mark()
    stopwatch = _Stopwatch()
    app.screen._on_timer_update()
    frame_ms, frame_cpu_ms = stopwatch.elapsed_ms()
    frame_gc_ms, frame_generation = gc_log.since(mark)
    return Sample(
        apply_ms,
        frame_ms,
        apply_cpu_ms,
        frame_cpu_ms,
        app.encoded_bytes,
        gc_ms + frame_gc_ms,
        max(generation, frame_generation),
    )


async def _timed_load(pilot: Pilot[None], load: Callable[[], None]) -> float:
    """Load rows and wait until the first frame showing them has been rendered."""
    started = time.perf_counter()
    load()
    await pilot.pause()
    return (time.perf_counter() - started) * 1000


@contextlib.contextmanager
def _desk_collector() -> Iterator[None]:
    """The collector as the desk runs it (`desk.collector.collect_garbage`): what exists frozen,
    automatic collection off, the young generations collected between polls (not
    timed: in the app it runs on its own one-second tick, not inside a frame)."""
    was_enabled = hold_collector()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        gc.unfreeze()


async def bench_live_table(
    workload: Workload, sort: str, columns: tuple[Column, ...], iterations: int
) -> tuple[float, list[Sample]]:
    """LiveTable: `set_rows`, then `apply_diff` per poll; `sort`: "" arrival order,
    "call_amount" by call amount descending, "urgency" the warnings tab's default order."""
    urgency = warning_order.urgency if sort == "urgency" else None
    table = LiveTable(columns, default_order=urgency)
    app = BenchApp(table)
    versions = dict.fromkeys(workload.keys, 1)
    async with app.run_test(size=SIZE) as pilot:
        table.focus()
        if sort == "call_amount":
            table.sort_by("call_amount", reverse=True)
        rows = {
            key: RowData(tuple(cells), 1, record)
            for key, (cells, record) in workload.initial.items()
        }
        load_ms = await _timed_load(pilot, lambda: table.set_rows(rows))
        samples = []
        with GcLog() as gc_log, _desk_collector():
            for poll in workload.polls(WARMUP + iterations):
                collect_young()  # the desk's once-a-second collection, between polls
                upserts: dict[str, RowData] = {}
                for key, (cells, record) in poll.items():
                    versions[key] += 1
                    upserts[key] = RowData(tuple(cells), versions[key], record)

                def apply(upserts: dict[str, RowData] = upserts) -> None:
                    table.apply_diff(upserts)

                samples.append(await _timed_poll(app, pilot, apply, gc_log))
    return load_ms, samples[WARMUP:]


async def bench_data_table(
    workload: Workload, sort: str, columns: tuple[Column, ...], iterations: int
) -> tuple[float, list[Sample]]:
    """DataTable: `add_row` per row, then `update_cell` per changed cell (and `sort`)."""
    table: DataTable[Text] = DataTable(cursor_type="row")
    app = BenchApp(table)
    changed_columns = ("equity", "call_amount", "ratio")
    changed_positions = (EQUITY, CALL_AMOUNT, RATIO)
    money_key = columns[CALL_AMOUNT].sort_key
    async with app.run_test(size=SIZE) as pilot:
        table.focus()

        def load() -> None:
            for column in columns:
                table.add_column(column.label, key=column.key)
            for key, (cells, _record) in workload.initial.items():
                table.add_row(*cells, key=key)
            if sort:
                table.sort("call_amount", key=money_key, reverse=True)

        load_ms = await _timed_load(pilot, load)
        samples = []
        with GcLog() as gc_log, _desk_collector():
            for poll in workload.polls(WARMUP + iterations):
                collect_young()  # the desk's once-a-second collection, between polls

                def apply(poll: dict[str, Row] = poll) -> None:
                    for key, (cells, _record) in poll.items():
                        for column_key, position in zip(
                            changed_columns, changed_positions, strict=True
                        ):
                            table.update_cell(key, column_key, cells[position])
                    if sort:
                        table.sort("call_amount", key=money_key, reverse=True)

                samples.append(await _timed_poll(app, pilot, apply, gc_log))
    return load_ms, samples[WARMUP:]


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


def _summary(load_ms: float, samples: list[Sample]) -> dict[str, Any]:
    def stats(values: list[float]) -> dict[str, float]:
        return {
            "median": round(statistics.median(values), 3),
            "p99": round(_p99(values), 3),
            "max": round(max(values), 3),
        }

    quiet = [sample.total_ms for sample in samples if sample.gc_generation < 0]
    return {
        "polls": len(samples),
        "load_ms": round(load_ms, 1),
        "apply_ms": stats([sample.apply_ms for sample in samples]),
        "frame_ms": stats([sample.frame_ms for sample in samples]),
        "total_ms": stats([sample.total_ms for sample in samples]),
        "total_cpu_ms": stats([sample.total_cpu_ms for sample in samples]),
        "frame_bytes_median": int(statistics.median(s.encoded_bytes for s in samples)),
        "gc": {
            "polls_with_gc": sum(sample.gc_generation >= 0 for sample in samples),
            "polls_with_gen1_or_2": sum(sample.gc_generation >= 1 for sample in samples),
            "polls_with_gen2": sum(sample.gc_generation == 2 for sample in samples),
            "gc_ms": stats([sample.gc_ms for sample in samples]),
            "total_ms_polls_without_gc": stats(quiet) if quiet else None,
        },
    }


SCENARIOS: tuple[tuple[str, str, str, bool, bool], ...] = (
    # (name, widget, sort, Decimal sort value, first screen changes every poll)
    ("live_table", "live", "", False, False),
    ("live_table_sorted", "live", "call_amount", False, False),
    ("live_table_sorted_decimal_key", "live", "call_amount", True, False),
    ("live_table_urgency", "live", "urgency", False, False),
    ("live_table_visible_rows_change", "live", "", False, True),
    ("data_table", "data", "", False, False),
    ("data_table_sorted", "data", "call_amount", False, False),
)


async def run(
    iterations: int = ITERATIONS, baseline_iterations: int = BASELINE_ITERATIONS
) -> dict[str, Any]:
    """Run every scenario and return the figures."""
    workloads = {False: Workload.generate(), True: Workload.generate(visible_first=True)}
    results: dict[str, Any] = {}
    for name, widget, sort, decimal_key, visible_first in SCENARIOS:
        gc.collect()
        columns = DECIMAL_COLUMNS if decimal_key else COLUMNS
        if widget == "live":
            bench, polls = bench_live_table, iterations
        else:
            bench, polls = bench_data_table, baseline_iterations
        load_ms, samples = await bench(workloads[visible_first], sort, columns, polls)
        results[name] = _summary(load_ms, samples)
        print(f"  {name}: done", flush=True)

    def ratio(baseline: str, candidate: str, figure: str, total: str = "total_ms") -> float:
        quotient: float = results[baseline][total][figure] / results[candidate][total][figure]
        return round(quotient, 1)

    return {
        "rows": ROWS,
        "changes_per_diff": CHANGES,
        "iterations": iterations,
        "baseline_iterations": baseline_iterations,
        "warmup": WARMUP,
        "size": list(SIZE),
        "textual": textual.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "method": (
            "total = apply diff + Screen._on_timer_update() incl. encoding (see docstring); "
            "*_ms wall clock (perf_counter), *_cpu_ms process time; gc: collections that "
            "ran inside a timed poll (gc.callbacks)"
        ),
        "scenarios": results,
        "ratios": {
            "unsorted_median": ratio("data_table", "live_table", "median"),
            "unsorted_p99": ratio("data_table", "live_table", "p99"),
            "sorted_median": ratio("data_table_sorted", "live_table_sorted", "median"),
            "sorted_p99": ratio("data_table_sorted", "live_table_sorted", "p99"),
            "unsorted_cpu_median": ratio("data_table", "live_table", "median", "total_cpu_ms"),
            "sorted_cpu_median": ratio(
                "data_table_sorted", "live_table_sorted", "median", "total_cpu_ms"
            ),
            "load": round(results["data_table"]["load_ms"] / results["live_table"]["load_ms"], 1),
        },
    }


def _print_table(figures: dict[str, Any]) -> None:
    header = (
        f"{'scenario (ms; cpu = process time)':32} {'polls':>5} {'load':>6} {'apply med':>9} "
        f"{'frame med':>9} {'total med':>9} {'total p99':>9} {'cpu med':>8} {'cpu p99':>8} "
        f"{'bytes/frame':>11} {'gc polls':>8} {'p99 no gc':>9}"
    )
    print()
    print(
        f"{figures['rows']:,} rows, {figures['changes_per_diff']:,} changed per diff, "
        f"{figures['size'][0]}x{figures['size'][1]}, textual {figures['textual']}"
    )
    print(header)
    print("-" * len(header))
    for name, result in figures["scenarios"].items():
        quiet = result["gc"]["total_ms_polls_without_gc"]
        print(
            f"{name:32} {result['polls']:>5} {result['load_ms']:>6.0f} "
            f"{result['apply_ms']['median']:>9.2f} "
            f"{result['frame_ms']['median']:>9.2f} {result['total_ms']['median']:>9.2f} "
            f"{result['total_ms']['p99']:>9.2f} {result['total_cpu_ms']['median']:>8.2f} "
            f"{result['total_cpu_ms']['p99']:>8.2f} {result['frame_bytes_median']:>11,} "
            f"{result['gc']['polls_with_gc']:>8} "
            f"{'—' if quiet is None else format(quiet['p99'], '.2f'):>9}"
        )
    ratios = figures["ratios"]
    print()
    print(
        f"DataTable / LiveTable, total per diff: unsorted {ratios['unsorted_median']}x median, "
        f"{ratios['unsorted_p99']}x p99; sorted {ratios['sorted_median']}x median, "
        f"{ratios['sorted_p99']}x p99; initial load {ratios['load']}x"
    )
    print(
        f"DataTable / LiveTable, CPU per diff: unsorted {ratios['unsorted_cpu_median']}x median, "
        f"sorted {ratios['sorted_cpu_median']}x median"
    )
    print(
        "gc polls: polls during which a garbage collection ran; p99 no gc: p99 of the other polls"
    )


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark, print the table and write the JSON results."""
    parser = argparse.ArgumentParser(description="LiveTable against DataTable, 20,000 rows")
    parser.add_argument("--iterations", type=int, default=ITERATIONS, help="LiveTable polls")
    parser.add_argument(
        "--baseline-iterations", type=int, default=BASELINE_ITERATIONS, help="DataTable polls"
    )
    args = parser.parse_args(argv)
    print(f"LiveTable vs DataTable: {len(SCENARIOS)} scenarios, this takes a few minutes…")
    figures = asyncio.run(run(args.iterations, args.baseline_iterations))
    _print_table(figures)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
