"""admin tokens: the admin API's bearer tokens, stored as sha256 hashes

Revision ID: 0003_admin_tokens
Revises: 0002_sunset_journal
Create Date: 2026-11-30

Written by hand to match ``voxshift.stores.db.models.AdminTokenRow``; the conformance suite checks
both agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_admin_tokens"
down_revision: str | None = "0002_sunset_journal"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "admin_tokens",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("active_name", sa.String(64), nullable=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        # Aware UTC on PostgreSQL; SQLite stores naive UTC text (models.UTCDateTime converts).
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('viewer', 'operator')", name=op.f("ck_admin_tokens_role_known")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_tokens")),
        sa.UniqueConstraint("active_name", name=op.f("uq_admin_tokens_active_name")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_admin_tokens_token_hash")),
    )
    op.create_index("ix_admin_tokens_name", "admin_tokens", ["name"])


def downgrade() -> None:
    op.drop_index("ix_admin_tokens_name", table_name="admin_tokens")
    op.drop_table("admin_tokens")
