"""Four-eyes requests to cancel an auto-liquidation plan (`approvals.kind` 'plan_cancel').

Cancelling a scheduled plan follows the rule for scheduling it: a plan worth more than
the four-eyes threshold, or that moved the deadline, is cancelled only once a second
trader or supervisor approves. The request is an `approvals` row like the others; only
the CHECK on `kind` widens. On SQLite the table is rebuilt (batch mode), keeping its
rows and indexes; on PostgreSQL the constraint is replaced in place.

Written by hand and frozen, like 0001: values are spelled here, not imported.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS_0003 = ("liquidation", "auto_liquidation", "deadline_move", "call_close")
KINDS_0005 = (*KINDS_0003, "plan_cancel")


def _kinds(values: Sequence[str]) -> str:
    return "kind IN ({})".format(", ".join(f"'{value}'" for value in values))


def _replace_kinds(values: Sequence[str]) -> None:
    with op.batch_alter_table("approvals") as batch:
        batch.drop_constraint(op.f("ck_approvals_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_approvals_kind"), _kinds(values))


def upgrade() -> None:
    _replace_kinds(KINDS_0005)


def downgrade() -> None:
    count = op.get_bind().execute(
        sa.text("SELECT count(*) FROM approvals WHERE kind = 'plan_cancel'")
    ).scalar_one()
    if count:
        raise RuntimeError(
            f"cannot downgrade below 0005: {count} plan-cancel request(s) are recorded "
            "(the audit log refers to them)"
        )
    _replace_kinds(KINDS_0003)
