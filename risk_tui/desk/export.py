"""The compliance export: a period's calls, snapshots and audit records, verifiable offline.

`risk-tui export` and the History tab's `x` write it; `risk-tui audit verify --export`
checks a file of it. Each export is audited (`core.export.export_audit`): the SHA-256 of
the bytes written is taken as they are written (`Digest`), and the audit record is in
the chain before the file appears under its name; an export that cannot be audited is
not delivered (to stdout, where the bytes are already out, it fails with exit 4).

What is exported
----------------
For a period of inclusive calendar dates in UTC (``--from D1 --to D2`` is every instant
from ``D1T00:00:00Z`` up to, not including, the midnight after ``D2``), read in one
consistent view of the database:

- ``call``: every margin call triggered or ended in the period (its row as it is now);
- ``snapshot``: every snapshot of those calls, whenever taken (the evidence of each call
  from trigger to end), in seq order;
- ``audit``: every audit record whose ``at`` falls in the period, in seq order;
- ``header`` (first): the period, ``generated_at``, the tool version, the number of
  records of each type, and the head (seq, hash) of both chains at export time.

Snapshot and audit records are in the export form of ``risk_tui.storage.chain``: the
hashed fields exactly (``chain``, ``seq`` … ``payload``/``details``) plus ``prev_hash``
and ``hash``. Calls are not part of a chain (their rows change over a call's life), so
they are informational and not verified.

Formats
-------
``jsonl``: one JSON object per line, ``{"record": "header"|"call"|"snapshot"|"audit",
…}``; a snapshot or audit line is ``{"record": …}`` plus its export form. Lines are
ASCII (non-ASCII and control characters are JSON escapes), so data from the database
cannot act on a terminal. ``csv``: one row per record with the columns `CSV_FIELDS`.
``data`` holds the record less ``record``/``prev_hash``/``hash`` as JSON with sorted keys,
no spaces and ASCII escapes (`data_json`), ``prev_hash`` and ``hash`` their own columns;
for a chain record the hash is ``sha256(prev_hash + canonical_json(json.loads(data)))``
with ``canonical_json`` as ``risk_tui.storage.chain`` defines it. The other columns
repeat a few fields for people and are sanitized for display.

Verifying an export (`verify_export`, ``risk-tui audit verify --export PATH``)
-----------------------------------------------------------------------------
A period is a slice of each chain, so the export is checked as a slice, not from seq 1:

1. each record's ``hash`` is recomputed from its own fields and ``prev_hash`` with the
   algorithm documented in ``risk_tui.storage.chain`` (seq 1 must have the genesis
   ``prev_hash``);
2. records of one chain must come in strictly increasing seq; where two consecutive
   exported records of a chain have contiguous seqs (n, n+1), the second's
   ``prev_hash`` must equal the first's ``hash``. A gap in seq is accepted: it is where
   the period excludes records (snapshots of calls not exported, audit records outside
   the period), which the file alone cannot tell from records cut out of it — the
   header's counts catch removed records unless the header was rewritten too;
3. against the header's chain heads: no record may have a seq past its chain's head,
   and a record at the head's seq must have the head's hash. Compare the heads with
   ones written down elsewhere (or `risk-tui audit verify` on the database) to tie the
   export to the full chains.

The first record that fails is reported, by type, chain, seq and line.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import URL
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from risk_tui.core.actions import ActionError
from risk_tui.core.export import (
    AUDIT,
    CALL,
    COUNTED,
    FORMAT_NAME,
    FORMAT_VERSION,
    FORMATS,
    HEADER,
    SNAPSHOT,
    Period,
    Written,
    export_audit,
)
from risk_tui.core.text import sanitize
from risk_tui.desk.api import ExportRequest
from risk_tui.storage.audit import AuditTrail
from risk_tui.storage.chain import CHAIN_AUDIT, CHAIN_SNAPSHOTS, GENESIS_HASH, chain_hash
from risk_tui.storage.db import create_engine
from risk_tui.storage.export import period_records
from risk_tui.storage.tables import CHAINS

CHAIN_OF_RECORD = {SNAPSHOT: CHAIN_SNAPSHOTS, AUDIT: CHAIN_AUDIT}

CSV_FIELDS = (
    "record",
    "chain",
    "seq",
    "call_id",
    "account_id",
    "at",
    "what",
    "operator",
    "prev_hash",
    "hash",
    "data",
)
_NOT_DATA = ("record", "prev_hash", "hash")
_HEX64 = re.compile(r"[0-9a-f]{64}")


# --- writing ---------------------------------------------------------------------------------


def jsonl_line(record: Mapping[str, Any]) -> str:
    # ASCII only: database text reaches the reader as JSON escapes, never as raw controls.
    return json.dumps(record, ensure_ascii=True, separators=(",", ":")) + "\n"


def _data(record: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if key not in _NOT_DATA}


def data_json(record: Mapping[str, Any]) -> str:
    """The CSV `data` cell: sorted keys, no spaces, ASCII (`\\uXXXX` escapes)."""
    return json.dumps(_data(record), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def csv_row(record: Mapping[str, Any]) -> dict[str, Any]:
    kind = record["record"]
    when = record.get("taken_at") or record.get("at") or record.get("triggered_at")
    what = record.get("scenario") or record.get("action") or record.get("state")
    if kind == HEADER:
        when, what = (
            record.get("generated_at"),
            f"{record['period']['from']}..{record['period']['to']}",
        )

    def shown(value: Any) -> str:
        return "" if value is None else sanitize(str(value))

    return {
        # For people: sanitized, so an escape sequence in a client's name or an
        # operator's remark cannot act on the terminal or viewer showing the file.
        "record": shown(kind),
        "chain": shown(record.get("chain")),
        "seq": shown(record.get("seq")),
        "call_id": shown(record.get("call_id")),
        "account_id": shown(record.get("account_id")),
        "at": shown(when),
        "what": shown(what),
        "operator": shown(record.get("operator")),
        # For verification: exact, never sanitized. `data` carries every hashed field
        # and the hashes are hex; `sanitize` would replace characters of the hashed text
        # (a client name with an escape in it is still the evidence as recorded), and a
        # genuine record would then fail verification. It is made inert differently:
        # JSON with ASCII escapes, which decodes back to exactly the stored values.
        "prev_hash": record.get("prev_hash", ""),
        "hash": record.get("hash", ""),
        "data": data_json(record),
    }


class Writable(Protocol):
    def write(self, text: str, /) -> object: ...


class ExportWriter:
    """Writes records one at a time, in `fmt`, to a text stream opened with newline=""."""

    def __init__(self, out: Writable, fmt: str) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown export format {fmt!r}")
        self._out = out
        self._csv = csv.DictWriter(out, fieldnames=CSV_FIELDS) if fmt == "csv" else None
        if self._csv is not None:
            self._csv.writeheader()

    def write(self, record: Mapping[str, Any]) -> None:
        if self._csv is None:
            self._out.write(jsonl_line(record))
        else:
            self._csv.writerow(csv_row(record))


class Digest:
    """Passes text on to `out` and takes the SHA-256 and size of its UTF-8 bytes: what a
    stream opened with encoding="utf-8", newline="" writes, exactly."""

    def __init__(self, out: Writable) -> None:
        self._out = out
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, text: str, /) -> object:
        data = text.encode("utf-8")
        self._hash.update(data)
        self.size += len(data)
        return self._out.write(text)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


async def write_export(
    engine: AsyncEngine, period: Period, fmt: str, out: Writable, *, now: datetime
) -> Written:
    """Write the export of `period` to `out`; the header's counts, and the SHA-256 and
    size of what was written."""
    digest = Digest(out)
    writer = ExportWriter(digest, fmt)
    counts: dict[str, int] = {}
    async for record in period_records(engine, period, now=now):
        if record["record"] == HEADER:
            counts = dict(record["counts"])
        writer.write(record)
    return Written(counts, digest.sha256, digest.size)


class ExportFailed(ActionError):
    """One line saying why the export file was not written."""


@dataclass(frozen=True, slots=True)
class Exporter:
    """Who exports, and from where: what the audit record of each export names."""

    operator: str
    source: str  # "cli" or "history tab"
    role: str | None = None


async def audit_export(
    engine: AsyncEngine,
    exporter: Exporter,
    period: Period,
    fmt: str,
    destination: str,
    written: Written,
    *,
    at: datetime,
) -> None:
    """Append the export's audit record to the audit chain (`core.export.export_audit`)."""
    entry = export_audit(
        at=at,
        operator=exporter.operator,
        period=period,
        fmt=fmt,
        destination=destination,
        written=written,
        source=exporter.source,
        role=exporter.role,
    )
    await AuditTrail(engine).append_audit([entry])


def export_file(
    url: URL, request: ExportRequest, now: datetime, exporter: Exporter
) -> dict[str, int]:
    """Write the export on a thread of its own (its own event loop and engine), so a long
    period never stalls the desk; the file appears only once complete and audited. `url`
    is the desk's own (its password never rendered into text)."""
    return asyncio.run(_export_file(url, request, now, exporter))


async def _export_file(
    url: URL, request: ExportRequest, now: datetime, exporter: Exporter
) -> dict[str, int]:
    path = request.path.absolute()
    partial = path.with_name(f".{path.name}.partial")
    engine = await create_engine(url)
    try:
        try:
            with partial.open("w", encoding="utf-8", newline="") as stream:
                written = await write_export(engine, request.period, request.fmt, stream, now=now)
            if path.exists():  # checked in the dialog; someone may have been quicker
                raise ExportFailed(f"{path} already exists: nothing overwritten")
            # Audited before it appears: an export the chain does not record is never
            # delivered.
            await audit_export(
                engine, exporter, request.period, request.fmt, str(path), written, at=now
            )
            partial.replace(path)
        except OSError as problem:
            raise ExportFailed(f"cannot write {path}: {problem.strerror or problem}") from None
        except SQLAlchemyError as problem:
            first = str(getattr(problem, "orig", None) or problem).strip().splitlines()
            raise ExportFailed(f"database: {first[0] if first else problem}") from None
        except ValueError as unreadable:  # a stored row edited beyond reading
            raise ExportFailed(f"{unreadable} (run `risk-tui audit verify`)") from None
    finally:
        partial.unlink(missing_ok=True)  # gone already once it became the file
        await engine.dispose()
    return written.counts


# --- reading and verifying -------------------------------------------------------------------


class ExportFormatError(ValueError):
    """The file is not a readable export (reported as a failed verification)."""


def read_export(text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) for each record of an export in either format."""
    if text.lstrip().startswith("{"):
        yield from _read_jsonl(text)
    else:
        yield from _read_csv(text)


def _read_jsonl(text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as bad:
            raise ExportFormatError(f"line {number}: not JSON ({bad})") from None
        if not isinstance(record, dict):
            raise ExportFormatError(f"line {number}: not a JSON object")
        yield number, record


def _read_csv(text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if reader.fieldnames is None or not {"record", "prev_hash", "hash", "data"} <= set(
        reader.fieldnames
    ):
        raise ExportFormatError("line 1: neither JSON lines nor the export's CSV columns")
    for row in reader:
        number = reader.line_num
        try:
            data = json.loads(row["data"] or "")
        except (TypeError, ValueError) as bad:
            raise ExportFormatError(f"line {number}: data is not JSON ({bad})") from None
        if not isinstance(data, dict):
            raise ExportFormatError(f"line {number}: data is not a JSON object")
        record: dict[str, Any] = {"record": row["record"], **data}
        if row["record"] in CHAIN_OF_RECORD:
            record["prev_hash"], record["hash"] = row["prev_hash"], row["hash"]
        yield number, record


@dataclass(frozen=True, slots=True)
class ExportVerifyResult:
    ok: bool
    message: str  # one line
    counts: dict[str, int] = field(default_factory=dict)
    line: int | None = None  # of the first record that failed


@dataclass(slots=True)
class _ChainSlice:
    last: tuple[int, str] | None = None  # (seq, hash) of the last record seen


def _fail(counts: Mapping[str, int], line: int | None, problem: str) -> ExportVerifyResult:
    where = f"line {line}: " if line is not None else ""
    return ExportVerifyResult(
        False, f"export does not verify: {where}{problem}", dict(counts), line
    )


def _head_of(header: Mapping[str, Any], chain: str) -> tuple[int, str] | None:
    heads = header.get("heads")
    if not isinstance(heads, dict) or chain not in heads:
        raise ExportFormatError(f"the header has no head for the {chain} chain")
    head = heads[chain]
    if head is None:
        return None
    if not isinstance(head, dict) or not isinstance(head.get("seq"), int):
        raise ExportFormatError(f"the header's {chain} head is malformed")
    return int(head["seq"]), str(head.get("hash"))


def verify_export(records: Iterable[tuple[int, Mapping[str, Any]]]) -> ExportVerifyResult:
    """Check an export as a slice of the chains (see the module docstring)."""
    counts = dict.fromkeys(COUNTED, 0)
    slices = {chain: _ChainSlice() for chain in CHAINS}
    header: Mapping[str, Any] | None = None
    chain_heads: dict[str, tuple[int, str] | None] = {}
    number: int | None = None
    try:
        for number, record in records:
            kind = record.get("record")
            if header is None:
                if kind != HEADER or record.get("format") != FORMAT_NAME:
                    return _fail(counts, number, "the first record is not a risk-tui export header")
                if record.get("format_version") != FORMAT_VERSION:
                    return _fail(
                        counts, number, f"format_version {record.get('format_version')!r} unknown"
                    )
                header = record
                chain_heads = {chain: _head_of(header, chain) for chain in CHAINS}
                continue
            if kind == CALL:
                counts[CALL] += 1
                continue
            if kind not in CHAIN_OF_RECORD:
                return _fail(counts, number, f"unexpected record type {kind!r}")
            problem = _check_chain_record(record, kind, slices, chain_heads)
            if problem is not None:
                return _fail(counts, number, problem)
            counts[kind] += 1
    except ExportFormatError as bad:
        return _fail(counts, None if str(bad).startswith("line") else number, str(bad))
    if header is None:
        return _fail(counts, None, "empty: no header")
    promised = header.get("counts")
    if not isinstance(promised, dict):
        return _fail(counts, None, "the header has no counts")
    for kind in COUNTED:
        if promised.get(kind) != counts[kind]:
            return _fail(
                counts,
                None,
                f"the header counts {promised.get(kind)!r} {kind} records, the file holds "
                f"{counts[kind]} (records removed or added)",
            )
    period = header.get("period") or {}
    return ExportVerifyResult(
        True,
        f"ok: export of {period.get('from')}..{period.get('to')}: {counts[CALL]} calls, "
        f"{counts[SNAPSHOT]} snapshots, {counts[AUDIT]} audit records verified "
        f"(chain heads at export: {_heads_text(chain_heads)})",
        counts,
    )


def _heads_text(chain_heads: Mapping[str, tuple[int, str] | None]) -> str:
    return ", ".join(
        f"{chain} {'none' if head is None else f'seq {head[0]} {head[1][:12]}…'}"
        for chain, head in chain_heads.items()
    )


def _check_chain_record(
    record: Mapping[str, Any],
    kind: str,
    slices: Mapping[str, _ChainSlice],
    chain_heads: Mapping[str, tuple[int, str] | None],
) -> str | None:
    """What is wrong with one snapshot/audit record, or None."""
    chain = CHAIN_OF_RECORD[kind]
    seq, prev_hash, stored_hash = record.get("seq"), record.get("prev_hash"), record.get("hash")
    name = f"{kind} {chain} seq {seq}"
    if record.get("chain") != chain:
        return f"{name}: chain {record.get('chain')!r} does not match the record type"
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        return f"{kind} record: seq {seq!r} is not a positive integer"
    if not isinstance(prev_hash, str) or not _HEX64.fullmatch(prev_hash):
        return f"{name}: prev_hash is not 64 lowercase hex digits"
    if not isinstance(stored_hash, str) or not _HEX64.fullmatch(stored_hash):
        return f"{name}: hash is not 64 lowercase hex digits"
    state = slices[chain]
    if state.last is not None:
        last_seq, last_hash = state.last
        if seq <= last_seq:
            return f"{name}: out of order after seq {last_seq} (record duplicated or moved)"
        if seq == last_seq + 1 and prev_hash != last_hash:
            return (
                f"{name}: prev_hash does not match the hash of seq {last_seq} "
                "(record inserted, removed or edited)"
            )
    if seq == 1 and prev_hash != GENESIS_HASH:
        return f"{name}: the first record of a chain must have the genesis prev_hash"
    try:
        recomputed = chain_hash(prev_hash, _data(record))
    except (UnicodeEncodeError, ValueError):  # e.g. a lone surrogate escape written in
        recomputed = None
    if recomputed != stored_hash:
        return f"{name}: hash mismatch (record edited)"
    head = chain_heads.get(chain)
    if head is None:
        return f"{name}: the header says the {chain} chain was empty at export time"
    if seq > head[0]:
        return f"{name}: past the chain head at export time (seq {head[0]})"
    if seq == head[0] and stored_hash != head[1]:
        return f"{name}: does not match the chain head at export time"
    state.last = (seq, stored_hash)
    return None


def verify_file(path: Path) -> ExportVerifyResult:
    """Verify an export file (either format). OSError/UnicodeError propagate."""
    with path.open(encoding="utf-8", newline="") as file:  # csv needs its own line ends
        text = file.read()
    try:
        return verify_export(read_export(text))
    except ExportFormatError as bad:
        return _fail({}, None, str(bad))
