"""Four-eyes approval requests and the desk's kill switch.

- `approvals`: one row per request for a second person's approval — its kind, call and
  account, the details document (canonical JSON) and its SHA-256, who asked and when,
  and where it stands (pending, approved, executed, failed, rejected, voided), who
  decided, when, and why. An edit voids a request and makes a new one (`replaces`).
- `kill_switch`: one row (id 1), seeded released: engaged or not, by whom, when, why,
  and who released it when. Its whole history is in the audit log.
- On PostgreSQL, triggers `pg_notify('risk_tui', 'approvals:0:<id>')` and
  `'kill_switch:0:1'` on every insert or update, like 0002's, so every terminal sees a new
  request, a decision or the kill switch at once.

Written by hand and frozen, like 0001: types are spelled here, not imported.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-14
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INSTANT = sa.Text().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")
JSON_TEXT = sa.Text()  # canonical JSON, byte-exact (hashed)
HASH = sa.String(64)

CHANNEL = "risk_tui"

# table → the key its notifications name
_NOTIFIED_TABLES = {
    "approvals": "id",
    "kill_switch": "id",
}


def _one_of(column: str, values: Sequence[str], name: str) -> sa.CheckConstraint:
    allowed = ", ".join(f"'{value}'" for value in values)
    return sa.CheckConstraint(f"{column} IN ({allowed})", name=op.f(name))


def _notify_row(table: str, key: str) -> str:
    return f"""
CREATE FUNCTION risk_tui_notify_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', '{table}:0:' || NEW.{key}::text);
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.create_table(
        "approvals",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("call_id", sa.Text(), nullable=True),
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("details", JSON_TEXT, nullable=False),
        sa.Column("details_hash", HASH, nullable=False),
        sa.Column("requested_by", sa.Text(), nullable=False),
        sa.Column("requested_at", INSTANT, nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("decided_by", sa.Text(), nullable=True),
        sa.Column("decided_at", INSTANT, nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("replaces", sa.Text(), nullable=True),
        sa.Column("updated_at", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_approvals"),
        sa.ForeignKeyConstraint(["call_id"], ["calls.call_id"], name="fk_approvals_call_id_calls"),
        _one_of(
            "kind",
            ("liquidation", "auto_liquidation", "deadline_move", "call_close"),
            "ck_approvals_kind",
        ),
        _one_of(
            "state",
            ("pending", "approved", "executed", "failed", "rejected", "voided"),
            "ck_approvals_state",
        ),
    )
    op.create_index("ix_approvals_state_requested_at", "approvals", ["state", "requested_at"])
    op.create_index("ix_approvals_call_id", "approvals", ["call_id"])

    kill_switch = op.create_table(
        "kill_switch",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("engaged", sa.Boolean(), nullable=False),
        sa.Column("engaged_by", sa.Text(), nullable=True),
        sa.Column("engaged_at", INSTANT, nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("released_by", sa.Text(), nullable=True),
        sa.Column("released_at", INSTANT, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_kill_switch"),
        sa.CheckConstraint("id = 1", name=op.f("ck_kill_switch_one_row")),
    )
    # The row exists from the start, so writers only ever lock and update it.
    op.bulk_insert(kill_switch, [{"id": 1, "engaged": False}])

    if op.get_bind().dialect.name != "postgresql":
        return
    for table, key in _NOTIFIED_TABLES.items():
        op.execute(_notify_row(table, key))
        op.execute(
            f"CREATE TRIGGER risk_tui_notify AFTER INSERT OR UPDATE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION risk_tui_notify_{table}()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in _NOTIFIED_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS risk_tui_notify ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS risk_tui_notify_{table}()")
    op.drop_table("kill_switch")
    op.drop_index("ix_approvals_call_id", table_name="approvals")
    op.drop_index("ix_approvals_state_requested_at", table_name="approvals")
    op.drop_table("approvals")
