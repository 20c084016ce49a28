"""sunset journal: one row per legacy item the data migration handled

Revision ID: 0002_sunset_journal
Revises: 0001_initial
Create Date: 2026-11-30

Written by hand to match ``voxshift.stores.db.models.SunsetJournalRow``; the conformance suite checks
both agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_sunset_journal"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "sunset_journal",
        sa.Column("store", sa.String(16), nullable=False),
        sa.Column("key", sa.String(1024), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("v2_key", sa.String(1024), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("bytes", sa.BigInteger(), nullable=True),
        sa.Column("detail", JSON, nullable=True),
        # Aware UTC on PostgreSQL; SQLite stores naive UTC text (models.UTCDateTime converts).
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "store IN ('redis', 's3', 'settings')", name=op.f("ck_sunset_journal_store_known")
        ),
        sa.CheckConstraint(
            "outcome IN ('migrated', 'skipped', 'untouched', 'expired')",
            name=op.f("ck_sunset_journal_outcome_known"),
        ),
        sa.PrimaryKeyConstraint("store", "key", name=op.f("pk_sunset_journal")),
    )


def downgrade() -> None:
    op.drop_table("sunset_journal")
