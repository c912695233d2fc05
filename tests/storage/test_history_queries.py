"""History queries: keyset pages newest first, the top since an instant, the text filter in
the database, counts, and each call's trigger and end snapshot in one query per page."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from risk_tui.core.lifecycle import CallState, EndReason, LifecycleBatch, MarginCall
from risk_tui.core.lifecycle import SnapshotScenario as S
from risk_tui.core.records import HistoryKey
from risk_tui.storage.store import Store
from tests.factories import T0, account_state, make_call, snapshot_of


def ended(account_id: str, seconds: int, **changes: object) -> MarginCall:
    return make_call(
        account_id,
        state=CallState.ENDED,
        ended_at=T0 + timedelta(seconds=seconds),
        end_reason=EndReason.MET,
        **changes,
    )


def key(call: MarginCall) -> HistoryKey:
    assert call.ended_at is not None
    return (call.ended_at, call.call_id)


async def test_pages_by_key_cover_history_newest_first_without_repeats(store: Store) -> None:
    # Ties on ended_at (three calls end in the same second) are ordered by call id.
    history = [ended(f"A{i:03d}", i // 3) for i in range(25)]
    await store.calls.commit(LifecycleBatch(calls=[*history, make_call("OPEN1")]))
    expected = sorted(history, key=key, reverse=True)

    pages: list[list[MarginCall]] = []
    before: HistoryKey | None = None
    while True:
        page = await store.history.history_page(10, before=before)
        if not page:
            break
        pages.append(page)
        before = key(page[-1])
    assert [len(page) for page in pages] == [10, 10, 5]
    read = [call for page in pages for call in page]
    assert [call.call_id for call in read] == [call.call_id for call in expected]
    assert read == expected  # the whole call, as stored
    assert await store.history.count_history() == 25
    # the same order as the offset paging it replaces
    assert [c.call_id for c in await store.history.ended_calls(limit=25)] == [
        c.call_id for c in read
    ]


async def test_the_top_since_an_instant(store: Store) -> None:
    history = [ended(f"A{i:03d}", i) for i in range(10)]
    await store.calls.commit(LifecycleBatch(calls=history))
    since = T0 + timedelta(seconds=7)
    top = await store.history.history_page(100, since=since)
    assert [call.account_id for call in top] == ["A009", "A008", "A007"]
    assert await store.history.history_page(2, since=since) == top[:2]


async def test_the_filter_runs_in_the_database(store: Store) -> None:
    calls = [
        ended("HK0001", 1, client_name="陳大文 (Chan Tai Man)"),
        ended("SG0002", 2, client_name="Tan Mei Ling"),
        ended("SG0003", 3, client_name="50%_off Ltd"),
        ended("US0004", 4, client_name="Smith"),
    ]
    await store.calls.commit(LifecycleBatch(calls=calls))

    async def accounts(needle: str) -> list[str]:
        found = [call.account_id for call in await store.history.history_page(100, needle=needle)]
        assert await store.history.count_history(needle) == len(found)
        return found

    assert await accounts("sg00") == ["SG0003", "SG0002"]  # account, case-insensitive
    assert await accounts("TAN MEI") == ["SG0002"]  # client name
    assert await accounts("陳大文") == ["HK0001"]
    assert await accounts(calls[3].call_id[-8:]) == ["US0004"]  # call id
    assert await accounts("%") == ["SG0003"]  # LIKE wildcards are literal characters
    assert await accounts("_") == ["SG0003"]
    assert await accounts("   ") == ["US0004", "SG0003", "SG0002", "HK0001"]
    assert await accounts("nobody") == []
    # paging by key keeps the filter
    first = await store.history.history_page(1, needle="sg")
    rest = await store.history.history_page(5, before=key(first[0]), needle="sg")
    assert [call.account_id for call in first + rest] == ["SG0003", "SG0002"]


async def test_end_snapshots_give_the_first_trigger_and_the_last_end(store: Store) -> None:
    full = ended("A1", 10)
    no_end = ended("A2", 20)
    bare = ended("A3", 30)
    after = dict(account_state("A1"), equity="15000.00", call_amount="0")
    records = [
        snapshot_of(full, S.TRIGGER, T0),
        snapshot_of(full, S.NOTIFICATION, T0 + timedelta(minutes=5)),
        snapshot_of(full, S.DAILY, T0 + timedelta(days=1)),
        snapshot_of(full, S.END, T0 + timedelta(days=1, hours=1), payload=after),
        snapshot_of(no_end, S.TRIGGER, T0),
    ]
    await store.calls.commit(LifecycleBatch(calls=[full, no_end, bare], snapshots=records))
    ends = await store.history.end_snapshots(
        [full.call_id, no_end.call_id, bare.call_id, full.call_id]
    )
    assert set(ends) == {full.call_id, no_end.call_id, bare.call_id}
    trigger, end = ends[full.call_id].trigger, ends[full.call_id].end
    assert trigger is not None
    assert trigger.scenario is S.TRIGGER
    assert trigger.seq == 1
    assert trigger.payload["equity"] == "9500.00"
    assert end is not None
    assert end.scenario is S.END
    assert end.payload["equity"] == "15000.00"
    assert ends[no_end.call_id].trigger is not None
    assert ends[no_end.call_id].end is None
    assert ends[bare.call_id].trigger is None
    assert ends[bare.call_id].end is None
    assert await store.history.end_snapshots([]) == {}


async def test_end_snapshots_of_more_calls_than_one_query_may_bind(store: Store) -> None:
    # SQLite caps bound parameters: more than 1,000 call ids are read in chunks.
    history = [ended(f"A{i:04d}", i) for i in range(1_250)]
    records = [snapshot_of(call, S.END, T0) for call in history]
    await store.calls.commit(LifecycleBatch(calls=history, snapshots=records))
    ends = await store.history.end_snapshots([call.call_id for call in history])
    assert len(ends) == 1_250
    assert all(found.end is not None and found.trigger is None for found in ends.values())
    last = ends[history[-1].call_id].end
    assert last is not None
    assert last.account_id == "A1249"


async def test_an_open_call_is_not_history_until_it_ends(store: Store) -> None:
    call = make_call("A1")
    await store.calls.commit(LifecycleBatch(calls=[call]))
    assert await store.history.history_page(10) == []
    assert await store.history.count_history() == 0
    done = replace(
        call,
        state=CallState.ENDED,
        ended_at=T0,
        end_reason=EndReason.CLOSED,
        end_note="gone",
        version=call.version + 1,
    )
    await store.calls.commit(LifecycleBatch(calls=[done]))
    assert await store.history.history_page(10) == [done]
    assert await store.history.count_history() == 1
