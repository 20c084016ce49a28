"""voxshift.audio against real PyAV: every container in, every format out, and damaged input."""

from __future__ import annotations

import io
import struct
import wave
from fractions import Fraction
from functools import cache

import av
import numpy as np
import pytest
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream

from tests.audio_fixtures import INPUT_CONTAINERS, make_clip, speech_to_container, voice_like
from voxshift.audio import (
    CONTENT_TYPES,
    OUTPUT_FORMATS,
    encode_speech,
    iter_encode_speech,
    load_audio,
    probe,
    sniff_container,
)
from voxshift.audio.sniff import is_adts_frame, is_mpeg_audio_frame
from voxshift.engines.base import AudioInput, Speech
from voxshift.errors import (
    AudioTooLong,
    CorruptAudio,
    EmptyInput,
    InvalidRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
    VoxshiftError,
)

MAX_BYTES = 10_000_000
MAX_SECONDS = 60.0


@cache
def clip(container: str, seconds: float = 1.5, rate: int = 48000) -> bytes:
    return make_clip(container, seconds, rate)


def load(data: bytes, **limits: float) -> AudioInput:
    return load_audio(
        data,
        max_bytes=int(limits.get("max_bytes", MAX_BYTES)),
        max_seconds=limits.get("max_seconds", MAX_SECONDS),
    )


def speech(seconds: float, rate: int = 22050) -> Speech:
    return Speech(voice_like(seconds, rate).astype("<i2").tobytes(), rate)


def encode_with_pyav(
    muxer: str, codec: str, rate: int, *, layout: str = "mono", sink: object = None
) -> bytes:
    """A clip in a combination audio_fixtures does not offer (FLAC/Vorbis in Ogg, no duration...)."""
    buffer = sink if sink is not None else io.BytesIO()
    samples = voice_like(1.0, rate)
    with av.open(buffer, mode="w", format=muxer) as output:
        stream = output.add_stream(codec, rate=rate, layout=layout, options={"strict": "experimental"})
        assert isinstance(stream, AudioStream)
        frame = AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.time_base, frame.pts = rate, Fraction(1, rate), 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            output.mux(packet)
    if isinstance(buffer, io.BytesIO):
        return buffer.getvalue()
    return b"".join(buffer.parts)  # type: ignore[attr-defined]


class WriteOnly:
    """An unseekable output: muxers cannot go back to write the duration."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)


# --- sniffing -------------------------------------------------------------------------------------


@pytest.mark.parametrize("container", INPUT_CONTAINERS)
def test_sniff_recognises_every_container(container: str) -> None:
    assert sniff_container(clip(container)) == container


@pytest.mark.parametrize("container", INPUT_CONTAINERS)
def test_bytes_decide_not_the_filename(container: str) -> None:
    liar = "voice.mp3" if container != "mp3" else "voice.wav"
    result = load_audio(clip(container), max_bytes=MAX_BYTES, max_seconds=MAX_SECONDS, filename=liar)
    assert result.container == container
    assert result.filename == liar


def test_mp3_without_id3_is_recognised_by_its_frame_header() -> None:
    data = clip("mp3")
    size = (data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9]
    bare = data[10 + size :]
    assert is_mpeg_audio_frame(bare[:4])
    assert sniff_container(bare) == "mp3"
    assert abs(load(bare).duration_s - 1.5) < 0.1


@pytest.mark.parametrize(("codec", "layout"), [("flac", "mono"), ("vorbis", "stereo")])
def test_ogg_with_flac_or_vorbis_is_accepted(codec: str, layout: str) -> None:
    data = encode_with_pyav("ogg", codec, 44100, layout=layout)
    assert sniff_container(data) == "ogg"
    assert abs(load(data).duration_s - 1.0) < 0.1


def test_ogg_with_another_codec_is_refused() -> None:
    payload = b"Speex   1.2.0" + bytes(67)
    page = b"OggS\x00\x02" + bytes(20) + bytes([1, len(payload)]) + payload
    with pytest.raises(UnsupportedMediaType, match="Speex"):
        sniff_container(page)


NOT_AUDIO = {
    "random": np.random.default_rng(1234).bytes(4096),
    "text": "Привет, это не аудио.\nJust some text that someone uploaded by mistake.\n".encode() * 20,
    "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200),
    "jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(200),
    "heic": b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(200),
    "adts-aac": encode_speech(speech(0.3), "aac"),
}


@pytest.mark.parametrize("name", NOT_AUDIO)
def test_anything_else_is_415_with_the_accepted_formats(name: str) -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        load(NOT_AUDIO[name])
    assert caught.value.status == 415
    for container in ("wav", "mp3", "ogg", "webm", "flac", "m4a"):
        assert container in caught.value.message


def test_text_and_images_are_named_in_the_refusal() -> None:
    with pytest.raises(UnsupportedMediaType, match="text"):
        sniff_container(NOT_AUDIO["text"])
    with pytest.raises(UnsupportedMediaType, match="PNG"):
        sniff_container(NOT_AUDIO["png"])


def test_empty_is_400() -> None:
    with pytest.raises(EmptyInput) as caught:
        sniff_container(b"")
    assert caught.value.status == 400
    with pytest.raises(EmptyInput):
        load(b"")


# --- decoding -------------------------------------------------------------------------------------


@pytest.mark.parametrize("container", INPUT_CONTAINERS)
@pytest.mark.parametrize("rate", [48000, 16000])
def test_load_gives_16k_mono_float32_of_the_right_length(container: str, rate: int) -> None:
    data = clip(container, 1.5, rate)
    result = load(data)
    assert result.data is data
    assert result.container == container
    assert result.samples.dtype == np.float32
    assert result.samples.ndim == 1
    assert result.duration_s == len(result.samples) / 16000
    assert abs(result.duration_s - 1.5) < 0.1
    assert 0.02 < float(np.sqrt(np.mean(result.samples**2))) < 1.0  # real signal, not silence


def test_stereo_is_mixed_down_to_mono() -> None:
    left = voice_like(1.0, 44100)
    interleaved = np.stack([left, np.zeros_like(left)], axis=1).astype("<i2").tobytes()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(44100)
        out.writeframes(interleaved)
    result = load(buffer.getvalue())
    assert result.samples.ndim == 1
    assert abs(result.duration_s - 1.0) < 0.01


def test_float_wav_with_nan_yields_finite_samples() -> None:
    values = np.full(1600, np.nan, dtype="<f4")
    values[::2] = 0.5
    body = values.tobytes()
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        *(b"RIFF", 36 + len(body), b"WAVE", b"fmt ", 16, 3, 1, 16000, 64000, 4, 32, b"data", len(body)),
    )
    result = load(header + body)
    assert np.isfinite(result.samples).all()


def test_over_max_bytes_is_413_before_anything_else() -> None:
    data = NOT_AUDIO["random"]  # would be 415, but the size is checked first
    with pytest.raises(PayloadTooLarge) as caught:
        load(data, max_bytes=len(data) - 1)
    assert caught.value.status == 413
    with pytest.raises(PayloadTooLarge, match=r"3\.00 MB.*limit is 2\.00 MB"):
        load(bytes(3_000_000), max_bytes=2_000_000)


@pytest.mark.parametrize("container", INPUT_CONTAINERS)
def test_over_max_seconds_is_413_with_the_duration(container: str) -> None:
    with pytest.raises(AudioTooLong, match=r"1\.5 s long; the limit is 1 s") as caught:
        load(clip(container), max_seconds=1.0)
    assert caught.value.status == 413


def test_a_clip_exactly_at_the_limit_passes() -> None:
    for container in INPUT_CONTAINERS:
        assert abs(load(clip(container), max_seconds=1.5).duration_s - 1.5) < 0.1


def test_too_long_without_duration_metadata_is_caught_while_decoding() -> None:
    data = encode_with_pyav("webm", "libopus", 48000, sink=WriteOnly())
    with av.open(io.BytesIO(data), mode="r") as container:
        assert container.duration is None and container.streams.audio[0].duration is None
    assert abs(load(data).duration_s - 1.0) < 0.05
    with pytest.raises(AudioTooLong, match=r"longer than the 0\.5 s limit"):
        load(data, max_seconds=0.5)


@pytest.mark.parametrize("container", INPUT_CONTAINERS)
def test_header_only_is_corrupt(container: str) -> None:
    data = clip(container)
    cut = 44 if container == "wav" else 60  # 60 bytes of WAV would hold 8 real samples
    with pytest.raises((CorruptAudio, UnsupportedMediaType)) as caught:
        load(data[:cut])
    assert caught.value.status in (400, 415)
    if isinstance(caught.value, CorruptAudio):
        assert container in caught.value.message and "corrupt" in caught.value.message


@pytest.mark.parametrize("container", INPUT_CONTAINERS)
def test_truncated_in_the_middle_keeps_what_decodes_or_is_corrupt(container: str) -> None:
    data = clip(container)
    try:
        result = load(data[: len(data) // 2])
    except CorruptAudio:
        return  # Ogg pages and an MP4 index at the end make the whole file undecodable
    assert 0 < result.duration_s < 1.5


def test_video_without_audio_is_corrupt_audio() -> None:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as output:
        stream = output.add_stream("mpeg4", rate=10)
        stream.width, stream.height = 32, 32
        for _ in range(3):
            frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    with pytest.raises(CorruptAudio, match="no audio stream"):
        load(buffer.getvalue())


def test_mutated_clips_only_ever_raise_voxshift_errors() -> None:
    rng = np.random.default_rng(20240601)
    sources = [clip(container, 0.5, 16000) for container in INPUT_CONTAINERS]
    outcomes: dict[str, int] = {}
    for i in range(200):
        data = bytearray(sources[i % len(sources)])
        kind = ("flip", "truncate", "splice")[int(rng.integers(3))]
        if kind == "flip":
            for offset in rng.integers(0, len(data), size=int(rng.integers(1, 20))):
                data[int(offset)] = int(rng.integers(256))
        elif kind == "truncate":
            data = data[: int(rng.integers(1, len(data)))]
        else:
            offset = int(rng.integers(0, len(data)))
            data[offset:offset] = rng.bytes(int(rng.integers(1, 400)))
        try:
            result = load(bytes(data), max_seconds=5.0)
        except VoxshiftError as exc:
            outcomes[type(exc).__name__] = outcomes.get(type(exc).__name__, 0) + 1
        else:
            assert result.samples.dtype == np.float32 and np.isfinite(result.samples).all()
            outcomes["ok"] = outcomes.get("ok", 0) + 1
    assert sum(outcomes.values()) == 200
    assert outcomes.get("ok", 0) > 0 and outcomes.get("CorruptAudio", 0) > 0


# --- encoding -------------------------------------------------------------------------------------


def test_content_types_cover_every_output_format() -> None:
    assert set(CONTENT_TYPES) == set(OUTPUT_FORMATS)
    assert CONTENT_TYPES["mp3"] == "audio/mpeg" and CONTENT_TYPES["opus"] == "audio/ogg"


def has_magic(fmt: str, data: bytes) -> bool:
    if fmt == "mp3":
        return data[:3] == b"ID3" or is_mpeg_audio_frame(data[:4])
    if fmt == "opus":
        return data[:4] == b"OggS" and b"OpusHead" in data[:64]
    if fmt == "aac":
        return is_adts_frame(data[:7])
    if fmt == "flac":
        return data[:4] == b"fLaC"
    if fmt == "wav":
        return data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    return True  # raw PCM has no header


def decoded_duration(fmt: str, data: bytes) -> float:
    if fmt == "pcm":
        return len(data) / 48000  # 24 kHz, 2 bytes per sample
    return probe(data)[1]


@pytest.mark.parametrize("fmt", OUTPUT_FORMATS)
@pytest.mark.parametrize("rate", [16000, 22050, 24000])
def test_every_format_decodes_back_to_the_same_length(fmt: str, rate: int) -> None:
    data = encode_speech(speech(1.2, rate), fmt)
    assert has_magic(fmt, data)
    assert abs(decoded_duration(fmt, data) - 1.2) < 0.15


@pytest.mark.parametrize("fmt", OUTPUT_FORMATS)
@pytest.mark.parametrize("seconds", [0.05, 0.0])
def test_very_short_and_empty_speech_still_make_a_valid_file(fmt: str, seconds: float) -> None:
    data = encode_speech(speech(seconds), fmt)
    assert has_magic(fmt, data)
    if fmt == "wav":
        with wave.open(io.BytesIO(data)) as parsed:
            assert parsed.getnframes() == round(seconds * 22050)
    else:
        assert decoded_duration(fmt, data) < seconds + 0.15


def test_pcm_is_24k_s16le_whatever_the_source_rate() -> None:
    assert len(encode_speech(speech(1.0, 16000), "pcm")) == 48000
    native = speech(0.5, 24000)
    assert encode_speech(native, "pcm") == native.pcm
    assert encode_speech(Speech(native.pcm + b"\x01", 24000), "pcm") == native.pcm  # stray byte dropped


def test_unknown_format_is_a_400_on_response_format() -> None:
    for call in (lambda: encode_speech(speech(0.1), "ogg"), lambda: iter_encode_speech([], "vorbis")):
        with pytest.raises(InvalidRequest) as caught:
            call()
        assert caught.value.status == 400 and caught.value.param == "response_format"


@pytest.mark.parametrize("fmt", ["mp3", "opus", "flac", "wav"])
def test_encoded_speech_is_itself_a_valid_upload(fmt: str) -> None:
    result = load(encode_speech(speech(1.0), fmt))
    assert result.container == {"opus": "ogg"}.get(fmt, fmt)
    assert abs(result.duration_s - 1.0) < 0.1


@pytest.mark.parametrize("fmt", OUTPUT_FORMATS)
def test_streaming_yields_as_it_goes_and_decodes_back(fmt: str) -> None:
    whole = speech(2.0)
    step = 2 * 2205  # 0.1 s chunks
    chunks = [Speech(whole.pcm[i : i + step], whole.sample_rate) for i in range(0, len(whole.pcm), step)]
    pieces = list(iter_encode_speech(chunks, fmt))
    assert len(pieces) > 3  # bytes flowed before the last chunk went in
    data = b"".join(pieces)
    assert has_magic(fmt, data)
    assert abs(decoded_duration(fmt, data) - 2.0) < 0.15


def test_speech_round_trips_through_every_input_container() -> None:
    source = speech(1.0, 22050)
    for container in INPUT_CONTAINERS:
        result = load(speech_to_container(source.pcm, source.sample_rate, container))
        assert result.container == container
        assert abs(result.duration_s - 1.0) < 0.1
