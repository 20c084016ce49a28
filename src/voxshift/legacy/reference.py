"""A built-in stand-in for PlatformAI-HUB's voice service, so there is a real legacy to migrate from.

It behaves like ``VoiceServiceOrchestrator`` (section 4 of the legacy layout document) wherever that
shapes the data it leaves in Redis and MinIO, bugs included, because that data is what the
migration has to deal with. It writes through the RAW state store (never under ``voice_v2:``) and
only to the bucket it is given (``voice-files``). Its engines differ from v2's on purpose, so that
comparing the two systems means something: Whisper ``tiny.en`` for STT, espeak-ng for TTS.

Speech to text, in the legacy's order:

1. the agent's settings from ``agent_voice_settings:{agent_id}`` (the legacy defaults when absent or
   unreadable); an upload over ``max_file_size_mb`` is refused (``PayloadTooLarge``), nothing stored;
2. the audio is uploaded to the bucket BEFORE the cache lookup, whatever happens next (even empty
   or undecodable bytes, as the legacy did): ``voice/{agent}/{user}/{Y/m/d/H}/{uuid4}.{ext}``, always
   ``audio/mpeg``. A non-ASCII agent id, user id or file name fails the request the way minio-py
   failed it (``ValueError`` -> ``ProviderError``), and nothing is stored;
3. ``stt_cache:{md5(size:audio/mpeg:provider)}`` is looked up (even for an agent that disabled
   caching, as the legacy did): equal-sized recordings share one transcript, across agents (the
   legacy's collision bug, reproduced on purpose);
4. the audio is decoded (bad audio -> the typed input errors), transcribed, and on success cached
   for ``cache_ttl_hours`` when ``cache_enabled``. tiny.en is English-only: another explicit
   language fails with ``ProviderUnavailable`` at this step (a cache hit still answers, as the
   legacy's cache ignored the language too).

In the cache value ``provider_used`` is the legacy provider name the agent's settings list first
(what the real service wrote when that provider answered), or null when none is configured, so the
value stays valid for the legacy's own ``VoiceProcessingResult``; the engine that really ran is in
``metadata.engine``.

Text to speech: espeak-ng, encoded to the requested format (mp3 by default, the only thing the
legacy returned with its default settings), uploaded under ``.../{uuid4}.mp3`` as ``audio/mpeg``
whatever the format, exactly as the legacy stored any provider's output, with metadata
``custom-type=tts_output`` and ``custom-text_length``. No TTS cache is written (the legacy's
``tts_response_cache`` writer had no caller).

Calls without an agent or user id use ``default`` / ``anonymous``: the legacy always had both.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from voxshift.audio import CONTENT_TYPES, encode_speech, load_audio
from voxshift.config import Settings
from voxshift.core.language import guess_text_language
from voxshift.engines.base import TTSRequest
from voxshift.engines.espeak import EspeakTTS
from voxshift.engines.pool import InferencePool
from voxshift.errors import (
    InvalidRequest,
    PayloadTooLarge,
    ProviderError,
    ProviderUnavailable,
    StoreUnavailable,
    VoxshiftError,
)
from voxshift.legacy.base import (
    LegacySpeech,
    LegacyTranscript,
    begin_synthesis,
    elapsed_ms,
    language_code,
    voice_for_style,
)
from voxshift.legacy.reference_keys import (
    SETTINGS_TTL_S,
    UPLOAD_MIME,
    LegacyVoiceSettings,
    check_minio_metadata,
    detect_audio_format,
    object_extension,
    object_key,
    parse_voice_settings,
    processing_result,
    processing_result_value,
    settings_key,
    settings_value,
    stt_cache_key,
    upload_metadata,
)
from voxshift.legacy.tiny_whisper import MODEL_NAME, TinyWhisper
from voxshift.stores.objects import ObjectStorage
from voxshift.stores.state import StateStore

log = logging.getLogger("voxshift.legacy.reference")

STT_PROVIDER = "reference-whisper-tiny.en"
TTS_PROVIDER = "reference-espeak"
DEFAULT_AGENT_ID = "default"
DEFAULT_USER_ID = "anonymous"
DEFAULT_FILENAME = "audio"  # upload_audio_file's own default: no extension unless the bytes tell one
MAX_AUDIO_SECONDS = 600.0  # the legacy had no duration limit of its own; OpenAI's 25 MB bounded it


def _utcnow() -> datetime:
    """Naive UTC, as ``datetime.utcnow()`` gave the legacy (its ``upload-time`` has no offset)."""
    return datetime.now(UTC).replace(tzinfo=None)


class ReferenceLegacyBackend:
    name = "legacy:reference"

    def __init__(
        self,
        state: StateStore,
        objects: ObjectStorage,
        pool: InferencePool,
        *,
        espeak_binary: str = "espeak-ng",
        whisper_dir: Path | None = None,
        owns_pool: bool = False,
        read_only: Callable[[], bool] | None = None,
    ) -> None:
        """``owns_pool``: the pool is this backend's own (shut down by ``aclose``), not shared."""
        # ``state`` must be the raw store: the legacy's keys have no namespace.
        self._state = state
        self._objects = objects
        self._pool = pool
        self._owns_pool = owns_pool
        # The sunset's read_only phase: answer as before, write nothing (no cache entry, no settings
        # cache, no object). Late-bound: the runtime wires it to the live flags after building both.
        self.read_only: Callable[[], bool] = read_only or (lambda: False)
        self.skipped_writes = 0
        self._whisper = TinyWhisper(pool, whisper_dir, provider=self.name)
        # model_construct: only espeak_binary matters to the engine, and building a full Settings
        # would read the environment, which is the caller's business, not this adapter's.
        self._espeak = EspeakTTS(Settings.model_construct(espeak_binary=espeak_binary), pool)

    @property
    def pool(self) -> InferencePool:
        return self._pool

    @property
    def bucket(self) -> str:
        return self._objects.bucket

    async def load(self) -> None:
        """Load tiny.en now (it loads on the first transcription otherwise)."""
        await self._whisper.load()

    # --- per-agent settings ---------------------------------------------------------------------
    async def agent_settings(self, agent_id: str) -> LegacyVoiceSettings:
        """The agent's cached legacy settings, or the legacy defaults when absent or unreadable."""
        try:
            raw = await self._state.get(settings_key(agent_id))
        except (StoreUnavailable, ValueError) as exc:
            log.warning("reading voice settings of %r failed, using the defaults: %s", agent_id, exc)
            return LegacyVoiceSettings()
        if raw is None:
            return LegacyVoiceSettings()
        try:
            return parse_voice_settings(json.loads(raw.decode("utf-8")))
        except (UnicodeDecodeError, ValueError) as exc:
            log.warning("voice settings of %r are unusable, using the defaults: %s", agent_id, exc)
            return LegacyVoiceSettings()

    async def put_agent_settings(self, agent_id: str, settings: Mapping[str, Any]) -> None:
        """What the legacy agent runner does: ``setex agent_voice_settings:{id} 3600 json.dumps(raw)``.

        The raw dict is stored as given (no defaults filled in); like the runner, it must first pass
        the schema's checks on the fields the voice path reads (``InvalidRequest`` otherwise).
        """
        if not agent_id:
            raise InvalidRequest("agent_id must not be empty", param="agent_id")
        try:
            parse_voice_settings(settings)
            value = settings_value(settings)
        except (TypeError, ValueError) as exc:
            raise InvalidRequest(f"voice settings: {exc}", param="settings") from None
        if self.read_only():
            self.skipped_writes += 1
            return
        await self._state.set(settings_key(agent_id), value, ttl_s=SETTINGS_TTL_S)

    # --- speech to text -------------------------------------------------------------------------
    async def transcribe(
        self,
        audio: bytes,
        language: str = "auto",
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        filename: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> LegacyTranscript:
        start = time.perf_counter()
        code = language_code(language)
        agent, user = agent_id or DEFAULT_AGENT_ID, user_id or DEFAULT_USER_ID
        settings = await self.agent_settings(agent)
        if len(audio) > settings.max_file_bytes:
            raise PayloadTooLarge(
                f"the audio file is {len(audio)} bytes; the agent's limit is {settings.max_file_size_mb} MB",
                param="file",
            )
        original = filename or DEFAULT_FILENAME
        audio_format = detect_audio_format(audio, original)
        now = _utcnow()
        key = object_key(agent, user, now, uuid.uuid4(), object_extension(audio_format, original))
        await self._upload(key, audio, upload_metadata(agent, user, original, now, {"type": "voice_input"}))

        cache_key = stt_cache_key(len(audio), UPLOAD_MIME, settings.first_provider)
        cached = await self._cached(cache_key)
        if cached is not None:
            meta = cached.get("metadata")
            cached_language = meta.get("language") if isinstance(meta, dict) else None
            return LegacyTranscript(
                text=cached["text"],
                language=cached_language if isinstance(cached_language, str) else None,
                confidence=None,
                provider_used=STT_PROVIDER,
                processing_time_ms=elapsed_ms(start),
                duration_seconds=None,
                cached=True,
            )

        decoded = await self._pool.run(
            load_audio,
            audio,
            max_bytes=settings.max_file_bytes,
            max_seconds=MAX_AUDIO_SECONDS,
            filename=original,
        )
        if code not in (None, "en"):
            raise ProviderUnavailable(
                self.name, f"Whisper {MODEL_NAME} transcribes English only; cannot transcribe {code!r}"
            )
        engine_start = time.perf_counter()
        transcript = await self._whisper.transcribe(decoded.samples)
        engine_s = time.perf_counter() - engine_start
        if settings.cache_enabled:
            metadata = {
                "model": MODEL_NAME,
                "language": transcript.language,
                "file_size": len(audio),
                "file_format": audio_format,
                "text_length": len(transcript.text),
                "engine": STT_PROVIDER,
            }
            provider = settings.first_provider if settings.first_provider != "none" else None
            result = processing_result(
                success=True,
                text=transcript.text,
                provider_used=provider,
                processing_time=engine_s,
                metadata=metadata,
            )
            await self._cache_put(cache_key, processing_result_value(result), settings.cache_ttl_s)
        return LegacyTranscript(
            text=transcript.text,
            language=transcript.language,
            confidence=transcript.confidence,
            provider_used=STT_PROVIDER,
            processing_time_ms=elapsed_ms(start),
            duration_seconds=decoded.duration_s,
        )

    async def _cached(self, key: str) -> dict[str, Any] | None:
        # The legacy logged and carried on when its cache could not be read: a miss, not a failure.
        try:
            raw = await self._state.get(key)
        except (StoreUnavailable, ValueError) as exc:
            log.warning("STT cache read failed, treating it as a miss: %s", exc)
            return None
        if raw is None:
            return None
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            log.warning("STT cache entry %s is not JSON; ignoring it", key)
            return None
        if not isinstance(data, dict) or not isinstance(data.get("text"), str):
            return None
        return data

    async def _cache_put(self, key: str, value: bytes, ttl_s: int) -> None:
        if self.read_only():
            self.skipped_writes += 1
            return
        try:
            await self._state.set(key, value, ttl_s=ttl_s)
        except (StoreUnavailable, ValueError) as exc:
            log.warning("STT cache write failed: %s", exc)

    # --- text to speech -------------------------------------------------------------------------
    async def synthesize(
        self,
        text: str,
        language: str = "ru",
        voice_style: str = "natural",
        *,
        format: str = "mp3",
        user_id: str | None = None,
        agent_id: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> LegacySpeech:
        start, code = begin_synthesis(text, format, language)
        code = code or guess_text_language(text)
        agent, user = agent_id or DEFAULT_AGENT_ID, user_id or DEFAULT_USER_ID
        try:
            speech = await self._espeak.synthesize(TTSRequest(text, code, voice_for_style(voice_style, None)))
        except ProviderError as exc:
            raise type(exc)(self.name, exc.message, retryable=exc.retryable) from exc
        audio = await self._pool.run_follow_up(encode_speech, speech, format)
        now = _utcnow()
        original = f"response_{int(time.time())}.mp3"
        key = object_key(agent, user, now, uuid.uuid4(), object_extension(None, original))
        extra = {"type": "tts_output", "text_length": len(text)}
        stored = await self._upload(key, audio, upload_metadata(agent, user, original, now, extra))
        return LegacySpeech(
            audio=audio,
            format=format,
            content_type=CONTENT_TYPES[format],
            provider_used=TTS_PROVIDER,
            processing_time_ms=elapsed_ms(start),
            duration_seconds=speech.duration_s,
            object_key=key if stored else None,
        )

    # --- storage --------------------------------------------------------------------------------
    async def _upload(self, key: str, data: bytes, metadata: dict[str, str]) -> bool:
        """Store the object; False when read-only (nothing stored)."""
        where = f"upload to bucket {self.bucket}"
        try:
            check_minio_metadata(metadata)
        except ValueError as exc:
            # The legacy's own failure, reproduced: the request fails and nothing is stored.
            raise ProviderError(self.name, f"{where} failed: ValueError: {exc}", retryable=False) from None
        if self.read_only():
            self.skipped_writes += 1
            return False
        try:
            await self._objects.put(key, data, UPLOAD_MIME, metadata)
        except StoreUnavailable as exc:
            raise ProviderUnavailable(self.name, f"{where} failed: {exc.message}") from exc
        except VoxshiftError as exc:  # a key or metadata the store refuses
            raise ProviderError(self.name, f"{where} failed: {exc.message}", retryable=False) from exc
        return True

    # --- lifecycle ------------------------------------------------------------------------------
    async def info(self) -> dict[str, Any]:
        reasons: list[str] = []
        whisper_reason = self._whisper.availability()
        if whisper_reason is not None:
            reasons.append(whisper_reason)
        # Listing espeak-ng's voices runs a process (once per process): not on the event loop.
        espeak = await asyncio.to_thread(self._espeak.info)
        if not espeak.availability.available:
            reasons.append(f"espeak-ng: {espeak.availability.reason}")
        for what, ping in (("state store", self._state.ping), ("object store", self._objects.ping)):
            try:
                await ping()
            except VoxshiftError as exc:
                reasons.append(f"{what}: {exc.message}")
        return {
            "name": self.name,
            "available": not reasons,
            "reason": "; ".join(reasons) or None,
            "stt_engine": STT_PROVIDER,
            "tts_engine": TTS_PROVIDER,
            "whisper_loaded": self._whisper.loaded,
            "bucket": self.bucket,
            "state": self._state.url.split(":", 1)[0],  # the kind only: never a path or a password
        }

    async def aclose(self) -> None:
        """The stores belong to the caller, and the model stays in the process-wide cache for the
        next backend built on it; only a pool of its own is shut down."""
        if self._owns_pool:
            self._pool.shutdown()
