"""The OpenAI audio API (/v1/audio/*, /v1/models), so the official SDK works with base_url = voxshift."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from voxshift.api.deps import caller, client_feature, migration_router, voice_service
from voxshift.api.error_docs import VOICE_KEY_401, error_responses, voice_errors
from voxshift.api.feedback import remember
from voxshift.api.subtitles import to_srt, to_vtt
from voxshift.audio.formats import CONTENT_TYPES
from voxshift.core.language import language_name
from voxshift.engines.base import Task
from voxshift.errors import InvalidRequest, NotFound
from voxshift.services.voice.results import SynthesisResult, TranscriptionResult
from voxshift.services.voice.service import VoiceV2Service

router = APIRouter()

STT_MODELS = ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe")
TTS_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")
RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
STREAM_CHUNK = 16 * 1024


def result_headers(provider: str, processing_ms: float, cache: str = "disabled") -> dict[str, str]:
    return {
        "X-Voxshift-Provider": provider,
        "X-Voxshift-Processing-Ms": f"{processing_ms:.1f}",
        "X-Voxshift-Cache": cache,
    }


async def read_upload(service: VoiceV2Service, file: UploadFile) -> bytes:
    data = await file.read(service.settings.max_upload_bytes + 1)  # one byte over is enough to refuse
    service.check_upload_size(len(data))
    return data


def _check_model(model: str, known: tuple[str, ...]) -> None:
    if model not in known:
        raise InvalidRequest(
            f"model {model!r} is not served here; use one of {', '.join(known)}",
            param="model",
            code="model_not_found",
        )


async def _transcribe(
    request: Request,
    *,
    task: Task,
    file: UploadFile,
    model: str,
    language: str | None,
    prompt: str | None,
    response_format: str,
    temperature: float,
    granularities: list[str],
) -> Response:
    service = voice_service(request)
    _check_model(model, STT_MODELS)
    if response_format not in RESPONSE_FORMATS:
        raise InvalidRequest(
            f"response_format {response_format!r} is not supported; use one of {', '.join(RESPONSE_FORMATS)}",
            param="response_format",
        )
    bad = [g for g in granularities if g not in ("word", "segment")]
    if bad:
        raise InvalidRequest(
            f"timestamp_granularities[] {bad[0]!r} is unknown; use word or segment",
            param="timestamp_granularities[]",
        )
    data = await read_upload(service, file)
    who = caller(request)
    routed = await migration_router(request).transcribe_audio(
        data,
        language=language or "auto",
        user_id=who.user_id,
        agent_id=who.agent_id,
        prompt=prompt,
        temperature=temperature,
        word_timestamps="word" in granularities,
        task=task,
        filename=file.filename,
        requires=client_feature(request),
    )
    result = routed.result
    headers = result_headers(result.provider_used, result.processing_time_ms, result.cache) | routed.headers()
    headers |= remember(request, routed, "stt", who)
    return render_transcription(result, response_format, granularities, headers)


def render_transcription(
    result: TranscriptionResult, response_format: str, granularities: list[str], headers: dict[str, str]
) -> Response:
    if response_format == "text":
        return PlainTextResponse(result.text + "\n", headers=headers)
    if response_format == "srt":
        return PlainTextResponse(to_srt(result.segments), headers=headers)
    if response_format == "vtt":
        return PlainTextResponse(to_vtt(result.segments), media_type="text/vtt", headers=headers)
    if response_format == "json":
        return JSONResponse({"text": result.text}, headers=headers)
    body: dict[str, Any] = {
        "task": result.task,
        "language": language_name(result.detected_language),
        "duration": round(result.duration_seconds, 3),
        "text": result.text,
        "segments": [
            {
                "id": s.id,
                "seek": 0,
                "start": round(s.start, 3),
                "end": round(s.end, 3),
                "text": s.text,
                "tokens": [],
                "temperature": 0.0,
                "avg_logprob": s.avg_logprob,
                "compression_ratio": 1.0,
                "no_speech_prob": s.no_speech_prob,
            }
            for s in result.segments
        ],
    }
    if "word" in granularities:
        body["words"] = [
            {"word": w.word.strip(), "start": round(w.start, 3), "end": round(w.end, 3)}
            for s in result.segments
            for w in (s.words or ())
        ]
    return JSONResponse(body, headers=headers)


Granularities = Annotated[list[str], Form(alias="timestamp_granularities[]")]


@router.post("/v1/audio/transcriptions", responses=voice_errors(413, 415, 502, 504))
async def transcriptions(
    request: Request,
    file: Annotated[UploadFile, File()],
    model: Annotated[str, Form()],
    language: Annotated[str | None, Form()] = None,
    prompt: Annotated[str | None, Form()] = None,
    response_format: Annotated[str, Form()] = "json",
    temperature: Annotated[float, Form()] = 0.0,
    timestamp_granularities: Granularities = [],  # noqa: B006 - FastAPI copies defaults
) -> Response:
    return await _transcribe(
        request,
        task="transcribe",
        file=file,
        model=model,
        language=language,
        prompt=prompt,
        response_format=response_format,
        temperature=temperature,
        granularities=timestamp_granularities,
    )


@router.post("/v1/audio/translations", responses=voice_errors(413, 415, 502, 504))
async def translations(
    request: Request,
    file: Annotated[UploadFile, File()],
    model: Annotated[str, Form()],
    prompt: Annotated[str | None, Form()] = None,
    response_format: Annotated[str, Form()] = "json",
    temperature: Annotated[float, Form()] = 0.0,
) -> Response:
    return await _transcribe(
        request,
        task="translate",
        file=file,
        model=model,
        language=None,
        prompt=prompt,
        response_format=response_format,
        temperature=temperature,
        granularities=[],
    )


class SpeechRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str
    input: str
    voice: str
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    speed: float = Field(1.0, ge=0.25, le=4.0)
    instructions: str | None = None  # accepted for compatibility; local engines have no instructable voice
    language: str | None = None  # voxshift extension: the OpenAI API has none, so it is guessed from the text
    user: str | None = None  # end-user id (as in OpenAI's other endpoints); else the X-User-Id header


async def _chunks(audio: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(audio), STREAM_CHUNK):
        yield audio[start : start + STREAM_CHUNK]


def audio_response(result: SynthesisResult, extra: dict[str, str] | None = None) -> StreamingResponse:
    headers = result_headers(result.provider_used, result.processing_time_ms, result.cache) | (extra or {})
    headers["X-Voxshift-Duration-S"] = f"{result.duration_seconds:.3f}"
    return StreamingResponse(_chunks(result.audio), media_type=result.content_type, headers=headers)


SPEECH_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The audio, in the requested format.",
        "content": {
            ct: {"schema": {"type": "string", "format": "binary"}}
            for ct in sorted(set(CONTENT_TYPES.values()))
        },
    },
    **voice_errors(502, 504),
}


@router.post("/v1/audio/speech", responses=SPEECH_RESPONSES)
async def speech(request: Request, body: SpeechRequest) -> StreamingResponse:
    _check_model(body.model, TTS_MODELS)
    who = caller(request, body.user)
    routed = await migration_router(request).synthesize_speech(
        body.input,
        language=body.language,
        format=body.response_format,
        voice=body.voice,
        speed=body.speed,
        user_id=who.user_id,
        agent_id=who.agent_id,
        requires=client_feature(request),
    )
    return audio_response(routed.result, routed.headers() | remember(request, routed, "tts", who))


@router.get("/v1/models", responses=error_responses(401, why={401: VOICE_KEY_401}))
async def models() -> dict[str, Any]:
    return {"object": "list", "data": [_model(m) for m in (*STT_MODELS, *TTS_MODELS)]}


@router.get("/v1/models/{model_id}", responses=error_responses(401, 404, why={401: VOICE_KEY_401}))
async def model(model_id: str) -> dict[str, Any]:
    if model_id not in (*STT_MODELS, *TTS_MODELS):
        raise NotFound(f"model {model_id!r} does not exist", param="model", code="model_not_found")
    return _model(model_id)


def _model(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": "voxshift"}
