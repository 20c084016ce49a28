"""What a speech provider is, and what it returns.

Providers are async so that local engines (CPU-bound, run on the inference pool) and cloud
providers (network-bound) sit in one chain behind one interface. A provider never encodes the
output container: TTS returns mono 16-bit PCM and the service encodes the format the caller asked
for, so every provider supports every output format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

STT_SAMPLE_RATE = 16_000

Task = Literal["transcribe", "translate"]


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    word: str
    probability: float


@dataclass(frozen=True)
class Segment:
    id: int
    start: float
    end: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    words: tuple[Word, ...] | None = None


@dataclass(frozen=True)
class AudioInput:
    """One upload, validated: the original bytes and its decoded 16 kHz mono float32 samples.

    Cloud providers send ``data`` as it came (they take the same containers); local engines use
    ``samples`` so that the audio is decoded once per request, not once per provider.
    """

    data: bytes
    container: str  # wav | mp3 | ogg | webm | flac | m4a
    samples: npt.NDArray[np.float32]
    duration_s: float
    filename: str | None = None


@dataclass(frozen=True)
class STTRequest:
    audio: AudioInput
    language: str | None = None  # None = detect
    task: Task = "transcribe"
    prompt: str | None = None
    temperature: float = 0.0
    word_timestamps: bool = False


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str
    language_probability: float
    duration_s: float
    segments: tuple[Segment, ...] = ()

    @property
    def confidence(self) -> float:
        """exp of the duration-weighted mean segment log-probability, in [0, 1]."""
        if not self.segments:
            return 0.0
        weights = [max(s.end - s.start, 1e-3) for s in self.segments]
        mean = sum(w * s.avg_logprob for w, s in zip(weights, self.segments, strict=True)) / sum(weights)
        return float(min(1.0, max(0.0, np.exp(mean))))


@dataclass(frozen=True)
class TTSRequest:
    text: str
    language: str = "ru"
    voice: str | None = None  # provider-specific voice name; None = the provider's default
    speed: float = 1.0  # 0.25..4.0, 1.0 = the provider's natural rate


@dataclass(frozen=True)
class Speech:
    """Synthesised audio as mono signed 16-bit little-endian PCM."""

    pcm: bytes
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate


@dataclass(frozen=True)
class Availability:
    available: bool
    reason: str | None = None  # why not, when not


@dataclass(frozen=True)
class EngineInfo:
    name: str
    kind: Literal["stt", "tts"]
    availability: Availability
    languages: tuple[str, ...] = ()  # ("*",) = any language the model knows
    voices: tuple[str, ...] = ()
    formats: tuple[str, ...] = ()
    details: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class STTProvider(Protocol):
    name: str

    def info(self) -> EngineInfo: ...

    async def transcribe(self, request: STTRequest) -> Transcript: ...


@runtime_checkable
class TTSProvider(Protocol):
    name: str

    def info(self) -> EngineInfo: ...

    async def synthesize(self, request: TTSRequest) -> Speech: ...
