"""Request ids on every voice response, and ``POST /v1/feedback`` to rate the request one names.

:class:`RequestIds` gives each voice request its id before anything else runs, so error answers
(a 400, a 413 from the body limit, a 503) carry one too, for the logs and for support; only answered
requests are remembered (:func:`remember`), so only they can be rated.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voxshift.api.deps import Caller, runtime
from voxshift.api.error_docs import voice_errors
from voxshift.core.vocabulary import Operation
from voxshift.services.feedback.memory import ServedRequest, new_request_id
from voxshift.services.migration.router import Routed

REQUEST_ID_HEADER = "X-Voxshift-Request-Id"
_SCOPE_KEY = "voxshift.request_id"
# The voice endpoints: every answer of these names its request.
VOICE_PATHS = frozenset(
    {
        "/v1/audio/transcriptions",
        "/v1/audio/translations",
        "/v1/audio/speech",
        "/v2/transcribe",
        "/v2/synthesize",
    }
)

router = APIRouter()


class RequestIds:
    """Plain ASGI (like BodyLimit): the header goes on at ``http.response.start``, so streamed
    answers and answers made by other middleware get it without anything buffering the body."""

    def __init__(self, app: ASGIApp, *, paths: frozenset[str] = VOICE_PATHS) -> None:
        self.app = app
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        request_id = scope.setdefault(_SCOPE_KEY, new_request_id())
        header = (REQUEST_ID_HEADER.lower().encode(), request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != header[0]]
                message = {**message, "headers": [*headers, header]}
            await send(message)

        await self.app(scope, receive, send_with_id)


def request_id(request: Request) -> str:
    """This request's id (made here when the app runs without :class:`RequestIds`)."""
    value: str = request.scope.setdefault(_SCOPE_KEY, new_request_id())
    return value


def remember(request: Request, routed: Routed[Any], operation: Operation, who: Caller) -> dict[str, str]:
    """Remember which system answered this request (queued, never waited for) and return the
    response header that names it."""
    rid = request_id(request)
    feedback = runtime(request).feedback
    provider = getattr(routed.result, "provider_used", "")
    feedback.memory.remember(
        ServedRequest(
            request_id=rid,
            operation=operation,
            system=routed.system_used,
            provider=str(provider),
            at=feedback.clock(),
            user_id=who.user_id,
            agent_id=who.agent_id,
            fallback=routed.fallback,
        )
    )
    return {REQUEST_ID_HEADER: rid}


class FeedbackRequest(BaseModel):
    # Strict: "4", 4.0 and true are not ratings, and an unknown field is most likely a typo.
    model_config = ConfigDict(extra="forbid")

    request_id: StrictStr
    rating: StrictInt
    comment: StrictStr | None = None


@router.post("/v1/feedback", status_code=201, responses=voice_errors(404, 409))
async def add_feedback(request: Request, body: FeedbackRequest) -> JSONResponse:
    """Rate an answered voice request 1..5 by its ``X-Voxshift-Request-Id``; once per request."""
    stored = await runtime(request).feedback.add(body.request_id, body.rating, body.comment)
    return JSONResponse(stored.to_dict(), status_code=201)
