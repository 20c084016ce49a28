"""Open the legacy's data stores from the settings: its keyspace, its bucket, its settings rows.

Unset legacy settings mean the embedded ``reference`` legacy: its keys sit un-namespaced in v2's own
state store and its objects in bucket ``voice-files`` of v2's object storage (what
``services.wiring.runtime.build_legacy`` opens), so the default install has a real legacy to sunset.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

from voxshift.config import Settings
from voxshift.core.legacy_layout import LEGACY_BUCKET
from voxshift.core.masking import mask_url
from voxshift.errors import ConfigError
from voxshift.legacy.data.bucket import LegacyBucket
from voxshift.legacy.data.keyspace import LegacyKeyspace
from voxshift.legacy.data.settings_source import (
    FileSettingsSource,
    LegacySettingsRow,
    LegacySettingsSource,
    PostgresSettingsSource,
)
from voxshift.stores.objects import open_from_settings, open_object_storage, resolve_signing_key
from voxshift.stores.state import open_state_store


class NoSettingsSource:
    """No legacy settings configured (the embedded reference legacy keeps none): no rows."""

    where = "none (VOXSHIFT_LEGACY_DATABASE_URL / VOXSHIFT_LEGACY_SETTINGS_FILE unset)"

    async def rows(self) -> AsyncIterator[LegacySettingsRow]:
        return
        yield  # pragma: no cover - makes this an async generator

    async def aclose(self) -> None:
        return None


@dataclass(frozen=True)
class LegacyData:
    keyspace: LegacyKeyspace
    bucket: LegacyBucket
    settings: LegacySettingsSource

    def describe(self) -> dict[str, str]:
        return {"keys": self.keyspace.where, "bucket": self.bucket.bucket, "settings": self.settings.where}


def open_keyspace(settings: Settings) -> LegacyKeyspace:
    url = settings.legacy_redis_url or settings.resolved_state_url
    if url.split("://", 1)[0].lower() in ("redis", "rediss", "unix"):
        from voxshift.legacy.data.redis_keyspace import RedisKeyspace

        try:
            return RedisKeyspace(url)
        except (ValueError, TypeError) as exc:  # redis-py's URL checks
            raise ConfigError(f"invalid configuration: legacy Redis URL {mask_url(url)!r}: {exc}") from None
    from voxshift.legacy.data.state_keyspace import StateStoreKeyspace

    return StateStoreKeyspace(open_state_store(url), where=f"state store {mask_url(url)}")


def open_bucket(settings: Settings) -> LegacyBucket:
    url = settings.legacy_s3_url
    if url is None:
        return LegacyBucket(open_from_settings(settings, LEGACY_BUCKET, lifecycle=()))
    bucket = (urlsplit(url).netloc if url.startswith("s3:") else "") or LEGACY_BUCKET
    storage = open_object_storage(
        url,
        bucket,
        access_key=settings.legacy_s3_access_key,
        secret_key=settings.legacy_s3_secret_key,
        signing_key=resolve_signing_key(settings) if url.startswith("file:") else None,
        lifecycle=(),  # the legacy's retention is not ours to set
    )
    return LegacyBucket(storage)


def open_settings_source(settings: Settings) -> LegacySettingsSource:
    if settings.legacy_database_url:
        return PostgresSettingsSource(settings.legacy_database_url)
    if settings.legacy_settings_file is not None:
        return FileSettingsSource(settings.legacy_settings_file)
    return NoSettingsSource()


@asynccontextmanager
async def open_legacy_data(settings: Settings) -> AsyncIterator[LegacyData]:
    """The legacy's three sources, closed on exit. Opening does no I/O."""
    keyspace = open_keyspace(settings)
    try:
        bucket = open_bucket(settings)
        try:
            source = open_settings_source(settings)
            try:
                yield LegacyData(keyspace, bucket, source)
            finally:
                await source.aclose()
        finally:
            await bucket.aclose()
    finally:
        await keyspace.aclose()
