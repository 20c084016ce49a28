"""ObjectStorage: the small blob contract voxshift needs from MinIO/S3 (or its embedded stand-in).

One instance is bound to one bucket. voxshift's own files live in ``voice-v2-files`` (seed M1.1); the
legacy reference backend opens a second instance for ``voice-files``. Binding the bucket at
construction means v2 code has no way to name, create or write the legacy bucket by accident.

Every method is a coroutine: the S3 backend does network I/O and the local one disk I/O, both off the
event loop.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

DEFAULT_PAGE_SIZE = 1000  # S3's own maximum for one ListObjectsV2 page


@dataclass(frozen=True)
class LifecycleRule:
    """Expire every object whose key starts with ``prefix`` once it is ``days`` old ("" = every key)."""

    prefix: str
    days: int

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ValueError("a lifecycle rule needs days >= 1 (S3 refuses 0)")


# Seed M1.1: temp/ files go after 1 day, audio/ after 30 days.
V2_LIFECYCLE: tuple[LifecycleRule, ...] = (LifecycleRule("temp/", 1), LifecycleRule("audio/", 30))


@dataclass(frozen=True)
class ObjectInfo:
    """What a store knows about one object.

    ``etag`` is the hex MD5 of the body for single-part uploads (what both backends write), without
    quotes. ``last_modified`` is aware UTC (S3 gives whole seconds).

    ``list()`` returns ``content_type=None`` and empty ``metadata``: S3's ListObjectsV2 does not carry
    them and fetching them would cost a HEAD per object, so both backends behave the same way and
    callers that need them call ``head()``.
    """

    key: str
    size: int
    etag: str
    last_modified: datetime
    content_type: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BucketReport:
    """What ``ensure_bucket`` did, so start-up can log it and a health page can show it.

    ``lifecycle_applied`` is False when the server refused the lifecycle configuration; ``note`` then
    says why, and also carries known caveats about enforcement (SeaweedFS stores rules it only executes
    when its admin + worker processes run; the local store enforces them in ``sweep()``).
    """

    bucket: str
    created: bool
    lifecycle_applied: bool
    rules: tuple[LifecycleRule, ...]
    note: str | None = None


@runtime_checkable
class ObjectStorage(Protocol):
    """A bucket of immutable-per-version blobs with content type and user metadata.

    Metadata keys are lowercase ASCII (``[a-z0-9][a-z0-9_.-]*``, what S3 keeps after it lowercases
    header names); values are any Unicode text and come back exactly as written.
    """

    bucket: str

    async def put(
        self, key: str, data: bytes, content_type: str, metadata: Mapping[str, str] | None = None
    ) -> ObjectInfo: ...

    async def get(self, key: str) -> tuple[bytes, ObjectInfo]:
        """The body and its info; ``NotFound`` when the key does not exist."""
        ...

    async def head(self, key: str) -> ObjectInfo | None: ...

    async def delete(self, key: str) -> bool:
        """True when an object was removed; deleting a missing key is not an error."""
        ...

    def list(self, prefix: str = "", *, page_size: int | None = None) -> AsyncIterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``, in key order, fetched a page at a time."""
        ...

    async def signed_url(self, key: str, expires_s: int) -> str:
        """A URL that lets anyone GET the object for ``expires_s`` seconds.

        S3: an absolute presigned URL served by the S3 server. Local: a path
        ``/v2/objects/{bucket}/{key}?expires=..&sig=..`` served by ``voxshift.api.objects``, relative
        unless the store was given a ``public_base_url``.
        """
        ...

    async def ensure_bucket(self) -> BucketReport:
        """Create the bucket when missing and apply the lifecycle rules; idempotent."""
        ...

    async def lifecycle_rules(self) -> builtins.list[LifecycleRule]:
        """The expiration rules the bucket carries now (read back from the server for S3)."""
        ...

    async def ping(self) -> None:
        """Return when the store can serve this bucket, else raise ``StoreUnavailable``."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class SweepableStorage(Protocol):
    """A store that enforces its bucket's lifecycle itself, when told to: the embedded one.

    S3 servers expire objects on their own, so ``S3ObjectStorage`` has no ``sweep``; whoever runs a
    store checks ``isinstance(store, SweepableStorage)`` and sweeps periodically only then.
    """

    async def sweep(self, now: datetime | None = None) -> int:
        """Delete the objects older than their lifecycle rule allows; return how many."""
        ...
