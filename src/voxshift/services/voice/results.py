"""What the v2 facade returns (seed 4.1 shapes), and how a transcript is kept in the cache."""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from voxshift.engines.base import Segment, Task, Word
from voxshift.engines.chain import Attempt

# hit: answered from the cache; miss: computed and (when possible) stored; coalesced: an identical
# request in flight computed it; disabled: caching is off for this request; unavailable: the cache
# backend is down, computed without it.
CacheStatus = Literal["hit", "miss", "coalesced", "disabled", "unavailable"]


@dataclass(frozen=True)
class TranscriptionResult:
    text: str
    confidence: float | None  # None: the system that answered reports none (the legacy service)
    detected_language: str
    language_probability: float | None
    provider_used: str
    processing_time_ms: float
    duration_seconds: float
    segments: tuple[Segment, ...]
    attempts: tuple[Attempt, ...] = ()
    task: Task = "transcribe"
    cache: CacheStatus = "disabled"

    @property
    def cached(self) -> bool:
        return self.cache == "hit"

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "confidence": _round(self.confidence, 4),
            "detected_language": self.detected_language,
            "language_probability": _round(self.language_probability, 4),
            "provider_used": self.provider_used,
            "processing_time_ms": round(self.processing_time_ms, 1),
            "duration_seconds": round(self.duration_seconds, 3),
            "cached": self.cached,
            "cache": self.cache,
            "segments": [
                {
                    "id": s.id,
                    "start": round(s.start, 3),
                    "end": round(s.end, 3),
                    "text": s.text,
                    **(
                        {"words": [{"word": w.word, "start": w.start, "end": w.end} for w in s.words]}
                        if s.words
                        else {}
                    ),
                }
                for s in self.segments
            ],
            "attempts": [asdict(a) for a in self.attempts],
        }

    def to_cache(self) -> dict[str, Any]:
        """Everything needed to answer the same request again (timing and attempts excluded)."""
        return {
            "text": self.text,
            "confidence": self.confidence,
            "detected_language": self.detected_language,
            "language_probability": self.language_probability,
            "provider_used": self.provider_used,
            "duration_seconds": self.duration_seconds,
            "task": self.task,
            "segments": [asdict(s) for s in self.segments],
        }

    @classmethod
    def from_cache(cls, data: dict[str, Any], *, processing_time_ms: float) -> TranscriptionResult:
        segments = tuple(
            Segment(
                id=s["id"],
                start=s["start"],
                end=s["end"],
                text=s["text"],
                avg_logprob=s["avg_logprob"],
                no_speech_prob=s["no_speech_prob"],
                words=tuple(Word(**w) for w in s["words"]) if s.get("words") is not None else None,
            )
            for s in data["segments"]
        )
        return cls(
            text=data["text"],
            confidence=data["confidence"],
            detected_language=data["detected_language"],
            language_probability=data["language_probability"],
            provider_used=data["provider_used"],
            processing_time_ms=processing_time_ms,
            duration_seconds=data["duration_seconds"],
            segments=segments,
            task=data.get("task", "transcribe"),
            cache="hit",
        )


@dataclass(frozen=True)
class SynthesisResult:
    audio: bytes
    format: str
    content_type: str
    duration_seconds: float
    provider_used: str
    processing_time_ms: float
    language: str
    attempts: tuple[Attempt, ...] = field(default=())
    cache: CacheStatus = "disabled"
    object_key: str | None = None  # where the audio is stored in the v2 bucket, when it is

    @property
    def cached(self) -> bool:
        return self.cache == "hit"

    def to_dict(self, *, include_audio: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": self.format,
            "content_type": self.content_type,
            "duration_seconds": round(self.duration_seconds, 3),
            "provider_used": self.provider_used,
            "processing_time_ms": round(self.processing_time_ms, 1),
            "language": self.language,
            "size_bytes": len(self.audio),
            "cached": self.cached,
            "cache": self.cache,
            "attempts": [asdict(a) for a in self.attempts],
        }
        if include_audio:
            out["audio_base64"] = base64.b64encode(self.audio).decode("ascii")
        return out


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
