"""Request bodies are refused as they arrive, not after being read whole (issue 9, "memory is bounded").

First the real FastAPI app through httpx's ASGI transport, which pulls the request body from the
client only when the app asks for it, so a test can count what was read; then a real `voxshift
serve`, where what matters is that a 40 MB chunked body neither takes long nor grows the server.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.server import RunningServer, start_server
from voxshift.api.app import create_app
from voxshift.api.body_limit import MAX_BODY_BYTES
from voxshift.config import Settings
from voxshift.services.wiring.engines import build_engines

CHUNK = 64 * 1024
HUGE = 40 * 1024 * 1024
JSON_HEADERS = {"content-type": "application/json"}


class SpeechBody:
    """A TTS request whose input is ``size`` bytes, produced chunk by chunk (so sent without a
    Content-Length), counting how many bytes were pulled from it."""

    def __init__(self, size: int, model: str = "tts-1") -> None:
        self.size = size
        self.model = model
        self.pulled = 0

    def _pieces(self) -> Iterator[bytes]:
        yield json.dumps({"model": self.model, "voice": "alloy", "input": ""}).encode()[:-2]
        left = self.size
        while left > 0:
            n = min(CHUNK, left)
            left -= n
            yield b"a" * n
        yield b'"}'

    def __iter__(self) -> Iterator[bytes]:
        for piece in self._pieces():
            self.pulled += len(piece)
            yield piece

    async def aiter(self) -> AsyncIterator[bytes]:  # httpx's AsyncClient wants an async iterable
        for piece in self:
            yield piece


def openai_error(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    assert body["error"]["type"] == "invalid_request_error"
    return dict(body["error"])


# --- the app, in process --------------------------------------------------------------------------


@pytest.fixture
async def app_client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    # No lifespan: every request here is answered before a handler needs the runtime.
    settings = Settings(data_dir=tmp_path, max_upload_mb=2, preload_engines=False, workers=1)
    engines = build_engines(settings)
    transport = httpx.ASGITransport(app=create_app(settings, engines=engines))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://voxshift.test") as client:
            yield client
    finally:
        await engines.aclose()


async def test_a_chunked_json_body_is_refused_after_reading_at_most_the_limit(
    app_client: httpx.AsyncClient,
) -> None:
    body = SpeechBody(HUGE)
    response = await app_client.post("/v1/audio/speech", content=body.aiter(), headers=JSON_HEADERS)
    assert response.status_code == 413, response.text
    error = openai_error(response)
    assert error["code"] == "file_too_large"
    assert "the limit is 1 MB" in str(error["message"])
    assert body.pulled <= MAX_BODY_BYTES + 2 * CHUNK, body.pulled


async def test_a_declared_json_body_over_the_limit_is_refused_unread(app_client: httpx.AsyncClient) -> None:
    payload = json.dumps({"model": "tts-1", "voice": "alloy", "input": "a" * (MAX_BODY_BYTES + 1)})
    response = await app_client.post("/v1/audio/speech", content=payload, headers=JSON_HEADERS)
    assert response.status_code == 413, response.text
    error = openai_error(response)
    assert error["code"] == "file_too_large"
    assert error["message"] == "request body is 1.0 MB; the limit is 1 MB"


async def test_an_oversized_multipart_upload_is_refused_by_its_content_length(
    app_client: httpx.AsyncClient,
) -> None:
    response = await app_client.post(
        "/v1/audio/transcriptions",
        data={"model": "whisper-1"},
        files={"file": ("big.wav", b"RIFF" + bytes(3 * 1024 * 1024))},
    )
    assert response.status_code == 413, response.text
    error = openai_error(response)
    assert error["code"] == "file_too_large" and error["param"] == "file"
    assert str(error["message"]).endswith("the limit is 2 MB")


@pytest.mark.parametrize("chunked", [False, True])
async def test_a_json_body_under_the_limit_reaches_the_handler(
    app_client: httpx.AsyncClient, chunked: bool
) -> None:
    # An unknown model is refused by the handler itself: proof the body was read and parsed.
    body = SpeechBody(MAX_BODY_BYTES - 1024, model="tts-9")
    content = body.aiter() if chunked else b"".join(body)
    response = await app_client.post("/v1/audio/speech", content=content, headers=JSON_HEADERS)
    assert response.status_code == 400, response.text
    assert openai_error(response)["code"] == "model_not_found"


# --- a real server --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, whisper_model_dir: Path) -> Iterator[RunningServer]:
    srv = start_server(
        tmp_path_factory.mktemp("body-limits"),
        {"VOXSHIFT_WHISPER_MODEL_DIR": str(whisper_model_dir), "VOXSHIFT_MAX_UPLOAD_MB": "2"},
    )
    yield srv
    srv.stop()
    assert "Traceback" not in srv.log, srv.log


def memory_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


@pytest.mark.slow
def test_a_real_server_refuses_a_chunked_json_body_without_holding_it(server: RunningServer) -> None:
    pid = server.process.pid
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # restart the peak-RSS count (VmHWM) from now
    before = memory_kb(pid, "VmRSS")
    started = time.monotonic()
    response = httpx.post(
        f"{server.url}/v1/audio/speech", content=SpeechBody(HUGE), headers=JSON_HEADERS, timeout=60
    )
    elapsed = time.monotonic() - started
    peak = memory_kb(pid, "VmHWM")
    assert response.status_code == 413, response.text
    assert openai_error(response)["code"] == "file_too_large"
    assert elapsed < 15, elapsed
    # Reading the body whole took 80+ MB (the chunks, then the joined bytes); refusing it, next to nothing.
    assert peak - before < 16 * 1024, (before, peak)


@pytest.mark.slow
def test_a_real_server_still_streams_speech_and_takes_uploads(server: RunningServer) -> None:
    request = {
        "model": "tts-1",
        "voice": "alloy",
        "input": "The river is calm today.",
        "response_format": "wav",
    }
    with httpx.stream("POST", f"{server.url}/v1/audio/speech", json=request, timeout=120) as response:
        assert response.status_code == 200, response.read()
        audio = b"".join(response.iter_bytes(4096))
    assert audio[:4] == b"RIFF" and len(audio) > 16 * 1024
    # The same audio back as a multipart upload, under the upload limit: untouched.
    response = httpx.post(
        f"{server.url}/v1/audio/transcriptions",
        data={"model": "whisper-1"},
        files={"file": ("speech.wav", audio)},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    assert "river" in response.json()["text"].lower()
    big = httpx.post(
        f"{server.url}/v1/audio/transcriptions",
        data={"model": "whisper-1"},
        files={"file": ("big.wav", b"RIFF" + bytes(3 * 1024 * 1024))},
        timeout=60,
    )
    assert big.status_code == 413 and openai_error(big)["code"] == "file_too_large"
