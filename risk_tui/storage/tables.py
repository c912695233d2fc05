"""The schema as SQLAlchemy Core tables: the one description migrations are checked against.

Snapshots and the audit log are append-only hash chains (see `chain.py`); `chain_heads`
holds the head of each, updated in the same transaction as every append. Everything
that is a `Decimal` is `ExactDecimal`, every instant `UTCDateTime`, every JSON document
`CanonicalJSON` (see `types.py`).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

from risk_tui.storage.types import CanonicalJSON, ExactDecimal, UTCDateTime

# Named constraints, so a later migration (batch mode on SQLite) can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# 64-bit sequence numbers on PostgreSQL; on SQLite `INTEGER PRIMARY KEY` is the rowid.
SeqType = BigInteger().with_variant(Integer(), "sqlite")

HASH_LENGTH = 64  # sha256, hex

CHAIN_SNAPSHOTS = "snapshots"
CHAIN_AUDIT = "audit"
CHAINS = (CHAIN_SNAPSHOTS, CHAIN_AUDIT)

CALL_STATES = ("triggered", "notified", "force_call", "ended")
SNAPSHOT_SCENARIOS = ("trigger", "force_call", "notification", "daily", "end")
SEND_STATES = ("pending", "in_doubt", "acknowledged", "failed")
ORDER_STATUSES = ("working", "filled", "partially_filled", "cancelled", "rejected")
AUTO_LIQUIDATION_CONDITIONS = ("still_in_call", "below_fm")
AUTO_LIQUIDATION_STATES = ("scheduled", "executed", "cancelled")
MOVEMENT_KINDS = ("deposit", "withdrawal")

_OPEN = "state != 'ended'"


def _one_of(column: str, values: tuple[str, ...], name: str) -> CheckConstraint:
    allowed = ", ".join(f"'{value}'" for value in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=name)


calls = Table(
    "calls",
    metadata,
    Column("call_id", Text, primary_key=True),
    Column("account_id", Text, nullable=False),
    Column("client_name", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("market", Text, nullable=False),
    Column("currency", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("risk_level", Text, nullable=False),
    Column("triggered_at", UTCDateTime, nullable=False),
    Column("trigger_call_amount", ExactDecimal, nullable=False),
    Column("call_amount", ExactDecimal, nullable=False),
    Column("deadline", UTCDateTime, nullable=True),
    Column("deadline_error", Text, nullable=True),
    Column("deadline_reason", Text, nullable=True),
    Column("notified_at", UTCDateTime, nullable=True),
    Column("notified_call_amount", ExactDecimal, nullable=True),
    Column("force_call_at", UTCDateTime, nullable=True),
    Column("ended_at", UTCDateTime, nullable=True),
    Column("end_reason", Text, nullable=True),
    Column("end_note", Text, nullable=True),
    Column("exception", Boolean, nullable=False),
    Column("remark", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Bumped by every lifecycle write; a write over a newer version is refused (0002).
    Column("version", BigInteger, nullable=False, server_default="0"),
    Column("claimed_by", Text, nullable=True),  # "I'm on it": one operator at a time
    Column("claimed_at", UTCDateTime, nullable=True),
    _one_of("state", CALL_STATES, "state"),
    # At most one open call per account: the database, not just the engine, says so.
    Index(
        "uq_calls_open_account",
        "account_id",
        unique=True,
        sqlite_where=text(_OPEN),
        postgresql_where=text(_OPEN),
    ),
    Index(
        "ix_calls_open_triggered_at",
        "triggered_at",
        sqlite_where=text(_OPEN),
        postgresql_where=text(_OPEN),
    ),
    Index("ix_calls_ended_at", "ended_at"),
)

snapshots = Table(
    "snapshots",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=False),
    Column("call_id", Text, ForeignKey("calls.call_id"), nullable=False),
    Column("account_id", Text, nullable=False),
    Column("scenario", Text, nullable=False),
    Column("taken_at", UTCDateTime, nullable=False),
    Column("feed_as_of", UTCDateTime, nullable=True),
    Column("feed_cursor", Text, nullable=True),
    Column("payload", CanonicalJSON, nullable=False),
    Column("prev_hash", String(HASH_LENGTH), nullable=False),
    Column("hash", String(HASH_LENGTH), nullable=False),
    _one_of("scenario", SNAPSHOT_SCENARIOS, "scenario"),
    Index("ix_snapshots_call_id_seq", "call_id", "seq"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=False),
    Column("at", UTCDateTime, nullable=False),
    Column("operator", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("call_id", Text, nullable=True),  # no FK: evidence must not depend on other rows
    Column("account_id", Text, nullable=True),
    Column("details", CanonicalJSON, nullable=False),
    Column("prev_hash", String(HASH_LENGTH), nullable=False),
    Column("hash", String(HASH_LENGTH), nullable=False),
    Index("ix_audit_log_call_id_seq", "call_id", "seq"),
)

chain_heads = Table(
    "chain_heads",
    metadata,
    Column("name", Text, primary_key=True),
    Column("seq", SeqType, nullable=False),
    Column("hash", String(HASH_LENGTH), nullable=False),
)

remarks = Table(
    "remarks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_id", Text, ForeignKey("calls.call_id"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("operator", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("exception", Boolean, nullable=False),
    Index("ix_remarks_call_id_id", "call_id", "id"),
)

orders = Table(
    "orders",
    metadata,
    Column("client_order_id", Text, primary_key=True),  # the idempotency key
    Column("call_id", Text, ForeignKey("calls.call_id"), nullable=True),
    Column("account_id", Text, nullable=False),
    Column("symbol", Text, nullable=False),
    Column("side", Text, nullable=False),
    Column("quantity", ExactDecimal, nullable=False),
    Column("order_type", Text, nullable=False),
    Column("limit_price", ExactDecimal, nullable=True),
    Column("reason", Text, nullable=False),
    Column("operator", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("send_state", Text, nullable=False),
    Column("order_id", Text, nullable=True),  # the broker's id, once acknowledged
    Column("status", Text, nullable=True),
    Column("filled_quantity", ExactDecimal, nullable=False),
    Column("avg_price", ExactDecimal, nullable=True),
    Column("reject_reason", Text, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("account_state", CanonicalJSON, nullable=False),
    _one_of("send_state", SEND_STATES, "send_state"),
    CheckConstraint(
        "status IS NULL OR status IN ({})".format(", ".join(f"'{s}'" for s in ORDER_STATUSES)),
        name="status",
    ),
    Index("ix_orders_call_id", "call_id"),
    Index("ix_orders_created_at", "created_at"),
)

messages = Table(
    "messages",
    metadata,
    Column("message_id", Text, primary_key=True),  # the idempotency key
    Column("call_id", Text, ForeignKey("calls.call_id"), nullable=True),
    Column("account_id", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("subject", Text, nullable=True),
    Column("body", Text, nullable=False),
    Column("operator", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("send_state", Text, nullable=False),
    Column("status", Text, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    _one_of("send_state", SEND_STATES, "send_state"),
    Index("ix_messages_call_id", "call_id"),
)

auto_liquidations = Table(
    "auto_liquidations",
    metadata,
    Column("id", Text, primary_key=True),
    Column("call_id", Text, ForeignKey("calls.call_id"), nullable=False),
    Column("execute_at", UTCDateTime, nullable=False),
    Column("condition", Text, nullable=False),
    Column("plan", CanonicalJSON, nullable=False),
    Column("moved_deadline", UTCDateTime, nullable=True),
    Column("reason", Text, nullable=True),
    Column("operator", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("state", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    _one_of("condition", AUTO_LIQUIDATION_CONDITIONS, "condition"),
    _one_of("state", AUTO_LIQUIDATION_STATES, "state"),
    Index("ix_auto_liquidations_state_execute_at", "state", "execute_at"),
    Index("ix_auto_liquidations_call_id", "call_id"),
)

daily_jobs = Table(
    "daily_jobs",
    metadata,
    Column("job", Text, primary_key=True),
    Column("call_id", Text, ForeignKey("calls.call_id"), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("done_at", UTCDateTime, nullable=False),
)

feed_cache = Table(
    "feed_cache",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

ENGINE_ROLES = ("standby", "active", "stopped")

# Each engine process's heartbeat (`risk-tui engine`): terminals show whether one runs
# the desk's lifecycle. Instants are the database server's clock, never a host's.
engines = Table(
    "engines",
    metadata,
    Column("engine_id", Text, primary_key=True),
    Column("desk", Text, nullable=False),
    Column("host", Text, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("role", Text, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("beat_at", UTCDateTime, nullable=False),
    Column("polled_at", UTCDateTime, nullable=True),
    _one_of("role", ENGINE_ROLES, "role"),
    Index("ix_engines_desk_beat_at", "desk", "beat_at"),
)

# 0003's kinds; 0005 adds "plan_cancel" (cancelling a plan that needed approval).
APPROVAL_KINDS = ("liquidation", "auto_liquidation", "deadline_move", "call_close", "plan_cancel")
APPROVAL_STATES = ("pending", "approved", "executed", "failed", "rejected", "voided")

# Four-eyes requests (0003): the action's details document and its SHA-256 (the binding
# an approver signs off), and where the request stands. A decision is a conditional
# update (`state = 'pending' AND details_hash = …`), so of two approvers one wins.
approvals = Table(
    "approvals",
    metadata,
    Column("id", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("call_id", Text, ForeignKey("calls.call_id"), nullable=True),
    Column("account_id", Text, nullable=False),
    Column("details", CanonicalJSON, nullable=False),
    Column("details_hash", String(HASH_LENGTH), nullable=False),
    Column("requested_by", Text, nullable=False),
    Column("requested_at", UTCDateTime, nullable=False),
    Column("state", Text, nullable=False),
    Column("decided_by", Text, nullable=True),
    Column("decided_at", UTCDateTime, nullable=True),
    Column("note", Text, nullable=True),
    Column("replaces", Text, nullable=True),  # the request an edit replaced
    Column("updated_at", UTCDateTime, nullable=False),
    _one_of("kind", APPROVAL_KINDS, "kind"),
    _one_of("state", APPROVAL_STATES, "state"),
    Index("ix_approvals_state_requested_at", "state", "requested_at"),
    Index("ix_approvals_call_id", "call_id"),
)

# The desk's kill switch (0003): one row, seeded released. Its history is the audit log.
kill_switch = Table(
    "kill_switch",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("engaged", Boolean, nullable=False),
    Column("engaged_by", Text, nullable=True),
    Column("engaged_at", UTCDateTime, nullable=True),
    Column("reason", Text, nullable=True),
    Column("released_by", Text, nullable=True),
    Column("released_at", UTCDateTime, nullable=True),
    CheckConstraint("id = 1", name="one_row"),
)

# Every cash movement the feed sent (0004), once by `movement_id`: the ones an open call
# counts toward met by deposit name it (`call_id`), with the fx of the poll that brought
# them and their signed amount in the account's base currency; the others are kept so a
# repeat (a snapshot after a 410, a restart from an older cursor) is known as one.
cash_movements = Table(
    "cash_movements",
    metadata,
    Column("movement_id", Text, primary_key=True),
    Column("account_id", Text, nullable=False),
    Column("currency", Text, nullable=False),
    Column("amount", ExactDecimal, nullable=False),
    Column("kind", Text, nullable=False),
    Column("ts", UTCDateTime, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("feed_cursor", Text, nullable=True),
    Column("call_id", Text, ForeignKey("calls.call_id"), nullable=True),
    Column("base_currency", Text, nullable=True),
    Column("fx", ExactDecimal, nullable=True),
    Column("base_amount", ExactDecimal, nullable=True),
    _one_of("kind", MOVEMENT_KINDS, "kind"),
    Index("ix_cash_movements_call_id", "call_id"),
)
