"""LocalObjectStorage: the embedded default, one folder per bucket under a root directory.

An object is a plain file at its key's path with a sidecar holding its content type, metadata,
creation time, size and MD5; names starting with ``.vx`` are the store's own, so keys with such a
segment are refused. The on-disk format and its crash-safe writes are :mod:`.local_format`.

Keys map to paths only after validation: no empty, ``.`` or ``..`` segment, no leading ``/``, no NUL,
control character or backslash, and the resolved parent must stay inside the bucket folder (which
also defeats a symlink planted inside it). A filesystem cannot hold both a file ``a`` and a folder
``a/``, so unlike S3 the keys ``a`` and ``a/b`` cannot coexist; such a write is refused (voxshift's
own keys never collide this way).

A crash mid-write leaves the previous version or nothing, never a torn object. ``sweep()`` applies
the lifecycle rules and removes crash leftovers.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import hashlib
import os
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
from voxshift.stores.objects.keys import RESERVED, check_key, is_valid_key, validate_bucket
from voxshift.stores.objects.local_format import (
    check_inside,
    key_paths,
    meta_name,
    mtime,
    new_record,
    read_record,
    read_rules,
    record_info,
    write_object,
    write_rules,
)

_LEFTOVER_AGE_S = 3600.0  # temp/orphan files younger than this may belong to a write in progress


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
        return key_paths(self.bucket_dir, key)

    def _check_inside(self, directory: Path) -> None:
        check_inside(self.bucket_dir, directory)

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
        record = new_record(body, content_type, metadata)
        await asyncio.to_thread(self._put_sync, key, paths, body, record)
        return record_info(key, record)

    def _put_sync(self, key: str, paths: tuple[Path, Path], body: bytes, record: dict[str, Any]) -> None:
        self._require_bucket()
        data_path, meta_path = paths
        for attempt in range(3):
            try:
                data_path.parent.mkdir(parents=True, exist_ok=True)
                self._check_inside(data_path.parent)
                write_object(data_path, meta_path, body, record)
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
                return body, record_info(key, record)
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
        return record_info(key, record)

    def _read_record(self, meta_path: Path) -> dict[str, Any] | None:
        try:
            self._check_inside(meta_path.parent)
            return read_record(meta_path)
        except OSError as exc:
            raise self._unavailable(exc) from None

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
                if name.startswith(RESERVED) or meta_name(name) not in names:
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
                write_rules(self.bucket_dir, self._lifecycle)
        except OSError as exc:
            raise self._unavailable(exc) from None
        rules = tuple(self._rules_sync())
        note = "enforced by LocalObjectStorage.sweep(); run it periodically" if rules else None
        return BucketReport(self.bucket, created, lifecycle_applied=True, rules=rules, note=note)

    async def lifecycle_rules(self) -> builtins.list[LifecycleRule]:
        return await asyncio.to_thread(self._rules_sync)

    def _rules_sync(self) -> builtins.list[LifecycleRule]:
        return read_rules(self.bucket_dir)

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
                    if name.startswith(f"{RESERVED}tmp.") and mtime(path) < cutoff:
                        path.unlink(missing_ok=True)
                    continue
                if meta_name(name) not in names:
                    if mtime(path) < cutoff:  # data whose sidecar never landed: a crashed create
                        path.unlink(missing_ok=True)
                    continue
                key = path.relative_to(self.bucket_dir).as_posix()
                if not is_valid_key(key):  # a file someone dropped in by hand; not ours to judge
                    continue
                days = [r.days for r in rules if key.startswith(r.prefix)]
                record = self._read_record(path.with_name(meta_name(name))) if days else None
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
