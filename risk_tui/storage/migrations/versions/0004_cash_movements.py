"""Cash movements: the deposits and withdrawals the feed sent, for calls met by deposit.

- `cash_movements`: one row per `movement_id` the feed sent (FEED.md: each is sent once,
  but a snapshot after a 410, or a restart from an older cursor, repeats it). The ones
  first received after the poll that opened an account's call count toward it
  (`call_id`), with the fx of the poll that brought them and their signed amount in the
  account's base currency; the others are kept so that a repeat is known as one.
- No notification trigger: terminals learn of a call met by deposit from the call's own
  (0002); the movements are read with the call's history.

Written by hand and frozen, like 0001: types are spelled here, not imported.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INSTANT = sa.Text().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")
# Exact decimal: NUMERIC without scale on PostgreSQL, TEXT on SQLite (never NUMERIC
# affinity, which would turn amounts into floats).
DECIMAL = sa.Text().with_variant(postgresql.NUMERIC(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "cash_movements",
        sa.Column("movement_id", sa.Text(), nullable=False),
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("amount", DECIMAL, nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("ts", INSTANT, nullable=False),
        sa.Column("received_at", INSTANT, nullable=False),
        sa.Column("feed_cursor", sa.Text(), nullable=True),
        sa.Column("call_id", sa.Text(), nullable=True),
        sa.Column("base_currency", sa.Text(), nullable=True),
        sa.Column("fx", DECIMAL, nullable=True),
        sa.Column("base_amount", DECIMAL, nullable=True),
        sa.PrimaryKeyConstraint("movement_id", name="pk_cash_movements"),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.call_id"], name="fk_cash_movements_call_id_calls"
        ),
        sa.CheckConstraint(
            "kind IN ('deposit', 'withdrawal')", name=op.f("ck_cash_movements_kind")
        ),
    )
    op.create_index("ix_cash_movements_call_id", "cash_movements", ["call_id"])


def downgrade() -> None:
    op.drop_index("ix_cash_movements_call_id", table_name="cash_movements")
    op.drop_table("cash_movements")
