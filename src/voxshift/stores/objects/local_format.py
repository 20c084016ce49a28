"""The on-disk format of :class:`~voxshift.stores.objects.local.LocalObjectStorage`.

Layout: the object ``audio/a/b.mp3`` of bucket ``voice-v2-files`` is the file
``<root>/voice-v2-files/audio/a/b.mp3`` (readable, rsync-able), next to a sidecar
``.vxmeta.b.mp3.json`` holding content type, metadata, creation time, size and MD5. Names starting
with ``.vx`` are the store's own (sidecars, temp files, ``.vxbucket.json`` with the lifecycle rules).

Writes are crash-safe: data and sidecar go to temp files, are fsynced, then renamed into place (data
first). The sidecar is the commit record: an object is visible only when its sidecar exists and the
data's size (and, on ``get``, MD5) match it, so a crash mid-write leaves the previous version or
nothing, never a torn object.

Kept apart from the store so that the format (what a file on disk means) and the store's behaviour
(refusing colliding keys, retries, error mapping, the lifecycle sweep) can be read separately. These
functions raise plain ``OSError`` for I/O trouble; the store turns it into ``StoreUnavailable``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from voxshift.errors import InvalidRequest, StoreUnavailable
from voxshift.stores.objects.base import LifecycleRule, ObjectInfo
from voxshift.stores.objects.keys import RESERVED, check_key, validate_content_type, validate_metadata

log = logging.getLogger("voxshift.stores.objects")

BUCKET_FILE = ".vxbucket.json"


# --- layout ----------------------------------------------------------------------------------------
def meta_name(name: str) -> str:
    """The sidecar's file name for the data file ``name``."""
    return f"{RESERVED}meta.{name}.json"


def key_paths(bucket_dir: Path, key: str) -> tuple[Path, Path]:
    """(data, sidecar) for a key; InvalidRequest for a key that is not one (see ``check_key``)."""
    segments = check_key(key)
    data = bucket_dir.joinpath(*segments)
    return data, data.with_name(meta_name(data.name))


def check_inside(bucket_dir: Path, directory: Path) -> None:
    # realpath resolves symlinks that exist now; lexical checks alone cannot see a planted link.
    real = os.path.realpath(directory)
    base = os.path.realpath(bucket_dir)
    if real != base and not real.startswith(base + os.sep):
        raise InvalidRequest("object key resolves outside the bucket folder", param="key")


# --- the sidecar (commit record) -------------------------------------------------------------------
def new_record(body: bytes, content_type: str, metadata: Mapping[str, str] | None) -> dict[str, Any]:
    return {
        "v": 1,
        "content_type": validate_content_type(content_type),
        "metadata": validate_metadata(metadata),
        "created": datetime.now(UTC).isoformat(),
        "size": len(body),
        "etag": hashlib.md5(body, usedforsecurity=False).hexdigest(),
    }


def read_record(meta_path: Path) -> dict[str, Any] | None:
    """The sidecar at ``meta_path``; None when there is none or it cannot be understood (logged)."""
    try:
        raw = meta_path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        record = json.loads(raw)
        if not isinstance(record, dict) or record.get("v") != 1:
            raise ValueError("unknown sidecar format")
        datetime.fromisoformat(record["created"])
        return record
    except (ValueError, KeyError, TypeError):
        log.warning("ignoring unreadable object sidecar %s", meta_path)
        return None


def record_info(key: str, record: Mapping[str, Any]) -> ObjectInfo:
    return ObjectInfo(
        key=key,
        size=int(record["size"]),
        etag=str(record["etag"]),
        last_modified=datetime.fromisoformat(record["created"]).astimezone(UTC),
        content_type=str(record["content_type"]),
        metadata=dict(record["metadata"]),
    )


def write_object(data_path: Path, meta_path: Path, body: bytes, record: Mapping[str, Any]) -> None:
    """Data first, then the sidecar, so the object appears (or changes) only when both are in place."""
    tmp_data = write_temp(data_path, body)
    try:
        tmp_meta = write_temp(data_path, json.dumps(record, ensure_ascii=False).encode())
        try:
            os.replace(tmp_data, data_path)
            os.replace(tmp_meta, meta_path)
        finally:
            tmp_meta.unlink(missing_ok=True)
    finally:
        tmp_data.unlink(missing_ok=True)
    fsync_dir(data_path.parent)


# --- the bucket file (lifecycle rules) -------------------------------------------------------------
def read_rules(bucket_dir: Path) -> list[LifecycleRule]:
    try:
        config = json.loads((bucket_dir / BUCKET_FILE).read_bytes())
        return [LifecycleRule(r["prefix"], int(r["days"])) for r in config["lifecycle"]]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StoreUnavailable(f"unreadable bucket config in {bucket_dir}: {exc}") from None


def write_rules(bucket_dir: Path, rules: Sequence[LifecycleRule]) -> None:
    wanted = [{"prefix": r.prefix, "days": r.days} for r in rules]
    config = {"v": 1, "lifecycle": wanted}
    path = bucket_dir / BUCKET_FILE
    tmp = write_temp(path, json.dumps(config, indent=2).encode())
    os.replace(tmp, path)


# --- files -----------------------------------------------------------------------------------------
def write_temp(target: Path, payload: bytes) -> Path:
    tmp = target.with_name(f"{RESERVED}tmp.{target.name[:100]}.{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def fsync_dir(directory: Path) -> None:
    # The renames are durable only once the folder entry is; best-effort where O_DIRECTORY is missing.
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def mtime(path: Path) -> float:
    """inf when unknown, so a file we cannot stat never looks old enough to delete."""
    try:
        return path.stat().st_mtime
    except OSError:
        return float("inf")
