"""The simulator's book: FEED.md records kept once as encoded JSON, keyed, streamed on demand.

A desk of 200,000 accounts holds about 2,000,000 positions. As Python dicts that is
gigabytes and a snapshot would be built as one giant object; as one short `bytes` per
record it is a few hundred megabytes, a snapshot is a join of slices, and the records
are immutable so a snapshot can copy the list of references in one step and stream it
while the ticker keeps changing the book.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

RECORD_LISTS = (
    "instruments",
    "quotes",
    "fx",
    "accounts",
    "cash",
    "positions",
    "borrow",
    "cash_movements",  # the day's deposits and withdrawals, each once (`ChangeSet.move_cash`)
)

# One key per record list: the record that replaces another is the one with the same key.
KEY_FIELDS: dict[str, tuple[str, ...]] = {
    "instruments": ("symbol",),
    "quotes": ("symbol",),
    "fx": ("from", "to"),
    "accounts": ("account_id",),
    "cash": ("account_id", "currency"),
    "positions": ("account_id", "symbol"),
    "borrow": ("symbol",),
    "cash_movements": ("movement_id",),
}

Key = tuple[str, ...]

# FEED.md's optional lists: left out of a snapshot while empty.
OPTIONAL_LISTS = frozenset({"cash_movements"})

# Records per streamed piece: about half a megabyte of positions, so a chunk is cheap to
# join and the event loop gets control back often enough for the ticker.
CHUNK_RECORDS = 8192


def record_key(name: str, record: Any) -> Key | None:
    """The record's key, or None when it cannot be read (a malformed record)."""
    if not isinstance(record, Mapping):
        return None
    values = tuple(record.get(field) for field in KEY_FIELDS[name])
    if not all(isinstance(value, str) for value in values):
        return None
    return values  # type: ignore[return-value]  # all str, checked above


def encode(record: Any) -> bytes:
    """Compact UTF-8 JSON: what goes on the wire, byte for byte."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()


def removes_position(record: Mapping[str, Any]) -> bool:
    """FEED.md: quantity "0" removes a position (any spelling of zero does)."""
    quantity = record.get("quantity")
    if not isinstance(quantity, str):
        return False
    try:
        return Decimal(quantity) == 0
    except InvalidOperation:
        return False


def decimal_text(value: Decimal) -> str:
    """A decimal string without exponent, at least two places when it has a fraction."""
    text = format(value, "f")
    if "." in text:
        whole, fraction = text.split(".")
        fraction = fraction.rstrip("0").ljust(2, "0")
        text = f"{whole}.{fraction}"
    return text


def quantity_text(value: Decimal) -> str:
    """A quantity as the feed writes it: "300", "-40", "0.5" (no exponent, no padding)."""
    text = format(value.normalize(), "f") if value != 0 else "0"
    return text


class SimBook:
    """Every keyed record of the simulated back office, as encoded JSON."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[Key, bytes]] = {name: {} for name in RECORD_LISTS}

    @classmethod
    def from_records(cls, lists: Mapping[str, Iterable[Mapping[str, Any]]]) -> SimBook:
        book = cls()
        for name, records in lists.items():
            if name not in KEY_FIELDS:
                raise ValueError(f"unknown record list {name}")
            for record in records:
                book.put(name, record)
        return book

    def put(self, name: str, record: Mapping[str, Any]) -> tuple[Key, bytes] | None:
        """Store (or remove) one record; None when its key cannot be read."""
        key = record_key(name, record)
        if key is None:
            return None
        data = encode(record)
        self.put_encoded(name, key, data, removal=name == "positions" and removes_position(record))
        return key, data

    def put_encoded(self, name: str, key: Key, data: bytes, *, removal: bool = False) -> None:
        table = self.tables[name]
        if removal:
            table.pop(key, None)
        else:
            table[key] = data

    def get(self, name: str, key: Key) -> dict[str, Any] | None:
        data = self.tables[name].get(key)
        return None if data is None else json.loads(data)

    def raw(self, name: str, key: Key) -> bytes | None:
        return self.tables[name].get(key)

    def count(self, name: str) -> int:
        return len(self.tables[name])

    def records(self, name: str) -> Iterator[dict[str, Any]]:
        """Decoded records of one list (tests and small books: 2M dicts are not cheap)."""
        for data in list(self.tables[name].values()):
            yield json.loads(data)

    def as_lists(self) -> dict[str, list[dict[str, Any]]]:
        return {
            name: list(self.records(name))
            for name in RECORD_LISTS
            if self.tables[name] or name not in OPTIONAL_LISTS
        }

    def capture(self) -> dict[str, list[bytes]]:
        """A consistent copy for one snapshot: references only, taken without yielding."""
        return {
            name: list(table.values())
            for name, table in self.tables.items()
            if table or name not in OPTIONAL_LISTS
        }


@dataclass(frozen=True, slots=True)
class Envelope:
    cursor: str
    as_of: str

    def head(self) -> bytes:
        return f'{{"cursor":"{self.cursor}","as_of":"{self.as_of}"'.encode()


def render_lists(lists: Mapping[str, list[bytes]]) -> Iterator[bytes]:
    """`,"name":[r1,r2,…]` for each list present, in FEED.md order, in bounded pieces."""
    for name in RECORD_LISTS:
        records = lists.get(name)
        if records is None:
            continue
        yield f',"{name}":['.encode()
        for start in range(0, len(records), CHUNK_RECORDS):
            piece = b",".join(records[start : start + CHUNK_RECORDS])
            yield b"," + piece if start else piece
        yield b"]"


def render_body(envelope: Envelope, lists: Mapping[str, list[bytes]]) -> Iterator[bytes]:
    yield envelope.head()
    yield from render_lists(lists)
    yield b"}"


async def stream_body(
    envelope: Envelope, lists: Mapping[str, list[bytes]], *, target: int = 1 << 20
) -> AsyncIterator[bytes]:
    """The body in pieces of about `target` bytes, for a StreamingResponse."""
    pending: list[bytes] = []
    size = 0
    for piece in render_body(envelope, lists):
        pending.append(piece)
        size += len(piece)
        if size >= target:
            yield b"".join(pending)
            pending, size = [], 0
    if pending:
        yield b"".join(pending)
