"""VoiceV2Service: the seed's voice_v2 facade (section 4.1), transcribe and synthesize.

Validates input once, answers from the cache when caching is on for the request, otherwise runs the
operation's provider chain (identical concurrent requests share one computation), and returns a
result that says which provider answered, how long it took, whether the cache answered and every
attempt made on the way.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from voxshift.audio import CONTENT_TYPES, OUTPUT_FORMATS, encode_speech, load_audio
from voxshift.config import Settings
from voxshift.core.cache_keys import SttCacheKey, TtsCacheKey, chain_signature, sha256_hex
from voxshift.core.language import checked_language, guess_text_language, stt_language, tts_language
from voxshift.core.speech_text import SpeechTextError, clean_speech_text
from voxshift.core.voices import OPENAI_VOICES, VOICE_STYLES
from voxshift.engines.base import AudioInput, STTRequest, Task, TTSRequest
from voxshift.engines.whisper import WhisperSTT
from voxshift.errors import EmptyInput, InvalidRequest, PayloadTooLarge, TextTooLong
from voxshift.services.voice.cache import FORMAT_EXTENSIONS, StoredAudio, VoiceCache
from voxshift.services.voice.results import CacheStatus, SynthesisResult, TranscriptionResult
from voxshift.services.voice.singleflight import SingleFlight
from voxshift.services.wiring.engines import EngineSet

__all__ = ["SynthesisResult", "TranscriptionResult", "VoiceV2Service"]


class AgentCacheSettings(Protocol):
    """The two per-agent settings the caches obey (the legacy VoiceSettings carries both)."""

    @property
    def cache_enabled(self) -> bool: ...

    @property
    def cache_ttl_hours(self) -> int: ...


AgentSettingsLookup = Callable[[str], Awaitable[AgentCacheSettings | None]]
# Whether caching is on right now: the live ``caching_enabled`` feature flag (FeatureFlags follows
# changes made by other processes), read on every request.
CachingSwitch = Callable[[], bool]


@dataclass(frozen=True)
class CachePolicy:
    enabled: bool
    stt_ttl_s: float
    tts_ttl_s: float


class VoiceV2Service:
    def __init__(
        self,
        engines: EngineSet,
        cache: VoiceCache | None = None,
        agent_settings: AgentSettingsLookup | None = None,
        settings: Settings | None = None,
        caching: CachingSwitch | None = None,
    ) -> None:
        self.engines = engines
        self.settings = settings or engines.settings
        self.cache = cache
        self.agent_settings = agent_settings
        self.caching = caching
        self._voices: set[str] | None = None
        self._stt_flight: SingleFlight[TranscriptionResult] = SingleFlight()
        self._tts_flight: SingleFlight[SynthesisResult] = SingleFlight()

    @property
    def ready(self) -> bool:
        return self.engines.loaded

    def validate_audio(self, audio: bytes, filename: str | None = None) -> AudioInput:
        return load_audio(
            audio,
            max_bytes=self.settings.max_upload_bytes,
            max_seconds=self.settings.max_audio_seconds,
            filename=filename,
        )

    def check_upload_size(self, size: int) -> None:
        if size > self.settings.max_upload_bytes:
            raise PayloadTooLarge(
                f"file is larger than the {self.settings.max_upload_mb:g} MB limit", param="file"
            )

    @property
    def caching_enabled(self) -> bool:
        """The caching_enabled feature now: the live flag when one is wired (so `voxshift flags set
        --feature caching=true` takes effect within the flags' propagation), else the start-up
        VOICE_V2_FEATURES value."""
        if self.caching is None:
            return self.settings.voice_v2_features.caching_enabled
        return self.caching()

    async def cache_policy(self, agent_id: str | None) -> CachePolicy:
        """Caching is on when the caching_enabled feature is (:attr:`caching_enabled`) and the
        agent's settings allow it."""
        settings = self.settings
        on = self.cache is not None and self.caching_enabled
        stt_ttl = float(settings.stt_cache_ttl_s)
        if on and agent_id and self.agent_settings is not None:
            agent = await self.agent_settings(agent_id)
            if agent is not None:
                on = agent.cache_enabled
                # The legacy service kept STT results for the agent's cache_ttl_hours; keep honouring it.
                stt_ttl = agent.cache_ttl_hours * 3600.0
        return CachePolicy(on, stt_ttl, float(settings.tts_cache_ttl_s))

    async def transcribe(
        self,
        audio: bytes | AudioInput,
        language: str = "auto",
        user_id: str | None = None,
        context: Mapping[str, Any] | None = None,
        *,
        prompt: str | None = None,
        temperature: float = 0.0,
        word_timestamps: bool = False,
        task: Task = "transcribe",
        filename: str | None = None,
        agent_id: str | None = None,
        use_cache: bool = True,
    ) -> TranscriptionResult:
        """``use_cache=False`` computes even when caching is on (shadow runs measure v2 itself)."""
        started = time.perf_counter()
        lang = checked_language(stt_language, language)
        if not 0.0 <= temperature <= 1.0:
            raise InvalidRequest("temperature must be between 0 and 1", param="temperature")
        agent_id = agent_id or context_agent(context)
        cache = self.cache
        # The policy may read the agent's settings: only worth it when the cache could be used.
        policy = await self.cache_policy(agent_id) if use_cache and cache is not None else None
        if cache is None or policy is None or not policy.enabled:
            result = await self._transcribe(audio, lang, prompt, temperature, word_timestamps, task, filename)
            return replace(result, processing_time_ms=_ms_since(started))
        raw = audio.data if isinstance(audio, AudioInput) else audio
        self.check_upload_size(len(raw))  # before hashing it; decoding checks again on a miss
        key = SttCacheKey(
            providers=chain_signature(self.engines.stt_chain.names),
            language=lang,
            audio_sha256=sha256_hex(raw),
            task=task,
            word_timestamps=word_timestamps,
            prompt=prompt or None,
            temperature=temperature,
        )
        state_up = cache.state_dependency.up
        hit = await cache.get_transcript(key)
        if hit is not None and hit.get("duration_seconds", 0) <= self.settings.max_audio_seconds:
            cache.stats.count("stt", "hit")
            return TranscriptionResult.from_cache(hit, processing_time_ms=_ms_since(started))

        async def compute() -> TranscriptionResult:
            result = await self._transcribe(audio, lang, prompt, temperature, word_timestamps, task, filename)
            await cache.put_transcript(key, result.to_cache(), policy.stt_ttl_s)
            return result

        result, shared = await self._stt_flight.run(key.render(), compute)
        status: CacheStatus = "coalesced" if shared else _miss(state_up and cache.state_dependency.up)
        cache.stats.count("stt", status)
        return replace(result, cache=status, processing_time_ms=_ms_since(started))

    async def _transcribe(
        self,
        audio: bytes | AudioInput,
        lang: str | None,
        prompt: str | None,
        temperature: float,
        word_timestamps: bool,
        task: Task,
        filename: str | None,
    ) -> TranscriptionResult:
        started = time.perf_counter()
        first = self.engines.stt_chain.providers[0] if self.engines.stt_chain.providers else None
        if isinstance(first, WhisperSTT) and not isinstance(audio, AudioInput):
            first.ensure_room()  # a 503 now, not after decoding an upload nobody will transcribe
        # Decoding a long upload takes tens of milliseconds or more: never on the event loop.
        clip = (
            audio
            if isinstance(audio, AudioInput)
            else await asyncio.to_thread(self.validate_audio, audio, filename)
        )
        request = STTRequest(
            audio=clip,
            language=lang,
            task=task,
            prompt=prompt or None,
            temperature=temperature,
            word_timestamps=word_timestamps,
        )
        outcome = await self.engines.stt_chain.run(lambda p: p.transcribe(request))
        transcript = outcome.value
        return TranscriptionResult(
            text=transcript.text,
            confidence=transcript.confidence,
            detected_language=transcript.language,
            language_probability=transcript.language_probability,
            provider_used=outcome.provider,
            processing_time_ms=_ms_since(started),
            duration_seconds=clip.duration_s,
            segments=transcript.segments,
            attempts=tuple(outcome.attempts),
            task=task,
        )

    def validate_stt_language(self, language: str | None) -> str | None:
        return checked_language(stt_language, language)

    def known_voices(self) -> set[str]:
        if self._voices is None:
            voices = set(OPENAI_VOICES)
            for info in self.engines.infos():
                if info.kind == "tts":
                    voices.update(info.voices)
            self._voices = voices
        return self._voices

    def validate_text(self, text: str) -> str:
        """The text to speak: control characters blanked; 400 for empty, too long or not Unicode."""
        limit = self.settings.max_text_chars
        if len(text) > limit:
            raise TextTooLong(f"text has {len(text)} characters; the limit is {limit}", param="input")
        try:
            text = clean_speech_text(text)
        except SpeechTextError as exc:
            raise InvalidRequest(str(exc), param="input") from None
        if not text.strip():
            raise EmptyInput("text is empty: give at least one character to speak", param="input")
        return text

    def validate_speech_request(
        self,
        text: str,
        language: str | None,
        format: str,
        speed: float,
        voice: str | None,
        voice_style: str = "natural",
    ) -> tuple[str, str]:
        """Check a TTS request (whichever system will answer it); returns its text (control
        characters blanked) and its language."""
        text = self.validate_text(text)
        if format not in OUTPUT_FORMATS:
            raise InvalidRequest(
                f"format {format!r} is not supported; use one of {', '.join(OUTPUT_FORMATS)}",
                param="response_format",
            )
        if not 0.25 <= speed <= 4.0:
            raise InvalidRequest("speed must be between 0.25 and 4.0", param="speed")
        lang = checked_language(tts_language, language) or guess_text_language(text)
        if voice is not None and voice not in self.known_voices():
            raise InvalidRequest(
                f"voice {voice!r} is unknown; use one of {', '.join(sorted(self.known_voices()))}",
                param="voice",
            )
        _style_voice(voice_style)
        return text, lang

    async def synthesize(
        self,
        text: str,
        language: str | None = "ru",
        voice_style: str = "natural",
        format: str = "mp3",
        *,
        voice: str | None = None,
        speed: float = 1.0,
        user_id: str | None = None,
        agent_id: str | None = None,
        store: bool = False,
    ) -> SynthesisResult:
        """``store=True`` keeps the audio in the v2 bucket (for URL delivery) even with caching off."""
        started = time.perf_counter()
        text, lang = self.validate_speech_request(text, language, format, speed, voice, voice_style)
        chosen_voice = voice if voice is not None else _style_voice(voice_style)
        request = TTSRequest(text=text, language=lang, voice=chosen_voice, speed=speed)
        policy = await self.cache_policy(agent_id)
        cache = self.cache
        if cache is None or not (policy.enabled or store):
            result = await self._synthesize(request, format)
            return replace(result, processing_time_ms=_ms_since(started))
        key = TtsCacheKey(
            providers=chain_signature(self.engines.tts_chain_for(lang).names),
            language=lang,
            voice=chosen_voice,
            format=format,
            text_sha256=sha256_hex(text),
            speed=speed,
        )
        if policy.enabled:
            hit = await cache.get_speech(key)
            if hit is not None:
                ref, audio = hit
                cache.stats.count("tts", "hit")
                return SynthesisResult(
                    audio=audio,
                    format=ref.format,
                    content_type=ref.content_type,
                    duration_seconds=ref.duration_seconds,
                    provider_used=ref.provider_used,
                    processing_time_ms=_ms_since(started),
                    language=ref.language,
                    cache="hit",
                    object_key=ref.object_key,
                )
        healthy = cache.state_dependency.up and cache.objects_dependency.up

        async def compute() -> SynthesisResult:
            result = await self._synthesize(request, format)
            object_key = await cache.store_audio(
                result.audio,
                format=format,
                content_type=result.content_type,
                sha256=sha256_hex(result.audio),
                agent_id=agent_id,
                metadata=_object_metadata(agent_id, user_id, format, result.duration_seconds, text),
            )
            if object_key is not None and policy.enabled:
                ref = StoredAudio(
                    object_key=object_key,
                    format=format,
                    content_type=result.content_type,
                    size_bytes=len(result.audio),
                    duration_seconds=result.duration_seconds,
                    provider_used=result.provider_used,
                    language=lang,
                )
                await cache.put_speech(key, ref, policy.tts_ttl_s)
            return replace(result, object_key=object_key)

        flight_key = f"{key.render()}:{agent_id or '_'}"  # the object key carries the agent
        result, shared = await self._tts_flight.run(flight_key, compute)
        if not policy.enabled:
            status: CacheStatus = "disabled"
        else:
            status = "coalesced" if shared else _miss(healthy and result.object_key is not None)
            cache.stats.count("tts", status)
        return replace(result, cache=status, processing_time_ms=_ms_since(started))

    async def _synthesize(self, request: TTSRequest, format: str) -> SynthesisResult:
        started = time.perf_counter()
        outcome = await self.engines.tts_chain_for(request.language).run(lambda p: p.synthesize(request))
        speech = outcome.value
        audio = await self.engines.pool.run_follow_up(encode_speech, speech, format)
        return SynthesisResult(
            audio=audio,
            format=format,
            content_type=CONTENT_TYPES[format],
            duration_seconds=speech.duration_s,
            provider_used=outcome.provider,
            processing_time_ms=_ms_since(started),
            language=request.language,
            attempts=tuple(outcome.attempts),
        )

    async def keep(
        self, result: SynthesisResult, *, agent_id: str | None, user_id: str | None, text: str
    ) -> SynthesisResult:
        """Store audio another system made (the legacy's) where v2 signs URLs, for URL delivery;
        unchanged when storage is down or the format is not one v2 stores."""
        if self.cache is None or result.object_key is not None or result.format not in FORMAT_EXTENSIONS:
            return result
        meta = _object_metadata(agent_id, user_id, result.format, result.duration_seconds, text)
        object_key = await self.cache.store_audio(
            result.audio,
            format=result.format,
            content_type=result.content_type,
            sha256=sha256_hex(result.audio),
            agent_id=agent_id,
            metadata=meta | {"system": "legacy"},
        )
        return replace(result, object_key=object_key)

    async def signed_url(self, object_key: str) -> str | None:
        """A signed, expiring URL of a stored object; None when object storage is unavailable."""
        if self.cache is None:
            return None
        return await self.cache.signed_url(object_key, self.settings.signed_url_ttl_s)


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _miss(stored: bool) -> CacheStatus:
    return "miss" if stored else "unavailable"


def context_agent(context: Mapping[str, Any] | None) -> str | None:
    """The agent a seed-style ``context`` dict names, if any."""
    value = (context or {}).get("agent_id")
    return str(value) if value else None


def _object_metadata(
    agent_id: str | None, user_id: str | None, format: str, duration: float, text: str
) -> dict[str, str]:
    meta = {
        "agent-id": agent_id or "",
        "user-id": user_id or "",
        "format": format,
        "duration-seconds": f"{duration:.3f}",
        "kind": "tts_output",
        "text-length": str(len(text)),
        "created-at": datetime.now(UTC).isoformat(),
    }
    return {k: v for k, v in meta.items() if v}


def _style_voice(style: str) -> str | None:
    if style in VOICE_STYLES:
        return VOICE_STYLES[style]
    if style in OPENAI_VOICES:
        return style
    raise InvalidRequest(
        f"voice_style {style!r} is unknown; use one of {', '.join([*VOICE_STYLES, *OPENAI_VOICES])}",
        param="voice_style",
    )
