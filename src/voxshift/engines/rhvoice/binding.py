"""A small ctypes binding to RHVoice's C API (``libRHVoice.so.5``, RHVoice 1.8, LGPL-2.1+).

Our own binding rather than the ``rhvoice-wrapper`` package, which is GPLv3+. The structures mirror
``RHVoice.h`` field for field: a wrong layout is memory corruption, not an exception, so
``test_rhvoice_binding`` checks their sizes against the header's (x86-64: 72/104/80/32 bytes).

Threading: one engine must not speak two messages at once (measured: concurrent ``RHVoice_speak`` on
one engine returned failures or empty audio), so :class:`EnginePool` lends each synthesis an engine
of its own, creating one when all are busy. ctypes releases the GIL during ``RHVoice_speak``, so
engines on different pool workers run in parallel; the audio callback takes the GIL per chunk only.
"""

from __future__ import annotations

import ctypes
import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

_SetRate = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)
_PlaySpeech = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_uint, ctypes.c_void_p)
_Named = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
_Span = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p)
_Done = ctypes.CFUNCTYPE(None, ctypes.c_void_p)

MESSAGE_TEXT = 0  # RHVoice_message_text
FLAG_DONT_CLIP_RATE = 1  # RHVoice_synth_flag_dont_clip_rate: else the rate is clipped to 2x
GENDERS = {0: "unknown", 1: "male", 2: "female"}


class Callbacks(ctypes.Structure):
    # Unset optional callbacks stay NULL, as the header asks.
    _fields_ = [
        ("set_sample_rate", _SetRate),
        ("play_speech", _PlaySpeech),
        ("process_mark", _Named),
        ("word_starts", _Span),
        ("word_ends", _Span),
        ("sentence_starts", _Span),
        ("sentence_ends", _Span),
        ("play_audio", _Named),
        ("done", _Done),
    ]


class InitParams(ctypes.Structure):
    _fields_ = [
        ("data_path", ctypes.c_char_p),
        ("config_path", ctypes.c_char_p),
        ("resource_paths", ctypes.POINTER(ctypes.c_char_p)),
        ("callbacks", Callbacks),
        ("options", ctypes.c_uint),
    ]


class SynthParams(ctypes.Structure):
    _fields_ = [
        ("voice_profile", ctypes.c_char_p),
        ("absolute_rate", ctypes.c_double),
        ("absolute_pitch", ctypes.c_double),
        ("absolute_volume", ctypes.c_double),
        ("relative_rate", ctypes.c_double),
        ("relative_pitch", ctypes.c_double),
        ("relative_volume", ctypes.c_double),
        ("punctuation_mode", ctypes.c_int),
        ("punctuation_list", ctypes.c_char_p),
        ("capitals_mode", ctypes.c_int),
        ("flags", ctypes.c_int),
    ]


class VoiceInfo(ctypes.Structure):
    _fields_ = [
        ("language", ctypes.c_char_p),
        ("name", ctypes.c_char_p),
        ("gender", ctypes.c_int),
        ("country", ctypes.c_char_p),
    ]


@dataclass
class Sink:
    """Where one message's audio goes; ``stop`` ends the synthesis at the next chunk."""

    chunks: list[bytes] = field(default_factory=list)
    sample_rate: int = 0
    stop: bool = False


# The callbacks are engine-wide in RHVoice's API; each message carries a key into this table as its
# user_data. Module-level so the C function pointers outlive every engine.
_SINKS: dict[int, Sink] = {}
_KEYS = itertools.count(1)


def _set_sample_rate(rate: int, key: int | None) -> int:
    sink = _SINKS.get(key or 0)
    if sink is None:
        return 0
    sink.sample_rate = rate
    return 1


def _play_speech(samples: ctypes._Pointer[ctypes.c_short], count: int, key: int | None) -> int:
    sink = _SINKS.get(key or 0)
    if sink is None or sink.stop:
        return 0
    sink.chunks.append(ctypes.string_at(samples, count * 2))
    return 1


# C function pointers made once, kept alive by the module for as long as any engine may call them.
_SET_SAMPLE_RATE = _SetRate(_set_sample_rate)
_PLAY_SPEECH = _PlaySpeech(_play_speech)


@dataclass(frozen=True)
class Voice:
    name: str
    language: str
    gender: str


class Library:
    """``libRHVoice`` loaded (once per process: see :func:`voxshift.engines.rhvoice.provider`)."""

    def __init__(self, path: str) -> None:
        lib = ctypes.CDLL(path)  # OSError when missing
        lib.RHVoice_get_version.restype = ctypes.c_char_p
        lib.RHVoice_new_tts_engine.restype = ctypes.c_void_p
        lib.RHVoice_new_tts_engine.argtypes = [ctypes.POINTER(InitParams)]
        lib.RHVoice_delete_tts_engine.argtypes = [ctypes.c_void_p]
        lib.RHVoice_get_number_of_voices.restype = ctypes.c_uint
        lib.RHVoice_get_number_of_voices.argtypes = [ctypes.c_void_p]
        lib.RHVoice_get_voices.restype = ctypes.POINTER(VoiceInfo)
        lib.RHVoice_get_voices.argtypes = [ctypes.c_void_p]
        lib.RHVoice_new_message.restype = ctypes.c_void_p
        lib.RHVoice_new_message.argtypes = [
            ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint, ctypes.c_int,
            ctypes.POINTER(SynthParams), ctypes.c_void_p,
        ]  # fmt: skip
        lib.RHVoice_speak.restype = ctypes.c_int
        lib.RHVoice_speak.argtypes = [ctypes.c_void_p]
        lib.RHVoice_delete_message.argtypes = [ctypes.c_void_p]
        self._lib = lib
        self.version = (lib.RHVoice_get_version() or b"?").decode()

    def new_engine(self, data_path: str, config_path: str) -> Engine:
        params = InitParams(data_path=data_path.encode(), config_path=config_path.encode())
        params.callbacks.set_sample_rate = _SET_SAMPLE_RATE
        params.callbacks.play_speech = _PLAY_SPEECH
        handle = self._lib.RHVoice_new_tts_engine(ctypes.byref(params))
        if not handle:
            raise OSError("RHVoice_new_tts_engine failed (no voice data?)")
        return Engine(self._lib, handle)


class Engine:
    """One ``RHVoice_tts_engine``: speaks one message at a time (see the module)."""

    def __init__(self, lib: ctypes.CDLL, handle: int) -> None:
        self._lib = lib
        self._handle = handle

    def voices(self) -> list[Voice]:
        count = self._lib.RHVoice_get_number_of_voices(self._handle)
        table = self._lib.RHVoice_get_voices(self._handle)
        return [
            Voice(
                (table[i].name or b"").decode(),
                (table[i].language or b"").decode(),
                GENDERS.get(table[i].gender, "unknown"),
            )
            for i in range(count)
        ]

    def speak(self, text: str, voice: str, rate: float, sink: Sink | None = None) -> tuple[bytes, int]:
        """16-bit mono PCM and its sample rate; ``rate`` 1.0 = the voice's own pace.

        Raises ValueError when RHVoice refuses the message (an unknown voice), RuntimeError when
        the synthesis fails or is stopped."""
        sink = sink or Sink()
        key = next(_KEYS)
        data = text.encode("utf-8")
        params = SynthParams(
            voice_profile=voice.encode(), relative_rate=rate, relative_pitch=1.0, relative_volume=1.0,
            flags=FLAG_DONT_CLIP_RATE,
        )  # fmt: skip
        _SINKS[key] = sink
        try:
            message = self._lib.RHVoice_new_message(
                self._handle, data, len(data), MESSAGE_TEXT, ctypes.byref(params), key
            )
            if not message:
                raise ValueError(f"RHVoice refused the message (voice {voice!r})")
            try:
                ok = self._lib.RHVoice_speak(message)
            finally:
                self._lib.RHVoice_delete_message(message)
        finally:
            del _SINKS[key]
        if sink.stop:
            raise RuntimeError("synthesis stopped")
        if not ok:
            raise RuntimeError("RHVoice_speak failed")
        return b"".join(sink.chunks), sink.sample_rate

    def close(self) -> None:
        if self._handle:
            self._lib.RHVoice_delete_tts_engine(self._handle)
            self._handle = 0


class EnginePool:
    """Engines lent one synthesis at a time; as many as were ever busy at once stay for reuse.

    Lending (rather than one engine per worker thread) keeps working when the inference pool
    replaces a stuck worker: the stuck call keeps its engine, the new worker gets another."""

    def __init__(self, library: Library, data_path: str, config_path: str) -> None:
        self._library = library
        self._paths = (data_path, config_path)
        self._idle: list[Engine] = []
        self._lock = threading.Lock()
        self.created = 0

    @contextmanager
    def engine(self) -> Iterator[Engine]:
        with self._lock:
            engine = self._idle.pop() if self._idle else None
        if engine is None:
            engine = self._library.new_engine(*self._paths)
            with self._lock:
                self.created += 1
        try:
            yield engine
        finally:
            with self._lock:
                self._idle.append(engine)
