"""A hostile client name, through the real app on a real pty: shown literally, never obeyed."""

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
from pathlib import Path

import pytest

from risk_tui.sim.app import SimState
from risk_tui.sim.seed import SEED_ACCOUNT, seed_book
from tests.threaded_sim import serve_in_thread
from tests.waiting import read_until

# One hostile name per account: the Client column is narrow, and each must be seen whole.
HOSTILE = {
    SEED_ACCOUNT: "[b]bold[/b][link=x]y",
    "H2001": "\x1b]8;;http://evil\x1b\\click",
    "U3001": "\x1b[2J\x9b31m\x07\u202etxt",
}
ANSI = re.compile(r"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[@-_]")


@pytest.fixture
def hostile_feed() -> Iterator[str]:
    book = seed_book()
    for account in book["accounts"]:
        account["client_name"] = HOSTILE.get(account["account_id"], account["client_name"])
    yield from serve_in_thread(SimState(book=book, tick_interval=None))


@pytest.mark.parametrize("term", ["xterm-256color", "xterm"])
def test_hostile_name_reaches_the_terminal_inert(
    hostile_feed: str, tmp_path: Path, term: str
) -> None:
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RISK_TUI_", "TEXTUAL"))}
    env.update(TERM=term, XDG_STATE_HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "risk_tui",
            "run",
            "--feed-url",
            hostile_feed,
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
        # Every read waits in select() for the time left: a deadline holds even when the
        # app stops writing (a bare os.read would block for ever).
        shown = read_until(
            leader,
            lambda out: b"[b]bold[/b]" in out and b"click" in out and b"txt" in out,
            seconds=20,
            what="the three hostile names on the screen",
        )
        time.sleep(0.5)  # let the frame finish before asking to quit
        os.write(leader, b"q")
        rest = read_until(leader, seconds=10, what="the app quitting and closing its terminal")
    finally:
        if process.poll() is None:
            process.kill()
        os.close(leader)
    assert process.wait(5) == 0
    text = (shown + rest).decode("utf-8", "replace")

    visible = ANSI.sub("", text)
    assert "[b]bold[/b][link=x]y" in visible  # markup shown, not applied
    assert "␛]8;;http://evil␛\\click" in visible  # the OSC 8 link shown as inert pictures
    assert "␛[2J⟨9B⟩31m␇⟨U+202E⟩txt" in visible
    # None of it reached the terminal as a control sequence.
    assert not any("evil" in m.group(0) for m in ANSI.finditer(text))
    assert "\u009b" not in text
    assert "\u202e" not in text
    assert "\x07" not in visible
