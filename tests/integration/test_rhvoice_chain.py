"""Without RHVoice (the library path pointed at a missing file), Russian still speaks through
espeak-ng, and the reason is in the chain's attempts, /readyz and `voxshift engines`."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.cli_helpers import run
from tests.integration.server import RunningServer, start_server
from voxshift.config import Settings
from voxshift.engines.base import TTSProvider, TTSRequest
from voxshift.services.wiring.engines import build_engines

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng binary not installed"),
]

MISSING = "/nonexistent/voxshift-test/libRHVoice.so.5"


def test_default_chains() -> None:
    routes = Settings().tts_providers
    assert routes["ru"] == ["rhvoice", "espeak", "yandex", "openai"]
    assert routes["*"] == ["espeak", "yandex", "openai"]
    assert routes["en"][0] == "piper"


async def test_russian_falls_back_to_espeak_with_the_reason(settings: Settings) -> None:
    engines = build_engines(settings.model_copy(update={"rhvoice_library": MISSING}))
    try:
        chain = engines.tts_chain_for("ru")

        async def speak(provider: TTSProvider) -> object:
            return await provider.synthesize(TTSRequest("Добрый день, как дела?", "ru"))

        result = await chain.run(speak)
        assert result.provider == "espeak"
        first = result.attempts[0]
        assert (first.provider, first.outcome) == ("rhvoice", "unavailable")
        assert "libRHVoice.so.5 cannot be loaded" in (first.error or "")
        assert [a.outcome for a in result.attempts] == ["unavailable", "ok"]
    finally:
        await engines.aclose()


def test_engines_command_says_why(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "VOXSHIFT_DATA_DIR": str(tmp_path)}
    missing = run({**env, "VOXSHIFT_RHVOICE_LIBRARY": MISSING}, "engines", "--json")
    assert missing.returncode == 0, missing.stderr
    rhvoice = {(e["kind"], e["name"]): e for e in json.loads(missing.stdout)}[("tts", "rhvoice")]
    assert rhvoice["available"] is False and "rhvoice-russian" in rhvoice["reason"]
    table = run({**env, "VOXSHIFT_RHVOICE_LIBRARY": MISSING}, "engines")
    assert "libRHVoice.so.5 cannot be loaded" in table.stdout


def test_engines_command_lists_voice_licences(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "VOXSHIFT_DATA_DIR": str(tmp_path)}
    proc = run(env, "engines")
    assert proc.returncode == 0, proc.stderr
    if "rhvoice voices:" not in proc.stdout:
        pytest.skip("RHVoice not installed")
    assert "Aleksandr-hq CC-BY-SA-4.0" in proc.stdout and "Anna LGPL-2.1+" in proc.stdout
    assert "Arina CC-BY-NC-ND-4.0" in proc.stdout
    assert "non-commercial" in proc.stdout


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, whisper_model_dir: Path) -> Iterator[RunningServer]:
    srv = start_server(
        tmp_path_factory.mktemp("no-rhvoice"),
        {"VOXSHIFT_WHISPER_MODEL_DIR": str(whisper_model_dir), "VOXSHIFT_RHVOICE_LIBRARY": MISSING},
    )
    yield srv
    srv.stop()
    assert "Traceback" not in srv.log, srv.log


def test_readyz_names_the_reason_and_russian_speaks_through_espeak(server: RunningServer) -> None:
    ready = httpx.get(f"{server.url}/readyz", timeout=10).json()
    rhvoice = ready["engines"]["tts:rhvoice"]
    assert rhvoice["available"] is False and "libRHVoice.so.5 cannot be loaded" in rhvoice["reason"]
    assert "/nonexistent" not in json.dumps(ready)  # /readyz never shows a path
    response = httpx.post(
        f"{server.url}/v1/audio/speech",
        json={"model": "tts-1", "voice": "alloy", "input": "Привет, как дела?", "response_format": "wav"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-voxshift-provider"] == "espeak"
    assert response.content[:4] == b"RIFF" and len(response.content) > 20_000
