"""Cache keys for STT and TTS results: built only from what determines the answer.

The legacy service keyed its STT cache on ``md5(size:mime:provider)``, so two different recordings of
the same byte length shared one transcript, across agents. Here the audio itself (its sha256) is in
the key, together with everything else that changes the output: the provider chain, the language,
the task and the decoding options. Keys are relative to the v2 namespace (``voice_v2:``), under
``cache:``, the prefix the seed's data migration (M5.1) moves cached content to.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

STT_PREFIX = "cache:stt:"
TTS_PREFIX = "cache:tts:"


def sha256_hex(data: bytes | str) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()


def _options_digest(options: dict[str, object]) -> str:
    # Options that rarely differ (prompt, temperature, speed) share one short digest so that keys
    # stay readable; sorted JSON makes the digest independent of argument order.
    canonical = json.dumps(options, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def _segment(value: str) -> str:
    # ':' separates key parts and SCAN patterns treat glob characters specially: keep parts plain.
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in value) or "_"


def chain_signature(providers: Sequence[str]) -> str:
    """The providers that may answer, in order: a different chain may give a different answer."""
    return "+".join(_segment(p) for p in providers) or "none"


@dataclass(frozen=True)
class SttCacheKey:
    providers: str
    language: str | None
    audio_sha256: str
    task: str = "transcribe"
    word_timestamps: bool = False
    prompt: str | None = None
    temperature: float = 0.0

    def render(self) -> str:
        options = _options_digest(
            {
                "task": self.task,
                "words": self.word_timestamps,
                "prompt": self.prompt or "",
                "temperature": round(self.temperature, 4),
            }
        )
        return (
            f"{STT_PREFIX}{self.providers}:{_segment(self.language or 'auto')}:{self.audio_sha256}:{options}"
        )


@dataclass(frozen=True)
class TtsCacheKey:
    providers: str
    language: str
    voice: str | None
    format: str
    text_sha256: str
    speed: float = 1.0

    def render(self) -> str:
        options = _options_digest({"speed": round(self.speed, 4)})
        return (
            f"{TTS_PREFIX}{self.providers}:{_segment(self.language)}:{_segment(self.voice or 'default')}:"
            f"{_segment(self.format)}:{self.text_sha256}:{options}"
        )
