"""The validation's v2 side: every migrated item re-read from v2 now, and nothing extra there.

Pass 2 walks the journal's rows (keyset pages) and reads each migrated item's v2 copy: objects a few
bodies at a time, keys one pipeline per page. Pass 3 lists the v2 bucket under ``legacy/`` and scans
v2's ``legacy:tts_response_cache:`` and ``migration:legacy_history:`` keys, and names every item no
migrated journal row points at. Both hold one page at a time.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence

from sqlalchemy import select

from voxshift.core.legacy_layout import decode_canonical, value_digest
from voxshift.core.sunset import outcomes as oc
from voxshift.errors import NotFound, StoreUnavailable
from voxshift.services.sunset.migrate import MigrationRun
from voxshift.services.sunset.validate_report import (
    KEY_PAGE,
    OBJECT_PAGE,
    Category,
    Progress,
    ValidationReport,
    key_category,
    problem,
)
from voxshift.stores.db.journal import JournalEntry
from voxshift.stores.db.models import SunsetJournalRow
from voxshift.stores.state.base import Batch

_CHUNK = 200  # v2 keys per journal lookup


async def check_v2(run: MigrationRun, report: ValidationReport, progress: Progress) -> None:
    """Pass 2: each migrated object and key of the journal against its v2 copy."""
    objects: list[JournalEntry] = []
    keys: list[JournalEntry] = []
    async for entry in run.journal.entries():
        if entry.store == "settings":
            continue  # compared as documents with the legacy rows (validate._settings)
        cat = report.categories["objects" if entry.store == "s3" else key_category(entry.key)]
        if entry.outcome != "migrated":
            if entry.outcome == "expired":
                cat.note("expired")
            continue
        cat.migrated += 1
        batch = objects if entry.store == "s3" else keys
        batch.append(entry)
        if len(objects) >= OBJECT_PAGE:
            await asyncio.gather(*(_object(run, report.categories["objects"], e) for e in objects))
            progress("v2 objects", len(objects), sum(e.bytes or 0 for e in objects))
            objects.clear()
        if len(keys) >= KEY_PAGE:
            await _keys(run, report, keys)
            progress("v2 keys", len(keys), 0)
            keys.clear()
    await asyncio.gather(*(_object(run, report.categories["objects"], e) for e in objects))
    progress("v2 objects", len(objects), sum(e.bytes or 0 for e in objects))
    await _keys(run, report, keys)
    progress("v2 keys", len(keys), 0)


async def _object(run: MigrationRun, cat: Category, entry: JournalEntry) -> None:
    assert entry.v2_key is not None
    try:
        body, _ = await run.v2_objects.get(entry.v2_key)
    except (NotFound, StoreUnavailable) as exc:
        if isinstance(exc, StoreUnavailable) and exc.code != "bucket_missing":
            raise
        cat.missing.append(problem(entry.key, "migrated, but absent in v2", entry.v2_key))
        return
    if hashlib.sha256(body).hexdigest() != entry.sha256:
        cat.changed.append(
            problem(entry.key, "the v2 object's sha256 differs from the legacy's", entry.v2_key)
        )


def _v2_digest(entry: JournalEntry, raw: bytes) -> str | None:
    """The legacy-form digest of a v2 value: history keys hold the canonical form, cache keys the
    value itself (a string)."""
    if entry.v2_key is not None and entry.v2_key.startswith(oc.HISTORY_PREFIX):
        try:
            kind, value = decode_canonical(raw)
        except ValueError:
            return None
        return value_digest(kind, value)
    return value_digest("string", raw)


async def _keys(run: MigrationRun, report: ValidationReport, entries: Sequence[JournalEntry]) -> None:
    if not entries:
        return
    batch = Batch()
    for entry in entries:
        assert entry.v2_key is not None
        batch.get(entry.v2_key)
    values = await run.v2_state.execute(batch)  # one pipeline per page
    gone: list[JournalEntry] = []
    for entry, raw in zip(entries, values, strict=True):
        cat = report.categories[key_category(entry.key)]
        if raw is None:
            gone.append(entry)
        elif not isinstance(raw, bytes) or _v2_digest(entry, raw) != entry.sha256:
            cat.changed.append(
                problem(entry.key, "the v2 value's sha256 differs from the legacy's", entry.v2_key)
            )
    if not gone:
        return
    # A cache entry was copied with its remaining TTL: gone from both sides it expired, as it would
    # have in the legacy. Gone from v2 only (or a history key, which has no TTL) is a loss.
    legacy = await run.reader.read([e.key for e in gone])
    for entry, item in zip(gone, legacy, strict=True):
        cat = report.categories[key_category(entry.key)]
        history = entry.v2_key is not None and entry.v2_key.startswith(oc.HISTORY_PREFIX)
        if item is None and not history:
            cat.note("expired on both sides since the migration")
        else:
            cat.missing.append(problem(entry.key, "migrated, but absent in v2", entry.v2_key))


async def check_extra(run: MigrationRun, report: ValidationReport, progress: Progress) -> None:
    """Pass 3: v2 items under the migration's prefixes that no migrated journal row names."""
    objects = report.categories["objects"]
    page: list[str] = []
    try:
        async for info in run.v2_objects.list(oc.V2_OBJECT_PREFIX, page_size=1000):
            objects.v2 += 1
            page.append(info.key)
            if len(page) >= _CHUNK:
                await _extra_objects(run, objects, page)
                progress("v2 listing", len(page), 0)
                page.clear()
    except StoreUnavailable as exc:
        if exc.code != "bucket_missing":
            raise  # no v2 bucket yet (no migration ran): nothing extra in it
    await _extra_objects(run, objects, page)

    for prefix in (oc.TTS_RESPONSE_PREFIX, oc.HISTORY_PREFIX):
        keys: list[str] = []
        async for key in run.v2_state.scan(prefix):
            keys.append(key)
            if len(keys) >= _CHUNK:
                await _extra_keys(run, report, keys)
                keys.clear()
        await _extra_keys(run, report, keys)


async def _extra_objects(run: MigrationRun, cat: Category, v2_keys: list[str]) -> None:
    if not v2_keys:
        return
    t = SunsetJournalRow.__table__
    stmt = select(t.c.v2_key).where(t.c.store == "s3", t.c.outcome == "migrated", t.c.v2_key.in_(v2_keys))
    async with run.journal.db.begin() as conn:
        named = {row.v2_key for row in (await conn.execute(stmt)).all()}
    for key in v2_keys:
        if key not in named:
            cat.extra.append(problem(key, "in v2 under legacy/, but no migrated legacy object names it", key))


def _legacy_key(v2_key: str) -> str:
    """The one legacy key a v2 key can have come from (the v2 names are built from it, oc.*_key)."""
    if v2_key.startswith(oc.HISTORY_PREFIX):
        return v2_key[len(oc.HISTORY_PREFIX) :]
    return "tts_response_cache:" + v2_key[len(oc.TTS_RESPONSE_PREFIX) :]


async def _extra_keys(run: MigrationRun, report: ValidationReport, v2_keys: list[str]) -> None:
    if not v2_keys:
        return
    legacy = {key: _legacy_key(key) for key in v2_keys}
    done = await run.journal.done("redis", list(legacy.values()))
    for key, legacy_key in legacy.items():
        cat = report.categories[key_category(legacy_key)]
        cat.v2 += 1
        entry = done.get(legacy_key)
        if entry is None or entry.outcome != "migrated" or entry.v2_key != key:
            cat.extra.append(
                problem(key, "in v2 under the migration's prefix, but no migrated legacy key names it", key)
            )
