"""Issue 14 point 6: under NO_COLOR (and at 16 or 256 colours) the most urgent rows are the
most visible ones, by weight, never dim.

The real app runs on a pseudo-terminal, and the test reads the bytes it writes, as
`tmux pipe-pane` would: every place "FORCE" is drawn must be bold or reverse video and
never dim (SGR 2) or dark grey (SGR 90). Seen before: under NO_COLOR a FORCE CALL cell
was `ESC[1;90m`, dimmer than the ordinary rows (`97`); so was INCOMPLETE (bold magenta).
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from risk_tui.sim.app import SimState
from risk_tui.sim.seed import seed_book
from tests.threaded_sim import serve_in_thread
from tests.waiting import read_until

SGR = re.compile(rb"\x1b\[([0-9;:]*)m")
OTHER_ESCAPE = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-ln-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)")
LEVEL_WORD = b"FORCE"
DARK_GREYS = {"30", "90", "38;5;0", "38;5;8", "38;5;16", *(f"38;5;{n}" for n in range(232, 244))}


@dataclass(frozen=True)
class Pen:
    """The terminal's text attributes as the SGR sequences so far left them."""

    bold: bool = False
    dim: bool = False
    reverse: bool = False
    foreground: str = "default"  # "90", "97", "38;5;n", "38;2;r;g;b", …


def apply_sgr(pen: Pen, params: str) -> Pen:
    """`pen` after one SGR sequence (`ESC[…m`)."""
    codes = [code for code in params.replace(":", ";").split(";")]
    index = 0
    while index < len(codes):
        code = int(codes[index] or 0)
        if code == 0:
            pen = Pen()
        elif code == 1:
            pen = replace(pen, bold=True)
        elif code == 2:
            pen = replace(pen, dim=True)
        elif code == 22:
            pen = replace(pen, bold=False, dim=False)
        elif code == 7:
            pen = replace(pen, reverse=True)
        elif code == 27:
            pen = replace(pen, reverse=False)
        elif code == 39:
            pen = replace(pen, foreground="default")
        elif 30 <= code <= 37 or 90 <= code <= 97:
            pen = replace(pen, foreground=str(code))
        elif code in (38, 48):  # extended colour: 5;n or 2;r;g;b follow
            size = 2 if index + 1 < len(codes) and codes[index + 1] == "5" else 4
            if code == 38:
                pen = replace(pen, foreground=";".join(codes[index : index + size + 1]))
            index += size
        index += 1
    return pen


def pens_of(output: bytes, word: bytes) -> list[Pen]:
    """The attributes each occurrence of `word` was drawn with."""
    pens: list[Pen] = []
    pen = Pen()
    position = 0
    for match in SGR.finditer(output):
        # The text drawn since the last SGR (cursor moves aside), all in one pen.
        run = OTHER_ESCAPE.sub(b"", output[position : match.start()])
        pens.extend(pen for _ in range(run.count(word)))
        pen = apply_sgr(pen, match.group(1).decode())
        position = match.end()
    return pens


def test_the_sgr_tracker_reads_bold_dim_reverse_and_colours() -> None:
    """The helper the pty test relies on (so that test can fail for the right reason)."""
    output = b"\x1b[1;90mFORCE\x1b[0m \x1b[38;2;1;2;3;7mFORCE\x1b[0m\x1b[2mFORCE"
    assert pens_of(output, LEVEL_WORD) == [
        Pen(bold=True, foreground="90"),
        Pen(reverse=True, foreground="38;2;1;2;3"),
    ]  # the last one is never closed by another SGR: not counted
    assert apply_sgr(Pen(bold=True), "22") == Pen()


@pytest.fixture
def seed_feed() -> Iterator[str]:
    yield from serve_in_thread(SimState(book=seed_book(), tick_interval=None))


@pytest.mark.parametrize(
    ("term", "no_color"),
    [("xterm", True), ("xterm-256color", True), ("xterm", False), ("xterm-256color", False)],
)
def test_force_rows_are_bold_or_reverse_never_dim(
    seed_feed: str, tmp_path: Path, term: str, no_color: bool
) -> None:
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RISK_TUI_", "TEXTUAL", "NO_COLOR", "COLORTERM", "FORCE_COLOR"))
    }
    env.update(TERM=term, XDG_STATE_HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path))
    if no_color:
        env["NO_COLOR"] = "1"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "risk_tui",
            "run",
            "--feed-url",
            seed_feed,
            "--db",
            f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}",
            "--operator",
            "someone",
        ],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        close_fds=True,
    )
    os.close(follower)
    try:
        shown = read_until(
            leader,
            lambda out: b"U3001" in out and bool(pens_of(out, LEVEL_WORD)),
            seconds=20,
            what="a FORCE row (U3001) on the screen",
        )
        # The cursor starts on the most urgent row, and the cursor's colours go over a
        # row's own: move it off, so the FORCE row is drawn as any other row is.
        os.write(leader, b"\x1b[B")
        moved = read_until(
            leader,
            lambda out: bool(pens_of(out, LEVEL_WORD)),
            seconds=10,
            what="the FORCE row drawn again without the cursor",
        )
        time.sleep(0.5)  # let the frame finish before asking to quit
        os.write(leader, b"q")
        rest = read_until(leader, seconds=10, what="the app quitting and closing its terminal")
    finally:
        if process.poll() is None:
            process.kill()
        os.close(leader)
    assert process.wait(5) == 0
    pens = pens_of(moved + rest, LEVEL_WORD)
    # INCOMPLETE (I7001: no price) is not safe: never dimmer than an ordinary row either.
    incomplete = pens_of(shown + moved + rest, b"INCOMPLETE")
    assert pens
    assert incomplete
    for pen in pens + incomplete:
        assert not pen.dim, pen
        assert pen.foreground not in DARK_GREYS, pen  # dimmer than the ordinary rows
        assert pen.bold or pen.reverse, pen
