"""The sunset's infrastructure_cleanup work: delete the legacy's voice key families and the objects
its voice service wrote, and nothing else.

Keys: SCAN over the six families only (``core.legacy_layout``), deleted in batches; any other key on
that Redis is never read or touched. Objects: only keys in the voice layout; a bucket that holds
anything else keeps it, and the report names what stayed. ``dry_run`` counts what would go, with
bytes, and deletes nothing. The guards in front of it (a completed rollout, a clean validation, a
person's yes) are :mod:`voxshift.core.sunset.phases`'.
"""

from __future__ import annotations

from typing import Any

from voxshift.core.legacy_layout import KEY_PREFIXES, family_of
from voxshift.services.sunset.sources import LegacyData

BATCH = 500
SAMPLE = 20  # other objects named in the report


async def cleanup(legacy: LegacyData, *, dry_run: bool) -> dict[str, Any]:
    families: dict[str, int] = {}
    deleted_keys = 0
    batch: list[str] = []

    async def flush() -> None:
        nonlocal deleted_keys
        if batch and not dry_run:
            deleted_keys += await legacy.keyspace.delete(batch)
        batch.clear()

    async for key in legacy.keyspace.scan(KEY_PREFIXES):
        family = (family_of(key) or "?").rstrip(":")
        families[family] = families.get(family, 0) + 1
        batch.append(key)
        if len(batch) >= BATCH:
            await flush()
    await flush()

    objects = objects_bytes = 0
    async for info in legacy.bucket.voice_objects():
        objects += 1
        objects_bytes += info.size
        if not dry_run:
            await legacy.bucket.delete(info.key)
    others: list[str] = []
    other_count = 0
    async for info in legacy.bucket.other_objects():
        other_count += 1
        if len(others) < SAMPLE:
            others.append(info.key)
    return {
        "keys": sum(families.values()),
        "keys_deleted": deleted_keys,
        "key_families": dict(sorted(families.items())),
        "objects": objects,
        "objects_bytes": objects_bytes,
        "objects_deleted": 0 if dry_run else objects,
        "other_objects_kept": other_count,
        "other_objects_sample": others,
        "bucket": legacy.bucket.bucket,
    }
