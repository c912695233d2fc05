"""Terminal safety: hostile client names come out inert and visible, real names unchanged."""

from __future__ import annotations

import io
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from risk_tui.core.text import UNSAFE_CODE_POINTS, sanitize, sanitize_optional
from risk_tui.widgets.render import data_text

OSC8_LINK = "\x1b]8;;http://evil\x1b\\click\x1b]8;;\x1b\\"
CLEAR_SCREEN = "\x1b[2J\x1b[H"
C1_CSI = "\x9b31m"
BELL = "\x07"
BIDI_OVERRIDE = "abc\u202etxt.exe"
MARKUP = "[link=https://evil]x[/link] [b]bold[/b]"
CJK_NAME = "陳大文"

HOSTILE = [OSC8_LINK, CLEAR_SCREEN, C1_CSI, BELL, BIDI_OVERRIDE, MARKUP, CJK_NAME, "a\x00b"]

BIDI_AND_FORMAT = [
    0x061C,
    0x200E,
    0x200F,
    *range(0x202A, 0x202F),
    *range(0x2066, 0x206A),
    *range(0x200B, 0x200E),
    0x2060,
    0xFEFF,
]


def assert_inert(text: str) -> None:
    for char in text:
        code = ord(char)
        assert code > 0x1F, repr(text)  # no C0 control
        assert not 0x7F <= code <= 0x9F, repr(text)  # no DEL, no C1 control
        assert code not in BIDI_AND_FORMAT, repr(text)
        assert code not in UNSAFE_CODE_POINTS, repr(text)
    text.encode("utf-8")


def test_osc8_hyperlink() -> None:
    assert sanitize(OSC8_LINK) == "␛]8;;http://evil␛\\click␛]8;;␛\\"


def test_csi_clear_screen() -> None:
    assert sanitize(CLEAR_SCREEN) == "␛[2J␛[H"


def test_c1_csi() -> None:
    assert sanitize(C1_CSI) == "⟨9B⟩31m"
    assert sanitize("\x85\x80\x9f") == "⟨85⟩⟨80⟩⟨9F⟩"


def test_bell_nul_del_tab_newline() -> None:
    assert sanitize(BELL) == "␇"
    assert sanitize("a\x00b") == "a␀b"
    assert sanitize("\x7f") == "\u2421"
    assert sanitize("a\tb\r\nc") == "a␉b␍␊c"


def test_bidi_override() -> None:
    assert sanitize(BIDI_OVERRIDE) == "abc⟨U+202E⟩txt.exe"
    assert sanitize("\u2066x\u2069\u061c") == "⟨U+2066⟩x⟨U+2069⟩⟨U+061C⟩"


def test_invisible_format_characters() -> None:
    assert sanitize("ad\u200bmin\ufeff\u2060") == "ad⟨U+200B⟩min⟨U+FEFF⟩⟨U+2060⟩"


def test_lone_surrogate_becomes_encodable() -> None:
    broken = b"caf\xe9".decode("utf-8", errors="surrogateescape")
    assert sanitize(broken) == "caf⟨U+DCE9⟩"
    sanitize(broken).encode("utf-8")


def test_markup_and_cjk_are_unchanged() -> None:
    assert sanitize(MARKUP) == MARKUP
    assert sanitize(CJK_NAME) == CJK_NAME
    assert sanitize("Tan Ah Kow 陳亞九 (李)") == "Tan Ah Kow 陳亞九 (李)"


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_inert(name: str) -> None:
    assert_inert(sanitize(name))


def test_max_length() -> None:
    assert sanitize("abcdef", max_length=6) == "abcdef"
    assert sanitize("abcdefg", max_length=6) == "abcde…"
    # The limit applies to the result, stand-ins included.
    assert sanitize("\x1b\x1b\x1b", max_length=2) == "␛…"
    assert len(sanitize(BIDI_OVERRIDE, max_length=8)) == 8
    with pytest.raises(ValueError, match="max_length must be at least 1, got 0"):
        sanitize("x", max_length=0)


def test_sanitize_optional() -> None:
    assert sanitize_optional(None) == ""
    assert sanitize_optional("\x1b[H") == "␛[H"


UNSAFE_SAMPLE = sorted(UNSAFE_CODE_POINTS)[:: max(1, len(UNSAFE_CODE_POINTS) // 300)]
any_text = st.text(
    st.one_of(
        st.characters(codec=None, exclude_categories=()),  # surrogates included
        st.sampled_from([chr(code) for code in (*BIDI_AND_FORMAT, *range(0xA0), 0xD800)]),
        st.sampled_from([chr(code) for code in UNSAFE_SAMPLE]),
    )
)


@given(any_text)
def test_any_string_comes_out_inert(text: str) -> None:
    assert_inert(sanitize(text))


@given(any_text)
def test_sanitize_is_idempotent(text: str) -> None:
    once = sanitize(text)
    assert sanitize(once) == once


@given(any_text, st.integers(min_value=1, max_value=40))
def test_max_length_bounds_the_result(text: str, limit: int) -> None:
    result = sanitize(text, max_length=limit)
    assert len(result) <= limit
    assert_inert(result)


@given(st.text(st.characters(codec="utf-8")))
def test_clean_text_passes_through(text: str) -> None:
    if not any(ord(char) in UNSAFE_CODE_POINTS for char in text):
        assert sanitize(text) == text


# --- the renderer ------------------------------------------------------------------


def render(text: str | None, *, color: bool) -> str:
    out = io.StringIO()
    console = Console(
        file=out,
        force_terminal=True,
        color_system="truecolor" if color else None,
        width=200,
    )
    console.print(data_text(text, style="bold" if color else ""))
    return out.getvalue()


def test_data_text_is_not_parsed_as_markup() -> None:
    assert data_text("[b]x[/b]").plain == "[b]x[/b]"
    assert data_text(MARKUP).plain == MARKUP
    assert data_text(None).plain == ""
    assert data_text(CLEAR_SCREEN).plain == "␛[2J␛[H"
    assert data_text("x", style="red").style == "red"


def test_rendered_markup_is_literal_and_has_no_escape() -> None:
    output = render("[b]x[/b]", color=False)
    assert "[b]x[/b]" in output
    assert "\x1b" not in output


@pytest.mark.parametrize("name", HOSTILE)
def test_rendered_hostile_names_carry_no_escape(name: str) -> None:
    assert "\x1b" not in render(name, color=False)
    assert "\x9b" not in render(name, color=False)
    # With colour on, Rich's own SGR codes are the only escape sequences left.
    with_color = render(name, color=True)
    assert "\x1b" not in re.sub(r"\x1b\[[0-9;]*m", "", with_color)
    assert "\x1b]8" not in with_color
