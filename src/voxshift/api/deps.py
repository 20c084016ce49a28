"""Request-scoped access to the application's services, and who is calling."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from voxshift.errors import InvalidRequest
from voxshift.services.router import MigrationRouter
from voxshift.services.runtime import VoiceRuntime
from voxshift.services.voice import VoiceV2Service

# Legacy agent ids run to about 115 characters; user ids are chat-platform ids.
MAX_ID_CHARS = 256


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


def caller(request: Request, user: str | None = None) -> Caller:
    """The user (body ``user`` field, else ``X-User-Id``) and agent (``X-Agent-Id``) of a request."""
    user_id = user or request.headers.get("x-user-id") or None
    agent_id = request.headers.get("x-agent-id") or None
    for name, value in (("X-User-Id", user_id), ("X-Agent-Id", agent_id)):
        if value is not None and (len(value) > MAX_ID_CHARS or not value.strip()):
            raise InvalidRequest(f"{name} must be 1..{MAX_ID_CHARS} non-blank characters", param=name)
    return Caller(user_id, agent_id)
