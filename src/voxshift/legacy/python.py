"""``legacy:python``: the legacy voice service as a Python object in this process.

``PythonLegacyBackend.from_import_path("package.module:attribute", **kwargs)`` imports the module
and takes the attribute (dots walk into it: ``module:Container.factory``). When the attribute
already has the methods below it is used as it is; otherwise it must be callable (a class or a
factory function) and is called with ``kwargs`` to build the object. A bad path, a missing method or
a failing factory is a :class:`~voxshift.errors.ConfigError` naming the path and the problem.

The adapter signatures, which are the seed's router calls (M2.2):

* required ``transcribe_audio_bytes(audio_data: bytes, language: str)`` returning ``str``, a
  ``dict``, or an object with ``.text``;
* required ``synthesize_speech(text: str, language: str, voice_style: str)`` returning ``bytes``, a
  ``dict``, or an object with ``.audio_data`` / ``.audio`` (the legacy also put it in
  ``.metadata["audio_data"]``). The third parameter may be named ``voice_type`` (the seed's spelling);
* optional keyword parameters, passed only when the method declares them (or ``**kwargs``):
  ``user_id``, ``agent_id``, ``filename`` and ``context`` on both, ``format`` on synthesis;
* optional ``health_check()`` (truthy = healthy) for ``info()``, and ``aclose()``/``close()``/
  ``cleanup()`` for ``aclose()``.

Methods may be ``async def`` or plain functions; plain ones run in a worker thread. Results are read
leniently, the way the legacy ``VoiceProcessingResult`` looks (``success``, ``text``, ``audio_data``,
``provider_used``, ``processing_time``, ``error_message``): ``success: false`` becomes a
``ProviderError`` carrying ``error_message``. An exception from the legacy is a ``ProviderError``
(``TimeoutError`` -> ``ProviderTimeout``, ``ConnectionError`` -> ``ProviderUnavailable``), except
voxshift's own input errors, which pass through unchanged. A synthesis result reports the
container its bytes actually are (sniffed), which may differ from the ``format`` asked for when the
legacy ignores it.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from voxshift.audio.formats import CONTENT_TYPES, UPLOAD_CONTENT_TYPES
from voxshift.audio.sniff import is_adts_frame, sniff_container
from voxshift.errors import (
    ConfigError,
    InvalidRequest,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    VoxshiftError,
)
from voxshift.legacy.base import (
    LegacySpeech,
    LegacyTranscript,
    begin_synthesis,
    begin_transcription,
    elapsed_ms,
    reported_language,
)

REQUIRED = ("transcribe_audio_bytes", "synthesize_speech")


def _resolve(path: str) -> Any:
    module_name, sep, attribute = path.partition(":")
    if not sep or not module_name or not attribute:
        raise ConfigError(f"legacy import path {path!r}: expected 'package.module:attribute'")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or whatever the module raises while importing
        raise ConfigError(f"legacy import path {path!r}: cannot import {module_name}: {exc}") from None
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ConfigError(
                f"legacy import path {path!r}: {module_name} has no attribute {attribute}"
            ) from None
    return target


def _parameter_names(fn: Callable[..., Any]) -> set[str]:
    """Names ``fn`` takes by keyword; ``"**"`` stands for a ``**kwargs`` catch-all."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # builtins and some C callables have no signature
        return set()
    names = {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return names | ({"**"} if any(p.kind is p.VAR_KEYWORD for p in parameters) else set())


def _accepted(fn: Callable[..., Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """The non-None keyword arguments from ``values`` that ``fn`` declares (all, given ``**kwargs``)."""
    declared = _parameter_names(fn)
    return {k: v for k, v in values.items() if v is not None and (k in declared or "**" in declared)}


def _field(result: Any, name: str) -> Any:
    if isinstance(result, Mapping):
        return result.get(name)
    return getattr(result, name, None)


class PythonLegacyBackend:
    name = "legacy:python"

    def __init__(self, service: Any, *, source: str | None = None, timeout_s: float = 60) -> None:
        missing = [m for m in REQUIRED if not callable(getattr(service, m, None))]
        if missing:
            what = f"legacy object {source!r}" if source else f"legacy object {type(service).__name__}"
            raise ConfigError(f"{what} lacks {', '.join(missing)} (required: {', '.join(REQUIRED)})")
        self.service = service
        self.source = source or type(service).__qualname__
        self.timeout_s = float(timeout_s)

    @classmethod
    def from_import_path(cls, path: str, *, timeout_s: float = 60, **kwargs: Any) -> PythonLegacyBackend:
        target = _resolve(path)
        if all(callable(getattr(target, m, None)) for m in REQUIRED) and not inspect.isclass(target):
            if kwargs:
                raise ConfigError(f"legacy import path {path!r} names an object, which takes no arguments")
            return cls(target, source=path, timeout_s=timeout_s)
        if not callable(target):
            missing = ", ".join(m for m in REQUIRED if not callable(getattr(target, m, None)))
            raise ConfigError(f"legacy import path {path!r}: the object lacks {missing} and is not a factory")
        try:
            target = target(**kwargs)
        except Exception as exc:
            raise ConfigError(f"legacy import path {path!r}: the factory failed: {exc}") from None
        if inspect.isawaitable(target):
            if inspect.iscoroutine(target):
                target.close()  # never awaited: close it so Python does not warn
            raise ConfigError(f"legacy import path {path!r}: the factory is async; give a plain one")
        return cls(target, source=path, timeout_s=timeout_s)

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        fn = getattr(self.service, method)
        try:
            async with asyncio.timeout(self.timeout_s):
                if inspect.iscoroutinefunction(fn):
                    return await fn(*args, **kwargs)
                # A blocking legacy must not stall the event loop. On timeout the thread runs on
                # (Python cannot stop it); the caller gets its answer in time all the same.
                result = await asyncio.to_thread(functools.partial(fn, *args, **kwargs))
                return await result if inspect.isawaitable(result) else result
        except VoxshiftError:
            raise  # input errors (and provider errors) raised by a voxshift-aware legacy pass through
        except TimeoutError:
            raise ProviderTimeout(self.name, f"{method} gave no answer within {self.timeout_s:g} s") from None
        except ConnectionError as exc:
            raise ProviderUnavailable(self.name, f"{method}: {type(exc).__name__}: {exc}") from exc
        except Exception as exc:
            raise ProviderError(self.name, f"{method} raised {type(exc).__name__}: {exc}") from exc

    def _check_success(self, method: str, result: Any) -> None:
        if _field(result, "success") is False:
            message = _field(result, "error_message") or _field(result, "error") or "no error message"
            raise ProviderError(self.name, f"{method} failed: {message}")

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
        start, _, code = begin_transcription(audio, language)
        fn = self.service.transcribe_audio_bytes
        extra = _accepted(
            fn, {"user_id": user_id, "agent_id": agent_id, "filename": filename, "context": context}
        )
        result = await self._call("transcribe_audio_bytes", audio, language, **extra)
        record: Any = {"text": result} if isinstance(result, str) else result
        self._check_success("transcribe_audio_bytes", record)
        text = _field(record, "text")
        if not isinstance(text, str):
            raise ProviderError(
                self.name, f"transcribe_audio_bytes returned no text ({type(result).__name__})"
            )
        return LegacyTranscript(
            text=text.strip(),
            language=reported_language(_field(record, "language")) or code,
            confidence=_float(_field(record, "confidence")),
            provider_used=self._provider(record),
            processing_time_ms=elapsed_ms(start),
            duration_seconds=_float(_field(record, "duration_seconds")),
            cached=_field(record, "cached") is True,
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
        start, _ = begin_synthesis(text, format, language)
        fn = self.service.synthesize_speech
        extra = _accepted(
            fn, {"user_id": user_id, "agent_id": agent_id, "context": context, "format": format}
        )
        declared = _parameter_names(fn)
        style = next((n for n in ("voice_style", "voice_type") if n in declared), None)
        if style is not None:
            result = await self._call("synthesize_speech", text, language, **{style: voice_style}, **extra)
        else:
            result = await self._call("synthesize_speech", text, language, voice_style, **extra)
        record: Any = {"audio_data": bytes(result)} if isinstance(result, bytes | bytearray) else result
        audio = self._audio_of(record)
        actual = _container(audio) or format
        return LegacySpeech(
            audio=audio,
            format=actual,
            content_type=CONTENT_TYPES.get(actual)
            or UPLOAD_CONTENT_TYPES.get(actual, "application/octet-stream"),
            provider_used=self._provider(record),
            processing_time_ms=elapsed_ms(start),
            duration_seconds=_float(_field(record, "duration_seconds")),
        )

    def _audio_of(self, result: Any) -> bytes:
        self._check_success("synthesize_speech", result)
        metadata = _field(result, "metadata")
        for candidate in (
            _field(result, "audio_data"),
            _field(result, "audio"),
            metadata.get("audio_data") if isinstance(metadata, Mapping) else None,
        ):
            if isinstance(candidate, bytes | bytearray) and candidate:
                return bytes(candidate)
        raise ProviderError(self.name, f"synthesize_speech returned no audio ({type(result).__name__})")

    def _provider(self, record: Any) -> str:
        used = _field(record, "provider_used")
        used = getattr(used, "value", used)  # the legacy's VoiceProvider enum
        return f"{self.name}:{used}" if isinstance(used, str) and used else self.name

    # --- lifecycle ------------------------------------------------------------------------------
    async def info(self) -> dict[str, Any]:
        available, reason = True, None
        if callable(getattr(self.service, "health_check", None)):
            try:
                healthy = await self._call("health_check")
            except VoxshiftError as exc:
                healthy, reason = False, exc.message
            if not healthy:
                available, reason = False, reason or "health_check() reported the legacy unhealthy"
        return {"name": self.name, "available": available, "reason": reason, "source": self.source}

    async def aclose(self) -> None:
        for method in ("aclose", "close", "cleanup"):
            if callable(getattr(self.service, method, None)):
                await self._call(method)
                return


def _container(audio: bytes) -> str | None:
    """The container of the returned bytes, named like the output formats (Ogg Opus = ``opus``)."""
    if is_adts_frame(audio[:7]):
        return "aac"
    try:
        container = sniff_container(audio)
    except InvalidRequest:  # raw PCM or something unknown: report what was asked for
        return None
    return "opus" if container == "ogg" and b"OpusHead" in audio[:64] else container


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
