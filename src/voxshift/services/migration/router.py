"""MigrationRouter (seed M2.2): every voice request goes to voice_v2 or to the legacy service.

The flag decision is made in-process. A v2 request that fails, or runs past its time budget, falls
back to legacy and the fallback is recorded; that holds for TTS too (the seed left TTS fallback as
``pass``). When both fail, one typed error carries both causes. Bad input is not a v2 failure: it is
answered with the 4xx at once, since legacy would refuse it as well. Metrics recording is in-process
and never fails or slows a request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Generic, Literal, Protocol, TypeVar

from voxshift.audio.formats import CONTENT_TYPES
from voxshift.core.flags import Decision, FeatureName, Operation
from voxshift.engines.base import Segment, Task
from voxshift.errors import InvalidRequest, MigrationFailed, Overloaded, describe_error
from voxshift.legacy.base import LegacySpeech, LegacyTranscript, LegacyVoiceBackend
from voxshift.services.voice.results import CacheStatus, SynthesisResult, TranscriptionResult
from voxshift.services.voice.service import VoiceV2Service, context_agent

log = logging.getLogger("voxshift.router")

System = Literal["voice_v2", "legacy"]
R = TypeVar("R")


class FlagDecider(Protocol):
    """FeatureFlags: a synchronous, in-process decision per request."""

    def decide(self, operation: Operation, user_id: str | None, agent_id: str | None = None) -> Decision: ...


class MetricsRecorder(Protocol):
    """What the router tells the metrics; every call is synchronous, cheap and never raises."""

    def record_operation(
        self,
        operation: str,
        system: str,
        duration_ms: float,
        success: bool,
        *,
        provider: str | None = None,
        error_type: str | None = None,
    ) -> None: ...

    def record_fallback(self, operation: str, from_system: str, to_system: str, reason: str) -> None: ...

    def record_total_failure(self, operation: str) -> None: ...

    def record_decision(self, operation: str, system: str, reason: str) -> None: ...

    def record_cache(self, operation: str, hit: bool) -> None: ...


class ShadowSubmitter(Protocol):
    def maybe_submit(
        self,
        audio: bytes,
        *,
        language: str,
        legacy_text: str,
        legacy_ms: float,
        filename: str | None,
    ) -> bool: ...


@dataclass(frozen=True)
class Routed(Generic[R]):
    """A result plus how it was obtained: which system answered, and whether v2 fell back."""

    result: R
    system_used: System
    fallback: bool
    decision_reason: str
    fallback_reason: str | None = None

    def headers(self) -> dict[str, str]:
        return {"X-Voxshift-System": self.system_used, "X-Voxshift-Fallback": str(self.fallback).lower()}

    def routing(self) -> dict[str, Any]:
        return {
            "system_used": self.system_used,
            "fallback": self.fallback,
            "decision_reason": self.decision_reason,
            **({"fallback_reason": self.fallback_reason} if self.fallback_reason else {}),
        }


class MigrationRouter:
    def __init__(
        self,
        v2: VoiceV2Service,
        legacy: LegacyVoiceBackend,
        flags: FlagDecider,
        metrics: MetricsRecorder,
        *,
        v2_budget_s: float,
        shadow: ShadowSubmitter | None = None,
    ) -> None:
        self.v2 = v2
        self.legacy = legacy
        self.flags = flags
        self.metrics = metrics
        self.v2_budget_s = v2_budget_s
        self.shadow = shadow

    async def transcribe_audio(
        self,
        audio_data: bytes,
        language: str = "auto",
        user_id: str | None = None,
        context: Mapping[str, Any] | None = None,
        *,
        agent_id: str | None = None,
        filename: str | None = None,
        prompt: str | None = None,
        temperature: float = 0.0,
        word_timestamps: bool = False,
        task: Task = "transcribe",
        requires: FeatureName | None = None,
    ) -> Routed[TranscriptionResult]:
        agent_id = agent_id or context_agent(context)
        # A language no recogniser knows is the caller's mistake on either system: 400 at once.
        self.v2.validate_stt_language(language)

        async def via_v2() -> TranscriptionResult:
            return await self.v2.transcribe(
                audio_data,
                language=language,
                user_id=user_id,
                context=context,
                prompt=prompt,
                temperature=temperature,
                word_timestamps=word_timestamps,
                task=task,
                filename=filename,
                agent_id=agent_id,
            )

        async def via_legacy() -> TranscriptionResult:
            if task == "translate":
                raise InvalidRequest("the legacy voice service cannot translate", param="task")
            transcript = await self.legacy.transcribe(
                audio_data, language, user_id=user_id, agent_id=agent_id, filename=filename, context=context
            )
            return _from_legacy_transcript(transcript, language)

        routed = await self._route(
            "stt", user_id, agent_id, via_v2, via_legacy, lambda r: r.provider_used, requires
        )
        if routed.system_used == "voice_v2":
            self._record_cache("stt", routed.result.cache)
        if routed.system_used == "legacy" and not routed.fallback and self.shadow is not None:
            self.shadow.maybe_submit(
                audio_data,
                language=language,
                legacy_text=routed.result.text,
                legacy_ms=routed.result.processing_time_ms,
                filename=filename,
            )
        return routed

    async def synthesize_speech(
        self,
        text: str,
        language: str | None = "ru",
        voice_style: str = "natural",
        user_id: str | None = None,
        context: Mapping[str, Any] | None = None,
        *,
        agent_id: str | None = None,
        format: str = "mp3",
        voice: str | None = None,
        speed: float = 1.0,
        store: bool = False,
        requires: FeatureName | None = None,
    ) -> Routed[SynthesisResult]:
        agent_id = agent_id or context_agent(context)
        # Bad input is a 400 whichever system would have answered it.
        text, language = self.v2.validate_speech_request(text, language, format, speed, voice, voice_style)

        async def via_v2() -> SynthesisResult:
            return await self.v2.synthesize(
                text,
                language=language,
                voice_style=voice_style,
                format=format,
                voice=voice,
                speed=speed,
                user_id=user_id,
                agent_id=agent_id,
                store=store,
            )

        async def via_legacy() -> SynthesisResult:
            speech = await self.legacy.synthesize(
                text,
                language,
                voice_style,
                format=format,
                user_id=user_id,
                agent_id=agent_id,
                context=context,
            )
            return _from_legacy_speech(speech, language)

        routed = await self._route(
            "tts", user_id, agent_id, via_v2, via_legacy, lambda r: r.provider_used, requires
        )
        if routed.system_used == "voice_v2":
            self._record_cache("tts", routed.result.cache)
        elif store:
            # URL delivery whichever system answered: the legacy's bucket is not ours to sign, so
            # its audio is kept where v2's are (after the timing: storing is not the legacy's cost).
            kept = await self.v2.keep(routed.result, agent_id=agent_id, user_id=user_id, text=text)
            routed = replace(routed, result=kept)
        return routed

    def _legacy_retired(self) -> bool:
        # FeatureFlags carries the sunset's switch in its live config; a bare decider has none.
        config = getattr(self.flags, "config", None)
        return bool(getattr(config, "legacy_retired", False))

    def _feature_on(self, feature: FeatureName) -> bool:
        # A bare decider carries no features: off, the safe direction (legacy).
        config = getattr(self.flags, "config", None)
        return bool(config is not None and config.feature(feature))

    def _record_cache(self, operation: Operation, status: CacheStatus) -> None:
        # The cache_hit_rate criterion asks how often a lookup answered. "disabled" made no lookup
        # (caching off for the request), so it is not counted; "coalesced" looked, missed and shared
        # another request's work, and "unavailable" could not look (the cache backend was down):
        # both are lookups the cache did not answer, so they count as misses.
        if status != "disabled":
            self.metrics.record_cache(operation, status == "hit")

    async def _route(
        self,
        operation: Operation,
        user_id: str | None,
        agent_id: str | None,
        via_v2: Callable[[], Awaitable[R]],
        via_legacy: Callable[[], Awaitable[R]],
        provider_of: Callable[[R], str],
        requires: FeatureName | None = None,
    ) -> Routed[R]:
        decision = self.flags.decide(operation, user_id, agent_id)
        if decision.use_v2 and requires is not None and not self._feature_on(requires):
            # A client that needs its own feature (LangGraph tools: langgraph_integration) stays on
            # legacy until that feature is on, whatever the user's cohort.
            decision = Decision(False, "feature_disabled", None)
        system: System = "voice_v2" if decision.use_v2 else "legacy"
        self.metrics.record_decision(operation, system, decision.reason)
        if not decision.use_v2:
            result = await self._timed(operation, "legacy", via_legacy, provider_of, budget_s=None)
            return Routed(result, "legacy", False, decision.reason)
        try:
            result = await self._timed(operation, "voice_v2", via_v2, provider_of, budget_s=self.v2_budget_s)
            return Routed(result, "voice_v2", False, decision.reason)
        except InvalidRequest:
            raise  # the caller's input: legacy would refuse it too
        except Exception as v2_error:
            if self._legacy_retired():
                raise  # the sunset removed the legacy: there is nothing to fall back to
            reason = _fallback_reason(v2_error)
            log.warning(
                "%s: voice_v2 failed (%s), falling back to legacy", operation, describe_error(v2_error)
            )
            try:
                result = await self._timed(operation, "legacy", via_legacy, provider_of, budget_s=None)
            except InvalidRequest:
                raise
            except Exception as legacy_error:
                self.metrics.record_total_failure(operation)
                raise MigrationFailed(operation, v2_error, legacy_error) from legacy_error
            self.metrics.record_fallback(operation, "voice_v2", "legacy", reason)
            return Routed(result, "legacy", True, decision.reason, reason)

    async def _timed(
        self,
        operation: str,
        system: System,
        call: Callable[[], Awaitable[R]],
        provider_of: Callable[[R], str],
        *,
        budget_s: float | None,
    ) -> R:
        started = time.perf_counter()
        try:
            if budget_s is None:
                result = await call()
            else:
                # asyncio.timeout, not wait_for: no extra task per request on the hot path.
                async with asyncio.timeout(budget_s):
                    result = await call()
        except InvalidRequest:
            raise  # bad input is neither system's failure: not counted against its error rate
        except BaseException as exc:
            if isinstance(exc, Exception):
                self.metrics.record_operation(
                    operation,
                    system,
                    (time.perf_counter() - started) * 1000,
                    False,
                    error_type=type(exc).__name__,
                )
            raise
        self.metrics.record_operation(
            operation, system, (time.perf_counter() - started) * 1000, True, provider=provider_of(result)
        )
        return result


def _fallback_reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, Overloaded):
        return "overloaded"
    code = getattr(exc, "code", None)
    return str(code) if code else "error"


def _from_legacy_transcript(transcript: LegacyTranscript, requested_language: str) -> TranscriptionResult:
    duration = transcript.duration_seconds or 0.0
    language = transcript.language or (requested_language if requested_language != "auto" else "unknown")
    # The legacy returns text only: one segment spanning the clip keeps srt/vtt output meaningful.
    segments = (Segment(0, 0.0, duration, transcript.text, 0.0, 0.0),) if transcript.text else ()
    return TranscriptionResult(
        text=transcript.text,
        confidence=transcript.confidence,
        detected_language=language,
        language_probability=None,
        provider_used=transcript.provider_used,
        processing_time_ms=transcript.processing_time_ms,
        duration_seconds=duration,
        segments=segments,
        cache="hit" if transcript.cached else "disabled",
    )


def _from_legacy_speech(speech: LegacySpeech, language: str) -> SynthesisResult:
    return SynthesisResult(
        audio=speech.audio,
        format=speech.format,
        content_type=speech.content_type or CONTENT_TYPES.get(speech.format, "application/octet-stream"),
        duration_seconds=speech.duration_seconds or 0.0,
        provider_used=speech.provider_used,
        processing_time_ms=speech.processing_time_ms,
        language=language,
        object_key=None,  # the legacy bucket is not served by v2's signed URLs
    )
