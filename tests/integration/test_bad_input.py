"""Bad input is a 4xx at once, on both systems, and never trips a breaker or falls back (issue 9 §3).

Each case here was a 503 after a needless fallback to legacy: an unknown language, a lone surrogate,
a NUL in the text (three of those opened Piper's breaker and sent English to espeak-ng for 30 s).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.server import RunningServer, start_server
from tests.load import english_clip

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["voice_v2", "legacy"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, whisper_model_dir: Path
) -> Iterator[RunningServer]:
    srv = start_server(
        tmp_path_factory.mktemp("bad-input"),
        {"VOXSHIFT_WHISPER_MODEL_DIR": str(whisper_model_dir)},
        all_on_v2=request.param == "voice_v2",
    )
    yield srv
    srv.stop()
    assert "Traceback" not in srv.log, srv.log
    assert "falling back to legacy" not in srv.log, srv.log


@pytest.fixture(scope="module")
def clip() -> bytes:
    return english_clip()


def assert_openai_error(response: httpx.Response, status: int, param: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["param"] == param, error
    assert "Error:" not in str(error["message"])  # no Python exception name leaks into the message
    return dict(error)


@pytest.mark.parametrize("language", ["xx", "zz-ZZ", "klingon"])
def test_unknown_stt_language_is_400_on_both_transcription_endpoints(
    server: RunningServer, clip: bytes, language: str
) -> None:
    openai_style = httpx.post(
        f"{server.url}/v1/audio/transcriptions",
        files={"file": ("a.wav", clip, "audio/wav")},
        data={"model": "whisper-1", "language": language},
        timeout=60,
    )
    error = assert_openai_error(openai_style, 400, "language")
    assert language in str(error["message"])
    native = httpx.post(
        f"{server.url}/v2/transcribe",
        files={"file": ("a.wav", clip, "audio/wav")},
        data={"language": language},
        timeout=60,
    )
    assert_openai_error(native, 400, "language")


@pytest.mark.parametrize("language", ["xx", "zz-ZZ", "12"])
def test_unknown_tts_language_is_400(server: RunningServer, language: str) -> None:
    response = httpx.post(
        f"{server.url}/v1/audio/speech",
        json={"model": "tts-1", "input": "Привет, мир", "voice": "alloy", "language": language},
        timeout=60,
    )
    assert_openai_error(response, 400, "language")
    native = httpx.post(
        f"{server.url}/v2/synthesize", json={"text": "Привет", "language": language}, timeout=60
    )
    assert_openai_error(native, 400, "language")


def test_a_lone_surrogate_is_400_naming_the_input(server: RunningServer) -> None:
    # httpx would refuse to encode the surrogate itself: send the JSON escape as the wire has it.
    body = '{"model": "tts-1", "input": "\\udcff", "voice": "alloy"}'
    response = httpx.post(
        f"{server.url}/v1/audio/speech",
        content=body.encode(),
        headers={"content-type": "application/json"},
        timeout=60,
    )
    error = assert_openai_error(response, 400, "input")
    assert "surrogate" in str(error["message"]) and "U+DCFF" in str(error["message"])
    assert "UnicodeEncodeError" not in response.text


def test_control_characters_are_blanked_and_never_open_a_breaker(server: RunningServer) -> None:
    for _ in range(5):  # more than the breaker's threshold of 3
        response = httpx.post(
            f"{server.url}/v1/audio/speech",
            content=json.dumps(
                {
                    "model": "tts-1",
                    "input": "hello\u0000world\u001b",
                    "voice": "alloy",
                    "response_format": "wav",
                }
            ).encode(),
            headers={"content-type": "application/json"},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        assert response.content[:4] == b"RIFF"
    ready = httpx.get(f"{server.url}/readyz", timeout=10).json()
    assert all(state == "closed" for state in ready["breakers"].values()), ready["breakers"]
    english = httpx.post(
        f"{server.url}/v1/audio/speech",
        json={"model": "tts-1", "input": "Still speaking English.", "voice": "alloy", "language": "en"},
        timeout=60,
    )
    assert english.status_code == 200
    if english.headers["x-voxshift-system"] == "voice_v2":
        assert english.headers["x-voxshift-provider"] == "piper"


def test_text_of_only_control_characters_is_empty_input(server: RunningServer) -> None:
    response = httpx.post(
        f"{server.url}/v1/audio/speech",
        json={"model": "tts-1", "input": "\u0000\u0007 \u0008", "voice": "alloy"},
        timeout=60,
    )
    assert_openai_error(response, 400, "input")
