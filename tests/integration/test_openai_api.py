"""The official `openai` SDK, unchanged, against a real `voxshift serve` on a random port."""

from __future__ import annotations

import asyncio
import io
import json
import os
import wave
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.integration.server import RunningServer, start_server
from voxshift.audio import probe

pytestmark = pytest.mark.slow

SENTENCE = "The weather is lovely today and the river is calm."
MAGIC = {
    "mp3": lambda b: b[:3] == b"ID3" or (b[0] == 0xFF and b[1] & 0xE0 == 0xE0),
    "opus": lambda b: b[:4] == b"OggS" and b"OpusHead" in b[:64],
    "aac": lambda b: b[0] == 0xFF and b[1] & 0xF0 == 0xF0,
    "flac": lambda b: b[:4] == b"fLaC",
    "wav": lambda b: b[:4] == b"RIFF" and b[8:12] == b"WAVE",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, whisper_model_dir: Path) -> Iterator[RunningServer]:
    srv = start_server(
        tmp_path_factory.mktemp("api"),
        {
            "VOXSHIFT_WHISPER_MODEL_DIR": str(whisper_model_dir),
            "VOXSHIFT_MAX_UPLOAD_MB": "2",
            "VOXSHIFT_MAX_AUDIO_SECONDS": "30",
        },
    )
    yield srv
    srv.stop()
    # Bad inputs are answered, never crash a handler: nothing may be logged as unhandled.
    assert "Traceback" not in srv.log, srv.log
    assert "unhandled error" not in srv.log, srv.log


@pytest.fixture(scope="module")
def client(server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="not-needed", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def speech_wav(client: openai.OpenAI) -> bytes:
    return client.audio.speech.create(
        model="tts-1", voice="alloy", input=SENTENCE, response_format="wav"
    ).content


def _words(text: str) -> set[str]:
    return {w.strip(".,!?;:").lower() for w in text.split()}


def test_models_lists_openai_names(client: openai.OpenAI) -> None:
    ids = {m.id for m in client.models.list()}
    assert {
        "whisper-1",
        "gpt-4o-transcribe",
        "gpt-4o-mini-transcribe",
        "tts-1",
        "tts-1-hd",
        "gpt-4o-mini-tts",
    } <= ids


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav", "pcm"])
def test_speech_in_every_format_decodes_back(client: openai.OpenAI, fmt: str) -> None:
    raw = client.audio.speech.with_raw_response.create(
        model="tts-1", voice="nova", input="Hello there, this is a test.", response_format=fmt
    )
    audio = raw.content
    assert raw.headers["x-voxshift-provider"] == "piper"
    assert float(raw.headers["x-voxshift-processing-ms"]) > 0
    if fmt == "pcm":
        assert raw.headers["content-type"] == "audio/pcm"
        duration = len(audio) / 2 / 24000
    else:
        assert MAGIC[fmt](audio), f"{fmt} bytes start {audio[:12]!r}"
        _, duration = probe(audio)
    assert 0.8 < duration < 6.0


def test_streaming_speech(client: openai.OpenAI) -> None:
    with client.audio.speech.with_streaming_response.create(
        model="gpt-4o-mini-tts", voice="onyx", input=SENTENCE * 3, response_format="mp3"
    ) as response:
        chunks = list(response.iter_bytes(4096))
    assert len(chunks) > 1
    _, duration = probe(b"".join(chunks))
    assert duration > 3.0


def test_russian_speech_goes_to_a_russian_voice(client: openai.OpenAI) -> None:
    raw = client.audio.speech.with_raw_response.create(
        model="tts-1", voice="alloy", input="Привет, как дела?", response_format="wav"
    )
    # RHVoice first in the default Russian chain; espeak-ng where it is not installed.
    assert raw.headers["x-voxshift-provider"] in ("rhvoice", "espeak")
    assert probe(raw.content)[1] > 0.5


@pytest.mark.parametrize("fmt", ["json", "text", "srt", "vtt", "verbose_json"])
def test_transcription_in_every_response_format(client: openai.OpenAI, speech_wav: bytes, fmt: str) -> None:
    raw = client.audio.transcriptions.with_raw_response.create(
        model="whisper-1",
        file=("speech.wav", speech_wav),
        response_format=fmt,  # type: ignore[call-overload]
    )
    assert raw.headers["x-voxshift-provider"] == "whisper"
    assert float(raw.headers["x-voxshift-processing-ms"]) > 0
    body = raw.http_response.text
    if fmt == "json":
        text = json.loads(body)["text"]
    elif fmt == "verbose_json":
        parsed = json.loads(body)
        assert parsed["language"] == "english"
        assert parsed["duration"] > 1.0
        assert parsed["segments"] and parsed["segments"][0]["start"] >= 0
        text = parsed["text"]
    elif fmt == "srt":
        assert body.startswith("1\n00:00:0")
        assert " --> " in body
        text = body
    elif fmt == "vtt":
        assert body.startswith("WEBVTT")
        text = body
    else:
        text = body
    assert len(_words(text) & _words(SENTENCE)) >= 6, text


def test_verbose_json_with_word_timestamps_through_sdk_types(
    client: openai.OpenAI, speech_wav: bytes
) -> None:
    result = client.audio.transcriptions.create(
        model="whisper-1",
        file=("speech.wav", speech_wav),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
        language="en",
    )
    assert result.words and len(result.words) >= 8
    starts = [w.start for w in result.words]
    assert starts == sorted(starts)
    assert result.segments and result.segments[-1].end <= result.duration + 0.5


def test_translation(client: openai.OpenAI, speech_wav: bytes) -> None:
    result = client.audio.translations.create(model="whisper-1", file=("speech.wav", speech_wav))
    assert len(_words(result.text) & _words(SENTENCE)) >= 5


def test_every_input_container_transcribes(client: openai.OpenAI, speech_wav: bytes) -> None:
    from tests.audio_fixtures import speech_to_container

    with wave.open(io.BytesIO(speech_wav)) as w:
        pcm, rate = w.readframes(w.getnframes()), w.getframerate()
    for container in ("mp3", "ogg", "webm", "flac", "m4a"):
        data = speech_to_container(pcm, rate, container)
        # a misleading name: the container is detected from the bytes
        text = client.audio.transcriptions.create(model="whisper-1", file=("voice.bin", data)).text
        assert len(_words(text) & _words(SENTENCE)) >= 6, (container, text)


# --- errors: the SDK raises the right exception class with OpenAI's body ---------------------------


def _error(exc: openai.APIStatusError) -> dict[str, object]:
    body = exc.response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return dict(body["error"])


def test_empty_text_is_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.audio.speech.create(model="tts-1", voice="alloy", input="   ")
    assert _error(info.value)["param"] == "input"


def test_text_over_4096_is_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.audio.speech.create(model="tts-1", voice="alloy", input="a" * 4097)
    err = _error(info.value)
    assert err["code"] == "text_too_long" and "4096" in str(err["message"])


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"model": "tts-9"}, "model"),
        ({"voice": "darth"}, "voice"),
        ({"response_format": "ogg"}, "response_format"),
        ({"speed": 5.0}, "speed"),
    ],
)
def test_bad_speech_parameters_are_400(client: openai.OpenAI, kwargs: dict[str, object], param: str) -> None:
    args: dict[str, object] = {"model": "tts-1", "voice": "alloy", "input": "hi"} | kwargs
    with pytest.raises(openai.BadRequestError) as info:
        client.audio.speech.create(**args)  # type: ignore[arg-type]
    assert _error(info.value)["param"] == param


def test_empty_file_is_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.audio.transcriptions.create(model="whisper-1", file=("empty.ogg", b""))
    assert _error(info.value)["code"] == "empty_input"


def test_random_bytes_are_415(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        client.audio.transcriptions.create(model="whisper-1", file=("voice.ogg", os.urandom(4096)))
    assert info.value.status_code == 415
    assert _error(info.value)["code"] == "unsupported_media_type"


def test_truncated_file_is_400(client: openai.OpenAI, speech_wav: bytes) -> None:
    from tests.audio_fixtures import make_clip

    truncated = make_clip("ogg")[:80]
    with pytest.raises(openai.BadRequestError) as info:
        client.audio.transcriptions.create(model="whisper-1", file=("voice.ogg", truncated))
    assert _error(info.value)["code"] == "corrupt_audio"


def test_oversize_file_is_413(client: openai.OpenAI) -> None:
    big = b"RIFF" + os.urandom(3 * 1024 * 1024)
    with pytest.raises(openai.APIStatusError) as info:
        client.audio.transcriptions.create(model="whisper-1", file=("big.wav", big))
    assert info.value.status_code == 413
    assert _error(info.value)["code"] == "file_too_large"


def test_overlong_audio_is_413(client: openai.OpenAI) -> None:
    from tests.audio_fixtures import make_clip

    long_clip = make_clip("mp3", seconds=40.0, rate=16000)
    with pytest.raises(openai.APIStatusError) as info:
        client.audio.transcriptions.create(model="whisper-1", file=("long.mp3", long_clip))
    assert info.value.status_code == 413
    assert _error(info.value)["code"] == "audio_too_long"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"model": "whisper-9"}, "model"),
        ({"response_format": "xml"}, "response_format"),
        ({"language": "not a language"}, "language"),
        ({"temperature": "hot"}, "temperature"),
        ({"timestamp_granularities[]": "char"}, "timestamp_granularities[]"),
    ],
)
def test_bad_transcription_fields_are_400(
    server: RunningServer, speech_wav: bytes, fields: dict[str, str], param: str
) -> None:
    data = {"model": "whisper-1"} | fields
    r = httpx.post(
        f"{server.url}/v1/audio/transcriptions", data=data, files={"file": ("a.wav", speech_wav)}, timeout=60
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param


def test_missing_file_and_bad_json_are_400(server: RunningServer) -> None:
    r = httpx.post(f"{server.url}/v1/audio/transcriptions", data={"model": "whisper-1"}, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["param"] == "file"
    r = httpx.post(
        f"{server.url}/v1/audio/speech", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and "error" in r.json()
    r = httpx.get(f"{server.url}/v1/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_health_and_readiness(server: RunningServer) -> None:
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server.url}/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready"
    assert body["engines"]["stt:whisper"]["available"] is True
    assert body["engines"]["stt:openai"]["available"] is False
    assert "VOXSHIFT_OPENAI_API_KEY" in body["engines"]["stt:openai"]["reason"]


def test_native_api_returns_seed_shapes(server: RunningServer, speech_wav: bytes) -> None:
    r = httpx.post(f"{server.url}/v2/transcribe", files={"file": ("a.wav", speech_wav)}, timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert {
        "text",
        "confidence",
        "detected_language",
        "provider_used",
        "processing_time_ms",
        "segments",
    } <= set(body)
    assert body["provider_used"] == "whisper" and 0 < body["confidence"] <= 1
    assert body["attempts"][-1]["outcome"] == "ok"
    r = httpx.post(f"{server.url}/v2/synthesize", json={"text": "Добрый день"}, timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["format"] == "mp3" and body["duration_seconds"] > 0.3
    assert body["provider_used"] in ("rhvoice", "espeak")  # espeak-ng where RHVoice is not installed


def test_full_queue_answers_503_with_retry_after(
    tmp_path_factory: pytest.TempPathFactory, whisper_model_dir: Path, speech_wav: bytes
) -> None:
    srv = start_server(
        tmp_path_factory.mktemp("busy"),
        {
            "VOXSHIFT_WHISPER_MODEL_DIR": str(whisper_model_dir),
            "VOXSHIFT_WORKERS": "1",
            "VOXSHIFT_QUEUE_SIZE": "0",
            # The legacy fallback has a pool of its own (a full v2 queue spills into it): make it
            # as small, so that both are busy and the answer is the overload 503.
            "VOXSHIFT_LEGACY_WORKERS": "1",
            "VOXSHIFT_LEGACY_QUEUE_SIZE": "0",
        },
    )
    try:

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=srv.url, timeout=120) as http:
                return await asyncio.gather(
                    *[
                        http.post(
                            "/v1/audio/transcriptions",
                            data={"model": "whisper-1"},
                            files={"file": ("a.wav", speech_wav)},
                        )
                        for _ in range(6)
                    ]
                )

        responses = asyncio.run(burst())
        codes = sorted(r.status_code for r in responses)
        assert 200 in codes and 503 in codes, codes
        busy = next(r for r in responses if r.status_code == 503)
        # The pool's expected wait, rounded up to whole seconds: 1 on an idle machine, more when
        # the machine is loaded (it is measured), never 0 and never past the hard job deadline.
        assert 1 <= int(busy.headers["retry-after"]) <= 120
        assert busy.json()["error"]["code"] == "overloaded"
    finally:
        srv.stop()
    assert "Traceback" not in srv.log


def test_native_url_delivery_on_the_embedded_store(server: RunningServer) -> None:
    # Caching is off here; delivery=url still stores the audio in the local bucket and signs a path.
    response = httpx.post(
        f"{server.url}/v2/synthesize",
        params={"delivery": "url"},
        json={"text": "A link instead of bytes.", "language": "en", "format": "opus"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["delivery"] == "url" and body["cache"] == "disabled" and "audio_base64" not in body
    assert body["audio_url"].startswith(f"{server.url}/v2/objects/voice-v2-files/audio/_/")
    fetched = httpx.get(body["audio_url"], timeout=10)
    assert fetched.status_code == 200
    assert fetched.headers["content-type"] == "audio/ogg" and fetched.content[:4] == b"OggS"
    tampered = body["audio_url"].replace("sig=", "sig=0")
    refused = httpx.get(tampered, timeout=10)
    assert refused.status_code == 403 and refused.json()["error"]["message"]
    bad = httpx.post(
        f"{server.url}/v2/synthesize", params={"delivery": "email"}, json={"text": "x"}, timeout=10
    )
    assert bad.status_code == 400 and "delivery" in bad.text
