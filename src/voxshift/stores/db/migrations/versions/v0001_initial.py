"""initial schema: agent voice settings, flag config and audit, rollout history, user feedback

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-26

Written by hand to match ``voxshift.stores.db.models``; the conformance suite checks both agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _timestamp(name: str) -> sa.Column[datetime]:
    # Aware UTC on PostgreSQL; SQLite stores naive UTC text (models.UTCDateTime converts).
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "agent_voice_settings",
        sa.Column("agent_id", sa.String(128), nullable=False),
        sa.Column("settings", JSON, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.Column("updated_by", sa.String(255), nullable=True),
        sa.CheckConstraint("version >= 1", name=op.f("ck_agent_voice_settings_version_positive")),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("pk_agent_voice_settings")),
    )

    op.create_table(
        "flag_changes",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        _timestamp("changed_at"),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("old_value", JSON, nullable=True),
        sa.Column("new_value", JSON, nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flag_changes")),
    )
    op.create_index("ix_flag_changes_changed_at", "flag_changes", ["changed_at"])
    op.create_index("ix_flag_changes_key_changed_at", "flag_changes", ["key", "changed_at"])

    op.create_table(
        "flag_config",
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("value", JSON, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _timestamp("updated_at"),
        sa.Column("updated_by", sa.String(255), nullable=True),
        sa.CheckConstraint("version >= 1", name=op.f("ck_flag_config_version_positive")),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_flag_config")),
    )

    op.create_table(
        "rollout_history",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        _timestamp("at"),
        sa.Column("from_phase", sa.String(64), nullable=True),
        sa.Column("to_phase", sa.String(64), nullable=False),
        sa.Column("percentage", sa.SmallInteger(), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("metrics", JSON, nullable=True),
        sa.CheckConstraint(
            "percentage >= 0 AND percentage <= 100", name=op.f("ck_rollout_history_percentage_range")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollout_history")),
    )
    op.create_index("ix_rollout_history_at", "rollout_history", ["at"])

    op.create_table(
        "user_feedback",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        _timestamp("at"),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("agent_id", sa.String(128), nullable=True),
        sa.Column("operation", sa.String(8), nullable=False),
        sa.Column("system", sa.String(16), nullable=False),
        sa.Column("rating", sa.SmallInteger(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.CheckConstraint("rating >= 1 AND rating <= 5", name=op.f("ck_user_feedback_rating_range")),
        sa.CheckConstraint("operation IN ('stt', 'tts')", name=op.f("ck_user_feedback_operation_known")),
        sa.CheckConstraint("system IN ('voice_v2', 'legacy')", name=op.f("ck_user_feedback_system_known")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_feedback")),
    )
    op.create_index("ix_user_feedback_at", "user_feedback", ["at"])
    op.create_index("ix_user_feedback_user_id", "user_feedback", ["user_id"])
    op.create_index("ix_user_feedback_system_operation_at", "user_feedback", ["system", "operation", "at"])


def downgrade() -> None:
    op.drop_table("user_feedback")
    op.drop_table("rollout_history")
    op.drop_table("flag_config")
    op.drop_table("flag_changes")
    op.drop_table("agent_voice_settings")
