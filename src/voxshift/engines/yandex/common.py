"""What the Yandex SpeechKit v1 providers share: credentials, language codes and the error body.

Authentication (SpeechKit docs, "Authentication with the SpeechKit API"): a service account's API
key goes in ``Authorization: Api-Key <key>``, and then ``folderId`` must not be sent (the key
already belongs to a folder). An IAM token goes in ``Authorization: Bearer <token>`` and needs
``folderId``. ``VOXSHIFT_YANDEX_API_KEY`` holds either; IAM tokens are told apart by their ``t1.``
prefix, and only they require ``VOXSHIFT_YANDEX_FOLDER_ID``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from voxshift.core.language import base_code
from voxshift.engines.base import Availability
from voxshift.engines.cloud import HTTPProvider

KEY_ENV = "VOXSHIFT_YANDEX_API_KEY"
FOLDER_ENV = "VOXSHIFT_YANDEX_FOLDER_ID"
_IAM_PREFIX = "t1."


class YandexProvider(HTTPProvider):
    name = "yandex"

    def _problem(self) -> str | None:
        key = self._secret(self.settings.yandex_api_key)
        if key is None:
            return f"{KEY_ENV} is not set"
        if key.startswith(_IAM_PREFIX) and not self.settings.yandex_folder_id:
            return f"{FOLDER_ENV} is not set (required with an IAM token)"
        return None

    def _availability(self) -> Availability:
        problem = self._problem()
        return Availability(problem is None, problem)

    def _credentials(self) -> tuple[dict[str, str], dict[str, str]]:
        """(headers, extra parameters), or ProviderUnavailable before anything touches the network."""
        problem = self._problem()
        key = self._secret(self.settings.yandex_api_key)
        if problem is not None or key is None:
            raise self._unavailable(problem or f"{KEY_ENV} is not set")
        if key.startswith(_IAM_PREFIX):
            return {"Authorization": f"Bearer {key}"}, {"folderId": self.settings.yandex_folder_id or ""}
        return {"Authorization": f"Api-Key {key}"}, {}


def locale_for(language: str | None, locales: dict[str, str], extra: Iterable[str] = ()) -> str | None:
    """``ru`` -> ``ru-RU``; a full locale SpeechKit knows (``pt-BR``) passes through; else None."""
    if language is None:
        return None
    value = language.strip().replace("_", "-")
    for locale in (*locales.values(), *extra):
        if value.lower() == locale.lower():
            return locale
    return locales.get(base_code(value))


def error_message(body: Any) -> str | None:
    """SpeechKit v1 errors are ``{"error_code": "BAD_REQUEST", "error_message": "..."}``."""
    message = body.get("error_message") or body.get("message")
    if not message:
        return None
    code = body.get("error_code") or body.get("code")
    return f"{message} ({code})" if code else str(message)
