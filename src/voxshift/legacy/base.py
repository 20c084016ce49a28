"""What a legacy voice backend is: the system voxshift migrates away from, behind one interface.

The migration router (seed M2.2) sends a share of the traffic to the legacy service and the rest to
v2, and falls back from one to the other. To do that it must tell two failures apart:

* the *request* is bad (empty audio, not audio at all, empty text): the same typed input errors v2
  raises (:class:`~voxshift.errors.EmptyInput`, :class:`~voxshift.errors.CorruptAudio`,
  :class:`~voxshift.errors.UnsupportedMediaType`, ...). Retrying on the other system is pointless;
* the *legacy* failed or is down: :class:`~voxshift.errors.ProviderError` and its subclasses
  (``ProviderUnavailable`` for "cannot be reached or is misconfigured", ``ProviderTimeout``), with a
  message that says what happened. Here a fallback to v2 is the right move.

A backend never lets any other exception escape. Backends: ``legacy:http`` (any OpenAI-compatible
audio endpoint), ``legacy:python`` (the legacy service object, in process) and ``legacy:reference``
(a built-in stand-in for PlatformAI-HUB's voice service, with its storage layout and its bugs).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from voxshift.audio import OUTPUT_FORMATS
from voxshift.audio.sniff import sniff_container
from voxshift.core.language import LanguageError, checked_language, normalize_language
from voxshift.core.voices import OPENAI_VOICES, VOICE_STYLES
from voxshift.errors import EmptyInput, InvalidRequest, TextTooLong

# OpenAI's /v1/audio/speech limit; the legacy's OpenAI TTS provider refused longer texts too.
MAX_TEXT_CHARS = 4096


@dataclass(frozen=True)
class LegacyTranscript:
    text: str
    language: str | None  # ISO 639-1 when the legacy said; None when it did not
    confidence: float | None  # 0..1 when the legacy reports segment log-probabilities
    provider_used: str
    processing_time_ms: float
    duration_seconds: float | None
    cached: bool = False  # answered from the legacy's own cache


@dataclass(frozen=True)
class LegacySpeech:
    audio: bytes
    format: str  # the container actually returned (mp3, opus, aac, flac, wav, pcm)
    content_type: str
    provider_used: str
    processing_time_ms: float
    duration_seconds: float | None
    object_key: str | None = None  # where the legacy stored it in its bucket, when it does


@runtime_checkable
class LegacyVoiceBackend(Protocol):
    name: str  # "legacy:http", "legacy:python", "legacy:reference"

    async def transcribe(
        self,
        audio: bytes,
        language: str = "auto",
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        filename: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> LegacyTranscript: ...

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
    ) -> LegacySpeech: ...

    async def info(self) -> dict[str, Any]:
        """At least ``name``, ``available`` (bool) and ``reason`` (why not, else None)."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class LoadableLegacy(Protocol):
    """A legacy backend with models of its own to bring into memory before it serves well (the
    reference's Whisper tiny.en). Optional: the runtime calls ``load()`` at start-up only on a
    backend that has it; the others are remote or load nothing."""

    async def load(self) -> None: ...


@runtime_checkable
class ReadOnlyAware(Protocol):
    """A legacy backend that can stop writing (the sunset's read_only phase): ``read_only`` is
    asked before every write; the runtime points it at the live flags."""

    read_only: Callable[[], bool]


# --- input checks every backend shares ------------------------------------------------------------


def check_audio(audio: bytes) -> None:
    if not audio:
        raise EmptyInput("the audio file is empty", param="file")


def check_text(text: str) -> None:
    if not text or not text.strip():
        raise EmptyInput("the text is empty", param="input")
    if len(text) > MAX_TEXT_CHARS:
        raise TextTooLong(f"the text is {len(text)} characters; the limit is {MAX_TEXT_CHARS}", param="input")


def check_format(fmt: str) -> None:
    if fmt not in OUTPUT_FORMATS:
        raise InvalidRequest(
            f"unsupported format {fmt!r}; expected one of: {', '.join(OUTPUT_FORMATS)}", param="format"
        )


def language_code(language: str | None) -> str | None:
    """``auto``/None -> None; ``ru-RU`` -> ``ru``; a malformed value is the caller's mistake."""
    return checked_language(normalize_language, language)


def reported_language(value: Any) -> str | None:
    """The language a legacy answer names (``ru``, ``ru-RU``, ``english``) as a code; None when it
    names none or nothing readable: what the legacy reports is never the caller's mistake."""
    if not isinstance(value, str):
        return None
    try:
        return normalize_language(value)
    except LanguageError:
        return None


def begin_transcription(audio: bytes, language: str | None) -> tuple[float, str, str | None]:
    """What every backend does before it transcribes: (start time, sniffed container, language code).

    Bad input (empty, not audio, a malformed language) fails here, before the legacy is asked.
    """
    start = time.perf_counter()
    check_audio(audio)
    container = sniff_container(audio)
    return start, container, language_code(language)


def begin_synthesis(text: str, format: str, language: str | None) -> tuple[float, str | None]:
    """What every backend does before it synthesizes: (start time, language code), input checked."""
    start = time.perf_counter()
    check_text(text)
    check_format(format)
    return start, language_code(language)


def voice_for_style(voice_style: str | None, default: str | None) -> str | None:
    """A seed voice_style (natural/male/female/neutral) or an OpenAI voice name -> a voice name.

    Anything else means ``default``: the legacy providers took their voice from the agent's
    tts_config and ignored what the caller asked for, so an unknown style is not an error.
    """
    style = (voice_style or "natural").strip().lower()
    if style in OPENAI_VOICES:
        return style
    mapped = VOICE_STYLES.get(style)
    return mapped if mapped is not None else default


def elapsed_ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000
