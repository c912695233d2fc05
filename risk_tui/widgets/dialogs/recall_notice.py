"""Tell clients short a recalled stock about the recall, whether or not they are in call.

Opened by `m` on the Short positions details for clients not in margin call (those in
call get the margin-call message, as on the Real-time warnings tab). The body is the recall
notice template filled per client: the stock, the client's short, the buy-back the
allocation suggests for them (the desk's own figure), and the recall's due date, in the
client's language (the feed's, else the market's default; the dialog says which). For one
client the text may be edited before sending; for several, each gets the template with its
own figures and its own message id. The messages go through the desk's audited outbox like
every other message, with no margin call as their reference. The preview is the text sent:
the drafts are made once and both shown and sent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, RadioSet, Static, TextArea

from risk_tui.core.actions import CHANNELS, MessageIntent, new_message_id
from risk_tui.core.messages import (
    LANGUAGE_NAMES,
    RECALL,
    Language,
    LanguageChoice,
    MessageText,
    recall_message,
)
from risk_tui.core.model import Market
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
from risk_tui.widgets.dialogs.message import CHANNEL_WORDS, ClientMessageDialog, default_choice
from risk_tui.widgets.render import data_text


def fill_recall(line: ShortLine, allocation: Allocation, language: Language) -> MessageText:
    """The recall notice to one client in `language`: the desk's suggested buy-back, the
    recall's due date; feed data sanitized by `recall_message`."""
    holder = allocation.holder
    borrow = line.borrow
    return recall_message(
        language,
        client_name=holder.client_name or "",
        account_id=holder.account_id,
        market=line.instrument.market if line.instrument is not None else Market.HK,
        symbol=line.symbol,
        name=line.instrument.name if line.instrument is not None else line.symbol,
        short_quantity=format_quantity(holder.short_quantity),
        buy_back=format_quantity(allocation.suggested) if allocation.suggested > 0 else None,
        due=borrow.recall_due if borrow is not None else None,
    )


class RecallNoticeDialog(ClientMessageDialog):
    """Answer one recall-notice `MessageIntent` per client, or None when cancelled."""

    def __init__(
        self,
        line: ShortLine,
        allocations: Sequence[Allocation],
        actor: Actor,
        *,
        languages: Mapping[str, LanguageChoice] | None = None,
        new_id: Callable[[], str] = new_message_id,
    ) -> None:
        """`languages`: account id → the client's language and why (`DeskApi.message_languages`);
        a client missing from it is written in English, the desk's built-in default."""
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
        market = line.instrument.market if line.instrument is not None else Market.HK
        given = languages or {}
        self.languages = {a: given.get(a) or default_choice(market) for a in unique}
        # One template: the texts are made once, shown in the preview and sent as they are.
        self.drafts: dict[str, MessageText] = {
            account: fill_recall(line, allocation, self.languages[account].language)
            for account, allocation in unique.items()
        }

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
                yield Static(Text(f"Template: {RECALL.name}"))
                yield Static(self._language_line(), id="language")
                first = self.drafts[self.allocations[0].holder.account_id]
                if self.single:
                    subject = Static(Text(f"Subject: {first.subject}"), id="subject")
                    subject.display = False  # email only: the first channel is the app
                    yield subject
                    body = TextArea(first.body, id="body", soft_wrap=True)
                    body.cursor_blink = False
                    yield body
                    yield Static(Text("Edit the text freely."), classes="hint")
                else:
                    yield Static(self._preview_text(email=False), id="preview", classes="preview")
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

    def _language_line(self) -> Text:
        """Which language each notice is written in, and why."""
        if self.single:
            (choice,) = self.languages.values()
            return Text(f"Language: {choice.describe()}")
        counts = Counter(choice.language for choice in self.languages.values())
        spread = ", ".join(f"{LANGUAGE_NAMES[lang]} {n}" for lang, n in counts.most_common())
        return Text(f"Languages: {spread} · each client's own, else its market's default")

    def _preview_text(self, *, email: bool) -> Text:
        first = self.allocations[0].holder.account_id
        message = self.drafts[first]
        text = Text("Preview for ")
        text.append_text(data_text(first))
        text.append(
            f" ({LANGUAGE_NAMES[message.language]}; each gets its own figures and language):\n",
            style="bold",
        )
        if email:
            text.append(f"Subject: {message.subject}\n")
        text.append(message.body)  # sanitized by `recall_message`
        return text

    @on(RadioSet.Changed, "#channel")
    def _channel_chosen(self) -> None:
        if self.single:
            self.query_one("#subject", Static).display = self.channel == "email"
        else:
            self.query_one("#preview", Static).update(
                self._preview_text(email=self.channel == "email")
            )

    def on_mount(self) -> None:  # Textual runs the base class's too (focus on the channel)
        self._channel_chosen()

    def intents(self) -> list[MessageIntent]:
        channel = self.channel
        intents: list[MessageIntent] = []
        for allocation in self.allocations:
            account = allocation.holder.account_id
            message = self.drafts[account]
            # One client: the text in the editor, the operator's to change; several: the
            # very drafts the preview shows.
            body = self.query_one("#body", TextArea).text if self.single else message.body
            intents.append(
                MessageIntent(
                    message_id=self.message_ids[account],
                    account_id=account,
                    channel=channel,
                    subject=message.subject if channel == "email" else None,
                    body=body,
                    reference=None,  # no margin call: the recall is the reason
                    operator=self.actor.name,
                )
            )
        return intents


__all__ = ["RecallNoticeDialog", "fill_recall"]
