"""Yandex SpeechKit (REST API v1) as voxshift providers: what the legacy platform used."""

from voxshift.engines.yandex.stt import YandexSTT
from voxshift.engines.yandex.tts import YandexTTS

__all__ = ["YandexSTT", "YandexTTS"]
