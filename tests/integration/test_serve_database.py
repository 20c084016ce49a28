"""`voxshift serve` and the settings database: embedded SQLite upgrades itself, PostgreSQL never does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.integration.server import start_server

pytestmark = pytest.mark.slow


def run_cli(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("VOICE_V2_", "VOXSHIFT_"))}
    return subprocess.run(
        [sys.executable, "-m", "voxshift.cli", *args],
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_serve_refuses_an_old_postgresql_schema_and_names_the_command(
    postgres_url: str, tmp_path: Path, whisper_model_dir: Path
) -> None:
    env = {"VOXSHIFT_DATA_DIR": str(tmp_path), "VOXSHIFT_DATABASE_URL": postgres_url}
    refused = run_cli(["serve", "--port", "1"], env)
    assert refused.returncode == 2, refused.stderr
    (line,) = refused.stderr.strip().splitlines()
    assert "voxshift db upgrade" in line and "none (empty)" in line and "Traceback" not in refused.stderr
    assert "password" not in line.lower() or "****" in line
    # Nothing was created behind the operator's back.
    current = run_cli(["db", "current"], env)
    assert current.stdout.startswith("none (empty database)"), current.stdout

    upgraded = run_cli(["db", "upgrade"], env)
    assert upgraded.returncode == 0, upgraded.stderr
    server = start_server(tmp_path / "pg", env | {"VOXSHIFT_WHISPER_MODEL_DIR": str(whisper_model_dir)})
    try:
        body = httpx.get(f"{server.url}/readyz", timeout=10).json()
        assert body["status"] == "ready" and body["dependencies"]["database"]["up"] is True
    finally:
        server.stop()


def test_serve_upgrades_the_embedded_sqlite_itself(tmp_path: Path, whisper_model_dir: Path) -> None:
    env = {"VOXSHIFT_WHISPER_MODEL_DIR": str(whisper_model_dir)}
    assert not (tmp_path / "voxshift.db").exists()
    server = start_server(tmp_path, env)
    try:
        assert httpx.get(f"{server.url}/readyz", timeout=10).json()["dependencies"]["database"]["up"]
    finally:
        server.stop()
    current = run_cli(["db", "current"], {"VOXSHIFT_DATA_DIR": str(tmp_path)})
    assert current.returncode == 0 and "(head)" in current.stdout.splitlines()[0], current.stdout
