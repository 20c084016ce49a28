"""Backups of the legacy's voice data that restore: create, verify, restore, list (issue 12 §3).

A backup holds every legacy voice key (type, payload, remaining TTL), every voice object (body,
content type, metadata) and every ``agent_configs`` row, in the v2 bucket (layout: ``backup_format``).

Streaming: keys are exported a page at a time and objects read a few at a time, so memory depends on
the page size and the largest object, never on how many items there are.

TTLs: a key is restored with the TTL it had left when it was backed up, not that minus the time since
(a restore a day later still gives a 1 h settings entry its remaining hour). Settings rows are kept in
the backup but never written back: the legacy database is only ever read.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from voxshift.config import Settings
from voxshift.errors import NotFound, VoxshiftError
from voxshift.services.sunset import backup_format as fmt
from voxshift.services.sunset.backup_verify import verify_backup
from voxshift.services.sunset.sources import LegacyData, open_legacy_data
from voxshift.stores.objects import ObjectInfo, ObjectStorage, open_from_settings

Progress = Callable[[str, int, int], None]  # (category, items done, bytes done) since the last call
KEY_PAGE = 500  # keys per export pipeline and per item chunk
OBJECT_PAGE = 8  # objects read concurrently; bounds memory to 8 bodies
SETTINGS_PAGE = 500


class BackupRefused(VoxshiftError):
    """The operation was understood but cannot go ahead (exit 1): it says why, and nothing changed."""

    status = 409
    code = "backup_refused"


def _noop(kind: str, items: int, size: int) -> None:
    return None


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class RestoreReport:
    id: str
    dry_run: bool
    counts: dict[str, int]
    bytes: dict[str, int]
    not_restored: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "dry_run": self.dry_run,
            "counts": self.counts,
            "bytes": self.bytes,
            "not_restored": self.not_restored,
        }


class BackupService:
    """One legacy's backups in one v2 bucket."""

    def __init__(
        self, legacy: LegacyData, store: ObjectStorage, *, clock: Callable[[], datetime] = _now
    ) -> None:
        self.legacy = legacy
        self.store = store
        self._clock = clock

    # --- create -----------------------------------------------------------------------------------
    async def create(self, progress: Progress = _noop) -> fmt.Manifest:
        started = self._clock()
        backup_id = fmt.new_backup_id(started)
        tally = fmt.Tally()
        chunks: list[fmt.Chunk] = []
        expired = await self._backup_keys(backup_id, tally, chunks, progress)
        await self._backup_objects(backup_id, tally, chunks, progress)
        await self._backup_settings(backup_id, tally, chunks, progress)
        manifest = fmt.Manifest(
            id=backup_id,
            created_at=started.isoformat(),
            completed_at=self._clock().isoformat(),
            counts=tally.counts,
            bytes=tally.bytes,
            expired_during_backup=expired,
            source=self.legacy.describe(),
            chunks=tuple(chunks),
        )
        body = json.dumps(manifest.to_json(), ensure_ascii=True, indent=1).encode("ascii")
        await self.store.put(fmt.manifest_path(backup_id), body, "application/json")  # LAST: complete
        await self.store.put(
            fmt.catalog_path(backup_id), fmt.canonical_json(manifest.summary()), "application/json"
        )
        return manifest

    async def _chunk(
        self, backup_id: str, kind: str, lines: list[dict[str, Any]], chunks: list[fmt.Chunk]
    ) -> None:
        data = fmt.encode_lines(lines)
        path = fmt.chunk_path(backup_id, kind, len(chunks))
        await self.store.put(path, data, "application/x-ndjson")
        chunks.append(fmt.Chunk(path, kind, len(lines), fmt.sha256_hex(data), len(data)))

    async def _backup_keys(
        self, backup_id: str, tally: fmt.Tally, chunks: list[fmt.Chunk], progress: Progress
    ) -> int:
        expired = 0
        page: list[str] = []

        async def flush() -> None:
            nonlocal expired
            exports = await self.legacy.keyspace.export(page)
            lines = []
            size = 0
            for item in exports:
                if item is None:  # expired between SCAN and the read: not a loss, just counted
                    expired += 1
                    continue
                lines.append(fmt.key_line(item))
                tally.add("keys", len(item.payload))
                size += len(item.payload)
            if lines:
                await self._chunk(backup_id, "keys", lines, chunks)
            progress("keys", len(lines), size)
            page.clear()

        async for key in self.legacy.keyspace.scan(count=KEY_PAGE):
            page.append(key)
            if len(page) >= KEY_PAGE:
                await flush()
        if page:
            await flush()
        return expired

    async def _backup_objects(
        self, backup_id: str, tally: fmt.Tally, chunks: list[fmt.Chunk], progress: Progress
    ) -> None:
        lines: list[dict[str, Any]] = []
        page: list[ObjectInfo] = []

        async def copy(info: ObjectInfo, number: int) -> dict[str, Any]:
            body, full = await self.legacy.bucket.get(info.key)
            path = fmt.body_path(backup_id, number)
            await self.store.put(path, body, "application/octet-stream")
            return {
                "kind": "object",
                "key": info.key,
                "body": path,
                "sha256": fmt.sha256_hex(body),
                "size": len(body),
                "content_type": full.content_type,
                "metadata": dict(full.metadata),
                "last_modified": full.last_modified.isoformat(),
                "etag": full.etag,
            }

        async def flush() -> None:
            start = tally.counts["objects"]
            done = await asyncio.gather(*(copy(info, start + i) for i, info in enumerate(page)))
            for line in done:
                tally.add("objects", line["size"])
            lines.extend(done)
            progress("objects", len(done), sum(line["size"] for line in done))
            page.clear()
            if len(lines) >= KEY_PAGE:
                await self._chunk(backup_id, "objects", lines, chunks)
                lines.clear()

        async for info in self.legacy.bucket.voice_objects():
            page.append(info)
            if len(page) >= OBJECT_PAGE:
                await flush()
        if page:
            await flush()
        if lines:
            await self._chunk(backup_id, "objects", lines, chunks)

    async def _backup_settings(
        self, backup_id: str, tally: fmt.Tally, chunks: list[fmt.Chunk], progress: Progress
    ) -> None:
        lines: list[dict[str, Any]] = []
        async for row in self.legacy.settings.rows():
            data = fmt.canonical_json(dict(row.row))
            lines.append(
                {
                    "kind": "settings",
                    "key": row.agent_id,
                    "sha256": fmt.sha256_hex(data),
                    "size": len(data),
                    "row": dict(row.row),
                }
            )
            tally.add("settings", len(data))
            progress("settings", 1, len(data))
            if len(lines) >= SETTINGS_PAGE:
                await self._chunk(backup_id, "settings", lines, chunks)
                lines.clear()
        if lines:
            await self._chunk(backup_id, "settings", lines, chunks)

    # --- read back --------------------------------------------------------------------------------
    async def manifest(self, backup_id: str) -> fmt.Manifest:
        if not fmt.is_backup_id(backup_id):
            raise NotFound(
                f"{backup_id!r} is not a backup id (expected e.g. 20260101T000000Z-a1b2c3)", param="id"
            )
        try:
            data, _ = await self.store.get(fmt.manifest_path(backup_id))
        except NotFound:
            raise BackupRefused(
                f"backup {backup_id} has no manifest: it does not exist or never completed"
            ) from None
        return fmt.Manifest.from_json(json.loads(data))

    async def chunk_lines(self, chunk: fmt.Chunk) -> list[dict[str, Any]]:
        """A chunk's item lines; ``BackupRefused`` when its bytes are not what the manifest recorded."""
        try:
            data, _ = await self.store.get(chunk.path)
        except NotFound:
            raise BackupRefused(f"backup item list {chunk.path} is missing") from None
        if fmt.sha256_hex(data) != chunk.sha256:
            raise BackupRefused(
                f"backup item list {chunk.path} is corrupt (sha256 differs from the manifest)"
            )
        return fmt.decode_lines(data)

    async def verify(self, backup_id: str, progress: Progress = _noop) -> dict[str, Any]:
        """Re-read every item; the outcome is also recorded for ``list``."""
        manifest = await self.manifest(backup_id)
        report = await verify_backup(self, manifest, progress)
        report["verified_at"] = self._clock().isoformat()
        await self.store.put(fmt.verified_path(backup_id), fmt.canonical_json(report), "application/json")
        return report

    async def list(self) -> list[dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        verified: dict[str, dict[str, Any]] = {}
        async for info in self.store.list(fmt.CATALOG):
            name = info.key[len(fmt.CATALOG) :]
            data, _ = await self.store.get(info.key)
            if name.endswith(".verified.json"):
                verified[name.removesuffix(".verified.json")] = json.loads(data)
            elif name.endswith(".json"):
                out[name.removesuffix(".json")] = json.loads(data)
        for backup_id, summary in out.items():
            check = verified.get(backup_id)
            summary["verified_at"] = check["verified_at"] if check else None
            summary["verified_ok"] = check["ok"] if check else None
        return [out[k] for k in sorted(out)]

    # --- restore ----------------------------------------------------------------------------------
    async def restore(
        self, backup_id: str, *, force: bool = False, dry_run: bool = False, progress: Progress = _noop
    ) -> RestoreReport:
        manifest = await self.manifest(backup_id)
        if not force:
            await self._refuse_unless_empty()
        report = RestoreReport(backup_id, dry_run, dict.fromkeys(fmt.KINDS, 0), dict.fromkeys(fmt.KINDS, 0))
        if manifest.counts.get("objects") and not dry_run:
            await self.legacy.bucket.storage.ensure_bucket()  # lifecycle=(): creates it, sets no rules
        if manifest.counts.get("settings"):
            report.not_restored["settings"] = "the legacy database is only read: rows stay in the backup"
        for chunk in manifest.chunks:
            if chunk.kind == "settings":
                continue
            lines = await self.chunk_lines(chunk)
            if chunk.kind == "keys":
                items = [fmt.key_from_line(line) for line in lines]
                if not dry_run:
                    await self.legacy.keyspace.restore(items, replace=force)
                size = sum(len(i.payload) for i in items)
                self._count(report, "keys", len(items), size, progress)
                continue
            for group in range(0, len(lines), OBJECT_PAGE):
                batch = lines[group : group + OBJECT_PAGE]
                if not dry_run:
                    await asyncio.gather(*(self._restore_object(line) for line in batch))
                self._count(report, "objects", len(batch), sum(int(line["size"]) for line in batch), progress)
        return report

    @staticmethod
    def _count(report: RestoreReport, kind: str, items: int, size: int, progress: Progress) -> None:
        report.counts[kind] += items
        report.bytes[kind] += size
        progress(kind, items, size)

    async def _restore_object(self, line: dict[str, Any]) -> None:
        body, _ = await self.store.get(str(line["body"]))
        if fmt.sha256_hex(body) != line["sha256"]:
            raise BackupRefused(f"backup body of {line['key']!r} is corrupt (sha256 differs); run verify")
        await self.legacy.bucket.put(str(line["key"]), body, str(line["content_type"]), line["metadata"])

    async def _refuse_unless_empty(self) -> None:
        async for key in self.legacy.keyspace.scan(count=10):
            raise BackupRefused(
                f"refusing to restore: the legacy keyspace ({self.legacy.keyspace.where}) already holds "
                f"voice key {key!r}; restore only into an empty one, or pass --force to overwrite"
            )
        async for info in self.legacy.bucket.voice_objects(page_size=10):
            raise BackupRefused(
                f"refusing to restore: bucket {self.legacy.bucket.bucket} already holds voice object "
                f"{info.key!r}; restore only into an empty one, or pass --force to overwrite"
            )


@asynccontextmanager
async def open_backups(settings: Settings) -> AsyncIterator[BackupService]:
    """The backup service for the configured legacy, writing into the v2 bucket."""
    store = open_from_settings(settings)
    try:
        await store.ensure_bucket()
        async with open_legacy_data(settings) as legacy:
            yield BackupService(legacy, store)
    finally:
        await store.aclose()
