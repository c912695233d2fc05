"""Benchmark: bytes the desk writes to a real terminal per second, 120×40, warnings tab live.

Run as `.venv/bin/python -m benchmarks.terminal_bytes [--accounts 20000] [--window 60]`
(about four minutes: three windows plus start-ups). Needs `tmux`. Prints a table and
writes `benchmarks/results/terminal_bytes.json`.

What runs, each in its own detached tmux session of exactly 120×40 (status line off, on
a private server socket `tmux -L bench-terminal-bytes-<pid>`, killed afterwards), with
TERM=xterm-256color and a throwaway working directory, SQLite file and XDG directories:

1. `crash-day`: `risk-tui sim --scenario selloff --accounts N` (started here, outside
   tmux, ticking once a second) and `risk-tui run --feed-url … --db sqlite…` in tmux:
   the real CLI polling at its default interval (1 s), the Real-time warnings tab shown.
2. `demo`: `risk-tui demo`, the built-in crash-scenario simulator on its small book.
3. `htop` (the baseline, a familiar always-live terminal program) in the same-size
   session for the same window, if `htop` is on PATH; otherwise reported as "htop not
   installed" and skipped.

How bytes are counted: `tmux pipe-pane -o 'cat >> FILE'` copies everything the program
writes to its terminal (Textual writes its output on stderr, which is the pane's
terminal: nothing is redirected). The program is held at a start gate until the pipe is
attached, so the file holds every byte from its first. The window starts once the first
screen is up (for the desk: the banner says LIVE and the summary counts the calls) plus
a settling delay, and the file's size is read every second; bytes/s = bytes in the
window / its length. The window's bytes are also attributed to screen rows (by the
cursor-position sequences Textual writes before each changed stretch), which names what
is being repainted every second.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

COLUMNS, LINES = 120, 40
ACCOUNTS = 20_000
WINDOW = 60.0
SETTLE = 5.0
"""Seconds after the first screen before the window opens (start-up repaints done)."""
TARGET_BYTES_PER_S = 5 * 1024
START_TIMEOUT = 240.0
RESULTS = Path(__file__).parent / "results" / "terminal_bytes.json"
ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
CURSOR_TO = re.compile(rb"\x1b\[(\d+);(\d+)H")
SIM_BANNER = re.compile(r"serving FEED\.md at (http://\S+)")


def _tmux(socket: str, *args: str, check: bool = True) -> str:
    result = subprocess.run(
        ["tmux", "-L", socket, *args], capture_output=True, text=True, check=check
    )
    return result.stdout


class Session:
    """One detached tmux session running `command` at 120×40, its output piped to a file."""

    def __init__(self, socket: str, workdir: Path, name: str, command: list[str]) -> None:
        self.socket = socket
        self.workdir = workdir
        self.name = name
        self.capture = workdir / f"{name}.bytes"
        self.gate = workdir / f"{name}.go"
        self.command = command

    def start(self) -> None:
        config = self.workdir / "tmux.conf"
        config.write_text(
            'set -g status off\nset -g default-terminal "xterm-256color"\n'
            "set -g remain-on-exit on\n",
            encoding="utf-8",
        )
        env = _clean_env(self.workdir)
        exports = " ".join(f"{key}={shlex.quote(value)}" for key, value in env.items())
        # Held at the gate until the pipe is attached: no byte goes uncounted.
        script = (
            f"while [ ! -e {shlex.quote(str(self.gate))} ]; do sleep 0.05; done; "
            f"cd {shlex.quote(str(self.workdir))} && exec env -i {exports} "
            + " ".join(shlex.quote(part) for part in self.command)
        )
        _tmux(
            self.socket,
            "-f",
            str(config),
            "new-session",
            "-d",
            "-s",
            self.name,
            "-x",
            str(COLUMNS),
            "-y",
            str(LINES),
            "sh",
            "-c",
            script,
        )
        self.capture.touch()
        _tmux(
            self.socket,
            "pipe-pane",
            "-o",
            "-t",
            self.name,
            f"cat >> {shlex.quote(str(self.capture))}",
        )
        self.gate.touch()

    def screen(self) -> str:
        """The pane's current text."""
        return _tmux(self.socket, "capture-pane", "-p", "-t", self.name, check=False)

    def size(self) -> int:
        return self.capture.stat().st_size

    def pane_size(self) -> tuple[int, int]:
        out = _tmux(
            self.socket, "display-message", "-p", "-t", self.name, "#{pane_width} #{pane_height}"
        )
        width, height = out.split()
        return int(width), int(height)

    def dead(self) -> bool:
        out = _tmux(
            self.socket, "display-message", "-p", "-t", self.name, "#{pane_dead}", check=False
        )
        return out.strip() == "1"


def _clean_env(workdir: Path) -> dict[str, str]:
    """A minimal environment: no RISK_TUI_* or TEXTUAL* settings of the caller leak in."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "TERM": "xterm-256color",
        "COLORTERM": "",
        "XDG_CONFIG_HOME": str(workdir / "config"),
        "XDG_DATA_HOME": str(workdir / "data"),
        "XDG_STATE_HOME": str(workdir / "state"),
        "XDG_CACHE_HOME": str(workdir / "cache"),
        "PYTHONUNBUFFERED": "1",
    }
    return env


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{what}: not within {timeout:.0f}s")
        time.sleep(0.2)
    return time.monotonic() - started


def _rows_of(data: bytes) -> Counter[int]:
    """Bytes written after each cursor-position sequence, by the screen row it moved to."""
    rows: Counter[int] = Counter()
    row = 0  # bytes before the first move in the window
    position = 0
    for match in CURSOR_TO.finditer(data):
        rows[row] += match.start() - position
        row = int(match.group(1))
        position = match.start()
    rows[row] += len(data) - position
    return rows


def _measure(session: Session, ready: Callable[[str], bool], window: float) -> dict[str, Any]:
    """Start the session, wait for its first screen, then count bytes over `window` s."""
    started = time.monotonic()
    session.start()
    first_screen = _wait(
        lambda: session.dead() or ready(session.screen()), START_TIMEOUT, session.name
    )
    if session.dead():
        raise RuntimeError(f"{session.name} exited early:\n{session.screen()}")
    time.sleep(SETTLE)
    width, height = session.pane_size()
    begin = session.size()
    per_second: list[int] = []
    previous = begin
    window_started = time.monotonic()
    for second in range(1, int(window) + 1):
        time.sleep(max(0.0, window_started + second - time.monotonic()))
        now = session.size()
        per_second.append(now - previous)
        previous = now
    elapsed = time.monotonic() - window_started
    end = session.size()
    screen = session.screen()
    with session.capture.open("rb") as capture:
        capture.seek(begin)
        data = capture.read(end - begin)
    lines = screen.splitlines()
    by_row = [
        {
            "row": row,
            "bytes_per_s": round(count / elapsed, 1),
            "shows": lines[row - 1][:60].rstrip() if 0 < row <= len(lines) else "",
        }
        for row, count in _rows_of(data).most_common(8)
    ]
    return {
        "pane": [width, height],
        "first_screen_s": round(first_screen, 1),
        "startup_bytes": begin,
        "window_s": round(elapsed, 1),
        "window_bytes": end - begin,
        "bytes_per_s": round((end - begin) / elapsed, 1),
        "per_second": {
            "median": statistics.median(per_second),
            "max": max(per_second),
            "min": min(per_second),
        },
        "top_rows": by_row,
        "since_start_s": round(time.monotonic() - started, 1),
        "last_screen": lines,
    }


@contextlib.contextmanager
def _tmux_server() -> Iterator[str]:
    socket = f"bench-terminal-bytes-{os.getpid()}"
    try:
        yield socket
    finally:
        _tmux(socket, "kill-server", check=False)


@contextlib.contextmanager
def _simulator(accounts: int, workdir: Path) -> Iterator[tuple[str, float]]:
    """`risk-tui sim --scenario selloff` on a free port; yields its URL and build time."""
    log = (workdir / "sim.log").open("w", encoding="utf-8")
    env = {**_clean_env(workdir), "TERM": "dumb"}
    started = time.monotonic()
    process = subprocess.Popen(
        [
            str(VENV_BIN / "risk-tui"),
            "sim",
            "--scenario",
            "selloff",
            "--accounts",
            str(accounts),
            "--port",
            "0",
            "--tick-interval",
            "1",
        ],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = SIM_BANNER.search(line)
        if match is None:
            raise RuntimeError(f"the simulator did not start: {line!r}, see {log.name}")
        yield match.group(1), time.monotonic() - started
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _desk_ready(screen: str) -> bool:
    """The desk's first screen of figures: live, and the summary counts the calls."""
    return "LIVE" in screen and re.search(r"\b[1-9][\d,]* calls\b", screen) is not None


def _summary_calls(screen: list[str]) -> int | None:
    for line in screen:
        match = re.search(r"\b([\d,]+) calls\b", line)
        if match:
            return int(match.group(1).replace(",", ""))
    return None


def run(
    accounts: int = ACCOUNTS, window: float = WINDOW, demo: bool = True, baseline: bool = True
) -> dict[str, Any]:
    """Measure the crash-day desk, the demo and htop; return the figures."""
    if shutil.which("tmux") is None:
        raise RuntimeError("tmux is needed for this benchmark")
    risk_tui = str(VENV_BIN / "risk-tui")
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-terminal-bytes-") as tmp, _tmux_server() as sock:
        workdir = Path(tmp)
        print(f"  crash-day: simulator with {accounts:,} accounts…", flush=True)
        with _simulator(accounts, workdir) as (url, built):
            session = Session(
                sock,
                workdir,
                "crash-day",
                [
                    risk_tui,
                    "run",
                    "--feed-url",
                    url,
                    "--db",
                    f"sqlite+aiosqlite:///{workdir / 'desk.db'}",
                    "--operator",
                    "bench",
                ],
            )
            crash = _measure(session, _desk_ready, window)
            crash["accounts"] = accounts
            crash["simulator_built_s"] = round(built, 1)
            crash["open_calls_shown"] = _summary_calls(crash["last_screen"])
            results["crash_day"] = crash
            _tmux(sock, "kill-session", "-t", "crash-day", check=False)
        print(f"  crash-day: {crash['bytes_per_s']:,.0f} B/s", flush=True)
        if demo:
            session = Session(sock, workdir, "demo", [risk_tui, "demo", "--operator", "bench"])
            results["demo"] = _measure(session, _desk_ready, window)
            results["demo"]["open_calls_shown"] = _summary_calls(results["demo"]["last_screen"])
            _tmux(sock, "kill-session", "-t", "demo", check=False)
            print(f"  demo: {results['demo']['bytes_per_s']:,.0f} B/s", flush=True)
        htop = shutil.which("htop")
        if not baseline:
            results["htop"] = {"skipped": "not asked for"}
        elif htop is None:
            results["htop"] = {"skipped": "htop not installed"}
            print("  htop not installed: no baseline", flush=True)
        else:
            session = Session(sock, workdir, "htop", [htop])
            results["htop"] = _measure(session, lambda screen: "Load average" in screen, window)
            _tmux(sock, "kill-session", "-t", "htop", check=False)
            print(f"  htop: {results['htop']['bytes_per_s']:,.0f} B/s", flush=True)
    crash_rate = results["crash_day"]["bytes_per_s"]
    htop_rate = results["htop"].get("bytes_per_s")
    return {
        "size": [COLUMNS, LINES],
        "term": "xterm-256color",
        "window_s": window,
        "settle_s": SETTLE,
        "target_bytes_per_s": TARGET_BYTES_PER_S,
        "python": sys.version.split()[0],
        "tmux": _tmux_version(),
        "method": (
            "tmux pipe-pane -o of a detached 120x40 session (status off), program held at a "
            "gate until the pipe is attached; bytes in a window after the first screen"
        ),
        "results": results,
        "crash_day_bytes_per_s": crash_rate,
        "met": crash_rate <= TARGET_BYTES_PER_S,
        "ratio_to_htop": round(crash_rate / htop_rate, 2) if htop_rate else None,
    }


def _tmux_version() -> str:
    result = subprocess.run(["tmux", "-V"], capture_output=True, text=True, check=False)
    return result.stdout.strip()


def _print_table(figures: dict[str, Any]) -> None:
    print()
    print(
        f"Bytes written to the terminal, {figures['size'][0]}x{figures['size'][1]} "
        f"{figures['term']}, {figures['window_s']:.0f} s window after the first screen "
        f"(+{figures['settle_s']:.0f} s settle); target ≤ {figures['target_bytes_per_s']:,} B/s"
    )
    header = (
        f"{'program':34} {'bytes/s':>9} {'median/s':>9} {'max/s':>8} {'start-up B':>11} "
        f"{'first screen':>12}"
    )
    print(header)
    print("-" * len(header))
    labels = {
        "crash_day": "risk-tui run (selloff, {accounts:,} acc.)",
        "demo": "risk-tui demo",
        "htop": "htop (baseline)",
    }
    for name, result in figures["results"].items():
        label = labels[name].format(accounts=result.get("accounts", 0))
        if "skipped" in result:
            print(f"{label:34} {result['skipped']}")
            continue
        print(
            f"{label:34} {result['bytes_per_s']:>9,.0f} {result['per_second']['median']:>9,} "
            f"{result['per_second']['max']:>8,} {result['startup_bytes']:>11,} "
            f"{result['first_screen_s']:>11.1f}s"
        )
    for name in ("crash_day", "demo"):
        result = figures["results"].get(name)
        if not result or "top_rows" not in result:
            continue
        print(
            f"\n{name}: bytes/s by screen row (what is repainted), "
            f"{result.get('open_calls_shown')} calls shown"
        )
        for row in result["top_rows"]:
            print(f"  row {row['row']:>2} {row['bytes_per_s']:>8,.1f}  {row['shows']}")
    verdict = "met" if figures["met"] else "NOT met"
    ratio = figures["ratio_to_htop"]
    print(
        f"\ncrash-day desk: {figures['crash_day_bytes_per_s']:,.0f} B/s, target {verdict}"
        + (f"; {ratio}x htop" if ratio is not None else "; no htop baseline")
    )


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark, print the table and write the JSON results."""
    parser = argparse.ArgumentParser(description="terminal bytes per second, 120x40")
    parser.add_argument("--accounts", type=int, default=ACCOUNTS, help="simulated accounts")
    parser.add_argument("--window", type=float, default=WINDOW, help="seconds measured")
    parser.add_argument("--no-demo", action="store_true", help="skip the demo measurement")
    args = parser.parse_args(argv)
    print(f"Terminal bytes per second, {COLUMNS}x{LINES}: a few minutes…", flush=True)
    figures = run(args.accounts, args.window, demo=not args.no_demo)
    _print_table(figures)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
