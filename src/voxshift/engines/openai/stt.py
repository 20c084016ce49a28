"""OpenAI speech-to-text over the documented REST API.

Wire format (OpenAI API reference, "Audio: create transcription / create translation"):

* ``POST {base}/audio/transcriptions``, or ``{base}/audio/translations`` for ``task="translate"``;
  ``Authorization: Bearer <key>``; ``multipart/form-data`` with ``file`` (the filename's extension
  tells OpenAI the container, so it is ``audio.<container>``), ``model``, ``language`` (ISO 639-1,
  transcriptions only), ``prompt``, ``temperature``, ``response_format`` and, for word timings,
  ``timestamp_granularities[]`` (sent twice, ``word`` and ``segment``: asking for words alone
  drops the segments).
* ``response_format=verbose_json`` answers ``{task, language, duration, text, segments, words?}``,
  with ``language`` spelled out (``"english"``), mapped back to ISO 639-1 here. Only whisper-1
  offers it: for the gpt-4o transcribe models we ask for ``json`` (``{"text"}``) and return no
  segments.
* The file limit is 25 MB; larger uploads are refused here, before the network.

What OpenAI does not report, and what we return instead:

* ``language_probability``: 1.0 when the caller fixed the language (nothing was detected), else 0.0,
  meaning "detected by OpenAI, confidence not reported".
* a word's ``probability``: its segment's ``exp(avg_logprob)``.
* for translations, ``language`` is ``"en"``, the language of the text, as OpenAI itself reports.
"""

from __future__ import annotations

import math
from typing import Any

from voxshift.core.language import WHISPER_LANGUAGES, base_code
from voxshift.engines.base import EngineInfo, Segment, STTRequest, Transcript, Word
from voxshift.engines.cloud import json_str, parse_json
from voxshift.engines.openai.common import OpenAIProvider, error_message
from voxshift.engines.openai.languages import UNDETERMINED, code_for
from voxshift.errors import ProviderError

MAX_UPLOAD_BYTES = 25 * 1024 * 1024

# The containers OpenAI accepts that voxshift also accepts, with the MIME type of each.
_FILE_TYPES = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
    "webm": "audio/webm",
    "flac": "audio/flac",
    "m4a": "audio/mp4",
}


class OpenAISTT(OpenAIProvider):
    """``OpenAISTT(settings, client=None)``: transcription and translation with ``openai_stt_model``."""

    def info(self) -> EngineInfo:
        return EngineInfo(
            name=self.name,
            kind="stt",
            availability=self._availability(),
            languages=tuple(WHISPER_LANGUAGES),
            formats=tuple(_FILE_TYPES),
            details={
                "model": self.settings.openai_stt_model,
                "base_url": self.base_url,
                "response_format": "verbose_json" if self._verbose else "json",
            },
        )

    @property
    def _verbose(self) -> bool:
        # gpt-4o-transcribe and gpt-4o-mini-transcribe reject verbose_json.
        return not self.settings.openai_stt_model.startswith("gpt-4o")

    async def transcribe(self, request: STTRequest) -> Transcript:
        headers = self._auth_headers()
        audio = request.audio
        container = audio.container.lower()
        if container not in _FILE_TYPES:
            raise self._cannot_serve(f"OpenAI does not accept {container} audio")
        if len(audio.data) > MAX_UPLOAD_BYTES:
            raise self._cannot_serve(
                f"the upload is {len(audio.data) / 1e6:.1f} MB; OpenAI accepts at most 25 MB"
            )
        translate = request.task == "translate"
        if translate and not self._verbose:
            raise self._cannot_serve(f"{self.settings.openai_stt_model} cannot translate (whisper-1 can)")

        fields: dict[str, str | list[str]] = {
            "model": self.settings.openai_stt_model,
            "response_format": "verbose_json" if self._verbose else "json",
            "temperature": f"{request.temperature:g}",
        }
        language = _iso(request.language)
        if language and not translate:
            fields["language"] = language
        if request.prompt:
            fields["prompt"] = request.prompt
        if request.word_timestamps and self._verbose and not translate:
            fields["timestamp_granularities[]"] = ["word", "segment"]

        path = "/audio/translations" if translate else "/audio/transcriptions"
        response = await self._post(
            self.base_url + path,
            headers=headers,
            data=fields,
            files={"file": (f"audio.{container}", audio.data, _FILE_TYPES[container])},
            vendor_message=error_message,
        )
        body = parse_json(self.name, response)
        try:
            return _transcript(body, request, language, translate)
        except (TypeError, ValueError, KeyError) as exc:
            raise ProviderError(self.name, f"unexpected response ({exc}): {json_str(body)}") from None


def _iso(language: str | None) -> str | None:
    if not language or language.strip().lower() == "auto":
        return None
    return base_code(language)


def _transcript(body: Any, request: STTRequest, requested: str | None, translate: bool) -> Transcript:
    if not isinstance(body, dict) or not isinstance(body.get("text"), str):
        raise ValueError("no text")
    # A translation is English text whatever was spoken; OpenAI reports "english" for it too.
    language = "en" if translate else requested or code_for(body.get("language")) or UNDETERMINED
    duration = _number(body, "duration", request.audio.duration_s)
    segments = tuple(_segment(i, raw) for i, raw in enumerate(body.get("segments") or ()))
    words = body.get("words")
    if words and segments:
        segments = _attach_words(segments, [_word(raw) for raw in words])
    return Transcript(
        text=body["text"].strip(),
        language=language,
        language_probability=1.0 if requested and not translate else 0.0,
        duration_s=duration,
        segments=segments,
    )


def _number(obj: dict[str, Any], key: str, default: float) -> float:
    value = obj.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{key} is not a number")
    return float(value)


def _segment(index: int, raw: Any) -> Segment:
    if not isinstance(raw, dict):
        raise TypeError("a segment is not an object")
    return Segment(
        id=int(raw.get("id", index)),
        start=_number(raw, "start", 0.0),
        end=_number(raw, "end", 0.0),
        text=str(raw.get("text", "")),
        avg_logprob=_number(raw, "avg_logprob", 0.0),
        no_speech_prob=_number(raw, "no_speech_prob", 0.0),
    )


def _word(raw: Any) -> tuple[float, float, str]:
    if not isinstance(raw, dict):
        raise TypeError("a word is not an object")
    return _number(raw, "start", 0.0), _number(raw, "end", 0.0), str(raw.get("word", ""))


def _attach_words(
    segments: tuple[Segment, ...], words: list[tuple[float, float, str]]
) -> tuple[Segment, ...]:
    """Give each segment the words whose midpoint falls in it (OpenAI returns the two lists apart)."""
    buckets: list[list[Word]] = [[] for _ in segments]
    index = 0
    for start, end, text in words:
        middle = (start + end) / 2
        while index < len(segments) - 1 and middle >= segments[index].end:
            index += 1
        probability = min(1.0, math.exp(segments[index].avg_logprob))
        buckets[index].append(Word(start=start, end=end, word=text, probability=probability))
    return tuple(
        Segment(
            id=s.id,
            start=s.start,
            end=s.end,
            text=s.text,
            avg_logprob=s.avg_logprob,
            no_speech_prob=s.no_speech_prob,
            words=tuple(bucket),
        )
        for s, bucket in zip(segments, buckets, strict=True)
    )
