"""A four-eyes request shown in full: opened from the Approvals tab, or confirmed before a
decision. Every field of its details document and its SHA-256 are shown as stored, and
outside text (names, reasons, client names) only as inert data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Input, Static

from risk_tui.core.clock import aware, stamp, times_in
from risk_tui.core.clock import format_span as format_elapsed
from risk_tui.core.four_eyes import (
    KIND_WORDS,
    ApprovalRequest,
    ApprovalState,
    describe,
    details_hash,
    document_lines,
    same_person,
)
from risk_tui.core.roles import Actor, Intent, allowed
from risk_tui.core.text import sanitize
from risk_tui.widgets.dialogs.base import DialogScreen, Problems, compact_input, field_row
from risk_tui.widgets.render import data_text

MAX_NOTE = 500


def withdrawn(request: ApprovalRequest) -> bool:
    """A rejection by the requester themselves: they withdrew it."""
    return (
        request.state is ApprovalState.REJECTED
        and request.decided_by is not None
        and same_person(request.decided_by, request.requested_by)
    )


def state_word(request: ApprovalRequest) -> str:
    if request.state is ApprovalState.PENDING:
        return "PENDING"
    if request.state is ApprovalState.APPROVED:
        return "EXECUTING"
    return "withdrawn" if withdrawn(request) else request.state.value


def state_text(request: ApprovalRequest) -> Text:
    word = state_word(request)
    return Text(word, style="bold" if word.isupper() else "")


def request_facts(
    request: ApprovalRequest, *, client_name: str = "", zone: tzinfo = UTC
) -> Text:
    """The request exactly as stored: who, what, and every field it binds, with its hash.

    Times are written on `zone`'s clock (the account's market's), labelled: the stored
    document writes them as ISO times with whatever offset they were made in (`+00:00`
    beside `+08:00`); the hash binds those stored texts, not how they are shown here."""
    text = Text()

    def when(at: datetime) -> str:
        return stamp(at, zone, full=True, seconds=True)

    def line(label: str, *parts: Text) -> None:
        if text:
            text.append("\n")
        text.append(f"{label:<13}", style="bold")
        for part in parts:
            text.append_text(part)

    line("Request", data_text(request.approval_id), Text(f"  ({KIND_WORDS[request.kind]})"))
    account = data_text(request.account_id)
    if client_name:
        account.append("  ")
        account.append_text(data_text(client_name))
    line("Account", account)
    line("Call", data_text(request.call_id or "none (not tied to a margin call)"))
    line(
        "Requested by",
        data_text(request.requested_by),
        Text(f" ({request.requested_role.value}) at {when(request.requested_at)}"),
    )
    line("What", data_text(describe(request, zone), "bold"))
    text.append("\n\nDetails bound by SHA-256 ", style="bold")
    text.append(request.details_hash)
    for path, value in document_lines(request.details):
        text.append("\n  ")
        text.append_text(data_text(f"{path}: ", "dim"))
        text.append_text(data_text(times_in(value, zone, full=True)))
    return text


def request_status(request: ApprovalRequest, now: datetime, zone: tzinfo = UTC) -> Text:
    """Where the request stands: its state, its age, and who decided it, when and why."""
    text = Text()
    text.append(f"{'State':<13}", style="bold")
    text.append_text(state_text(request))
    age = format_elapsed(aware(now) - aware(request.requested_at))
    text.append(f"  (asked {age} ago by ")
    text.append_text(data_text(request.requested_by))
    text.append(")")
    if request.decided_by is not None or request.decided_at is not None:
        text.append(f"\n{'Decided by':<13}", style="bold")
        text.append_text(data_text(request.decided_by or "—"))
        if request.decided_at is not None:
            text.append(f" at {stamp(request.decided_at, zone, full=True, seconds=True)}")
    if request.note:
        text.append(f"\n{'Note':<13}", style="bold")
        text.append_text(data_text(times_in(request.note, zone, full=True)))
    if request.replaces:
        text.append(f"\n{'Replaces':<13}", style="bold")
        text.append_text(data_text(request.replaces))
    return text


class RequestDialog(DialogScreen[bool]):
    """One request opened from the tab, as stored now (read-only).

    A pending request offers what the operator may do with it: its requester may withdraw
    it (`n`); another trader or supervisor may approve (`y`) or reject (`n`) it. The answer
    (True: approve, False: reject or withdraw) leads to the same confirmation as the keys
    on the tab, which reads the request afresh and binds the decision to its hash.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "y",
            "decide(True)",
            "Approve",
            tooltip="Approve this request",
            id="approvals.open.approve",
        ),
        Binding(
            "n",
            "decide(False)",
            "Reject / withdraw",
            tooltip="Reject (or withdraw) this request",
            id="approvals.open.reject",
        ),
    ]

    DEFAULT_CSS = """
    RequestDialog > .dialog { width: 100; }
    RequestDialog .facts { height: auto; margin-top: 1; }
    RequestDialog .status { height: auto; margin-top: 1; }
    """

    def __init__(
        self,
        request: ApprovalRequest,
        actor: Actor,
        now: datetime,
        *,
        client_name: str = "",
        zone: tzinfo = UTC,
    ) -> None:
        super().__init__()
        self.request = request
        self.actor = actor
        self.now = now
        self.client_name = client_name
        self.zone = zone  # the clock its times are written on

    @property
    def own(self) -> bool:
        return same_person(self.actor.name, self.request.requested_by)

    @property
    def may_approve(self) -> bool:
        pending = self.request.state is ApprovalState.PENDING
        return pending and not self.own and allowed(self.actor.role, Intent.DECIDE)

    @property
    def may_reject(self) -> bool:
        pending = self.request.state is ApprovalState.PENDING
        return pending and (self.own or allowed(self.actor.role, Intent.DECIDE))

    def compose(self) -> ComposeResult:
        request = self.request
        with Vertical(classes="dialog") as frame:
            frame.border_title = f"Request {sanitize(request.approval_id)}"
            with VerticalScroll(classes="dialog-body"):
                yield Static(request_status(request, self.now, self.zone), classes="status")
                yield Static(
                    request_facts(request, client_name=self.client_name, zone=self.zone),
                    classes="facts",
                )
            with Vertical(classes="dialog-foot"), Horizontal(classes="dialog-buttons"):
                yield Button("Back  esc", id="back", variant="primary")
                if self.may_approve:
                    yield Button("Approve…  y", id="approve", variant="warning")
                if self.may_reject:
                    label = "Withdraw…  n" if self.own else "Reject…  n"
                    yield Button(label, id="reject", variant="error")

    def on_mount(self) -> None:
        self.query_one("#back", Button).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "confirm":
            return False  # nothing to confirm here: a decision is confirmed in its own dialog
        if action == "decide":
            return self.may_approve if parameters == (True,) else self.may_reject
        return True

    def action_decide(self, approve: bool) -> None:
        if (self.may_approve if approve else self.may_reject) and not self.answered:
            self.answer(approve)

    def action_confirm(self) -> None:
        return

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "back":
            self.action_cancel()
        else:
            self.action_decide(event.button.id == "approve")


@dataclass(frozen=True, slots=True)
class Decision:
    """What the confirmation answers: the hash of the details shown, and the reason given."""

    seen_hash: str
    note: str = ""


class DecideDialog(DialogScreen[Decision]):
    """Confirm approving (or rejecting, with a reason) one request, shown exactly as stored.

    Focus starts on "Back" (a rejection: in its reason box), so enter (or a doubled key)
    decides nothing; only ctrl+s or the decision's button does, and it answers once.
    """

    PROBLEM_FIELDS: ClassVar[dict[str, str]] = {"Reason": "#note"}

    DEFAULT_CSS = """
    DecideDialog > .dialog { width: 100; }
    DecideDialog .facts { height: auto; margin-top: 1; }
    DecideDialog .consequence { height: auto; margin-top: 1; }
    """

    def __init__(
        self,
        request: ApprovalRequest,
        operator: str,
        *,
        approve: bool,
        client_name: str = "",
        zone: tzinfo = UTC,
    ) -> None:
        super().__init__()
        self.request = request
        self.operator = operator
        self.approve = approve
        self.client_name = client_name
        self.zone = zone  # the clock its times are written on
        # The hash of what this dialog shows, computed from it: the binding the decision names.
        self.shown_hash = details_hash(request.details)

    def compose(self) -> ComposeResult:
        request = self.request
        verb = "Approve" if self.approve else "Reject"
        with Vertical(classes="dialog") as frame:
            frame.border_title = f"{verb} {KIND_WORDS[request.kind]}"
            with VerticalScroll(classes="dialog-body"):
                yield Static(
                    request_facts(request, client_name=self.client_name, zone=self.zone),
                    classes="facts",
                )
                yield Static(self._consequence(), classes="consequence")
                if not self.approve:
                    yield field_row(
                        "Reason",
                        compact_input("", "required", max_length=MAX_NOTE, id="note"),
                    )
            with Vertical(classes="dialog-foot"):
                yield Problems(id="problems")
                with Horizontal(classes="dialog-buttons"):
                    yield Button("Back  esc", id="back", variant="primary")
                    yield Button(
                        f"{verb}  ctrl+s",
                        id="decide",
                        variant="warning" if self.approve else "error",
                    )

    def _consequence(self) -> Text:
        text = Text()
        requester = data_text(self.request.requested_by)
        if self.approve:
            text.append("Approving executes it now, exactly as shown, in the name of ")
            text.append_text(requester)
            text.append(", recorded in the audit log with yours (")
        else:
            withdraw = same_person(self.operator, self.request.requested_by)
            text.append("Withdrawing" if withdraw else "Rejecting")
            text.append(" it means it is never executed; recorded in the audit log under ")
            text.append("your name (")
        text.append_text(data_text(self.operator))
        text.append(").")
        return text

    def on_mount(self) -> None:
        if self.approve:
            self.query_one("#back", Button).focus()
        else:
            self.query_one("#note", Input).focus()

    def action_confirm(self) -> None:
        if self.approve:
            self.answer(Decision(self.shown_hash))
            return
        note = self.query_one("#note", Input).value.strip()
        if not note:
            problems = ["Reason: rejecting needs a reason"]
            self.query_one("#problems", Problems).show(problems)
            self.focus_problem(problems)
            return
        self.answer(Decision(self.shown_hash, note))

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "decide":
            self.action_confirm()
        elif event.button.id == "back":
            self.action_cancel()


__all__ = [
    "DecideDialog",
    "Decision",
    "RequestDialog",
    "request_facts",
    "request_status",
    "state_text",
]
