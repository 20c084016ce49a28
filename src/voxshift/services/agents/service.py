"""Per-agent voice settings: the database is the truth, the state store a read-through cache.

Reads go ``settings:agent:{agent_id}`` in the state store first (the caller passes the v2
namespaced view, so the key lands at ``voice_v2:settings:agent:...``), then the database; the
entry lives ``settings_cache_ttl_s`` (seed 1.1: 3600 s). Agents without settings are cached too
(as "none"), because most agents have none and every voice request asks.

Writes are write-through rather than delete-only: a reader that fetched the old row just before a
write commits fills the cache with ``set_if_absent``, so it cannot overwrite the newer entry the
writer put there; the writer itself uses compare-and-set and never replaces a newer version.
Deletes remove the entry. Any StoreUnavailable from the cache degrades to the database: a Redis
outage costs latency, never a failed request.

The repository Protocol lives here, next to its only consumer, so this service depends on what it
uses and not on SQLAlchemy (``voxshift.stores.db.repositories.AgentSettingsRepository`` fits it).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from voxshift.core.agent_settings import validate_agent_id
from voxshift.errors import NotFound, StoreUnavailable
from voxshift.schemas.agent_settings import (
    AgentVoiceSettings,
    StoredAgentSettings,
    validate_agent_settings,
)
from voxshift.stores.state.base import StateStore

log = logging.getLogger(__name__)

CACHE_FORMAT = 1  # bump when the cached JSON changes shape; older entries then read as misses
_CAS_ATTEMPTS = 3


class AgentSettingsRepo(Protocol):
    async def get(self, agent_id: str) -> StoredAgentSettings | None: ...

    async def list(self, *, after: str | None = None, limit: int = 100) -> list[StoredAgentSettings]: ...

    async def put(
        self,
        agent_id: str,
        settings: AgentVoiceSettings,
        *,
        expected_version: int | None = None,
        actor: str | None = None,
    ) -> StoredAgentSettings: ...

    async def delete(self, agent_id: str, *, expected_version: int | None = None) -> bool: ...


def cache_key(agent_id: str) -> str:
    return f"settings:agent:{agent_id}"


class AgentSettingsService:
    def __init__(self, repo: AgentSettingsRepo, state_store: StateStore, ttl_s: float = 3600) -> None:
        self.repo = repo
        self.cache = state_store
        self.ttl_s = ttl_s
        self.cache_failures = 0  # how many cache operations failed (the CLI warns when > 0)
        self.last_cache_error: str | None = None
        self._degraded = False

    # --- reads -----------------------------------------------------------------------------------
    async def get(self, agent_id: str, *, fresh: bool = False) -> StoredAgentSettings | None:
        """The stored settings (None = the agent has none). ``fresh`` skips the cache (admin views,
        read-modify-write), and still refreshes it."""
        validate_agent_id(agent_id)
        key = cache_key(agent_id)
        if fresh:
            stored = await self.repo.get(agent_id)
            if stored is not None:
                await self._publish(stored)
            else:
                await self._forget(key)
            return stored
        cache_ok = True
        try:
            raw = await self.cache.get(key)
            self._recovered()
        except StoreUnavailable as exc:
            self._failed("read", exc)
            raw, cache_ok = None, False
        if raw is not None:
            usable, hit = _decode(raw, agent_id)
            if usable:
                return hit
        stored = await self.repo.get(agent_id)
        if cache_ok:
            try:
                if raw is None:
                    # set_if_absent: a concurrent writer's newer entry must win over this read.
                    await self.cache.set_if_absent(key, _encode(stored), self.ttl_s)
                else:  # an unreadable entry (older format, corrupted): replace it
                    await self.cache.set(key, _encode(stored), self.ttl_s)
            except StoreUnavailable as exc:
                self._failed("fill", exc)
        return stored

    async def require(self, agent_id: str, *, fresh: bool = False) -> StoredAgentSettings:
        stored = await self.get(agent_id, fresh=fresh)
        if stored is None:
            raise NotFound(f"agent {agent_id!r} has no voice settings", param="agent_id")
        return stored

    async def effective(self, agent_id: str) -> AgentVoiceSettings:
        """What applies to the agent: its stored settings, else the legacy defaults."""
        stored = await self.get(agent_id)
        return stored.settings if stored is not None else AgentVoiceSettings()

    async def list(self, *, after: str | None = None, limit: int = 100) -> list[StoredAgentSettings]:
        return await self.repo.list(after=after, limit=limit)  # admin listing: always fresh

    # --- writes ----------------------------------------------------------------------------------
    async def put(
        self,
        agent_id: str,
        settings: AgentVoiceSettings | Mapping[str, Any],
        *,
        expected_version: int | None = None,
        actor: str | None = None,
    ) -> StoredAgentSettings:
        validate_agent_id(agent_id)
        validated = validate_agent_settings(settings)
        stored = await self.repo.put(agent_id, validated, expected_version=expected_version, actor=actor)
        await self._publish(stored)
        return stored

    async def delete(self, agent_id: str, *, expected_version: int | None = None) -> bool:
        validate_agent_id(agent_id)
        deleted = await self.repo.delete(agent_id, expected_version=expected_version)
        await self._forget(cache_key(agent_id))
        return deleted

    async def _forget(self, key: str) -> None:
        try:
            await self.cache.delete(key)
        except StoreUnavailable as exc:
            self._failed("invalidate", exc)

    async def _publish(self, stored: StoredAgentSettings) -> None:
        key = cache_key(stored.agent_id)
        new = _encode(stored)
        try:
            for _ in range(_CAS_ATTEMPTS):
                current = await self.cache.get(key)
                if current is not None and _cached_version(current) > stored.version:
                    return  # a later write already published itself
                if await self.cache.compare_and_set(key, current, new, self.ttl_s):
                    return
            await self.cache.delete(key)  # heavy contention: let the next read fill it
        except StoreUnavailable as exc:
            self._failed("write-through", exc)

    # --- degradation bookkeeping -----------------------------------------------------------------
    def _failed(self, what: str, exc: StoreUnavailable) -> None:
        self.cache_failures += 1
        self.last_cache_error = exc.message
        if not self._degraded:
            self._degraded = True
            log.warning(
                "settings cache unavailable (%s: %s); using the database directly, entries may stay "
                "stale for up to %.0f s",
                what,
                exc.message,
                self.ttl_s,
            )

    def _recovered(self) -> None:
        if self._degraded:
            self._degraded = False
            log.info("settings cache available again")


# --- cache entry encoding -----------------------------------------------------------------------


def _encode(stored: StoredAgentSettings | None) -> bytes:
    if stored is None:
        return json.dumps({"f": CACHE_FORMAT, "found": False}).encode()
    entry = {
        "f": CACHE_FORMAT,
        "found": True,
        "agent_id": stored.agent_id,
        "version": stored.version,
        "settings": stored.settings.to_json(),
        "created_at": stored.created_at.isoformat(),
        "updated_at": stored.updated_at.isoformat(),
        "updated_by": stored.updated_by,
    }
    return json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode()


def _decode(raw: bytes, agent_id: str) -> tuple[bool, StoredAgentSettings | None]:
    """(usable, record): record None = cached "no settings"; not usable = read the database."""
    try:
        entry = json.loads(raw)
        if entry.get("f") != CACHE_FORMAT or (entry["found"] and entry["agent_id"] != agent_id):
            return False, None
        if not entry["found"]:
            return True, None
        return True, StoredAgentSettings(
            agent_id=agent_id,
            settings=AgentVoiceSettings.model_validate(entry["settings"]),
            version=int(entry["version"]),
            created_at=datetime.fromisoformat(entry["created_at"]),
            updated_at=datetime.fromisoformat(entry["updated_at"]),
            updated_by=entry["updated_by"],
        )
    except (ValueError, KeyError, TypeError, AttributeError):  # pydantic's ValidationError is a ValueError
        return False, None


def _cached_version(raw: bytes) -> int:
    try:
        entry = json.loads(raw)
        return int(entry["version"]) if entry.get("found") else -1
    except (ValueError, KeyError, TypeError, AttributeError):
        return -1
