"""The sunset's data migration (issue 12 §4): settings, audio objects, cache entries and metrics.

Order matters: settings rows, then objects, then keys, because a ``tts_response_cache`` entry is
carried over only when the object it names was migrated, which the journal then already says.

Every item ends as exactly one outcome (``core.sunset.outcomes``) in the journal
(``stores.db.journal``). The v2 copy is always written before its journal row, and a run skips only
items that have a row, so a crash or ``kill -9`` at any moment is resumed by running again: the
items of the interrupted batch are checked again and, being identical, written (or not) to the same
end state. ``run_data_migration`` is the one entry point (``voxshift sunset migrate`` now, the
``data_migration`` phase later).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from voxshift.config import Settings
from voxshift.core.agent_settings import VersionConflict, validate_agent_id
from voxshift.core.sunset.settings import locate_voice_settings
from voxshift.core.sunset.settings_cache import compare_settings_cache
from voxshift.errors import InvalidRequest, NotFound, StoreUnavailable
from voxshift.legacy.data.settings_source import LegacySettingsRow
from voxshift.schemas.agent_settings import validate_agent_settings
from voxshift.services.agents.service import AgentSettingsService
from voxshift.services.sunset.migrate_keys import ExportKeyReader, KeyReader, RedisKeyReader, migrate_keys
from voxshift.services.sunset.migrate_objects import migrate_objects
from voxshift.services.sunset.settings_check import check_agent_config
from voxshift.services.sunset.sources import LegacyData, open_legacy_data
from voxshift.stores.db.engine import Database
from voxshift.stores.db.journal import JournalEntry, SunsetJournal
from voxshift.stores.db.repositories import AgentSettingsRepository
from voxshift.stores.objects import ObjectStorage, open_from_settings
from voxshift.stores.state import NamespacedStore, open_state_store
from voxshift.stores.state.base import StateStore

Progress = Callable[[str, int, int], None]  # (store, items, bytes) handled since the last call
ACTOR = "sunset-migration"
SETTINGS_PAGE = 50
JOURNAL_BATCH = 2000  # rows per journal transaction: commits are the slow part of a page


def _noop(store: str, items: int, size: int) -> None:
    return None


@dataclass
class MigrationResult:
    dry_run: bool
    counts: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)  # store/outcome/items,bytes
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def add(self, entry: JournalEntry) -> None:
        slot = self.counts.setdefault(entry.store, {}).setdefault(entry.outcome, {"items": 0, "bytes": 0})
        slot["items"] += 1
        slot["bytes"] += entry.bytes or 0

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "counts": self.counts,
            "seconds": round(self.seconds, 3),
            "notes": self.notes,
        }


class RateLimit:
    """At most ``rate`` item reads per second on average (None: unlimited), spread over time."""

    def __init__(self, rate: float | None) -> None:
        if rate is not None and rate <= 0:
            raise InvalidRequest("--rate must be a positive number of items per second", param="rate")
        self.rate = rate
        self._next = 0.0

    def page(self, default: int) -> int:
        """A batch size that keeps reads spread out: at most about one second's worth of items."""
        return default if self.rate is None else max(1, min(default, int(self.rate)))

    async def acquire(self, items: int) -> None:
        """Wait until ``items`` reads fit the rate; the budget is paid before the reads, never after."""
        if self.rate is None or items <= 0:
            return
        now = time.monotonic()
        self._next = max(self._next, now) + items / self.rate
        await asyncio.sleep(self._next - now)


@dataclass
class MigrationRun:
    """One run's context, shared by the three parts."""

    legacy: LegacyData
    reader: KeyReader
    journal: SunsetJournal
    v2_objects: ObjectStorage
    v2_state: StateStore
    agent_settings: AgentSettingsService
    dry_run: bool = False
    rate: RateLimit = field(default_factory=lambda: RateLimit(None))
    progress: Progress = _noop
    result: MigrationResult = field(default_factory=lambda: MigrationResult(False))
    unrecorded: list[JournalEntry] = field(default_factory=list)

    async def limit(self, items: int) -> None:
        await self.rate.acquire(items)

    async def finish(self, store: str, entries: list[JournalEntry]) -> None:
        """Count a batch whose v2 writes are done; its journal rows go in with the next flush."""
        if not self.dry_run:
            self.unrecorded.extend(entries)
            if len(self.unrecorded) >= JOURNAL_BATCH:
                await self.flush()
        for entry in entries:
            self.result.add(entry)
        self.progress(store, len(entries), sum(e.bytes or 0 for e in entries))

    async def flush(self) -> None:
        """Record the finished items' rows (one transaction). Until then a kill only makes the next
        run check those items again; the phases flush before the next one reads the journal."""
        rows, self.unrecorded = self.unrecorded, []
        await self.journal.record(rows)

    async def objects_migrated(self, legacy_keys: list[str]) -> set[str]:
        """Those of the legacy object keys whose object was migrated (the journal says so)."""
        done = await self.journal.outcomes("s3", legacy_keys)
        out = {key for key, outcome in done.items() if outcome == "migrated"}
        if self.dry_run:
            # A dry run records nothing: an object would be migrated if the legacy bucket still has it.
            for key in set(legacy_keys) - set(done):
                if await self.legacy.bucket.storage.head(key) is not None:
                    out.add(key)
        return out


async def run_data_migration(run: MigrationRun) -> MigrationResult:
    started = time.monotonic()
    run.result = MigrationResult(run.dry_run)
    try:
        for phase in (migrate_settings, migrate_objects, migrate_keys):
            await phase(run)
            await run.flush()  # the keys read the objects' rows: every phase ends recorded
    except BaseException:
        # The items finished before the failure keep their rows, so a resumed run skips them; a
        # failing database must not hide the original error.
        with contextlib.suppress(Exception):
            await run.flush()
        raise
    run.result.seconds = time.monotonic() - started
    return run.result


# --- settings --------------------------------------------------------------------------------------


async def migrate_settings(run: MigrationRun) -> None:
    page: list[LegacySettingsRow] = []
    async for row in run.legacy.settings.rows():
        page.append(row)
        if len(page) >= run.rate.page(SETTINGS_PAGE):
            await _settings_page(run, page)
            page = []
    if page:
        await _settings_page(run, page)


async def _settings_page(run: MigrationRun, rows: list[LegacySettingsRow]) -> None:
    done = await run.journal.outcomes("settings", [r.agent_id for r in rows])
    todo = [r for r in rows if r.agent_id not in done]
    if not todo:
        return
    await run.limit(len(todo))
    cached = await run.reader.read([f"agent_voice_settings:{r.agent_id}" for r in todo])
    entries = [await _one_row(run, row, cache) for row, cache in zip(todo, cached, strict=True)]
    await run.finish("settings", entries)


async def _one_row(run: MigrationRun, row: LegacySettingsRow, cache: Any) -> JournalEntry:
    raw = json.dumps(row.row, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
    digest = hashlib.sha256(raw).hexdigest()
    config = row.row.get("config_json")
    conversion = check_agent_config(config)
    # The legacy cached settings as a JSON string; any other type there is not its cache entry.
    cached = cache.value if cache is not None and cache.kind == "string" else None
    staleness = compare_settings_cache(cached, locate_voice_settings(config).value)
    detail = {
        "verdict": conversion.verdict,
        "findings": [f.to_json() for f in conversion.findings],
        "cache": staleness.to_json(),
        "row_problems": list(row.problems),
    }

    def entry(outcome: str, reason: str, v2_key: str | None = None) -> JournalEntry:
        return JournalEntry("settings", row.agent_id, outcome, reason, v2_key, digest, len(raw), detail)

    if conversion.verdict == "absent" or conversion.document is None:
        if conversion.verdict == "absent":
            return entry("skipped", "no voice settings in the row: the legacy ran this agent without voice")
        invalid = conversion.of_kind("invalid")
        rule = "; ".join(f"{f.path}: {f.reason}" for f in invalid) or "invalid"
        return entry("skipped", f"schema-invalid, kept for a person: {rule}")
    try:
        validate_agent_id(row.agent_id)
    except InvalidRequest as exc:
        return entry("skipped", f"agent id cannot be a v2 agent id: {exc.message}")
    wanted = validate_agent_settings(conversion.document)
    v2_key = f"agent_voice_settings/{row.agent_id}"
    for _ in range(3):
        existing = await run.agent_settings.get(row.agent_id, fresh=True)
        if existing is not None:
            if existing.settings.to_json() == wanted.to_json():  # ours, from a run killed before its row
                return entry("migrated", f"converted ({conversion.verdict})", v2_key)
            return entry(
                "skipped",
                f"v2 already holds different settings for this agent (version {existing.version}): "
                "kept, not overwritten",
            )
        if run.dry_run:
            return entry("migrated", f"converted ({conversion.verdict})", v2_key)
        try:
            await run.agent_settings.put(row.agent_id, wanted, expected_version=0, actor=ACTOR)
        except VersionConflict:
            continue  # someone created it meanwhile: look again
        return entry("migrated", f"converted ({conversion.verdict})", v2_key)
    return entry("skipped", "v2 settings kept changing while being written")


# --- opening, the report, resolving -----------------------------------------------------------------


def open_key_reader(settings: Settings, legacy: LegacyData) -> KeyReader:
    url = settings.legacy_redis_url or settings.resolved_state_url
    if url.split("://", 1)[0].lower() in ("redis", "rediss", "unix"):
        return RedisKeyReader(url)
    return ExportKeyReader(legacy.keyspace)


@asynccontextmanager
async def open_migration(
    settings: Settings, *, dry_run: bool = False, rate: float | None = None, progress: Progress = _noop
) -> AsyncIterator[MigrationRun]:
    """Everything one run needs, closed on exit (the v2 bucket is created when missing)."""
    limiter = RateLimit(rate)
    db = await Database.open(settings.resolved_database_url)
    try:
        raw = open_state_store(settings.resolved_state_url)
        try:
            v2_state = NamespacedStore(raw, settings.voice_v2_redis_namespace)
            objects = open_from_settings(settings)
            try:
                if not dry_run:
                    await objects.ensure_bucket()
                async with open_legacy_data(settings) as legacy:
                    reader = open_key_reader(settings, legacy)
                    try:
                        agents = AgentSettingsService(
                            AgentSettingsRepository(db), v2_state, ttl_s=settings.settings_cache_ttl_s
                        )
                        yield MigrationRun(
                            legacy,
                            reader,
                            SunsetJournal(db),
                            objects,
                            v2_state,
                            agents,
                            dry_run,
                            limiter,
                            progress,
                        )
                    finally:
                        await reader.aclose()
            finally:
                await objects.aclose()
        finally:
            await raw.aclose()
    finally:
        await db.aclose()


async def migrate(
    settings: Settings, *, dry_run: bool = False, rate: float | None = None, progress: Progress = _noop
) -> MigrationResult:
    """The data migration from the settings: what ``voxshift sunset migrate`` runs."""
    async with open_migration(settings, dry_run=dry_run, rate=rate, progress=progress) as run:
        return await run_data_migration(run)


async def estimate(settings: Settings) -> tuple[int, int]:
    """(items, bytes) the migration will look at, for a progress bar's ETA: one SCAN and one listing."""
    items = size = 0
    async with open_legacy_data(settings) as legacy:
        async for _row in legacy.settings.rows():
            items += 1
        async for _ in legacy.keyspace.scan():
            items += 1
        try:
            async for info in legacy.bucket.storage.list("", page_size=1000):
                items += 1
                size += info.size
        except StoreUnavailable as exc:
            if exc.code != "bucket_missing":  # no bucket: no objects (the migration says so)
                raise
    return items, size


@asynccontextmanager
async def open_journal(settings: Settings) -> AsyncIterator[SunsetJournal]:
    db = await Database.open(settings.resolved_database_url)
    try:
        yield SunsetJournal(db)
    finally:
        await db.aclose()


async def report(journal: SunsetJournal) -> dict[str, Any]:
    """Every journaled item (``{"key", "store", "outcome", "reason", "v2_key"}`` + digest, bytes)
    and a summary per store and outcome."""
    items = [entry.to_json() async for entry in journal.entries()]
    return {"summary": await journal.summary(), "items": items}


async def resolve(journal: SunsetJournal, legacy_key: str) -> JournalEntry:
    """The journal row giving a legacy key's v2 key; ``NotFound`` when it has none."""
    for store in ("s3", "redis", "settings"):
        entry = await journal.get(store, legacy_key)
        if entry is not None and entry.v2_key is not None:
            return entry
    raise NotFound(f"no migrated legacy item {legacy_key!r}", param="key")


async def legacy_object_url(db: Database, objects: ObjectStorage, legacy_key: str, expires_s: int) -> str:
    """A signed URL of the v2 copy of a legacy voice object (the redirect of old chat links)."""
    entry = await SunsetJournal(db).get("s3", legacy_key)
    if entry is None or entry.outcome != "migrated" or entry.v2_key is None:
        raise NotFound(f"no migrated legacy object {legacy_key!r}", param="key")
    return await objects.signed_url(entry.v2_key, expires_s)
