"""STT and TTS result caches (seed TTLs: STT 86400 s, TTS 3600 s), degrading when a backend is down.

STT results live in the state store as JSON. TTS audio lives in object storage under the v2 audio
layout; the state store holds only a reference to it, so a Redis full of cached speech never holds
megabytes of audio. A lookup or write that meets a dead backend counts as a miss (or a skipped
write) and the request goes on: the cache is an optimisation, never a dependency of an answer.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from voxshift.core.cache_keys import SttCacheKey, TtsCacheKey
from voxshift.errors import NotFound
from voxshift.services.wiring.dependencies import Dependency
from voxshift.stores.objects.keys import audio_object_key
from voxshift.stores.state.base import StateStore

CacheStatus = Literal["hit", "miss", "coalesced", "disabled", "unavailable"]

# File extensions of the output formats in the v2 bucket (opus is Ogg Opus: ".opus").
FORMAT_EXTENSIONS = {"mp3": "mp3", "opus": "opus", "aac": "aac", "flac": "flac", "wav": "wav", "pcm": "pcm"}


class AudioObjects(Protocol):
    """The part of ObjectStorage the caches and URL delivery use."""

    async def put(
        self, key: str, data: bytes, content_type: str, metadata: Mapping[str, str] | None = None
    ) -> Any: ...

    async def get(self, key: str) -> tuple[bytes, Any]: ...

    async def signed_url(self, key: str, expires_s: int) -> str: ...


@dataclass(frozen=True)
class StoredAudio:
    """Where a piece of synthesized audio lives, and what it is: the TTS cache's value."""

    object_key: str
    format: str
    content_type: str
    size_bytes: int
    duration_seconds: float
    provider_used: str
    language: str

    def to_json(self) -> bytes:
        return json.dumps(self.__dict__, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> StoredAudio:
        data = json.loads(raw)
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})


class CacheStats:
    """Hits, misses and the rest per operation, in-process (exported by /v2/cache/stats)."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()

    def count(self, operation: str, status: str) -> None:
        self.counts[(operation, status)] += 1

    def snapshot(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for (operation, status), n in sorted(self.counts.items()):
            out.setdefault(operation, {})[status] = n
        for op_counts in out.values():
            looked_up = op_counts.get("hit", 0) + op_counts.get("miss", 0)
            op_counts["hit_rate_percent"] = (
                round(100 * op_counts.get("hit", 0) / looked_up) if looked_up else 0
            )
        return out


class VoiceCache:
    def __init__(
        self,
        state: StateStore,
        objects: AudioObjects,
        state_dependency: Dependency,
        objects_dependency: Dependency,
    ) -> None:
        self.state = state
        self.objects = objects
        self.state_dependency = state_dependency
        self.objects_dependency = objects_dependency
        self.stats = CacheStats()

    # --- STT --------------------------------------------------------------------------------
    async def get_transcript(self, key: SttCacheKey) -> dict[str, Any] | None:
        raw = await self.state_dependency.call(lambda: self.state.get(key.render()), None)
        if raw is None:
            return None
        try:
            value: dict[str, Any] = json.loads(raw)
        except ValueError:  # written by something else; never serve garbage
            return None
        return value

    async def put_transcript(self, key: SttCacheKey, value: Mapping[str, Any], ttl_s: float) -> bool:
        raw = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()

        async def write() -> bool:
            await self.state.set(key.render(), raw, ttl_s=ttl_s)
            return True

        return await self.state_dependency.call(write, False)

    # --- TTS --------------------------------------------------------------------------------
    async def get_speech(self, key: TtsCacheKey) -> tuple[StoredAudio, bytes] | None:
        raw = await self.state_dependency.call(lambda: self.state.get(key.render()), None)
        if raw is None:
            return None
        try:
            ref = StoredAudio.from_json(raw)
        except (ValueError, KeyError, TypeError):
            return None
        audio = await self.read_object(ref.object_key)
        if audio is None or len(audio) != ref.size_bytes:
            return None  # expired by the bucket's lifecycle, deleted, or the store is down
        return ref, audio

    async def put_speech(self, key: TtsCacheKey, ref: StoredAudio, ttl_s: float) -> bool:
        async def write() -> bool:
            await self.state.set(key.render(), ref.to_json(), ttl_s=ttl_s)
            return True

        return await self.state_dependency.call(write, False)

    # --- objects ----------------------------------------------------------------------------
    async def read_object(self, object_key: str) -> bytes | None:
        async def read() -> bytes | None:
            try:
                data, _info = await self.objects.get(object_key)
            except NotFound:
                return None
            return data

        return await self.objects_dependency.call(read, None)

    async def store_audio(
        self,
        audio: bytes,
        *,
        format: str,
        content_type: str,
        sha256: str,
        agent_id: str | None,
        metadata: Mapping[str, str],
        now: datetime | None = None,
    ) -> str | None:
        """Put audio under ``audio/{agent}/{Y}/{M}/{D}/{sha256}.{ext}``; None when storage is down."""
        object_key = audio_object_key(agent_id, sha256, FORMAT_EXTENSIONS[format], now or datetime.now(UTC))

        async def put() -> str:
            await self.objects.put(object_key, audio, content_type, metadata)
            return object_key

        return await self.objects_dependency.call(put, None)

    async def signed_url(self, object_key: str, expires_s: int) -> str | None:
        return await self.objects_dependency.call(
            lambda: self.objects.signed_url(object_key, expires_s), None
        )
