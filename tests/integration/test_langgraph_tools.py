"""The LangGraph voice tools with real engines: a compiled graph (ToolNode) over a real runtime, and
over a real `voxshift serve`.

In-process: Whisper base and Piper on v2, the reference legacy (Whisper tiny.en, espeak-ng), the
rollout at 50 % so that "alice" (bucket 0) is in the v2 cohort and "carol" (bucket 56) is not, and
the ``langgraph_integration`` flag deciding whether tool calls may reach v2 at all. The example's
graph and scripted model (examples/voice_agent.py) are the graph under test.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import os
import sys
import threading
import time
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from tests.conftest import speech_to_wav
from tests.integration.cli_helpers import run
from tests.integration.server import RunningServer, free_port, start_server
from voxshift.audio.decode import probe
from voxshift.config import Settings
from voxshift.core.flags import bucket
from voxshift.engines.base import TTSRequest
from voxshift.langgraph import SYNTHESIZE, TRANSCRIBE, voice_tools
from voxshift.services.wiring.objects import signing_key, verify_signed_url
from voxshift.services.wiring.runtime import VoiceRuntime, open_runtime

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

SENTENCE = "Please send the report to the team today."
V2_USER, LEGACY_USER = "alice", "carol"
FEATURES = {"stt_enabled": True, "tts_enabled": True, "langgraph_integration": True, "caching_enabled": False}
VOICE_KEY = "langgraph-test-voice-key"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "voice_agent.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("voice_agent_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its annotations are strings, resolved in its module's globals
    spec.loader.exec_module(module)
    return module


example = load_example()


def state(user_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "user_data": {"user_id": user_id},
        "chat_id": f"chat-{user_id}",
        "agent_id": "support-bot",
        "agent_type": "support",
        "workflow_step": "voice_reply",
        **extra,
    }


def words(text: str) -> set[str]:
    return {w.strip(".,!?").lower() for w in text.split()}


def heard_right(text: str) -> bool:
    return len(words(text) & words(SENTENCE)) >= len(words(SENTENCE)) - 2


def tool_results(messages: list[Any]) -> dict[str, tuple[dict[str, Any], ToolMessage]]:
    return {m.name: (json.loads(str(m.content)), m) for m in messages if isinstance(m, ToolMessage)}


async def test_the_chosen_users_are_on_either_side_of_50_percent() -> None:
    assert bucket(V2_USER) < 50 <= bucket(LEGACY_USER)


@pytest.fixture(scope="module")
def question_wav(piper: Any) -> bytes:
    return speech_to_wav(asyncio.run(piper.synthesize(TTSRequest(SENTENCE, "en"))))


@pytest.fixture(scope="module")
def audio_http(tmp_path_factory: pytest.TempPathFactory, question_wav: bytes) -> Iterator[str]:
    """A plain local web server with the voice note at /note.wav (anything else is 404)."""
    folder = tmp_path_factory.mktemp("audio-http")
    (folder / "note.wav").write_bytes(question_wav)

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
async def runtime(
    tmp_path_factory: pytest.TempPathFactory, settings: Settings
) -> AsyncIterator[VoiceRuntime]:
    opened = await open_runtime(
        Settings(
            data_dir=tmp_path_factory.mktemp("langgraph-runtime"),
            whisper_model_dir=settings.whisper_model_dir,
            workers=2,
            voice_v2_enabled=True,
            voice_v2_rollout_percentage=50,
            voice_v2_features=FEATURES,
        ),
        check=True,
    )
    await opened.start(watch_flags=False)
    yield opened
    await opened.aclose()


def prometheus(runtime: VoiceRuntime) -> str:
    return runtime.metrics.render_prometheus()[0].decode()


def counter(text: str, name: str, **labels: str) -> float:
    """The value of one Prometheus sample with exactly these labels (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(part.split("=", 1) for part in line[line.index("{") + 1 : line.index("}")].split(","))
        if {k: v.strip('"') for k, v in found.items()} == labels:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def set_langgraph(runtime: VoiceRuntime, on: bool) -> None:
    await runtime.flags.update(
        lambda c: replace(c, features=replace(c.features, langgraph_integration=on)),
        actor="test",
        reason="langgraph tools test",
    )


async def test_the_example_graph_transcribes_answers_and_speaks_for_a_v2_user(
    runtime: VoiceRuntime, question_wav: bytes
) -> None:
    graph = example.build_graph(example.ScriptedVoiceModel(), voice_tools(runtime.router))
    note = "data:audio/wav;base64," + base64.b64encode(question_wav).decode()
    final = await graph.ainvoke({"messages": [HumanMessage(content=f"voice note: {note}")], **state(V2_USER)})
    results = tool_results(final["messages"])
    heard, _ = results[TRANSCRIBE]
    assert heard["success"] is True and heard_right(heard["text"])
    assert (heard["system_used"], heard["provider_used"], heard["detected_language"]) == (
        "voice_v2",
        "whisper",
        "en",
    )
    assert 0 < heard["confidence"] <= 1 and heard["processing_time_ms"] > 0
    spoken, message = results[SYNTHESIZE]
    assert (spoken["success"], spoken["system_used"], spoken["provider_used"]) == (True, "voice_v2", "piper")
    assert spoken["format"] == "mp3" and spoken["duration_seconds"] > 1
    assert spoken["audio_url_expires_in_s"] == runtime.settings.signed_url_ttl_s
    assert message.artifact is None
    # The URL is the embedded store's signed link to the stored answer, under the graph's agent.
    url = httpx.URL(spoken["audio_url"])
    bucket_name, key = url.path.removeprefix("/v2/objects/").split("/", 1)
    assert key.startswith("audio/support-bot/") and key.endswith(".mp3")
    verify_signed_url(
        signing_key(runtime.settings), bucket_name, key, url.params["expires"], url.params["sig"], time.time()
    )
    objects = runtime.storage_for(bucket_name)
    assert objects is not None
    body, info = await objects.get(key)
    assert info.content_type == "audio/mpeg" and probe(body)[0] == "mp3"
    # The model's last word is the spoken text, which quotes what it heard.
    answer = final["messages"][-1]
    assert isinstance(answer, AIMessage) and answer.content.startswith("Thanks for your voice message.")


async def test_a_user_outside_the_cohort_is_served_by_legacy(runtime: VoiceRuntime, audio_http: str) -> None:
    graph = example.build_graph(example.ScriptedVoiceModel(), voice_tools(runtime.router))
    final = await graph.ainvoke(
        {"messages": [HumanMessage(content=f"voice note: {audio_http}/note.wav")], **state(LEGACY_USER)}
    )
    results = tool_results(final["messages"])
    heard, _ = results[TRANSCRIBE]
    assert (heard["success"], heard["system_used"]) == (True, "legacy")
    assert heard["provider_used"] == "reference-whisper-tiny.en" and heard_right(heard["text"])
    spoken, message = results[SYNTHESIZE]
    assert (spoken["success"], spoken["system_used"], spoken["provider_used"]) == (
        True,
        "legacy",
        "reference-espeak",
    )
    # The legacy's audio is kept where v2 signs URLs, so the agent gets a link whichever system spoke.
    assert spoken["audio_url"] and "delivery" not in spoken and message.artifact is None
    url = httpx.URL(spoken["audio_url"])
    bucket_name, key = url.path.removeprefix("/v2/objects/").split("/", 1)
    assert key.startswith("audio/support-bot/") and key.endswith(".mp3")
    objects = runtime.storage_for(bucket_name)
    assert objects is not None
    body, info = await objects.get(key)
    assert probe(body)[0] == "mp3" and info.metadata.get("system") == "legacy"


async def test_with_langgraph_integration_off_the_v2_cohort_stays_on_legacy(
    runtime: VoiceRuntime, question_wav: bytes, tmp_path: Path
) -> None:
    transcribe, synthesize = voice_tools(runtime.router)
    note = tmp_path / "note.wav"
    note.write_bytes(question_wav)
    before = prometheus(runtime)
    await set_langgraph(runtime, False)
    try:
        heard = await transcribe.ainvoke({"audio": str(note), "state": state(V2_USER)})
        spoken = await synthesize.ainvoke(_call(SYNTHESIZE, {"text": "Hello Alice"}, V2_USER))
        # The same user without the tools' requirement is still in the v2 cohort: the flag decided.
        direct = await runtime.router.synthesize_speech("Hello Alice", language="en", user_id=V2_USER)
    finally:
        await set_langgraph(runtime, True)
    assert (heard["success"], heard["system_used"]) == (True, "legacy") and heard_right(heard["text"])
    said = json.loads(str(spoken.content))
    assert said["system_used"] == "legacy" and said["audio_url"] and spoken.artifact is None
    assert direct.system_used == "voice_v2"
    after = prometheus(runtime)
    for op in ("stt", "tts"):
        name = "voxshift_migration_decisions_total"
        labels = {"operation": op, "system": "legacy", "reason": "feature_disabled"}
        assert counter(after, name, **labels) - counter(before, name, **labels) == 1
    # Back on: the v2 cohort's tool calls reach v2 again.
    again = await synthesize.ainvoke(_call(SYNTHESIZE, {"text": "Hello again"}, V2_USER))
    assert json.loads(str(again.content))["system_used"] == "voice_v2"


def _call(name: str, args: dict[str, Any], user_id: str) -> dict[str, Any]:
    """A ToolCall as ToolNode passes it on, the graph's state already injected."""
    return {"type": "tool_call", "id": "c1", "name": name, "args": {**args, "state": state(user_id)}}


async def test_bad_inputs_come_back_as_error_results(
    runtime: VoiceRuntime, audio_http: str, tmp_path: Path
) -> None:
    transcribe, synthesize = voice_tools(runtime.router)
    before = prometheus(runtime)
    (tmp_path / "notes.txt").write_text("not audio at all, just text")
    cases = {
        str(tmp_path / "missing.ogg"): "not_found",
        "data:audio/ogg;base64,%%%": "invalid_request",
        f"{audio_http}/missing.wav": "not_found",
        f"http://127.0.0.1:{free_port()}/note.wav": "audio_unreachable",
        "file:///etc/passwd": "invalid_request",
        str(tmp_path / "notes.txt"): "unsupported_media_type",
    }
    for audio, code in cases.items():
        result = await transcribe.ainvoke({"audio": audio, "state": state(V2_USER)})
        assert (result["success"], result["error_type"]) == (False, code), (audio, result)
        assert result["error"] and "Traceback" not in result["error"]
    bad_language = await transcribe.ainvoke({"audio": str(tmp_path / "notes.txt"), "language": "xx"})
    assert bad_language["error_type"] == "invalid_request"
    too_long = await synthesize.ainvoke({"text": "a" * (runtime.settings.max_text_chars + 1)})
    assert (too_long["success"], too_long["error_type"]) == (False, "text_too_long")
    bad_format = await synthesize.ainvoke({"text": "hi", "voice_config": {"format": "midi"}})
    assert (bad_format["success"], bad_format["error_type"]) == (False, "invalid_request")
    # Every error result is counted by tool and code (apart from the rollout's error rates).
    after = prometheus(runtime)

    def grew(tool: str, code: str) -> float:
        name, labels = "voxshift_langgraph_tool_errors_total", {"tool": tool, "error_type": code}
        return counter(after, name, **labels) - counter(before, name, **labels)

    assert grew(TRANSCRIBE, "not_found") == 2 and grew(TRANSCRIBE, "invalid_request") == 3
    assert grew(TRANSCRIBE, "audio_unreachable") == 1 and grew(TRANSCRIBE, "unsupported_media_type") == 1
    assert grew(SYNTHESIZE, "text_too_long") == 1 and grew(SYNTHESIZE, "invalid_request") == 1


async def test_an_engine_failure_on_both_systems_is_an_error_result_and_is_counted(
    tmp_path: Path, settings: Settings
) -> None:
    # v2's only TTS provider is OpenAI without a key, and there is no legacy to fall back to.
    failing = await open_runtime(
        Settings(
            data_dir=tmp_path,
            whisper_model_dir=settings.whisper_model_dir,
            workers=1,
            voice_v2_enabled=True,
            voice_v2_rollout_percentage=100,
            voice_v2_features=FEATURES,
            tts_providers={"*": ["openai"]},
            legacy_backend="none",
        ),
        check=True,
    )
    await failing.start(watch_flags=False)
    try:
        _, synthesize = voice_tools(failing.router)
        result = await synthesize.ainvoke({"text": "Hello", "state": state(V2_USER)})
        text = prometheus(failing)
    finally:
        await failing.aclose()
    assert (result["success"], result["error_type"]) == (False, "voice_v2_and_legacy_failed")
    assert counter(text, "voxshift_migration_total_failures_total", operation="tts") == 1
    assert (
        counter(
            text,
            "voxshift_migration_requests_total",
            operation="tts",
            system="voice_v2",
            provider="none",
            outcome="error",
        )
        == 1
    )


# --- remote: the same tools against a real `voxshift serve` -------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, settings: Settings) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp("langgraph-serve")
    running = start_server(
        data_dir,
        {
            "VOICE_V2_ROLLOUT_PERCENTAGE": "50",
            "VOXSHIFT_ANONYMOUS_USERS": "legacy",
            "VOXSHIFT_VOICE_API_KEY": VOICE_KEY,
            "VOXSHIFT_WHISPER_MODEL_DIR": str(settings.whisper_model_dir),
            "VOICE_V2_FEATURES": json.dumps(FEATURES | {"langgraph_integration": False}),
        },
    )
    yield running
    running.stop()


def server_env(server: RunningServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VOICE_V2_", "VOXSHIFT_"))}
    return env | {"VOXSHIFT_DATA_DIR": str(server.log_path.parent)}


async def test_remote_tools_mark_themselves_and_the_server_applies_the_flag(
    server: RunningServer, question_wav: bytes
) -> None:
    transcribe, synthesize = voice_tools(base_url=server.url + "/v1", api_key=VOICE_KEY)
    off = await synthesize.ainvoke(_call(SYNTHESIZE, {"text": "Hello Alice"}, V2_USER))
    body = json.loads(str(off.content))
    assert (body["success"], body["system_used"]) == (True, "legacy") and off.artifact is None
    # The legacy's answer is kept where v2 signs URLs: the link works without the voice key.
    async with httpx.AsyncClient(timeout=60) as client:
        fetched = await client.get(body["audio_url"])
    assert fetched.status_code == 200 and probe(fetched.content)[0] == "mp3"
    # Without the tools' header the same user is in the v2 cohort.
    auth = {"Authorization": f"Bearer {VOICE_KEY}"}
    async with httpx.AsyncClient(base_url=server.url, timeout=60, headers=auth) as client:
        plain = await client.post(
            "/v2/synthesize", json={"text": "Hello Alice"}, headers={"X-User-Id": V2_USER}
        )
        # The OpenAI-compatible endpoints apply the header the same way.
        speech = {"model": "tts-1", "input": "Hello Alice", "voice": "alloy", "user": V2_USER}
        openai_marked = await client.post(
            "/v1/audio/speech", json=speech, headers={"X-Voxshift-Client": "langgraph"}
        )
    assert plain.json()["system_used"] == "voice_v2"
    assert openai_marked.status_code == 200 and openai_marked.headers["X-Voxshift-System"] == "legacy"

    flipped = run(
        server_env(server), "flags", "set", "--feature", "langgraph=true", "--reason", "M4.1", process=True
    )
    assert flipped.returncode == 0, flipped.stderr
    deadline = time.monotonic() + 20  # the server follows stored flag changes within about a second
    while True:
        on = json.loads(
            str((await synthesize.ainvoke(_call(SYNTHESIZE, {"text": "Hello Alice"}, V2_USER))).content)
        )
        if on["system_used"] == "voice_v2" or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.25)
    assert (on["success"], on["system_used"], on["provider_used"]) == (True, "voice_v2", "piper")
    assert on["audio_url"].startswith(server.url + "/v2/objects/voice-v2-files/audio/support-bot/")
    async with httpx.AsyncClient(timeout=30) as client:
        fetched = await client.get(on["audio_url"])
    assert fetched.status_code == 200 and probe(fetched.content)[0] == "mp3"

    heard = await transcribe.ainvoke({"audio": question_wav, "state": state(V2_USER)})
    assert (heard["success"], heard["system_used"], heard["provider_used"]) == (True, "voice_v2", "whisper")
    assert heard_right(heard["text"]) and heard["detected_language"] == "en"


async def test_remote_errors_are_results(server: RunningServer, tmp_path: Path) -> None:
    transcribe, synthesize = voice_tools(base_url=server.url, api_key=VOICE_KEY)
    _, keyless = voice_tools(base_url=server.url)
    refused = await keyless.ainvoke({"text": "hi"})
    assert (refused["success"], refused["error_type"]) == (False, "invalid_api_key")
    (tmp_path / "notes.txt").write_text("not audio at all, just text")
    not_audio = await transcribe.ainvoke({"audio": str(tmp_path / "notes.txt"), "state": state(V2_USER)})
    assert (not_audio["success"], not_audio["error_type"]) == (
        False,
        "unsupported_media_type",
    )  # the server's code
    bad_uri = await transcribe.ainvoke({"audio": "data:audio/wav;base64,!!"})
    assert (bad_uri["success"], bad_uri["error_type"]) == (False, "invalid_request")
    bad_style = await synthesize.ainvoke({"text": "hi", "voice_config": {"style": "robotic"}})
    assert (bad_style["success"], bad_style["error_type"]) == (False, "invalid_request")
    assert "voice_style" in bad_style["error"]
    _, gone = voice_tools(base_url=f"http://127.0.0.1:{free_port()}")
    unreachable = await gone.ainvoke({"text": "hi"})
    assert (unreachable["success"], unreachable["error_type"]) == (False, "service_unreachable")
    # Synchronous calls (graph.invoke) work remotely, on a private event loop.
    sync = await asyncio.to_thread(gone.invoke, {"text": "hi"})
    assert sync["error_type"] == "service_unreachable"


async def test_the_example_runs_as_a_script(tmp_path: Path, settings: Settings) -> None:
    # The seed's defaults: everyone on the reference legacy, whose audio the example saves to a file.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VOICE_V2_", "VOXSHIFT_"))}
    env |= {
        "VOXSHIFT_DATA_DIR": str(tmp_path / "data"),
        "VOXSHIFT_WHISPER_MODEL_DIR": str(settings.whisper_model_dir),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLE), env=env, cwd=tmp_path, stdout=PIPE, stderr=PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    lines = dict(line.split(": ", 1) for line in out.decode().splitlines())
    transcript, systems = lines["transcript"].split("  [")
    question = words(example.QUESTION)
    assert len(words(transcript) & question) >= len(question) - 2
    assert systems == "legacy, reference-whisper-tiny.en]"
    assert lines["answer"].startswith("Thanks for your voice message. You asked:")
    # The legacy's answer is kept in the embedded v2 store: a link `voxshift serve` on that data dir serves.
    url, spoken_by = lines["audio"].split("  [")
    assert url.startswith("http://127.0.0.1:8000/v2/objects/voice-v2-files/audio/voice-example/")
    assert "expires=" in url and "sig=" in url and spoken_by == "legacy, reference-espeak]"
