"""Repositories over the settings database: plain records in, plain records out.

Per-agent settings live here; the append-only repositories (flag audit and configuration,
rollout history, feedback) are in ``history`` and re-exported, so callers import from one place.

Nothing here leaks SQLAlchemy objects: callers get frozen dataclasses, so services can depend on
small Protocols (see ``voxshift.services.agents.service``) and never on this module. Every method
is one transaction. Inputs are checked here with InvalidRequest naming the parameter; the database
constraints (CHECKs, lengths, keys) are the backstop for writers that bypass this code.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from voxshift.core.agent_settings import VersionConflict, validate_agent_id
from voxshift.errors import InvalidRequest, VoxshiftError
from voxshift.schemas.agent_settings import (
    AgentVoiceSettings,
    StoredAgentSettings,
    validate_agent_settings,
)
from voxshift.stores.db.engine import Database
from voxshift.stores.db.history import (
    Feedback,
    FeedbackAggregate,
    FeedbackRepository,
    FlagAuditRepository,
    FlagChange,
    FlagConfig,
    FlagConfigRepository,
    RolloutEvent,
    RolloutHistoryRepository,
    check_limit,
    check_optional_text,
)
from voxshift.stores.db.models import AgentVoiceSettingsRow, utcnow

__all__ = [
    "AgentSettingsRepository",
    "Feedback",
    "FeedbackAggregate",
    "FeedbackRepository",
    "FlagAuditRepository",
    "FlagChange",
    "FlagConfig",
    "FlagConfigRepository",
    "RolloutEvent",
    "RolloutHistoryRepository",
]
_WRITE_ATTEMPTS = 3  # an upsert racing another upsert retries; more than 3 collisions is a bug


# --- agent settings ------------------------------------------------------------------------------
class AgentSettingsRepository:
    """Per-agent voice settings with optimistic concurrency.

    ``expected_version``: None = write whatever is there (last writer wins), 0 = create only,
    n >= 1 = only if the stored version is still n. A lost race raises VersionConflict.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, agent_id: str) -> StoredAgentSettings | None:
        validate_agent_id(agent_id)
        async with self.db.begin() as conn:
            row = (await conn.execute(_select_agent(agent_id))).first()
        return None if row is None else _stored(row)

    async def list(self, *, after: str | None = None, limit: int = 100) -> list[StoredAgentSettings]:
        """By agent id; page with ``after`` = the last id of the previous page."""
        t = AgentVoiceSettingsRow
        stmt = select(t.__table__).order_by(t.agent_id).limit(check_limit(limit))
        if after is not None:
            stmt = stmt.where(AgentVoiceSettingsRow.agent_id > after)
        async with self.db.begin() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_stored(row) for row in rows]

    async def put(
        self,
        agent_id: str,
        settings: AgentVoiceSettings,
        *,
        expected_version: int | None = None,
        actor: str | None = None,
    ) -> StoredAgentSettings:
        validate_agent_id(agent_id)
        if expected_version is not None and (isinstance(expected_version, bool) or expected_version < 0):
            raise InvalidRequest(
                "expected_version must be 0 (create) or a version >= 1", param="expected_version"
            )
        actor = check_optional_text(actor, "actor")
        document = validate_agent_settings(settings).to_json()
        for _ in range(_WRITE_ATTEMPTS):
            now = utcnow()
            try:
                async with self.db.begin() as conn:
                    if expected_version != 0:
                        stmt = update(AgentVoiceSettingsRow).where(AgentVoiceSettingsRow.agent_id == agent_id)
                        if expected_version is not None:
                            stmt = stmt.where(AgentVoiceSettingsRow.version == expected_version)
                        result = await conn.execute(
                            stmt.values(
                                settings=document,
                                version=AgentVoiceSettingsRow.version + 1,
                                updated_at=now,
                                updated_by=actor,
                            )
                        )
                        if result.rowcount == 0 and expected_version is not None:
                            await self._conflict(conn, agent_id, expected_version)
                        if result.rowcount == 0:
                            await conn.execute(_insert_settings(agent_id, document, now, actor))
                    else:
                        await conn.execute(_insert_settings(agent_id, document, now, actor))
                    row = (await conn.execute(_select_agent(agent_id))).one()
                return _stored(row)
            except IntegrityError:
                # The row appeared between our UPDATE and INSERT (or create-only found it).
                if expected_version == 0:
                    current = await self.get(agent_id)
                    found = current.version if current else "?"
                    raise VersionConflict(
                        f"agent {agent_id!r} already has settings (version {found}); "
                        "pass its version to overwrite",
                        param="expected_version",
                    ) from None
        raise VoxshiftError(f"agent {agent_id!r}: could not write settings after {_WRITE_ATTEMPTS} attempts")

    async def delete(self, agent_id: str, *, expected_version: int | None = None) -> bool:
        """True when a row was deleted; VersionConflict when it exists at another version."""
        validate_agent_id(agent_id)
        async with self.db.begin() as conn:
            stmt = delete(AgentVoiceSettingsRow).where(AgentVoiceSettingsRow.agent_id == agent_id)
            if expected_version is not None:
                stmt = stmt.where(AgentVoiceSettingsRow.version == expected_version)
            result = await conn.execute(stmt)
            if result.rowcount == 0 and expected_version is not None:
                found = await _version_of(conn, agent_id)
                if found is not None:
                    raise _version_conflict(agent_id, expected_version, found)
        return bool(result.rowcount)

    async def _conflict(self, conn: AsyncConnection, agent_id: str, expected: int) -> None:
        found = await _version_of(conn, agent_id)
        if found is None:
            raise VersionConflict(
                f"agent {agent_id!r} has no settings (expected version {expected}); "
                "it was deleted, or pass version 0 to create it",
                param="expected_version",
            )
        raise _version_conflict(agent_id, expected, found)


def _version_conflict(agent_id: str, expected: int, found: int) -> VersionConflict:
    return VersionConflict(
        f"agent {agent_id!r} is at version {found}, not {expected}: someone else changed it; "
        "re-read and retry",
        param="expected_version",
    )


async def _version_of(conn: AsyncConnection, agent_id: str) -> int | None:
    t = AgentVoiceSettingsRow
    return await conn.scalar(select(t.version).where(t.agent_id == agent_id))


def _select_agent(agent_id: str) -> Select[Any]:
    return select(AgentVoiceSettingsRow.__table__).where(AgentVoiceSettingsRow.agent_id == agent_id)


def _insert_settings(agent_id: str, document: dict[str, Any], now: datetime, actor: str | None) -> Any:
    return insert(AgentVoiceSettingsRow).values(
        agent_id=agent_id, settings=document, version=1, created_at=now, updated_at=now, updated_by=actor
    )


def _stored(row: Row[Any]) -> StoredAgentSettings:
    try:
        settings = validate_agent_settings(row.settings)
    except InvalidRequest as exc:
        # Only possible if someone edited the table by hand: say where, do not blame the caller.
        raise VoxshiftError(f"stored settings of agent {row.agent_id!r} are invalid: {exc.message}") from None
    return StoredAgentSettings(
        agent_id=row.agent_id,
        settings=settings,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )
