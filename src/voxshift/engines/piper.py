"""Local text-to-speech with Piper (ONNX Runtime), run on the inference pool.

Piper voices are single-language; the packaged one is "joe" (US English, 22050 Hz). OpenAI's voice
names are accepted and all mean joe, so an OpenAI-style client works unchanged against this engine.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import onnxruntime
from piper import PiperVoice, SynthesisConfig

from voxshift.config import Settings
from voxshift.core.language import base_code
from voxshift.core.text_chunks import split_for_synthesis
from voxshift.core.voices import OPENAI_VOICES
from voxshift.engines.base import Availability, EngineInfo, Speech, TTSRequest
from voxshift.engines.models import piper_model_path
from voxshift.engines.pool import InferencePool
from voxshift.errors import EmptyInput, InputRejected, ProviderError, ProviderUnavailable, VoxshiftError

MIN_SPEED, MAX_SPEED = 0.25, 4.0
# Longest text given to the model at once; ~190 MB peak on top of the loaded voice (measured).
MAX_PIECE_CHARS = 250

_VOICES: dict[str, Any] = {}
# Held for the whole load so concurrent first calls load the voice once (about 0.6 s).
_VOICES_LOCK = threading.Lock()


class _ShrinkingSession:
    """An ONNX Runtime session whose every run hands its arena memory back at the end.

    The CPU arena keeps the largest working set any run needed; under concurrent requests it kept
    growing (measured: +205 MB over 50 two-thread syntheses, back to the start with shrinkage, for
    about 4 % more time per synthesis)."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self._options = onnxruntime.RunOptions()
        self._options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")

    def run(self, output_names: Any, input_feed: Any, run_options: Any = None) -> Any:
        return self._session.run(output_names, input_feed, run_options or self._options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


def _shared_voice(model: Path) -> Any:
    key = str(model.resolve())
    with _VOICES_LOCK:
        voice = _VOICES.get(key)
        if voice is None:
            voice = _VOICES[key] = PiperVoice.load(key)
            voice.session = _ShrinkingSession(voice.session)
        return voice


class PiperTTS:
    name = "piper"

    def __init__(self, settings: Settings, pool: InferencePool) -> None:
        self._settings = settings
        self._pool = pool
        self._voice: Any = None
        self._lock = threading.Lock()
        self._meta: tuple[str, str, int] | None = None  # (language, voice name, sample rate)

    @property
    def loaded(self) -> bool:
        return self._voice is not None

    @property
    def voice(self) -> Any:
        """The underlying piper.PiperVoice (loading it if needed)."""
        return self._load()

    def load(self) -> None:
        """Load the voice; blocking, idempotent, thread-safe."""
        self._load()

    def _load(self) -> Any:
        if self._voice is not None:
            return self._voice
        with self._lock:
            if self._voice is None:
                try:
                    self._voice = _shared_voice(piper_model_path(self._settings))
                except VoxshiftError as exc:  # ConfigError: the voice package or file is missing
                    raise ProviderUnavailable(self.name, exc.message) from exc
                except Exception as exc:  # onnxruntime / json errors on a bad voice file
                    raise ProviderUnavailable(self.name, f"cannot load the voice: {exc}") from exc
            return self._voice

    def _metadata(self) -> tuple[str, str, int]:
        """Language, voice name and rate from the voice's .onnx.json, read once without the model."""
        if self._meta is None:
            model = piper_model_path(self._settings)
            config = json.loads(model.with_name(model.name + ".json").read_text(encoding="utf-8"))
            language = config.get("language", {}).get("family") or config["espeak"]["voice"]
            name = config.get("dataset") or model.stem
            self._meta = (base_code(language), str(name), int(config["audio"]["sample_rate"]))
        return self._meta

    def info(self) -> EngineInfo:
        try:
            language, voice, rate = self._metadata()
        except VoxshiftError as exc:
            return EngineInfo(self.name, "tts", Availability(False, exc.message))
        except (OSError, ValueError, KeyError) as exc:
            return EngineInfo(self.name, "tts", Availability(False, f"unreadable voice config: {exc}"))
        return EngineInfo(
            name=self.name,
            kind="tts",
            availability=Availability(True),
            languages=(language,),
            voices=(voice,),
            details={
                "sample_rate": str(rate),
                "voice_aliases": f"{', '.join(OPENAI_VOICES)} -> {voice}",
                "loaded": str(self.loaded).lower(),
            },
        )

    async def synthesize(self, request: TTSRequest) -> Speech:
        language, voice, _ = self._checked_metadata()
        # Unavailable rather than a plain error: the request is fine and Piper is healthy, it just
        # lacks this language/voice, so the chain moves on without counting a failure.
        if base_code(request.language) != language:
            raise ProviderUnavailable(
                self.name, f"language {request.language} not supported (only {language})"
            )
        if request.voice is not None and request.voice.lower() not in (voice, *OPENAI_VOICES):
            raise ProviderUnavailable(
                self.name, f"voice {request.voice!r} not available (use {voice} or an OpenAI voice name)"
            )
        return await self._pool.run(self._synthesize_sync, request)

    def _checked_metadata(self) -> tuple[str, str, int]:
        try:
            return self._metadata()
        except VoxshiftError as exc:
            raise ProviderUnavailable(self.name, exc.message) from exc
        except (OSError, ValueError, KeyError) as exc:
            raise ProviderUnavailable(self.name, f"unreadable voice config: {exc}") from exc

    def _synthesize_sync(self, request: TTSRequest) -> Speech:
        voice = self._load()
        speed = min(MAX_SPEED, max(MIN_SPEED, request.speed))
        # length_scale multiplies phoneme durations, so it is the inverse of speed, relative to
        # the voice's own default pace.
        length_scale = float(voice.config.length_scale) / speed
        config = SynthesisConfig(length_scale=length_scale)
        try:
            # Piece by piece: the model's memory grows faster than linearly with the sentence, and
            # ONNX Runtime's arena keeps its peak, so one unbroken 4096-character input cost 2.5 GB.
            pcm = b"".join(
                chunk.audio_int16_bytes
                for piece in split_for_synthesis(request.text, MAX_PIECE_CHARS)
                for chunk in voice.synthesize(piece, syn_config=config)
            )
        except (ValueError, UnicodeError) as exc:
            # The phonemizer refusing the text ("embedded null character", unencodable characters):
            # the caller's input, which must not open Piper's breaker for everyone else.
            raise InputRejected(self.name, f"cannot speak this text: {exc}", param="input") from exc
        except Exception as exc:
            raise ProviderError(self.name, f"synthesis failed: {type(exc).__name__}: {exc}") from exc
        if not pcm:
            # Text of punctuation only has no phonemes: the caller's problem (a 400), not a provider
            # failure that would count against Piper's circuit breaker.
            raise EmptyInput("the text contains nothing to speak", param="input")
        return Speech(pcm=pcm, sample_rate=int(voice.config.sample_rate))
