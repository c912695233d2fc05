"""The margin engine: exact market value, equity, IM/MM/FM, risk level, call amount.

Pure Decimal arithmetic on one account of the Book. This is also the reference the fast
columnar path (crash-day scale) is property-tested against.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, localcontext
from enum import StrEnum
from typing import Protocol

from risk_tui.core.model import Account, AccountKind, Book, Instrument, Position
from risk_tui.core.money import ZERO, context, round_call_amount


class RiskLevel(StrEnum):
    """One place decides a risk level: `classify`. Ordered from best to worst."""

    SAFE = "safe"  # equity ≥ IM
    WATCH = "watch"  # MM ≤ equity < IM
    MARGIN_CALL = "margin_call"  # FM ≤ equity < MM
    FORCE_CALL = "force_call"  # equity < FM
    INCOMPLETE = "incomplete"  # a price or fx rate is missing: never shown as safe


class CallFormula(StrEnum):
    MM_BUFFER = "mm_buffer"  # call = MM + buffer_pct × gross MV − equity (SG default)
    IM = "im"  # call = IM − equity (back to initial margin, HK pages)


@dataclass(frozen=True, slots=True)
class CallPolicy:
    """How much to ask for, per market: 追保金額配置."""

    formula: CallFormula = CallFormula.MM_BUFFER
    buffer_pct: Decimal = Decimal("0.02")


@dataclass(frozen=True, slots=True)
class Ratios:
    im: Decimal
    mm: Decimal
    fm: Decimal


@dataclass(frozen=True, slots=True)
class PositionMargin:
    """One holding valued in the account's base currency, with the ratios applied to it."""

    symbol: str
    quantity: Decimal
    price: Decimal
    currency: str
    fx: Decimal  # instrument currency → base
    market_value: Decimal  # signed, base currency; negative for a short
    ratios: Ratios
    im: Decimal
    mm: Decimal
    fm: Decimal
    lot_size: Decimal
    illiquid: bool  # suspended or delisted


@dataclass(frozen=True, slots=True)
class AccountMargin:
    """Everything the desk decides about one account, computed from one Book state."""

    account_id: str
    kind: AccountKind
    currency: str
    cash: dict[str, Decimal]  # per currency, as held
    cash_base: Decimal
    positions: tuple[PositionMargin, ...]
    long_mv: Decimal
    short_mv: Decimal  # absolute value
    gross_mv: Decimal  # Σ|MV|
    equity: Decimal
    im: Decimal
    mm: Decimal
    fm: Decimal
    illiquid_mv: Decimal  # long MV of suspended/delisted holdings
    liquid_net_assets: Decimal
    net_asset_ratio: Decimal | None
    risk_level: RiskLevel
    call_amount: Decimal  # rounded up to the minor unit; 0 when nothing is due
    incomplete: str | None  # why the figures cannot be trusted, or None

    @property
    def in_call(self) -> bool:
        return self.risk_level in (RiskLevel.MARGIN_CALL, RiskLevel.FORCE_CALL)


class MarginVerdict(Protocol):
    """What the lifecycle needs of an account's figures: `AccountMargin` has it, and so
    does the engine's verdict from the columns (`core.columnar`), which decides the
    same risk level and call amount exactly."""

    @property
    def account_id(self) -> str: ...
    @property
    def kind(self) -> AccountKind: ...
    @property
    def currency(self) -> str: ...
    @property
    def risk_level(self) -> RiskLevel: ...
    @property
    def call_amount(self) -> Decimal: ...
    @property
    def incomplete(self) -> str | None: ...
    @property
    def in_call(self) -> bool: ...


class MarginFigures:
    """The figures a warning row shows of an account (the rest is one `AccountMargin`
    away): from the reference (`of`), or the exact columns (`scaled`, see
    `ColumnarBook.display`), whose Decimals are made only when a figure is read: a crash
    poll re-prices thousands of rows of which a screen shows forty. An incomplete
    account shows its level and no figures: none can be trusted. Immutable."""

    __slots__ = ("_made", "_places", "_raw", "call_amount", "holds_positions", "risk_level")

    risk_level: RiskLevel
    call_amount: Decimal
    holds_positions: bool

    def __init__(
        self,
        risk_level: RiskLevel,
        call_amount: Decimal,
        equity: Decimal | None,
        im: Decimal | None,
        mm: Decimal | None,
        fm: Decimal | None,
        net_asset_ratio: Decimal | None,
        holds_positions: bool,
    ) -> None:
        self.risk_level = risk_level
        self.call_amount = call_amount
        self.holds_positions = holds_positions
        self._raw: tuple[int, ...] | None = None
        self._places = 0
        self._made: tuple[Decimal | None, ...] | None = (equity, im, mm, fm, net_asset_ratio)

    @classmethod
    def scaled(
        cls,
        risk_level: RiskLevel,
        call_amount: Decimal,
        raw: tuple[int, ...],
        places: int,
        holds_positions: bool,
    ) -> MarginFigures:
        """From integers at 10**-places: equity, IM, MM, FM, long MV, short MV, illiquid
        long MV (the columns' sums); the Decimals and the ratio are made when read."""
        figures = cls.__new__(cls)
        figures.risk_level = risk_level
        figures.call_amount = call_amount
        figures.holds_positions = holds_positions
        figures._raw = raw
        figures._places = places
        figures._made = None
        return figures

    def _figures(self) -> tuple[Decimal | None, ...]:
        made = self._made
        if made is None:
            assert self._raw is not None
            with localcontext(context()):
                equity, im, mm, fm, long_mv, short_mv, ill = (
                    Decimal(value).scaleb(-self._places) for value in self._raw
                )
                liquid = equity - ill
                denominator = max(liquid, long_mv - ill + short_mv)
                ratio = liquid / denominator if denominator > 0 else None
            made = self._made = (equity, im, mm, fm, ratio)
        return made

    @property
    def equity(self) -> Decimal | None:
        return self._figures()[0]

    @property
    def im(self) -> Decimal | None:
        return self._figures()[1]

    @property
    def mm(self) -> Decimal | None:
        return self._figures()[2]

    @property
    def fm(self) -> Decimal | None:
        return self._figures()[3]

    @property
    def net_asset_ratio(self) -> Decimal | None:
        return self._figures()[4]

    def _key(self) -> tuple[object, ...]:
        return (self.risk_level, self.call_amount, self.holds_positions, *self._figures())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MarginFigures):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        names = ("equity", "im", "mm", "fm", "net_asset_ratio")
        shown = ", ".join(f"{n}={v}" for n, v in zip(names, self._figures(), strict=True))
        return f"MarginFigures({self.risk_level}, call_amount={self.call_amount}, {shown})"

    @classmethod
    def of(cls, result: AccountMargin) -> MarginFigures:
        holds = any(p.quantity for p in result.positions)
        if result.incomplete is not None:
            return cls(RiskLevel.INCOMPLETE, ZERO, None, None, None, None, None, holds)
        return cls.copied(result, holds)

    @classmethod
    def copied(cls, source: _Figures, holds_positions: bool) -> MarginFigures:
        """The figures of an `AccountMargin` or the columns' `AccountFigures`."""
        return cls(
            risk_level=source.risk_level,
            call_amount=source.call_amount,
            equity=source.equity,
            im=source.im,
            mm=source.mm,
            fm=source.fm,
            net_asset_ratio=source.net_asset_ratio,
            holds_positions=holds_positions,
        )


class _Figures(Protocol):
    @property
    def risk_level(self) -> RiskLevel: ...
    @property
    def call_amount(self) -> Decimal: ...
    @property
    def equity(self) -> Decimal: ...
    @property
    def im(self) -> Decimal: ...
    @property
    def mm(self) -> Decimal: ...
    @property
    def fm(self) -> Decimal: ...
    @property
    def net_asset_ratio(self) -> Decimal | None: ...


class MissingData(Exception):
    """A price, fx rate or instrument the account needs is not in the book."""


def fx_rate(book: Book, from_ccy: str, to_ccy: str) -> Decimal:
    """Rate to convert from_ccy into to_ccy: direct pair, else the inverse pair."""
    if from_ccy == to_ccy:
        return Decimal(1)
    direct = book.fx.get((from_ccy, to_ccy))
    if direct is not None:
        return direct
    inverse = book.fx.get((to_ccy, from_ccy))
    if inverse is not None and inverse != 0:
        with localcontext(context()):
            return Decimal(1) / inverse
    raise MissingData(f"no fx rate {from_ccy}→{to_ccy}")


def ratios_for(instrument: Instrument, kind: AccountKind, is_short: bool) -> Ratios:
    """Intraday accounts use intraday ratios; shorts use short ratios; null means 'as long'."""
    if kind is AccountKind.INTRADAY:
        return Ratios(
            _given(instrument.intraday_im_ratio, instrument.im_ratio),
            _given(instrument.intraday_mm_ratio, instrument.mm_ratio),
            _given(instrument.intraday_fm_ratio, instrument.fm_ratio),
        )
    if is_short:
        return Ratios(
            _given(instrument.short_im_ratio, instrument.im_ratio),
            _given(instrument.short_mm_ratio, instrument.mm_ratio),
            _given(instrument.short_fm_ratio, instrument.fm_ratio),
        )
    return Ratios(instrument.im_ratio, instrument.mm_ratio, instrument.fm_ratio)


def _given(ratio: Decimal | None, fallback: Decimal) -> Decimal:
    # Not `ratio or fallback`: an explicit ratio of 0 is a ratio, not a missing one.
    return fallback if ratio is None else ratio


def classify(equity: Decimal, im: Decimal, mm: Decimal, fm: Decimal) -> RiskLevel:
    if equity >= im:
        return RiskLevel.SAFE
    if equity >= mm:
        return RiskLevel.WATCH
    if equity >= fm:
        return RiskLevel.MARGIN_CALL
    return RiskLevel.FORCE_CALL


def raw_call_amount(
    policy: CallPolicy, *, equity: Decimal, im: Decimal, mm: Decimal, gross_mv: Decimal
) -> Decimal:
    """The unrounded amount to collect; ≤ 0 means nothing is due."""
    with localcontext(context()):
        if policy.formula is CallFormula.IM:
            return im - equity
        return mm + policy.buffer_pct * gross_mv - equity


def _value_position(book: Book, account: Account, position: Position) -> PositionMargin:
    instrument = book.instruments.get(position.symbol)
    if instrument is None:
        raise MissingData(f"unknown instrument {position.symbol}")
    quote = book.quotes.get(position.symbol)
    if quote is None:
        raise MissingData(f"no price for {position.symbol}")
    rate = fx_rate(book, instrument.currency, account.base_currency)
    ratios = ratios_for(instrument, account.kind, position.quantity < 0)
    mv = position.quantity * quote.price * rate
    exposure = abs(mv)
    return PositionMargin(
        symbol=position.symbol,
        quantity=position.quantity,
        price=quote.price,
        currency=instrument.currency,
        fx=rate,
        market_value=mv,
        ratios=ratios,
        im=exposure * ratios.im,
        mm=exposure * ratios.mm,
        fm=exposure * ratios.fm,
        lot_size=instrument.lot_size,
        illiquid=instrument.suspended or instrument.delisted,
    )


def compute_account(book: Book, account_id: str, policy: CallPolicy) -> AccountMargin:
    """All margin figures of one account; an incomplete result when data are missing.

    Cash accounts have no financing and are not monitored: callers skip them
    (`is_monitored`).
    """
    account = book.accounts[account_id]
    cash = dict(book.cash.get(account_id, {}))
    holdings = book.positions.get(account_id, {})
    with localcontext(context()):
        try:
            cash_base = sum(
                (bal * fx_rate(book, ccy, account.base_currency) for ccy, bal in cash.items()),
                ZERO,
            )
            valued = tuple(_value_position(book, account, p) for p in holdings.values())
        except MissingData as missing:
            return _incomplete(account, cash, str(missing))
        long_mv = sum((p.market_value for p in valued if p.market_value > 0), ZERO)
        short_mv = -sum((p.market_value for p in valued if p.market_value < 0), ZERO)
        gross_mv = long_mv + short_mv
        equity = cash_base + long_mv - short_mv
        im = sum((p.im for p in valued), ZERO)
        mm = sum((p.mm for p in valued), ZERO)
        fm = sum((p.fm for p in valued), ZERO)
        illiquid_mv = sum(
            (p.market_value for p in valued if p.illiquid and p.market_value > 0), ZERO
        )
        liquid_net_assets = equity - illiquid_mv
        denominator = max(liquid_net_assets, long_mv - illiquid_mv + short_mv)
        net_asset_ratio = liquid_net_assets / denominator if denominator > 0 else None
        level = classify(equity, im, mm, fm)
        raw = raw_call_amount(policy, equity=equity, im=im, mm=mm, gross_mv=gross_mv)
        amount = round_call_amount(raw, account.base_currency) if raw > 0 else ZERO
    return AccountMargin(
        account_id=account_id,
        kind=account.kind,
        currency=account.base_currency,
        cash=cash,
        cash_base=cash_base,
        positions=valued,
        long_mv=long_mv,
        short_mv=short_mv,
        gross_mv=gross_mv,
        equity=equity,
        im=im,
        mm=mm,
        fm=fm,
        illiquid_mv=illiquid_mv,
        liquid_net_assets=liquid_net_assets,
        net_asset_ratio=net_asset_ratio,
        risk_level=level,
        call_amount=amount,
        incomplete=None,
    )


def _incomplete(account: Account, cash: dict[str, Decimal], reason: str) -> AccountMargin:
    return AccountMargin(
        account_id=account.account_id,
        kind=account.kind,
        currency=account.base_currency,
        cash=cash,
        cash_base=ZERO,
        positions=(),
        long_mv=ZERO,
        short_mv=ZERO,
        gross_mv=ZERO,
        equity=ZERO,
        im=ZERO,
        mm=ZERO,
        fm=ZERO,
        illiquid_mv=ZERO,
        liquid_net_assets=ZERO,
        net_asset_ratio=None,
        risk_level=RiskLevel.INCOMPLETE,
        call_amount=ZERO,
        incomplete=reason,
    )


def is_monitored(account: Account) -> bool:
    """Margin and intraday accounts are watched; cash accounts never go into call."""
    return account.kind is not AccountKind.CASH
