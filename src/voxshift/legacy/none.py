"""``VOXSHIFT_LEGACY_BACKEND=none``: no legacy service, so v2 runs alone."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from voxshift.errors import ProviderUnavailable
from voxshift.legacy.base import LegacySpeech, LegacyTranscript


class NoLegacyBackend:
    """Every call fails as unavailable: a v2 failure then has nothing to fall back to."""

    name = "legacy:none"

    async def transcribe(
        self,
        audio: bytes,
        language: str = "auto",
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        filename: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> LegacyTranscript:
        raise ProviderUnavailable(self.name, "no legacy voice service is configured")

    async def synthesize(
        self,
        text: str,
        language: str = "ru",
        voice_style: str = "natural",
        *,
        format: str = "mp3",
        user_id: str | None = None,
        agent_id: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> LegacySpeech:
        raise ProviderUnavailable(self.name, "no legacy voice service is configured")

    async def info(self) -> dict[str, Any]:
        return {"name": self.name, "available": False, "reason": "VOXSHIFT_LEGACY_BACKEND=none"}

    async def aclose(self) -> None:
        return None
