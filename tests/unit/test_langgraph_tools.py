"""voice_tools() without engines: the schemas a model sees, where the caller comes from, how the
router is called, what comes back, and that nothing raises into the graph.

The router is a recording stand-in with the MigrationRouter's call signature (the real router, with
real engines, is tests/integration/test_langgraph_tools.py); the graph and its ToolNode are real.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.messages import AIMessage, AnyMessage, ToolMessage
from langchain_core.utils.function_calling import convert_to_openai_tool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode
from pydantic import BaseModel

from voxshift.errors import AllProvidersFailed, AttemptSummary
from voxshift.langgraph import SYNTHESIZE, TRANSCRIBE, SpeechArtifact, voice_tools
from voxshift.services.migration.router import Routed
from voxshift.services.voice.results import SynthesisResult, TranscriptionResult

AUDIO = b"RIFF-fake-wav"
TRANSCRIPT = TranscriptionResult(
    text="hello there",
    confidence=0.91234,
    detected_language="en",
    language_probability=0.99,
    provider_used="whisper",
    processing_time_ms=812.34,
    duration_seconds=1.5,
    segments=(),
)


@dataclass
class RecordingRouter:
    """Answers like the MigrationRouter and remembers every call's arguments."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    system: str = "voice_v2"
    stored: bool = True
    fail: Exception | None = None
    v2: Any = None

    def __post_init__(self) -> None:
        async def signed_url(key: str) -> str:
            return f"/v2/objects/voice-v2-files/{key}?expires=99&sig=abc"

        self.v2 = SimpleNamespace(
            settings=SimpleNamespace(max_upload_bytes=1000, signed_url_ttl_s=600), signed_url=signed_url
        )

    async def transcribe_audio(self, audio_data: bytes, **kwargs: Any) -> Routed[TranscriptionResult]:
        self.calls.append(("stt", {"audio_data": audio_data, **kwargs}))
        if self.fail is not None:
            raise self.fail
        return Routed(TRANSCRIPT, self.system, False, "in_cohort")  # type: ignore[arg-type]

    async def synthesize_speech(self, text: str, **kwargs: Any) -> Routed[SynthesisResult]:
        self.calls.append(("tts", {"text": text, **kwargs}))
        if self.fail is not None:
            raise self.fail
        result = SynthesisResult(
            audio=b"ID3-mp3",
            format=kwargs["format"],
            content_type="audio/mpeg",
            duration_seconds=2.25,
            provider_used="piper" if self.system == "voice_v2" else "reference-espeak",
            processing_time_ms=120.0,
            language=kwargs["language"] or "en",
            object_key="audio/a1/2026/11/30/abc.mp3" if self.stored else None,
        )
        return Routed(result, self.system, False, "in_cohort")  # type: ignore[arg-type]


class State(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    user_data: dict[str, Any]
    chat_id: str
    agent_id: str
    agent_type: str
    workflow_step: str


STATE: dict[str, Any] = {
    "user_data": {"user_id": "alice"},
    "chat_id": "chat-7",
    "agent_id": "agent-1",
    "agent_type": "support",
    "workflow_step": "voice_reply",
}


def graph_of(tools: list[Any]) -> Any:
    graph = StateGraph(State)
    graph.add_node("tools", ToolNode(tools))
    graph.add_edge(START, "tools")
    graph.add_edge("tools", END)
    return graph.compile()


def tool_call(name: str, args: dict[str, Any], call_id: str = "c1") -> AIMessage:
    return AIMessage(
        content="", tool_calls=[{"name": name, "args": args, "id": call_id, "type": "tool_call"}]
    )


async def run_tool(router: RecordingRouter, name: str, args: dict[str, Any], **state: Any) -> ToolMessage:
    final = await graph_of(voice_tools(router, public_url="http://voice.example:8000")).ainvoke(
        {"messages": [tool_call(name, args)], **(STATE | state)}
    )
    message = final["messages"][-1]
    assert isinstance(message, ToolMessage)
    return message


def test_the_model_sees_neither_state_nor_user() -> None:
    transcribe, synthesize = voice_tools(RecordingRouter())
    assert (transcribe.name, synthesize.name) == (TRANSCRIBE, SYNTHESIZE)
    t_params = convert_to_openai_tool(transcribe)["function"]["parameters"]
    s_params = convert_to_openai_tool(synthesize)["function"]["parameters"]
    assert set(t_params["properties"]) == {"audio", "language"}
    assert t_params["required"] == ["audio"]
    assert t_params["properties"]["audio"]["type"] == "string"  # bytes are for Python callers only
    assert t_params["properties"]["language"]["default"] == "auto"
    assert set(s_params["properties"]) == {"text", "voice_config"}
    assert s_params["required"] == ["text"]
    schema_text = json.dumps([t_params, s_params])
    for injected in ("state", "user_id", "user_data", "chat_id"):
        assert injected not in schema_text


def test_exactly_one_of_router_and_base_url() -> None:
    with pytest.raises(ValueError, match="exactly one of router"):
        voice_tools()
    with pytest.raises(ValueError, match="exactly one of router"):
        voice_tools(RecordingRouter(), base_url="http://127.0.0.1:8000")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="http"):
        voice_tools(base_url="ftp://127.0.0.1:8000")
    with pytest.raises(ValueError, match="api_key"):
        voice_tools(RecordingRouter(), api_key="k")  # type: ignore[arg-type]


async def test_transcription_through_a_tool_node() -> None:
    router = RecordingRouter()
    message = await run_tool(router, TRANSCRIBE, {"audio": "data:audio/wav;base64,UklGRi1mYWtlLXdhdg=="})
    assert json.loads(str(message.content)) == {
        "success": True,
        "text": "hello there",
        "confidence": 0.9123,
        "detected_language": "en",
        "provider_used": "whisper",
        "system_used": "voice_v2",
        "processing_time_ms": 812.3,
    }
    [(op, call)] = router.calls
    assert op == "stt" and call["audio_data"] == AUDIO
    assert call["user_id"] == "alice" and call["agent_id"] == "agent-1"
    assert call["language"] == "auto" and call["requires"] == "langgraph_integration"
    assert call["context"] == {
        "chat_id": "chat-7",
        "agent_type": "support",
        "agent_id": "agent-1",
        "workflow_step": "voice_reply",
    }


async def test_a_model_cannot_choose_the_user() -> None:
    router = RecordingRouter()
    forged = {
        "audio": "data:audio/wav;base64,UklGRi1mYWtlLXdhdg==",
        "state": {"user_data": {"user_id": "mallory"}, "agent_id": "other"},
        "user_id": "mallory",
    }
    message = await run_tool(router, TRANSCRIBE, forged)
    assert json.loads(str(message.content))["success"] is True
    [(_, call)] = router.calls
    assert (call["user_id"], call["agent_id"]) == ("alice", "agent-1")  # the graph's state won


async def test_synthesis_answers_a_signed_url() -> None:
    router = RecordingRouter()
    args = {"text": "Hi Alice", "voice_config": {"language": "en", "style": "female", "format": "opus"}}
    message = await run_tool(router, SYNTHESIZE, args)
    assert json.loads(str(message.content)) == {
        "success": True,
        "audio_url": "http://voice.example:8000/v2/objects/voice-v2-files/audio/a1/2026/11/30/abc.mp3?expires=99&sig=abc",
        "audio_url_expires_in_s": 600,
        "format": "opus",
        "duration_seconds": 2.25,
        "provider_used": "piper",
        "system_used": "voice_v2",
        "processing_time_ms": 120.0,
    }
    assert message.artifact is None
    [(op, call)] = router.calls
    assert op == "tts" and call["store"] is True and call["requires"] == "langgraph_integration"
    assert (call["language"], call["voice_style"], call["voice"], call["format"]) == (
        "en",
        "female",
        None,
        "opus",
    )
    assert call["user_id"] == "alice"


async def test_audio_that_has_no_url_rides_on_the_artifact() -> None:
    router = RecordingRouter(system="legacy", stored=False)
    message = await run_tool(router, SYNTHESIZE, {"text": "Hi"})
    body = json.loads(str(message.content))
    assert body["audio_url"] is None and body["delivery"] == "inline" and body["system_used"] == "legacy"
    assert "ID3" not in str(message.content)  # the bytes never reach the model's context
    assert message.artifact == SpeechArtifact(b"ID3-mp3", "mp3", "audio/mpeg")
    [(_, call)] = router.calls
    assert (call["language"], call["voice_style"], call["format"]) == (None, "natural", "mp3")


async def test_errors_come_back_as_results() -> None:
    failed = AllProvidersFailed("tts", [AttemptSummary("piper", "provider_error", "boom")])
    router = RecordingRouter(fail=failed)
    message = await run_tool(router, SYNTHESIZE, {"text": "Hi"})
    body = json.loads(str(message.content))
    assert body["success"] is False and body["error_type"] == "all_providers_failed"
    message = await run_tool(router, TRANSCRIBE, {"audio": "data:audio/wav;base64,UklGRi1mYWtlLXdhdg=="})
    assert json.loads(str(message.content))["error_type"] == "all_providers_failed"


async def test_unexpected_errors_carry_no_traceback() -> None:
    router = RecordingRouter(fail=RuntimeError("secret internals at /srv/app.py line 3"))
    body = json.loads(str((await run_tool(router, SYNTHESIZE, {"text": "Hi"})).content))
    assert body == {
        "success": False,
        "error": "the synthesis failed unexpectedly (RuntimeError)",
        "error_type": "internal_error",
        "system_used": "unknown",
    }


async def test_a_bad_user_id_in_the_state_is_an_error_result() -> None:
    router = RecordingRouter()
    message = await run_tool(router, SYNTHESIZE, {"text": "Hi"}, user_data={"user_id": "x" * 300})
    body = json.loads(str(message.content))
    assert body["success"] is False and body["error_type"] == "invalid_request"
    assert router.calls == []


async def test_arguments_of_the_wrong_type_are_a_tool_error_not_an_exception() -> None:
    # Argument validation runs before the tool; ToolNode turns its failure into an error message
    # the model can read and correct.
    router = RecordingRouter()
    message = await run_tool(router, SYNTHESIZE, {"text": "Hi", "voice_config": {"format": 3}})
    assert message.status == "error" and "voice_config.format" in str(message.content)
    assert router.calls == []


async def test_python_callers_pass_bytes_and_an_object_state() -> None:
    class PydanticState(BaseModel):
        user_data: dict[str, Any]
        agent_id: str | None = None

    router = RecordingRouter()
    transcribe, _ = voice_tools(router)
    state = PydanticState(user_data={"user_id": "bob"}, agent_id="a9")
    body = await transcribe.ainvoke({"audio": AUDIO, "language": "en", "state": state})
    assert body["success"] is True
    [(_, call)] = router.calls
    assert (call["audio_data"], call["user_id"], call["agent_id"], call["language"]) == (
        AUDIO,
        "bob",
        "a9",
        "en",
    )


async def test_without_state_the_call_is_anonymous() -> None:
    router = RecordingRouter()
    transcribe, _ = voice_tools(router)
    assert (await transcribe.ainvoke({"audio": AUDIO}))["success"] is True
    assert router.calls[0][1]["user_id"] is None and router.calls[0][1]["context"] == {}


async def test_audio_over_the_service_limit_is_refused_before_the_router() -> None:
    router = RecordingRouter()  # its max upload is 1000 bytes
    transcribe, _ = voice_tools(router)
    body = await transcribe.ainvoke({"audio": b"x" * 1001})
    assert (body["success"], body["error_type"]) == (False, "file_too_large")
    assert router.calls == []


def test_in_process_tools_refuse_sync_calls_with_a_result() -> None:
    transcribe, synthesize = voice_tools(RecordingRouter())
    assert transcribe.invoke({"audio": AUDIO})["error_type"] == "sync_not_supported"
    assert synthesize.invoke({"text": "Hi"})["error_type"] == "sync_not_supported"


def test_import_without_langgraph_says_how_to_install(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "sys.modules['langgraph'] = None\n"
        "try:\n"
        "    import voxshift.langgraph\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert "pip install voxshift[langgraph]" in out.stdout
