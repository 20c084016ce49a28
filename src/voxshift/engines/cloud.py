"""What the cloud providers share: an HTTP client, a deadline per call, and failures mapped to errors.

Every way a vendor call can go wrong ends as one :class:`~voxshift.errors.ProviderError` subclass,
so the chain never sees an ``httpx`` exception:

* no credentials, HTTP 401/403 -> ``ProviderUnavailable`` (``retryable=False``): configuration,
  which no retry fixes, and which the chain skips without counting it against the breaker;
* HTTP 429 and 5xx -> ``ProviderError`` (``retryable=True``) carrying the vendor's own message;
* HTTP 400, 413, 415 and 422 -> ``InputRejected``: the vendor refuses this content; another
  provider may take it, and the chain never counts a refusal against the vendor's breaker;
* any other 4xx -> ``ProviderError`` (``retryable=True``);
* no answer in ``settings.timeout_for(name)`` seconds -> ``ProviderTimeout``;
* connection failures and bodies that are not what the vendor documents -> ``ProviderError``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from voxshift.config import Settings
from voxshift.errors import InputRejected, ProviderError, ProviderTimeout, ProviderUnavailable

_MAX_MESSAGE_CHARS = 300

VendorMessage = Callable[[Any], str | None]


class HTTPProvider:
    """Base of the cloud providers: owns (or borrows) one ``httpx.AsyncClient``."""

    name: str = "cloud"

    def __init__(self, settings: Settings, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self._client = client
        self._owns_client = client is None

    @property
    def timeout_s(self) -> float:
        return self.settings.timeout_for(self.name)

    def _http(self) -> httpx.AsyncClient:
        # Created on first use: a provider that is configured but never called holds no sockets,
        # and a provider without a key never creates one at all.
        if self._client is None:
            self._client = httpx.AsyncClient()
        return self._client

    async def aclose(self) -> None:
        """Close the client if this provider created it; a borrowed client belongs to its owner."""
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    @staticmethod
    def _secret(secret: SecretStr | None) -> str | None:
        value = secret.get_secret_value().strip() if secret is not None else ""
        return value or None

    def _unavailable(self, reason: str) -> ProviderUnavailable:
        return ProviderUnavailable(self.name, reason, retryable=False)

    def _cannot_serve(self, reason: str) -> ProviderUnavailable:
        # A request this vendor cannot take (too long, unsupported language): decided before any
        # network call. ProviderUnavailable, not a plain ProviderError, because nothing is wrong
        # with the vendor, so the chain must not count it against the vendor's circuit breaker.
        return ProviderUnavailable(self.name, reason, retryable=True)

    async def _post(self, url: str, *, vendor_message: VendorMessage, **kwargs: Any) -> httpx.Response:
        """POST and return a 2xx response, or raise the ProviderError that describes the failure."""
        timeout = self.timeout_s
        try:
            # httpx's timeout bounds each phase (connect, each read); the outer deadline bounds the
            # whole exchange, so a server that trickles bytes cannot hold the call for longer.
            async with asyncio.timeout(timeout):
                response = await self._http().post(url, timeout=httpx.Timeout(timeout), **kwargs)
        except (TimeoutError, httpx.TimeoutException):
            raise ProviderTimeout(self.name, f"no answer from {_host(url)} within {timeout:g} s") from None
        except httpx.InvalidURL as exc:
            raise self._unavailable(f"invalid URL {url!r}: {exc}") from None
        except httpx.HTTPError as exc:
            detail = str(exc) or type(exc).__name__
            raise ProviderError(self.name, f"cannot reach {_host(url)}: {detail}") from None
        if response.is_success:
            return response
        raise status_error(self.name, response, vendor_message)


def status_error(provider: str, response: httpx.Response, vendor_message: VendorMessage) -> ProviderError:
    status = response.status_code
    message = error_text(response, vendor_message)
    if status in (401, 403):
        reason = f"authentication failed (HTTP {status}): {message}"
        return ProviderUnavailable(provider, reason, retryable=False)
    if status == 429:
        return ProviderError(provider, f"rate limited (HTTP 429): {message}", retryable=True)
    if status >= 500:
        return ProviderError(provider, f"server error (HTTP {status}): {message}", retryable=True)
    if status in (400, 413, 415, 422):
        return InputRejected(provider, f"request rejected (HTTP {status}): {message}")
    return ProviderError(provider, f"request rejected (HTTP {status}): {message}", retryable=True)


def error_text(response: httpx.Response, vendor_message: VendorMessage) -> str:
    """The vendor's own explanation if its error body has the documented shape, else the raw body."""
    message: str | None = None
    try:
        message = vendor_message(response.json())
    except (ValueError, TypeError, KeyError, AttributeError):
        message = None
    if not message:
        message = response.text.strip() or response.reason_phrase or "no details"
    return _shorten(message)


def parse_json(provider: str, response: httpx.Response) -> Any:
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError):
        snippet = _shorten(response.text.strip()) or "an empty body"
        raise ProviderError(provider, f"malformed JSON in the response: {snippet}") from None


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE_CHARS else text[: _MAX_MESSAGE_CHARS - 1] + "…"


def _host(url: str) -> str:
    return urlsplit(url).netloc or url


def json_str(value: Any) -> str:
    """Compact JSON for error messages about unexpected vendor bodies."""
    return _shorten(json.dumps(value, ensure_ascii=False, default=str))
