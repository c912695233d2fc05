"""A desk shared by one engine and many terminals: call versions, claims, engine heartbeats,
and (PostgreSQL) change notifications.

- `calls.version`: bumped by every write of a call's lifecycle fields (state, deadline,
  notification, end). A writer states the version it read; a write over a newer version
  is refused, so a terminal's close and the engine's escalation never overwrite each
  other (`Store.commit`). Remarks, exception flags and claims do not bump it: no
  lifecycle write touches them.
- `calls.claimed_by` / `claimed_at`: "I'm on it", one operator at a time.
- `engines`: each engine process's heartbeat, so terminals can say whether an engine is
  running the lifecycle and since when.
- On PostgreSQL, triggers `pg_notify('risk_tui', '<table>:<key>')` for every change a
  terminal must see (a call's lifecycle, remark, flag or claim; orders; messages;
  auto-liquidation plans), delivered when the writing transaction commits. A call whose
  amount or level alone moved (the engine's re-pricing) notifies nobody: each terminal
  computes those figures itself from the feed.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INSTANT = sa.Text().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")

CHANNEL = "risk_tui"

# Only lifecycle, remark, flag and claim changes notify (see the module docstring).
_NOTIFY_CALL = f"""
CREATE FUNCTION risk_tui_notify_call() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
        AND NEW.version = OLD.version
        AND NEW.remark IS NOT DISTINCT FROM OLD.remark
        AND NEW.exception IS NOT DISTINCT FROM OLD.exception
        AND NEW.claimed_by IS NOT DISTINCT FROM OLD.claimed_by
    THEN
        RETURN NULL;
    END IF;
    PERFORM pg_notify('{CHANNEL}', 'calls:' || NEW.call_id);
    RETURN NULL;
END $$;
"""

# table → the key its notifications name
_NOTIFIED_TABLES = {
    "orders": "client_order_id",
    "messages": "message_id",
    "auto_liquidations": "id",
}


def _notify_row(table: str, key: str) -> str:
    return f"""
CREATE FUNCTION risk_tui_notify_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', '{table}:' || NEW.{key});
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.add_column(
        "calls", sa.Column("version", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.add_column("calls", sa.Column("claimed_by", sa.Text(), nullable=True))
    op.add_column("calls", sa.Column("claimed_at", INSTANT, nullable=True))
    op.create_table(
        "engines",
        sa.Column("engine_id", sa.Text(), nullable=False),
        sa.Column("desk", sa.Text(), nullable=False),
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("started_at", INSTANT, nullable=False),
        sa.Column("beat_at", INSTANT, nullable=False),
        sa.Column("polled_at", INSTANT, nullable=True),
        sa.PrimaryKeyConstraint("engine_id", name="pk_engines"),
        sa.CheckConstraint(
            "role IN ('standby', 'active', 'stopped')", name=op.f("ck_engines_role")
        ),
    )
    op.create_index("ix_engines_desk_beat_at", "engines", ["desk", "beat_at"])
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_NOTIFY_CALL)
    op.execute(
        "CREATE TRIGGER risk_tui_notify AFTER INSERT OR UPDATE ON calls "
        "FOR EACH ROW EXECUTE FUNCTION risk_tui_notify_call()"
    )
    for table, key in _NOTIFIED_TABLES.items():
        op.execute(_notify_row(table, key))
        op.execute(
            f"CREATE TRIGGER risk_tui_notify AFTER INSERT OR UPDATE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION risk_tui_notify_{table}()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("calls", *_NOTIFIED_TABLES):
            op.execute(f"DROP TRIGGER IF EXISTS risk_tui_notify ON {table}")
        op.execute("DROP FUNCTION IF EXISTS risk_tui_notify_call()")
        for table in _NOTIFIED_TABLES:
            op.execute(f"DROP FUNCTION IF EXISTS risk_tui_notify_{table}()")
    op.drop_index("ix_engines_desk_beat_at", table_name="engines")
    op.drop_table("engines")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("claimed_at")
        batch.drop_column("claimed_by")
        batch.drop_column("version")
