"""Settings: a TOML file, then RISK_TUI_* environment overrides, then command-line options.

Validated with pydantic. Any problem stops start-up with one line naming where the value
came from (file, environment variable or option), the key, and what is wrong.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import time
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin
from zoneinfo import ZoneInfo

import platformdirs
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from risk_tui.core.actions import Channel
from risk_tui.core.calendar import DeadlineRule, TradingCalendars
from risk_tui.core.clock import home_zone_name, zone_named
from risk_tui.core.margin import CallFormula, CallPolicy
from risk_tui.core.messages import Language, LanguageDefaults, parse_language
from risk_tui.core.model import Market
from risk_tui.core.money import UnknownCurrency, check_currency
from risk_tui.core.roles import Role
from risk_tui.core.shorts import AllocationRule

ENV_PREFIX = "RISK_TUI_"
CONFIG_FILENAME = "risk-tui.toml"

# SPEC.md's named overrides; any key can also be set as RISK_TUI_<SECTION>__<KEY>.
NAMED_ENV = {
    "RISK_TUI_FEED_URL": ("feed", "url"),
    "RISK_TUI_FEED_TOKEN": ("feed", "token"),
    "RISK_TUI_DB": ("db", "url"),
}


MAX_PROBLEMS = 5  # a config error says this many problems at most, one line each


class ConfigError(Exception):
    """Settings that cannot be used: one line per problem (at most `MAX_PROBLEMS`; the last
    says how many more), each naming where the value came from, the key and what is wrong."""

    def __init__(self, *problems: str) -> None:
        shown = list(problems[:MAX_PROBLEMS])
        if len(problems) > MAX_PROBLEMS:
            shown[-1] += f" (and {len(problems) - MAX_PROBLEMS} more problems)"
        self.problems = tuple(shown)
        super().__init__("\n".join(shown))


def _exact_decimal(value: Any) -> Any:
    # A TOML float has already been through binary floating point: ask for a string.
    if isinstance(value, float):
        raise ValueError(f'write it as a string, e.g. "{value}", to keep it exact')
    return value


ExactDecimal = Annotated[Decimal, BeforeValidator(_exact_decimal)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeedSettings(_Section):
    url: str = "http://127.0.0.1:8765"
    """Base URL of the broker's FEED.md server."""
    token: SecretStr = SecretStr("")
    """Bearer token (or RISK_TUI_FEED_TOKEN); never printed or logged."""
    poll_interval: float = Field(1.0, gt=0, le=3600)
    """Seconds between the end of one poll and the start of the next."""
    stale_after: float = Field(5.0, gt=0, le=3600)
    """Seconds without a successful poll before the screen says STALE."""
    timeout: float = Field(10.0, gt=0, le=600)
    """Total deadline for one poll, connect to last byte, in seconds."""

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(f"not an http(s) URL: {value!r}")
        return value.rstrip("/")


class DbSettings(_Section):
    url: str = "sqlite+aiosqlite:///risk-tui.db"
    """SQLAlchemy URL: sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/db."""

    @field_validator("url")
    @classmethod
    def _supported(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                f"unsupported database URL {value!r}: use sqlite+aiosqlite:///PATH "
                "or postgresql+asyncpg://…"
            )
        return value


class DeskSettings(_Section):
    reporting_currency: str = "SGD"
    """Currency of the desk's totals across accounts of different base currencies."""
    long_outstanding_days: int = Field(90, ge=1, le=3650)
    """A call still open this many days after its trigger is long outstanding (長期未結清)."""
    timezone: str = "Asia/Singapore"
    """IANA zone of the header clock (and of any time not on a market's clock); by default
    the reporting currency's market's zone (SGD: Asia/Singapore, HKD: Asia/Hong_Kong,
    USD: America/New_York; any other: UTC)."""

    @model_validator(mode="before")
    @classmethod
    def _home_zone(cls, data: Any) -> Any:
        if isinstance(data, dict) and "timezone" not in data:
            currency = data.get("reporting_currency", "SGD")
            if isinstance(currency, str):
                data = {**data, "timezone": home_zone_name(currency.strip().upper())}
        return data

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone_named(value)  # ValueError naming the zone when it is not one
        return value

    @property
    def zone(self) -> ZoneInfo:
        """The desk's zone (`timezone`), for the header clock and desk-wide times."""
        return zone_named(self.timezone)

    @field_validator("reporting_currency")
    @classmethod
    def _iso_code(cls, value: str) -> str:
        try:
            return check_currency(value)
        except UnknownCurrency as unknown:
            raise ValueError(unknown.why) from None  # the value itself follows: "(got …)"


class MarketRule(_Section):
    """Any margin_call key, overridden for one market; unset keys take the defaults."""

    formula: CallFormula | None = None
    buffer_pct: ExactDecimal | None = Field(None, ge=0, lt=1)
    due_trading_days: int | None = Field(None, ge=1, le=30)
    cutoff_time: time | None = None


DEFAULT_MARKET_RULES: dict[str, dict[str, Any]] = {"HK": {"formula": "im"}}


class MarginCallSettings(_Section):
    formula: CallFormula = CallFormula.MM_BUFFER
    """mm_buffer: call = MM + buffer_pct × gross MV − equity; im: call = IM − equity."""
    buffer_pct: ExactDecimal = Field(Decimal("0.02"), ge=0, lt=1)
    """The buffer above MM, as a fraction of gross market value (formula mm_buffer)."""
    due_trading_days: int = Field(3, ge=1, le=30)
    """Trading days to meet a call, counting the day of the notice."""
    cutoff_time: time = time(15, 0)
    """Local time on the last day by which the call must be met."""
    markets: dict[Market, MarketRule] = Field(default_factory=dict)
    """Per-market overrides, [margin_call.markets.HK] etc.; by default HK calls back to IM."""

    @model_validator(mode="before")
    @classmethod
    def _default_markets(cls, data: Any) -> Any:
        # The broker's HK pages call back to initial margin; a user table for HK (or any
        # other market) is laid over that default, key by key.
        if isinstance(data, dict):
            given = data.get("markets", {})
            if isinstance(given, dict):
                merged: dict[Any, Any] = {k: dict(v) for k, v in DEFAULT_MARKET_RULES.items()}
                for market, rule in given.items():
                    if isinstance(rule, dict) and isinstance(merged.get(market), dict):
                        merged[market] = {**merged[market], **rule}
                    else:
                        merged[market] = rule
                data = {**data, "markets": merged}
        return data

    def rule_for(self, market: Market) -> ResolvedRule:
        override = self.markets.get(market, MarketRule())
        return ResolvedRule(
            policy=CallPolicy(
                formula=override.formula or self.formula,
                buffer_pct=self.buffer_pct if override.buffer_pct is None else override.buffer_pct,
            ),
            due_trading_days=override.due_trading_days or self.due_trading_days,
            cutoff_time=override.cutoff_time or self.cutoff_time,
        )

    def deadline_rule(self, calendars: TradingCalendars, market: Market) -> DeadlineRule:
        """Where a call's deadline in `market` may fall: its sessions, by its cut-off."""
        return DeadlineRule(calendars, market, self.rule_for(market).cutoff_time)


@dataclass(frozen=True)
class ResolvedRule:
    policy: CallPolicy
    due_trading_days: int
    cutoff_time: time


class CalendarSettings(_Section):
    overrides: Path | None = None
    """TOML table of closures, extra sessions and covered years; default: the packaged one."""


class DailySettings(_Section):
    """The engine's daily jobs for every open call, at each call's market local time."""

    snapshot_time: time = time(17, 30)
    """Local time (the call's market) of the daily snapshot (每日快照), taken on live data."""
    reminder_time: time = time(9, 30)
    """Local time (the call's market) of the daily reminder message to clients in call."""
    reminders: bool = True
    """Send daily reminders until the deadline (never to exceptions or on the trigger day)."""
    reminder_channel: Channel = "app"
    """Channel of the daily reminder: app, email, sms or voice."""

    @field_validator("snapshot_time", "reminder_time")
    @classmethod
    def _local_time(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError('a market local time takes no time zone, e.g. "17:30"')
        return value


class ShortsSettings(_Section):
    """The Short positions tab: how a recall shortfall is shared out across clients."""

    allocation: AllocationRule = AllocationRule.LARGEST_DEFICIT
    """largest_deficit (margin deficit, then position), largest_position or pro_rata."""


class FourEyesSettings(_Section):
    """Which liquidations need a second person's approval (deadline moves and closes always do)."""

    liquidation_notional: ExactDecimal = Field(Decimal("1000000"), ge=0)
    """A liquidation order (or auto-liquidation plan) worth more than this, in the desk's
    reporting currency (quantity × limit price, or × last price for a market order, × fx),
    needs a second person's approval. A string, to stay exact; "0": every liquidation."""


def _message_language(value: Any) -> Any:
    # A tag the templates answer to (`zh-HK` is Traditional); one they do not is refused
    # here, at start-up, unlike a client's tag in the feed (which falls back, and says so).
    if not isinstance(value, str):
        return value  # pydantic says "must be text (in quotes)"
    language = parse_language(value)
    if language is None:
        *rest, last = (language.value for language in Language)
        known = f"{', '.join(rest)} or {last}"
        raise ValueError(f"must be a language the messages are written in: {known}")
    return language


MessageLanguage = Annotated[Language, BeforeValidator(_message_language)]


class MarketMessages(_Section):
    """The language of messages to one market's clients whose feed record names none."""

    language: MessageLanguage | None = None


class MessagesSettings(_Section):
    """Client messages: the language when the feed gives none for the client."""

    language: MessageLanguage = Language.EN
    """en, zh-Hant or zh-Hans (any tag naming one: zh-HK, zh-TW, zh-CN, …)."""
    markets: dict[Market, MarketMessages] = Field(default_factory=dict)
    """Per-market defaults, [messages.markets.HK] language = "zh-Hant"."""

    def defaults(self) -> LanguageDefaults:
        return LanguageDefaults(
            self.language,
            {m: rule.language for m, rule in self.markets.items() if rule.language is not None},
        )


class Settings(_Section):
    feed: FeedSettings = Field(default_factory=FeedSettings)
    db: DbSettings = Field(default_factory=DbSettings)
    desk: DeskSettings = Field(default_factory=DeskSettings)
    margin_call: MarginCallSettings = Field(default_factory=MarginCallSettings)
    calendar: CalendarSettings = Field(default_factory=CalendarSettings)
    daily: DailySettings = Field(default_factory=DailySettings)
    shorts: ShortsSettings = Field(default_factory=ShortsSettings)
    four_eyes: FourEyesSettings = Field(default_factory=FourEyesSettings)
    messages: MessagesSettings = Field(default_factory=MessagesSettings)
    operators: dict[str, Role] = Field(default_factory=dict)
    """Operator name → role (viewer, operator, trader, supervisor); anyone else: viewer."""
    keys: dict[str, str] = Field(default_factory=dict)
    """Binding id → key(s), comma-separated, e.g. "table.mark" = "space,x". The terminal's
    commands check each id against its bindings (`load_settings(binding_ids=…)`)."""

    def role_of(self, operator: str) -> Role:
        return self.operators.get(operator, Role.VIEWER)


def find_config_file(explicit: Path | None, env: Mapping[str, str]) -> Path | None:
    """--config, else RISK_TUI_CONFIG, else ./risk-tui.toml, else the user config dir."""
    if explicit is not None:
        return explicit
    if env.get("RISK_TUI_CONFIG"):
        return Path(env["RISK_TUI_CONFIG"])
    local = Path.cwd() / CONFIG_FILENAME
    if local.is_file():
        return local
    user = Path(platformdirs.user_config_dir("risk-tui")) / CONFIG_FILENAME
    return user if user.is_file() else None


def load_settings(
    config_path: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[tuple[str, str], Any] | None = None,
    option_names: Mapping[tuple[str, str], str] | None = None,
    discover: bool = True,
    binding_ids: Collection[str] | None = None,
) -> Settings:
    """Read, merge and validate; raise ConfigError, one line per problem, on any problem.

    `overrides` are command-line options, keyed by (section, key); None values are
    ignored. Errors name each as the user typed it (`option_names`, e.g. `--db` for
    db.url), else `--section-key`. `binding_ids`: the key bindings of the terminal
    that will start (its commands pass them; the settings cannot know the terminal), each
    id in `[keys]` must name one.
    """
    env = os.environ if env is None else env
    path = find_config_file(config_path, env) if discover else config_path
    data: dict[str, Any] = {}
    sources: dict[tuple[str, ...], str] = {}
    file_label = str(path) if path else "defaults"
    if path is not None:
        try:
            with path.open("rb") as handle:
                data = tomllib.load(handle)
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except tomllib.TOMLDecodeError as bad:
            raise ConfigError(f"{path}: not valid TOML: {bad}") from None
        except OSError as bad:
            raise ConfigError(f"{path}: cannot read: {bad.strerror}") from None
    for name, value in sorted(env.items()):
        env_key = _env_key(name)
        if env_key is None:
            continue
        if len(env_key) != 2:
            raise ConfigError(f"{name}: expected RISK_TUI_<SECTION>__<KEY>")
        section = data.setdefault(env_key[0], {})
        if not isinstance(section, dict):
            raise ConfigError(f"{file_label}: {env_key[0]}: must be a table")
        section[env_key[1]] = value
        sources[env_key] = name
    for (section, key), value in (overrides or {}).items():
        if value is None:
            continue
        data.setdefault(section, {})[key] = value
        named = (option_names or {}).get((section, key))
        sources[(section, key)] = named or f"--{section}-{key}".replace("_", "-")
    try:
        settings = Settings.model_validate(data)
    except ValidationError as invalid:
        raise ConfigError(*_problem_lines(invalid, file_label, sources)) from None
    problems: list[str] = []
    if settings.calendar.overrides is not None and not settings.calendar.overrides.is_file():
        problems.append(
            f"{file_label}: calendar.overrides: file not found: {settings.calendar.overrides}"
        )
    if binding_ids is not None:
        problems.extend(_unknown_bindings(settings.keys, binding_ids, file_label, sources))
    if problems:
        raise ConfigError(*problems)
    return settings


def _unknown_bindings(
    keys: Mapping[str, str],
    known: Collection[str],
    file_label: str,
    sources: Mapping[tuple[str, ...], str],
) -> list[str]:
    """One line per `[keys]` entry whose binding id the terminal does not have."""
    lines = []
    for binding_id in keys:
        if binding_id in known:
            continue
        close = difflib.get_close_matches(binding_id, sorted(known), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        source = sources.get(("keys", binding_id), file_label)
        lines.append(
            f"{source}: keys.{binding_id}: unknown binding id {binding_id!r} ({hint}`?` in "
            "the terminal lists every id)"
        )
    return lines


def _env_key(name: str) -> tuple[str, ...] | None:
    if name in NAMED_ENV:
        return NAMED_ENV[name]
    if not name.startswith(ENV_PREFIX) or "__" not in name:
        return None
    return tuple(part.lower() for part in name[len(ENV_PREFIX) :].split("__"))


def _problem_lines(
    invalid: ValidationError, file_label: str, sources: Mapping[tuple[str, ...], str]
) -> list[str]:
    """One line per problem, in the desk's words: where the value came from, the key, what
    is wrong (an unknown key with the closest known one, when there is one)."""
    lines = []
    for error in invalid.errors():
        loc = tuple(str(part) for part in error["loc"] if part != "[key]")
        key = ".".join(loc) or "(top level)"
        source = sources.get(loc[:2], file_label)
        if error["type"] == "extra_forbidden":
            problem = "unknown key"
            close = difflib.get_close_matches(loc[-1], _known_keys(loc[:-1]), n=1)
            if close:
                problem += f" (did you mean {close[0]!r}?)"
        else:
            problem = _in_our_words(error)
            given = error.get("input")
            shown = given is None or isinstance(given, dict | list) or repr(given) in problem
            if not shown and "token" not in loc:
                problem = f"{problem} (got {given!r})"
        lines.append(f"{source}: {key}: {problem}")
    return lines


# pydantic's error types, said as the desk says them (the rest keep their own message).
_WORDS = {
    "missing": "is required",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "decimal_parsing": "must be a number, written as a string",
    "decimal_type": "must be a number, written as a string",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be text (in quotes)",
    "dict_type": "must be a table",
    "model_type": "must be a table",
    "model_attributes_type": "must be a table",
    "list_type": "must be a list",
    "time_parsing": "must be a time of day, HH:MM",
    "time_type": "must be a time of day, HH:MM",
    "date_parsing": "must be a date, YYYY-MM-DD",
    "date_from_datetime_parsing": "must be a date, YYYY-MM-DD",
    "path_type": "must be a file path",
}


def _in_our_words(error: Any) -> str:
    """What is wrong, without pydantic's phrasing ("Input should be …")."""
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind in ("literal_error", "enum"):
        return f"must be {ctx.get('expected', '?')}"
    bounds = {
        "greater_than": "more than",
        "greater_than_equal": "at least",
        "less_than": "less than",
        "less_than_equal": "at most",
    }
    if kind in bounds:
        limit = next(iter(ctx.values()), "?")
        if isinstance(limit, float) and limit.is_integer():
            limit = int(limit)
        return f"must be {bounds[kind]} {limit}"
    if kind in _WORDS:
        return _WORDS[kind]
    return str(error["msg"]).removeprefix("Value error, ")


def _known_keys(path: tuple[str, ...]) -> list[str]:
    """The keys the settings model allows at `path` (a table's dotted path): what an
    unknown key is compared with."""
    model: type[BaseModel] | None = Settings
    parts = list(path)
    while parts and model is not None:
        part = parts.pop(0)
        field = model.model_fields.get(part)
        if field is None:
            return []
        annotation = field.annotation
        if get_origin(annotation) is dict:  # a table of tables: skip its own key
            annotation = get_args(annotation)[1]
            if parts:
                parts.pop(0)
        model = _model_of(annotation)
    return [] if model is None else sorted(model.model_fields)


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The settings model an annotation names (`X | None` included), if any."""
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None
