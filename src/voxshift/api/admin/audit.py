"""/admin/v1/audit: flag changes, rollout transitions and sunset events, merged newest first."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from voxshift.api.admin.auth import Viewer
from voxshift.api.admin.models import READ, AuditList
from voxshift.api.deps import runtime
from voxshift.services.audit.trail import audit_trail

router = APIRouter(tags=["admin: audit"])


async def audit_of(request: Request, limit: int) -> list[dict[str, Any]]:
    return await audit_trail(runtime(request).backends.database, limit)


@router.get("/audit", response_model=AuditList, responses=READ)
async def audit(
    request: Request, _: Viewer, limit: Annotated[int, Query(ge=1, le=10_000)] = 50
) -> dict[str, Any]:
    """Each entry: `at`, `kind` (flags, rollout, sunset), `actor` (`token:<name>` for the admin
    API, `cli:<user>` for the CLI, `rollout-controller` for the controller), `reason`, `summary`."""
    return {"items": await audit_of(request, limit)}
