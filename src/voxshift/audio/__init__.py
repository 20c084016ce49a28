"""Audio in and out, with PyAV only (no ffmpeg binary): sniff and decode uploads, encode speech."""

from voxshift.audio.decode import load_audio, probe
from voxshift.audio.encode import (
    CONTENT_TYPES,
    OUTPUT_FORMATS,
    PCM_SAMPLE_RATE,
    encode_speech,
    iter_encode_speech,
)
from voxshift.audio.sniff import ACCEPTED_DESCRIPTION, INPUT_CONTAINERS, sniff_container

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
