"""/admin/v1/whoami and /admin/v1/dashboard: who the token is, and everything a live dashboard
shows in one request (cheap enough to poll every 2-5 s: in-process reads plus a few small queries)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request

from voxshift.api.admin.audit import audit_of
from voxshift.api.admin.auth import Viewer
from voxshift.api.admin.flags import document
from voxshift.api.admin.models import READ, Dashboard, WhoAmI
from voxshift.api.admin.observe import feedback_of, metrics_of
from voxshift.api.admin.rollout import status_and_plan
from voxshift.api.deps import runtime

router = APIRouter(tags=["admin"])
DASHBOARD_AUDIT = 20


@router.get("/whoami", response_model=WhoAmI, responses=READ)
async def whoami(who: Viewer) -> dict[str, Any]:
    """The calling token's name and role."""
    return {"name": who.name, "role": who.role}


@router.get("/dashboard", response_model=Dashboard, responses=READ)
async def dashboard(request: Request, who: Viewer) -> dict[str, Any]:
    """whoami, the rollout status (with the plan's phases and the current criteria), the plan, the
    flags, the metrics dashboard (24 h), feedback (24 h) and the last 20 audit entries."""
    (status, plan), metrics, feedback, audit = await asyncio.gather(
        status_and_plan(request),
        metrics_of(request, 24),
        feedback_of(request, 24),
        audit_of(request, DASHBOARD_AUDIT),
    )
    return {
        "whoami": {"name": who.name, "role": who.role},
        "rollout": status,
        "plan": plan,
        "flags": document(runtime(request).flags),
        "metrics": metrics,
        "feedback": feedback,
        "audit": audit,
    }
