"""A LangGraph voice agent: transcribe an incoming voice note, answer it, speak the answer.

    python examples/voice_agent.py [audio-file]

Runs offline on voxshift's embedded defaults (settings from the VOICE_V2_* / VOXSHIFT_* environment,
data in VOXSHIFT_DATA_DIR). Without a file, it first speaks a question with the runtime's own TTS and
uses that as the voice note. The chat model is scripted (no LLM is needed): it asks for the
transcription, answers what it heard, and asks for the answer to be spoken, through real tool calls
that a ``ToolNode`` runs over voxshift's MigrationRouter.

On the seed's defaults every user is on the legacy voice service; to see voice_v2 answer, start with
``VOICE_V2_ENABLED=true VOICE_V2_ROLLOUT_PERCENTAGE=100`` and ``VOICE_V2_FEATURES`` with
``langgraph_integration`` true (see docs/langgraph.md).
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import BaseTool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from voxshift.config import load_settings
from voxshift.errors import VoxshiftError
from voxshift.langgraph import SYNTHESIZE, TRANSCRIBE, SpeechArtifact, voice_tools
from voxshift.services.wiring.runtime import open_runtime

QUESTION = "What time does the support team start working tomorrow?"
ANSWER = "Thanks for your voice message. You asked: {text} The support team starts at nine."


class VoiceChatState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    # Who the conversation is with: the tools read these from the state, never from the model.
    user_data: dict[str, Any]
    chat_id: str
    agent_id: str
    agent_type: str
    workflow_step: str


class ScriptedVoiceModel(BaseChatModel):
    """A chat model that follows one script: transcribe the voice note, answer, speak the answer."""

    @property
    def _llm_type(self) -> str:
        return "scripted-voice-agent"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedVoiceModel:
        return self  # the script already knows its two tools

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=next_step(messages))])


def next_step(messages: Sequence[BaseMessage]) -> AIMessage:
    """The script: what the model says after ``messages``."""
    last = messages[-1]
    step = sum(isinstance(m, ToolMessage) for m in messages)
    if isinstance(last, HumanMessage):
        note = str(last.content).removeprefix("voice note: ").strip()
        return _call(TRANSCRIBE, {"audio": note}, step)
    result = json.loads(str(last.content)) if isinstance(last, ToolMessage) else {}
    if not result.get("success"):
        return AIMessage(content=f"Sorry, that did not work: {result.get('error', 'no result')}")
    if isinstance(last, ToolMessage) and last.name == TRANSCRIBE:
        answer = ANSWER.format(text=result["text"].strip())
        voice_config = {"language": result.get("detected_language") or None, "format": "mp3"}
        return _call(SYNTHESIZE, {"text": answer, "voice_config": voice_config}, step)
    spoken = next(m for m in reversed(messages) if isinstance(m, AIMessage) and m.tool_calls)
    return AIMessage(content=spoken.tool_calls[0]["args"]["text"])


def _call(name: str, args: dict[str, Any], step: int) -> AIMessage:
    return AIMessage(
        content="", tool_calls=[{"name": name, "args": args, "id": f"call-{step}", "type": "tool_call"}]
    )


def build_graph(model: BaseChatModel, tools: Sequence[BaseTool]) -> CompiledStateGraph[Any, Any, Any, Any]:
    """agent -> tools -> agent ... until the agent answers without a tool call."""
    bound = model.bind_tools(tools)

    async def agent(state: VoiceChatState) -> dict[str, Any]:
        return {"messages": [await bound.ainvoke(state["messages"])]}

    graph = StateGraph(VoiceChatState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode(tools))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: END})
    graph.add_edge("tools", "agent")
    return graph.compile()


async def main(argv: Sequence[str]) -> int:
    settings = load_settings()
    runtime = await open_runtime(settings)
    await runtime.start(watch_flags=False)
    try:
        with tempfile.TemporaryDirectory(prefix="voice-agent-") as tmp:
            note = Path(argv[0]) if argv else await _spoken_question(runtime.router.v2, Path(tmp))
            tools = voice_tools(runtime.router, public_url=f"http://{settings.host}:{settings.port}")
            graph = build_graph(ScriptedVoiceModel(), tools)
            final = await graph.ainvoke(
                {
                    "messages": [HumanMessage(content=f"voice note: {note}")],
                    "user_data": {"user_id": "example-user"},
                    "chat_id": "example-chat",
                    "agent_id": "voice-example",
                    "agent_type": "support",
                    "workflow_step": "voice_reply",
                }
            )
            return _report(final["messages"])
    except VoxshiftError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    finally:
        await runtime.aclose()


async def _spoken_question(service: Any, folder: Path) -> Path:
    speech = await service.synthesize(QUESTION, language="en", format="wav")
    path = folder / "question.wav"
    path.write_bytes(speech.audio)
    return path


def _report(messages: Sequence[BaseMessage]) -> int:
    results: dict[str | None, tuple[dict[str, Any], ToolMessage | None]] = {
        m.name: (json.loads(str(m.content)), m) for m in messages if isinstance(m, ToolMessage)
    }
    heard = results.get(TRANSCRIBE, ({}, None))[0]
    spoken, spoken_message = results.get(SYNTHESIZE, ({}, None))
    if heard.get("success"):
        print(f"transcript: {heard['text'].strip()}  [{heard['system_used']}, {heard['provider_used']}]")
    else:
        print(f"transcript: none ({heard.get('error_type', 'not transcribed')})")
    print(f"answer: {messages[-1].content}")
    if not spoken.get("success"):
        print(f"audio: none ({spoken.get('error', 'not spoken')})")
        return 1
    url = spoken.get("audio_url")
    artifact = getattr(spoken_message, "artifact", None)
    if url is None and isinstance(artifact, SpeechArtifact):
        # The legacy answered (or storage is down): the audio came inline, on the ToolMessage.
        saved = Path.cwd() / f"voice-agent-answer.{artifact.format}"
        saved.write_bytes(artifact.audio)
        url = saved.as_uri()
    print(f"audio: {url}  [{spoken.get('system_used')}, {spoken.get('provider_used')}]")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
