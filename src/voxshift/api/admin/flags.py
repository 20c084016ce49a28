"""/admin/v1/flags: the running server's FeatureFlags (the same service `voxshift flags` opens),
so a change is audited with the token's name and followed by every replica within about 1 s."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from voxshift.api.admin.auth import Operator, Viewer
from voxshift.api.admin.models import (
    CHANGE,
    READ,
    Explanation,
    FlagChangeResult,
    FlagDocument,
    FlagHistory,
    FlagsPatch,
    ListingBody,
    ReasonBody,
)
from voxshift.api.deps import runtime
from voxshift.core.flags import ANONYMOUS_KEY, OPERATIONS, FlagConfig, bucket, decide, diff, explain
from voxshift.errors import InvalidRequest
from voxshift.services.audit.trail import flag_history
from voxshift.services.flags.service import FeatureFlags

router = APIRouter(tags=["admin: flags"])


def document(flags: FeatureFlags) -> dict[str, Any]:
    return {**flags.config.to_json(), "source": flags.source}


async def _change(
    request: Request, change: Callable[[FlagConfig], FlagConfig], actor: str, reason: str
) -> dict[str, Any]:
    flags = runtime(request).flags
    before = flags.config
    after = await flags.update(change, actor=actor, reason=reason)
    warnings: list[str] = []
    outcome = flags.last_write
    if outcome is not None and outcome.config is after and after.version != before.version:
        if not outcome.audited:
            warnings.append("the settings database is down: this change has no audit row")
        if not outcome.stored:
            warnings.append(
                "the state store is down: servers pick the change up from the database within ~5 s"
            )
    changes = diff(before, after)
    return {
        "changed": bool(changes),
        "version": after.version,
        "changes": changes,
        "warnings": warnings,
        "flags": document(flags),
    }


@router.get("/flags", response_model=FlagDocument, responses=READ)
async def show(request: Request, _: Viewer) -> dict[str, Any]:
    """The flag configuration in force (as `voxshift flags show --json`)."""
    return document(runtime(request).flags)


@router.patch("/flags", response_model=FlagChangeResult, responses=CHANGE)
async def patch(request: Request, body: FlagsPatch, who: Operator) -> dict[str, Any]:
    """Change the flags (as `voxshift flags set`): validated before anything is stored."""
    steps: list[Callable[[FlagConfig], FlagConfig]] = []
    if body.enabled is not None:
        steps.append(partial(replace, enabled=body.enabled))
    by_op: list[tuple[Literal["stt", "tts"] | None, int | None]] = [
        (None, body.percentage),
        ("stt", body.stt_percentage),
        ("tts", body.tts_percentage),
    ]
    for op, pct in by_op:  # both first, so percentage 10 + stt_percentage 20 means what it says
        if pct is not None:
            steps.append(partial(FlagConfig.with_percentage, operation=op, percentage=pct))
    for name, on in (body.features or {}).items():
        FlagConfig().feature(name)  # an unknown name is a 400 naming it, before anything is stored
        steps.append(partial(FlagConfig.with_feature, name=name, on=on))
    if body.anonymous is not None:
        steps.append(partial(replace, anonymous=body.anonymous))
    if not steps:
        raise InvalidRequest(
            "nothing to set: give enabled, percentage, stt_percentage, tts_percentage, features or anonymous"
        )

    def change(config: FlagConfig) -> FlagConfig:
        for step in steps:
            config = step(config)
        return config

    return await _change(request, change, who.actor, body.reason)


@router.post("/flags/kill", response_model=FlagChangeResult, responses=CHANGE)
async def kill(request: Request, body: ReasonBody, who: Operator) -> dict[str, Any]:
    """The kill switch: every request to legacy on every server within about 1 s."""
    return await _change(request, FlagConfig.killed, who.actor, body.reason)


async def _listing(
    request: Request, listing: Literal["allow", "deny"], body: ListingBody, actor: str
) -> dict[str, Any]:
    if (body.user_id is None) == (body.agent_id is None):
        raise InvalidRequest(f"give exactly one of user_id or agent_id to {listing}", param="user_id")

    def change(config: FlagConfig) -> FlagConfig:
        return config.with_listed(listing, user_id=body.user_id, agent_id=body.agent_id, remove=body.remove)

    change(FlagConfig())  # validate the id before anything is stored
    return await _change(request, change, actor, body.reason)


@router.post("/flags/allow", response_model=FlagChangeResult, responses=CHANGE)
async def allow(request: Request, body: ListingBody, who: Operator) -> dict[str, Any]:
    """Force v2 for a user or an agent (`remove`: take it off the list)."""
    return await _listing(request, "allow", body, who.actor)


@router.post("/flags/deny", response_model=FlagChangeResult, responses=CHANGE)
async def deny(request: Request, body: ListingBody, who: Operator) -> dict[str, Any]:
    """Force legacy for a user or an agent (beats any allow)."""
    return await _listing(request, "deny", body, who.actor)


@router.get("/flags/explain", response_model=Explanation, responses=READ)
async def explain_route(
    request: Request,
    _: Viewer,
    user_id: Annotated[str, Query(max_length=256, description="'' for an anonymous request")] = "",
    agent_id: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    operation: Annotated[Literal["stt", "tts"] | None, Query()] = None,
) -> dict[str, Any]:
    """Per operation: v2 or legacy and why, with the user's bucket (as `voxshift flags explain --json`)."""
    config = runtime(request).flags.config  # one snapshot for the decisions and the lines
    ops = [op for op in OPERATIONS if operation in (None, op)]
    decisions: dict[str, Any] = {}
    for op in ops:
        d = decide(config, op, user_id, agent_id)
        decisions[op] = {
            "system": d.system,
            "reason": d.reason,
            "bucket": bucket(user_id or ANONYMOUS_KEY, config.salt[op]),
            "percentage": config.percentages[op],
        }
    lines = [
        line for op, line in zip(OPERATIONS, explain(config, user_id, agent_id), strict=True) if op in ops
    ]
    return {
        "user_id": user_id,
        "agent_id": agent_id,
        "version": config.version,
        "decisions": decisions,
        "explain": lines,
    }


@router.get("/flags/history", response_model=FlagHistory, responses=READ)
async def history(
    request: Request, _: Viewer, limit: Annotated[int, Query(ge=1, le=10_000)] = 50
) -> dict[str, Any]:
    """The flag audit log, newest first."""
    return {"items": await flag_history(runtime(request).backends.database, limit)}
