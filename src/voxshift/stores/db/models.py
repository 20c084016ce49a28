"""The settings database schema (SQLAlchemy 2 declarative), portable across SQLite and PostgreSQL.

This module describes the tables for the repositories; the DDL that actually creates them is the
Alembic revision in ``migrations/versions`` (written by hand, so a schema change is always a
reviewed migration, never a side effect of importing a model). Keep the two in step.

Portability choices: JSON is ``JSON`` (JSONB on PostgreSQL, text on SQLite); timestamps are
timezone-aware UTC in Python on both (see :class:`UTCDateTime`); enumerations are short strings with
named CHECK constraints rather than native ENUM types, which Alembic cannot alter cheaply.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Deterministic constraint names, so later migrations can drop/alter them by name on both backends.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

AGENT_ID_LENGTH = 128
NAME_LENGTH = 255
SYSTEMS = ("voice_v2", "legacy")

JSONType = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out. SQLite has no time zones: it stores naive UTC text (which
    also sorts correctly as text), and values read back are re-tagged as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware datetime (UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class AgentVoiceSettingsRow(Base):
    __tablename__ = "agent_voice_settings"

    agent_id: Mapped[str] = mapped_column(String(AGENT_ID_LENGTH), primary_key=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)  # optimistic concurrency
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(NAME_LENGTH))

    __table_args__ = (CheckConstraint("version >= 1", name="version_positive"),)


class FlagChangeRow(Base):
    """Audit trail: every feature-flag change, kill-switch flip and rollback, never updated."""

    __tablename__ = "flag_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    actor: Mapped[str] = mapped_column(String(NAME_LENGTH), nullable=False)
    key: Mapped[str] = mapped_column(String(NAME_LENGTH), nullable=False)
    old_value: Mapped[Any] = mapped_column(JSONType, nullable=True)
    new_value: Mapped[Any] = mapped_column(JSONType, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_flag_changes_changed_at", "changed_at"),
        Index("ix_flag_changes_key_changed_at", "key", "changed_at"),
    )


class FlagConfigRow(Base):
    """The current flag configuration, one JSON document per key (e.g. ``voice_v2``), versioned."""

    __tablename__ = "flag_config"

    key: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONType, nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(NAME_LENGTH))

    __table_args__ = (CheckConstraint("version >= 1", name="version_positive"),)


class RolloutHistoryRow(Base):
    __tablename__ = "rollout_history"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    from_phase: Mapped[str | None] = mapped_column(String(64))
    to_phase: Mapped[str] = mapped_column(String(64), nullable=False)
    percentage: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    actor: Mapped[str] = mapped_column(String(NAME_LENGTH), nullable=False)
    reason: Mapped[str | None] = mapped_column(Text)
    metrics: Mapped[Any] = mapped_column(JSONType, nullable=True)
    # The controller's transition number: with ``at`` it names one transition, so finishing the same
    # transition twice (an operator's command and the leader at once) cannot write two rows.
    seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    __table_args__ = (
        CheckConstraint("percentage >= 0 AND percentage <= 100", name="percentage_range"),
        Index("ix_rollout_history_at", "at"),
        Index("uq_rollout_history_transition", "at", "seq", unique=True),
    )


class UserFeedbackRow(Base):
    __tablename__ = "user_feedback"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    user_id: Mapped[str] = mapped_column(String(NAME_LENGTH), nullable=False)
    agent_id: Mapped[str | None] = mapped_column(String(AGENT_ID_LENGTH))
    operation: Mapped[str] = mapped_column(String(8), nullable=False)
    system: Mapped[str] = mapped_column(String(16), nullable=False)
    rating: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    comment: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint("rating >= 1 AND rating <= 5", name="rating_range"),
        CheckConstraint("operation IN ('stt', 'tts')", name="operation_known"),
        CheckConstraint("system IN ('voice_v2', 'legacy')", name="system_known"),
        Index("ix_user_feedback_at", "at"),
        Index("ix_user_feedback_user_id", "user_id"),
        # The success-criteria query: mean rating per system/operation over a time window.
        Index("ix_user_feedback_system_operation_at", "system", "operation", "at"),
    )


class SunsetJournalRow(Base):
    """The data migration's journal: one row per legacy item, written after the item's v2 copy
    (so a row means "done"; a missing row means "check again"), never updated."""

    __tablename__ = "sunset_journal"

    store: Mapped[str] = mapped_column(String(16), primary_key=True)  # redis | s3 | settings
    key: Mapped[str] = mapped_column(String(1024), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(16), nullable=False)
    reason: Mapped[str | None] = mapped_column(Text)
    v2_key: Mapped[str | None] = mapped_column(String(1024))
    sha256: Mapped[str | None] = mapped_column(String(64))
    bytes: Mapped[int | None] = mapped_column(BigInteger)
    detail: Mapped[Any] = mapped_column(JSONType, nullable=True)  # settings findings, cache staleness
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    __table_args__ = (
        CheckConstraint("store IN ('redis', 's3', 'settings')", name="store_known"),
        CheckConstraint("outcome IN ('migrated', 'skipped', 'untouched', 'expired')", name="outcome_known"),
    )


TOKEN_ROLES = ("viewer", "operator")


class AdminTokenRow(Base):
    """Admin API bearer tokens: only the sha256 of each secret is stored.

    ``active_name`` is the name while the token is live and NULL once revoked: a UNIQUE column
    (NULLs never collide, on SQLite and PostgreSQL alike) keeps one live token per name while a
    revoked name can be issued again, without a partial index that Alembic cannot compare.
    """

    __tablename__ = "admin_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    active_name: Mapped[str | None] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("role IN ('viewer', 'operator')", name="role_known"),
        Index("ix_admin_tokens_name", "name"),
    )
