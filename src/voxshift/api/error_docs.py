"""How every route documents its errors in /openapi.json: OpenAI's error body, one entry per status.

Every voxshift error leaves the API in OpenAI's shape (``api/errors.py``); the schema says so per
route, and declares a ``4XX`` catch-all so FastAPI does not add its default 422, which this API never
answers (a body or parameter that fails validation is a 400 with the error body).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """OpenAI's error body, as every voxshift error."""

    error: ErrorDetail


WHY = {
    400: "Bad input: a parameter or body field is wrong (`param` names it).",
    401: "No bearer token, or one that was never issued or is revoked (`WWW-Authenticate: Bearer`).",
    403: "The token's role (viewer) may not change anything.",
    404: "Nothing by that name.",
    409: "A conflict: a version changed since it was read, or a guard refused the change.",
    413: "The upload or body is larger than the service accepts (VOXSHIFT_MAX_UPLOAD_MB).",
    415: "The audio's container or codec is not one the service decodes.",
    502: "Both systems failed to answer (voice_v2 and its legacy fallback).",
    503: "Overloaded or a store the answer needs is down; retry after `Retry-After` seconds.",
    504: "The speech engines did not answer in time.",
}
VOICE_KEY_401 = "Only when VOXSHIFT_VOICE_API_KEY is set: no bearer key, or a different one."


def error_responses(*statuses: int, why: dict[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status with the error body, plus the ``4XX`` catch-all."""
    texts = WHY | (why or {})
    out: dict[int | str, dict[str, Any]] = {
        s: {"model": ErrorResponse, "description": texts[s]} for s in sorted(set(statuses))
    }
    out["4XX"] = {"model": ErrorResponse, "description": "Any other client error, with the error body."}
    return out


def voice_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """A voice route's errors: 400, the optional voice key's 401, 503, and ``statuses``."""
    return error_responses(400, 401, 503, *statuses, why={401: VOICE_KEY_401})
