"""/admin/v1/agents: per-agent voice settings through the runtime's AgentSettingsService (the one
`voxshift agents` opens): validated strictly, written with an optimistic version, cache refreshed."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from voxshift.api.admin.auth import Operator, Viewer
from voxshift.api.admin.models import CHANGE, AgentDeleted, AgentList, AgentPut, AgentRecord, errors
from voxshift.api.deps import runtime
from voxshift.errors import InvalidRequest
from voxshift.schemas.agent_settings import validate_agent_settings

router = APIRouter(tags=["admin: agents"])
AgentId = Annotated[str, Path(min_length=1, max_length=128)]


@router.get("/agents", response_model=AgentList, responses=errors(400))
async def list_agents(
    request: Request,
    _: Viewer,
    after: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> dict[str, Any]:
    """Agents with stored voice settings, by id; page with `after`."""
    page = await runtime(request).backends.agent_settings.list(after=after, limit=limit)
    return {
        "items": [s.to_json() for s in page],
        "next_after": page[-1].agent_id if len(page) == limit else None,
    }


@router.get("/agents/{agent_id}", response_model=AgentRecord, responses=errors(400, 404))
async def get_agent(request: Request, agent_id: AgentId, _: Viewer) -> dict[str, Any]:
    """One agent's stored settings (from the database, not the cache); 404 when it has none."""
    return (await runtime(request).backends.agent_settings.require(agent_id, fresh=True)).to_json()


@router.put("/agents/{agent_id}", response_model=AgentRecord, responses=CHANGE)
async def put_agent(request: Request, agent_id: AgentId, body: AgentPut, who: Operator) -> dict[str, Any]:
    """Create or replace an agent's settings. `expected_version`: only if the stored version is still
    that (0: create only); a lost race is 409."""
    try:
        validated = validate_agent_settings(body.settings)
    except InvalidRequest as exc:
        param = f"settings.{exc.param}" if exc.param else "settings"
        raise InvalidRequest(f"invalid voice settings: {exc.message}", param=param) from None
    service = runtime(request).backends.agent_settings
    saved = await service.put(agent_id, validated, expected_version=body.expected_version, actor=who.actor)
    return saved.to_json()


@router.delete("/agents/{agent_id}", response_model=AgentDeleted, responses=errors(400, 403, 404, 409))
async def delete_agent(
    request: Request,
    agent_id: AgentId,
    who: Operator,
    expected_version: Annotated[int | None, Query(ge=1)] = None,
) -> dict[str, Any]:
    """Delete an agent's settings (it then gets the defaults); `expected_version`: only if the stored
    version is still that (a lost race is 409). 404 when it has none."""
    service = runtime(request).backends.agent_settings
    current = await service.require(agent_id, fresh=True)
    deleted = await service.delete(agent_id, expected_version=expected_version or current.version)
    return {"agent_id": agent_id, "deleted": deleted, "version": current.version, "by": who.actor}
