"""Issue 14's "done when": every tab, the details and each dialog at 80×24, 120×40 and
200×50, in 256 colours and under NO_COLOR (tests/ui/screen_matrix.py takes the shots);
snapshots of each, and what must hold on every one of them.

`pytest tests/ui/test_snapshots.py --snapshot-update` regenerates the SVGs; read the text
of a changed one with `grep -o '<text[^>]*>[^<]*</text>' F.svg | sed 's/<[^>]*>//g'`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from pytest_textual_snapshot import SVGImageExtension  # type: ignore[import-untyped]
from rich._palettes import EIGHT_BIT_PALETTE
from rich.cells import cell_len
from syrupy.assertion import SnapshotAssertion

from risk_tui.app import RiskApp
from tests.threaded_sim import serve_in_thread
from tests.ui import screen_matrix as sm
from tests.ui.screen_matrix import COLOURS, SIZES, Run, matrix, size_id
from tests.ui.test_shorts import seed_recall_sim

# The 12 app runs (see screen_matrix) cost ~75 s of CPU, ~2m20s wall on 2 shared CPUs (508
# tests, 144 SVGs): in `make test`, not in test-fast.
pytestmark = pytest.mark.slow


@pytest.fixture
def seed_feed() -> Iterator[str]:
    """Overrides conftest's: the seed desk plus the RECALL change (a short to recall)."""
    yield from serve_in_thread(seed_recall_sim())


ShotsOf = Callable[[str, tuple[int, int], str], Awaitable[Run]]


@pytest.fixture
def shots(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> ShotsOf:
    """The matrix's runs, taken with this test's desk the first time one is asked for
    (the desk, `fixed_app`, is started only then: most tests read a run already taken)."""

    async def run(screen: str, size: tuple[int, int], colours: str) -> Run:
        group = sm.GROUP_OF[screen]
        taken = sm.taken(group, size, colours)
        if taken is not None:
            return taken
        fixed_app: Callable[..., RiskApp] = request.getfixturevalue("fixed_app")
        return await sm.shots(group, size, colours, fixed_app, tmp_path / "desk.db", monkeypatch)

    return run


def ids(case: tuple[str, tuple[int, int], str]) -> str:
    screen, size, colours = case
    return f"{screen}-{size_id(size)}-{colours}"


# --- snapshots -----------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(matrix()), ids=[ids(c) for c in matrix()])
async def test_snapshot(
    case: tuple[str, tuple[int, int], str], shots: ShotsOf, snapshot: SnapshotAssertion
) -> None:
    screen, size, colours = case
    shot = (await shots(screen, size, colours)).shots[screen]
    svg = snapshot.use_extension(SVGImageExtension)
    if svg == shot.svg:
        return
    # syrupy's diff of two SVGs is unreadable: say what changed on the screen.
    recalled = next(iter(svg.executions.values())).recalled_data if svg.executions else None
    stored, now = sm.svg_lines(str(recalled or "")), sm.svg_lines(shot.svg)
    diff = "\n".join(difflib.unified_diff(stored, now, "stored", "now", lineterm=""))
    pytest.fail(f"{screen} at {size_id(size)} in {colours} changed:\n{diff or '(colours only)'}")


# --- what every screen shows -----------------------------------------------------------------

CUT_FIGURE = re.compile(r"\d[.,]?…")  # "252,164.…", "1,0…": a figure cut by an ellipsis

# The screens that cut a figure today, and the work that is to stop it.
CUT_TODAY: dict[tuple[str, tuple[int, int]], str] = {}


def test_a_cut_figure_is_told_from_a_cut_word() -> None:
    for cut in ("Call amount now 252,164.…", "at trigger 450,412…", "USD 1,0…", "12.…"):
        assert CUT_FIGURE.search(cut), cut
    for whole in ("SGD 1,015.00", "Tan Mei…", "Call amou…", "2d 00h 29m left", "1 Warn…"):
        assert not CUT_FIGURE.search(whole), whole


def cut_marks(case: tuple[str, tuple[int, int], str]) -> pytest.MarkDecorator | tuple[()]:
    screen, size, _ = case
    reason = CUT_TODAY.get((screen, size))
    return pytest.mark.xfail(strict=True, reason=reason) if reason else ()


@pytest.mark.parametrize(
    "case", [pytest.param(c, id=ids(c), marks=cut_marks(c)) for c in matrix()]
)
async def test_no_figure_is_cut(case: tuple[str, tuple[int, int], str], shots: ShotsOf) -> None:
    """A figure is shown whole or not at all: no digit runs into an ellipsis."""
    screen, size, colours = case
    lines = (await shots(screen, size, colours)).shots[screen].lines
    cut = [line.strip() for line in lines if CUT_FIGURE.search(line)]
    assert not cut, f"{screen} at {size_id(size)} cuts a figure:\n" + "\n".join(cut)


@pytest.mark.parametrize("size", SIZES, ids=size_id)
@pytest.mark.parametrize("screen", sm.SCREENS)
async def test_the_screen_text_is_the_terminal_frame(
    screen: str, size: tuple[int, int], shots: ShotsOf
) -> None:
    """`screen_lines` reads the whole frame: one line per row, each exactly as wide."""
    lines = (await shots(screen, size, "256")).shots[screen].lines
    assert len(lines) == size[1]
    assert {cell_len(line) for line in lines} == {size[0]}
    if screen == "kill-switch":  # a dialog over the list: both are on the screen
        assert any("ENGAGE KILL SWITCH" in line for line in lines)
        assert any("operator sup1" in line for line in lines)


@pytest.mark.parametrize("size", SIZES, ids=size_id)
@pytest.mark.parametrize("screen", sm.SCREENS)
async def test_no_color_screens_are_grey(
    screen: str, size: tuple[int, int], shots: ShotsOf
) -> None:
    """Under NO_COLOR the SVG holds greys only: the NO_COLOR shots show what such a
    terminal shows (and the same screen in 256 colours shows colour: see below)."""
    svg = (await shots(screen, size, "nocolor")).shots[screen].svg
    coloured = {c for c in svg_colours(svg) if len(set(c)) > 1}
    assert not coloured, f"{screen} at {size_id(size)} under NO_COLOR: {sorted(coloured)}"


@pytest.mark.parametrize("size", SIZES, ids=size_id)
@pytest.mark.parametrize("screen", sm.SCREENS)
async def test_256_colour_screens_use_the_256_colours(
    screen: str, size: tuple[int, int], shots: ShotsOf
) -> None:
    """In 256 colours no truecolor is left: every colour is one of xterm's 256."""
    svg = (await shots(screen, size, "256")).shots[screen].svg
    palette = {tuple(EIGHT_BIT_PALETTE[n]) for n in range(256)}
    theme = {tuple(sm.XTERM.background_color), tuple(sm.XTERM.foreground_color)}
    assert svg_colours(svg) <= palette | theme


async def test_256_colour_screens_have_colour(shots: ShotsOf) -> None:
    svg = (await shots("tab-warnings", (80, 24), "256")).shots["tab-warnings"].svg
    assert any(len(set(c)) > 1 for c in svg_colours(svg))


def svg_colours(svg: str) -> set[tuple[int, int, int]]:
    """The colours of the terminal's text and backgrounds (not the window's buttons)."""
    found = re.findall(r"fill: #([0-9a-f]{6})|<rect fill=\"#([0-9a-f]{6})\"", svg)
    hexes = {a or b for a, b in found}
    assert hexes, "no colours found: has Rich's SVG changed?"
    return {(int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)) for h in hexes}


@pytest.mark.parametrize("colours", COLOURS)
async def test_every_call_amount_is_on_the_first_screen_at_80x24(
    colours: str, shots: ShotsOf
) -> None:
    """Tab 1 at 80×24, as it opens: each row's call amount, with its currency, on the row."""
    run = await shots("tab-warnings", (80, 24), colours)
    lines = run.shots["tab-warnings"].lines
    rows = {
        account: next((line for line in lines if f" {account} " in f" {line} "), None)
        for account in run.call_amounts
    }
    shown = {account: line for account, line in rows.items() if line is not None}
    assert len(shown) >= 3, f"the calls' rows are not on the screen: {rows}"
    missing = [
        f"{account}: {currency} {amount} not in {line.strip()!r}"
        for account, line in shown.items()
        for amount, currency in [run.call_amounts[account]]
        if amount not in line or currency not in line
    ]
    assert not missing, "\n".join(missing)
