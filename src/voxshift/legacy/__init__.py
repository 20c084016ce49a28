"""Legacy voice backends: the system voxshift migrates away from, behind one interface.

An adapter layer: it may use core, engines, audio, stores, errors and config, never services, api or
cli. The HTTP and Python backends import nothing heavy; the reference backend (Whisper tiny.en,
espeak-ng) is imported from ``voxshift.legacy.reference`` when it is wanted.
"""

from voxshift.legacy.base import LegacySpeech, LegacyTranscript, LegacyVoiceBackend
from voxshift.legacy.http import HttpLegacyBackend
from voxshift.legacy.python import PythonLegacyBackend

__all__ = [
    "HttpLegacyBackend",
    "LegacySpeech",
    "LegacyTranscript",
    "LegacyVoiceBackend",
    "PythonLegacyBackend",
]
