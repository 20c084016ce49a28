"""The admin API under /admin/v1: everything the CLI does, over HTTP, behind bearer tokens
(viewer reads, operator changes); see docs/admin-api.md."""

from __future__ import annotations

from fastapi import APIRouter

from voxshift.api.admin import agents, audit, backups, flags, observe, overview, rollout, sunset

PREFIX = "/admin/v1"


def admin_router() -> APIRouter:
    router = APIRouter(prefix=PREFIX)
    for part in (overview, flags, rollout, observe, agents, sunset, backups, audit):
        router.include_router(part.router)
    return router
