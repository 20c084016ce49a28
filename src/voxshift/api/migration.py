"""The migration's read-only surface: Prometheus metrics, the seed's dashboard data, the flags."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from voxshift.api.deps import runtime
from voxshift.api.error_docs import voice_errors
from voxshift.core.flags import FORMAT as FLAG_FORMAT
from voxshift.core.flags import OPERATIONS, FlagConfig, decide
from voxshift.core.flags import explain as explain_lines
from voxshift.services.metrics.dashboard import MigrationDashboard
from voxshift.services.migration.regression import RegressionService

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    body, content_type = runtime(request).metrics.render_prometheus()
    return Response(body, media_type=content_type)


@router.get("/v2/migration/dashboard", responses=voice_errors())
async def dashboard(request: Request, hours: Annotated[int, Query(ge=1, le=168)] = 24) -> dict[str, Any]:
    return await MigrationDashboard(runtime(request).metrics).data(hours=hours)


def public_config(config: FlagConfig) -> dict[str, Any]:
    """The flag config as the unauthenticated API shows it.

    These endpoints have no credentials yet, so the salts and the allow/deny lists stay out: a salt
    lets anyone compute every user's cohort ahead of a rollout, and the lists name users and agents.
    Only whether a salt is set (``salted``) and how many ids each list holds (``allow_counts``,
    ``deny_counts``) are shown. The document is built field by field rather than by deleting keys
    from ``FlagConfig.to_json`` so that a field added there later is not published by default.
    Operators on the host see everything with ``voxshift flags show``.
    """
    return {
        "format": FLAG_FORMAT,
        "version": config.version,
        "enabled": config.enabled,
        "features": config.features.to_json(),
        "percentages": config.percentages.to_json(),
        "anonymous": config.anonymous,
        "salted": {op: bool(config.salt[op]) for op in OPERATIONS},
        "allow_counts": {"users": len(config.allow_users), "agents": len(config.allow_agents)},
        "deny_counts": {"users": len(config.deny_users), "agents": len(config.deny_agents)},
    }


@router.get("/v2/flags", responses=voice_errors())
async def flags(request: Request) -> dict[str, Any]:
    flags_ = runtime(request).flags
    return {"config": public_config(flags_.config), "source": flags_.source}


@router.get("/v2/flags/explain", responses=voice_errors())
async def explain(
    request: Request,
    user_id: Annotated[str | None, Query(max_length=256)] = None,
    agent_id: Annotated[str | None, Query(max_length=256)] = None,
) -> dict[str, Any]:
    # One snapshot, so the decisions and the lines cannot straddle a flag change.
    config = runtime(request).flags.config
    decisions = {
        op: {"use_v2": d.use_v2, "reason": d.reason, "bucket": d.bucket}
        for op in OPERATIONS
        for d in [decide(config, op, user_id, agent_id)]
    }
    # The reasons may say that the ids asked about are on a list; that is no more than routing a
    # request with those ids shows (X-Voxshift-System, decision_reason), and no other id is named.
    lines = [
        _hide_salt(line, config.salt[op])
        for op, line in zip(OPERATIONS, explain_lines(config, user_id, agent_id), strict=True)
    ]
    return {"user_id": user_id, "agent_id": agent_id, "decisions": decisions, "explain": lines}


def _hide_salt(line: str, salt: str) -> str:
    """core.flags.explain ends a line with `` (salt '...')`` for operators; see public_config."""
    return line.replace(f" (salt {salt!r})", " (salted)") if salt else line


@router.get("/v2/migration/regression", responses=voice_errors())
async def regression(request: Request, hours: Annotated[int, Query(ge=1, le=168)] = 2) -> dict[str, Any]:
    """The regression detector's verdict per operation (read-only: rollback is `voxshift regression`)."""
    report = await RegressionService(runtime(request).metrics).check(hours=hours)
    return report.to_dict()
