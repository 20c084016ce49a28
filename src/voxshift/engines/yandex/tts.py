"""Yandex SpeechKit v1 synthesis.

Wire format (SpeechKit docs, "API v1 method description"):
``POST https://tts.api.cloud.yandex.net/speech/v1/tts:synthesize`` with a URL-encoded form
``text, lang, voice, speed, format, sampleRateHertz`` (plus ``folderId`` for IAM tokens); the body
of the answer is the audio. We ask for ``format=lpcm, sampleRateHertz=48000``: raw signed 16-bit
little-endian mono, i.e. :class:`~voxshift.engines.base.Speech` as it is. Limits: ``text`` up to
5000 characters and the whole request body up to 15 KB, and URL-encoding makes a Cyrillic letter
six bytes, so ~2500 Russian letters per request: longer text is split at sentence (then word)
boundaries and the pieces' audio concatenated.

Request mapping:

* ``language``: ``ru`` -> ``ru-RU``, ``en`` -> ``en-US``, ``de`` -> ``de-DE``, ``kk`` -> ``kk-KZ``,
  ``uz`` -> ``uz-UZ``, ``he`` -> ``he-IL``; other languages are refused before the network.
* ``voice``: a SpeechKit voice of that language passes through. An OpenAI voice (the chain may have
  fallen through from OpenAI with the caller's ``nova``) becomes a Russian voice of the same
  gender: alloy/coral -> alena, nova/sage -> jane, shimmer -> omazh; echo/ash -> filipp,
  onyx/ballad -> ermil, fable/verse -> zahar; ``female``/``male`` -> alena/filipp. Anything else
  uses ``yandex_tts_voice`` for Russian, or the language's own voice for the others (they have one
  or two; the list is SpeechKit's voice list, Russian trimmed to the voices v1 serves).
* ``speed``: clamped to SpeechKit's 0.1..3.0.
"""

from __future__ import annotations

import re
from urllib.parse import quote_plus

from voxshift.audio.formats import OUTPUT_FORMATS
from voxshift.engines.base import EngineInfo, Speech, TTSRequest
from voxshift.engines.cloud import error_text
from voxshift.engines.yandex.common import YandexProvider, error_message, locale_for
from voxshift.errors import ProviderError

SAMPLE_RATE = 48_000
MAX_TEXT_CHARS = 5000
MAX_BODY_BYTES = 15 * 1024
_TEXT_BUDGET = MAX_BODY_BYTES - 512  # what the other form fields may take, with room to spare

LOCALES = {"ru": "ru-RU", "en": "en-US", "de": "de-DE", "kk": "kk-KZ", "uz": "uz-UZ", "he": "he-IL"}
VOICES: dict[str, tuple[str, ...]] = {
    "ru-RU": ("alena", "filipp", "ermil", "jane", "madirus", "omazh", "zahar"),
    "en-US": ("john",),
    "de-DE": ("lea",),
    "kk-KZ": ("madi", "amira"),
    "uz-UZ": ("nigora",),
    "he-IL": ("naomi",),
}
_RUSSIAN_FOR = {
    "female": "alena", "alloy": "alena", "coral": "alena", "nova": "jane", "sage": "jane",
    "shimmer": "omazh", "male": "filipp", "echo": "filipp", "ash": "filipp", "onyx": "ermil",
    "ballad": "ermil", "fable": "zahar", "verse": "zahar",
}  # fmt: skip
_SENTENCE_END = re.compile(r"(?<=[.!?…;])\s+")


class YandexTTS(YandexProvider):
    """``YandexTTS(settings, client=None)``: synthesis at ``settings.yandex_tts_url``, 48 kHz PCM."""

    def info(self) -> EngineInfo:
        return EngineInfo(
            name=self.name,
            kind="tts",
            availability=self._availability(),
            languages=tuple(LOCALES),
            voices=tuple(v for voices in VOICES.values() for v in voices),
            formats=OUTPUT_FORMATS,
            details={
                "url": self.settings.yandex_tts_url,
                "api": "SpeechKit v1",
                "default_voice": self.settings.yandex_tts_voice,
                "sample_rate": str(SAMPLE_RATE),
            },
        )

    def voice_for(self, locale: str, requested: str | None) -> str:
        voices = VOICES[locale]
        name = (requested or "").strip().lower()
        if name in voices:
            return name
        if locale == "ru-RU":
            if name in _RUSSIAN_FOR:
                return _RUSSIAN_FOR[name]
            default = self.settings.yandex_tts_voice.strip().lower()
            return default if default in voices else voices[0]
        return voices[0]

    async def synthesize(self, request: TTSRequest) -> Speech:
        headers, extra = self._credentials()
        locale = locale_for(request.language, LOCALES)
        if locale is None:
            raise self._cannot_serve(f"SpeechKit has no voice for language {request.language!r}")
        fields = {
            "lang": locale,
            "voice": self.voice_for(locale, request.voice),
            "speed": f"{min(3.0, max(0.1, request.speed)):g}",
            "format": "lpcm",
            "sampleRateHertz": str(SAMPLE_RATE),
            **extra,
        }
        pieces = split_text(request.text)
        if not pieces:
            raise self._cannot_serve("there is no text to speak")
        audio = bytearray()
        for piece in pieces:
            audio += await self._synthesize_piece(headers, {"text": piece, **fields})
        return Speech(pcm=bytes(audio), sample_rate=SAMPLE_RATE)

    async def _synthesize_piece(self, headers: dict[str, str], form: dict[str, str]) -> bytes:
        response = await self._post(
            self.settings.yandex_tts_url, headers=headers, data=form, vendor_message=error_message
        )
        content_type = response.headers.get("content-type", "")
        if content_type.startswith(("application/json", "text/")):
            detail = error_text(response, error_message)
            raise ProviderError(self.name, f"expected LPCM audio, got {content_type}: {detail}")
        pcm = response.content
        if not pcm or len(pcm) % 2:
            raise ProviderError(self.name, f"malformed LPCM in the response ({len(pcm)} bytes)")
        return pcm


def _fits(text: str) -> bool:
    return len(text) <= MAX_TEXT_CHARS and len(quote_plus(text)) <= _TEXT_BUDGET


def split_text(text: str) -> list[str]:
    """Pieces that each fit one request: whole sentences where possible, then words, then letters."""
    text = text.strip()
    if not text:
        return []
    if _fits(text):
        return [text]
    units: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        if _fits(sentence):
            units.append(sentence)
            continue
        for word in sentence.split():
            units.extend(_hard_split(word) if not _fits(word) else [word])
    pieces: list[str] = []
    current = ""
    for unit in units:
        candidate = f"{current} {unit}" if current else unit
        if _fits(candidate):
            current = candidate
        else:
            pieces.append(current)
            current = unit
    if current:
        pieces.append(current)
    return [p for p in pieces if p]


def _hard_split(word: str) -> list[str]:
    out: list[str] = []
    current = ""
    for char in word:
        if not _fits(current + char):
            out.append(current)
            current = ""
        current += char
    return [*out, current] if current else out
