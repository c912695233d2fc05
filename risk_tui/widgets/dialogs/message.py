"""Send a margin-call message to one client (editable preview) or to several marked ones.

The body is a template filled in per account, in the client's language (the feed's, else
the market's default: `core.messages`, asked of the desk): client name, account, call
amount and currency, deadline on the market's clock. The dialog says which language and
why. For one account the operator may edit the text before sending; for several, each
account gets the template filled with its own figures and its own message id. The preview
is the text sent: the same drafts, computed once per template choice, fill the preview and
the messages. Message ids are minted once, when the dialog opens.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import ClassVar, cast

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, RadioSet, Static, TextArea

from risk_tui.core.actions import CHANNELS, Channel, MessageIntent, new_message_id
from risk_tui.core.lifecycle import CallState, MarginCall
from risk_tui.core.margin import AccountMargin
from risk_tui.core.messages import (
    CALL_TEMPLATES,
    FORCE,
    LANGUAGE_NAMES,
    NOTICE,
    REMINDER,
    Language,
    LanguageChoice,
    LanguageSource,
    MessageText,
    Template,
    call_message,
)
from risk_tui.core.model import Market
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


def default_choice(market: Market) -> LanguageChoice:
    """For a client the desk was not asked about: the desk's built-in default."""
    return LanguageChoice(Language.EN, LanguageSource.DESK, market)


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

    TEMPLATE_IDS: ClassVar[dict[str, str]] = {t.key: f"template-{t.key}" for t in CALL_TEMPLATES}

    def __init__(
        self,
        targets: Sequence[tuple[MarginCall, AccountMargin | None]],
        actor: Actor,
        now: datetime,
        *,
        languages: Mapping[str, LanguageChoice] | None = None,
        new_id: Callable[[], str] = new_message_id,
    ) -> None:
        """`languages`: account id → the client's language and why (`DeskApi.message_languages`);
        a client missing from it is written in English, the desk's built-in default."""
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
        given = languages or {}
        self.languages: dict[str, LanguageChoice] = {
            call.account_id: given.get(call.account_id) or default_choice(call.market)
            for call in self.calls
        }
        self._drafts: tuple[Template, dict[str, MessageText]] | None = None

    @property
    def calls(self) -> tuple[MarginCall, ...]:
        return tuple(call for call, _ in self.targets)

    @property
    def single(self) -> bool:
        return len(self.targets) == 1

    def _default_template(self) -> Template:
        """The force call notice when every call is in force call; a reminder when every
        client was already notified; the margin call notice otherwise."""
        if all(call.state is CallState.FORCE_CALL for call in self.calls):
            return FORCE
        if all(call.notified_at is not None for call in self.calls):
            return REMINDER
        return NOTICE

    def drafts(self, template: Template) -> dict[str, MessageText]:
        """call id → the message it gets with `template`, in its client's language. Made
        once per template: the preview shows these very texts and `intents` sends them."""
        if self._drafts is None or self._drafts[0] is not template:
            self._drafts = (
                template,
                {
                    call.call_id: call_message(
                        template, call, self.languages[call.account_id].language
                    )
                    for call in self.calls
                },
            )
        return self._drafts[1]

    def draft(self, template: Template) -> MessageText:
        """The first account's message: the one previewed."""
        return self.drafts(template)[self.calls[0].call_id]

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
                    yield Static(self._language_line(), id="language")
                else:
                    yield Static(
                        Text(
                            f"{count} accounts marked · total call amount "
                            f"{totals_by_currency(self.calls)}"
                        )
                    )
                    yield VerticalScroll(Static(self._target_list()), classes="targets")
                    yield Static(self._language_line(), id="language")
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
                            for t in CALL_TEMPLATES
                        ),
                        id="template",
                        compact=True,
                    ),
                )
                if self.single:
                    subject = Static(self._subject_line(default), id="subject")
                    subject.display = False  # email only: the first channel is the app
                    yield subject
                    body = TextArea(self.draft(default).body, id="body", soft_wrap=True)
                    body.cursor_blink = False
                    yield body
                    yield Static(
                        Text("Edit the text freely; choosing a template rewrites it."),
                        classes="hint",
                    )
                else:
                    yield Static(
                        self._preview_text(default, email=False), id="preview", classes="preview"
                    )
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
            text.append(f"  {self.languages[call.account_id].language.value}")
        return text

    def _language_line(self) -> Text:
        """Which language the message is written in, and why (per client for several)."""
        if self.single:
            return Text(f"Language: {self.languages[self.calls[0].account_id].describe()}")
        counts = Counter(choice.language for choice in self.languages.values())
        spread = ", ".join(f"{LANGUAGE_NAMES[lang]} {n}" for lang, n in counts.most_common())
        return Text(f"Languages: {spread} · each client's own, else its market's default")

    def _subject_line(self, template: Template) -> Text:
        """The email subject that is sent (email only: the other channels have none)."""
        return Text(f"Subject: {self.draft(template).subject}")

    def _preview_text(self, template: Template, *, email: bool) -> Text:
        first = self.calls[0]
        message = self.draft(template)
        text = Text("Preview for ")
        text.append_text(data_text(first.account_id))
        text.append(
            f" ({LANGUAGE_NAMES[message.language]}; each gets its own figures and language):\n",
            style="bold",
        )
        if email:
            text.append(f"Subject: {message.subject}\n")
        text.append(message.body)  # `call_message` sanitized the client's data
        return text

    # --- reading the form --------------------------------------------------------------

    @property
    def template(self) -> Template:
        pressed = self.query_one("#template", RadioSet).pressed_button
        for t in CALL_TEMPLATES:
            if pressed is not None and pressed.id == self.TEMPLATE_IDS[t.key]:
                return t
        return self._default_template()

    @on(RadioSet.Changed, "#template")
    def _template_chosen(self) -> None:
        if self.single:
            self.query_one("#body", TextArea).text = self.draft(self.template).body
        self._show_preview()

    @on(RadioSet.Changed, "#channel")
    def _channel_chosen(self) -> None:
        self._show_preview()

    def on_mount(self) -> None:  # Textual runs the base class's too (focus on the channel)
        self._show_preview()

    def _show_preview(self) -> None:
        """The subject (email only) and, for several accounts, the first one's message."""
        template = self.template
        if self.single:
            subject = self.query_one("#subject", Static)
            subject.update(self._subject_line(template))
            subject.display = self.channel == "email"
        else:
            self.query_one("#preview", Static).update(
                self._preview_text(template, email=self.channel == "email")
            )

    def intents(self) -> list[MessageIntent]:
        channel = self.channel
        drafts = self.drafts(self.template)
        intents: list[MessageIntent] = []
        for call in self.calls:
            message = drafts[call.call_id]
            # One client: the text in the editor, the operator's to change; several: the
            # very drafts the preview shows.
            body = self.query_one("#body", TextArea).text if self.single else message.body
            intents.append(
                MessageIntent(
                    message_id=self.message_ids[call.call_id],
                    account_id=call.account_id,
                    channel=channel,
                    subject=message.subject if channel == "email" else None,
                    body=body,
                    reference=call.call_id,
                    operator=self.actor.name,
                )
            )
        return intents


__all__ = [
    "ClientMessageDialog",
    "MessageDialog",
    "default_choice",
    "totals_by_currency",
]
