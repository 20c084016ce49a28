"""How a legacy backup sits in the v2 bucket: ids, paths, item lines and the manifest.

``backups/{id}/items/{kind}-{n}.jsonl``  item lines, a chunk at a time (keys carry their payload inline)
``backups/{id}/objects/{n}``             one voice object's body each
``backups/{id}/manifest.json``           written LAST: a backup without it is incomplete
``backups/_catalog/{id}.json``           the manifest's summary, so ``list`` reads one small object per
                                         backup instead of listing every body ("_" sorts after digits,
                                         so no backup id can collide with it)
``backups/_catalog/{id}.verified.json``  the outcome of the last ``verify``

The manifest names every chunk with its sha256 and every chunk names its items with theirs, so the
manifest stays small (one entry per chunk) while every item is still covered by a digest.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from voxshift.legacy.data.keyspace import KeyExport

FORMAT = 1
KINDS = ("keys", "objects", "settings")
CATALOG = "backups/_catalog/"


def new_backup_id(now: datetime) -> str:
    """Sortable: the UTC second it started, then random hex so two backups in one second differ."""
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def is_backup_id(value: str) -> bool:
    stamp, _, tail = value.partition("-")
    return len(stamp) == 16 and stamp[8] == "T" and stamp.endswith("Z") and len(tail) == 6 and tail.isalnum()


def root(backup_id: str) -> str:
    return f"backups/{backup_id}/"


def manifest_path(backup_id: str) -> str:
    return f"{root(backup_id)}manifest.json"


def chunk_path(backup_id: str, kind: str, number: int) -> str:
    return f"{root(backup_id)}items/{kind}-{number:06d}.jsonl"


def body_path(backup_id: str, number: int) -> str:
    return f"{root(backup_id)}objects/{number:08d}"


def catalog_path(backup_id: str) -> str:
    return f"{CATALOG}{backup_id}.json"


def verified_path(backup_id: str) -> str:
    return f"{CATALOG}{backup_id}.verified.json"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def key_line(item: KeyExport) -> dict[str, Any]:
    return {
        "kind": "key",
        "key": item.key,
        "type": item.type,
        "format": item.payload_format,
        "ttl_ms": item.pttl_ms,
        "sha256": item.sha256,  # of the value (store-independent)
        "payload_sha256": sha256_hex(item.payload),  # of the bytes kept here, what verify re-checks
        "size": len(item.payload),
        "payload": base64.b64encode(item.payload).decode("ascii"),
    }


def key_from_line(line: dict[str, Any]) -> KeyExport:
    return KeyExport(
        key=str(line["key"]),
        type=str(line["type"]),
        payload=base64.b64decode(line["payload"], validate=True),
        payload_format=str(line["format"]),
        pttl_ms=None if line["ttl_ms"] is None else int(line["ttl_ms"]),
        sha256=str(line["sha256"]),
    )


def encode_lines(lines: list[dict[str, Any]]) -> bytes:
    # ensure_ascii: keys may hold lone surrogates (invalid UTF-8 from another client), which plain
    # UTF-8 cannot carry; \\u escapes can, and json.loads gives the same str back.
    return b"".join(json.dumps(line, ensure_ascii=True).encode("ascii") + b"\n" for line in lines)


def decode_lines(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.splitlines() if line.strip()]


@dataclass
class Tally:
    """Items and bytes per category."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    bytes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))

    def add(self, kind: str, size: int) -> None:
        self.counts[kind] += 1
        self.bytes[kind] += size


@dataclass(frozen=True)
class Chunk:
    path: str
    kind: str
    items: int
    sha256: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "items": self.items,
            "sha256": self.sha256,
            "size": self.size,
        }


@dataclass(frozen=True)
class Manifest:
    id: str
    created_at: str
    completed_at: str
    counts: dict[str, int]
    bytes: dict[str, int]
    expired_during_backup: int
    source: dict[str, str]
    chunks: tuple[Chunk, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "id": self.id,
            "created_at": self.created_at,
            "completed_at": self.completed_at,
            "counts": self.counts,
            "bytes": self.bytes,
            "expired_during_backup": self.expired_during_backup,
            "source": self.source,
            "chunks": [c.to_json() for c in self.chunks],
        }

    def summary(self) -> dict[str, Any]:
        data = self.to_json()
        del data["chunks"]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        if data.get("format") != FORMAT:
            raise ValueError(f"unknown backup format {data.get('format')!r}")
        return cls(
            id=str(data["id"]),
            created_at=str(data["created_at"]),
            completed_at=str(data["completed_at"]),
            counts={str(k): int(v) for k, v in data["counts"].items()},
            bytes={str(k): int(v) for k, v in data["bytes"].items()},
            expired_during_backup=int(data["expired_during_backup"]),
            source={str(k): str(v) for k, v in data["source"].items()},
            chunks=tuple(
                Chunk(str(c["path"]), str(c["kind"]), int(c["items"]), str(c["sha256"]), int(c["size"]))
                for c in data["chunks"]
            ),
        )
