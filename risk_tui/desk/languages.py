"""The language of each client's messages: the feed's tag for the client, else the config's.

One per desk process, shared by the terminal's queries (the message dialogs) and the
engine's daily reminders, so both write a client in the same language. A tag in the feed
that names no language the templates have is not a rejected record: the message falls back
to the market's (or desk's) default, the dialog says so, and the log says it once per tag.
"""

from __future__ import annotations

import logging

from risk_tui.core.messages import LanguageChoice, choose_language
from risk_tui.core.model import Market
from risk_tui.desk.engine import Engine

log = logging.getLogger(__name__)


class MessageLanguages:
    """Which language each client is written in, from the book and `[messages]`."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._told: set[str] = set()  # unknown tags already in the log

    def choose(self, account_id: str, market: Market) -> LanguageChoice:
        """The client's language and why; `market` is the call's (the account may be gone)."""
        account = self._engine.book.accounts.get(account_id)
        tag = account.language if account is not None else None
        choice = choose_language(tag, market, self._engine.settings.messages.defaults())
        unknown = choice.unknown_tag
        if unknown is not None and unknown not in self._told:
            self._told.add(unknown)
            log.warning(
                "feed: language %r (account %s, and any other with it) has no message "
                "templates; its messages use %s",
                unknown,
                account_id,
                choice.describe(),
            )
        return choice


__all__ = ["MessageLanguages"]
