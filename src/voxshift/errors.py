"""One typed error family.

Every error voxshift raises on purpose knows how it reaches a person: the HTTP status and the
OpenAI-style error ``type``/``code`` for the API, and the exit code for the CLI. Entry points map
these mechanically, so a bad input can never surface as a 500 or a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

EXIT_USAGE = 2  # bad input / bad configuration, as argparse and typer use it
EXIT_FAILURE = 1  # the request was fine but the service could not fulfil it


class VoxshiftError(Exception):
    status: int = 500
    error_type: str = "server_error"
    code: str = "internal_error"
    exit_code: int = EXIT_FAILURE

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code

    def headers(self) -> dict[str, str]:
        return {}

    def to_openai(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


class ConfigError(VoxshiftError):
    """Bad configuration: start-up stops with one line and exit code 2."""

    status = 500
    code = "config_error"
    exit_code = EXIT_USAGE


class InvalidRequest(VoxshiftError):
    status = 400
    error_type = "invalid_request_error"
    code = "invalid_request"
    exit_code = EXIT_USAGE


class EmptyInput(InvalidRequest):
    code = "empty_input"


class TextTooLong(InvalidRequest):
    code = "text_too_long"


class CorruptAudio(InvalidRequest):
    """The container was recognised but its content cannot be decoded (e.g. truncated)."""

    code = "corrupt_audio"


class AudioTooLong(InvalidRequest):
    status = 413
    code = "audio_too_long"


class PayloadTooLarge(InvalidRequest):
    status = 413
    code = "file_too_large"


class UnsupportedMediaType(InvalidRequest):
    status = 415
    code = "unsupported_media_type"


class NotFound(InvalidRequest):
    status = 404
    code = "not_found"


class Overloaded(VoxshiftError):
    """The bounded queue in front of the inference workers is full."""

    status = 503
    error_type = "server_error"
    code = "overloaded"

    def __init__(self, message: str, *, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class ProviderError(VoxshiftError):
    """One provider failed; the chain moves to the next one."""

    status = 502
    error_type = "server_error"
    code = "provider_error"

    def __init__(self, provider: str, message: str, *, retryable: bool = True) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.retryable = retryable


class ProviderUnavailable(ProviderError):
    code = "provider_unavailable"


class InputRejected(ProviderError):
    """A provider refused the request's content (text it cannot speak, a vendor's HTTP 400): the
    caller's input, not the provider's health, so the chain never counts it against a breaker, and
    when no provider took the input the request is answered 400."""

    status = 400
    error_type = "invalid_request_error"
    code = "input_rejected"
    exit_code = EXIT_USAGE

    def __init__(self, provider: str, message: str, *, param: str | None = None) -> None:
        super().__init__(provider, message, retryable=False)
        self.param = param


class ProviderTimeout(ProviderError):
    status = 504
    code = "provider_timeout"


@dataclass(frozen=True)
class AttemptSummary:
    provider: str
    outcome: str
    latency_ms: float
    error: str | None = None


class AllProvidersFailed(VoxshiftError):
    status = 503
    error_type = "server_error"
    code = "all_providers_failed"

    def __init__(self, operation: str, attempts: list[AttemptSummary]) -> None:
        detail = "; ".join(f"{a.provider}: {a.outcome}{f' ({a.error})' if a.error else ''}" for a in attempts)
        super().__init__(f"every {operation} provider failed: {detail or 'no provider configured'}")
        self.operation = operation
        self.attempts = attempts

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "5"}


class StoreUnavailable(VoxshiftError):
    """A backing server (Redis, S3, PostgreSQL) cannot be reached; callers degrade instead of failing."""

    status = 503
    error_type = "server_error"
    code = "store_unavailable"


class VersionConflict(VoxshiftError):
    """An optimistic-concurrency write lost: someone changed the record since it was read."""

    status = 409
    error_type = "invalid_request_error"
    code = "version_conflict"
    exit_code = EXIT_FAILURE  # the input was fine; re-read and retry


class Conflict(InvalidRequest):
    """The request contradicts what is already recorded (e.g. a second rating of one request):
    retrying it unchanged can never succeed, so it is the caller's input, like a 400."""

    status = 409
    code = "conflict"


class Forbidden(VoxshiftError):
    """A request carried credentials that do not grant it (e.g. a tampered or expired signed URL)."""

    status = 403
    error_type = "permission_error"
    code = "forbidden"
    exit_code = EXIT_USAGE


class MigrationFailed(VoxshiftError):
    """voice_v2 failed and the legacy fallback failed too: one error that carries both causes."""

    status = 503
    error_type = "server_error"
    code = "voice_v2_and_legacy_failed"

    def __init__(self, operation: str, v2_error: BaseException, legacy_error: BaseException) -> None:
        super().__init__(
            f"{operation}: voice_v2 failed ({describe_error(v2_error)}) and the legacy fallback failed "
            f"too ({describe_error(legacy_error)})"
        )
        self.operation = operation
        self.v2_error = v2_error
        self.legacy_error = legacy_error
        waits = [e.retry_after_s for e in (v2_error, legacy_error) if isinstance(e, Overloaded)]
        self.retry_after_s = max(waits) if len(waits) == 2 else 5
        if len(waits) == 2:
            self.code = "overloaded"  # both only busy: the client should just retry shortly

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, VoxshiftError):
        return exc.message
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
