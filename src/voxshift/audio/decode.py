"""Turn an upload into the 16 kHz mono float32 samples every local STT engine wants.

Validation happens in order of cost: size (free), then magic bytes (free), then declared duration
(one header parse), and only then a full decode, which is itself cut short once the limit is passed.
Every failure leaves as a ``VoxshiftError``: PyAV raises a zoo of exception types (FFmpeg errors,
``ValueError``, ``UnicodeDecodeError`` from tags, ...), and none of them may turn a bad upload into
a 500.
"""

from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass

import av
import numpy as np
import numpy.typing as npt
from av.audio.frame import AudioFrame
from av.audio.resampler import AudioResampler
from av.audio.stream import AudioStream
from av.container import InputContainer

from voxshift.audio.sniff import is_adts_frame, sniff_container
from voxshift.engines.base import STT_SAMPLE_RATE, AudioInput
from voxshift.errors import (
    AudioTooLong,
    CorruptAudio,
    EmptyInput,
    PayloadTooLarge,
    UnsupportedMediaType,
    VoxshiftError,
)

log = logging.getLogger(__name__)

# The demuxer is forced from the sniffed container so that FFmpeg never probes its way into a
# format we did not mean to accept.
_DEMUXERS: dict[str, str] = {
    "wav": "wav",
    "mp3": "mp3",
    "ogg": "ogg",
    "webm": "matroska",
    "flac": "flac",
    "m4a": "mov",
    "aac": "aac",  # ADTS; only our own output reaches it, through probe()
}

# Decoders pad to whole frames (an MP3 frame is 1152 samples), so a clip that is exactly at the
# limit must not be refused for a few milliseconds of padding.
_DURATION_SLACK_S = 0.05

# ffmpeg skips packets that fail to decode and carries on; past this many in a row the stream is
# garbage and carrying on only burns CPU.
_MAX_CONSECUTIVE_BAD_PACKETS = 50

_MB = 1_000_000

# Real recordings sit between telephone (8 kHz) and studio (384 kHz) rates. A damaged header can
# claim hundreds of MHz, and resampling that down costs seconds of CPU for a few bytes of input.
_MIN_SOURCE_RATE = 1_000
_MAX_SOURCE_RATE = 384_000


@dataclass
class _Decoded:
    samples: npt.NDArray[np.float32]
    first_error: str | None


def load_audio(data: bytes, *, max_bytes: int, max_seconds: float, filename: str | None = None) -> AudioInput:
    """Validate and decode one upload; ``filename`` is carried along, never used to decide."""
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            f"the audio file is {len(data) / _MB:.2f} MB ({len(data)} bytes); "
            f"the limit is {max_bytes / _MB:.2f} MB",
            param="file",
        )
    if not data:
        raise EmptyInput("the audio file is empty", param="file")
    container = sniff_container(data)
    samples = _decode(data, container, max_seconds=max_seconds)
    return AudioInput(
        data=data,
        container=container,
        samples=samples,
        duration_s=len(samples) / STT_SAMPLE_RATE,
        filename=filename,
    )


def probe(data: bytes) -> tuple[str, float]:
    """Return ``(container, duration_s)`` by decoding all of ``data``.

    Knows the input containers plus ADTS (``"aac"``), so that every compressed output of
    ``encode_speech`` can be checked; raw ``pcm`` has no container and is refused.
    """
    if not data:
        raise EmptyInput("the audio file is empty")
    container = "aac" if is_adts_frame(data[:7]) else sniff_container(data)
    samples = _decode(data, container, max_seconds=math.inf)
    return container, len(samples) / STT_SAMPLE_RATE


def _decode(data: bytes, container: str, *, max_seconds: float) -> npt.NDArray[np.float32]:
    try:
        handle = av.open(io.BytesIO(data), mode="r", format=_DEMUXERS[container], metadata_errors="replace")
    except VoxshiftError:
        raise
    except Exception as exc:  # the container was recognised, so failing to open it means damage
        raise CorruptAudio(
            f"the {container} file is truncated or corrupt and cannot be opened ({_reason(exc)})",
            param="file",
        ) from exc
    try:
        with handle:
            decoded = _decode_opened(handle, container, max_seconds)
    except VoxshiftError:
        raise
    except Exception as exc:
        raise CorruptAudio(
            f"the {container} file is truncated or corrupt ({_reason(exc)})", param="file"
        ) from exc
    if decoded.samples.size == 0:
        detail = f" ({decoded.first_error})" if decoded.first_error else ""
        raise CorruptAudio(
            f"the {container} file is truncated or corrupt: no audio could be decoded{detail}", param="file"
        )
    return decoded.samples


def _decode_opened(handle: InputContainer, container: str, max_seconds: float) -> _Decoded:
    if not handle.streams.audio:
        raise CorruptAudio(f"the {container} file contains no audio stream", param="file")
    stream = handle.streams.audio[0]
    if stream.codec_context is None:
        raise UnsupportedMediaType(
            f"the {container} file contains audio in a codec that cannot be decoded", param="file"
        )
    _check_declared_duration(handle, stream, max_seconds)
    max_samples = (max_seconds + _DURATION_SLACK_S) * STT_SAMPLE_RATE  # inf when unlimited

    chunks: list[npt.NDArray[np.float32]] = []
    total = 0
    resampler = _Resampler()
    first_error: str | None = None
    bad_in_a_row = 0

    def take(frames: list[AudioFrame | None]) -> None:
        nonlocal total
        for frame in frames:
            for out in resampler.resample(frame):
                chunk = out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
                chunks.append(chunk)
                total += chunk.size
            if total > max_samples:
                raise _too_long(max_seconds)

    try:
        for packet in handle.demux(stream):
            try:
                frames = packet.decode()
            except VoxshiftError:
                raise
            except Exception as exc:  # one damaged packet: skip it, as ffmpeg does
                first_error = first_error or _reason(exc)
                bad_in_a_row += 1
                if bad_in_a_row > _MAX_CONSECUTIVE_BAD_PACKETS:
                    break
                continue
            bad_in_a_row = 0
            take(list(frames))
    except VoxshiftError:
        raise
    except Exception as exc:  # the demuxer gave up mid-file: keep what decoded, as ffmpeg does
        first_error = first_error or _reason(exc)
        try:
            take(list(stream.codec_context.decode(None)))
        except VoxshiftError:
            raise
        except Exception:
            log.debug("decoder flush after a demux error failed", exc_info=True)
    take([None])  # drains the resampler's buffered tail

    samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    # Float WAV can carry NaN/inf, which would poison every model downstream.
    samples = np.nan_to_num(samples, copy=False, nan=0.0, posinf=1.0, neginf=-1.0)
    if samples.size > max_samples:
        raise _too_long(max_seconds)
    return _Decoded(samples=np.ascontiguousarray(samples, dtype=np.float32), first_error=first_error)


def _check_declared_duration(handle: InputContainer, stream: AudioStream, max_seconds: float) -> None:
    declared: float | None = None
    if stream.duration is not None and stream.time_base is not None:
        declared = float(stream.duration * stream.time_base)
    elif handle.duration is not None:
        declared = handle.duration / 1_000_000  # AV_TIME_BASE
    if declared is not None and declared > max_seconds + _DURATION_SLACK_S:
        raise AudioTooLong(
            f"the audio is {declared:.1f} s long; the limit is {max_seconds:g} s", param="file"
        )


class _Resampler:
    """An ``av.AudioResampler`` that survives the input format changing mid-stream.

    PyAV's resampler is configured by its first frame and rejects any frame that differs; a damaged
    stream (or a chained Ogg file) can change rate or layout halfway, so a new one is built then.
    """

    def __init__(self) -> None:
        self._inner: AudioResampler | None = None
        self._key: tuple[str, str, int] | None = None

    def resample(self, frame: AudioFrame | None) -> list[AudioFrame]:
        if frame is None:
            return [] if self._inner is None else list(self._inner.resample(None))
        if frame.samples == 0:
            return []
        key = (frame.format.name, frame.layout.name, frame.sample_rate)
        out: list[AudioFrame] = []
        if key != self._key:
            if not _MIN_SOURCE_RATE <= frame.sample_rate <= _MAX_SOURCE_RATE:
                raise CorruptAudio(
                    f"the audio declares an implausible sample rate ({frame.sample_rate} Hz)", param="file"
                )
            if self._inner is not None:
                out.extend(self._inner.resample(None))
            self._inner = AudioResampler(format="flt", layout="mono", rate=STT_SAMPLE_RATE)
            self._key = key
        # Timestamps from a damaged file can jump backwards; they carry nothing we need.
        frame.pts = None
        assert self._inner is not None
        out.extend(self._inner.resample(frame))
        return out


def _too_long(max_seconds: float) -> AudioTooLong:
    return AudioTooLong(f"the audio is longer than the {max_seconds:g} s limit", param="file")


def _reason(exc: BaseException) -> str:
    """FFmpeg's own short description ("Invalid data found when processing input"), not the repr."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(text).strip()
