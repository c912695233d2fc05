"""Tell clients short a recalled stock about the recall, whether or not they are in call.

Opened by `m` on the Short positions details for clients not in margin call (those in
call get the margin-call message, as on the Real-time warnings tab). The body is the recall
notice template filled per client: the stock, the client's short, the buy-back the
allocation suggests for them (the desk's own figure), and the recall's due date. For one
client the text may be edited before sending; for several, each gets the template with its
own figures and its own message id. The messages go through the desk's audited outbox like
every other message, with no margin call as their reference.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, RadioSet, Static, TextArea

from risk_tui.core.actions import CHANNELS, MessageIntent, new_message_id
from risk_tui.core.roles import Actor, Intent
from risk_tui.core.shorts import Allocation, ShortLine
from risk_tui.core.text import sanitize
from risk_tui.widgets.dialogs.base import (
    MarkRadioButton,
    Problems,
    field_row,
    require_role,
)
from risk_tui.widgets.dialogs.formatting import format_quantity
from risk_tui.widgets.dialogs.message import CHANNEL_WORDS, ClientMessageDialog, MessageTemplate
from risk_tui.widgets.render import data_text

RECALL_NOTICE = MessageTemplate(
    key="recall",
    name="recall notice",
    subject="Recall of {symbol}: your short position in account {account_id}",
    body=(
        "Dear {client_name},\n\n"
        "The lender has recalled {symbol} ({name}). Your account {account_id} is short "
        "{short_quantity} {symbol}. {ask} If the position is not covered by then, we may "
        "buy it in on your behalf without further notice."
    ),
)


def fill_recall(line: ShortLine, allocation: Allocation) -> tuple[str, str]:
    """(subject, body) of the recall notice to one client; feed data sanitized."""
    holder = allocation.holder
    symbol = sanitize(line.symbol)
    borrow = line.borrow
    due = (
        f"{borrow.recall_due:%Y-%m-%d}"
        if borrow is not None and borrow.recall_due is not None
        else "the earliest possible moment"
    )
    if allocation.suggested > 0:
        ask = f"Please buy back {format_quantity(allocation.suggested)} {symbol} by {due}."
    else:
        ask = f"Please be ready to buy back your short position by {due}."
    fields = {
        "client_name": sanitize(holder.client_name or "client"),
        "account_id": sanitize(holder.account_id),
        "symbol": symbol,
        "name": sanitize(line.instrument.name) if line.instrument is not None else symbol,
        "short_quantity": format_quantity(holder.short_quantity),
        "ask": ask,
    }
    template = RECALL_NOTICE
    return template.subject.format(**fields), template.body.format(**fields)


class RecallNoticeDialog(ClientMessageDialog):
    """Answer one recall-notice `MessageIntent` per client, or None when cancelled."""

    def __init__(
        self,
        line: ShortLine,
        allocations: Sequence[Allocation],
        actor: Actor,
        *,
        new_id: Callable[[], str] = new_message_id,
    ) -> None:
        require_role(actor, Intent.MESSAGE, "send messages to clients")
        unique = {a.holder.account_id: a for a in allocations}
        if not unique:
            raise ValueError("a recall notice needs at least one client")
        super().__init__()
        self.line = line
        self.allocations = tuple(unique.values())
        self.actor = actor
        # Minted once, per client: confirming again names the same messages.
        self.message_ids = {account: new_id() for account in unique}

    @property
    def single(self) -> bool:
        return len(self.allocations) == 1

    def compose(self) -> ComposeResult:
        count = len(self.allocations)
        with Vertical(classes="dialog") as frame:
            frame.border_title = "Send recall notice"
            with VerticalScroll(classes="dialog-body"):
                yield Static(self._heading())
                if not self.single:
                    yield VerticalScroll(Static(self._target_list()), classes="targets")
                yield field_row(
                    "Channel",
                    RadioSet(
                        *(
                            MarkRadioButton(CHANNEL_WORDS[channel], value=index == 0, id=channel)
                            for index, channel in enumerate(CHANNELS)
                        ),
                        id="channel",
                        compact=True,
                    ),
                )
                yield Static(Text(f"Template: {RECALL_NOTICE.name}"))
                first = self.allocations[0]
                if self.single:
                    body = TextArea(fill_recall(self.line, first)[1], id="body", soft_wrap=True)
                    body.cursor_blink = False
                    yield body
                    yield Static(Text("Edit the text freely."), classes="hint")
                else:
                    preview = Text("Preview for ")
                    preview.append_text(data_text(first.holder.account_id))
                    preview.append(" (each client gets its own figures):\n", style="bold")
                    preview.append(fill_recall(self.line, first)[1])  # sanitized by fill_recall
                    yield Static(preview, id="preview", classes="preview")
            with Vertical(classes="dialog-foot"):
                yield Problems(id="problems")
                with Horizontal(classes="dialog-buttons"):
                    plural = "s" if count != 1 else ""
                    yield Button(
                        f"Send to {count} client{plural}  ctrl+s", id="send", variant="primary"
                    )
                    yield Button("Cancel  esc", id="cancel")

    def _heading(self) -> Text:
        text = Text("Recall of ")
        text.append_text(data_text(self.line.symbol))
        borrow = self.line.borrow
        if borrow is not None and borrow.recall_quantity > 0:
            text.append(f": lender recalled {format_quantity(borrow.recall_quantity)}")
            if borrow.recall_due is not None:
                text.append(f", due {borrow.recall_due:%Y-%m-%d}")
        if self.single:
            holder = self.allocations[0].holder
            text.append("\nTo ")
            text.append_text(data_text(holder.account_id))
            text.append("  ")
            text.append_text(data_text(sanitize(holder.client_name or "", max_length=32)))
            text.append(" · not in margin call")
        else:
            text.append(f"\n{len(self.allocations)} clients, none in margin call")
        return text

    def _target_list(self) -> Text:
        text = Text()
        for index, allocation in enumerate(self.allocations):
            holder = allocation.holder
            if index:
                text.append("\n")
            text.append_text(data_text(holder.account_id))
            text.append("  ")
            text.append_text(data_text(sanitize(holder.client_name or "", max_length=24)))
            text.append(f"  short {format_quantity(holder.short_quantity)}")
            text.append(f"  buy back {format_quantity(allocation.suggested)}")
        return text

    def intents(self) -> list[MessageIntent]:
        channel = self.channel
        intents: list[MessageIntent] = []
        for allocation in self.allocations:
            subject, body = fill_recall(self.line, allocation)
            if self.single:
                body = self.query_one("#body", TextArea).text
            account = allocation.holder.account_id
            intents.append(
                MessageIntent(
                    message_id=self.message_ids[account],
                    account_id=account,
                    channel=channel,
                    subject=subject if channel == "email" else None,
                    body=body,
                    reference=None,  # no margin call: the recall is the reason
                    operator=self.actor.name,
                )
            )
        return intents


__all__ = ["RECALL_NOTICE", "RecallNoticeDialog", "fill_recall"]
