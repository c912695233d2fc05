"""Portable column types: exact decimals, aware UTC datetimes and canonical JSON text.

The same values must come back from SQLite and PostgreSQL. SQLite has no exact decimal
(a column with NUMERIC affinity silently turns `1015.00` into a float) and no datetime
type, so there both are TEXT; PostgreSQL gets NUMERIC (no fixed scale) and TIMESTAMPTZ.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import Dialect, Text
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeDecorator, TypeEngine

from risk_tui.core.canonical import canonical_json as canonical_json  # re-exported

# Fixed width (always microseconds, always `Z`), so on SQLite text order is time order.
_UTC_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class CanonicalText(str):
    """JSON text already in canonical form: `CanonicalJSON` stores it as is."""

    __slots__ = ()


@lru_cache(maxsize=4096)  # a poll's records share a handful of instants
def iso_utc(moment: datetime) -> str:
    """`2024-05-02T07:00:00.000000Z`: how an instant is stored on SQLite and hashed."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: storage needs a time zone")
    return moment.astimezone(UTC).strftime(_UTC_FORMAT)


def parse_utc(text: str) -> datetime:
    """The inverse of `iso_utc` (accepts any ISO-8601 text that carries an offset)."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"stored datetime {text!r} has no offset")
    return moment.astimezone(UTC)


class ExactDecimal(TypeDecorator[Decimal]):
    """Money and quantities: a `Decimal` in, the same `Decimal` out (scale included).

    PostgreSQL: plain NUMERIC. SQLite: TEXT holding `str(Decimal)`. Floats are refused:
    a binary float that reached storage has already lost the exact amount.
    """

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.NUMERIC())
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, Decimal | int):
            raise TypeError(f"expected Decimal, got {type(value).__name__}: {value!r}")
        amount = Decimal(value)
        if not amount.is_finite():
            raise ValueError(f"refusing to store non-finite amount {amount}")
        return amount if dialect.name == "postgresql" else str(amount)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))


class UTCDateTime(TypeDecorator[datetime]):
    """An instant: aware datetime in, aware UTC datetime out; naive datetimes refused.

    PostgreSQL: TIMESTAMPTZ. SQLite: fixed-width ISO-8601 text in UTC (see `iso_utc`).
    """

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.TIMESTAMP(timezone=True))
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected datetime, got {type(value).__name__}: {value!r}")
        text = iso_utc(value)  # raises ValueError on a naive datetime
        return value.astimezone(UTC) if dialect.name == "postgresql" else text

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            if value.tzinfo is None:  # a TIMESTAMPTZ never is; be explicit if one slips by
                raise ValueError(f"database returned naive datetime {value!r}")
            return value.astimezone(UTC)
        return parse_utc(str(value))


class CanonicalJSON(TypeDecorator[Any]):
    """A JSON document stored as TEXT in canonical form (the bytes the hash chain hashes).

    Not JSONB: PostgreSQL would normalize it, and the stored text must stay byte-exact.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if isinstance(value, CanonicalText):
            return str(value)
        return canonical_json(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return json.loads(value)
