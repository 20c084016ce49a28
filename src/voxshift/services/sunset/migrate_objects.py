"""The data migration's S3 part: every voice object copied to v2, everything else left untouched.

Streaming: the bucket is listed a page at a time and a few pages of objects are copied at once, so
memory depends on the pages and the largest object, never on the bucket. The copy is idempotent: the
v2 key follows from the legacy key and the bytes, so a re-run after a kill between the copy and its
journal row writes the same object again. The v2 object carries the legacy body's sha256 in its
metadata (validation compares it).
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import TYPE_CHECKING

from voxshift.audio.formats import CONTENT_TYPES, UPLOAD_CONTENT_TYPES
from voxshift.audio.sniff import sniff_container
from voxshift.core.legacy_layout import parse_voice_object_key
from voxshift.core.sunset import outcomes as oc
from voxshift.errors import NotFound, StoreUnavailable, VoxshiftError
from voxshift.services.sunset.pages import PagesInFlight
from voxshift.stores.db.journal import JournalEntry
from voxshift.stores.objects import ObjectInfo

if TYPE_CHECKING:
    from voxshift.services.sunset.migrate import MigrationRun

OBJECT_PAGE = 16  # objects per page, copied concurrently
PAGES_IN_FLIGHT = 4  # so at most 64 copies at once
PAGE_BYTES = 8 * 2**20  # a page also ends at 8 MiB listed: bodies in memory stay about 32 MiB
OCTET_STREAM = "application/octet-stream"


def sniff(body: bytes) -> tuple[str | None, str, str | None]:
    """(real extension or None, content type, a note when the bytes are not recognised audio)."""
    if not body:
        return None, OCTET_STREAM, "empty object (0 bytes): copied empty, no audio to identify"
    try:
        ext = sniff_container(body)
    except VoxshiftError:
        # An Ogg page whose codec v2 does not decode is still Ogg; anything else stays opaque.
        if body[:4] == b"OggS":
            return "ogg", UPLOAD_CONTENT_TYPES["ogg"], None
        return None, OCTET_STREAM, "bytes are not a recognised audio container: kept as octet-stream"
    return ext, CONTENT_TYPES.get(ext) or UPLOAD_CONTENT_TYPES.get(ext) or OCTET_STREAM, None


async def migrate_objects(run: MigrationRun) -> None:
    resuming = await run.journal.has_rows("s3")  # as for keys: a first run has nothing to skip
    try:
        async with PagesInFlight(PAGES_IN_FLIGHT) as pages:
            page: list[ObjectInfo] = []
            size = 0
            async for info in run.legacy.bucket.storage.list("", page_size=1000):
                page.append(info)
                size += info.size
                if len(page) >= run.rate.page(OBJECT_PAGE) or size >= PAGE_BYTES:
                    await pages.submit(_page(run, page, resuming, pages.commit))
                    page, size = [], 0
            if page:
                await pages.submit(_page(run, page, resuming, pages.commit))
    except StoreUnavailable as exc:
        if exc.code != "bucket_missing":
            raise
        # A legacy that never stored audio (the embedded one before its first voice message) has no
        # bucket: nothing to copy, which the result says rather than failing the whole migration.
        run.result.notes.append(f"legacy bucket {run.legacy.bucket.bucket!r} does not exist: no objects")


async def _page(run: MigrationRun, infos: list[ObjectInfo], resuming: bool, commit: asyncio.Lock) -> None:
    done = await run.journal.outcomes("s3", [i.key for i in infos]) if resuming else {}
    todo = [i for i in infos if i.key not in done]
    if not todo:
        return
    entries: list[JournalEntry] = []
    voice = []
    for info in todo:
        if parse_voice_object_key(info.key) is None:
            # Not written by the voice service: listed, never read.
            entries.append(
                JournalEntry("s3", info.key, "untouched", "not a legacy voice object", bytes=info.size)
            )
        else:
            voice.append(info)
    await run.limit(len(voice))
    entries += await asyncio.gather(*(_copy(run, info) for info in voice))
    async with commit:
        await run.finish("s3", entries)


async def _copy(run: MigrationRun, info: ObjectInfo) -> JournalEntry:
    parts = parse_voice_object_key(info.key)
    assert parts is not None
    try:
        body, full = await run.legacy.bucket.get(info.key)
    except NotFound:
        return JournalEntry("s3", info.key, "skipped", "deleted from the legacy bucket while being read")
    digest = hashlib.sha256(body).hexdigest()
    ext, content_type, note = sniff(body)
    v2_key = oc.v2_object_key(info.key, ext)
    metadata = oc.v2_object_metadata(info.key, parts, dict(full.metadata), digest)
    reason = note or f"copied as {content_type} ({oc.object_kind(dict(full.metadata))})"
    if not run.dry_run:
        # Written even when a killed run already wrote it: the same bytes under the same key, so
        # asking first (a HEAD per object) would cost more than it saves.
        await run.v2_objects.put(v2_key, body, content_type, metadata)
    return JournalEntry("s3", info.key, "migrated", reason, v2_key, digest, len(body))
