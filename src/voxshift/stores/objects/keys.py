"""Object keys and metadata encoding: pure functions, no I/O.

Key layout (v2 bucket ``voice-v2-files``)::

    audio/{agent}/{YYYY}/{MM}/{DD}/{sha256}.{ext}     kept 30 days (lifecycle rule "audio/")
    temp/{YYYY}/{MM}/{DD}/{token}.{ext}               kept 1 day   (lifecycle rule "temp/")

The date is UTC and comes first after the agent so a day's files list together; the file name is the
SHA-256 of the bytes, so writing the same audio twice is one object (the legacy layout used a random
uuid4 per upload and could not deduplicate).

Agent ids are chat-platform ids and can hold anything (``agent_привет_ab12``, ``bot:42@team.example``,
``a/b``). The agent segment keeps UTF-8 text as is (S3 keys are UTF-8, and a readable key is worth
more than an ASCII one) and percent-encodes only what would change the key's *structure* or break
tools: ``%`` itself (so the encoding is reversible), ``/`` and ``\\`` (path separators), ``?`` and
``#`` (URL syntax), whitespace and control characters, a leading ``.`` (no ``.``/``..`` segments, no
hidden files on the local store) and the lone ``_`` (reserved for "no agent"). ``:``, ``@`` and ``.``
inside the id are kept.

S3 user metadata travels as HTTP headers, which are ASCII: minio-py refused non-ASCII values, which
is how the legacy service lost Cyrillic file names. Values that are not plain printable ASCII are
sent as RFC 2047 encoded-words (``=?UTF-8?B?...?=``, what AWS itself returns for such values) and
decoded on read, so callers always see the text they wrote.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import unquote

from voxshift.audio.formats import CONTENT_TYPES, UPLOAD_CONTENT_TYPES
from voxshift.errors import ConfigError, InvalidRequest

AUDIO_PREFIX = "audio/"
TEMP_PREFIX = "temp/"
NO_AGENT = "_"

MAX_KEY_BYTES = 1024  # S3's limit for a whole key
MAX_SEGMENT_BYTES = 200  # leaves room for the local store's sidecar names under the 255-byte file limit
RESERVED = ".vx"  # segment prefix the local store keeps for its sidecars and temp files
MAX_METADATA_BYTES = 2048  # S3's limit for all user metadata (keys + values, as sent)

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_EXT_RE = re.compile(r"^[a-z0-9]{1,10}$")
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_META_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,127}$")
_ENCODED_WORD_RE = re.compile(r"^=\?UTF-8\?B\?([A-Za-z0-9+/]*={0,2})\?=$")
_ALWAYS_ENCODE = frozenset("%/\\?#")

# Uploads keep the container they arrived in; speech is written in one of the output formats.
EXTRA_CONTENT_TYPES: dict[str, str] = {
    **UPLOAD_CONTENT_TYPES,
    "json": "application/json",
    "txt": "text/plain; charset=utf-8",
    "srt": "application/x-subrip",
    "vtt": "text/vtt",
}


def content_type_for(ext: str) -> str:
    """The real Content-Type for a file extension (the legacy service stored everything as audio/mpeg)."""
    ext = ext.lower().lstrip(".")
    return CONTENT_TYPES.get(ext) or EXTRA_CONTENT_TYPES.get(ext) or "application/octet-stream"


def encode_agent_segment(agent_id: str | None) -> str:
    """One key segment for an agent id; reversible with ``decode_agent_segment``."""
    if agent_id is None or agent_id == "":
        return NO_AGENT
    if agent_id == NO_AGENT:
        return "%5F"
    out = []
    for index, char in enumerate(agent_id):
        if char in _ALWAYS_ENCODE or char.isspace() or not char.isprintable() or (index == 0 and char == "."):
            out.append("".join(f"%{byte:02X}" for byte in _utf8(char, "agent_id")))
        else:
            out.append(char)
    segment = "".join(out)
    if len(_utf8(segment, "agent_id")) > MAX_SEGMENT_BYTES:
        raise InvalidRequest(
            f"agent_id is too long for an object key (over {MAX_SEGMENT_BYTES} bytes encoded)",
            param="agent_id",
        )
    return segment


def decode_agent_segment(segment: str) -> str | None:
    """Inverse of ``encode_agent_segment`` (None for the no-agent segment)."""
    return None if segment == NO_AGENT else unquote(segment, errors="strict")


def audio_object_key(agent_id: str | None, sha256: str, ext: str, when: datetime) -> str:
    """``audio/{agent or _}/{YYYY}/{MM}/{DD}/{sha256}.{ext}``, the date in UTC."""
    day = _utc(when)
    return f"{AUDIO_PREFIX}{encode_agent_segment(agent_id)}/{day:%Y/%m/%d}/{_sha256(sha256)}.{_ext(ext)}"


def temp_object_key(ext: str, when: datetime, token: str | None = None) -> str:
    """``temp/{YYYY}/{MM}/{DD}/{token}.{ext}``; a random token unless one is given (tests, idempotency)."""
    day = _utc(when)
    if token is None:
        token = uuid.uuid4().hex
    elif not _TOKEN_RE.fullmatch(token):
        raise InvalidRequest("token must be 1-64 letters, digits, '_' or '-'", param="token")
    return f"{TEMP_PREFIX}{day:%Y/%m/%d}/{token}.{_ext(ext)}"


def validate_bucket(bucket: str) -> str:
    """An S3 bucket name (3-63 lowercase letters, digits, '.', '-'); raises ``ConfigError``."""
    if not isinstance(bucket, str) or not _BUCKET_RE.fullmatch(bucket) or ".." in bucket:
        raise ConfigError(f"bucket name {bucket!r}: must be 3-63 lowercase letters, digits, '.' or '-'")
    return bucket


def validate_content_type(content_type: str) -> str:
    """A Content-Type is sent as a header: printable ASCII only, so no header injection."""
    if not isinstance(content_type, str) or not content_type or len(content_type) > 255:
        raise InvalidRequest("content_type must be a non-empty MIME type", param="content_type")
    if not content_type.isascii() or not content_type.isprintable() or "/" not in content_type:
        raise InvalidRequest(f"content_type {content_type!r} is not a MIME type", param="content_type")
    return content_type


def check_key(key: str) -> list[str]:
    """The key's path segments, or ``InvalidRequest`` naming the rule it breaks.

    The rules the local store needs to map a key to a path safely (S3 itself accepts more): 1-1024
    bytes of UTF-8, no control character or backslash, no empty, ``.`` or ``..`` segment (so no
    leading or trailing ``/``), no segment over 200 bytes or starting with the reserved ``.vx``.
    """
    if not isinstance(key, str) or not key:
        raise InvalidRequest("object key must be a non-empty string", param="key")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidRequest("object key is not valid Unicode", param="key") from None
    if size > MAX_KEY_BYTES:
        raise InvalidRequest(f"object key is over {MAX_KEY_BYTES} bytes", param="key")
    if "\\" in key or any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        raise InvalidRequest("object key must not contain control characters or '\\'", param="key")
    segments = key.split("/")
    for segment in segments:
        if segment in ("", ".", ".."):
            raise InvalidRequest(
                f"object key {key!r}: no leading '/', empty, '.' or '..' segments", param="key"
            )
        if segment.startswith(RESERVED):
            raise InvalidRequest(
                f"object key {key!r}: segments starting {RESERVED!r} are reserved", param="key"
            )
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise InvalidRequest(f"object key segment over {MAX_SEGMENT_BYTES} bytes", param="key")
    return segments


def is_valid_key(key: str) -> bool:
    try:
        check_key(key)
    except InvalidRequest:
        return False
    return True


# --- metadata ---------------------------------------------------------------------------------


def validate_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """Check keys and values; return a plain dict copy. Raises ``InvalidRequest``."""
    out: dict[str, str] = {}
    for key, value in (metadata or {}).items():
        if not isinstance(key, str) or not _META_KEY_RE.fullmatch(key):
            raise InvalidRequest(
                f"metadata key {key!r}: use lowercase ASCII letters, digits, '-', '_' or '.' "
                "(S3 lowercases header names, so anything else would not round-trip)",
                param="metadata",
            )
        if not isinstance(value, str):
            raise InvalidRequest(f"metadata value for {key!r} must be text", param="metadata")
        _utf8(value, "metadata")
        out[key] = value
    if sum(len(k) + len(encode_metadata_value(v)) for k, v in out.items()) > MAX_METADATA_BYTES:
        raise InvalidRequest(f"metadata is over S3's {MAX_METADATA_BYTES}-byte limit", param="metadata")
    return out


def encode_metadata_value(value: str) -> str:
    """Plain printable ASCII unchanged; anything else as one RFC 2047 base64 encoded-word."""
    plain = (
        value.isascii()
        and value.isprintable()
        and value == value.strip()  # HTTP trims surrounding whitespace
        and not value.startswith("=?")  # would be mistaken for an encoded-word on the way back
    )
    if plain:
        return value
    return "=?UTF-8?B?" + base64.b64encode(value.encode("utf-8")).decode("ascii") + "?="


def decode_metadata_value(value: str) -> str:
    """Inverse of ``encode_metadata_value``; values written by other tools pass through unchanged."""
    match = _ENCODED_WORD_RE.fullmatch(value)
    if match is None:
        return value
    try:
        return base64.b64decode(match.group(1), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return value


def encode_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    return {key: encode_metadata_value(value) for key, value in metadata.items()}


def decode_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    return {key.lower(): decode_metadata_value(value) for key, value in metadata.items()}


# --- helpers ----------------------------------------------------------------------------------


def _utf8(text: str, param: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from a bad decode upstream
        raise InvalidRequest(f"{param} is not valid Unicode text", param=param) from None


def _utc(when: datetime) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise InvalidRequest("object key dates must be timezone-aware", param="when")
    return when.astimezone(UTC)


def _sha256(value: str) -> str:
    digest = value.lower()
    if not _SHA256_RE.fullmatch(digest):
        raise InvalidRequest("sha256 must be 64 hex digits", param="sha256")
    return digest


def _ext(value: str) -> str:
    ext = value.lower().lstrip(".")
    if not _EXT_RE.fullmatch(ext):
        raise InvalidRequest(f"file extension {value!r} must be 1-10 ASCII letters or digits", param="ext")
    return ext
