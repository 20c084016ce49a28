"""/admin/v1 read-only views: the migration dashboard data, the regression verdict, feedback
ratings, the seed's success report and its readiness checklists (the documents the CLI's --json
prints, from the same services)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from voxshift.api.admin.auth import Viewer
from voxshift.api.admin.models import READ, FeedbackStats, FreeForm
from voxshift.api.deps import runtime
from voxshift.services.metrics.dashboard import MigrationDashboard
from voxshift.services.migration.regression import RegressionService
from voxshift.services.rollout.readiness import readiness as run_readiness
from voxshift.services.rollout.report import MAX_REPORT_HOURS, success_report

router = APIRouter(tags=["admin: observe"])
Hours = Annotated[int, Query(ge=1, le=168, description="The last N hour buckets (7-day retention).")]


async def metrics_of(request: Request, hours: int = 24) -> dict[str, Any]:
    return await MigrationDashboard(runtime(request).metrics).data(hours=hours)


async def feedback_of(request: Request, hours: int = 24) -> dict[str, Any]:
    summaries = await runtime(request).feedback.stats(hours)
    return {"hours": hours, "ratings": [s.to_dict() for s in summaries]}


@router.get("/metrics", response_model=FreeForm, responses=READ)
async def metrics(request: Request, _: Viewer, hours: Hours = 24) -> dict[str, Any]:
    """The migration dashboard (as `voxshift metrics --json` and GET /v2/migration/dashboard):
    requests, error rates, latency percentiles per system, fallbacks, shadow agreement, cache hits,
    the regression verdict, the rollout percentages."""
    return await metrics_of(request, hours)


@router.get("/regression", response_model=FreeForm, responses=READ)
async def regression(request: Request, _: Viewer, hours: Hours = 2) -> dict[str, Any]:
    """The regression detector's verdict per operation (read-only; as `voxshift regression --json`)."""
    return (await RegressionService(runtime(request).metrics).check(hours=hours)).to_dict()


@router.get("/feedback/stats", response_model=FeedbackStats, responses=READ)
async def feedback_stats(
    request: Request, _: Viewer, hours: Annotated[int, Query(ge=1, le=24 * 366)] = 24
) -> dict[str, Any]:
    """Mean rating, count and 95 % interval per system and operation (as `voxshift feedback stats --json`)."""
    return await feedback_of(request, hours)


@router.get("/report", response_model=FreeForm, responses=READ)
async def report(
    request: Request, _: Viewer, hours: Annotated[int, Query(ge=1, le=MAX_REPORT_HOURS)] = 24
) -> dict[str, Any]:
    """The seed's success metrics (as `voxshift report --format json`): technical, business, summary."""
    return await success_report(runtime(request).settings, hours)


@router.get("/readiness/{stage}", response_model=FreeForm, responses=READ)
async def readiness(
    request: Request,
    stage: Literal["pre", "during", "post"],
    _: Viewer,
    drill_days: Annotated[int, Query(ge=1, le=3650)] = 30,
    hours: Annotated[int, Query(ge=1, le=MAX_REPORT_HOURS)] = 24,
) -> dict[str, Any]:
    """One stage of the seed's readiness checklist (as `voxshift readiness STAGE --json`): `ok`
    and `checks` with status pass/fail/warn/skip and evidence."""
    result = await run_readiness(runtime(request).settings, stage, drill_days=drill_days, hours=hours)
    return result.to_dict()
