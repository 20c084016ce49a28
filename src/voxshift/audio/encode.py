"""Encode synthesised speech into the ``response_format`` the caller asked for.

Providers return mono s16le PCM at their own rate, and this is the only place that turns it into a
container, so every provider serves every format. The formats and their meaning follow OpenAI's
``/v1/audio/speech``: ``opus`` is Ogg Opus, ``aac`` is an ADTS stream and ``pcm`` is headerless
24 kHz 16-bit little-endian mono.
"""

from __future__ import annotations

import contextlib
import io
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

import av
import numpy as np
from av.audio.frame import AudioFrame
from av.audio.resampler import AudioResampler
from av.audio.stream import AudioStream
from av.container import OutputContainer

from voxshift.audio.formats import OUTPUT_FORMATS, PCM_SAMPLE_RATE
from voxshift.engines.base import Speech
from voxshift.errors import InvalidRequest, VoxshiftError

# Compressed encoders emit nothing at all for a few samples (Opus and AAC buffer a whole frame
# before the first packet), which would be a file no player opens; one Opus frame of silence is
# inaudible and always yields a valid file.
_MIN_ENCODED_S = 0.02

_MAX_SAMPLE_RATE = 384_000


@dataclass(frozen=True)
class _Codec:
    muxer: str
    codec: str
    rates: tuple[int, ...] | None  # None: any rate
    bit_rate: int | None
    streaming_options: tuple[tuple[str, str], ...] = ()


_MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
_AAC_RATES = (7350, 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)

# Bit rates suit mono speech: transparent for a voice, a fraction of the music defaults.
_CODECS: dict[str, _Codec] = {
    "mp3": _Codec("mp3", "libmp3lame", _MP3_RATES, 64_000),
    # Ogg Opus is always decoded at 48 kHz, so encoding at anything else only adds a resample.
    # The Ogg muxer holds up to a second of audio per page by default; a streaming listener should
    # not wait that long for the first sound.
    "opus": _Codec("ogg", "libopus", (48_000,), 32_000, (("page_duration", "100000"),)),
    "aac": _Codec("adts", "aac", _AAC_RATES, 64_000),
    "flac": _Codec("flac", "flac", None, None),
}


class _Sink(Protocol):
    def write(self, data: bytes) -> int: ...


class _StreamSink:
    """Write-only, so FFmpeg sees an unseekable output and never holds bytes back to patch later."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


def encode_speech(speech: Speech, fmt: str) -> bytes:
    """Encode all of ``speech`` as ``fmt`` (one of ``OUTPUT_FORMATS``)."""
    _check_format(fmt)
    pcm, rate = _validated(speech)
    if fmt == "pcm":
        return b"".join(_iter_pcm([speech]))
    if fmt == "wav":
        return _wav_header(rate, len(pcm)) + pcm
    # A seekable buffer lets the muxers go back and write what they only know at the end: the MP3
    # Xing/LAME header (exact length, gapless trim) and FLAC's total sample count.
    buffer = io.BytesIO()
    for _ in _iter_av([speech], fmt, buffer, streaming=False):
        pass
    return buffer.getvalue()


def iter_encode_speech(chunks: Iterable[Speech], fmt: str) -> Iterator[bytes]:
    """Encode speech as it arrives, yielding bytes as soon as the encoder produces them.

    All chunks must share one sample rate. The stream cannot be patched afterwards, so a streamed
    WAV declares an unknown length (0xFFFFFFFF, which players read as "until the end") and a
    streamed MP3 carries no Xing header.
    """
    _check_format(fmt)  # here, not in the generator, so a bad format fails before any response starts
    if fmt == "pcm":
        return _iter_pcm(chunks)
    if fmt == "wav":
        return _iter_wav(chunks)
    return _iter_streamed_av(chunks, fmt)


def _check_format(fmt: str) -> None:
    if fmt not in OUTPUT_FORMATS:
        raise InvalidRequest(
            f"unsupported response_format '{fmt}'; expected one of: {', '.join(OUTPUT_FORMATS)}",
            param="response_format",
        )


def _validated(speech: Speech) -> tuple[bytes, int]:
    if not 0 < speech.sample_rate <= _MAX_SAMPLE_RATE:
        raise VoxshiftError(f"synthesised speech has an invalid sample rate: {speech.sample_rate}")
    pcm = speech.pcm
    # A provider that cut its output mid-sample must not shift every later byte out of alignment.
    return (pcm[:-1] if len(pcm) % 2 else pcm), speech.sample_rate


def _frame(pcm: bytes, rate: int, pts: int = 0) -> AudioFrame:
    samples = np.frombuffer(pcm, dtype="<i2").reshape(1, -1)
    frame = AudioFrame.from_ndarray(samples, format="s16", layout="mono")
    frame.sample_rate = rate
    # Without timestamps some muxers (FLAC-in-Ogg, MP4) make up wrong ones or refuse the packets.
    frame.time_base = Fraction(1, rate)
    frame.pts = pts
    return frame


def _iter_pcm(chunks: Iterable[Speech]) -> Iterator[bytes]:
    resampler: AudioResampler | None = None
    rate: int | None = None
    for chunk in chunks:
        pcm, chunk_rate = _validated(chunk)
        rate = _same_rate(rate, chunk_rate)
        if not pcm:
            continue
        if rate == PCM_SAMPLE_RATE:
            yield pcm
            continue
        if resampler is None:
            resampler = AudioResampler(format="s16", layout="mono", rate=PCM_SAMPLE_RATE)
        yield _s16_bytes(resampler.resample(_frame(pcm, rate)))
    if resampler is not None:
        yield _s16_bytes(resampler.resample(None))


def _s16_bytes(frames: list[AudioFrame]) -> bytes:
    return b"".join(frame.to_ndarray().astype("<i2", copy=False).tobytes() for frame in frames)


def _iter_wav(chunks: Iterable[Speech]) -> Iterator[bytes]:
    rate: int | None = None
    for chunk in chunks:
        pcm, chunk_rate = _validated(chunk)
        if rate is None:
            yield _wav_header(chunk_rate, None)
        rate = _same_rate(rate, chunk_rate)
        if pcm:
            yield pcm
    if rate is None:  # no chunks at all still makes a valid, empty file
        yield _wav_header(PCM_SAMPLE_RATE, 0)


def _wav_header(rate: int, data_len: int | None) -> bytes:
    data_size = 0xFFFFFFFF if data_len is None else data_len
    riff_size = 0xFFFFFFFF if data_len is None else 36 + data_len
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", riff_size, b"WAVE",
        b"fmt ", 16, 1, 1, rate, rate * 2, 2, 16,  # PCM, mono, byte rate, block align, 16-bit
        b"data", data_size,
    )  # fmt: skip


def _iter_streamed_av(chunks: Iterable[Speech], fmt: str) -> Iterator[bytes]:
    sink = _StreamSink()
    for _ in _iter_av(chunks, fmt, sink, streaming=True):
        data = sink.take()
        if data:
            yield data
    data = sink.take()
    if data:
        yield data


def _iter_av(chunks: Iterable[Speech], fmt: str, sink: _Sink, *, streaming: bool) -> Iterator[None]:
    """Encode into ``sink``, yielding after every chunk so a streaming caller can drain it.

    The container is opened lazily on the first chunk because the output rate depends on it.
    """
    codec = _CODECS[fmt]
    rate: int | None = None
    written = 0
    output: OutputContainer | None = None
    stream: AudioStream | None = None
    try:
        for chunk in chunks:
            pcm, chunk_rate = _validated(chunk)
            rate = _same_rate(rate, chunk_rate)
            if output is None or stream is None:
                output, stream = _open_output(sink, codec, rate, streaming)
            if pcm:
                _mux(output, stream, _frame(pcm, rate, written))
                written += len(pcm) // 2
            yield None
        if output is None or stream is None or rate is None:
            rate = PCM_SAMPLE_RATE
            output, stream = _open_output(sink, codec, rate, streaming)
        missing = int(rate * _MIN_ENCODED_S) - written
        if missing > 0:
            _mux(output, stream, _frame(bytes(2 * missing), rate, written))
        _mux(output, stream, None)
        output.close()
        output = None
    except VoxshiftError:
        raise
    except Exception as exc:  # our own input is valid PCM, so this is a bug, never the caller's fault
        raise VoxshiftError(f"could not encode speech as {fmt}: {exc}") from exc
    finally:
        if output is not None:
            _close_quietly(output)
    yield None


def _open_output(
    sink: _Sink, codec: _Codec, rate: int, streaming: bool
) -> tuple[OutputContainer, AudioStream]:
    options = dict(codec.streaming_options) if streaming else {}
    output = av.open(sink, mode="w", format=codec.muxer, container_options=options)
    stream = output.add_stream(codec.codec, rate=_pick_rate(rate, codec.rates), layout="mono")
    if not isinstance(stream, AudioStream):  # only to narrow the type: every codec in _CODECS is audio
        raise TypeError(f"{codec.codec} is not an audio codec")
    if codec.bit_rate is not None:
        stream.bit_rate = codec.bit_rate
    return output, stream


def _mux(output: OutputContainer, stream: AudioStream, frame: AudioFrame | None) -> None:
    # PyAV's encoder converts format, rate and frame size itself (each codec wants fixed-size frames).
    for packet in stream.encode(frame):
        output.mux(packet)


def _close_quietly(output: OutputContainer) -> None:
    # Already failing (or abandoned by a disconnected client); the first error is the one to report.
    with contextlib.suppress(Exception):
        output.close()


def _pick_rate(rate: int, supported: tuple[int, ...] | None) -> int:
    if supported is None or rate in supported:
        return rate
    # Upsampling to the next supported rate loses nothing; downsampling would cut the top band.
    higher = [r for r in supported if r >= rate]
    return min(higher) if higher else max(supported)


def _same_rate(expected: int | None, actual: int) -> int:
    if expected is not None and actual != expected:
        raise VoxshiftError(f"speech chunks changed sample rate mid-stream ({expected} -> {actual} Hz)")
    return actual
