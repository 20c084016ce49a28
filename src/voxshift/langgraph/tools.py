"""``voice_tools()``: the two LangChain tools of seed M4.1, for ``langgraph.prebuilt.ToolNode``.

``transcribe_voice_message`` and ``synthesize_voice_response`` run over a :class:`MigrationRouter`
in this process or over a voxshift server. Their ``state`` argument is ``InjectedState``: ToolNode
fills it from the graph state and it is left out of the schema the model sees, so the user (and
with it the cohort) is whatever the graph says, never what the model writes.

Both tools answer a dict (the seed's shapes, :mod:`voxshift.langgraph.results`) and never raise.
Synthesis uses ``content_and_artifact``: when the audio could not be stored for a URL, its bytes
ride on ``ToolMessage.artifact`` instead of flooding the model's context.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, Protocol, TypeVar

from langchain_core.tools import BaseTool, StructuredTool
from langgraph.prebuilt import InjectedState
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from voxshift.config import Settings
from voxshift.errors import InvalidRequest
from voxshift.langgraph import results
from voxshift.langgraph.inprocess import InProcessVoice
from voxshift.langgraph.remote import DEFAULT_TIMEOUT_S, RemoteVoice
from voxshift.langgraph.sources import DOWNLOAD_TIMEOUT_S, AudioSource, SourceLimits, load_source
from voxshift.langgraph.state import ToolCaller, caller_from_state
from voxshift.langgraph.voice_config import VoiceConfig
from voxshift.services.migration.router import MigrationRouter

TRANSCRIBE = "transcribe_voice_message"
SYNTHESIZE = "synthesize_voice_response"
T = TypeVar("T")

Synthesized = tuple[dict[str, Any], results.SpeechArtifact | None]


class VoiceBackend(Protocol):
    @property
    def max_audio_bytes(self) -> int: ...

    async def transcribe(self, source: AudioSource, language: str, caller: ToolCaller) -> dict[str, Any]: ...

    async def synthesize(self, text: str, config: VoiceConfig, caller: ToolCaller) -> Synthesized: ...

    def record_error(self, tool: str, error_type: str) -> None: ...


# The model sees a string; Python callers may pass the bytes themselves.
AudioArg = Annotated[
    bytes | str,
    WithJsonSchema({"type": "string"}),
    Field(
        description="the voice message: an http(s):// URL, a data:audio/...;base64,... URI, or a file path"
    ),
]


class TranscribeArgs(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    audio: AudioArg
    language: str = Field("auto", description="ISO 639-1 code of the speech, or 'auto' to detect it")
    state: Annotated[Any, InjectedState] = None


class SynthesizeArgs(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    text: str = Field(description="the text to speak")
    voice_config: Annotated[VoiceConfig | None, Field(description="how to speak it")] = None
    state: Annotated[Any, InjectedState] = None


def voice_tools(
    router: MigrationRouter | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    *,
    public_url: str | None = None,
    max_audio_bytes: int | None = None,
    download_timeout_s: float = DOWNLOAD_TIMEOUT_S,
    request_timeout_s: float = DEFAULT_TIMEOUT_S,
    audio_dirs: Sequence[str | os.PathLike[str]] | None = None,
) -> list[BaseTool]:
    """``[transcribe_voice_message, synthesize_voice_response]`` over ``router`` or ``base_url``.

    Give exactly one of ``router`` (in-process; call the tools from the event loop the runtime runs
    in) and ``base_url`` (a voxshift server; ``api_key`` is sent as a Bearer token). ``public_url``:
    the server that serves the embedded store's signed paths, to make in-process audio URLs absolute.
    ``max_audio_bytes``: the download limit, by default the service's upload limit. ``audio_dirs``:
    when given, local paths must lie inside these folders.
    """
    backend: VoiceBackend
    if router is not None and base_url is None:
        if api_key is not None:
            raise ValueError("api_key= is for a remote server (base_url=); the router needs none")
        backend = InProcessVoice(router, public_url)
        in_process = True
    elif base_url is not None and router is None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s):// URL, not {base_url!r}")
        limit = max_audio_bytes or Settings.model_fields["max_upload_mb"].default * 1024 * 1024
        backend = RemoteVoice(base_url, api_key, max_audio_bytes=int(limit), timeout_s=request_timeout_s)
        in_process = False
    else:
        raise ValueError("voice_tools() needs exactly one of router= (in-process) or base_url= (remote)")
    limits = SourceLimits.of(max_audio_bytes or backend.max_audio_bytes, download_timeout_s, audio_dirs)

    async def transcribe(audio: bytes | str, language: str = "auto", state: Any = None) -> dict[str, Any]:
        try:
            caller = caller_from_state(state)
            source = await load_source(audio, limits)
            return await backend.transcribe(source, language or "auto", caller)
        except Exception as exc:  # the graph gets an answer, never an exception
            failed = results.failure(exc, "transcription")
            _count(backend, TRANSCRIBE, failed)
            return failed

    async def synthesize(
        text: str, voice_config: VoiceConfig | dict[str, Any] | None = None, state: Any = None
    ) -> Synthesized:
        try:
            caller = caller_from_state(state)
            config = _voice_config(voice_config)
            return await backend.synthesize(text, config, caller)
        except Exception as exc:
            failed = results.failure(exc, "synthesis")
            _count(backend, SYNTHESIZE, failed)
            return failed, None

    return [
        StructuredTool.from_function(
            coroutine=transcribe,
            func=_sync(transcribe, in_process, lambda exc: results.failure(exc, "transcription")),
            name=TRANSCRIBE,
            description=(
                "Transcribe a user's voice message to text. Returns success, text, confidence, "
                "detected_language, provider_used, system_used and processing_time_ms, or success=false "
                "with error and error_type."
            ),
            args_schema=TranscribeArgs,
        ),
        StructuredTool.from_function(
            coroutine=synthesize,
            func=_sync(synthesize, in_process, lambda exc: (results.failure(exc, "synthesis"), None)),
            name=SYNTHESIZE,
            description=(
                "Speak a text as a voice message. Returns success, audio_url (signed, expiring), format, "
                "duration_seconds, provider_used and system_used, or success=false with error and error_type."
            ),
            args_schema=SynthesizeArgs,
            response_format="content_and_artifact",
        ),
    ]


def _count(backend: VoiceBackend, tool: str, failed: dict[str, Any]) -> None:
    try:
        backend.record_error(tool, str(failed["error_type"]))
    except Exception:  # counting an error must not turn it into an exception in the graph
        results.log.exception("%s: could not count an error result", tool)


def _voice_config(value: VoiceConfig | dict[str, Any] | None) -> VoiceConfig:
    if isinstance(value, VoiceConfig):
        return value
    if value is None:
        return VoiceConfig()
    if not isinstance(value, dict):
        raise InvalidRequest("voice_config must be an object", param="voice_config")
    return VoiceConfig.model_validate(value)


def _sync(
    call: Callable[..., Awaitable[T]], in_process: bool, fail: Callable[[Exception], T]
) -> Callable[..., T]:
    """The tool's synchronous form (``graph.invoke``): remote calls run on a private event loop;
    in-process calls cannot, since the runtime's connections belong to the loop it was opened in."""

    def run(**kwargs: Any) -> T:
        if in_process:
            return fail(
                InvalidRequest(
                    "the in-process voice tools are asynchronous: run the graph with ainvoke or astream",
                    code="sync_not_supported",
                )
            )
        try:
            return asyncio.run(_coro(call, kwargs))
        except RuntimeError as exc:  # called on a thread whose event loop is running
            return fail(
                InvalidRequest(
                    f"cannot run the voice tool synchronously here ({exc})", code="sync_not_supported"
                )
            )

    return run


async def _coro(call: Callable[..., Awaitable[T]], kwargs: dict[str, Any]) -> T:
    return await call(**kwargs)
