"""The FastAPI application: wiring only; behaviour lives in services/."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from voxshift import __version__
from voxshift.api import health, native, openai_audio
from voxshift.api.errors import error_body, install_error_handlers
from voxshift.config import Settings
from voxshift.services.engines import EngineSet, build_engines
from voxshift.services.voice import VoiceV2Service

log = logging.getLogger("voxshift.api")

# Multipart overhead allowed on top of the audio limit before a body is refused unread.
_MULTIPART_SLACK = 64 * 1024


def create_app(settings: Settings, engines: EngineSet | None = None) -> FastAPI:
    engine_set = engines or build_engines(settings)
    service = VoiceV2Service(engine_set)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loader: asyncio.Task[None] | None = None
        if settings.preload_engines and not engine_set.loaded:
            # Serve /healthz at once; /readyz turns 200 when the models are in memory.
            loader = asyncio.create_task(asyncio.to_thread(engine_set.load))
        else:
            engine_set.loaded = True
        try:
            yield
        finally:
            if loader is not None and not loader.done():
                loader.cancel()
            if engines is None:
                await engine_set.aclose()

    app = FastAPI(title="voxshift", version=__version__, lifespan=lifespan)
    app.state.voice = service
    app.state.settings = settings
    install_error_handlers(app)

    limit = settings.max_upload_bytes + _MULTIPART_SLACK

    @app.middleware("http")
    async def refuse_oversized(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        # Refuse by Content-Length before the multipart parser spools a huge body to disk.
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > limit:
            return JSONResponse(
                error_body(
                    f"request body is {int(length) / 1048576:.1f} MB; "
                    f"the limit is {settings.max_upload_mb:g} MB",
                    type_="invalid_request_error",
                    code="file_too_large",
                    param="file",
                ),
                status_code=413,
            )
        return await call_next(request)

    app.include_router(health.router)
    app.include_router(openai_audio.router)
    app.include_router(native.router)
    return app
