"""The migration's read-only surface: Prometheus metrics, the seed's dashboard data, the flags."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from voxshift.api.deps import runtime

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    body, content_type = runtime(request).metrics.render_prometheus()
    return Response(body, media_type=content_type)


@router.get("/v2/migration/dashboard")
async def dashboard(request: Request, hours: Annotated[int, Query(ge=1, le=168)] = 24) -> dict[str, Any]:
    data: dict[str, Any] = await runtime(request).metrics.get_migration_dashboard_data(hours=hours)
    return data


@router.get("/v2/flags")
async def flags(request: Request) -> dict[str, Any]:
    flags_ = runtime(request).flags
    return {"config": flags_.config.to_json(), "source": flags_.source}


@router.get("/v2/flags/explain")
async def explain(
    request: Request,
    user_id: Annotated[str | None, Query(max_length=256)] = None,
    agent_id: Annotated[str | None, Query(max_length=256)] = None,
) -> dict[str, Any]:
    flags_ = runtime(request).flags
    decisions = {
        op: {"use_v2": d.use_v2, "reason": d.reason, "bucket": d.bucket}
        for op in ("stt", "tts")
        for d in [flags_.decide(op, user_id, agent_id)]
    }
    return {
        "user_id": user_id,
        "agent_id": agent_id,
        "decisions": decisions,
        "explain": flags_.explain(user_id, agent_id),
    }


@router.get("/v2/migration/regression")
async def regression(request: Request, hours: Annotated[int, Query(ge=1, le=168)] = 2) -> dict[str, Any]:
    """The regression detector's verdict per operation (read-only: rollback is `voxshift regression`)."""
    from voxshift.services.regression_watch import check

    metrics = runtime(request).metrics
    report = await check(metrics, metrics.detector, hours=hours)
    return report.to_dict()
