"""Request bodies are counted as they arrive and refused (413) once past a limit, never buffered whole.

A Content-Length check alone is not enough: a chunked body declares no length, and FastAPI reads a
JSON body whole (then parses it) before any handler could look at its size. So this wraps ``receive``
and counts what the app actually reads, whichever way it reads it. It is plain ASGI on purpose:
BaseHTTPMiddleware gives the app a receive of its own, so it cannot bound what the app reads.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voxshift.api.errors import error_body

MAX_BODY_BYTES = 1024 * 1024
"""Every body that is not a multipart upload: the JSON endpoints (/v1/audio/speech, /v2/synthesize).

The largest legitimate one is a TTS request: 4096 characters (VOXSHIFT_MAX_TEXT_CHARS), even all
\\uXXXX-escaped, are ~25 KB of JSON (~50 KB if every one is outside the BMP). 1 MiB leaves ample room
and still keeps a client from making the server hold and parse tens of MB it will refuse anyway. A
text limit raised past what it covers raises this with it: see ``json_body_limit``."""

MULTIPART_SLACK = 64 * 1024
"""Multipart framing (boundaries, part headers, the small form fields) allowed on top of the audio
limit, so that an upload of exactly VOXSHIFT_MAX_UPLOAD_MB passes and the handler's own check decides."""

_MB = 1024 * 1024
# A character of text costs at most 12 bytes of JSON: a surrogate pair, both halves \uXXXX-escaped.
_JSON_BYTES_PER_CHAR = 12
_JSON_FIELDS_ROOM = 64 * 1024  # model, voice, format, ... beside the text


def json_body_limit(max_text_chars: int) -> int:
    """The limit of a non-multipart body: MAX_BODY_BYTES, unless the text limit needs more."""
    return max(MAX_BODY_BYTES, _JSON_BYTES_PER_CHAR * max_text_chars + _JSON_FIELDS_ROOM)


class BodyTooLarge(Exception):
    """Raised into the app from ``receive`` once the body passes its limit; BodyLimit answers it."""


class BodyLimit:
    """413 with the OpenAI error body for a body past its limit: at once when Content-Length says so,
    else as soon as the bytes received pass it, without reading further.

    ``upload_limit`` applies to multipart/form-data (the audio uploads), ``other_limit`` to the rest;
    ``upload_limit_text`` is how the upload limit is shown (the audio limit the user configured, not
    the slack added to it)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        upload_limit: int,
        upload_limit_text: str,
        other_limit: int = MAX_BODY_BYTES,
    ) -> None:
        self.app = app
        self.upload_limit = upload_limit
        self.upload_limit_text = upload_limit_text
        self.other_limit = other_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
        if media_type == "multipart/form-data":
            limit, shown, param = self.upload_limit, self.upload_limit_text, "file"
        else:
            limit, shown, param = self.other_limit, f"{self.other_limit / _MB:g} MB", None

        declared = _content_length(headers)
        if declared is not None and declared > limit:
            reason = f"request body is {declared / _MB:.1f} MB; the limit is {shown}"
            await _refuse(scope, receive, send, reason, param)
            return

        received = 0
        refused = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            if refused:  # the app asked again after the refusal: nothing more is read
                raise BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                # The app's own answer to the failed read (FastAPI turns it into a 400 "error parsing
                # the body"): the 413 below replaces it, or, if a response was already under way,
                # nothing more is sent and the server closes the connection.
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception as exc:
            if not (refused and _caused_by_refusal(exc)):
                raise
        if refused and not started:
            reason = f"request body is over {received / _MB:.1f} MB; the limit is {shown}"
            await _refuse(scope, receive, send, reason, param)


def _content_length(headers: Headers) -> int | None:
    value = headers.get("content-length", "")
    return int(value) if value.isdigit() else None


async def _refuse(scope: Scope, receive: Receive, send: Send, message: str, param: str | None) -> None:
    body = error_body(message, type_="invalid_request_error", code="file_too_large", param=param)
    await JSONResponse(body, status_code=413)(scope, receive, send)


def _caused_by_refusal(exc: BaseException) -> bool:
    """Whether ``exc`` is BodyTooLarge, or an error the app raised because of it (chained, or in a
    task group's exception group, e.g. a streaming response's disconnect listener)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, BodyTooLarge):
            return True
        if isinstance(current, BaseExceptionGroup):
            return any(_caused_by_refusal(inner) for inner in current.exceptions)
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False
