"""``legacy:http``: a legacy voice service behind any OpenAI-compatible audio endpoint.

``POST {base}/audio/transcriptions`` (multipart; ``verbose_json`` for language, duration and segment
confidence, falling back to ``json`` for servers that only speak that, remembered per backend) and
``POST {base}/audio/speech`` (JSON in, audio out). The agent and user travel as ``X-Agent-Id`` /
``X-User-Id`` headers, which voxshift reads and OpenAI ignores. The speech request carries no
``language`` (OpenAI's API has none and the server guesses from the text) unless
``send_language=True`` (voxshift's extension field).

Failures, so the router can tell a bad request from a broken legacy:

* the input's fault (HTTP 413, 415, and 400s about the file or text: voxshift's codes
  ``empty_input``, ``corrupt_audio``, ``audio_too_long``, ... or OpenAI's ``param: file|input``)
  -> the typed input error v2 raises (``PayloadTooLarge``, ``UnsupportedMediaType``, ``EmptyInput``,
  ``CorruptAudio``, ``TextTooLong``, ...). Empty or non-audio input is refused before any request;
* HTTP 401/403 (credentials), 404 and 400s about ``model``/``voice`` (configuration), 503, and
  connection failures -> ``ProviderUnavailable``; a timeout -> ``ProviderTimeout``; 429, other 5xx,
  any other 4xx and bodies that are not what the API documents -> ``ProviderError``.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import httpx

from voxshift.audio.formats import CONTENT_TYPES
from voxshift.core.masking import mask_url
from voxshift.engines.cloud import error_text, parse_json
from voxshift.errors import (
    AudioTooLong,
    ConfigError,
    CorruptAudio,
    EmptyInput,
    InvalidRequest,
    PayloadTooLarge,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    TextTooLong,
    UnsupportedMediaType,
)
from voxshift.legacy.base import (
    LegacySpeech,
    LegacyTranscript,
    begin_synthesis,
    begin_transcription,
    elapsed_ms,
    reported_language,
    voice_for_style,
)

# voxshift's own error codes for a bad input, and the error each one is on this side.
_INPUT_CODES: dict[str, type[InvalidRequest]] = {
    "empty_input": EmptyInput,
    "corrupt_audio": CorruptAudio,
    "audio_too_long": AudioTooLong,
    "file_too_large": PayloadTooLarge,
    "unsupported_media_type": UnsupportedMediaType,
    "text_too_long": TextTooLong,
}
# The extensions OpenAI accepts in the uploaded file's name (it refuses others before decoding).
_OPENAI_EXTENSIONS = frozenset({"flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm"})
_INFO_TIMEOUT_S = 5.0


def _vendor_message(body: Any) -> str | None:
    message = body["error"]["message"]
    return message if isinstance(message, str) else None


def _error_fields(response: httpx.Response) -> tuple[str | None, str | None]:
    """``(param, code)`` of an OpenAI error body, None where absent or not that shape."""
    try:
        error = response.json()["error"]
    except (ValueError, TypeError, KeyError):
        return None, None
    if not isinstance(error, dict):
        return None, None
    param, code = error.get("param"), error.get("code")
    return (param if isinstance(param, str) else None), (code if isinstance(code, str) else None)


class HttpLegacyBackend:
    name = "legacy:http"

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        stt_model: str = "whisper-1",
        tts_model: str = "tts-1",
        voice: str = "alloy",
        timeout_s: float = 60,
        client: httpx.AsyncClient | None = None,
        *,
        send_language: bool = False,
    ) -> None:
        parts = urlsplit(base_url.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(
                f"legacy HTTP base URL {mask_url(base_url)!r}: expected http(s)://host[:port]/v1"
            )
        if not timeout_s > 0:
            raise ConfigError(f"legacy HTTP timeout must be > 0 seconds, got {timeout_s}")
        self.base_url = base_url.strip().rstrip("/")
        self.stt_model = stt_model
        self.tts_model = tts_model
        self.voice = voice
        self.timeout_s = float(timeout_s)
        self.send_language = send_language
        self._api_key = api_key or None
        self._client = client
        self._owns_client = client is None
        self._verbose = True  # cleared once the server refuses verbose_json

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient()
        return self._client

    def _headers(self, user_id: str | None, agent_id: str | None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        if user_id:
            headers["X-User-Id"] = user_id
        if agent_id:
            headers["X-Agent-Id"] = agent_id
        return headers

    # --- speech to text -------------------------------------------------------------------------
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
        start, container, code = begin_transcription(audio, language)
        suffix = PurePosixPath(filename or "").suffix.lower().lstrip(".")
        name = filename if filename and suffix in _OPENAI_EXTENSIONS else f"audio.{container}"
        data = {"model": self.stt_model, **({"language": code} if code else {})}
        headers = self._headers(user_id, agent_id)
        url = f"{self.base_url}/audio/transcriptions"
        files = {"file": (name, audio)}
        response: httpx.Response | None = None
        if self._verbose:
            verbose = {**data, "response_format": "verbose_json"}
            response = await self._send(url, data=verbose, files=files, headers=headers)
            if _refuses_verbose_json(response):  # a json-only server: ask for json from now on
                self._verbose = False
                response = None
            elif not response.is_success:
                raise self._status_error(response)
        if response is None:
            plain = {**data, "response_format": "json"}
            response = await self._post(url, data=plain, files=files, headers=headers)
        body = parse_json(self.name, response)
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            raise ProviderError(self.name, "the transcription response has no text")
        return LegacyTranscript(
            text=body["text"].strip(),
            language=reported_language(body.get("language")) or code,
            confidence=_confidence(body.get("segments")),
            provider_used=response.headers.get("x-voxshift-provider") or self.stt_model,
            processing_time_ms=elapsed_ms(start),
            duration_seconds=_number(body.get("duration")),
            cached=response.headers.get("x-voxshift-cache") == "hit",
        )

    # --- text to speech -------------------------------------------------------------------------
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
        start, code = begin_synthesis(text, format, language)
        payload: dict[str, Any] = {
            "model": self.tts_model,
            "input": text,
            "voice": voice_for_style(voice_style, self.voice),
            "response_format": format,
        }
        if self.send_language and code:
            payload["language"] = code
        response = await self._post(
            f"{self.base_url}/audio/speech", json=payload, headers=self._headers(user_id, agent_id)
        )
        content_type = response.headers.get("content-type", "").split(";")[0].strip()
        if not response.content or content_type.startswith(("application/json", "text/")):
            raise ProviderError(self.name, f"the speech response is not audio ({content_type or 'empty'})")
        return LegacySpeech(
            audio=response.content,
            format=format,
            content_type=content_type or CONTENT_TYPES[format],
            provider_used=response.headers.get("x-voxshift-provider") or self.tts_model,
            processing_time_ms=elapsed_ms(start),
            duration_seconds=_number(response.headers.get("x-voxshift-duration-s")),
        )

    # --- transport and error mapping ------------------------------------------------------------
    async def _post(self, url: str, **kwargs: Any) -> httpx.Response:
        """A 2xx response, or the error its status means."""
        response = await self._send(url, **kwargs)
        if not response.is_success:
            raise self._status_error(response)
        return response

    async def _send(self, url: str, **kwargs: Any) -> httpx.Response:
        """The response whatever its status; transport failures become provider errors."""
        host = urlsplit(url).netloc
        try:
            # httpx bounds each phase; the outer deadline bounds the whole exchange, so a server
            # trickling bytes cannot hold the call longer than timeout_s.
            async with asyncio.timeout(self.timeout_s):
                return await self._http().post(url, timeout=httpx.Timeout(self.timeout_s), **kwargs)
        except (TimeoutError, httpx.TimeoutException):
            raise ProviderTimeout(self.name, f"no answer from {host} within {self.timeout_s:g} s") from None
        except (httpx.ConnectError, httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise ProviderUnavailable(
                self.name, f"cannot reach {host}: {exc or type(exc).__name__}"
            ) from None
        except httpx.HTTPError as exc:
            raise ProviderError(self.name, f"request to {host} failed: {exc or type(exc).__name__}") from None

    def _status_error(self, response: httpx.Response) -> Exception:
        status = response.status_code
        message = error_text(response, _vendor_message)
        param, code = _error_fields(response)
        what = f"HTTP {status}: {message}"
        if code in _INPUT_CODES:
            return _INPUT_CODES[code](message, param=param)
        if status == 413:
            return PayloadTooLarge(message, param=param or "file")
        if status == 415:
            return UnsupportedMediaType(message, param=param or "file")
        if status in (401, 403):
            return ProviderUnavailable(self.name, f"authentication failed ({what})", retryable=False)
        if status == 404 or code == "model_not_found" or param in ("model", "voice"):
            return ProviderUnavailable(self.name, f"misconfigured ({what})", retryable=False)
        if status == 408:
            return ProviderTimeout(self.name, what)
        if status == 429:
            return ProviderError(self.name, f"rate limited ({what})")
        if status == 503:
            return ProviderUnavailable(self.name, f"unavailable ({what})")
        if status >= 500:
            return ProviderError(self.name, f"server error ({what})")
        if param == "file" or "decode" in message.lower() or "corrupt" in message.lower():
            return CorruptAudio(message, param="file")
        if param == "input":
            return InvalidRequest(message, param="input")
        return ProviderError(self.name, f"request refused ({what})", retryable=False)

    # --- lifecycle ------------------------------------------------------------------------------
    async def info(self) -> dict[str, Any]:
        """Availability = ``GET {base}/models`` answers 2xx (with the credentials, if any)."""
        reason: str | None = None
        timeout = min(_INFO_TIMEOUT_S, self.timeout_s)
        try:
            response = await self._http().get(
                f"{self.base_url}/models", headers=self._headers(None, None), timeout=timeout
            )
            if not response.is_success:
                reason = str(self._status_error(response))
        except httpx.HTTPError as exc:
            reason = f"cannot reach {urlsplit(self.base_url).netloc}: {exc or type(exc).__name__}"
        return {
            "name": self.name,
            "available": reason is None,
            "reason": reason,
            "base_url": mask_url(self.base_url),
            "stt_model": self.stt_model,
            "tts_model": self.tts_model,
            "voice": self.voice,
        }

    async def aclose(self) -> None:
        """Close the client if this backend created it; a borrowed client belongs to its owner."""
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None


def _refuses_verbose_json(response: httpx.Response) -> bool:
    if response.status_code != 400:
        return False
    param, _ = _error_fields(response)
    return param == "response_format" or "verbose_json" in response.text


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _confidence(segments: Any) -> float | None:
    """exp of the duration-weighted mean segment avg_logprob (what v2 reports), when segments have it."""
    if not isinstance(segments, list) or not segments:
        return None
    total = weight_sum = 0.0
    for segment in segments:
        if not isinstance(segment, dict):
            return None
        logprob, seg_start, seg_end = (_number(segment.get(k)) for k in ("avg_logprob", "start", "end"))
        if logprob is None or seg_start is None or seg_end is None:
            return None
        weight = max(seg_end - seg_start, 1e-3)
        total += weight * logprob
        weight_sum += weight
    return min(1.0, max(0.0, math.exp(total / weight_sum)))
