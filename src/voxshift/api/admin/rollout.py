"""/admin/v1/rollout: the rollout controller's status, its operator commands and its history.

Inside `voxshift serve` the runtime's own controller answers (its webhooks and lease are the
server's); with VOXSHIFT_ROLLOUT_CONTROLLER=false one is opened per request exactly as the CLI
opens it. Either way a command is the same fenced compare-and-set `voxshift rollout` runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from voxshift.api.admin.auth import Operator, Viewer
from voxshift.api.admin.models import (
    CHANGE,
    READ,
    RolloutCommandBody,
    RolloutHistory,
    RolloutOutcome,
    RolloutStatus,
)
from voxshift.api.deps import runtime
from voxshift.errors import InvalidRequest
from voxshift.services.audit.trail import rollout_history
from voxshift.services.rollout.controller import Command, RolloutController
from voxshift.services.wiring.rollout import open_rollout

router = APIRouter(tags=["admin: rollout"])


@asynccontextmanager
async def controller(request: Request, *, notify: bool = True) -> AsyncIterator[RolloutController]:
    rt = runtime(request)
    if rt.rollout is not None:
        yield rt.rollout
        return
    async with open_rollout(rt.settings, notify=notify) as opened:
        yield opened


async def status_of(request: Request) -> dict[str, Any]:
    async with controller(request, notify=False) as c:
        return await c.status()


async def status_and_plan(request: Request) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both from one controller: without the runtime's, opening one is the expensive part."""
    async with controller(request, notify=False) as c:
        return await c.status(), await c.plan_document()


@router.get("/rollout", response_model=RolloutStatus, responses=READ)
async def status(request: Request, _: Viewer) -> dict[str, Any]:
    """Where the rollout is, with the plan and the current step's criteria (as `voxshift rollout
    status --json`)."""
    return await status_of(request)


@router.get("/rollout/history", response_model=RolloutHistory, responses=READ)
async def history(
    request: Request, _: Viewer, limit: Annotated[int, Query(ge=1, le=10_000)] = 50
) -> dict[str, Any]:
    """Every transition with its reason and the numbers behind it, newest first."""
    return {"items": await rollout_history(runtime(request).backends.database, limit)}


async def _command(request: Request, name: Command, body: RolloutCommandBody, actor: str) -> dict[str, Any]:
    reason = body.reason.strip() if body.reason else ""
    if not reason:
        if not body.dry_run:
            raise InvalidRequest("reason is required: say why (it goes to the audit trail)", param="reason")
        reason = "dry run"
    async with controller(request, notify=not body.dry_run) as c:
        outcome = await c.command(name, actor=actor, reason=reason, force=body.force, dry_run=body.dry_run)
    return outcome.to_json()


def _route(name: Command, summary: str) -> None:
    async def command(request: Request, body: RolloutCommandBody, who: Operator) -> dict[str, Any]:
        return await _command(request, name, body, who.actor)

    command.__name__ = f"rollout_{name}"
    router.add_api_route(
        f"/rollout/{name}",
        command,
        methods=["POST"],
        response_model=RolloutOutcome,
        responses=CHANGE,
        summary=summary,
        description=f"As `voxshift rollout {name} --json`; `transition` is null when nothing was to do.",
    )


_route("start", "Start the rollout at the plan's first phase")
_route("pause", "Hold the current phase")
_route("resume", "Continue a paused rollout (force: a halted one)")
_route("promote", "Approve promotion (force: move to the next step now)")
_route("rollback", "Roll back now as the plan's on_failure says")
_route("abort", "Stop the rollout for good: everyone back to legacy")
