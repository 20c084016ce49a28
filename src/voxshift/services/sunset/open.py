"""The sunset service wired from the settings: the audited settings database, the flags, the
backups, the legacy's data and the rollout state (for the CLI, and later the admin API)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

from voxshift.config import Settings
from voxshift.legacy.data.keyspace import KeyExport
from voxshift.services.rollout.controller import RolloutController
from voxshift.services.sunset.backup import BackupService
from voxshift.services.sunset.phases import SunsetService
from voxshift.services.sunset.sources import LegacyData, open_legacy_data
from voxshift.services.wiring.backends import open_backends
from voxshift.services.wiring.control import build_flags
from voxshift.services.wiring.rollout import configured_plan
from voxshift.stores.db.history import FlagChange
from voxshift.stores.db.repositories import FlagAuditRepository, FlagConfigRepository
from voxshift.stores.objects import open_from_settings

HISTORY_LIMIT = 1000  # flag changes read back to date "at 100 % since"


@dataclass
class LegacyWriteTimes:
    """The legacy's data as the write-time probe reads it (see SunsetService.last_legacy_write)."""

    legacy: LegacyData

    async def object_times(self) -> AsyncIterator[datetime]:
        async for info in self.legacy.bucket.voice_objects():
            yield info.last_modified

    async def key_exports(self, prefixes: Sequence[str]) -> AsyncIterator[KeyExport]:
        batch: list[str] = []
        async for key in self.legacy.keyspace.scan(prefixes):
            batch.append(key)
            if len(batch) >= 500:
                for item in await self.legacy.keyspace.export(batch):
                    if item is not None:
                        yield item
                batch = []
        if batch:
            for item in await self.legacy.keyspace.export(batch):
                if item is not None:
                    yield item


@asynccontextmanager
async def open_sunset(settings: Settings) -> AsyncIterator[tuple[SunsetService, LegacyData]]:
    """Every store checked first: a phase must not half-happen on a store that is down."""
    backends = await open_backends(settings, check=True)
    store = open_from_settings(settings)
    try:
        if backends.database is None:
            from voxshift.errors import ConfigError

            raise ConfigError("the sunset needs the settings database (its state and audit live there)")
        database = backends.database
        flags = build_flags(settings, backends.v2_state, database)
        await flags.start(watch=False)
        audit = FlagAuditRepository(database)
        async with open_legacy_data(settings) as legacy:
            backups = BackupService(legacy, store)
            controller = (
                RolloutController(backends.v2_state, flags, default_plan=configured_plan(settings))
                if backends.v2_state is not None
                else None
            )

            async def history() -> Sequence[FlagChange]:
                return await audit.list_recent(limit=HISTORY_LIMIT, key="voice_v2")

            async def rollout_state() -> str | None:
                if controller is None:
                    return None
                state, _ = await controller.read()
                return state.state

            service = SunsetService(
                FlagConfigRepository(database),
                flags,
                flag_history=history,
                backups=backups.list,
                legacy=LegacyWriteTimes(legacy),
                rollout_state=rollout_state,
            )
            try:
                yield service, legacy
            finally:
                await flags.stop()
    finally:
        await store.aclose()
        await backends.aclose()
