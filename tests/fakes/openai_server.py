"""A fake OpenAI audio API: ``/v1/audio/transcriptions``, ``/v1/audio/translations``, ``/v1/audio/speech``.

Speaks the documented wire format: ``Authorization: Bearer <key>``; multipart uploads for
recognition answered as ``json``, ``text`` or ``verbose_json`` (segments, and words when
``timestamp_granularities[]`` asks for them); JSON in and raw audio out for speech; errors as
``{"error": {"message", "type", "param", "code"}}``. Error messages follow the ones OpenAI sends.
"""

from __future__ import annotations

import io
import json
import re
import wave
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes import FakeServer, Recorded, speech_like_pcm, text_response

STT_MODELS = {"whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe"}
TTS_MODELS = {"tts-1", "tts-1-hd", "gpt-4o-mini-tts"}
VOICES = {"alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse"}
FILE_FORMATS = ["flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm"]
TEXT_FORMATS = {"json", "text", "srt", "verbose_json", "vtt"}
SPEECH_FORMATS = {"mp3", "opus", "aac", "flac", "wav", "pcm"}
PCM_RATE = 24_000
_NAMES = {"en": "english", "ru": "russian", "de": "german", "fr": "french", "es": "spanish"}


class FakeOpenAI(FakeServer):
    def __init__(self, api_key: str = "sk-test-0123456789abcdef") -> None:
        super().__init__()
        self.api_key = api_key
        self.reset_state()

    def reset_state(self) -> None:
        self.transcript = "Hello from the fake server. It speaks OpenAI's wire format."
        self.detected_language = "english"  # verbose_json's spelling when the caller sets none

    @property
    def base_url(self) -> str:
        return self.origin + "/v1"

    def routes(self) -> list[Route]:
        return [
            Route("/v1/audio/transcriptions", self._recognize, methods=["POST"]),
            Route("/v1/audio/translations", self._recognize, methods=["POST"]),
            Route("/v1/audio/speech", self._speech, methods=["POST"]),
        ]

    # --- the vendor's error body --------------------------------------------------------------
    @staticmethod
    def error(
        status: int, message: str, *, type_: str = "invalid_request_error", param: str | None = None,
        code: str | None = None,
    ) -> JSONResponse:  # fmt: skip
        body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
        return JSONResponse(body, status_code=status)

    async def _gate(self, request: Request, kind: str) -> tuple[Recorded, Response | None]:
        """Record, then apply an injected fault, then check the key, as the vendor would."""
        entry = await self.record(request)
        fault = await self.take_fault()
        if fault is not None and fault.kind == "status":
            return entry, self._fault_error(fault.status, fault.message)
        if fault is not None and fault.kind == "malformed":
            if kind == "speech":
                return entry, Response(b"\x01\x02\x03", media_type="audio/pcm")  # odd-length PCM
            return entry, text_response('{"text": "unterminated')
        auth = entry.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return entry, self.error(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        if auth.removeprefix("Bearer ") != self.api_key:
            shown = auth.removeprefix("Bearer ")[:3] + "*" * 8 + auth[-4:]
            return entry, self.error(
                401,
                f"Incorrect API key provided: {shown}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )
        return entry, None

    def _fault_error(self, status: int, message: str | None) -> JSONResponse:
        if status == 429:
            return self.error(
                429, message or "Rate limit reached for requests. Please try again in 20ms.",
                type_="requests", code="rate_limit_exceeded",
            )  # fmt: skip
        if status == 503:
            return self.error(
                503, message or "The engine is currently overloaded, please try again later.",
                type_="server_error", code="overloaded",
            )  # fmt: skip
        return self.error(
            status, message or "The server had an error while processing your request. Sorry about that!",
            type_="server_error",
        )  # fmt: skip

    # --- recognition --------------------------------------------------------------------------
    async def _recognize(self, request: Request) -> Response:
        entry, refusal = await self._gate(request, "recognize")
        if refusal is not None:
            return refusal
        translate = entry.path.endswith("/translations")
        field = {k: v[-1] for k, v in entry.form.items()}
        upload = entry.files.get("file")
        if upload is None:
            return self.error(
                400, "1 validation error for Request\nbody -> file\n  field required", param="file"
            )
        extension = (upload.filename or "").rsplit(".", 1)[-1].lower()
        if extension not in FILE_FORMATS:
            return self.error(400, f"Invalid file format. Supported formats: {FILE_FORMATS}", param="file")
        if len(upload.data) > 25 * 1024 * 1024:
            return self.error(413, "Maximum content size limit (26214400) exceeded.", param="file")
        model = field.get("model")
        if not model:
            return self.error(400, "you must provide a model parameter", param="model")
        if model not in STT_MODELS or (translate and model != "whisper-1"):
            return self.error(
                404, f"The model `{model}` does not exist or you do not have access to it.",
                code="model_not_found",
            )  # fmt: skip
        response_format = field.get("response_format", "json")
        if response_format not in TEXT_FORMATS:
            return self.error(400, f"Invalid value for 'response_format': {response_format!r}.")
        if response_format == "verbose_json" and model.startswith("gpt-4o"):
            return self.error(
                400, f"response_format 'verbose_json' is not compatible with model '{model}'. "
                "Use 'json' or 'text' instead.", param="response_format",
            )  # fmt: skip
        language = field.get("language")
        if language is not None and not re.fullmatch(r"[a-z]{2,3}", language):
            message = (
                f"Invalid language '{language}'. Language parameter must be specified in ISO-639-1 format."
            )
            return self.error(400, message, param="language", code="invalid_language_format")
        try:
            temperature = float(field.get("temperature", "0"))
        except ValueError:
            temperature = -1.0
        if not 0.0 <= temperature <= 1.0:
            return self.error(400, "temperature must be between 0 and 1", param="temperature")
        granularities = set(entry.form.get("timestamp_granularities[]", []))
        if granularities - {"word", "segment"} or (granularities and response_format != "verbose_json"):
            return self.error(
                400, "timestamp_granularities requires response_format=verbose_json and takes word, segment",
                param="timestamp_granularities",
            )  # fmt: skip

        text = self.transcript
        if response_format == "text":
            return text_response(text + "\n", media_type="text/plain")
        if response_format != "verbose_json":
            return JSONResponse({"text": text})
        spoken = "english" if translate else _NAMES.get(language or "", language) or self.detected_language
        duration = _wav_duration(upload.data) if extension == "wav" else None
        body = _verbose(text, spoken, duration or 1.0, translate, words="word" in granularities)
        if "segment" not in granularities and granularities:
            body.pop("segments")
        return JSONResponse(body)

    # --- speech ------------------------------------------------------------------------------
    async def _speech(self, request: Request) -> Response:
        entry, refusal = await self._gate(request, "speech")
        if refusal is not None:
            return refusal
        try:
            payload = json.loads(entry.body)
            entry.json = payload
        except ValueError:
            return self.error(400, "We could not parse the JSON body of your request.")
        if not isinstance(payload, dict):
            return self.error(400, "The body of your request must be a JSON object.")
        for name in ("model", "input", "voice"):
            if name not in payload:
                return self.error(400, f"Missing required parameter: '{name}'.", param=name)
        if payload["model"] not in TTS_MODELS:
            return self.error(
                404, f"The model `{payload['model']}` does not exist or you do not have access to it.",
                code="model_not_found",
            )  # fmt: skip
        text = payload["input"]
        if not isinstance(text, str) or not text:
            return self.error(400, "Invalid 'input': string too short.", param="input")
        if len(text) > 4096:
            return self.error(
                400, "Invalid 'input': string too long. Expected a string with maximum length 4096."
            )
        if payload["voice"] not in VOICES:
            return self.error(400, f"Invalid value for 'voice': {payload['voice']!r}.", param="voice")
        response_format = payload.get("response_format", "mp3")
        if response_format not in SPEECH_FORMATS:
            return self.error(400, f"Invalid value for 'response_format': {response_format!r}.")
        speed = payload.get("speed", 1.0)
        if not isinstance(speed, int | float) or not 0.25 <= speed <= 4.0:
            return self.error(400, "Invalid 'speed': must be between 0.25 and 4.0.", param="speed")
        pcm = speech_like_pcm(text, PCM_RATE, float(speed))
        if response_format == "pcm":
            return Response(pcm, media_type="audio/pcm")
        if response_format == "wav":
            return Response(_wav(pcm, PCM_RATE), media_type="audio/wav")
        return self.error(501, f"the fake server only produces pcm and wav, not {response_format}")


def _verbose(text: str, language: str, duration: float, translate: bool, *, words: bool) -> dict[str, Any]:
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s] or [""]
    total = sum(len(s) for s in sentences) or 1
    segments: list[dict[str, Any]] = []
    all_words: list[dict[str, Any]] = []
    start = 0.0
    for index, sentence in enumerate(sentences):
        end = round(start + duration * len(sentence) / total, 2)
        segments.append({
            "id": index, "seek": 0, "start": round(start, 2), "end": end, "text": " " + sentence,
            "tokens": [50364 + index], "temperature": 0.0, "avg_logprob": -0.25,
            "compression_ratio": 1.1, "no_speech_prob": 0.01,
        })  # fmt: skip
        tokens = sentence.split()
        step = (end - start) / max(len(tokens), 1)
        for k, token in enumerate(tokens):
            all_words.append({"word": token.strip(".,!?"), "start": round(start + k * step, 2),
                              "end": round(start + (k + 1) * step, 2)})  # fmt: skip
        start = end
    body: dict[str, Any] = {
        "task": "translate" if translate else "transcribe",
        "language": language,
        "duration": round(duration, 2),
        "text": text,
        "segments": segments,
    }
    if words:
        body["words"] = all_words
    return body


def _wav_duration(data: bytes) -> float | None:
    try:
        with wave.open(io.BytesIO(data)) as wav:
            return float(wav.getnframes()) / float(wav.getframerate())
    except (wave.Error, EOFError):
        return None


def _wav(pcm: bytes, rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
    return buffer.getvalue()
