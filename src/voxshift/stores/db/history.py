"""The append-only side of the settings database: flag audit trail and current flag configuration,
rollout history, user feedback; plus the input checks every repository shares.

Like ``repositories``: plain frozen records in and out, one transaction per method, inputs checked
with InvalidRequest naming the parameter, database constraints as the backstop.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import Insert

from voxshift.core.agent_settings import VersionConflict, validate_agent_id
from voxshift.core.rollout.window import RatingStats
from voxshift.core.vocabulary import OPERATIONS
from voxshift.errors import InvalidRequest
from voxshift.stores.db.engine import Database
from voxshift.stores.db.models import (
    NAME_LENGTH,
    SYSTEMS,
    FlagChangeRow,
    FlagConfigRow,
    RolloutHistoryRow,
    UserFeedbackRow,
    utcnow,
)

Operation = Literal["stt", "tts"]
System = Literal["voice_v2", "legacy"]
MAX_LIMIT = 10_000


@dataclass(frozen=True)
class FlagChange:
    id: int
    changed_at: datetime
    actor: str
    key: str
    old_value: Any
    new_value: Any
    reason: str | None


@dataclass(frozen=True)
class FlagConfig:
    key: str
    value: Any
    version: int
    updated_at: datetime
    updated_by: str | None


@dataclass(frozen=True)
class RolloutEvent:
    id: int
    at: datetime
    from_phase: str | None
    to_phase: str
    percentage: int
    actor: str
    reason: str | None
    metrics: Any
    seq: int | None = None  # the controller's transition number; None for rows written otherwise


@dataclass(frozen=True)
class Feedback:
    id: int
    at: datetime
    user_id: str
    agent_id: str | None
    operation: str
    system: str
    rating: int
    comment: str | None


@dataclass(frozen=True)
class FeedbackAggregate:
    system: str
    operation: str
    count: int
    mean_rating: float


# --- feature flags: audit trail and current configuration ----------------------------------------
class FlagAuditRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(
        self,
        key: str,
        *,
        actor: str,
        old_value: Any,
        new_value: Any,
        reason: str | None = None,
        at: datetime | None = None,
    ) -> FlagChange:
        async with self.db.begin() as conn:
            return await _record_change(conn, key, actor, old_value, new_value, reason, at)

    async def list_recent(
        self, *, limit: int = 50, key: str | None = None, since: datetime | None = None
    ) -> list[FlagChange]:
        """Newest first."""
        t = FlagChangeRow
        conditions: list[ColumnElement[bool]] = []
        if key is not None:
            conditions.append(t.key == key)
        if since is not None:
            conditions.append(t.changed_at >= check_aware(since, "since"))
        stmt = select(FlagChangeRow.__table__).where(and_(True, *conditions))
        stmt = stmt.order_by(t.changed_at.desc(), t.id.desc()).limit(check_limit(limit))
        async with self.db.begin() as conn:
            rows = (await conn.execute(stmt)).all()
        return [FlagChange(**row._asdict()) for row in rows]


async def _record_change(
    conn: AsyncConnection, key: str, actor: str, old: Any, new: Any, reason: str | None, at: datetime | None
) -> FlagChange:
    values: dict[str, Any] = {
        "changed_at": check_aware(at, "at") if at is not None else utcnow(),
        "actor": check_text(actor, "actor"),
        "key": check_text(key, "key"),
        "old_value": old,
        "new_value": new,
        "reason": reason,
    }
    new_id = await _insert_returning_id(conn, insert(FlagChangeRow).values(**values))
    return FlagChange(id=new_id, **values)


class FlagConfigRepository:
    """The current flag configuration (one JSON document per key), each change audited atomically."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, key: str) -> FlagConfig | None:
        async with self.db.begin() as conn:
            stmt = select(FlagConfigRow.__table__).where(FlagConfigRow.key == key)
            row = (await conn.execute(stmt)).first()
        return None if row is None else FlagConfig(**row._asdict())

    async def put(
        self,
        key: str,
        value: Any,
        *,
        expected_version: int,
        actor: str,
        reason: str | None = None,
    ) -> FlagConfig:
        """Compare-and-set (0 = create); the audit row is written in the same transaction."""
        check_text(key, "key")
        now = utcnow()
        try:
            async with self.db.begin() as conn:
                t = FlagConfigRow
                old = (await conn.execute(select(t.value, t.version).where(t.key == key))).first()
                found = 0 if old is None else old.version
                if found != expected_version:
                    raise VersionConflict(
                        f"flag config {key!r} is at version {found}, not {expected_version}; "
                        "re-read and retry",
                        param="expected_version",
                    )
                if old is None:
                    await conn.execute(
                        insert(t).values(key=key, value=value, version=1, updated_at=now, updated_by=actor)
                    )
                else:
                    result = await conn.execute(
                        update(t)
                        .where(t.key == key, t.version == expected_version)
                        .values(value=value, version=expected_version + 1, updated_at=now, updated_by=actor)
                    )
                    if result.rowcount != 1:
                        raise VersionConflict(f"flag config {key!r} changed concurrently; re-read and retry")
                await _record_change(conn, key, actor, None if old is None else old.value, value, reason, now)
        except IntegrityError:
            raise VersionConflict(
                f"flag config {key!r} was created concurrently; re-read and retry", param="expected_version"
            ) from None
        return FlagConfig(
            key=key, value=value, version=expected_version + 1, updated_at=now, updated_by=actor
        )


# --- rollout history -----------------------------------------------------------------------------
class RolloutHistoryRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def append(
        self,
        *,
        to_phase: str,
        percentage: int,
        actor: str,
        from_phase: str | None = None,
        reason: str | None = None,
        metrics: Any = None,
        at: datetime | None = None,
        seq: int | None = None,
    ) -> RolloutEvent:
        """Append a row; with ``seq`` (and ``at``) at most one row per controller transition: a second
        append of the same transition returns the row already there."""
        if isinstance(percentage, bool) or not isinstance(percentage, int) or not 0 <= percentage <= 100:
            raise InvalidRequest(
                f"percentage must be an integer from 0 to 100, got {percentage!r}", param="percentage"
            )
        values: dict[str, Any] = {
            "at": check_aware(at, "at") if at is not None else utcnow(),
            "from_phase": from_phase,
            "to_phase": check_text(to_phase, "to_phase", 64),
            "percentage": percentage,
            "actor": check_text(actor, "actor"),
            "reason": reason,
            "metrics": metrics,
            "seq": seq,
        }
        try:
            async with self.db.begin() as conn:
                new_id = await _insert_returning_id(conn, insert(RolloutHistoryRow).values(**values))
        except IntegrityError:
            existing = None if seq is None else await self._transition(values["at"], seq)
            if existing is None:
                raise
            return existing
        return RolloutEvent(id=new_id, **values)

    async def _transition(self, at: datetime, seq: int) -> RolloutEvent | None:
        t = RolloutHistoryRow.__table__
        async with self.db.begin() as conn:
            row = (await conn.execute(select(t).where(t.c.at == at, t.c.seq == seq))).first()
        return None if row is None else RolloutEvent(**row._asdict())

    async def list(self, *, limit: int = 100, newest_first: bool = True) -> list[RolloutEvent]:
        t = RolloutHistoryRow
        order = (t.at.desc(), t.id.desc()) if newest_first else (t.at.asc(), t.id.asc())
        stmt = select(RolloutHistoryRow.__table__).order_by(*order).limit(check_limit(limit))
        async with self.db.begin() as conn:
            rows = (await conn.execute(stmt)).all()
        return [RolloutEvent(**row._asdict()) for row in rows]

    async def latest(self) -> RolloutEvent | None:
        events = await self.list(limit=1)
        return events[0] if events else None


# --- user feedback -------------------------------------------------------------------------------
class FeedbackRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(
        self,
        *,
        user_id: str,
        operation: Operation,
        system: System,
        rating: int,
        agent_id: str | None = None,
        comment: str | None = None,
        at: datetime | None = None,
    ) -> Feedback:
        if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
            raise InvalidRequest(f"rating must be an integer from 1 to 5, got {rating!r}", param="rating")
        if operation not in OPERATIONS:
            raise InvalidRequest(f"operation must be stt or tts, got {operation!r}", param="operation")
        if system not in SYSTEMS:
            raise InvalidRequest(f"system must be voice_v2 or legacy, got {system!r}", param="system")
        values: dict[str, Any] = {
            "at": check_aware(at, "at") if at is not None else utcnow(),
            "user_id": check_text(user_id, "user_id"),
            "agent_id": None if agent_id is None else validate_agent_id(agent_id),
            "operation": operation,
            "system": system,
            "rating": rating,
            "comment": comment,
        }
        async with self.db.begin() as conn:
            new_id = await _insert_returning_id(conn, insert(UserFeedbackRow).values(**values))
        return Feedback(id=new_id, **values)

    async def list(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        user_id: str | None = None,
        agent_id: str | None = None,
        limit: int = 100,
    ) -> list[Feedback]:
        """Newest first; the window is [since, until)."""
        t = UserFeedbackRow
        conditions = _window(since, until)
        if user_id is not None:
            conditions.append(t.user_id == user_id)
        if agent_id is not None:
            conditions.append(t.agent_id == agent_id)
        stmt = select(UserFeedbackRow.__table__).where(and_(True, *conditions))
        stmt = stmt.order_by(t.at.desc(), t.id.desc()).limit(check_limit(limit))
        async with self.db.begin() as conn:
            rows = (await conn.execute(stmt)).all()
        return [Feedback(**row._asdict()) for row in rows]

    async def aggregate(
        self, *, since: datetime, until: datetime | None = None, agent_id: str | None = None
    ) -> builtins.list[FeedbackAggregate]:
        """Count and mean rating per (system, operation) in [since, until): the seed's
        ``user_feedback > 4.0/5`` success criterion, per system so v2 can be compared to legacy."""
        t = UserFeedbackRow
        conditions = _window(since, until)
        if agent_id is not None:
            conditions.append(t.agent_id == agent_id)
        stmt = (
            select(t.system, t.operation, func.count().label("n"), func.avg(t.rating).label("mean"))
            .where(and_(True, *conditions))
            .group_by(t.system, t.operation)
            .order_by(t.system, t.operation)
        )
        async with self.db.begin() as conn:
            rows = (await conn.execute(stmt)).all()
        # PostgreSQL's avg() of integers is NUMERIC (Decimal); SQLite's is a float.
        return [FeedbackAggregate(r.system, r.operation, int(r.n), float(r.mean)) for r in rows]

    async def rating_sums(
        self, *, since: datetime, until: datetime | None = None
    ) -> dict[tuple[str, str], RatingStats]:
        """Count, sum and sum of squares of the ratings per (system, operation) in [since, until):
        one aggregate query whose cost does not grow with the rows it reads out, and enough for a
        mean and its confidence interval (the rollout's feedback criteria)."""
        t = UserFeedbackRow
        stmt = (
            select(
                t.system,
                t.operation,
                func.count().label("n"),
                func.sum(t.rating).label("total"),
                func.sum(t.rating * t.rating).label("total_sq"),
            )
            .where(and_(True, *_window(since, until)))
            .group_by(t.system, t.operation)
        )
        async with self.db.begin() as conn:
            rows = (await conn.execute(stmt)).all()
        # int(): PostgreSQL's sum() of SMALLINT is BIGINT, of integers NUMERIC; SQLite's an int.
        return {(r.system, r.operation): RatingStats(int(r.n), int(r.total), int(r.total_sq)) for r in rows}


def _window(since: datetime | None, until: datetime | None) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    if since is not None:
        out.append(UserFeedbackRow.at >= check_aware(since, "since"))
    if until is not None:
        out.append(UserFeedbackRow.at < check_aware(until, "until"))
    return out


async def _insert_returning_id(conn: AsyncConnection, stmt: Insert) -> int:
    # RETURNING works on both backends (SQLite >= 3.35), unlike lastrowid on asyncpg.
    table = stmt.table
    new_id = await conn.scalar(stmt.returning(table.c.id))
    assert new_id is not None
    return int(new_id)


# --- small checks --------------------------------------------------------------------------------
def check_aware(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidRequest(f"{name} must be a timezone-aware datetime", param=name)
    return value


def check_text(value: object, name: str, max_len: int = NAME_LENGTH) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"{name} must be a non-empty string", param=name)
    if len(value) > max_len or "\x00" in value:
        raise InvalidRequest(f"{name} must be at most {max_len} characters without NUL", param=name)
    return value


def check_optional_text(value: str | None, name: str) -> str | None:
    return None if value is None else check_text(value, name)


def check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be from 1 to {MAX_LIMIT}, got {limit!r}", param="limit")
    return limit
