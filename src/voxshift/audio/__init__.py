"""Audio in and out, with PyAV only (no ffmpeg binary): sniff and decode uploads, encode speech.

The decoder and encoder load PyAV (~140 ms), so they are imported on first use: a module that
only needs the format tables (:mod:`voxshift.audio.formats`) or the sniffer must not pay for it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from voxshift.audio.formats import CONTENT_TYPES, OUTPUT_FORMATS, PCM_SAMPLE_RATE
from voxshift.audio.sniff import ACCEPTED_DESCRIPTION, INPUT_CONTAINERS, sniff_container

if TYPE_CHECKING:
    from voxshift.audio.decode import load_audio, probe
    from voxshift.audio.encode import encode_speech, iter_encode_speech

_LAZY = {
    "load_audio": "decode",
    "probe": "decode",
    "encode_speech": "encode",
    "iter_encode_speech": "encode",
}

__all__ = [
    "ACCEPTED_DESCRIPTION",
    "CONTENT_TYPES",
    "INPUT_CONTAINERS",
    "OUTPUT_FORMATS",
    "PCM_SAMPLE_RATE",
    "encode_speech",
    "iter_encode_speech",
    "load_audio",
    "probe",
    "sniff_container",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value
