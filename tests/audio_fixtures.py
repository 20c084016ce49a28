"""Real audio clips in every input container, for tests.

Encoded with PyAV directly rather than through ``voxshift.audio``, so a bug in our encoder cannot
hide the same bug in our decoder. Import as ``tests.audio_fixtures``.
"""

from __future__ import annotations

import io
from fractions import Fraction

import av
import numpy as np
import numpy.typing as npt
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream

INPUT_CONTAINERS: tuple[str, ...] = ("wav", "mp3", "ogg", "webm", "flac", "m4a")

# container -> (muxer, codec, sample rates the codec takes or None for any)
_ENCODERS: dict[str, tuple[str, str, tuple[int, ...] | None]] = {
    "wav": ("wav", "pcm_s16le", None),
    "mp3": ("mp3", "libmp3lame", (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)),
    "ogg": ("ogg", "libopus", (48000,)),
    "webm": ("webm", "libopus", (48000,)),
    "flac": ("flac", "flac", None),
    "m4a": ("ipod", "aac", (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)),
}


def voice_like(seconds: float = 1.5, rate: int = 48000, *, seed: int = 0) -> npt.NDArray[np.int16]:
    """A deterministic voiced signal: gliding pitch with vibrato, harmonics, syllable-rate envelope.

    Pure tones are a poor stand-in for speech in lossy codecs (they compress to almost nothing and
    hide framing bugs); a harmonic-rich signal with some noise behaves much more like a voice.
    """
    n = round(seconds * rate)
    t = np.arange(n, dtype=np.float64) / rate
    pitch = 120.0 + 40.0 * t / max(seconds, 1e-9) + 5.0 * np.sin(2 * np.pi * 5.5 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12) if k * 160 < rate / 2)
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4.0 * t - np.pi / 2)
    noise = np.random.default_rng(seed).normal(0.0, 0.02, n)
    signal = 0.3 * envelope * np.asarray(voiced) + noise
    return np.asarray(np.clip(signal, -1.0, 1.0) * 32767, dtype=np.int16)


def make_clip(container: str, seconds: float = 1.5, rate: int = 48000) -> bytes:
    """A ``seconds``-long voice-like clip encoded in ``container`` (one of ``INPUT_CONTAINERS``)."""
    return speech_to_container(voice_like(seconds, rate).astype("<i2").tobytes(), rate, container)


def speech_to_container(pcm_int16: bytes, rate: int, container: str) -> bytes:
    """Re-encode mono s16le PCM at ``rate`` into an input ``container`` (e.g. to round-trip TTS into STT)."""
    if container not in _ENCODERS:
        raise ValueError(f"unknown container {container!r}; expected one of {INPUT_CONTAINERS}")
    muxer, codec, rates = _ENCODERS[container]
    out_rate = (
        rate if rates is None or rate in rates else min((r for r in rates if r >= rate), default=rates[-1])
    )
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=muxer) as output:
        stream = output.add_stream(codec, rate=out_rate, layout="mono")
        assert isinstance(stream, AudioStream)
        if codec in ("libmp3lame", "libopus", "aac"):
            stream.bit_rate = 64_000  # explicit, so FFmpeg does not log that it picked a default
        samples = np.frombuffer(pcm_int16[: len(pcm_int16) // 2 * 2], dtype="<i2")
        if samples.size:
            frame = AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = rate
            frame.time_base = Fraction(1, rate)
            frame.pts = 0  # without it the MP4 muxer guesses timestamps and skews the duration
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    return buffer.getvalue()
