"""Client messages in the client's language: the templates, the language choice, the text sent.

Every message the desk writes to a client — the margin call notice, the force call
notice, the reminder (the operator's and the engine's daily one) and the recall notice —
is filled here, in English, Traditional Chinese (zh-Hant) or Simplified Chinese (zh-Hans).
The Chinese texts use the broker's own words (SPEC.md's seeds): the Traditional back-office
page (資產淨值, 維持保證金水平, 有權替客戶進行平倉，而無須事先通知) and the Simplified help
page (权益资产, 维持保证金要求, 追缴金额, 补足资金或减仓, 强平保证金, 强制平仓).

Which language: the client's own, when the feed gives one (FEED.md's optional `language`
on an account, a BCP 47 tag) that we have templates for; else the configured default of
the client's market; else the desk's default (`[messages]` in the config, English out of
the box). A tag we have no templates for is not an error in the feed — the account's
figures are good and it must stay monitored — so the message falls back, and says so.

Figures are the desk's own: the call's amount through `format_money`, its deadline on the
market's clock. Feed text (client name, account, symbol) goes through `sanitize`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from types import MappingProxyType

from risk_tui.core.calendar import MARKET_TZ
from risk_tui.core.clock import aware, clock_name
from risk_tui.core.lifecycle import MarginCall
from risk_tui.core.model import Market
from risk_tui.core.money import format_money
from risk_tui.core.text import sanitize

NAME_LENGTH = 80  # a client name in a message, at most (feed text, sanitized)
TAG_LENGTH = 35  # a language tag as kept and shown (BCP 47 tags are shorter in practice)


class Language(StrEnum):
    """The languages the desk has templates for, by their BCP 47 tags."""

    EN = "en"
    ZH_HANT = "zh-Hant"
    ZH_HANS = "zh-Hans"


# How the operator reads each language's name (the dialog says it beside the tag).
LANGUAGE_NAMES: Mapping[Language, str] = MappingProxyType(
    {Language.EN: "English", Language.ZH_HANT: "繁體中文", Language.ZH_HANS: "简体中文"}
)

# Regions whose Chinese is written in Traditional characters; any other region (CN, SG,
# MY, …) and a bare `zh` are Simplified, as CLDR's likely subtags have it (zh → zh-Hans-CN).
_TRADITIONAL_REGIONS = frozenset({"hk", "mo", "tw"})


def parse_language(tag: str) -> Language | None:
    """The language a BCP 47-ish tag asks for, if the desk has templates for it.

    `en`, `en-GB` → English; `zh-Hant`, `zh-HK`, `zh-TW`, `zh-MO`, `yue` → Traditional;
    `zh-Hans`, `zh-CN`, `zh-SG`, `zh` → Simplified. An explicit script wins over the
    region (`zh-Hans-HK` is Simplified). Case and `_` for `-` are forgiven. None for any
    other language (`fr`, `ms`, `zh-Latn`) and for what is not a tag at all.
    """
    parts = [part.lower() for part in re.split(r"[-_]", tag.strip())]
    if not parts or not all(part.isalnum() and part.isascii() for part in parts):
        return None
    primary, subtags = parts[0], parts[1:]
    if primary == "en":
        return Language.EN
    if primary not in ("zh", "cmn", "yue"):
        return None
    script = next((s for s in subtags if len(s) == 4 and s.isalpha()), None)
    if script is not None:
        return {"hant": Language.ZH_HANT, "hans": Language.ZH_HANS}.get(script)
    region = next((s for s in subtags if len(s) == 2 and s.isalpha()), None)
    if primary == "yue" or region in _TRADITIONAL_REGIONS:
        return Language.ZH_HANT
    return Language.ZH_HANS


class LanguageSource(StrEnum):
    """Why a client's messages are in their language."""

    CLIENT = "client"  # the feed's `language` for the client
    MARKET = "market"  # the config's default for the client's market
    DESK = "desk"  # the config's desk-wide default (English out of the box)


@dataclass(frozen=True, slots=True)
class LanguageDefaults:
    """The configured languages for clients whose feed record names none (`[messages]`)."""

    language: Language = Language.EN
    markets: Mapping[Market, Language] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LanguageChoice:
    """The language of one client's messages, and why."""

    language: Language
    source: LanguageSource
    market: Market
    unknown_tag: str | None = None  # the feed's tag, when it names no language we have

    def reason(self) -> str:
        """Why, in the operator's words: `the client's language in the feed`, …"""
        if self.source is LanguageSource.CLIENT:
            return "the client's language in the feed"
        default = (
            f"the {self.market.value} market's default"
            if self.source is LanguageSource.MARKET
            else "the desk's default"
        )
        if self.unknown_tag is not None:
            return f"the feed's {self.unknown_tag!r} has no templates; {default}"
        return default

    def describe(self) -> str:
        """`繁體中文 (zh-Hant), the client's language in the feed`."""
        return f"{LANGUAGE_NAMES[self.language]} ({self.language.value}), {self.reason()}"


def choose_language(tag: str | None, market: Market, defaults: LanguageDefaults) -> LanguageChoice:
    """The client's own language when the feed names one we have, else the defaults."""
    unknown: str | None = None
    if tag is not None and tag.strip():
        language = parse_language(tag)
        if language is not None:
            return LanguageChoice(language, LanguageSource.CLIENT, market)
        unknown = sanitize(tag.strip(), max_length=TAG_LENGTH)
    if market in defaults.markets:
        return LanguageChoice(defaults.markets[market], LanguageSource.MARKET, market, unknown)
    return LanguageChoice(defaults.language, LanguageSource.DESK, market, unknown)


# --- the templates -----------------------------------------------------------------------


class TemplateKey(StrEnum):
    NOTICE = "notice"
    FORCE = "force"
    REMINDER = "reminder"
    RECALL = "recall"


@dataclass(frozen=True, slots=True)
class Template:
    key: TemplateKey
    name: str  # as the operator picks it (the desk's own language)
    texts: Mapping[Language, tuple[str, str]]  # language → (subject, body) format strings


@dataclass(frozen=True, slots=True)
class MessageText:
    """A filled template: what is sent (the subject for email only)."""

    subject: str
    body: str
    language: Language


_DEAR = {
    Language.EN: "Dear {name},",
    Language.ZH_HANT: "尊敬的客戶 {name}：",
    Language.ZH_HANS: "尊敬的客户 {name}：",
}
_DEAR_NOBODY = {
    Language.EN: "Dear client,",
    Language.ZH_HANT: "尊敬的客戶：",
    Language.ZH_HANS: "尊敬的客户：",
}

# `by {deadline}` in each language: the deadline on the market's clock, its zone in words.
_BY = {Language.EN: "by {at}", Language.ZH_HANT: "於 {at} 前", Language.ZH_HANS: "于 {at} 前"}
_BY_ZONED = {  # a time with its zone in full-width brackets: no space before 前
    Language.EN: "by {at} {zone}",
    Language.ZH_HANT: "於 {at}（{zone}）前",
    Language.ZH_HANS: "于 {at}（{zone}）前",
}
_AT_ONCE = {
    Language.EN: "by the earliest possible moment",
    Language.ZH_HANT: "盡快",
    Language.ZH_HANS: "尽快",
}
_ZONE = {
    Language.EN: {market: clock_name(market) for market in Market},  # "NY time", as on screen
    Language.ZH_HANT: {Market.HK: "香港時間", Market.SG: "新加坡時間", Market.US: "美國東部時間"},
    Language.ZH_HANS: {Market.HK: "香港时间", Market.SG: "新加坡时间", Market.US: "美国东部时间"},
}

NOTICE = Template(
    TemplateKey.NOTICE,
    "margin call",
    {
        Language.EN: (
            "Margin call on account {account_id}",
            "{dear}\n\n"
            "Your margin account {account_id} is in margin call: its equity has fallen "
            "below the maintenance margin. Please deposit {currency} {call_amount} or "
            "reduce your positions {by_deadline}. If the call is not met by then, we may "
            "liquidate your positions without further notice.",
        ),
        Language.ZH_HANT: (
            "帳戶 {account_id} 追加保證金通知",
            "{dear}\n\n"
            "您的保證金帳戶 {account_id} 的資產淨值已低於維持保證金水平，須追加保證金 "
            "{currency} {call_amount}。請{by_deadline}存入上述款項或進行平倉。如屆時仍未補足，"
            "本公司有權替您進行平倉，而無須事先通知。",
        ),
        Language.ZH_HANS: (
            "账户 {account_id} 追加保证金通知",
            "{dear}\n\n"
            "您的保证金账户 {account_id} 的权益资产已低于维持保证金要求，已触发保证金追缴，"
            "追缴金额为 {currency} {call_amount}。请{by_deadline}补足资金或减仓。如届时仍未"
            "满足保证金追缴要求，我们有权对您的持仓进行强制平仓，而无须另行通知。",
        ),
    },
)

FORCE = Template(
    TemplateKey.FORCE,
    "force call",
    {
        Language.EN: (
            "Urgent: force call on account {account_id}",
            "{dear}\n\n"
            "Your margin account {account_id} is in force call: its equity has fallen "
            "below the force-liquidation margin. Please deposit {currency} {call_amount} "
            "immediately. Otherwise we may liquidate your positions at any time without "
            "further notice.",
        ),
        Language.ZH_HANT: (
            "緊急：帳戶 {account_id} 強制平倉通知",
            "{dear}\n\n"
            "您的保證金帳戶 {account_id} 的資產淨值已低於強平保證金水平，您須立即追加保證金 "
            "{currency} {call_amount}，否則本公司有權隨時替您進行強制平倉，而無須事先通知。",
        ),
        Language.ZH_HANS: (
            "紧急：账户 {account_id} 强制平仓通知",
            "{dear}\n\n"
            "您的保证金账户 {account_id} 的权益资产已低于强平保证金，您需要立即补足追缴金额 "
            "{currency} {call_amount}，否则我们有权随时对您的持仓进行强制平仓，而无须另行通知。",
        ),
    },
)

REMINDER = Template(
    TemplateKey.REMINDER,
    "reminder",
    {
        Language.EN: (
            "Reminder: margin call on account {account_id}",
            "{dear}\n\n"
            "A reminder that your margin account {account_id} is still in margin call. "
            "The amount due is {currency} {call_amount}, to be met {by_deadline}. If it "
            "is not met by then, we may liquidate your positions without further notice.",
        ),
        Language.ZH_HANT: (
            "帳戶 {account_id} 追加保證金提示",
            "{dear}\n\n"
            "謹此提示，您的保證金帳戶 {account_id} 仍須追加保證金 {currency} {call_amount}。"
            "請{by_deadline}存入上述款項或進行平倉。如屆時仍未補足，本公司有權替您進行平倉，"
            "而無須事先通知。",
        ),
        Language.ZH_HANS: (
            "账户 {account_id} 追缴保证金提醒",
            "{dear}\n\n"
            "温馨提醒，您的保证金账户 {account_id} 仍处于保证金追缴状态，追缴金额为 "
            "{currency} {call_amount}。请{by_deadline}补足资金或减仓。如届时仍未满足保证金"
            "追缴要求，我们有权对您的持仓进行强制平仓，而无须另行通知。",
        ),
    },
)

RECALL = Template(
    TemplateKey.RECALL,
    "recall notice",
    {
        Language.EN: (
            "Recall of {symbol}: your short position in account {account_id}",
            "{dear}\n\n"
            "The lender has recalled {symbol} ({name}). Your account {account_id} is short "
            "{short_quantity} {symbol}. {ask} If the position is not covered by then, we may "
            "buy it in on your behalf without further notice.",
        ),
        Language.ZH_HANT: (
            "{symbol} 股票召回：帳戶 {account_id} 的沽空倉位",
            "{dear}\n\n"
            "融券出借方已召回股票 {symbol}（{name}）。您的帳戶 {account_id} 現沽空 {symbol} "
            "共 {short_quantity} 股。{ask}如屆時仍未平倉，本公司有權替您買入平倉，"
            "而無須事先通知。",
        ),
        Language.ZH_HANS: (
            "{symbol} 股票召回：账户 {account_id} 的卖空持仓",
            "{dear}\n\n"
            "融券出借方已召回股票 {symbol}（{name}）。您的账户 {account_id} 现卖空 {symbol} "
            "共 {short_quantity} 股。{ask}如届时仍未平仓，我们有权为您买入平仓，"
            "而无须另行通知。",
        ),
    },
)

# The recall notice's request: buy back the desk's suggested quantity, or be ready to.
_BUY_BACK = {
    Language.EN: "Please buy back {quantity} {symbol} {by_deadline}.",
    Language.ZH_HANT: "請{by_deadline}買回 {quantity} 股 {symbol}。",
    Language.ZH_HANS: "请{by_deadline}买回 {quantity} 股 {symbol}。",
}
_BE_READY = {
    Language.EN: "Please be ready to buy back your short position {by_deadline}.",
    Language.ZH_HANT: "請做好準備，{by_deadline}買回您的沽空倉位。",
    Language.ZH_HANS: "请做好准备，{by_deadline}买回您的卖空持仓。",
}

# The templates an operator picks from for a margin call, in the dialog's order.
CALL_TEMPLATES: tuple[Template, ...] = (NOTICE, REMINDER, FORCE)
TEMPLATES: Mapping[TemplateKey, Template] = MappingProxyType(
    {t.key: t for t in (*CALL_TEMPLATES, RECALL)}
)


def deadline_words(at: datetime | date | None, market: Market, language: Language) -> str:
    """`by 2026-03-12 15:00 SG time`, `於 2026-03-12 15:00（新加坡時間）前`: the deadline on
    the market's clock (a date as it is), or `as soon as possible` in the language."""
    if at is None:
        return _AT_ONCE[language]
    if isinstance(at, datetime):
        local = aware(at).astimezone(MARKET_TZ[market])
        return _BY_ZONED[language].format(
            at=f"{local:%Y-%m-%d %H:%M}", zone=_ZONE[language][market]
        )
    return _BY[language].format(at=f"{at:%Y-%m-%d}")


def _dear(client_name: str, language: Language) -> str:
    name = sanitize(client_name, max_length=NAME_LENGTH).strip()
    return _DEAR[language].format(name=name) if name else _DEAR_NOBODY[language]


def _render(template: Template, language: Language, fields: Mapping[str, str]) -> MessageText:
    subject, body = template.texts[language]
    return MessageText(subject.format(**fields), body.format(**fields), language)


def call_message(template: Template, call: MarginCall, language: Language) -> MessageText:
    """One margin call's message: its client, account, amount and deadline, in `language`."""
    fields = {
        "dear": _dear(call.client_name, language),
        "account_id": sanitize(call.account_id),
        "currency": call.currency,
        "call_amount": format_money(call.call_amount, call.currency),
        "by_deadline": deadline_words(call.deadline, call.market, language),
    }
    return _render(template, language, fields)


def recall_message(
    language: Language,
    *,
    client_name: str,
    account_id: str,
    market: Market,
    symbol: str,
    name: str,
    short_quantity: str,
    buy_back: str | None,
    due: date | None,
) -> MessageText:
    """The recall notice to one client short a recalled stock; quantities come formatted by
    the caller (as the screen shows them), `buy_back` None when the desk suggests none."""
    symbol = sanitize(symbol)
    by_deadline = deadline_words(due, market, language)
    if buy_back is not None:
        ask = _BUY_BACK[language].format(quantity=buy_back, symbol=symbol, by_deadline=by_deadline)
    else:
        ask = _BE_READY[language].format(by_deadline=by_deadline)
    fields = {
        "dear": _dear(client_name, language),
        "account_id": sanitize(account_id),
        "symbol": symbol,
        "name": sanitize(name),
        "short_quantity": short_quantity,
        "ask": ask,
    }
    return _render(RECALL, language, fields)


__all__ = [
    "CALL_TEMPLATES",
    "FORCE",
    "LANGUAGE_NAMES",
    "NOTICE",
    "RECALL",
    "REMINDER",
    "TEMPLATES",
    "Language",
    "LanguageChoice",
    "LanguageDefaults",
    "LanguageSource",
    "MessageText",
    "Template",
    "TemplateKey",
    "call_message",
    "choose_language",
    "deadline_words",
    "parse_language",
    "recall_message",
]
