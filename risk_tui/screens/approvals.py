"""The Approvals tab: four-eyes requests waiting for a second person, approve and reject.

The tab re-reads the open requests (pending, and approved ones still being executed) at
most once a second, in a worker, while it is shown. `y` approves and `n` rejects the
request under the cursor (traders and supervisors: the keys are not offered to other
roles; the requester may reject their own, which withdraws it). Either opens a
confirmation showing the request exactly as stored — every field of its details
document and its SHA-256 — read afresh from the database; the decision names that hash,
so an edit made meanwhile (which voids the request) can never be approved unseen.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Input, Static

from risk_tui.core.four_eyes import (
    KIND_WORDS,
    ApprovalRequest,
    ApprovalState,
    describe,
    details_hash,
    document_lines,
    same_person,
)
from risk_tui.core.roles import Intent, allowed
from risk_tui.core.text import sanitize
from risk_tui.widgets.desk_pane import DeskPane
from risk_tui.widgets.dialogs.base import DialogScreen, Problems, compact_input, field_row
from risk_tui.widgets.dialogs.formatting import aware, format_elapsed
from risk_tui.widgets.host import DeskHost
from risk_tui.widgets.live_table import Column, LiveTable, RowData
from risk_tui.widgets.render import data_text

if TYPE_CHECKING:
    from risk_tui.core.view import DeskView
    from risk_tui.desk.api import DeskApi

log = logging.getLogger(__name__)

READ_INTERVAL = 1.0  # seconds between reads of the open requests while the tab is shown
MAX_NOTE = 500

COLUMNS = (
    Column("kind", "Kind", max_width=16),
    Column("account", "Account", max_width=12),
    Column("client", "Client", max_width=20),
    Column("what", "What", max_width=80),
    Column("by", "Requested by", max_width=16),
    Column("at", "Requested (UTC)", max_width=16),
    Column("waiting", "Waiting", max_width=9),
    Column("state", "State", max_width=12),
    Column("call", "Call", max_width=28),
    Column("id", "Request", max_width=24),
    Column("hash", "SHA-256", max_width=14),
)


def utc_time(at: datetime) -> str:
    return f"{aware(at).astimezone(UTC):%m-%d %H:%M:%S}"


def state_text(request: ApprovalRequest) -> Text:
    if request.state is ApprovalState.PENDING:
        return Text("PENDING", style="bold")
    if request.state is ApprovalState.APPROVED:
        return Text("EXECUTING", style="bold")
    return Text(request.state.value)


def request_cells(request: ApprovalRequest, client_name: str, now: datetime) -> RowData:
    return RowData(
        (
            Text(KIND_WORDS[request.kind]),
            data_text(request.account_id),
            data_text(client_name),
            data_text(describe(request)),
            data_text(request.requested_by),
            Text(utc_time(request.requested_at)),
            Text(format_elapsed(aware(now) - aware(request.requested_at))),
            state_text(request),
            data_text(request.call_id or "—"),
            data_text(request.approval_id),
            Text(request.details_hash[:12]),
        )
    )


def request_facts(request: ApprovalRequest, *, client_name: str = "") -> Text:
    """The request exactly as stored: who, what, and every field it binds, with its hash."""
    text = Text()

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
        Text(f" ({request.requested_role.value}) at {utc_time(request.requested_at)} UTC"),
    )
    line("What", data_text(describe(request), "bold"))
    text.append("\n\nDetails bound by SHA-256 ", style="bold")
    text.append(request.details_hash)
    for path, value in document_lines(request.details):
        text.append("\n  ")
        text.append_text(data_text(f"{path}: ", "dim"))
        text.append_text(data_text(value))
    return text


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

    DEFAULT_CSS = """
    DecideDialog > .dialog { width: 100; }
    DecideDialog .facts { height: auto; margin-top: 1; }
    DecideDialog .consequence { height: auto; margin-top: 1; }
    """

    def __init__(
        self, request: ApprovalRequest, operator: str, *, approve: bool, client_name: str = ""
    ) -> None:
        super().__init__()
        self.request = request
        self.operator = operator
        self.approve = approve
        self.client_name = client_name
        # The hash of what this dialog shows, computed from it: the binding the decision names.
        self.shown_hash = details_hash(request.details)

    def compose(self) -> ComposeResult:
        request = self.request
        verb = "Approve" if self.approve else "Reject"
        with Vertical(classes="dialog") as frame:
            frame.border_title = f"{verb} {KIND_WORDS[request.kind]}"
            with VerticalScroll(classes="dialog-body"):
                yield Static(request_facts(request, client_name=self.client_name), classes="facts")
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
            self.query_one("#problems", Problems).show(["Reason: rejecting needs a reason"])
            self.query_one("#note", Input).focus()
            return
        self.answer(Decision(self.shown_hash, note))

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "decide":
            self.action_confirm()
        elif event.button.id == "back":
            self.action_cancel()


class ApprovalsPane(DeskPane):
    """Tab 7: requests waiting for a second person's approval, oldest first."""

    DEFAULT_CSS = """
    ApprovalsPane > .approvals-summary { height: 1; padding: 0 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "approve", "Approve", id="approvals.approve"),
        Binding("n", "reject", "Reject", id="approvals.reject"),
    ]

    def __init__(self, *, read_interval: float = READ_INTERVAL, id: str | None = None) -> None:
        super().__init__(id=id)
        self.read_interval = read_interval
        self.reads = 0  # reads done (for tests)
        self._desk: DeskApi | None = None
        self._requests: dict[str, ApprovalRequest] = {}
        self._next_read = 0.0
        self._reading = False
        self._problem: str | None = None
        self._deciding: set[str] = set()

    def compose(self) -> ComposeResult:
        yield Static(Text("Reading the requests…"), classes="approvals-summary")
        yield LiveTable(COLUMNS, fixed_columns=2, id=f"{self.id}-table")

    @property
    def host(self) -> DeskHost:
        return cast("DeskHost", self.app)

    def request(self, approval_id: str) -> ApprovalRequest | None:
        return self._requests.get(approval_id)

    # --- reading ------------------------------------------------------------------------

    def refresh_from(self, desk: DeskApi, view: DeskView, now: datetime) -> None:
        self._desk = desk
        if self._reading or time.monotonic() < self._next_read:
            return
        self.read_now()

    def read_now(self) -> None:
        if self._desk is None or self._reading:
            return
        self._reading = True
        self._read(self._desk)

    @work(exclusive=True, group="approvals-read", exit_on_error=False)
    async def _read(self, desk: DeskApi) -> None:
        try:
            requests = await desk.approvals()
            self.reads += 1
            self._problem = None
            self._apply(desk, requests)
        except Exception as problem:  # shown on the tab; the next read tries again
            log.exception("reading the approval requests failed")
            self._problem = f"requests could not be read: {problem}"
            self._show_summary()
        finally:
            self._reading = False
            self._next_read = time.monotonic() + self.read_interval

    def _apply(self, desk: DeskApi, requests: list[ApprovalRequest]) -> None:
        if not self.is_mounted:
            return
        accounts = desk.accounts({request.account_id for request in requests})
        now = self.host.now()
        self._requests = {r.approval_id: r for r in requests}
        rows: dict[str, RowData] = {}
        for request in requests:
            account = accounts.get(request.account_id)
            rows[request.approval_id] = request_cells(
                request, account.client_name if account else "", now
            )
        self.table.set_rows(rows)
        self._show_summary()

    def _show_summary(self) -> None:
        for summary in self.query(".approvals-summary").results(Static):
            summary.update(self._summary())

    def _summary(self) -> Text:
        if self._problem is not None:
            return Text(sanitize(self._problem, max_length=200), style="bold red")
        if not self._requests:
            return Text(
                "No requests waiting. Liquidations above the four-eyes threshold, deadline "
                "moves and closes come here for a second person's approval."
            )
        pending = sum(r.state is ApprovalState.PENDING for r in self._requests.values())
        text = Text(f"{pending} waiting for approval", style="bold" if pending else "")
        text.append(
            " · y: approve · n: reject (the requester: withdraw) · nobody approves their own"
        )
        return text

    # --- deciding -----------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Deciding is for traders and supervisors: not offered at all to other roles."""
        if action in ("approve", "reject"):
            return allowed(self.host.actor.role, Intent.DECIDE)
        return True

    def action_approve(self) -> None:
        self._decide(approve=True)

    def action_reject(self) -> None:
        self._decide(approve=False)

    def _decide(self, *, approve: bool) -> None:
        app = self.app
        host = self.host
        if not allowed(host.actor.role, Intent.DECIDE):
            host.refuse("approve" if approve else "reject")
            return
        key = self.table.cursor_key
        request = self._requests.get(key) if key is not None else None
        if key is None or request is None:
            app.notify("no request under the cursor", severity="warning")
            return
        if approve and same_person(host.actor.name, request.requested_by):
            app.notify(
                f"nobody approves their own request: {sanitize(request.approval_id)} must be "
                "approved by another trader or supervisor (n withdraws it)",
                severity="error",
                timeout=8,
            )
            return
        if key in self._deciding:
            return
        self._deciding.add(key)
        self._confirm_and_decide(key, approve)

    @work(group="approvals-decide", exit_on_error=False)
    async def _confirm_and_decide(self, key: str, approve: bool) -> None:
        app = self.app
        try:
            desk = self.host.desk
            if desk is None:
                return
            request = await desk.approval(key)  # as stored now, not as last listed
            if request is None or request.state is not ApprovalState.PENDING:
                state = "gone" if request is None else request.state.value
                app.notify(f"request {sanitize(key)} is {state}: nothing to decide", timeout=8)
                self.read_now()
                return
            account = desk.accounts([request.account_id]).get(request.account_id)
            decision = await app.push_screen_wait(
                DecideDialog(
                    request,
                    self.host.actor.name,
                    approve=approve,
                    client_name=account.client_name if account else "",
                )
            )
            if decision is None:
                return
            await self._send(desk, key, decision, approve)
        except Exception as problem:  # the operator must see it
            log.exception("deciding on %s failed", key)
            detail = getattr(problem, "problems", None)
            text = "; ".join(detail) if detail else str(problem)
            app.notify(
                f"{'approval' if approve else 'rejection'} refused or failed: "
                f"{sanitize(text, max_length=300)}",
                severity="error",
                timeout=10,
            )
        finally:
            self._deciding.discard(key)
            self.read_now()

    async def _send(self, desk: DeskApi, key: str, decision: Decision, approve: bool) -> None:
        app = self.app
        if approve:
            done = await desk.approve(key, decision.seen_hash)
        else:
            done = await desk.reject(key, decision.seen_hash, decision.note)
        line = f"request {done.approval_id} {done.state.value}"
        if done.note:
            line += f": {done.note}"
        failed = done.state is ApprovalState.FAILED
        app.notify(
            sanitize(line, max_length=300),
            severity="error" if failed else "information",
            timeout=10 if failed else 5,
        )
        self.host.repaint()


__all__ = [
    "COLUMNS",
    "ApprovalsPane",
    "DecideDialog",
    "Decision",
    "request_cells",
    "request_facts",
]
