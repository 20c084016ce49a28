"""Tell which container an upload is from its first bytes.

The file name and the client's Content-Type are hints a caller controls and often gets wrong
(``voice.ogg`` that is really WebM is common from browsers), so only the bytes decide. Anything not
recognised here is refused with 415 before a demuxer ever sees it: FFmpeg's own probing accepts
dozens of formats (and images, playlists, ...) that we neither test nor want to expose.
"""

from __future__ import annotations

from voxshift.errors import EmptyInput, UnsupportedMediaType

INPUT_CONTAINERS: tuple[str, ...] = ("wav", "mp3", "ogg", "webm", "flac", "m4a")

ACCEPTED_DESCRIPTION = "wav, mp3, ogg (opus, vorbis or flac), webm, flac, m4a/mp4"

# The first packet of an Ogg logical stream identifies its codec; these are the ones we decode.
_OGG_CODEC_IDS: tuple[tuple[bytes, str], ...] = (
    (b"OpusHead", "opus"),
    (b"\x01vorbis", "vorbis"),
    (b"\x7fFLAC", "flac"),
)

# ISO-BMFF brands that are images, not audio/video: refusing them here gives a clear 415 instead of
# a confusing "no audio stream" later.
_IMAGE_FTYP_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"})

# Common non-audio uploads, so the refusal can say what the file looks like.
_OTHER_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
)


def sniff_container(data: bytes) -> str:
    """Return ``wav``, ``mp3``, ``ogg``, ``webm``, ``flac`` or ``m4a`` for ``data``.

    Raises ``EmptyInput`` for no bytes and ``UnsupportedMediaType`` for anything else.
    """
    if not data:
        raise EmptyInput("the audio file is empty", param="file")
    head = bytes(data[:64])
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        _check_ogg_codec(head)
        return "ogg"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"
    if head[4:8] == b"ftyp":
        if head[8:12] in _IMAGE_FTYP_BRANDS:
            raise _unsupported("an HEIF/AVIF image")
        return "m4a"
    if head[:3] == b"ID3":
        # Some taggers put ID3v2 in front of FLAC; everything else carrying ID3v2 we accept is MP3.
        after = _skip_id3v2(data)
        return "flac" if data[after : after + 4] == b"fLaC" else "mp3"
    if is_mpeg_audio_frame(head):
        return "mp3"
    raise _unsupported(_describe(head))


def is_mpeg_audio_frame(header: bytes) -> bool:
    """True if ``header`` starts with a plausible MPEG-1/2/2.5 Layer III frame header.

    Checking every field, not just the 11-bit sync, matters: 0xFFE is common in random data and
    also starts ADTS AAC, which is not an input format we accept.
    """
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return False
    version = (header[1] >> 3) & 0b11
    layer = (header[1] >> 1) & 0b11
    bitrate_index = header[2] >> 4
    rate_index = (header[2] >> 2) & 0b11
    emphasis = header[3] & 0b11
    return (
        version != 0b01  # reserved
        and layer == 0b01  # Layer III
        and bitrate_index != 0xF  # "bad"
        and rate_index != 0b11  # reserved
        and emphasis != 0b10  # reserved
    )


def is_adts_frame(header: bytes) -> bool:
    """True if ``header`` starts with an ADTS (raw AAC) frame header; used for our own output."""
    if len(header) < 7 or header[0] != 0xFF or header[1] & 0xF6 != 0xF0:
        return False
    rate_index = (header[2] >> 2) & 0x0F
    frame_length = ((header[3] & 0x03) << 11) | (header[4] << 3) | (header[5] >> 5)
    return rate_index < 13 and frame_length >= 7


def _skip_id3v2(data: bytes) -> int:
    if len(data) < 10:
        return len(data)
    # The size is "syncsafe": four 7-bit bytes, so that a tag never contains a false frame sync.
    size = 0
    for byte in data[6:10]:
        size = (size << 7) | (byte & 0x7F)
    footer = 10 if data[5] & 0x10 else 0
    return 10 + size + footer


def _check_ogg_codec(head: bytes) -> None:
    # Page header is 27 bytes, then one lacing byte per segment, then the first packet.
    if len(head) < 27:
        return  # too short to name the codec; the decoder will report it as corrupt
    payload = head[27 + head[26] :]
    if len(payload) < 8:
        return
    for magic, _codec in _OGG_CODEC_IDS:
        if payload.startswith(magic):
            return
    codec = "an unknown codec"
    if payload.startswith(b"Speex"):
        codec = "Speex"
    elif payload.startswith(b"\x80theora"):
        codec = "Theora video"
    raise UnsupportedMediaType(
        f"unsupported Ogg stream ({codec}); Ogg files must contain Opus, Vorbis or FLAC audio. "
        f"Accepted formats: {ACCEPTED_DESCRIPTION}",
        param="file",
    )


def _describe(head: bytes) -> str:
    for magic, what in _OTHER_MAGIC:
        if head.startswith(magic):
            return what
    # Cut at 64 bytes a UTF-8 character may be split, so judge by control bytes rather than decoding.
    if all(byte >= 0x20 or byte in b"\t\n\r" for byte in head):
        return "text"
    return "an unrecognised format"


def _unsupported(what: str) -> UnsupportedMediaType:
    return UnsupportedMediaType(
        f"unsupported audio format: the file looks like {what}. Accepted formats: {ACCEPTED_DESCRIPTION}",
        param="file",
    )
