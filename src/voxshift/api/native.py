"""voxshift's native API: the seed's facade shapes (section 4.1), with every attempt made.

``POST /v2/synthesize?delivery=url`` answers with a signed, expiring URL of the audio in the v2 bucket
instead of the bytes (chat platforms fetch voice notes by URL). When object storage is down the
audio comes back inline and the body says so: delivery degrades, the answer does not.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from voxshift.api.deps import caller, client_feature, migration_router, voice_service
from voxshift.api.error_docs import voice_errors
from voxshift.api.feedback import remember
from voxshift.api.openai_audio import read_upload, result_headers

router = APIRouter(prefix="/v2")


@router.post("/transcribe", responses=voice_errors(413, 415, 502, 504))
async def transcribe(
    request: Request,
    file: Annotated[UploadFile, File()],
    language: Annotated[str, Form()] = "auto",
    word_timestamps: Annotated[bool, Form()] = False,
) -> JSONResponse:
    service = voice_service(request)
    who = caller(request)
    data = await read_upload(service, file)
    routed = await migration_router(request).transcribe_audio(
        data,
        language=language,
        user_id=who.user_id,
        agent_id=who.agent_id,
        word_timestamps=word_timestamps,
        filename=file.filename,
        requires=client_feature(request),
    )
    result = routed.result
    headers = result_headers(result.provider_used, result.processing_time_ms, result.cache) | routed.headers()
    headers |= remember(request, routed, "stt", who)
    return JSONResponse(result.to_dict() | routed.routing(), headers=headers)


class SynthesizeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str
    language: str | None = "ru"
    voice_style: str = "natural"
    format: str = "mp3"
    voice: str | None = None
    speed: float = Field(1.0, ge=0.25, le=4.0)
    user_id: str | None = None


@router.post("/synthesize", responses=voice_errors(502, 504))
async def synthesize(
    request: Request,
    body: SynthesizeRequest,
    delivery: Annotated[Literal["inline", "url"], Query()] = "inline",
) -> JSONResponse:
    service = voice_service(request)
    who = caller(request, body.user_id)
    routed = await migration_router(request).synthesize_speech(
        body.text,
        language=body.language,
        voice_style=body.voice_style,
        format=body.format,
        voice=body.voice,
        speed=body.speed,
        user_id=who.user_id,
        agent_id=who.agent_id,
        store=delivery == "url",
        requires=client_feature(request),
    )
    result = routed.result
    url = None
    if delivery == "url" and result.object_key is not None:
        url = await service.signed_url(result.object_key)
    payload: dict[str, Any] = result.to_dict(include_audio=url is None) | routed.routing()
    if url is not None:
        # Local storage signs a path served by this app; S3 returns an absolute URL.
        payload["audio_url"] = url if "://" in url else str(request.base_url).rstrip("/") + url
        payload["audio_url_expires_in_s"] = service.settings.signed_url_ttl_s
        payload["object_key"] = result.object_key
    payload["delivery"] = "url" if url is not None else "inline"
    if delivery == "url" and url is None:
        payload["delivery_degraded"] = "object storage is unavailable; the audio is inline"
    headers = result_headers(result.provider_used, result.processing_time_ms, result.cache) | routed.headers()
    headers |= remember(request, routed, "tts", who)
    return JSONResponse(payload, headers=headers)


@router.get("/cache/stats", responses=voice_errors())
async def cache_stats(request: Request) -> dict[str, Any]:
    service = voice_service(request)
    return {
        "enabled": service.cache is not None and service.caching_enabled,
        "operations": service.cache.stats.snapshot() if service.cache is not None else {},
    }
