"""The seed's (M4.1) return shapes of the two tools, and how an error is answered instead of raised.

A tool never raises into the graph: a voxshift error becomes ``success: false`` with its message
and its code (``error_type``), and anything unexpected is logged here with its traceback and
answered as ``internal_error`` without one, so neither the model nor the user sees a stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from voxshift.errors import VoxshiftError

log = logging.getLogger("voxshift.langgraph")


@dataclass(frozen=True)
class SpeechArtifact:
    """Audio that could not be handed over as a URL (the legacy answered, or object storage is
    down): kept on the ToolMessage's ``artifact``, never in the model's context."""

    audio: bytes
    format: str
    content_type: str


def transcription(body: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "success": True,
        "text": body["text"],
        "confidence": body.get("confidence"),
        "detected_language": body.get("detected_language"),
        "provider_used": body.get("provider_used"),
        "system_used": body.get("system_used"),
        "processing_time_ms": body.get("processing_time_ms"),
    }


def synthesis(body: Mapping[str, Any], audio_url: str | None, expires_in_s: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "success": True,
        "audio_url": audio_url,
        "format": body.get("format"),
        "duration_seconds": body.get("duration_seconds"),
        "provider_used": body.get("provider_used"),
        "system_used": body.get("system_used"),
        "processing_time_ms": body.get("processing_time_ms"),
    }
    if audio_url is not None:
        out["audio_url_expires_in_s"] = expires_in_s
    else:
        out["delivery"] = "inline"  # the audio is the ToolMessage's artifact
    return out


def failure(exc: BaseException, operation: str, system_used: str | None = None) -> dict[str, Any]:
    if isinstance(exc, VoxshiftError):
        message, code = exc.message, exc.code
    else:
        log.exception("%s tool: unexpected error", operation, exc_info=exc)
        message, code = f"the {operation} failed unexpectedly ({type(exc).__name__})", "internal_error"
    return {"success": False, "error": message, "error_type": code, "system_used": system_used or "unknown"}
