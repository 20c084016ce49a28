"""LegacyBucket: the legacy ``voice-files`` bucket, narrowed to the objects the voice service wrote.

The bucket may hold objects some other client put there; only keys with the legacy voice layout
(``core.legacy_layout.parse_voice_object_key``) are voice data, and only those can be read for a
backup or deleted by a cleanup through this class.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from voxshift.core.legacy_layout import VOICE_OBJECT_PREFIX, is_voice_object
from voxshift.errors import StoreUnavailable
from voxshift.stores.objects import ObjectInfo, ObjectStorage


class LegacyBucket:
    """The voice objects of one legacy bucket (an ``ObjectStorage`` bound to it)."""

    def __init__(self, storage: ObjectStorage) -> None:
        self.storage = storage
        self.bucket = storage.bucket

    def __repr__(self) -> str:
        return f"LegacyBucket({self.bucket!r})"

    async def _list(self, prefix: str, page_size: int | None) -> AsyncIterator[ObjectInfo]:
        try:
            async for info in self.storage.list(prefix, page_size=page_size):
                yield info
        except StoreUnavailable as exc:
            # A legacy that never stored a voice message never created its bucket (the embedded
            # reference legacy creates it on first write): nothing to list, not an outage.
            if exc.code != "bucket_missing":
                raise

    async def voice_objects(self, *, page_size: int | None = None) -> AsyncIterator[ObjectInfo]:
        """Every voice object (key, size, etag; no content type: ``get``/``head`` carry that)."""
        async for info in self._list(VOICE_OBJECT_PREFIX, page_size):
            if is_voice_object(info.key):
                yield info

    async def other_objects(self, *, page_size: int | None = None) -> AsyncIterator[ObjectInfo]:
        """Everything else in the bucket: not voice data, never touched."""
        async for info in self._list("", page_size):
            if not is_voice_object(info.key):
                yield info

    async def get(self, key: str) -> tuple[bytes, ObjectInfo]:
        return await self.storage.get(_voice(key))

    async def head(self, key: str) -> ObjectInfo | None:
        return await self.storage.head(_voice(key))

    async def put(
        self, key: str, data: bytes, content_type: str, metadata: Mapping[str, str] | None = None
    ) -> ObjectInfo:
        return await self.storage.put(_voice(key), data, content_type, metadata)

    async def delete(self, key: str) -> bool:
        return await self.storage.delete(_voice(key))

    async def aclose(self) -> None:
        await self.storage.aclose()


def _voice(key: str) -> str:
    if not is_voice_object(key):
        raise ValueError(f"not a legacy voice object key: {key!r}")
    return key
