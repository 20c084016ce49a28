"""voxshift's native API: the seed's facade shapes (section 4.1), with every attempt made."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from voxshift.api.deps import voice_service
from voxshift.api.openai_audio import read_upload, result_headers

router = APIRouter(prefix="/v2")


@router.post("/transcribe")
async def transcribe(
    request: Request,
    file: Annotated[UploadFile, File()],
    language: Annotated[str, Form()] = "auto",
    word_timestamps: Annotated[bool, Form()] = False,
    x_user_id: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    service = voice_service(request)
    data = await read_upload(service, file)
    result = await service.transcribe(
        data, language=language, user_id=x_user_id, word_timestamps=word_timestamps, filename=file.filename
    )
    return JSONResponse(
        result.to_dict(), headers=result_headers(result.provider_used, result.processing_time_ms)
    )


class SynthesizeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str
    language: str | None = "ru"
    voice_style: str = "natural"
    format: str = "mp3"
    voice: str | None = None
    speed: float = Field(1.0, ge=0.25, le=4.0)


@router.post("/synthesize")
async def synthesize(request: Request, body: SynthesizeRequest) -> JSONResponse:
    service = voice_service(request)
    result = await service.synthesize(
        body.text,
        language=body.language,
        voice_style=body.voice_style,
        format=body.format,
        voice=body.voice,
        speed=body.speed,
    )
    payload: dict[str, Any] = result.to_dict(include_audio=True)
    return JSONResponse(payload, headers=result_headers(result.provider_used, result.processing_time_ms))
