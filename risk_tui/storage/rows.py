"""Rows as records: per stored record, a declaration of the columns that differ from its fields.

Why: the hand-written mappers spelled every field three or four times (the record, the
row it becomes, the record it comes back as), so a new column meant four edits and a
missed one went unnoticed. A declaration names only what is not "the column of the
field's own name, the value as is": a renamed column, an enum stored by its value, an
exact decimal, a field kept inside a JSON document. The rest follows from the record's
dataclass fields. Reading stays cheap for a crash poll's thousands of calls: the columns
are fetched in one C-level call, and only the declared fields are converted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Table

from risk_tui.core.actions import AutoCondition, PlanLine, SendState, lines_wire
from risk_tui.core.deposits import ReceivedMovement
from risk_tui.core.four_eyes import ApprovalKind, ApprovalRequest, ApprovalState, KillSwitch
from risk_tui.core.lifecycle import CallState, EndReason, MarginCall, SnapshotScenario
from risk_tui.core.margin import RiskLevel
from risk_tui.core.model import AccountKind, Market, MovementKind, Side
from risk_tui.core.records import (
    AutoLiquidationState,
    OrderStamp,
    StoredAudit,
    StoredAutoLiquidation,
    StoredMessage,
    StoredOrder,
    StoredRemark,
    StoredSnapshot,
)

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

R = TypeVar("R", bound="DataclassInstance")


@dataclass(frozen=True, slots=True)
class Column:
    """Where one field of a record is stored, and how its value converts (never None)."""

    name: str | None = None  # the column, when it is not named like the field
    load: Callable[[Any], Any] | None = None  # stored value -> field value
    dump: Callable[[Any], Any] | None = None  # field value -> stored value


_value = attrgetter("value")  # C-level: a crash poll writes thousands of calls


def by_value(kind: type[Enum], name: str | None = None) -> Column:
    """An enum field, stored as its value."""
    return Column(name, kind, _value)


DECIMAL = Column(load=Decimal)  # money and quantities: a Decimal whatever the driver gave
FLAG = Column(load=bool)  # SQLite's 0/1 as a bool


def named(name: str) -> Column:
    """A field stored, as is, in a column of another name."""
    return Column(name)


def _getter(get: Callable[..., Any], names: Sequence[str]) -> Callable[[Any], tuple[Any, ...]]:
    """`itemgetter`/`attrgetter` of `names`, always giving a tuple (even of one name)."""
    if len(names) == 1:
        one = get(names[0])
        return lambda source: (one(source),)
    many: Callable[[Any], tuple[Any, ...]] = get(*names)
    return many


class Rows(Generic[R]):
    """How records of one dataclass are read from rows and written as rows.

    `columns` declares the fields that are not stored as is in a column of their own name.
    `documents` names the columns built from the whole record (a JSON document holding
    several fields); the fields declared in such a column are read from it with their
    `load` and are not written on their own.
    """

    def __init__(
        self,
        record: type[R],
        columns: Mapping[str, Column] | None = None,
        *,
        documents: Mapping[str, Callable[[R], Any]] | None = None,
    ) -> None:
        declared = dict(columns or {})
        fields = [field.name for field in dataclasses.fields(record)]
        unknown = set(declared) - set(fields)
        if unknown:
            raise ValueError(f"{record.__name__} has no fields {sorted(unknown)}")
        specs = [declared.get(field, Column()) for field in fields]
        self._make: Callable[..., R] = record  # fields in declaration order: positional
        self._documents = dict(documents or {})
        #: The columns read, one per field in field order (a document column repeats).
        self.read_columns = tuple(
            spec.name or field for field, spec in zip(fields, specs, strict=True)
        )
        self._read = _getter(itemgetter, self.read_columns)
        self._loads = tuple((i, spec.load) for i, spec in enumerate(specs) if spec.load)
        written = [
            (field, column, spec.dump)
            for field, column, spec in zip(fields, self.read_columns, specs, strict=True)
            if column not in self._documents
        ]
        self._written = tuple(column for _, column, _ in written)
        self._attributes = _getter(attrgetter, [field for field, _, _ in written])
        self._dumps = tuple((i, dump) for i, (_, _, dump) in enumerate(written) if dump)

    def from_row(self, row: Mapping[Any, Any]) -> R:
        values = list(self._read(row))
        for index, load in self._loads:
            if values[index] is not None:
                values[index] = load(values[index])
        return self._make(*values)

    def to_row(self, record: R, **extra: Any) -> dict[str, Any]:
        """The record's columns, plus `extra` columns the record does not hold."""
        values = list(self._attributes(record))
        for index, dump in self._dumps:
            if values[index] is not None:
                values[index] = dump(values[index])
        row = dict(zip(self._written, values, strict=True))
        if self._documents:
            for column, build in self._documents.items():
                row[column] = build(record)
        if extra:
            row.update(extra)
        return row

    def columns_of(self, table: Table) -> list[ColumnElement[Any]]:
        """The columns of `table` a record is read from (to select no others)."""
        return [table.c[name] for name in dict.fromkeys(self.read_columns)]


# --- the declarations ----------------------------------------------------------------------

CALL_ROWS = Rows(
    MarginCall,
    {
        "kind": by_value(AccountKind),
        "market": by_value(Market),
        "state": by_value(CallState),
        "risk_level": by_value(RiskLevel),
        "trigger_call_amount": DECIMAL,
        "call_amount": DECIMAL,
        "end_reason": by_value(EndReason),
        "exception": FLAG,
    },
)

SNAPSHOT_ROWS = Rows(StoredSnapshot, {"scenario": by_value(SnapshotScenario)})
REMARK_ROWS = Rows(StoredRemark)
AUDIT_ROWS = Rows(StoredAudit)

ORDER_ROWS = Rows(
    StoredOrder,
    {
        "side": by_value(Side),
        "quantity": DECIMAL,
        "send_state": by_value(SendState),
        "filled_quantity": DECIMAL,
    },
)
# Where an order stands, without the account state (the orders tab reads it every second).
STAMP_ROWS = Rows(OrderStamp, {"send_state": by_value(SendState), "filled_quantity": DECIMAL})
MESSAGE_ROWS = Rows(StoredMessage, {"send_state": by_value(SendState)})


def _plan_lines(document: Mapping[str, Any]) -> tuple[PlanLine, ...]:
    return tuple(
        PlanLine(line["symbol"], Side(line["side"]), Decimal(line["quantity"]))
        for line in document["lines"]
    )


def _plan_document(plan: StoredAutoLiquidation) -> dict[str, Any]:
    return {"account_id": plan.account_id, "lines": lines_wire(plan.lines)}


# The table has no account or lines columns: they live in the `plan` document.
PLAN_ROWS = Rows(
    StoredAutoLiquidation,
    {
        "plan_id": named("id"),
        "account_id": Column("plan", load=itemgetter("account_id")),
        "lines": Column("plan", load=_plan_lines),
        "condition": by_value(AutoCondition),
        "deadline_reason": named("reason"),
        "state": by_value(AutoLiquidationState),
    },
    documents={"plan": _plan_document},
)

APPROVAL_ROWS = Rows(
    ApprovalRequest,
    {
        "approval_id": named("id"),
        "kind": by_value(ApprovalKind),
        "state": by_value(ApprovalState),
    },
)

KILL_SWITCH_ROWS = Rows(KillSwitch, {"engaged": FLAG})

MOVEMENT_ROWS = Rows(
    ReceivedMovement,
    {
        "amount": DECIMAL,
        "kind": by_value(MovementKind),
        "fx": DECIMAL,
        "base_amount": DECIMAL,
    },
)


__all__ = [
    "APPROVAL_ROWS",
    "AUDIT_ROWS",
    "CALL_ROWS",
    "DECIMAL",
    "FLAG",
    "KILL_SWITCH_ROWS",
    "MESSAGE_ROWS",
    "MOVEMENT_ROWS",
    "ORDER_ROWS",
    "PLAN_ROWS",
    "REMARK_ROWS",
    "SNAPSHOT_ROWS",
    "STAMP_ROWS",
    "Column",
    "Rows",
    "by_value",
    "named",
]
