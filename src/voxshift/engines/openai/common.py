"""What the OpenAI speech providers share: the key, the base URL, and the error body."""

from __future__ import annotations

from typing import Any

from voxshift.engines.base import Availability
from voxshift.engines.cloud import HTTPProvider

KEY_ENV = "VOXSHIFT_OPENAI_API_KEY"


class OpenAIProvider(HTTPProvider):
    """``Authorization: Bearer <key>`` against ``settings.openai_base_url`` (any OpenAI-compatible server)."""

    name = "openai"

    @property
    def base_url(self) -> str:
        return self.settings.openai_base_url.rstrip("/")

    def _availability(self) -> Availability:
        if self._secret(self.settings.openai_api_key) is None:
            return Availability(False, f"{KEY_ENV} is not set")
        return Availability(True)

    def _auth_headers(self) -> dict[str, str]:
        """The auth header, or ProviderUnavailable before anything touches the network."""
        key = self._secret(self.settings.openai_api_key)
        if key is None:
            raise self._unavailable(f"{KEY_ENV} is not set")
        return {"Authorization": f"Bearer {key}"}


def error_message(body: Any) -> str | None:
    """``{"error": {"message", "type", "param", "code"}}`` -> ``"<message> (<code>)"``."""
    error = body["error"]
    if isinstance(error, str):  # some OpenAI-compatible servers flatten it
        return error
    message = str(error["message"])
    code = error.get("code") or error.get("type")
    return f"{message} ({code})" if code and str(code) not in message else message
