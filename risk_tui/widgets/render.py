"""The one way data reaches Rich/Textual: sanitized, as Text that is never parsed for markup."""

from __future__ import annotations

from rich.text import Text

from risk_tui.core.text import sanitize


def data_text(text: str | None, style: str = "") -> Text:
    """Outside text (client name, remark, server error) as an inert Rich `Text`.

    A `Text` is not parsed for markup, so `[link=http://x]` shows literally, and
    `sanitize` has already turned every control character into a visible stand-in.
    """
    return Text(sanitize(text or ""), style=style)
