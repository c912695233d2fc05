"""The tamper-evident hash chains over snapshots and the audit log, and their verification.

Definition (enough to re-implement the check offline)
----------------------------------------------------
There are two independent chains, ``snapshots`` and ``audit``. Records of a chain carry
``seq`` = 1, 2, 3, … with no gaps, in the order they were written. Each record is hashed
as a JSON object of its *fields*:

- snapshots: ``{"chain": "snapshots", "seq", "call_id", "account_id", "scenario",
  "taken_at", "feed_as_of", "feed_cursor", "payload"}``
- audit: ``{"chain": "audit", "seq", "at", "operator", "action", "call_id",
  "account_id", "details"}``

``seq`` is a JSON integer; ``payload``/``details`` are the JSON documents themselves
(objects, not strings); instants are strings ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC
(always six fractional digits); absent values are ``null``. The record's canonical JSON
is ``json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``,
and

    hash = sha256( UTF-8( prev_hash + canonical_json(fields) ) ).hexdigest()

where ``prev_hash`` is the previous record's ``hash`` (64 lowercase hex digits) and, for
``seq`` 1, the genesis value of 64 ``0`` characters. The stored ``payload`` and
``details`` texts are exactly ``canonical_json`` of the document, so the bytes stored are
the bytes hashed. ``chain_heads`` holds the ``seq`` and ``hash`` of the last record of
each chain; it is written in the same transaction as every append, so a tail removed
afterwards shows as a head with no matching record.

An exported record is its fields plus ``"prev_hash"`` and ``"hash"``; `verify_records`
checks a list of them with nothing but this module.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Text, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from risk_tui.storage.db import READ_ONLY
from risk_tui.storage.tables import CHAIN_AUDIT, CHAIN_SNAPSHOTS, CHAINS, audit_log, chain_heads
from risk_tui.storage.tables import snapshots as snapshots_table
from risk_tui.storage.types import canonical_json, iso_utc, parse_utc

GENESIS_HASH = "0" * 64
PAGE_SIZE = 2_000

__all__ = [
    "CHAIN_AUDIT",
    "CHAIN_SNAPSHOTS",
    "GENESIS_HASH",
    "Break",
    "ChainWalker",
    "VerifyResult",
    "audit_fields",
    "chain_hash",
    "consistent_reader",
    "export_records",
    "export_where",
    "hash_text",
    "heads",
    "read_head",
    "record_json",
    "snapshot_fields",
    "verify",
    "verify_records",
]


def _instant(moment: datetime | None) -> str | None:
    return None if moment is None else iso_utc(moment)


def snapshot_fields(
    seq: int,
    *,
    call_id: str,
    account_id: str,
    scenario: str,
    taken_at: datetime,
    feed_as_of: datetime | None,
    feed_cursor: str | None,
    payload: Any,
) -> dict[str, Any]:
    """The hashed fields of snapshot `seq` (also its export form, less the hashes)."""
    return {
        "chain": CHAIN_SNAPSHOTS,
        "seq": seq,
        "call_id": call_id,
        "account_id": account_id,
        "scenario": str(scenario),
        "taken_at": iso_utc(taken_at),
        "feed_as_of": _instant(feed_as_of),
        "feed_cursor": feed_cursor,
        "payload": payload,
    }


def audit_fields(
    seq: int,
    *,
    at: datetime,
    operator: str,
    action: str,
    call_id: str | None,
    account_id: str | None,
    details: Any,
) -> dict[str, Any]:
    """The hashed fields of audit record `seq` (also its export form, less the hashes)."""
    return {
        "chain": CHAIN_AUDIT,
        "seq": seq,
        "at": iso_utc(at),
        "operator": operator,
        "action": action,
        "call_id": call_id,
        "account_id": account_id,
        "details": details,
    }


def chain_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    return hash_text(prev_hash, canonical_json(fields))


def hash_text(prev_hash: str, record_json: str) -> str:
    return hashlib.sha256((prev_hash + record_json).encode("utf-8")).hexdigest()


def record_json(fields: Mapping[str, Any], document_key: str, document_text: str) -> str:
    """`canonical_json(fields)` where `fields[document_key]` is given as its canonical text.

    Saves encoding a large payload twice (once to store, once to hash). Exact: the
    encoder writes a nested document with the same settings, and `"<key>":null` occurs
    once only, since every `"` inside a JSON string is escaped.
    """
    skeleton = canonical_json({**fields, document_key: None})
    head, found, tail = skeleton.partition(f'"{document_key}":null')
    if not found:
        raise ValueError(f"no {document_key!r} in record")
    return f'{head}"{document_key}":{document_text}{tail}'


@dataclass(frozen=True, slots=True)
class Break:
    """The first record where a chain stops holding: which chain, which seq, what is wrong."""

    chain: str
    seq: int
    problem: str


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    message: str  # one line, for `risk-tui audit verify`
    snapshots: int = 0  # records verified before the break (all of them when ok)
    audit: int = 0
    broken: Break | None = None


class ChainWalker:
    """Checks one chain record by record, in seq order, without holding the records."""

    def __init__(self, chain: str) -> None:
        self.chain = chain
        self.count = 0
        self._expected_seq = 1
        self._prev_hash = GENESIS_HASH

    def step(
        self, seq: int, prev_hash: str, stored_hash: str, fields: Mapping[str, Any]
    ) -> Break | None:
        expected = self._expected_seq
        if seq > expected:
            return self._break(expected, f"seq {expected} missing, next is {seq} (record deleted)")
        if seq < expected:
            return self._break(seq, f"seq {seq} out of order after seq {expected - 1}")
        if fields.get("seq") != seq or fields.get("chain") != self.chain:
            return self._break(seq, "fields do not name this chain and seq (record moved)")
        if prev_hash != self._prev_hash:
            return self._break(
                seq,
                "prev_hash does not match the previous record's hash "
                "(record deleted, inserted or reordered)",
            )
        if chain_hash(prev_hash, fields) != stored_hash:
            return self._break(seq, "hash mismatch (record edited)")
        self._prev_hash = stored_hash
        self._expected_seq += 1
        self.count += 1
        return None

    def finish(self, head: tuple[int, str] | None) -> Break | None:
        """After the last record: the head must name it, or the tail was cut off."""
        if head is None:
            return self._break(0, "chain head missing from chain_heads")
        head_seq, head_hash = head
        last = self._expected_seq - 1
        if last < head_seq:
            return self._break(
                last + 1,
                f"truncated: the head is seq {head_seq} but the last record is seq {last} "
                "(records deleted from the tail)",
            )
        if last > head_seq:
            return self._break(
                head_seq + 1, f"records after the head (seq {head_seq}): not written by the store"
            )
        if head_hash != self._prev_hash:
            return self._break(last, "the head's hash does not match the last record")
        return None

    def _break(self, seq: int, problem: str) -> Break:
        return Break(self.chain, seq, problem)


def _result(counts: Mapping[str, int], broken: Break | None) -> VerifyResult:
    snapshots, audit = counts.get(CHAIN_SNAPSHOTS, 0), counts.get(CHAIN_AUDIT, 0)
    if broken is not None:
        message = f"audit chain broken at {broken.chain} seq {broken.seq}: {broken.problem}"
        return VerifyResult(False, message, snapshots, audit, broken)
    return VerifyResult(
        True, f"ok: {snapshots} snapshots, {audit} audit records verified", snapshots, audit
    )


def verify_records(
    records: Iterable[Mapping[str, Any]],
    heads: Mapping[str, tuple[int, str]] | None = None,
) -> VerifyResult:
    """Check exported records (fields + `prev_hash` + `hash`), each chain from seq 1.

    Records of both chains may be interleaved; each chain is checked in the order given.
    With `heads` ({chain: (seq, hash)}), a chain must also end exactly at its head.
    """
    walkers: dict[str, ChainWalker] = {}
    for record in records:
        chain = str(record.get("chain"))
        if chain not in CHAINS:
            return _result(
                _counts(walkers), Break(chain, int(record.get("seq", 0)), "unknown chain")
            )
        walker = walkers.setdefault(chain, ChainWalker(chain))
        fields = {k: v for k, v in record.items() if k not in ("prev_hash", "hash")}
        broken = walker.step(
            int(record["seq"]), str(record["prev_hash"]), str(record["hash"]), fields
        )
        if broken is not None:
            return _result(_counts(walkers), broken)
    if heads is not None:
        for chain in CHAINS:
            walker = walkers.setdefault(chain, ChainWalker(chain))
            broken = walker.finish(heads.get(chain))
            if broken is not None:
                return _result(_counts(walkers), broken)
    return _result(_counts(walkers), None)


def _counts(walkers: Mapping[str, ChainWalker]) -> dict[str, int]:
    return {chain: walker.count for chain, walker in walkers.items()}


# --- the database side -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _RawRecord:
    seq: int
    prev_hash: str
    hash: str
    fields: dict[str, Any] | None  # None when the stored row cannot even be read
    problem: str | None = None


def _instant_from_db(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value
    moment = parse_utc(str(value))
    if iso_utc(moment) != value:  # the same instant written another way is still an edit
        raise ValueError(f"instant {value!r} is not in canonical form")
    return moment


def _document_from_db(text: Any, column: str) -> Any:
    document = json.loads(text)
    if canonical_json(document) != text:
        raise ValueError(f"{column} is not in canonical form")
    return document


def _snapshot_record(row: Any) -> _RawRecord:
    try:
        taken_at = _instant_from_db(row.taken_at)
        if taken_at is None:
            raise ValueError("taken_at is empty")
        fields = snapshot_fields(
            row.seq,
            call_id=row.call_id,
            account_id=row.account_id,
            scenario=row.scenario,
            taken_at=taken_at,
            feed_as_of=_instant_from_db(row.feed_as_of),
            feed_cursor=row.feed_cursor,
            payload=_document_from_db(row.payload, "payload"),
        )
    except (ValueError, TypeError) as problem:
        return _RawRecord(row.seq, row.prev_hash, row.hash, None, f"unreadable: {problem}")
    return _RawRecord(row.seq, row.prev_hash, row.hash, fields)


def _audit_record(row: Any) -> _RawRecord:
    try:
        at = _instant_from_db(row.at)
        if at is None:
            raise ValueError("at is empty")
        fields = audit_fields(
            row.seq,
            at=at,
            operator=row.operator,
            action=row.action,
            call_id=row.call_id,
            account_id=row.account_id,
            details=_document_from_db(row.details, "details"),
        )
    except (ValueError, TypeError) as problem:
        return _RawRecord(row.seq, row.prev_hash, row.hash, None, f"unreadable: {problem}")
    return _RawRecord(row.seq, row.prev_hash, row.hash, fields)


async def _raw_records(
    conn: AsyncConnection,
    chain: str,
    page_size: int = PAGE_SIZE,
    conditions: Sequence[ColumnElement[bool]] = (),
) -> AsyncIterator[_RawRecord]:
    """Every record of `chain` (matching `conditions`) in seq order, a page at a time
    (keyset paging)."""
    if chain == CHAIN_SNAPSHOTS:
        t = snapshots_table
        # Raw column values: a row edited into something the column type cannot decode
        # must be reported, not crash the check.
        columns: list[Any] = [
            t.c.seq,
            t.c.call_id,
            t.c.account_id,
            t.c.scenario,
            type_coerce(t.c.taken_at, Text).label("taken_at"),
            type_coerce(t.c.feed_as_of, Text).label("feed_as_of"),
            t.c.feed_cursor,
            type_coerce(t.c.payload, Text).label("payload"),
            t.c.prev_hash,
            t.c.hash,
        ]
        convert = _snapshot_record
    else:
        t = audit_log
        columns = [
            t.c.seq,
            type_coerce(t.c.at, Text).label("at"),
            t.c.operator,
            t.c.action,
            t.c.call_id,
            t.c.account_id,
            type_coerce(t.c.details, Text).label("details"),
            t.c.prev_hash,
            t.c.hash,
        ]
        convert = _audit_record
    after = 0
    while True:
        query = (
            select(*columns).where(t.c.seq > after, *conditions).order_by(t.c.seq).limit(page_size)
        )
        rows = (await conn.execute(query)).all()
        for row in rows:
            yield convert(row)
        if len(rows) < page_size:
            return
        after = rows[-1].seq


async def _head(conn: AsyncConnection, chain: str) -> tuple[int, str] | None:
    row = (
        await conn.execute(
            select(chain_heads.c.seq, chain_heads.c.hash).where(chain_heads.c.name == chain)
        )
    ).one_or_none()
    return None if row is None else (int(row.seq), str(row.hash))


@asynccontextmanager
async def _consistent_reader(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as conn:
        # One snapshot of the whole database for the whole walk: a deferred BEGIN on
        # SQLite (WAL readers see a fixed snapshot and do not block writers), REPEATABLE
        # READ on PostgreSQL.
        options = dict(READ_ONLY)
        if conn.dialect.name == "postgresql":
            options["isolation_level"] = "REPEATABLE READ"
        yield await conn.execution_options(**options)


async def verify(engine: AsyncEngine, page_size: int = PAGE_SIZE) -> VerifyResult:
    """Walk both chains in seq order and report the first broken record, if any."""
    counts: dict[str, int] = {}
    async with _consistent_reader(engine) as conn:
        for chain in CHAINS:
            walker = ChainWalker(chain)
            counts[chain] = 0
            async for record in _raw_records(conn, chain, page_size):
                if record.fields is None:
                    broken: Break | None = Break(
                        chain, record.seq, f"{record.problem} (record edited)"
                    )
                else:
                    broken = walker.step(record.seq, record.prev_hash, record.hash, record.fields)
                if broken is not None:
                    counts[chain] = walker.count
                    return _result(counts, broken)
            counts[chain] = walker.count
            broken = walker.finish(await _head(conn, chain))
            if broken is not None:
                return _result(counts, broken)
    return _result(counts, None)


async def export_records(
    engine: AsyncEngine, chain: str, page_size: int = PAGE_SIZE
) -> AsyncIterator[dict[str, Any]]:
    """Every record of `chain` in export form (fields + prev_hash + hash), in seq order."""
    if chain not in CHAINS:
        raise ValueError(f"unknown chain {chain!r}")
    async with _consistent_reader(engine) as conn:
        async for record in _raw_records(conn, chain, page_size):
            if record.fields is None:
                raise ValueError(f"{chain} seq {record.seq}: {record.problem}")
            yield {**record.fields, "prev_hash": record.prev_hash, "hash": record.hash}


async def heads(engine: AsyncEngine) -> dict[str, tuple[int, str]]:
    """The current head (seq, hash) of each chain: worth writing down outside the database."""
    found: dict[str, tuple[int, str]] = {}
    async with _consistent_reader(engine) as conn:
        for chain in CHAINS:
            head = await _head(conn, chain)
            if head is not None:
                found[chain] = head
    return found


# --- read helpers for `risk_tui.desk.export` (a period's slice, read in one consistent view) ---


def consistent_reader(engine: AsyncEngine) -> AbstractAsyncContextManager[AsyncConnection]:
    """One read-only connection that sees a single snapshot of the database throughout."""
    return _consistent_reader(engine)


async def read_head(conn: AsyncConnection, chain: str) -> tuple[int, str] | None:
    """The head (seq, hash) of `chain` as `conn` sees it, or None if it has none."""
    return await _head(conn, chain)


async def export_where(
    conn: AsyncConnection,
    chain: str,
    conditions: Sequence[ColumnElement[bool]] = (),
    page_size: int = PAGE_SIZE,
) -> AsyncIterator[dict[str, Any]]:
    """The records of `chain` matching `conditions` (on its table's columns), in export
    form and seq order, read on `conn`. A row that cannot be read raises ValueError."""
    if chain not in CHAINS:
        raise ValueError(f"unknown chain {chain!r}")
    async for record in _raw_records(conn, chain, page_size, conditions):
        if record.fields is None:
            raise ValueError(f"{chain} seq {record.seq}: {record.problem}")
        yield {**record.fields, "prev_hash": record.prev_hash, "hash": record.hash}
