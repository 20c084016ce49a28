"""Shared fixtures: real engines, each model loaded once per test session.

The Whisper model is joined from its pip packages into a cache shared across sessions
(``VOXSHIFT_TEST_MODELS_DIR``, default ``~/.cache/voxshift-test-models``), so the 145 MB join and
hash happen once per machine, not per run; everything else a test writes goes to a tmp dir.
"""

from __future__ import annotations

import io
import os
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from voxshift.config import Settings
from voxshift.engines.base import STT_SAMPLE_RATE, AudioInput, Speech
from voxshift.engines.models import ensure_whisper_model
from voxshift.engines.pool import InferencePool

if TYPE_CHECKING:  # the engine modules import faster-whisper/onnxruntime: only when a test needs them
    from voxshift.engines.espeak import EspeakTTS
    from voxshift.engines.piper import PiperTTS
    from voxshift.engines.whisper import WhisperSTT

# Real servers (redis-server, SeaweedFS, PostgreSQL) started on free ports, one module each.
pytest_plugins = [
    "tests.fixtures.redis_server",
    "tests.fixtures.s3_server",
    "tests.fixtures.postgres_server",
]

TEST_MODELS_DIR = Path(
    os.environ.get("VOXSHIFT_TEST_MODELS_DIR") or Path.home() / ".cache" / "voxshift-test-models"
)


@pytest.fixture(scope="session")
def whisper_model_dir() -> Path:
    return ensure_whisper_model(TEST_MODELS_DIR / "whisper-base")


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory, whisper_model_dir: Path) -> Settings:
    return Settings(
        data_dir=tmp_path_factory.mktemp("voxshift-data"),
        whisper_model_dir=whisper_model_dir,
        workers=2,
        queue_size=16,
    )


@pytest.fixture(scope="session")
def pool(settings: Settings) -> Iterator[InferencePool]:
    pool = InferencePool(settings.workers, settings.queue_size)
    yield pool
    pool.shutdown()


@pytest.fixture(scope="session")
def whisper(settings: Settings, pool: InferencePool) -> WhisperSTT:
    from voxshift.engines.whisper import WhisperSTT

    engine = WhisperSTT(settings, pool)
    engine.load()
    return engine


@pytest.fixture(scope="session")
def piper(settings: Settings, pool: InferencePool) -> PiperTTS:
    from voxshift.engines.piper import PiperTTS

    engine = PiperTTS(settings, pool)
    engine.load()
    return engine


@pytest.fixture(scope="session")
def espeak(settings: Settings, pool: InferencePool) -> EspeakTTS:
    from voxshift.engines.espeak import EspeakTTS

    return EspeakTTS(settings, pool)


def speech_to_wav(speech: Speech) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(speech.sample_rate)
        out.writeframes(speech.pcm)
    return buffer.getvalue()


def speech_to_audio_input(speech: Speech) -> AudioInput:
    """TTS output (22050 Hz s16) as the 16 kHz float32 upload Whisper takes, via a real WAV file."""
    data = speech_to_wav(speech)
    try:
        from voxshift.audio import load_audio
    except ImportError:  # the decoder is someone else's module; resample directly without it
        return _resample_with_av(data, speech)
    return load_audio(data, max_bytes=len(data) + 1, max_seconds=600.0, filename="speech.wav")


def _resample_with_av(data: bytes, speech: Speech) -> AudioInput:
    import av

    pcm = np.frombuffer(speech.pcm, dtype="<i2").reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
    frame.sample_rate = speech.sample_rate
    resampler = av.AudioResampler(format="flt", layout="mono", rate=STT_SAMPLE_RATE)
    frames = [*resampler.resample(frame), *resampler.resample(None)]
    samples = np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.float32)
    return AudioInput(data, "wav", samples, len(samples) / STT_SAMPLE_RATE, "speech.wav")


@pytest.fixture(scope="session")
def to_audio_input() -> Callable[[Speech], AudioInput]:
    return speech_to_audio_input
