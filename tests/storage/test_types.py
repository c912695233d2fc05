"""Column types: exact decimals, aware UTC datetimes and canonical JSON survive both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, make_url, select, text
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

from risk_tui.storage.db import create_engine
from risk_tui.storage.types import CanonicalJSON, ExactDecimal, UTCDateTime, canonical_json
from tests.factories import naive

scratch = MetaData()
values = Table(
    "type_roundtrip",
    scratch,
    Column("id", Integer, primary_key=True),
    Column("amount", ExactDecimal),
    Column("at", UTCDateTime),
    Column("doc", CanonicalJSON),
)

AMOUNTS = [
    Decimal("1015.00"),
    Decimal("0.123456789012345678901234567890"),
    Decimal("-15000.00"),
    Decimal("0"),
    Decimal("0.00"),
    Decimal("123456789012345678901234567890.123456789"),
    Decimal("19.5"),
    Decimal("-0.01"),
]


@pytest.fixture
async def scratch_engine(engine: AsyncEngine) -> AsyncEngine:
    async with engine.begin() as conn:
        await conn.run_sync(scratch.create_all)
    return engine


async def test_decimals_round_trip_exactly(scratch_engine: AsyncEngine) -> None:
    async with scratch_engine.begin() as conn:
        await conn.execute(
            insert(values), [{"id": i, "amount": amount} for i, amount in enumerate(AMOUNTS)]
        )
    async with scratch_engine.connect() as conn:
        rows = (await conn.execute(select(values.c.amount).order_by(values.c.id))).scalars().all()
    assert rows == AMOUNTS
    # Same digits and scale, not merely equal: 1015.00 stays 1015.00.
    assert [str(amount) for amount in rows] == [str(amount) for amount in AMOUNTS]
    assert all(isinstance(amount, Decimal) for amount in rows)


async def test_sqlite_stores_decimals_and_instants_as_text(tmp_path: Path) -> None:
    engine = await create_engine(f"sqlite+aiosqlite:///{tmp_path / 'types.db'}")
    try:
        async with engine.begin() as conn:
            await conn.run_sync(scratch.create_all)
            await conn.execute(
                insert(values),
                [
                    {
                        "id": 1,
                        "amount": Decimal("1015.00"),
                        "at": datetime(2026, 3, 2, 7, tzinfo=UTC),
                    }
                ],
            )
        async with engine.connect() as conn:
            query = text("SELECT typeof(amount), amount, typeof(at), at FROM type_roundtrip")
            row = (await conn.execute(query)).one()
    finally:
        await engine.dispose()
    assert tuple(row) == ("text", "1015.00", "text", "2026-03-02T07:00:00.000000Z")


async def test_floats_are_refused(scratch_engine: AsyncEngine) -> None:
    with pytest.raises(StatementError) as raised:
        async with scratch_engine.begin() as conn:
            await conn.execute(insert(values), [{"id": 1, "amount": 1015.0}])
    assert isinstance(raised.value.orig, TypeError)


async def test_datetimes_come_back_aware_utc(scratch_engine: AsyncEngine) -> None:
    moments = [
        datetime(2026, 3, 2, 15, 0, tzinfo=ZoneInfo("Asia/Hong_Kong")),
        datetime(2026, 3, 2, 7, 0, 0, 1, tzinfo=UTC),
        datetime(2026, 3, 1, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))),
    ]
    async with scratch_engine.begin() as conn:
        await conn.execute(insert(values), [{"id": i, "at": at} for i, at in enumerate(moments)])
    async with scratch_engine.connect() as conn:
        rows = (await conn.execute(select(values.c.at).order_by(values.c.id))).scalars().all()
        ordered = (await conn.execute(select(values.c.id).order_by(values.c.at))).scalars().all()
    assert rows == moments  # the same instants
    assert all(at.tzinfo is UTC for at in rows)
    assert rows[0] == datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
    assert ordered == [2, 0, 1]  # by instant (04:59:59.999999Z first), on SQLite's text too


async def test_naive_datetimes_are_refused(scratch_engine: AsyncEngine) -> None:
    with pytest.raises(StatementError) as raised:
        async with scratch_engine.begin() as conn:
            await conn.execute(insert(values), [{"id": 1, "at": naive(2026, 3, 2, 7, 0)}])
    assert isinstance(raised.value.orig, ValueError)


@pytest.mark.parametrize("url", ["sqlite+aiosqlite://", "postgresql+asyncpg://"])
def test_naive_datetime_bind_raises_value_error(url: str) -> None:
    dialect: Dialect = make_url(url).get_dialect()()
    with pytest.raises(ValueError, match="naive"):
        UTCDateTime().process_bind_param(naive(2026, 3, 2), dialect)


async def test_json_is_stored_canonically(scratch_engine: AsyncEngine) -> None:
    doc = {"b": [1, "二"], "a": {"z": None, "y": "1015.00"}, "c": True}
    async with scratch_engine.begin() as conn:
        await conn.execute(insert(values), [{"id": 1, "doc": doc}])
    async with scratch_engine.connect() as conn:
        raw = (await conn.execute(text("SELECT doc FROM type_roundtrip"))).scalar_one()
        loaded = (await conn.execute(select(values.c.doc))).scalar_one()
    assert raw == '{"a":{"y":"1015.00","z":null},"b":[1,"二"],"c":true}'
    assert raw == canonical_json(doc)
    assert loaded == doc
