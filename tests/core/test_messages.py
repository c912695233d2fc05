"""Client messages: which language (feed tag, market default, desk default, fallback), and
every template in every language filled with the desk's own figures."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal as D
from typing import Any

import pytest

from risk_tui.core.calendar import MARKET_TZ
from risk_tui.core.lifecycle import CallState, MarginCall
from risk_tui.core.messages import (
    CALL_TEMPLATES,
    FORCE,
    NOTICE,
    REMINDER,
    TEMPLATES,
    Language,
    LanguageChoice,
    LanguageDefaults,
    LanguageSource,
    call_message,
    choose_language,
    deadline_words,
    parse_language,
    recall_message,
)
from risk_tui.core.model import Market
from risk_tui.core.money import format_money
from tests.factories import make_call

HK = MARKET_TZ[Market.HK]
# The HK call of the screen: HKD 252,164.50 due 9 December 15:00 Hong Kong time.
DEADLINE = datetime(2026, 12, 9, 15, 0, tzinfo=HK)
HOSTILE = "\x1b]8;;http://evil\x1b\\x\x1b]8;;\x1b\\ \x1b[2J \x9b31m \u202e陳大文"


def hk_call(**changes: Any) -> MarginCall:
    hk: dict[str, Any] = {
        "account_id": "H2001",
        "client_name": "陳大文",
        "market": Market.HK,
        "currency": "HKD",
        "call_amount": D("252164.50"),
        "deadline": DEADLINE,
    }
    return make_call(**(hk | changes))


# --- which language ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "language"),
    [
        ("en", Language.EN),
        ("en-GB", Language.EN),
        ("EN_us", Language.EN),
        ("zh-Hant", Language.ZH_HANT),
        ("zh-HK", Language.ZH_HANT),
        ("zh-TW", Language.ZH_HANT),
        ("zh-MO", Language.ZH_HANT),
        ("zh_hk", Language.ZH_HANT),
        ("zh-Hant-HK", Language.ZH_HANT),
        ("yue", Language.ZH_HANT),
        ("zh-Hans", Language.ZH_HANS),
        ("zh-CN", Language.ZH_HANS),
        ("zh-SG", Language.ZH_HANS),
        ("zh", Language.ZH_HANS),
        ("zh-Hans-HK", Language.ZH_HANS),  # the script said wins over the region
        (" zh-Hant ", Language.ZH_HANT),
    ],
)
def test_bcp47_tags_name_the_languages_we_write(tag: str, language: Language) -> None:
    assert parse_language(tag) is language


@pytest.mark.parametrize("tag", ["fr", "ms", "zh-Latn", "", "-", "zh--", "中文", "en;drop", "5"])
def test_other_tags_name_no_language_we_write(tag: str) -> None:
    assert parse_language(tag) is None


DEFAULTS = LanguageDefaults(Language.EN, {Market.HK: Language.ZH_HANT})


def test_the_feeds_language_for_the_client_comes_first() -> None:
    choice = choose_language("zh-CN", Market.HK, DEFAULTS)
    assert choice == LanguageChoice(Language.ZH_HANS, LanguageSource.CLIENT, Market.HK)
    assert choice.describe() == "简体中文 (zh-Hans), the client's language in the feed"


def test_no_language_in_the_feed_takes_the_markets_then_the_desks_default() -> None:
    hk = choose_language(None, Market.HK, DEFAULTS)
    assert (hk.language, hk.source) == (Language.ZH_HANT, LanguageSource.MARKET)
    assert hk.describe() == "繁體中文 (zh-Hant), the HK market's default"
    sg = choose_language(None, Market.SG, DEFAULTS)
    assert (sg.language, sg.source) == (Language.EN, LanguageSource.DESK)
    assert sg.describe() == "English (en), the desk's default"
    assert choose_language("  ", Market.SG, DEFAULTS).unknown_tag is None  # blank: none given


def test_an_unknown_tag_falls_back_and_says_which_tag() -> None:
    choice = choose_language("fr", Market.HK, DEFAULTS)
    assert (choice.language, choice.source, choice.unknown_tag) == (
        Language.ZH_HANT,
        LanguageSource.MARKET,
        "fr",
    )
    assert choice.reason() == "the feed's 'fr' has no templates; the HK market's default"
    hostile = choose_language("\x1b[2Jxx", Market.SG, DEFAULTS)
    assert hostile.unknown_tag is not None
    assert "\x1b" not in hostile.unknown_tag
    assert hostile.language is Language.EN


# --- every template, every language, the desk's figures ---------------------------------------


def test_the_margin_call_notice_in_each_language() -> None:
    call = hk_call()
    en = call_message(NOTICE, call, Language.EN)
    assert en.subject == "Margin call on account H2001"
    assert en.body == (
        "Dear 陳大文,\n\n"
        "Your margin account H2001 is in margin call: its equity has fallen below the "
        "maintenance margin. Please deposit HKD 252,164.50 or reduce your positions by "
        "2026-12-09 15:00 HK time. If the call is not met by then, we may liquidate your "
        "positions without further notice."
    )
    hant = call_message(NOTICE, call, Language.ZH_HANT)
    assert hant.subject == "帳戶 H2001 追加保證金通知"
    assert hant.body == (
        "尊敬的客戶 陳大文：\n\n"
        "您的保證金帳戶 H2001 的資產淨值已低於維持保證金水平，須追加保證金 HKD 252,164.50。"
        "請於 2026-12-09 15:00（香港時間）前存入上述款項或進行平倉。如屆時仍未補足，"
        "本公司有權替您進行平倉，而無須事先通知。"
    )
    hans = call_message(NOTICE, call, Language.ZH_HANS)
    assert hans.subject == "账户 H2001 追加保证金通知"
    assert hans.body == (
        "尊敬的客户 陳大文：\n\n"
        "您的保证金账户 H2001 的权益资产已低于维持保证金要求，已触发保证金追缴，"
        "追缴金额为 HKD 252,164.50。请于 2026-12-09 15:00（香港时间）前补足资金或减仓。"
        "如届时仍未满足保证金追缴要求，我们有权对您的持仓进行强制平仓，而无须另行通知。"
    )
    assert (en.language, hant.language, hans.language) == tuple(Language)


def test_the_force_call_notice_asks_for_the_money_now_in_each_language() -> None:
    call = hk_call(state=CallState.FORCE_CALL)
    en = call_message(FORCE, call, Language.EN)
    assert en.subject == "Urgent: force call on account H2001"
    assert "Please deposit HKD 252,164.50 immediately." in en.body
    hant = call_message(FORCE, call, Language.ZH_HANT)
    assert hant.subject == "緊急：帳戶 H2001 強制平倉通知"
    assert "已低於強平保證金水平，您須立即追加保證金 HKD 252,164.50，否則" in hant.body
    hans = call_message(FORCE, call, Language.ZH_HANS)
    assert hans.subject == "紧急：账户 H2001 强制平仓通知"
    assert "已低于强平保证金，您需要立即补足追缴金额 HKD 252,164.50，否则" in hans.body
    for text in (en, hant, hans):
        assert "2026-12-09" not in text.body  # immediately: no deadline to wait for


def test_the_reminder_in_each_language() -> None:
    call = hk_call(notified_at=DEADLINE)
    assert "The amount due is HKD 252,164.50, to be met by 2026-12-09 15:00 HK time." in (
        call_message(REMINDER, call, Language.EN).body
    )
    assert "仍須追加保證金 HKD 252,164.50。請於 2026-12-09 15:00（香港時間）前存入" in (
        call_message(REMINDER, call, Language.ZH_HANT).body
    )
    assert "追缴金额为 HKD 252,164.50。请于 2026-12-09 15:00（香港时间）前补足资金或减仓。" in (
        call_message(REMINDER, call, Language.ZH_HANS).body
    )


def test_figures_are_the_calls_own_formatted_as_everywhere() -> None:
    call = make_call(currency="JPY", call_amount=D("1015"))
    for template in CALL_TEMPLATES:
        for language in Language:
            text = call_message(template, call, language)
            assert f"JPY {format_money(D('1015'), 'JPY')}" in text.body  # JPY 1,015: no cents


def test_no_deadline_asks_for_it_as_soon_as_possible() -> None:
    call = hk_call(deadline=None)
    assert "reduce your positions by the earliest possible moment." in (
        call_message(NOTICE, call, Language.EN).body
    )
    assert "請盡快存入上述款項或進行平倉。" in call_message(NOTICE, call, Language.ZH_HANT).body
    assert "请尽快补足资金或减仓。" in call_message(NOTICE, call, Language.ZH_HANS).body


def test_deadlines_read_on_the_markets_clock_in_each_language() -> None:
    utc = datetime(2026, 12, 9, 20, 0, tzinfo=MARKET_TZ[Market.US]).astimezone(HK)
    assert deadline_words(utc, Market.US, Language.EN) == "by 2026-12-09 20:00 NY time"
    assert (
        deadline_words(utc, Market.US, Language.ZH_HANT) == "於 2026-12-09 20:00（美國東部時間）前"
    )
    assert deadline_words(utc, Market.SG, Language.ZH_HANS) == "于 2026-12-10 09:00（新加坡时间）前"
    naive_utc = datetime(2026, 12, 9, 7, 0)  # noqa: DTZ001 - storage hands back naive UTC
    assert deadline_words(naive_utc, Market.HK, Language.EN) == "by 2026-12-09 15:00 HK time"


def test_client_data_in_a_message_is_inert() -> None:
    call = make_call(client_name=HOSTILE, account_id="A\x1b[31m1")
    for template in CALL_TEMPLATES:
        for language in Language:
            text = call_message(template, call, language)
            for raw in ("\x1b", "\x9b", "\u202e"):
                assert raw not in text.body
                assert raw not in text.subject
            assert "陳大文" in text.body


def test_a_nameless_client_is_still_greeted() -> None:
    call = make_call(client_name="")
    assert call_message(NOTICE, call, Language.EN).body.startswith("Dear client,\n\n")
    assert call_message(NOTICE, call, Language.ZH_HANT).body.startswith("尊敬的客戶：\n\n")
    assert call_message(NOTICE, call, Language.ZH_HANS).body.startswith("尊敬的客户：\n\n")


def test_the_recall_notice_in_each_language() -> None:
    def notice(language: Language, buy_back: str | None) -> str:
        return recall_message(
            language,
            client_name="Jordan Ellis",
            account_id="U3001",
            market=Market.US,
            symbol="TSLA.US",
            name="Tesla",
            short_quantity="40",
            buy_back=buy_back,
            due=DEADLINE.date(),
        ).body

    assert "is short 40 TSLA.US. Please buy back 20 TSLA.US by 2026-12-09. If" in (
        notice(Language.EN, "20")
    )
    assert "融券出借方已召回股票 TSLA.US（Tesla）。" in notice(Language.ZH_HANT, "20")
    assert "請於 2026-12-09 前買回 20 股 TSLA.US。如屆時仍未平倉" in notice(Language.ZH_HANT, "20")
    assert "请做好准备，于 2026-12-09 前买回您的卖空持仓。如届时" in notice(Language.ZH_HANS, None)


def test_every_template_has_every_language_and_the_same_figures() -> None:
    for template in TEMPLATES.values():
        assert set(template.texts) == set(Language)
        fields = {
            lang: {name for name in _placeholders(body)}
            for lang, (_, body) in template.texts.items()
        }
        assert fields[Language.ZH_HANT] == fields[Language.EN] == fields[Language.ZH_HANS]


def _placeholders(text: str) -> set[str]:
    import string

    return {name for _, name, _, _ in string.Formatter().parse(text) if name}
