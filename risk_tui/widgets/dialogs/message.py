"""Send a margin-call message to one client (editable preview) or to several marked ones.

The body is a template filled in per account: client name, account, call amount and
currency, deadline on the market's clock. For one account the operator may edit the text
before sending; for several, each account gets the template filled with its own figures
and its own message id. Message ids are minted once, when the dialog opens.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import ClassVar, cast

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, RadioSet, Static, TextArea

from risk_tui.core.actions import CHANNELS, Channel, MessageIntent, new_message_id
from risk_tui.core.clock import client_time
from risk_tui.core.lifecycle import MarginCall
from risk_tui.core.margin import AccountMargin
from risk_tui.core.money import ZERO, format_money
from risk_tui.core.roles import Actor, Intent
from risk_tui.core.text import sanitize
from risk_tui.widgets.dialogs.base import (
    DialogScreen,
    MarkRadioButton,
    Problems,
    field_row,
    require_role,
)
from risk_tui.widgets.dialogs.formatting import aware, local_time
from risk_tui.widgets.dialogs.liquidate import account_line, call_line
from risk_tui.widgets.render import data_text

CHANNEL_WORDS: dict[str, str] = {"app": "app", "email": "email", "sms": "SMS", "voice": "voice"}


@dataclass(frozen=True, slots=True)
class MessageTemplate:
    key: str
    name: str
    subject: str  # used for email only
    body: str


TEMPLATES: tuple[MessageTemplate, ...] = (
    MessageTemplate(
        key="notice",
        name="margin call notice",
        subject="Margin call on account {account_id}",
        body=(
            "Dear {client_name},\n\n"
            "Your margin account {account_id} is in margin call: its equity has fallen "
            "below the maintenance margin. Please deposit {currency} {call_amount} or "
            "reduce your positions by {deadline}. If the call is not met by then, we may "
            "liquidate your positions without further notice."
        ),
    ),
    MessageTemplate(
        key="reminder",
        name="reminder",
        subject="Reminder: margin call on account {account_id}",
        body=(
            "Dear {client_name},\n\n"
            "A reminder that your margin account {account_id} is still in margin call. "
            "The amount due is {currency} {call_amount}, to be met by {deadline}. If it "
            "is not met by then, we may liquidate your positions without further notice."
        ),
    ),
)


def fill(template: MessageTemplate, call: MarginCall) -> tuple[str, str]:
    """(subject, body) for one call; client data sanitized, the deadline on market time."""
    deadline = (
        client_time(call.deadline, call.market)
        if call.deadline is not None
        else "the earliest possible moment"
    )
    fields = {
        "client_name": sanitize(call.client_name),
        "account_id": sanitize(call.account_id),
        "currency": call.currency,
        "call_amount": format_money(call.call_amount, call.currency),
        "deadline": deadline,
    }
    return template.subject.format(**fields), template.body.format(**fields)


def totals_by_currency(calls: Sequence[MarginCall]) -> str:
    """`SGD 2,030.00; HKD 500.00`: call amounts are never added across currencies here."""
    sums: dict[str, Decimal] = {}
    for call in calls:
        sums[call.currency] = sums.get(call.currency, ZERO) + call.call_amount
    return "; ".join(format_money(amount, ccy, code=True) for ccy, amount in sums.items())


class ClientMessageDialog(DialogScreen[list[MessageIntent]]):
    """What every message dialog shares: the channel choice, an editable body for one
    client, the send and cancel buttons; it answers one `MessageIntent` per client (or
    None when cancelled). A subclass composes the form and builds the intents."""

    DEFAULT_CSS = """
    ClientMessageDialog RadioSet { width: 1fr; height: auto; layout: horizontal; }
    ClientMessageDialog RadioSet > MarkRadioButton { width: auto; margin-right: 2; }
    ClientMessageDialog TextArea { height: 8; margin-top: 1; }
    ClientMessageDialog .targets { height: auto; max-height: 6; margin-top: 1; }
    ClientMessageDialog .preview { height: auto; margin-top: 1; }
    """

    @property
    def single(self) -> bool:
        """One client: the body is shown for editing."""
        raise NotImplementedError

    def intents(self) -> list[MessageIntent]:
        raise NotImplementedError

    def on_mount(self) -> None:
        self.query_one("#channel", RadioSet).focus()

    @property
    def channel(self) -> Channel:
        pressed = self.query_one("#channel", RadioSet).pressed_button
        chosen = pressed.id if pressed is not None and pressed.id in CHANNELS else CHANNELS[0]
        return cast(Channel, chosen)

    def problems(self) -> list[str]:
        if self.single and not self.query_one("#body", TextArea).text.strip():
            return ["the message is empty"]
        return []

    def action_confirm(self) -> None:
        problems = self.problems()
        self.query_one("#problems", Problems).show(problems)
        if not problems:
            self.answer(self.intents())

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "send":
            self.action_confirm()
        elif event.button.id == "cancel":
            self.action_cancel()


class MessageDialog(ClientMessageDialog):
    """Answer one `MessageIntent` per target account, or None when cancelled."""

    TEMPLATE_IDS: ClassVar[dict[str, str]] = {t.key: f"template-{t.key}" for t in TEMPLATES}

    def __init__(
        self,
        targets: Sequence[tuple[MarginCall, AccountMargin | None]],
        actor: Actor,
        now: datetime,
        *,
        new_id: Callable[[], str] = new_message_id,
    ) -> None:
        require_role(actor, Intent.MESSAGE, "send messages to clients")
        unique: dict[str, tuple[MarginCall, AccountMargin | None]] = {}
        for call, margin in targets:
            unique.setdefault(call.call_id, (call, margin))
        if not unique:
            raise ValueError("a message needs at least one account")
        super().__init__()
        self.targets = tuple(unique.values())
        self.actor = actor
        self.now = aware(now)
        # Minted once, per call: confirming again names the same messages.
        self.message_ids: dict[str, str] = {call_id: new_id() for call_id in unique}

    @property
    def calls(self) -> tuple[MarginCall, ...]:
        return tuple(call for call, _ in self.targets)

    @property
    def single(self) -> bool:
        return len(self.targets) == 1

    def _default_template(self) -> MessageTemplate:
        """A reminder when every client was already notified; the notice otherwise."""
        if all(call.notified_at is not None for call in self.calls):
            return TEMPLATES[1]
        return TEMPLATES[0]

    def compose(self) -> ComposeResult:
        default = self._default_template()
        count = len(self.targets)
        with Vertical(classes="dialog") as frame:
            frame.border_title = "Send message"
            with VerticalScroll(classes="dialog-body"):
                if self.single:
                    call, margin = self.targets[0]
                    yield Static(account_line(call))
                    yield Static(call_line(call, margin))
                else:
                    yield Static(
                        Text(
                            f"{count} accounts marked · total call amount "
                            f"{totals_by_currency(self.calls)}"
                        )
                    )
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
                yield field_row(
                    "Template",
                    RadioSet(
                        *(
                            MarkRadioButton(t.name, value=t is default, id=self.TEMPLATE_IDS[t.key])
                            for t in TEMPLATES
                        ),
                        id="template",
                        compact=True,
                    ),
                )
                if self.single:
                    body = TextArea(fill(default, self.calls[0])[1], id="body", soft_wrap=True)
                    body.cursor_blink = False
                    yield body
                    yield Static(
                        Text("Edit the text freely; choosing a template rewrites it."),
                        classes="hint",
                    )
                else:
                    yield Static(self._preview_text(default), id="preview", classes="preview")
            with Vertical(classes="dialog-foot"):
                yield Problems(id="problems")
                with Horizontal(classes="dialog-buttons"):
                    plural = "s" if count != 1 else ""
                    yield Button(
                        f"Send to {count} account{plural}  ctrl+s", id="send", variant="primary"
                    )
                    yield Button("Cancel  esc", id="cancel")

    def _target_list(self) -> Text:
        text = Text()
        for index, call in enumerate(self.calls):
            if index:
                text.append("\n")
            text.append_text(data_text(call.account_id))
            text.append("  ")
            text.append_text(data_text(sanitize(call.client_name, max_length=24)))
            text.append(f"  {format_money(call.call_amount, call.currency, code=True)}")
            text.append(f"  due {local_time(call.deadline, call.market, zone=True)}")
            if call.deadline is not None and aware(call.deadline) < self.now:
                text.append(" (passed)")
        return text

    def _preview_text(self, template: MessageTemplate) -> Text:
        first = self.calls[0]
        text = Text("Preview for ")
        text.append_text(data_text(first.account_id))
        text.append(" (each account gets its own figures):\n", style="bold")
        text.append(fill(template, first)[1])  # `fill` sanitized the client's data
        return text

    # --- reading the form --------------------------------------------------------------

    @property
    def template(self) -> MessageTemplate:
        pressed = self.query_one("#template", RadioSet).pressed_button
        for t in TEMPLATES:
            if pressed is not None and pressed.id == self.TEMPLATE_IDS[t.key]:
                return t
        return self._default_template()

    @on(RadioSet.Changed, "#template")
    def _template_chosen(self) -> None:
        if self.single:
            self.query_one("#body", TextArea).text = fill(self.template, self.calls[0])[1]
        else:
            self.query_one("#preview", Static).update(self._preview_text(self.template))

    def intents(self) -> list[MessageIntent]:
        channel = self.channel
        template = self.template
        intents: list[MessageIntent] = []
        for call in self.calls:
            subject, body = fill(template, call)
            if self.single:
                body = self.query_one("#body", TextArea).text
            intents.append(
                MessageIntent(
                    message_id=self.message_ids[call.call_id],
                    account_id=call.account_id,
                    channel=channel,
                    subject=subject if channel == "email" else None,
                    body=body,
                    reference=call.call_id,
                    operator=self.actor.name,
                )
            )
        return intents


__all__ = [
    "TEMPLATES",
    "ClientMessageDialog",
    "MessageDialog",
    "MessageTemplate",
    "fill",
    "totals_by_currency",
]
