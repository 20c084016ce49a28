"""Every failure leaves the API as OpenAI's error body, so the official SDK raises the right exception."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from voxshift.errors import VoxshiftError

log = logging.getLogger("voxshift.api")

_STATUS_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
}


def error_body(message: str, *, type_: str, code: str | None, param: str | None = None) -> dict[str, object]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


async def _voxshift_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, VoxshiftError)
    if exc.status >= 500:
        log.warning("%s: %s", exc.code, exc.message)
    return JSONResponse(exc.to_openai(), status_code=exc.status, headers=exc.headers())


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    loc = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "header", "form")]
    param = ".".join(loc) or None
    message = f"{param}: {first.get('msg')}" if param else str(first.get("msg"))
    if first.get("type") == "missing":
        message = f"missing required parameter: {param}"
    return JSONResponse(
        error_body(message, type_="invalid_request_error", code="invalid_value", param=param), status_code=400
    )


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    type_ = _STATUS_TYPES.get(
        exc.status_code, "server_error" if exc.status_code >= 500 else "invalid_request_error"
    )
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse(
        error_body(str(exc.detail), type_=type_, code=code),
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    # A bug, not a bad input: log it once with the traceback, answer without leaking internals.
    log.exception("unhandled error")
    return JSONResponse(
        error_body("internal error; it has been logged", type_="server_error", code="internal_error"),
        status_code=500,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(VoxshiftError, _voxshift_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
