"""The FastAPI application: wiring only; behaviour lives in services/."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from voxshift import __version__
from voxshift.api import dashboard, feedback, health, legacy_objects, migration, native, openai_audio
from voxshift.api.admin import admin_router
from voxshift.api.admin.voice_key import VoiceKey
from voxshift.api.body_limit import MULTIPART_SLACK, BodyLimit, json_body_limit
from voxshift.api.errors import install_error_handlers
from voxshift.api.objects import objects_router
from voxshift.config import Settings
from voxshift.services.wiring.backends import Backends
from voxshift.services.wiring.engines import EngineSet, build_engines
from voxshift.services.wiring.objects import ObjectStorage, signing_key
from voxshift.services.wiring.runtime import VoiceRuntime, open_runtime


def create_app(
    settings: Settings, engines: EngineSet | None = None, backends: Backends | None = None
) -> FastAPI:
    """The app; ``engines``/``backends`` given by the caller are borrowed (not closed at shutdown)."""
    engine_set = engines or build_engines(settings)

    def storage_for(bucket: str) -> ObjectStorage | None:
        runtime: VoiceRuntime | None = getattr(app.state, "runtime", None)  # set by the lifespan
        return runtime.storage_for(bucket) if runtime is not None else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Reachability was checked by `voxshift serve` before binding; from here on an outage
        # degrades caching and URL delivery instead of stopping the service.
        runtime = await open_runtime(settings, engines=engine_set, backends=backends)
        app.state.runtime = runtime
        # Serve /healthz at once; with preload, /readyz turns 200 when the models are in memory.
        await runtime.start(preload=settings.preload_engines, sweep=True)
        try:
            yield
        finally:
            await runtime.aclose()
            if engines is None:
                await engine_set.aclose()

    app = FastAPI(title="voxshift", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    install_error_handlers(app)

    # Bodies are counted as they arrive (chunked ones too) and refused before they are buffered or
    # spooled: multipart uploads at the audio limit, every other (JSON) body at 1 MiB
    # (more only if VOXSHIFT_MAX_TEXT_CHARS needs it).
    app.add_middleware(
        BodyLimit,
        upload_limit=settings.max_upload_bytes + MULTIPART_SLACK,
        upload_limit_text=f"{settings.max_upload_mb:g} MB",
        other_limit=json_body_limit(settings.max_text_chars),
    )
    if settings.voice_api_key is not None:  # outside the body limit: a refused request sends no body
        app.add_middleware(VoiceKey, key=settings.voice_api_key.get_secret_value().strip())
    # Outside the body limit, so that its 413 names the request too.
    app.add_middleware(feedback.RequestIds)

    app.include_router(health.router)
    app.include_router(openai_audio.router)
    app.include_router(native.router)
    app.include_router(migration.router)
    app.include_router(feedback.router)
    app.include_router(legacy_objects.router)
    app.include_router(admin_router())
    app.include_router(dashboard.router)
    # Resolved on first use (not per request): the embedded key lives in a file under data_dir.
    app.include_router(objects_router(storage_for, functools.cache(lambda: signing_key(settings))))
    return app
