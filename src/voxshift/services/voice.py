"""VoiceV2Service: the seed's voice_v2 facade (section 4.1), transcribe and synthesize.

Validates input once, runs the operation's provider chain, and returns a result that says which
provider answered, how long it took and every attempt made on the way.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from voxshift.audio import CONTENT_TYPES, OUTPUT_FORMATS, encode_speech, load_audio
from voxshift.core.language import LanguageError, guess_text_language, normalize_language
from voxshift.engines.base import AudioInput, Segment, STTRequest, Task, TTSRequest
from voxshift.engines.chain import Attempt
from voxshift.errors import EmptyInput, InvalidRequest, TextTooLong
from voxshift.services.engines import EngineSet

# OpenAI's voices, accepted everywhere; each provider maps them to one of its own.
OPENAI_VOICES = (
    "alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse",
)  # fmt: skip
# The seed's voice_style values, as voices the providers understand.
VOICE_STYLES = {"natural": None, "male": "onyx", "female": "nova", "neutral": "alloy"}


@dataclass(frozen=True)
class TranscriptionResult:
    text: str
    confidence: float
    detected_language: str
    language_probability: float
    provider_used: str
    processing_time_ms: float
    duration_seconds: float
    segments: tuple[Segment, ...]
    attempts: tuple[Attempt, ...] = ()
    task: Task = "transcribe"

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "confidence": round(self.confidence, 4),
            "detected_language": self.detected_language,
            "language_probability": round(self.language_probability, 4),
            "provider_used": self.provider_used,
            "processing_time_ms": round(self.processing_time_ms, 1),
            "duration_seconds": round(self.duration_seconds, 3),
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

    def to_dict(self, *, include_audio: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": self.format,
            "content_type": self.content_type,
            "duration_seconds": round(self.duration_seconds, 3),
            "provider_used": self.provider_used,
            "processing_time_ms": round(self.processing_time_ms, 1),
            "language": self.language,
            "size_bytes": len(self.audio),
            "attempts": [asdict(a) for a in self.attempts],
        }
        if include_audio:
            import base64

            out["audio_base64"] = base64.b64encode(self.audio).decode("ascii")
        return out


class VoiceV2Service:
    def __init__(self, engines: EngineSet) -> None:
        self.engines = engines
        self.settings = engines.settings
        self._voices: set[str] | None = None

    @property
    def ready(self) -> bool:
        return self.engines.loaded

    def validate_audio(self, audio: bytes, filename: str | None = None) -> AudioInput:
        return load_audio(
            audio,
            max_bytes=self.settings.max_upload_bytes,
            max_seconds=self.settings.max_audio_seconds,
            filename=filename,
        )

    async def transcribe(
        self,
        audio: bytes | AudioInput,
        language: str = "auto",
        user_id: str | None = None,
        context: Mapping[str, Any] | None = None,
        *,
        prompt: str | None = None,
        temperature: float = 0.0,
        word_timestamps: bool = False,
        task: Task = "transcribe",
        filename: str | None = None,
    ) -> TranscriptionResult:
        started = time.perf_counter()
        lang = _language(language, param="language")
        clip = audio if isinstance(audio, AudioInput) else self.validate_audio(audio, filename)
        if not 0.0 <= temperature <= 1.0:
            raise InvalidRequest("temperature must be between 0 and 1", param="temperature")
        request = STTRequest(
            audio=clip,
            language=lang,
            task=task,
            prompt=prompt or None,
            temperature=temperature,
            word_timestamps=word_timestamps,
        )
        outcome = await self.engines.stt_chain.run(lambda p: p.transcribe(request))
        transcript = outcome.value
        return TranscriptionResult(
            text=transcript.text,
            confidence=transcript.confidence,
            detected_language=transcript.language,
            language_probability=transcript.language_probability,
            provider_used=outcome.provider,
            processing_time_ms=(time.perf_counter() - started) * 1000,
            duration_seconds=clip.duration_s,
            segments=transcript.segments,
            attempts=tuple(outcome.attempts),
            task=task,
        )

    def known_voices(self) -> set[str]:
        if self._voices is None:
            voices = set(OPENAI_VOICES)
            for info in self.engines.infos():
                if info.kind == "tts":
                    voices.update(info.voices)
            self._voices = voices
        return self._voices

    def validate_text(self, text: str) -> str:
        if not text or not text.strip():
            raise EmptyInput("text is empty: give at least one character to speak", param="input")
        limit = self.settings.max_text_chars
        if len(text) > limit:
            raise TextTooLong(f"text has {len(text)} characters; the limit is {limit}", param="input")
        return text

    async def synthesize(
        self,
        text: str,
        language: str | None = "ru",
        voice_style: str = "natural",
        format: str = "mp3",
        *,
        voice: str | None = None,
        speed: float = 1.0,
    ) -> SynthesisResult:
        started = time.perf_counter()
        self.validate_text(text)
        if format not in OUTPUT_FORMATS:
            raise InvalidRequest(
                f"format {format!r} is not supported; use one of {', '.join(OUTPUT_FORMATS)}",
                param="response_format",
            )
        if not 0.25 <= speed <= 4.0:
            raise InvalidRequest("speed must be between 0.25 and 4.0", param="speed")
        lang = _language(language, param="language") or guess_text_language(text)
        if voice is not None and voice not in self.known_voices():
            raise InvalidRequest(
                f"voice {voice!r} is unknown; use one of {', '.join(sorted(self.known_voices()))}",
                param="voice",
            )
        chosen_voice = voice if voice is not None else _style_voice(voice_style)
        request = TTSRequest(text=text, language=lang, voice=chosen_voice, speed=speed)
        outcome = await self.engines.tts_chain_for(lang).run(lambda p: p.synthesize(request))
        speech = outcome.value
        audio = await self.engines.pool.run(encode_speech, speech, format)
        return SynthesisResult(
            audio=audio,
            format=format,
            content_type=CONTENT_TYPES[format],
            duration_seconds=speech.duration_s,
            provider_used=outcome.provider,
            processing_time_ms=(time.perf_counter() - started) * 1000,
            language=lang,
            attempts=tuple(outcome.attempts),
        )


def _language(value: str | None, *, param: str) -> str | None:
    try:
        return normalize_language(value)
    except LanguageError as exc:
        raise InvalidRequest(str(exc), param=param) from None


def _style_voice(style: str) -> str | None:
    if style in VOICE_STYLES:
        return VOICE_STYLES[style]
    if style in OPENAI_VOICES:
        return style
    raise InvalidRequest(
        f"voice_style {style!r} is unknown; use one of {', '.join([*VOICE_STYLES, *OPENAI_VOICES])}",
        param="voice_style",
    )
