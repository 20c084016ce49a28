"""Synthetic traffic for the rollout simulator: users, what they ask for, how they rate the answers,
and (with ``--fast``) in-process engines for v2 and legacy that answer after a sampled latency.

Users look like the seed's callers: Telegram-style numeric user ids and UUID agent ids, with a
long-tailed activity (a few users send much of the traffic, as chat users do). The fast engines do
no computation; each answer waits a latency drawn from a log-normal distribution, the usual shape
of service latencies (a body around the median and a long right tail), with rare errors.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import math
import random
import uuid
import wave
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from voxshift.engines.base import (
    Availability,
    EngineInfo,
    Segment,
    Speech,
    STTRequest,
    Transcript,
    TTSRequest,
)
from voxshift.errors import ProviderError
from voxshift.legacy.base import LegacySpeech, LegacyTranscript

SIM_STT = "sim-v2-stt"
SIM_TTS = "sim-v2-tts"
SAMPLE_RATE = 16_000

EN_PHRASES: tuple[str, ...] = (
    "Hello, how can I help you today?",
    "Your order has been shipped and will arrive on Friday.",
    "Please send the report to the team today.",
    "I have booked a table for two at seven.",
    "The meeting moved to Monday morning.",
    "Thank you for waiting, your call is important to us.",
    "Could you repeat the last number, please?",
    "Your balance is one hundred and twenty dollars.",
)
RU_PHRASES: tuple[str, ...] = (
    "Здравствуйте, чем могу помочь?",
    "Ваш заказ отправлен и прибудет в пятницу.",
    "Спасибо за ожидание, ваш звонок важен для нас.",
    "Встреча перенесена на понедельник.",
    "Повторите, пожалуйста, последний номер.",
    "Ваш баланс составляет сто двадцать рублей.",
)
STT_CLIP_PHRASES = EN_PHRASES[:4]  # the clips users send are made once, by the local TTS


@dataclass(frozen=True)
class SimUser:
    user_id: str  # a Telegram-style numeric id
    agent_id: str  # the chat agent the user talks to (a UUID)
    language: str  # the language the agent speaks for TTS


class Population:
    """``users`` users over ``agents`` agents; who sends the next request follows a Zipf-like law
    (weight 1 / rank^0.8), so some users are many times busier than most."""

    def __init__(self, users: int, agents: int, rng: random.Random) -> None:
        if users < 1 or agents < 1:
            raise ValueError("a population needs at least one user and one agent")
        agent_ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(agents)]
        ids: set[int] = set()
        while len(ids) < users:
            ids.add(rng.randrange(100_000_000, 7_999_999_999))  # 9-10 digits, like Telegram's
        self.users = [
            SimUser(str(uid), rng.choice(agent_ids), "ru" if rng.random() < 0.5 else "en")
            for uid in sorted(ids, key=lambda _: rng.random())
        ]
        self._cumulative = list(itertools.accumulate(1.0 / (rank + 1) ** 0.8 for rank in range(users)))

    def pick(self, rng: random.Random) -> SimUser:
        return rng.choices(self.users, cum_weights=self._cumulative, k=1)[0]


@dataclass(frozen=True)
class LatencyModel:
    """Log-normal latency (``median_ms``, ``sigma`` of its log) and an independent error rate."""

    median_ms: float
    sigma: float
    error_rate: float = 0.0

    def sample_s(self, rng: random.Random) -> float:
        return rng.lognormvariate(math.log(self.median_ms), self.sigma) / 1000.0

    @property
    def p95_ms(self) -> float:
        return self.median_ms * math.exp(1.6449 * self.sigma)


# v2 is the faster system (the point of migrating); legacy errs a little more. Healthy v2 passes the
# seed's strictest criteria (production: errors < 0.1 %, p95 < 800 ms, within 1.2x legacy).
V2_STT = LatencyModel(180.0, 0.35, 0.0001)
V2_TTS = LatencyModel(120.0, 0.35, 0.0001)
LEGACY_STT = LatencyModel(300.0, 0.30, 0.001)
LEGACY_TTS = LatencyModel(220.0, 0.30, 0.001)


def tone_wav(seconds: float, freq: float) -> bytes:
    """A short 16 kHz mono WAV (a tone with an envelope): audio for the fast engines, which never
    listen to it; distinct frequencies make distinct clips (and distinct cache keys)."""
    n = int(seconds * SAMPLE_RATE)
    frames = bytearray()
    for i in range(n):
        envelope = math.sin(math.pi * i / n)
        value = int(12_000 * envelope * math.sin(2 * math.pi * freq * i / SAMPLE_RATE))
        frames += value.to_bytes(2, "little", signed=True)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(bytes(frames))
    return buffer.getvalue()


def _silence(seconds: float) -> bytes:
    return b"\x00\x00" * int(seconds * SAMPLE_RATE)


def _spoken_s(text: str) -> float:
    return max(0.5, 0.06 * len(text))  # about 16 characters a second, as TTS voices speak


class FastSTT:
    """v2 speech-to-text that answers after a sampled latency (``--fast``)."""

    def __init__(self, model: LatencyModel, rng: random.Random, texts: Mapping[float, str]) -> None:
        self.name = SIM_STT
        self.model = model
        self.rng = rng
        self.texts = texts  # clip duration -> what it says

    def info(self) -> EngineInfo:
        return EngineInfo(self.name, "stt", Availability(True), languages=("*",))

    async def transcribe(self, request: STTRequest) -> Transcript:
        await asyncio.sleep(self.model.sample_s(self.rng))
        if self.rng.random() < self.model.error_rate:
            raise ProviderError(self.name, "simulated error")
        duration = request.audio.duration_s
        text = self.texts.get(round(duration, 2), "simulated transcript")
        segment = Segment(0, 0.0, duration, text, -0.15, 0.01)
        return Transcript(text, request.language or "en", 0.98, duration, (segment,))


class FastTTS:
    """v2 text-to-speech that answers after a sampled latency with silence of the text's length."""

    def __init__(self, model: LatencyModel, rng: random.Random) -> None:
        self.name = SIM_TTS
        self.model = model
        self.rng = rng

    def info(self) -> EngineInfo:
        return EngineInfo(self.name, "tts", Availability(True), languages=("*",), voices=("sim",))

    async def synthesize(self, request: TTSRequest) -> Speech:
        await asyncio.sleep(self.model.sample_s(self.rng))
        if self.rng.random() < self.model.error_rate:
            raise ProviderError(self.name, "simulated error")
        return Speech(_silence(min(_spoken_s(request.text), 3.0)), SAMPLE_RATE)


class FastLegacy:
    """The legacy service for ``--fast``: the LegacyVoiceBackend protocol, sampled latencies."""

    name = "legacy:simulated"

    def __init__(
        self, stt: LatencyModel, tts: LatencyModel, rng: random.Random, texts: Mapping[float, str]
    ) -> None:
        self.stt = stt
        self.tts = tts
        self.rng = rng
        self.texts = texts

    async def _wait(self, model: LatencyModel, what: str) -> float:
        delay = model.sample_s(self.rng)
        await asyncio.sleep(delay)
        if self.rng.random() < model.error_rate:
            raise ProviderError(self.name, f"simulated {what} error")
        return delay * 1000.0

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
        ms = await self._wait(self.stt, "STT")  # its latency model includes reading the upload
        duration = _wav_seconds(audio)
        text = self.texts.get(round(duration, 2), "simulated transcript")
        lang = None if language == "auto" else language
        return LegacyTranscript(text, lang, 0.9, "legacy-sim", ms, duration)

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
        ms = await self._wait(self.tts, "TTS")
        seconds = min(_spoken_s(text), 3.0)
        # The simulator asks for wav in fast mode; this answers wav whatever was asked.
        return LegacySpeech(_silence(seconds), "wav", "audio/wav", "legacy-sim", ms, seconds)

    async def info(self) -> dict[str, Any]:
        return {"name": self.name, "available": True, "reason": None}

    async def aclose(self) -> None:
        return None


def _wav_seconds(audio: bytes) -> float:
    try:
        with wave.open(io.BytesIO(audio)) as clip:
            frames, rate = int(clip.getnframes()), int(clip.getframerate())
        return frames / rate
    except (wave.Error, EOFError, ZeroDivisionError):
        return 0.0


# --- ratings ---------------------------------------------------------------------------------------

# P(rating = 5, 4, 3, 2, 1). Healthy v2 averages 4.70, legacy 4.43 (the seed's bar is 4.0-4.5);
# answers during a fault (slow, or a fallback after a wait) average 3.15.
V2_RATINGS = (0.78, 0.17, 0.03, 0.01, 0.01)
LEGACY_RATINGS = (0.60, 0.28, 0.08, 0.03, 0.01)
FAULT_RATINGS = (0.15, 0.25, 0.30, 0.20, 0.10)


def rating(rng: random.Random, weights: Sequence[float]) -> int:
    return rng.choices((5, 4, 3, 2, 1), weights=weights, k=1)[0]


def mean_rating(weights: Sequence[float]) -> float:
    return sum(w * r for w, r in zip(weights, (5, 4, 3, 2, 1), strict=True)) / sum(weights)
