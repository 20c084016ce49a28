"""`voxshift sunset validate` (issue 12 §4): nothing lost, nothing changed, nothing extra.

Four categories: ``settings`` (agent_configs rows -> v2 agent settings), ``objects`` (voice objects ->
``legacy/...`` in the v2 bucket), ``cache_keys`` (the non-metrics key families) and ``metrics``
(``voice_metrics:``/``voice_daily_stats:`` -> v2 history). Three streaming passes, each a page at a
time so memory does not grow with the number of items:

1. the legacy side, re-read now: an item with no journal outcome is missing; a migrated item whose
   sha256 now differs from the journaled one changed (the legacy moved on after its copy); an
   ``expired`` item whose key still exists is missing (it did not really run out);
2. the journal's migrated rows against the v2 side, re-read now: absent in v2 is missing, another
   sha256 is changed. Together with pass 1, legacy now == journal == v2 now;
3. the v2 side under the migration's prefixes: an item no migrated row names is extra.

Settings are compared as documents: the legacy row converted again now vs what v2 holds (the
journal's digest is of the legacy row, not of the v2 document).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from voxshift.config import Settings
from voxshift.core.legacy_layout import parse_voice_object_key
from voxshift.errors import NotFound, StoreUnavailable
from voxshift.legacy.data.settings_source import LegacySettingsRow
from voxshift.schemas.agent_settings import validate_agent_settings
from voxshift.services.sunset.migrate import MigrationRun, open_migration
from voxshift.services.sunset.open import open_sunset
from voxshift.services.sunset.settings_check import check_agent_config
from voxshift.services.sunset.validate_report import (
    ACTOR,
    KEY_PAGE,
    NO_OUTCOME,
    OBJECT_PAGE,
    SETTINGS_PAGE,
    Category,
    Progress,
    ValidationReport,
    key_category,
    noop,
    problem,
)
from voxshift.services.sunset.validate_v2 import check_extra, check_v2
from voxshift.stores.db.journal import JournalEntry
from voxshift.stores.objects import ObjectInfo


async def run_validation(run: MigrationRun, progress: Progress = noop) -> ValidationReport:
    """The three passes over an open migration context (nothing is written)."""
    report = ValidationReport(checked_at=datetime.now(UTC).isoformat(timespec="seconds"))
    await _settings(run, report, progress)
    await _legacy_objects(run, report, progress)
    await _legacy_keys(run, report, progress)
    await check_v2(run, report, progress)
    await check_extra(run, report, progress)
    return report


async def validate(settings: Settings, *, progress: Progress = noop, actor: str = ACTOR) -> ValidationReport:
    """Validate, then record the outcome in the sunset state, where the cleanup guard reads it."""
    # dry_run: the context must not create the v2 bucket; validation only reads.
    async with open_migration(settings, dry_run=True) as run:
        report = await run_validation(run, progress)
    async with open_sunset(settings) as (sunset, _legacy):
        await sunset.record_validation(report.clean, report.summary(), actor=actor)
    return report


# --- pass 1: the legacy side -----------------------------------------------------------------------


def _row_digest(row: LegacySettingsRow) -> str:
    # Exactly how the migration digests a row (migrate._one_row), so the two can be compared.
    raw = json.dumps(row.row, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
    return hashlib.sha256(raw).hexdigest()


def _settings_digest(document: Any) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


async def _settings(run: MigrationRun, report: ValidationReport, progress: Progress) -> None:
    """Settings rows, both sides. Agent ids seen are kept: one per agent, not per item."""
    cat = report.categories["settings"]
    seen: set[str] = set()
    page: list[LegacySettingsRow] = []

    async def flush() -> None:
        done = await run.journal.done("settings", [r.agent_id for r in page])
        for row in page:
            seen.add(row.agent_id)
            await _one_row(run, cat, row, done.get(row.agent_id))
        progress("settings", len(page), 0)
        page.clear()

    async for row in run.legacy.settings.rows():
        page.append(row)
        if len(page) >= SETTINGS_PAGE:
            await flush()
    if page:
        await flush()
    # Migrated rows whose legacy row is gone now: v2 must still hold the settings.
    async for entry in run.journal.entries():
        if entry.store == "settings" and entry.outcome == "migrated" and entry.key not in seen:
            cat.migrated += 1
            stored = await run.agent_settings.get(entry.key, fresh=True)
            if stored is None:
                cat.missing.append(problem(entry.key, "migrated, but absent in v2", entry.v2_key))
            else:
                cat.v2 += 1
                cat.note("legacy row gone since the migration")


async def _one_row(
    run: MigrationRun, cat: Category, row: LegacySettingsRow, entry: JournalEntry | None
) -> None:
    cat.legacy += 1
    if entry is None:
        cat.missing.append(problem(row.agent_id, NO_OUTCOME))
        return
    if entry.outcome != "migrated":
        cat.skip(row.agent_id, entry.reason)
        return
    cat.migrated += 1
    if _row_digest(row) != entry.sha256:
        cat.changed.append(problem(row.agent_id, "the legacy row changed since its migration", entry.v2_key))
    stored = await run.agent_settings.get(row.agent_id, fresh=True)
    if stored is None:
        cat.missing.append(problem(row.agent_id, "migrated, but absent in v2", entry.v2_key))
        return
    cat.v2 += 1
    document = check_agent_config(row.row.get("config_json")).document
    wanted = _settings_digest(validate_agent_settings(document).to_json()) if document is not None else None
    if wanted == _settings_digest(stored.settings.to_json()):
        return
    if stored.version > 1:
        # Admin changes go to v2 only once the legacy is read-only: a newer v2 version is v2's own.
        cat.note("edited in v2 after the migration")
        return
    cat.changed.append(
        problem(row.agent_id, "v2 settings differ from the legacy row converted now", entry.v2_key)
    )


async def _legacy_objects(run: MigrationRun, report: ValidationReport, progress: Progress) -> None:
    cat = report.categories["objects"]
    page: list[ObjectInfo] = []

    async def flush() -> None:
        done = await run.journal.done("s3", [i.key for i in page])
        checks = []
        for info in page:
            cat.legacy += 1
            entry = done.get(info.key)
            if entry is None:
                cat.missing.append(problem(info.key, NO_OUTCOME))
            elif entry.outcome == "migrated":
                checks.append(_legacy_object_digest(run, cat, entry))
            else:
                cat.skip(info.key, entry.reason)
        await asyncio.gather(*checks)
        progress("objects", len(page), sum(i.size for i in page))
        page.clear()

    try:
        async for info in run.legacy.bucket.storage.list("", page_size=500):
            if parse_voice_object_key(info.key) is None:
                cat.note("untouched (not a voice object)")  # another tenant's: never read
                continue
            page.append(info)
            if len(page) >= OBJECT_PAGE:
                await flush()
    except StoreUnavailable as exc:
        if exc.code != "bucket_missing":
            raise
        cat.note("legacy bucket does not exist")  # no objects on the legacy side (as the migration)
    if page:
        await flush()


async def _legacy_object_digest(run: MigrationRun, cat: Category, entry: JournalEntry) -> None:
    try:
        body, _ = await run.legacy.bucket.get(entry.key)
    except NotFound:
        return  # deleted since the listing: pass 2 checks its v2 copy against the journal
    if hashlib.sha256(body).hexdigest() != entry.sha256:
        cat.changed.append(problem(entry.key, "the legacy object changed since its migration", entry.v2_key))


async def _legacy_keys(run: MigrationRun, report: ValidationReport, progress: Progress) -> None:
    page: list[str] = []

    async def flush() -> None:
        done = await run.journal.done("redis", page)
        # Values only where they are compared: migrated keys, and expired ones (do they exist?).
        wanted = [k for k in page if k in done and done[k].outcome in ("migrated", "expired")]
        values = dict(zip(wanted, await run.reader.read(wanted), strict=True))
        size = 0
        for key in page:
            cat = report.categories[key_category(key)]
            cat.legacy += 1
            entry = done.get(key)
            item = values.get(key)
            size += item.size if item is not None else 0
            if entry is None:
                cat.missing.append(problem(key, NO_OUTCOME))
            elif entry.outcome == "expired":
                if item is not None:
                    cat.missing.append(problem(key, "journaled as expired, but the legacy key still exists"))
                else:
                    cat.note("expired")
            elif entry.outcome == "migrated":
                if item is not None and item.sha256 != entry.sha256:
                    cat.changed.append(
                        problem(key, "the legacy value changed since its migration", entry.v2_key)
                    )
            else:
                cat.skip(key, entry.reason)
        progress("keys", len(page), size)
        page.clear()

    async for key in run.legacy.keyspace.scan(count=500):
        page.append(key)
        if len(page) >= KEY_PAGE:
            await flush()
    if page:
        await flush()
