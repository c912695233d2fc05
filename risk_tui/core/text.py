"""Terminal safety: the one place outside text (client names, remarks, errors) is made inert.

Feed and database strings can carry escape sequences that clear the screen, retitle
the window, plant hyperlinks or reorder what the operator reads (bidi overrides). Each
such code point is replaced by a visible stand-in, so the operator sees that something
was there and nothing reaches the terminal as a control. Everything else, CJK names
included, passes through unchanged; Rich markup is left as literal characters, because
data is rendered as ``rich.text.Text`` (``risk_tui.render.data_text``), never parsed.
"""

from __future__ import annotations

import re

_C0 = range(0x00, 0x20)
_DEL = 0x7F
_C1 = range(0x80, 0xA0)
# Bidi embeddings, overrides, isolates and marks: they reorder what the operator reads
# ("abc\u202etxt.exe" shows as "abcexe.txt").
_BIDI = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
# Invisible characters that make two different strings look the same, or that some
# renderers treat as line breaks (U+2028/U+2029), or that smuggle hidden text (tags).
_INVISIBLE = (
    *range(0x200B, 0x200E),
    0x2028,
    0x2029,
    *range(0x2060, 0x2065),
    *range(0x206A, 0x2070),
    0xFEFF,
    *range(0xFFF9, 0xFFFC),
    *range(0xE0000, 0xE0080),
)
# Lone surrogates come from `surrogateescape`/bad decoding and cannot be encoded as UTF-8.
_SURROGATES = range(0xD800, 0xE000)

UNSAFE_CODE_POINTS: frozenset[int] = frozenset(
    (*_C0, _DEL, *_C1, *_BIDI, *_INVISIBLE, *_SURROGATES)
)


def _stand_in(code: int) -> str:
    if code in _C0:
        return chr(0x2400 + code)  # Control Pictures: ␛ for ESC, ␊ for newline
    if code == _DEL:
        return "\u2421"  # ␡
    if code in _C1:
        return f"⟨{code:02X}⟩"
    return f"⟨U+{code:04X}⟩"


def _character_class(codes: frozenset[int]) -> str:
    """A regex character class matching exactly `codes`, as runs of ranges."""
    runs: list[list[int]] = []
    for code in sorted(codes):
        if runs and code == runs[-1][1] + 1:
            runs[-1][1] = code
        else:
            runs.append([code, code])
    parts = (
        re.escape(chr(first))
        if first == last
        else f"{re.escape(chr(first))}-{re.escape(chr(last))}"
        for first, last in runs
    )
    return "[" + "".join(parts) + "]"


_TABLE: dict[int, str] = {code: _stand_in(code) for code in UNSAFE_CODE_POINTS}
# Most strings are clean; one regex scan in C lets them through without translating.
_UNSAFE = re.compile(_character_class(UNSAFE_CODE_POINTS))
_ELLIPSIS = "…"


def sanitize(text: str, *, max_length: int | None = None) -> str:
    """`text` made inert in any terminal, with visible stand-ins for what was removed.

    `max_length` limits the result (in characters, stand-ins included), ending in '…'
    when it was cut.
    """
    if _UNSAFE.search(text) is not None:
        text = text.translate(_TABLE)
    if max_length is not None:
        if max_length < 1:
            raise ValueError(f"max_length must be at least 1, got {max_length}")
        if len(text) > max_length:
            text = text[: max_length - 1] + _ELLIPSIS
    return text


def sanitize_optional(text: str | None, *, max_length: int | None = None) -> str:
    """Like `sanitize`, with '' for a missing value."""
    if text is None:
        return ""
    return sanitize(text, max_length=max_length)
