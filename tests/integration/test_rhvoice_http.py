"""The OpenAI API on a real `voxshift serve`: Cyrillic text without `language` is spoken by RHVoice,
and Whisper, also without `language`, hears Russian - with the round trip's quality bar over HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import pytest

from tests.integration.server import RunningServer, start_server
from tests.integration.test_rhvoice_roundtrip import MAX_CER, MAX_WER, MIN_DETECTED_RU, RUSSIAN, score, show
from voxshift.config import Settings
from voxshift.engines.pool import InferencePool
from voxshift.engines.rhvoice import RHVoiceTTS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, whisper_model_dir: Path, settings: Settings, pool: InferencePool
) -> Iterator[RunningServer]:
    if not RHVoiceTTS(settings, pool).info().availability.available:
        pytest.skip("RHVoice not installed")
    srv = start_server(
        tmp_path_factory.mktemp("rhvoice-api"), {"VOXSHIFT_WHISPER_MODEL_DIR": str(whisper_model_dir)}
    )
    yield srv
    srv.stop()
    assert "Traceback" not in srv.log, srv.log


@pytest.fixture(scope="module")
def heard(server: RunningServer) -> list[tuple[str, str, str, str]]:
    """(sentence, transcript, TTS provider, detected language) per sentence, all over HTTP."""
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=120)
    out = []
    for sentence in RUSSIAN:
        raw = client.audio.speech.with_raw_response.create(
            model="tts-1", voice="alloy", input=sentence, response_format="mp3"
        )
        transcript = client.audio.transcriptions.create(
            model="whisper-1", file=("speech.mp3", raw.content, "audio/mpeg"), response_format="verbose_json"
        )
        out.append((sentence, transcript.text, raw.headers["x-voxshift-provider"], transcript.language))
    return out


def test_cyrillic_without_language_is_spoken_by_rhvoice(heard: list[tuple[str, str, str, str]]) -> None:
    assert {provider for _, _, provider, _ in heard} == {"rhvoice"}


def test_http_round_trip_meets_the_bar(
    heard: list[tuple[str, str, str, str]],
    capsys: pytest.CaptureFixture[str],
    record_property: Callable[[str, object], None],
) -> None:
    pairs = [(sentence, text) for sentence, text, _, _ in heard]
    detected = sum(language == "russian" for _, _, _, language in heard)
    figures = {"detected_ru": float(detected), **score(pairs)}
    show(capsys, record_property, "russian_rhvoice_http", figures, pairs)
    assert detected >= MIN_DETECTED_RU, heard
    assert figures["wer"] <= MAX_WER, pairs
    assert figures["cer"] <= MAX_CER, pairs
