"""Benchmark: start-up to first paint of the last known state, and the desk's memory.

Run as `.venv/bin/python -m benchmarks.startup [--accounts 200000]`. Needs `tmux`.
Prints a table and writes `benchmarks/results/startup.json`.

The desk's last known state is the SQLite file `benchmarks.engine_poll --keep-db` leaves
behind at the same size (made first, if missing: a crash day's open calls, every
snapshot, and the cached book). Then, in a detached tmux session of 120×40 with
TERM=xterm-256color, the real command `risk-tui run --db <that file>` with a feed URL
nothing listens on (so what the operator sees can only come from the stored state):

- `first paint`: from launching the process to the pane showing the oldest open call's
  row (read from the file beforehand), polled every 10 ms with `tmux capture-pane`;
- `baseline`: the same command on an empty desk file, to its first screen (the tabs):
  what Python, the imports and Textual cost before any state is read;
- memory: the process's resident set (VmRSS) sampled every second until it stays within
  1 % for 10 s (the cached book read and its columns built), its last value and peak.

Each start is run `RUNS` times; medians are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results" / "startup.json"
RUNS = 3
DEAD_FEED = "http://127.0.0.1:9"  # the discard port: nothing answers
MIB = 2**20


def _tmux(socket: str, *args: str) -> str:
    done = subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"tmux {args[0]}: {done.stderr.strip()}")
    return done.stdout


def _rss(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except FileNotFoundError:
        return None
    return None


def _oldest_open_call(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT account_id FROM calls WHERE state != 'ended' ORDER BY triggered_at, call_id"
            " LIMIT 1"
        ).fetchone()
    if row is None:
        raise SystemExit(f"{db} holds no open call")
    return str(row[0])


def _start(db: Path, home: Path, wait_for: str, *, memory: bool) -> dict[str, Any]:
    """Launch `risk-tui run` on `db` in tmux; time until `wait_for` is on the screen."""
    socket = f"bench-startup-{os.getpid()}-{time.monotonic_ns()}"
    env = {
        "TERM": "xterm-256color",
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_STATE_HOME": str(home / "state"),
        "PATH": os.environ.get("PATH", ""),
    }
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    command = (
        f"exec env -i {exports} {shlex.quote(str(ROOT / '.venv' / 'bin' / 'risk-tui'))} run "
        f"--db sqlite+aiosqlite:///{db} --feed-url {DEAD_FEED}"
    )
    started = time.perf_counter()
    _tmux(socket, "new-session", "-d", "-x", "120", "-y", "40", command)
    try:
        pid = int(_tmux(socket, "display-message", "-p", "#{pane_pid}").strip())
        screen = ""
        while time.perf_counter() - started < 120:
            screen = _tmux(socket, "capture-pane", "-p")
            if wait_for in screen:
                break
            time.sleep(0.01)
        else:
            raise RuntimeError(f"{wait_for!r} never showed; the screen:\n{screen}")
        shown_ms = (time.perf_counter() - started) * 1000
        figures: dict[str, Any] = {"shown_ms": round(shown_ms)}
        if memory:
            samples: list[int] = []
            while time.perf_counter() - started < 240:
                rss = _rss(pid)
                if rss is None:
                    break
                samples.append(rss)
                recent = samples[-10:]
                if len(recent) == 10 and max(recent) <= min(recent) * 1.01:
                    break
                time.sleep(1.0)
            figures["rss_mib"] = round(samples[-1] / MIB) if samples else None
            figures["peak_rss_mib"] = round(max(samples) / MIB) if samples else None
            figures["settled_s"] = round(time.perf_counter() - started, 1)
        return figures
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], check=False, capture_output=True)


def run(accounts: int, db: Path | None) -> dict[str, Any]:
    if shutil.which("tmux") is None:
        raise SystemExit("tmux is not installed")
    results = Path(__file__).parent / "results"
    results.mkdir(parents=True, exist_ok=True)
    db = db or results / f"desk-{accounts}.db"
    if not db.exists():
        print(f"making the {accounts:,}-account desk file {db} (engine_poll)…", flush=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.engine_poll",
                "--accounts",
                str(accounts),
                "--polls",
                "3",
                "--keep-db",
                str(db),
                "--out",
                str(results / "startup-desk.json"),
            ],
            check=True,
            cwd=ROOT,
        )
    account = _oldest_open_call(db)
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        empty = home / "empty.db"
        first: list[dict[str, Any]] = []
        base: list[dict[str, Any]] = []
        for number in range(RUNS):
            print(f"start {number + 1}/{RUNS}…", flush=True)
            base.append(_start(empty, home, "Real-time warnings", memory=False))
            first.append(_start(db, home, account, memory=number == 0))
    return {
        "benchmark": "startup",
        "accounts": accounts,
        "db_mib": round(db.stat().st_size / MIB),
        "first_paint_ms": round(statistics.median(r["shown_ms"] for r in first)),
        "first_paint_runs_ms": [r["shown_ms"] for r in first],
        "baseline_empty_desk_ms": round(statistics.median(r["shown_ms"] for r in base)),
        "rss_mib": first[0].get("rss_mib"),
        "peak_rss_mib": first[0].get("peak_rss_mib"),
        "settled_s": first[0].get("settled_s"),
    }


def _print(figures: dict[str, Any]) -> None:
    print()
    print(f"start-up, {figures['accounts']:,} accounts (desk file {figures['db_mib']} MiB)")
    print(
        f"  first paint of the last known state  {figures['first_paint_ms']:>7} ms "
        f"(runs {figures['first_paint_runs_ms']})"
    )
    print(f"  baseline: an empty desk's first screen {figures['baseline_empty_desk_ms']:>5} ms")
    print(
        f"  memory once settled ({figures['settled_s']} s): RSS {figures['rss_mib']} MiB, "
        f"peak {figures['peak_rss_mib']} MiB"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--accounts", type=int, default=200_000)
    parser.add_argument("--db", type=Path, help="a desk file from engine_poll --keep-db")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    figures = run(args.accounts, args.db)
    _print(figures)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\nwritten {args.out}")


if __name__ == "__main__":
    main()
