"""The control plane's services, opened from the configuration: feature flags and their audit log,
per-agent voice settings, the migration dashboard, the regression check and user feedback.

Each ``open_*`` opens exactly the stores its service needs and closes them on exit. The CLI reaches
the stores only through here (and ``services.wiring.database`` for the schema), and the runtime
builds its flags with the same :func:`build_flags`, so a command and a server read and write the
flag config, the agent settings and the metrics the same way.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from voxshift.config import Settings
from voxshift.core.flags import FlagConfig
from voxshift.errors import StoreUnavailable
from voxshift.services.agents.service import AgentSettingsService
from voxshift.services.feedback.memory import Health, RequestMemory
from voxshift.services.feedback.service import FeedbackService
from voxshift.services.flags.service import FeatureFlags, env_is_explicit
from voxshift.services.flags.store import DB_KEY
from voxshift.services.metrics.dashboard import MigrationDashboard, rollout_source
from voxshift.services.metrics.recorder import MigrationMetrics
from voxshift.services.migration.regression import RegressionService
from voxshift.services.wiring.backends import open_backends
from voxshift.stores.db.engine import Database
from voxshift.stores.db.history import FeedbackRepository, FlagChange
from voxshift.stores.db.repositories import AgentSettingsRepository, FlagAuditRepository, FlagConfigRepository
from voxshift.stores.state import NamespacedStore, open_state_store
from voxshift.stores.state.base import StateStore

__all__ = [
    "FlagChange",
    "build_feedback",
    "build_flags",
    "flag_history",
    "open_agent_settings",
    "open_dashboard",
    "open_feedback",
    "open_flags",
    "open_regression",
]


def build_flags(settings: Settings, v2_state: StateStore | None, database: Database | None) -> FeatureFlags:
    """FeatureFlags over the v2 view of the state store and the audited database copy (either may
    be None: the flags then work with what is left; see FeatureFlags)."""
    return FeatureFlags(
        v2_state,
        FlagConfigRepository(database) if database is not None else None,
        FlagConfig.from_settings(settings),
        env_explicit=env_is_explicit(settings),
    )


def _reported_by_caller(logger_name: str) -> None:
    """The callers of these openers (the CLI) report store trouble and env disagreement themselves,
    once; without a handler the service's own log lines would also reach stderr through logging's
    last-resort handler. A process that configured logging still gets them: records propagate
    past a NullHandler."""
    service_log = logging.getLogger(logger_name)
    if not service_log.handlers:
        service_log.addHandler(logging.NullHandler())


@asynccontextmanager
async def open_flags(
    settings: Settings, *, on_database_down: Callable[[StoreUnavailable], None] | None = None
) -> AsyncIterator[FeatureFlags]:
    """FeatureFlags over the configured database and the v2 view of the configured state store.

    With ``on_database_down`` an unreachable database is reported there and the flags carry on
    with the state store alone: the kill switch must not depend on the audit database, and
    FeatureFlags then refuses anything that is not a rollback. Without it the error is raised.
    """
    _reported_by_caller("voxshift.services.flags.service")
    try:
        db: Database | None = await Database.open(settings.resolved_database_url)
    except StoreUnavailable as exc:
        if on_database_down is None:
            raise
        on_database_down(exc)
        db = None
    try:
        raw = open_state_store(settings.resolved_state_url)
        try:
            yield build_flags(settings, NamespacedStore(raw, settings.voice_v2_redis_namespace), db)
        finally:
            await raw.aclose()
    finally:
        if db is not None:
            await db.aclose()


async def flag_history(settings: Settings, limit: int) -> list[FlagChange]:
    """The audit log of flag changes, newest first (the settings database only)."""
    db = await Database.open(settings.resolved_database_url)
    try:
        return await FlagAuditRepository(db).list_recent(limit=limit, key=DB_KEY)
    finally:
        await db.aclose()


@asynccontextmanager
async def open_agent_settings(settings: Settings) -> AsyncIterator[AgentSettingsService]:
    """The agent settings service over the configured database and, as the cache the running
    servers read, the v2 view of the configured state store."""
    _reported_by_caller("voxshift.services.agents.service")
    db = await Database.open(settings.resolved_database_url)
    try:
        raw = open_state_store(settings.resolved_state_url)
        try:
            cache = NamespacedStore(raw, settings.voice_v2_redis_namespace)
            yield AgentSettingsService(
                AgentSettingsRepository(db), cache, ttl_s=settings.settings_cache_ttl_s
            )
        finally:
            await raw.aclose()
    finally:
        await db.aclose()


@asynccontextmanager
async def open_dashboard(settings: Settings) -> AsyncIterator[MigrationDashboard]:
    """The dashboard over the configured (raw) state store, where every process flushes its metrics.

    The rollout comes from the flag config stored there, read once and without writing anything;
    the database is not needed for it (with nothing stored, the environment's config applies).
    """
    store = open_state_store(settings.resolved_state_url)
    try:
        await store.ping()  # an unreachable store is one error, before anything else reports it
        flags = build_flags(settings, NamespacedStore(store, settings.voice_v2_redis_namespace), None)
        await flags.load(read_only=True)
        yield MigrationDashboard(
            MigrationMetrics.from_settings(store, settings, rollout_source=rollout_source(flags))
        )
    finally:
        await store.aclose()


@asynccontextmanager
async def open_regression(settings: Settings, *, rollback: bool = False) -> AsyncIterator[RegressionService]:
    """The regression check over the stored metrics; with ``rollback`` it gets the audited flag
    service too, so that it can act on a regression. Every backend is checked first (as at a
    server's start-up): a rollback must not half-happen on a store that is down."""
    backends = await open_backends(settings, check=True)
    flags: FeatureFlags | None = None
    try:
        if rollback:
            flags = build_flags(settings, backends.v2_state, backends.database)
            await flags.start(watch=False)
        yield RegressionService(MigrationMetrics.from_settings(backends.state, settings), flags)
    finally:
        if flags is not None:
            await flags.stop()
        await backends.aclose()


def build_feedback(
    settings: Settings, v2_state: StateStore, database: Database, health: Health | None = None
) -> FeedbackService:
    """The feedback service over the v2 view of the state store (where request ids are remembered)
    and the settings database (where ratings are filed); the runtime builds its own here too, with
    the state store's ``health`` so that its writer skips an outage at once."""
    memory = RequestMemory(v2_state, ttl_s=settings.request_memory_ttl_s, health=health)
    return FeedbackService(memory, FeedbackRepository(database))


@asynccontextmanager
async def open_feedback(settings: Settings) -> AsyncIterator[FeedbackService]:
    """The feedback service over the configured stores, as a running server's (no writer: a command
    only reads what the servers remembered)."""
    db = await Database.open(settings.resolved_database_url)
    try:
        raw = open_state_store(settings.resolved_state_url)
        try:
            yield build_feedback(settings, NamespacedStore(raw, settings.voice_v2_redis_namespace), db)
        finally:
            await raw.aclose()
    finally:
        await db.aclose()
