"""Request-scoped access to the application's services, and who is calling."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from voxshift.core.ids import check_agent_id, check_id
from voxshift.core.vocabulary import FeatureName
from voxshift.services.migration.router import MigrationRouter
from voxshift.services.voice.service import VoiceV2Service
from voxshift.services.wiring.runtime import VoiceRuntime


def voice_service(request: Request) -> VoiceV2Service:
    return runtime(request).v2


def migration_router(request: Request) -> MigrationRouter:
    return runtime(request).router


def runtime(request: Request) -> VoiceRuntime:
    value: VoiceRuntime = request.app.state.runtime
    return value


@dataclass(frozen=True)
class Caller:
    user_id: str | None
    agent_id: str | None


# Clients that need a feature of their own before they may reach voice_v2 (X-Voxshift-Client).
CLIENT_FEATURES: dict[str, FeatureName] = {"langgraph": "langgraph_integration"}


def client_feature(request: Request) -> FeatureName | None:
    """The feature the calling client needs (the LangGraph tools: ``langgraph_integration``)."""
    return CLIENT_FEATURES.get(request.headers.get("x-voxshift-client", "").strip().lower())


def caller(request: Request, user: str | None = None) -> Caller:
    """The user (body ``user`` field, else ``X-User-Id``) and agent (``X-Agent-Id``) of a request."""
    user_id = user or request.headers.get("x-user-id") or None
    agent_id = request.headers.get("x-agent-id") or None
    # core.ids is the one definition of a usable id, shared with the CLI and the stores, so a blank
    # id is refused everywhere. Requests keep its default bound (256): an agent id longer than a
    # stored one (128) is not an error here, it just has no stored settings.
    if user_id is not None:
        check_id(user_id, "X-User-Id")
    if agent_id is not None:
        check_agent_id(agent_id, "X-Agent-Id")
    return Caller(user_id, agent_id)
