"""Liveness and readiness: /healthz answers as soon as the process serves, /readyz once engines are loaded.

/readyz also lists the optional backends (state store, object storage) and the inference pools, and
says "degraded" while a backend is down or a pool is stalled (work waiting, no job started or
finished for ``VOXSHIFT_POOL_STALL_S``). Nothing here names a file path or a credential.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from voxshift.api.deps import runtime as runtime_of

router = APIRouter()


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    runtime = runtime_of(request)
    service = runtime.v2
    engines = service.engines
    body: dict[str, Any] = {
        "status": "ready" if service.ready else "loading",
        "engines": {
            f"{info.kind}:{info.name}": {
                "available": info.availability.available,
                **({"reason": info.availability.reason} if info.availability.reason else {}),
            }
            for info in engines.infos()
        },
        "breakers": {name: snap.state for name, snap in engines.breakers.snapshot(time.monotonic()).items()},
        "queue": {"in_flight": engines.pool.in_flight, "capacity": engines.pool.capacity},
    }
    pools = [pool.snapshot() for pool in runtime.pools()]
    body["pools"] = {snap.name: snap.as_dict() for snap in pools}
    # What the router would do right now: where legacy is, and which flag configuration rules.
    body["legacy"] = await runtime.legacy.info()
    flags = runtime.flags.config
    body["flags"] = {
        "version": flags.version,
        "source": runtime.flags.source,
        "enabled": flags.enabled,
        "percentages": {"stt": flags.percentages["stt"], "tts": flags.percentages["tts"]},
    }
    # A dead Redis or S3 degrades caching and URL delivery, not voice: still ready (200), but said.
    monitor = runtime.backends.monitor
    body["dependencies"] = monitor.report()
    # A pool with work waiting and no progress answers nothing in time: said, so an operator (or
    # a load balancer that reads the body) sees it; it clears by itself once jobs move again.
    degraded = [*monitor.degraded, *(f"pool:{snap.name}" for snap in pools if snap.stalled)]
    if service.ready and degraded:
        body["status"] = "degraded"
        body["degraded"] = degraded
    return JSONResponse(body, status_code=200 if service.ready else 503)
