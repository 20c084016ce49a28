"""Yandex SpeechKit v1 synchronous recognition.

Wire format (SpeechKit docs, "API v1: synchronous recognition API"):
``POST https://stt.api.cloud.yandex.net/speech/v1/stt:recognize?lang=..&topic=general&format=lpcm
&sampleRateHertz=16000`` with the raw audio as the body; the answer is ``{"result": "<text>"}`` and
errors are ``{"error_code", "error_message"}``. Limits: 30 s, 1 MB, one channel.

Choices:

* The body is always LPCM, 16-bit little-endian mono at 16 kHz, made from ``request.audio.samples``
  (decoded once by the service): uniform across every input container, and 30 s of it (960 kB)
  fits the 1 MB limit. Passing ``.ogg`` through would save bytes but an Ogg file may hold Vorbis,
  which SpeechKit does not take, and checking needs a demuxer.
* Longer audio, translation and languages SpeechKit lacks are refused before the network with
  ``ProviderUnavailable(retryable=True)``: the chain moves on without blaming the vendor.
* ``language`` ``ru`` -> ``ru-RU`` etc. (see ``LOCALES``; ``pt-BR`` may be given in full). No
  language: v1 documents no automatic detection, so we send its documented default ``ru-RU`` (the
  legacy platform's language) and report ``language_probability=0.0`` (assumed, not detected).
* v1 returns text only: the transcript has no segments, and its duration is the input's.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from voxshift.engines.base import STT_SAMPLE_RATE, EngineInfo, STTRequest, Transcript
from voxshift.engines.cloud import json_str, parse_json
from voxshift.engines.yandex.common import YandexProvider, error_message, locale_for
from voxshift.errors import ProviderError

MAX_SECONDS = 30.0
MAX_BYTES = 1_000_000
DEFAULT_LOCALE = "ru-RU"

LOCALES = {
    "ru": "ru-RU", "en": "en-US", "de": "de-DE", "es": "es-ES", "fi": "fi-FI", "fr": "fr-FR",
    "he": "he-IL", "it": "it-IT", "kk": "kk-KZ", "nl": "nl-NL", "pl": "pl-PL", "pt": "pt-PT",
    "sv": "sv-SE", "tr": "tr-TR", "uz": "uz-UZ",
}  # fmt: skip
EXTRA_LOCALES = ("pt-BR",)


class YandexSTT(YandexProvider):
    """``YandexSTT(settings, client=None)``: short-audio recognition at ``settings.yandex_stt_url``."""

    def info(self) -> EngineInfo:
        return EngineInfo(
            name=self.name,
            kind="stt",
            availability=self._availability(),
            languages=tuple(LOCALES),
            formats=("wav", "mp3", "ogg", "webm", "flac", "m4a"),  # all of them: we send LPCM
            details={
                "url": self.settings.yandex_stt_url,
                "api": "SpeechKit v1 (synchronous)",
                "max_seconds": f"{MAX_SECONDS:g}",
            },
        )

    async def transcribe(self, request: STTRequest) -> Transcript:
        headers, extra = self._credentials()
        if request.task == "translate":
            raise self._cannot_serve("SpeechKit v1 cannot translate")
        detect = request.language is None or request.language.strip().lower() in ("", "auto")
        locale = DEFAULT_LOCALE if detect else locale_for(request.language, LOCALES, EXTRA_LOCALES)
        if locale is None:
            raise self._cannot_serve(f"SpeechKit does not recognise language {request.language!r}")
        audio = request.audio
        if audio.duration_s > MAX_SECONDS:
            raise self._cannot_serve(
                f"the audio is {audio.duration_s:.1f} s; SpeechKit's synchronous API takes at most 30 s"
            )
        if audio.samples.size == 0:
            raise self._cannot_serve("the audio has no samples")
        pcm = to_lpcm(audio.samples)
        if len(pcm) > MAX_BYTES:
            raise self._cannot_serve(f"the audio is {len(pcm)} bytes as LPCM; SpeechKit takes at most 1 MB")

        params = {
            "lang": locale,
            "topic": "general",
            "format": "lpcm",
            "sampleRateHertz": str(STT_SAMPLE_RATE),
            **extra,
        }
        response = await self._post(
            self.settings.yandex_stt_url,
            params=params,
            headers={**headers, "Content-Type": "application/octet-stream"},
            content=pcm,
            vendor_message=error_message,
        )
        body = parse_json(self.name, response)
        result = body.get("result") if isinstance(body, dict) else None
        if not isinstance(result, str):
            raise ProviderError(self.name, f"unexpected response, no result text: {json_str(body)}")
        return Transcript(
            text=result.strip(),
            language=locale.split("-", 1)[0],
            language_probability=0.0 if detect else 1.0,
            duration_s=audio.duration_s,
        )


def to_lpcm(samples: npt.NDArray[np.float32]) -> bytes:
    """float32 in [-1, 1] -> signed 16-bit little-endian, clipped rather than wrapped."""
    clipped = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    return (clipped * 32767.0).round().astype("<i2").tobytes()
