"""Verify a backup: every chunk and every item re-read and checked against its sha256.

Problems are collected, not raised, so one run names every missing or corrupt item; ``ok`` is True
only when there are none and the counts add up to the manifest's.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any, Protocol

from voxshift.core.legacy_layout import decode_canonical, value_digest
from voxshift.errors import NotFound, VoxshiftError
from voxshift.legacy.data.keyspace import CANONICAL
from voxshift.services.sunset import backup_format as fmt
from voxshift.stores.objects import ObjectStorage

MAX_LISTED = 100  # problems named in the report; the count covers the rest


class _Backups(Protocol):
    store: ObjectStorage

    async def chunk_lines(self, chunk: fmt.Chunk) -> list[dict[str, Any]]: ...


def _check_key(line: dict[str, Any]) -> str | None:
    try:
        payload = base64.b64decode(line["payload"], validate=True)
    except (binascii.Error, ValueError):
        return "payload is not base64"
    if fmt.sha256_hex(payload) != line["payload_sha256"] or len(payload) != line["size"]:
        return "payload sha256 or size differs"
    if line["format"] == CANONICAL:  # the value digest can be recomputed only from the canonical form
        try:
            kind, value = decode_canonical(payload)
        except ValueError:
            return "payload is not a canonical value"
        if value_digest(kind, value) != line["sha256"]:
            return "value sha256 differs"
    return None


async def verify_backup(
    backups: _Backups, manifest: fmt.Manifest, progress: Callable[[str, int, int], None]
) -> dict[str, Any]:
    problems: list[str] = []
    total = 0
    counts = dict.fromkeys(fmt.KINDS, 0)

    def problem(text: str) -> None:
        nonlocal total
        total += 1
        if len(problems) < MAX_LISTED:
            problems.append(text)

    for chunk in manifest.chunks:
        try:
            lines = await backups.chunk_lines(chunk)
        except VoxshiftError as exc:
            problem(exc.message)
            continue
        for line in lines:
            counts[chunk.kind] += 1
            why: str | None = None
            if chunk.kind == "keys":
                why = _check_key(line)
            elif chunk.kind == "objects":
                try:
                    body, _ = await backups.store.get(str(line["body"]))
                except NotFound:
                    why = "body is missing"
                else:
                    if fmt.sha256_hex(body) != line["sha256"] or len(body) != line["size"]:
                        why = "body sha256 or size differs"
            elif fmt.sha256_hex(fmt.canonical_json(line["row"])) != line["sha256"]:
                why = "row sha256 differs"
            if why:
                problem(f"{chunk.kind[:-1]} {line['key']!r}: {why}")
            progress(chunk.kind, 1, int(line["size"]))
    for kind in fmt.KINDS:
        if counts[kind] != manifest.counts.get(kind, 0):
            problem(f"{kind}: {counts[kind]} items found, the manifest says {manifest.counts.get(kind, 0)}")
    return {
        "id": manifest.id,
        "ok": total == 0,
        "checked": counts,
        "problem_count": total,
        "problems": problems,
    }
