"""Request-scoped access to the application's services."""

from __future__ import annotations

from fastapi import Request

from voxshift.services.voice import VoiceV2Service


def voice_service(request: Request) -> VoiceV2Service:
    service: VoiceV2Service = request.app.state.voice
    return service
