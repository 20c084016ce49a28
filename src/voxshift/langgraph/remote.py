"""The tools over a voxshift server (``voice_tools(base_url=...)``): its native ``/v2`` endpoints.

Each request says ``X-Voxshift-Client: langgraph``, so the server keeps it on legacy until the
``langgraph_integration`` feature is on, as the in-process tools do; the user and agent travel as
``X-User-Id`` and ``X-Agent-Id``. The server's OpenAI-style error body becomes a voxshift error
with the server's code. One short-lived client per call: a tool may be called from any event loop.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx

from voxshift.errors import VoxshiftError
from voxshift.langgraph import results
from voxshift.langgraph.sources import AudioSource
from voxshift.langgraph.state import ToolCaller
from voxshift.langgraph.voice_config import VoiceConfig

CLIENT_HEADER = "X-Voxshift-Client"
CLIENT_NAME = "langgraph"
DEFAULT_TIMEOUT_S = 120.0


class RemoteError(VoxshiftError):
    """The server answered an error; ``code`` is the server's voxshift error code."""

    def __init__(self, message: str, code: str, status: int) -> None:
        super().__init__(message, code=code)
        self.status = status


class ServiceUnreachable(VoxshiftError):
    status = 503
    code = "service_unreachable"


class RemoteVoice:
    def record_error(self, tool: str, error_type: str) -> None:
        """Nothing here: this process has no voxshift metrics. A call that reached the server was
        recorded there (failures of either system, with the tools' own header)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        max_audio_bytes: int,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        # An OpenAI-style base URL (".../v1") names the same server.
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        self.api_key = api_key
        self.max_audio_bytes = max_audio_bytes
        self.timeout_s = timeout_s

    def _headers(self, caller: ToolCaller) -> dict[str, str]:
        headers = {CLIENT_HEADER: CLIENT_NAME}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        if caller.user_id is not None:
            headers["X-User-Id"] = caller.user_id
        if caller.agent_id is not None:
            headers["X-Agent-Id"] = caller.agent_id
        return headers

    async def _post(self, path: str, caller: ToolCaller, **kwargs: Any) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout_s) as client:
                response = await client.post(path, headers=self._headers(caller), **kwargs)
        except httpx.TimeoutException:
            raise ServiceUnreachable(
                f"voxshift at {self.base_url} did not answer within {self.timeout_s:g} s"
            ) from None
        except httpx.HTTPError as exc:
            raise ServiceUnreachable(
                f"voxshift at {self.base_url} is unreachable ({type(exc).__name__})"
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400:
            error = body.get("error") if isinstance(body, dict) else None
            if isinstance(error, dict):
                message = str(error.get("message") or f"HTTP {response.status_code}")
                raise RemoteError(message, str(error.get("code") or "server_error"), response.status_code)
            raise RemoteError(
                f"voxshift answered HTTP {response.status_code}", "server_error", response.status_code
            )
        if not isinstance(body, dict):
            raise RemoteError("voxshift answered something that is not a JSON object", "bad_response", 502)
        return body

    async def transcribe(self, source: AudioSource, language: str, caller: ToolCaller) -> dict[str, Any]:
        body = await self._post(
            "/v2/transcribe",
            caller,
            files={"file": (source.filename or "audio", source.data, "application/octet-stream")},
            data={"language": language},
        )
        return results.transcription(body)

    async def synthesize(
        self, text: str, config: VoiceConfig, caller: ToolCaller
    ) -> tuple[dict[str, Any], results.SpeechArtifact | None]:
        request = {
            "text": text,
            "language": config.language,
            "voice_style": config.voice_style,
            "format": config.audio_format,
            "voice": config.voice,
        }
        body = await self._post("/v2/synthesize", caller, params={"delivery": "url"}, json=request)
        url = body.get("audio_url")
        shaped = results.synthesis(body, url, body.get("audio_url_expires_in_s"))
        if url is not None:
            return shaped, None
        audio = base64.b64decode(body.get("audio_base64") or "")
        return shaped, results.SpeechArtifact(audio, str(body.get("format")), str(body.get("content_type")))
