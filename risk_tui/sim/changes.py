"""Change sets: one being built (`ChangeSet`, which orders and scenarios write) and one logged."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from risk_tui.sim.store import Key, SimBook, decimal_text, encode


class ChangeSet:
    """One change set being built: valid records go into the book as they are added.

    Malformed records (the `faults` scenario) are only logged: the simulated back
    office's own book stays true, the way a broker's would while its feed misbehaves.
    """

    def __init__(self, book: SimBook, now: datetime) -> None:
        self.book = book
        self.now = now
        self.ts = now.isoformat()
        self.valid: dict[str, dict[Key, bytes]] = {}
        self.malformed: dict[str, list[bytes]] = {}

    def put(self, name: str, record: Mapping[str, Any]) -> None:
        stored = self.book.put(name, record)
        if stored is None:
            self.add_malformed(name, record)
            return
        key, data = stored
        self._log(name, key, data)

    def resend(self, name: str, key: Key) -> bool:
        """Send the book's current record again (a correction after a malformed one)."""
        data = self.book.raw(name, key)
        if data is None:
            return False
        self._log(name, key, data)
        return True

    def move_cash(
        self,
        movement_id: str,
        account_id: str,
        currency: str,
        amount: Decimal,
        kind: Literal["deposit", "withdrawal"],
    ) -> None:
        """The client moves money in or out: the balance changes and the movement is
        published once (FEED.md: the balance already includes it)."""
        held = self.book.get("cash", (account_id, currency))
        balance = Decimal(held["balance"]) if held is not None else Decimal(0)
        balance += amount if kind == "deposit" else -amount
        self.put(
            "cash",
            {"account_id": account_id, "currency": currency, "balance": decimal_text(balance)},
        )
        self.put(
            "cash_movements",
            {
                "movement_id": movement_id,
                "account_id": account_id,
                "currency": currency,
                "amount": decimal_text(amount),
                "kind": kind,
                "ts": self.ts,
            },
        )

    def add_malformed(self, name: str, record: Any) -> None:
        self.malformed.setdefault(name, []).append(encode(record))

    def _log(self, name: str, key: Key, data: bytes) -> None:
        records = self.valid.setdefault(name, {})
        records.pop(key, None)  # the latest record for a key goes last
        records[key] = data

    def __len__(self) -> int:
        return sum(map(len, self.valid.values())) + sum(map(len, self.malformed.values()))


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One published change set, under its cursor."""

    sequence: int
    valid: dict[str, list[tuple[Key, bytes]]]
    malformed: dict[str, list[bytes]]
    size: int

    @classmethod
    def of(cls, sequence: int, changes: ChangeSet) -> LogEntry:
        valid = {name: list(records.items()) for name, records in changes.valid.items()}
        size = sum(len(d) for records in changes.valid.values() for d in records.values())
        size += sum(len(d) for records in changes.malformed.values() for d in records)
        return cls(sequence, valid, dict(changes.malformed), size)

    def __len__(self) -> int:
        """Records in the change set, malformed ones included (0: a heartbeat)."""
        return sum(map(len, self.valid.values())) + sum(map(len, self.malformed.values()))

    def lists(self) -> dict[str, list[bytes]]:
        lists = {name: [data for _, data in records] for name, records in self.valid.items()}
        for name, records in self.malformed.items():
            lists.setdefault(name, []).extend(records)
        return lists

    def decoded(self) -> dict[str, list[Any]]:
        """The change set as the wire shows it (without the envelope)."""
        return {name: [json.loads(d) for d in records] for name, records in self.lists().items()}
