"""rollout transition: one history row per controller transition, enforced by the database

Revision ID: 0004_rollout_transition
Revises: 0003_admin_tokens
Create Date: 2026-11-30

An operator's command and the leader can both finish the same stored transition (the outbox);
each used to check for the row first and then insert, so both could insert. The transition's
number and time now identify its row. Rows written by hand (no ``seq``) are not constrained.
Written by hand to match ``voxshift.stores.db.models.RolloutHistoryRow``; the conformance suite
checks both agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_rollout_transition"
down_revision: str | None = "0003_admin_tokens"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("rollout_history") as batch:
        batch.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
    op.create_index("uq_rollout_history_transition", "rollout_history", ["at", "seq"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_rollout_history_transition", table_name="rollout_history")
    with op.batch_alter_table("rollout_history") as batch:
        batch.drop_column("seq")
