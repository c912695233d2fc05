"""The Store: calls, snapshots, audit, remarks and daily markers, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Table, func, insert, select
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

from risk_tui.core.lifecycle import (
    AuditEntry,
    CallState,
    EndReason,
    LifecycleBatch,
    MarginCall,
    SnapshotRecord,
    SnapshotScenario,
)
from risk_tui.core.margin import RiskLevel
from risk_tui.core.model import AccountKind, Market
from risk_tui.storage.chain import verify
from risk_tui.storage.db import create_engine
from risk_tui.storage.errors import CallChanged, DailyAlreadyDone, UnknownCall
from risk_tui.storage.rows import CALL_ROWS
from risk_tui.storage.store import Store
from risk_tui.storage.tables import audit_log, calls, chain_heads, daily_jobs, snapshots
from tests.factories import T0, account_state, audit_of, make_call, naive, snapshot_of


async def _count(engine: AsyncEngine, table: Table) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def test_margin_call_round_trips_every_field(store: Store) -> None:
    hk = ZoneInfo("Asia/Hong_Kong")
    call = make_call(
        "HK-1001",
        kind=AccountKind.INTRADAY,
        market=Market.HK,
        currency="HKD",
        state=CallState.ENDED,
        risk_level=RiskLevel.SAFE,
        trigger_call_amount=Decimal("1750.00"),
        call_amount=Decimal("-0.01"),
        deadline=datetime(2026, 3, 4, 15, 0, tzinfo=hk),
        deadline_error=None,
        deadline_reason="typhoon signal 8: moved by one trading day",
        notified_at=T0 + timedelta(minutes=5),
        notified_call_amount=Decimal("1750.00"),
        force_call_at=T0 + timedelta(hours=1),
        ended_at=T0 + timedelta(days=1),
        end_reason=EndReason.CLOSED,
        end_note="client wired funds; confirmed by phone",
        exception=True,
        remark="debt, no positions left",
    )
    await store.calls.commit(LifecycleBatch(calls=[call]))
    loaded = await store.calls.get_call(call.call_id)
    assert loaded == call
    assert loaded is not None
    assert str(loaded.trigger_call_amount) == "1750.00"
    assert loaded.deadline == datetime(2026, 3, 4, 7, 0, tzinfo=UTC)
    assert loaded.deadline is not None
    assert loaded.deadline.tzinfo is UTC

    minimal = make_call("SG-1", deadline=None, deadline_error="no SGX calendar for 2031")
    await store.calls.commit(LifecycleBatch(calls=[minimal]))
    assert await store.calls.get_call(minimal.call_id) == minimal
    assert await store.calls.get_call("nope") is None


async def test_commit_updates_a_call_by_call_id(store: Store) -> None:
    call = make_call()
    await store.calls.commit(LifecycleBatch(calls=[call]))
    notified = replace(
        call,
        state=CallState.NOTIFIED,
        notified_at=T0 + timedelta(minutes=3),
        notified_call_amount=call.call_amount,
        call_amount=Decimal("1200.50"),
        version=call.version + 1,
    )
    await store.calls.commit(LifecycleBatch(calls=[notified]))
    assert await store.calls.get_call(call.call_id) == notified
    assert await store.calls.open_calls() == {"A1": notified}


async def test_repriced_calls_write_their_amount_and_level_only(store: Store) -> None:
    call = make_call()
    other = make_call("A2")
    await store.calls.commit(LifecycleBatch(calls=[call, other]))
    await store.calls.add_remark(call.call_id, "op1", "client called", False, T0)
    moved = replace(call, call_amount=Decimal("1777.77"), risk_level=RiskLevel.FORCE_CALL)
    # Anything else the engine holds differently is not a re-pricing's to write.
    stray = replace(moved, client_name="not written", state=CallState.NOTIFIED)
    await store.calls.commit(LifecycleBatch(repriced=[stray]))
    stored = await store.calls.get_call(call.call_id)
    assert stored == replace(
        call,
        call_amount=Decimal("1777.77"),
        risk_level=RiskLevel.FORCE_CALL,
        remark="client called",
    )
    assert await store.calls.get_call(other.call_id) == other


async def test_one_open_call_per_account(store: Store, engine: AsyncEngine) -> None:
    first = make_call("A1")
    await store.calls.commit(LifecycleBatch(calls=[first]))
    with pytest.raises(CallChanged) as refused:  # the store says so before the index does
        await store.calls.commit(LifecycleBatch(calls=[make_call("A1")]))
    assert first.call_id in refused.value.call_ids  # the open call to read
    assert await _count(engine, calls) == 1
    # And the index itself, for any writer that goes around the store.
    async with engine.begin() as conn:
        with pytest.raises(IntegrityError):
            await conn.execute(
                insert(calls).values(**CALL_ROWS.to_row(make_call("A1"), updated_at=T0))
            )
    assert await _count(engine, calls) == 1

    # Ending the old call and opening the next in one batch is fine, in either order.
    ended = replace(
        first,
        state=CallState.ENDED,
        ended_at=T0 + timedelta(days=1),
        end_reason=EndReason.MET,
        version=first.version + 1,
    )
    second = make_call("A1", triggered_at=T0 + timedelta(days=2))
    await store.calls.commit(LifecycleBatch(calls=[second, ended]))
    assert await store.calls.open_calls() == {"A1": second}
    assert [c.call_id for c in await store.history.ended_calls()] == [first.call_id]


async def test_failing_batch_writes_nothing(store: Store, engine: AsyncEngine) -> None:
    good = make_call("A1")
    await store.calls.commit(
        LifecycleBatch(calls=[good], snapshots=[snapshot_of(good)], audit=[audit_of(good)])
    )
    heads_before = await _heads(engine)

    fresh = make_call("A2")
    bad_snapshot = replace(snapshot_of(fresh), taken_at=naive(2026, 3, 2, 9, 0))
    batches = [
        # the last snapshot cannot be stored: nothing of the batch may be
        LifecycleBatch(
            calls=[fresh, replace(good, call_amount=Decimal("1.00"), version=good.version + 1)],
            snapshots=[snapshot_of(fresh), bad_snapshot],
            audit=[audit_of(fresh)],
        ),
        # a second open call for A1 (refused, as the unique index would)
        LifecycleBatch(
            calls=[fresh, make_call("A1")],
            snapshots=[snapshot_of(fresh)],
            audit=[audit_of(fresh)],
        ),
        # a snapshot of a call that does not exist (foreign key)
        LifecycleBatch(
            calls=[fresh],
            snapshots=[snapshot_of(fresh), snapshot_of(make_call("ghost"))],
        ),
        # an audit entry that is not JSON
        LifecycleBatch(
            calls=[fresh],
            snapshots=[snapshot_of(fresh)],
            audit=[replace(audit_of(fresh), details={"amount": Decimal("1")})],
        ),
    ]
    for batch in batches:
        with pytest.raises((ValueError, TypeError, IntegrityError, StatementError, CallChanged)):
            await store.calls.commit(batch)
        assert await _count(engine, calls) == 1
        assert await _count(engine, snapshots) == 1
        assert await _count(engine, audit_log) == 1
        assert await _heads(engine) == heads_before
        assert (await store.calls.get_call(good.call_id)) == good
    assert (await verify(engine)).ok


async def _heads(engine: AsyncEngine) -> dict[str, tuple[int, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(chain_heads.c.name, chain_heads.c.seq, chain_heads.c.hash))
        return {row.name: (row.seq, row.hash) for row in rows}


async def test_twenty_thousand_snapshots_in_one_commit(
    store: Store, engine: AsyncEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    accounts = [make_call(f"A{i:05d}") for i in range(2_000)]
    await store.calls.commit(LifecycleBatch(calls=accounts))
    records = [
        snapshot_of(
            call,
            SnapshotScenario.DAILY,
            T0 + timedelta(days=1),
            account_state(call.account_id, positions=8),
        )
        for _ in range(10)
        for call in accounts
    ]
    assert len(records) == 20_000
    started = time.perf_counter()
    await store.calls.commit(LifecycleBatch(snapshots=records))
    elapsed = time.perf_counter() - started
    with capsys.disabled():
        print(f"\n20,000 snapshots committed on {engine.dialect.name} in {elapsed:.2f} s")
    assert elapsed < 10, f"20,000 snapshots took {elapsed:.1f} s"
    assert await _count(engine, snapshots) == 20_000
    assert await store.audit.chain_head("snapshots") == (
        20_000,
        (await _heads(engine))["snapshots"][1],
    )
    assert (await verify(engine, page_size=3_000)).message == (
        "ok: 20000 snapshots, 0 audit records verified"
    )


async def test_snapshots_for_a_call_in_order(store: Store) -> None:
    call = make_call()
    other = make_call("A2")
    scenarios = [SnapshotScenario.TRIGGER, SnapshotScenario.NOTIFICATION, SnapshotScenario.DAILY]
    await store.calls.commit(
        LifecycleBatch(
            calls=[call, other],
            snapshots=[
                snapshot_of(call, SnapshotScenario.TRIGGER, T0),
                snapshot_of(other, SnapshotScenario.TRIGGER, T0),
                snapshot_of(call, SnapshotScenario.NOTIFICATION, T0 + timedelta(minutes=1)),
            ],
        )
    )
    await store.calls.commit(
        LifecycleBatch(
            snapshots=[snapshot_of(call, SnapshotScenario.DAILY, T0 + timedelta(days=1))]
        )
    )
    stored = await store.history.snapshots_for(call.call_id)
    assert [s.scenario for s in stored] == scenarios
    assert [s.seq for s in stored] == [1, 3, 4]
    first = stored[0]
    assert first.payload == account_state("A1")
    assert first.taken_at == T0
    assert first.feed_as_of == T0 - timedelta(seconds=1)
    assert first.feed_cursor == "c-000042"
    assert len(first.hash) == 64
    assert await store.history.snapshots_for("nope") == []


async def test_ended_calls_page_newest_first(store: Store) -> None:
    ended = [
        make_call(
            f"A{i}",
            state=CallState.ENDED,
            ended_at=T0 + timedelta(hours=i),
            end_reason=EndReason.MET,
        )
        for i in range(5)
    ]
    await store.calls.commit(LifecycleBatch(calls=[*ended, make_call("OPEN")]))
    newest_first = [c.call_id for c in reversed(ended)]
    assert [c.call_id for c in await store.history.ended_calls(limit=2)] == newest_first[:2]
    assert [c.call_id for c in await store.history.ended_calls(limit=2, offset=2)] == newest_first[
        2:4
    ]
    assert [c.call_id for c in await store.history.ended_calls(limit=10, offset=4)] == newest_first[
        4:
    ]
    assert await store.history.count_ended_calls() == 5
    assert list(await store.calls.open_calls()) == ["OPEN"]


async def test_remarks_history_and_audit(store: Store) -> None:
    call = make_call()
    await store.calls.commit(LifecycleBatch(calls=[call]))
    await store.calls.add_remark(call.call_id, "alice", "client says funds on the way", False, T0)
    later = T0 + timedelta(hours=2)
    await store.calls.add_remark(call.call_id, "bob", "debt, no positions left", True, later)

    history = await store.history.remarks_for(call.call_id)
    assert [(r.operator, r.text, r.exception, r.at) for r in history] == [
        ("alice", "client says funds on the way", False, T0),
        ("bob", "debt, no positions left", True, later),
    ]
    current = await store.calls.get_call(call.call_id)
    assert current is not None
    assert (current.remark, current.exception) == ("debt, no positions left", True)

    audit = await store.history.audit_for(call.call_id)
    assert [(a.action, a.operator, a.details) for a in audit] == [
        ("remark", "alice", {"text": "client says funds on the way", "exception": False}),
        ("remark", "bob", {"text": "debt, no positions left", "exception": True}),
    ]
    assert audit[0].account_id == "A1"

    # The engine's older copy of the call must not erase the operator's remark.
    older = replace(call, call_amount=Decimal("900.00"), version=call.version + 1)
    await store.calls.commit(LifecycleBatch(calls=[older]))
    current = await store.calls.get_call(call.call_id)
    assert current is not None
    assert current.call_amount == Decimal("900.00")
    assert (current.remark, current.exception) == ("debt, no positions left", True)

    with pytest.raises(UnknownCall):
        await store.calls.add_remark("nope", "alice", "x", False, T0)


async def test_append_audit(store: Store, engine: AsyncEngine) -> None:
    entries = [
        AuditEntry(T0, "alice", "login"),
        AuditEntry(T0, "alice", "liquidate", "MC1", "A1", {"symbols": ["D05.SI"], "qty": "100"}),
    ]
    await store.audit.append_audit(entries)
    await store.audit.append_audit([])
    assert await _count(engine, audit_log) == 2
    assert (await verify(engine)).message == "ok: 0 snapshots, 2 audit records verified"


async def test_daily_markers_commit_with_the_snapshot(store: Store, engine: AsyncEngine) -> None:
    call = make_call()
    await store.calls.commit(LifecycleBatch(calls=[call], snapshots=[snapshot_of(call)]))
    day = date(2026, 3, 3)
    assert not await store.daily.daily_done("snapshot", call.call_id, day)

    daily = snapshot_of(call, SnapshotScenario.DAILY, T0 + timedelta(days=1))
    await store.calls.commit(
        LifecycleBatch(snapshots=[daily]), daily=[("snapshot", call.call_id, day)]
    )
    assert await store.daily.daily_done("snapshot", call.call_id, day)
    assert not await store.daily.daily_done("reminder", call.call_id, day)
    assert not await store.daily.daily_done("snapshot", call.call_id, date(2026, 3, 4))

    # Doing it again (say, after a restart) is refused, and the snapshot is not repeated.
    with pytest.raises(DailyAlreadyDone) as raised:
        await store.calls.commit(
            LifecycleBatch(snapshots=[daily]), daily=[("snapshot", call.call_id, day)]
        )
    assert raised.value.keys == [("snapshot", call.call_id, day)]
    assert len(await store.history.snapshots_for(call.call_id)) == 2

    await store.daily.mark_daily([("reminder", call.call_id, day), ("reminder", call.call_id, day)])
    assert await store.daily.daily_done("reminder", call.call_id, day)
    await store.calls.commit(LifecycleBatch(), daily=[("snapshot", call.call_id, date(2026, 3, 4))])
    assert await store.daily.last_daily("snapshot") == {call.call_id: date(2026, 3, 4)}
    assert await _count(engine, daily_jobs) == 3


async def test_feed_cache(store: Store) -> None:
    assert await store.cache.get_cache("book") is None
    await store.cache.put_cache("book", '{"cursor": "c-1"}')
    await store.cache.put_cache("book", '{"cursor": "c-2"}')
    assert await store.cache.get_cache("book") == '{"cursor": "c-2"}'


async def test_concurrent_writers_keep_the_chains_contiguous(db_url: str, store: Store) -> None:
    """Two processes' worth of engines committing at once: seqs stay 1..n, verify passes."""
    calls_by_writer = [[make_call(f"W{w}-{i}") for i in range(15)] for w in range(3)]
    engines = [await create_engine(db_url) for _ in calls_by_writer]

    async def write(engine: AsyncEngine, batch_calls: list[MarginCall]) -> None:
        writer = Store(engine)
        for call in batch_calls:
            await writer.calls.commit(
                LifecycleBatch(
                    calls=[call], snapshots=[snapshot_of(call)] * 2, audit=[audit_of(call)]
                )
            )

    try:
        await asyncio.gather(*(write(e, c) for e, c in zip(engines, calls_by_writer, strict=True)))
    finally:
        for engine in engines:
            await engine.dispose()
    result = await verify(store.engine)
    assert result.ok, result.message
    assert result.snapshots == 90
    assert result.audit == 45


async def test_snapshot_records_keep_their_order_within_a_batch(store: Store) -> None:
    call = make_call()
    records = [
        SnapshotRecord(
            call.call_id,
            call.account_id,
            SnapshotScenario.DAILY,
            T0 + timedelta(seconds=i),
            None,
            None,
            {"i": i},
        )
        for i in range(50)
    ]
    await store.calls.commit(LifecycleBatch(calls=[call], snapshots=records))
    stored = await store.history.snapshots_for(call.call_id)
    assert [s.payload["i"] for s in stored] == list(range(50))
    assert stored[0].feed_as_of is None
    assert stored[0].feed_cursor is None
