"""A running `voxshift serve` on a real Redis and a real S3 (SeaweedFS): URL delivery, and what happens
when either server dies mid-traffic and comes back. Voice must keep answering throughout."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.redis_server import RedisServer
from tests.fixtures.s3_server import SeaweedS3
from tests.integration.server import RunningServer, start_server

pytestmark = pytest.mark.slow

BUCKET = "voice-v2-files"


@pytest.fixture(scope="module")
def redis_for_server() -> Iterator[RedisServer]:
    # Its own server: these tests stop and restart it, which must not disturb other modules.
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def s3_for_server() -> Iterator[SeaweedS3]:
    server = SeaweedS3()
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    whisper_model_dir: Path,
    redis_for_server: RedisServer,
    s3_for_server: SeaweedS3,
) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path_factory.mktemp("degradation"),
        {
            "VOXSHIFT_WHISPER_MODEL_DIR": str(whisper_model_dir),
            "VOXSHIFT_STATE_URL": redis_for_server.url,
            "VOXSHIFT_STORAGE_URL": s3_for_server.storage_url(),
            "VOXSHIFT_STORAGE_ACCESS_KEY": s3_for_server.access_key,
            "VOXSHIFT_STORAGE_SECRET_KEY": s3_for_server.secret_key,
            "VOICE_V2_FEATURES": '{"stt_enabled": true, "tts_enabled": true, '
            '"langgraph_integration": false, "caching_enabled": true}',
            "VOXSHIFT_WORKERS": "2",
            # v2 alone: the reference legacy would create its own bucket, and this module checks
            # that v2 never does.
            "VOXSHIFT_LEGACY_BACKEND": "none",
        },
    )
    yield running
    running.stop()


def speak(server: RunningServer, text: str, **params: Any) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v2/synthesize",
        params=params,
        json={"text": text, "language": "en", "format": "wav"},
        headers={"X-Agent-Id": "agent_demo", "X-User-Id": "user-1"},
        timeout=60,
    )


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def readyz(server: RunningServer) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/readyz", timeout=10)
    assert response.status_code == 200  # degraded is still ready: voice is served
    body: dict[str, Any] = response.json()
    return body


def test_url_delivery_gives_a_fetchable_signed_s3_url(
    server: RunningServer, s3_for_server: SeaweedS3
) -> None:
    response = speak(server, "Delivered by URL.", delivery="url")
    assert response.status_code == 200
    body = response.json()
    assert body["delivery"] == "url" and "audio_base64" not in body
    assert body["object_key"].startswith("audio/agent_demo/") and body["object_key"].endswith(".wav")
    fetched = httpx.get(body["audio_url"], timeout=10)
    assert fetched.status_code == 200 and fetched.content[:4] == b"RIFF"
    assert len(fetched.content) == body["size_bytes"]
    head = s3_for_server.client().head_object(Bucket=BUCKET, Key=body["object_key"])
    assert head["ContentType"] == "audio/wav"
    assert head["Metadata"]["agent-id"] == "agent_demo" and head["Metadata"]["user-id"] == "user-1"
    tampered = body["audio_url"].replace("Signature=", "Signature=0")
    assert httpx.get(tampered, timeout=10).status_code == 403
    # The legacy bucket is never created or written by v2.
    buckets = {b["Name"] for b in s3_for_server.client().list_buckets()["Buckets"]}
    assert "voice-files" not in buckets


def test_cache_hit_over_http_says_so(server: RunningServer) -> None:
    first = speak(server, "Said twice over HTTP.")
    second = speak(server, "Said twice over HTTP.")
    assert (first.headers["X-Voxshift-Cache"], second.headers["X-Voxshift-Cache"]) == ("miss", "hit")
    assert second.json()["cached"] is True
    assert base64.b64decode(second.json()["audio_base64"]) == base64.b64decode(first.json()["audio_base64"])
    stats = httpx.get(f"{server.url}/v2/cache/stats", timeout=10).json()
    assert stats["enabled"] is True and stats["operations"]["tts"]["hit"] >= 1


def test_dead_redis_degrades_caching_and_recovers(
    server: RunningServer, redis_for_server: RedisServer
) -> None:
    assert readyz(server)["status"] == "ready"
    redis_for_server.stop()
    try:
        answered = []
        for i in range(4):  # mid-traffic: every request still answered, audio inline
            response = speak(server, f"Redis is down, request {i}.")
            assert response.status_code == 200, response.text
            answered.append(response.json())
        assert all(a["cache"] == "unavailable" for a in answered[1:])
        assert all(base64.b64decode(a["audio_base64"])[:4] == b"RIFF" for a in answered)
        wait_for(lambda: readyz(server)["status"] == "degraded")
        body = readyz(server)
        assert body["degraded"] == ["state_store"]
        assert body["dependencies"]["state_store"]["up"] is False
    finally:
        redis_for_server.start()
    recovered_in = wait_for(lambda: readyz(server)["status"] == "ready")
    assert recovered_in < 20
    first = speak(server, "Redis is back.")
    second = speak(server, "Redis is back.")
    assert (first.json()["cache"], second.json()["cache"]) == ("miss", "hit")


def test_dead_s3_degrades_url_delivery_to_inline_and_recovers(
    server: RunningServer, s3_for_server: SeaweedS3
) -> None:
    s3_for_server.stop()
    try:
        response = speak(server, "S3 is down.", delivery="url")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["delivery"] == "inline" and "delivery_degraded" in body
        assert base64.b64decode(body["audio_base64"])[:4] == b"RIFF"
        wait_for(lambda: "object_storage" in readyz(server).get("degraded", []))
    finally:
        s3_for_server.start()
    wait_for(lambda: readyz(server)["status"] == "ready", timeout=30)
    body = speak(server, "S3 is back.", delivery="url").json()
    assert body["delivery"] == "url"
    assert httpx.get(body["audio_url"], timeout=10).status_code == 200


def test_stt_answers_while_redis_is_down(server: RunningServer, redis_for_server: RedisServer) -> None:
    wav = base64.b64decode(speak(server, "Transcribe me while the cache is gone.").json()["audio_base64"])
    redis_for_server.stop()
    try:
        response = httpx.post(
            f"{server.url}/v1/audio/transcriptions",
            files={"file": ("a.wav", wav)},
            data={"model": "whisper-1"},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        # "cache" and "cash" sound alike: check the words Whisper cannot mishear.
        heard = response.json()["text"].lower()
        assert "transcribe" in heard and "gone" in heard, heard
        assert response.headers["X-Voxshift-Cache"] in ("unavailable", "miss")
    finally:
        redis_for_server.start()
    wait_for(lambda: readyz(server)["status"] == "ready")


def test_unreachable_servers_at_start_up_exit_2_with_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    for env in (
        {"VOXSHIFT_STATE_URL": "redis://127.0.0.1:1/0"},
        {"VOXSHIFT_STORAGE_URL": "s3://?endpoint=http://127.0.0.1:1&region=us-east-1"},
        {"VOXSHIFT_STATE_URL": "mongodb://nope"},
    ):
        result = subprocess.run(
            [sys.executable, "-m", "voxshift.cli", "serve", "--port", "1"],
            env={
                "PATH": "/usr/bin:/bin",
                "VOXSHIFT_DATA_DIR": str(tmp_path),
                "AWS_ACCESS_KEY_ID": "x",
                "AWS_SECRET_ACCESS_KEY": "y",
                **env,
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr
        assert next(iter(env)) in lines[0]
