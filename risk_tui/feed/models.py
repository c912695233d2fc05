"""Pydantic models of the FEED.md payloads, and record-by-record validation.

Decimal strings stay exact (a JSON number is refused: it has been through binary
floating point). A record that fails validation is rejected alone — counted and kept
with its reason — and the rest of the payload is applied. Unknown fields are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from risk_tui.core.book import BookChanges
from risk_tui.core.messages import TAG_LENGTH
from risk_tui.core.model import (
    Account,
    AccountKind,
    Book,
    Borrow,
    CashBalance,
    CashMovement,
    Contact,
    FxRate,
    Instrument,
    Market,
    MovementKind,
    Position,
    Quote,
)
from risk_tui.core.money import check_currency


def _decimal_string(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, str | Decimal):
        raise ValueError('must be a decimal string, e.g. "19.50"')
    return value


def _finite(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("must be a finite number")
    return value


DecimalStr = Annotated[Decimal, BeforeValidator(_decimal_string), AfterValidator(_finite)]
NonNegative = Annotated[DecimalStr, Field(ge=0)]
Positive = Annotated[DecimalStr, Field(gt=0)]
Ratio = Annotated[DecimalStr, Field(ge=0, le=10)]
Code = Annotated[str, Field(min_length=1, max_length=64)]
# An ISO 4217 code with a minor unit: a record in any other currency cannot be rounded,
# so it is rejected (alone, counted) rather than guessed at two decimals.
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$"), AfterValidator(check_currency)]


class FeedError(Exception):
    """A payload that cannot be used at all (not the contract's shape)."""


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    kind: ClassVar[str]
    key_fields: ClassVar[tuple[str, ...]]

    @classmethod
    def raw_key(cls, item: Any) -> str:
        """The key of a record that failed validation, as far as it can be read."""
        if not isinstance(item, dict):
            return ""
        aliases = {"from_ccy": "from", "to_ccy": "to"}
        return "/".join(str(item.get(aliases.get(n, n), "?")) for n in cls.key_fields)[:80]


class InstrumentRecord(_Record):
    kind: ClassVar[str] = "instruments"
    key_fields: ClassVar[tuple[str, ...]] = ("symbol",)
    symbol: Code
    name: str = ""
    market: Market
    currency: Currency
    lot_size: Positive
    im_ratio: Ratio
    mm_ratio: Ratio
    fm_ratio: Ratio
    short_im_ratio: Ratio | None = None
    short_mm_ratio: Ratio | None = None
    short_fm_ratio: Ratio | None = None
    intraday_im_ratio: Ratio | None = None
    intraday_mm_ratio: Ratio | None = None
    intraday_fm_ratio: Ratio | None = None
    suspended: bool = False
    delisted: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> InstrumentRecord:
        if not (self.fm_ratio <= self.mm_ratio <= self.im_ratio):
            raise ValueError("ratios must satisfy fm_ratio ≤ mm_ratio ≤ im_ratio")
        return self

    def to_domain(self) -> Instrument:
        return Instrument(**self.model_dump())


class QuoteRecord(_Record):
    kind: ClassVar[str] = "quotes"
    key_fields: ClassVar[tuple[str, ...]] = ("symbol",)
    symbol: Code
    price: NonNegative
    ts: AwareDatetime | None = None

    def to_domain(self) -> Quote:
        return Quote(self.symbol, self.price, self.ts)


class FxRecord(_Record):
    kind: ClassVar[str] = "fx"
    key_fields: ClassVar[tuple[str, ...]] = ("from_ccy", "to_ccy")
    from_ccy: Currency = Field(alias="from")
    to_ccy: Currency = Field(alias="to")
    rate: Positive

    def to_domain(self) -> FxRate:
        return FxRate(self.from_ccy, self.to_ccy, self.rate)


class ContactRecord(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    email: str | None = None
    phone: str | None = None


def _language_tag(value: Any) -> str | None:
    # FEED.md's optional `language`: never a reason to reject an account (its figures are
    # good and it must stay monitored). Kept as sent, trimmed; anything that is not a tag
    # is kept as text too, so the desk can say which value it could not use.
    if value is None:
        return None
    text = (value if isinstance(value, str) else str(value)).strip()
    return text[:TAG_LENGTH] or None


class AccountRecord(_Record):
    kind: ClassVar[str] = "accounts"
    key_fields: ClassVar[tuple[str, ...]] = ("account_id",)
    account_id: Code
    client_name: str = Field("", max_length=512)
    account_kind: Literal["margin", "intraday", "cash"] = Field(alias="kind")
    base_currency: Currency
    market: Market
    contact: ContactRecord = Field(default_factory=ContactRecord)
    language: Annotated[str | None, BeforeValidator(_language_tag)] = None

    def to_domain(self) -> Account:
        return Account(
            account_id=self.account_id,
            client_name=self.client_name,
            kind=AccountKind(self.account_kind),
            base_currency=self.base_currency,
            market=self.market,
            contact=Contact(self.contact.email, self.contact.phone),
            language=self.language,
        )


class CashRecord(_Record):
    kind: ClassVar[str] = "cash"
    key_fields: ClassVar[tuple[str, ...]] = ("account_id", "currency")
    account_id: Code
    currency: Currency
    balance: DecimalStr

    def to_domain(self) -> CashBalance:
        return CashBalance(self.account_id, self.currency, self.balance)


class PositionRecord(_Record):
    kind: ClassVar[str] = "positions"
    key_fields: ClassVar[tuple[str, ...]] = ("account_id", "symbol")
    account_id: Code
    symbol: Code
    quantity: DecimalStr
    avg_cost: DecimalStr | None = None

    def to_domain(self) -> Position:
        return Position(self.account_id, self.symbol, self.quantity, self.avg_cost)


class BorrowRecord(_Record):
    kind: ClassVar[str] = "borrow"
    key_fields: ClassVar[tuple[str, ...]] = ("symbol",)
    symbol: Code
    available: NonNegative
    recall_quantity: NonNegative = Decimal(0)
    recall_due: date | None = None
    rate: DecimalStr | None = None

    def to_domain(self) -> Borrow:
        return Borrow(self.symbol, self.available, self.recall_quantity, self.recall_due, self.rate)


class CashMovementRecord(_Record):
    """A deposit or withdrawal, sent once (FEED.md `cash_movements`). Its key names the
    account too, so a record refused for a bad field still says whose money it was."""

    kind: ClassVar[str] = "cash_movements"
    key_fields: ClassVar[tuple[str, ...]] = ("account_id", "movement_id")
    movement_id: Code
    account_id: Code
    currency: Currency
    amount: Positive
    movement_kind: Literal["deposit", "withdrawal"] = Field(alias="kind")
    ts: AwareDatetime

    def to_domain(self) -> CashMovement:
        return CashMovement(
            movement_id=self.movement_id,
            account_id=self.account_id,
            currency=self.currency,
            amount=self.amount,
            kind=MovementKind(self.movement_kind),
            ts=self.ts,
        )


RECORD_TYPES: tuple[type[_Record], ...] = (
    InstrumentRecord,
    QuoteRecord,
    FxRecord,
    AccountRecord,
    CashRecord,
    PositionRecord,
    BorrowRecord,
    CashMovementRecord,
)


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record refused alone: which list, where in it, its key if readable, and why."""

    kind: str
    index: int
    key: str
    reason: str


@dataclass
class ParsedPayload:
    changes: BookChanges
    rejected: list[Rejection] = field(default_factory=list)


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore")
    cursor: Annotated[str, Field(min_length=1)]
    as_of: AwareDatetime


def parse_payload(payload: Any) -> ParsedPayload:
    """Validate a /v1/snapshot or /v1/changes body, record by record."""
    if not isinstance(payload, dict):
        raise FeedError("payload is not a JSON object")
    try:
        envelope = _Envelope.model_validate(payload)
    except ValidationError as invalid:
        first = invalid.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise FeedError(f"payload {where}: {first['msg']}") from None
    changes = BookChanges(cursor=envelope.cursor, as_of=envelope.as_of)
    rejected: list[Rejection] = []
    for record_type in RECORD_TYPES:
        items = payload.get(record_type.kind)
        if items is None:
            continue
        if not isinstance(items, list):
            rejected.append(Rejection(record_type.kind, -1, "", "not a list"))
            continue
        target: list[Any] = getattr(changes, record_type.kind)
        for index, item in enumerate(items):
            try:
                record = record_type.model_validate(item)
            except ValidationError as invalid:
                rejected.append(
                    Rejection(record_type.kind, index, record_type.raw_key(item), _reason(invalid))
                )
                continue
            target.append(record.to_domain())  # type: ignore[attr-defined]
    return ParsedPayload(changes, rejected)


def _reason(invalid: ValidationError) -> str:
    first = invalid.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "record"
    message = first["msg"].removeprefix("Value error, ")
    more = f" (+{len(invalid.errors()) - 1} more)" if len(invalid.errors()) > 1 else ""
    return f"{where}: {message}{more}"


def _s(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def book_to_payload(book: Book) -> dict[str, Any]:
    """The book as a FEED.md snapshot body: what the cache stores and parse_payload reads."""
    return {
        "cursor": book.cursor,
        "as_of": book.as_of.isoformat() if book.as_of else None,
        "instruments": [
            {
                "symbol": i.symbol,
                "name": i.name,
                "market": str(i.market),
                "currency": i.currency,
                "lot_size": str(i.lot_size),
                "im_ratio": str(i.im_ratio),
                "mm_ratio": str(i.mm_ratio),
                "fm_ratio": str(i.fm_ratio),
                "short_im_ratio": _s(i.short_im_ratio),
                "short_mm_ratio": _s(i.short_mm_ratio),
                "short_fm_ratio": _s(i.short_fm_ratio),
                "intraday_im_ratio": _s(i.intraday_im_ratio),
                "intraday_mm_ratio": _s(i.intraday_mm_ratio),
                "intraday_fm_ratio": _s(i.intraday_fm_ratio),
                "suspended": i.suspended,
                "delisted": i.delisted,
            }
            for i in book.instruments.values()
        ],
        "quotes": [
            {"symbol": q.symbol, "price": str(q.price), "ts": q.ts.isoformat() if q.ts else None}
            for q in book.quotes.values()
        ],
        "fx": [{"from": f, "to": t, "rate": str(rate)} for (f, t), rate in book.fx.items()],
        "accounts": [
            {
                "account_id": a.account_id,
                "client_name": a.client_name,
                "kind": str(a.kind),
                "base_currency": a.base_currency,
                "market": str(a.market),
                "contact": {"email": a.contact.email, "phone": a.contact.phone},
                **({"language": a.language} if a.language is not None else {}),
            }
            for a in book.accounts.values()
        ],
        "cash": [
            {"account_id": account_id, "currency": ccy, "balance": str(balance)}
            for account_id, balances in book.cash.items()
            for ccy, balance in balances.items()
        ],
        "positions": [
            {
                "account_id": p.account_id,
                "symbol": p.symbol,
                "quantity": str(p.quantity),
                "avg_cost": _s(p.avg_cost),
            }
            for holdings in book.positions.values()
            for p in holdings.values()
        ],
        "borrow": [
            {
                "symbol": b.symbol,
                "available": str(b.available),
                "recall_quantity": str(b.recall_quantity),
                "recall_due": b.recall_due.isoformat() if b.recall_due else None,
                "rate": _s(b.rate),
            }
            for b in book.borrow.values()
        ],
    }
