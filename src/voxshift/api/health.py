"""Liveness and readiness: /healthz answers as soon as the process serves, /readyz once engines are loaded."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from voxshift.api.deps import voice_service

router = APIRouter()


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    service = voice_service(request)
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
    return JSONResponse(body, status_code=200 if service.ready else 503)
