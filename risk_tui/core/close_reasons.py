"""Why an operator closes a margin call by hand: one reason from a fixed list, plus free text.

The list is what a risk desk reports on (how many calls were written off, how many were
entered in error); the free text says what happened. Both travel in the four-eyes close
request and in the `call_closed` audit entry (`close_reason` and `reason`); the ended
call's closing note (`end_note`) reads "written off: client bankrupt", as history shows it.

These are the operator's words for a manual close. A call the desk ends by itself (met,
liquidated, met by deposit) carries its own end reason and needs none of these.
"""

from __future__ import annotations

from enum import StrEnum


class CloseReason(StrEnum):
    MET_BY_DEPOSIT = "met_by_deposit"  # a deposit the feed has not (yet) shown
    MET_BY_SALE = "met_by_sale"  # the client sold, or the desk sold outside this terminal
    PAID_ELSEWHERE = "paid_elsewhere"  # the client paid by another route
    WRITTEN_OFF = "written_off"
    ENTERED_IN_ERROR = "entered_in_error"


CLOSE_REASON_WORDS: dict[CloseReason, str] = {
    CloseReason.MET_BY_DEPOSIT: "met by deposit",
    CloseReason.MET_BY_SALE: "met by sale",
    CloseReason.PAID_ELSEWHERE: "client paid elsewhere",
    CloseReason.WRITTEN_OFF: "written off",
    CloseReason.ENTERED_IN_ERROR: "entered in error",
}


def parse_close_reason(raw: object) -> CloseReason | None:
    """The reason a stored document names; None when it names none (or one unknown)."""
    try:
        return CloseReason(str(raw)) if raw is not None else None
    except ValueError:
        return None


def close_problems(reason: CloseReason | None, note: str) -> list[str]:
    """Every reason a close cannot be asked with this reason and text."""
    problems: list[str] = []
    if reason is None:
        words = ", ".join(CLOSE_REASON_WORDS.values())
        problems.append(f"closing a call needs an end reason: one of {words}")
    if not note.strip():
        problems.append("closing a call needs a note saying what happened")
    return problems


def close_note(reason: CloseReason | None, note: str) -> str:
    """The ended call's closing note: "written off: client bankrupt" (the text alone for a
    request made before reasons were listed)."""
    text = note.strip()
    if reason is None:
        return text
    return f"{CLOSE_REASON_WORDS[reason]}: {text}" if text else CLOSE_REASON_WORDS[reason]


__all__ = [
    "CLOSE_REASON_WORDS",
    "CloseReason",
    "close_note",
    "close_problems",
    "parse_close_reason",
]
