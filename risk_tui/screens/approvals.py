"""The Approvals tab: four-eyes requests waiting for a second person, approve and reject.

The tab re-reads the open requests (pending, and approved ones still being executed) at
most once a second, in a worker, while it is shown; `h` switches to the requests decided
last (executed, failed, rejected, withdrawn, voided: who decided, when, and why) and
back. `enter` opens the request under the cursor as stored now — its full details
document and SHA-256, its state, requester and age, and its decision — from where the
requester may withdraw their own and a second trader or supervisor may approve or
reject it. `y` approves and `n` rejects the request under the cursor (traders and
supervisors: the keys are not offered to other roles; the requester may reject their
own, which withdraws it). Either opens a confirmation showing the request exactly as
stored — every field of its details document and its SHA-256 — read afresh from the
database; the decision names that hash, so an edit made meanwhile (which voids the
request) can never be approved unseen.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static

from risk_tui.core.calendar import MARKET_TZ
from risk_tui.core.clock import stamp, times_in
from risk_tui.core.four_eyes import (
    KIND_WORDS,
    ApprovalRequest,
    ApprovalState,
    describe,
    same_person,
)
from risk_tui.core.model import Market
from risk_tui.core.roles import Intent, allowed
from risk_tui.core.text import sanitize
from risk_tui.widgets.desk_pane import DeskPane
from risk_tui.widgets.dialogs.approval import (
    DecideDialog,
    Decision,
    RequestDialog,
    state_text,
)
from risk_tui.widgets.dialogs.formatting import aware, format_elapsed
from risk_tui.widgets.host import DeskHost
from risk_tui.widgets.live_table import Column, LiveTable, RowData
from risk_tui.widgets.render import data_text

if TYPE_CHECKING:
    from risk_tui.core.view import DeskView
    from risk_tui.desk.api import DeskApi

log = logging.getLogger(__name__)

READ_INTERVAL = 1.0  # seconds between reads of the open requests while the tab is shown
DECIDED_SHOWN = 500  # the decided requests listed (`h`): the latest decisions

COLUMNS = (
    # 80 columns: what is asked, for whom, how long it has waited; the request's words
    # are cut with "…" (enter opens it whole).
    Column("kind", "Kind", max_width=16, priority=1, frozen=True),
    Column("account", "Account", max_width=12, priority=2, frozen=True),
    Column("client", "Client", max_width=20, priority=6),
    Column("what", "What", max_width=34, priority=3),
    Column("by", "Requested by", max_width=16, priority=7),
    Column("at", "Requested", max_width=20, priority=8),
    Column("waiting", "Waiting", max_width=9, priority=4),
    Column("state", "State", max_width=12, priority=5),
    Column("decided_by", "Decided by", max_width=16),
    Column("decided_at", "Decided", max_width=20),
    Column("note", "Note", max_width=60),
    Column("call", "Call", max_width=28),
    Column("id", "Request", max_width=24),
    Column("hash", "SHA-256", max_width=14),
)


def request_cells(
    request: ApprovalRequest, client_name: str, now: datetime, zone: tzinfo = UTC
) -> RowData:
    """One request's row, its times on `zone`'s clock (the account's market's), labelled."""
    return RowData(
        (
            Text(KIND_WORDS[request.kind]),
            data_text(request.account_id),
            data_text(client_name),
            data_text(describe(request, zone)),
            data_text(request.requested_by),
            Text(stamp(request.requested_at, zone, now=now, seconds=True)),
            Text(format_elapsed(aware(now) - aware(request.requested_at))),
            state_text(request),
            data_text(request.decided_by or "—"),
            Text(stamp(request.decided_at, zone, now=now, seconds=True)),
            data_text(times_in(request.note or "", zone, now=now)),
            data_text(request.call_id or "—"),
            data_text(request.approval_id),
            Text(request.details_hash[:12]),
        )
    )


class ApprovalsPane(DeskPane):
    """Tab 7: requests waiting for a second person's approval, oldest first; or (`h`) the
    requests decided last, the latest first."""

    DEFAULT_CSS = """
    ApprovalsPane > .approvals-summary {
        height: 1; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "approve", "Approve", tooltip="Approve the request", id="approvals.approve"),
        Binding(
            "n", "reject", "Reject", tooltip="Reject or withdraw the request", id="approvals.reject"
        ),
        Binding(
            "h",
            "toggle_decided",
            "Decided",
            tooltip="Show decided (or open) requests",
            id="approvals.decided",
        ),
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
        self.showing_decided = False  # `h`: the decided requests instead of the open ones

    def compose(self) -> ComposeResult:
        yield Static(Text("Reading the requests…"), classes="approvals-summary")
        yield LiveTable(COLUMNS, noun="requests", id=f"{self.id}-table")

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
            decided = self.showing_decided
            if decided:
                requests = await desk.decided_approvals(DECIDED_SHOWN)
            else:
                requests = await desk.approvals()
            if decided is not self.showing_decided:
                return  # switched while reading: the read the switch started shows it
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
                request,
                account.client_name if account else "",
                now,
                self._zone(account.market if account else None),
            )
        self.table.set_rows(rows)
        self._show_summary()

    def _zone(self, market: Market | None) -> tzinfo:
        """A request's clock: its account's market's, else the desk's (`desk.timezone`)."""
        return MARKET_TZ[market] if market is not None else self.host.settings.desk.zone

    def _show_summary(self) -> None:
        for summary in self.query(".approvals-summary").results(Static):
            summary.update(self._summary())

    def _summary(self) -> Text:
        if self._problem is not None:
            return Text(sanitize(self._problem, max_length=200), style="bold red")
        if self.showing_decided:
            count = len(self._requests)
            text = Text("Decided", style="bold")
            text.append(f": the latest {count} (of at most {DECIDED_SHOWN})" if count else ": none")
            text.append(" · enter: open · h: the open requests")
            return text
        if not self._requests:
            return Text(
                "No requests waiting. Liquidations above the four-eyes threshold, deadline "
                "moves and closes come here for a second person's approval."
            )
        pending = sum(r.state is ApprovalState.PENDING for r in self._requests.values())
        text = Text(f"{pending} waiting", style="bold" if pending else "")
        text.append(" · enter: open · y/n: approve/reject (n: withdraw yours) · h: decided")
        return text

    # --- deciding -----------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Deciding is for traders and supervisors: not offered at all to other roles."""
        if action in ("approve", "reject"):
            if self.showing_decided:
                return False  # nothing there waits for a decision
            return allowed(self.host.actor.role, Intent.DECIDE)
        return True

    def action_toggle_decided(self) -> None:
        """Switch between the open requests and the ones decided last."""
        self.showing_decided = not self.showing_decided
        self._requests = {}
        self.table.set_rows({})
        self._problem = None
        self._show_summary()
        self.refresh_bindings()
        self._reading = False
        self.read_now()

    def action_approve(self) -> None:
        self._decide(approve=True)

    def action_reject(self) -> None:
        self._decide(approve=False)

    # --- opening one request ------------------------------------------------------------

    @on(LiveTable.RowSelected)
    def _open_selected(self, event: LiveTable.RowSelected) -> None:
        event.stop()
        self._open(event.key)

    @work(exclusive=True, group="approvals-open", exit_on_error=False)
    async def _open(self, key: str) -> None:
        """Show the request as stored now; a decision taken there goes on as `y`/`n` do."""
        app = self.app
        desk = self.host.desk
        if desk is None:
            return
        try:
            request = await desk.approval(key)
        except Exception as problem:  # the operator must see it
            log.exception("reading request %s failed", key)
            app.notify(f"request {sanitize(key)} could not be read: {problem}", severity="error")
            return
        if request is None:
            app.notify(f"request {sanitize(key)} is gone", severity="warning")
            return
        account = desk.accounts([request.account_id]).get(request.account_id)
        answer = await app.push_screen_wait(
            RequestDialog(
                request,
                self.host.actor,
                self.host.now(),
                client_name=account.client_name if account else "",
                zone=self._zone(account.market if account else None),
            )
        )
        if answer is not None:
            self._decide(approve=answer, key=key)

    def _decide(self, *, approve: bool, key: str | None = None) -> None:
        app = self.app
        host = self.host
        key = self.table.cursor_key if key is None else key
        request = self._requests.get(key) if key is not None else None
        own = request is not None and same_person(host.actor.name, request.requested_by)
        if not allowed(host.actor.role, Intent.DECIDE) and not (own and not approve):
            host.refuse("approve" if approve else "reject")
            return
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
                    zone=self._zone(account.market if account else None),
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
        if done.note:  # stored as written (ISO times); shown on the account's clock
            account = desk.accounts([done.account_id]).get(done.account_id)
            zone = self._zone(account.market if account else None)
            line += f": {times_in(done.note, zone, now=self.host.now(), full=True)}"
        failed = done.state is ApprovalState.FAILED
        app.notify(
            sanitize(line, max_length=300),
            severity="error" if failed else "information",
            timeout=10 if failed else 5,
        )
        self.host.repaint()


__all__ = ["COLUMNS", "ApprovalsPane", "request_cells"]
