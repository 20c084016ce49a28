"""LocalObjectStorage: the embedded default, one folder per bucket under a root directory.

Layout: the object ``audio/a/b.mp3`` of bucket ``voice-v2-files`` is the file
``<root>/voice-v2-files/audio/a/b.mp3`` (readable, rsync-able), next to a sidecar
``.vxmeta.b.mp3.json`` holding content type, metadata, creation time, size and MD5. Names starting
with ``.vx`` are the store's own (sidecars, temp files, ``.vxbucket.json`` with the lifecycle rules),
so keys with such a segment are refused.

Keys map to paths only after validation: no empty, ``.`` or ``..`` segment, no leading ``/``, no NUL,
control character or backslash, and the resolved parent must stay inside the bucket folder (which
also defeats a symlink planted inside it). A filesystem cannot hold both a file ``a`` and a folder
``a/``, so unlike S3 the keys ``a`` and ``a/b`` cannot coexist; such a write is refused (voxshift's
own keys never collide this way).

Writes are crash-safe: data and sidecar go to temp files, are fsynced, then renamed into place (data
first). The sidecar is the commit record: an object is visible only when its sidecar exists and the
data's size (and, on ``get``, MD5) match it, so a crash mid-write leaves the previous version or
nothing, never a torn object. ``sweep()`` applies the lifecycle rules and removes crash leftovers.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import hashlib
import json
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from voxshift.errors import ConfigError, InvalidRequest, NotFound, StoreUnavailable
from voxshift.stores.objects import signing
from voxshift.stores.objects.base import (
    DEFAULT_PAGE_SIZE,
    V2_LIFECYCLE,
    BucketReport,
    LifecycleRule,
    ObjectInfo,
)
from voxshift.stores.objects.keys import (
    RESERVED,
    check_key,
    is_valid_key,
    validate_bucket,
    validate_content_type,
    validate_metadata,
)

log = logging.getLogger("voxshift.stores.objects")

_BUCKET_FILE = ".vxbucket.json"
_LEFTOVER_AGE_S = 3600.0  # temp/orphan files younger than this may belong to a write in progress


def _meta_name(name: str) -> str:
    return f"{RESERVED}meta.{name}.json"


class LocalObjectStorage:
    def __init__(
        self,
        root: Path,
        bucket: str,
        *,
        signing_key: bytes,
        lifecycle: Sequence[LifecycleRule] = V2_LIFECYCLE,
        public_base_url: str = "",
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> None:
        if not root.is_absolute():
            raise ConfigError(f"the local object store root must be an absolute path, not {root}")
        self.root = root
        self.bucket = validate_bucket(bucket)
        self.bucket_dir = root / bucket
        self._signing_key = signing_key
        self._lifecycle = tuple(lifecycle)
        self._base_url = public_base_url.rstrip("/")
        self._page_size = page_size

    def __repr__(self) -> str:
        return f"LocalObjectStorage({str(self.bucket_dir)!r})"

    # --- paths ----------------------------------------------------------------------------------
    def _paths(self, key: str) -> tuple[Path, Path]:
        segments = check_key(key)
        data = self.bucket_dir.joinpath(*segments)
        return data, data.with_name(_meta_name(data.name))

    def _check_inside(self, directory: Path) -> None:
        # realpath resolves symlinks that exist now; lexical checks alone cannot see a planted link.
        real = os.path.realpath(directory)
        base = os.path.realpath(self.bucket_dir)
        if real != base and not real.startswith(base + os.sep):
            raise InvalidRequest("object key resolves outside the bucket folder", param="key")

    def _unavailable(self, exc: OSError) -> StoreUnavailable:
        return StoreUnavailable(f"local object store {self.bucket_dir}: {exc.strerror or exc}")

    def _require_bucket(self) -> None:
        if not self.bucket_dir.is_dir():
            raise StoreUnavailable(
                f"bucket {self.bucket!r} does not exist under {self.root}; run ensure_bucket() first",
                code="bucket_missing",
            )

    # --- writes -----------------------------------------------------------------------------------
    async def put(
        self, key: str, data: bytes, content_type: str, metadata: Mapping[str, str] | None = None
    ) -> ObjectInfo:
        paths = self._paths(key)
        body = bytes(data)
        record = {
            "v": 1,
            "content_type": validate_content_type(content_type),
            "metadata": validate_metadata(metadata),
            "created": datetime.now(UTC).isoformat(),
            "size": len(body),
            "etag": hashlib.md5(body, usedforsecurity=False).hexdigest(),
        }
        await asyncio.to_thread(self._put_sync, key, paths, body, record)
        return _info(key, record)

    def _put_sync(self, key: str, paths: tuple[Path, Path], body: bytes, record: dict[str, Any]) -> None:
        self._require_bucket()
        data_path, meta_path = paths
        for attempt in range(3):
            try:
                data_path.parent.mkdir(parents=True, exist_ok=True)
                self._check_inside(data_path.parent)
                tmp_data = _write_temp(data_path, body)
                try:
                    tmp_meta = _write_temp(data_path, json.dumps(record, ensure_ascii=False).encode())
                    try:
                        os.replace(tmp_data, data_path)
                        os.replace(tmp_meta, meta_path)
                    finally:
                        tmp_meta.unlink(missing_ok=True)
                finally:
                    tmp_data.unlink(missing_ok=True)
                _fsync_dir(data_path.parent)
                return
            except FileNotFoundError:
                # A concurrent delete pruned the (then empty) folder between mkdir and the write.
                if attempt == 2:
                    raise StoreUnavailable(f"could not write {key!r}: its folder keeps vanishing") from None
            except (IsADirectoryError, NotADirectoryError, FileExistsError):
                raise InvalidRequest(
                    f"object key {key!r} collides with an existing key that is a prefix of it (or it of "
                    "one); the local store cannot hold both 'a' and 'a/b'",
                    param="key",
                ) from None
            except OSError as exc:
                raise self._unavailable(exc) from None

    async def delete(self, key: str) -> bool:
        return await asyncio.to_thread(self._delete_sync, self._paths(key))

    def _delete_sync(self, paths: tuple[Path, Path]) -> bool:
        data_path, meta_path = paths
        try:
            self._check_inside(data_path.parent)
            try:
                meta_path.unlink()  # the commit record goes first: the object vanishes atomically
                existed = True
            except (FileNotFoundError, NotADirectoryError):
                existed = False
            with contextlib.suppress(FileNotFoundError, NotADirectoryError, IsADirectoryError):
                data_path.unlink()
        except OSError as exc:
            raise self._unavailable(exc) from None
        self._prune(data_path.parent)
        return existed

    def _prune(self, directory: Path) -> None:
        # Empty folders left by deletes would otherwise pile up (one per agent per day).
        while directory != self.bucket_dir and self.bucket_dir in directory.parents:
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent

    # --- reads ------------------------------------------------------------------------------------
    async def get(self, key: str) -> tuple[bytes, ObjectInfo]:
        return await asyncio.to_thread(self._get_sync, key, self._paths(key))

    def _get_sync(self, key: str, paths: tuple[Path, Path]) -> tuple[bytes, ObjectInfo]:
        data_path, meta_path = paths
        for _ in range(2):  # a concurrent overwrite may swap the files between our two reads
            record = self._read_record(meta_path)
            if record is None:
                break
            try:
                body = data_path.read_bytes()
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                break
            except OSError as exc:
                raise self._unavailable(exc) from None
            etag = hashlib.md5(body, usedforsecurity=False).hexdigest()
            if len(body) == record["size"] and etag == record["etag"]:
                return body, _info(key, record)
        raise NotFound(f"object {key!r} not found in bucket {self.bucket!r}", param="key")

    async def head(self, key: str) -> ObjectInfo | None:
        return await asyncio.to_thread(self._head_sync, key, self._paths(key))

    def _head_sync(self, key: str, paths: tuple[Path, Path]) -> ObjectInfo | None:
        data_path, meta_path = paths
        record = self._read_record(meta_path)
        if record is None:
            return None
        try:
            if data_path.stat().st_size != record["size"]:
                return None
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise self._unavailable(exc) from None
        return _info(key, record)

    def _read_record(self, meta_path: Path) -> dict[str, Any] | None:
        try:
            self._check_inside(meta_path.parent)
            raw = meta_path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise self._unavailable(exc) from None
        try:
            record = json.loads(raw)
            if not isinstance(record, dict) or record.get("v") != 1:
                raise ValueError("unknown sidecar format")
            datetime.fromisoformat(record["created"])
            return record
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring unreadable object sidecar %s", meta_path)
            return None

    async def list(self, prefix: str = "", *, page_size: int | None = None) -> AsyncIterator[ObjectInfo]:
        keys = await asyncio.to_thread(self._scan, prefix)
        size = max(1, page_size or self._page_size)
        for start in range(0, len(keys), size):
            for info in await asyncio.to_thread(self._page, keys[start : start + size]):
                yield info

    def _scan(self, prefix: str) -> builtins.list[str]:
        self._require_bucket()
        folder = prefix.rpartition("/")[0]
        start = self.bucket_dir.joinpath(*folder.split("/")) if folder else self.bucket_dir
        try:
            self._check_inside(start)
        except InvalidRequest:
            return []
        keys = []
        for directory, dirs, files in os.walk(start):
            dirs[:] = [d for d in dirs if not d.startswith(RESERVED)]
            names = set(files)
            rel = os.path.relpath(directory, self.bucket_dir)
            for name in files:
                if name.startswith(RESERVED) or _meta_name(name) not in names:
                    continue
                key = name if rel == "." else f"{rel.replace(os.sep, '/')}/{name}"
                if key.startswith(prefix) and is_valid_key(key):
                    keys.append(key)
        keys.sort()  # code-point order == UTF-8 byte order == S3's listing order
        return keys

    def _page(self, keys: builtins.list[str]) -> builtins.list[ObjectInfo]:
        out = []
        for key in keys:
            info = self._head_sync(key, self._paths(key))
            if info is not None:  # deleted since the scan
                out.append(ObjectInfo(info.key, info.size, info.etag, info.last_modified))
        return out

    # --- bucket -----------------------------------------------------------------------------------
    async def ensure_bucket(self) -> BucketReport:
        return await asyncio.to_thread(self._ensure_sync)

    def _ensure_sync(self) -> BucketReport:
        created = not self.bucket_dir.is_dir()
        try:
            self.bucket_dir.mkdir(parents=True, exist_ok=True)
            if self._lifecycle and self._rules_sync() != builtins.list(self._lifecycle):
                wanted = [{"prefix": r.prefix, "days": r.days} for r in self._lifecycle]
                config = {"v": 1, "lifecycle": wanted}
                path = self.bucket_dir / _BUCKET_FILE
                tmp = _write_temp(path, json.dumps(config, indent=2).encode())
                os.replace(tmp, path)
        except OSError as exc:
            raise self._unavailable(exc) from None
        rules = tuple(self._rules_sync())
        note = "enforced by LocalObjectStorage.sweep(); run it periodically" if rules else None
        return BucketReport(self.bucket, created, lifecycle_applied=True, rules=rules, note=note)

    async def lifecycle_rules(self) -> builtins.list[LifecycleRule]:
        return await asyncio.to_thread(self._rules_sync)

    def _rules_sync(self) -> builtins.list[LifecycleRule]:
        try:
            config = json.loads((self.bucket_dir / _BUCKET_FILE).read_bytes())
            return [LifecycleRule(r["prefix"], int(r["days"])) for r in config["lifecycle"]]
        except FileNotFoundError:
            return []
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreUnavailable(f"unreadable bucket config in {self.bucket_dir}: {exc}") from None

    async def sweep(self, now: datetime | None = None) -> int:
        """Delete objects older than their lifecycle rule; return how many. Also clears crash leftovers.

        Age is measured from the stored creation time (``now`` defaults to the current UTC time).
        When several rules match a key the shortest wins, as on S3.
        """
        when = now or datetime.now(UTC)
        if when.tzinfo is None:
            raise InvalidRequest("sweep(now=...) must be timezone-aware", param="now")
        return await asyncio.to_thread(self._sweep_sync, when)

    def _sweep_sync(self, now: datetime) -> int:
        rules = self._rules_sync()
        if not self.bucket_dir.is_dir():
            return 0
        expired = 0
        cutoff = time.time() - _LEFTOVER_AGE_S
        for directory, dirs, files in os.walk(self.bucket_dir):
            dirs[:] = [d for d in dirs if not d.startswith(RESERVED)]
            names = set(files)
            for name in files:
                path = Path(directory, name)
                if name.startswith(RESERVED):
                    if name.startswith(f"{RESERVED}tmp.") and _mtime(path) < cutoff:
                        path.unlink(missing_ok=True)
                    continue
                if _meta_name(name) not in names:
                    if _mtime(path) < cutoff:  # data whose sidecar never landed: a crashed create
                        path.unlink(missing_ok=True)
                    continue
                key = path.relative_to(self.bucket_dir).as_posix()
                if not is_valid_key(key):  # a file someone dropped in by hand; not ours to judge
                    continue
                days = [r.days for r in rules if key.startswith(r.prefix)]
                record = self._read_record(path.with_name(_meta_name(name))) if days else None
                if record is None:
                    continue
                if datetime.fromisoformat(record["created"]) + timedelta(days=min(days)) <= now:
                    expired += self._delete_sync(self._paths(key))
        return expired

    # --- URLs, health -----------------------------------------------------------------------------
    async def signed_url(self, key: str, expires_s: int) -> str:
        check_key(key)
        expires = int(time.time()) + signing.check_expires_s(expires_s)
        return self._base_url + signing.signed_path(self._signing_key, self.bucket, key, expires)

    async def ping(self) -> None:
        def check() -> None:
            self._require_bucket()
            if not os.access(self.bucket_dir, os.W_OK | os.X_OK):
                raise StoreUnavailable(f"local object store {self.bucket_dir} is not writable")

        await asyncio.to_thread(check)

    async def aclose(self) -> None:
        return None


def _info(key: str, record: Mapping[str, Any]) -> ObjectInfo:
    return ObjectInfo(
        key=key,
        size=int(record["size"]),
        etag=str(record["etag"]),
        last_modified=datetime.fromisoformat(record["created"]).astimezone(UTC),
        content_type=str(record["content_type"]),
        metadata=dict(record["metadata"]),
    )


def _write_temp(target: Path, payload: bytes) -> Path:
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


def _fsync_dir(directory: Path) -> None:
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


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return float("inf")
