"""Open the backends a process runs on, from the three URLs, and check them once at start-up.

Embedded defaults (SQLite state, a local folder, SQLite settings DB) need no server. At start-up an
unreachable server or a bad URL is a configuration error (one line, exit code 2): better to refuse
to start than to run a replica that silently never caches. After start-up the same outage only
degrades caching and URL delivery (see services/dependencies.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text

from voxshift.config import Settings
from voxshift.core.masking import mask_url
from voxshift.errors import ConfigError, InvalidRequest, StoreUnavailable
from voxshift.schemas.agent_settings import AgentVoiceSettings
from voxshift.services.agents.service import AgentSettingsService
from voxshift.services.wiring.dependencies import Dependency, DependencyMonitor
from voxshift.stores.db.engine import Database, is_sqlite
from voxshift.stores.db.repositories import AgentSettingsRepository
from voxshift.stores.objects import ObjectStorage, open_from_settings
from voxshift.stores.state import open_state_store
from voxshift.stores.state.base import StateStore
from voxshift.stores.state.namespaced import NamespacedStore


@dataclass
class Backends:
    settings: Settings
    state: StateStore  # the raw store: legacy names live here too
    v2_state: StateStore  # the v2 view: every key under VOICE_V2_REDIS_NAMESPACE + ":"
    objects: ObjectStorage  # bound to VOICE_V2_MINIO_BUCKET
    state_dependency: Dependency
    objects_dependency: Dependency
    database: Database
    database_dependency: Dependency
    agent_settings: AgentSettingsService
    monitor: DependencyMonitor
    closers: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)

    async def agent_voice_settings(self, agent_id: str) -> AgentVoiceSettings | None:
        """The agent's stored settings for a request; None when it has none or the DB is down."""

        async def lookup() -> AgentVoiceSettings | None:
            try:
                stored = await self.agent_settings.get(agent_id)
            except InvalidRequest:  # an id no agent can have (too long, blank) has no settings
                return None
            return stored.settings if stored is not None else None

        return await self.database_dependency.call(lookup, None)

    async def aclose(self) -> None:
        await self.monitor.stop()
        for close in reversed(self.closers):
            # closing a dead connection must not hide the real shutdown reason
            with contextlib.suppress(Exception):
                await close()


async def open_backends(settings: Settings, *, check: bool = True) -> Backends:
    """Open the state store and the v2 bucket (created when missing, with its lifecycle).

    With ``check`` an unreachable server is a ConfigError; without it (inside a running app) the
    dependency starts out down and the monitor brings it up once its server answers.
    """
    state = open_state_store(settings.resolved_state_url)
    closers: list[Callable[[], Awaitable[Any]]] = [state.aclose]
    try:
        objects = open_from_settings(settings)
        closers.append(objects.aclose)
        database_url = settings.resolved_database_url
        # Embedded SQLite brings its own schema to head; PostgreSQL must be upgraded explicitly.
        # An embedded SQLite file has no server to be down: bring its schema to head every time.
        if check or is_sqlite(database_url):
            database = await Database.open(database_url)
        else:
            database = Database(database_url)
        closers.append(database.aclose)
        if check:
            await _startup_check("VOXSHIFT_STATE_URL", settings.resolved_state_url, state.ping)
            await _startup_check("VOXSHIFT_STORAGE_URL", settings.resolved_storage_url, objects.ensure_bucket)
    except BaseException:
        for close in reversed(closers):
            with contextlib.suppress(Exception):
                await close()
        raise
    bucket_ready = check

    async def objects_ready() -> None:
        # The bucket may not exist yet when the app started while S3 was down: create it on the
        # first successful probe, then a ping is enough.
        nonlocal bucket_ready
        if not bucket_ready:
            await objects.ensure_bucket()
            bucket_ready = True
        await objects.ping()

    async def database_ping() -> None:
        async with database.begin() as conn:
            await conn.execute(text("SELECT 1"))

    state_dep = Dependency("state_store", state.ping)
    objects_dep = Dependency("object_storage", objects_ready)
    database_dep = Dependency("database", database_ping)
    if not check:
        for dep in (state_dep, objects_dep, database_dep):
            await dep.probe()
    v2_state = NamespacedStore(state, settings.voice_v2_redis_namespace)
    return Backends(
        settings=settings,
        state=state,
        v2_state=v2_state,
        objects=objects,
        state_dependency=state_dep,
        objects_dependency=objects_dep,
        database=database,
        database_dependency=database_dep,
        agent_settings=AgentSettingsService(
            AgentSettingsRepository(database), v2_state, ttl_s=settings.settings_cache_ttl_s
        ),
        monitor=DependencyMonitor([state_dep, objects_dep, database_dep]),
        closers=closers,
    )


async def _startup_check(variable: str, url: str, probe: Callable[[], Awaitable[Any]]) -> None:
    try:
        await probe()
    except StoreUnavailable as exc:
        raise ConfigError(f"{variable}: cannot use {mask_url(url)} at start-up: {exc.message}") from None


async def preflight(settings: Settings) -> None:
    """What `voxshift serve` checks before binding: every backend reachable, every URL valid."""
    backends = await open_backends(settings, check=True)
    await backends.aclose()
