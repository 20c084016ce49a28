"""Helpers for the cloud-provider tests: a test tone, and one provider of each kind built the same way."""

from __future__ import annotations

import io
import wave
from collections.abc import Awaitable

import httpx
import numpy as np

from tests.fakes import FakeServer
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.yandex_server import FakeYandex
from voxshift.config import Settings
from voxshift.engines.base import AudioInput, Speech, STTRequest, Transcript, TTSRequest
from voxshift.engines.openai import OpenAISTT, OpenAITTS
from voxshift.engines.yandex import YandexSTT, YandexTTS

Provider = OpenAISTT | OpenAITTS | YandexSTT | YandexTTS
KINDS = ["openai-stt", "openai-tts", "yandex-stt", "yandex-tts"]


def tone(seconds: float = 1.0, freq: float = 440.0) -> AudioInput:
    rate = 16_000
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes((samples * 32767).astype("<i2").tobytes())
    return AudioInput(data=buffer.getvalue(), container="wav", samples=samples, duration_s=seconds)


def build(kind: str, settings: Settings, http: httpx.AsyncClient | None) -> Provider:
    classes: dict[str, type[Provider]] = {
        "openai-stt": OpenAISTT, "openai-tts": OpenAITTS, "yandex-stt": YandexSTT, "yandex-tts": YandexTTS,
    }  # fmt: skip
    return classes[kind](settings, http)


def call(provider: Provider) -> Awaitable[Transcript | Speech]:
    if isinstance(provider, OpenAISTT | YandexSTT):
        return provider.transcribe(STTRequest(audio=tone(), language="en"))
    return provider.synthesize(TTSRequest(text="Привет, мир!", language="ru"))


def fake_for(kind: str, oa: FakeOpenAI, ya: FakeYandex) -> FakeServer:
    return oa if kind.startswith("openai") else ya
