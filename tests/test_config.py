"""Settings: file, environment and options merge; every problem is one line naming the key."""

from __future__ import annotations

from datetime import time
from decimal import Decimal
from pathlib import Path

import pytest

from risk_tui.config import ConfigError, load_settings
from risk_tui.core.margin import CallFormula
from risk_tui.core.model import Market

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "risk-tui.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_file_is_valid_and_documents_the_defaults() -> None:
    from_example = load_settings(ROOT / "config.example.toml", env={})
    defaults = load_settings(None, env={}, discover=False)
    assert from_example == defaults


def test_defaults_match_spec() -> None:
    settings = load_settings(None, env={}, discover=False)
    assert settings.feed.poll_interval == 1.0
    assert settings.feed.stale_after == 5.0
    assert settings.desk.reporting_currency == "SGD"
    assert settings.desk.long_outstanding_days == 90
    assert settings.four_eyes.liquidation_notional == Decimal("1000000")
    sg = settings.margin_call.rule_for(Market.SG)
    assert sg.policy.formula is CallFormula.MM_BUFFER
    assert sg.policy.buffer_pct == Decimal("0.02")
    assert sg.due_trading_days == 3
    assert sg.cutoff_time == time(15, 0)
    assert settings.margin_call.rule_for(Market.HK).policy.formula is CallFormula.IM


def test_market_override_layers_over_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, '[margin_call.markets.US]\nbuffer_pct = "0.05"\ncutoff_time = "16:00"\n')
    settings = load_settings(path, env={})
    us = settings.margin_call.rule_for(Market.US)
    assert us.policy.buffer_pct == Decimal("0.05")
    assert us.cutoff_time == time(16, 0)
    assert settings.margin_call.rule_for(Market.HK).policy.formula is CallFormula.IM


def test_precedence_option_over_env_over_file(tmp_path: Path) -> None:
    path = write(
        tmp_path, '[feed]\nurl = "http://file:1"\n[db]\nurl = "sqlite+aiosqlite:///f.db"\n'
    )
    env = {
        "RISK_TUI_FEED_URL": "http://env:2",
        "RISK_TUI_FEED__POLL_INTERVAL": "0.5",
        "RISK_TUI_DB": "sqlite+aiosqlite:///e.db",
    }
    settings = load_settings(path, env=env, overrides={("feed", "url"): "http://cli:3"})
    assert settings.feed.url == "http://cli:3"
    assert settings.feed.poll_interval == 0.5
    assert settings.db.url == "sqlite+aiosqlite:///e.db"


def test_config_found_through_env_variable(tmp_path: Path) -> None:
    path = write(tmp_path, '[desk]\nreporting_currency = "HKD"\n')
    assert load_settings(None, env={"RISK_TUI_CONFIG": str(path)}).desk.reporting_currency == "HKD"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[margin_call]\nbuffer_pct = "-0.01"\n',
            "margin_call.buffer_pct: must be at least 0 (got '-0.01')",
        ),
        (
            '[margin_call]\nformula = "median"\n',
            "margin_call.formula: must be 'mm_buffer' or 'im' (got 'median')",
        ),
        (
            "[feed]\npoll_intervall = 1\n",
            "feed.poll_intervall: unknown key (did you mean 'poll_interval'?)",
        ),
        ("[nonsense]\nx = 1\n", "nonsense: unknown key"),
        ('[fed]\nurl = "x"\n', "fed: unknown key (did you mean 'feed'?)"),
        (
            '[margin_call.markets.HK]\ncutof_time = "15:00"\n',
            "margin_call.markets.HK.cutof_time: unknown key (did you mean 'cutoff_time'?)",
        ),
        ('[feed]\npoll_interval = "fast"\n', "feed.poll_interval: must be a number (got 'fast')"),
        (
            "[margin_call]\nbuffer_pct = 0.02\n",
            'margin_call.buffer_pct: write it as a string, e.g. "0.02"',
        ),
        ('[margin_call]\ncutoff_time = "25:00"\n', "margin_call.cutoff_time:"),
        (
            "[four_eyes]\nliquidation_notional = 1000000.0\n",
            'four_eyes.liquidation_notional: write it as a string, e.g. "1000000.0"',
        ),
        (
            '[four_eyes]\nliquidation_notional = "-1"\n',
            "four_eyes.liquidation_notional: must be at least 0",
        ),
        (
            '[margin_call.markets.JP]\nformula = "im"\n',
            "margin_call.markets.JP: must be 'HK', 'SG' or 'US' (got 'JP')",
        ),
        ('[db]\nurl = "mysql://x"\n', "db.url: unsupported database URL"),
        ('[desk]\nreporting_currency = "sgd"\n', "desk.reporting_currency: not an ISO 4217"),
        (
            '[desk]\nreporting_currency = "ABC"\n',
            "desk.reporting_currency: not an ISO 4217 currency (got 'ABC')",
        ),
        ("[feed\n", "not valid TOML"),
    ],
)
def test_bad_config_is_one_line_naming_file_and_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert expected in message


def test_no_problem_is_said_in_pydantic_words(tmp_path: Path) -> None:
    """Issue 14 point 8: "Input should be …" leaked from pydantic; a value the message
    already quotes is not quoted twice."""
    text = (
        '[feed]\npoll_interval = "fast"\nstale_after = -5\nurl = 5\n'
        '[margin_call]\nformula = "median"\n[daily]\nsnapshot_time = "25:00"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text), env={})
    assert len(caught.value.problems) == 5
    for line in caught.value.problems:
        assert "Input should" not in line
        assert "valid" not in line
    assert any(
        line.endswith("feed.stale_after: must be more than 0 (got -5)")
        for line in caught.value.problems
    )
    assert any(
        "feed.url: must be text (in quotes) (got 5)" in line for line in caught.value.problems
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(None, overrides={("db", "url"): "mysql://x/y"}, env={}, discover=False)
    assert str(caught.value).count("'mysql://x/y'") == 1


def test_an_option_is_named_as_the_user_typed_it() -> None:
    """Issue 14 point 8: `--db mysql://x/y` was reported as "--db-url"."""
    with pytest.raises(ConfigError, match=r"^--db: db.url: unsupported database URL"):
        load_settings(
            None,
            overrides={("db", "url"): "mysql://x/y"},
            option_names={("db", "url"): "--db"},
            env={},
            discover=False,
        )
    with pytest.raises(ConfigError, match=r"^--db-url: db.url: "):  # no name given: derived
        load_settings(None, overrides={("db", "url"): "mysql://x/y"}, env={}, discover=False)


def test_bad_env_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"^RISK_TUI_FEED__STALE_AFTER: feed.stale_after: "):
        load_settings(None, env={"RISK_TUI_FEED__STALE_AFTER": "-5"}, discover=False)


def test_missing_explicit_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.toml", env={})


def test_token_is_never_echoed(tmp_path: Path) -> None:
    settings = load_settings(None, env={"RISK_TUI_FEED_TOKEN": "s3cret"}, discover=False)
    assert settings.feed.token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)
    assert "s3cret" not in str(settings.feed)


def test_every_problem_is_a_line_of_its_own_at_most_five(tmp_path: Path) -> None:
    """SPEC.md settled: one line per problem, at most five; a single problem is one line."""
    two = write(tmp_path, '[feed]\npoll_interval = "fast"\n[margin_call]\nformula = "median"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(two, env={})
    lines = str(caught.value).split("\n")
    assert len(lines) == 2
    assert all(line.startswith(str(two)) for line in lines)
    assert "feed.poll_interval" in lines[0]
    assert "margin_call.formula" in lines[1]
    seven = write(tmp_path, "[feed]\n" + "".join(f"nope{i} = 1\n" for i in range(7)))
    with pytest.raises(ConfigError) as caught:
        load_settings(seven, env={})
    assert caught.value.problems == tuple(str(caught.value).split("\n"))
    assert len(caught.value.problems) == 5
    assert caught.value.problems[-1].endswith("unknown key (and 2 more problems)")


def test_keys_naming_an_unknown_binding_id_are_an_error_naming_each_id(tmp_path: Path) -> None:
    """Issue 13 point 8: `[keys]` with an unknown binding id was accepted silently."""
    known = {"call.liquidate", "table.mark"}
    path = write(
        tmp_path, '[keys]\n"call.liquidat" = "x"\n"table.mark" = "space,x"\n"bogus" = "z"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={}, binding_ids=known)
    first, second = caught.value.problems
    assert first.startswith(f"{path}: keys.call.liquidat: unknown binding id 'call.liquidat'")
    assert "did you mean 'call.liquidate'?" in first
    assert second.startswith(f"{path}: keys.bogus: unknown binding id 'bogus'")
    # Without the terminal's ids (headless commands) nothing is checked; known ids are fine.
    assert load_settings(path, env={}).keys["bogus"] == "z"
    good = write(tmp_path, '[keys]\n"table.mark" = "space,x"\n')
    assert load_settings(good, env={}, binding_ids=known).keys == {"table.mark": "space,x"}
    # From the environment, the variable is named.
    with pytest.raises(ConfigError, match=r"^RISK_TUI_KEYS__NOPE: keys.nope: unknown binding"):
        load_settings(None, env={"RISK_TUI_KEYS__NOPE": "x"}, discover=False, binding_ids=known)


# --- [messages]: the language of client messages when the feed gives none -------------------


def test_messages_default_to_english_everywhere() -> None:
    from risk_tui.core.messages import Language, LanguageDefaults

    settings = load_settings(None, env={}, discover=False)
    assert settings.messages.defaults() == LanguageDefaults(Language.EN, {})


def test_messages_take_a_desk_and_per_market_language(tmp_path: Path) -> None:
    from risk_tui.core.messages import Language

    path = write(
        tmp_path,
        '[messages]\nlanguage = "zh-CN"\n[messages.markets.HK]\nlanguage = "zh-HK"\n'
        "[messages.markets.US]\n",
    )
    defaults = load_settings(path, env={}).messages.defaults()
    assert defaults.language is Language.ZH_HANS  # any tag naming one of ours
    assert dict(defaults.markets) == {Market.HK: Language.ZH_HANT}  # US: the desk's
    env = {"RISK_TUI_MESSAGES__LANGUAGE": "zh-Hant"}
    from_env = load_settings(None, env=env, discover=False).messages.defaults()
    assert from_env.language is Language.ZH_HANT


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[messages]\nlanguage = "fr"\n',
            "messages.language: must be a language the messages are written in: "
            "en, zh-Hant or zh-Hans (got 'fr')",
        ),
        (
            '[messages.markets.HK]\nlanguage = "klingon"\n',
            "messages.markets.HK.language: must be a language the messages are written in",
        ),
        ('[messages.markets.JP]\nlanguage = "en"\n', "messages.markets.JP: must be 'HK', 'SG'"),
        (
            '[messages.markets.HK]\nlangauge = "en"\n',
            "messages.markets.HK.langauge: unknown key (did you mean 'language'?)",
        ),
        (
            "[messages]\nlanguage = 5\n",
            "messages.language: must be 'en', 'zh-Hant' or 'zh-Hans' (got 5)",
        ),
        ('[messages]\ndefault_language = "en"\n', "messages.default_language: unknown key"),
    ],
)
def test_bad_message_languages_are_one_line_each(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert str(caught.value).startswith(f"{path}: {expected}")
    assert "\n" not in str(caught.value)


def test_desk_timezone_defaults_to_the_reporting_market_zone(tmp_path: Path) -> None:
    """Issue 14 point 4: the header clock's zone is `desk.timezone`, by default the zone
    of the reporting currency's market."""
    assert load_settings(None, env={}, discover=False).desk.timezone == "Asia/Singapore"
    hk = load_settings(write(tmp_path, '[desk]\nreporting_currency = "HKD"\n'), env={})
    assert hk.desk.timezone == "Asia/Hong_Kong"
    assert hk.desk.zone.key == "Asia/Hong_Kong"
    eur = load_settings(write(tmp_path, '[desk]\nreporting_currency = "EUR"\n'), env={})
    assert eur.desk.timezone == "UTC"
    given = load_settings(
        write(tmp_path, '[desk]\nreporting_currency = "HKD"\ntimezone = "Europe/London"\n'),
        env={},
    )
    assert given.desk.zone.key == "Europe/London"


@pytest.mark.parametrize("zone", ["Asia/Singapur", "SGT", "", "../etc/passwd"])
def test_an_unknown_desk_timezone_is_one_line_naming_the_key(tmp_path: Path, zone: str) -> None:
    path = write(tmp_path, f'[desk]\ntimezone = "{zone}"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: desk.timezone: unknown time zone {zone!r}")
    assert message.count(repr(zone)) == 1
