"""legacy:http against a real `voxshift serve` (and the OpenAI fake for vendor errors), and
legacy:python with the example legacy services in tests/fixtures/legacy_example.py.

Every failure must come out typed: the request's fault as v2's input errors, the legacy's as
ProviderError / ProviderUnavailable / ProviderTimeout, so the router knows whether to fall back.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.audio_fixtures import make_clip
from tests.conftest import speech_to_wav
from tests.fakes import FakeServer
from tests.fakes.openai_server import FakeOpenAI
from tests.fixtures.legacy_example import LegacyService, SyncLegacyService
from tests.integration.server import RunningServer, free_port, start_server
from voxshift.audio import probe
from voxshift.engines.base import TTSRequest
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
from voxshift.legacy import HttpLegacyBackend, LegacyVoiceBackend, PythonLegacyBackend

# Async tests run on their own loops (asyncio_mode=auto); the model caches are thread-based.
pytestmark = pytest.mark.slow

SENTENCE = "The weather is lovely today and the river is calm."
EXAMPLE = "tests.fixtures.legacy_example"


def words(text: str) -> set[str]:
    # Plurals folded ("rivers" ~ "river"): tiny.en hears number endings unreliably on short clips.
    return {w[:-1] if len(w) > 3 and w.endswith("s") else w for w in re.findall(r"[a-z]+", text.lower())}


def assert_heard(text: str) -> None:
    expected = words(SENTENCE)
    assert len(expected & words(text)) >= 0.7 * len(expected), text


@pytest.fixture(scope="module")
async def speech_wav(piper: Any) -> bytes:
    return speech_to_wav(await piper.synthesize(TTSRequest(SENTENCE, "en")))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, whisper_model_dir: Path) -> Iterator[RunningServer]:
    srv = start_server(
        tmp_path_factory.mktemp("legacy-http"),
        {
            "VOXSHIFT_WHISPER_MODEL_DIR": str(whisper_model_dir),
            "VOXSHIFT_MAX_UPLOAD_MB": "1",
            "VOXSHIFT_MAX_AUDIO_SECONDS": "30",
        },
    )
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def oa(fake_openai: FakeOpenAI) -> FakeOpenAI:
    fake_openai.reset()
    return fake_openai


class JsonOnlyServer(FakeServer):
    """An OpenAI-compatible server that knows response_format=json and nothing else."""

    def routes(self) -> list[Route]:
        return [Route("/v1/audio/transcriptions", self._transcribe, methods=["POST"])]

    async def _transcribe(self, request: Request) -> Response:
        entry = await self.record(request)
        fmt = entry.form.get("response_format", ["json"])[-1]
        if fmt != "json":
            message = f"response_format {fmt} is not supported"
            error = {"message": message, "type": "invalid_request_error", "param": "response_format"}
            body = {"error": {**error, "code": None}}
            return JSONResponse(body, status_code=400)
        return JSONResponse({"text": "hello from a json-only server"})


# --- legacy:http against a real voxshift server ----------------------------------------------------


async def test_http_transcribes_through_a_real_voxshift_server(
    server: RunningServer, speech_wav: bytes
) -> None:
    backend = HttpLegacyBackend(f"{server.url}/v1", api_key="unused")
    try:
        assert isinstance(backend, LegacyVoiceBackend)
        result = await backend.transcribe(
            speech_wav, "en", user_id="u-1", agent_id="agent_a", filename="v.wav"
        )
        assert_heard(result.text)
        assert result.language == "en"
        assert result.duration_seconds is not None and result.duration_seconds > 1.0
        assert result.confidence is not None and 0.0 < result.confidence <= 1.0
        assert result.provider_used == "whisper" and result.cached is False
        # A file name the API would refuse (no audio extension) is replaced by the sniffed one.
        again = await backend.transcribe(speech_wav, "auto", filename="voice_message")
        assert_heard(again.text)
        info = await backend.info()
        assert info["available"] is True and info["reason"] is None
    finally:
        await backend.aclose()


async def test_http_synthesizes_decodable_audio(server: RunningServer) -> None:
    backend = HttpLegacyBackend(f"{server.url}/v1")
    try:
        speech = await backend.synthesize(
            "Hello from the legacy service.", "en", "female", agent_id="agent_a"
        )
        assert speech.format == "mp3" and speech.content_type == "audio/mpeg"
        container, seconds = probe(speech.audio)
        assert container == "mp3" and seconds > 0.5
        assert speech.duration_seconds is not None and speech.duration_seconds > 0.5
        wav = await backend.synthesize("Привет, это старая система.", "ru", format="wav")
        assert wav.format == "wav" and wav.audio[:4] == b"RIFF"
        assert wav.provider_used in ("rhvoice", "espeak")  # the server picked a Russian voice from the text
    finally:
        await backend.aclose()


async def test_http_bad_input_is_the_requests_fault(server: RunningServer, speech_wav: bytes) -> None:
    backend = HttpLegacyBackend(f"{server.url}/v1")
    try:
        with pytest.raises(EmptyInput):
            await backend.transcribe(b"")
        with pytest.raises(UnsupportedMediaType):
            await backend.transcribe(b"this is plainly not audio, just some text bytes")
        with pytest.raises(CorruptAudio):  # the server's 400 corrupt_audio
            await backend.transcribe(make_clip("ogg")[:80])
        oversize = b"RIFF" + struct.pack("<I", 2 * 1024 * 1024) + b"WAVE" + os.urandom(2 * 1024 * 1024)
        with pytest.raises(PayloadTooLarge):  # the server's 413 file_too_large
            await backend.transcribe(oversize)
        with pytest.raises(AudioTooLong):  # the server's 413 audio_too_long
            await backend.transcribe(make_clip("mp3", seconds=40.0, rate=16000))
        with pytest.raises(InvalidRequest):
            await backend.transcribe(speech_wav, language="not a language!")
        with pytest.raises(EmptyInput):
            await backend.synthesize("   ")
        with pytest.raises(TextTooLong):
            await backend.synthesize("a" * 5000)
        with pytest.raises(InvalidRequest):
            await backend.synthesize("hello", format="midi")
    finally:
        await backend.aclose()


async def test_http_misconfiguration_is_unavailable(server: RunningServer, speech_wav: bytes) -> None:
    backend = HttpLegacyBackend(f"{server.url}/v1", stt_model="no-such-model", tts_model="no-such-tts")
    try:
        with pytest.raises(ProviderUnavailable, match="misconfigured"):
            await backend.transcribe(speech_wav)
        with pytest.raises(ProviderUnavailable, match="misconfigured"):
            await backend.synthesize("hello")
    finally:
        await backend.aclose()
    wrong_path = HttpLegacyBackend(f"{server.url}/not-the-api")
    try:
        with pytest.raises(ProviderUnavailable, match="404"):
            await wrong_path.transcribe(speech_wav)
    finally:
        await wrong_path.aclose()


async def test_http_server_down_is_unavailable(speech_wav: bytes) -> None:
    backend = HttpLegacyBackend(f"http://127.0.0.1:{free_port()}/v1", timeout_s=5)
    try:
        with pytest.raises(ProviderUnavailable, match="cannot reach"):
            await backend.transcribe(speech_wav)
        with pytest.raises(ProviderUnavailable, match="cannot reach"):
            await backend.synthesize("hello")
        info = await backend.info()
        assert info["available"] is False and "cannot reach" in info["reason"]
    finally:
        await backend.aclose()


def test_http_bad_configuration_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="base URL"):
        HttpLegacyBackend("ftp://example.com/v1")
    with pytest.raises(ConfigError, match="timeout"):
        HttpLegacyBackend("http://127.0.0.1:1/v1", timeout_s=0)


# --- legacy:http against vendor errors (the OpenAI fake) ------------------------------------------


async def test_http_vendor_errors_map_to_provider_errors(oa: FakeOpenAI, speech_wav: bytes) -> None:
    wrong_key = HttpLegacyBackend(oa.base_url, api_key="sk-wrong-key-000000")
    backend = HttpLegacyBackend(oa.base_url, api_key=oa.api_key, timeout_s=0.5)
    try:
        with pytest.raises(ProviderUnavailable, match="Incorrect API key") as refused:
            await wrong_key.transcribe(speech_wav)
        assert refused.value.retryable is False
        with pytest.raises(ProviderUnavailable, match="authentication failed"):
            await wrong_key.synthesize("hello", "en")
        assert (await wrong_key.info())["available"] is False

        result = await backend.transcribe(speech_wav, "en")
        assert result.text == oa.transcript
        assert oa.requests[-1].headers["authorization"] == f"Bearer {oa.api_key}"
        assert oa.requests[-1].form["response_format"] == ["verbose_json"]

        oa.fail_next(500)
        with pytest.raises(ProviderError, match="server error") as server_error:
            await backend.transcribe(speech_wav)
        assert not isinstance(server_error.value, ProviderUnavailable)
        oa.fail_next(503)
        with pytest.raises(ProviderUnavailable, match="overloaded"):
            await backend.synthesize("hello", "en")
        oa.fail_next(429)
        with pytest.raises(ProviderError, match="rate limited"):
            await backend.transcribe(speech_wav)
        oa.malformed_next()
        with pytest.raises(ProviderError, match="malformed JSON"):
            await backend.transcribe(speech_wav)
        oa.hang_next(10.0)  # the fake holds the request far past the backend's 0.5 s deadline
        with pytest.raises(ProviderTimeout):
            await backend.transcribe(speech_wav)
    finally:
        await wrong_key.aclose()
        await backend.aclose()


async def test_http_falls_back_to_json_once(speech_wav: bytes) -> None:
    with JsonOnlyServer() as plain:
        backend = HttpLegacyBackend(plain.origin + "/v1")
        try:
            first = await backend.transcribe(speech_wav)
            second = await backend.transcribe(speech_wav)
        finally:
            await backend.aclose()
        formats = [r.form["response_format"][-1] for r in plain.requests]
    assert first.text == second.text == "hello from a json-only server"
    assert first.language is None and first.confidence is None and first.duration_seconds is None
    assert formats == ["verbose_json", "json", "json"]  # verbose_json asked once, then remembered


# --- legacy:python ---------------------------------------------------------------------------------


async def test_python_async_legacy_service(speech_wav: bytes) -> None:
    backend = PythonLegacyBackend.from_import_path(f"{EXAMPLE}:LegacyService")
    service = backend.service
    assert isinstance(service, LegacyService) and isinstance(backend, LegacyVoiceBackend)
    try:
        result = await backend.transcribe(
            speech_wav, "en", user_id="u-7", agent_id="agent_a", filename="a.wav"
        )
        assert_heard(result.text)
        assert result.provider_used == "legacy:python:openai" and result.language == "en"
        # Keyword extras go only where the method declares them: user_id and agent_id, no filename.
        assert service.calls[-1] == {"op": "stt", "language": "en", "user_id": "u-7", "agent_id": "agent_a"}

        speech = await backend.synthesize("Hello from the old system.", "en", "male")
        assert speech.format == "mp3" and speech.content_type == "audio/mpeg"
        assert probe(speech.audio)[0] == "mp3"
        assert service.calls[-1] == {"op": "tts", "language": "en", "voice_type": "male"}  # the seed's name

        with pytest.raises(ProviderError, match="language ru is not supported"):  # success: false
            await backend.transcribe(speech_wav, "ru")
        with pytest.raises(ProviderError, match="synthesize_speech failed"):
            await backend.synthesize("hello", "xx")
        with pytest.raises(EmptyInput):
            await backend.transcribe(b"")
        with pytest.raises(UnsupportedMediaType):
            await backend.transcribe(b"plain text, not audio at all......")
        with pytest.raises(EmptyInput):
            await backend.synthesize("")
        assert (await backend.info())["available"] is True
    finally:
        await backend.aclose()
    assert service.closed


async def test_python_sync_legacy_runs_in_a_thread(speech_wav: bytes) -> None:
    backend = PythonLegacyBackend(SyncLegacyService(), timeout_s=120)
    service = backend.service
    try:
        result = await backend.transcribe(speech_wav)
        assert_heard(result.text)
        assert result.provider_used == "legacy:python" and result.language is None
        speech = await backend.synthesize("Hello there.", "en", format="mp3")
        assert speech.format == "wav" and speech.content_type == "audio/wav"  # what it really returned
        assert service.threads and all(name != "MainThread" for name in service.threads)
    finally:
        await backend.aclose()


async def test_python_legacy_failures(speech_wav: bytes) -> None:
    missing = PythonLegacyBackend.from_import_path(
        f"{EXAMPLE}:make_service", espeak_binary="espeak-ng-absent"
    )
    with pytest.raises(ProviderError, match="FileNotFoundError"):
        await missing.synthesize("hello", "en")
    assert (await missing.info())["available"] is False
    await missing.aclose()

    nobody = PythonLegacyBackend(LegacyService(management_port=free_port()))
    with pytest.raises(ProviderUnavailable, match="ConnectionRefusedError"):
        await nobody.transcribe(speech_wav)
    await nobody.aclose()

    blocked_service = SyncLegacyService()
    blocked_service.release.clear()
    blocked = PythonLegacyBackend(blocked_service, timeout_s=0.2)
    try:
        with pytest.raises(ProviderTimeout, match="no answer within"):
            await blocked.transcribe(speech_wav)
    finally:
        blocked_service.release.set()  # let the worker thread finish
        await blocked.aclose()


@pytest.mark.parametrize(
    ("path", "kwargs", "problem"),
    [
        ("tests.fixtures.legacy_example", {}, "expected 'package.module:attribute'"),
        ("tests.fixtures.no_such_module:LegacyService", {}, "cannot import tests.fixtures.no_such_module"),
        (f"{EXAMPLE}:NoSuchThing", {}, "has no attribute NoSuchThing"),
        (f"{EXAMPLE}:broken_factory", {}, "the factory failed: cannot connect to the agent database"),
        (f"{EXAMPLE}:async_factory", {}, "the factory is async"),
        (f"{EXAMPLE}:not_a_legacy", {}, "lacks synthesize_speech"),
        (f"{EXAMPLE}:make_service", {"colour": "blue"}, "unexpected keyword argument 'colour'"),
    ],
)
def test_python_bad_import_paths_are_config_errors(path: str, kwargs: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        PythonLegacyBackend.from_import_path(path, **kwargs)
    assert path in info.value.message or path.split(":")[0] in info.value.message
    assert problem in info.value.message
