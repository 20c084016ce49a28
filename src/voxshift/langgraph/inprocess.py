"""The tools over a :class:`MigrationRouter` in this process (``voice_tools(router=...)``).

Every call goes through the router like an HTTP request does, so the flags, fallbacks, metrics and
shadow runs apply unchanged; ``requires="langgraph_integration"`` keeps tool calls on legacy until
that feature is on. Synthesized audio is stored in the v2 bucket and handed over as a signed URL.
"""

from __future__ import annotations

from typing import Any

from voxshift.core.vocabulary import FeatureName
from voxshift.langgraph import results
from voxshift.langgraph.sources import AudioSource
from voxshift.langgraph.state import ToolCaller
from voxshift.langgraph.voice_config import VoiceConfig
from voxshift.services.migration.router import MigrationRouter

FEATURE: FeatureName = "langgraph_integration"


class InProcessVoice:
    def __init__(self, router: MigrationRouter, public_url: str | None = None) -> None:
        self.router = router
        # The embedded object store signs a path served by `voxshift serve`; S3 signs absolute URLs.
        self.public_url = public_url.rstrip("/") if public_url else None

    @property
    def max_audio_bytes(self) -> int:
        return self.router.v2.settings.max_upload_bytes

    def record_error(self, tool: str, error_type: str) -> None:
        # MigrationMetrics carries the Prometheus series; a bare recorder (tests) has none.
        prometheus = getattr(getattr(self.router, "metrics", None), "prometheus", None)
        if prometheus is not None:
            prometheus.tool_error(tool, error_type)

    async def transcribe(self, source: AudioSource, language: str, caller: ToolCaller) -> dict[str, Any]:
        routed = await self.router.transcribe_audio(
            source.data,
            language=language,
            user_id=caller.user_id,
            context=caller.context,
            agent_id=caller.agent_id,
            filename=source.filename,
            requires=FEATURE,
        )
        return results.transcription(routed.result.to_dict() | routed.routing())

    async def synthesize(
        self, text: str, config: VoiceConfig, caller: ToolCaller
    ) -> tuple[dict[str, Any], results.SpeechArtifact | None]:
        routed = await self.router.synthesize_speech(
            text,
            language=config.language,
            voice_style=config.voice_style,
            user_id=caller.user_id,
            context=caller.context,
            agent_id=caller.agent_id,
            format=config.audio_format,
            voice=config.voice,
            store=True,
            requires=FEATURE,
        )
        result = routed.result
        service = self.router.v2
        url = await service.signed_url(result.object_key) if result.object_key is not None else None
        if url is not None and "://" not in url and self.public_url is not None:
            url = self.public_url + url
        body = result.to_dict() | routed.routing()
        shaped = results.synthesis(body, url, service.settings.signed_url_ttl_s)
        if url is not None:
            return shaped, None
        return shaped, results.SpeechArtifact(result.audio, result.format, result.content_type)
