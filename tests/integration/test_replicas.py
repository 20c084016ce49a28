"""Two `voxshift serve` replicas on one real Redis and one settings DB: a kill switch or a lower
percentage made with the CLI takes effect on the next request in every replica within 1 s."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.redis_server import RedisServer
from tests.integration.server import RunningServer, start_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def shared_env(
    tmp_path_factory: pytest.TempPathFactory, redis: RedisServer, whisper_model_dir: Path
) -> dict[str, str]:
    shared = tmp_path_factory.mktemp("fleet")
    return {
        "VOXSHIFT_STATE_URL": redis.url,
        "VOXSHIFT_DATABASE_URL": f"sqlite+aiosqlite:///{shared / 'voxshift.db'}",
        "VOXSHIFT_STORAGE_URL": f"file://{shared / 'objects'}",
        "VOXSHIFT_WHISPER_MODEL_DIR": str(whisper_model_dir),
        "VOXSHIFT_WORKERS": "1",
    }


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory, shared_env: dict[str, str]
) -> Iterator[list[RunningServer]]:
    servers = [start_server(tmp_path_factory.mktemp(f"replica{i}"), shared_env) for i in range(2)]
    yield servers
    for server in servers:
        server.stop()


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("VOICE_V2_", "VOXSHIFT_"))}
    return subprocess.run(
        [sys.executable, "-m", "voxshift.cli", *args],
        env=clean | env | {"VOXSHIFT_DATA_DIR": env["VOXSHIFT_STORAGE_URL"].removeprefix("file://")},
        capture_output=True,
        text=True,
        timeout=60,
    )


def uses_v2(server: RunningServer, user: str) -> bool:
    body = httpx.get(f"{server.url}/v2/flags/explain", params={"user_id": user}, timeout=5).json()
    return bool(body["decisions"]["tts"]["use_v2"])


def seconds_until(predicate: object, timeout: float = 5.0) -> float:
    assert callable(predicate)
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError(f"not reached within {timeout} s")


def speak_system(server: RunningServer, user: str) -> str:
    response = httpx.post(
        f"{server.url}/v1/audio/speech",
        json={"model": "tts-1", "input": "Which system answers?", "voice": "alloy", "language": "en"},
        headers={"X-User-Id": user},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert response.headers["X-Voxshift-Fallback"] == "false"
    return response.headers["X-Voxshift-System"]


def test_kill_switch_and_lower_percentage_reach_every_replica_within_a_second(
    replicas: list[RunningServer], shared_env: dict[str, str]
) -> None:
    user = "user-7"
    assert [speak_system(s, user) for s in replicas] == ["voice_v2", "voice_v2"]

    killed = cli(shared_env, "flags", "kill", "--reason", "replica test")
    assert killed.returncode == 0, killed.stderr
    lags = [seconds_until(lambda s=s: not uses_v2(s, user)) for s in replicas]
    assert max(lags) < 1.0, lags
    assert [speak_system(s, user) for s in replicas] == ["legacy", "legacy"]
    print(f"kill switch applied on both replicas after {max(lags) * 1000:.0f} ms (after the CLI returned)")

    restored = cli(shared_env, "flags", "set", "--enabled", "--reason", "back on")
    assert restored.returncode == 0, restored.stderr
    seconds_until(lambda: all(uses_v2(s, user) for s in replicas))

    lowered = cli(shared_env, "flags", "set", "--percentage", "0", "--reason", "roll back to 0 %")
    assert lowered.returncode == 0, lowered.stderr
    lags = [seconds_until(lambda s=s: not uses_v2(s, user)) for s in replicas]
    assert max(lags) < 1.0, lags
    assert [speak_system(s, user) for s in replicas] == ["legacy", "legacy"]
    history = cli(shared_env, "flags", "history")
    assert (
        history.returncode == 0 and "roll back to 0 %" in history.stdout and "replica test" in history.stdout
    )
