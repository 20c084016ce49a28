"""``GET /v2/objects/{bucket}/{key}``: serve an object to whoever holds a valid signed URL.

This is how the embedded store hands out links (S3 presigned URLs are served by the S3 server
itself). The route is self-contained: refusals are rendered here in the API's OpenAI-style error body
so they look the same whether or not the app installed its error handlers.

Bodies are served with their stored Content-Type, plus ``nosniff`` and a sandboxing CSP: the bytes
are user audio, and a stored ``text/html`` must never run as a page on our origin.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from voxshift.errors import NotFound, VoxshiftError
from voxshift.services.wiring.objects import URL_PREFIX, StorageLookup, verify_signed_url


def objects_router(
    get_storage: StorageLookup,
    signing_key: bytes | Callable[[], bytes],
    *,
    clock: Callable[[], float] = time.time,
) -> APIRouter:
    """A router serving signed object URLs.

    ``get_storage(bucket)`` returns the store bound to that bucket, or None for a bucket this app does
    not serve (answered 404 after the signature check, so unsigned probing learns nothing).
    ``signing_key`` is the key the stores sign with, or a callable returning it (read per request,
    so the app may load it lazily at start-up).
    """
    router = APIRouter()
    if isinstance(signing_key, bytes):
        fixed = signing_key

        def key_of() -> bytes:
            return fixed
    else:
        key_of = signing_key

    @router.get(URL_PREFIX + "/{bucket}/{key:path}", include_in_schema=False)
    async def get_object(
        bucket: str,
        key: str,
        expires: Annotated[str | None, Query()] = None,
        sig: Annotated[str | None, Query()] = None,
    ) -> Response:
        try:
            verify_signed_url(key_of(), bucket, key, expires, sig, clock())
            storage = get_storage(bucket)
            if storage is None:
                raise NotFound(f"bucket {bucket!r} is not served here", param="bucket")
            body, info = await storage.get(key)
        except VoxshiftError as exc:
            return JSONResponse(exc.to_openai(), status_code=exc.status, headers=exc.headers())
        remaining = max(0, int(expires or 0) - int(clock()))
        return Response(
            content=body,
            media_type=info.content_type or "application/octet-stream",
            headers={
                "ETag": f'"{info.etag}"',
                "Last-Modified": info.last_modified.strftime("%a, %d %b %Y %H:%M:%S GMT"),
                "Cache-Control": f"private, max-age={remaining}",
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'; sandbox",
            },
        )

    return router
