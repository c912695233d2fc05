"""The hash chains: the definition is pinned, and every kind of tampering is caught and named."""

from __future__ import annotations

import hashlib
import json
import random
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from risk_tui.core.lifecycle import AuditEntry, LifecycleBatch, SnapshotScenario
from risk_tui.storage import run_verify
from risk_tui.storage.chain import (
    GENESIS_HASH,
    export_records,
    heads,
    record_json,
    verify,
    verify_records,
)
from risk_tui.storage.store import Store
from risk_tui.storage.types import canonical_json
from tests.factories import T0, make_call, snapshot_of

SNAPSHOTS = 10
AUDITS = 6


@pytest.fixture
async def filled(store: Store) -> Store:
    """10 snapshots over 5 calls and 6 audit entries, committed in several batches."""
    for i in range(5):
        call = make_call(f"A{i}")
        await store.calls.commit(
            LifecycleBatch(
                calls=[call],
                snapshots=[
                    snapshot_of(call, SnapshotScenario.TRIGGER, T0 + timedelta(minutes=i)),
                    snapshot_of(call, SnapshotScenario.DAILY, T0 + timedelta(days=1)),
                ],
                audit=[AuditEntry(T0, "engine", "call_opened", call.call_id, call.account_id)],
            )
        )
    await store.audit.append_audit([AuditEntry(T0, "alice", "login", details={"host": "desk-3"})])
    return store


async def _execute(engine: AsyncEngine, *statements: str) -> None:
    async with engine.begin() as conn:
        for statement in statements:
            await conn.execute(text(statement))


def _reference_hash(prev_hash: str, fields: dict[str, object]) -> str:
    """The chain as the module docstring defines it, written out independently."""
    body = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


async def test_verify_ok(filled: Store, db_url: str) -> None:
    result = await verify(filled.engine)
    assert result.ok
    assert result.broken is None
    assert result.message == "ok: 10 snapshots, 6 audit records verified"
    via_cli = await run_verify(db_url)
    assert via_cli.ok
    assert via_cli.message == result.message


async def test_empty_database_verifies(store: Store) -> None:
    assert (await verify(store.engine)).message == "ok: 0 snapshots, 0 audit records verified"


async def test_hash_definition_is_the_documented_one(filled: Store) -> None:
    records = [r async for r in export_records(filled.engine, "snapshots")]
    assert [r["seq"] for r in records] == list(range(1, SNAPSHOTS + 1))
    prev = GENESIS_HASH
    for record in records:
        fields = {k: v for k, v in record.items() if k not in ("prev_hash", "hash")}
        assert set(fields) == {
            "chain",
            "seq",
            "call_id",
            "account_id",
            "scenario",
            "taken_at",
            "feed_as_of",
            "feed_cursor",
            "payload",
        }
        assert record["prev_hash"] == prev
        assert record["hash"] == _reference_hash(prev, fields)
        prev = record["hash"]
    assert records[0]["taken_at"] == "2026-03-02T01:30:15.123456Z"
    assert records[0]["chain"] == "snapshots"
    assert (await heads(filled.engine))["snapshots"] == (SNAPSHOTS, prev)

    audit = [r async for r in export_records(filled.engine, "audit")]
    assert set(audit[0]) == {
        "chain",
        "seq",
        "at",
        "operator",
        "action",
        "call_id",
        "account_id",
        "details",
        "prev_hash",
        "hash",
    }
    assert audit[0]["prev_hash"] == GENESIS_HASH
    assert audit[-1]["details"] == {"host": "desk-3"}


def test_spliced_record_json_equals_full_encoding() -> None:
    rng = random.Random(7)
    for _ in range(200):
        doc = {
            f"k{rng.randint(0, 9)}": rng.choice(
                [None, True, 1.5, -3, 'x"payload":null', '"payload":null', "二", [1, {"a": "b"}]]
            )
            for _ in range(rng.randint(0, 6))
        }
        fields = {
            "chain": "snapshots",
            "seq": 3,
            "feed_cursor": rng.choice(['"payload":null', "payload", None]),
            "payload": None,
        }
        spliced = record_json(fields, "payload", canonical_json(doc))
        assert spliced == canonical_json({**fields, "payload": doc})


async def _verdict(store: Store) -> tuple[str, int, str]:
    result = await verify(store.engine, page_size=3)  # small pages: breaks across pages too
    assert not result.ok
    assert result.broken is not None
    assert result.message.startswith(
        f"audit chain broken at {result.broken.chain} seq {result.broken.seq}: "
    )
    return result.broken.chain, result.broken.seq, result.broken.problem


async def test_edited_payload_is_caught(filled: Store) -> None:
    await _execute(
        filled.engine,
        """UPDATE snapshots SET payload = REPLACE(payload, '"equity":"9500.00"',
           '"equity":"95000.00"') WHERE seq = 7""",
    )
    chain, seq, problem = await _verdict(filled)
    assert (chain, seq) == ("snapshots", 7)
    assert "hash mismatch (record edited)" in problem


async def test_edited_field_is_caught(filled: Store) -> None:
    await _execute(filled.engine, "UPDATE snapshots SET scenario = 'end' WHERE seq = 4")
    assert await _verdict(filled) == ("snapshots", 4, "hash mismatch (record edited)")


async def test_edited_audit_record_is_caught(filled: Store) -> None:
    await _execute(filled.engine, "UPDATE audit_log SET operator = 'mallory' WHERE seq = 2")
    assert await _verdict(filled) == ("audit", 2, "hash mismatch (record edited)")


async def test_recomputed_hash_breaks_the_next_link(filled: Store) -> None:
    """An editor who also fixes the edited record's hash is caught at the next record."""
    records = [r async for r in export_records(filled.engine, "snapshots")]
    edited = {k: v for k, v in records[4].items() if k not in ("prev_hash", "hash")}
    edited["feed_cursor"] = "c-forged"
    forged_hash = _reference_hash(records[4]["prev_hash"], edited)
    await _execute(
        filled.engine,
        f"UPDATE snapshots SET feed_cursor = 'c-forged', hash = '{forged_hash}' WHERE seq = 5",
    )
    chain, seq, problem = await _verdict(filled)
    assert (chain, seq) == ("snapshots", 6)
    assert problem.startswith("prev_hash does not match")


async def test_non_canonical_rewrite_is_caught(filled: Store) -> None:
    """Same JSON meaning, different bytes: still an edit of the evidence."""
    await _execute(
        filled.engine, "UPDATE snapshots SET payload = REPLACE(payload, ':', ': ') WHERE seq = 3"
    )
    chain, seq, problem = await _verdict(filled)
    assert (chain, seq) == ("snapshots", 3)
    assert "not in canonical form" in problem
    assert "record edited" in problem


async def test_garbage_in_a_record_is_caught(filled: Store) -> None:
    await _execute(filled.engine, "UPDATE audit_log SET details = 'not json' WHERE seq = 3")
    chain, seq, problem = await _verdict(filled)
    assert (chain, seq) == ("audit", 3)
    assert problem.startswith("unreadable")


async def test_deleted_record_is_caught(filled: Store) -> None:
    await _execute(filled.engine, "DELETE FROM snapshots WHERE seq = 5")
    assert await _verdict(filled) == ("snapshots", 5, "seq 5 missing, next is 6 (record deleted)")


async def test_deleted_and_renumbered_is_caught(filled: Store) -> None:
    await _execute(
        filled.engine,
        "DELETE FROM audit_log WHERE seq = 2",
        "UPDATE audit_log SET seq = seq - 1 WHERE seq > 2",
        "UPDATE chain_heads SET seq = seq - 1 WHERE name = 'audit'",
    )
    chain, seq, problem = await _verdict(filled)
    assert (chain, seq) == ("audit", 2)
    assert problem.startswith("prev_hash does not match")


async def test_reordered_records_are_caught(filled: Store) -> None:
    await _execute(
        filled.engine,
        "UPDATE snapshots SET seq = -1 WHERE seq = 3",
        "UPDATE snapshots SET seq = 3 WHERE seq = 4",
        "UPDATE snapshots SET seq = 4 WHERE seq = -1",
    )
    chain, seq, problem = await _verdict(filled)
    assert (chain, seq) == ("snapshots", 3)
    assert "reordered" in problem


async def test_truncated_tail_is_caught(filled: Store) -> None:
    await _execute(filled.engine, "DELETE FROM snapshots WHERE seq > 8")
    chain, seq, problem = await _verdict(filled)
    assert (chain, seq) == ("snapshots", 9)
    assert problem.startswith("truncated: the head is seq 10 but the last record is seq 8")


async def test_truncated_audit_tail_is_caught(filled: Store) -> None:
    await _execute(filled.engine, "DELETE FROM audit_log WHERE seq = 6")
    chain, seq, problem = await _verdict(filled)
    assert (chain, seq) == ("audit", 6)
    assert problem.startswith("truncated")


async def test_records_behind_the_heads_back_are_caught(filled: Store) -> None:
    await _execute(filled.engine, "UPDATE chain_heads SET seq = 9 WHERE name = 'snapshots'")
    chain, seq, problem = await _verdict(filled)
    assert (chain, seq) == ("snapshots", 10)
    assert problem.startswith("records after the head")


async def test_first_break_is_reported(filled: Store) -> None:
    await _execute(
        filled.engine,
        "UPDATE snapshots SET account_id = 'X' WHERE seq = 8",
        "UPDATE snapshots SET account_id = 'X' WHERE seq = 2",
        "UPDATE audit_log SET action = 'X' WHERE seq = 1",
    )
    assert (await _verdict(filled))[:2] == ("snapshots", 2)


async def test_exported_records_verify_offline(filled: Store) -> None:
    exported = [r async for r in export_records(filled.engine, "snapshots")]
    exported += [r async for r in export_records(filled.engine, "audit")]
    exported = json.loads(json.dumps(exported))  # as a compliance file would carry them
    chain_heads = await heads(filled.engine)
    result = verify_records(exported, chain_heads)
    assert result.ok, result.message
    assert result.message == "ok: 10 snapshots, 6 audit records verified"

    tampered = [dict(r) for r in exported]
    tampered[3]["payload"] = {**tampered[3]["payload"], "equity": "1.00"}
    assert verify_records(tampered).message == (
        "audit chain broken at snapshots seq 4: hash mismatch (record edited)"
    )
    assert not verify_records(exported[:-1], chain_heads).ok  # audit tail missing
    assert verify_records(exported[:-1]).ok  # without heads, a prefix is consistent
    swapped = [*exported[:2], exported[3], exported[2], *exported[4:]]
    assert verify_records(swapped).broken is not None
