"""`voxshift serve` on embedded defaults: v2 and the reference legacy side by side, routed by flags
from the environment, every answer saying which system gave it, metrics at /metrics."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.server import RunningServer, start_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("embedded")


@pytest.fixture(scope="module")
def server(data_dir: Path, whisper_model_dir: Path) -> Iterator[RunningServer]:
    # The seed's defaults: VOICE_V2_ENABLED=false, 0 %: everything goes to the legacy service.
    running = start_server(
        data_dir,
        {"VOXSHIFT_WHISPER_MODEL_DIR": str(whisper_model_dir), "VOXSHIFT_METRICS_FLUSH_INTERVAL_S": "0.2"},
        all_on_v2=False,
    )
    yield running
    running.stop()


def speak(server: RunningServer, text: str, user: str, **extra: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/audio/speech",
        json={"model": "tts-1", "input": text, "voice": "alloy", "response_format": "wav", "language": "en"},
        headers={"X-User-Id": user, **extra},
        timeout=60,
    )


def test_defaults_route_everything_to_the_reference_legacy(server: RunningServer, data_dir: Path) -> None:
    spoken = speak(server, "Legacy answers by default.", "alice", **{"X-Agent-Id": "agent_demo"})
    assert spoken.status_code == 200, spoken.text
    assert spoken.headers["X-Voxshift-System"] == "legacy"
    assert spoken.headers["X-Voxshift-Fallback"] == "false"
    assert spoken.headers["X-Voxshift-Provider"] == "reference-espeak"
    assert spoken.content[:4] == b"RIFF"

    heard = httpx.post(
        f"{server.url}/v2/transcribe",
        files={"file": ("note.wav", spoken.content)},
        data={"language": "en"},
        headers={"X-User-Id": "alice", "X-Agent-Id": "agent_demo"},
        timeout=60,
    )
    assert heard.status_code == 200, heard.text
    body = heard.json()
    assert body["system_used"] == "legacy" and body["decision_reason"] == "kill_switch"
    assert "legacy" in body["text"].lower() or "default" in body["text"].lower(), body["text"]

    # The legacy wrote its own layout, beside v2 and never under v2's names.
    with sqlite3.connect(data_dir / "state.db") as db:
        keys = [
            bytes(row[0]).decode() if isinstance(row[0], bytes) else row[0]
            for row in db.execute("SELECT key FROM kv")
        ]
    assert any(k.startswith("stt_cache:") for k in keys), keys
    assert not any(k.startswith("voice_v2:cache:") for k in keys)
    uploads = list((data_dir / "objects" / "voice-files" / "voice" / "agent_demo" / "alice").rglob("*"))
    assert any(p.is_file() and p.suffix in (".wav", ".mp3") for p in uploads)


def test_metrics_and_dashboard_count_what_was_served(server: RunningServer) -> None:
    for i in range(3):
        assert speak(server, f"Counted request {i}.", f"user-{i}").status_code == 200
    time.sleep(0.5)  # > flush interval
    prometheus = httpx.get(f"{server.url}/metrics", timeout=10)
    assert prometheus.status_code == 200
    assert 'system="legacy"' in prometheus.text and 'operation="tts"' in prometheus.text
    dashboard = httpx.get(f"{server.url}/v2/migration/dashboard", params={"hours": 1}, timeout=10).json()
    assert dashboard["latency_metrics"]["tts"]["legacy"]["count"] >= 3
    assert dashboard["error_rates"]["tts"]["legacy"] == 0.0
    bad = httpx.get(f"{server.url}/v2/migration/dashboard", params={"hours": 0}, timeout=10)
    assert bad.status_code == 400 and "hours" in bad.text


def test_flags_changed_with_the_cli_move_users_to_v2(server: RunningServer, data_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VOICE_V2_", "VOXSHIFT_"))}
    env["VOXSHIFT_DATA_DIR"] = str(data_dir)
    for args in (
        [
            "flags",
            "set",
            "--enabled",
            "--percentage",
            "100",
            "--feature",
            "tts_enabled=true",
            "--reason",
            "go",
        ],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "voxshift.cli", *args], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 5
    system = ""
    while time.monotonic() < deadline:
        response = speak(server, "Now voice two answers.", "bob")
        system = response.headers["X-Voxshift-System"]
        if system == "voice_v2":
            break
        time.sleep(0.1)
    assert system == "voice_v2"
    assert response.headers["X-Voxshift-Provider"] == "piper"


def test_readyz_reports_the_legacy_and_the_flags(server: RunningServer) -> None:
    body = httpx.get(f"{server.url}/readyz", timeout=30).json()
    assert body["legacy"]["name"] == "legacy:reference" and body["legacy"]["available"] is True
    assert set(body["flags"]) == {"version", "source", "enabled", "percentages"}
    assert body["dependencies"]["database"]["up"] is True
